# Shared build settings and helper functions for Cordon targets.

option(CORDON_FUZZ "Build fuzz targets with libFuzzer (requires clang)" OFF)
set(CORDON_SANITIZE "" CACHE STRING "Sanitizers for every target, e.g. address,undefined or thread")
# The target ISA is chosen here, once, for all of our code. Debian's libdpdk.pc would
# add -march=corei7; we drop that flag and build for the x86-64-v2 baseline (the same
# class of CPU DPDK's package targets) so the appliance image runs on any supported
# server. bench/ compares against rte_acl, which picks its own ISA at run time; see
# bench/README.md.
set(CORDON_MARCH "x86-64-v2" CACHE STRING "Target ISA passed as -march")

find_package(PkgConfig REQUIRED)
pkg_check_modules(DPDK_PC REQUIRED libdpdk)
find_package(Boost 1.81 REQUIRED CONFIG)
find_package(GTest REQUIRED CONFIG)
find_package(Threads REQUIRED)

# DPDK as an imported target, without the -march that its pkg-config file adds.
# Included as SYSTEM headers: they are C headers that trip C++20 warnings.
set(_dpdk_cflags ${DPDK_PC_CFLAGS_OTHER})
list(FILTER _dpdk_cflags EXCLUDE REGEX "^-march=")
add_library(cordon_dpdk INTERFACE)
target_include_directories(cordon_dpdk SYSTEM INTERFACE ${DPDK_PC_INCLUDE_DIRS})
target_compile_options(cordon_dpdk INTERFACE ${_dpdk_cflags})
target_link_directories(cordon_dpdk INTERFACE ${DPDK_PC_LIBRARY_DIRS})

add_compile_options(-march=${CORDON_MARCH})
if(CORDON_SANITIZE)
  add_compile_options(-fsanitize=${CORDON_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${CORDON_SANITIZE})
endif()
if(CORDON_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CORDON_FUZZ needs clang (libFuzzer)")
  endif()
  # Source-based coverage too, so that each fuzzing run leaves a profile of what it
  # reached (tests/fuzz/coverage-report.sh turns the profiles into the report).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fprofile-instr-generate -fcoverage-mapping)
  add_link_options(-fsanitize=address,undefined -fprofile-instr-generate)
endif()

# Warnings as errors on everything we write.
function(cordon_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -Werror)
endfunction()

# cordon_unit_test(NAME SOURCES src... LIBS lib... LABELS label...)
# One ctest per GoogleTest binary; labels say what the test needs (unit, netns, ...).
function(cordon_unit_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  cordon_warnings(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  # Test data is found from the source tree, wherever the build directory is.
  target_compile_definitions(${name} PRIVATE CORDON_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT 600)
endfunction()

# cordon_fuzzer(NAME SOURCE src LIBS lib... CORPUS dir [DICT file])
# With CORDON_FUZZ: a libFuzzer binary, run for CORDON_FUZZ_SECONDS as a ctest labelled
# "fuzz" (new inputs go to the build tree, never into the committed corpus).
# Without: the same entry point linked with a replay driver that feeds every corpus
# file once, so crashes found earlier stay regression tests in every build.
set(CORDON_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz target runs in make test")
function(cordon_fuzzer name)
  cmake_parse_arguments(ARG "" "SOURCE;CORPUS;DICT" "LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCE})
  cordon_warnings(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS})
  if(CORDON_FUZZ)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    set(work ${CMAKE_BINARY_DIR}/fuzz-work/${name})
    add_test(NAME ${name}
             COMMAND ${CMAKE_COMMAND} -E env
                     ${CMAKE_SOURCE_DIR}/tests/fuzz/run-fuzzer.sh $<TARGET_FILE:${name}>
                     ${work} ${ARG_CORPUS} ${CORDON_FUZZ_SECONDS} ${ARG_DICT})
    set_tests_properties(${name} PROPERTIES LABELS "fuzz" TIMEOUT 900)
  else()
    target_sources(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.cpp)
    add_test(NAME ${name}-replay COMMAND ${name} ${ARG_CORPUS})
    set_tests_properties(${name}-replay PROPERTIES LABELS "unit" TIMEOUT 600)
  endif()
endfunction()
