"""The DPDK fast path inline in the lab, with real clinical clients (issue: fast path).

Brings the lab up fresh (sample policy, version 1), runs every case through the real
cordon-dataplane, and takes the lab down at the end. Each test starts from the sample
policy (examples/policies/lab.json) applied anew.
"""
import os
import signal
import subprocess
import tempfile
import unittest
from pathlib import Path

from labutil import (ATTACKER, HOSTS, MODALITY, PACS, PROBE, PY, REPO, RIS, RUN, Background,
                     active_version, apply, cordonctl, dataplane_version, dicom_dataset, dropped,
                     echoscu, events, forge, lab_down, lab_policy, lab_up, on, set_guardrail,
                     tcpdump, wait_for, with_mode, without_rule, write_ct_file)

# Services the attacker might look for on an imaging console.
SWEEP_TCP = "1-200,443,445,2575,3389,4444,5900,8080"
LISTEN_TCP = "22,104,135,139,445,3389,4444,5900,8080"
LISTEN_UDP = "69,161,514"


def setUpModule():
    lab_up()
    forwarder = (RUN / "forwarder.kind").read_text().strip()
    if forwarder != "dataplane":
        raise RuntimeError(f"lab forwarder is {forwarder}, not cordon-dataplane")
    # These tests break clinical flows on purpose: controld's guardrail must not undo
    # that (test_controld tests the guardrail).
    set_guardrail({"enforce_mode_default": False})


def tearDownModule():
    lab_down()


def make_ct_file():
    path = Path(tempfile.mkdtemp(dir=RUN)) / "ct.dcm"
    write_ct_file(path)
    return path


