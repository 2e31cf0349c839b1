"""cordon-controld end to end.

ControldCrash: no lab; a cordon-dataplane on net_null ports and controld in a temp dir.
controld is killed (SIGKILL, a stand-in for a power cut) at each step of an apply; after
a restart controld and the dataplane agree on one version, the old or the new, never a
mix.

ControldInLab: the lab topology with real clients: apply, rollback, confirm-or-revert,
events, controld and dataplane restarts. Needs root and network namespaces.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from labutil import (ATTACKER, BUILD, MODALITY, PACS, PY, REPO, RIS, RUN, SOCKET, apply,
                     active_version, appliance_stand_in_service, cordonctl, dataplane_request, dataplane_version, echoscu,
                     lab_down, lab_up, lab_policy, on, set_guardrail, VendorLaptop, wait_for,
                     with_mode, without_rule)

CONTROLD = BUILD / "bin/cordon-controld"
DATAPLANE = BUILD / "bin/cordon-dataplane"
CORDONCTL = BUILD / "bin/cordonctl"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"


def canonical(text):
    return json.dumps(json.loads(text), sort_keys=True)


class ControldCrash(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="cordon-crash-"))
        self.dp_sock = self.dir / "dp.sock"
        self.api = self.dir / "api.sock"
        self.dataplane = subprocess.Popen(
            [DATAPLANE, "--no-huge", "-m", "128", "--no-pci", "--file-prefix",
             f"crash{os.getpid()}", "-l", "0", "--vdev=net_null0", "--vdev=net_null1", "--",
             "--pair", "net_null0:net_null1", "--control-socket", self.dp_sock,
             "--state-dir", self.dir / "dp-state"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.dp_sock.exists, 30, "the dataplane's control socket")
        self.controld = None

    def tearDown(self):
        for p in (self.controld, self.dataplane):
            if p and p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(self.dir)])

    def start_controld(self, *extra):
        self.controld = subprocess.Popen(
            [CONTROLD, "--state-dir", self.dir / "ctl", "--socket", self.api,
             "--dataplane-socket", self.dp_sock, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: self.ctl("policy", "get").returncode == 0, 30, "controld's API")

    def ctl(self, *args):
        return subprocess.run([CORDONCTL, "--socket", self.api, *map(str, args)],
                              capture_output=True, text=True, timeout=60)

    def agreed_state(self):
        """(version, canonical document) that controld and the dataplane both report."""
        got = json.loads(self.ctl("policy", "get").stdout)
        dp = dataplane_request({"cmd": "get"}, self.dp_sock)
        self.assertEqual(got["version"], dp["version"], "controld and the dataplane disagree")
        self.assertEqual(json.dumps(got["policy"], sort_keys=True),
                         json.dumps(dp["policy"], sort_keys=True))
        return got["version"], json.dumps(got["policy"], sort_keys=True)

    def test_kill_at_every_step_of_an_apply_leaves_one_version_everywhere(self):
        old_file = REPO / "examples/policies/lab.json"
        new_file = REPO / "examples/policies/monitor.json"
        self.start_controld()
        self.assertEqual(self.ctl("policy", "apply", old_file).returncode, 0)
        old_version, old_doc = self.agreed_state()
        expected_after = {"recorded": "old", "pushed": "new", "committed": "new"}
        for step, outcome in expected_after.items():
            with self.subTest(step=step):
                # Back to the old policy before each round (as a new version).
                if self.agreed_state()[1] != old_doc:
                    self.assertEqual(self.ctl("policy", "apply", old_file).returncode, 0)
                before, _ = self.agreed_state()
                self.controld.terminate()
                self.controld.wait(timeout=30)
                self.start_controld("--crash-at", step)
                r = self.ctl("policy", "apply", new_file)
                self.assertNotEqual(r.returncode, 0, "the apply cannot have been acknowledged")
                self.assertEqual(self.controld.wait(timeout=30), -signal.SIGKILL)
                self.start_controld()  # the restart recovers
                version, doc = self.agreed_state()
                if outcome == "old":
                    self.assertEqual(doc, old_doc)
                    self.assertEqual(version, before)
                else:
                    self.assertNotEqual(doc, old_doc)
                    self.assertGreater(version, before)
                verify = self.ctl("audit", "verify")
                self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)


class ControldInLab(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        lab_up()

    @classmethod
    def tearDownClass(cls):
        lab_down()

    def setUp(self):
        # Every test starts from the sample policy (as a new version if needed), with the
        # guardrail off except where a test is about it.
        set_guardrail({"enforce_mode_default": False})
        self.assertEqual(apply(lab_policy()).returncode, 0)

    def events(self):
        r = cordonctl("events", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def flows(self, device="ct-1"):
        return cordonctl("device", "flows", device).stdout

    def test_guardrail_reverts_a_change_that_breaks_a_working_flow(self):
        set_guardrail({"threshold": 1})
        good = active_version()
        self.assertEqual(echoscu().returncode, 0)  # DICOM works: a flow record
        wait_for(lambda: "tcp out to 10.50.0.20 port 104" in self.flows(), 20, "the flow record")
        self.assertEqual(apply(without_rule(lab_policy(), "store-to-pacs")).returncode, 0)
        broken = active_version()
        # Its first SYN is dropped, which trips the guardrail; the revert is fast enough
        # that a retransmitted SYN may already pass, so this echo's outcome is not asserted.
        echoscu()
        wait_for(lambda: active_version() > broken, 30, "the guardrail's revert")
        dropped = [e for e in self.events() if e["kind"] == "drop" and
                   e.get("policy_version") == broken and e.get("dst_port") == 104]
        self.assertTrue(dropped, "the broken version dropped no DICOM packet")
        self.assertEqual(echoscu().returncode, 0)
        alerts = [e for e in self.events() if e["kind"] == "guardrail-revert"]
        self.assertTrue(alerts, "no guardrail alert")
        self.assertEqual(alerts[-1]["device"], "ct-1")
        self.assertIn("tcp out to 10.50.0.20 port 104", alerts[-1]["detail"])
        self.assertIn(f"reverted to version {good}", alerts[-1]["detail"])
        self.assertIn("policy.revert", cordonctl("audit").stdout)

    def test_learn_mode_proposal_becomes_a_working_allowlist(self):
        learn = with_mode(lab_policy(), "learn")
        learn["devices"][0]["rules"] = [r for r in learn["devices"][0]["rules"] if r["name"] == "ntp"]
        self.assertEqual(apply(learn).returncode, 0)
        # The device does its clinical work while Cordon watches: an echo and a CT store to
        # the PACS, a result to the RIS.
        self.assertEqual(echoscu().returncode, 0)
        self.assertEqual(self.store(CT_IMAGE, "CT").returncode, 0)
        r = on("modality", PY, REPO / "tests/topology/mllp_send.py", RIS, 2575, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: "port 104" in self.flows() and "port 2575" in self.flows(), 20,
                 "flow records of both connections")
        out = RUN / "proposal.json"

        def proposal_rules():
            r = cordonctl("device", "proposal", "ct-1", "--output", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            return {rule["name"]: rule for rule in json.loads(out.read_text())["devices"][0]["rules"]}
        # What the connections carried arrives with the flow records' events.
        wait_for(lambda: "app" in proposal_rules().get("learned-out-tcp-104", {}) and
                 "app" in proposal_rules().get("learned-out-tcp-2575", {}), 20,
                 "the DICOM and HL7 the connections carried")
        r = cordonctl("device", "proposal", "ct-1")
        self.assertIn("+ rule learned-out-tcp-104", r.stdout)
        self.assertIn("10.50.0.20/32", r.stdout)
        self.assertIn("+ rule learned-out-tcp-2575", r.stdout)
        rules = proposal_rules()
        self.assertEqual(rules["learned-out-tcp-104"]["app"], {"dicom": {
            "calling_ae": ["CT1"], "called_ae": ["PACS"], "commands": ["C-ECHO", "C-STORE"],
            "sop_classes": [CT_IMAGE]}})
        self.assertEqual(rules["learned-out-tcp-2575"]["app"], {"hl7": {"message_types": ["ORU^R01"]}})
        # Reviewed and switched to enforce, the proposal allows that work and nothing else:
        # not another AE title, not another SOP class, not the attacker.
        proposal = json.loads(out.read_text())
        proposal["devices"][0]["mode"] = "enforce"
        self.assertEqual(apply(proposal).returncode, 0)
        self.assertEqual(echoscu().returncode, 0)
        self.assertEqual(self.store(CT_IMAGE, "CT").returncode, 0)
        self.assertNotEqual(echoscu(calling="CT9").returncode, 0)
        self.assertNotEqual(self.store(MR_IMAGE, "MR").returncode, 0)
        self.assertNotEqual(on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY).returncode, 0)

    def store(self, sop_class, modality):
        """A C-STORE of a fresh instance of `sop_class` from the modality to the PACS."""
        path = RUN / f"learn-{modality}.dcm"
        subprocess.run([str(REPO / "tests/topology/make_test_dicom.sh"), str(path), sop_class,
                        modality], check=True, capture_output=True, timeout=60)
        return on("modality", "storescu", "-to", 5, "-aet", "CT1", "-aec", "PACS", PACS, 104, path,
                  timeout=60)

    def test_dry_run_reports_what_a_change_would_block_and_installs_nothing(self):
        self.assertEqual(echoscu().returncode, 0)
        wait_for(lambda: "port 104" in self.flows(), 20, "the DICOM flow record")
        version = active_version()
        candidate = self.write(without_rule(lab_policy(), "store-to-pacs"))
        # Against what was recorded (the default: the last 24 h).
        r = cordonctl("policy", "dry-run", candidate)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Device ct-1", r.stdout)
        self.assertIn("tcp 10.50.0.10 -> 10.50.0.20 port 104", r.stdout)
        self.assertIn("no-matching-rule", r.stdout)
        # Against a capture: the case's DICOM association, inspected like on the wire.
        r = cordonctl("policy", "dry-run", candidate, "--pcap",
                      REPO / "tests/packets/app-dicom-called-ae-one-byte-segments/frames.pcap")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("BLOCKED", r.stdout)
        # The same policy changes nothing; and nothing was installed by either run.
        r = cordonctl("policy", "dry-run", REPO / "examples/policies/lab.json")
        self.assertIn("0 blocked", r.stdout)
        self.assertEqual(active_version(), version)
        self.assertEqual(echoscu().returncode, 0)

    def set_syslog(self, settings):
        path = self.write(settings)
        r = cordonctl("settings", "syslog", "set", path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_events_are_exported_to_a_real_syslog_collector(self):
        """rsyslogd on the admin host receives drops over UDP (RFC 5424) and TCP (CEF);
        a TLS collector receives them only when its certificate is trusted."""
        work = Path(tempfile.mkdtemp(dir=RUN, prefix="syslog-"))
        received = work / "received.log"
        (work / "rsyslog.conf").write_text(f"""
