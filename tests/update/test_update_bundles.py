"""Signed A/B updates in the update lab (update-lab.sh): RAUC on a private D-Bus with
file-backed slots and the boot-counting backend. A good bundle installs into the inactive
slot, trial-boots and is committed; every kind of bad bundle is refused with its reason
and leaves both slots, the boot state and the version floor untouched; a trial slot that
is never marked good falls back to the previous slot after 3 boots.

Needs root (loop mounts). Artefacts (PKI, images, bundles) are made at test time in a
temporary directory and removed afterwards.
"""
import os
import shutil
import subprocess
import tempfile
import unittest

import updatelab
from updatelab import Lab, make_bundle

WORK = None
PKI = None
IMG = {}       # version -> rootfs image
BUNDLES = {}   # name -> bundle path
MAX_IMAGE_BYTES = None


def setUpModule():
    global WORK, PKI, MAX_IMAGE_BYTES
    if os.geteuid() != 0:
        raise RuntimeError("the update tests need root (loop mounts, RAUC service)")
    WORK = tempfile.mkdtemp(prefix="cordon-update-")
    try:
        PKI = updatelab.make_pki(os.path.join(WORK, "pki"))
        for version in ("1.0.0", "1.1.0"):
            IMG[version] = updatelab.build_rootfs(os.path.join(WORK, "img-" + version), version)
        # The slot size limit: the real images fit with 1 MiB to spare.
        MAX_IMAGE_BYTES = max(os.path.getsize(p) for p in IMG.values()) + (1 << 20)
        make_artefacts()
    except BaseException:
        shutil.rmtree(WORK, ignore_errors=True)
        raise


def tearDownModule():
    if WORK:
        shutil.rmtree(WORK, ignore_errors=True)


def bundle_path(name):
    return os.path.join(WORK, "bundles", name + ".raucb")


