"""Helpers for the update tests: build images and bundles with the scripts of images/,
and drive the update lab (update-lab.sh) and RAUC over the lab's private D-Bus.

Everything is created under one work directory; Lab.down() and the callers' cleanups
remove every process, mount and loop device that was started.
"""
import hashlib
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
IMAGES = os.path.join(TOP, "images")
LAB = os.path.join(HERE, "update-lab.sh")
BUILD_DIR = os.environ.get("CORDON_BUILD_DIR", os.path.join(TOP, "build"))
COMPATIBLE = "cordon-appliance-x86_64"
TIMEOUT = 60  # seconds for any one step (install, reboot); the waits inside poll


def run(cmd, check=True, timeout=TIMEOUT, env=None):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout,
                          env=env)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read(path):
    with open(path) as f:
        return f.read()


def make_pki(directory):
    run([os.path.join(IMAGES, "test-pki.sh"), directory])
    return directory


def build_rootfs(out_dir, version):
    run([os.path.join(IMAGES, "build-rootfs.sh"), out_dir, "--version", version,
         "--bin-dir", os.path.join(BUILD_DIR, "bin")], timeout=300)
    return os.path.join(out_dir, "rootfs.img")


def make_bundle(rootfs, out, pki, signer="signing", version="1.1.0", compatible=COMPATIBLE,
                fmt="plain", keyring=True):
    cmd = [os.path.join(IMAGES, "make-bundle.sh"), "--rootfs", rootfs, "--out", out,
           "--cert", os.path.join(pki, signer + ".cert.pem"),
           "--key", os.path.join(pki, signer + ".key.pem"),
           "--version", version, "--compatible", compatible, "--format", fmt]
    if keyring:
        cmd += ["--keyring", os.path.join(pki, "ca.cert.pem")]
    run(cmd)
    return out


class Lab:
    """One update lab (update-lab.sh) in `directory`."""

    def __init__(self, directory, keyring, image, max_image_bytes=None):
        self.dir = os.path.abspath(directory)
        self.keyring = keyring
        self.image = image
        self.max_image_bytes = max_image_bytes
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={self.dir}/bus.sock")

    def up(self):
        cmd = [LAB, "up", self.dir, "--keyring", self.keyring, "--image", self.image]
        if self.max_image_bytes is not None:
            cmd += ["--max-image-bytes", str(self.max_image_bytes)]
        return self._lab(cmd)

    def down(self):
        run([LAB, "down", self.dir], check=False)

    def reboot(self):
        """Returns (slot, version) of the slot that booted."""
        out = self._lab([LAB, "reboot", self.dir]).split()
        assert out[0] == "booted", out
        return out[1], out[2] if len(out) > 2 else ""

    def _lab(self, cmd):
        res = run(cmd, check=False)
        if res.returncode != 0:
            log = self.path("rauc.log")
            tail = open(log).read()[-2000:] if os.path.exists(log) else ""
            raise AssertionError(f"{' '.join(cmd)} failed: {res.stderr}\nrauc.log:\n{tail}")
        return res.stdout.strip()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def rauc(self, *args, check=True):
        """The rauc CLI as a client of the lab's service (over the private bus)."""
        return run(["rauc", *args], check=check, env=self.env)

    def install(self, bundle):
        """(ok, message): RAUC's LastError, plus the pre-install handler's reason if it
        rejected the bundle (RAUC 1.8 does not forward a handler's message)."""
        res = self.rauc("install", bundle, check=False)
        self.wait_idle()
        # The client prints progress lines, then "LastError: ..." on failure; only the
        # error is the reason (progress text such as "Verifying signature" is not).
        errors = [line for line in (res.stdout + res.stderr).splitlines()
                  if line.startswith("LastError:")]
        if res.returncode == 0:
            return True, res.stdout
        message = "\n".join(errors) or f"no LastError (exit {res.returncode}): {res.stderr}"
        rejection = self.path("data", "last-rejection")
        if "Pre-install handler error" in message and os.path.exists(rejection):
            with open(rejection) as f:
                message += "\npre-install: " + f.read().strip()
        return False, message

    def wait_idle(self):
        deadline = time.monotonic() + TIMEOUT
        while True:
            res = run(["dbus-send", f"--bus=unix:path={self.dir}/bus.sock", "--print-reply",
                       "--dest=de.pengutronix.rauc", "/", "org.freedesktop.DBus.Properties.Get",
                       "string:de.pengutronix.rauc.Installer", "string:Operation"], check=False)
            if 'string "idle"' in res.stdout:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"RAUC not idle after {TIMEOUT}s: {res.stdout}{res.stderr}")
            time.sleep(0.05)

    def mark_good(self):
        return self.rauc("status", "mark-good", "booted").stdout

    def status(self):
        import json
        return json.loads(self.rauc("status", "--output-format=json").stdout)

    def boot_state(self):
        state = {}
        with open(self.path("boot", "state")) as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                state[key] = value
        return state

    def version_floor(self):
        with open(self.path("data", "version-floor")) as f:
            return f.read().strip()

    def snapshot(self):
        """What a rejected bundle must leave unchanged: both slots, the boot state, the
        version floor."""
        return {
            "rootfs.0": sha256(self.path("slots", "rootfs.0.img")),
            "rootfs.1": sha256(self.path("slots", "rootfs.1.img")),
            "boot": read(self.path("boot", "state")),
            "floor": self.version_floor(),
        }
