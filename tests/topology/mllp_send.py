#!/usr/bin/python3
"""Send one HL7 v2 message over MLLP and wait for its ACK (Cordon lab client).

Usage:
  mllp_send.py HOST PORT                      # a sample ORU^R01 from CT1
  mllp_send.py HOST PORT --type ADT^A01       # the sample with another MSH-9
  mllp_send.py HOST PORT --file MSG.hl7       # a message from a file ('-' = stdin);
                                              # segments separated by \\r or newlines

Prints the ACK (one segment a line) on stdout. Exit status:
  0  ACK with MSA-1 AA or CA
  1  ACK with any other code (AE, AR, CE, CR)
  2  no ACK: connection refused/reset/closed, bad framing, or --timeout expired

Python standard library only; run with /usr/bin/python3.
"""

import argparse
import datetime
import socket
import sys

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def sample_message(msg_type, control_id):
    now = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    segs = [
        f"MSH|^~\\&|CT1|RADIOLOGY|RIS|HOSPITAL|{now}||{msg_type}|{control_id}|P|2.5",
        "PID|1||123456^^^HOSP^MR||DOE^JANE||19600101|F",
        "OBR|1|ORD1|ACC1|71020^CT CHEST^L|||" + now,
        "OBX|1|TX|71020^CT CHEST^L||Dose report: CTDIvol 7.2 mGy||||||F",
    ]
    return "\r".join(segs) + "\r"


def main():
    ap = argparse.ArgumentParser(description="send one HL7 message over MLLP")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--file", help="message file ('-' for stdin) instead of the sample")
    ap.add_argument("--type", default="ORU^R01", help="MSH-9 of the sample message")
    ap.add_argument("--control-id", default=None, help="MSH-10 of the sample message")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for connect and ACK")
    args = ap.parse_args()

    if args.file:
        f = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with f:
            text = f.read()
        text = "\r".join(s for s in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if s) + "\r"
    else:
        cid = args.control_id or datetime.datetime.now().strftime("CT1%Y%m%d%H%M%S%f")
        text = sample_message(args.type, cid)

    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as s:
            s.settimeout(args.timeout)
            s.sendall(SB + text.encode("utf-8") + EB + CR)
            buf = b""
            while True:
                end = buf.find(EB + CR)
                if end >= 0:
                    break
                data = s.recv(65536)
                if not data:
                    print("mllp_send: connection closed before the ACK", file=sys.stderr)
                    return 2
                buf += data
    except (OSError, socket.timeout) as e:
        print(f"mllp_send: {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2

    if buf[:1] != SB:
        print(f"mllp_send: bad ACK framing: {buf[:32]!r}", file=sys.stderr)
        return 2
    ack = buf[1:end].decode("utf-8", errors="replace")
    segs = [x for x in ack.split("\r") if x]
    print("\n".join(segs))
    for seg in segs:
        if seg.startswith("MSA"):
            fields = seg.split(seg[3]) if len(seg) > 3 else []
            code = fields[1] if len(fields) > 1 else ""
            return 0 if code in ("AA", "CA") else 1
    print("mllp_send: ACK has no MSA segment", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
