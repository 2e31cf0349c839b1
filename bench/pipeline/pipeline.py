#!/usr/bin/env python3
"""Part 2 of `make bench`: the full pipeline (engine + DPDK shell) against DPDK's I/O
ceiling and l3fwd's ACL lookup, on the same pcap, same rules, one lcore each.

Called by bench/run.sh (`bench/run.sh pipeline`); method in bench/README.md, "Part 2".

  pipeline.py run   --bin DIR --l3fwd PATH --work DIR --md FILE --json FILE [options]
  pipeline.py merge --from-md OLD.md --from-json OLD.json --md FILE --json FILE
  pipeline.py compare --gen PATH --l3fwd PATH --work DIR [options] LABEL=DIR ...

`run` generates the inputs (cordon_bench_pipeline_gen), runs the programs interleaved
(A B C A B C ...), reads their counters through DPDK telemetry and writes the section
"Full pipeline" into the day's report (replacing an earlier one). `merge` puts the section
of an older report back after the classifier bench rewrote the report. `compare` runs
l3fwd and several cordon-dataplane builds (a directory each, with cordon-dataplane and
cordon_bench_pool_shim.so) in rotating rounds on one pcap and prints the paired ratios
(bench/pipeline/compare.sh builds the revisions; bench/README.md, "Comparing builds").
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

BEGIN = "<!-- pipeline:begin -->"
END = "<!-- pipeline:end -->"
RUNTIME_DIR = "/var/run/dpdk"


def log(msg):
    print(f"bench pipeline: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Telemetry: DPDK's v2 socket (what dpdk-telemetry.py talks to), one JSON reply per command.

class Telemetry:
    """One connection per counter set read in a snapshot: DPDK serves each connection on its
    own thread, so the requests of a snapshot are sent together and answered within
    microseconds of each other, whatever happens to this (unpinned) process in between."""

    def __init__(self, prefix):
        self.path = f"{RUNTIME_DIR}/{prefix}/dpdk_telemetry.v2"
        self.socks = []
        self.max_len = 16384

    def _open(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(self.path)
            info = json.loads(s.recv(4096))
        except (OSError, ValueError):
            s.close()
            raise
        self.max_len = info.get("max_output_len", 16384)
        return s

    def connect(self, deadline, proc, count):
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"exited with status {proc.returncode} during start-up")
            if os.path.exists(self.path):
                try:
                    while len(self.socks) < count:
                        self.socks.append(self._open())
                    return
                except (OSError, ValueError):
                    pass
            time.sleep(0.05)
        raise RuntimeError("telemetry socket did not appear")

    def query_all(self, commands):
        for s, c in zip(self.socks, commands):
            s.send(c.encode())
        return [json.loads(s.recv(self.max_len * 2))[c.split(",")[0]]
                for s, c in zip(self.socks, commands)]

    def query(self, command):
        return self.query_all([command])[0]

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


# ---------------------------------------------------------------------------------------
# Machine facts and per-run CPU accounting.

def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def cpu_model():
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def steal_jiffies(cpu):
    for line in read("/proc/stat").splitlines():
        f = line.split()
        if f and f[0] == f"cpu{cpu}":
            return int(f[8])
    return 0


def process_cpu_ticks(pid):
    try:
        fields = read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (IndexError, ValueError):
        return 0


def normal_scheduling():
    """For children that are not measured: off SCHED_FIFO and free to run on any CPU."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    os.sched_setaffinity(0, range(os.cpu_count()))


def median_min_max(xs):
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


# ---------------------------------------------------------------------------------------
# The programs.

