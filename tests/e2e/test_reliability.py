"""Reliability under abuse (issue 10), end to end.

InLab (the lab with a 1,024-flow table and 256 inspection slots): a SYN flood of over
10 x the flow table, on a port the device's RDP patch inspects, from the attacker while the
modality stores a DICOM series to the PACS, a storm of malformed frames
from the device port, and kill -9 of the dataplane under traffic; the dataplane keeps
running (or is restarted) and forwarding what is allowed.
DiskFull: controld's state on a full filesystem refuses an apply with a clear error,
changes nothing in controld or the dataplane, and works again once there is space.
Needs root and network namespaces.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from labutil import (BUILD, MODALITY, PACS, PY, REPO, RIS, RUN, apply, dataplane_request,
                     dataplane_version, dicom_dataset, echoscu, events, lab_down, lab_policy, lab_up, on,
                     rss_kib, set_guardrail, stats, wait_for, write_ct_file)

# The lab's dataplane runs with a small flow table (one worker, so this is the whole
# table) so that a flood of 10 x the table takes seconds.
FLOW_TABLE = 1024
# Fewer inspection slots than flow entries, so that the flood (every SYN an inspected
# half-open connection) runs the slot pool out long before the flow table.
INSPECTION_SLOTS = 256
WARM_UP = 5  # tables' worth of flood before the memory baseline
FLOOD_PORT = 3389  # RDP: the lab device's cve-2019-0708 patch inspects every connection
SERIES_FILES = 8  # 512 x 1024 x 16-bit CT images, 1 MiB each
SERIES_RATE = "1mbit"  # the DICOM data's rate during the flood: ~70 s for the series

JUNK = """
import random, sys
from scapy.all import Ether, Raw, sendp, conf
conf.verb = 0
count = int(sys.argv[1])
modality_mac = "02:c0:4d:00:00:10"
pacs_mac = "02:c0:4d:00:00:20"
frames = []
for i in range(count):
    # From the device port (a device gone haywire): random bytes after an Ethernet
    # header from the modality's MAC: bad IHL, truncated headers, junk of every kind.
    frames.append(Ether(src=modality_mac, dst=pacs_mac, type=random.choice([0x0800, 0x86dd, 0x0806, 0x8100])) /
                  Raw(bytes(random.getrandbits(8) for _ in range(random.randrange(0, 120)))))
sendp(frames, iface="eth0", verbose=False)
print("sent", len(frames))
"""


# SYN flood sender, run on the attacker: frames from labutil.syn_flood_frame, in chunks
# no larger than half the af_packet ring the dataplane reads its network port from (512
# frames); after each chunk it waits until the dataplane has processed that many more
# frames. Unpaced, most of a flood is lost in that ring on a loaded 2-core machine and
# never reaches Cordon's flow table, which is what this test is about.
# argv: E2E_DIR FIRST UNTIL LIMIT PORT DEVICE: send flows FIRST, FIRST+1, ... until DEVICE's
# new_flows counter reaches UNTIL; fail at flow LIMIT. Prints "sent N next I".
SYN_FLOOD = """
import socket, sys, time
sys.path.insert(0, sys.argv[1])
from labutil import HOSTS, MODALITY, dataplane_request, syn_flood_frame
first, until, limit, port = map(int, sys.argv[2:6])
device = sys.argv[6]
CHUNK = 256
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
i = first
stats = dataplane_request({"cmd": "stats"})
while stats["devices"][device]["new_flows"] < until:
    if i + CHUNK > limit:
        admitted = stats["devices"][device]["new_flows"]
        sys.exit(f"{i - first} flows sent, new flows at {admitted}, not yet {until}")
    target = stats["packets"] + CHUNK
    for _ in range(CHUNK):
        frame = syn_flood_frame(i, HOSTS["attacker"]["mac"], HOSTS["modality"]["mac"], MODALITY,
                                port)
        if s.send(frame) != len(frame):
            sys.exit(f"short send of flow {i}")
        i += 1
    deadline = time.monotonic() + 10
    while True:
        stats = dataplane_request({"cmd": "stats"})
        if stats["packets"] >= target:
            break
        if time.monotonic() > deadline:
            sys.exit(f"10 s on, the dataplane still had {target - stats['packets']} frames to take")
        time.sleep(0.005)
