#!/usr/bin/python3
"""Network probes run inside lab hosts (standard library only; /usr/bin/python3).

  probe.py tcp-sweep HOST PORTS            print the open TCP ports (parallel connects)
  probe.py udp-sweep HOST PORTS            print the UDP ports that answered
  probe.py listen-http PORT                a minimal HTTP server: 200 for every GET; logs
                                           each request line to stderr
  probe.py listen --tcp PORTS --udp PORTS  accept TCP (send "hello"), echo UDP, until killed;
                                           prints "listening" once every socket is bound
  probe.py http HOST PORT PATH             one GET; prints the status code, "reset",
                                           "closed" or "timeout"
  probe.py sink PORT                       accept TCP on PORT and read until the peer closes;
                                           prints "received N" per connection
  probe.py smb-server                      impacket's SMB server (SMB1 and SMB2) on 445
  probe.py smb-negotiate HOST DIALECT       negotiate SMB1 ("smb1") or SMB2 ("smb2") with
                                           impacket; prints "ok" or the error
  probe.py hold HOST PORT                  MLLP: send a message, print "ack" or "no-ack";
                                           then, per line read on stdin, send another and
                                           print "ack" / "no-ack" / "closed"
PORTS: comma-separated ports and ranges, e.g. 1-200,445,3389.
"""
import os
import resource
import select
import selectors
import socket
import sys
import time


def ports(spec):
    out = []
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def tcp_sweep(host, spec, timeout=3.0):
    want = ports(spec)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, len(want) + 64)), hard))
    pending = {}
    for p in want:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, p))
        pending[s] = p
    open_ports = []
    deadline = time.monotonic() + timeout
    # epoll, not select(): a sweep holds more than FD_SETSIZE (1024) sockets at once.
    with selectors.DefaultSelector() as sel:
        for s in pending:
            sel.register(s, selectors.EVENT_WRITE)
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                s = key.fileobj
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    open_ports.append(pending[s])
                sel.unregister(s)
                s.close()
                del pending[s]
    for s in pending:
        s.close()
    print(" ".join(str(p) for p in sorted(open_ports)))


def udp_sweep(host, spec, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for p in ports(spec):
        s.sendto(b"probe", (host, p))
    answered = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            break
        try:
            _, addr = s.recvfrom(2048)
            answered.add(addr[1])
        except ConnectionRefusedError:
            pass  # an ICMP port unreachable came back: not an open port
    print(" ".join(str(p) for p in sorted(answered)))


def listen(tcp_spec, udp_spec):
    socks = []
    for p in ports(tcp_spec):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", p))
        s.listen(64)
        socks.append(("tcp", s))
    for p in ports(udp_spec):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", p))
        socks.append(("udp", s))
    print("listening", flush=True)
    by_fd = {s.fileno(): (kind, s) for kind, s in socks}
    while True:
        readable, _, _ = select.select([s for _, s in socks], [], [])
        for s in readable:
            kind, _ = by_fd[s.fileno()]
            if kind == "tcp":
                c, _ = s.accept()
                try:
                    c.sendall(b"hello\n")
                except OSError:
                    pass
                c.close()
            else:
                data, addr = s.recvfrom(2048)
                s.sendto(data, addr)


def listen_http(port):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, fmt, *args):
            sys.stderr.write(self.requestline + "\n")
            sys.stderr.flush()

    server = http.server.ThreadingHTTPServer(("0.0.0.0", int(port)), Handler)
    print("listening", flush=True)
    server.serve_forever()


def mllp(control_id):
    msg = (f"MSH|^~\\&|CT1|RADIOLOGY|RIS|HOSPITAL|20260101000000||ORU^R01|{control_id}|P|2.5\r"
           "OBX|1|TX|71020^CT CHEST^L||Dose report||||||F\r")
    return b"\x0b" + msg.encode() + b"\x1c\x0d"


def hold(host, port):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.settimeout(3)

    def exchange(n):
        try:
            s.sendall(mllp(f"HOLD{os.getpid()}-{n}"))
            data = b""
            while b"\x1c\x0d" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    return "closed"
                data += chunk
            return "ack"
        except socket.timeout:
            return "no-ack"
        except OSError:
            return "closed"

    print(exchange(0), flush=True)
    n = 1
    for _ in sys.stdin:
        print(exchange(n), flush=True)
        n += 1


def http(host, port, path):
    try:
        s = socket.create_connection((host, int(port)), timeout=5)
        s.settimeout(5)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        data = s.recv(4096)
        print(data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else "closed")
    except ConnectionResetError:
        print("reset")
    except socket.timeout:
        print("timeout")


def sink(port):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", int(port)))
    server.listen(16)
    print("listening", flush=True)
    while True:
        c, _ = server.accept()
        total = 0
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                total += len(chunk)
        except OSError:
            pass
        c.close()
        print(f"received {total}", flush=True)


def smb_server():
    from impacket import smbserver
    server = smbserver.SimpleSMBServer(listenAddress="0.0.0.0", listenPort=445)
    server.setSMB2Support(True)
    server.addShare("IMAGES", "/tmp", "images")
    print("listening", flush=True)  # the socket is bound by the constructor
    server.start()


def smb_negotiate(host, dialect):
    from impacket.smb import SMB_DIALECT
    from impacket.smb3structs import SMB2_DIALECT_002
    from impacket.smbconnection import SMBConnection
    try:
        preferred = SMB_DIALECT if dialect == "smb1" else SMB2_DIALECT_002
        SMBConnection("*SMBSERVER", host, preferredDialect=preferred, timeout=5)
        print("ok")
    except Exception as e:  # impacket raises several types; the text is what matters
        print(f"error: {type(e).__name__}: {e}")


def main(argv):
    cmd = argv[1]
    if cmd == "tcp-sweep":
        tcp_sweep(argv[2], argv[3])
    elif cmd == "udp-sweep":
        udp_sweep(argv[2], argv[3])
    elif cmd == "listen":
        args = dict(zip(argv[2::2], argv[3::2]))
        listen(args.get("--tcp", ""), args.get("--udp", ""))
    elif cmd == "listen-http":
        listen_http(argv[2])
    elif cmd == "http":
        http(argv[2], argv[3], argv[4])
    elif cmd == "sink":
        sink(argv[2])
    elif cmd == "smb-server":
        smb_server()
    elif cmd == "smb-negotiate":
        smb_negotiate(argv[2], argv[3])
    elif cmd == "hold":
        hold(argv[2], argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
