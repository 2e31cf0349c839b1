"""Virtual patching and clinical-protocol rules in the lab, with real clients: HL7 message
types on MLLP, and a policy-defined signature patch (CVE-2021-41773 path traversal)
against a real HTTP server on the device.
"""
import copy
import os
import subprocess
import unittest

from labutil import (ATTACKER, MODALITY, PACS, PROBE, PY, REPO, RIS, RUN, Background, apply,
                     dropped, echoscu, events, lab_policy, on, wait_for)
import test_fastpath


def setUpModule():
    test_fastpath.setUpModule()


def tearDownModule():
    test_fastpath.tearDownModule()


def send_hl7(message_type, control_id):
    return on("modality", PY, REPO / "tests/topology/mllp_send.py", RIS, 2575, "--type",
              message_type, "--control-id", control_id, "--timeout", 5, timeout=30)


def web_policy():
    """The sample policy plus a web console on the device, behind the traversal patch."""
    p = copy.deepcopy(lab_policy())
    device = p["devices"][0]
    device["rules"].append({"name": "web-console", "dir": "in", "proto": "tcp",
                            "peer": "10.50.0.0/24", "dport": 80})
    device["patches"].append("local-http-traversal")
    return p


MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def storescu(path):
    return on("modality", "storescu", "-to", 5, "-ta", 5, "-aet", "CT1", "-aec", "PACS", PACS, 104,
              path, timeout=60)


def refused_with(detail):
    wait_for(lambda: any(e.get("reason") == "app-not-allowed" and e.get("detail") == detail
                         for e in events()), 10, f"an app-not-allowed event: {detail}")


class Inspection(unittest.TestCase):
    def setUp(self):
        r = apply(lab_policy())
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_allowed_hl7_type_is_acked_and_disallowed_never_arrives(self):
        allowed = f"OK{os.getpid()}"
        r = send_hl7("ORU^R01", allowed)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        before = dropped("app-not-allowed")
        refused = f"NO{os.getpid()}"
        r = send_hl7("ADT^A01", refused)
        self.assertEqual(r.returncode, 2, "a disallowed message type was acknowledged")
        received = (RUN / "ris-received.hl7").read_text()
        self.assertIn(f"|ORU^R01|{allowed}|", received)
        self.assertNotIn(refused, received)
        self.assertGreater(dropped("app-not-allowed"), before)
        wait_for(lambda: any(e.get("reason") == "app-not-allowed" and
                             e.get("detail") == "HL7 message type not allowed: ADT^A01"
                             for e in events()), 10, "the app-not-allowed event")

    def test_dicom_ae_titles_are_enforced_on_the_wire(self):
        self.assertEqual(echoscu().returncode, 0)
        self.assertNotEqual(echoscu(calling="EVIL").returncode, 0)
        refused_with("DICOM calling AE title not allowed: EVIL")
        self.assertNotEqual(echoscu(called="ARCHIVE").returncode, 0)
        refused_with("DICOM called AE title not allowed: ARCHIVE")

    def test_ct_store_passes_and_mr_store_is_refused(self):
        ct = test_fastpath.make_ct_file()
        self.assertEqual(storescu(ct).returncode, 0)
        mr = ct.with_name("mr.dcm")
        mr.write_bytes(ct.read_bytes())
        # dcmodify keeps the file meta header (0002,0002) in step.
        subprocess.run(["dcmodify", "-nb", "-m", f"(0008,0016)={MR_IMAGE_STORAGE}",
                        "-m", "(0008,0060)=MR", str(mr)],
                       check=True, capture_output=True)
        uid = subprocess.run(["dcmdump", "+P", "0008,0018", str(mr)], capture_output=True,
                             text=True).stdout.split("[")[1].split("]")[0]
        self.assertNotEqual(storescu(mr).returncode, 0)
        refused_with(f"DICOM SOP class not allowed: {MR_IMAGE_STORAGE}")
        self.assertFalse((RUN / "pacs-store" / f"MR.{uid}").exists())

    def test_smb1_is_blocked_and_smb2_passes(self):
        p = copy.deepcopy(lab_policy())
        p["devices"][0]["rules"].append({"name": "image-share", "dir": "in", "proto": "tcp",
                                         "peer": "10.50.0.0/24", "dport": 445})
        self.assertEqual(apply(p).returncode, 0)
        server = Background("modality", PY, PROBE, "smb-server", ready="listening")
        try:
            r = on("attacker", PY, PROBE, "smb-negotiate", MODALITY, "smb2")
            self.assertEqual(r.stdout.strip(), "ok", r.stderr)
            r = on("attacker", PY, PROBE, "smb-negotiate", MODALITY, "smb1")
            self.assertTrue(r.stdout.startswith("error"), r.stdout)
            wait_for(lambda: any(e.get("reason") == "virtual-patch" and e.get("src") == ATTACKER and
                                 e.get("detail", "").startswith("patch smb1-block (MS17-010): "
                                                                "SMBv1 request")
                                 for e in events()), 10, "the smb1-block event")
        finally:
            server.stop()

    def test_bluekeep_ms_t120_request_is_blocked(self):
        p = copy.deepcopy(lab_policy())
        p["devices"][0]["rules"].append({"name": "remote-console", "dir": "in", "proto": "tcp",
                                         "peer": "10.50.0.0/24", "dport": 3389})
        self.assertEqual(apply(p).returncode, 0)
        server = Background("modality", PY, PROBE, "sink", 3389, ready="listening")
        client = REPO / "tests/e2e/rdp_client.py"
        try:
            r = on("attacker", PY, client, MODALITY, 3389, "rdpdr", "rdpsnd", "cliprdr")
            self.assertEqual(r.stdout.strip(), "sent", r.stderr)
            received = server.readline()
            self.assertRegex(received or "", r"received [1-9]")
            r = on("attacker", PY, client, MODALITY, 3389, "rdpdr", "MS_T120", "cliprdr")
            self.assertEqual(r.stdout.strip(), "reset", r.stderr)
            wait_for(lambda: any(e.get("reason") == "virtual-patch" and e.get("detail") ==
                                 "patch cve-2019-0708 (CVE-2019-0708): MS_T120 channel requested"
                                 for e in events()), 10, "the cve-2019-0708 event")
        finally:
            server.stop()

    def test_signature_patch_blocks_the_exploit_but_not_the_page(self):
        self.assertEqual(apply(web_policy()).returncode, 0)
        server = Background("modality", PY, PROBE, "listen-http", 80, ready="listening")
        try:
            r = on("attacker", PY, PROBE, "http", MODALITY, 80, "/index.html")
            self.assertEqual(r.stdout.strip(), "200")
            r = on("attacker", PY, PROBE, "http", MODALITY, 80, "/cgi-bin/.%2e/.%2e/etc/passwd")
            self.assertIn(r.stdout.strip(), ("reset", "timeout", "closed"))
            wait_for(lambda: any(e.get("reason") == "virtual-patch" and
                                 e.get("detail") == "patch local-http-traversal (CVE-2021-41773)"
                                 and e.get("src") == ATTACKER for e in events()),
                     10, "the virtual-patch event")
            self.assertNotIn(".%2e", server.proc_output())
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