class Setup:
    def __init__(self, args, gen_dir, meta):
        self.args = args
        self.gen = gen_dir
        self.meta = meta
        # One pool size for all three: the whole pcap (net_pcap's infinite_rx keeps a copy of
        # every frame in the RX queue's pool) plus 8192 for rings and caches.
        self.mbufs = meta["frames"] + 8192
        self.mbufs_2cores = self.mbufs + 8192  # twice the ports, rings and lcore caches
        self.eal_common = ["--no-huge", "-m", str(args.mem_mb), "--no-pci", "--log-level=lib.eal:notice"]

    def vdevs(self, pcaps):
        # Port 2k: net_pcapK (the pcap K), port 2k+1: net_nullK.
        # With two pairs, l3fwd opens one TX queue per lcore on every port, and net_pcap has
        # as many TX queues as tx_pcap arguments: two that nothing is ever sent to (every
        # program sends only to the net_null ports), given to all three programs alike.
        tx = ",tx_pcap=/dev/null,tx_pcap=/dev/null" if len(pcaps) > 1 else ""
        out = []
        for k, pcap in enumerate(pcaps):
            out += [f"--vdev=net_pcap{k},rx_pcap={pcap},infinite_rx=1{tx}",
                    f"--vdev=net_null{k},no-rx=1"]
        return out

    def command(self, variant, pcaps, prefix, work, handshake=None):
        cpu = str(self.args.cpu)
        eal = self.eal_common + ["--file-prefix", prefix] + self.vdevs(pcaps)
        pairs = ["--pair", "net_pcap0:net_null0"]
        if handshake and variant["program"] == "cordon":
            # The TCP pcap: cordon alone gets a second port pair (ports 2 and 3, after the
            # measured ones) that plays each flow's SYN and SYN-ACK once, and is listed first:
            # the worker polls it before the ACK stream's pair in every loop, so a flow's
            # handshake has passed before its first ACK (bench/pipeline/pipeline_gen.cpp).
            # What the two references do not need costs cordon those frames' work.
            syn, synack = handshake
            eal += [f"--vdev=net_pcap1,rx_pcap={syn},tx_pcap=/dev/null",
                    f"--vdev=net_pcap2,rx_pcap={synack},tx_pcap=/dev/null"]
            pairs = ["--pair", "net_pcap1:net_pcap2"] + pairs
        env = dict(os.environ)
        if len(pcaps) == 2:
            return self.command_2cores(variant, eal, env, prefix, work)
        if variant["program"] == "testpmd":
            other = "1" if cpu == "0" else "0"
            # testpmd forwards on worker lcores only: its main lcore (the CLI, blocked on
            # stdin here) sits on the other CPU, the forwarding lcore on the measured one.
            cmd = [self.args.testpmd, "-l", f"{other},{cpu}", "--main-lcore", other] + eal + [
                "--", "--forward-mode=io", "--nb-cores=1", "--burst=32", "--rxd=1024",
                "--txd=1024", f"--total-num-mbufs={self.mbufs}", "--mbcache=256", "--rxq=1",
                "--txq=1"]
        elif variant["program"] == "l3fwd":
            env["L3FWD_BENCH_NB_MBUF"] = str(self.mbufs)
            cmd = [self.args.l3fwd, "-l", cpu] + eal + [
                "--", "-p", "0x3", "-P", f"--config=(0,0,{cpu}),(1,0,{cpu})", "--lookup=acl",
                f"--rule_ipv4={self.gen}/l3fwd-v4.rules", f"--rule_ipv6={self.gen}/l3fwd-v6.rules",
                "--parse-ptype", "--rx-queue-size", "1024", "--tx-queue-size", "1024"]
        else:
            env["LD_PRELOAD"] = os.path.join(self.args.bin, "cordon_bench_pool_shim.so")
            env["CORDON_BENCH_MBUFS"] = str(self.mbufs)
            state = os.path.join(work, f"state-{prefix}")
            shutil.rmtree(state, ignore_errors=True)
            cmd = [os.path.join(self.args.bin, "cordon-dataplane"), "-l", cpu] + eal + [
                "--"] + pairs + ["--policy", f"{self.gen}/policy.json",
                "--idle-sleep-us", "0", "--flows-per-worker", str(variant["flows_per_worker"]),
                "--state-dir", state, "--control-socket", os.path.join(work, f"{prefix}.sock")]
        if self.args.rt:
            cmd = ["chrt", "-f", "1"] + cmd
        return cmd, env

    def command_2cores(self, variant, eal, env, prefix, work):
        """Two worker cores, one per port pair (net_pcap0 → net_null0 on CPU 0, net_pcap1 →
        net_null1 on CPU 1), each pcap half of the flows. Not under SCHED_FIFO: with both CPUs
        of a 2-CPU machine polling at real-time priority everything else on it would stall."""
        if variant["program"] == "testpmd":
            # Forwarding lcores 1 (CPU 0) and 2 (CPU 1); the main lcore (the CLI, blocked on
            # stdin) shares CPU 0. io mode pairs ports 0-1 and 2-3, one pair per core.
            cmd = [self.args.testpmd, "--lcores", "0@0,1@0,2@1", "--main-lcore", "0"] + eal + [
                "--", "--forward-mode=io", "--nb-cores=2", "--burst=32", "--rxd=1024",
                "--txd=1024", f"--total-num-mbufs={self.mbufs_2cores}", "--mbcache=256", "--rxq=1",
                "--txq=1"]
        elif variant["program"] == "l3fwd":
            env["L3FWD_BENCH_NB_MBUF"] = str(self.mbufs_2cores)
            # Lcore 0 (the main lcore, CPU 0) polls ports 0 and 1, lcore 1 (CPU 1) ports 2 and
            # 3; every route leads to port 1, which each lcore sends to on its own TX queue.
            cmd = [self.args.l3fwd, "-l", "0,1"] + eal + [
                "--", "-p", "0xf", "-P", "--config=(0,0,0),(1,0,0),(2,0,1),(3,0,1)",
                "--lookup=acl", f"--rule_ipv4={self.gen}/l3fwd-v4.rules",
                f"--rule_ipv6={self.gen}/l3fwd-v6.rules", "--parse-ptype", "--rx-queue-size",
                "1024", "--tx-queue-size", "1024"]
        else:
            env["LD_PRELOAD"] = os.path.join(self.args.bin, "cordon_bench_pool_shim.so")
            env["CORDON_BENCH_MBUFS"] = str(self.mbufs_2cores)
            state = os.path.join(work, f"state-{prefix}")
            shutil.rmtree(state, ignore_errors=True)
            # Worker 0 is the main lcore (CPU 0; the control thread shares it), worker 1 on
            # CPU 1; each polls one pair. Both pairs' flows live in their own worker's table.
            cmd = [os.path.join(self.args.bin, "cordon-dataplane"), "-l", "0,1"] + eal + [
                "--", "--pair", "net_pcap0:net_null0", "--pair", "net_pcap1:net_null1",
                "--policy", f"{self.gen}/policy.json", "--idle-sleep-us", "0",
                "--flows-per-worker", str(variant["flows_per_worker"]), "--state-dir", state,
                "--control-socket", os.path.join(work, f"{prefix}.sock")]
        # Explicitly SCHED_OTHER: the harness itself runs under SCHED_FIFO, and a polling
        # lcore that inherited it would starve the lcore sharing its CPU (and the machine).
        return ["chrt", "-o", "0"] + cmd, env


