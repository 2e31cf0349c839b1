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


def lab(*args, timeout=180):
    return subprocess.run([str(LAB), *args], capture_output=True, text=True, timeout=timeout)


def lab_up():
    """A fresh lab: down first (a failed run may have left one behind), then up."""
    lab("down")
    r = lab("up", timeout=300)
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


def echoscu(calling="CT1", called="PACS", host=PACS, port=104):
    return on("modality", "echoscu", "-to", 5, "-ta", 5, "-aet", calling, "-aec", called, host,
              port, timeout=30)
