#!/usr/bin/python3
"""deploy/docker/entrypoint.sh turns a container's environment into the right flags: it runs the
real script with /bin/sh against stub dreamfleet-<role> binaries (and a stub `hostname`) in a temp
dir, and checks the exact argv each stub received.
"""
import os
import pathlib
import tempfile
import unittest

import deploy_testlib as lib

SRC = lib.source_dir()
ENTRYPOINT = SRC / "deploy" / "docker" / "entrypoint.sh"
STUB = """#!/bin/sh
printf '%s\\n' "$(basename "$0")" "$@"
exit "${STUB_EXIT:-0}"
"""


def posix_cksum(data):
    """POSIX cksum's CRC (polynomial 0x04C11DB7, MSB first, length appended, complemented)."""
    crc = 0

    def feed(byte):
        nonlocal crc
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF

    for byte in data:
        feed(byte)
    length = len(data)
    while length:
        feed(length & 0xFF)
        length >>= 8
    return crc ^ 0xFFFFFFFF


def seeds(actor_id):
    seed = posix_cksum(actor_id.encode())
    return ["--set", f"run.seed={seed}", "--set", f"env.base_seed={seed}"]


class EntrypointTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.bin = pathlib.Path(self.tmp.name) / "bin"
        self.bin.mkdir()
        for name in ("dreamfleet-replay", "dreamfleet-learner", "dreamfleet-actor", "dreamfleet",
                     "dreamfleet-certs"):
            stub = self.bin / name
            stub.write_text(STUB)
            stub.chmod(0o755)
        self.hostname = "vm"
        fake_hostname = self.bin / "hostname"
        fake_hostname.write_text('#!/bin/sh\necho "$FAKE_HOSTNAME"\n')
        fake_hostname.chmod(0o755)

    def run_entrypoint(self, *args, **env):
        environment = lib.clean_env(DREAMFLEET_BIN_DIR=str(self.bin),
                                    FAKE_HOSTNAME=self.hostname,
                                    PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}")
        environment.update(env)
        return lib.run(["/bin/sh", ENTRYPOINT, *args], env=environment)

    def argv(self, *args, **env):
        result = self.run_entrypoint(*args, **env)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.splitlines()

    def test_actor_id_defaults_to_the_hostname_and_seeds_derive_from_it(self):
        self.hostname = "actor-5d8f7c9b4-x2k9p"
        self.assertEqual(self.argv("actor"), ["dreamfleet-actor"] + seeds(self.hostname)
                         + ["--actor-id", "actor-5d8f7c9b4-x2k9p"])
        self.assertEqual(posix_cksum(b"foo"), 2470157969)  # `printf foo | cksum`

    def test_replicas_get_different_seeds(self):
        self.hostname = "3f2a9c1b7d81"
        first = self.argv("actor")
        self.hostname = "3f2a9c1b7d82"
        self.assertNotEqual(first[:5], self.argv("actor")[:5])

    def test_actor_id_from_environment_or_flag_wins(self):
        self.assertEqual(self.argv("actor", DREAMFLEET_ACTOR_ID="a7"),
                         ["dreamfleet-actor"] + seeds("a7") + ["--actor-id", "a7"])
        self.assertEqual(self.argv("actor", "--actor-id=x"),
                         ["dreamfleet-actor"] + seeds("x") + ["--actor-id=x"])
        self.assertEqual(self.argv("actor", "--actor-id", "y"),
                         ["dreamfleet-actor"] + seeds("y") + ["--actor-id", "y"])

    def test_seeds_come_after_shared_settings_and_before_the_services_flags(self):
        self.assertEqual(
            self.argv("actor", "--set", "run.seed=1", DREAMFLEET_SET="run.seed=9",
                      DREAMFLEET_ACTOR_ID="a"),
            ["dreamfleet-actor", "--set", "run.seed=9"] + seeds("a")
            + ["--set", "run.seed=1", "--actor-id", "a"])
        self.assertEqual(self.argv("actor", DREAMFLEET_ACTOR_SEED="5", DREAMFLEET_ACTOR_ID="a"),
                         ["dreamfleet-actor", "--set", "run.seed=5", "--set", "env.base_seed=5",
                          "--actor-id", "a"])

    def test_an_explicit_actor_index_keeps_the_configured_seeds(self):
        self.assertEqual(self.argv("actor", "--actor-index", "3", "--actor-id", "a"),
                         ["dreamfleet-actor", "--actor-index", "3", "--actor-id", "a"])

    def test_shared_overrides_come_before_the_services_flags_and_config_first(self):
        self.assertEqual(
            self.argv("replay", "--shard-index", "1", "--set", "replay.host=0.0.0.0",
                      DREAMFLEET_CONFIG="/etc/dreamfleet/x.yaml",
                      DREAMFLEET_SET="replay.shards=2\n  replay.addresses=a:1,b:2 replay.host=replay"),
            ["dreamfleet-replay", "--config", "/etc/dreamfleet/x.yaml",
             "--set", "replay.shards=2", "--set", "replay.addresses=a:1,b:2",
             "--set", "replay.host=replay",
             "--shard-index", "1", "--set", "replay.host=0.0.0.0"])

    def test_empty_config_means_the_embedded_default(self):
        self.assertEqual(self.argv("learner", DREAMFLEET_CONFIG=""), ["dreamfleet-learner"])

    def test_overrides_are_not_globbed(self):
        (pathlib.Path(self.tmp.name) / "match.x").write_text("")
        result = lib.run(["/bin/sh", ENTRYPOINT, "learner"], cwd=self.tmp.name,
                         env=lib.clean_env(DREAMFLEET_BIN_DIR=str(self.bin), DREAMFLEET_SET="run.name=*.x"))
        self.assertEqual(result.stdout.splitlines(), ["dreamfleet-learner", "--set", "run.name=*.x"])

    def test_learner_device_is_applied_last(self):
        self.assertEqual(
            self.argv("learner", "--set", "learner.device=cpu", DREAMFLEET_LEARNER_DEVICE="cuda"),
            ["dreamfleet-learner", "--set", "learner.device=cpu", "--set", "learner.device=cuda"])

    def test_shard_index_from_a_statefulset_pod_name(self):
        self.hostname = "replay-12"
        self.assertEqual(self.argv("replay"), ["dreamfleet-replay", "--shard-index", "12"])
        self.assertEqual(self.argv("replay", DREAMFLEET_SHARD_INDEX="3"),
                         ["dreamfleet-replay", "--shard-index", "3"])

    def test_fixed_ports_put_every_shard_on_the_same_ports(self):
        self.hostname = "replay-3"
        self.assertEqual(
            self.argv("replay", DREAMFLEET_REPLAY_PORT="7100", DREAMFLEET_REPLAY_METRICS_PORT="9100"),
            ["dreamfleet-replay", "--shard-index", "3",
             "--set", "replay.port=7097", "--set", "replay.metrics_port=9097"])

    def test_refuses_what_it_cannot_resolve(self):
        cases = [
            (("replay",), {}),  # hostname "vm": no index
            (("replay",), {"DREAMFLEET_SHARD_INDEX": "x1"}),
            (("replay", "--shard-index", "0"), {"DREAMFLEET_REPLAY_PORT": "7100"}),
            (("replay",), {"DREAMFLEET_SHARD_INDEX": "2", "DREAMFLEET_REPLAY_PORT": "1"}),
            (("learner",), {"DREAMFLEET_SET": "learner.device"}),
        ]
        for args, env in cases:
            result = self.run_entrypoint(*args, **env)
            self.assertEqual(result.returncode, 2, (args, env, result.stdout))
            self.assertIn("dreamfleet-entrypoint:", result.stderr)
            self.assertEqual(result.stdout, "", "the binary must not start")

    def test_exit_status_of_the_binary_is_the_containers(self):
        result = self.run_entrypoint("learner", STUB_EXIT="3")
        self.assertEqual(result.returncode, 3)

    def test_status_runs_the_cli_with_the_clusters_settings(self):
        self.assertEqual(
            self.argv("status", "--json", DREAMFLEET_CONFIG="/etc/dreamfleet/x.yaml",
                      DREAMFLEET_SET="replay.shards=2 actor.metrics_addresses=actor:9200"),
            ["dreamfleet", "status", "--config", "/etc/dreamfleet/x.yaml",
             "--set", "replay.shards=2", "--set", "actor.metrics_addresses=actor:9200", "--json"])

    def test_certs_runs_the_certificate_script_without_cluster_settings(self):
        self.assertEqual(
            self.argv("certs", "/data/certs", "replay-0", "learner",
                      DREAMFLEET_SET="replay.shards=2"),
            ["dreamfleet-certs", "/data/certs", "replay-0", "learner"])

    def test_other_commands_run_as_given(self):
        self.assertEqual(self.argv("echo", "dreamfleet", "status"), ["dreamfleet status"])
        result = self.run_entrypoint("--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn("DREAMFLEET_SET", result.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
