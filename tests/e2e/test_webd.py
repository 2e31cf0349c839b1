"""cordon-webd in the lab: the console on 10.60.0.1:8443 from the admin host, first-run
setup with the one-time token, login, a policy change through the web API audited by
controld under the web user and the admin's address; an attack from `attacker` arriving
live on the events WebSocket; nothing from the vendor side; the console follows the
management settings' https_port.
Needs root and network namespaces.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from labutil import (ATTACKER, BUILD, LAB, MODALITY, PY, RUN, cordonctl, echoscu, lab_down, lab_up, lab_policy, on,
                     wait_for)

ORIGIN = "https://10.60.0.1:8443"

# A small HTTPS client run on the admin host (Debian's Python): requests as JSON lines on
# stdin (host and port default to the console's), answers as JSON lines on stdout, one cookie jar; "{csrf}" in a header value is
# replaced by the CSRF token of the last login.
CLIENT = r"""
import http.client, json, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
cookie, csrf = None, ""
for line in sys.stdin:
    req = json.loads(line)
    c = http.client.HTTPSConnection(req.get("host", "10.60.0.1"), req.get("port", 8443),
                                    context=ctx, timeout=10)
    headers = {k: v.replace("{csrf}", csrf) for k, v in req.get("headers", {}).items()}
    if cookie: headers["Cookie"] = cookie
    body = json.dumps(req["body"]) if "body" in req else None
    if body is not None: headers["Content-Type"] = "application/json"
    try:
        c.request(req["method"], req["path"], body=body, headers=headers)
        r = c.getresponse()
    except OSError as e:
        print(json.dumps({"status": 0, "error": str(e)}), flush=True)
        continue
    data = r.read().decode()
    set_cookie = r.getheader("Set-Cookie")
    if set_cookie: cookie = set_cookie.split(";")[0]
    if req["path"] == "/api/v1/login" and r.status == 200: csrf = json.loads(data)["csrf_token"]
    print(json.dumps({"status": r.status, "headers": dict(r.getheaders()), "body": data}), flush=True)
"""

PASSWORD = "correct horse battery staple"

# A minimal WebSocket client (Debian's Python has no websocket module): logs in, upgrades
# GET /api/v1/events/ws with the session cookie and Origin argv[4] (the login uses the
# console's, argv[3]), prints the status line, "ready" when upgraded,
# then every text frame's payload on a line of its own, for 40 s.
WS_CLIENT = r"""
import base64, http.client, json, os, socket, ssl, sys, time
NL = chr(13) + chr(10)  # no backslash escapes: the script goes through lab.sh exec
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection("10.60.0.1", 8443, context=ctx, timeout=10)
c.request("POST", "/api/v1/login", body=json.dumps({"user": sys.argv[1], "password": sys.argv[2]}),
          headers={"Origin": sys.argv[3], "Content-Type": "application/json"})
r = c.getresponse(); r.read()
cookie = r.getheader("Set-Cookie").split(";")[0]
s = ctx.wrap_socket(socket.create_connection(("10.60.0.1", 8443), timeout=40))
key = base64.b64encode(os.urandom(16)).decode()
lines = ["GET /api/v1/events/ws HTTP/1.1", "Host: 10.60.0.1:8443", "Upgrade: websocket",
         "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + key,
         "Origin: " + sys.argv[4], "Cookie: " + cookie, "", ""]
s.sendall(NL.join(lines).encode())
buf = b""
while (NL + NL).encode() not in buf: buf += s.recv(4096)
head, buf = buf.split((NL + NL).encode(), 1)
status = head.split(NL.encode())[0].decode()
print(status, flush=True)
if " 101 " not in status: sys.exit(1)
print("ready", flush=True)
def need(n):
    global buf
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk: raise EOFError
        buf += chunk
    out, buf = buf[:n], buf[n:]
    return out
end = time.monotonic() + 40
try:
    while time.monotonic() < end:
        b0, b1 = need(2)
        n = b1 & 0x7f
        if n == 126: n = int.from_bytes(need(2), "big")
        elif n == 127: n = int.from_bytes(need(8), "big")
        payload = need(n)
        if b0 & 0x0f == 1: print(payload.decode(), flush=True)
        elif b0 & 0x0f == 8: print("closed", flush=True); break
except (EOFError, socket.timeout, ssl.SSLError):
    pass
