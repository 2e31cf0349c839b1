#!/usr/bin/env python3
"""Parts 4, 5 and 7 of `make bench`, over veths in network namespaces: latency inside the
dataplane, a policy swap under load, and cordon-dataplane vs an nftables bridge firewall.
Method in bench/README.md ("Latency", "Policy swap under load", "Against the kernel").

  netbench.py run --bin DIR --gen DIR --work DIR --md FILE --json FILE [options]

Topology (names prefixed bench-, never the lab's; removed on exit, also on error or
signal):

  bench-src: bsrc0 ==veth== bsrc1 :bench-mid: bdst1 ==veth== bdst0 :bench-dst

tcpreplay (Debian's, --pps) plays a pcap of bench/pipeline/pipeline_gen.cpp out of bsrc0
on CPU 0. In bench-mid either cordon-dataplane forwards bsrc1 <-> bdst1 on net_af_packet
(one worker lcore, CPU 1), or a Linux bridge joins them, with or without the nftables
allowlist. What arrives is read off bdst0's rx_packets counter.
"""

import argparse
import ctypes
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

NS_SRC, NS_MID, NS_DST = "bench-src", "bench-mid", "bench-dst"
RUNTIME_DIR = "/var/run/dpdk"
SPOOF_REASON = "dropped_spoofed_source"


def log(msg):
    print(f"bench netns: {msg}", file=sys.stderr, flush=True)


def run(cmd, ns=None, check=True, timeout=120):
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[:500]}")
    return r


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


# ---------------------------------------------------------------------------------------
# Topology

class Topology:
    def up(self):
        self.down()
        for ns in (NS_SRC, NS_MID, NS_DST):
            run(["ip", "netns", "add", ns])
            # No IPv6 (router solicitations, DAD) on the veths: only the pcap's frames cross.
            run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1"], ns=ns)
        run(["ip", "link", "add", "bsrc0", "netns", NS_SRC, "type", "veth", "peer", "name", "bsrc1",
             "netns", NS_MID])
        run(["ip", "link", "add", "bdst0", "netns", NS_DST, "type", "veth", "peer", "name", "bdst1",
             "netns", NS_MID])
        for ns, ifs in ((NS_SRC, ["bsrc0"]), (NS_MID, ["bsrc1", "bdst1"]), (NS_DST, ["bdst0"])):
            for i in ifs:
                run(["ip", "link", "set", i, "up"], ns=ns)
        # What the receiver gets from addresses no device owns: counted where it arrives, so a
        # spoofed frame lost on the way is not mistaken for one the dataplane forwarded.
        path = os.path.join("/tmp", f"bench-netns-{os.getpid()}-count.nft")
        with open(path, "w") as f:
            f.write('table netdev bench_count {\n'
                    '  chain spoofed { type filter hook ingress device "bdst0" priority 0;\n'
                    f'    ip saddr {SPOOFED_NET} counter\n'
                    '  }\n}\n')
        run(["nft", "-f", path], ns=NS_DST)
        os.unlink(path)

    def down(self):
        for ns in (NS_SRC, NS_MID, NS_DST):
            run(["ip", "netns", "del", ns], check=False)

    def bridge(self, on):
        if on:
            run(["ip", "link", "add", "br0", "type", "bridge"], ns=NS_MID)
            for i in ("bsrc1", "bdst1"):
                run(["ip", "link", "set", i, "master", "br0"], ns=NS_MID)
            run(["ip", "link", "set", "br0", "up"], ns=NS_MID)
        else:
            run(["ip", "link", "del", "br0"], ns=NS_MID, check=False)


def received():
    return int(run(["cat", "/sys/class/net/bdst0/statistics/rx_packets"], ns=NS_DST).stdout)


def cpu_jiffies():
    """(softirq jiffies summed over all CPUs)"""
    for line in read("/proc/stat").splitlines():
        f = line.split()
        if f and f[0] == "cpu":
            return int(f[7])
    return 0


def backlog_drops():
    """Frames the kernel dropped because a CPU's input backlog was full (softnet_stat, the
    second column, summed over CPUs): where veth traffic is lost when softirq falls behind."""
    total = 0
    for line in read("/proc/net/softnet_stat").splitlines():
        f = line.split()
        if len(f) > 1:
            total += int(f[1], 16)
    return total


SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438  # x86_64
SOL_PACKET, PACKET_STATISTICS = 263, 6
_libc = ctypes.CDLL(None, use_errno=True)


def packet_socket_drops(pid):
    """Frames the kernel dropped because an AF_PACKET socket of process `pid` had no free
    frame in its RX ring (tp_drops of PACKET_STATISTICS, summed over its packet sockets).
    DPDK's af_packet PMD does not report them (its imissed stays 0), so the bench reads them
    itself: a duplicate of each socket through pidfd_getfd(2), then getsockopt. Reading
    resets the kernel's counters: each call returns the drops since the previous one."""
    pidfd = _libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), f"pidfd_open({pid})")
    total = 0
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                    continue
            except OSError:
                continue  # closed meanwhile
            fd = _libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                continue
            with socket.socket(fileno=fd) as sock:
                if sock.family == socket.AF_PACKET:
                    total += struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
    finally:
        os.close(pidfd)
    return total


SPOOFED_NET = "10.254.0.0/16"  # pipeline_gen's spoofed sources (flows-swap.pcap)


def spoofed_arrived():
    """Frames from SPOOFED_NET that reached bdst0 (its ingress counter, Topology.up)."""
    out = run(["nft", "list", "chain", "netdev", "bench_count", "spoofed"], ns=NS_DST).stdout
    m = re.search(r"counter packets (\d+)", out)
    return int(m.group(1)) if m else 0


def task_ticks(pid):
    try:
        fields = read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])  # utime, stime
    except (IndexError, ValueError):
        return 0, 0


