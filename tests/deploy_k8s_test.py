#!/usr/bin/python3
"""deploy/k8s renders with `kubectl kustomize` (whichever kubectl is on PATH) into a working
topology: a replay StatefulSet with per-shard volumes behind a headless Service whose stable names
the config's replay.addresses lists in shard order, a GPU learner with its Service, actors spread
across nodes, scrape annotations on every pod, and the config ConfigMap mounted everywhere. The CPU
overlay renders the same without any GPU request.
"""
import unittest

import deploy_testlib as lib

SRC = lib.source_dir()
KUBECTL = lib.require_tool("kubectl")
yaml = lib.import_yaml()
NAMESPACE = "dreamfleet"
_rendered = {}


def render(path):
    if path not in _rendered:
        result = lib.run([KUBECTL, "kustomize", SRC / path])
        assert result.returncode == 0, result.stderr
        _rendered[path] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return _rendered[path]


def find(docs, kind, name):
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def config_map(docs):
    maps = [d for d in docs if d["kind"] == "ConfigMap"
            and d["metadata"]["name"].startswith("dreamfleet-config")]
    assert len(maps) == 1
    return maps[0]


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


class KustomizeTest(unittest.TestCase):
    def setUp(self):
        self.docs = render("deploy/k8s")

    def test_renders_every_workload(self):
        kinds = {(d["kind"], d["metadata"]["name"]) for d in self.docs}
        for expected in [("StatefulSet", "replay"), ("Service", "replay"),
                         ("Deployment", "learner"), ("Service", "learner"),
                         ("Deployment", "actor"), ("Namespace", NAMESPACE)]:
            self.assertIn(expected, kinds)
        for d in self.docs:
            if d["kind"] != "Namespace":
                self.assertEqual(d["metadata"].get("namespace"), NAMESPACE, d["metadata"]["name"])

    def test_replay_statefulset_has_a_volume_per_shard_and_a_headless_service(self):
        statefulset = find(self.docs, "StatefulSet", "replay")
        service = find(self.docs, "Service", "replay")
        self.assertEqual(service["spec"]["clusterIP"], "None")
        self.assertEqual(statefulset["spec"]["serviceName"], "replay")
        pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(pod_labels | service["spec"]["selector"], pod_labels)
        claims = [c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]]
        container = pod_spec(statefulset)["containers"][0]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        self.assertIn("data", claims)
        self.assertEqual(mounts["data"], "/data/replay")
        self.assertEqual(container["args"][0], "replay")
        # The shard index comes from the pod name, not from a flag shared by every pod.
        self.assertEqual(lib.flag_values(container["args"], "--shard-index"), [])

    def test_config_addresses_every_shard_by_its_stable_name(self):
        statefulset = find(self.docs, "StatefulSet", "replay")
        config = yaml.safe_load(config_map(self.docs)["data"]["dreamfleet.yaml"])
        replicas = statefulset["spec"]["replicas"]
        self.assertEqual(config["replay"]["shards"], replicas)
        container = pod_spec(statefulset)["containers"][0]
        port = int(env_of(container)["DREAMFLEET_REPLAY_PORT"])
        self.assertEqual(config["replay"]["addresses"].split(","),
                         [f"replay-{i}.replay:{port}" for i in range(replicas)])
        declared = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertEqual(declared["grpc"], port)
        self.assertEqual(declared["metrics"], int(env_of(container)["DREAMFLEET_REPLAY_METRICS_PORT"]))

    def test_learner_requests_one_gpu(self):
        learner = find(self.docs, "Deployment", "learner")
        container = pod_spec(learner)["containers"][0]
        self.assertEqual(str(container["resources"]["limits"]["nvidia.com/gpu"]), "1")
        self.assertEqual(str(container["resources"]["requests"]["nvidia.com/gpu"]), "1")
        self.assertEqual(env_of(container)["DREAMFLEET_LEARNER_DEVICE"], "cuda")
        self.assertEqual(learner["spec"]["replicas"], 1)
        self.assertEqual(learner["spec"]["strategy"]["type"], "Recreate")
        service = find(self.docs, "Service", "learner")
        config = yaml.safe_load(config_map(self.docs)["data"]["dreamfleet.yaml"])
        self.assertEqual(config["learner"]["host"], "learner")
        self.assertIn(config["learner"]["port"], [p["port"] for p in service["spec"]["ports"]])

    def test_actors_spread_across_nodes(self):
        actor = find(self.docs, "Deployment", "actor")
        spec = pod_spec(actor)
        preferred = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        self.assertEqual(preferred[0]["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname")
        self.assertEqual(preferred[0]["podAffinityTerm"]["labelSelector"]["matchLabels"],
                         actor["spec"]["selector"]["matchLabels"])
        self.assertGreater(actor["spec"]["replicas"], 1)
        container = spec["containers"][0]
        self.assertEqual(container["args"], ["actor"])  # actor id = pod name (hostname)

    def test_every_pod_is_scraped_on_its_metrics_port_and_mounts_the_config(self):
        name = config_map(self.docs)["metadata"]["name"]
        workloads = [d for d in self.docs if d["kind"] in ("Deployment", "StatefulSet")]
        self.assertEqual(len(workloads), 3)
        for workload in workloads:
            annotations = workload["spec"]["template"]["metadata"]["annotations"]
            self.assertEqual(annotations["prometheus.io/scrape"], "true")
            self.assertEqual(annotations["prometheus.io/path"], "/metrics")
            container = pod_spec(workload)["containers"][0]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            self.assertEqual(int(annotations["prometheus.io/port"]), ports["metrics"])
            for probe in ("readinessProbe", "livenessProbe"):
                self.assertIn(probe, container)
            # The component label is what prometheus-k8s.yml turns into the job label.
            labels = workload["spec"]["template"]["metadata"]["labels"]
            self.assertEqual(labels["app.kubernetes.io/component"], container["args"][0])
            volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
            self.assertEqual(volumes["config"]["configMap"]["name"], name)
            self.assertEqual(env_of(container)["DREAMFLEET_CONFIG"], "/etc/dreamfleet/dreamfleet.yaml")
            self.assertTrue(pod_spec(workload)["securityContext"]["runAsNonRoot"])


class CpuOverlayTest(unittest.TestCase):
    def test_cpu_overlay_has_no_gpu(self):
        docs = render("deploy/k8s/overlays/cpu")
        text = yaml.safe_dump_all(docs)
        self.assertNotIn("nvidia.com/gpu", text)
        learner = find(docs, "Deployment", "learner")
        container = pod_spec(learner)["containers"][0]
        self.assertEqual(env_of(container)["DREAMFLEET_LEARNER_DEVICE"], "cpu")
        self.assertNotIn("tolerations", pod_spec(learner))
        self.assertEqual(len([d for d in docs if d["kind"] == "StatefulSet"]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