"""


class WebConsole(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        lab_up()

    @classmethod
    def tearDownClass(cls):
        lab_down()

    def web(self, *requests, host="admin"):
        """Runs the requests in order in one client (one cookie jar) on a lab host."""
        r = on(host, PY, "-c", CLIENT, input="".join(json.dumps(q) + "\n" for q in requests),
               timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines()]

    def test_console_setup_login_and_an_audited_policy_change(self):
        token = (RUN / "webd/setup-token").read_text().strip()
        login = {"method": "POST", "path": "/api/v1/login", "headers": {"Origin": ORIGIN},
                 "body": {"user": "admin", "password": PASSWORD}}
        policy = lab_policy()
        policy["devices"][0]["rules"] = [r for r in policy["devices"][0]["rules"] if r["name"] != "ntp"]
        page, no_origin, setup, again, logged_in, current, no_csrf, applied = self.web(
            {"method": "GET", "path": "/"},
            {"method": "POST", "path": "/api/v1/setup",
             "body": {"user": "admin", "password": PASSWORD, "token": token}},
            {"method": "POST", "path": "/api/v1/setup", "headers": {"Origin": ORIGIN},
             "body": {"user": "admin", "password": PASSWORD, "token": token}},
            {"method": "POST", "path": "/api/v1/setup", "headers": {"Origin": ORIGIN},
             "body": {"user": "admin2", "password": PASSWORD, "token": token}},
            login,
            {"method": "GET", "path": "/api/v1/policy"},
            {"method": "POST", "path": "/api/v1/policy", "headers": {"Origin": ORIGIN},
             "body": {"document": policy, "comment": "from the web"}},
            {"method": "POST", "path": "/api/v1/policy",
             "headers": {"Origin": ORIGIN, "X-CSRF-Token": "{csrf}"},
             "body": {"document": policy, "comment": "from the web"}})
        self.assertEqual(page["status"], 200)
        self.assertIn("max-age", page["headers"]["Strict-Transport-Security"])
        self.assertIn("frame-ancestors 'none'", page["headers"]["Content-Security-Policy"])
        self.assertEqual(no_origin["status"], 403)      # no Origin: refused before anything
        self.assertIn(setup["status"], (200, 201), setup["body"])
        self.assertEqual(again["status"], 409)          # setup is one time only
        self.assertFalse((RUN / "webd/setup-token").exists())
        self.assertEqual(logged_in["status"], 200, logged_in["body"])
        self.assertIn("__Host-cordon_session", logged_in["headers"]["Set-Cookie"])
        self.assertEqual(current["status"], 200, current["body"])
        self.assertEqual(no_csrf["status"], 403)        # no CSRF token: nothing applied
        self.assertIn(applied["status"], (200, 201), applied["body"])
        version = json.loads(applied["body"])["version"]
        self.assertEqual(json.loads(cordonctl("policy", "get").stdout)["version"], version)
        # controld audited the change under the web user and the admin's address.
        entries = [json.loads(l) for l in cordonctl("audit", "--json").stdout.splitlines()]
        change = [e for e in entries if e["target"] == f"policy/{version}"]
        self.assertEqual(change[0]["actor"], "web:admin")
        self.assertEqual(change[0]["origin"], "10.60.0.5")

    def test_live_events_websocket_shows_an_attack(self):
        token_file = RUN / "webd/setup-token"
        if token_file.exists():  # run on its own: do the first-run setup here
            self.web({"method": "POST", "path": "/api/v1/setup", "headers": {"Origin": ORIGIN},
                      "body": {"user": "admin", "password": PASSWORD,
                               "token": token_file.read_text().strip()}})
        # A foreign Origin is refused before upgrading.
        refused = on("admin", PY, "-c", WS_CLIENT, "admin", PASSWORD, ORIGIN,
                     "https://evil.example", timeout=60)
        self.assertIn("403", refused.stdout, refused.stdout + refused.stderr)
        client = subprocess.Popen([str(LAB), "exec", "admin", "--", PY, "-c", WS_CLIENT, "admin",
                                   PASSWORD, ORIGIN, ORIGIN], stdout=subprocess.PIPE, text=True)
        try:
            status = client.stdout.readline()
            self.assertIn("101", status)
            self.assertEqual(client.stdout.readline().strip(), "ready")
            on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY)
            deadline = time.monotonic() + 30
            seen = None
            while time.monotonic() < deadline and seen is None:
                line = client.stdout.readline()
                if not line or line.strip() == "closed":
                    break
                event = json.loads(line)
                if event.get("src") == ATTACKER and event.get("reason") == "no-matching-rule":
                    seen = event
            self.assertIsNotNone(seen, "the attacker's drop did not arrive on the WebSocket")
            self.assertEqual(seen["device"], "ct-1")
            self.assertIsInstance(seen["id"], int)
        finally:
            client.kill()
            client.wait(timeout=10)

    def test_webd_killed_enforcement_goes_on_and_it_comes_back_with_its_users(self):
        """kill -9 of webd while the modality does clinical work: nothing in the traffic
        path notices; the supervisor (systemd on the appliance) restarts it and the web
        users are still there (sessions are not: they live in memory)."""
        token_file = RUN / "webd/setup-token"
        if token_file.exists():  # run on its own: do the first-run setup here
            self.web({"method": "POST", "path": "/api/v1/setup", "headers": {"Origin": ORIGIN},
                      "body": {"user": "admin", "password": PASSWORD,
                               "token": token_file.read_text().strip()}})
        login = {"method": "POST", "path": "/api/v1/login", "headers": {"Origin": ORIGIN},
                 "body": {"user": "admin", "password": PASSWORD}}
        self.assertEqual(self.web(login)[0]["status"], 200)
        version = json.loads(cordonctl("policy", "get").stdout)["version"]
        pid = int((RUN / "webd.pid").read_text())
        results, done = [], threading.Event()

        def clinical_work():
            while not done.is_set():
                results.append(echoscu().returncode)

        worker = threading.Thread(target=clinical_work)
        worker.start()
        try:
            wait_for(lambda: len(results) >= 1, 60, "a first echo")
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: (RUN / "webd.pid").read_text().strip() != str(pid), 30,
                     "the supervisor to restart webd")
            wait_for(lambda: self.web(login)[0]["status"] == 200, 60,
                     "the restarted webd to log the admin in")
            count = len(results)
            wait_for(lambda: len(results) >= count + 1, 60, "an echo after the restart")
        finally:
            done.set()
            worker.join()
        self.assertEqual(results, [0] * len(results), "clinical work failed while webd was down")
        self.assertEqual(json.loads(cordonctl("policy", "get").stdout)["version"], version)
        self.assertNotEqual(on("attacker", "ping", "-n", "-c", 1, "-W", 1, MODALITY).returncode, 0)

    def test_webd_follows_the_management_settings_https_port(self):
        """An admin on the appliance's console moves https_port: the host firewall admits
        the new port, and webd, which takes its port from controld's management settings,
        is started again on it. The console answers there and no longer on the old port;
        then back."""
        settings = json.loads(cordonctl("settings", "management", "get").stdout)
        self.assertEqual(settings["https_port"], 8443)

        def move(port):
            f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, dir=RUN)
            f.write(json.dumps(dict(settings, https_port=port)))
            f.close()
            r = cordonctl("settings", "management", "set", f.name)
            os.unlink(f.name)
            self.assertEqual(r.returncode, 0, r.stderr)

        def console_answers(port):
            return self.web({"method": "GET", "path": "/", "port": port})[0]["status"] == 200

        pid = int((RUN / "webd.pid").read_text())
        move(8444)
        self.addCleanup(lambda: wait_for(lambda: console_answers(8443), 60, "the console back on 8443"))
        self.addCleanup(move, 8443)
        wait_for(lambda: console_answers(8444), 60, "the console on 8444")
        self.assertNotEqual(int((RUN / "webd.pid").read_text()), pid, "webd was not started again")
        self.assertEqual(self.web({"method": "GET", "path": "/"})[0]["status"], 0,
                         "the old port still answers")
        self.assertEqual(cordonctl("settings", "management", "verify").returncode, 0)
        self.assertIn("https_port is now 8444", (RUN / "webd.log").read_text())
        # A webd told another port than the settings' is refused before it binds anything.
        state = tempfile.mkdtemp(dir=RUN)
        self.addCleanup(shutil.rmtree, state)
        r = subprocess.run(["ip", "netns", "exec", "appliance", str(BUILD / "bin/cordon-webd"),
                            "--state-dir", state, "--app-dir", state, "--controld-socket",
                            str(RUN / "controld.sock"), "--listen", "127.0.0.1", "--port", "8445",
                            "--user", "cordon-webd"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("https_port is 8444", r.stderr)

    def test_console_is_not_reachable_from_the_vendor_side(self):
        answers = self.web({"method": "GET", "path": "/", "host": "192.0.2.1"}, host="vendor")
        self.assertEqual(answers[0]["status"], 0, answers)


if __name__ == "__main__":
    unittest.main()
