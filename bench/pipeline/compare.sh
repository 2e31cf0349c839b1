#!/usr/bin/env bash
# Paired comparison of cordon-dataplane builds on part 2's workload: l3fwd --lookup=acl and
# the build of each git revision given, then this tree's build (build/bin, as it is), in
# rotating rounds. For a change to the per-packet path, before it lands: a 13th-session
# commit made the whole pipeline 12 % slower through one added field (bench/README.md,
# "Comparing builds"), and the day's report alone, on a machine this noisy, did not show it.
#
#   bench/pipeline/compare.sh REV [REV...]
#
# Each revision is checked out as a detached worktree under build/bench-ref/revisions/<sha>
# and only cordon-dataplane and the pool shim are built there (ccache makes a rebuild
# cheap); the worktree stays for the next comparison. Prints a Markdown table of the
# medians and the per-round ratios.
#
# Environment: CORDON_BENCH_PIPE_RUNS (rounds, default 8), CORDON_BENCH_PIPE_PCAP (64,
# imix or tcp, default 64), CORDON_BENCH_PIPE_VARIANT (cordon: 100k established flows, the
# default; cordon_new: every packet a new flow), CORDON_BENCH_PIPE_SECONDS (2),
# CORDON_BENCH_PIPE_WARMUP (1), CORDON_BENCH_PIPE_CPU (1), CORDON_BENCH_L3FWD,
# CORDON_BENCH_RT, CORDON_BENCH_LOCK: as in bench/run.sh.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: bench/pipeline/compare.sh REV [REV...]" >&2
  exit 1
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$root/build/bin
for b in cordon-dataplane cordon_bench_pool_shim.so cordon_bench_pipeline_gen; do
  if [[ ! -e $bin/$b ]]; then
    echo "compare.sh: $bin/$b not found; build the release preset first (make bench)" >&2
    exit 1
  fi
done

builds=()
for rev in "$@"; do
  sha=$(git -C "$root" rev-parse --verify --quiet "$rev^{commit}") || {
    echo "compare.sh: $rev is not a commit" >&2
    exit 1
  }
  tree=$root/build/bench-ref/revisions/$sha
  if [[ ! -d $tree ]]; then
    git -C "$root" worktree add --detach --quiet "$tree" "$sha"
  fi
  echo "compare.sh: building $rev ($sha)" >&2
  (cd "$tree" && cmake --preset release >/dev/null &&
    cmake --build --preset release --target cordon-dataplane cordon_bench_pool_shim >/dev/null)
  builds+=("$rev=$tree/build/bin")
done
builds+=("tree=$bin")

l3fwd=${CORDON_BENCH_L3FWD:-}
if [[ -z $l3fwd ]]; then
  l3fwd=$("$root/bench/pipeline/build_l3fwd.sh" "$root/build/bench-ref/l3fwd")
fi
work=$(mktemp -d /tmp/cordon-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT

source "$root/bench/harness.sh"
if [[ -n ${CORDON_BENCH_LOCK:-} ]]; then
  exec 9>>"$CORDON_BENCH_LOCK"
  flock 9
fi
"${harness[@]}" python3 "$root/bench/pipeline/pipeline.py" compare \
  --gen="$bin/cordon_bench_pipeline_gen" --l3fwd="$l3fwd" --work="$work" --rt="$rt" \
  --runs="${CORDON_BENCH_PIPE_RUNS:-8}" --pcap="${CORDON_BENCH_PIPE_PCAP:-64}" \
  --variant="${CORDON_BENCH_PIPE_VARIANT:-cordon}" \
  --seconds="${CORDON_BENCH_PIPE_SECONDS:-2}" --warmup="${CORDON_BENCH_PIPE_WARMUP:-1}" \
  --cpu="${CORDON_BENCH_PIPE_CPU:-1}" "${builds[@]}"
