# Failover and life-cycle tests (included from this folder's CMakeLists.txt; owned by the
# drill). Each is one CTest test with the label "integration".
#   07_failover_lifecycle  start/slave/takeover/SIGTERM/SIGSTOP/deposed, through real processes
#   07_failover_clients    stomp.py with a broker list follows the master; dedup across failover
#   07_failover_drill      tandem-drill: 3 brokers, 10 failovers (kill, term, stop), seed 7
foreach(t 07_failover_lifecycle 07_failover_clients)
  add_test(NAME integration_${t}
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/${t}.py $<TARGET_FILE:tandemd>
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  set_tests_properties(integration_${t} PROPERTIES LABELS integration TIMEOUT 300
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endforeach()
if(TARGET tandem-drill)
  # --base-port 0: the drill picks free ports, so parallel tests cannot collide.
  add_test(NAME integration_07_failover_drill
           COMMAND tandem-drill --tandemd $<TARGET_FILE:tandemd> --brokers 3 --failovers 10 --seed 7
                   --interval-ms 200 --pause-max-ms 800 --rate 1000 --base-port 0
                   --json ${CMAKE_CURRENT_BINARY_DIR}/07_failover_drill.json)
  set_tests_properties(integration_07_failover_drill PROPERTIES LABELS integration TIMEOUT 180)
endif()
