#!/usr/bin/python3
"""Writes the end-to-end packet cases of tests/packets/ (see README.md there).

Run with Debian's interpreter, which has scapy:  /usr/bin/python3 tests/packets/generate.py
Every case folder gets policy.json, frames.pcap and expected.json. The output is
deterministic (fixed addresses, sequence numbers and timestamps, no randomness), so
regenerating without changing this script leaves git clean.

Side rule (run_case.cpp): a frame whose source MAC is a device's MAC arrives on the device
side, every other frame on the network side.
"""
import json
import os
import shutil
import struct
import sys

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "unit", "dataplane", "engine", "inspect", "data")

DEVICE_MAC = "02:c0:4d:00:00:10"
DEVICE_IP = "10.50.0.10"
GATEWAY_MAC = "02:00:00:00:00:01"  # every other host, through the hospital network
PACS = "10.50.0.20"
RIS = "10.50.0.30"
ATTACKER = "10.50.0.66"
WORKSTATION = "10.50.0.40"

BASE_TIME_S = 1767225600  # 2026-01-01T00:00:00Z
STEP_US = 1000  # one frame per millisecond

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"

VP = "virtual-patch"
ENDED = "drop_and_reset_both"  # an inspected connection that broke a rule or patch

SMB1_NEG_DETAIL = "patch smb1-block (MS17-010): SMBv1 request command 0x72"
MS17 = "patch ms17-010 (MS17-010, CVE-2017-0144): "
BLUEKEEP = "patch cve-2019-0708 (CVE-2019-0708): MS_T120 channel requested"
OVERLAP_DETAIL = "retransmitted bytes differ from the first copy"


# --- policies -------------------------------------------------------------------------

def policy(rules, patches, policy_patches=(), mode="enforce"):
    return {
        "schema": "cordon.policy/v1",
        "unknown_devices": "drop",
        "devices": [{
            "name": "ct-1", "mac": DEVICE_MAC, "ip": [DEVICE_IP], "mode": mode,
            "rules": list(rules), "patches": list(patches),
        }],
        "patches": list(policy_patches),
    }


def smb_rule(port=445):
    return {"name": "file-share", "dir": "in", "proto": "tcp", "peer": "10.50.0.0/24",
            "dport": port}


def rdp_rule():
    return {"name": "remote-service", "dir": "in", "proto": "tcp", "peer": "10.50.0.0/24",
            "dport": 3389}


def dicom_rule(dicom=None):
    r = {"name": "store-to-pacs", "dir": "out", "proto": "tcp", "peer": PACS + "/32",
         "dport": 104}
    if dicom is not None:
        r["app"] = {"dicom": dicom}
    return r


LAB_DICOM = {"calling_ae": ["CT1"], "called_ae": ["PACS"], "commands": ["C-ECHO", "C-STORE"],
             "sop_classes": [CT_IMAGE]}


def hl7_rule(types=("ORU^R01",)):
    return {"name": "results", "dir": "out", "proto": "tcp", "peer": RIS + "/32", "dport": 2575,
            "app": {"hl7": {"message_types": list(types)}}}


def web_rule():
    return {"name": "web-console", "dir": "in", "proto": "tcp", "peer": "10.50.0.0/24",
            "dport": 80}


TRAVERSAL = {"id": "local-http-traversal", "cve": "CVE-2021-41773", "dir": "in", "proto": "tcp",
             "dport": 80, "match": {"content": "/.%2e/"}, "action": "drop"}
# content with a hex block, anchored by offset/depth: a magic at bytes 4..11 of the stream.
MAGIC = {"id": "vendor-backdoor", "dir": "in", "proto": "tcp", "dport": 80,
         "match": {"content": "|de ad|BD|be ef|", "offset": 4, "depth": 8}, "action": "drop"}
ADMIN_PROBE = {"id": "admin-probe", "dir": "in", "proto": "tcp", "dport": 80,
               "match": {"regex": "^POST /admin[a-z]{0,8}"}, "action": "reset"}
SCANNER = {"id": "scanner-ua", "dir": "in", "proto": "tcp", "dport": 80,
           "match": {"content": "User-Agent: Nikto"}, "action": "alert"}
WEB_PATCHES = [TRAVERSAL, MAGIC, ADMIN_PROBE, SCANNER]
WEB_PATCH_IDS = [p["id"] for p in WEB_PATCHES]


# --- cases ----------------------------------------------------------------------------

