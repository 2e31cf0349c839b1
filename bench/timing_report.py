#!/usr/bin/env python3
"""The run time of each part of `make bench` (issue 9: the whole run under 15 minutes on a
2-CPU machine), written by bench/run.sh into the day's report as the section and JSON member
"timing". Parts run in separate invocations are merged: each part keeps the time of its
latest run, with when it ran and the load average around it.

  timing_report.py --md REPORT.md --json REPORT.json --what all|PART --wall SECONDS
                   --part NAME=SECONDS,START_EPOCH,LOAD_BEFORE,LOAD_AFTER ...

Prints the table to stderr as well.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ["classify", "pipeline", "mix", "netns", "scale", "charts"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--md", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--what", required=True)
    ap.add_argument("--wall", type=float, required=True)
    ap.add_argument("--part", action="append", default=[])
    a = ap.parse_args()
    old = {}
    if os.path.exists(a.json):
        with open(a.json) as f:
            old = json.load(f).get("timing", {})
    parts = dict(old.get("parts", {}))
    for p in a.part:
        name, rest = p.split("=", 1)
        seconds, start, load0, load1 = rest.split(",", 3)
        parts[name] = {
            "seconds": round(float(seconds), 1),
            "started": datetime.datetime.fromtimestamp(int(start), datetime.timezone.utc)
            .strftime("%Y-%m-%d %H:%M UTC"),
            "invocation": a.what, "load_before": load0, "load_after": load1}
    doc = {"parts": {k: parts[k] for k in ORDER if k in parts}}
    doc["sum_of_parts_s"] = round(sum(v["seconds"] for v in doc["parts"].values()), 1)
    whole = old.get("whole_run")
    if a.what == "all":
        whole = {"seconds": round(a.wall, 1),
                 "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    if whole:
        doc["whole_run"] = whole

    lines = ["## Run time", "",
             "Wall time of each part of `bench/run.sh` (the issue's budget: the whole `make bench` "
             "under 15 minutes on a 2-CPU machine; build excluded). A part run on its own keeps its "
             "latest time here.", "",
             "| part | seconds | ran | invocation | load average before → after (1, 5, 15 min) |",
             "|---|---:|---|---|---|"]
    for k, v in doc["parts"].items():
        lb = " ".join(v["load_before"].split()[:3])
        la = " ".join(v["load_after"].split()[:3])
        lines.append(f"| {k} | {v['seconds']:.0f} | {v['started']} | `bench/run.sh {v['invocation']}` | "
                     f"{lb} → {la} |")
    lines.append(f"| **sum** | **{doc['sum_of_parts_s']:.0f}** ({doc['sum_of_parts_s'] / 60:.1f} min) | | | |")
    if whole:
        lines.append("")
        lines.append(f"Whole `bench/run.sh` in one invocation ({whole['started']}): "
                     f"{whole['seconds']:.0f} s ({whole['seconds'] / 60:.1f} min).")
    section = "\n".join(lines) + "\n"
    print(section, file=sys.stderr)
    tmp_md = a.md + ".timing-section"
    tmp_json = a.json + ".timing-section"
    with open(tmp_md, "w") as f:
        f.write(section)
    with open(tmp_json, "w") as f:
        json.dump(doc, f)
    try:
        subprocess.run([sys.executable, os.path.join(HERE, "mix_report.py"), "put", "--key", "timing",
                        "--md", a.md, "--json", a.json, "--section-md", tmp_md,
                        "--section-json", tmp_json], check=True)
    finally:
        os.remove(tmp_md)
        os.remove(tmp_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
