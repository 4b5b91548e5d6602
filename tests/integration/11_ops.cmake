# Operations tests (included from this folder's CMakeLists.txt; owned by the ops work), label
# "integration":
#   11_systemd     systemd-analyze verify of tandem@.service, its settings, sd_notify
#   12_package     cpack -G DEB, the file list (dpkg-deb -c), tandem@example from dpkg-deb -x
#   13_tls         STOMP over TLS with certificates made by the openssl CLI
#   14_tandemctl   status, destinations, purge, send, receive against real brokers
foreach(t 11_systemd 13_tls 14_tandemctl)
  tandem_add_python_test(${t})
endforeach()
set_property(TEST integration_14_tandemctl APPEND PROPERTY ENVIRONMENT "TANDEMCTL=$<TARGET_FILE:tandemctl>")
# The package test builds the .deb from this build tree (cpack runs the install rules), so it
# needs every installed target built: it runs after a full build, as ./tandem.sh test does.
tandem_add_python_test(12_package ${CMAKE_BINARY_DIR})
