#!/usr/bin/env python3
"""Part 6 of `make bench`: flow-table scale. cordon-dataplane (the real pipeline) with 10k,
100k and 1M concurrent established flows against testpmd io on the same pcap (throughput),
the memory those flows cost (measured: the process's RSS against a run with a 64-entry
table on the same pcap), and a flood of new flows at 10x the table size next to
established flows (what happens to them).

Called by bench/run.sh (`bench/run.sh scale`); method in bench/README.md, "Part 6".

  scale.py run --bin DIR --work DIR --section-md FILE --section-json FILE [options]

Writes the report section (markdown between <!-- scale:begin/end -->, and the JSON member
"scale") into the two files; run.sh puts them into the day's report.
"""

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pipeline"))
import pipeline as pl  # noqa: E402  (Telemetry, snapshot, machine facts, statistics)


def log(msg):
    print(f"bench scale: {msg}", file=sys.stderr, flush=True)


# Memory one mbuf takes with --no-huge: a whole 4 KiB page. The object (struct rte_mbuf 128 +
# default data room 2176 + mempool header) is ~2.4 KiB, but on 4 KiB pages that are not
# IOVA-contiguous the mempool places no object across a page boundary, so one fits per page
# (RssShmem of the runs shows it). Sizes EAL's -m for a pool that holds the whole pcap.
MBUF_BYTES = 4096


def mbuf_bytes(data_room):
    """Memory per mbuf: a page, or with a small data room (--data-room) the page shared by
    as many objects as fit (struct rte_mbuf 128 + data room + up to 192 of mempool header)."""
    if not data_room:
        return MBUF_BYTES
    return MBUF_BYTES / (MBUF_BYTES // (128 + data_room + 192))


def mem_mb(mbufs, data_room=0):
    return int(math.ceil(mbufs * mbuf_bytes(data_room) / 2**20)) + 256


def vm_status(pid):
    """VmRSS and its parts, in KiB, from /proc/PID/status."""
    out = {}
    for line in pl.read(f"/proc/{pid}/status").splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def move_helpers_off(pid, cpu):
    """Every thread of cordon-dataplane but the worker (its main thread, the main lcore) to
    the other CPUs, under the normal scheduler. The control thread is started by the main
    lcore and inherits its CPU and, under chrt, its SCHED_FIFO: on the worker's CPU it would
    never run (the worker polls without yielding) and the control socket would not answer.
    In production it runs on a control CPU too."""
    others = [c for c in range(os.cpu_count()) if c != cpu] or [cpu]
    for tid in os.listdir(f"/proc/{pid}/task"):
        if int(tid) == pid:
            continue
        try:
            os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))
            os.sched_setaffinity(int(tid), others)
        except OSError:
            pass  # a thread that has just exited


