#!/usr/bin/env python3
"""Puts a part's section (part 3, bench/clinical_mix.cpp, by default; `--key scale` for part
6, `--key timing` for the run times) into the day's report, or carries it over from a
previous copy of the report after another part rewrote the files (bench/run.sh).

  mix_report.py put --md REPORT.md --json REPORT.json --section-md FILE --section-json FILE
  mix_report.py keep --from-md OLD.md --from-json OLD.json --md REPORT.md --json REPORT.json
  (both take [--key KEY], default mix)

Markdown: the section sits between <!-- KEY:begin --> and <!-- KEY:end -->, replaced in
place or appended. JSON: the KEY member, removed wherever it is and appended last; the
text of the other members is left exactly as it was.
"""
import argparse
import json
import os

BEGIN = "<!-- mix:begin -->"
END = "<!-- mix:end -->"
KEY = "mix"


def set_key(key):
    global BEGIN, END, KEY
    BEGIN, END, KEY = f"<!-- {key}:begin -->", f"<!-- {key}:end -->", key


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def put_md(path, section):
    block = f"{BEGIN}\n\n{section.strip()}\n\n{END}\n"
    text = read(path) if os.path.exists(path) else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):].lstrip("\n")
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block
    write(path, text)


def without_member(text):
    """The JSON object's text without the "mix" member (other members untouched)."""
    marker = f'\n  "{KEY}": '
    if marker not in text:
        return text
    start = text.index(marker)
    _, end = json.JSONDecoder().raw_decode(text, start + len(marker))
    head = text[:start].rstrip()
    tail = text[end:].lstrip()
    if tail.startswith(","):  # not the last member
        return head + "\n  " + tail[1:].lstrip()
    return head.rstrip(",") + "\n" + tail


def put_json(path, value):
    member = f'  "{KEY}": ' + json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
    text = read(path) if os.path.exists(path) else "{\n}\n"
    text = without_member(text)
    if KEY in json.loads(text):
        # Written with another indentation (bench/netns/netbench.py uses 1): rewrite the
        # whole object without the member.
        doc = json.loads(text)
        doc.pop(KEY)
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    head = text.rstrip()[:-1].rstrip()
    text = head + ("," if head != "{" else "") + "\n" + member + "\n}\n"
    json.loads(text)  # never write a report that does not parse
    write(path, text)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["put", "keep"])
    p.add_argument("--md", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--section-md")
    p.add_argument("--section-json")
    p.add_argument("--from-md")
    p.add_argument("--from-json")
    p.add_argument("--key", default="mix")
    a = p.parse_args()
    set_key(a.key)
    if a.what == "put":
        put_md(a.md, read(a.section_md))
        put_json(a.json, json.loads(read(a.section_json)))
        return
    old_md = read(a.from_md) if a.from_md and os.path.exists(a.from_md) else ""
    old_json = json.loads(read(a.from_json)) if a.from_json and os.path.exists(a.from_json) else {}
    if BEGIN in old_md and END in old_md and KEY in old_json:
        put_md(a.md, old_md[old_md.index(BEGIN) + len(BEGIN):old_md.index(END)])
        put_json(a.json, old_json[KEY])


if __name__ == "__main__":
    main()
