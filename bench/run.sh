#!/usr/bin/env bash
# make bench: runs the benchmarks built by the release preset (make bench builds first)
# and writes bench/results/<YYYY-MM-DD>-<host>.md and .json. See bench/README.md.
#
# Environment:
#   CORDON_BENCH_BIN     directory of the benchmark binaries (default: build/bin)
#   CORDON_BENCH_SIZES   rule-set sizes (default: 1000,10000,50000)
#   CORDON_BENCH_ROUNDS  interleaved runs per variant (default: 7)
#   CORDON_BENCH_PASSES  passes over the 64Ki-tuple trace per run (default: 16)
#   CORDON_BENCH_TEST_ACL_RUNS  dpdk-test-acl runs per algorithm and size (default: 3;
#                        each one rebuilds the rte_acl context: ~6 s at 50k rules)
#   CORDON_BENCH_RT      1 (default): run on CPU 0 under SCHED_FIFO when allowed, so
#                        other processes on a shared machine cannot preempt the timed
#                        loops (the kernel's RT throttling still leaves them 5%); 0: don't.
#   CORDON_BENCH_OUT     results directory (default: bench/results)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORDON_BENCH_BIN:-$root/build/bin}
sizes=${CORDON_BENCH_SIZES:-1000,10000,50000}
rounds=${CORDON_BENCH_ROUNDS:-7}
passes=${CORDON_BENCH_PASSES:-16}
test_acl_runs=${CORDON_BENCH_TEST_ACL_RUNS:-3}
out=${CORDON_BENCH_OUT:-$root/bench/results}

for b in cordon_bench_classify cordon_bench_engine_v3; do
  if [[ ! -x $bin/$b ]]; then
    echo "bench/run.sh: $bin/$b not found; build the release preset first (make bench)" >&2
    exit 1
  fi
done

prefix=(taskset -c 0)
if [[ ${CORDON_BENCH_RT:-1} != 0 ]] && chrt -f 1 true 2>/dev/null; then
  prefix=(chrt -f 1 taskset -c 0)
else
  echo "bench/run.sh: running without SCHED_FIFO; figures on a busy machine will be noisy" >&2
fi

date=$(date +%F)
host=$(hostname -s)
work=$(mktemp -d /tmp/cordon-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

echo "bench: engine built for x86-64-v3 (sizes $sizes, $rounds runs x $passes passes)" >&2
"${prefix[@]}" "$bin/cordon_bench_engine_v3" --sizes="$sizes" --rounds="$rounds" \
  --passes="$passes" --out="$work/engine-v3.txt"

echo "bench: engine vs rte_acl vs dpdk-test-acl" >&2
status=0
"${prefix[@]}" "$bin/cordon_bench_classify" --sizes="$sizes" --rounds="$rounds" \
  --passes="$passes" --test-acl-runs="$test_acl_runs" --engine-v3="$work/engine-v3.txt" \
  --workdir="$work" \
  --host="$host" --date="$date" --md="$out/$date-$host.md" --json="$out/$date-$host.json" ||
  status=$?

echo >&2
echo "bench: results in $out/$date-$host.md and .json" >&2
if [[ $status -eq 2 ]]; then
  echo "bench: VERDICT MISMATCHES between classifiers; see the report" >&2
fi
exit $status