# ---------------------------------------------------------------------------------------
# nftables: the same allowlist as a bridge firewall, with concatenated interval sets.

def nft_ruleset(policy_path, filtering, chunk=500):
    """The nft scripts: the table with its two sets (and with `filtering`, the forward chain
    that uses them), then the set elements in chunks (one netlink batch of 10k interval
    elements exceeds the socket's buffer: ENOBUFS). Returns (scripts, element count)."""
    with open(policy_path) as f:
        doc = json.load(f)
    out_elems, in_elems = [], []
    for d in doc["devices"]:
        for ip in d["ip"]:
            for r in d.get("rules", []):
                if r["proto"] not in ("tcp", "udp"):
                    continue
                port = r.get("dport")
                ports = "0-65535" if port is None else str(port)
                peer = r.get("peer", "0.0.0.0/0")
                elem = f"{ip} . {peer} . {r['proto']} . {ports}"
                (out_elems if r["dir"] == "out" else in_elems).append(elem)
    head = ["table bridge cordon_bench {",
            "  set allow_out { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval; }",
            "  set allow_in { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval; }"]
    if filtering:
        head += ["  chain forward { type filter hook forward priority 0; policy drop;",
                 "    ether type arp accept",
                 '    iifname "bsrc1" ip saddr . ip daddr . meta l4proto . th dport @allow_out accept',
                 '    iifname "bdst1" ip daddr . ip saddr . meta l4proto . th dport @allow_in accept',
                 "  }"]
    scripts = ["\n".join(head + ["}"]) + "\n"]
    for name, elems in (("allow_out", out_elems), ("allow_in", in_elems)):
        for i in range(0, len(elems), chunk):
            scripts.append(element_script(name, elems[i:i + chunk]))
    return scripts, len(out_elems) + len(in_elems)


def elements_of(script):
    return [e.strip() for e in script[script.index("{") + 1:script.rindex("}")].split(", ")]


def overlapping(element_scripts):
    """Elements that overlap an earlier one of the same set, device and protocol (peer
    ranges and port ranges both intersect): what the kernel refuses in a concatenated
    interval set."""
    def span(text, bits):
        if "/" in text:
            addr, plen = text.split("/")
            n = int.from_bytes(socket.inet_aton(addr), "big")
            size = 1 << (32 - int(plen))
            return n & ~(size - 1), (n & ~(size - 1)) + size - 1
        if bits == 32:
            n = int.from_bytes(socket.inet_aton(text), "big")
            return n, n
        lo, _, hi = text.partition("-")
        return int(lo), int(hi or lo)

    kept = {}
    refused = []
    for text in element_scripts:
        set_name = text.split()[4]
        for e in elements_of(text):
            dev, peer, proto, ports = [x.strip() for x in e.split(" . ")]
            box = (span(peer, 32), span(ports, 16))
            key = (set_name, dev, proto)
            if any(a[0] <= box[0][1] and box[0][0] <= a[1] and b[0] <= box[1][1] and box[1][0] <= b[1]
                   for a, b in kept.get(key, [])):
                refused.append(f"{set_name}: {e}")
            else:
                kept.setdefault(key, []).append(box)
    return refused


def element_script(set_name, elems):
    return f"add element bridge cordon_bench {set_name} {{ " + ", ".join(elems) + " }\n"


