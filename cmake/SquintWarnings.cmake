# SquintWarnings.cmake: the warning set squint's own targets (tests, benches, examples) build with.
option(SQUINT_WARNINGS_AS_ERRORS "Treat warnings in squint's own targets as errors" OFF)

function(squint_enable_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${SQUINT_WARNINGS_AS_ERRORS}>:/WX>)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
      $<$<BOOL:${SQUINT_WARNINGS_AS_ERRORS}>:-Werror>)
  endif()
endfunction()
