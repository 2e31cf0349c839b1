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
  self-test comes back, after the reboot, on a good slot with one consistent outcome.

Needs root (loop mounts). Artefacts are made in a temporary directory and removed.
"""
import json
import os
import shutil
import signal
import subprocess
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
        steps = self.history()
        self.assertEqual(steps[-3][0], "update.self_test")
        self.assertTrue(steps[-3][1].startswith("failed: self-test"), steps[-3])
        self.assertEqual(steps[-2], ("update.fallback", "ok"))
        self.assertEqual(steps[-1][0], "update.rollback")
        # The slot stays on B across further reboots.
        self.assertEqual(self.lab.reboot(), ("B", "1.1.0"))

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


if __name__ == "__main__":
    unittest.main()