def nft_load(scripts, work, tag):
    """Loads the scripts into bench-mid. The kernel refuses an element of a concatenated
    interval set that overlaps one already in it (EEXIST); a chunk it refuses is split in
    halves until the refused elements are found, which are left out and returned (the
    rules they come from overlap earlier ones of the same device)."""
    refused = []

    def load(text):
        path = os.path.join(work, f"{tag}.nft")
        with open(path, "w") as f:
            f.write(text)
        return run(["nft", "-f", path], ns=NS_MID, check=False).returncode == 0

    if not load(scripts[0]):
        raise RuntimeError("nft: the table does not load")
    for text in scripts[1:]:
        set_name = text.split()[4]
        elems = text[text.index("{") + 1:text.rindex("}")].split(", ")
        elems = [e.strip() for e in elems]
        stack = [elems]
        while stack:
            part = stack.pop()
            if load(element_script(set_name, part)):
                continue
            if len(part) == 1:
                refused.append(f"{set_name}: {part[0]}")
            else:
                stack += [part[len(part) // 2:], part[:len(part) // 2]]
    return refused


# ---------------------------------------------------------------------------------------
# cordon-dataplane in bench-mid

class RtThrottle:
    """The kernel's RT throttling, lifted for the run (and restored after it, also on error
    or SIGTERM) when the worker runs under SCHED_FIFO. With the default 950000 of every
    1000000 µs, a SCHED_FIFO worker that polls without sleeping (any rate at which frames
    arrive faster than its idle threshold) is stopped for the last 50 ms of each second; its
    512-frame af_packet RX ring overflows meanwhile (at 50k pps: ~2000 frames lost per
    second, counted only in the socket's tp_drops). That is a property of this machine's
    set-up, not of the dataplane: an appliance runs its workers on cores of their own."""

    PATH = "/proc/sys/kernel/sched_rt_runtime_us"

    def __init__(self, lift):
        self.wanted = lift
        self.saved = None

    def describe(self):
        now = read(self.PATH)
        return "lifted for the run (sched_rt_runtime_us -1)" if self.wanted else f"sched_rt_runtime_us {now}"

    def lift(self):
        if not self.wanted:
            return
        self.saved = read(self.PATH)
        with open(self.PATH, "w") as f:
            f.write("-1")

    def restore(self):
        if self.saved is not None:
            with open(self.PATH, "w") as f:
                f.write(self.saved)
            self.saved = None


class Telemetry:
    def __init__(self, prefix):
        self.path = f"{RUNTIME_DIR}/{prefix}/dpdk_telemetry.v2"
        self.sock = None
        self.lock = threading.Lock()

    def connect(self, deadline, proc):
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"cordon-dataplane exited with {proc.returncode} during start-up")
            if os.path.exists(self.path):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                    s.connect(self.path)
                    s.recv(4096)
                    self.sock = s
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("telemetry socket did not appear")

    def query(self, cmd):
        with self.lock:
            self.sock.send(cmd.encode())
            return json.loads(self.sock.recv(1 << 20))[cmd.split(",")[0]]

    def close(self):
        if self.sock:
            self.sock.close()


class Dataplane:
    def __init__(self, args, policy, latency):
        self.prefix = f"bench-netns-{os.getpid()}"
        self.state = os.path.join(args.work, "dp-state")
        self.sock_path = os.path.join(args.work, "dp.sock")
        shutil.rmtree(self.state, ignore_errors=True)
        # The worker on CPU 1 goes to SCHED_FIFO after start-up (below): on a shared machine
        # a poller under the normal scheduler is switched out for tens of ms and its af_packet
        # ring overflows. It sleeps when idle (--idle-sleep-us default), giving the CPU back.
        cmd = ["ip", "netns", "exec", NS_MID, os.path.join(args.bin, "cordon-dataplane"),
               "-l", "1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", self.prefix,
               "--log-level=lib.eal:notice",
               "--vdev=net_af_packet0,iface=bsrc1", "--vdev=net_af_packet1,iface=bdst1", "--",
               "--pair", "net_af_packet0:net_af_packet1", "--policy", policy,
               "--state-dir", self.state, "--control-socket", self.sock_path,
               "--flows-per-worker", "131072", "--latency-histogram", "on" if latency else "off"]
        self.log = open(os.path.join(args.work, "dataplane.log"), "a")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=lambda: os.sched_setaffinity(0, range(os.cpu_count())))
        self.tel = Telemetry(self.prefix)
        try:
            deadline = time.monotonic() + 60
            self.tel.connect(deadline, self.proc)
            # /cordon/stats answers null until the dataplane registered it (after the ports).
            while (self.tel.query("/cordon/stats") or {}).get("policy_version", 0) == 0:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("no policy enforced")
                time.sleep(0.05)
        except Exception:
            self.stop()
            raise
        # Only the worker (the main lcore: the process's main thread) goes to SCHED_FIFO,
        # once started; the control thread (policy compile), telemetry and EAL threads stay
        # under the normal scheduler as in production (started under SCHED_FIFO they would
        # never yield the CPU to the worker, or starve behind other real-time work).
        if args.rt:
            os.sched_setscheduler(self.proc.pid, os.SCHED_FIFO, os.sched_param(1))

    def pid(self):
        """The dataplane itself (ip netns exec execs it, so it is the same process)."""
        return self.proc.pid

    def ring_drops(self):
        """Frames dropped at its af_packet RX rings since the previous call."""
        return packet_socket_drops(self.proc.pid)

    def apply(self, policy_text):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock_path)
        s.sendall((json.dumps({"cmd": "apply", "document": policy_text}) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf)

    def stop(self):
        self.tel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(f"{RUNTIME_DIR}/{self.prefix}", ignore_errors=True)
        self.log.close()


# ---------------------------------------------------------------------------------------
# The sender

class Replay:
    """tcpreplay at a fixed rate out of bsrc0, on CPU 0."""

    cpu = 0  # set from --sender-cpu

    def __init__(self, pcap, pps, seconds):
        cmd = ["ip", "netns", "exec", NS_SRC, "taskset", "-c", str(Replay.cpu), "tcpreplay", "-i", "bsrc0",
               f"--pps={pps}", f"--duration={math.ceil(seconds)}", "--loop=0", "--preload-pcap", pcap]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=lambda: os.sched_setaffinity(0, [Replay.cpu]))
        self.pps = pps

    def wait(self):
        out, _ = self.proc.communicate(timeout=120)
        m = re.search(r"Actual: (\d+) packets .* sent in ([\d.]+) seconds", out)
        failed = re.search(r"Failed packets:\s+(\d+)", out)
        if self.proc.returncode != 0 or not m:
            raise RuntimeError(f"tcpreplay failed: {out[-500:]}")
        return {"sent": int(m.group(1)), "seconds": float(m.group(2)),
                "failed": int(failed.group(1)) if failed else 0}


def settle():
    """Waits until bdst0's counter stops moving (what was in flight has arrived)."""
    last = received()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = received()
        if now == last:
            return now
        last = now
    return last


def trial(pcap, pps, seconds, dp=None):
    before = received()
    drops0 = backlog_drops()
    stats0 = dp.tel.query("/cordon/stats") if dp else None
    if dp:
        dp.ring_drops()
    r = Replay(pcap, pps, seconds).wait()
    after = settle()
    r["received"] = after - before
    r["kernel_backlog_drops"] = backlog_drops() - drops0
    if dp:
        r["ring_drops"] = dp.ring_drops()
    r["lost"] = r["sent"] - r["received"]
    r["offered_pps"] = pps
    r["achieved_pps"] = r["sent"] / r["seconds"] if r["seconds"] else 0
    if dp:
        stats1 = dp.tel.query("/cordon/stats")
        r["engine_dropped"] = {k: stats1[k] - stats0[k] for k in stats1
                               if k.startswith("dropped_") and stats1[k] != stats0[k]}
    return r


# ---------------------------------------------------------------------------------------
# Zero-loss rate