def control_stats(path, deadline):
    """cordon-dataplane's control socket `stats` (per-device counters, flows)."""
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            break
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"control socket {path} did not answer")
            time.sleep(0.05)
    try:
        s.sendall(b'{"cmd":"stats"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    return json.loads(buf)


def device_sums(stats, names):
    """Per-device counters summed over `names`."""
    out = {"forwarded": 0, "new_flows": 0, "dropped": 0, "dropped_reasons": {}}
    devices = stats.get("devices", {})
    for n in names:
        d = devices.get(n)
        if d is None:
            continue
        out["forwarded"] += d["forwarded_packets"]
        out["new_flows"] += d["new_flows"]
        for reason, v in d.get("dropped", {}).items():
            out["dropped"] += v
            out["dropped_reasons"][reason] = out["dropped_reasons"].get(reason, 0) + v
    return out


def minus(b, a):
    return {"forwarded": b["forwarded"] - a["forwarded"], "new_flows": b["new_flows"] - a["new_flows"],
            "dropped": b["dropped"] - a["dropped"],
            "dropped_reasons": {k: v - a["dropped_reasons"].get(k, 0)
                                for k, v in b["dropped_reasons"].items()
                                if v - a["dropped_reasons"].get(k, 0)}}


# ---------------------------------------------------------------------------------------
# The programs. Ports: 0 = device port (net_pcap, the pcap played forever), 1 = network
# port (net_null, or for the flood net_pcap playing the replies once). One forwarding lcore.

def command(args, v, prefix, work):
    gen = v["gen"]
    cpu = str(args.cpu)
    eal = ["--no-huge", "-m", str(mem_mb(v["mbufs"], args.data_room)), "--no-pci", "--log-level=lib.eal:notice",
           "--file-prefix", prefix, f"--vdev=net_pcap0,rx_pcap={gen}/{v['pcap']},infinite_rx=1"]
    if v.get("replies"):
        # Played once (no infinite_rx); no tx_pcap: what is sent to it is dropped and counted.
        eal.append(f"--vdev=net_pcap1,rx_pcap={gen}/{v['replies']}")
        network = "net_pcap1"
    else:
        eal.append("--vdev=net_null0,no-rx=1")
        network = "net_null0"
    if v["program"] == "testpmd":
        other = "1" if cpu == "0" else "0"
        cmd = [args.testpmd, "-l", f"{other},{cpu}", "--main-lcore", other] + eal + [
            "--", "--forward-mode=io", "--nb-cores=1", "--burst=32", "--rxd=1024", "--txd=1024",
            f"--total-num-mbufs={v['mbufs']}", "--mbcache=256", "--rxq=1", "--txq=1"]
        if args.data_room:
            cmd.append(f"--mbuf-size={args.data_room}")
    else:
        state = os.path.join(work, f"state-{prefix}")
        shutil.rmtree(state, ignore_errors=True)
        cmd = [os.path.join(args.bin, "cordon-dataplane"), "-l", cpu] + eal + [
            "--", "--pair", f"net_pcap0:{network}", "--policy", f"{gen}/policy.json",
            "--idle-sleep-us", "0", "--flows-per-worker", str(v["table"]),
            "--mbufs", str(v["mbufs"]), "--state-dir", state,
            "--control-socket", os.path.join(work, f"{prefix}.sock")]
    if args.rt:
        cmd = ["chrt", "-f", "1"] + cmd
    return cmd


def run_one(args, v, run_index, work):
    prefix = f"cordon-scale-{os.getpid()}-{v['key']}-{run_index}"
    cmd = command(args, v, prefix, work)
    env = dict(os.environ)
    if args.data_room and v["program"] == "cordon":
        env["LD_PRELOAD"] = os.path.join(args.bin, "cordon_bench_pool_shim.so")
        env["CORDON_BENCH_DATA_ROOM"] = str(args.data_room)
    logpath = os.path.join(work, f"{prefix}.log")
    sock = os.path.join(work, f"{prefix}.sock")
    cordon = v["program"] == "cordon"
    result = {"variant": v["key"], "run": run_index}
    with open(logpath, "w") as logf:
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                                preexec_fn=lambda: os.sched_setaffinity(0, range(os.cpu_count())))
    tel = pl.Telemetry(prefix)
    try:
        started = time.monotonic()
        tel.connect(started + 120, proc, 2 + (1 if cordon else 0))
        while tel.query("/ethdev/stats,1")["opackets"] == 0:
            if proc.poll() is not None or time.monotonic() > started + 120:
                raise RuntimeError("no packet forwarded within 120 s of start")
            time.sleep(0.02)
        result["startup_s"] = round(time.monotonic() - started, 2)
        if cordon:
            move_helpers_off(proc.pid, args.cpu)
        # Warm-up: two whole passes of the pcap (every flow seen, the table in its steady
        # state), then args.warmup seconds more.
        deadline = time.monotonic() + 120
        while tel.query("/ethdev/stats,0")["ipackets"] < 2 * v["frames"]:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the pcap was not played twice within 120 s")
            time.sleep(0.02)
        time.sleep(args.warmup)
        ticks0 = pl.process_cpu_ticks(proc.pid)
        c0 = control_stats(sock, time.monotonic() + 10) if cordon else None
        a = pl.snapshot(tel, cordon, 1)
        time.sleep(args.seconds)
        b = pl.snapshot(tel, cordon, 1)
        c1 = control_stats(sock, time.monotonic() + 10) if cordon else None
        ticks1 = pl.process_cpu_ticks(proc.pid)
        result["memory_kib"] = vm_status(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} while measured")
        dt = b["t"] - a["t"]
        rx = b["p0"]["ipackets"] - a["p0"]["ipackets"]
        tx = b["p1"]["opackets"] - a["p1"]["opackets"]
        result.update({
            "seconds": dt, "window_rx": rx, "window_tx": tx,
            "window_tolerance": int(max(rx, tx) / dt * (a["t_spread"] + b["t_spread"])) + 64,
            "rx_mpps": rx / dt / 1e6, "tx_mpps": tx / dt / 1e6,
            "cpu_share": (ticks1 - ticks0) / os.sysconf("SC_CLK_TCK") / dt,
            "rx_nombuf": b["p0"]["rx_nombuf"], "replies_received": b["p1"]["ipackets"],
        })
        if cordon:
            ea, eb = a["cordon"], b["cordon"]
            window_drops = {k[len("dropped_"):]: eb[k] - ea.get(k, 0) for k in eb
                            if k.startswith("dropped_") and eb[k] - ea.get(k, 0)}
            total_drops = {k[len("dropped_"):]: v2 for k, v2 in eb.items()
                           if k.startswith("dropped_") and v2}
            result.update({
                "flows_active": eb["flows_active"],
                "window_evicted": eb["flows_evicted"] - ea["flows_evicted"],
                "window_expired": eb["flows_expired"] - ea["flows_expired"],
                "window_engine_packets": eb["packets"] - ea["packets"],
                "window_drops": window_drops,
                "since_start_drops": total_drops,
                "since_start_packets": eb["packets"],
            })
            if v.get("established_devices"):
                est = minus(device_sums(c1, v["established_devices"]),
                            device_sums(c0, v["established_devices"]))
                new = minus(device_sums(c1, v["new_flow_devices"]),
                            device_sums(c0, v["new_flow_devices"]))
                result["established_window"] = est
                result["new_flow_window"] = new
                result["established_since_start"] = device_sums(c1, v["established_devices"])
    except Exception as e:  # a failed run is reported, not fatal for the others
        result["error"] = str(e)
        log(f"{prefix}: {e} (log: {logpath})")
    finally:
        tel.close()
        pl.stop_program(proc, 30)
        shutil.rmtree(f"{pl.RUNTIME_DIR}/{prefix}", ignore_errors=True)
        shutil.rmtree(os.path.join(work, f"state-{prefix}"), ignore_errors=True)
        result["exit_status"] = proc.returncode
    if "error" in result:
        with open(logpath) as f:
            result["log_tail"] = f.read()[-2000:]
    return result


