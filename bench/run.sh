#!/usr/bin/env bash
# make bench: runs the benchmarks built by the release preset (make bench builds first)
# and writes bench/results/<YYYY-MM-DD>-<host>.md and .json. See bench/README.md.
#
#   bench/run.sh [all|classify|pipeline|mix|netns|scale] (default: all)
#     classify  part 1: the engine's classifier vs rte_acl and dpdk-test-acl (rewrites the
#               day's report, keeping a pipeline section already in it)
#     pipeline  part 2: the full pipeline (cordon-dataplane) vs DPDK's l3fwd --lookup=acl vs
#               testpmd io, on net_pcap -> net_null (adds or replaces its section)
#     mix       part 3: one engine worker on a clinical traffic mix (DICOM, HL7, SMB2, RDP,
#               HTTP, UDP/ICMP in IMIX sizes), inspection on vs off (adds or replaces its
#               section; the other parts keep it)
#     netns     parts 4, 5, 7: latency, policy swap under load, nftables (bench/netns)
#     scale     part 6: flow-table scale, 10k/100k/1M flows and a flood of new flows
#               (bench/scale/scale.py)
# Every invocation prints the wall time of each part it ran and writes it into the report's
# "Run time" section (parts run alone keep their latest time there).
#
# Environment:
#   CORDON_BENCH_BIN     directory of the benchmark binaries (default: build/bin)
#   CORDON_BENCH_SIZES   rule-set sizes (default: 1000,10000,50000)
#   CORDON_BENCH_ROUNDS  interleaved runs per variant (default: 7)
#   CORDON_BENCH_PASSES  passes over the 64Ki-tuple trace per run (default: 16)
#   CORDON_BENCH_TEST_ACL_RUNS  dpdk-test-acl runs per algorithm and size (default: 1; a
#                        cross-check of the in-process rte_acl figures, and each run
#                        rebuilds the rte_acl context: ~6 s at 50k rules)
#   CORDON_BENCH_RT      1 (default): run on CPU 0 under SCHED_FIFO when allowed, so
#                        other processes on a shared machine cannot preempt the timed
#                        loops (the kernel's RT throttling still leaves them 5%); 0: don't.
#   CORDON_BENCH_LOCK    a lock file (e.g. /tmp/cordon-bench.lock) taken with flock for each
#                        part and released between parts, so that a whole run on a shared
#                        machine never holds it for longer than one part (part times exclude
#                        the wait)
#   CORDON_BENCH_OUT     results directory (default: bench/results)
#   CORDON_BENCH_NAME    report file name without extension (default: <date>-<host>)
# Part 2 (pipeline):
#   CORDON_BENCH_PIPE_RUNS     interleaved runs per program and pcap (default: 5)
#   CORDON_BENCH_PIPE_SECONDS  measured seconds per run (default: 2), after
#   CORDON_BENCH_PIPE_WARMUP   seconds of warm-up after the first forwarded packet (default: 0.5)
#   CORDON_BENCH_PIPE_CPU      CPU of the measured lcore (default: 1; the harness sits on 0)
#   CORDON_BENCH_PIPE_IMIX     1 (default): also the IMIX pcap; 0: 64-byte frames only
#   CORDON_BENCH_PIPE_NEW_FLOWS 1 (default): also cordon with every packet a new flow
#   CORDON_BENCH_PIPE_TWO_CORES 1 (default): also the 64-byte pcap on 2 worker cores
#   CORDON_BENCH_PIPE_TCP      1 (default): also 100k established TCP connections (64-byte ACKs)
#   CORDON_BENCH_PIPE_FLOWS, CORDON_BENCH_PIPE_RULES   (defaults: 100000, 10000)
#   CORDON_BENCH_PIPE_MEM      EAL -m in MB, --no-huge (default: 512)
#   CORDON_BENCH_L3FWD         an l3fwd binary to use instead of building one
#                              (bench/pipeline/build_l3fwd.sh, into build/bench-ref/l3fwd)
# Parts 4, 5, 7 (netns; root, namespaces bench-*; lifts the kernel's RT throttling for the
# run and restores it, bench/README.md "Why frames were lost after an overload"):
#   CORDON_BENCH_NETNS_PARTS   latency,swap,kernel (default: all three)
#   CORDON_BENCH_NETNS_KERNEL_RUNS  interleaved rounds of bridge / nft / cordon (default 5)
#   CORDON_BENCH_NETNS_KERNEL_PPS   offered load there (default 0: half the zero-loss rate)
#   CORDON_BENCH_NETNS_SWAPS   policy swaps under load (default 5)
#   CORDON_BENCH_NETNS_WARMUP  seconds of warm-up before the latency and swap runs (default 1)
#   CORDON_BENCH_NETNS_KERNEL_SECONDS  seconds per kernel-comparison run (default 2)
# Part 6 (scale):
#   CORDON_BENCH_SCALE_SIZES   concurrent flows (default: 10000,100000,1000000)
#   CORDON_BENCH_SCALE_RUNS    interleaved runs per program and size (default: 5)
#   CORDON_BENCH_SCALE_SECONDS, CORDON_BENCH_SCALE_WARMUP  (defaults: 2, 0.25 after two
#                              whole passes of the pcap)
#   CORDON_BENCH_SCALE_DATA_ROOM  mbuf data room in bytes for both programs (default 192;
#                              0: DPDK's 2176, which costs a 4 KiB page per mbuf)
#   CORDON_BENCH_SCALE_FLOOD   1 (default): also the flood; 0: not
#   CORDON_BENCH_SCALE_FLOOD_TABLE  table size of the flood run (default 65536)
# Part 3 (mix):
#   CORDON_BENCH_MIX_ROUNDS    interleaved runs per variant (default: CORDON_BENCH_ROUNDS)
#   CORDON_BENCH_MIX_PASSES    passes over the ~43k-frame sequence per run (default: 8)
#   CORDON_BENCH_SOURCE        what to call the measured build in the report (default:
#                              git describe --always --dirty of this tree)
set -euo pipefail