class FastPath(unittest.TestCase):
    def setUp(self):
        r = apply(lab_policy())
        self.assertEqual(r.returncode, 0, r.stderr)

    # --- DICOM and HL7 through the dataplane

    def test_dicom_echo_and_store_pass_and_file_arrives_intact(self):
        r = echoscu()
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        ct = make_ct_file()
        r = on("modality", "storescu", "-to", 5, "-aet", "CT1", "-aec", "PACS", PACS, 104, ct,
               timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        uid = subprocess.run(["dcmdump", "+P", "0008,0018", str(ct)], capture_output=True,
                             text=True).stdout.split("[")[1].split("]")[0]
        stored = RUN / "pacs-store" / f"CT.{uid}"
        wait_for(stored.exists, 10, f"{stored} at pacs")
        self.assertEqual(dicom_dataset(stored), dicom_dataset(ct))

    def test_dicom_fails_for_wrong_peer_or_port(self):
        wrong_port = lab_policy()
        wrong_port["devices"][0]["rules"][0]["dport"] = 105
        self.assertEqual(apply(wrong_port).returncode, 0)
        before = dropped("no-matching-rule")
        self.assertNotEqual(echoscu().returncode, 0)
        self.assertGreater(dropped("no-matching-rule"), before)

        wrong_peer = lab_policy()
        wrong_peer["devices"][0]["rules"][0]["peer"] = "10.50.0.21/32"
        self.assertEqual(apply(wrong_peer).returncode, 0)
        self.assertNotEqual(echoscu().returncode, 0)
        # And back: the same client works again under the sample policy.
        self.assertEqual(apply(lab_policy()).returncode, 0)
        self.assertEqual(echoscu().returncode, 0)

    def test_hl7_message_is_acknowledged(self):
        r = on("modality", PY, REPO / "tests/topology/mllp_send.py", RIS, 2575, "--control-id",
               f"E2E{os.getpid()}", timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
        self.assertIn(f"|ORU^R01|E2E{os.getpid()}|", (RUN / "ris-received.hl7").read_text())

    # --- what must not pass

    def test_attacker_finds_nothing_open_and_cannot_ping(self):
        listener = Background("modality", PY, PROBE, "listen", "--tcp", LISTEN_TCP, "--udp",
                              LISTEN_UDP, ready="listening")
        try:
            r = on("attacker", PY, PROBE, "tcp-sweep", MODALITY, SWEEP_TCP)
            self.assertEqual(r.stdout.strip(), "", "open TCP ports seen by the attacker")
            r = on("attacker", PY, PROBE, "udp-sweep", MODALITY, LISTEN_UDP + ",1-100")
            self.assertEqual(r.stdout.strip(), "", "UDP ports answering the attacker")
            self.assertNotEqual(on("attacker", "ping", "-n", "-c", 2, "-W", 1, MODALITY).returncode, 0)
            # The allowed biomed host can ping, and monitor mode shows the sweep would have
            # found the listeners: the sweep itself works.
            self.assertEqual(on("pacs", "ping", "-n", "-c", 1, "-W", 2, MODALITY).returncode, 0)
            self.assertEqual(apply(with_mode(lab_policy(), "monitor")).returncode, 0)
            r = on("attacker", PY, PROBE, "tcp-sweep", MODALITY, SWEEP_TCP)
            self.assertEqual(r.stdout.split(), ["22", "104", "135", "139", "445", "3389", "4444",
                                                "5900", "8080"])
        finally:
            listener.stop()

    def test_modality_cannot_connect_to_attacker(self):
        listener = Background("attacker", PY, PROBE, "listen", "--tcp", "4444,80", "--udp", "",
                              ready="listening")
        try:
            r = on("modality", PY, PROBE, "tcp-sweep", ATTACKER, "4444,80")
            self.assertEqual(r.stdout.strip(), "")
        finally:
            listener.stop()

    def test_spoofed_source_does_not_reach_the_lan(self):
        capture = tcpdump("pacs", 1, "tcp port 104 and tcp[tcpflags] & tcp-syn != 0")
        try:
            before = dropped("spoofed-source")
            send = ("from scapy.all import Ether, IP, TCP, sendp; "
                    "sendp(Ether(src='02:c0:4d:00:00:10', dst='02:c0:4d:00:00:20')/"
                    "IP(src='{src}', dst='10.50.0.20')/TCP(sport={sport}, dport=104, flags='S'),"
                    " iface='eth0', verbose=False)")
            r = on("modality", PY, "-c", send.format(src="10.50.0.99", sport=40999))
            self.assertEqual(r.returncode, 0, r.stderr)
            wait_for(lambda: dropped("spoofed-source") > before, 10, "the spoofed frame's drop")
            # Positive control: the same SYN from the device's own address arrives.
            r = on("modality", PY, "-c", send.format(src=MODALITY, sport=41000))
            self.assertEqual(r.returncode, 0, r.stderr)
            line = capture.readline(timeout=10)
            self.assertIsNotNone(line, "the legitimate SYN did not arrive either")
            self.assertIn(f"{MODALITY}.41000 >", line)  # the first SYN seen is not the spoofed one
        finally:
            capture.stop()

    def test_source_routed_and_land_packets_do_not_reach_the_modality(self):
        """The attacker pings the modality as pacs (which may ping it) with a loose source
        route through itself, the old way to receive a forged sender's replies, and sends it
        a "land" SYN: neither arrives. The same ping without the option does."""
        capture = tcpdump("modality", 1, f"icmp[icmptype] == icmp-echo and src host {PACS}",
                          "-v")
        try:
            ping = f"IP(src='{PACS}', dst='{MODALITY}', options={{options}})/ICMP(id={{id}})"
            before = dropped("ip-source-route")
            forge("attacker", "modality",
                  ping.format(options=f"[IPOption_LSRR(routers=['{ATTACKER}'])]", id=1))
            wait_for(lambda: dropped("ip-source-route") > before, 10,
                     "the source-routed ping's drop")
            # A "land" SYN (source and destination both the modality) is dropped as well.
            before = dropped("bad-source-address")
            forge("attacker", "modality",
                  f"IP(src='{MODALITY}', dst='{MODALITY}')/TCP(sport=104, dport=104, flags='S')")
            wait_for(lambda: dropped("bad-source-address") > before, 10, "the land SYN's drop")
            forge("attacker", "modality", ping.format(options="[]", id=2))
            line = capture.readline(timeout=10)
            self.assertIsNotNone(line, "the ping without the option did not arrive either")
            self.assertNotIn("LSRR", line)  # the first ping seen is not the source-routed one
        finally:
            capture.stop()

    def test_lan_hosts_listener_reports_do_not_reach_the_modality(self):
        """IPv6 link-local control from the LAN: a multicast listener query reaches the
        modality (it must answer it), another host's listener report does not (it is for
        the routers), and is counted as LAN traffic for no device, not as an unknown
        device."""
        mac = HOSTS["attacker"]["mac"]
        unknown_before = dropped("unknown-device")
        not_for_a_device_before = dropped("not-for-a-device")
        capture = tcpdump("modality", 1, f"ether src {mac} and ip6 and ip6[6] == 0 "
                          "and ip6[40] == 58")
        try:
            # The report first, then the query: the first frame the modality sees from the
            # attacker must be the query.
            # (The source MAC is given: scapy finds no IPv6 route here and would send from
            # 00:00:00:00:00:00, which the bridge drops.)
            send = ("from scapy.all import Ether, IPv6, IPv6ExtHdrHopByHop, RouterAlert, sendp; "
                    "from scapy.layers.inet6 import ICMPv6MLReport2, ICMPv6MLQuery2; "
                    "mld = lambda group, dst, kind: Ether(src='{mac}', dst=group)/IPv6("
                    "src='fe80::c0:4dff:fe00:66', dst=dst, hlim=1)/IPv6ExtHdrHopByHop("
                    "options=[RouterAlert()])/kind(); "
                    "sendp([mld('33:33:00:00:00:16', 'ff02::16', ICMPv6MLReport2), "
                    "mld('33:33:00:00:00:01', 'ff02::1', ICMPv6MLQuery2)], iface='eth0', "
                    "verbose=False)").format(mac=mac)
            r = on("attacker", PY, "-c", send)
            self.assertEqual(r.returncode, 0, r.stderr)
            line = capture.readline(timeout=10)
            self.assertIsNotNone(line, "the listener query did not arrive either")
            self.assertIn("multicast listener query", line)
            wait_for(lambda: dropped("not-for-a-device") > not_for_a_device_before, 10,
                     "the report counted as not for a device")
            self.assertEqual(dropped("unknown-device"), unknown_before)
        finally:
            capture.stop()

    # --- modes

    def test_monitor_mode_forwards_and_records_would_drop(self):
        self.assertEqual(apply(with_mode(lab_policy(), "monitor")).returncode, 0)
        listener = Background("attacker", PY, PROBE, "listen", "--tcp", "4444", "--udp", "",
                              ready="listening")
        try:
            r = on("modality", PY, PROBE, "tcp-sweep", ATTACKER, "4444")
            self.assertEqual(r.stdout.strip(), "4444")
        finally:
            listener.stop()
        wait_for(lambda: any(e["kind"] == "would-drop" and e.get("dst") == ATTACKER
                             and e.get("dst_port") == 4444 and e["reason"] == "no-matching-rule"
                             for e in events()), 10, "a would-drop event for modality->attacker:4444")

    def test_learn_mode_forwards_and_records_observed_flows(self):
        self.assertEqual(apply(with_mode(lab_policy(), "learn")).returncode, 0)
        listener = Background("attacker", PY, PROBE, "listen", "--tcp", "4445", "--udp", "",
                              ready="listening")
        try:
            r = on("modality", PY, PROBE, "tcp-sweep", ATTACKER, "4445")
            self.assertEqual(r.stdout.strip(), "4445")
        finally:
            listener.stop()
        self.assertEqual(echoscu().returncode, 0)
        # What enforce mode would refuse is an event; every new flow is a flow record.
        wait_for(lambda: {(e.get("dst_port"), e["rule"]) for e in events()
                          if e["kind"] == "flow-observed" and e["device"] == "ct-1"}
                 >= {(4445, "")}, 10, "the flow-observed event of the unlisted flow")
        def flows():
            return cordonctl("device", "flows", "ct-1").stdout
        wait_for(lambda: "tcp out to 10.50.0.20 port 104  rule=store-to-pacs" in flows() and
                 f"tcp out to {ATTACKER} port 4445  rule=(none)" in flows(), 10, "flow records")

    # --- policy changes

    def test_removing_a_rule_cuts_an_open_connection(self):
        hold = Background("modality", PY, PROBE, "hold", RIS, 2575, ready="ack")
        try:
            hold.send("again")
            self.assertEqual(hold.readline(), "ack")
            before = dropped("policy-revoked")
            self.assertEqual(apply(without_rule(lab_policy(), "results")).returncode, 0)
            hold.send("again")
            self.assertIn(hold.readline(), ("no-ack", "closed"))
            self.assertGreater(dropped("policy-revoked"), before)
        finally:
            hold.stop()

    def test_forged_resets_and_icmp_errors_from_the_lan_do_not_cut_a_connection(self):
        """The attacker forges an ICMP error and resets into the modality's MLLP connection
        with ris. Those that do not fit the connection's sequence numbers are dropped and
        the connection goes on; the same with the numbers a real peer would use pass (so
        the check is on sequence numbers, not on the kind of packet), and that reset ends
        the connection."""
        hold = Background("modality", PY, PROBE, "hold", RIS, 2575, ready="ack")
        self.addCleanup(hold.stop)
        answers = tcpdump("ris", 2, f"src host {RIS} and tcp src port 2575 and dst host "
                          f"{MODALITY} and tcp[tcpflags] & tcp-push != 0", "-S")
        self.addCleanup(answers.stop)
        errors = tcpdump("modality", 1, f"icmp and src host {ATTACKER}")
        self.addCleanup(errors.stop)

        def ris_answer():
            """From ris's answer to one more message: the modality's port, the sequence
            number ris sends next and the one it expects next from the modality."""
            hold.send("again")
            self.assertEqual(hold.readline(), "ack")
            # "IP 10.50.0.30.2575 > 10.50.0.10.41234: Flags [P.], seq 105:122, ack 88, ..."
            line = answers.readline(timeout=10)
            self.assertIsNotNone(line, "ris's answer was not seen")
            port = int(line.split(" > ")[1].split(":")[0].rsplit(".", 1)[1])
            ris_next = int(line.split("seq ")[1].split(",")[0].split(":")[1])
            return port, ris_next, int(line.split(" ack ")[1].split(",")[0])

        port, ris_next, modality_next = ris_answer()
        reset = f"IP(src='{RIS}', dst='{MODALITY}')/TCP(sport=2575, dport={port}, " \
                "flags='R', seq={seq})"
        error = f"IP(src='{ATTACKER}', dst='{MODALITY}')/ICMP(type=3, code={{code}})/" \
                f"IP(src='{MODALITY}', dst='{RIS}')/TCP(sport={port}, dport=2575, " \
                "flags='PA', seq={seq})"

        far = 2**31
        unrelated, out_of_window = dropped("icmp-error-unrelated"), dropped("tcp-out-of-window")
        # A "host unreachable" quoting a segment the modality never sent, then a "port
        # unreachable" quoting the one it sent last: the first ICMP to arrive is that.
        forge("attacker", "modality", error.format(code=1, seq=(modality_next + far) % 2**32))
        wait_for(lambda: dropped("icmp-error-unrelated") > unrelated, 10,
                 "the forged ICMP error's drop")
        forge("attacker", "modality", error.format(code=3, seq=modality_next))
        line = errors.readline(timeout=10)
        self.assertIsNotNone(line, "the ICMP error in the window did not arrive either")
        self.assertIn("port 2575 unreachable", line)

        forge("attacker", "modality", reset.format(seq=(ris_next + far) % 2**32))
        wait_for(lambda: dropped("tcp-out-of-window") > out_of_window, 10,
                 "the forged reset's drop")
        # Still open: the next message is answered.
        _, ris_next, _ = ris_answer()
        # The reset a peer would send passes, and the connection ends.
        forge("attacker", "modality", reset.format(seq=ris_next))
        hold.send("again")
        self.assertEqual(hold.readline(), "closed")

    def test_invalid_policy_changes_nothing(self):
        version = active_version()
        broken = lab_policy()
        broken["devices"][0]["rules"][0]["peer"] = "10.50.0.300/32"
        broken["devices"][0]["mac"] = "02:c0:4d:00:00"
        r = apply(broken)
        self.assertEqual(r.returncode, 1)
        self.assertIn("devices[0].mac", r.stderr)
        self.assertIn("devices[0].rules[0].peer", r.stderr)
        self.assertEqual(active_version(), version)
        # The old rules still hold, checked with traffic both ways.
        self.assertEqual(echoscu().returncode, 0)
        self.assertNotEqual(on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY).returncode, 0)

    # --- restart: fail closed, persisted policy first

    def test_restart_fails_closed_and_enforces_persisted_policy(self):
        no_dicom = without_rule(lab_policy(), "store-to-pacs")
        r = apply(no_dicom)
        self.assertEqual(r.returncode, 0, r.stderr)
        version = active_version()
        supervisor = int((RUN / "supervisor.pid").read_text())
        forwarder = int((RUN / "forwarder.pid").read_text())
        os.kill(supervisor, signal.SIGSTOP)  # hold the restart while we look
        try:
            os.kill(forwarder, signal.SIGKILL)
            wait_for(lambda: not Path(f"/proc/{forwarder}").exists() or
                     Path(f"/proc/{forwarder}/stat").read_text().split()[2] == "Z", 10,
                     "the dataplane to die")
            # Down: nothing passes, not even what every policy so far allowed.
            self.assertNotEqual(on("pacs", "ping", "-n", "-c", 2, "-W", 1, MODALITY).returncode, 0)
            r = on("modality", PY, REPO / "tests/topology/mllp_send.py", RIS, 2575,
                   "--timeout", 3, timeout=30)
            self.assertNotEqual(r.returncode, 0)
        finally:
            os.kill(supervisor, signal.SIGCONT)
        # The dataplane enforces its persisted policy by itself, before controld would
        # re-push it: the version it reports is the active one, not its --policy file's.
        wait_for(lambda: dataplane_version() is not None, 30,
                 "the restarted dataplane's control socket")
        self.assertEqual(dataplane_version(), version)
        self.assertEqual(active_version(), version)
        self.assertNotEqual(echoscu().returncode, 0)
        self.assertEqual(on("pacs", "ping", "-n", "-c", 1, "-W", 2, MODALITY).returncode, 0)

    def test_orderly_restart_keeps_open_connections(self):
        """SIGTERM (an update, a reconfiguration): the dataplane saves its flows and the
        restarted one takes them back, so an open MLLP connection to ris goes on instead of
        stalling on segments no flow table knows. The persisted policy still decides. A
        crash saves nothing: the same connection is then cut. (Uninspected flows only: the
        lab's HL7 rule inspects, so this test's policy has it without its HL7 check.)"""
        policy = lab_policy()
        results = next(r for r in policy["devices"][0]["rules"] if r["name"] == "results")
        del results["app"]
        self.assertEqual(apply(policy).returncode, 0)
        hold = Background("modality", PY, PROBE, "hold", RIS, 2575, ready="ack")
        self.addCleanup(hold.stop)
        log = RUN / "dataplane.log"

        def restart(sig):
            pid = int((RUN / "forwarder.pid").read_text())
            offset = log.stat().st_size
            os.kill(pid, sig)
            wait_for(lambda: (RUN / "forwarder.pid").read_text().strip() != str(pid), 30,
                     "the supervisor to restart the dataplane")
            wait_for(lambda: dataplane_version() is not None, 30,
                     "the restarted dataplane's control socket")
            return log.read_text()[offset:]

        started = restart(signal.SIGTERM)
        self.assertRegex(started, r"saved [1-9]\d* flows")
        self.assertRegex(started, r"restored [1-9]\d* flows from the last shutdown")
        hold.send("again")
        self.assertEqual(hold.readline(), "ack")
        self.assertNotEqual(on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY).returncode, 0)

        restart(signal.SIGKILL)
        hold.send("again")
        self.assertIn(hold.readline(), ("no-ack", "closed"))

    def test_after_a_crash_deny_action_reset_ends_lost_connections_at_once(self):
        """kill -9 loses the flows (nothing is saved). With deny_action reset the modality's
        next segment on its open MLLP connection, which no flow table knows any more, is
        answered with a reset: the sender sees the connection closed at once and can
        reconnect, instead of waiting for an acknowledgement that cannot come ("no-ack", the
        drop that deny_action drop gives: test_orderly_restart_keeps_open_connections)."""
        policy = lab_policy()
        policy["devices"][0]["deny_action"] = "reset"
        self.assertEqual(apply(policy).returncode, 0)
        hold = Background("modality", PY, PROBE, "hold", RIS, 2575, ready="ack")
        self.addCleanup(hold.stop)
        pid = int((RUN / "forwarder.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: (RUN / "forwarder.pid").read_text().strip() != str(pid), 30,
                 "the supervisor to restart the dataplane")
        wait_for(lambda: dataplane_version() is not None, 30,
                 "the restarted dataplane's control socket")
        before = dropped("tcp-no-flow")
        hold.send("again")
        self.assertEqual(hold.readline(), "closed")
        self.assertGreater(dropped("tcp-no-flow"), before)
        # A new connection is admitted as before.
        self.assertEqual(on("modality", PY, REPO / "tests/topology/mllp_send.py", RIS, 2575,
                            "--timeout", 5, timeout=30).returncode, 0)


if __name__ == "__main__":
    unittest.main()