def make_artefacts():
    os.makedirs(os.path.join(WORK, "bundles"))
    new = IMG["1.1.0"]
    BUNDLES["good"] = make_bundle(new, bundle_path("good"), PKI, version="1.1.0")
    BUNDLES["unknown-key"] = make_bundle(new, bundle_path("unknown-key"), PKI,
                                         signer="other-signing", keyring=False)
    BUNDLES["expired"] = make_bundle(new, bundle_path("expired"), PKI, signer="expired",
                                     keyring=False)
    BUNDLES["not-yet-valid"] = make_bundle(new, bundle_path("not-yet-valid"), PKI,
                                           signer="future", keyring=False)
    BUNDLES["wrong-compatible"] = make_bundle(new, bundle_path("wrong-compatible"), PKI,
                                              compatible="cordon-appliance-aarch64")
    BUNDLES["below-floor"] = make_bundle(new, bundle_path("below-floor"), PKI,
                                         version="0.9.0")
    BUNDLES["verity"] = make_bundle(new, bundle_path("verity"), PKI, fmt="verity")

    # Unsigned: the bundle's squashfs as RAUC builds it, without the signature after it.
    content = bundle_content("unsigned-content", new, "1.1.0")
    BUNDLES["unsigned"] = bundle_path("unsigned")
    updatelab.run(["mksquashfs", content, BUNDLES["unsigned"], "-all-root", "-noappend",
                   "-quiet", "-no-progress"])

    # Over the size limit: a validly signed image of incompressible data.
    big = os.path.join(WORK, "big")
    os.makedirs(os.path.join(big, "etc"))
    with open(os.path.join(big, "etc", "cordon-release"), "w") as f:
        f.write("VERSION=1.2.0\n")
    with open(os.path.join(big, "padding"), "wb") as f:
        f.write(os.urandom(MAX_IMAGE_BYTES + (1 << 20)))
    updatelab.run(["mksquashfs", big, os.path.join(WORK, "big.img"), "-all-root", "-noappend",
                   "-quiet", "-no-progress"])
    BUNDLES["oversize"] = make_bundle(os.path.join(WORK, "big.img"), bundle_path("oversize"),
                                      PKI, version="1.2.0")

    with open(BUNDLES["good"], "rb") as f:
        good = f.read()
    # Plain bundle layout: squashfs | CMS signature (DER) | signature size (8 bytes, BE).
    sig_size = int.from_bytes(good[-8:], "big")
    payload_end = len(good) - 8 - sig_size

    def write(name, data):
        BUNDLES[name] = bundle_path(name)
        with open(BUNDLES[name], "wb") as out:
            out.write(data)

    def flipped(data, offset, bit=0):
        b = bytearray(data)
        b[offset] ^= 1 << bit
        return bytes(b)

    write("truncated", good[: len(good) // 2])
    write("appended", good + b"\x00" * 4096)
    # Bytes slipped in between the payload and a still well-formed signature trailer.
    write("appended-inside", good[:payload_end] + os.urandom(4096) + good[payload_end:])
    # A bit in the middle of the payload: inside the rootfs image's data blocks.
    write("flip-payload", flipped(good, payload_end // 2))
    # A bit in the signature value: the end of the CMS structure (its last SignerInfo
    # field is the signature itself).
    write("flip-signature", flipped(good, payload_end + sig_size - 5))
    write("not-a-bundle", os.urandom(64 * 1024))

    # A bit in the manifest: an uncompressed bundle, so the manifest's text is in the
    # file, and '0' (0x30) -> '1' (0x31) turns version=1.1.0 into 1.1.1: a plausible
    # manifest that only the signature can tell from the signed one.
    manifest_bundle = bundle_path("manifest-src")
    rauc_bundle(bundle_content("manifest-content", new, "1.1.0"), manifest_bundle,
                "--mksquashfs-args=-noI -noD -noF -noX")
    with open(manifest_bundle, "rb") as f:
        data = f.read()
    at = data.find(b"version=1.1.0\n")
    assert at > 0 and data.find(b"version=1.1.0\n", at + 1) < 0, "manifest text not found once"
    write("flip-manifest", flipped(data, at + len("version=1.1.") , 0))
    with open(BUNDLES["flip-manifest"], "rb") as f:
        assert b"version=1.1.1\n" in f.read()

    # Validly signed, but a version the floor cannot order (make-bundle.sh refuses it,
    # so it is built with rauc directly).
    BUNDLES["unorderable-version"] = bundle_path("unorderable-version")
    rauc_bundle(bundle_content("unorderable-content", new, "latest"),
                BUNDLES["unorderable-version"])


def bundle_content(name, image, version):
    """A bundle content directory: IMAGE as rootfs.img and a manifest for VERSION."""
    content = os.path.join(WORK, name)
    os.makedirs(content)
    shutil.copy(image, os.path.join(content, "rootfs.img"))
    with open(os.path.join(content, "manifest.raucm"), "w") as f:
        f.write(f"[update]\ncompatible={updatelab.COMPATIBLE}\nversion={version}\n\n"
                "[image.rootfs]\nfilename=rootfs.img\n")
    return content


def rauc_bundle(content, out, *args):
    updatelab.run(["rauc", "bundle", "--cert", os.path.join(PKI, "signing.cert.pem"),
                   "--key", os.path.join(PKI, "signing.key.pem"), *args, content, out])


def make_allowance(path, signer, version, compatible=updatelab.COMPATIBLE):
    """A signed downgrade allowance (docs/update-flow.md): CMS signed data, PEM."""
    text = os.path.join(WORK, "allowance.txt")
    with open(text, "w") as f:
        f.write(f"cordon-downgrade-allowance\ncompatible={compatible}\nversion={version}\n")
    updatelab.run(["openssl", "cms", "-sign", "-binary", "-nodetach", "-outform", "PEM",
                   "-in", text, "-out", path,
                   "-signer", os.path.join(PKI, signer + ".cert.pem"),
                   "-inkey", os.path.join(PKI, signer + ".key.pem")])


class LabTest(unittest.TestCase):
    lab = None

    @classmethod
    def start_lab(cls, name):
        cls.lab = Lab(os.path.join(WORK, name), os.path.join(PKI, "ca.cert.pem"), IMG["1.0.0"],
                      MAX_IMAGE_BYTES)
        cls.addClassCleanup(cls.lab.down)
        cls.lab.up()

    def assert_factory_state(self):
        self.assertEqual(self.lab.status()["booted"], "A")
        self.assertEqual(self.lab.version_floor(), "1.0.0")


class GoodBundle(LabTest):
    @classmethod
    def setUpClass(cls):
        cls.start_lab("lab-good")

    def test_installs_to_inactive_slot_trial_boots_and_commits(self):
        lab = self.lab
        self.assert_factory_state()
        slot_a = updatelab.sha256(lab.path("slots", "rootfs.0.img"))

        ok, message = lab.install(BUNDLES["good"])
        self.assertTrue(ok, message)
        # Written into the inactive slot B, byte for byte; the booted slot A untouched.
        self.assertEqual(updatelab.sha256(lab.path("slots", "rootfs.1.img")),
                         updatelab.sha256(IMG["1.1.0"]))
        self.assertEqual(updatelab.sha256(lab.path("slots", "rootfs.0.img")), slot_a)
        state = lab.boot_state()
        self.assertEqual(state["order"], "B A")
        self.assertEqual((state["B_attempts"], state["B_committed"]), ("3", "0"))
        self.assertEqual(lab.status()["boot_primary"], "rootfs.1")
        self.assertEqual(lab.version_floor(), "1.0.0")  # not good until marked good

        # Trial boot: B comes up, one attempt used, RAUC sees B as booted.
        self.assertEqual(lab.reboot(), ("B", "1.1.0"))
        with open(lab.path("root", "etc", "cordon-release")) as f:
            self.assertIn("VERSION=1.1.0\n", f.read())
        self.assertEqual(lab.boot_state()["B_attempts"], "2")
        self.assertEqual(lab.status()["booted"], "B")

        # Marking good commits it and raises the version floor.
        self.assertIn("marked slot rootfs.1 as good", lab.mark_good())
        state = lab.boot_state()
        self.assertEqual((state["B_committed"], state["B_attempts"]), ("1", "3"))
        self.assertEqual(lab.version_floor(), "1.1.0")

        # A committed slot keeps booting without using attempts.
        self.assertEqual(lab.reboot(), ("B", "1.1.0"))
        self.assertEqual(lab.reboot(), ("B", "1.1.0"))
        self.assertEqual(lab.reboot(), ("B", "1.1.0"))
        self.assertEqual(lab.reboot(), ("B", "1.1.0"))
        self.assertEqual(lab.boot_state()["B_attempts"], "3")


class Fallback(LabTest):
    @classmethod
    def setUpClass(cls):
        cls.start_lab("lab-fallback")

    def test_three_boots_without_mark_good_fall_back(self):
        lab = self.lab
        ok, message = lab.install(BUNDLES["good"])
        self.assertTrue(ok, message)
        for left in ("2", "1", "0"):
            self.assertEqual(lab.reboot(), ("B", "1.1.0"))
            self.assertEqual(lab.boot_state()["B_attempts"], left)
        # The fourth boot: B has no attempts left; the previous slot comes back.
        self.assertEqual(lab.reboot(), ("A", "1.0.0"))
        status = lab.status()
        self.assertEqual(status["booted"], "A")
        self.assertEqual(status["boot_primary"], "rootfs.0")
        slots = {name: s for entry in status["slots"] for name, s in entry.items()}
        self.assertEqual(slots["rootfs.1"]["boot_status"], "bad")
        self.assertEqual(lab.version_floor(), "1.0.0")
        # And it stays there.
        self.assertEqual(lab.reboot(), ("A", "1.0.0"))


# The signature no longer matches the signed content (RAUC's message for a CMS digest or
# signature-value mismatch).
CMS_MISMATCH = r"signature verification failed: .*CMS routines::verification failure"


class BadBundles(LabTest):
    """Each bad bundle is refused with its reason and changes nothing."""

    @classmethod
    def setUpClass(cls):
        cls.start_lab("lab-bad")

    def assert_rejected(self, name, reason):
        before = self.lab.snapshot()
        ok, message = self.lab.install(BUNDLES[name])
        self.assertFalse(ok, f"{name} was installed: {message}")
        self.assertRegex(message, reason)
        self.assertEqual(self.lab.snapshot(), before, f"{name} changed the slots or boot state")
        self.assert_factory_state()

    def test_unsigned(self):
        self.assert_rejected("unsigned", r"Invalid bundle format: Signature size is 0")

    def test_unknown_signer(self):
        self.assert_rejected("unknown-key", r"signature verification failed: Verify error: "
                             r"unable to get local issuer certificate")

    def test_expired_certificate(self):
        self.assert_rejected("expired", r"signature verification failed: Verify error: "
                             r"certificate has expired")

    def test_not_yet_valid_certificate(self):
        self.assert_rejected("not-yet-valid", r"signature verification failed: Verify error: "
                             r"certificate is not yet valid")

    def test_truncated(self):
        self.assert_rejected("truncated",
                             r"Invalid bundle format: Signature size \(\d+\) exceeds bundle size")

    def test_flipped_bit_in_payload(self):
        self.assert_rejected("flip-payload", CMS_MISMATCH)

    def test_flipped_bit_in_manifest(self):
        self.assert_rejected("flip-manifest", CMS_MISMATCH)

    def test_flipped_bit_in_signature(self):
        self.assert_rejected("flip-signature", CMS_MISMATCH)

    def test_bytes_appended(self):
        self.assert_rejected("appended", r"Invalid bundle format: Signature size")
        self.assert_rejected("appended-inside", CMS_MISMATCH)

    def test_wrong_compatible(self):
        self.assert_rejected("wrong-compatible",
                             r"Compatible mismatch: Expected 'cordon-appliance-x86_64' but "
                             r"bundle manifest has 'cordon-appliance-aarch64'")

    def test_below_version_floor(self):
        self.assert_rejected("below-floor",
                             r"version 0\.9\.0 is below the version floor 1\.0\.0")

    def test_over_size_limit(self):
        self.assert_rejected("oversize", r"over the slot size limit of %d bytes"
                             % MAX_IMAGE_BYTES)

    def test_unorderable_version(self):
        self.assert_rejected("unorderable-version",
                             r"bundle version 'latest' is not a valid \(orderable\) version")

    def test_not_a_bundle(self):
        self.assert_rejected("not-a-bundle", r"Invalid bundle format")

    def test_verity_format_not_allowed_here(self):
        self.assert_rejected("verity", r"Bundle format 'verity' not allowed")


class SignedDowngrade(LabTest):
    """Below the floor only with an allowance signed by a trusted key, for that version."""

    @classmethod
    def setUpClass(cls):
        cls.start_lab("lab-downgrade")

    def test_allowance_must_be_trusted_and_name_the_version(self):
        lab = self.lab
        allowance = lab.path("data", "downgrade-allowance.pem")
        before = lab.snapshot()

        make_allowance(allowance, "other-signing", "0.9.0")
        ok, message = lab.install(BUNDLES["below-floor"])
        self.assertFalse(ok)
        self.assertRegex(message, r"not signed by a trusted key")

        make_allowance(allowance, "signing", "0.8.0")
        ok, message = lab.install(BUNDLES["below-floor"])
        self.assertFalse(ok)
        self.assertRegex(message, r"allowance is for cordon-appliance-x86_64 0\.8\.0")
        self.assertEqual(lab.snapshot(), before)

        make_allowance(allowance, "signing", "0.9.0")
        ok, message = lab.install(BUNDLES["below-floor"])
        self.assertTrue(ok, message)
        self.assertEqual(lab.boot_state()["order"], "B A")

    def test_no_version_floor_fails_closed(self):
        lab = self.lab
        floor = lab.path("data", "version-floor")
        saved = updatelab.read(floor)

        def restore():
            with open(floor, "w") as f:
                f.write(saved)
        self.addCleanup(restore)
        os.remove(floor)
        slots = (updatelab.sha256(lab.path("slots", "rootfs.0.img")),
                 updatelab.sha256(lab.path("slots", "rootfs.1.img")))
        ok, message = lab.install(BUNDLES["good"])
        self.assertFalse(ok, message)
        self.assertRegex(message, r"no version floor at '.*version-floor'")
        self.assertEqual((updatelab.sha256(lab.path("slots", "rootfs.0.img")),
                          updatelab.sha256(lab.path("slots", "rootfs.1.img"))), slots)


if __name__ == "__main__":
    unittest.main()
