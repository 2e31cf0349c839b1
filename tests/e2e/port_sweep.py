"""Connects to every TCP port in a range at once and prints the ones that accept, one
per line ("open PORT"); a UDP probe reports whether anything answered. Used to show
that nothing on the appliance answers hosts outside the admin networks.

usage: port_sweep.py HOST FIRST LAST [--udp PORT] [--timeout SECONDS] [--rate PER_SECOND]
"""
import argparse
import collections
import errno
import select
import socket
import time


def sweep(host, first, last, timeout, rate):
    """Each port gets `timeout` seconds from its own connect(). With `rate`, connects are
    started at that many per second instead of all at once: through a WireGuard tunnel
    (wireguard-go queues 1,024 packets) thousands of SYNs at once overflow the queue, and
    their retransmissions, a second later, come back as one burst again."""
    ports = list(range(first, last + 1))
    pending = {}  # fd -> (socket, port)
    deadlines = collections.deque()  # (deadline, fd, socket), in start order
    answered = {}
    poller = select.poll()
    start = time.monotonic()
    started = 0
    while started < len(ports) or pending:
        now = time.monotonic()
        due = len(ports) if not rate else min(len(ports), int((now - start) * rate) + 1)
        while started < due:
            port = ports[started]
            started += 1
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex((host, port))
            if rc not in (0, errno.EINPROGRESS):
                answered[port] = "unreachable"  # e.g. no route: refused locally, nothing sent
                s.close()
                continue
            pending[s.fileno()] = (s, port)
            deadlines.append((now + timeout, s.fileno(), s))
            poller.register(s.fileno(), select.POLLOUT)
        for fd, _ in poller.poll(10 if started < len(ports) else 100):
            s, port = pending.pop(fd)
            poller.unregister(fd)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            try:
                s.getpeername()  # connected for real
            except OSError:
                err = err or errno.ENOTCONN
            answered[port] = "open" if err == 0 else ("closed" if err == errno.ECONNREFUSED else "error")
            s.close()
        now = time.monotonic()
        while deadlines and deadlines[0][0] <= now:
            _, fd, s = deadlines.popleft()
            if pending.get(fd, (None,))[0] is s:  # no answer in time: filtered
                del pending[fd]
                poller.unregister(fd)
                s.close()
    return answered


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("first", type=int)
    ap.add_argument("last", type=int)
    ap.add_argument("--udp", type=int)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--rate", type=float, default=0, help="connects per second (0: all at once)")
    a = ap.parse_args()
    for port, state in sorted(sweep(a.host, a.first, a.last, a.timeout, a.rate).items()):
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
