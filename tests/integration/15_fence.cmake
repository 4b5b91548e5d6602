# The fence hook with real brokers (15_fence.py), label "integration". Two tests because
# either may skip on its own: the hook cases need root for a network namespace, the
# fenced-master cases need tandem-faultfs and /dev/fuse.
if(TARGET tandem-faultfs)
  tandem_add_python_test(15_fence $<TARGET_FILE:tandemd> $<TARGET_FILE:tandem-faultfs>)
  set_property(TEST integration_15_fence APPEND PROPERTY ENVIRONMENT "TANDEM_ITEST_EXCLUDE=fenced_master")
  add_test(NAME integration_15_fenced_master
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/15_fence.py $<TARGET_FILE:tandemd> $<TARGET_FILE:tandem-faultfs>
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  set_tests_properties(integration_15_fenced_master PROPERTIES LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;TANDEM_ITEST_ONLY=fenced_master")
else()
  tandem_add_python_test(15_fence)
  set_property(TEST integration_15_fence APPEND PROPERTY ENVIRONMENT "TANDEM_ITEST_EXCLUDE=fenced_master")
endif()

# No blocking file I/O on the io thread (issue 17): a store on tandem-faultfs whose segment
# reads take 5 s. Skips without tandem-faultfs or /dev/fuse.
if(TARGET tandem-faultfs)
  tandem_add_python_test(19_io_thread $<TARGET_FILE:tandemd> $<TARGET_FILE:tandem-faultfs>)
endif()
