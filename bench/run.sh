#!/usr/bin/env bash
# make bench: runs the benchmarks built by the release preset (make bench builds first)
# and writes bench/results/<YYYY-MM-DD>-<host>.md and .json. See bench/README.md.
#
#   bench/run.sh [all|classify|pipeline|mix] (default: all)
#     classify  part 1: the engine's classifier vs rte_acl and dpdk-test-acl (rewrites the
#               day's report, keeping a pipeline section already in it)
#     pipeline  part 2: the full pipeline (cordon-dataplane) vs DPDK's l3fwd --lookup=acl vs
#               testpmd io, on net_pcap -> net_null (adds or replaces its section)
#     mix       part 3: one engine worker on a clinical traffic mix (DICOM, HL7, SMB2, RDP,
#               HTTP, UDP/ICMP in IMIX sizes), inspection on vs off (adds or replaces its
#               section; the other parts keep it)
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
#   CORDON_BENCH_NAME    report file name without extension (default: <date>-<host>)
# Part 2 (pipeline):
#   CORDON_BENCH_PIPE_RUNS     interleaved runs per program and pcap (default: 5)
#   CORDON_BENCH_PIPE_SECONDS  measured seconds per run (default: 4), after
#   CORDON_BENCH_PIPE_WARMUP   seconds of warm-up after the first forwarded packet (default: 1)
#   CORDON_BENCH_PIPE_CPU      CPU of the measured lcore (default: 1; the harness sits on 0)
#   CORDON_BENCH_PIPE_IMIX     1 (default): also the IMIX pcap; 0: 64-byte frames only
#   CORDON_BENCH_PIPE_NEW_FLOWS 1 (default): also cordon with every packet a new flow
#   CORDON_BENCH_PIPE_TWO_CORES 1 (default): also the 64-byte pcap on 2 worker cores
#   CORDON_BENCH_PIPE_FLOWS, CORDON_BENCH_PIPE_RULES   (defaults: 100000, 10000)
#   CORDON_BENCH_PIPE_MEM      EAL -m in MB, --no-huge (default: 512)
#   CORDON_BENCH_L3FWD         an l3fwd binary to use instead of building one
#                              (bench/pipeline/build_l3fwd.sh, into build/bench-ref/l3fwd)
# Parts 4, 5, 7 (netns; root, namespaces bench-*):
#   CORDON_BENCH_NETNS_PARTS   latency,swap,kernel (default: all three)
#   CORDON_BENCH_NETNS_KERNEL_RUNS  interleaved rounds of bridge / nft / cordon (default 5)
#   CORDON_BENCH_NETNS_KERNEL_PPS   offered load there (default 0: half the zero-loss rate)
#   CORDON_BENCH_NETNS_SWAPS   policy swaps under load (default 5)
# Part 3 (mix):
#   CORDON_BENCH_MIX_ROUNDS    interleaved runs per variant (default: CORDON_BENCH_ROUNDS)
#   CORDON_BENCH_MIX_PASSES    passes over the ~43k-frame sequence per run (default: 8)
#   CORDON_BENCH_SOURCE        what to call the measured build in the report (default:
#                              git describe --always --dirty of this tree)
set -euo pipefail

what=${1:-all}
case $what in
  all | classify | pipeline | mix | netns) ;;
  *)
    echo "usage: bench/run.sh [all|classify|pipeline|mix|netns]" >&2
    exit 1
    ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORDON_BENCH_BIN:-$root/build/bin}
sizes=${CORDON_BENCH_SIZES:-1000,10000,50000}
rounds=${CORDON_BENCH_ROUNDS:-7}
passes=${CORDON_BENCH_PASSES:-16}
test_acl_runs=${CORDON_BENCH_TEST_ACL_RUNS:-3}
out=${CORDON_BENCH_OUT:-$root/bench/results}

