#!/usr/bin/env bash
# run-fuzzer.sh FUZZER WORKDIR CORPUS SECONDS [DICTIONARY]
# Runs a libFuzzer target for a bounded time. New inputs land in WORKDIR, never in the
# committed CORPUS; a crash leaves its reproducer in WORKDIR and fails the test. The
# coverage profile of the run (the fuzz build is instrumented) goes to WORKDIR/fuzz.profraw.
set -euo pipefail
fuzzer=$1 work=$2 corpus=$3 seconds=$4 dict=${5:-}
mkdir -p "$work/new" "$work/artifacts"
rm -f "$work/fuzz.profraw"
export LLVM_PROFILE_FILE="$work/fuzz.profraw"
exec "$fuzzer" ${dict:+-dict="$dict"} -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/new" "$corpus"
