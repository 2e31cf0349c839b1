"""Helpers for end-to-end tests against the lab topology (tests/topology/lab.sh).

The tests drive real clients (DCMTK, MLLP, sockets, scapy) on lab hosts, through the real
cordon-dataplane, change and read its state with cordonctl (through cordon-controld), and
ask the dataplane itself over its control socket where a test is about the dataplane.
Needs root and network namespaces.
"""
import copy
import json
import os
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests/topology/lab.sh"
PROBE = REPO / "tests/e2e/probe.py"
BUILD = Path(os.environ.get("CORDON_BUILD_DIR", REPO / "build"))
CORDONCTL = BUILD / "bin/cordonctl"
RUN = Path("/run/cordon-lab")
SOCKET = RUN / "controld.sock"            # cordon-controld's API: what cordonctl talks to
DATAPLANE_SOCKET = RUN / "dataplane.sock"  # the dataplane's own control socket
PY = "/usr/bin/python3"  # Debian's interpreter, which has scapy

HOSTS = {h["name"]: h for h in json.loads((REPO / "tests/topology/hosts.json").read_text())["hosts"]}
MODALITY = HOSTS["modality"]["address"]
PACS = HOSTS["pacs"]["address"]
RIS = HOSTS["ris"]["address"]
ATTACKER = HOSTS["attacker"]["address"]