need=()
[[ $what != all && $what != classify ]] || need+=(cordon_bench_classify cordon_bench_engine_v3)
[[ $what != all && $what != pipeline ]] ||
  need+=(cordon-dataplane cordon_bench_pipeline_gen cordon_bench_pool_shim.so)
[[ $what != all && $what != mix ]] || need+=(cordon_bench_mix)
[[ $what != all && $what != netns ]] || need+=(cordon-dataplane cordon_bench_pipeline_gen)
for b in "${need[@]}"; do
  if [[ ! -e $bin/$b ]]; then
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
name=${CORDON_BENCH_NAME:-$date-$host}
work=$(mktemp -d /tmp/cordon-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# Parts 1 and 2 rewrite the files in their own ways: part 3's section is carried over.
[[ -f $out/$name.md ]] && cp "$out/$name.md" "$work/previous-mix.md"
[[ -f $out/$name.json ]] && cp "$out/$name.json" "$work/previous-mix.json"

status=0
if [[ $what == all || $what == classify ]]; then
  # The classifier bench rewrites the day's report: keep a pipeline section already in it.
  [[ -f $out/$name.md ]] && cp "$out/$name.md" "$work/previous.md"
  [[ -f $out/$name.json ]] && cp "$out/$name.json" "$work/previous.json"

  echo "bench: engine built for x86-64-v3 (sizes $sizes, $rounds runs x $passes passes)" >&2
  "${prefix[@]}" "$bin/cordon_bench_engine_v3" --sizes="$sizes" --rounds="$rounds" \
    --passes="$passes" --out="$work/engine-v3.txt"

  echo "bench: engine vs rte_acl vs dpdk-test-acl" >&2
  "${prefix[@]}" "$bin/cordon_bench_classify" --sizes="$sizes" --rounds="$rounds" \
    --passes="$passes" --test-acl-runs="$test_acl_runs" --engine-v3="$work/engine-v3.txt" \
    --workdir="$work" \
    --host="$host" --date="$date" --md="$out/$name.md" --json="$out/$name.json" ||
    status=$?
  if [[ $what == classify && -f $work/previous.md && -f $work/previous.json ]]; then
    python3 "$root/bench/pipeline/pipeline.py" merge --from-md "$work/previous.md" \
      --from-json "$work/previous.json" --md "$out/$name.md" --json "$out/$name.json"
  fi
fi

pipe_status=0
if [[ $what == all || $what == pipeline ]]; then
  echo "bench: full pipeline: cordon-dataplane vs l3fwd --lookup=acl vs testpmd io" >&2
  l3fwd=${CORDON_BENCH_L3FWD:-}
  if [[ -z $l3fwd ]]; then
    l3fwd=$("$root/bench/pipeline/build_l3fwd.sh" "$root/build/bench-ref/l3fwd")
  fi
  source_note=${CORDON_BENCH_SOURCE:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)}
  # The harness only sleeps and reads counters: on CPU 0, and under SCHED_FIFO one priority
  # above the measured programs, so its telemetry requests go out together on a busy machine.
  harness=(taskset -c 0)
  rt=0
  if [[ ${CORDON_BENCH_RT:-1} != 0 ]] && chrt -f 2 true 2>/dev/null; then
    harness=(chrt -f 2 taskset -c 0)
    rt=1
  fi
  "${harness[@]}" python3 "$root/bench/pipeline/pipeline.py" run --bin="$bin" --l3fwd="$l3fwd" \
    --work="$work/pipeline" --md="$out/$name.md" --json="$out/$name.json" \
    --date="$date" --host="$host" --source="$source_note" --rt="$rt" \
    --runs="${CORDON_BENCH_PIPE_RUNS:-5}" --seconds="${CORDON_BENCH_PIPE_SECONDS:-4}" \
    --warmup="${CORDON_BENCH_PIPE_WARMUP:-1}" --cpu="${CORDON_BENCH_PIPE_CPU:-1}" \
    --imix="${CORDON_BENCH_PIPE_IMIX:-1}" --new-flows="${CORDON_BENCH_PIPE_NEW_FLOWS:-1}" \
    --two-cores="${CORDON_BENCH_PIPE_TWO_CORES:-1}" \
    --flows="${CORDON_BENCH_PIPE_FLOWS:-100000}" --rules="${CORDON_BENCH_PIPE_RULES:-10000}" \
    --mem-mb="${CORDON_BENCH_PIPE_MEM:-512}" || pipe_status=$?