# The pcaps each pcap key is played from; more than one: one port pair and one worker core
# per pcap.
PCAPS = {"64": ["flows-64.pcap"], "imix": ["flows-imix.pcap"],
         "64-2cores": ["flows-64-half0.pcap", "flows-64-half1.pcap"],
         "tcp": ["tcp-ack-64.pcap"]}
# Played once before the pcap, on cordon's extra port pair (Setup.command).
HANDSHAKES = {"tcp": ("tcp-syn.pcap", "tcp-synack.pcap")}


def snapshot(tel, cordon, pairs):
    """Counters summed over the pairs' RX (net_pcap) and TX (net_null) ports."""
    commands = [f"/ethdev/stats,{2 * k}" for k in range(pairs)] + \
        [f"/ethdev/stats,{2 * k + 1}" for k in range(pairs)] + (["/cordon/stats"] if cordon else [])
    t_before = time.monotonic()
    replies = tel.query_all(commands)
    t_after = time.monotonic()

    def total(rs):
        return {f: sum(r[f] for r in rs) for f in ("ipackets", "opackets", "ibytes", "rx_nombuf",
                                                  "oerrors")}
    return {"t": (t_before + t_after) / 2, "t_spread": t_after - t_before,
            "p0": total(replies[:pairs]), "p1": total(replies[pairs:2 * pairs]),
            "cordon": replies[2 * pairs] if cordon else None}


