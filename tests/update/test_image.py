"""The firmware root filesystem image (images/build-rootfs.sh) and its SBOM.

The SBOM is checked against an independent derivation: ldd on each binary, and dpkg's
own answer for which package ships each library and at which version.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import jsonschema

import updatelab

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout


class RootfsImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="cordon-image-")
        cls.addClassCleanup(shutil.rmtree, cls.work, ignore_errors=True)
        cls.out = os.path.join(cls.work, "out")
        updatelab.build_rootfs(cls.out, "2.3.4+7.gdeadbee")
        cls.image = os.path.join(cls.out, "rootfs.img")
        with open(os.path.join(cls.out, "sbom.cdx.json")) as f:
            cls.sbom = json.load(f)
        cls.files = set(run(["unsquashfs", "-l", "-d", "", cls.image]).split())

    def file_in_image(self, path):
        return run(["unsquashfs", "-cat", self.image, path])

    def bin_dir(self):
        return os.path.join(updatelab.BUILD_DIR, "bin")

    def test_image_holds_binaries_units_config_and_version(self):
        built = [b for b in ("cordon-dataplane", "cordonctl", "cordon-controld", "cordon-webd")
                 if os.access(os.path.join(self.bin_dir(), b), os.X_OK)]
        self.assertIn("cordon-dataplane", built)
        for b in built:
            path = "/usr/bin/cordonctl" if b == "cordonctl" else "/usr/lib/cordon/" + b
            self.assertIn(path, self.files)
            with open(os.path.join(self.bin_dir(), b), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                                 hashlib.sha256(subprocess.run(
                                     ["unsquashfs", "-cat", self.image, path],
                                     check=True, capture_output=True).stdout).hexdigest())
        for unit in ("cordon-dataplane", "cordon-controld", "cordon-webd"):
            text = self.file_in_image(f"/usr/lib/systemd/system/{unit}.service")
            self.assertIn("Restart=always", text)
            # Each sends READY=1 and WATCHDOG=1 (sd_notify).
            self.assertIn("Type=notify\n", text)
            self.assertRegex(text, r"\nWatchdogSec=\d+s\n")
        self.assertIn("RuntimeWatchdogSec=",
                      self.file_in_image("/usr/lib/systemd/system.conf.d/cordon-watchdog.conf"))
        policy = json.loads(self.file_in_image("/etc/cordon/policy.default.json"))
        self.assertEqual((policy["schema"], policy["unknown_devices"], policy["devices"]),
                         ("cordon.policy/v1", "drop", []))
        release = self.file_in_image("/etc/cordon-release")
        self.assertIn("VERSION=2.3.4+7.gdeadbee\n", release)
        describe = run(["git", "-C", updatelab.TOP, "describe", "--always", "--dirty"]).strip()
        self.assertIn(f"GIT_DESCRIBE={describe}\n", release)
        with open(os.path.join(self.out, "rootfs.contents")) as f:
            contents = f.read()
        for b in ("cordon-dataplane", "cordonctl", "cordon-controld", "cordon-webd"):
            self.assertIn(("included " if b in built else "missing ") + b, contents)
        with open(os.path.join(self.out, "rootfs.version")) as f:
            self.assertEqual(f.read(), "2.3.4+7.gdeadbee\n")

    def test_sbom_shape(self):
        with open(os.path.join(HERE, "sbom.schema.json")) as f:
            jsonschema.validate(self.sbom, json.load(f))
        refs = {c["bom-ref"] for c in self.sbom["components"]}
        refs.add(self.sbom["metadata"]["component"]["bom-ref"])
        for dep in self.sbom["dependencies"]:
            self.assertIn(dep["ref"], refs)
            for r in dep["dependsOn"]:
                self.assertIn(r, refs)
        # The image carries the same SBOM.
        self.assertEqual(json.loads(self.file_in_image("/usr/share/cordon/sbom.cdx.json")),
                         self.sbom)

    def test_sbom_lists_our_binaries_and_every_package_they_load(self):
        by_name = {c["name"]: c for c in self.sbom["components"]}
        deps = {d["ref"]: set(d["dependsOn"]) for d in self.sbom["dependencies"]}
        for b in ("cordon-dataplane", "cordonctl"):
            path = os.path.join(self.bin_dir(), b)
            ours = by_name[b]
            self.assertEqual(ours["version"], "2.3.4+7.gdeadbee")
            with open(path, "rb") as f:
                self.assertEqual(ours["hashes"][0]["content"], hashlib.sha256(f.read()).hexdigest())
            libs = []
            for line in run(["ldd", path]).splitlines():
                if "=>" in line:
                    libs.append(line.split("=>")[1].split("(")[0].strip())
            self.assertTrue(libs)
            # dpkg -S on the realpath, in one call (merged /usr: try both spellings).
            owners = {}
            for lib in libs:
                real = os.path.realpath(lib)
                found = subprocess.run(["dpkg", "-S", lib, real, real.replace("/usr/lib/", "/lib/", 1)],
                                       capture_output=True, text=True).stdout
                owners[lib] = found.splitlines()[0].split(":")[0]
            for lib, pkg in owners.items():
                version = run(["dpkg-query", "-W", "-f", "${Version}", pkg])
                self.assertIn(pkg, by_name, f"{b} loads {lib} from {pkg}, missing from the SBOM")
                self.assertEqual(by_name[pkg]["version"], version)
                self.assertIn(by_name[pkg]["bom-ref"], deps[ours["bom-ref"]])
        # DPDK's driver plugins are loaded with dlopen (invisible to ldd): the af_packet
        # PMD the lab uses must be listed for the dataplane.
        self.assertIn("librte-net-af-packet23", by_name)


if __name__ == "__main__":
    unittest.main()
