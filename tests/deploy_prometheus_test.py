#!/usr/bin/python3
"""The Prometheus configs pass `promtool check config`: deploy/prometheus/prometheus.yml (compose)
and deploy/prometheus/prometheus-k8s.yml (Kubernetes pod discovery by annotation).

Debian's promtool is built without Kubernetes discovery, so where it rejects kubernetes_sd_configs
the k8s file is checked with that one block swapped for a static target: everything else in it
(relabelling regexes, actions, labels) still goes through promtool.
"""
import tempfile
import unittest

import deploy_testlib as lib

SRC = lib.source_dir()
PROMTOOL = lib.require_tool("promtool")
yaml = lib.import_yaml()
COMPOSE_CONFIG = SRC / "deploy" / "prometheus" / "prometheus.yml"
K8S_CONFIG = SRC / "deploy" / "prometheus" / "prometheus-k8s.yml"


def check_config(path):
    return lib.run([PROMTOOL, "check", "config", path])


class PrometheusConfigTest(unittest.TestCase):
    def test_compose_config_passes_promtool(self):
        result = check_config(COMPOSE_CONFIG)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_compose_config_scrapes_every_role(self):
        config = yaml.safe_load(COMPOSE_CONFIG.read_text())
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        self.assertTrue({"learner", "replay", "actor"} <= set(jobs))
        # Scaled actors are found through DNS, not listed.
        self.assertIn("dns_sd_configs", jobs["actor"])
        self.assertNotIn("static_configs", jobs["actor"])
        # Shard targets carry replay_shard, which the dashboard's legends use, never `shard`
        # (the replay clients' own label).
        for static in jobs["replay"]["static_configs"]:
            self.assertIn("replay_shard", static["labels"])
            self.assertNotIn("shard", static["labels"])

    def test_k8s_config_passes_promtool(self):
        result = check_config(K8S_CONFIG)
        if result.returncode == 0:
            return
        output = result.stdout + result.stderr
        self.assertIn("kubernetes_sd_configs", output,
                      "promtool rejects the file for a reason other than missing k8s discovery:\n"
                      + output)
        config = yaml.safe_load(K8S_CONFIG.read_text())
        for job in config["scrape_configs"]:
            self.assertIn("kubernetes_sd_configs", job)
            del job["kubernetes_sd_configs"]
            job["static_configs"] = [{"targets": ["placeholder:9100"]}]
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump(config, f)
            f.flush()
            result = check_config(f.name)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_k8s_config_keeps_only_annotated_pods_and_names_jobs_by_component(self):
        config = yaml.safe_load(K8S_CONFIG.read_text())
        relabels = config["scrape_configs"][0]["relabel_configs"]
        keep = [r for r in relabels if r.get("action") == "keep"]
        self.assertEqual(keep[0]["source_labels"],
                         ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"])
        targets = {r.get("target_label") for r in relabels}
        self.assertTrue({"__address__", "job", "replay_shard"} <= targets)


if __name__ == "__main__":
    unittest.main(verbosity=2)