class Case:
    def __init__(self, name, description, pol, big_endian=False):
        self.name = name
        self.description = description
        self.policy = pol
        self.frames = []
        self.connection_of = []  # the Tcp each frame belongs to
        self.ends = []  # (frame, connection) of drops that end a connection
        self.verdicts = []
        self.events = []
        self.big_endian = big_endian

    def add(self, frame, conn=None):
        self.frames.append(bytes(frame))
        self.connection_of.append(conn)
        return len(self.frames)

    def expect(self, frame, action, reason):
        """Frame `frame` gets this verdict. A drop that ends its connection (anything but
        flow-blocked) makes every later frame of that connection without an expectation of
        its own a flow-blocked drop."""
        self.verdicts.append({"frame": frame, "action": action, "reason": reason})
        if reason != "flow-blocked":
            self.ends.append((frame, self.connection_of[frame - 1]))

    def _finish(self):
        listed = {v["frame"] for v in self.verdicts}
        for frame, conn in self.ends:
            for f in range(frame + 1, len(self.frames) + 1):
                if f not in listed and conn is not None and self.connection_of[f - 1] is conn:
                    self.verdicts.append({"frame": f, "action": "drop", "reason": "flow-blocked"})
                    listed.add(f)
        self.verdicts.sort(key=lambda v: v["frame"])

    def event(self, reason, detail=None, kind="drop", **fields):
        e = {"kind": kind, "reason": reason}
        if detail is not None:
            e["detail"] = detail
        e.update(fields)
        self.events.append(e)

    def write(self):
        self._finish()
        d = os.path.join(HERE, self.name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "policy.json"), "w") as f:
            json.dump(self.policy, f, indent=2)
            f.write("\n")
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump({"description": self.description, "verdicts": self.verdicts,
                       "events": self.events}, f, indent=2)
            f.write("\n")
        e = ">" if self.big_endian else "<"
        out = [struct.pack(e + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
        for i, frame in enumerate(self.frames):
            t = BASE_TIME_S * 1_000_000 + i * STEP_US
            out.append(struct.pack(e + "IIII", t // 1_000_000, t % 1_000_000, len(frame),
                                   len(frame)))
            out.append(frame)
        with open(os.path.join(d, "frames.pcap"), "wb") as f:
            f.write(b"".join(out))


class Tcp:
    """One TCP connection of a case. `outbound`: the device opens it."""

    def __init__(self, case, outbound, peer, port, isn=0x10000000, rsn=0x20000000,
                 peer_port=49152):
        self.case = case
        self.outbound = outbound
        self.peer = peer
        self.port = port
        self.peer_port = peer_port
        self.isn = isn
        self.rsn = rsn
        self.sent = [0, 0]  # bytes sent so far by initiator, responder

    def _frame(self, from_initiator, flags, seq, ack, payload=b""):
        from_device = from_initiator == self.outbound
        device_port = self.peer_port if self.outbound else self.port
        peer_port = self.port if self.outbound else self.peer_port
        if from_device:
            f = (Ether(src=DEVICE_MAC, dst=GATEWAY_MAC) / IP(src=DEVICE_IP, dst=self.peer, id=1)
                 / TCP(sport=device_port, dport=peer_port, flags=flags, seq=seq, ack=ack,
                       window=64240))
        else:
            f = (Ether(src=GATEWAY_MAC, dst=DEVICE_MAC) / IP(src=self.peer, dst=DEVICE_IP, id=1)
                 / TCP(sport=peer_port, dport=device_port, flags=flags, seq=seq, ack=ack,
                       window=64240))
        if payload:
            f = f / payload
        return self.case.add(f, self)

    def handshake(self):
        self._frame(True, "S", self.isn, 0)
        self._frame(False, "SA", self.rsn, self.isn + 1)
        self._frame(True, "A", self.isn + 1, self.rsn + 1)
        return self

    def _seq(self, from_initiator, offset):
        base = self.isn if from_initiator else self.rsn
        return (base + 1 + offset) & 0xFFFFFFFF

    def send(self, data, offset=None, from_initiator=True):
        """Data at `offset` of the sender's stream (default: right after what it sent)."""
        k = 0 if from_initiator else 1
        if offset is None:
            offset = self.sent[k]
        ack = self._seq(not from_initiator, self.sent[1 - k])
        n = self._frame(from_initiator, "PA", self._seq(from_initiator, offset), ack, data)
        self.sent[k] = max(self.sent[k], offset + len(data))
        return n

    def reply(self, data, offset=None):
        return self.send(data, offset, from_initiator=False)

    def segments(self, data, size, from_initiator=True):
        """`data` in segments of `size` bytes; returns their frame numbers."""
        return [self.send(data[i:i + size], from_initiator=from_initiator)
                for i in range(0, len(data), size)]

    def out_of_order(self, data, cut, from_initiator=True):
        """data[cut:] first, then data[:cut]; returns (later half frame, first half frame)."""
        start = self.sent[0 if from_initiator else 1]
        second = self.send(data[cut:], start + cut, from_initiator)
        first = self.send(data[:cut], start, from_initiator)
        return second, first


# --- SMB ([MS-CIFS], [MS-SMB2]; builders as in tests/unit/.../inspect/smb_test.cpp) --

def p8(v):
    return struct.pack("<B", v & 0xFF)


def p16(v):
    return struct.pack("<H", v & 0xFFFF)


def p32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def direct_tcp(smb):
    n = len(smb)
    return bytes([0, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF]) + smb


def netbios(kind, payload):
    n = len(payload)
    return bytes([kind, (n >> 16) & 1, (n >> 8) & 0xFF, n & 0xFF]) + payload


def smb1(command, words, data, status=0, flags=0x18, flags2=0xC007, tid=0x0800, pid=0xFEFF,
         uid=0x0800, mid=0x41):
    b = b"\xffSMB" + p8(command) + p32(status) + p8(flags) + p16(flags2) + p16(pid >> 16)
    b += b"\0" * 8 + p16(0) + p16(tid) + p16(pid) + p16(uid) + p16(mid)
    return b + p8(len(words) // 2) + words + p16(len(data)) + data


def dialects(names):
    return b"".join(b"\x02" + n.encode() + b"\0" for n in names)


def negotiate_nt1(mid=1):
    """What `smbclient -m NT1` sends: NEGOTIATE offering only "NT LM 0.12"."""
    return direct_tcp(smb1(0x72, b"", dialects(["NT LM 0.12"]), flags2=0xC853, uid=0, tid=0,
                           mid=mid))


def negotiate_multi_protocol():
    """Windows 7's multi-protocol negotiate ([MS-SMB2] 3.2.4.2.2.1)."""
    return direct_tcp(smb1(0x72, b"", dialects([
        "PC NETWORK PROGRAM 1.0", "LANMAN1.0", "Windows for Workgroups 3.1a", "LM1.2X002",
        "LANMAN2.1", "NT LM 0.12", "SMB 2.002", "SMB 2.???"]), flags2=0xC853, uid=0, tid=0,
        mid=0))


def negotiate_nt1_response(mid=1):
    """Server's NT LM 0.12 NEGOTIATE response ([MS-CIFS] 2.2.4.52.2), extended security."""
    words = (p16(0) + p8(3) + p16(50) + p16(1) + p32(16644) + p32(65536) + p32(0)
             + p32(0x8001F3FD) + b"\0" * 8 + p16(0) + p8(0))
    guid = bytes(range(16))
    return direct_tcp(smb1(0x72, words, guid, flags=0x98, flags2=0xC853, uid=0, tid=0, mid=mid))


def smb2_header(command, message_id, flags=0, status=0):
    return (b"\xfeSMB" + p16(64) + p16(0) + p32(status) + p16(command) + p16(1) + p32(flags)
            + p32(0) + struct.pack("<Q", message_id) + p32(0xFEFF) + p32(0) + b"\0" * 24)


def smb2_negotiate():
    """SMB2 NEGOTIATE request ([MS-SMB2] 2.2.3) offering 2.0.2, 2.1 and 3.0."""
    b = smb2_header(0, 0) + p16(36) + p16(3) + p16(1) + p16(0) + p32(0x7F)
    b += bytes([0xAB] * 16) + b"\0" * 8 + p16(0x0202) + p16(0x0210) + p16(0x0300)
    return direct_tcp(b)


def smb2_negotiate_response():
    """[MS-SMB2] 2.2.4: dialect 2.1, no security buffer."""
    b = smb2_header(0, 0, flags=1) + p16(65) + p16(1) + p16(0x0210) + p16(0)
    b += bytes(range(16)) + p32(0x7) + p32(65536) + p32(65536) + p32(65536)
    b += b"\0" * 16 + p16(128) + p16(0) + p32(0)
    return direct_tcp(b)


def trans_request(command, setup, params, data, name=b"", timeout=0, mid=0x41):
    """TRANSACTION / TRANSACTION2 request laid out as a conforming client does."""
    wc = 14 + len(setup)
    first_free = 33 + 2 * wc + 2
    po = first_free + len(name)
    do = po + len(params)
    w = (p16(len(params)) + p16(len(data)) + p16(1024) + p16(4096) + p8(0) + p8(0) + p16(0)
         + p32(timeout) + p16(0) + p16(len(params)) + p16(po if params else 0)
         + p16(len(data)) + p16(do if data else 0) + p8(len(setup)) + p8(0))
    w += b"".join(p16(s) for s in setup)
    return direct_tcp(smb1(command, w, name + params + data, mid=mid))


def doublepulsar_ping():
    """Countercept detect_doublepulsar_smb.py's TRANS2 SESSION_SETUP ping, MID 0x41."""
    w = (p16(12) + p16(0) + p16(1) + p16(0) + p8(0) + p8(0) + p16(0) + p32(0x00A4D9A6) + p16(0)
         + p16(12) + p16(66) + p16(0) + p16(78) + p8(1) + p8(0) + p16(0x000E))
    return direct_tcp(smb1(0x32, w, b"\0" * 13, mid=0x41))


def trans2_find_first2():
    """An ordinary TRANS2 FIND_FIRST2 (subcommand 0x0001) listing \\*."""
    params = p16(0x16) + p16(1366) + p16(6) + p16(0x104) + p32(0) + "\\*".encode("utf-16-le")
    params += b"\0\0"
    return trans_request(0x32, [0x0001], params, b"", mid=0x42)


def nt_trans(total_parameter, total_data, parameter_count, parameter_offset, data_count,
             data_offset, function, byte_count, mid):
    w = (p8(1) + p16(0) + p32(total_parameter) + p32(total_data) + p32(total_parameter) + p32(0)
         + p32(parameter_count) + p32(parameter_offset) + p32(data_count) + p32(data_offset)
         + p8(1) + p16(function) + p16(0))
    return direct_tcp(smb1(0xA0, w, b"\0" * byte_count, mid=mid))


def eternalblue_nt_trans():
    """Metasploit ms17_010_eternalblue.rb's NT Trans: TotalDataCount 66512, 976 data bytes at
    104 overlapping the 30 parameter bytes at 75."""
    return nt_trans(30, 66512, 30, 75, 976, 104, 0, 1005, 0x40)


def incomplete_nt_trans(mid):
    """A conforming incomplete NT Trans (976 of 66512 data bytes, regions apart)."""
    return nt_trans(30, 66512, 30, 75, 976, 108, 2, 33 + 976, mid)


def nt_trans_secondary(total_parameter, total_data, data_count, displacement, mid):
    w = (b"\0" * 3 + p32(total_parameter) + p32(total_data) + p32(0) + p32(0) + p32(0)
         + p32(data_count) + p32(33 + 36 + 2) + p32(displacement) + p8(0))
    return direct_tcp(smb1(0xA1, w, b"\x42" * data_count, mid=mid))


def trans2_secondary(total_data, data, displacement, mid):
    w = (p16(0) + p16(total_data) + p16(0) + p16(0) + p16(0) + p16(len(data)) + p16(33 + 18 + 2)
         + p16(displacement) + p16(0))
    return direct_tcp(smb1(0x33, w, data, mid=mid))


def net_server_enum2():
    """NetServerEnum2 over \\PIPE\\LANMAN ([MS-RAP] 4.2): an ordinary TRANSACTION."""
    name = b"\0" + "\\PIPE\\LANMAN".encode("utf-16-le") + b"\0\0"
    params = bytes([0x68, 0x00]) + b"WrLehDO\0B16BBDz\0" + bytes([0x01, 0x00, 0x00, 0x18,
                                                                   0xFF, 0xFF, 0xFF, 0xFF])
    return trans_request(0x25, [], params, b"", name=name, timeout=5000, mid=0x1B02)


# --- RDP ([MS-RDPBCGR]; builders as in tests/unit/.../inspect/rdp_test.cpp) -------------

def tpkt(payload):
    return struct.pack(">BBH", 3, 0, len(payload) + 4) + payload


def connection_request(cookie="mstshash=user", protocols=0):
    v = b""
    if cookie:
        v += ("Cookie: " + cookie + "\r\n").encode()
    if protocols is not None:
        v += b"\x01\x00" + p16(8) + p32(protocols)
    return tpkt(bytes([6 + len(v), 0xE0, 0, 0, 0, 0, 0]) + v)


def connection_confirm(selected=0):
    """X.224 Connection Confirm with an rdpNegRsp ([MS-RDPBCGR] 2.2.1.2)."""
    v = b"\x02\x00" + p16(8) + p32(selected)
    return tpkt(bytes([6 + len(v), 0xD0, 0, 0, 0x12, 0x34, 0]) + v)


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
    return p16(kind) + p16(len(body) + 4) + body


def cs_core():
    b = p32(0x00080004) + p16(1024) + p16(768) + p16(0xCA01) + p16(0xAA03) + p32(0x409)
    b += p32(2600) + "WORKSTATION".encode("utf-16-le") + b"\0" * 10
    b += p32(4) + p32(0) + p32(12) + b"\0" * 64 + p16(0xCA01) + p16(1) + p32(0) + p16(24)
    b += p16(0x07) + p16(0x0001)
    return block(0xC001, b)


def cs_security():
    return block(0xC002, p32(0x1B) + p32(0))


def cs_cluster():
    return block(0xC004, p32(0x0D) + p32(0))


def cs_net(names):
    b = p32(len(names))
    for n in names:
        raw = n if isinstance(n, bytes) else n.encode()
        b += raw[:8].ljust(8, b"\0") + p32(0x80800000)
    return block(0xC003, b)


def gcc(user_data):
    ccr = bytes([0x00, 0x08, 0x00, 0x10, 0x00, 0x01, 0xC0, 0x00]) + b"Duca"
    ccr += per_length(len(user_data)) + user_data
    return bytes([0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x01]) + per_length(len(ccr)) + ccr


def domain_parameters(channels, users, max_pdu):
    b = b""
    for v in (channels, users, 0, 1, 0, 1, max_pdu, 2):
        b += bytes([2, 1, v]) if v < 0x80 else bytes([2, 3, v >> 16, (v >> 8) & 0xFF, v & 0xFF])
    return b


def connect_initial(gcc_data):
    content = (b"\x04\x01\x01" + ber(0x04, b"\x01") + ber(0x01, b"\xff")
               + ber(0x30, domain_parameters(34, 2, 0xFFFF))
               + ber(0x30, domain_parameters(1, 1, 0x420))
               + ber(0x30, domain_parameters(0xFFFF, 0xFC17, 0xFFFF)) + ber(0x04, gcc_data))
    return b"\x7f\x65" + ber_length(len(content)) + content


def mcs_connect_initial(channels, extra_blocks=b""):
    user = cs_core() + cs_cluster() + cs_security() + extra_blocks + cs_net(channels)
    return tpkt(b"\x02\xf0\x80" + connect_initial(gcc(user)))


RDESKTOP = ["rdpdr", "rdpsnd", "cliprdr"]
FREERDP = ["rdpdr", "rdpsnd", "cliprdr", "drdynvc", "rail"]
BLUEKEEP_CHANNELS = ["rdpsnd", "MS_T120"]
TLS_CLIENT_HELLO = bytes([0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03]) \
    + bytes(range(32)) + b"\x00\x00\x02\x00\x2f\x01\x00"


# --- DICOM (captured DCMTK associations, tests/unit/.../inspect/data) ------------------

def read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def capture(kind):
    """(requestor bytes, acceptor bytes, [(from requestor, length)]) of echo or store."""
    segments = []
    with open(os.path.join(DATA, kind + "-segments.txt")) as f:
        for line in f:
            who, n = line.split()
            segments.append((who == "requestor", int(n)))
    return bytearray(read(kind + "-requestor.bin")), bytearray(read(kind + "-acceptor.bin")), \
        segments


def set_ae(stream, offset, title):
    stream[offset:offset + 16] = title.encode().ljust(16)


def replay(conn, requestor, acceptor, segments, split=None):
    """Replays a captured association on `conn` (the device is the requestor). `split`:
    {segment index: function(conn, bytes) -> frame numbers} to send that segment differently.
    Returns the frame numbers of each segment (a list per segment)."""
    sent = [0, 0]
    frames = []
    for i, (from_requestor, n) in enumerate(segments):
        k = 0 if from_requestor else 1
        data = bytes((requestor if from_requestor else acceptor)[sent[k]:sent[k] + n])
        if split and i in split:
            frames.append(split[i](conn, data))
        else:
            frames.append([conn.send(data, from_initiator=from_requestor)])
        sent[k] += n
    return frames


def one_byte(conn, data):
    return conn.segments(data, 1)


# --- HL7 / MLLP -----------------------------------------------------------------------

def mllp(message_type, control_id="1", sep="|", enc="^~\\&"):
    comp = enc[0]
    t = message_type.replace("^", comp)
    msg = (f"MSH{sep}{enc}{sep}CT1{sep}RADIOLOGY{sep}RIS{sep}HOSPITAL{sep}20260101120000{sep}{sep}"
           f"{t}{sep}{control_id}{sep}P{sep}2.5\r"
           f"PID{sep}1{sep}{sep}12345{sep}{sep}ANONYMOUS{comp}PATIENT\r"
           f"OBR{sep}1{sep}{sep}{sep}71020{comp}CHEST XRAY\r"
           f"OBX{sep}1{sep}TX{sep}71020{sep}{sep}CTDIvol 12.3 mGy{sep}{sep}{sep}{sep}{sep}{sep}F\r")
    return b"\x0b" + msg.encode() + b"\x1c\r"


def hl7_ack(control_id="1"):
    msg = (f"MSH|^~\\&|RIS|HOSPITAL|CT1|RADIOLOGY|20260101120001||ACK^R01|A{control_id}|P|2.5\r"
           f"MSA|AA|{control_id}\r")
    return b"\x0b" + msg.encode() + b"\x1c\r"


# --- the cases ------------------------------------------------------------------------

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def blocked_after(c, conn, frame_from_initiator=True, data=b"\0" * 8):
    """One more segment on an ended connection: dropped as flow-blocked, no event."""
    n = conn.send(data, from_initiator=frame_from_initiator)
    c.expect(n, "drop", "flow-blocked")
    return n


# smb1-block ------------------------------------------------------------------------

SMB1_POLICY = policy([smb_rule()], ["smb1-block"])


@case
def smb1_nt1_negotiate():
    c = Case("smb1-block-nt1-negotiate",
             "smb1-block: smbclient -m NT1 NEGOTIATE (\"NT LM 0.12\" only) ends the connection",
             SMB1_POLICY)
    t = Tcp(c, False, ATTACKER, 445).handshake()
    n = t.send(negotiate_nt1())
    c.expect(n, ENDED, VP)
    c.event(VP, SMB1_NEG_DETAIL, device="ct-1", src=ATTACKER, dst=DEVICE_IP, dst_port=445)
    blocked_after(c, t, data=negotiate_nt1(2))
    return c


@case
def smb1_multi_protocol():
    c = Case("smb1-block-multi-protocol-negotiate",
             "smb1-block: Windows 7's SMB1 multi-protocol NEGOTIATE offering SMB 2.x passes, "
             "and so does the server's SMB2 answer (an SMB1 answer would be refused)",
             SMB1_POLICY)
    t = Tcp(c, False, WORKSTATION, 445).handshake()
    t.send(negotiate_multi_protocol())
    t.reply(smb2_negotiate_response())
    return c


@case
def smb1_netbios_139():
    c = Case("smb1-block-netbios-139",
             "smb1-block: NT1 NEGOTIATE over NetBIOS session service (tcp/139) after a "
             "session request and positive response", policy([smb_rule(139)], ["smb1-block"]))
    t = Tcp(c, False, ATTACKER, 139).handshake()
    called = b"\x20" + b"CKFDENECFDEFFCFGEFFCCACACACACACA" + b"\0"
    calling = b"\x20" + b"EJEOEMEJEOFFFIEOEEEOCACACACACAAA" + b"\0"
    t.send(netbios(0x81, called + calling))
    t.reply(netbios(0x82, b""))
    c.expect(t.send(netbios(0x00, negotiate_nt1()[4:])), ENDED, VP)
    c.event(VP, SMB1_NEG_DETAIL, dst_port=139)
    return c


@case
def smb1_one_byte():
    c = Case("smb1-block-one-byte-segments",
             "smb1-block evasion: NT1 NEGOTIATE sent in 1-byte segments is refused at the "
             "segment that completes it", SMB1_POLICY)
    t = Tcp(c, False, ATTACKER, 445).handshake()
    frames = t.segments(negotiate_nt1(), 1)
    c.expect(frames[-1], ENDED, VP)
    c.event(VP, SMB1_NEG_DETAIL)
    return c


@case
def smb1_out_of_order():
    c = Case("smb1-block-out-of-order",
             "smb1-block evasion: the NEGOTIATE's second half first (buffered, forwarded), "
             "then the first half: refused once assembled", SMB1_POLICY)
    t = Tcp(c, False, ATTACKER, 445).handshake()
    _, first = t.out_of_order(negotiate_nt1(), 20)
    c.expect(first, ENDED, VP)
    c.event(VP, SMB1_NEG_DETAIL)
    return c


@case
def smb1_overlap():
    c = Case("smb1-block-overlap-conflict",
             "smb1-block evasion: an SMB2 NEGOTIATE header buffered out of order, then an "
             "overlapping segment rewriting it into SMB1: conflicting overlap",
             SMB1_POLICY)
    t = Tcp(c, False, ATTACKER, 445).handshake()
    smb2 = smb2_negotiate()
    t.send(smb2[4:40], 4)  # out of order: the gap is the session header
    smb1_bytes = negotiate_nt1()
    n = t.send(smb1_bytes[:40], 0)
    c.expect(n, ENDED, "tcp-overlap-conflict")
    c.event("tcp-overlap-conflict", OVERLAP_DETAIL)
    return c


@case
def smb2_negotiate_passes():
    c = Case("smb1-block-smb2-negotiate-passes",
             "smb1-block negative: SMB2 NEGOTIATE request and response pass", SMB1_POLICY)
    t = Tcp(c, False, WORKSTATION, 445).handshake()
    t.send(smb2_negotiate())
    t.reply(smb2_negotiate_response())
    return c


@case
def smb2_one_byte_passes():
    c = Case("smb1-block-smb2-one-byte-segments-pass",
             "smb1-block negative: SMB2 NEGOTIATE in 1-byte segments, then its response, pass",
             SMB1_POLICY)
    t = Tcp(c, False, WORKSTATION, 445).handshake()
    t.segments(smb2_negotiate(), 1)
    t.reply(smb2_negotiate_response())
    return c


@case
def smb2_out_of_order_passes():
    c = Case("smb1-block-smb2-out-of-order-passes",
             "smb1-block negative: SMB2 NEGOTIATE delivered out of order, with a keepalive "
             "before it, passes", SMB1_POLICY)
    t = Tcp(c, False, WORKSTATION, 445).handshake()
    t.send(b"\x85\x00\x00\x00")  # NetBIOS keepalive, as Samba sends on 445
    t.out_of_order(smb2_negotiate(), 50)
    t.reply(smb2_negotiate_response())
    return c


@case
def smb1_without_patch_passes():
    c = Case("smb1-block-not-enabled-nt1-passes",
             "smb1-block negative: a device with only ms17-010 lets an ordinary SMB1 "
             "NEGOTIATE and its response pass", policy([smb_rule()], ["ms17-010"]))
    t = Tcp(c, False, WORKSTATION, 445).handshake()
    t.send(negotiate_nt1())
    t.reply(negotiate_nt1_response())
    return c


# ms17-010 ---------------------------------------------------------------------------

MS17_POLICY = policy([smb_rule()], ["ms17-010"])
BOTH_SMB_POLICY = policy([smb_rule()], ["smb1-block", "ms17-010"])


def smb1_session(c, peer=ATTACKER):
    t = Tcp(c, False, peer, 445).handshake()
    t.send(negotiate_nt1())
    t.reply(negotiate_nt1_response())
    return t


@case
def ms17_doublepulsar():
    c = Case("ms17-010-doublepulsar-ping",
             "ms17-010: the DoublePulsar TRANS2 SESSION_SETUP ping after an SMB1 negotiate",
             MS17_POLICY)
    t = smb1_session(c)
    c.expect(t.send(doublepulsar_ping()), ENDED, VP)
    c.event(VP, MS17 + "DoublePulsar request", device="ct-1", src=ATTACKER)
    blocked_after(c, t, data=doublepulsar_ping())
    return c


@case
def ms17_doublepulsar_with_smb1_block():
    c = Case("ms17-010-doublepulsar-named-over-smb1-block",
             "ms17-010 with smb1-block also enabled: the event names MS17-010/DoublePulsar, "
             "not just SMBv1 (the ping is the first message: smb1-block would refuse a "
             "NEGOTIATE before it)", BOTH_SMB_POLICY)
    t = Tcp(c, False, ATTACKER, 445).handshake()
    c.expect(t.send(doublepulsar_ping()), ENDED, VP)
    c.event(VP, MS17 + "DoublePulsar request")
    return c


@case
def ms17_eternalblue_nt_trans():
    c = Case("ms17-010-eternalblue-nt-trans",
             "ms17-010: EternalBlue's NT Trans (data overlapping parameters, TotalDataCount "
             "66512)", MS17_POLICY)
    t = smb1_session(c)
    c.expect(t.send(eternalblue_nt_trans()), ENDED, VP)
    c.event(VP, MS17 + "EternalBlue transaction")
    return c


@case
def ms17_type_mismatch():
    c = Case("ms17-010-eternalblue-type-mismatch",
             "ms17-010: a conforming incomplete NT Trans continued by a TRANS2_SECONDARY of the "
             "same MID (srv.sys types the transaction by its last message)", MS17_POLICY)
    t = smb1_session(c)
    t.send(incomplete_nt_trans(0x40))
    c.expect(t.send(trans2_secondary(4096, b"\x41" * 1024, 976, 0x40)), ENDED, VP)
    c.event(VP, MS17 + "EternalBlue transaction")
    return c


@case
def ms17_one_byte():
    c = Case("ms17-010-doublepulsar-one-byte-segments",
             "ms17-010 evasion: the DoublePulsar ping in 1-byte segments", MS17_POLICY)
    t = smb1_session(c)
    frames = t.segments(doublepulsar_ping(), 1)
    # Reported as soon as the captured header (72 bytes of the SMB message) is complete.
    c.expect(frames[4 + 72 - 1] if len(frames) >= 76 else frames[-1], ENDED, VP)
    c.event(VP, MS17 + "DoublePulsar request")
    return c


@case
def ms17_out_of_order():
    c = Case("ms17-010-eternalblue-out-of-order",
             "ms17-010 evasion: EternalBlue's NT Trans in three segments, delivered 2, 3, 1",
             MS17_POLICY)
    t = smb1_session(c)
    msg = eternalblue_nt_trans()
    start = t.sent[0]
    t.send(msg[40:500], start + 40)
    t.send(msg[500:], start + 500)
    c.expect(t.send(msg[:40], start), ENDED, VP)
    c.event(VP, MS17 + "EternalBlue transaction")
    return c


@case
def ms17_overlap():
    c = Case("ms17-010-overlap-conflict",
             "ms17-010 evasion: a benign FIND_FIRST2 sent, then its bytes retransmitted as a "
             "DoublePulsar ping over the same sequence numbers", MS17_POLICY)
    t = smb1_session(c)
    start = t.sent[0]
    benign = trans2_find_first2()
    t.send(benign[:60], start + 10)  # out of order, buffered
    ping = doublepulsar_ping()
    c.expect(t.send(ping[:70], start), ENDED, "tcp-overlap-conflict")
    c.event("tcp-overlap-conflict", OVERLAP_DETAIL)
    return c


@case
def ms17_nt1_session_passes():
    c = Case("ms17-010-smb1-session-passes",
             "ms17-010 negative: SMB1 negotiate, response and an SMB1 ECHO pass", MS17_POLICY)
    t = smb1_session(c, WORKSTATION)
    echo = direct_tcp(smb1(0x2B, p16(1), b"ping", mid=0x10))
    t.send(echo)
    t.reply(direct_tcp(smb1(0x2B, p16(1), b"ping", flags=0x98, mid=0x10)))
    return c


@case
def ms17_net_server_enum2_passes():
    c = Case("ms17-010-net-server-enum2-passes",
             "ms17-010 negative: an ordinary TRANSACTION (NetServerEnum2 over \\PIPE\\LANMAN)",
             MS17_POLICY)
    t = smb1_session(c, WORKSTATION)
    t.send(net_server_enum2())
    return c


@case
def ms17_find_first2_passes():
    c = Case("ms17-010-trans2-find-first2-passes",
             "ms17-010 negative: a TRANS2 like DoublePulsar's but with the FIND_FIRST2 "
             "subcommand, in 1-byte segments", MS17_POLICY)
    t = smb1_session(c, WORKSTATION)
    t.segments(trans2_find_first2(), 1)
    return c


@case
def ms17_nt_trans_secondary_passes():
    c = Case("ms17-010-nt-trans-with-secondary-passes",
             "ms17-010 negative: a conforming NT Trans continued by NT_TRANSACT_SECONDARY "
             "messages of the same type, second one out of order", MS17_POLICY)
    t = smb1_session(c, WORKSTATION)
    t.send(incomplete_nt_trans(0x50))
    t.send(nt_trans_secondary(30, 66512, 1024, 976, 0x50))
    t.out_of_order(nt_trans_secondary(30, 66512, 1024, 2000, 0x50), 30)
    return c


# cve-2019-0708 ---------------------------------------------------------------------

RDP_POLICY = policy([rdp_rule()], ["cve-2019-0708"])


def rdp_start(c, peer=ATTACKER, protocols=0):
    t = Tcp(c, False, peer, 3389).handshake()
    t.send(connection_request("mstshash=user", protocols))
    t.reply(connection_confirm(0))
    return t


@case
def rdp_bluekeep():
    c = Case("cve-2019-0708-ms-t120",
             "cve-2019-0708: MCS Connect Initial requesting rdpsnd and MS_T120 (BlueKeep PoC)",
             RDP_POLICY)
    t = rdp_start(c)
    c.expect(t.send(mcs_connect_initial(BLUEKEEP_CHANNELS)), ENDED, VP)
    c.event(VP, BLUEKEEP, device="ct-1", src=ATTACKER, dst_port=3389)
    blocked_after(c, t)
    return c


@case
def rdp_bluekeep_lower():
    c = Case("cve-2019-0708-lower-case",
             "cve-2019-0708: \"ms_t120\" binds the same channel (case-insensitive)", RDP_POLICY)
    t = rdp_start(c)
    c.expect(t.send(mcs_connect_initial(["rdpdr", "ms_t120"])), ENDED, VP)
    c.event(VP, BLUEKEEP)
    return c


@case
def rdp_bluekeep_unterminated():
    c = Case("cve-2019-0708-unterminated-name",
             "cve-2019-0708: an 8-character channel name without NUL starting with MS_T120 "
             "(rdp.h: MS_T120 to a comparison of the first seven characters)", RDP_POLICY)
    t = rdp_start(c)
    c.expect(t.send(mcs_connect_initial([b"Ms_t120X"])), ENDED, VP)
    c.event(VP, device="ct-1")
    return c


@case
def rdp_bluekeep_one_byte():
    c = Case("cve-2019-0708-one-byte-segments",
             "cve-2019-0708 evasion: the Connect Initial in 1-byte segments", RDP_POLICY)
    t = rdp_start(c)
    msg = mcs_connect_initial(BLUEKEEP_CHANNELS)
    frames = t.segments(msg, 1)
    end = msg.index(b"MS_T120") + 8  # the channel name's 8 bytes complete it
    c.expect(frames[end - 1], ENDED, VP)
    c.event(VP, BLUEKEEP)
    return c


@case
def rdp_bluekeep_out_of_order():
    c = Case("cve-2019-0708-out-of-order",
             "cve-2019-0708 evasion: the Connect Initial's tail (with MS_T120) first", RDP_POLICY)
    t = rdp_start(c)
    msg = mcs_connect_initial(BLUEKEEP_CHANNELS)
    _, first = t.out_of_order(msg, 100)
    c.expect(first, ENDED, VP)
    c.event(VP, BLUEKEEP)
    return c


@case
def rdp_bluekeep_overlap():
    c = Case("cve-2019-0708-overlap-conflict",
             "cve-2019-0708 evasion: the channel list sent as rdpdr/cliprdr out of order, then "
             "retransmitted with MS_T120 over it", RDP_POLICY)
    t = rdp_start(c)
    benign = mcs_connect_initial(["rdpsnd", "cliprdr"])
    evil = mcs_connect_initial(BLUEKEEP_CHANNELS)
    assert len(benign) == len(evil)
    start = t.sent[0]
    t.send(benign[200:], start + 200)
    c.expect(t.send(evil, start), ENDED, "tcp-overlap-conflict")
    c.event("tcp-overlap-conflict", OVERLAP_DETAIL)
    return c


@case
def rdp_rdesktop_passes():
    c = Case("cve-2019-0708-rdesktop-passes",
             "cve-2019-0708 negative: rdesktop's rdpdr, rdpsnd, cliprdr", RDP_POLICY)
    t = rdp_start(c, WORKSTATION)
    t.send(mcs_connect_initial(RDESKTOP))
    t.reply(tpkt(b"\x02\xf0\x80" + b"\x7f\x66\x00"))  # server's Connect Response start
    return c


@case
def rdp_freerdp_one_byte_passes():
    c = Case("cve-2019-0708-freerdp-one-byte-passes",
             "cve-2019-0708 negative: FreeRDP's five channels (drdynvc, rail) in 1-byte "
             "segments", RDP_POLICY)
    t = rdp_start(c, WORKSTATION)
    t.segments(mcs_connect_initial(FREERDP), 1)
    return c


@case
def rdp_tls_passes():
    c = Case("cve-2019-0708-tls-passes",
             "cve-2019-0708 negative: TLS requested and selected; the ClientHello follows the "
             "Connection Request", RDP_POLICY)
    t = Tcp(c, False, WORKSTATION, 3389).handshake()
    t.send(connection_request("mstshash=user", 3))
    t.reply(connection_confirm(1))
    t.send(TLS_CLIENT_HELLO)
    return c


@case
def rdp_out_of_order_passes():
    c = Case("cve-2019-0708-out-of-order-passes",
             "cve-2019-0708 negative: rdesktop's Connect Initial out of order", RDP_POLICY)
    t = rdp_start(c, WORKSTATION)
    t.out_of_order(mcs_connect_initial(RDESKTOP), 150)
    return c


@case
def rdp_t120_elsewhere():
    c = Case("cve-2019-0708-ms-t120-outside-channel-list",
             "cve-2019-0708: MS_T120 bytes outside CS_NET (an unknown client data block), which "
             "rdp.h reports as requested (defence in depth)", RDP_POLICY)
    t = rdp_start(c)
    c.expect(t.send(mcs_connect_initial(["rdpdr"], block(0xC0FF, b"xMS_T120x"))), ENDED, VP)
    c.event(VP)
    return c


# dicom-pdu-sanity ------------------------------------------------------------------

SANITY_POLICY = policy([dicom_rule()], ["dicom-pdu-sanity"])
SANITY = "patch dicom-pdu-sanity (PS3.8): "
# The catalog's default action for dicom-pdu-sanity: drop, without resets.
SANITY_ACTION = "drop"


def pacs(c):
    return Tcp(c, True, PACS, 104, peer_port=40000).handshake()


@case
def sanity_not_dicom():
    c = Case("dicom-pdu-sanity-unknown-pdu-type",
             "dicom-pdu-sanity: an HTTP request on the DICOM port (no PDU type 0x47)",
             SANITY_POLICY)
    t = pacs(c)
    c.expect(t.send(b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n"), SANITY_ACTION, VP)
    c.event(VP, SANITY + "unknown_pdu_type: PDU type", device="ct-1", dst=PACS)
    return c


@case
def sanity_pdu_too_large():
    c = Case("dicom-pdu-sanity-pdu-too-large",
             "dicom-pdu-sanity: an A-ASSOCIATE-RQ header claiming a 2 GiB PDU",
             SANITY_POLICY)
    t = pacs(c)
    c.expect(t.send(b"\x01\x00\x7f\xff\xff\xff\x00\x01\x00\x00"), SANITY_ACTION, VP)
    c.event(VP, SANITY + "pdu_too_large: PDU-length above the cap")
    return c


@case
def sanity_bad_ae():
    c = Case("dicom-pdu-sanity-invalid-ae-title",
             "dicom-pdu-sanity: the captured echo's A-ASSOCIATE-RQ with a control character "
             "in the calling AE title, in 1-byte segments", SANITY_POLICY)
    rq, ac, segs = capture("echo")
    rq[26:42] = b"CT\x011".ljust(16)
    t = pacs(c)
    frames = replay(t, rq, ac, segs[:1], {0: one_byte})
    c.expect(frames[0][41], SANITY_ACTION, VP)  # the AE title's last byte
    c.event(VP, SANITY + "invalid_ae_title: calling AE title")
    return c


@case
def sanity_item_length():
    c = Case("dicom-pdu-sanity-item-length",
             "dicom-pdu-sanity: the application context item's length one too long, items no "
             "longer add up to the PDU", SANITY_POLICY)
    rq, ac, segs = capture("echo")
    assert rq[74] == 0x10
    rq[77] += 1
    t = pacs(c)
    frames = replay(t, rq, ac, segs[:1])
    c.expect(frames[0][0], SANITY_ACTION, VP)
    c.event(VP)
    return c


@case
def sanity_exceeds_max():
    c = Case("dicom-pdu-sanity-exceeds-max-length",
             "dicom-pdu-sanity: a P-DATA-TF longer than the acceptor announced (its "
             "A-ASSOCIATE-AC rewritten to a 256-byte maximum)", SANITY_POLICY)
    rq, ac, segs = capture("store")
    i = ac.index(b"\x51\x00\x00\x04")
    ac[i + 4:i + 8] = struct.pack(">I", 256)
    t = pacs(c)
    frames = replay(t, rq, ac, segs[:4])
    # The first P-DATA-TF (segments 2 and 3: the command) fits; the second one, the data
    # set, starts in segment 3 and is over the maximum.
    c.expect(frames[3][0], SANITY_ACTION, VP)
    c.event(VP, SANITY + "pdu_exceeds_max_length: P-DATA-TF above the receiver's maximum")
    return c


@case
def sanity_overlap():
    c = Case("dicom-pdu-sanity-overlap-conflict",
             "dicom-pdu-sanity evasion: the A-ASSOCIATE-RQ's tail buffered, then the whole PDU "
             "retransmitted with different bytes in that tail", SANITY_POLICY)
    rq, ac, segs = capture("echo")
    first = bytes(rq[:segs[0][1]])
    evil = bytearray(first)
    evil[150] ^= 0x01
    t = pacs(c)
    t.send(first[100:], 100)
    c.expect(t.send(bytes(evil), 0), ENDED, "tcp-overlap-conflict")
    c.event("tcp-overlap-conflict", OVERLAP_DETAIL)
    return c


@case
def sanity_echo_passes():
    c = Case("dicom-pdu-sanity-echo-passes",
             "dicom-pdu-sanity negative: the captured echoscu association (CT1 -> PACS)",
             SANITY_POLICY)
    rq, ac, segs = capture("echo")
    replay(pacs(c), rq, ac, segs)
    return c


@case
def sanity_store_passes():
    c = Case("dicom-pdu-sanity-store-passes",
             "dicom-pdu-sanity negative: the captured storescu association (a CT image)",
             SANITY_POLICY)
    rq, ac, segs = capture("store")
    replay(pacs(c), rq, ac, segs)
    return c


@case
def sanity_store_one_byte_passes():
    c = Case("dicom-pdu-sanity-store-one-byte-passes",
             "dicom-pdu-sanity negative: the captured store, its A-ASSOCIATE-RQ and command in "
             "1-byte segments, data set out of order", SANITY_POLICY)
    rq, ac, segs = capture("store")

    def ooo(conn, data):
        return list(conn.out_of_order(data, 200))
    replay(pacs(c), rq, ac, segs, {0: one_byte, 2: one_byte, 3: ooo})
    return c


@case
def sanity_reject_passes():
    c = Case("dicom-pdu-sanity-associate-rj-passes",
             "dicom-pdu-sanity negative: PACS rejects the association (A-ASSOCIATE-RJ, "
             "called AE not recognised), both ends close", SANITY_POLICY)
    rq, ac, segs = capture("echo")
    t = pacs(c)
    t.send(bytes(rq[:segs[0][1]]))
    t.reply(b"\x03\x00\x00\x00\x00\x04\x00\x01\x01\x07")
    return c


# app.dicom rule --------------------------------------------------------------------

def dicom_policy(constraints):
    return policy([dicom_rule(constraints)], ["dicom-pdu-sanity"])


@case
def dicom_calling_ae():
    c = Case("app-dicom-calling-ae-refused",
             "app.dicom calling_ae: the captured echo from CT1 where only CT2 may call",
             dicom_policy({"calling_ae": ["CT2"]}))
    rq, ac, segs = capture("echo")
    frames = replay(pacs(c), rq, ac, segs[:1])
    c.expect(frames[0][0], ENDED, "app-not-allowed")
    c.event("app-not-allowed", "DICOM calling AE title not allowed: CT1", device="ct-1")
    return c


@case
def dicom_called_ae():
    c = Case("app-dicom-called-ae-refused",
             "app.dicom called_ae: the captured echo addressed to ARCHIVE instead of PACS",
             dicom_policy(LAB_DICOM))
    rq, ac, segs = capture("echo")
    set_ae(rq, 10, "ARCHIVE")
    frames = replay(pacs(c), rq, ac, segs[:1])
    c.expect(frames[0][0], ENDED, "app-not-allowed")
    c.event("app-not-allowed", "DICOM called AE title not allowed: ARCHIVE")
    return c


@case
def dicom_called_ae_one_byte():
    c = Case("app-dicom-called-ae-one-byte-segments",
             "app.dicom called_ae evasion: the A-ASSOCIATE-RQ to ARCHIVE in 1-byte segments: "
             "refused at its last byte (AE titles are judged once the PDU is checked)",
             dicom_policy(LAB_DICOM))
    rq, ac, segs = capture("echo")
    set_ae(rq, 10, "ARCHIVE")
    frames = replay(pacs(c), rq, ac, segs[:1], {0: one_byte})
    c.expect(frames[0][-1], ENDED, "app-not-allowed")
    c.event("app-not-allowed", "DICOM called AE title not allowed: ARCHIVE")
    return c


@case
def dicom_command():
    c = Case("app-dicom-command-refused",
             "app.dicom commands: the captured C-STORE where only C-ECHO is allowed",
             dicom_policy({"commands": ["C-ECHO"]}))
    rq, ac, segs = capture("store")
    frames = replay(pacs(c), rq, ac, segs[:4])
    c.expect(frames[3][0], ENDED, "app-not-allowed")
    c.event("app-not-allowed", "DICOM command not allowed: C-STORE")
    return c


@case
def dicom_command_out_of_order():
    c = Case("app-dicom-command-out-of-order",
             "app.dicom commands evasion: the C-STORE command set delivered out of order",
             dicom_policy({"commands": ["C-ECHO"]}))
    rq, ac, segs = capture("store")
    frames = replay(pacs(c), rq, ac, segs[:4],
                    {3: lambda conn, data: list(conn.out_of_order(data, 40))})
    c.expect(frames[3][1], ENDED, "app-not-allowed")
    c.event("app-not-allowed", "DICOM command not allowed: C-STORE")
    return c


@case
def dicom_sop_class():
    c = Case("app-dicom-sop-class-refused",
             "app.dicom sop_classes: storing a CT image where only MR images may be stored",
             dicom_policy({"calling_ae": ["CT1"], "called_ae": ["PACS"],
                           "commands": ["C-ECHO", "C-STORE"], "sop_classes": [MR_IMAGE]}))
    rq, ac, segs = capture("store")
    frames = replay(pacs(c), rq, ac, segs[:4])
    c.expect(frames[3][0], ENDED, "app-not-allowed")
    c.event("app-not-allowed", "DICOM SOP class not allowed: " + CT_IMAGE)
    return c


@case
def dicom_command_overlap():
    c = Case("app-dicom-command-overlap-conflict",
             "app.dicom evasion: the P-DATA command bytes buffered, then retransmitted "
             "differently", dicom_policy({"commands": ["C-ECHO"]}))
    rq, ac, segs = capture("store")

    def overlap(conn, data):
        start = conn.sent[0]
        conn.send(data[30:], start + 30)
        changed = bytearray(data)
        changed[60] ^= 0x20
        return [conn.send(bytes(changed), start)]
    frames = replay(pacs(c), rq, ac, segs[:4], {3: overlap})
    c.expect(frames[3][0], ENDED, "tcp-overlap-conflict")
    c.event("tcp-overlap-conflict", OVERLAP_DETAIL)
    return c


@case
def dicom_malformed_on_rule():
    c = Case("app-dicom-malformed-on-rule",
             "app.dicom: a flow of a DICOM rule that is not DICOM breaks the rule "
             "(app-malformed, not the sanity patch)", dicom_policy(LAB_DICOM))
    t = pacs(c)
    c.expect(t.send(b"\x09\x00\x00\x00\x00\x04abcd"), ENDED, "app-malformed")
    c.event("app-malformed")
    return c


@case
def dicom_echo_passes():
    c = Case("app-dicom-echo-passes",
             "app.dicom negative: the captured echo under the lab rule (C-ECHO allowed whatever "
             "the SOP class list)", dicom_policy(LAB_DICOM))
    rq, ac, segs = capture("echo")
    replay(pacs(c), rq, ac, segs)
    return c


@case
def dicom_store_passes():
    c = Case("app-dicom-store-passes",
             "app.dicom negative: the captured CT store under the lab rule", dicom_policy(LAB_DICOM))
    rq, ac, segs = capture("store")
    replay(pacs(c), rq, ac, segs)
    return c


@case
def dicom_store_segmented_passes():
    c = Case("app-dicom-store-segmented-passes",
             "app.dicom negative: the captured CT store with its A-ASSOCIATE-RQ in 1-byte "
             "segments and its command out of order", dicom_policy(LAB_DICOM))
    rq, ac, segs = capture("store")
    replay(pacs(c), rq, ac, segs,
           {0: one_byte, 3: lambda conn, data: list(conn.out_of_order(data, 40))})
    return c


@case
def dicom_padded_ae_passes():
    c = Case("app-dicom-listed-ae-passes",
             "app.dicom negative: calling AE in a list of several, called AE with leading "
             "spaces (not significant, PS3.5)",
             dicom_policy({"calling_ae": ["CT2", "CT1"], "called_ae": ["PACS"]}))
    rq, ac, segs = capture("echo")
    rq[10:26] = b"  PACS".ljust(16)
    replay(pacs(c), rq, ac, segs)
    return c


# app.hl7 rule ----------------------------------------------------------------------

HL7_POLICY = policy([hl7_rule()], [])


def ris(c):
    return Tcp(c, True, RIS, 2575, peer_port=40001).handshake()


@case
def hl7_adt():
    c = Case("app-hl7-adt-refused",
             "app.hl7 message_types: ORU^R01 passes and is acknowledged, then ADT^A01 ends the "
             "connection", HL7_POLICY)
    t = ris(c)
    t.send(mllp("ORU^R01", "1"))
    t.reply(hl7_ack("1"))
    c.expect(t.send(mllp("ADT^A01", "2")), ENDED, "app-not-allowed")
    # The event names the rule whose constraint the connection broke.
    c.event("app-not-allowed", "HL7 message type not allowed: ADT^A01", device="ct-1",
            rule="results", dst=RIS, dst_port=2575)
    blocked_after(c, t, data=mllp("ORU^R01", "3"))
    return c


@case
def hl7_adt_one_byte():
    c = Case("app-hl7-adt-one-byte-segments",
             "app.hl7 evasion: ADT^A01 in 1-byte segments is refused at the byte that ends "
             "MSH-9", HL7_POLICY)
    t = ris(c)
    msg = mllp("ADT^A01")
    frames = t.segments(msg, 1)
    end = msg.index(b"ADT^A01|") + len("ADT^A01|")
    c.expect(frames[end - 1], ENDED, "app-not-allowed")
    c.event("app-not-allowed", "HL7 message type not allowed: ADT^A01")
    return c


@case
def hl7_adt_out_of_order():
    c = Case("app-hl7-adt-out-of-order",
             "app.hl7 evasion: ADT^A01's segment with MSH-9 sent after the rest", HL7_POLICY)
    t = ris(c)
    _, first = t.out_of_order(mllp("ADT^A01"), 60)
    c.expect(first, ENDED, "app-not-allowed")
    c.event("app-not-allowed", "HL7 message type not allowed: ADT^A01")
    return c


@case
def hl7_overlap():
    c = Case("app-hl7-overlap-conflict",
             "app.hl7 evasion: an ORU^R01 message's tail buffered, then the message "
             "retransmitted as ADT^A01 over the same sequence numbers", HL7_POLICY)
    t = ris(c)
    oru = mllp("ORU^R01")
    adt = mllp("ADT^A01")
    t.send(oru[40:], 40)
    c.expect(t.send(adt[:60], 0), ENDED, "tcp-overlap-conflict")
    c.event("tcp-overlap-conflict", OVERLAP_DETAIL)
    return c


@case
def hl7_custom_delimiters():
    c = Case("app-hl7-custom-delimiters-refused",
             "app.hl7: ADT#A01 with '#' as the component separator is still ADT^A01",
             HL7_POLICY)
    t = ris(c)
    c.expect(t.send(mllp("ADT^A01", enc="#~\\&")), ENDED, "app-not-allowed")
    c.event("app-not-allowed", "HL7 message type not allowed: ADT^A01")
    return c


@case
def hl7_malformed():
    c = Case("app-hl7-not-mllp",
             "app.hl7: bytes outside an MLLP frame on an HL7 rule's flow", HL7_POLICY)
    t = ris(c)
    c.expect(t.send(b"GET / HTTP/1.0\r\n\r\n"), ENDED, "app-malformed")
    c.event("app-malformed", "malformed HL7/MLLP: data-outside-frame")
    return c


@case
def hl7_oru_passes():
    c = Case("app-hl7-oru-passes",
             "app.hl7 negative: two ORU^R01 results, each acknowledged", HL7_POLICY)
    t = ris(c)
    for i in ("1", "2"):
        t.send(mllp("ORU^R01", i))
        t.reply(hl7_ack(i))
    return c


@case
def hl7_oru_segmented_passes():
    c = Case("app-hl7-oru-segmented-passes",
             "app.hl7 negative: ORU^R01 in 1-byte segments, then one out of order",
             HL7_POLICY)
    t = ris(c)
    t.segments(mllp("ORU^R01", "1"), 1)
    t.reply(hl7_ack("1"))
    t.out_of_order(mllp("ORU^R01", "2"), 50)
    t.reply(hl7_ack("2"))
    return c


@case
def hl7_three_components_passes():
    c = Case("app-hl7-message-structure-passes",
             "app.hl7 negative: MSH-9 with its message structure (ORU^R01^ORU_R01) and "
             "custom delimiters", HL7_POLICY)
    t = ris(c)
    t.send(mllp("ORU^R01^ORU_R01", "1"))
    t.reply(hl7_ack("1"))
    t.send(mllp("ORU^R01", "2", enc="#~\\&"))
    return c


@case
def hl7_type_only_passes():
    c = Case("app-hl7-type-without-event-passes",
             "app.hl7 negative: a rule listing \"ORU\" (any ORU event, docs/policy.md) lets "
             "ORU^R01 and ORU^R30 pass", policy([hl7_rule(["ORU"])], []))
    t = ris(c)
    t.send(mllp("ORU^R01", "1"))
    t.reply(hl7_ack("1"))
    t.send(mllp("ORU^R30", "2"))
    return c


# policy patches (match.content, offset/depth, regex) --------------------------------

WEB_POLICY = policy([web_rule()], WEB_PATCH_IDS, WEB_PATCHES)
TRAVERSAL_DETAIL = "patch local-http-traversal (CVE-2021-41773)"


def web(c, peer=ATTACKER):
    return Tcp(c, False, peer, 80, isn=0xFFFFFFF0).handshake()  # the stream wraps past zero


@case
def content_one_segment():
    c = Case("policy-patch-content",
             "policy patch content: a path traversal in one segment is dropped (action drop)",
             WEB_POLICY, big_endian=True)
    t = web(c)
    c.expect(t.send(b"GET /cgi-bin/.%2e/.%2e/etc/passwd HTTP/1.1\r\nHost: ct\r\n\r\n"), "drop", VP)
    c.event(VP, TRAVERSAL_DETAIL, device="ct-1", src=ATTACKER, dst_port=80)
    blocked_after(c, t, data=b"GET / HTTP/1.1\r\n\r\n")
    return c


@case
def content_in_syn():
    c = Case("policy-patch-content-in-syn",
             "evasion by TCP Fast Open: the traversal request carried in the SYN is dropped "
             "(tcp-handshake-data); sent after the handshake it meets the patch",
             WEB_POLICY)
    msg = b"GET /cgi-bin/.%2e/.%2e/etc/passwd HTTP/1.1\r\n\r\n"
    # Its own Tcp: the refused SYN opens no connection, so later frames are not blocked.
    refused = Tcp(c, False, ATTACKER, 80, isn=0xFFFFFFF0)
    c.expect(refused._frame(True, "S", refused.isn, 0, msg), "drop", "tcp-handshake-data")
    c.event("tcp-handshake-data", device="ct-1", src=ATTACKER, dst_port=80)
    t = web(c)
    c.expect(t.send(msg), "drop", VP)
    c.event(VP, TRAVERSAL_DETAIL, device="ct-1", src=ATTACKER, dst_port=80)
    return c


@case
def content_urgent_byte():
    c = Case("policy-patch-content-urgent-byte",
             "evasion by TCP urgent data: an urgent byte inside the traversal (\"/.%2\" \"X\" "
             "\"e/\", read as /.%2e/ by a server without SO_OOBINLINE) ends the connection",
             WEB_POLICY)
    t = web(c)
    t.send(b"GET /cgi-bin/.%2")
    start = t.sent[0]
    urgent = t._frame(True, "PAU", t._seq(True, start), t._seq(False, 0),
                      b"Xe/etc/passwd HTTP/1.1\r\n\r\n")
    c.expect(urgent, "drop_and_reset_both", "tcp-urgent-data")
    c.event("tcp-urgent-data", device="ct-1", src=ATTACKER, dst_port=80)
    blocked_after(c, t, data=b"e/etc/passwd HTTP/1.1\r\n\r\n")
    return c


@case
def content_one_byte():
    c = Case("policy-patch-content-one-byte-segments",
             "policy patch content evasion: the traversal request in 1-byte segments",
             WEB_POLICY)
    t = web(c)
    msg = b"GET /cgi-bin/.%2e/.%2e/etc/passwd HTTP/1.1\r\n\r\n"
    frames = t.segments(msg, 1)
    c.expect(frames[msg.index(b"/.%2e/") + 5], "drop", VP)
    c.event(VP, TRAVERSAL_DETAIL)
    return c


@case
def content_out_of_order():
    c = Case("policy-patch-content-out-of-order",
             "policy patch content evasion: the pattern split at \"%\", second half first",
             WEB_POLICY)
    t = web(c)
    msg = b"GET /cgi-bin/.%2e/etc/passwd HTTP/1.1\r\n\r\n"
    _, first = t.out_of_order(msg, msg.index(b"%") + 1)
    c.expect(first, "drop", VP)
    c.event(VP, TRAVERSAL_DETAIL)
    return c


@case
def content_overlap():
    c = Case("policy-patch-content-overlap-conflict",
             "policy patch evasion: a harmless path buffered, then overwritten by a "
             "retransmission carrying the traversal", WEB_POLICY)
    t = web(c)
    t.send(b"/xx%2e/etc/passwd HTTP/1.1\r\n\r\n", 13)
    c.expect(t.send(b"GET /cgi-bin/.%2e/etc", 0), ENDED, "tcp-overlap-conflict")
    c.event("tcp-overlap-conflict", OVERLAP_DETAIL)
    return c


@case
def content_offset_depth():
    c = Case("policy-patch-offset-depth",
             "policy patch content with a hex block, offset 4 and depth 8: the magic at "
             "stream bytes 4..11 is dropped", WEB_POLICY)
    t = web(c)
    c.expect(t.send(b"\x00\x01\x02\x03\xde\xadBD\xbe\xef\x00\x00rest"), "drop", VP)
    c.event(VP, "patch vendor-backdoor")
    return c


@case
def content_offset_depth_split():
    c = Case("policy-patch-offset-depth-split",
             "policy patch offset/depth evasion: the magic split over two segments, the second "
             "sent first", WEB_POLICY)
    t = web(c)
    _, first = t.out_of_order(b"\x00\x01\x02\x03\xde\xadBD\xbe\xef\x00\x00rest", 7)
    c.expect(first, "drop", VP)
    c.event(VP, "patch vendor-backdoor")
    return c


@case
def regex_at_start():
    c = Case("policy-patch-regex",
             "policy patch regex ^POST /admin[a-z]{0,8} (action reset) at the stream start, "
             "in 3-byte segments", WEB_POLICY)
    t = web(c)
    frames = t.segments(b"POST /administrator HTTP/1.1\r\n\r\n", 3)
    c.expect(frames[3], ENDED, VP)  # bytes 9..11 complete "POST /admin"
    c.event(VP, "patch admin-probe")
    return c


@case
def alert_patch():
    c = Case("policy-patch-alert-forwards",
             "policy patch with action alert: the scanner's request is forwarded and "
             "reported (would-drop)", WEB_POLICY)
    t = web(c)
    t.send(b"GET / HTTP/1.1\r\nUser-Agent: Nikto/2.5.0\r\n\r\n")
    c.event(VP, "patch scanner-ua", kind="would-drop")
    return c


@case
def content_clean_passes():
    c = Case("policy-patch-clean-requests-pass",
             "policy patch negative: ordinary requests with '%2e' and '/.' apart, and a reply "
             "containing the pattern (replies are not matched)", WEB_POLICY)
    t = web(c, WORKSTATION)
    t.send(b"GET /img/a.%2e.png HTTP/1.1\r\nHost: ct\r\n\r\n")
    t.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n<a href=/.%2e/>")
    t.send(b"GET /./index.html HTTP/1.1\r\n\r\n")
    return c


@case
def offset_depth_outside_passes():
    c = Case("policy-patch-offset-depth-outside-passes",
             "policy patch negative: the same magic before offset 4 and after depth",
             WEB_POLICY)
    t = web(c, WORKSTATION)
    t.send(b"\xde\xadBD\xbe\xef" + b"x" * 20)
    t.send(b"..." + b"\xde\xadBD\xbe\xef")
    return c


@case
def regex_not_at_start_passes():
    c = Case("policy-patch-regex-not-at-start-passes",
             "policy patch negative: POST /admin after the stream start, and POST /adm",
             WEB_POLICY)
    t = web(c, WORKSTATION)
    t.send(b"POST /adm HTTP/1.1\r\n\r\n")
    t.send(b"POST /administrator HTTP/1.1\r\n\r\n")
    return c


@case
def other_direction_passes():
    c = Case("policy-patch-other-direction-passes",
             "policy patch negative: an outbound connection (the patch is dir in) carrying the "
             "traversal string", policy([web_rule(), {"name": "vendor-portal", "dir": "out",
                                                       "proto": "tcp", "peer": "10.50.0.0/24",
                                                       "dport": 80}],
                                       WEB_PATCH_IDS, WEB_PATCHES))
    t = Tcp(c, True, WORKSTATION, 80).handshake()
    t.send(b"GET /cgi-bin/.%2e/.%2e/etc/passwd HTTP/1.1\r\n\r\n")
    return c


def main():
    names = set()
    for fn in CASES:
        c = fn()
        assert c.name not in names, c.name
        names.add(c.name)
        shutil.rmtree(os.path.join(HERE, c.name), ignore_errors=True)
        c.write()
    # Folders of cases that no longer exist.
    for entry in sorted(os.listdir(HERE)):
        path = os.path.join(HERE, entry)
        if os.path.isdir(path) and entry not in names and \
                os.path.exists(os.path.join(path, "expected.json")):
            shutil.rmtree(path)
    print(f"{len(names)} cases written to {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
