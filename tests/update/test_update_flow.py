"""controld's update flow (control/update/UpdateService) against the real RAUC in the
update lab, through tests/update/update_driver (one process per step, as controld runs
across reboots, with its store in a state dir):

* a good bundle installs into the inactive slot, trial-boots, passes the self-test of
  its own image (its dataplane starts, the validation corpus of tests/packets replays
  with every expected verdict) and is committed: RAUC reports it good, the version floor
  rises, and the version shows in the status;
* a bundle whose dataplane exits at once fails its self-test: the slot is marked bad,
  the lab reboots back to the previous slot, and the rollback is reported with the
  self-test's reason;
* a bundle RAUC refuses (below the version floor) is reported with the pre-install
  handler's reason and changes no slot;
* controld killed (SIGKILL, standing in for a power cut) during the install or during the
  self-test comes back, after the reboot, on a good slot with one consistent outcome;
* CrashAtEveryStep: controld killed at each named step of the flow (update_driver
  --crash-at STEP, UpdateService::kCrashPoints), then a power cut (the lab reboots at
  once, RAUC is stopped wherever it was): the system comes back on a working, known slot,
  the store's record agrees with RAUC, the outcome is reported, and a retry works;
* an older bundle is refused by the version floor; an administrator's allowance lets
  exactly one install of it through, and only if it is correctly signed;
* every step is an event in the store that GET /v1/events serves.

Needs root (loop mounts). Artefacts are made in a temporary directory and removed.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import updatelab
from updatelab import Lab, make_bundle

DRIVER = os.path.join(updatelab.BUILD_DIR, "bin", "update_driver")
WORK = None
PKI = None
IMG = {}


def setUpModule():
    global WORK, PKI
    if os.geteuid() != 0:
        raise RuntimeError("the update tests need root (loop mounts, RAUC service)")
    WORK = tempfile.mkdtemp(prefix="cordon-update-flow-")
    try:
        PKI = updatelab.make_pki(os.path.join(WORK, "pki"))
        for version in ("1.0.0", "1.1.0"):
            IMG[version] = updatelab.build_rootfs(os.path.join(WORK, "img-" + version), version)
        # 1.2.0: everything as built, except a dataplane that exits at once (an ELF, so
        # the SBOM of the image is still made).
        bad_bin = os.path.join(WORK, "bad-bin")
        os.makedirs(bad_bin)
        for b in ("cordonctl", "run_case"):
            shutil.copy(os.path.join(updatelab.BUILD_DIR, "bin", b), bad_bin)
        shutil.copy("/bin/false", os.path.join(bad_bin, "cordon-dataplane"))
        out = os.path.join(WORK, "img-1.2.0")
        updatelab.run([os.path.join(updatelab.IMAGES, "build-rootfs.sh"), out, "--version", "1.2.0",
                       "--bin-dir", bad_bin], timeout=300)
        IMG["1.2.0"] = os.path.join(out, "rootfs.img")
    except BaseException:
        shutil.rmtree(WORK, ignore_errors=True)
        raise


def tearDownModule():
    if WORK:
        shutil.rmtree(WORK, ignore_errors=True)


class UpdateFlow(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lab-", dir=WORK)
        self.state = os.path.join(self.dir, "controld-state")
        self.lab = Lab(os.path.join(self.dir, "lab"), os.path.join(PKI, "ca.cert.pem"), IMG["1.0.0"])
        self.addCleanup(self.lab.down)
        self.lab.up()

    def driver(self, *args):
        res = updatelab.run([DRIVER, self.lab.dir, self.state, *args], check=False, timeout=600)
        self.assertEqual(res.returncode, 0, f"update_driver {' '.join(args)}: {res.stderr}")
        return json.loads(res.stdout)

    def history(self):
        return [(s["step"], s["outcome"]) for s in self.driver("history")]

    def events(self):
        return [(e["step"], e["outcome"]) for e in self.driver("events")]

    def bundle(self, version):
        return make_bundle(IMG[version], os.path.join(self.dir, f"{version}.raucb"), PKI, version=version)

    def rauc_slot(self, bootname):
        status = self.lab.status()
        for entry in status["slots"]:
            for name, slot in entry.items():
                if slot.get("bootname") == bootname:
                    return slot
        self.fail(f"no slot {bootname} in {status}")

    def install_and_commit(self, version, expect_slot):
        st = self.driver("install", self.bundle(version))
        self.assertEqual(st["state"], "awaiting-reboot", st)
        self.assertEqual(st["pending"]["to_version"], version)
        self.assertEqual(st["pending"]["to_bootname"], expect_slot)
        self.assertEqual(self.lab.reboot(), (expect_slot, version))
        st = self.driver("boot")
        self.assertEqual(st["last_result"]["outcome"], "committed", st)
        return st

    def test_good_bundle_is_installed_trial_booted_self_tested_and_committed(self):
        st = self.driver("install", self.bundle("1.1.0"))
        self.assertEqual(st["state"], "awaiting-reboot", st)
        self.assertEqual(st["primary_slot"], "rootfs.1")
        self.assertEqual(st["booted_version"], "1.0.0")
        self.assertEqual(self.lab.boot_state()["order"], "B A")
        self.assertEqual(self.lab.version_floor(), "1.0.0", "the floor rises only with a commit")

        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        st = self.driver("boot")
        self.assertEqual(st["last_result"]["outcome"], "committed", st)
        self.assertEqual(st["last_result"]["version"], "1.1.0")
        self.assertIsNone(st["pending"])
        self.assertEqual((st["booted_slot"], st["booted_version"]), ("B", "1.1.0"))
        self.assertEqual(self.rauc_slot("B")["boot_status"], "good")
        self.assertEqual(self.lab.boot_state()["B_committed"], "1")
        self.assertEqual(self.lab.version_floor(), "1.1.0")
        slots = {s["bootname"]: s for s in st["slots"]}
        self.assertEqual(slots["B"]["bundle_version"], "1.1.0")
        self.assertEqual(self.history(), [("update.upload", "ok"), ("update.install", "ok"),
                                          ("update.trial_boot", "ok"), ("update.self_test", "ok"),
                                          ("update.commit", "ok")])
        self.assertEqual(self.events(), [
            ("update.upload", "ok"), ("update.installing", "ok"), ("update.verified", "ok"),
            ("update.install", "ok"), ("update.rebooting", "awaiting-reboot"),
            ("update.trial_boot", "ok"), ("update.self_test", "ok"), ("update.commit", "ok")])
        # It stays: the next boot is B again, nothing in flight.
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        self.assertEqual(self.driver("boot")["state"], "idle")

    def test_a_bundle_whose_self_test_fails_rolls_back_and_the_rollback_is_reported(self):
        self.install_and_commit("1.1.0", "B")
        st = self.driver("install", self.bundle("1.2.0"))
        self.assertEqual(st["pending"]["to_bootname"], "A")
        self.assertEqual(self.lab.reboot(), ("A", "1.2.0"))
        # The self-test fails; the service marks A bad and reboots the lab back to B.
        st = self.driver("boot")
        self.assertEqual(st["pending"]["phase"], "self-test-failed", st)
        self.assertIn("the dataplane exited (code 1)", st["pending"]["reason"])
        with open(self.lab.path("boot", "booted")) as f:
            self.assertEqual(f.read(), "slot=B\nversion=1.1.0\n")
        self.assertEqual(self.rauc_slot("A")["boot_status"], "bad")
        # controld in the fallen-back boot reports the rollback.
        st = self.driver("boot")
        self.assertIsNone(st["pending"])
        self.assertEqual((st["booted_slot"], st["booted_version"]), ("B", "1.1.0"))
        self.assertEqual(st["last_result"]["outcome"], "rolled_back")
        self.assertEqual(st["last_result"]["version"], "1.2.0")
        self.assertIn("the dataplane exited (code 1)", st["last_result"]["reason"])
        self.assertEqual(self.lab.version_floor(), "1.1.0")
        events = self.events()
        self.assertEqual(events[-3], ("update.rebooting", "ok"), events)
        self.assertEqual(events[-2], ("update.fallback", "ok"))
        self.assertEqual(events[-1][0], "update.rollback")
        steps = self.history()
        self.assertEqual(steps[-3][0], "update.self_test")
        self.assertTrue(steps[-3][1].startswith("failed: self-test"), steps[-3])
        self.assertEqual(steps[-2], ("update.fallback", "ok"))
        self.assertEqual(steps[-1][0], "update.rollback")
        # The slot stays on B across further reboots.
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))

    def test_a_self_test_that_finds_webd_not_answering_rolls_back(self):
        # Nothing listens on the probed port: the slot's own checks pass, the webd probe
        # (controld's --update-webd-url) fails the self-test.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.driver("install", self.bundle("1.1.0"))
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        res = updatelab.run([DRIVER, self.lab.dir, self.state, "boot"], check=False, timeout=600,
                            env=dict(os.environ, CORDON_WEBD_URL=f"https://127.0.0.1:{port}/"))
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(self.lab.path("boot", "booted")) as f:
            self.assertEqual(f.read(), "slot=A\nversion=1.0.0\n")
        st = self.driver("boot")
        self.assertEqual(st["last_result"]["outcome"], "rolled_back", st)
        self.assertIn(f"webd at https://127.0.0.1:{port}/: connect: Connection refused",
                      st["last_result"]["reason"])
        self.assertEqual(self.lab.version_floor(), "1.0.0")

    def test_a_refused_bundle_is_reported_with_the_handlers_reason_and_changes_nothing(self):
        self.install_and_commit("1.1.0", "B")
        before = self.lab.snapshot()
        old = make_bundle(IMG["1.0.0"], os.path.join(self.dir, "old.raucb"), PKI, version="1.0.0")
        st = self.driver("install", old)
        self.assertEqual(st["state"], "idle")
        self.assertIsNone(st["pending"])
        self.assertEqual(st["last_result"]["outcome"], "rejected")
        self.assertIn("Pre-install handler error", st["last_result"]["reason"])
        self.assertIn("below the version floor 1.1.0", st["last_result"]["reason"])
        self.assertEqual(self.lab.snapshot(), before)
        self.assertTrue(self.history()[-1][1].startswith("refused: "))
        step, outcome = self.events()[-1]
        self.assertEqual(step, "update.install")
        self.assertIn("below the version floor 1.1.0", outcome)

    def test_an_older_bundle_installs_once_with_an_allowance_and_only_if_signed(self):
        self.install_and_commit("1.1.0", "B")
        allowance = self.lab.path("data", "admin-downgrade-allowance")
        old = make_bundle(IMG["1.0.0"], os.path.join(self.dir, "old.raucb"), PKI, version="1.0.0")
        st = self.driver("install", old)
        self.assertEqual(st["last_result"]["outcome"], "rejected")
        self.assertIn("below the version floor 1.1.0", st["last_result"]["reason"])
        self.assertIn("no downgrade allowance", st["last_result"]["reason"])

        allowed = self.driver("allow-downgrade", "1.0.0", "ticket 17: 1.1.0 breaks the modality")
        self.assertEqual(allowed["version"], "1.0.0")
        self.assertTrue(os.path.exists(allowance))
        self.assertEqual(self.history()[-1], ("update.allow_downgrade", "ok"))

        # Not correctly signed: refused even with the allowance, which stays unused.
        before = self.lab.snapshot()
        with open(old, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 3] ^= 1  # inside the payload
        tampered = os.path.join(self.dir, "old-tampered.raucb")
        with open(tampered, "wb") as f:
            f.write(data)
        foreign = make_bundle(IMG["1.0.0"], os.path.join(self.dir, "old-foreign.raucb"), PKI,
                              version="1.0.0", signer="other-signing", keyring=False)
        for bad, why in ((tampered, "verification failure"),
                         (foreign, "unable to get local issuer certificate")):
            st = self.driver("install", bad)
            self.assertEqual(st["last_result"]["outcome"], "rejected", bad)
            self.assertIn(why, st["last_result"]["reason"])
            self.assertEqual(self.lab.snapshot(), before)
            self.assertTrue(os.path.exists(allowance), "an unsigned bundle does not use it up")

        # The signed one installs, once.
        st = self.driver("install", old)
        self.assertEqual(st["state"], "awaiting-reboot", st)
        self.assertEqual(st["pending"]["to_version"], "1.0.0")
        self.assertFalse(os.path.exists(allowance), "the allowance is single use")
        self.assertEqual(self.lab.reboot(), ("A", "1.0.0"))
        st = self.driver("boot")
        self.assertEqual(st["last_result"]["outcome"], "committed", st)
        self.assertEqual(self.lab.version_floor(), "1.1.0", "the floor never goes down")
        # The same older bundle again: refused, the allowance is used up.
        st = self.driver("install", old)
        self.assertEqual(st["last_result"]["outcome"], "rejected")
        self.assertIn("below the version floor 1.1.0", st["last_result"]["reason"])
        self.assertIn("no downgrade allowance", st["last_result"]["reason"])


class KilledUpdate(UpdateFlow):
    """SIGKILL of controld (update_driver) at a step of the flow."""

    def start_driver(self, *args):
        return subprocess.Popen([DRIVER, self.lab.dir, self.state, *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def wait_for(self, what, condition, timeout=120):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}")
            time.sleep(0.05)

    def operation(self):
        res = updatelab.run(["dbus-send", f"--bus=unix:path={self.lab.dir}/bus.sock", "--print-reply",
                             "--dest=de.pengutronix.rauc", "/", "org.freedesktop.DBus.Properties.Get",
                             "string:de.pengutronix.rauc.Installer", "string:Operation"], check=False)
        return res.stdout

    def self_test_running(self):
        # The self-test's dataplane runs from the mounted slot.
        res = updatelab.run(["pgrep", "-f", f"{self.lab.dir}/root/usr/lib/cordon/cordon-dataplane"], check=False)
        return res.returncode == 0

    def kill(self, proc):
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        self.assertEqual(proc.returncode, -signal.SIGKILL)

    def test_killed_during_the_install_the_next_boot_tests_and_commits_the_new_slot(self):
        proc = self.start_driver("install", self.bundle("1.1.0"))
        self.wait_for("RAUC installing", lambda: 'string "installing"' in self.operation())
        self.kill(proc)
        self.lab.wait_idle()  # RAUC finishes on its own
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        st = self.driver("boot")
        self.assertEqual(st["last_result"]["outcome"], "committed", st)
        self.assertIsNone(st["pending"])
        self.assertEqual(self.rauc_slot("B")["boot_status"], "good")
        self.assertEqual(self.lab.version_floor(), "1.1.0")

    def test_killed_during_the_self_test_the_next_boot_tests_again(self):
        self.driver("install", self.bundle("1.1.0"))
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        proc = self.start_driver("boot")
        self.wait_for("the self-test's dataplane", self.self_test_running)
        self.kill(proc)
        # Nothing was marked: B is still on trial. Wait for the orphaned self-test to end
        # (it cleans up after itself), then the watchdog's reboot.
        self.wait_for("the orphaned self-test to finish", lambda: not self.self_test_running())
        self.assertEqual(self.lab.boot_state()["B_committed"], "0")
        self.assertEqual(self.driver("status")["pending"]["phase"], "installed")
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        st = self.driver("boot")
        self.assertEqual(st["last_result"]["outcome"], "committed", st)
        self.assertEqual(self.lab.boot_state()["B_committed"], "1")
        steps = [s for s, _ in self.history()]
        self.assertEqual(steps.count("update.trial_boot"), 2)

    # The tests of the parent class are not repeated here.
    test_good_bundle_is_installed_trial_booted_self_tested_and_committed = None
    test_a_bundle_whose_self_test_fails_rolls_back_and_the_rollback_is_reported = None
    test_a_refused_bundle_is_reported_with_the_handlers_reason_and_changes_nothing = None
    test_an_older_bundle_installs_once_with_an_allowance_and_only_if_signed = None
    test_a_self_test_that_finds_webd_not_answering_rolls_back = None


class CrashAtEveryStep(UpdateFlow):
    """update_driver --crash-at STEP (a SIGKILL inside controld's flow at that step), then
    a power cut: the lab reboots at once. Afterwards the system runs a known slot that
    mounts, the store's record agrees with RAUC's, the outcome is reported, and the update
    can be tried again."""

    def crash(self, step, *args):
        res = updatelab.run([DRIVER, self.lab.dir, self.state, "--crash-at", step, *args],
                            check=False, timeout=600)
        self.assertEqual(res.returncode, -signal.SIGKILL, f"--crash-at {step}: {res.stderr}")

    def consistent(self, st, slot, version):
        """The status after the recovery boot agrees with the lab and with RAUC."""
        self.assertIsNone(st["pending"], st)
        self.assertEqual(st["state"], "idle", st)
        self.assertEqual((st["booted_slot"], st["booted_version"]), (slot, version))
        with open(self.lab.path("boot", "booted")) as f:
            self.assertEqual(f.read(), f"slot={slot}\nversion={version}\n")
        self.assertEqual(self.lab.boot_state()[f"{slot}_committed"], "1")
        self.assertEqual(self.rauc_slot(slot)["boot_status"], "good")
        self.assertEqual(self.lab.version_floor(), version)
        self.assertFalse(os.listdir(os.path.join(self.state, "bundles")),
                         "no bundle or partial upload is left behind")

    def assert_interrupted_then_retry(self, before):
        st = self.driver("boot")
        self.consistent(st, "A", "1.0.0")
        self.assertEqual(st["last_result"]["outcome"], "interrupted", st)
        self.assertEqual(self.lab.snapshot()["rootfs.0"], before["rootfs.0"])
        self.install_and_commit("1.1.0", "B")

    def assert_committed_then_retry(self, trial_boots):
        st = self.driver("boot")
        self.consistent(st, "B", "1.1.0")
        self.assertEqual(st["last_result"]["outcome"], "committed", st)
        steps = [s for s, _ in self.history()]
        self.assertEqual(steps.count("update.trial_boot"), trial_boots)
        self.assertEqual(steps.count("update.commit"), 1)
        # A further update starts and installs (into A).
        st = self.driver("install", self.bundle("1.1.0"))
        self.assertEqual(st["state"], "awaiting-reboot", st)
        self.assertEqual(st["pending"]["to_bootname"], "A")

    def test_crash_while_uploading(self):
        before = self.lab.snapshot()
        self.crash("upload", "install", self.bundle("1.1.0"))
        self.assertTrue(os.path.exists(os.path.join(self.state, "bundles", ".upload.part")))
        self.assertEqual(self.lab.reboot(), ("A", "1.0.0"))
        self.assertEqual(self.lab.snapshot(), before)
        self.assert_interrupted_then_retry(before)
        self.assertIn(("update.upload", "failed: the upload was interrupted"),
                      [(s, o.split(" before")[0]) for s, o in self.history()])

    def test_crash_while_rauc_verifies(self):
        before = self.lab.snapshot()
        self.crash("verify", "install", self.bundle("1.1.0"))
        # The power cut: RAUC is stopped wherever it got to.
        slot, version = self.lab.reboot()
        sys.stderr.write(f"(the power cut found RAUC {'unfinished' if slot == 'A' else 'done'}) ")
        if slot == "A":
            self.assert_interrupted_then_retry(before)
        else:  # RAUC had finished before the power went
            self.assertEqual((slot, version), ("B", "1.1.0"))
            self.assert_committed_then_retry(trial_boots=1)

    def test_crash_after_the_install_before_the_reboot(self):
        self.crash("installed", "install", self.bundle("1.1.0"))
        self.assertEqual(self.driver("status")["pending"]["phase"], "installed")
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        self.assert_committed_then_retry(trial_boots=1)

    def test_crash_in_the_trial_boot_before_the_self_test(self):
        self.driver("install", self.bundle("1.1.0"))
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        self.crash("trial-boot", "boot")
        self.assertEqual(self.lab.boot_state()["B_committed"], "0")
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))  # the second of 3 attempts
        self.assert_committed_then_retry(trial_boots=2)

    def test_crash_after_the_self_test_before_mark_good(self):
        self.driver("install", self.bundle("1.1.0"))
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        self.crash("self-test", "boot")
        self.assertEqual(self.lab.boot_state()["B_committed"], "0", "nothing was marked")
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        self.assert_committed_then_retry(trial_boots=2)

    def test_crash_after_mark_good_before_the_commit_is_recorded(self):
        self.driver("install", self.bundle("1.1.0"))
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        self.crash("mark-good", "boot")
        # RAUC committed the slot; the store still has the update in flight.
        self.assertEqual(self.lab.boot_state()["B_committed"], "1")
        self.assertEqual(self.driver("status")["pending"]["phase"], "installed")
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))
        self.assert_committed_then_retry(trial_boots=2)

    test_good_bundle_is_installed_trial_booted_self_tested_and_committed = None
    test_a_bundle_whose_self_test_fails_rolls_back_and_the_rollback_is_reported = None
    test_a_refused_bundle_is_reported_with_the_handlers_reason_and_changes_nothing = None
    test_an_older_bundle_installs_once_with_an_allowance_and_only_if_signed = None
    test_a_self_test_that_finds_webd_not_answering_rolls_back = None


if __name__ == "__main__":
    unittest.main()
