# CPACK_PRE_BUILD_SCRIPTS (packaging/cpack.cmake): never package deliberate durability defects.
# Refuses a tree configured with TANDEM_UNSAFE_FAULTS=ON, and any installed ELF file that
# carries the unsafe build's marker (tools/drill/unsafe_faults.cpp), e.g. tandemd-unsafe
# given an install rule by mistake.
if(CPACK_TANDEM_UNSAFE_FAULTS)
  message(FATAL_ERROR "refusing to package: this build tree was configured with TANDEM_UNSAFE_FAULTS=ON, "
                      "whose binaries lose acknowledged messages on purpose (docs/failover.md). "
                      "Build the package from a tree configured with -DTANDEM_UNSAFE_FAULTS=OFF.")
endif()
file(GLOB_RECURSE staged LIST_DIRECTORIES false "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*")
foreach(file IN LISTS staged)
  if(IS_SYMLINK "${file}")
    continue()
  endif()
  file(READ "${file}" magic LIMIT 4 HEX)
  if(magic STREQUAL "7f454c46")
    file(STRINGS "${file}" hit REGEX "TANDEM-UNSAFE-BUILD" LIMIT_COUNT 1)
    if(hit)
      message(FATAL_ERROR "refusing to package: ${file} was built with TANDEM_UNSAFE_FAULTS "
                          "(deliberate durability defects, docs/failover.md); it must not be installed.")
    endif()
  endif()
endforeach()