def zero_loss_rate(args, dp, pcap):
    """Highest rate with nothing lost that the sender also achieved (>= 97 %): doubling from
    args.zlr_start, then bisection. Capped by what tcpreplay can send on this machine."""
    trials = []

    def ok(pps):
        r = trial(pcap, pps, args.zlr_seconds, dp)
        good = r["lost"] == 0 and r["achieved_pps"] >= 0.97 * pps
        trials.append({**r, "zero_loss": good})
        log(f"zero-loss search: {pps} pps offered, {r['achieved_pps']:.0f} sent/s, "
            f"{r['lost']} lost ({r['kernel_backlog_drops']} in the kernel's backlog, "
            f"{r.get('ring_drops', 0)} at the af_packet RX ring) -> "
            f"{'ok' if good else 'no'}")
        time.sleep(1)  # let softirq processing catch up before the next trial
        return good

    lo, hi = 0, None
    pps = args.zlr_start
    while hi is None and pps <= args.zlr_max:
        if ok(pps):
            lo, pps = pps, pps * 2
        else:
            hi = pps
    if hi is None:
        hi = pps
    for _ in range(args.zlr_steps):
        if lo == 0 or hi - lo <= lo * 0.05:
            break
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    sender_limited = all(t["lost"] == 0 for t in trials)
    return lo, trials, sender_limited


# ---------------------------------------------------------------------------------------
# Latency

def percentiles(upper, counts, tsc_hz):
    total = sum(counts)
    out = {"packets": total}
    for name, frac in (("p50", 0.5), ("p99", 0.99), ("p99_9", 0.999), ("max", 1.0)):
        if total == 0:
            out[name + "_ns"] = None
            continue
        rank = max(1, min(total, int(frac * total)))
        seen = 0
        for u, c in zip(upper, counts):
            seen += c
            if seen >= rank:
                out[name + "_ns"] = u * 1e9 / tsc_hz
                break
    return out


def latency_run(args, dp, pcap, pps):
    rep = Replay(pcap, pps, args.warmup + args.latency_seconds)
    time.sleep(args.warmup)
    a = dp.tel.query("/cordon/latency")
    time.sleep(args.latency_seconds)
    b = dp.tel.query("/cordon/latency")
    r = rep.wait()
    n = len(b["packets"])
    ca = a["packets"] + [0] * (n - len(a["packets"]))
    counts = [y - x for x, y in zip(ca, b["packets"])]
    res = percentiles(b["upper_cycles"], counts, b["tsc_hz"])
    res.update({"offered_pps": pps, "sent": r["sent"], "histogram_upper_cycles": b["upper_cycles"],
                "histogram_packets": counts, "tsc_hz": b["tsc_hz"]})
    return res


# ---------------------------------------------------------------------------------------
# Policy swap under load

def swap_run(args, dp, gen, meta, pps):
    pcap = os.path.join(gen, "flows-swap.pcap")
    texts = [read(os.path.join(gen, "policy.json")), read(os.path.join(gen, "policy-b.json"))]
    samples = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            s = dp.tel.query("/cordon/stats")
            p = dp.tel.query("/ethdev/stats,1")
            samples.append((time.monotonic(), p["opackets"], s["policy_version"]))
            time.sleep(0.005)

    before = received()
    spoofed0 = spoofed_arrived()
    stats0 = dp.tel.query("/cordon/stats")
    dp.ring_drops()
    seconds = args.warmup + args.swaps * args.swap_every + 1
    rep = Replay(pcap, pps, seconds)
    t = threading.Thread(target=sampler)
    t.start()
    time.sleep(args.warmup)
    swaps = []
    for i in range(args.swaps):
        text = texts[(i + 1) % 2]  # B, A, B, ...
        t0 = time.monotonic()
        reply = dp.apply(text)
        t1 = time.monotonic()
        if not reply.get("ok"):
            raise RuntimeError(f"apply failed: {reply}")
        swaps.append({"sent_at": t0, "replied_at": t1, "apply_s": t1 - t0,
                      "version": reply["version"], "to": "B" if i % 2 == 0 else "A"})
        time.sleep(max(0.0, args.swap_every - (time.monotonic() - t0)))
    r = rep.wait()
    stop.set()
    t.join()
    after = settle()
    spoofed_forwarded = spoofed_arrived() - spoofed0
    ring_drops = dp.ring_drops()
    stats1 = dp.tel.query("/cordon/stats")
    drops = {k: stats1[k] - stats0[k] for k in stats1
             if k.startswith("dropped_") and stats1[k] != stats0[k]}
    frames = meta["swap_pcap"]["frames"]
    loops, rest = divmod(r["sent"], frames)
    expected_spoofed = loops * meta["swap_pcap"]["spoofed"] + rest // meta["swap_pcap"]["spoofed_every"]
    wrongly_dropped = sum(v for k, v in drops.items() if k != SPOOF_REASON)
    spoofed_dropped = drops.get(SPOOF_REASON, 0)
    # Spoofed frames are judged where they arrive (the counter on bdst0): one lost before the
    # engine saw it (at the RX ring) is neither dropped as spoofed nor forwarded.
    result = {"offered_pps": pps, "sent": r["sent"], "received": after - before,
              "expected_forwarded": r["sent"] - expected_spoofed,
              "expected_spoofed": expected_spoofed, "drops": drops,
              "allowed_dropped": wrongly_dropped, "spoofed_dropped": spoofed_dropped,
              "spoofed_forwarded": spoofed_forwarded, "ring_drops": ring_drops,
              "swaps": []}
    result["lost"] = (result["expected_forwarded"] - (result["received"] - spoofed_forwarded)
                      - wrongly_dropped)
    result["misjudged"] = wrongly_dropped + spoofed_forwarded
    # Throughput around each swap: forwarded per 50 ms bin, against the median before it.
    for s in swaps:
        active = next((ts for ts, _, v in samples if ts >= s["sent_at"] and v == s["version"]), None)
        pre = [x for x in samples if s["sent_at"] - 1.0 <= x[0] < s["sent_at"]]
        post = [x for x in samples if s["sent_at"] <= x[0] <= s["replied_at"] + 0.5]

        def rate(xs):
            return (xs[-1][1] - xs[0][1]) / (xs[-1][0] - xs[0][0]) if len(xs) > 1 and xs[-1][0] > xs[0][0] else None
        bins = []
        window = post
        i = 0
        while i < len(window):
            j = i
            while j < len(window) and window[j][0] - window[i][0] < 0.05:
                j += 1
            if j < len(window):
                bins.append((window[j][1] - window[i][1]) / (window[j][0] - window[i][0]))
            i = j if j > i else i + 1
        base = rate(pre)
        s_out = {"to": s["to"], "version": s["version"], "apply_reply_ms": s["apply_s"] * 1e3,
                 "active_after_ms": (active - s["sent_at"]) * 1e3 if active else None,
                 "rate_before_pps": base,
                 "min_50ms_rate_pps": min(bins) if bins else None}
        s_out["dip"] = (1 - s_out["min_50ms_rate_pps"] / base) if base and bins else None
        result["swaps"].append(s_out)
    return result


