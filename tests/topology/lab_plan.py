#!/usr/bin/python3
"""Turn tests/topology/hosts.json into the line-oriented plan lab.sh executes.

Usage: lab_plan.py HOSTS_JSON

Checks the file (unique names, symmetric veth peers, MAC and CIDR syntax, Linux
interface name length) and prints one action per line, fields separated by one
space, in the order they must be applied:

    netns  NS
    bridge NS BRIDGE MAC
    veth   NS1 IF1 MAC1 NS2 IF2 MAC2     (each pair once)
    master NS IF BRIDGE
    dpport NS IF                        (dataplane port: up, promisc, no ARP, no IPv6)
    addr   NS IF CIDR
    up     NS IF
    route  NS DEST VIA

Python standard library only; run with /usr/bin/python3.
"""

import ipaddress
import json
import re
import sys

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,14}$")  # Linux IFNAMSIZ - 1 = 15


def fail(msg):
    sys.stderr.write(f"lab_plan: {msg}\n")
    sys.exit(1)


def main(argv):
    if len(argv) != 2:
        fail("usage: lab_plan.py HOSTS_JSON")
    try:
        with open(argv[1], encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{argv[1]}: {e}")
    if doc.get("schema") != "cordon.lab-hosts/v1":
        fail(f"{argv[1]}: schema must be cordon.lab-hosts/v1")

    hosts = doc.get("hosts", [])
    ifaces = {}  # (ns, name) -> interface dict
    bridges = {}  # (ns, name) -> bridge dict
    namespaces = []
    macs = set()

    def check_mac(where, mac):
        if not isinstance(mac, str) or not MAC_RE.match(mac):
            fail(f"{where}: bad mac {mac!r}")
        if mac in macs:
            fail(f"{where}: duplicate mac {mac}")
        macs.add(mac)

    def check_cidrs(where, addrs):
        for a in addrs:
            try:
                ipaddress.ip_interface(a)
            except ValueError:
                fail(f"{where}: bad address {a!r}")
            if "/" not in a:
                fail(f"{where}: address {a!r} needs a prefix length")

    for i, h in enumerate(hosts):
        ns = h.get("name")
        where = f"hosts[{i}]"
        if not isinstance(ns, str) or not NAME_RE.match(ns):
            fail(f"{where}: bad name {ns!r}")
        if ns in namespaces:
            fail(f"{where}: duplicate host {ns}")
        namespaces.append(ns)
        for j, b in enumerate(h.get("bridges", [])):
            bw = f"{where}.bridges[{j}]"
            if not NAME_RE.match(b.get("name", "")):
                fail(f"{bw}: bad name")
            check_mac(bw, b.get("mac"))
            check_cidrs(bw, b.get("addresses", []))
            bridges[(ns, b["name"])] = b
        for j, itf in enumerate(h.get("interfaces", [])):
            iw = f"{where}.interfaces[{j}]"
            name = itf.get("name", "")
            if not NAME_RE.match(name):
                fail(f"{iw}: bad name {name!r}")
            if (ns, name) in ifaces or (ns, name) in bridges:
                fail(f"{iw}: duplicate interface {ns}/{name}")
            check_mac(iw, itf.get("mac"))
            check_cidrs(iw, itf.get("addresses", []))
            if itf.get("kind") == "dataplane-port" and itf.get("addresses"):
                fail(f"{iw}: a dataplane port must not have addresses")
            ifaces[(ns, name)] = itf

    for (ns, name), itf in ifaces.items():
        peer = itf.get("peer", "")
        if peer.count("/") != 1:
            fail(f"{ns}/{name}: peer must be 'netns/ifname'")
        pns, pname = peer.split("/")
        other = ifaces.get((pns, pname))
        if other is None:
            fail(f"{ns}/{name}: peer {peer} is not defined")
        if other.get("peer") != f"{ns}/{name}":
            fail(f"{ns}/{name}: peer {peer} does not point back")
        master = itf.get("master")
        if master is not None and (ns, master) not in bridges:
            fail(f"{ns}/{name}: master {master} is not a bridge of {ns}")

    out = []
    for ns in namespaces:
        out.append(f"netns {ns}")
    for (ns, name), b in bridges.items():
        out.append(f"bridge {ns} {name} {b['mac']}")
    done = set()
    for (ns, name), itf in ifaces.items():
        if (ns, name) in done:
            continue
        pns, pname = itf["peer"].split("/")
        done.add((ns, name))
        done.add((pns, pname))
        out.append(f"veth {ns} {name} {itf['mac']} {pns} {pname} {ifaces[(pns, pname)]['mac']}")
    for (ns, name), itf in ifaces.items():
        if itf.get("master"):
            out.append(f"master {ns} {name} {itf['master']}")
    for (ns, name), itf in ifaces.items():
        if itf.get("kind") == "dataplane-port":
            out.append(f"dpport {ns} {name}")
    for (ns, name), obj in list(bridges.items()) + list(ifaces.items()):
        for a in obj.get("addresses", []):
            out.append(f"addr {ns} {name} {a}")
    for (ns, name) in list(bridges) + list(ifaces):
        out.append(f"up {ns} {name}")
    for h in hosts:
        for r in h.get("routes", []):
            out.append(f"route {h['name']} {r['dest']} {r['via']}")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv)