print("sent", i - first, "next", i)
"""


def syn_retransmits(host):
    """The host's TCP SYN retransmissions so far (TcpExt TCPSynRetrans of its namespace)."""
    r = on(host, "cat", "/proc/net/netstat")
    names, values = [line.split() for line in r.stdout.splitlines() if line.startswith("TcpExt:")]
    return int(values[names.index("TCPSynRetrans")])


class InLab(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        lab_up(env={"CORDON_DATAPLANE_ARGS": (os.environ.get("CORDON_DATAPLANE_ARGS", "") +
                                              f" --flows-per-worker {FLOW_TABLE}"
                                              f" --inspected-flows-per-worker {INSPECTION_SLOTS}")})
        set_guardrail({"enforce_mode_default": False})

    @classmethod
    def tearDownClass(cls):
        lab_down()

    def storm(self, count, host):
        """Runs a storm of `count` junk frames from `host` while the modality echoes;
        returns the echo results seen during the storm and the dataplane's counters before
        and after."""
        pid = int((RUN / "forwarder.pid").read_text())
        before = stats()
        results = []
        done = threading.Event()

        def clinical_work():
            while not done.is_set():
                results.append(echoscu().returncode)

        worker = threading.Thread(target=clinical_work)
        worker.start()
        try:
            r = on(host, PY, "-c", JUNK, count, timeout=300)
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            done.set()
            worker.join()
        self.assertEqual(int((RUN / "forwarder.pid").read_text()), pid, "the dataplane restarted")
        self.assertTrue(Path(f"/proc/{pid}").exists())
        after = stats()
        return results, before, after

    def syn_flood(self, first, until):
        """SYN-floods the modality from the attacker with flows first, first+1, ... until the
        dataplane has admitted `until` new flows of the modality in all; returns the number
        of frames sent and the next flow number."""
        r = on("attacker", PY, "-c", SYN_FLOOD, Path(__file__).resolve().parent, first, until,
               first + 20 * FLOW_TABLE, FLOOD_PORT, "ct-1", timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        sent, following = map(int, re.fullmatch(r"sent (\d+) next (\d+)\n", r.stdout).groups())
        return sent, following

    def test_syn_flood_of_ten_flow_tables_spares_a_running_dicom_transfer(self):
        """Over 10 x the flow table in SYNs from the attacker, each a new flow the policy
        lets in (so each takes a table entry), while the modality stores a series to the
        PACS: the transfer started before the flood is still running when the flood ends and
        completes with every file intact; new clinical flows (HL7) opened during the flood
        get entries; the flood's flows are evicted (never a flow-table-full drop, so never an
        established flow given up); the flood's half-open connections give their inspection
        slots up to new ones (never an inspection-table-full drop, although the DICOM and HL7
        connections and every flood SYN need a slot and there are 64 x fewer slots than flood
        flows); the dataplane's memory does not grow."""
        # An inbound service the attacker's LAN may reach (a viewer on the console): the
        # flood's SYNs are admitted as half-open flows instead of dropped by policy.
        policy = lab_policy()
        policy["devices"][0]["rules"].append(
            {"name": "remote-viewer", "dir": "in", "proto": "tcp", "peer": "10.50.0.0/16",
             "dport": FLOOD_PORT})
        self.assertEqual(apply(policy).returncode, 0)
        self.addCleanup(apply, lab_policy())

        series = Path(tempfile.mkdtemp(dir=RUN))
        self.addCleanup(shutil.rmtree, series)
        files = {}
        for n in range(SERIES_FILES):
            path = series / f"ct{n:02d}.dcm"
            files[path] = write_ct_file(path, 512, 1024)

        # The DICOM association's data is shaped to SERIES_RATE on the modality's link, so
        # the transfer outlasts the flood however fast this machine sends either; HL7 and
        # everything else stay unshaped (htb sends unclassified traffic directly). The
        # shaping is lifted once the flood is over.
        shaping = [["tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb"],
                   ["tc", "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:30", "htb",
                    "rate", SERIES_RATE],
                   ["tc", "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "u32",
                    "match", "ip", "dport", "104", "0xffff", "flowid", "1:30"]]
        for cmd in shaping:
            r = on("modality", *cmd)
            self.assertEqual(r.returncode, 0, f"{cmd}: {r.stderr}")
        unshape = lambda: on("modality", "tc", "qdisc", "del", "dev", "eth0", "root")
        self.addCleanup(unshape)

        store = subprocess.Popen(
            [str(REPO / "tests/topology/lab.sh"), "exec", "modality", "--", "storescu", "-to", "10",
             "-aet", "CT1", "-aec", "PACS", PACS, "104", *map(str, files)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: store.poll() is None and store.kill())
        stored = {path: RUN / "pacs-store" / f"CT.{uid}" for path, uid in files.items()}
        wait_for(lambda: any(p.exists() for p in stored.values()) or store.poll() is not None, 60,
                 "the first file of the series at pacs")
        self.assertIsNone(store.poll(), "the transfer ended before the flood began")

        pid = int((RUN / "forwarder.pid").read_text())
        # Events carry UTC times in this format; the flood's own are those from now on.
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000Z"
        before = stats()
        flows_before = before["devices"]["ct-1"]["new_flows"]
        retransmits_before = syn_retransmits("modality")
        hl7 = []
        done = threading.Event()

        def clinical_work():
            n = 0
            while not done.is_set():
                n += 1
                hl7.append(on("modality", PY, REPO / "tests/topology/mllp_send.py", RIS, 2575,
                              "--control-id", f"FLOOD{os.getpid()}-{n}", timeout=30).returncode)

        worker = threading.Thread(target=clinical_work)
        worker.start()
        started = time.monotonic()
        try:
            # A warm-up of 5 x the table first: the table is full and every entry has been
            # used, and the dataplane's other bounded buffers (the last 4,096 events it
            # keeps for new followers) are full too. Then 10 x the table more.
            sent, following = self.syn_flood(0, flows_before + WARM_UP * FLOW_TABLE)
            rss_full = rss_kib(pid)
            more, following = self.syn_flood(following, flows_before + (WARM_UP + 10) * FLOW_TABLE)
            sent += more
        finally:
            done.set()
            worker.join()
        flood_seconds = time.monotonic() - started
        in_transfer = store.poll() is None
        files_before_end = sum(p.exists() for p in stored.values())
        after = stats()
        rss_end = rss_kib(pid)

        self.assertTrue(in_transfer, "the DICOM transfer was over before the flood ended: "
                                     f"{files_before_end}/{len(files)} files")
        unshape()
        out, _ = store.communicate(timeout=120)
        self.assertEqual(store.returncode, 0, out)
        for path, at_pacs in stored.items():
            wait_for(at_pacs.exists, 10, f"{at_pacs} at pacs")
            self.assertEqual(dicom_dataset(at_pacs), dicom_dataset(path), f"{path.name} at pacs")

        self.assertTrue(hl7, "no HL7 message was sent during the flood")
        self.assertEqual(hl7.count(0), len(hl7), f"HL7 results during the flood: {hl7}")
        self.assertEqual(int((RUN / "forwarder.pid").read_text()), pid, "the dataplane restarted")

        # The modality's new flows during the flood: the flood's and at least one per HL7
        # message. An HL7 connection's flow is half-open until its handshake completes, so
        # the flood may evict it; its SYN, retransmitted, then opens another.
        hl7_retransmits = syn_retransmits("modality") - retransmits_before
        flood_flows = after["devices"]["ct-1"]["new_flows"] - flows_before - len(hl7)
        delta = {k: after["dropped"][k] - before["dropped"].get(k, 0) for k in after["dropped"]
                 if after["dropped"][k] != before["dropped"].get(k, 0)}
        print(f"SYN flood: {sent} SYNs sent in {flood_seconds:.1f} s, {flood_flows} new flows "
              f"admitted ({flood_flows / FLOW_TABLE:.1f} x the {FLOW_TABLE}-flow table); drops "
              f"{delta}; {len(files)} DICOM files ({files_before_end} before the flood ended) and "
              f"{len(hl7)} HL7 messages through ({hl7_retransmits} SYNs retransmitted); dataplane RSS {rss_full} KiB with the table "
              f"full, {rss_end} KiB after the flood")
        # The table holds FLOW_TABLE entries: every flow beyond that took the entry of an
        # older one, the coldest half-open flow (eviction) or one past its handshake
        # timeout (30 s; expiry).
        self.assertGreaterEqual(flood_flows, 10 * FLOW_TABLE)
        self.assertLessEqual(flood_flows, sent + hl7_retransmits)
        # The dataplane's own flow counters agree: the table never held more than its size,
        # and the entries of at least all the flood's flows but one table's worth were taken
        # back by eviction or expiry.
        evicted = after["flows"]["evicted"] - before["flows"]["evicted"]
        expired = after["flows"]["expired"] - before["flows"]["expired"]
        print(f"flow table: {evicted} evicted, {expired} expired, "
              f"{after['flows']['active']} active of {FLOW_TABLE}")
        self.assertLessEqual(after["flows"]["active"], FLOW_TABLE)
        self.assertGreaterEqual(evicted + expired, flood_flows - FLOW_TABLE)
        self.assertGreater(evicted, 0)
        # A new flow is refused (flow-table-full) only when every entry is established; the
        # flood's flows were always there to evict, so none was refused and no established
        # flow was ever a candidate. The running association kept its entry: it completed
        # (once evicted, each of its segments would be dropped as tcp-no-flow), and no
        # tcp-no-flow drop recorded since the flood began is one of its segments.
        self.assertNotIn("flow-table-full", delta)
        self.assertNotIn("inspection-table-full", delta)
        # (cordonctl events: the newest 1,000; flows admitted are not events, drops are.)
        no_flow = [(e["src"], e["src_port"], e["dst"], e["dst_port"])
                   for e in map(lambda e: e.get("event", e), events())
                   if e.get("reason") == "tcp-no-flow" and e["time"] >= since]
        print(f"tcp-no-flow drops since the flood began (src, sport, dst, dport): {no_flow}")
        self.assertFalse([f for f in no_flow if 104 in (f[1], f[3])], no_flow)
        # Memory is fixed once the table and buffers are full: 10 tables more add nothing
        # that grows with the flood (2%: glibc's heap and controld's event backlog move a
        # little).
        self.assertLessEqual(rss_end, rss_full * 1.02, (rss_full, rss_end))
        self.assertEqual(echoscu().returncode, 0)

    def test_malformed_storm_is_dropped_and_counted(self):
        results, before, after = self.storm(20000, host="modality")
        self.assertEqual(results.count(0), len(results), results)
        malformed = sum(after["dropped"][k] - before["dropped"].get(k, 0) for k in after["dropped"]
                        if k not in ("no-matching-rule", "no-policy", "unknown-device",
                                     "not-for-a-device"))
        self.assertGreater(malformed, 10000, after["dropped"])
        self.assertEqual(echoscu().returncode, 0)
        r = on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY)
        self.assertNotEqual(r.returncode, 0)  # and nothing new passes

    def test_dataplane_killed_under_traffic_restarts_and_enforces_at_once(self):
        """kill -9 of the dataplane while pacs pings the modality (biomed-ping) every 20 ms:
        no reply while it is down, the supervisor restarts it, the persisted policy is
        enforced again (the ping resumes, the attacker still gets nothing). The measured
        gap is reported (build/dataplane-restart-gap.json), not asserted: timings are
        for bench/, and this machine's load is not the appliance's."""
        pid = int((RUN / "forwarder.pid").read_text())
        starts = int((RUN / "forwarder.starts").read_text())
        log = RUN / "restart-gap-ping.log"
        with open(log, "w") as out:
            pinger = subprocess.Popen(
                [str(REPO / "tests/topology/lab.sh"), "exec", "pacs", "--", "ping", "-n", "-D",
                 "-i", "0.02", "-W", "1", MODALITY], stdout=out, text=True)
        try:
            # A steady stream before the kill: the measurement's baseline.
            wait_for(lambda: log.read_text().count(" bytes from ") >= 10, 10,
                     "pings through the dataplane")
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: (RUN / "forwarder.pid").read_text().strip() != str(pid), 30,
                     "the supervisor to restart the dataplane")
            wait_for(lambda: dataplane_version() is not None, 30,
                     "the restarted dataplane's control socket")
            # Replies after the restart show where the stream resumed.
            resumed = log.read_text().count(" bytes from ")
            wait_for(lambda: log.read_text().count(" bytes from ") >= resumed + 10, 30,
                     "pings through the restarted dataplane")
        finally:
            pinger.terminate()
            pinger.wait(timeout=30)
        out = log.read_text()
        replies = [float(m.group(1)) for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)]
        before = [t for t in replies if t < killed_at]
        after = [t for t in replies if t >= killed_at]
        self.assertTrue(before, "no reply before the kill: the measurement has no baseline")
        self.assertTrue(after, "pings never resumed after the restart")
        self.assertEqual(int((RUN / "forwarder.starts").read_text()), starts + 1)
        gap = after[0] - before[-1]
        (BUILD / "dataplane-restart-gap.json").write_text(json.dumps(
            {"gap_seconds": round(gap, 3), "last_reply_before_kill": before[-1],
             "killed_at": killed_at, "first_reply_after": after[0]}) + "\n")
        print(f"dataplane restart gap: {gap:.3f} s from the last reply before kill -9 to the "
              f"first after the restart (issue 10 asks for at most 2 s; measured, not asserted)")
        # Enforcing, not merely forwarding: what the policy does not allow stays out.
        self.assertNotEqual(on("attacker", "ping", "-n", "-c", 2, "-W", 1, MODALITY).returncode, 0)
        self.assertEqual(echoscu().returncode, 0)