what=${1:-all}
case $what in
  all | classify | pipeline | mix | netns | scale) ;;
  *)
    echo "usage: bench/run.sh [all|classify|pipeline|mix|netns|scale]" >&2
    exit 1
    ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORDON_BENCH_BIN:-$root/build/bin}
sizes=${CORDON_BENCH_SIZES:-1000,10000,50000}
rounds=${CORDON_BENCH_ROUNDS:-7}
passes=${CORDON_BENCH_PASSES:-16}
test_acl_runs=${CORDON_BENCH_TEST_ACL_RUNS:-1}
out=${CORDON_BENCH_OUT:-$root/bench/results}

need=()
[[ $what != all && $what != classify ]] || need+=(cordon_bench_classify cordon_bench_engine_v3)
[[ $what != all && $what != pipeline ]] ||
  need+=(cordon-dataplane cordon_bench_pipeline_gen cordon_bench_pool_shim.so)
[[ $what != all && $what != mix ]] || need+=(cordon_bench_mix)
[[ $what != all && $what != netns ]] || need+=(cordon-dataplane cordon_bench_pipeline_gen)
[[ $what != all && $what != scale ]] ||
  need+=(cordon-dataplane cordon_bench_pipeline_gen cordon_bench_pool_shim.so)
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

# Part 1 rewrites the files: the sections of the other parts are carried over.
[[ -f $out/$name.md ]] && cp "$out/$name.md" "$work/previous-mix.md"
[[ -f $out/$name.json ]] && cp "$out/$name.json" "$work/previous-mix.json"

