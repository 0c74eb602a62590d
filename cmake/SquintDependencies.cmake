# SquintDependencies.cmake: where squint's build-time dependencies come from.
#
# An installed package always wins (FIND_PACKAGE_ARGS makes FetchContent call find_package first);
# only when none is found is a pinned release archive downloaded. That keeps offline builds on
# distribution packages working and gives users elsewhere a build without manual installs.
include(FetchContent)

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
