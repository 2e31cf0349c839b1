#!/usr/bin/python3
"""HL7 v2 MLLP receiver for the Cordon lab (the `ris` host).

Listens on TCP (default 0.0.0.0:2575). Each message arrives in an MLLP frame
(0x0B, message, 0x1C 0x0D). For each message it:

  * appends it to the received file (default /run/cordon-lab/ris-received.hl7):
    every segment on its own line (the segment separator \\r becomes \\n) and
    one empty line after each message, so `grep -c '^MSH|' FILE` counts messages;
  * answers an ACK in an MLLP frame: MSH with sending and receiving
    application/facility swapped, MSH-9 "ACK^<trigger>^ACK", then
    "MSA|AA|<MSH-10 of the message>". A framed payload that is not an HL7
    message (no MSH segment) is answered "MSA|AR|" and not stored.

Bad framing (bytes before 0x0B, 0x0B inside a message, a 0x1C not followed by
0x0D, a message over --max-bytes) closes the connection. Idle connections close
after --idle-timeout seconds. One thread per connection.

Python standard library only; run with /usr/bin/python3.
"""

import argparse
import datetime
import itertools
import os
import socket
import socketserver
import sys
import threading

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"

_ack_ids = itertools.count(1)
_write_lock = threading.Lock()


def log(msg):
    ts = datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    sys.stderr.write(f"{ts} mllp_receiver: {msg}\n")
    sys.stderr.flush()


class FramingError(Exception):
    pass


def split_frames(buf, max_bytes):
    """Return (complete messages, remaining bytes). Raise FramingError on garbage."""
    messages = []
    while buf:
        if buf[:1] != SB:
            # Tolerate line noise whitespace between frames, nothing else.
            stripped = buf.lstrip(b"\r\n \t")
            if not stripped:
                return messages, b""
            if stripped[:1] != SB:
                raise FramingError(f"expected 0x0B, got {stripped[:16]!r}")
            buf = stripped
        end = buf.find(EB)
        body_so_far = buf[1:] if end < 0 else buf[1:end]
        if SB in body_so_far:
            raise FramingError("0x0B inside a message")
        if end < 0:
            if len(buf) > max_bytes:
                raise FramingError(f"message longer than {max_bytes} bytes")
            return messages, buf
        if len(buf) < end + 2:
            return messages, buf  # wait for the trailing 0x0D
        if buf[end + 1:end + 2] != CR:
            raise FramingError("0x1C not followed by 0x0D")
        if end - 1 > max_bytes:
            raise FramingError(f"message longer than {max_bytes} bytes")
        messages.append(buf[1:end])
        buf = buf[end + 2:]
    return messages, b""


def segments(text):
    return [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s]


def build_ack(sep, msh_fields, code):
    """msh_fields: the MSH segment split on its field separator sep (fields[0] == 'MSH')."""
    f = list(msh_fields) + [""] * 20

    def get(n):  # HL7 field MSH-n; MSH-1 is the separator itself, so MSH-n is f[n - 1]
        return f[n - 1]

    enc = get(2) or "^~\\&"
    comp = enc[0] if enc else "^"
    msg_type = get(9).split(comp) if get(9) else []
    trigger = msg_type[1] if len(msg_type) > 1 else ""
    now = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    control_id = get(10)
    msh = [
        "MSH", enc,
        get(5), get(6),  # sending app/facility := original receiving
        get(3), get(4),  # receiving app/facility := original sending
        now, "",
        f"ACK{comp}{trigger}{comp}ACK" if trigger else "ACK",
        f"ACK{os.getpid()}-{next(_ack_ids)}",
        get(11) or "P",
        get(12) or "2.5",
    ]
    msa = ["MSA", code, control_id]
    return (sep.join(msh) + "\r" + sep.join(msa) + "\r").encode("utf-8")


def parse_msh(message):
    """Return (field separator, MSH fields), or None if the message does not start with MSH."""
    segs = segments(message)
    if not segs or not segs[0].startswith("MSH") or len(segs[0]) < 8:
        return None
    sep = segs[0][3]
    # fields[0] = "MSH", fields[1] = encoding characters (MSH-2); MSH-n is fields[n-1].
    return sep, segs[0].split(sep)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        self.request.settimeout(srv.idle_timeout)
        log(f"{peer}: connected")
        buf = b""
        count = 0
        try:
            while True:
                try:
                    data = self.request.recv(65536)
                except socket.timeout:
                    log(f"{peer}: idle for {srv.idle_timeout}s, closing")
                    return
                if not data:
                    break
                buf += data
                try:
                    messages, buf = split_frames(buf, srv.max_bytes)
                except FramingError as e:
                    log(f"{peer}: bad framing ({e}), closing")
                    return
                for raw in messages:
                    count += 1
                    self.answer(peer, raw)
        except OSError as e:
            log(f"{peer}: {e}")
        finally:
            log(f"{peer}: closed after {count} message(s)")

    def answer(self, peer, raw):
        text = raw.decode("utf-8", errors="replace")
        parsed = parse_msh(text)
        if parsed is None:
            log(f"{peer}: framed payload is not HL7 (no MSH), answering AR")
            ack = build_ack("|", ["MSH", "^~\\&"], "AR")
        else:
            sep, fields = parsed
            f = fields + [""] * 12
            log(f"{peer}: received {f[8] or '?'} control id {f[9] or '?'}")
            with _write_lock:
                with open(self.server.output, "a", encoding="utf-8") as out:
                    out.write("\n".join(segments(text)) + "\n\n")
                    out.flush()
            ack = build_ack(sep, fields, "AA")
        self.request.sendall(SB + ack + EB + CR)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description="HL7 v2 MLLP receiver (Cordon lab)")
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=2575)
    ap.add_argument("--output", default="/run/cordon-lab/ris-received.hl7",
                    help="file the received messages are appended to")
    ap.add_argument("--idle-timeout", type=float, default=120.0)
    ap.add_argument("--max-bytes", type=int, default=1 << 20)
    args = ap.parse_args()

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    open(args.output, "a", encoding="utf-8").close()
    srv = Server((args.host, args.port), Handler)
    srv.output = args.output
    srv.idle_timeout = args.idle_timeout
    srv.max_bytes = args.max_bytes
    log(f"listening on {args.host}:{args.port}, appending to {args.output}")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
