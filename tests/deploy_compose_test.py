#!/usr/bin/python3
"""docker-compose.yml (and deploy/docker/gpu.override.yml) validate with docker-compose 1.29 and
describe a working cluster: shards addressed in order, a scalable actor service, a CPU learner by
default and a GPU one with the override, Prometheus scraping every shard.

Runs /usr/bin/docker-compose with the Python that runs this test (Debian's docker-compose is a
Python script whose modules only /usr/bin/python3 has).
"""
import os
import re
import sys
import unittest

import deploy_testlib as lib

SRC = lib.source_dir()
COMPOSE_FILE = SRC / "docker-compose.yml"
GPU_OVERRIDE = SRC / "deploy" / "docker" / "gpu.override.yml"


def compose_command():
    path = lib.require_tool("docker-compose")
    with open(path, "rb") as f:
        first_line = f.readline()
    if first_line.startswith(b"#!") and b"python" in first_line:
        return [sys.executable, path]
    return [path]


COMPOSE = compose_command()
yaml = lib.import_yaml()


def compose(*args, files=(COMPOSE_FILE,)):
    cmd = list(COMPOSE)
    for f in files:
        cmd += ["-f", f]
    cmd += ["--project-directory", SRC, "--project-name", "dreamfleet-test"]
    return lib.run(cmd + list(args), cwd=SRC, env=lib.clean_env())


_resolved = {}


def resolved_config(files=(COMPOSE_FILE,)):
    """`docker-compose config` output, parsed (each file set resolved once: ~1 s a run)."""
    if files not in _resolved:
        result = compose("config", files=files)
        assert result.returncode == 0, result.stderr
        _resolved[files] = yaml.safe_load(result.stdout)
    return _resolved[files]


