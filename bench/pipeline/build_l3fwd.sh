#!/usr/bin/env bash
# Builds DPDK's l3fwd example (the reference for `bench/run.sh pipeline`) out of tree from
# the sources the Debian package dpdk-doc ships under /usr/share/dpdk/examples, against the
# installed libdpdk (its Makefile, pkg-config). Nothing of DPDK's sources is kept in this
# repository: they are copied into the build directory and patched there.
#
# usage: bench/pipeline/build_l3fwd.sh [OUT_DIR]     (default: build/bench-ref/l3fwd)
# Prints the path of the binary on success.
#
# Local patches, applied with sed at build time and checked (see bench/README.md):
#  1. RX offloads masked with the port's rx_offload_capa (port and queue configuration).
#     l3fwd asks for RTE_ETH_RX_OFFLOAD_CHECKSUM, which vdevs (net_pcap, net_null) lack, so
#     rte_eth_dev_configure fails without it. l3fwd never reads the offload's result in
#     ACL mode (it neither checks the IPv4 checksum flags nor sets them).
#  2. The mbuf pool size: NB_MBUF() is exactly $L3FWD_BENCH_NB_MBUF when that is set, so
#     the three programs of the benchmark run with the same pool size (net_pcap's
#     infinite_rx keeps a copy of every frame of the pcap in the RX queue's pool, so
#     l3fwd's default of 8192 mbufs is too small for the benchmark's pcaps).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build/bench-ref/l3fwd}
examples=/usr/share/dpdk/examples

if [[ ! -f $examples/l3fwd/l3fwd_acl.c ]]; then
  echo "build_l3fwd.sh: $examples/l3fwd not found: install the Debian package dpdk-doc" \
       "(scripts/setup)" >&2
  exit 1
fi

stamp="$(dpkg-query -W -f='${Version}' dpdk-doc 2>/dev/null || echo unknown) $(sha256sum "$0" | cut -c1-16)"
if [[ -x $out/src/l3fwd/build/l3fwd && -f $out/stamp && $(cat "$out/stamp") == "$stamp" ]]; then
  echo "$out/src/l3fwd/build/l3fwd"
  exit 0
fi

rm -rf "$out/src"
mkdir -p "$out/src"
cp -r "$examples/l3fwd" "$examples/common" "$out/src/"
chmod -R u+w "$out/src"
main=$out/src/l3fwd/main.c

# 1. RX offloads masked with the port's capabilities.
sed -i 's/^\(\t*\)local_port_conf.rx_adv_conf.rss_conf.rss_hf &=$/\1local_port_conf.rxmode.offloads \&= dev_info.rx_offload_capa; \/* cordon bench: vdevs *\/\n&/' "$main"
sed -i 's/^\(\t*\)rxq_conf.offloads = port_conf.rxmode.offloads;$/\1rxq_conf.offloads = port_conf.rxmode.offloads \& dev_info.rx_offload_capa; \/* cordon bench *\//' "$main"
# 2. Pool size from the environment.
sed -i 's/^#define NB_MBUF(nports) RTE_MAX(\t*\\$/#define NB_MBUF(nports) (getenv("L3FWD_BENCH_NB_MBUF") ? (unsigned)atoi(getenv("L3FWD_BENCH_NB_MBUF")) : RTE_MAX( \\/' "$main"
sed -i 's/^\(\t*\)(unsigned)8192)$/\1(unsigned)8192)) \/* cordon bench *\//' "$main"

applied=$(grep -c 'cordon bench' "$main" || true)
if [[ $applied -ne 3 ]] || ! grep -q 'L3FWD_BENCH_NB_MBUF' "$main"; then
  echo "build_l3fwd.sh: the local patches did not apply to this l3fwd ($applied of 3 markers);" \
       "see bench/README.md" >&2
  exit 1
fi

make -C "$out/src/l3fwd" -j2 shared >"$out/build.log" 2>&1 || {
  tail -30 "$out/build.log" >&2
  exit 1
}
echo "$stamp" >"$out/stamp"
echo "$out/src/l3fwd/build/l3fwd"
