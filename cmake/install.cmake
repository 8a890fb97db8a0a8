# `cmake --install`: the daemon, its systemd unit, the example configuration and registries, the
# migrations, and sysusers.d/tmpfiles.d entries, in the GNUInstallDirs places. The installed
# config and unit name the installed paths (they are rewritten from config/ at configure time).

# systemd directories relative to the install prefix: systemd.pc's values with its own prefix
# (or a leading "/") taken off, so that --prefix and DESTDIR apply; lib/... without systemd.pc.
function(solarx_systemd_dir var pc_variable fallback)
  set(dir "${fallback}")
  pkg_get_variable(pc_dir systemd ${pc_variable})
  pkg_get_variable(pc_prefix systemd prefix)
  if(pc_dir AND pc_prefix AND pc_dir MATCHES "^${pc_prefix}/(.+)$")
    set(dir "${CMAKE_MATCH_1}")
  elseif(pc_dir MATCHES "^/(lib/.+)$")
    set(dir "${CMAKE_MATCH_1}")
  endif()
  set(${var} "${dir}" CACHE STRING "systemd ${pc_variable}, relative to the install prefix")
endfunction()
solarx_systemd_dir(SOLARX_SYSTEMD_UNITDIR systemdsystemunitdir lib/systemd/system)
solarx_systemd_dir(SOLARX_SYSUSERSDIR sysusersdir lib/sysusers.d)
solarx_systemd_dir(SOLARX_TMPFILESDIR tmpfilesdir lib/tmpfiles.d)

set(SOLARX_CONFDIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}/solarx")

# Copies SRC to DST with the shipped absolute paths replaced by the installed ones.
function(solarx_installed_copy src dst)
  file(READ "${CMAKE_SOURCE_DIR}/${src}" text)
  string(REPLACE "/usr/bin/solarx-stream" "${CMAKE_INSTALL_FULL_BINDIR}/solarx-stream" text "${text}")
  string(REPLACE "/usr/share/doc/solarx-stream" "${CMAKE_INSTALL_FULL_DOCDIR}" text "${text}")
  string(REPLACE "/etc/solarx" "${SOLARX_CONFDIR}" text "${text}")
  set(out "${CMAKE_BINARY_DIR}/installed/${dst}")
  set(old "")
  if(EXISTS "${out}")
    file(READ "${out}" old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE "${out}" "${text}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/${src}")
endfunction()
solarx_installed_copy(config/solarx-stream.conf solarx-stream.conf)
solarx_installed_copy(config/solarx-stream.service solarx-stream.service)
solarx_installed_copy(config/solarx-stream@.service solarx-stream@.service)
solarx_installed_copy(config/solarx-stream.tmpfiles solarx-stream.tmpfiles)

install(TARGETS solarx-stream DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY migrations/ DESTINATION ${CMAKE_INSTALL_DATADIR}/solarx/migrations
        FILES_MATCHING PATTERN "*.sql")
install(FILES ${CMAKE_BINARY_DIR}/installed/solarx-stream.conf
              config/solar_panels.json
        DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/solarx)
install(FILES config/home_appliances_consumption.json
        DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/solarx RENAME home_appliances.json)
install(FILES ${CMAKE_BINARY_DIR}/installed/solarx-stream.service
              ${CMAKE_BINARY_DIR}/installed/solarx-stream@.service
        DESTINATION ${SOLARX_SYSTEMD_UNITDIR})
install(FILES config/solarx-stream.sysusers
        DESTINATION ${SOLARX_SYSUSERSDIR} RENAME solarx-stream.conf)
install(FILES ${CMAKE_BINARY_DIR}/installed/solarx-stream.tmpfiles
        DESTINATION ${SOLARX_TMPFILESDIR} RENAME solarx-stream.conf)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
