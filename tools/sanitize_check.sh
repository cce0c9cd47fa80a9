#!/usr/bin/env bash
# Builds the test suite with AddressSanitizer (LeakSanitizer included) and
# UndefinedBehaviorSanitizer in Debug, and runs the fast tests there: every test not tagged
# [slow] (the slow ones run whole models at full size; the fast ones reach the same code at small
# sizes). Any memory error, leak or undefined behaviour fails the test that hit it.
#   bash tools/sanitize_check.sh            (build directory: build-asan/)
# Debug here is -O1 rather than -O0: the sanitizers' checks stay, the suite runs in minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" -DEVIT_SANITIZE=ON \
  -DEVIT_CUDA=OFF -DEVIT_BUILD_BENCH=OFF -DEVIT_WERROR=ON > /dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
./build-asan/evit_tests "~[slow]" --durations no
