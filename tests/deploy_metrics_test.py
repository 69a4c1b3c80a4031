#!/usr/bin/python3
"""The deployment files against the real binaries.

1. The metric names the dashboard may use (deploy/grafana/exported_metrics.txt) are what the
   binaries serve: starts a replay shard on free ports (port 0, read back from its "metrics on
   HOST:PORT" line), fetches /metrics and runs deploy/grafana/check_metrics.py's check on it
   (unlabelled listed metrics must be served with their listed type from the start; labelled ones
   may appear only with their first series); and every listed metric is registered in the sources
   with its listed type.
2. The entrypoint, run as a Kubernetes replay pod (config from deploy/k8s, shard 1, pinned ports),
   starts a real shard that listens and serves /healthz on exactly the pinned ports.

DEPLOY_METRICS_ROLES (set by CMake) names the role binaries this build has, e.g. "replay".
"""
import os
import pathlib
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

import deploy_testlib as lib

SRC = lib.source_dir()
BIN = pathlib.Path(os.environ.get("DREAMFLEET_BIN_DIR", SRC / "build" / "bin"))
ROLES = [r for r in os.environ.get("DEPLOY_METRICS_ROLES", "").split(",") if r]
START_TIMEOUT_S = 120
sys.path.insert(0, str(SRC / "deploy" / "grafana"))
import check_metrics  # noqa: E402


def role_argv(role, tmp):
    return [str(BIN / f"dreamfleet-{role}"), "--shard-index", "0", "--set", f"run.dir={tmp}",
            "--set", "replay.port=0", "--set", "replay.metrics_port=0"]


