# Shared CMake helpers.
#
# dreamfleet_test_timeout(VAR) scales the test timeout in VAR (seconds) for the sanitizer build
# (DREAMFLEET_FUZZ): the LibTorch tests run 2-8x slower there (local_trainer_test: 20 s -> 170 s),
# so 3x, at most 1800 s, inside the 2400 s of the test that runs them all (sanitizer_tests).
function(dreamfleet_test_timeout var)
  if(DREAMFLEET_FUZZ)
    math(EXPR scaled "${${var}} * 3")
    if(scaled GREATER 1800)
      set(scaled 1800)
    endif()
    set(${var} ${scaled} PARENT_SCOPE)
  endif()
endfunction()

# dreamfleet_add_test(NAME SOURCES a.cc [b.cc] LIBS lib... [LABELS unit|integration|slow]
#                     [TIMEOUT seconds] [ENV VAR=VALUE ...])
# builds one GoogleTest binary into build/bin/ and registers it with CTest under its labels.
function(dreamfleet_add_test name)
  if(NOT DREAMFLEET_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ENV" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gmock GTest::gtest GTest::gtest_main)
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  dreamfleet_test_timeout(T_TIMEOUT)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "DREAMFLEET_SOURCE_DIR=${PROJECT_SOURCE_DIR};DREAMFLEET_BIN_DIR=${CMAKE_BINARY_DIR}/bin;${T_ENV}")
endfunction()

# dreamfleet_embed_file(TARGET_VAR SYMBOL file) generates a .cc defining
# `extern const char SYMBOL[]` with the file's contents (used for the embedded default config).
function(dreamfleet_embed_file out_var symbol file)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${symbol}.cc)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${file} -DOUT=${out} -DSYMBOL=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_file.cmake
    DEPENDS ${file} ${PROJECT_SOURCE_DIR}/cmake/embed_file.cmake
    COMMENT "Embedding ${file}")
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()

# dreamfleet_reuse_torch_pch(TARGET): compiles TARGET with dreamfleet_dreamer's precompiled
# <torch/torch.h> (~20 s saved per translation unit). GCC rejects a PCH built with -fPIC in a
# -fPIE compile, so the target is built with the library's flag.
function(dreamfleet_reuse_torch_pch target)
  if(NOT TARGET ${target})
    return()
  endif()
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
  target_compile_options(${target} PRIVATE -fPIC)
  target_precompile_headers(${target} REUSE_FROM dreamfleet_dreamer)
endfunction()
