# CPack settings for the Debian package (see packaging/CMakeLists.txt for what it holds).
# Included from the top-level CMakeLists.txt: include(CPack) writes CPackConfig.cmake from the
# variables of the scope it runs in, which must be the top-level one.
set(CPACK_PACKAGE_NAME tandem)
set(CPACK_PACKAGE_VENDOR "Tandem")
set(CPACK_PACKAGE_CONTACT "Tandem maintainers <maintainers@tandem.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "persistent STOMP 1.2 broker with shared-store master/slave failover")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # tandem_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps; adduser is for postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Tandem is a persistent STOMP 1.2 message broker with ActiveMQ-compatible semantics.\nBrokers sharing one store directory (NFSv4 or SAN) elect a master by file lock;\na RECEIPT for a persistent SEND means the message is fsync'd.")
# The example config is a conffile: an upgrade keeps the operator's edits.
file(WRITE ${CMAKE_BINARY_DIR}/packaging/conffiles "/etc/tandem/example.json\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/packaging/conffiles
    ${CMAKE_CURRENT_LIST_DIR}/debian/postinst
    ${CMAKE_CURRENT_LIST_DIR}/debian/prerm
    ${CMAKE_CURRENT_LIST_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# RelWithDebInfo binaries carry their debug info; the package does not need it.
set(CPACK_STRIP_FILES ON)
# The build trees of every developer sit beside the sources: never package them.
set(CPACK_SOURCE_IGNORE_FILES "/build[^/]*/" "/\\\\.git/")
# Deliberate durability defects (TANDEM_UNSAFE_FAULTS, docs/failover.md) are never packaged.
set(CPACK_TANDEM_UNSAFE_FAULTS ${TANDEM_UNSAFE_FAULTS})
list(APPEND CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/refuse_unsafe.cmake)
include(CPack)
