#!/usr/bin/python3
"""PNG charts of a `make bench` report, drawn from its .json, linked from its .md in a
section of their own (replaced on every run). Run by bench/run.sh after the benchmarks,
with Debian's python3-matplotlib (/usr/bin/python3). The netns part draws its own two
charts (bench/netns/netbench.py); this draws the classifier, pipeline, mix and scale ones.

  charts.py --json REPORT.json --md REPORT.md
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BEGIN = "<!-- charts:begin -->"
END = "<!-- charts:end -->"


def errbars(cells):
    med = [c["median"] for c in cells]
    return med, [[m - c["min"] for m, c in zip(med, cells)], [c["max"] - m for m, c in zip(med, cells)]]


def classify_chart(doc, path):
    sizes = doc.get("sizes")
    if not sizes:
        return None
    keys = [k for k in ("engine", "engine_one_by_one", "rte_acl_avx2")
            if all(k in s["cycles_per_packet"] for s in sizes)]
    best = [s["cycles_per_packet"].get(f"rte_acl_{s.get('rte_acl_best_alg')}") for s in sizes]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / (len(keys) + 1)
    xs = range(len(sizes))
    for i, k in enumerate(keys):
        med, err = errbars([s["cycles_per_packet"][k] for s in sizes])
        ax.bar([x + i * width for x in xs], med, width, yerr=err, capsize=3, label=k)
    if all(best):
        med, err = errbars(best)
        ax.bar([x + len(keys) * width for x in xs], med, width, yerr=err, capsize=3,
               label="rte_acl best")
    ax.set_xticks([x + width * len(keys) / 2 for x in xs], [f"{s['rules']} rules" for s in sizes])
    ax.set_ylabel("TSC cycles per packet (lower is better)")
    ax.set_title("classification: engine vs rte_acl")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return "Classification, cycles per packet (median, min–max)"


def pipeline_chart(doc, path):
    p = doc.get("pipeline", {}).get("summary")
    if not p:
        return None
    pcaps = [k for k in p if isinstance(p[k], dict) and "cordon" in p[k]]
    progs = ["testpmd", "l3fwd_acl", "cordon", "cordon_new"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.2
    for i, prog in enumerate(progs):
        xs, med, lo, hi = [], [], [], []
        for j, pk in enumerate(pcaps):
            metric = "tx_mpps_per_cpu" if pk.endswith("2cores") else "tx_mpps"
            c = p[pk].get(prog, {}).get(metric)
            if c:
                xs.append(j + i * width)
                med.append(c["median"])
                lo.append(c["median"] - c["min"])
                hi.append(c["max"] - c["median"])
        if xs:
            ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, label=prog)
    ax.set_xticks([j + 1.5 * width for j in range(len(pcaps))],
                  [pk + (" (per CPU-s)" if pk.endswith("2cores") else "") for pk in pcaps])
    ax.set_ylabel("forwarded Mpps")
    ax.set_title("pipeline: cordon-dataplane vs l3fwd-acl vs testpmd io")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return "Pipeline, forwarded Mpps (median, min–max; 2 cores: per CPU-second)"


def mix_chart(doc, path):
    m = doc.get("mix", {}).get("variants")
    if not m:
        return None
    names = list(m)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.boxplot([m[n]["ns_per_packet"] for n in names], labels=names)
    ax.set_ylabel("ns per packet (one worker)")
    ax.set_title("clinical mix: inspection on vs off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return "Clinical mix, ns per packet over the interleaved runs"


def scale_chart(doc, path):
    sc = doc.get("scale", {})
    sizes = [r for r in sc.get("sizes", []) if r["cordon"].get("tx_mpps") and r["testpmd"].get("tx_mpps")]
    if not sizes:
        return None
    groups = [(f"{r['flows'] // 1000}k flows" if r["flows"] < 10**6 else f"{r['flows'] / 1e6:g}M flows",
               r["testpmd"]["tx_mpps"], r["cordon"]["tx_mpps"]) for r in sizes]
    flood = sc.get("flood") or {}
    fs = flood.get("summary", {})
    if fs.get("testpmd-flood", {}).get("tx_mpps") and fs.get("cordon-flood", {}).get("tx_mpps"):
        groups.append((f"flood, table {flood['meta']['table'] // 1024}Ki",
                       fs["testpmd-flood"]["tx_mpps"], fs["cordon-flood"]["tx_mpps"]))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.38
    for i, (label, idx) in enumerate((("testpmd io", 1), ("cordon-dataplane", 2))):
        med, err = errbars([g[idx] for g in groups])
        ax.bar([x + i * width for x in range(len(groups))], med, width, yerr=err, capsize=3, label=label)
    ax.set_xticks([x + width / 2 for x in range(len(groups))], [g[0] for g in groups], fontsize=8)
    ax.set_ylabel("forwarded Mpps (one core)")
    ax.set_title("flow-table scale: throughput")
    ax.legend(fontsize=8)
    mem = [r for r in sizes if r.get("bytes_per_flow") is not None]
    ax2.bar(range(len(mem)), [r["bytes_per_flow"] for r in mem], 0.6)
    ax2.set_xticks(range(len(mem)), [f"{r['flows']:,}" for r in mem], fontsize=8)
    ax2.set_ylabel("bytes of RSS per concurrent flow")
    ax2.set_title("memory per flow (measured)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return "Flow-table scale: Mpps (median, min–max) and measured memory per flow"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    args = ap.parse_args()
    with open(args.json) as f:
        doc = json.load(f)
    base = os.path.splitext(args.md)[0]
    links = []
    for name, draw in (("classify", classify_chart), ("pipeline", pipeline_chart), ("mix", mix_chart),
                       ("scale", scale_chart)):
        path = f"{base}-{name}.png"
        title = draw(doc, path)
        if title:
            links.append(f"![{title}]({os.path.basename(path)})")
    section = "\n".join([BEGIN, "", "## Charts", "",
                         "Drawn from the .json by bench/charts.py (the netns charts are in their "
                         "section).", ""] + [f"{link}\n" for link in links] + [END]) + "\n"
    with open(args.md) as f:
        text = f.read()
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        text = pre + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(args.md + ".tmp", "w") as f:
        f.write(text.rstrip("\n") + "\n")
    os.replace(args.md + ".tmp", args.md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
