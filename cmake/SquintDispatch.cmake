# SquintDispatch.cmake: opt-in runtime dispatch — one binary that runs the best kernels each CPU has.
#
#   squint_add_runtime_dispatch(<target> [ARCHS avx512_vnni avx2 sse2 ...])
#
# compiles one small translation unit per arch family (and per arch with GEMM micro-kernels of
# its own) with that arch's flags (each explicitly instantiates squint's kernels for its own
# arch tag only), adds the objects to <target>, and
# writes squint_dispatch_config.hpp, which squint/dispatch.hpp reads to declare those kernels
# and to pick among them at run time. Without ARCHS, every arch of the target processor is used.
# The object libraries are listed in <target>'s SQUINT_DISPATCH_OBJECTS property.
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/SquintArchFlags.cmake)

function(squint_add_runtime_dispatch target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "ARCHS")
  if(NOT ARG_ARCHS)
    squint_default_archs(ARG_ARCHS)
  endif()
  set(known avx512_vnni avx512bw avx2_vnni avx2 sse41 sse2 neon64_i8mm neon64_dotprod neon64 scalar)
  set(archs "")
  set(families "")
  foreach(arch IN LISTS ARG_ARCHS)
    if(NOT arch IN_LIST known)
      message(FATAL_ERROR "squint_add_runtime_dispatch: unknown arch '${arch}' (known: ${known})")
    endif()
    list(APPEND archs ${arch})
    squint_arch_family(${arch} family)
    list(APPEND families ${family})
  endforeach()
  list(APPEND archs scalar)
  list(APPEND families scalar)
  list(REMOVE_DUPLICATES archs)
  list(REMOVE_DUPLICATES families)

  # The GEMM has micro-kernels of its own for these archs (each in its arch's translation unit).
  set(gemm_known avx512_vnni avx512bw avx2_vnni avx2 neon64_i8mm neon64_dotprod neon64 scalar)
  set(gemm_archs "")
  foreach(arch IN LISTS archs)
    if(arch IN_LIST gemm_known)
      list(APPEND gemm_archs ${arch})
    endif()
  endforeach()
  set(units ${families} ${gemm_archs})
  list(REMOVE_DUPLICATES units)

  set(dir ${CMAKE_CURRENT_BINARY_DIR}/squint_dispatch/${target})
  set(objects "")
  foreach(unit IN LISTS units)
    set(SQUINT_ARCH ${unit})
    set(SQUINT_TU_BODY "")
    if(unit IN_LIST families)
      string(APPEND SQUINT_TU_BODY "SQUINT_INSTANTIATE_KERNELS(::squint::arch::${unit})\n")
    endif()
    if(unit IN_LIST gemm_archs)
      string(APPEND SQUINT_TU_BODY "SQUINT_INSTANTIATE_GEMM_KERNELS(::squint::arch::${unit})\n")
    endif()
    configure_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/kernels_tu.cpp.in ${dir}/kernels_${unit}.cpp @ONLY)
    set(lib ${target}_squint_${unit})
    add_library(${lib} OBJECT ${dir}/kernels_${unit}.cpp)
    target_link_libraries(${lib} PRIVATE squint::squint)
    squint_arch_flags(${unit} flags)
    # Always optimized, Debug builds included: at -O0 xsimd emits its register wrappers for the
    # base archs (sse2 under sse41, avx under avx2) out of line, weak and untagged, and the
    # linker could hand the baseline path a copy built with the wider flags.
    # No FMA contraction: a kernel's a * b + c rounds twice on every ISA, as the reference does.
    # Debug info stops at line tables (-g1), all that optimized code keeps usefully and all a
    # sanitizer's stack trace reads; full -g makes these objects half again as slow to compile.
    if(MSVC AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
      list(APPEND flags /O2)
    else()
      list(APPEND flags -O2 -ffp-contract=off $<$<CONFIG:Debug,RelWithDebInfo>:-g1>)
    endif()
    target_compile_options(${lib} PRIVATE ${flags})
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:${lib}>)
    list(APPEND objects ${lib})
  endforeach()

  set(SQUINT_DISPATCH_ARCH_LIST "")
  foreach(arch IN LISTS archs)
    string(APPEND SQUINT_DISPATCH_ARCH_LIST " SQUINT_X(::squint::arch::${arch})")
  endforeach()
  set(SQUINT_DISPATCH_FAMILY_LIST "")
  set(SQUINT_DISPATCH_FAMILY_TYPES "")
  foreach(family IN LISTS families)
    string(APPEND SQUINT_DISPATCH_FAMILY_LIST " SQUINT_X(::squint::arch::${family})")
    if(SQUINT_DISPATCH_FAMILY_TYPES)
      string(APPEND SQUINT_DISPATCH_FAMILY_TYPES ", ")
    endif()
    string(APPEND SQUINT_DISPATCH_FAMILY_TYPES "::squint::arch::${family}")
  endforeach()
  set(SQUINT_DISPATCH_GEMM_LIST "")
  set(SQUINT_DISPATCH_GEMM_TYPES "")
  foreach(arch IN LISTS gemm_archs)
    string(APPEND SQUINT_DISPATCH_GEMM_LIST " SQUINT_X(::squint::arch::${arch})")
    if(SQUINT_DISPATCH_GEMM_TYPES)
      string(APPEND SQUINT_DISPATCH_GEMM_TYPES ", ")
    endif()
    string(APPEND SQUINT_DISPATCH_GEMM_TYPES "::squint::arch::${arch}")
  endforeach()
  configure_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/dispatch_config.hpp.in ${dir}/squint_dispatch_config.hpp @ONLY)
  target_include_directories(${target} PRIVATE ${dir})
  set_property(TARGET ${target} APPEND PROPERTY SQUINT_DISPATCH_OBJECTS ${objects})
endfunction()