def stop_program(proc, timeout):
    """Stops a benchmarked program: SIGINT, SIGKILL after `timeout` s; closes its stdin."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdin:
        proc.stdin.close()


def run_one(setup, variant, pcap_key, run_index, work):
    args = setup.args
    prefix = f"cordon-bench-{os.getpid()}-{variant['key']}-{pcap_key}-{run_index}"
    pcaps = [f"{setup.gen}/{f}" for f in PCAPS[pcap_key]]
    pairs = len(pcaps)
    cpus = [args.cpu] if pairs == 1 else list(range(pairs))
    handshake = [f"{setup.gen}/{f}" for f in HANDSHAKES[pcap_key]] if pcap_key in HANDSHAKES else None
    cmd, env = setup.command(variant, pcaps, prefix, work, handshake)
    logpath = os.path.join(work, f"{prefix}.log")
    result = {"variant": variant["key"], "pcap": pcap_key, "run": run_index}
    with open(logpath, "w") as logf:
        # stdin: a pipe left open (testpmd exits on EOF); affinity: every CPU, whatever this
        # process was pinned to (EAL pins its lcores itself).
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.PIPE,
                                preexec_fn=lambda: os.sched_setaffinity(0, range(os.cpu_count())))
    tel = Telemetry(prefix)
    cordon = variant["program"] == "cordon"
    try:
        started = time.monotonic()
        tel.connect(started + 60, proc, 2 * pairs + (1 if cordon else 0))
        # Forwarding has begun once the null port has sent something.
        while tel.query("/ethdev/stats,1")["opackets"] == 0:
            if proc.poll() is not None or time.monotonic() > started + 60:
                raise RuntimeError("no packet forwarded within 60 s of start")
            time.sleep(0.05)
        result["startup_s"] = round(time.monotonic() - started, 2)
        time.sleep(args.warmup)
        steal0 = sum(steal_jiffies(c) for c in cpus)
        ticks0 = process_cpu_ticks(proc.pid)
        a = snapshot(tel, cordon, pairs)
        time.sleep(args.seconds)
        b = snapshot(tel, cordon, pairs)
        ticks1 = process_cpu_ticks(proc.pid)
        steal1 = sum(steal_jiffies(c) for c in cpus)
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} while measured")
        dt = b["t"] - a["t"]
        hz = os.sysconf("SC_CLK_TCK")
        rx = b["p0"]["ipackets"] - a["p0"]["ipackets"]
        tx = b["p1"]["opackets"] - a["p1"]["opackets"]
        rx_bytes = b["p0"]["ibytes"] - a["p0"]["ibytes"]
        result.update({
            "seconds": dt,
            "snapshot_spread_s": max(a["t_spread"], b["t_spread"]),
            "window_rx": rx,
            "window_tx": tx,
            # What the two ports' counters may differ by without a drop: packets moved
            # while the snapshots were being taken, plus two bursts in flight.
            "window_tolerance": int(max(rx, tx) / dt * (a["t_spread"] + b["t_spread"])) + 64,
            "rx_mpps": rx / dt / 1e6,
            "tx_mpps": tx / dt / 1e6,
            "rx_gbps": rx_bytes * 8 / dt / 1e9,
            "cpu_share": (ticks1 - ticks0) / hz / dt,
            # Forwarded per CPU-second the process actually got: comparable when the programs
            # share CPUs with other work under the normal scheduler (the 2-core runs).
            "tx_mpps_per_cpu": tx / dt / 1e6 / max((ticks1 - ticks0) / hz / dt, 1e-9),
            "steal_share": (steal1 - steal0) / hz / dt,
            "rx_nombuf": b["p0"]["rx_nombuf"],
            # Totals since start, read at the end of the measurement.
            "total_rx": b["p0"]["ipackets"],
            "total_tx": b["p1"]["opackets"],
            "tx_errors": b["p1"]["oerrors"],
        })
        if cordon:
            c = b["cordon"]
            drops = {k[len("dropped_"):]: v for k, v in c.items()
                     if k.startswith("dropped_") and v}
            result.update({"engine_packets": c["packets"], "engine_forwarded": c["tx"],
                           "engine_rx": c["rx"], "engine_tx_failed": c["tx_failed"],
                           "engine_dropped": sum(drops.values()), "drop_reasons": drops})
    except Exception as e:  # a failed run is reported, not fatal for the others
        result["error"] = str(e)
        log(f"{prefix}: {e} (log: {logpath})")
    finally:
        tel.close()
        stop_program(proc, 15)
        shutil.rmtree(f"{RUNTIME_DIR}/{prefix}", ignore_errors=True)
        result["exit_status"] = proc.returncode
    if "error" in result:
        with open(logpath) as f:
            result["log_tail"] = f.read()[-2000:]
    return result


# ---------------------------------------------------------------------------------------
# Report.

VARIANTS = [
    {"key": "testpmd", "program": "testpmd", "label": "testpmd io (I/O ceiling)"},
    {"key": "l3fwd_acl", "program": "l3fwd", "label": "l3fwd --lookup=acl"},
    {"key": "cordon", "program": "cordon", "label": "cordon-dataplane",
     "flows_per_worker": 131072},
    {"key": "cordon_new", "program": "cordon", "label": "cordon-dataplane, every packet a new flow",
     "flows_per_worker": 64},
]


def fmt(s, digits=2):
    if s is None:
        return "—"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def summarise(results, plan):
    summary = {}
    for pcap_key, variant_keys in plan:
        for vk in variant_keys:
            ok = [r for r in results if r["pcap"] == pcap_key and r["variant"] == vk
                  and "error" not in r]
            failed = [r for r in results if r["pcap"] == pcap_key and r["variant"] == vk
                      and "error" in r]
            summary.setdefault(pcap_key, {})[vk] = {
                "tx_mpps": median_min_max([r["tx_mpps"] for r in ok]),
                "tx_mpps_per_cpu": median_min_max([r["tx_mpps_per_cpu"] for r in ok]),
                "rx_mpps": median_min_max([r["rx_mpps"] for r in ok]),
                "ns_per_packet": median_min_max([1e3 / r["tx_mpps"] for r in ok if r["tx_mpps"] > 0]),
                "rx_gbps": median_min_max([r["rx_gbps"] for r in ok]),
                "cpu_share": median_min_max([r["cpu_share"] for r in ok]),
                "steal_share": median_min_max([r["steal_share"] for r in ok]),
                "startup_s": median_min_max([r["startup_s"] for r in ok]),
                "failed_runs": len(failed),
            }
        # Ratios: of medians, and the median (min–max) of the per-round ratios (the runs of
        # one round are seconds apart, so these cancel slow drifts in the machine's load).
        # On 2 cores (normal scheduler, shared CPUs) the ratios are of Mpps per CPU-second.
        metric = "tx_mpps_per_cpu" if pcap_key.endswith("2cores") else "tx_mpps"
        rounds = {}
        for r in results:
            if r["pcap"] == pcap_key and "error" not in r:
                rounds.setdefault(r["run"], {})[r["variant"]] = r[metric]
        ratios = {}
        for num, den in [("cordon", "l3fwd_acl"), ("cordon", "testpmd"), ("l3fwd_acl", "testpmd"),
                         ("cordon_new", "l3fwd_acl"), ("cordon_new", "cordon")]:
            if num not in variant_keys or den not in variant_keys:
                continue
            sn = summary[pcap_key][num][metric]
            sd = summary[pcap_key][den][metric]
            paired = [v[num] / v[den] for v in rounds.values() if num in v and den in v and v[den] > 0]
            ratios[f"{num}/{den}"] = {
                "of_medians": sn["median"] / sd["median"] if sn and sd and sd["median"] else None,
                "paired": median_min_max(paired),
            }
        summary[pcap_key]["ratios"] = ratios
    return summary


def verdict_rows(results):
    """Received vs forwarded over the measured windows (port counters, every program), and
    for cordon the engine's own verdict counters since the start of each run. Summed over
    the runs."""
    rows = {}
    for r in results:
        if "error" in r:
            continue
        k = (r["pcap"], r["variant"])
        row = rows.setdefault(k, {"received": 0, "forwarded": 0, "tolerance": 0, "judged": 0,
                                  "engine_forwarded": 0, "engine_dropped": 0, "reasons": {}})
        row["received"] += r["window_rx"]
        row["forwarded"] += r["window_tx"]
        row["tolerance"] += r["window_tolerance"]
        if r["variant"].startswith("cordon"):
            row["judged"] += r["engine_packets"]
            row["engine_forwarded"] += r["engine_forwarded"]
            row["engine_dropped"] += r["engine_dropped"]
            for reason, n in r["drop_reasons"].items():
                row["reasons"][reason] = row["reasons"].get(reason, 0) + n
    return rows


def render_md(doc):
    m = doc["machine"]
    meta = doc["workload"]
    s = doc["summary"]
    out = [BEGIN, "", "## Full pipeline: cordon-dataplane vs l3fwd-acl vs testpmd (part 2)", ""]
    out.append("Produced by `bench/run.sh pipeline` (bench/pipeline/); method and caveats in "
               "bench/README.md, \"Part 2\".")
    out.append("")
    out.append(f"* Machine: {m['cpu']}, {m['cpus']} CPUs online, kernel {m['kernel']}, "
               f"{m['dpdk']}; {m['memory']}; measured lcore on CPU {m['cpu_measured']}"
               f"{' under SCHED_FIFO (chrt -f 1)' if m['sched_fifo'] else ' (no SCHED_FIFO)'}; "
               f"RT throttling {m['rt_runtime']}.")
    out.append(f"* Load average: start {m['load_start']}; end {m['load_end']}.")
    out.append(f"* cordon-dataplane: {m['cordon_binary']} ({m['source']}).")
    out.append(f"* Workload: {meta['rules']} rules over {meta['devices']} devices (the classifier "
               f"bench's 10k set, same seed); {meta['flows']} UDP flows device → network from "
               f"{meta['devices_with_flows']} devices over {meta['rules_hit_by_flows']} of the "
               f"{meta['udp_out_rules']} UDP `out` rules, one frame per flow per pass of the pcap; "
               f"every flow allowed.")
    imix = meta["pcap_imix"]
    out.append(f"* Pcaps: `64` = 64-byte frames (60 captured + FCS); `imix` = {imix['frames_60']} × 64, "
               f"{imix['frames_590']} × 594, {imix['frames_1514']} × 1518 bytes "
               f"(mean {imix['mean_wire_bytes']:.1f} bytes with FCS).")
    if "tcp" in meta:
        t = meta["tcp"]
        out.append(f"* `tcp` = {t['flows']} established TCP connections device → network from "
                   f"{t['devices_with_flows']} devices over the {t['tcp_out_rules']} TCP `out` rules: "
                   "one 64-byte ACK per connection per pass, each an in-window segment that the "
                   "engine tracks (sequence and acknowledgement numbers). cordon alone also plays "
                   "each connection's SYN and SYN-ACK once, on a second port pair polled first, "
                   "so the connections are established before their ACKs come; the references "
                   "forward the ACKs without state.")
    p = doc["method"]
    out.append(f"* Each cell: median (min–max) of {p['runs']} runs, interleaved "
               f"({' → '.join(p['order'])} per round); a run = start, first forwarded packet, "
               f"{p['warmup_s']} s warm-up, {p['seconds']} s measured from the telemetry counters "
               f"(`/ethdev/stats`). One lcore forwards in every program; mbuf pool "
               f"{p['mbufs']} mbufs (cache 256), burst 32, 1024 RX/TX descriptors for all.")
    out.append("")
    out.append("### Forwarded Mpps (per core, except `64-2cores`: two cores)")
    out.append("")
    cols = ["testpmd", "l3fwd_acl", "cordon", "cordon_new"]
    labels = {"testpmd": "testpmd io (ceiling)", "l3fwd_acl": "l3fwd --lookup=acl",
              "cordon": "cordon, 100k established flows", "cordon_new": "cordon, every packet a new flow"}
    out.append("| pcap | " + " | ".join(labels[c] for c in cols) +
               " | cordon / l3fwd-acl | cordon / testpmd | l3fwd-acl / testpmd |")
    out.append("|---|" + "---:|" * (len(cols) + 3))
    for pk in doc["pcaps"]:
        cells = [fmt(s[pk][c]["tx_mpps"]) if c in s[pk] else "not run" for c in cols]
        r = s[pk]["ratios"]

        def ratio(key, bold=False):
            if key not in r or r[key]["of_medians"] is None:
                return "—"
            v = f"{r[key]['of_medians']:.2f}"
            return f"**{v}**" if bold else v
        out.append(f"| {pk} | " + " | ".join(cells) + f" | {ratio('cordon/l3fwd_acl', True)} | "
                   f"{ratio('cordon/testpmd')} | {ratio('l3fwd_acl/testpmd')} |")
    out.append("")
    out.append("Ratios are of the medians; > 1 in *cordon / l3fwd-acl* meets the issue's target "
               "(at least l3fwd-acl's rate while tracking state). Paired ratios (median (min–max) of "
               "the per-round ratios):")
    out.append("")
    out.append("| pcap | ratio | of medians | paired |")
    out.append("|---|---|---:|---:|")
    for pk in doc["pcaps"]:
        for key, v in s[pk]["ratios"].items():
            om = "—" if v["of_medians"] is None else f"{v['of_medians']:.3f}"
            out.append(f"| {pk} | {key} | {om} | {fmt(v['paired'], 3)} |")
    out.append("")
    if "64-2cores" in s and "64" in s:
        out.append("Two worker cores (`64-2cores`: the 64-byte pcap's flows split over two port "
                   "pairs, one worker lcore each on CPUs 0 and 1, not under SCHED_FIFO; testpmd's "
                   "main lcore and cordon's control thread share CPU 0 with a worker; the "
                   "harness sleeps on CPU 0). Scaling, 2 cores / 1 core, of the medians:")
        out.append("")
        out.append("| program | 1 core, SCHED_FIFO (Mpps) | 2 cores (Mpps) | CPUs the process got on 2 cores | 2 cores, Mpps per CPU-second | per CPU-second, 2 cores / 1 core |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for c in ["testpmd", "l3fwd_acl", "cordon"]:
            one, two = s["64"].get(c, {}), s["64-2cores"].get(c, {})
            if one.get("tx_mpps_per_cpu") and two.get("tx_mpps_per_cpu"):
                out.append(f"| {labels[c]} | {fmt(one['tx_mpps'])} | {fmt(two['tx_mpps'])} | "
                           f"{fmt(two['cpu_share'])} | {fmt(two['tx_mpps_per_cpu'])} | "
                           f"{two['tx_mpps_per_cpu']['median'] / one['tx_mpps_per_cpu']['median']:.2f} |")
        out.append("")
        out.append("The ratios of the `64-2cores` rows in the tables above are of Mpps per "
                   "CPU-second (the 2-core programs share both CPUs with the machine's other work "
                   "under the normal scheduler, so their raw rate measures the load more than the "
                   "program); 1.0 in the last column means perfect scaling.")
        out.append("")
    out.append("### Per-run detail")
    out.append("")
    out.append("| pcap | program | ns/packet | Gbit/s (frames) | CPU share of the process | steal on its CPU | start-up to first packet (s) | failed runs |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for pk in doc["pcaps"]:
        for c in cols:
            if c not in s[pk]:
                continue
            v = s[pk][c]
            out.append(f"| {pk} | {labels[c]} | {fmt(v['ns_per_packet'], 0)} | {fmt(v['rx_gbps'])} | "
                       f"{fmt(v['cpu_share'])} | {fmt(v['steal_share'], 3)} | {fmt(v['startup_s'], 1)} | "
                       f"{v['failed_runs']} |")
    out.append("")
    out.append("CPU share: CPU time of the whole process over the measured interval (testpmd's "
               "main lcore is blocked on stdin; ~0.95 under SCHED_FIFO is the kernel's RT "
               "throttling). Steal: the hypervisor's steal time on the measured CPU.")
    out.append("")
    out.append("### Verdicts")
    out.append("")
    out.append("| pcap | program | received (measured windows) | forwarded | received − forwarded | "
               "engine: judged since start | engine: forwarded | engine: dropped (reasons) |")
    out.append("|---|---|---:|---:|---:|---:|---:|---|")
    for (pk, vk), row in sorted(doc["verdicts"].items()):
        engine = ["—", "—", "—"]
        if vk.startswith("cordon"):
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(row["reasons"].items()))
            engine = [str(row["judged"]), str(row["engine_forwarded"]),
                      f"{row['engine_dropped']}" + (f" ({reasons})" if reasons else "")]
        out.append(f"| {pk} | {labels[vk]} | {row['received']} | {row['forwarded']} | "
                   f"{row['received'] - row['forwarded']} (±{row['tolerance']}) | " + " | ".join(engine) + " |")
    out.append("")
    out.append("Expected: everything forwarded (every flow is allowed). *received − forwarded* "
               "over the windows is 0 within the tolerance in brackets when nothing is dropped "
               "(the two ports' counters are read by two telemetry threads, not at the same "
               "instant: the tolerance is the rate times the time the snapshots took, plus two "
               "bursts in flight); the engine's counters are cordon's verdicts for every packet of the "
               "runs, the first pass (new flows) included. testpmd drops what it reads while it "
               "flushes its RX queues before forwarding starts; that is outside the windows.")
    if doc.get("errors"):
        out.append("")
        out.append("### Failed runs")
        out.append("")
        for e in doc["errors"]:
            out.append(f"* {e['pcap']} {e['variant']} run {e['run']}: {e['error']}")
    if doc.get("notes"):
        out.append("")
        for n in doc["notes"]:
            out.append(f"* {n}")
    out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def put_section(md_path, section, title):
    text = read(md_path, None) if os.path.exists(md_path) else None
    if text is None:
        text = f"# {title}\n\n"
    else:
        text += "\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        post = rest.split(END, 1)[1]
        text = pre + section.rstrip("\n") + post
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(md_path + ".tmp", "w") as f:
        f.write(text.rstrip("\n") + "\n")
    os.replace(md_path + ".tmp", md_path)


def put_json(json_path, key, value, base):
    """Adds (or replaces) `key` as the last member of the report's JSON object, leaving the
    text of the other members (the classifier bench's) exactly as it was."""
    member = f'  "{key}": ' + json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
    if os.path.exists(json_path):
        text = read(json_path)
        doc = json.loads(text)
        marker = f'\n  "{key}": '
        if key in doc and marker in text:
            head = text[:text.rindex(marker)].rstrip().rstrip(",")
        elif key in doc:  # not ours to parse by hand: rewrite the whole file
            doc.pop(key)
            head = json.dumps(doc, indent=2, ensure_ascii=False).rstrip()[:-1].rstrip()
        else:
            head = text.rstrip()[:-1].rstrip()
        text = head + ("," if head.rstrip() != "{" else "") + "\n" + member + "\n}\n"
    else:
        doc = dict(base)
        head = json.dumps(doc, indent=2, ensure_ascii=False).rstrip()[:-1].rstrip()
        text = head + ("," if doc else "") + "\n" + member + "\n}\n"
    json.loads(text)  # never write a report that does not parse
    with open(json_path + ".tmp", "w") as f:
        f.write(text)
    os.replace(json_path + ".tmp", json_path)


def cmd_merge(args):
    old_md = read(args.from_md, "")
    if BEGIN in old_md and END in old_md:
        section = BEGIN + old_md.split(BEGIN, 1)[1].split(END, 1)[0] + END + "\n"
        put_section(args.md, section, "")
    if os.path.exists(args.from_json):
        with open(args.from_json) as f:
            old = json.load(f)
        if "pipeline" in old:
            put_json(args.json, "pipeline", old["pipeline"], {})


def cmd_run(args):
    os.makedirs(args.work, exist_ok=True)
    gen = os.path.join(args.work, "gen")
    os.makedirs(gen, exist_ok=True)
    log(f"generating {args.rules} rules, {args.flows} flows into {gen}")
    subprocess.run([os.path.join(args.bin, "cordon_bench_pipeline_gen"), f"--out={gen}",
                    f"--rules={args.rules}", f"--flows={args.flows}"], check=True,
                   preexec_fn=normal_scheduling)
    with open(os.path.join(gen, "meta.json")) as f:
        meta = json.load(f)
    setup = Setup(args, gen, meta)
    variants = {v["key"]: v for v in VARIANTS}
    plan = [("64", ["testpmd", "l3fwd_acl", "cordon"] + (["cordon_new"] if args.new_flows else []))]
    if args.imix:
        plan.append(("imix", ["testpmd", "l3fwd_acl", "cordon"]))
    if args.two_cores:
        plan.append(("64-2cores", ["testpmd", "l3fwd_acl", "cordon"]))
    if args.tcp:
        plan.append(("tcp", ["testpmd", "l3fwd_acl", "cordon"]))

    machine = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "dpdk": "DPDK " + subprocess.run(["pkg-config", "--modversion", "libdpdk"],
                                         capture_output=True, text=True).stdout.strip(),
        "memory": f"--no-huge -m {args.mem_mb} (4 KiB pages; THP {read('/sys/kernel/mm/transparent_hugepage/enabled')})",
        "cpu_measured": args.cpu,
        "sched_fifo": bool(args.rt),
        "rt_runtime": f"{read('/proc/sys/kernel/sched_rt_runtime_us')}/{read('/proc/sys/kernel/sched_rt_period_us')} µs",
        "load_start": read("/proc/loadavg"),
        "cordon_binary": os.path.join(args.bin, "cordon-dataplane"),
        "source": args.source,
        "l3fwd_binary": args.l3fwd,
        "testpmd_binary": args.testpmd,
    }
    results = []
    t_start = time.monotonic()
    for pcap_key, keys in plan:
        for run in range(args.runs):
            for vk in keys:
                r = run_one(setup, variants[vk], pcap_key, run, args.work)
                results.append(r)
                if "error" not in r:
                    log(f"{pcap_key} run {run + 1}/{args.runs} {vk}: {r['tx_mpps']:.3f} Mpps "
                        f"(cpu {r['cpu_share']:.2f}, steal {r['steal_share']:.3f})")
    machine["load_end"] = read("/proc/loadavg")
    machine["wall_s"] = round(time.monotonic() - t_start, 1)

    summary = summarise(results, plan)
    verdicts = verdict_rows(results)
    notes = []
    for (pk, vk), row in verdicts.items():
        if vk.startswith("cordon") and row["engine_dropped"] > 0:
            notes.append(f"UNEXPECTED: cordon dropped {row['engine_dropped']} packets on pcap {pk} ({vk}).")
        if abs(row["received"] - row["forwarded"]) > row["tolerance"]:
            notes.append(f"UNEXPECTED: {vk} on pcap {pk} forwarded "
                         f"{row['received'] - row['forwarded']} fewer packets than it received.")
    doc = {
        "machine": machine,
        "workload": meta,
        "method": {"runs": args.runs, "warmup_s": args.warmup, "seconds": args.seconds,
                   "mbufs": setup.mbufs, "order": [variants[k]["label"] for k in plan[0][1]],
                   "burst": 32, "descriptors": 1024, "mempool_cache": 256,
                   "cordon_flows_per_worker": {"cordon": 131072, "cordon_new": 64}},
        "pcaps": [p for p, _ in plan],
        "summary": summary,
        "verdicts": {f"{pk}/{vk}": v for (pk, vk), v in verdicts.items()},
        "runs": results,
        "errors": [r for r in results if "error" in r],
        "notes": notes,
    }
    md_doc = dict(doc)
    md_doc["verdicts"] = verdicts
    put_section(args.md, render_md(md_doc), f"Benchmarks — {args.date}, {args.host}")
    put_json(args.json, "pipeline", doc, {"date": args.date, "host": args.host})
    log(f"done in {machine['wall_s']} s")
    return 1 if doc["errors"] else 0


