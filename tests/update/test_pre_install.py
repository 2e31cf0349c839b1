"""The pre-install handler's administrator downgrade allowance (images/update-pre-install.sh),
run directly as RAUC runs it: RAUC_BUNDLE_MOUNT_POINT with a manifest and an image, the
configuration in CORDON_UPDATE_CONF. A bundle below the version floor passes only with an
allowance for exactly its version, not expired, owned by root and writable by nobody
else, and only once. (The lab tests drive the same handler through RAUC.)

Needs root: the handler insists that the allowance file is owned by root.
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HANDLER = os.path.join(os.path.dirname(os.path.dirname(HERE)), "images", "update-pre-install.sh")


class AdminAllowance(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (the allowance must be owned by root)")
        self.dir = tempfile.mkdtemp(prefix="cordon-pre-install-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.bundle = os.path.join(self.dir, "bundle")
        os.makedirs(self.bundle)
        with open(os.path.join(self.bundle, "manifest.raucm"), "w") as f:
            f.write("[update]\ncompatible=cordon-appliance-x86_64\nversion=1.0.0\n\n"
                    "[image.rootfs]\nfilename=rootfs.img\n")
        with open(os.path.join(self.bundle, "rootfs.img"), "wb") as f:
            f.write(b"\0" * 4096)
        self.floor = self.write("version-floor", "1.1.0\n")
        self.allowance = os.path.join(self.dir, "admin-downgrade-allowance")
        self.rejection = os.path.join(self.dir, "last-rejection")
        self.conf = self.write("update.conf", "\n".join([
            f"version_floor={self.floor}", "max_image_bytes=1000000",
            f"keyring={self.dir}/keyring.pem",
            f"downgrade_allowance={self.dir}/downgrade-allowance.pem",
            f"admin_downgrade_allowance={self.allowance}", f"rejection={self.rejection}", ""]))

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def allow(self, version, expires_in=3600, mode=0o600):
        self.write("admin-downgrade-allowance",
                   f"version={version}\nexpires={int(time.time()) + expires_in}\n", mode)

    def handler(self):
        env = dict(os.environ, RAUC_BUNDLE_MOUNT_POINT=self.bundle, CORDON_UPDATE_CONF=self.conf,
                   RAUC_IMAGE_NAME_1="rootfs.img")
        res = subprocess.run(["bash", HANDLER], env=env, capture_output=True, text=True,
                             timeout=30)
        reason = ""
        if os.path.exists(self.rejection):
            with open(self.rejection) as f:
                reason = f.read().strip()
        return res.returncode, reason

    def test_without_an_allowance_an_older_version_is_refused(self):
        self.assertEqual(self.handler(), (1, "version 1.0.0 is below the version floor 1.1.0 "
                                             "(highest version marked good); no downgrade allowance"))

    def test_an_allowance_for_exactly_this_version_passes_once(self):
        self.allow("1.0.0")
        self.assertEqual(self.handler(), (0, ""))
        self.assertFalse(os.path.exists(self.allowance), "single use")
        rc, reason = self.handler()
        self.assertEqual(rc, 1)
        self.assertIn("no downgrade allowance", reason)

    def test_an_allowance_for_another_version_is_refused_and_kept(self):
        self.allow("0.9.0")
        rc, reason = self.handler()
        self.assertEqual(rc, 1)
        self.assertIn("the downgrade allowance is for version 0.9.0", reason)
        self.assertTrue(os.path.exists(self.allowance))

    def test_an_expired_allowance_is_refused(self):
        self.allow("1.0.0", expires_in=-1)
        rc, reason = self.handler()
        self.assertEqual(rc, 1)
        self.assertIn("the downgrade allowance for 1.0.0 has expired", reason)

    def test_an_allowance_others_can_write_is_refused(self):
        self.allow("1.0.0", mode=0o622)
        rc, reason = self.handler()
        self.assertEqual(rc, 1)
        self.assertIn("is not owned by root or is writable by others", reason)

    def test_a_version_at_or_above_the_floor_needs_no_allowance(self):
        with open(os.path.join(self.bundle, "manifest.raucm"), "w") as f:
            f.write("[update]\ncompatible=cordon-appliance-x86_64\nversion=1.1.0\n")
        self.allow("1.0.0")
        self.assertEqual(self.handler(), (0, ""))
        self.assertTrue(os.path.exists(self.allowance), "not used up by an upgrade")


if __name__ == "__main__":
    unittest.main()
