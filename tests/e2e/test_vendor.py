"""The vendor path end to end (issue 6, docs/management-plane.md "Vendor path").

The vendor's laptop brings up its own WireGuard interface (wireguard-go) toward the
appliance; an operator opens a session for the modality (ct-1) through cordonctl. The
vendor's traffic goes through the tunnel, controld's nftables filter and SNAT, the
dataplane's service port (svc0, net_tap) and the engine to the modality. Checked: DICOM
echo reaches the modality's SCP; nothing else does (another port of the modality, another
host, the management address); revoke and expiry cut an open connection (the vendor's
client gets a TCP reset from the firewall, the modality's end one from the dataplane) and
leave nothing reachable; the dataplane holds exactly the active sessions, and gets them back from controld after
a restart. The same laptop, made a remote-management peer, reaches webd's HTTPS through
the tunnel and nothing else; removing the peer ends that.
Needs root and network namespaces.
"""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from labutil import (MODALITY, PACS, PY, REPO, RUN, Background, VendorLaptop,
                     appliance_stand_in_service, cordonctl, dataplane_request, lab_down, lab_up, on, wait_for)

SERVICE_ADDRESS = json.loads((REPO / "tests/topology/management.json").read_text())[
    "vendor_service_address"]
WG_IF = "wg-vpath"   # unique on the machine (wireguard-go's control sockets are shared)
ECHO_PORT = 7777     # a plain TCP echo service on the modality, part of the session
OTHER_PORT = 11113   # a DICOM SCP on the modality that the session does not include
MGMT_PEER = "vendor-laptop"      # the laptop as a remote-management peer
MGMT_PEER_ADDRESS = "10.99.0.200"
WEBD = ("10.60.0.1", 8443)
SWEEP = REPO / "tests/e2e/port_sweep.py"

# On the modality: echoes what it receives; prints where connections come from and which
# end with a reset. "poke" on stdin sends "poke" on every open connection: the modality's
# end speaking first after a session ended, as a device answering late would.
ECHO_SERVER = f"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {ECHO_PORT})); s.listen(8)
open_connections = set()
print("listening", flush=True)
def serve(c, a):
    print("from", a[0], flush=True)
    open_connections.add(c)
    try:
        with c:
            while True:
                d = c.recv(4096)
                if not d: return
                c.sendall(d)
    except ConnectionResetError:
        print("reset from", a[0], flush=True)
    finally:
        open_connections.discard(c)
def poke():
    for line in sys.stdin:
        for c in list(open_connections):
            try:
                c.sendall(b"poke")
            except OSError:
                pass
threading.Thread(target=poke, daemon=True).start()
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
"""

# On the vendor: one connection held open; "send X" answers "got X", "no answer" or
# "error ..." (a reset, say).
HELD_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("connected", flush=True)
for line in sys.stdin:
    word = line.split()[1]
    try:
        c.settimeout(4)
        c.sendall(word.encode())
        got = c.recv(4096).decode()
        print("got " + got if got else "error closed", flush=True)
    except socket.timeout:
        print("no answer", flush=True)
    except OSError as e:
        print("error " + str(e), flush=True)
"""