# Per-part wall time (issue 9: the whole run under 15 minutes), for the report's "Run time".
run_start=$SECONDS
timing=()
part_t0=0
part_load0=
part_begin() {
  if [[ -n ${CORDON_BENCH_LOCK:-} ]]; then
    exec 9>>"$CORDON_BENCH_LOCK"
    flock 9
  fi
  part_t0=$SECONDS
  part_epoch=$(date +%s)
  part_load0=$(cut -d' ' -f1-3 /proc/loadavg)
}
part_end() {
  local s=$((SECONDS - part_t0))
  timing+=(--part "$1=$s,$part_epoch,$part_load0,$(cut -d' ' -f1-3 /proc/loadavg)")
  echo "bench: part $1 took ${s} s" >&2
  if [[ -n ${CORDON_BENCH_LOCK:-} ]]; then
    flock -u 9
  fi
}

status=0
if [[ $what == all || $what == classify ]]; then
  part_begin
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
  if [[ $what == classify && -f $work/previous.md && -f $work/previous.json ]]; then
    for key in netns scale timing; do
      python3 "$root/bench/mix_report.py" keep --key "$key" --from-md "$work/previous.md" \
        --from-json "$work/previous.json" --md "$out/$name.md" --json "$out/$name.json"
    done
  fi
  part_end classify
fi

pipe_status=0
if [[ $what == all || $what == pipeline ]]; then
  part_begin
  echo "bench: full pipeline: cordon-dataplane vs l3fwd --lookup=acl vs testpmd io" >&2
  l3fwd=${CORDON_BENCH_L3FWD:-}
  if [[ -z $l3fwd ]]; then
    l3fwd=$("$root/bench/pipeline/build_l3fwd.sh" "$root/build/bench-ref/l3fwd")
  fi
  source_note=${CORDON_BENCH_SOURCE:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)}
  source "$root/bench/harness.sh"
  "${harness[@]}" python3 "$root/bench/pipeline/pipeline.py" run --bin="$bin" --l3fwd="$l3fwd" \
    --work="$work/pipeline" --md="$out/$name.md" --json="$out/$name.json" \
    --date="$date" --host="$host" --source="$source_note" --rt="$rt" \
    --runs="${CORDON_BENCH_PIPE_RUNS:-5}" --seconds="${CORDON_BENCH_PIPE_SECONDS:-2}" \
    --warmup="${CORDON_BENCH_PIPE_WARMUP:-0.5}" --cpu="${CORDON_BENCH_PIPE_CPU:-1}" \
    --imix="${CORDON_BENCH_PIPE_IMIX:-1}" --new-flows="${CORDON_BENCH_PIPE_NEW_FLOWS:-1}" \
    --two-cores="${CORDON_BENCH_PIPE_TWO_CORES:-1}" --tcp="${CORDON_BENCH_PIPE_TCP:-1}" \
    --flows="${CORDON_BENCH_PIPE_FLOWS:-100000}" --rules="${CORDON_BENCH_PIPE_RULES:-10000}" \
    --mem-mb="${CORDON_BENCH_PIPE_MEM:-512}" || pipe_status=$?
  part_end pipeline
fi

mix_status=0
if [[ $what == all || $what == mix ]]; then
  part_begin
  echo "bench: clinical traffic mix, one engine worker, inspection on vs off" >&2
  "${prefix[@]}" "$bin/cordon_bench_mix" --rounds="${CORDON_BENCH_MIX_ROUNDS:-$rounds}" \
    --passes="${CORDON_BENCH_MIX_PASSES:-8}" --md="$work/mix.md" --json="$work/mix.json" ||
    mix_status=$?
  if [[ -f $work/mix.md && -f $work/mix.json ]]; then
    python3 "$root/bench/mix_report.py" put --md "$out/$name.md" \
      --json "$out/$name.json" --section-md "$work/mix.md" --section-json "$work/mix.json"
  fi
  part_end mix
elif [[ -f $work/previous-mix.md && -f $work/previous-mix.json ]]; then
  python3 "$root/bench/mix_report.py" keep --from-md "$work/previous-mix.md" \
    --from-json "$work/previous-mix.json" --md "$out/$name.md" --json "$out/$name.json"
fi