def lab(*args, timeout=180, env=None):
    """Runs lab.sh with args; `env` adds to (or overrides) the environment."""
    return subprocess.run([str(LAB), *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def lab_up(env=None):
    """A fresh lab: down first (a failed run may have left one behind), then up."""
    lab("down")
    r = lab("up", timeout=300, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"lab.sh up failed:\n{r.stdout}\n{r.stderr}")


def lab_down():
    """Brings the lab down, unless CORDON_E2E_KEEP_LAB=1 asks to keep it for a look."""
    if os.environ.get("CORDON_E2E_KEEP_LAB") != "1":
        lab("down")


def on(host, *cmd, timeout=60, input=None):
    """Runs cmd on a lab host; returns the CompletedProcess (never raises on failure)."""
    return subprocess.run([str(LAB), "exec", host, "--", *map(str, cmd)], capture_output=True,
                          text=True, timeout=timeout, input=input)


def cordonctl(*args, timeout=60):
    env = dict(os.environ, CORDON_SOCKET=str(SOCKET))
    return subprocess.run([str(CORDONCTL), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def dataplane_request(request, path=DATAPLANE_SOCKET, timeout=30):
    """One request to a dataplane's control socket (newline-delimited JSON); the answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("the dataplane closed the connection without answering")
            data += chunk
    return json.loads(data)


def dataplane_version(path=DATAPLANE_SOCKET):
    """The version the dataplane enforces, or None when its socket does not answer."""
    try:
        return dataplane_request({"cmd": "get"}, path)["version"]
    except OSError:
        return None


def set_guardrail(settings):
    """Replaces controld's clinical guardrail settings (a dict)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(settings, f)
        path = f.name
    try:
        r = cordonctl("guardrail", "set", path)
        assert r.returncode == 0, r.stderr
    finally:
        os.unlink(path)


def poll(condition, timeout):
    """Polls condition() every 0.1 s until it is true or timeout seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def wait_for(condition, timeout, what):
    """Polls condition() until it is true; fails with `what` after timeout seconds."""
    if not poll(condition, timeout):
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def lab_policy():
    return json.loads((REPO / "examples/policies/lab.json").read_text())


def without_rule(policy, name):
    p = copy.deepcopy(policy)
    for d in p["devices"]:
        d["rules"] = [r for r in d["rules"] if r["name"] != name]
    return p


def with_mode(policy, mode):
    p = copy.deepcopy(policy)
    for d in p["devices"]:
        d["mode"] = mode
    return p


def apply(policy):
    """Applies a policy (dict or raw text); returns the CompletedProcess of cordonctl."""
    text = policy if isinstance(policy, str) else json.dumps(policy)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        return cordonctl("policy", "apply", path)
    finally:
        os.unlink(path)


def active_version():
    r = cordonctl("policy", "get")
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)["version"]


def stats():
    r = cordonctl("stats")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def events():
    r = cordonctl("events", "--json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def dropped(reason):
    return stats()["dropped"].get(reason, 0)


class Background:
    """A long-running command on a lab host; waits for a readiness line on stdout."""

    def __init__(self, host, *cmd, ready=None, timeout=15):
        self.proc = subprocess.Popen([str(LAB), "exec", host, "--", *map(str, cmd)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.first_line = None
        if ready is not None:
            self.first_line = self.readline(timeout)
            if self.first_line is None or ready not in self.first_line:
                self.stop()
                raise AssertionError(f"{cmd} on {host} did not become ready: {self.first_line!r}")

    def readline(self, timeout=15):
        import select
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not readable:
            return None
        line = self.proc.stdout.readline()
        return line.strip() if line else None

    def proc_output(self):
        """Stops the command and returns what it wrote to stderr."""
        self.stop_process()
        return self.proc.stderr.read() if not self.proc.stderr.closed else ""

    def stop_process(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self):
        self.stop_process()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


def tcpdump(host, count, expression, *options):
    """Captures `count` packets matching `expression` on the host's eth0, one line each on
    stdout (readline()); returns once the filter is attached. stop() it when done."""
    capture = Background(host, "tcpdump", "-l", "-n", "-i", "eth0", "-c", count, *options,
                         expression)
    try:
        # tcpdump says "listening on" on stderr once its filter is attached.
        wait_for(lambda: "listening on" in (capture.proc.stderr.readline() or ""), 10,
                 f"tcpdump on {host} to listen")
    except BaseException:
        capture.stop()
        raise
    return capture


def forge(host, to, frame):
    """Sends one frame from `host`'s eth0, from its MAC to `to`'s: `frame` is a scapy
    expression for what follows the Ethernet header (any addresses, options, flags)."""
    send = (f"from scapy.all import *; sendp(Ether(src='{HOSTS[host]['mac']}', "
            f"dst='{HOSTS[to]['mac']}')/{frame}, iface='eth0', verbose=False)")
    r = on(host, PY, "-c", send)
    assert r.returncode == 0, r.stderr


# A stand-in for a service that must not be reachable: it listens on port 2222 on every
# address of the appliance, so what a port sweep finds open is what the management
# firewall lets through.
_STAND_IN = ("import socket,select\n"
             "ls=[socket.create_server(('0.0.0.0',p)) for p in (2222,)]\n"
             "print('ready',flush=True)\n"
             "while True:\n"
             "  for s in select.select(ls,[],[])[0]: s.accept()[0].close()\n")


def appliance_stand_in_service():
    """Starts the stand-in on the appliance; stop() it when done."""
    return Background("appliance", PY, "-u", "-c", _STAND_IN, ready="ready")


def echoscu(calling="CT1", called="PACS", host=PACS, port=104):
    return on("modality", "echoscu", "-to", 5, "-ta", 5, "-aet", calling, "-aec", called, host,
              port, timeout=30)


def write_ct_file(path, rows=4, cols=4):
    """Writes a CT Image Storage instance (the SOP class the lab policy allows) with fresh
    UIDs to `path`: tests/topology/make_test_dicom.sh, and for anything larger than its 4x4
    image, random 12-bit pixels of rows x cols put in with DCMTK's dcmodify. Returns the
    SOP instance UID (storescp names the stored file CT.<uid>)."""
    r = subprocess.run([str(REPO / "tests/topology/make_test_dicom.sh"), str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    uid = r.stdout.split("SOP instance ")[1].split()[0]
    if (rows, cols) != (4, 4):
        pixels = Path(f"{path}.pixels")
        # Little-endian 16-bit words of which the 12 stored bits vary (BitsStored 12).
        words = bytearray(os.urandom(2 * rows * cols))
        words[1::2] = words[1::2].translate(bytes(b & 0x0F for b in range(256)))
        pixels.write_bytes(words)
        try:
            subprocess.run(["dcmodify", "-nb", "-m", f"(0028,0010)={rows}", "-m",
                            f"(0028,0011)={cols}", "-mf", f"(7fe0,0010)={pixels}", str(path)],
                           check=True, capture_output=True, timeout=60)
        finally:
            pixels.unlink()
    return uid


def dicom_dataset(path):
    """The dataset of a DICOM file as text (every value in full), without its file meta
    header (group 0002), which storescp rewrites: equal texts mean the same dataset."""
    out = subprocess.run(["dcmdump", "-q", "+L", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if not line.lstrip().startswith("(0002,")]


def rss_kib(pid):
    """Resident memory of a process (VmRSS of /proc/PID/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def _checksum(data):
    """The Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_flood_frame(i, src_mac, dst_mac, dst_ip, dport):
    """The i-th frame of a SYN flood to dst_ip:dport: a TCP SYN from its own source address
    (10.50.1.1 up, 250 a /24: the hospital LAN's 10.50.0.0/16 but off every lab host's
    /24, so the target has no route to answer) and port, so frames 0..N-1 are N distinct
    flows (at most 63,750). Built with struct: scapy takes ~1 ms a frame here."""
    net, host = divmod(i, 250)
    if net + 1 > 255:
        raise ValueError(f"flow {i}: beyond the 10.50.1.1 - 10.50.255.250 sources")
    src = bytes([10, 50, net + 1, host + 1])
    dst = socket.inet_aton(dst_ip)
    eth = bytes.fromhex(dst_mac.replace(":", "") + src_mac.replace(":", "")) + b"\x08\x00"
    tcp = struct.pack("!HHIIBBHHH", 1024 + i % 64000, dport, (i * 7919) & 0xFFFFFFFF, 0, 5 << 4,
                      0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return eth + ip + tcp


class VendorLaptop:
    """The vendor's service laptop (the `vendor` host) with its own WireGuard key pair and a
    wireguard-go interface toward the appliance (at the endpoint it names: 192.0.2.1:51820), up and keeping the
    tunnel alive, with routes into it for the tunnel network, the device segment and the
    management network (so a refusal is the appliance's doing, not a missing route on the
    laptop). Interface names must be unique on the machine: wireguard-go's control sockets
    are shared by every namespace. The tunnel address comes from a session
    (use_tunnel_address); stop() ends wireguard-go."""

    NETWORKS = ("10.99.0.0/24", "10.50.0.0/24", "10.60.0.0/24")

    def __init__(self, work, interface):
        self.interface = interface
        key = subprocess.run(["wg", "genkey"], capture_output=True, text=True,
                             check=True).stdout.strip()
        key_file = Path(work) / f"{interface}.key"
        key_file.write_text(key + "\n")
        os.chmod(key_file, 0o600)
        self.public_key = subprocess.run(["wg", "pubkey"], input=key + "\n", capture_output=True,
                                         text=True, check=True).stdout.strip()
        # The appliance's side as it tells its peers (192.0.2.1:51820 in the lab's settings).
        appliance = json.loads(cordonctl("wireguard").stdout)
        self.appliance_key = appliance["public_key"]
        self.go = subprocess.Popen(["ip", "netns", "exec", "vendor", "wireguard-go", "-f",
                                    interface], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: on("vendor", "ip", "link", "show", interface).returncode == 0, 20,
                     "the vendor's wireguard-go interface")
            for cmd in (["wg", "set", interface, "private-key", str(key_file), "peer",
                         self.appliance_key, "endpoint", appliance["appliance_endpoint"], "allowed-ips",
                         ",".join(self.NETWORKS), "persistent-keepalive", "1"],
                        ["ip", "link", "set", interface, "up"]):
                r = on("vendor", *cmd)
                if r.returncode != 0:
                    raise RuntimeError(f"{cmd} on vendor: {r.stderr}")
            self.route()
        except BaseException:
            self.stop()
            raise

    def route(self):
        for net in self.NETWORKS:
            on("vendor", "ip", "route", "replace", net, "dev", self.interface)

    def dial(self, endpoint):
        """Points the laptop's tunnel at the appliance's `endpoint` ("host:port")."""
        r = on("vendor", "wg", "set", self.interface, "peer", self.appliance_key, "endpoint",
               endpoint)
        if r.returncode != 0:
            raise RuntimeError(f"wg set endpoint on vendor: {r.stderr}")

    def use_tunnel_address(self, address):
        """Takes the tunnel address a session (or a management peer) was given and waits
        for the handshake with the appliance."""
        on("vendor", "ip", "addr", "flush", "dev", self.interface)
        r = on("vendor", "ip", "addr", "add", f"{address}/32", "dev", self.interface)
        if r.returncode != 0:
            raise RuntimeError(f"ip addr add {address}/32 on vendor: {r.stderr}")
        self.route()  # the flush took the routes along
        wait_for(lambda: any(p["public_key"] == self.public_key and "latest_handshake_unix" in p
                             for p in json.loads(cordonctl("wireguard").stdout)["peers"]), 30,
                 "the vendor's handshake")

    def stop(self):
        if self.go.poll() is None:
            self.go.terminate()
            self.go.wait(timeout=10)