def cmd_compare(args):
    """Rounds of l3fwd and every build, the order rotated by one each round (so no build
    always runs first or right after l3fwd), on one pcap; ratios paired per round."""
    os.makedirs(args.work, exist_ok=True)
    gen = os.path.join(args.work, "gen")
    os.makedirs(gen, exist_ok=True)
    subprocess.run([args.gen, f"--out={gen}", f"--rules={args.rules}", f"--flows={args.flows}"],
                   check=True, preexec_fn=normal_scheduling, stdout=subprocess.DEVNULL)
    with open(os.path.join(gen, "meta.json")) as f:
        meta = json.load(f)
    builds = []
    for spec in args.builds:
        label, sep, directory = spec.partition("=")
        if not sep or not label or not os.path.isdir(directory):
            raise SystemExit(f"compare: expected LABEL=DIR, got {spec!r}")
        build_args = argparse.Namespace(**vars(args))
        build_args.bin = directory
        builds.append((label, Setup(build_args, gen, meta)))
    variants = {v["key"]: v for v in VARIANTS}
    entries = [("l3fwd", builds[0][1], variants["l3fwd_acl"])]
    entries += [(label, setup, variants[args.variant]) for label, setup in builds]
    mpps = {label: [] for label, _, _ in entries}
    failed = 0
    for run in range(args.runs):
        k = run % len(entries)
        for label, setup, variant in entries[k:] + entries[:k]:
            r = run_one(setup, dict(variant, key=f"{variant['key']}-{label}"), args.pcap, run,
                        args.work)
            if "error" in r:
                log(f"run {run + 1} {label}: {r['error']}")
                failed += 1
            mpps[label].append(r.get("tx_mpps"))
        log(f"run {run + 1}/{args.runs}: " +
            " ".join(f"{label} {mpps[label][-1] or 0:.2f}" for label, _, _ in entries))

    def paired(label, reference):
        return [x / y for x, y in zip(mpps[label], mpps[reference]) if x and y]

    first = builds[0][0]
    pcap_label = {"64": "64-byte", "imix": "IMIX", "tcp": "TCP (64-byte ACKs)"}[args.pcap]
    print(f"\n{pcap_label} pcap, {variants[args.variant]['label']}, {args.runs} rounds, "
          f"{cpu_model()}, "
          f"load {read('/proc/loadavg')}")
    print(f"\n| build | Mpps, median (min–max) | / {first}, paired | / l3fwd-acl, paired |")
    print("|---|---|---|---|")
    for label, _, _ in entries:
        rates = [x for x in mpps[label] if x]
        cells = [fmt(median_min_max(rates))]
        cells.append(fmt(median_min_max(paired(label, first)), 3)
                     if label != "l3fwd" else "")
        cells.append(fmt(median_min_max(paired(label, "l3fwd")), 3)
                     if label != "l3fwd" else "")
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--bin", required=True)
    r.add_argument("--l3fwd", required=True)
    r.add_argument("--testpmd", default=shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd")
    r.add_argument("--work", required=True)
    r.add_argument("--md", required=True)
    r.add_argument("--json", required=True)
    r.add_argument("--date", default=datetime.date.today().isoformat())
    r.add_argument("--host", default=socket.gethostname().split(".")[0])
    r.add_argument("--source", default="")
    r.add_argument("--rules", type=int, default=10000)
    r.add_argument("--flows", type=int, default=100000)
    r.add_argument("--runs", type=int, default=5)
    r.add_argument("--warmup", type=float, default=1.0)
    r.add_argument("--seconds", type=float, default=4.0)
    r.add_argument("--cpu", type=int, default=1)
    r.add_argument("--mem-mb", type=int, default=512)
    r.add_argument("--rt", type=int, default=1)
    r.add_argument("--imix", type=int, default=1)
    r.add_argument("--new-flows", type=int, default=1)
    r.add_argument("--two-cores", type=int, default=1)
    r.add_argument("--tcp", type=int, default=1)
    m = sub.add_parser("merge")
    m.add_argument("--from-md", required=True)
    m.add_argument("--from-json", required=True)
    m.add_argument("--md", required=True)
    m.add_argument("--json", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--gen", required=True, help="cordon_bench_pipeline_gen")
    c.add_argument("--l3fwd", required=True)
    c.add_argument("--testpmd", default=shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd")
    c.add_argument("--work", required=True)
    c.add_argument("--pcap", choices=["64", "imix", "tcp"], default="64")
    c.add_argument("--variant", choices=["cordon", "cordon_new"], default="cordon",
                   help="cordon_new: every packet a new flow (a 64-entry table)")
    c.add_argument("--rules", type=int, default=10000)
    c.add_argument("--flows", type=int, default=100000)
    c.add_argument("--runs", type=int, default=8)
    c.add_argument("--warmup", type=float, default=1.0)
    c.add_argument("--seconds", type=float, default=2.0)
    c.add_argument("--cpu", type=int, default=1)
    c.add_argument("--mem-mb", type=int, default=512)
    c.add_argument("--rt", type=int, default=1)
    c.add_argument("builds", nargs="+", metavar="LABEL=DIR")
    args = ap.parse_args()
    if args.cmd == "compare":
        return cmd_compare(args)
    if args.cmd == "merge":
        cmd_merge(args)
        return 0
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