def free_port():
    """A port the kernel just handed out and released (the binary binds it right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A started binary whose stdout lines a reader thread hands over through a queue."""

    def __init__(self, argv, stderr_path, env=None):
        self.stderr = open(stderr_path, "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     env=env)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)  # EOF

    def wait_for(self, prefix):
        while True:
            try:
                line = self.lines.get(timeout=START_TIMEOUT_S)
            except queue.Empty:
                return None
            if line is None:
                return None
            if line.startswith(prefix):
                return line[len(prefix):]

    def stop(self):
        """SIGTERM (SIGKILL after 60 s); returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.stderr.closed:
            self.proc.stdout.close()
            self.stderr.close()
        return self.proc.returncode


class ServedMetricsTest(unittest.TestCase):
    def served(self, role):
        tmp = tempfile.mkdtemp(prefix=f"deploy_metrics_{role}_")
        self.addCleanup(shutil.rmtree, tmp, True)  # runs after process.stop (cleanups are LIFO)
        stderr_path = os.path.join(tmp, "stderr.log")
        process = Process(role_argv(role, tmp), stderr_path)
        self.addCleanup(process.stop)
        address = process.wait_for("metrics on ")
        if address is None:
            process.stop()
            self.fail(f"dreamfleet-{role} never printed 'metrics on HOST:PORT':\n"
                      + pathlib.Path(stderr_path).read_text()[-3000:])
        port = int(address.rsplit(":", 1)[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            return response.read().decode()

    def check_role(self, role, expected_roles):
        if role not in ROLES:
            self.skipTest(f"this build has no dreamfleet-{role}")
        text = self.served(role)
        errors, warnings = check_metrics.check(check_metrics.load_list(), [text], expected_roles)
        for warning in warnings:
            print(f"dreamfleet-{role}: warning: {warning}")
        self.assertEqual(errors, [], f"dreamfleet-{role} /metrics vs exported_metrics.txt")

    def test_replay_shard_serves_the_listed_replay_metrics(self):
        self.check_role("replay", ["replay"])

    def test_the_list_and_the_sources_name_the_same_metrics_with_the_same_types(self):
        # Actors and learners register most families only once they run against live peers, so
        # their /metrics is checked in the full-system tests; here the contract is checked where
        # the names are defined: Counter("name"...), Gauge("name"...), Histogram("name"...).
        sources = "\n".join(
            p.read_text(errors="replace")
            for folder in ("actor", "envs", "dreamer", "learner", "broadcast", "replay_server",
                           "services")
            for p in (SRC / folder).glob("**/*.cc") if not p.name.endswith("_test.cc"))
        registered = {}
        for kind, name in re.findall(r"\b(Counter|Gauge|Histogram)\(\s*\"(dreamfleet_\w+)\"", sources):
            registered.setdefault(name, set()).add(kind.lower())
        listed = check_metrics.load_list()
        for name, (kind, _) in listed.items():
            self.assertIn(name, registered, f"{name} is registered nowhere in the sources")
            self.assertEqual(registered[name], {kind}, name)
        # And the other way: a metric the sources register is listed, so the dashboard and the
        # README's pointer to the list can name it.
        unlisted = sorted(set(registered) - set(listed))
        self.assertEqual(unlisted, [], f"registered in the sources but not in {check_metrics.LIST}")

    def test_entrypoint_pins_a_k8s_shard_to_the_annotated_ports(self):
        if "replay" not in ROLES:
            self.skipTest("this build has no dreamfleet-replay")
        tmp = tempfile.mkdtemp(prefix="deploy_entrypoint_replay_")
        self.addCleanup(shutil.rmtree, tmp, True)
        grpc_port, metrics_port = free_port(), free_port()
        env = lib.clean_env(DREAMFLEET_BIN_DIR=str(BIN),
                            DREAMFLEET_CONFIG=str(SRC / "deploy/k8s/base/dreamfleet.yaml"),
                            DREAMFLEET_SHARD_INDEX="1",
                            DREAMFLEET_REPLAY_PORT=str(grpc_port),
                            DREAMFLEET_REPLAY_METRICS_PORT=str(metrics_port))
        # The Secret the pods mount at /etc/dreamfleet-certs, made by the same script, here.
        certs = os.path.join(tmp, "certs")
        made = lib.run(["/bin/sh", str(SRC / "deploy/certs.sh"), certs, "replay-1.replay"])
        self.assertEqual(made.returncode, 0, made.stderr)
        config = lib.import_yaml().safe_load((SRC / "deploy/k8s/base/dreamfleet.yaml").read_text())
        secret_sets = []
        for key, path in config["security"].items():
            if isinstance(path, str) and path.startswith("/etc/dreamfleet-certs/"):
                secret_sets += ["--set", f"security.{key}={certs}/{os.path.basename(path)}"]
        self.assertEqual(len(secret_sets), 12, "the k8s config names six files of the Secret")
        argv = ["/bin/sh", str(SRC / "deploy/docker/entrypoint.sh"), "replay",
                "--set", f"replay.data_dir={tmp}/data", "--set", f"run.dir={tmp}", *secret_sets]
        process = Process(argv, os.path.join(tmp, "stderr.log"), env=env)
        self.addCleanup(process.stop)
        listening = process.wait_for("listening on ")
        self.assertIsNotNone(listening, pathlib.Path(tmp, "stderr.log").read_text()[-3000:])
        self.assertEqual(int(listening.rsplit(":", 1)[1]), grpc_port)
        self.assertEqual(int(process.wait_for("metrics on ").rsplit(":", 1)[1]), metrics_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=30) as r:
            self.assertEqual(r.status, 200)
        self.assertEqual(process.stop(), 0, "SIGTERM through the entrypoint is a clean stop")

    def test_check_finds_missing_and_mistyped_metrics(self):
        listed = {"dreamfleet_replay_items": ("gauge", []),
                  "dreamfleet_replay_size_steps": ("gauge", []),
                  "dreamfleet_replay_rejected_total": ("counter", ["reason"])}
        text = "# TYPE dreamfleet_replay_items counter\ndreamfleet_replay_items 1\n"
        errors, warnings = check_metrics.check(listed, [text], ["replay"])
        self.assertEqual(len(errors), 2)  # items mistyped, size_steps missing
        self.assertEqual(len(warnings), 1)  # rejected_total: labelled, not yet served


if __name__ == "__main__":
    unittest.main(verbosity=2)
