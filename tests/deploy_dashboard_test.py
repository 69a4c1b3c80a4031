#!/usr/bin/python3
"""The Grafana dashboard (deploy/grafana/dashboards/dreamfleet.json) is well formed, up to date
with its generator, and every panel query names only metrics of deploy/grafana/exported_metrics.txt,
used as their types allow (histograms through _bucket/_sum/_count, rate() only over counters and
histogram series). With promtool, every query is also parsed by Prometheus and evaluated against
synthetic series of the listed metrics, and must return data.
"""
import json
import re
import tempfile
import unittest
import pathlib
import shutil
import sys

import deploy_testlib as lib

SRC = lib.source_dir()
GRAFANA = SRC / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "dreamfleet.json"
METRICS_FILE = GRAFANA / "exported_metrics.txt"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "dreamfleet.yml"
yaml = lib.import_yaml()

# PromQL words that are not metric names.
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "count_over_time", "delta", "deriv", "exp", "floor", "histogram_quantile",
    "idelta", "increase", "irate", "label_replace", "last_over_time", "ln", "log2", "log10",
    "max_over_time", "min_over_time", "predict_linear", "quantile_over_time", "rate", "resets",
    "round", "scalar", "sort", "sort_desc", "sqrt", "sum_over_time", "time", "timestamp", "vector",
}
AGGREGATIONS = {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk",
                "quantile", "count_values", "group"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# What the issue asks the dashboard to show, by the metrics that show it.
REQUIRED = {
    "return": {"dreamfleet_actor_episode_return", "dreamfleet_learner_return"},
    "success rate": {"dreamfleet_actor_success_rate"},
    "updates": {"dreamfleet_learner_updates_total"},
    "losses": {"dreamfleet_learner_loss"},
    "actor throughput": {"dreamfleet_actor_env_steps_total", "dreamfleet_actor_env_steps_per_second"},
    "replay size": {"dreamfleet_replay_size_steps"},
    "limiter waits": {"dreamfleet_replay_limiter_wait_seconds_total"},
    "learner speed": {"dreamfleet_learner_updates_per_second"},
    "update seconds": {"dreamfleet_learner_update_seconds"},
    "data stalls": {"dreamfleet_learner_data_wait_fraction"},
    "weight lag": {"dreamfleet_actor_weights_lag_versions"},
}


def load_metrics():
    """{name: (type, [labels])} from exported_metrics.txt."""
    metrics = {}
    for number, line in enumerate(METRICS_FILE.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        assert len(fields) >= 2, f"{METRICS_FILE}:{number}: expected NAME TYPE [LABEL...]"
        assert fields[0] not in metrics, f"{METRICS_FILE}:{number}: {fields[0]} listed twice"
        metrics[fields[0]] = (fields[1], fields[2:])
    return metrics


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def query_panels(dashboard):
    return [p for p in panels(dashboard) if p["type"] != "row"]


def strip_expr(expr):
    """expr without string literals, label matchers, ranges, grouping label lists, Grafana
    variables and numbers: what is left are function, keyword and metric names."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1 ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    expr = re.sub(r"\b\d+(\.\d+)?([eE][-+]?\d+)?\b", " ", expr)
    return expr


def metric_uses(expr):
    """[(identifier, enclosing function or None)] for each metric-like identifier in expr."""
    stripped = strip_expr(expr)
    uses = []
    stack = []  # function name (or None) per open parenthesis
    last_word = None
    for token in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*|\(|\)", stripped):
        text = token.group(0)
        if text == "(":
            stack.append(last_word)
            last_word = None
        elif text == ")":
            stack.pop()
            last_word = None
        else:
            last_word = text
            lowered = text.lower()
            if lowered in FUNCTIONS or lowered in AGGREGATIONS or lowered in KEYWORDS:
                continue
            enclosing = next((f for f in reversed(stack) if f), None)
            uses.append((text, enclosing))
    return uses


def resolve(name, metrics):
    """(listed metric, type, suffix) for a series name, or None if it names no listed metric."""
    if name in metrics:
        return name, metrics[name][0], ""
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and metrics.get(base, ("",))[0] == "histogram":
            return base, "histogram", suffix
    return None


class ExportedMetricsTest(unittest.TestCase):
    def test_list_is_well_formed(self):
        metrics = load_metrics()
        self.assertGreater(len(metrics), 30)
        for name, (kind, labels) in metrics.items():
            self.assertRegex(name, r"^dreamfleet_(replay|actor|learner)_[a-z0-9_]+$")
            self.assertIn(kind, ("counter", "gauge", "histogram"), name)
            self.assertEqual(name.endswith("_total"), kind == "counter", name)
            for label in labels:
                self.assertRegex(label, r"^[a-z_]+$")


class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dashboard = json.loads(DASHBOARD.read_text())
        cls.metrics = load_metrics()

    def test_json_is_what_the_generator_writes(self):
        result = lib.run([sys.executable, GRAFANA / "make_dashboard.py", "--check"])
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_panels_have_unique_ids_queries_and_the_provisioned_datasource(self):
        datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
        ids = [p["id"] for p in panels(self.dashboard)]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(self.dashboard["uid"], "dreamfleet")
        for panel in query_panels(self.dashboard):
            self.assertTrue(panel["targets"], panel["title"])
            self.assertEqual(panel["datasource"]["uid"], datasource["uid"], panel["title"])
            self.assertEqual(panel["datasource"]["type"], datasource["type"])
            ref_ids = [t["refId"] for t in panel["targets"]]
            self.assertEqual(len(ref_ids), len(set(ref_ids)), panel["title"])
            for t in panel["targets"]:
                self.assertEqual(t["datasource"]["uid"], datasource["uid"], panel["title"])
                self.assertTrue(t["expr"].strip(), panel["title"])

    def test_panels_fit_the_grid_without_overlapping(self):
        boxes = []
        for panel in panels(self.dashboard):
            g = panel["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, panel["title"])
            for other_title, o in boxes:
                overlap = (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"]
                           and g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"])
                self.assertFalse(overlap, f"{panel['title']} overlaps {other_title}")
            boxes.append((panel["title"], g))

    def test_queries_name_only_exported_metrics_as_their_types_allow(self):
        for panel in query_panels(self.dashboard):
            for t in panel["targets"]:
                uses = metric_uses(t["expr"])
                self.assertTrue(uses, f"{panel['title']}: no metric in {t['expr']!r}")
                for name, function in uses:
                    where = f"panel {panel['title']!r}, query {t['expr']!r}"
                    resolved = resolve(name, self.metrics)
                    self.assertIsNotNone(resolved, f"{where}: {name} is not in {METRICS_FILE.name}")
                    _, kind, suffix = resolved
                    if kind == "histogram":
                        self.assertTrue(suffix, f"{where}: query histogram {name} through "
                                                f"_bucket, _sum or _count")
                    if function in COUNTER_FUNCTIONS:
                        self.assertTrue(kind == "counter" or suffix,
                                        f"{where}: {function}() over {kind} {name}")
                    if suffix == "_bucket":
                        self.assertIn("histogram_quantile", t["expr"], where)

    def test_legends_use_labels_the_series_have(self):
        # {{label}} in a legend must be a label of a metric of the query or a target label.
        target_labels = {"instance", "job", "replay_shard", "pod", "node"}
        for panel in query_panels(self.dashboard):
            for t in panel["targets"]:
                labels = set(target_labels)
                for name, _ in metric_uses(t["expr"]):
                    resolved = resolve(name, self.metrics)  # unknown names fail another test
                    if resolved:
                        labels.update(self.metrics[resolved[0]][1])
                for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t["legendFormat"]):
                    self.assertIn(label, labels, f"{panel['title']}: legend {{{{{label}}}}}")

    def test_dashboard_shows_what_the_issue_asks_for(self):
        used = set()
        for panel in query_panels(self.dashboard):
            for t in panel["targets"]:
                used.update(r[0] for r in (resolve(n, self.metrics) for n, _ in metric_uses(t["expr"]))
                            if r)
        for topic, names in REQUIRED.items():
            self.assertTrue(names & used, f"no panel shows {topic} ({', '.join(sorted(names))})")

    def test_checker_rejects_unknown_and_misused_metrics(self):
        # The identifier scan above must be able to fail.
        self.assertIsNone(resolve("up", self.metrics))
        self.assertEqual(metric_uses('sum by (side) (rate(up{job="x"}[5m]))'), [("up", "rate")])
        self.assertEqual([n for n, _ in metric_uses(
            'histogram_quantile(0.99, sum by (le) (rate(dreamfleet_actor_inference_seconds_bucket[$__rate_interval])))')],
            ["dreamfleet_actor_inference_seconds_bucket"])
        self.assertEqual(resolve("dreamfleet_actor_inference_seconds_sum", self.metrics)[2], "_sum")
        self.assertIsNone(resolve("dreamfleet_learner_loss_sum", self.metrics))

    def test_provisioning_loads_the_dashboards_folder(self):
        provider = yaml.safe_load(PROVIDERS.read_text())["providers"][0]
        self.assertEqual(provider["type"], "file")
        self.assertEqual(provider["options"]["path"], "/var/lib/grafana/dashboards")


class PromtoolEvaluationTest(unittest.TestCase):
    """Each query, with $__rate_interval as 5m, as an alert `absent(query)`: Prometheus parses it,
    and on synthetic series of every listed metric (with its labels) it must return data, so no
    alert may fire."""

    def test_every_query_returns_data_on_synthetic_series(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is not installed")
        metrics = load_metrics()
        dashboard = json.loads(DASHBOARD.read_text())
        series = []
        for name, (kind, labels) in metrics.items():
            for instance in ("a:1", "b:1"):
                label_text = ",".join([f'instance="{instance}"', 'job="test"', 'replay_shard="0"']
                                      + [f'{label}="x"' for label in labels])
                if kind == "counter":
                    series.append({"series": f"{name}{{{label_text}}}", "values": "0+10x30"})
                elif kind == "gauge":
                    series.append({"series": f"{name}{{{label_text}}}", "values": "1+1x30"})
                else:
                    for le, step in (("0.1", 1), ("1", 3), ("+Inf", 4)):
                        series.append({"series": f'{name}_bucket{{{label_text},le="{le}"}}',
                                       "values": f"0+{step}x30"})
                    series.append({"series": f"{name}_sum{{{label_text}}}", "values": "0+2x30"})
                    series.append({"series": f"{name}_count{{{label_text}}}", "values": "0+4x30"})
        rules, tests = [], []
        for panel in query_panels(dashboard):
            for t in panel["targets"]:
                alert = f"Empty{len(rules)}"
                expr = t["expr"].replace("$__rate_interval", "5m")
                rules.append({"alert": alert, "expr": f"absent({expr})",
                              "annotations": {"panel": panel["title"], "query": t["expr"]}})
                tests.append({"eval_time": "20m", "alertname": alert, "exp_alerts": []})
        with tempfile.TemporaryDirectory() as tmp:
            rules_file = pathlib.Path(tmp) / "rules.yml"
            test_file = pathlib.Path(tmp) / "test.yml"
            rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
            test_file.write_text(yaml.safe_dump({
                "rule_files": [str(rules_file)],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}],
            }))
            check = lib.run([promtool, "check", "rules", rules_file])
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            result = lib.run([promtool, "test", "rules", test_file])
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