# ---------------------------------------------------------------------------------------

def table_for(flows):
    """--flows-per-worker sized to the run: the smallest power of two that holds the flows."""
    t = 64
    while t < flows:
        t *= 2
    return t


def generate(args, gen, extra):
    os.makedirs(gen, exist_ok=True)
    subprocess.run([os.path.join(args.bin, "cordon_bench_pipeline_gen"), f"--out={gen}",
                    f"--rules={args.rules}"] + extra, check=True, preexec_fn=pl.normal_scheduling)
    with open(os.path.join(gen, "meta.json")) as f:
        return json.load(f)


def mmm(xs):
    return pl.median_min_max([x for x in xs if x is not None])


def paired(results, num, den, metric="tx_mpps"):
    rounds = {}
    for r in results:
        if "error" not in r and r["variant"] in (num, den):
            rounds.setdefault(r["run"], {})[r["variant"]] = r[metric]
    return mmm([v[num] / v[den] for v in rounds.values() if num in v and den in v and v[den] > 0])


def summarise(variants, results):
    out = {}
    for v in variants:
        ok = [r for r in results if r["variant"] == v["key"] and "error" not in r]
        out[v["key"]] = {
            "tx_mpps": mmm([r["tx_mpps"] for r in ok]),
            "rss_mib": mmm([r["memory_kib"].get("VmRSS", 0) / 1024 for r in ok]),
            "startup_s": mmm([r["startup_s"] for r in ok]),
            "cpu_share": mmm([r["cpu_share"] for r in ok]),
            "flows_active": mmm([r.get("flows_active") for r in ok]),
            "window_evicted": mmm([r.get("window_evicted") for r in ok]),
            "failed_runs": sum(1 for r in results if r["variant"] == v["key"] and "error" in r),
            "runs": len(ok),
        }
    return out


