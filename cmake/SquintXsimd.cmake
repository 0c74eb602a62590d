# SquintXsimd.cmake: makes an installed xsimd target usable as found.
#
# Debian bookworm's xsimd 8.1 export lists a bare "xtl" in INTERFACE_LINK_LIBRARIES without
# finding it, which turns into "-lxtl" at link time. xtl is only needed for xsimd's optional
# xtl complex support, which squint does not use: drop the name unless an xtl target exists.
include_guard(GLOBAL)

function(squint_repair_xsimd_target)
  if(TARGET xsimd AND NOT TARGET xtl)
    get_target_property(libs xsimd INTERFACE_LINK_LIBRARIES)
    if(libs)
      list(REMOVE_ITEM libs xtl)
      set_target_properties(xsimd PROPERTIES INTERFACE_LINK_LIBRARIES "${libs}")
    endif()
  endif()
endfunction()