# ---------------------------------------------------------------------------------------
# Against the kernel

def kernel_runs(args, topo, gen, pps):
    """bridge (no filter), nft (the allowlist as sets), cordon: interleaved, args.kernel_runs
    rounds. Loss over the whole run; CPU time per forwarded packet over a window inside it:
    the sender's system time (its sends carry the kernel's forwarding as far as the next
    queue) + softirq time of all CPUs + the dataplane process's user and system time."""
    pcap = os.path.join(gen, "flows-64.pcap")
    policy = os.path.join(gen, "policy.json")
    # Leave out what overlaps an earlier element (the kernel would refuse it), check that
    # the rest loads as it is, and fall back to finding the refused ones by bisection.
    scripts, elements = nft_ruleset(policy, True)
    t0 = time.monotonic()
    refused = overlapping(scripts[1:])
    refused_set = {r.split(": ", 1)[1] for r in refused}
    check = [scripts[0]] + [element_script(t.split()[4], [e for e in elements_of(t) if e not in refused_set])
                            for t in scripts[1:]]
    more = nft_load(check, args.work, "probe")
    if more:
        log(f"nft: {len(more)} more elements refused by the kernel than predicted")
        refused += more
        refused_set |= {r.split(": ", 1)[1] for r in more}
    # The prediction is conservative (the kernel takes some elements nested in others):
    # offer each predicted one to the kernel on its own and keep those it takes.
    still, added_back = [], {}
    for r in refused:
        set_name, e = r.split(": ", 1)
        path = os.path.join(args.work, "probe-one.nft")
        with open(path, "w") as f:
            f.write(element_script(set_name, [e]))
        if run(["nft", "-f", path], ns=NS_MID, check=False).returncode == 0:
            added_back.setdefault(set_name, []).append(e)
        else:
            still.append(r)
    refused = still
    probe_s = time.monotonic() - t0
    run(["nft", "flush", "ruleset"], ns=NS_MID, check=False)
    files = {}
    for v, filtering in (("nft", True), ("bridge", False)):
        texts, _ = nft_ruleset(policy, filtering)
        files[v] = []
        for i, text in enumerate(texts):
            if i > 0:
                set_name = text.split()[4]
                elems = [e.strip() for e in text[text.index("{") + 1:text.rindex("}")].split(", ")]
                text = element_script(set_name, [e for e in elems if e not in refused_set])
            files[v].append(os.path.join(args.work, f"{v}-{i}.nft"))
            with open(files[v][-1], "w") as f:
                f.write(text)
        for set_name, elems in added_back.items():  # after the rest, as in the probe
            files[v].append(os.path.join(args.work, f"{v}-back-{set_name}.nft"))
            with open(files[v][-1], "w") as f:
                f.write(element_script(set_name, elems))
    log(f"nft: {elements} elements, {len(refused)} refused as overlapping ({probe_s:.1f} s)")
    hz = os.sysconf("SC_CLK_TCK")
    results = []
    for rnd in range(args.kernel_runs):
        for v in ("bridge", "nft", "cordon"):
            dp = None
            res = {"variant": v, "run": rnd, "offered_pps": pps}
            try:
                if v == "cordon":
                    dp = Dataplane(args, policy, latency=False)
                else:
                    topo.bridge(True)
                    t0 = time.monotonic()
                    for path in files[v]:
                        run(["nft", "-f", path], ns=NS_MID)
                    res["nft_load_s"] = time.monotonic() - t0
                    res["nft_elements"] = elements - len(refused) if v == "nft" else 0
                    res["nft_refused"] = len(refused)
                # Warm-up: cordon admits every flow on its first packet; the bridge learns MACs.
                trial(pcap, pps, 1, dp)  # its last read of the ring drops resets them
                before = received()
                rep = Replay(pcap, pps, args.kernel_seconds)
                time.sleep(0.3)
                w0 = (time.monotonic(), received(), task_ticks(rep.proc.pid), cpu_jiffies(),
                      task_ticks(dp.pid()) if dp else (0, 0))
                time.sleep(max(0.5, args.kernel_seconds - 0.8))
                w1 = (time.monotonic(), received(), task_ticks(rep.proc.pid), cpu_jiffies(),
                      task_ticks(dp.pid()) if dp else (0, 0))
                rr = rep.wait()
                after = settle()
                if dp:
                    res["ring_drops"] = dp.ring_drops()
                cpu_s = ((w1[2][1] - w0[2][1]) + (w1[3] - w0[3]) +
                         (w1[4][0] - w0[4][0]) + (w1[4][1] - w0[4][1])) / hz
                forwarded = w1[1] - w0[1]
                res.update({"sent": rr["sent"], "achieved_pps": rr["sent"] / rr["seconds"],
                            "received": after - before, "lost": rr["sent"] - (after - before),
                            "window_s": w1[0] - w0[0], "window_forwarded": forwarded,
                            "sender_system_s": (w1[2][1] - w0[2][1]) / hz,
                            "softirq_s": (w1[3] - w0[3]) / hz,
                            "dataplane_s": (w1[4][0] - w0[4][0] + w1[4][1] - w0[4][1]) / hz,
                            "cpu_ns_per_packet": cpu_s * 1e9 / forwarded if forwarded else None})
                if v == "nft":
                    res["expected_forwarded"] = rr["sent"]  # every flow is allowed
                log(f"kernel comparison round {rnd + 1} {v}: sent {rr['sent']}, lost {res['lost']}, "
                    f"{res['cpu_ns_per_packet'] or 0:.0f} ns CPU/packet")
            except Exception as e:
                res["error"] = str(e)
                log(f"kernel comparison {v}: {e}")
            finally:
                if dp:
                    dp.stop()
                else:
                    run(["nft", "flush", "ruleset"], ns=NS_MID, check=False)
                    topo.bridge(False)
            results.append(res)
    return results


