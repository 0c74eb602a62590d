# check_disassembly.cmake: a per-ISA object really contains that ISA's instructions.
#
#   cmake -DOBJDUMP=<objdump> -DOBJECTS=<obj>[,<obj>...] -DEXPECT=<regex>[,<regex>...] -P check_disassembly.cmake
#
# For ISAs this machine cannot run (AVX-512 here), this is the check that the kernels were
# compiled for them at all: each EXPECT pattern must match some disassembled instruction line.
cmake_minimum_required(VERSION 3.25)
string(REPLACE "," ";" objects "${OBJECTS}")
string(REPLACE "," ";" patterns "${EXPECT}")
set(text "")
foreach(object IN LISTS objects)
  execute_process(COMMAND ${OBJDUMP} -d --no-show-raw-insn ${object} OUTPUT_VARIABLE listing RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "objdump failed on ${object}")
  endif()
  string(APPEND text "${listing}")
endforeach()
set(missing 0)
foreach(pattern IN LISTS patterns)
  if(text MATCHES "${pattern}")
    message(STATUS "found: ${pattern}")
  else()
    message(SEND_ERROR "no instruction matches '${pattern}'")
    math(EXPR missing "${missing} + 1")
  endif()
endforeach()
if(missing GREATER 0)
  message(FATAL_ERROR "${missing} expected instruction patterns missing")
endif()
