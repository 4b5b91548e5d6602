# tandem-drill with issue 16's delivery policies on (--workload, tools/drill/policy_workload.h):
# a short drill of each workload under kill and term failovers must come out clean
# (07_drill_verdict.py judges: exit 0, no loss, no unflagged duplicate, no order or policy
# violation). That the verdict sees a firing done twice is shown by history_test.cpp and by
# the commit that added these tests (a drill whose model expects one firing per repeating
# schedule fails on the real broker's three).
if(TARGET tandem-drill)
  set(_policy_verdict /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/07_drill_verdict.py --drill $<TARGET_FILE:tandem-drill>)
  # Four episodes, kill and term in turn; 500 messages/s; short drains (a redelivery's
  # delays add up to 1.4 s, a schedule's firings to 1.6 s).
  set(_policy_quick --brokers 2 --kinds kill,term --order cycle --failovers 4 --interval-ms 700 --rate 500
                    --drain-timeout-ms 5000 --failover-timeout-ms 20000 --seed 16)
  function(tandem_drill_policy workload)
    add_test(NAME integration_16_drill_${workload}
             COMMAND ${_policy_verdict} --tandemd $<TARGET_FILE:tandemd> --expect clean -- ${_policy_quick}
                     --workload ${workload})
    set_tests_properties(integration_16_drill_${workload} PROPERTIES LABELS integration TIMEOUT 120
                         ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endfunction()

  tandem_drill_policy(groups)
  tandem_drill_policy(scheduled)
  tandem_drill_policy(redelivery)
endif()
