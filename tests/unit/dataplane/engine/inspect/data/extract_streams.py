#!/usr/bin/python3
# Splits a pcap of DICOM associations into per-connection, per-direction payload
# streams plus the capture-order segment list (side and length per TCP segment).
import sys
from scapy.all import rdpcap, TCP
pkts = rdpcap(sys.argv[1])
conns = {}   # client port -> dict
for p in pkts:
    if TCP not in p: continue
    t = p[TCP]
    if t.dport == 11112:  # storescp port: the requestor sends to it
        port, side = t.sport, "requestor"
    else:
        port, side = t.dport, "acceptor"
    c = conns.setdefault(port, {'requestor': {}, 'acceptor': {}, 'segs': [], 'isn': {}})
    if t.flags & 0x02:  # SYN
        c['isn'][side] = t.seq + 1
        continue
    data = bytes(t.payload)
    if not data: continue
    off = t.seq - c['isn'][side]
    if off in c[side]: continue  # retransmission
    c[side][off] = data
    c['segs'].append((side, len(data)))
for i, (port, c) in enumerate(sorted(conns.items())):
    for side in ('requestor', 'acceptor'):
        buf = b''
        for off in sorted(c[side]):
            assert off == len(buf), (off, len(buf))
            buf += c[side][off]
        open(f'{sys.argv[2]}{i}-{side}.bin', 'wb').write(buf)
        print(port, side, len(buf))
    open(f'{sys.argv[2]}{i}-segments.txt', 'w').write(''.join(f'{s} {n}\n' for s, n in c['segs']))