netns_status=0
if [[ $what == all || $what == netns ]]; then
  # Parts 4, 5 and 7 (bench/netns/netbench.py): namespaces bench-src/-mid/-dst, removed by
  # the script on exit; tcpreplay paces. Needs root.
  part_begin
  echo "bench: latency, policy swap under load, nftables vs cordon (netns)" >&2
  mkdir -p "$work/netns/gen"
  "$bin/cordon_bench_pipeline_gen" --out="$work/netns/gen" \
    --rules="${CORDON_BENCH_PIPE_RULES:-10000}" --flows="${CORDON_BENCH_PIPE_FLOWS:-100000}"
  /usr/bin/python3 "$root/bench/netns/netbench.py" run --bin="$bin" --gen="$work/netns/gen" \
    --work="$work/netns" --md="$out/$name.md" --json="$out/$name.json" \
    --parts="${CORDON_BENCH_NETNS_PARTS:-latency,swap,kernel}" \
    --kernel-runs="${CORDON_BENCH_NETNS_KERNEL_RUNS:-5}" \
    --kernel-pps="${CORDON_BENCH_NETNS_KERNEL_PPS:-0}" \
    --swaps="${CORDON_BENCH_NETNS_SWAPS:-5}" --warmup="${CORDON_BENCH_NETNS_WARMUP:-1}" \
    --kernel-seconds="${CORDON_BENCH_NETNS_KERNEL_SECONDS:-2}" || netns_status=$?
  part_end netns
fi

scale_status=0
if [[ $what == all || $what == scale ]]; then
  # Part 6 (bench/scale/scale.py): like part 2, a SCHED_FIFO lcore on CPU 1 and the harness
  # on CPU 0.
  part_begin
  echo "bench: flow-table scale: 10k to 1M flows, and a flood of new flows (cordon vs testpmd io)" >&2
  source "$root/bench/harness.sh"
  "${harness[@]}" python3 "$root/bench/scale/scale.py" run --bin="$bin" --work="$work/scale" \
    --section-md="$work/scale.md" --section-json="$work/scale.json" --rt="$rt" \
    --source="${CORDON_BENCH_SOURCE:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)}" \
    --rules="${CORDON_BENCH_PIPE_RULES:-10000}" \
    --sizes="${CORDON_BENCH_SCALE_SIZES:-10000,100000,1000000}" \
    --runs="${CORDON_BENCH_SCALE_RUNS:-5}" --seconds="${CORDON_BENCH_SCALE_SECONDS:-2}" \
    --warmup="${CORDON_BENCH_SCALE_WARMUP:-0.25}" --cpu="${CORDON_BENCH_PIPE_CPU:-1}" \
    --data-room="${CORDON_BENCH_SCALE_DATA_ROOM:-192}" --flood="${CORDON_BENCH_SCALE_FLOOD:-1}" \
    --flood-table="${CORDON_BENCH_SCALE_FLOOD_TABLE:-65536}" || scale_status=$?
  if [[ -f $work/scale.md && -f $work/scale.json ]]; then
    python3 "$root/bench/mix_report.py" put --key scale --md "$out/$name.md" \
      --json "$out/$name.json" --section-md "$work/scale.md" --section-json "$work/scale.json"
  fi
  part_end scale
fi

# Part 6 of the issue: PNG charts from the .json, linked from the .md (python3-matplotlib).
if [[ -f $out/$name.json && -f $out/$name.md ]]; then
  part_begin
  /usr/bin/python3 "$root/bench/charts.py" --json "$out/$name.json" --md "$out/$name.md" ||
    echo "bench: no charts (python3-matplotlib missing?)" >&2
  part_end charts
  python3 "$root/bench/timing_report.py" --md "$out/$name.md" --json "$out/$name.json" \
    --what "$what" --wall "$((SECONDS - run_start))" "${timing[@]}"
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
if [[ $scale_status -ne 0 ]]; then
  echo "bench: some flow-table scale runs failed; see the report (Failed runs)" >&2
  [[ $status -ne 0 ]] || status=6
fi
exit $status
