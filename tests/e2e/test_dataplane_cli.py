"""cordon-dataplane as a program: clear errors on bad start-up, clean shutdown, fail closed
without a policy, several lcores. Runs in a throwaway network namespace with veth pairs
(no lab needed); needs root.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
from pathlib import Path

from labutil import BUILD, REPO, dataplane_request, wait_for

DATAPLANE = BUILD / "bin/cordon-dataplane"
NS = f"cordon-cli-{os.getpid()}"


def ns(*cmd):
    return subprocess.run(["ip", "netns", "exec", NS, *map(str, cmd)], capture_output=True,
                          text=True, timeout=60)


def setUpModule():
    subprocess.run(["ip", "netns", "add", NS], check=True)
    for a, b in (("cli-dev", "cli-dev-peer"), ("cli-net", "cli-net-peer")):
        subprocess.run(["ip", "-n", NS, "link", "add", a, "type", "veth", "peer", "name", b],
                       check=True)
        for i in (a, b):
            subprocess.run(["ip", "-n", NS, "link", "set", i, "up"], check=True)


def tearDownModule():
    subprocess.run(["ip", "netns", "del", NS])


def eal(prefix, lcores="0", memory=256, vdevs=True):
    args = ["--no-huge", "-m", str(memory), "--no-pci", "--file-prefix", prefix, "-l", lcores]
    if vdevs:
        args += ["--vdev=net_af_packet0,iface=cli-dev", "--vdev=net_af_packet1,iface=cli-net"]
    return args


class DataplaneCli(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="cordon-cli-"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.sock = self.dir / "dp.sock"

    def app(self, *extra):
        return ["--control-socket", self.sock, "--state-dir", self.dir / "state", *extra]

    def run_briefly(self, args):
        return ns(DATAPLANE, *args)

    def test_bad_option_is_refused_with_usage(self):
        r = self.run_briefly(eal("cli1") + ["--", "--pair", "net_af_packet0:net_af_packet1",
                                            "--frobnicate", "1"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown option --frobnicate", r.stderr)
        self.assertIn("usage: cordon-dataplane", r.stderr)

    def test_missing_port_is_named(self):
        r = self.run_briefly(eal("cli2", vdevs=False) + ["--", "--pair",
                                                         "net_af_packet0:net_af_packet1"] + self.app())
        self.assertEqual(r.returncode, 1)
        self.assertIn("no DPDK port named 'net_af_packet0'", r.stderr)

    def test_too_little_memory_is_explained(self):
        r = self.run_briefly(eal("cli3", memory=16) + ["--", "--pair",
                                                       "net_af_packet0:net_af_packet1"] + self.app())
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, "too little memory|EAL initialisation failed")

    def test_invalid_initial_policy_is_refused(self):
        bad = self.dir / "bad.json"
        bad.write_text('{"schema":"cordon.policy/v1","devices":[{"name":""}]}')
        r = self.run_briefly(eal("cli4") + ["--", "--pair", "net_af_packet0:net_af_packet1"] +
                             self.app("--policy", bad))
        self.assertEqual(r.returncode, 1)
        self.assertIn("is invalid", r.stderr)
        self.assertIn("devices[0].name", r.stderr)

    def test_two_lcores_run_and_sigterm_stops_cleanly(self):
        proc = subprocess.Popen(["ip", "netns", "exec", NS, DATAPLANE] +
                                eal("cli5", lcores="0-1") +
                                ["--", "--pair", "net_af_packet0:net_af_packet1"] +
                                self.app("--policy", REPO / "examples/policies/lab.json"),
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_for(self.sock.exists, 30, "the control socket")
            self.assertEqual(dataplane_request({"cmd": "get"}, self.sock)["version"], 1)
            # Counters are exported through DPDK telemetry too.
            t = subprocess.run(["dpdk-telemetry.py", "-f", "cli5"], input="/cordon/stats\n",
                               capture_output=True, text=True, timeout=30)
            stats = json.loads(t.stdout.strip().splitlines()[-1])["/cordon/stats"]
            self.assertEqual(stats["policy_version"], 1)
            self.assertIn("dropped_no_matching_rule", stats)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30), 0)
            stderr = proc.stderr.read()
            self.assertIn("2 worker(s)", stderr)
            self.assertIn("cordon-dataplane: stopped", stderr)
            self.assertFalse(self.sock.exists(), "control socket left behind")
            proc.stderr.close()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    @unittest.skipIf(len(os.sched_getaffinity(0)) < 2, "needs a CPU besides the worker's")
    def test_control_thread_runs_off_the_worker_cpu(self):
        # The worker polls its CPU; a policy's compile on that CPU would take the worker's
        # time (and, with the worker under SCHED_FIFO, wait for it to sleep).
        worker_cpu = max(os.sched_getaffinity(0))
        proc = subprocess.Popen(["ip", "netns", "exec", NS, DATAPLANE] +
                                eal("cli7", lcores=str(worker_cpu)) +
                                ["--", "--pair", "net_af_packet0:net_af_packet1"] +
                                self.app("--policy", REPO / "examples/policies/lab.json"),
                                stderr=subprocess.DEVNULL)
        try:
            wait_for(self.sock.exists, 30, "the control socket")
            self.assertEqual(dataplane_request({"cmd": "get"}, self.sock)["version"], 1)
            threads = {}
            for tid in os.listdir(f"/proc/{proc.pid}/task"):
                comm = Path(f"/proc/{proc.pid}/task/{tid}/comm").read_text().strip()
                threads[comm] = os.sched_getaffinity(int(tid))
            self.assertEqual(threads.get("cordon-dataplan"), {worker_cpu}, threads)
            self.assertIn("cordon-control", threads)
            self.assertNotIn(worker_cpu, threads["cordon-control"])
            self.assertTrue(threads["cordon-control"])
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

    def test_no_policy_means_fail_closed(self):
        proc = subprocess.Popen(["ip", "netns", "exec", NS, DATAPLANE] + eal("cli6") +
                                ["--", "--pair", "net_af_packet0:net_af_packet1"] + self.app(),
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_for(self.sock.exists, 30, "the control socket")
            # A frame into the device port must not come out of the network port.
            capture = subprocess.Popen(["ip", "netns", "exec", NS, "tcpdump", "-l", "-n", "-i",
                                        "cli-net-peer", "-c", "1", "udp port 9"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_for(lambda: "listening on" in capture.stderr.readline(), 10, "tcpdump")
            send = ("from scapy.all import Ether, IP, UDP, sendp; "
                    "sendp([Ether(src='02:c0:4d:00:00:10')/IP(src='10.50.0.10', dst='10.50.0.20')"
                    "/UDP(dport=9)]*5, iface='cli-dev-peer', verbose=False)")
            self.assertEqual(ns("/usr/bin/python3", "-c", send).returncode, 0)
            def no_policy_drops():
                return dataplane_request({"cmd": "stats"}, self.sock)["dropped"]["no-policy"]
            # Five or more: the kernel may add IPv6 chatter of its own on the veth.
            wait_for(lambda: no_policy_drops() >= 5, 10, "five no-policy drops")
            capture.terminate()
            out, _ = capture.communicate(timeout=10)
            proc.stderr.close()
            self.assertEqual(out.strip(), "", "a frame passed without a policy")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    unittest.main()