global(workDirectory="{work}")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="10.60.0.5" port="5514")
input(type="imtcp" address="10.60.0.5" port="6514")
template(name="raw" type="string" string="%rawmsg%\\n")
*.* action(type="omfile" file="{received}" template="raw")
""")
        rsyslog = subprocess.Popen(["ip", "netns", "exec", "admin", "rsyslogd", "-n", "-f",
                                    work / "rsyslog.conf", "-i", work / "rsyslog.pid"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        collector = None
        try:
            def listening(spec):
                r = on("admin", "ss", "-Hln", spec)
                return "10.60.0.5:" in r.stdout
            wait_for(lambda: listening("-u") and listening("-t"), 20, "rsyslogd to listen")

            def attack_until(marker, path=received):
                """Lines with `marker` about the attacker's drops (the lab has others)."""
                def lines():
                    if not path.exists():
                        return []
                    return [l for l in path.read_text().splitlines()
                            if marker in l and ATTACKER in l]
                def seen():
                    on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY)
                    return lines()
                wait_for(seen, 30, f"{marker!r} at the collector")
                return lines()

            self.set_syslog({"enabled": True, "host": "10.60.0.5", "port": 5514,
                             "transport": "udp", "format": "rfc5424"})
            line = attack_until("[cordon@32473")[-1]
            self.assertRegex(line, r"^<16\d>1 \S+ \S+ cordon - drop \[cordon@32473 ")
            self.assertIn(f'src="{ATTACKER}"', line)
            self.assertIn('reason="no-matching-rule"', line)

            self.set_syslog({"enabled": True, "host": "10.60.0.5", "port": 6514,
                             "transport": "tcp", "format": "cef"})
            line = attack_until("CEF:0|Cordon|")[-1]
            self.assertIn(f"src={ATTACKER}", line)
            self.assertIn("cs1Label=device cs1=ct-1", line)

            # TLS: a collector with a certificate from a CA the appliance is given.
            for name in ("ca", "other-ca"):
                subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                                f"/CN={name}", "-keyout", work / f"{name}.key", "-out",
                                work / f"{name}.pem"], check=True, capture_output=True)
            subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-subj", "/CN=collector", "-keyout", work / "server.key",
                            "-out", work / "server.csr"], check=True, capture_output=True)
            (work / "san.ext").write_text("subjectAltName=IP:10.60.0.5\n")
            subprocess.run(["openssl", "x509", "-req", "-in", work / "server.csr", "-CA",
                            work / "ca.pem", "-CAkey", work / "ca.key", "-CAcreateserial", "-days",
                            "2", "-extfile", work / "san.ext", "-out", work / "server.pem"],
                           check=True, capture_output=True)
            tls_received = work / "tls.log"
            collector = subprocess.Popen(["ip", "netns", "exec", "admin", PY,
                                          REPO / "tests/e2e/tls_collector.py", "10.60.0.5", "6515",
                                          work / "server.pem", work / "server.key", tls_received],
                                         stdout=subprocess.PIPE, text=True)
            self.assertEqual(collector.stdout.readline().strip(), "ready")
            # An untrusted collector gets nothing, and the reason is reported.
            self.set_syslog({"enabled": True, "host": "10.60.0.5", "port": 6515,
                             "transport": "tls", "format": "rfc5424",
                             "ca_file": str(work / "other-ca.pem")})
            def tls_refused():
                on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY)
                return "TLS handshake" in json.loads(cordonctl("settings", "syslog", "get").stdout)["last_error"]
            wait_for(tls_refused, 30, "the untrusted collector to be refused")
            self.assertFalse(tls_received.exists())
            self.set_syslog({"enabled": True, "host": "10.60.0.5", "port": 6515,
                             "transport": "tls", "format": "rfc5424",
                             "ca_file": str(work / "ca.pem")})
            line = attack_until("[cordon@32473", tls_received)[-1]
            self.assertIn(f'src="{ATTACKER}"', line)
        finally:
            self.set_syslog({"enabled": False})
            for p in (rsyslog, collector):
                if p is not None:
                    p.terminate()
                    p.wait(timeout=10)
            rsyslog.stderr.close()
            if collector is not None:
                collector.stdout.close()

    def test_management_firewall_admits_only_the_admin_network(self):
        r = cordonctl("settings", "management", "verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # cordon-webd listens on 10.60.0.1:8443, and a stand-in service on every address.
        listener = appliance_stand_in_service()
        try:
            sweep = REPO / "tests/e2e/port_sweep.py"
            # The admin workstation reaches HTTPS and nothing else.
            r = on("admin", PY, sweep, "10.60.0.1", 1, 9000, "--timeout", 3, timeout=60)
            self.assertEqual(r.stdout.split(), ["open", "8443"], r.stdout)
            # The vendor's laptop on the internet side, without a tunnel: nothing answers,
            # not even "closed", and the WireGuard port is silent.
            r = on("vendor", PY, sweep, "192.0.2.1", 1, 9000, "--udp", 51820, "--timeout", 3,
                   timeout=60)
            self.assertEqual(r.stdout.strip(), "", r.stdout)
        finally:
            listener.stop()

    def test_management_firewall_is_reasserted_and_survives_restarts(self):
        # Someone empties the input chain behind controld's back: it notices and re-installs.
        subprocess.run(["ip", "netns", "exec", "appliance", "nft", "flush", "chain", "inet",
                        "cordon_mgmt", "input"], check=True)
        self.assertNotEqual(cordonctl("settings", "management", "verify").returncode, 0)
        wait_for(lambda: cordonctl("settings", "management", "verify").returncode == 0, 30,
                 "controld to re-install its table")
        # A settings change is installed and read back; it survives a controld restart.
        settings = json.loads((REPO / "tests/topology/management.json").read_text())
        settings["icmp_echo_per_second"] = 2
        r = cordonctl("settings", "management", "set", self.write(settings))
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = int((RUN / "controld.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: (RUN / "controld.pid").read_text().strip() != str(pid) and
                 cordonctl("settings", "management", "verify").returncode == 0, 30,
                 "the restarted controld's table")
        got = json.loads(cordonctl("settings", "management", "get").stdout)
        self.assertEqual(got["icmp_echo_per_second"], 2)
        table = subprocess.run(["ip", "netns", "exec", "appliance", "nft", "list", "table", "inet",
                                "cordon_mgmt"], capture_output=True, text=True).stdout
        self.assertIn("limit rate 2/second", table)
        # Bad settings: a clear error with the field, nothing changes.
        settings["admin_networks"] = ["10.60.0.5/24"]
        r = cordonctl("settings", "management", "set", self.write(settings))
        self.assertEqual(r.returncode, 1)
        self.assertIn("/admin_networks/0", r.stderr)
        self.assertEqual(cordonctl("settings", "management", "verify").returncode, 0)
        settings["icmp_echo_per_second"] = 5
        settings["admin_networks"] = ["10.60.0.0/24"]
        self.assertEqual(cordonctl("settings", "management", "set", self.write(settings)).returncode, 0)

    def appliance_peers(self):
        return json.loads(cordonctl("wireguard").stdout)["peers"]

    def vendor_set(self):
        return subprocess.run(["ip", "netns", "exec", "appliance", "nft", "list", "set", "inet",
                               "cordon_mgmt", "vendor_access"], capture_output=True, text=True).stdout

    def test_vendor_session_is_narrow_time_boxed_and_audited(self):
        work = Path(tempfile.mkdtemp(dir=RUN, prefix="vendor-"))
        laptop = VendorLaptop(work, "wg-vendor")
        vendor_key = laptop.public_key
        try:
            # Bad requests first: nothing is opened.
            for args, expect in ((["--device", "ct-1", "--port", 104, "--duration", 600], "/public_key"),
                                 (["--key", vendor_key, "--device", "nope", "--port", 104, "--duration", 600], "/device"),
                                 (["--key", vendor_key, "--device", "ct-1", "--port", 0, "--duration", 600], "/ports/0"),
                                 (["--key", vendor_key, "--device", "ct-1", "--port", 104, "--duration", 9 * 3600], "/duration_seconds")):
                r = cordonctl("vendor", "create", *args)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn(expect, r.stderr)
            self.assertEqual(self.appliance_peers(), [])
            r = cordonctl("vendor", "create", "--key", vendor_key, "--device", "ct-1", "--port", 104,
                          "--duration", 600)
            self.assertEqual(r.returncode, 0, r.stderr)
            session = r.stdout.split()[2].rstrip(":")
            tunnel = r.stdout.split("tunnel address ")[1].split(",")[0]
            # Exactly that device and port are in the firewall's set, with a timeout.
            self.assertIn(f"{tunnel} . {MODALITY} . 104 timeout", self.vendor_set())
            # The vendor takes its tunnel address: the handshake completes.
            laptop.use_tunnel_address(tunnel)
            # Through the tunnel the appliance itself answers nothing (not an admin network).
            r = on("vendor", PY, REPO / "tests/e2e/port_sweep.py", "10.99.0.1", 8440, 8450,
                   "--timeout", 2, timeout=60)
            self.assertNotIn("open", r.stdout)
            self.assertIn(session, cordonctl("vendor", "list").stdout)
            # Revoke: elements gone at once, audited; the peer stays for its reset grace
            # (VendorAccess::kResetGraceMs, 30 s) with nothing it may reach.
            self.assertEqual(cordonctl("vendor", "revoke", session).returncode, 0)
            self.assertNotIn(tunnel, self.vendor_set())
            self.assertEqual(cordonctl("vendor", "list").stdout.strip(), "")
            # A short session expires by itself (same key: it takes the peer over).
            r = cordonctl("vendor", "create", "--key", vendor_key, "--device", "ct-1", "--port", 104,
                          "--duration", 5)
            self.assertEqual(r.returncode, 0, r.stderr)
            wait_for(lambda: cordonctl("vendor", "list").stdout.strip() == "", 30,
                     "the session to expire")
            # The list leaves a session out from its end time on; the firewall's element goes
            # a moment later: the kernel counts its timeout from the commit, a few ms after
            # controld computed it, and controld's expiry pass removes it on its next tick.
            wait_for(lambda: " . 104" not in self.vendor_set(), 5,
                     "the expired session's firewall element to go")
            wait_for(lambda: self.appliance_peers() == [], 45,
                     "the expired session's peer to go after its reset grace")
            audit = cordonctl("audit").stdout
            for action in ("vendor.create", "vendor.revoke", "vendor.expire"):
                self.assertIn(action, audit)
            self.assertEqual(cordonctl("settings", "management", "verify").returncode, 0)
        finally:
            laptop.stop()

    def test_discovery_lists_an_unknown_device_on_the_device_port(self):
        send = ("from scapy.all import Ether, IP, UDP, sendp; "
                "sendp([Ether(src='02:c0:4d:00:00:77', dst='ff:ff:ff:ff:ff:ff')/"
                "IP(src='10.50.0.77', dst='10.50.0.20')/UDP(sport=4000, dport=104)]*3, "
                "iface='eth0', verbose=False)")
        self.assertEqual(on("modality", PY, "-c", send).returncode, 0)
        self.assertEqual(echoscu().returncode, 0)
        def listed():
            return cordonctl("discovery").stdout
        wait_for(lambda: "02:c0:4d:00:00:77" in listed(), 20, "the unknown device in discovery")
        lines = listed().splitlines()
        unknown = next(l for l in lines if "02:c0:4d:00:00:77" in l)
        self.assertIn("10.50.0.77", unknown)
        self.assertIn("NOT COVERED", unknown)
        known = next(l for l in lines if "02:c0:4d:00:00:10" in l and "10.50.0.10" in l)
        self.assertIn("device ct-1", known)

    def history(self):
        r = cordonctl("policy", "history")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_rollback_restores_what_the_old_version_allowed(self):
        good = active_version()
        self.assertEqual(echoscu().returncode, 0)
        self.assertEqual(apply(without_rule(lab_policy(), "store-to-pacs")).returncode, 0)
        self.assertNotEqual(echoscu().returncode, 0)
        r = cordonctl("policy", "diff", good)
        self.assertIn("- rule store-to-pacs", r.stdout)
        r = cordonctl("policy", "rollback", good)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(echoscu().returncode, 0)
        self.assertEqual(dataplane_version(), active_version())

    def test_unconfirmed_apply_reverts_by_itself(self):
        good = active_version()
        r = cordonctl("policy", "apply", self.write(without_rule(lab_policy(), "store-to-pacs")),
                      "--confirm-within", 10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("provisional", r.stdout)
        self.assertNotEqual(echoscu().returncode, 0)
        # Nobody confirms: within the window plus controld's 1 s check it reverts.
        wait_for(lambda: echoscu().returncode == 0, 30, "the automatic revert")
        self.assertGreater(active_version(), good)
        audit = cordonctl("audit").stdout
        self.assertIn("automatic revert", audit)
        self.assertEqual(dataplane_version(), active_version())

    def test_confirmed_apply_stays(self):
        r = cordonctl("policy", "apply", self.write(without_rule(lab_policy(), "store-to-pacs")),
                      "--confirm-within", 10)
        self.assertEqual(r.returncode, 0, r.stderr)
        version = active_version()
        self.assertEqual(cordonctl("policy", "confirm").returncode, 0)
        deadline = time.monotonic() + 13
        wait_for(lambda: time.monotonic() > deadline, 20, "the confirmation window to pass")
        self.assertEqual(active_version(), version)
        self.assertNotEqual(echoscu().returncode, 0)

    def test_events_reach_controld_and_follow_streams_them(self):
        follow = subprocess.Popen([CORDONCTL, "events", "--follow", "--json"],
                                  env=dict(os.environ, CORDON_SOCKET=str(SOCKET)),
                                  stdout=subprocess.PIPE, text=True)
        try:
            on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY)
            deadline = time.monotonic() + 20
            seen = None
            while time.monotonic() < deadline and seen is None:
                line = follow.stdout.readline()
                event = json.loads(line)
                if event.get("src") == ATTACKER and event["reason"] == "no-matching-rule":
                    seen = event
            self.assertIsNotNone(seen, "the attacker's drop was not streamed")
            self.assertEqual(seen["device"], "ct-1")
        finally:
            follow.terminate()
            follow.wait(timeout=10)

    def test_controld_killed_dataplane_keeps_enforcing_and_state_survives(self):
        version = active_version()
        pid = int((RUN / "controld.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        # With controld gone the dataplane still enforces the policy.
        self.assertEqual(echoscu().returncode, 0)
        self.assertNotEqual(on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY).returncode, 0)
        wait_for(lambda: (RUN / "controld.pid").read_text().strip() != str(pid) and
                 active_version() is not None, 30, "the supervisor to restart controld")
        self.assertEqual(active_version(), version)
        r = cordonctl("audit", "verify")
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_dataplane_restarted_without_state_gets_the_active_version_again(self):
        version = active_version()
        forwarder = int((RUN / "forwarder.pid").read_text())
        supervisor = int((RUN / "supervisor.pid").read_text())
        os.kill(supervisor, signal.SIGSTOP)
        try:
            os.kill(forwarder, signal.SIGKILL)
            wait_for(lambda: not Path(f"/proc/{forwarder}").exists() or
                     Path(f"/proc/{forwarder}/stat").read_text().split()[2] == "Z", 10,
                     "the dataplane to die")
            subprocess.run(["rm", "-rf", str(RUN / "state")])  # it loses its persisted policy
            (RUN / "state").mkdir()
        finally:
            os.kill(supervisor, signal.SIGCONT)
        # It comes back with its --policy file (version 1); controld re-pushes the active one.
        wait_for(lambda: dataplane_version() == version, 30, "controld to re-push the active version")
        self.assertEqual(echoscu().returncode, 0)

    def write(self, policy):
        f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=RUN)
        f.write(json.dumps(policy))
        f.close()
        return f.name


if __name__ == "__main__":
    unittest.main()
