# check_symbol_leaks.cmake: per-ISA objects may export only symbols tagged with their own arch.
#
#   cmake -DNM=<nm> -DOBJECTS=<obj>[,<obj>...] -DTAGS=<regex> [-DFILTER=<regex>] -P check_symbol_leaks.cmake
#
# Every weak (W/V) symbol defined in the objects (demangled) must match TAGS; with FILTER, only
# symbols matching FILTER are checked. A weak symbol without its arch in the name can also be
# emitted by a translation unit built with other flags, and the linker keeps one copy for
# everybody: an inline function compiled for AVX-512 then runs in the baseline path (SIGILL).
#   cmake -DNM=<nm> -DDISJOINT=<obj>[,<obj>...] -P check_symbol_leaks.cmake
# checks that no two of the given objects define the same weak symbol.
cmake_minimum_required(VERSION 3.25)

function(weak_symbols object out)
  execute_process(COMMAND ${NM} -C --defined-only ${object} OUTPUT_VARIABLE listing RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm failed on ${object}")
  endif()
  string(REPLACE ";" "\\;" listing "${listing}")
  string(REPLACE "\n" ";" lines "${listing}")
  set(symbols "")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[0-9a-fA-F]* [WVu] (.*)$")
      set(symbol "${CMAKE_MATCH_1}")
      # Compiler-runtime helpers, not code of the translation unit: the personality routine
      # reference (GCC, clang) and clang's terminate trampoline for noexcept functions.
      if(NOT symbol MATCHES "^(DW\\.ref\\.__gxx_personality_v0|__clang_call_terminate)$")
        list(APPEND symbols "${symbol}")
      endif()
    endif()
  endforeach()
  set(${out} "${symbols}" PARENT_SCOPE)
endfunction()

if(DEFINED OBJECTS)
  string(REPLACE "," ";" objects "${OBJECTS}")
  set(leaks 0)
  set(checked 0)
  foreach(object IN LISTS objects)
    weak_symbols(${object} symbols)
    foreach(symbol IN LISTS symbols)
      if(DEFINED FILTER AND NOT symbol MATCHES "${FILTER}")
        continue()
      endif()
      math(EXPR checked "${checked} + 1")
      if(NOT symbol MATCHES "${TAGS}")
        message(SEND_ERROR "untagged weak symbol in ${object}: ${symbol}")
        math(EXPR leaks "${leaks} + 1")
      endif()
    endforeach()
  endforeach()
  message(STATUS "${checked} weak symbols checked against '${TAGS}', ${leaks} leaks")
  if(checked EQUAL 0)
    message(FATAL_ERROR "no weak symbols found: the check would pass vacuously")
  endif()
endif()

if(DEFINED DISJOINT)
  string(REPLACE "," ";" objects "${DISJOINT}")
  set(seen "")
  foreach(object IN LISTS objects)
    weak_symbols(${object} symbols)
    list(REMOVE_DUPLICATES symbols)
    foreach(symbol IN LISTS symbols)
      if(symbol IN_LIST seen)
        message(SEND_ERROR "weak symbol defined by two per-ISA objects: ${symbol}")
      endif()
    endforeach()
    list(APPEND seen ${symbols})
  endforeach()
  list(LENGTH objects count)
  message(STATUS "${count} per-ISA objects share no weak symbol")
endif()
