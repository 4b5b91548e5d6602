# Failover and life-cycle tests (included from this folder's CMakeLists.txt; owned by the
# drill). Each is one CTest test with the label "integration".
#   07_failover_lifecycle  start/slave/takeover/SIGTERM/SIGSTOP/deposed, through real processes
#   07_failover_clients    stomp.py with a broker list follows the master; dedup across failover
#   07_failover_drill      tandem-drill: 3 brokers, 10 failovers (kill, term, stop), seed 7
foreach(t 07_failover_lifecycle 07_failover_clients)
  tandem_add_python_test(${t})
endforeach()
if(TARGET tandem-drill)
  # --base-port 0: the drill picks free ports, so parallel tests cannot collide.
  add_test(NAME integration_07_failover_drill
           COMMAND tandem-drill --tandemd $<TARGET_FILE:tandemd> --brokers 3 --failovers 10 --seed 7
                   --interval-ms 200 --pause-max-ms 800 --rate 1000 --base-port 0
                   --json ${CMAKE_CURRENT_BINARY_DIR}/07_failover_drill.json)
  set_tests_properties(integration_07_failover_drill PROPERTIES LABELS integration TIMEOUT 180)
endif()