class DiskFull(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="cordon-diskfull-"))
        self.state = self.dir / "ctl"
        self.state.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "cordon-diskfull", self.state], check=True)
        self.dp_sock = self.dir / "dp.sock"
        self.api = self.dir / "api.sock"
        self.dataplane = subprocess.Popen(
            [BUILD / "bin/cordon-dataplane", "--no-huge", "-m", "128", "--no-pci", "--file-prefix",
             f"diskfull{os.getpid()}", "-l", "0", "--vdev=net_null0", "--vdev=net_null1", "--",
             "--pair", "net_null0:net_null1", "--control-socket", self.dp_sock,
             "--state-dir", self.dir / "dp-state"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.dp_sock.exists, 30, "the dataplane's control socket")
        self.controld = subprocess.Popen(
            [BUILD / "bin/cordon-controld", "--state-dir", self.state, "--socket", self.api,
             "--dataplane-socket", self.dp_sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.ctl("policy", "get").returncode == 0, 30, "controld's API")

    def tearDown(self):
        for p in (self.controld, self.dataplane):
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
        subprocess.run(["umount", self.state])
        subprocess.run(["rm", "-rf", str(self.dir)])

    def ctl(self, *args):
        return subprocess.run([BUILD / "bin/cordonctl", "--socket", self.api, *map(str, args)],
                              capture_output=True, text=True, timeout=60)

    def test_full_disk_refuses_an_apply_and_changes_nothing(self):
        self.assertEqual(self.ctl("policy", "apply", REPO / "examples/policies/lab.json").returncode, 0)
        version = json.loads(self.ctl("policy", "get").stdout)["version"]
        filler = self.state / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        r = self.ctl("policy", "apply", REPO / "examples/policies/multi-device.json")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertRegex(r.stderr, "full|disk|space")
        self.assertEqual(json.loads(self.ctl("policy", "get").stdout)["version"], version)
        self.assertEqual(dataplane_request({"cmd": "get"}, self.dp_sock)["version"], version)
        filler.unlink()
        r = self.ctl("policy", "apply", REPO / "examples/policies/multi-device.json")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(self.ctl("policy", "get").stdout)["version"]
        self.assertGreater(got, version)
        self.assertEqual(dataplane_request({"cmd": "get"}, self.dp_sock)["version"], got)
        self.assertEqual(self.ctl("audit", "verify").returncode, 0)


if __name__ == "__main__":
    unittest.main()
