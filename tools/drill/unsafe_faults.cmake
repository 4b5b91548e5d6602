# The unsafe build (docs/failover.md, "The unsafe build"): deliberate durability defects that
# let tandem-drill show it sees loss, behind #ifdef TANDEM_UNSAFE_FAULTS in the real sources
# and switched on at run time by TANDEM_UNSAFE_FAULT=NAME (tools/drill/unsafe_faults.cpp).
#
# tandem_add_unsafe_tandemd(): tandemd-unsafe, a second tandemd for the tests, never
# installed. Every source of tandemd's libraries that mentions TANDEM_UNSAFE_FAULTS is
# compiled again with the define into an object library, and those objects are linked ahead
# of the normal libraries: their definitions win and the normal members that define the same
# symbols are never pulled in (a mismatch is a duplicate-symbol link error, never a silent
# mix). tandemd's own files are linked as tandemd's objects unless one of them carries a
# defect. Cost: a few translation units, not a second build tree. Which files carry defects is
# read when CMake configures; re-run it after adding a defect to another file.
#
# With -DTANDEM_UNSAFE_FAULTS=ON (top-level CMakeLists.txt) the whole tree, tandemd included,
# is compiled with the defects; packaging refuses such a tree (packaging/refuse_unsafe.cmake).

function(tandem_add_unsafe_tandemd)
  if(NOT TARGET tandemd)
    return()
  endif()
  set(objects "")
  foreach(lib tandem_journal tandem_lockmgr tandem_broker_server tandem_broker)
    if(NOT TARGET ${lib})
      continue()
    endif()
    get_target_property(sources ${lib} SOURCES)
    get_target_property(dir ${lib} SOURCE_DIR)
    set(defective "")
    foreach(src IN LISTS sources)
      if(src MATCHES "\\$<" OR NOT src MATCHES "\\.(cpp|cc|cxx)$")
        continue()
      endif()
      if(NOT IS_ABSOLUTE "${src}")
        set(src "${dir}/${src}")
      endif()
      if(EXISTS "${src}")
        file(STRINGS "${src}" hit REGEX "TANDEM_UNSAFE_FAULTS" LIMIT_COUNT 1)
        if(hit)
          list(APPEND defective "${src}")
        endif()
      endif()
    endforeach()
    if(defective)
      add_library(${lib}_unsafe_objects OBJECT ${defective})
      foreach(prop COMPILE_DEFINITIONS COMPILE_OPTIONS INCLUDE_DIRECTORIES COMPILE_FEATURES)
        get_target_property(value ${lib} ${prop})
        if(value)
          set_property(TARGET ${lib}_unsafe_objects APPEND PROPERTY ${prop} ${value})
        endif()
      endforeach()
      # The usage requirements of what the library links (Boost, fmt, xxhash headers...).
      get_target_property(deps ${lib} LINK_LIBRARIES)
      if(deps)
        target_link_libraries(${lib}_unsafe_objects PRIVATE ${deps})
      endif()
      target_compile_definitions(${lib}_unsafe_objects PRIVATE TANDEM_UNSAFE_FAULTS)
      list(APPEND objects $<TARGET_OBJECTS:${lib}_unsafe_objects>)
    endif()
  endforeach()

  # tandemd's own files (the object library tandemd_objects, broker/CMakeLists.txt): their
  # objects as they are when none of them carries a defect, else all compiled again here.
  get_target_property(main_sources tandemd_objects SOURCES)
  get_target_property(main_dir tandemd_objects SOURCE_DIR)
  set(main_abs "")
  set(main_defective FALSE)
  foreach(src IN LISTS main_sources)
    if(NOT IS_ABSOLUTE "${src}")
      set(src "${main_dir}/${src}")
    endif()
    list(APPEND main_abs "${src}")
    file(STRINGS "${src}" hit REGEX "TANDEM_UNSAFE_FAULTS" LIMIT_COUNT 1)
    if(hit)
      set(main_defective TRUE)
    endif()
  endforeach()
  if(main_defective)
    add_executable(tandemd-unsafe ${main_abs} ${objects} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/unsafe_faults.cpp)
  else()
    add_executable(tandemd-unsafe $<TARGET_OBJECTS:tandemd_objects> ${objects} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/unsafe_faults.cpp)
  endif()
  foreach(prop COMPILE_DEFINITIONS COMPILE_OPTIONS INCLUDE_DIRECTORIES)
    get_target_property(value tandemd_objects ${prop})
    if(value)
      set_property(TARGET tandemd-unsafe APPEND PROPERTY ${prop} ${value})
    endif()
  endforeach()
  get_target_property(value tandemd LINK_LIBRARIES)
  if(value)
    set_property(TARGET tandemd-unsafe APPEND PROPERTY LINK_LIBRARIES ${value})
  endif()
  target_compile_definitions(tandemd-unsafe PRIVATE TANDEM_UNSAFE_FAULTS)
  # Deliberately no install() rule: this binary is for tests only.
endfunction()

if(TANDEM_UNSAFE_FAULTS AND TARGET tandem_journal)
  # The whole tree carries the defects: the switch lives with the journal, which every
  # defective translation unit links.
  target_sources(tandem_journal PRIVATE ${CMAKE_CURRENT_LIST_DIR}/unsafe_faults.cpp)
endif()
if(TANDEM_BUILD_TESTS OR TANDEM_UNSAFE_FAULTS)
  tandem_add_unsafe_tandemd()
endif()