def port_targets(service):
    """Container ports a service publishes; compose 1.29 prints "ip:host:container/proto"."""
    targets = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            targets.append(int(port["target"]))
        else:
            targets.append(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return targets


def volumes(service):
    """(type, source, target) of each mount; compose 1.29 prints "source:target[:mode]"."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append((volume["type"], volume.get("source"), volume["target"]))
        else:
            source, target = volume.split(":")[:2]
            kind = "bind" if source.startswith(("/", ".")) else "volume"
            mounts.append((kind, source, target))
    return mounts


def replay_services(config):
    shards = {}
    for name in config["services"]:
        m = re.fullmatch(r"replay-(\d+)", name)
        if m:
            shards[int(m.group(1))] = name
    return [shards[i] for i in sorted(shards)]


class ComposeTest(unittest.TestCase):
    def test_compose_file_is_valid(self):
        result = compose("config", "-q")
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_gpu_override_is_valid(self):
        self.assertIn("learner", resolved_config(files=(COMPOSE_FILE, GPU_OVERRIDE))["services"])

    def test_has_every_service(self):
        services = set(resolved_config()["services"])
        for name in ("replay-0", "replay-1", "learner", "actor", "prometheus", "grafana"):
            self.assertIn(name, services)

    def test_shards_are_numbered_and_addressed_in_order(self):
        config = resolved_config()
        shards = replay_services(config)
        self.assertEqual(shards, [f"replay-{i}" for i in range(len(shards))])
        self.assertGreaterEqual(len(shards), 2)
        for i, name in enumerate(shards):
            service = config["services"][name]
            settings = lib.parse_set_list(service["environment"]["DREAMFLEET_SET"])
            self.assertEqual(int(settings["replay.shards"]), len(shards))
            self.assertEqual(settings["replay.addresses"].split(","),
                             [f"replay-{j}:{7100 + j}" for j in range(len(shards))])
            self.assertEqual(service["command"][0], "replay")
            self.assertEqual(lib.flag_values(service["command"], "--shard-index"), [str(i)])
            # Shard i serves gRPC on 7100+i and metrics on 9100+i; the healthcheck must ask there.
            self.assertIn(f"http://localhost:{9100 + i}/healthz", service["healthcheck"]["test"])
            self.assertEqual(port_targets(service), [7100 + i], f"{name} publishes its gRPC port")
            data = [v for v in volumes(service) if v[2] == "/data/replay"]
            self.assertEqual(len(data), 1, f"{name} keeps its data on a volume")
            self.assertEqual(data[0][0], "volume")

    def test_every_shard_has_its_own_volume(self):
        config = resolved_config()
        sources = [v[1] for name in replay_services(config)
                   for v in volumes(config["services"][name]) if v[2] == "/data/replay"]
        self.assertEqual(len(sources), len(set(sources)))

    def test_actor_service_scales(self):
        actor = resolved_config()["services"]["actor"]
        # --scale needs no fixed name, no published host ports and no per-container settings.
        self.assertNotIn("container_name", actor)
        self.assertNotIn("ports", actor)
        self.assertNotIn("hostname", actor)
        self.assertEqual(actor["command"], ["actor"])
        self.assertNotIn("DREAMFLEET_ACTOR_ID", actor.get("environment", {}))
        for dependency in ("replay-0", "replay-1", "learner"):
            self.assertEqual(actor["depends_on"][dependency]["condition"], "service_healthy")

    def test_every_role_gets_longer_to_stop_than_it_needs(self):
        # Docker's default stop timeout is 10 s; each role's own deadline on SIGTERM must fit in
        # its grace period with room to spare: the actor flushes for up to 10 s
        # (actor/actor_loop.cc), the learner checkpoints, a shard writes its last checkpoint.
        def seconds(text):
            match = re.fullmatch(r"(\d+)s", str(text))
            self.assertIsNotNone(match, text)
            return int(match.group(1))
        services = resolved_config()["services"]
        minimum = {"actor": 20, "learner": 30}
        for name in ["actor", "learner"] + replay_services(resolved_config()):
            self.assertIn("stop_grace_period", services[name], name)
            self.assertGreaterEqual(seconds(services[name]["stop_grace_period"]),
                                    minimum.get(name, 20), name)

    def test_learner_is_cpu_by_default_and_cuda_with_the_override(self):
        learner = resolved_config()["services"]["learner"]
        self.assertEqual(learner["environment"]["DREAMFLEET_LEARNER_DEVICE"], "cpu")
        self.assertNotIn("deploy", learner)
        self.assertIn(("volume", "learner-run", "/data/run"), volumes(learner))

        gpu = resolved_config(files=(COMPOSE_FILE, GPU_OVERRIDE))["services"]["learner"]
        self.assertEqual(gpu["environment"]["DREAMFLEET_LEARNER_DEVICE"], "cuda")
        devices = gpu["deploy"]["resources"]["reservations"]["devices"]
        self.assertEqual(len(devices), 1)
        self.assertIn("gpu", devices[0]["capabilities"])
        self.assertEqual(devices[0]["count"], 1)
        # The override changes only the learner.
        base = resolved_config()["services"]
        with_gpu = resolved_config(files=(COMPOSE_FILE, GPU_OVERRIDE))["services"]
        for name in base:
            if name != "learner":
                # Merging reorders volume lists; compare them as sets.
                self.assertEqual(sorted(volumes(base[name])), sorted(volumes(with_gpu[name])), name)
                self.assertEqual({k: v for k, v in base[name].items() if k != "volumes"},
                                 {k: v for k, v in with_gpu[name].items() if k != "volumes"}, name)

    def test_prometheus_scrapes_every_shard_learner_and_actors(self):
        config = resolved_config()
        prometheus = yaml.safe_load((SRC / "deploy/prometheus/prometheus.yml").read_text())
        jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
        replay_targets = [t for sc in jobs["replay"]["static_configs"] for t in sc["targets"]]
        self.assertEqual(replay_targets,
                         [f"{name}:{9100 + i}" for i, name in enumerate(replay_services(config))])
        self.assertEqual(jobs["learner"]["static_configs"][0]["targets"], ["learner:9000"])
        dns = jobs["actor"]["dns_sd_configs"][0]
        self.assertEqual((dns["names"], dns["type"], dns["port"]), (["actor"], "A", 9200))

    def test_bind_mounts_exist(self):
        config = resolved_config()
        for name, service in config["services"].items():
            for kind, source, _ in volumes(service):
                if kind == "bind":
                    self.assertTrue(os.path.exists(source), f"{name} mounts missing {source}")

    def test_images_build_from_the_dockerfile(self):
        config = resolved_config()
        for name in ["learner", "actor"] + replay_services(config):
            build = config["services"][name]["build"]
            self.assertEqual(build["dockerfile"], "deploy/docker/Dockerfile")
            self.assertTrue((SRC / build["dockerfile"]).is_file())




if __name__ == "__main__":
    unittest.main(verbosity=2)