def mmm(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt(s, digits=1, scale=1.0):
    if not s:
        return "—"
    return f"{s['median'] * scale:.{digits}f} ({s['min'] * scale:.{digits}f}–{s['max'] * scale:.{digits}f})"


BEGIN = "<!-- netns:begin -->"
END = "<!-- netns:end -->"


def render_md(doc):
    out = [BEGIN, "", "## Latency, policy swap under load, against the kernel (parts 4, 5, 7)", "",
           "Produced by `bench/run.sh netns` (bench/netns/netbench.py); method in bench/README.md. "
           "cordon-dataplane on `net_af_packet` (one worker lcore on CPU 1, `--idle-sleep-us` "
           "default 100) between veths in namespaces bench-src / bench-mid / bench-dst; "
           "the sender is tcpreplay at a fixed `--pps` on CPU 0.", ""]
    m = doc["machine"]
    out.append(f"* Load average: start {m['load_start']}; end {m['load_end']}. "
               f"Wall time {m['wall_s']} s. RT throttling: {m.get('rt_runtime', '—')}.")
    z = doc.get("zero_loss")
    if z:
        out.append(f"* Zero-loss rate (64-byte frames, 100k established UDP flows, 10k rules): "
                   f"**{z['pps']} pps**" + (" — every trial was loss-free: this is the most "
                   "tcpreplay could send on this machine, a lower bound of the dataplane's "
                   "zero-loss rate on af_packet" if z["sender_limited"] else "") + ".")
        ring = sum(t.get("ring_drops", 0) for t in z["trials"])
        lost = sum(t["lost"] for t in z["trials"])
        out.append(f"* Over the search's trials: {lost} frames lost, {ring} of them at the "
                   "dataplane's af_packet RX ring (tp_drops; the rest in the kernel's backlog "
                   "or the veths).")
    out.append("")
    lat = doc.get("latency")
    if lat:
        out += ["### Residence time inside the dataplane", "",
                "TSC after `rte_eth_rx_burst` returned to TSC before `rte_eth_tx_burst`, per "
                "forwarded packet (`--latency-histogram on`; buckets 12.5 % wide, upper bounds "
                "shown); warm-up excluded.", "",
                "| load | offered pps | packets | p50 (µs) | p99 (µs) | p99.9 (µs) | max (µs) |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for level, runs in lat.items():
            for r in runs:
                def us(k):
                    return "—" if r.get(k) is None else f"{r[k] / 1e3:.2f}"
                out.append(f"| {level} | {r['offered_pps']} | {r['packets']} | {us('p50_ns')} | "
                           f"{us('p99_ns')} | {us('p99_9_ns')} | {us('max_ns')} |")
        out += ["", "Target: p99 < 20 µs at 50 % load.", ""]
        if doc.get("charts", {}).get("latency"):
            out += [f"![residence time]({doc['charts']['latency']})", ""]
    sw = doc.get("swap")
    if sw:
        out += ["### Policy swap under load", "",
                f"10k-rule policy A ↔ policy B (same allowlist: each device's rules reversed and "
                f"renamed, plus one unused rule each) applied through the control socket "
                f"{len(sw['swaps'])} times while tcpreplay plays flows-swap.pcap (100k allowed "
                f"flows + 1 spoofed frame per 100, dropped under both) at {sw['offered_pps']} pps "
                f"(50 % of the zero-loss rate).", "",
                f"* Sent {sw['sent']}, expected forwarded {sw['expected_forwarded']}, received "
                f"{sw['received']}: **lost {sw['lost']}** ({sw['ring_drops']} frames dropped at "
                f"the af_packet RX ring); **misjudged {sw['misjudged']}** (allowed frames "
                f"dropped {sw['allowed_dropped']}, spoofed frames that reached bdst0 "
                f"{sw['spoofed_forwarded']}; spoofed frames sent {sw['expected_spoofed']}, "
                f"drops by reason {sw['drops']}).", "",
                "| swap | to | apply reply (ms) | new version seen in telemetry after (ms) | "
                "rate before (pps) | lowest 50 ms rate (pps) | dip |",
                "|---:|---|---:|---:|---:|---:|---:|"]
        for i, s in enumerate(sw["swaps"]):
            def f(v, d=0):
                return "—" if v is None else f"{v:.{d}f}"
            out.append(f"| {i + 1} | {s['to']} | {f(s['apply_reply_ms'], 1)} | "
                       f"{f(s['active_after_ms'], 1)} | {f(s['rate_before_pps'])} | "
                       f"{f(s['min_50ms_rate_pps'])} | {f(None if s['dip'] is None else s['dip'] * 100, 1)} % |")
        out += ["", "The apply reply comes once the dataplane enforces the new version "
                "(compile, publish, persist with fsync); after the swap every established flow "
                "is re-checked against the new policy on its next packet (policy epochs).", ""]
    k = doc.get("kernel")
    if k:
        out += ["### Against the kernel: nftables bridge firewall vs cordon-dataplane on af_packet", "",
                f"Same namespaces and veths, same offered load ({k['offered_pps']} pps, flows-64.pcap), "
                f"interleaved bridge → nft → cordon, {k['rounds']} rounds. *bridge*: a Linux bridge "
                f"with no rules (the kernel's forwarding cost alone); *nft*: the same bridge with "
                f"the 10k-rule allowlist as two concatenated interval sets "
                f"(`ipv4_addr . ipv4_addr . inet_proto . inet_service`, {k.get('nft_elements')} "
                f"elements loaded; {k.get('refused')} refused by the kernel as overlapping an "
                f"earlier element of the same device, left out) in a `bridge` family forward "
                f"chain, policy drop. Stateless: this kernel "
                f"has no bridge conntrack (`ct state` is refused), so replies would need their own "
                f"set; the trace has none. cordon is stateful.", "",
                "| variant | sent | lost (at cordon's RX ring) | CPU ns per forwarded packet | of which softirq (s) | sender system (s) | dataplane process (s) |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for v in ("bridge", "nft", "cordon"):
            s = k["summary"].get(v)
            if not s:
                continue
            ring = f" ({s.get('ring_drops', 0)})" if v == "cordon" else ""
            out.append(f"| {v} | {s['sent']} | {s['lost']}{ring} | {fmt(s['cpu_ns_per_packet'], 0)} | "
                       f"{fmt(s['softirq_s'], 2)} | {fmt(s['sender_system_s'], 2)} | {fmt(s['dataplane_s'], 2)} |")
        out += ["", "CPU time is sampled over a window inside each run (sender's system time, "
                "softirq time of all CPUs, the dataplane's user+system time; jiffies, 10 ms "
                "resolution) divided by the frames that arrived at bdst0 in the same window. "
                "The machine's other work adds to softirq time in every variant alike. cordon "
                "polls: at low load its CPU time is mostly its poll loop (idle sleep 100 µs).", ""]
        r = k.get("ratios")
        if r:
            out.append(f"Paired ratios (median of per-round ratios): nft / cordon CPU per packet "
                       f"{fmt(r.get('nft/cordon'), 2, 1.0)}; nft / bridge {fmt(r.get('nft/bridge'), 2)}.")
            out.append("")
        if doc.get("charts", {}).get("kernel"):
            out += [f"![CPU per packet]({doc['charts']['kernel']})", ""]
    for e in doc.get("errors", []):
        out.append(f"* ERROR: {e}")
    out += ["", END]
    return "\n".join(x for x in out if x is not None) + "\n"


def put_section(md_path, section, title):
    text = read(md_path) if os.path.exists(md_path) else f"# {title}\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        text = pre + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(md_path + ".tmp", "w") as f:
        f.write(text.rstrip("\n") + "\n")
    os.replace(md_path + ".tmp", md_path)


def put_json(json_path, key, value):
    doc = {}
    if os.path.exists(json_path):
        with open(json_path) as f:
            doc = json.load(f)
    doc[key] = value
    with open(json_path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(json_path + ".tmp", json_path)


def cmd_run(args):
    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.gen, "meta.json")) as f:
        meta = json.load(f)
    topo = Topology()
    doc = {"machine": {"load_start": read("/proc/loadavg"), "cpus": os.cpu_count()},
           "method": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
           "errors": [], "charts": {}}
    t_start = time.monotonic()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    pcap64 = os.path.join(args.gen, "flows-64.pcap")
    # The harness (and what it starts: ip, nft, tcpreplay) stays off the worker's CPU: a fork
    # there ran in the kernel for ~3 ms before the worker's wake-up could take the CPU
    # (perf sched, 2026-11-29), longer than the RX ring lasts at 140k pps.
    os.sched_setaffinity(0, {args.sender_cpu})
    rt_runtime = RtThrottle(args.rt and not args.rt_throttle)
    doc["machine"]["rt_runtime"] = rt_runtime.describe()
    try:
        rt_runtime.lift()
        topo.up()
        if "latency" in args.parts or "swap" in args.parts:
            dp = Dataplane(args, os.path.join(args.gen, "policy.json"), latency=True)
            try:
                # Every flow established before the search (a first packet costs more: the
                # rule lookup and the flow's insertion), at a rate well inside the dataplane's.
                trial(pcap64, 10000, 10, dp)
                zlr, trials, limited = zero_loss_rate(args, dp, pcap64)
                doc["zero_loss"] = {"pps": zlr, "sender_limited": limited, "trials": trials}
                log(f"zero-loss rate {zlr} pps" + (" (sender-limited)" if limited else ""))
                if "latency" in args.parts and zlr:
                    doc["latency"] = {}
                    for rnd in range(args.latency_rounds):
                        for pct in (10, 50, 90):
                            r = latency_run(args, dp, pcap64, max(1, zlr * pct // 100))
                            doc["latency"].setdefault(f"{pct} %", []).append(r)
                            log(f"latency at {pct} %: p50 {r['p50_ns']} p99 {r['p99_ns']} "
                                f"p99.9 {r['p99_9_ns']} max {r['max_ns']} ns")
                if "swap" in args.parts and zlr:
                    doc["swap"] = swap_run(args, dp, args.gen, meta, zlr // 2)
                    log(f"swap: lost {doc['swap']['lost']}, misjudged {doc['swap']['misjudged']}")
            finally:
                dp.stop()
        if "kernel" in args.parts:
            pps = args.kernel_pps or (doc.get("zero_loss", {}).get("pps", 0) // 2) or 50000
            runs = kernel_runs(args, topo, args.gen, pps)
            summary = {}
            for v in ("bridge", "nft", "cordon"):
                ok = [r for r in runs if r["variant"] == v and "error" not in r]
                if ok:
                    summary[v] = {"sent": sum(r["sent"] for r in ok), "lost": sum(r["lost"] for r in ok),
                                  "ring_drops": sum(r.get("ring_drops", 0) for r in ok),
                                  "cpu_ns_per_packet": mmm([r["cpu_ns_per_packet"] for r in ok]),
                                  "softirq_s": mmm([r["softirq_s"] for r in ok]),
                                  "sender_system_s": mmm([r["sender_system_s"] for r in ok]),
                                  "dataplane_s": mmm([r["dataplane_s"] for r in ok])}
            ratios = {}
            for num, den in (("nft", "cordon"), ("nft", "bridge"), ("cordon", "bridge")):
                paired = []
                for rnd in range(args.kernel_runs):
                    a = [r for r in runs if r["variant"] == num and r["run"] == rnd and r.get("cpu_ns_per_packet")]
                    b = [r for r in runs if r["variant"] == den and r["run"] == rnd and r.get("cpu_ns_per_packet")]
                    if a and b:
                        paired.append(a[0]["cpu_ns_per_packet"] / b[0]["cpu_ns_per_packet"])
                ratios[f"{num}/{den}"] = mmm(paired)
            doc["kernel"] = {"refused": next((r.get("nft_refused") for r in runs if "nft_refused" in r), None),
                             "offered_pps": pps, "rounds": args.kernel_runs, "runs": runs,
                             "summary": summary, "ratios": ratios,
                             "nft_elements": next((r.get("nft_elements") for r in runs if r["variant"] == "nft"), None)}
            doc["errors"] += [f"kernel {r['variant']} round {r['run']}: {r['error']}" for r in runs if "error" in r]
    except Exception as e:  # reported, and the namespaces are removed
        doc["errors"].append(str(e))
        log(f"error: {e}")
        import traceback
        traceback.print_exc()
    finally:
        topo.down()
        rt_runtime.restore()
    doc["machine"]["load_end"] = read("/proc/loadavg")
    doc["machine"]["wall_s"] = round(time.monotonic() - t_start, 1)
    if args.charts:
        try:
            doc["charts"] = charts(doc, args.md)
        except Exception as e:  # no matplotlib: the tables are still written
            log(f"charts: {e}")
    put_section(args.md, render_md(doc), "Benchmarks")
    put_json(args.json, "netns", doc)
    log(f"done in {doc['machine']['wall_s']} s")
    return 1 if doc["errors"] else 0


def charts(doc, md_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    base = os.path.splitext(md_path)[0]
    out = {}
    if doc.get("latency"):
        fig, ax = plt.subplots(figsize=(7, 4))
        for level, runs in doc["latency"].items():
            r = runs[-1]
            total = sum(r["histogram_packets"]) or 1
            xs, ys, seen = [], [], 0
            for u, c in zip(r["histogram_upper_cycles"], r["histogram_packets"]):
                seen += c
                if c:
                    xs.append(u * 1e6 / r["tsc_hz"])
                    ys.append(1 - seen / total + 1e-7)
            ax.step(xs, ys, where="post", label=f"{level} of zero-loss rate")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("residence time (µs)")
        ax.set_ylabel("fraction of packets slower")
        ax.set_title("cordon-dataplane residence time (net_af_packet)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(base + "-latency.png", dpi=100)
        plt.close(fig)
        out["latency"] = os.path.basename(base + "-latency.png")
    if doc.get("kernel", {}).get("summary"):
        s = doc["kernel"]["summary"]
        names = [v for v in ("bridge", "nft", "cordon") if v in s and s[v]["cpu_ns_per_packet"]]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        med = [s[v]["cpu_ns_per_packet"]["median"] for v in names]
        lo = [m - s[v]["cpu_ns_per_packet"]["min"] for v, m in zip(names, med)]
        hi = [s[v]["cpu_ns_per_packet"]["max"] - m for v, m in zip(names, med)]
        ax.bar(names, med, yerr=[lo, hi], capsize=4)
        ax.set_ylabel("CPU ns per forwarded packet")
        ax.set_title(f"at {doc['kernel']['offered_pps']} pps offered")
        fig.tight_layout()
        fig.savefig(base + "-kernel.png", dpi=100)
        plt.close(fig)
        out["kernel"] = os.path.basename(base + "-kernel.png")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--bin", required=True)
    r.add_argument("--gen", required=True, help="cordon_bench_pipeline_gen's output")
    r.add_argument("--work", required=True)
    r.add_argument("--md", required=True)
    r.add_argument("--json", required=True)
    r.add_argument("--parts", default="latency,swap,kernel")
    r.add_argument("--zlr-start", type=int, default=5000)
    r.add_argument("--zlr-max", type=int, default=1600000)
    r.add_argument("--zlr-steps", type=int, default=2)
    r.add_argument("--zlr-seconds", type=float, default=2)
    r.add_argument("--warmup", type=float, default=2)
    r.add_argument("--latency-seconds", type=float, default=3)
    r.add_argument("--latency-rounds", type=int, default=1)
    r.add_argument("--swaps", type=int, default=5)
    r.add_argument("--swap-every", type=float, default=2)
    r.add_argument("--kernel-runs", type=int, default=5)
    r.add_argument("--kernel-seconds", type=float, default=3)
    r.add_argument("--kernel-pps", type=int, default=0, help="0: half the zero-loss rate")
    r.add_argument("--charts", type=int, default=1)
    r.add_argument("--rt", type=int, default=1, help="cordon-dataplane's worker under SCHED_FIFO")
    r.add_argument("--rt-throttle", type=int, default=0,
                   help="keep the kernel's RT throttling (sched_rt_runtime_us) while the worker "
                        "runs under SCHED_FIFO; by default it is lifted for the run and restored")
    r.add_argument("--sender-cpu", type=int, default=int(os.environ.get("CORDON_BENCH_NETNS_SENDER_CPU", "0")),
                   help="tcpreplay's CPU (the dataplane's worker is on CPU 1)")
    args = ap.parse_args()
    args.parts = set(args.parts.split(","))
    Replay.cpu = args.sender_cpu
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
