#!/usr/bin/python3
"""A minimal RDP client start, as BlueKeep (CVE-2019-0708) scanners send it: an X.224
Connection Request asking for standard RDP security, then an MCS Connect Initial whose
client network data requests the given static channels. The PDUs are built by the packet
cases' generator (tests/packets/generate.py), so both tests send the same bytes.

  rdp_client.py HOST PORT CHANNEL...   prints "reset", "closed" or "sent"
Run with /usr/bin/python3 (Debian's scapy, which the generator imports).
"""
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packets"))
from generate import connection_request, mcs_connect_initial  # noqa: E402


def main(host, port, channels):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.settimeout(3)
    try:
        s.sendall(connection_request())
        s.sendall(mcs_connect_initial(channels))
        # Nothing answers (the lab's server only reads): a reset is Cordon's.
        data = s.recv(1)
        print("closed" if not data else "sent")
    except ConnectionResetError:
        print("reset")
    except socket.timeout:
        print("sent")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