def read_line_starting(background, prefix, timeout):
    """The next line of `background` that starts with prefix, or None after timeout s."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        line = background.readline(left)
        if line is None:
            return None
        if line.startswith(prefix):
            return line
    return None


def tcp_open(host, port, timeout=3):
    """Whether a TCP connection from the vendor to host:port is accepted."""
    r = on("vendor", PY, REPO / "tests/e2e/port_sweep.py", host, port, port, "--timeout", timeout,
           timeout=60)
    return f"open {port}" in r.stdout


def https_status(host, port):
    """The HTTP status webd answers the vendor with over TLS, or None."""
    r = on("vendor", "curl", "-sk", "--max-time", 5, "-o", "/dev/null", "-w", "%{http_code}",
           f"https://{host}:{port}/", timeout=30)
    return int(r.stdout) if r.returncode == 0 and r.stdout.isdigit() else None


def open_ports(host, first, last):
    """The TCP ports of host that accept a connection from the vendor."""
    # Paced: a burst of thousands of SYNs overflows wireguard-go's queues (port_sweep.py).
    r = on("vendor", PY, SWEEP, host, first, last, "--timeout", 3, "--rate", 2000, timeout=90)
    return [int(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("open ")]


def vendor_echoscu():
    return on("vendor", "echoscu", "-to", 5, "-ta", 5, "-aet", "VENDOR", "-aec", "CT1", MODALITY,
              104, timeout=30)


class VendorPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        lab_up()
        cls.services = []
        try:
            # The modality's services: a DICOM SCP on 104 (the session's port), another
            # on OTHER_PORT (not in the session), and a TCP echo service.
            for port in (104, OTHER_PORT):
                cls.services.append(subprocess.Popen(
                    [str(REPO / "tests/topology/lab.sh"), "exec", "modality", "--", "storescp",
                     "--aetitle", "CT1", "--output-directory", str(RUN), "--disable-host-lookup",
                     str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            cls.echo = Background("modality", PY, "-u", "-c", ECHO_SERVER, ready="listening")
            wait_for(lambda: all(f":{p} " in on("modality", "ss", "-Hltn").stdout
                                 for p in (104, OTHER_PORT, ECHO_PORT)), 20,
                     "the modality's services")
            cls.work = Path(tempfile.mkdtemp(dir=RUN, prefix="vendor-path-"))
            cls.laptop = VendorLaptop(cls.work, WG_IF)
            cls.vendor_key = cls.laptop.public_key
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "laptop", None):
            cls.laptop.stop()
        if getattr(cls, "echo", None):
            cls.echo.stop()
        for p in getattr(cls, "services", []):
            p.terminate()
            p.wait(timeout=10)
        lab_down()

    def open_session(self, duration, ports=(104, ECHO_PORT)):
        args = ["vendor", "create", "--key", self.vendor_key, "--device", "ct-1", "--duration",
                duration]
        for p in ports:
            args += ["--port", p]
        r = cordonctl(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        # What the vendor is told: where to dial, besides the appliance's key.
        self.assertIn("appliance endpoint 192.0.2.1:", r.stdout)
        session = r.stdout.split()[2].rstrip(":")
        tunnel = r.stdout.split("tunnel address ")[1].split(",")[0]
        self.laptop.use_tunnel_address(tunnel)
        return session

    def tearDown(self):
        # A failed test leaves no session or management peer for the next one.
        for line in cordonctl("vendor", "list").stdout.splitlines():
            if self.vendor_key in line:
                cordonctl("vendor", "revoke", line.split()[0].rstrip(":"))
        if MGMT_PEER in cordonctl("management-peer", "list").stdout:
            cordonctl("management-peer", "remove", MGMT_PEER)

    def dataplane_sessions(self):
        """The sessions the dataplane admits; None while it is not answering (restart)."""
        try:
            return dataplane_request({"cmd": "get"}, timeout=5)["vendor_sessions"]
        except OSError:
            return None

    def held_connection(self):
        held = Background("vendor", PY, "-u", "-c", HELD_CLIENT, MODALITY, ECHO_PORT,
                          ready="connected", timeout=20)
        held.send("send hello")
        self.assertEqual(held.readline(10), "got hello")
        return held

    def assert_cut(self, answer):
        """The held connection's answer after its session ended: a reset (ECONNRESET), not
        a timeout: the firewall answers the vendor's segment with a TCP reset."""
        self.assertIsNotNone(answer, "the held client said nothing")
        self.assertTrue(answer.startswith("error") and "reset" in answer.lower(), answer)

    def assert_device_end_reset(self):
        """The modality's end of the held connection, speaking after its session ended, gets
        a reset from the dataplane (not silence until its own timeout), although ct-1's
        deny_action is drop."""
        self.echo.send("poke")
        self.assertEqual(read_line_starting(self.echo, "reset from", 10),
                         f"reset from {SERVICE_ADDRESS}",
                         "the modality's end of the cut connection got no reset")

    def assert_nothing_reachable(self):
        self.assertNotEqual(vendor_echoscu().returncode, 0, "echoscu passed without a session")
        for host, port in ((MODALITY, 104), (MODALITY, ECHO_PORT), (PACS, 104), ("10.60.0.1", 8443)):
            self.assertFalse(tcp_open(host, port), f"{host}:{port} reachable without a session")

    def test_1_session_reaches_exactly_its_device_and_ports_until_revoked(self):
        session = self.open_session(600)
        # The dataplane admits the session from the service address.
        wait_for(lambda: [s["device"] for s in self.dataplane_sessions() or []] == ["ct-1"], 10,
                 "the session in the dataplane")
        s = self.dataplane_sessions()[0]
        self.assertEqual(s["service_address"], SERVICE_ADDRESS)
        self.assertEqual(sorted(s["ports"]), [104, ECHO_PORT])

        wait_for(lambda: vendor_echoscu().returncode == 0, 30, "echoscu through the tunnel")
        r = vendor_echoscu()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The engine admitted it by the session's rule (controld's flow record says so).
        record = f"tcp in from {SERVICE_ADDRESS} port 104  rule=vendor-session-{session}"
        wait_for(lambda: record in cordonctl("device", "flows", "ct-1").stdout, 10,
                 "the flow record of the vendor's DICOM association")
        # The modality sees the service address, not the vendor's tunnel address.
        held = self.held_connection()
        self.assertEqual(read_line_starting(self.echo, "from", 5), f"from {SERVICE_ADDRESS}")

        # Nothing else: another port on the modality (a listening DICOM SCP), another
        # host, the management address.
        self.assertFalse(tcp_open(MODALITY, OTHER_PORT), "another port of the modality")
        self.assertFalse(tcp_open(PACS, 104), "another host (pacs)")
        self.assertFalse(tcp_open("10.60.0.1", 8443), "the management address")
        self.assertFalse(tcp_open("10.99.0.1", 8443), "the appliance through the tunnel")

        # The dataplane restarts (it keeps no sessions): controld pushes the session again
        # and the vendor gets through once more.
        held.stop()
        forwarder = int((RUN / "forwarder.pid").read_text())
        os.kill(forwarder, signal.SIGKILL)
        wait_for(lambda: int((RUN / "forwarder.pid").read_text()) != forwarder and
                 [s["device"] for s in self.dataplane_sessions() or []] == ["ct-1"], 30,
                 "the restarted dataplane to get the session from controld")
        wait_for(lambda: vendor_echoscu().returncode == 0, 30, "echoscu after the dataplane restart")
        held = self.held_connection()

        # Revoke: the open connection is cut, nothing is reachable, the dataplane has no
        # session left.
        self.assertEqual(cordonctl("vendor", "revoke", session).returncode, 0)
        held.send("send again")
        self.assert_cut(held.readline(10))
        held.stop()
        self.assert_device_end_reset()
        wait_for(lambda: self.dataplane_sessions() == [], 10, "the dataplane to drop the session")
        self.assert_nothing_reachable()

    def test_2_expiry_cuts_the_open_connection(self):
        self.open_session(20)
        wait_for(lambda: vendor_echoscu().returncode == 0, 10, "echoscu through the tunnel")
        held = self.held_connection()
        wait_for(lambda: cordonctl("vendor", "list").stdout.strip() == "", 30,
                 "the session to leave the list")
        # The list leaves a session out from its end time; controld closes it (firewall
        # element, dataplane) on its next expiry pass, within a second, and audits that.
        wait_for(lambda: "vendor.expire" in cordonctl("audit").stdout, 10,
                 "controld to close the expired session")
        held.send("send late")
        self.assert_cut(held.readline(10))
        held.stop()
        self.assert_device_end_reset()
        wait_for(lambda: self.dataplane_sessions() == [], 10, "the dataplane to drop the session")
        self.assert_nothing_reachable()
        audit = cordonctl("audit").stdout
        for action in ("vendor.create", "vendor.revoke", "vendor.expire"):
            self.assertIn(action, audit)

    def test_3_management_peer_reaches_https_through_the_tunnel_and_nothing_else(self):
        # As a vendor-session peer (no management role) the laptop's tunnel works, but
        # webd's HTTPS does not answer it.
        session = self.open_session(600, ports=(104,))
        wait_for(lambda: vendor_echoscu().returncode == 0, 30, "echoscu through the tunnel")
        self.assertIsNone(https_status(*WEBD), "HTTPS answered a vendor-session peer")
        self.assertEqual(cordonctl("vendor", "revoke", session).returncode, 0)

        # The same key as a remote-management peer.
        bad = cordonctl("management-peer", "add", "--name", MGMT_PEER, "--key", self.vendor_key,
                        "--address", "10.60.0.9")
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        self.assertIn("tunnel_address", bad.stderr)
        r = cordonctl("management-peer", "add", "--name", MGMT_PEER, "--key", self.vendor_key,
                      "--address", MGMT_PEER_ADDRESS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(MGMT_PEER_ADDRESS, cordonctl("management-peer", "list").stdout)
        self.assertEqual(cordonctl("settings", "management", "verify").returncode, 0)
        self.laptop.use_tunnel_address(MGMT_PEER_ADDRESS)
        wait_for(lambda: https_status(*WEBD) is not None, 30, "webd's HTTPS through the tunnel")
        self.assertEqual(https_status(*WEBD), 200)

        # Nothing else on the appliance answers the peer: a stand-in service listening on
        # every address of the appliance (2222) stays unreachable; only webd's port opens.
        listener = appliance_stand_in_service()
        try:
            self.assertEqual(open_ports("10.60.0.1", 1, 9000), [8443])
            self.assertEqual(open_ports("10.99.0.1", 1, 9000), [])
        finally:
            listener.stop()
        # Nor anything behind the appliance: the forward path is for vendor sessions only.
        self.assertNotEqual(vendor_echoscu().returncode, 0, "echoscu from a management peer")
        self.assertFalse(tcp_open(PACS, 104), "pacs from a management peer")

        # Removing the peer ends HTTPS and the tunnel.
        self.assertEqual(cordonctl("management-peer", "remove", MGMT_PEER).returncode, 0)
        self.assertNotIn(MGMT_PEER, cordonctl("management-peer", "list").stdout)
        self.assertNotIn(self.vendor_key, cordonctl("wireguard").stdout)
        self.assertIsNone(https_status(*WEBD), "HTTPS after the peer was removed")
        self.assertEqual(cordonctl("settings", "management", "verify").returncode, 0)
        audit = cordonctl("audit").stdout
        for action in ("management.peer.add", "management.peer.remove"):
            self.assertIn(action, audit)

    def test_4_the_tunnel_follows_the_wireguard_port_of_the_settings(self):
        # The settings are the one place the tunnel's port is set: moving wireguard_port
        # moves both the firewall's open port and the interface's listening port, so a
        # vendor who dials the new port gets through, and the old port is closed.
        session = self.open_session(600, ports=(104,))
        wait_for(lambda: vendor_echoscu().returncode == 0, 30, "echoscu through the tunnel")
        settings = json.loads(cordonctl("settings", "management", "get").stdout)
        self.assertEqual(settings["wireguard_port"], 51820)
        moved = self.work / "management-51821.json"
        moved.write_text(json.dumps(dict(settings, wireguard_port=51821)))
        original = self.work / "management-51820.json"
        original.write_text(json.dumps(settings))
        try:
            r = cordonctl("settings", "management", "set", moved)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            listening = on("appliance", "wg", "show", "wg-cordon", "listen-port").stdout.strip()
            self.assertEqual(listening, "51821")
            endpoint = json.loads(cordonctl("wireguard").stdout)["appliance_endpoint"]
            self.assertEqual(endpoint, "192.0.2.1:51821")
            self.assertEqual(cordonctl("settings", "management", "verify").returncode, 0)
            # The old port is closed: the laptop's tunnel goes quiet...
            self.assertNotEqual(vendor_echoscu().returncode, 0, "echoscu over the old port")
            # ...until it dials the new one.
            self.laptop.dial(endpoint)
            wait_for(lambda: vendor_echoscu().returncode == 0, 30, "echoscu over the new port")
        finally:
            cordonctl("settings", "management", "set", original)
            self.laptop.dial("192.0.2.1:51820")
        self.assertEqual(
            on("appliance", "wg", "show", "wg-cordon", "listen-port").stdout.strip(), "51820")
        wait_for(lambda: vendor_echoscu().returncode == 0, 30, "echoscu over the port set back")
        self.assertEqual(cordonctl("vendor", "revoke", session).returncode, 0)


if __name__ == "__main__":
    unittest.main()
