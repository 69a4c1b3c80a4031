#!/usr/bin/python3
"""Every setting the deployment files hand to the binaries is a valid dreamfleet config: for each
role of docker-compose.yml and of deploy/k8s, the config file, DREAMFLEET_SET, the service's own
--set flags and the ones the entrypoint derives (learner device, pinned replay ports) go through the
real `dreamfleet config print`, which must accept them, and the merged config must say what the
deployment means (shard addresses in order, listen hosts, device).

Registered only when the build has the `dreamfleet` CLI target.
"""
import os
import pathlib
import unittest

import deploy_testlib as lib

SRC = lib.source_dir()
BIN = pathlib.Path(os.environ.get("DREAMFLEET_BIN_DIR", SRC / "build" / "bin"))
CLI = BIN / "dreamfleet"
K8S_BASE = SRC / "deploy" / "k8s" / "base"
K8S_CONFIG = K8S_BASE / "dreamfleet.yaml"
yaml = lib.import_yaml()


def config_print(config_file=None, overrides=()):
    cmd = [CLI, "config", "print"]
    if config_file:
        cmd += ["--config", config_file]
    for override in overrides:
        cmd += ["--set", override]
    result = lib.run(cmd, env=lib.clean_env())
    return result


# What the entrypoint adds for an actor without --actor-index: seeds from the CRC32 of its id (the
# largest a CRC32 can be, to check the range).
ACTOR_SEEDS = ["run.seed=4294967295", "env.base_seed=4294967295"]


def compose_roles():
    """{service: [overrides in the order the entrypoint passes them]} for each dreamfleet service."""
    compose = yaml.safe_load((SRC / "docker-compose.yml").read_text())
    roles = {}
    for name, service in compose["services"].items():
        command = service.get("command") or []
        if not command or command[0] not in ("replay", "learner", "actor"):
            continue
        environment = service.get("environment", {})
        overrides = environment.get("DREAMFLEET_SET", "").split()
        overrides += lib.flag_values(command, "--set")
        if command[0] == "learner" and environment.get("DREAMFLEET_LEARNER_DEVICE"):
            overrides.append(f"learner.device={environment['DREAMFLEET_LEARNER_DEVICE']}")
        if command[0] == "actor":
            overrides += ACTOR_SEEDS
        roles[name] = (command[0], overrides)
    return roles


def k8s_roles():
    roles = {}
    for manifest in ("replay.yaml", "learner.yaml", "actor.yaml"):
        for doc in yaml.safe_load_all((K8S_BASE / manifest).read_text()):
            if not doc or doc["kind"] not in ("Deployment", "StatefulSet"):
                continue
            container = doc["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            role = container["args"][0]
            overrides = lib.flag_values(container["args"], "--set")
            if role == "learner" and env.get("DREAMFLEET_LEARNER_DEVICE"):
                overrides.append(f"learner.device={env['DREAMFLEET_LEARNER_DEVICE']}")
            if role == "actor":
                overrides += ACTOR_SEEDS
            if role == "replay":
                # What the entrypoint passes to shard 1 (pod replay-1).
                overrides.append(f"replay.port={int(env['DREAMFLEET_REPLAY_PORT']) - 1}")
                overrides.append(f"replay.metrics_port={int(env['DREAMFLEET_REPLAY_METRICS_PORT']) - 1}")
            roles[doc["metadata"]["name"]] = (role, overrides)
    return roles


class DeployConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not CLI.exists():
            raise AssertionError(f"{CLI} is missing: build the `dreamfleet` target first")

    def merged(self, config_file, overrides):
        result = config_print(config_file, overrides)
        self.assertEqual(result.returncode, 0,
                         f"dreamfleet config print rejects {config_file} {overrides}:\n{result.stderr}")
        return yaml.safe_load(result.stdout)

    def test_cli_rejects_an_unknown_key(self):
        # The check below could not fail if unknown keys passed.
        self.assertNotEqual(config_print(overrides=["replay.no_such_key=1"]).returncode, 0)

    def test_compose_settings_are_valid_and_address_every_shard(self):
        roles = compose_roles()
        self.assertEqual(sorted(r for r, _ in roles.values()),
                         ["actor", "learner", "replay", "replay"])
        for name, (role, overrides) in roles.items():
            config = self.merged(None, overrides)
            shards = config["replay"]["shards"]
            self.assertEqual(config["replay"]["addresses"].split(","),
                             [f"replay-{i}:{7100 + i}" for i in range(shards)], name)
            self.assertEqual(config["learner"]["host"], "0.0.0.0" if role == "learner" else "learner")
            self.assertEqual(config["replay"]["host"], "0.0.0.0", name)
            if role == "learner":
                self.assertEqual(config["learner"]["device"], "cpu")
                self.assertEqual(config["run"]["dir"], "/data/run")
            if role == "replay":
                self.assertEqual(config["replay"]["data_dir"], "/data/replay")

    def test_k8s_settings_are_valid_and_address_every_shard(self):
        roles = k8s_roles()
        self.assertEqual(sorted(r for r, _ in roles.values()), ["actor", "learner", "replay"])
        for name, (role, overrides) in roles.items():
            config = self.merged(K8S_CONFIG, overrides)
            shards = config["replay"]["shards"]
            self.assertEqual(config["replay"]["addresses"].split(","),
                             [f"replay-{i}.replay:7100" for i in range(shards)], name)
            if role == "learner":
                self.assertEqual(config["learner"]["device"], "cuda")
                self.assertEqual(config["learner"]["host"], "0.0.0.0")
            if role == "replay":
                # Shard 1 with base 7099 listens on 7099 + 1 = 7100, as every shard pod.
                self.assertEqual(config["replay"]["port"] + 1, 7100)
                self.assertEqual(config["replay"]["metrics_port"] + 1, 9100)


if __name__ == "__main__":
    unittest.main(verbosity=2)
