#!/usr/bin/python3
"""cordon-webd over real TLS on loopback: the protocol versions and ciphers it accepts
(checked with `openssl s_client`), the first-start certificate, security headers on every
kind of response, size limits, malformed requests, slow clients, the connection cap, and
setup/login/session end to end, and a certificate upload served to new connections at
once while an open connection keeps the old one.

usage: test_webd_tls.py PATH/TO/cordon-webd APP_DIR
"""
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time

WEBD, APP_DIR = sys.argv[1], sys.argv[2]
FAILURES = []
PASSED = 0


def check(cond, what):
    global PASSED
    if cond:
        PASSED += 1
    else:
        FAILURES.append(what)
        print("FAIL:", what, flush=True)


def wait_for(pred, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def s_client(port, *args):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=b"", capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def tls_socket(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw)


def request(port, method, path, body=None, headers=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    res = conn.getresponse()
    data = res.read()
    conn.close()
    return res, data


def raw_exchange(port, data):
    """Sends bytes as they are; returns the status line and headers the server answered."""
    s = tls_socket(port)
    try:
        s.sendall(data)
    except (ssl.SSLError, OSError):
        pass  # the server may answer and close before reading everything
    reply = b""
    try:
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    except (ssl.SSLError, OSError):
        pass
    s.close()
    return reply.decode(errors="replace")


def fingerprint_of(text):
    """SHA-256 fingerprint (AB:CD:...) of the first PEM certificate in `text`."""
    r = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
                       input=text.encode(), capture_output=True)
    m = re.search(r"Fingerprint=([0-9A-F:]+)", r.stdout.decode())
    return m.group(1) if m else None


SECURITY_HEADERS = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "content-security-policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def headers_of(raw):
    out = {}
    for line in raw.split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


def main():
    work = tempfile.mkdtemp(prefix="cordon-webd-tls-")
    os.chmod(work, 0o755)  # webd may run as nobody below
    state = os.path.join(work, "state")
    # A copy, readable by the unprivileged account wherever the source tree is.
    app_dir = os.path.join(work, "app")
    shutil.copytree(APP_DIR, app_dir)
    for root, dirs, files in os.walk(app_dir):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    cmd = [WEBD, "--state-dir", state, "--app-dir", app_dir, "--controld-socket",
           os.path.join(work, "controld.sock"), "--listen", "127.0.0.1", "--port", "0",
           "--max-connections", "4", "--read-timeout", "2", "--origin", "https://127.0.0.1"]
    if os.geteuid() == 0:
        cmd += ["--user", "nobody"]
    log = open(os.path.join(work, "webd.log"), "w+")
    webd = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        def port_from_log():
            log.seek(0)
            m = re.search(r"listening on https://127\.0\.0\.1:(\d+)", log.read())
            return int(m.group(1)) if m else None
        port = wait_for(port_from_log, 20, "webd to listen")

        # First start: a self-signed EC P-256 certificate; the key only for webd.
        cert, key = os.path.join(state, "webd-cert.pem"), os.path.join(state, "webd-key.pem")
        check(stat.S_IMODE(os.stat(key).st_mode) == 0o600, "key file is 0600")
        text = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-text"],
                              capture_output=True, text=True).stdout
        check("prime256v1" in text or "P-256" in text, "certificate key is EC P-256")
        check("IP Address:127.0.0.1" in text, "certificate names the listen address")
        if os.geteuid() == 0:
            check(os.stat(state).st_uid != 0, "state directory handed to the unprivileged user")
            status = open(f"/proc/{webd.pid}/status").read()
            uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
            check(all(u != "0" for u in uids), f"webd dropped root (uids {uids})")

        # Versions: 1.0 and 1.1 refused by the server (the client offers them), 1.2/1.3 accepted.
        for version in ("-tls1", "-tls1_1"):
            rc, out = s_client(port, version, "-cipher", "DEFAULT@SECLEVEL=0")
            check(rc != 0 and "alert protocol version" in out, f"{version} refused by the server")
        for version, proto in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            rc, out = s_client(port, version)
            check(rc == 0 and f"New, {proto}, Cipher is" in out, f"{version} accepted")
        # Ciphers under 1.2: only ECDHE with AES-GCM or ChaCha20-Poly1305.
        for cipher in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):
            rc, out = s_client(port, "-tls1_2", "-cipher", cipher + "@SECLEVEL=0")
            check(rc != 0 and "Cipher is (NONE)" in out, f"cipher {cipher} refused")
        for cipher in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                       "ECDHE-ECDSA-CHACHA20-POLY1305"):
            rc, out = s_client(port, "-tls1_2", "-cipher", cipher)
            check(rc == 0 and f"Cipher is {cipher}" in out, f"cipher {cipher} accepted")

        # Security headers on every kind of response.
        cases = {
            "200 static": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "404": b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n",
            "400 traversal": b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
            "401": b"GET /api/v1/session HTTP/1.1\r\nHost: x\r\n\r\n",
            "431": b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (17 * 1024) + b"\r\n\r\n",
            "413": b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" + b"x" * 1024,
            "400 malformed": b"GARBAGE\x01 / HTTP/1.1\r\n\r\n",
            "400 bad length": b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        }
        expect = {"200 static": "200", "404": "404", "400 traversal": "400", "401": "401",
                  "431": "431", "413": "413", "400 malformed": "400", "400 bad length": "400"}
        for name, data in cases.items():
            raw = raw_exchange(port, data)
            status_line = raw.split("\r\n", 1)[0]
            check(status_line.split(" ")[1:2] == [expect[name]], f"{name}: got {status_line!r}")
            hdrs = headers_of(raw)
            for h, v in SECURITY_HEADERS.items():
                check(hdrs.get(h) == v, f"{name}: header {h} is {hdrs.get(h)!r}")
        res, body = request(port, "GET", "/app.js")
        check(res.status == 200 and res.getheader("Content-Type").startswith("text/javascript"),
              "app.js served as JavaScript")
        res, body = request(port, "GET", "/../../../../etc/passwd")
        check(res.status in (400, 404) and b"root:" not in body, "traversal over TLS refused")

        # Slow client: a header that never ends is cut after the read timeout (2 s).
        s = tls_socket(port)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(10)
        start = time.monotonic()
        reply = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except (ssl.SSLError, OSError):
            pass
        elapsed = time.monotonic() - start
        s.close()
        check(1.5 < elapsed < 8 and reply == b"", f"slow client cut after {elapsed:.1f}s")

        # Connection cap (4): a fifth connection is closed at once; a slot frees up later.
        held = [tls_socket(port) for _ in range(4)]
        refused = False
        try:
            extra = tls_socket(port)
            extra.settimeout(5)
            refused = extra.recv(1) == b""
            extra.close()
        except (ssl.SSLError, OSError):
            refused = True
        check(refused, "fifth connection refused over the cap")
        for h in held:
            h.close()

        def can_connect():
            try:
                r, _ = request(port, "GET", "/")
                return r.status == 200
            except (ssl.SSLError, OSError, http.client.HTTPException):
                return False
        check(wait_for(can_connect, 10, "a free connection slot"), "connections accepted again")

        # First-run setup, login and session end to end over TLS.
        token = open(os.path.join(state, "setup-token")).read().strip()
        origin = {"Origin": "https://127.0.0.1", "Content-Type": "application/json"}
        pw = "a long enough password"
        res, _ = request(port, "POST", "/api/v1/setup",
                         json.dumps({"user": "admin", "password": pw, "token": token}), origin)
        check(res.status == 201, f"setup: {res.status}")
        check(not os.path.exists(os.path.join(state, "setup-token")), "setup token removed")
        res, _ = request(port, "POST", "/api/v1/setup",
                         json.dumps({"user": "x", "password": pw, "token": token}), origin)
        check(res.status == 409, "second setup refused")
        res, body = request(port, "POST", "/api/v1/login", json.dumps({"user": "admin", "password": pw}), origin)
        cookie = res.getheader("Set-Cookie", "")
        check(res.status == 200 and cookie.startswith("__Host-cordon_session=") and "Secure" in cookie,
              "login sets the session cookie")
        res, body = request(port, "GET", "/api/v1/session", headers={"Cookie": cookie.split(";")[0]})
        check(res.status == 200 and json.loads(body)["user"] == "admin", "session over TLS")
        res, body = request(port, "GET", "/api/v1/health", headers={"Cookie": cookie.split(";")[0]})
        check(res.status == 503, "controld not running: 503")

        # Certificate upload: refused ones change nothing; a good one serves new connections
        # at once (s_client sees it) while a connection opened before keeps working.
        res, body = request(port, "POST", "/api/v1/login", json.dumps({"user": "admin", "password": pw}), origin)
        session = res.getheader("Set-Cookie", "").split(";")[0]
        csrf = json.loads(body)["csrf_token"]
        auth = dict(origin, **{"Cookie": session, "X-CSRF-Token": csrf})
        served_fp = lambda: fingerprint_of(s_client(port, "-tls1_3")[1])
        old_fp = served_fp()
        check(old_fp == fingerprint_of(open(cert).read()), "s_client shows the first-start certificate")
        res, body = request(port, "GET", "/api/v1/system/certificate", headers={"Cookie": session})
        info = json.loads(body)
        check(res.status == 200 and info["sha256_fingerprint"] == old_fp and info["self_signed"],
              f"GET system/certificate describes the served one: {body[:200]!r}")
        gen = os.path.join(work, "gen")
        os.mkdir(gen)
        def make(name, curve, cn):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{curve}",
                            "-nodes", "-days", "30", "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn}",
                            "-keyout", os.path.join(gen, name + ".key"), "-out", os.path.join(gen, name + ".crt")],
                           check=True, capture_output=True)
            return open(os.path.join(gen, name + ".crt")).read(), open(os.path.join(gen, name + ".key")).read()
        new_cert, new_key = make("new", "P-384", "uploaded.example")
        _, other_key = make("other", "P-256", "other.example")
        before_files = (open(cert).read(), open(key).read())
        for what, payload in (("mismatched key", {"certificate_pem": new_cert, "private_key_pem": other_key}),
                              ("garbage", {"certificate_pem": "garbage", "private_key_pem": new_key})):
            res, body = request(port, "POST", "/api/v1/system/certificate", json.dumps(payload), auth)
            check(res.status == 400, f"upload with {what} refused: {res.status} {body[:200]!r}")
        check((open(cert).read(), open(key).read()) == before_files, "refused uploads left the files alone")
        check(served_fp() == old_fp, "refused uploads left the served certificate alone")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        held = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        held.request("GET", "/")
        held.getresponse().read()
        res, body = request(port, "POST", "/api/v1/system/certificate",
                            json.dumps({"certificate_pem": new_cert, "private_key_pem": new_key}), auth)
        check(res.status == 200 and json.loads(body)["subject"] == "CN=uploaded.example",
              f"upload accepted: {res.status} {body[:200]!r}")
        new_fp = fingerprint_of(new_cert)
        check(served_fp() == new_fp, "s_client shows the uploaded certificate at once")
        check(stat.S_IMODE(os.stat(key).st_mode) == 0o600, "uploaded key file is 0600")
        held.request("GET", "/")
        r = held.getresponse()
        r.read()
        old_peer = held.sock.getpeercert(binary_form=True)
        check(r.status == 200 and ssl.DER_cert_to_PEM_cert(old_peer) and
              fingerprint_of(ssl.DER_cert_to_PEM_cert(old_peer)) == old_fp,
              "a connection opened before the upload keeps the old certificate")
        held.close()
        check(webd.poll() is None, "webd still running after all of the above")
    finally:
        webd.terminate()
        # SIGTERM is a clean stop: exit code 0 (a sanitizer report would change it).
        check(webd.wait(timeout=20) == 0, f"webd stopped cleanly (exit {webd.returncode})")
        log.seek(0)
        if FAILURES:
            print(log.read())
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{PASSED} passed, {len(FAILURES)} failed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
