// LD_PRELOAD shim for `bench/run.sh pipeline` and `scale` only: sets the size of
// cordon-dataplane's mbuf pool ("cordon_mbufs") to $CORDON_BENCH_MBUFS and its data room to
// $CORDON_BENCH_DATA_ROOM bytes.
//
// Why: net_pcap with infinite_rx=1 copies every frame of the pcap into mbufs of the RX
// queue's pool at queue setup and keeps them there, so the pool must hold the whole pcap
// (100k flows = 100k frames) besides the rings. cordon-dataplane sizes its pool for its
// rings only (dataplane/dpdk/shell.cpp: ports x (RX + TX descriptors) + per-worker
// cache), which is right for NICs and too small for this PMD; the benchmark does not
// change the dataplane, it gives all three programs the same pool size instead (testpmd:
// --total-num-mbufs, l3fwd: a build-time patch). Every other call passes through unchanged.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rte_mempool;

typedef struct rte_mempool* (*pool_create_fn)(const char*, unsigned, unsigned, unsigned short,
                                              unsigned short, int);

struct rte_mempool* rte_pktmbuf_pool_create(const char* name, unsigned n, unsigned cache_size,
                                            unsigned short priv_size, unsigned short data_room_size,
                                            int socket_id) {
  static pool_create_fn real;
  if (real == NULL) real = (pool_create_fn)dlsym(RTLD_NEXT, "rte_pktmbuf_pool_create");
  const char* want = getenv("CORDON_BENCH_MBUFS");
  if (want != NULL && strcmp(name, "cordon_mbufs") == 0) {
    const unsigned long v = strtoul(want, NULL, 10);
    if (v > 0) {
      fprintf(stderr, "cordon bench pool shim: %s: %u -> %lu mbufs\n", name, n, v);
      n = (unsigned)v;
    }
  }
  // Part 6 (bench/scale): a smaller data room (headroom included) for pools of a million
  // 60-byte frames, as testpmd's --mbuf-size gives the reference run.
  const char* room = getenv("CORDON_BENCH_DATA_ROOM");
  if (room != NULL && strcmp(name, "cordon_mbufs") == 0) {
    const unsigned long v = strtoul(room, NULL, 10);
    if (v > 0 && v <= 65535) {
      fprintf(stderr, "cordon bench pool shim: %s: data room %u -> %lu bytes\n", name,
              (unsigned)data_room_size, v);
      data_room_size = (unsigned short)v;
    }
  }
  return real(name, n, cache_size, priv_size, data_room_size, socket_id);
}
