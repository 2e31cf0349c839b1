"""Connects to every TCP port in a range at once and prints the ones that accept, one
per line ("open PORT"); a UDP probe reports whether anything answered. Used to show
that nothing on the appliance answers hosts outside the admin networks.

usage: port_sweep.py HOST FIRST LAST [--udp PORT] [--timeout SECONDS]
"""
import argparse
import errno
import select
import socket
import time


def sweep(host, first, last, timeout):
    pending = {}
    answered = {}
    for port in range(first, last + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex((host, port))
        if rc not in (0, errno.EINPROGRESS):
            answered[port] = "unreachable"  # e.g. no route: refused locally, nothing sent
            s.close()
            continue
        pending[s.fileno()] = (s, port)
    deadline = time.monotonic() + timeout
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            s, port = pending.pop(fd)
            poller.unregister(fd)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            try:
                s.getpeername()  # connected for real
            except OSError:
                err = err or errno.ENOTCONN
            answered[port] = "open" if err == 0 else ("closed" if err == errno.ECONNREFUSED else "error")
            s.close()
    for s, _ in pending.values():
        s.close()
    return answered


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("first", type=int)
    ap.add_argument("last", type=int)
    ap.add_argument("--udp", type=int)
    ap.add_argument("--timeout", type=float, default=3.0)
    a = ap.parse_args()
    for port, state in sorted(sweep(a.host, a.first, a.last, a.timeout).items()):
        print(f"{state} {port}")
    if a.udp:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(a.timeout)
        s.connect((a.host, a.udp))
        s.send(b"\x01" + b"\x00" * 147)  # shaped like a WireGuard handshake initiation
        try:
            s.recv(2048)
            print(f"udp-answered {a.udp}")
        except ConnectionRefusedError:
            print(f"udp-refused {a.udp}")
        except socket.timeout:
            pass


if __name__ == "__main__":
    main()