fi

mix_status=0
if [[ $what == all || $what == mix ]]; then
  echo "bench: clinical traffic mix, one engine worker, inspection on vs off" >&2
  "${prefix[@]}" "$bin/cordon_bench_mix" --rounds="${CORDON_BENCH_MIX_ROUNDS:-$rounds}" \
    --passes="${CORDON_BENCH_MIX_PASSES:-8}" --md="$work/mix.md" --json="$work/mix.json" ||
    mix_status=$?
  if [[ -f $work/mix.md && -f $work/mix.json ]]; then
    python3 "$root/bench/mix_report.py" put --md "$out/$name.md" \
      --json "$out/$name.json" --section-md "$work/mix.md" --section-json "$work/mix.json"
  fi
elif [[ -f $work/previous-mix.md && -f $work/previous-mix.json ]]; then
  python3 "$root/bench/mix_report.py" keep --from-md "$work/previous-mix.md" \
    --from-json "$work/previous-mix.json" --md "$out/$name.md" --json "$out/$name.json"
fi

netns_status=0
if [[ $what == all || $what == netns ]]; then
  # Parts 4, 5 and 7 (bench/netns/netbench.py): namespaces bench-src/-mid/-dst, removed by
  # the script on exit; tcpreplay paces. Needs root.
  echo "bench: latency, policy swap under load, nftables vs cordon (netns)" >&2
  mkdir -p "$work/netns/gen"
  "$bin/cordon_bench_pipeline_gen" --out="$work/netns/gen" \
    --rules="${CORDON_BENCH_PIPE_RULES:-10000}" --flows="${CORDON_BENCH_PIPE_FLOWS:-100000}"
  /usr/bin/python3 "$root/bench/netns/netbench.py" run --bin="$bin" --gen="$work/netns/gen" \
    --work="$work/netns" --md="$out/$name.md" --json="$out/$name.json" \
    --parts="${CORDON_BENCH_NETNS_PARTS:-latency,swap,kernel}" \
    --kernel-runs="${CORDON_BENCH_NETNS_KERNEL_RUNS:-5}" \
    --kernel-pps="${CORDON_BENCH_NETNS_KERNEL_PPS:-0}" \
    --swaps="${CORDON_BENCH_NETNS_SWAPS:-5}" || netns_status=$?
fi

# Part 6 of the issue: PNG charts from the .json, linked from the .md (python3-matplotlib).
if [[ -f $out/$name.json && -f $out/$name.md ]]; then
  /usr/bin/python3 "$root/bench/charts.py" --json "$out/$name.json" --md "$out/$name.md" ||
    echo "bench: no charts (python3-matplotlib missing?)" >&2
fi

echo >&2
echo "bench: results in $out/$name.md and .json" >&2
if [[ $status -eq 2 ]]; then
  echo "bench: VERDICT MISMATCHES between classifiers; see the report" >&2
fi
if [[ $pipe_status -ne 0 ]]; then
  echo "bench: some pipeline runs failed; see the report (Failed runs)" >&2
  [[ $status -ne 0 ]] || status=3
fi
if [[ $mix_status -ne 0 ]]; then
  echo "bench: the clinical mix run failed or a frame was not forwarded; see the report" >&2
  [[ $status -ne 0 ]] || status=4
fi
if [[ $netns_status -ne 0 ]]; then
  echo "bench: the netns benchmarks reported errors; see the report" >&2
  [[ $status -ne 0 ]] || status=5
fi
exit $status
