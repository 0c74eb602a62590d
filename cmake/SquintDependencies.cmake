# SquintDependencies.cmake: where squint's build-time dependencies come from.
#
# An installed package always wins (FIND_PACKAGE_ARGS makes FetchContent call find_package first);
# only when none is found is a pinned release archive downloaded. That keeps offline builds on
# distribution packages working and gives users elsewhere a build without manual installs.
include(FetchContent)
include(${CMAKE_CURRENT_LIST_DIR}/SquintXsimd.cmake)

# xsimd is the one dependency of the squint target. 8.1 (Debian bookworm) through 14 work.
set(SQUINT_XSIMD_INCLUDE_DIR "" CACHE PATH
    "Use the xsimd headers under this directory (holding xsimd/xsimd.hpp) instead of a package")
if(SQUINT_XSIMD_INCLUDE_DIR)
  add_library(xsimd INTERFACE IMPORTED)
  set_target_properties(xsimd PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${SQUINT_XSIMD_INCLUDE_DIR})
else()
  FetchContent_Declare(xsimd
    URL https://github.com/xtensor-stack/xsimd/archive/refs/tags/13.2.0.tar.gz
    URL_HASH SHA256=edd8cd3d548c185adc70321c53c36df41abe64c1fe2c67bc6d93c3ecda82447a
    FIND_PACKAGE_ARGS NAMES xsimd)
  FetchContent_MakeAvailable(xsimd)
  squint_repair_xsimd_target()
endif()

# Eigen is the float engine of squint::nn (the FP32 layers and the reference they are measured
# against) and the matrix type of squint/eigen.hpp. 3.3 (Debian: libeigen3-dev 3.4) or newer.
set(EIGEN_BUILD_DOC OFF)
set(EIGEN_BUILD_TESTING OFF)
set(EIGEN_BUILD_PKGCONFIG OFF)
FetchContent_Declare(Eigen3
  URL https://gitlab.com/libeigen/eigen/-/archive/3.4.0/eigen-3.4.0.tar.gz
  URL_HASH SHA256=8586084f71f9bde545ee7fa6d00288b264a2b7ac3607b974e54d13e7162c1c72
  FIND_PACKAGE_ARGS 3.3 NAMES Eigen3)
FetchContent_MakeAvailable(Eigen3)

if(SQUINT_BUILD_TESTS)
  set(INSTALL_GTEST OFF)
  set(BUILD_GMOCK OFF)
  FetchContent_Declare(GTest
    URL https://github.com/google/googletest/archive/refs/tags/v1.14.0.tar.gz
    URL_HASH SHA256=8ad598c73ad796e0d8280b082cebd82a630d73e73cd3c70057938a6501bba5d7
    FIND_PACKAGE_ARGS NAMES GTest)
  FetchContent_MakeAvailable(GTest)
endif()

if(SQUINT_BUILD_BENCHMARKS)
  set(BENCHMARK_ENABLE_TESTING OFF)
  set(BENCHMARK_ENABLE_INSTALL OFF)
  FetchContent_Declare(benchmark
    URL https://github.com/google/benchmark/archive/refs/tags/v1.8.3.tar.gz
    URL_HASH SHA256=6bc180a57d23d4d9515519f92b0c83d61b05b5bab188961f36ac7b06b0d9e9ce
    FIND_PACKAGE_ARGS NAMES benchmark)
  FetchContent_MakeAvailable(benchmark)
endif()
