#!/usr/bin/python3
"""A minimal RDP client start, as BlueKeep (CVE-2019-0708) scanners send it: an X.224
Connection Request asking for standard RDP security, then an MCS Connect Initial whose
client network data requests the given static channels ([MS-RDPBCGR] 2.2.1.1, 2.2.1.3).

  rdp_client.py HOST PORT CHANNEL...   prints "reset", "closed" or "sent"
Standard library only; run with /usr/bin/python3.
"""
import socket
import struct
import sys


def tpkt(payload):
    return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload


def connection_request():
    variable = b"Cookie: mstshash=user\r\n" + struct.pack("<BBHI", 0x01, 0, 8, 0)  # rdpNegReq
    return tpkt(bytes([6 + len(variable), 0xE0, 0, 0, 0, 0, 0]) + variable)


def ber_length(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


def ber(tag, content):
    return bytes([tag]) + ber_length(len(content)) + content


def per_length(n):
    return bytes([n]) if n < 0x80 else bytes([0x80 | (n >> 8), n & 0xFF])


def block(kind, body):
    return struct.pack("<HH", kind, len(body) + 4) + body


def cs_core():
    name = "WORKSTATION".encode("utf-16-le").ljust(32, b"\0")
    b = struct.pack("<IHHHHII", 0x00080004, 1024, 768, 0xCA01, 0xAA03, 0x409, 2600) + name
    b += struct.pack("<III", 4, 0, 12) + bytes(64)
    b += struct.pack("<HHIHHH", 0xCA01, 1, 0, 24, 0x07, 0x0001)
    return block(0xC001, b)


def cs_net(channels):
    b = struct.pack("<I", len(channels))
    for c in channels:
        b += c.encode()[:8].ljust(8, b"\0") + struct.pack("<I", 0x80800000)
    return block(0xC003, b)


def gcc(user_data):
    ccr = bytes([0x00, 0x08, 0x00, 0x10, 0x00, 0x01, 0xC0, 0x00]) + b"Duca" + \
        per_length(len(user_data)) + user_data
    return bytes([0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x01]) + per_length(len(ccr)) + ccr


def domain_parameters(*values):
    out = b""
    for v in values:
        out += bytes([0x02, 0x01, v]) if v < 0x80 else bytes([0x02, 0x03]) + v.to_bytes(3, "big")
    return out


def connect_initial(channels):
    user_data = cs_core() + block(0xC004, struct.pack("<II", 0x0D, 0)) + \
        block(0xC002, struct.pack("<II", 0x1B, 0)) + cs_net(channels)
    content = b"\x04\x01\x01" + ber(0x04, b"\x01") + ber(0x01, b"\xff") + \
        ber(0x30, domain_parameters(34, 2, 0, 1, 0, 1, 0xFFFF, 2)) + \
        ber(0x30, domain_parameters(1, 1, 0, 1, 0, 1, 0x420, 2)) + \
        ber(0x30, domain_parameters(0xFFFF, 0xFC17, 0, 1, 0, 1, 0xFFFF, 2)) + \
        ber(0x04, gcc(user_data))
    return tpkt(b"\x02\xf0\x80" + b"\x7f\x65" + ber_length(len(content)) + content)


def main(host, port, channels):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.settimeout(3)
    try:
        s.sendall(connection_request())
        s.sendall(connect_initial(channels))
        # Nothing answers (the lab's server only reads): a reset is Cordon's.
        data = s.recv(1)
        print("closed" if not data else "sent")
    except ConnectionResetError:
        print("reset")
    except socket.timeout:
        print("sent")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
