# Fails if the simulator's model (tools/sim, library solarx_sim) reaches the daemon: sim.c's
# object among the members of the daemon's library, or a sim_ symbol defined in solarx-stream.
# Usage (tests/CMakeLists.txt, test unit.daemon_without_sim):
#   cmake -DNM=<nm> -DAR=<ar> -DLIBRARY=<libsolarx.a> -DDAEMON=<solarx-stream> -P daemon_without_sim.cmake
foreach(var NM AR LIBRARY DAEMON)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "daemon_without_sim: -D${var}=... missing")
  endif()
endforeach()

execute_process(COMMAND "${AR}" t "${LIBRARY}" RESULT_VARIABLE rc OUTPUT_VARIABLE members
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "daemon_without_sim: ${AR} t ${LIBRARY} failed (${rc}): ${err}")
endif()
string(REGEX MATCHALL "(^|\n)sim\\.[^\n]*" sim_members "${members}")
if(sim_members)
  message(FATAL_ERROR "daemon_without_sim: ${LIBRARY} holds the simulator's model:${sim_members}")
endif()

execute_process(COMMAND "${NM}" --defined-only "${DAEMON}" RESULT_VARIABLE rc
                OUTPUT_VARIABLE symbols ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "daemon_without_sim: ${NM} --defined-only ${DAEMON} failed (${rc}): ${err}")
endif()
string(REGEX MATCHALL "[^\n]* sim_[^\n]*" sim_symbols "${symbols}")
if(sim_symbols)
  string(REPLACE ";" "\n" sim_symbols "${sim_symbols}")
  message(FATAL_ERROR "daemon_without_sim: ${DAEMON} defines sim_ symbols:\n${sim_symbols}")
endif()
string(REGEX MATCHALL "\n" lines "${symbols}")
list(LENGTH lines symbol_count)
message(STATUS "daemon_without_sim: no sim object in ${LIBRARY}, "
               "no sim_ symbol among the ${symbol_count} defined in ${DAEMON}")