def cmd_run(args):
    os.makedirs(args.work, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    t_start = time.monotonic()
    variants, plan_sizes = [], []
    # The memory baseline's pcap: 32 flows, which a 64-entry table holds without evicting.
    small = os.path.join(args.work, "gen-small")
    small_meta = generate(args, small, ["--flows=32", "--pcaps=64"])
    for n in sizes:
        gen = os.path.join(args.work, f"gen-{n}")
        log(f"generating {n} flows")
        meta = generate(args, gen, [f"--flows={n}", "--pcaps=64"])
        mbufs = meta["frames"] + 8192
        common = {"gen": gen, "pcap": "flows-64.pcap", "frames": meta["frames"], "mbufs": mbufs,
                  "flows": n}
        t = table_for(n)
        vs = [dict(common, key=f"testpmd-{n}", program="testpmd", label="testpmd io"),
              dict(common, key=f"cordon-{n}", program="cordon", table=t,
                   label=f"cordon, {t}-entry table"),
              dict(common, key=f"cordon64-{n}", program="cordon", table=64, memory_baseline=True,
                   gen=small, frames=small_meta["frames"],
                   label="cordon, 64-entry table, 32 flows (memory baseline)")]
        variants += vs
        plan_sizes.append((n, vs))
    flood_vs = []
    if args.flood:
        gen = os.path.join(args.work, "gen-flood")
        log(f"generating the flood (table {args.flood_table})")
        meta = generate(args, gen, [f"--flood-table={args.flood_table}"])
        fm = meta["flood"]
        common = {"gen": gen, "pcap": "flood-dev.pcap", "frames": meta["frames"],
                  "mbufs": meta["frames"] + 8192, "flood": fm,
                  "established_devices": fm["established_devices"],
                  "new_flow_devices": fm["new_flow_devices"]}
        flood_vs = [dict(common, key="testpmd-flood", program="testpmd", replies="flood-replies.pcap",
                         label="testpmd io"),
                    dict(common, key="cordon-flood", program="cordon", table=fm["table"],
                         replies="flood-replies.pcap", label="cordon, established flows replied")]
        if args.flood_unreplied:
            flood_vs.append(dict(common, key="cordon-flood-unreplied", program="cordon",
                                 table=fm["table"], control=True, label="cordon, no replies (control)"))
        variants += flood_vs
    gen_s = time.monotonic() - t_start

    machine = {
        "cpu": pl.cpu_model(), "cpus": os.cpu_count(), "kernel": pl.platform.release(),
        "memory_total_kib": int(pl.read("/proc/meminfo").split()[1]),
        "thp": pl.read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "cpu_measured": args.cpu, "sched_fifo": bool(args.rt), "load_start": pl.read("/proc/loadavg"),
        "cordon_binary": os.path.join(args.bin, "cordon-dataplane"), "source": args.source,
    }
    results = []
    # Interleaved per group (a size, then the flood): its variants in turn, A B A B ...
    # The memory baseline and the flood's control run only in the first `baseline_runs`
    # rounds (RSS does not depend on the machine's load; the control is a reference).
    groups = [(f"{n} flows", vs) for n, vs in plan_sizes] + ([("flood", flood_vs)] if flood_vs else [])
    for name, vs in groups:
        for run in range(args.runs):
            for v in vs:
                if (v.get("memory_baseline") or v.get("control")) and run >= args.baseline_runs:
                    continue
                r = run_one(args, v, run, args.work)
                results.append(r)
                if "error" in r:
                    continue
                detail = (f"established devices: new flows {r['established_window']['new_flows']}, "
                          f"dropped {r['established_window']['dropped']}; evicted {r['window_evicted']}"
                          if "established_window" in r else
                          f"RSS {r['memory_kib'].get('VmRSS', 0) / 1024:.0f} MiB, "
                          f"start-up {r['startup_s']} s")
                log(f"{name} run {run + 1}/{args.runs} {v['key']}: {r['tx_mpps']:.3f} Mpps, {detail}")
    machine["load_end"] = pl.read("/proc/loadavg")
    machine["wall_s"] = round(time.monotonic() - t_start, 1)
    machine["generate_s"] = round(gen_s, 1)

    summary = summarise(variants, results)
    sizes_out = []
    for n, vs in plan_sizes:
        tp, co, base = (summary[v["key"]] for v in vs)
        row = {"flows": n, "table": vs[1]["table"], "mbufs": vs[0]["mbufs"],
               "eal_mem_mb": mem_mb(vs[0]["mbufs"], args.data_room), "testpmd": tp, "cordon": co,
               "baseline": base, "ratio_of_medians": None,
               "paired": paired(results, vs[1]["key"], vs[0]["key"])}
        if tp["tx_mpps"] and co["tx_mpps"]:
            row["ratio_of_medians"] = co["tx_mpps"]["median"] / tp["tx_mpps"]["median"]
        if co["rss_mib"] and base["rss_mib"]:
            delta = (co["rss_mib"]["median"] - base["rss_mib"]["median"]) * 2**20
            row["rss_delta_mib"] = delta / 2**20
            row["bytes_per_flow"] = delta / n
            row["bytes_per_table_entry"] = delta / vs[1]["table"]
        sizes_out.append(row)
    flood_out = None
    if flood_vs:
        ok = [r for r in results if r["variant"].startswith("cordon-flood") and "error" not in r]
        flood_out = {"meta": flood_vs[0]["flood"], "summary": {v["key"]: summary[v["key"]] for v in flood_vs},
                     "paired": paired(results, "cordon-flood", "testpmd-flood"), "runs": {}}
        for v in flood_vs[1:]:
            rs = [r for r in ok if r["variant"] == v["key"]]
            f = flood_vs[0]["flood"]
            share = f["established_frames"] / f["frames"]
            flood_out["runs"][v["key"]] = [{
                "run": r["run"], "tx_mpps": r["tx_mpps"], "flows_active": r["flows_active"],
                "window_rx": r["window_rx"], "window_tx": r["window_tx"],
                "window_evicted": r["window_evicted"], "window_expired": r["window_expired"],
                "window_drops": r["window_drops"], "since_start_drops": r["since_start_drops"],
                "established_expected_device_frames": round(r["window_rx"] * share),
                "established": r["established_window"], "new_flow_devices": r["new_flow_window"],
                "replies_received": r["replies_received"]} for r in rs]
    doc_notes = []
    for row in sizes_out:
        for r in results:
            if r["variant"] != f"cordon-{row['flows']}" or "error" in r:
                continue
            if r["flows_active"] != row["flows"] or r["window_evicted"] or r["window_drops"]:
                doc_notes.append(f"UNEXPECTED: cordon with {row['flows']} flows, run {r['run']}: "
                                 f"flows active {r['flows_active']}, evicted {r['window_evicted']}, "
                                 f"drops {r['window_drops']}.")
    if flood_out:
        for r in flood_out["runs"].get("cordon-flood", []):
            e = r["established"]
            if e["new_flows"] or e["dropped"] or r["window_drops"]:
                doc_notes.append(f"UNEXPECTED: flood run {r['run']}: established flows re-admitted "
                                 f"{e['new_flows']}, dropped {e['dropped']}; engine drops "
                                 f"{r['window_drops']}.")
    doc = {"machine": machine, "notes": doc_notes,
           "method": {"runs": args.runs, "baseline_runs": args.baseline_runs, "warmup_s": args.warmup,
                      "seconds": args.seconds, "rules": args.rules,
                      "mbuf_bytes_for_m": round(mbuf_bytes(args.data_room)),
                      "data_room": args.data_room or 2176,
                      "burst": 32, "descriptors": 1024, "mempool_cache": 256},
           "sizes": sizes_out, "flood": flood_out, "runs": results,
           "errors": [r for r in results if "error" in r]}
    with open(args.section_json, "w") as f:
        json.dump(doc, f, indent=2)
    with open(args.section_md, "w") as f:
        f.write(render_md(doc))
    log(f"done in {machine['wall_s']} s (generation {machine['generate_s']} s)")
    return 1 if doc["errors"] else 0


def fmt(s, digits=2):
    return pl.fmt(s, digits)


def render_md(doc):
    m = doc["machine"]
    p = doc["method"]
    out = ["## Flow-table scale (part 6)", ""]
    out.append("Produced by `bench/run.sh scale` (bench/scale/scale.py); method and caveats in "
               "bench/README.md, \"Part 6\".")
    out.append("")
    out.append(f"* Machine: {m['cpu']}, {m['cpus']} CPUs, kernel {m['kernel']}, "
               f"{m['memory_total_kib'] // 1024} MiB RAM; `--no-huge` (THP {m['thp']}); measured "
               f"lcore on CPU {m['cpu_measured']}{' under SCHED_FIFO' if m['sched_fifo'] else ''}.")
    out.append(f"* Load average: start {m['load_start']}; end {m['load_end']}. Part's wall time "
               f"{m['wall_s']} s (of which generating the pcaps {m['generate_s']} s).")
    out.append(f"* cordon-dataplane: {m['cordon_binary']} ({m['source']}).")
    out.append(f"* Workload: part 2's {p['rules']} rules and UDP flows device → network, one "
               f"64-byte frame per flow per pass of the pcap (`net_pcap`, `infinite_rx`) → "
               f"`net_null`. Each cell: median (min–max) of {p['runs']} runs, testpmd and cordon "
               f"interleaved per size; a run = start, two whole passes of the pcap, "
               f"{p['warmup_s']} s warm-up, {p['seconds']} s measured.")
    out.append("")
    out.append("### Throughput and memory by number of concurrent flows")
    out.append("")
    out.append("| flows | table (`--flows-per-worker`) | testpmd io (Mpps) | cordon (Mpps) | cordon / testpmd (of medians; paired) | flows active | evicted in window | RSS, table sized (MiB) | RSS, 64-entry table (MiB) | memory per flow (bytes) | per table entry (bytes) | mbufs, `-m` (MB) | start-up testpmd / cordon (s) |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in doc["sizes"]:
        ratio = "—" if r["ratio_of_medians"] is None else f"**{r['ratio_of_medians']:.2f}**; {fmt(r['paired'])}"
        out.append(
            f"| {r['flows']} | {r['table']} | {fmt(r['testpmd']['tx_mpps'])} | {fmt(r['cordon']['tx_mpps'])} | "
            f"{ratio} | {fmt(r['cordon']['flows_active'], 0)} | {fmt(r['cordon']['window_evicted'], 0)} | "
            f"{fmt(r['cordon']['rss_mib'], 0)} | {fmt(r['baseline']['rss_mib'], 0)} | "
            f"{r.get('bytes_per_flow', float('nan')):.0f} | {r.get('bytes_per_table_entry', float('nan')):.0f} | "
            f"{r['mbufs']}, {r['eal_mem_mb']} | {fmt(r['testpmd']['startup_s'], 1)} / "
            f"{fmt(r['cordon']['startup_s'], 1)} |")
    out.append("")
    out.append(f"Memory per flow = (RSS of cordon with the sized table − RSS of cordon with a 64-entry "
               f"table playing a 32-flow pcap, same pool size (`--mbufs`), same `-m`) / flows; RSS (`VmRSS`) read at the end of "
               f"the measured window, baseline median of {p['baseline_runs']} run(s). Per table entry: "
               f"the same difference over the table's capacity. The pool holds the whole pcap "
               f"(`net_pcap` keeps a copy of every frame in an mbuf): `--mbufs` = frames + 8192 with "
               f"a data room of {p['data_room']} bytes (testpmd `--mbuf-size`, cordon through "
               f"bench/pipeline/pool_shim.c), `-m` = mbufs × {p['mbuf_bytes_for_m']} bytes + 256 MB, "
               f"for both programs.")
    out.append("")
    f = doc.get("flood")
    if f:
        fm = f["meta"]
        s = f["summary"]
        out.append("### A flood of new flows at 10× the table size")
        out.append("")
        out.append(f"Table of {fm['table']} entries; {fm['established']} established flows (on "
                   f"{len(fm['established_devices'])} devices, each answered once by a reply from the "
                   f"network port at start, so they are replied UDP flows), then every pass of the "
                   f"pcap brings {fm['new_flows']} distinct new flows ({fm['factor']}× the table, on "
                   f"{len(fm['new_flow_devices'])} other devices) with {fm['repeats']} frames of every "
                   f"established flow spread among them ({fm['frames']} frames per pass). Between two "
                   f"frames of an established flow ~{fm['new_flows'] // (fm['repeats'] - 1) // fm['table']}× "
                   f"the table's size of new flows arrive, so an LRU alone would evict them.")
        out.append("")
        out.append("| program | Mpps (device → network) | vs testpmd (paired) | flows active | evicted in window | established devices: frames forwarded / expected in window | their drops | their new flows in window (re-admissions) | new-flow devices: new flows in window | engine drops in window |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        out.append(f"| testpmd io | {fmt(s['testpmd-flood']['tx_mpps'])} | — | — | — | — | — | — | — | — |")
        for key, runs in f["runs"].items():
            if not runs:
                continue
            label = "cordon" if key == "cordon-flood" else "cordon, no replies (control)"
            med = lambda xs: mmm(xs)  # noqa: E731
            drops = {}
            for r in runs:
                for k, v in r["window_drops"].items():
                    drops[k] = drops.get(k, 0) + v
            vs = "—" if key != "cordon-flood" else fmt(f["paired"])
            out.append(
                f"| {label} | {fmt(s[key]['tx_mpps'])} | {vs} | {fmt(med([r['flows_active'] for r in runs]), 0)} | "
                f"{fmt(med([r['window_evicted'] for r in runs]), 0)} | "
                f"{sum(r['established']['forwarded'] for r in runs)} / "
                f"{sum(r['established_expected_device_frames'] for r in runs)} | "
                f"{sum(r['established']['dropped'] for r in runs)} | "
                f"{sum(r['established']['new_flows'] for r in runs)} | "
                f"{sum(r['new_flow_devices']['new_flows'] for r in runs)} | "
                f"{', '.join(f'{k} {v}' for k, v in sorted(drops.items())) or '0'} |")
        out.append("")
        since = []
        for key, runs in f["runs"].items():
            drops = {}
            for r in runs:
                for k, v in r["since_start_drops"].items():
                    drops[k] = drops.get(k, 0) + v
            since.append(f"{key} " + (", ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "0"))
        out.append("Sums over the runs' measured windows unless a median (min–max) is shown. "
                   "*Expected* established frames = frames received on the device port × their share "
                   "of the pcap (exact up to where the window cuts the pcap). A re-admission is an "
                   "established flow that left the table and came back as a new flow (its device's "
                   "`new_flows` counter); 0 means none was evicted. Engine drops since start (the "
                   "first pass and the replies included): " + "; ".join(since) + ".")
        out.append("")
    for n in doc.get("notes", []):
        out.append(f"* {n}")
    if doc.get("notes"):
        out.append("")
    if doc["errors"]:
        out.append("### Failed runs")
        out.append("")
        for e in doc["errors"]:
            out.append(f"* {e['variant']} run {e['run']}: {e['error']}")
        out.append("")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--bin", required=True)
    r.add_argument("--testpmd", default=shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd")
    r.add_argument("--work", required=True)
    r.add_argument("--section-md", required=True)
    r.add_argument("--section-json", required=True)
    r.add_argument("--source", default="")
    r.add_argument("--rules", type=int, default=10000)
    r.add_argument("--sizes", default="10000,100000,1000000")
    r.add_argument("--runs", type=int, default=5)
    r.add_argument("--baseline-runs", type=int, default=1)
    r.add_argument("--warmup", type=float, default=0.25)
    r.add_argument("--seconds", type=float, default=2.0)
    r.add_argument("--cpu", type=int, default=1)
    r.add_argument("--rt", type=int, default=1)
    r.add_argument("--flood", type=int, default=1)
    r.add_argument("--flood-table", type=int, default=65536)
    r.add_argument("--flood-unreplied", type=int, default=1)
    r.add_argument("--data-room", type=int, default=0)
    args = ap.parse_args()
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
