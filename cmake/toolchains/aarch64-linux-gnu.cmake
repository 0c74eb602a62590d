# aarch64-linux-gnu.cmake: cross-build for AArch64 with Debian's g++-aarch64-linux-gnu, tests run
# under qemu-aarch64 (the CPU model comes from QEMU_CPU: cortex-a57, neoverse-n1, max, ...).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)

# Debian registers libxsimd-dev for the build architecture only, but its headers are the same
# for every target: stage a copy, since adding the host's /usr/include would mix in host headers.
if(EXISTS /usr/include/xsimd/xsimd.hpp)
  file(COPY /usr/include/xsimd DESTINATION ${CMAKE_BINARY_DIR}/_xsimd_headers)
  set(SQUINT_XSIMD_INCLUDE_DIR ${CMAKE_BINARY_DIR}/_xsimd_headers)
endif()
# GoogleTest for the target, built from the sources Debian ships in the googletest package.
if(EXISTS /usr/src/googletest/CMakeLists.txt)
  set(FETCHCONTENT_SOURCE_DIR_GTEST /usr/src/googletest)
endif()
# Eigen is header-only: the build machine's package serves any target.
if(EXISTS /usr/share/eigen3/cmake/Eigen3Config.cmake)
  set(Eigen3_DIR /usr/share/eigen3/cmake CACHE PATH "Eigen's package (header-only, any architecture)")
endif()
