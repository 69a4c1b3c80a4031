#!/usr/bin/env python3
"""Writes deploy/grafana/dashboards/dreamfleet.json, the dreamfleet Grafana dashboard.

The dashboard is generated so that its layout and queries stay reviewable as code: edit the panel
list below and rerun `python3 deploy/grafana/make_dashboard.py`; `--check` exits 1 when the JSON
file is out of date (tests/deploy_dashboard_test.py runs it). Every query may name only metrics of
deploy/grafana/exported_metrics.txt. Panels refer to the provisioned datasource by its fixed uid
(deploy/grafana/provisioning/datasources/prometheus.yml).
"""
import argparse
import json
import pathlib
import sys

DATASOURCE = {"type": "prometheus", "uid": "dreamfleet-prometheus"}
OUTPUT = pathlib.Path(__file__).resolve().parent / "dashboards" / "dreamfleet.json"
RATE = "$__rate_interval"


def target(expr, legend):
    return {"expr": expr, "legendFormat": legend}


def quantiles(metric, by=""):
    """p50 and p99 of a histogram, optionally split by the labels in `by`."""
    labels = "le" + (", " + by if by else "")
    suffix = (" {{" + by + "}}") if by else ""
    return [
        target(f"histogram_quantile({q}, sum by ({labels}) (rate({metric}_bucket[{RATE}])))",
               f"p{int(q * 100)}{suffix}")
        for q in (0.5, 0.99)
    ]


# Rows of panels: (row title, [panel, ...]). A panel is a dict with title, description, width,
# targets and optional kind ("timeseries" or "stat"), unit, min, max, thresholds, height.
ROWS = [
    ("Overview", [
        dict(kind="stat", title="Env steps/s", width=4, height=4, unit="short",
             description="Environment steps per second summed over all actors.",
             targets=[target(f"sum(rate(dreamfleet_actor_env_steps_total[{RATE}]))", "env steps/s")]),
        dict(kind="stat", title="Learner updates/s", width=4, height=4, unit="short",
             description="Gradient updates per second of the learner.",
             targets=[target("dreamfleet_learner_updates_per_second", "updates/s")]),
        dict(kind="stat", title="Replay size", width=4, height=4, unit="short",
             description="Steps stored over all replay shards.",
             targets=[target("sum(dreamfleet_replay_size_steps)", "steps")]),
        dict(kind="stat", title="Actors", width=4, height=4, unit="short",
             description="Actor processes Prometheus scrapes, and actors subscribed to the "
                         "learner's weights. The two should be equal.",
             targets=[target("count(dreamfleet_actor_env_steps_total)", "scraped"),
                      target("dreamfleet_learner_subscribers", "subscribed")]),
        dict(kind="stat", title="Max weight lag", width=4, height=4, unit="short",
             description="Largest number of weight versions an actor is behind the learner.",
             thresholds=[(None, "green"), (5, "orange"), (20, "red")],
             targets=[target("max(dreamfleet_actor_weights_lag_versions)", "versions")]),
        dict(kind="stat", title="Learner data wait", width=4, height=4, unit="percentunit",
             description="Fraction of learner time spent waiting for batches from replay.",
             thresholds=[(None, "green"), (0.1, "orange"), (0.3, "red")],
             targets=[target("dreamfleet_learner_data_wait_fraction", "data wait")]),
    ]),
    ("Training progress", [
        dict(title="Episode return", width=8,
             description="Each actor's mean return over its last 100 episodes (mean and best "
                         "over actors), the learner's mean imagined lambda-return and, with "
                         "learner.eval_every_updates, the learner's evaluation episodes (greedy "
                         "and sampled, on envs that never feed replay). Should rise as the agent "
                         "learns; flat from the start often means no weights reach the actors "
                         "(see weight lag).",
             targets=[target("avg(dreamfleet_actor_episode_return)", "actors (mean)"),
                      target("max(dreamfleet_actor_episode_return)", "actors (best)"),
                      target("dreamfleet_learner_return", "learner"),
                      target("dreamfleet_learner_eval_return", "evaluation ({{mode}})")]),
        dict(title="Success rate", width=8, unit="percentunit", min=0, max=1,
             description="Fraction of recent episodes that reached the goal, mean over actors, "
                         "and of the learner's evaluation episodes (environments with a goal: "
                         "gridworlds, the NES game).",
             targets=[target("avg(dreamfleet_actor_success_rate)", "success rate"),
                      target("dreamfleet_learner_eval_success", "evaluation ({{mode}})")]),
        dict(title="Updates and weight versions", width=8,
             description="Total learner updates and the version of the weights the learner "
                         "publishes; versions advance every learner.publish_every_updates.",
             targets=[target("dreamfleet_learner_updates_total", "updates"),
                      target("dreamfleet_learner_weights_version", "weights version")]),
        dict(title="Losses", width=12,
             description="Learner losses by name (world model: prediction, dynamics, "
                         "representation; actor-critic: actor, critic). World-model losses "
                         "should fall early and then flatten; a sudden jump hints at divergence.",
             targets=[target("dreamfleet_learner_loss", "{{name}}")]),
        dict(title="Policy entropy", width=6,
             description="Entropy of the actor head on imagined states. A collapse to ~0 early "
                         "means premature determinism.",
             targets=[target("dreamfleet_learner_entropy", "entropy")]),
        dict(title="Train ratio (replayed / env steps)", width=6,
             description="Replayed steps per environment step: the learner's value and the "
                         "ratio measured from counters. The replay rate limiter holds it near "
                         "replay.samples_per_insert.",
             targets=[target("dreamfleet_learner_train_ratio", "learner"),
                      target(f"sum(rate(dreamfleet_learner_replayed_steps_total[{RATE}])) / "
                             f"sum(rate(dreamfleet_actor_env_steps_total[{RATE}]))", "measured")]),
        dict(title="Held random actions (actor.explore_prob)", width=12, unit="percentunit",
             min=0,
             description="Share of all env steps taken with a held random action instead of the "
                         "policy's (0 unless actor.explore_prob is set). It should sit near "
                         "explore_prob; 0 with it set means the actors run without it.",
             targets=[target(f"sum(rate(dreamfleet_actor_explored_steps_total[{RATE}])) / "
                             f"sum(rate(dreamfleet_actor_env_steps_total[{RATE}]))",
                             "explored share")]),
        dict(title="Ensemble disagreement (learner.disagreement_scale)", width=12, min=0,
             description="Mean disagreement of the exploration ensemble over the last update's "
                         "imagined steps (0 when learner.disagreement_scale is 0). It falls as "
                         "the world model's data covers what the policy reaches; a rise means "
                         "the policy went somewhere new.",
             targets=[target("dreamfleet_learner_disagreement", "disagreement")]),
    ]),
    ("Actors", [
        dict(title="Env steps/s (all actors)", width=12,
             description="Environment steps per second over all actors, from the step counters "
                         "and as the actors report it. Grows linearly with actors until replay "
                         "or the rate limiter holds it back.",
             targets=[target(f"sum(rate(dreamfleet_actor_env_steps_total[{RATE}]))", "counters"),
                      target("sum(dreamfleet_actor_env_steps_per_second)", "self-reported")]),
        dict(title="Env steps/s per actor", width=12,
             description="Each actor's step rate. One actor far below the others points at its "
                         "node (CPU contention) or its shard.",
             targets=[target("dreamfleet_actor_env_steps_per_second", "{{instance}}")]),
        dict(title="Episodes per minute", width=6,
             description="Finished episodes per minute over all actors.",
             targets=[target(f"60 * sum(rate(dreamfleet_actor_episodes_total[{RATE}]))",
                             "episodes/min")]),
        dict(title="Episode length", width=6,
             description="Length in steps of the last finished episode, mean over actors.",
             targets=[target("avg(dreamfleet_actor_episode_length_steps)", "steps")]),
        dict(title="Policy inference latency", width=6, unit="s",
             description="Time of one batched policy step on an actor's CPU.",
             targets=quantiles("dreamfleet_actor_inference_seconds")),
        dict(title="Actors blocked by the rate limiter", width=6, unit="percentunit", min=0,
             description="Fraction of time each actor waits for replay's rate limiter. High "
                         "means the learner is the bottleneck (expected once train_ratio binds).",
             targets=[target(f"rate(dreamfleet_actor_limiter_blocked_seconds_total[{RATE}])",
                             "{{instance}}")]),
    ]),
    ("Replay", [
        dict(title="Replay size (steps)", width=8,
             description="Steps stored per shard and in total. Rises to replay.capacity_steps "
                         "per shard, then stays (FIFO eviction). Uneven shards mean the actor "
                         "ids hash unevenly.",
             targets=[target("dreamfleet_replay_size_steps", "shard {{replay_shard}}"),
                      target("sum(dreamfleet_replay_size_steps)", "total")]),
        dict(title="Insert and sample rates", width=8,
             description="Steps inserted by actors and items sampled by the learner per second, "
                         "over all shards.",
             targets=[target(f"sum(rate(dreamfleet_replay_inserted_steps_total[{RATE}]))",
                             "inserted steps/s"),
                      target(f"sum(rate(dreamfleet_replay_sampled_items_total[{RATE}]))",
                             "sampled items/s")]),
        dict(title="Rate limiter waits", width=8, unit="s",
             description="Seconds per second that inserts and samples spend blocked in the "
                         "shards' rate limiters, by side. Insert waits: the learner is slower "
                         "than train_ratio asks; sample waits: actors are too slow (or replay is "
                         "still below min_size_to_sample).",
             targets=[target(f"sum by (side) (rate(dreamfleet_replay_limiter_wait_seconds_total[{RATE}]))",
                             "{{side}}")]),
        dict(title="Replay memory", width=6, unit="bytes",
             description="Memory held by each shard's stored chunks; plan ~12 KB per 64x64 RGB "
                         "step.",
             targets=[target("dreamfleet_replay_memory_bytes", "shard {{replay_shard}}")]),
        dict(title="Items and episodes", width=6,
             description="Sampleable items and stored episodes over all shards.",
             targets=[target("sum(dreamfleet_replay_items)", "items"),
                      target("sum(dreamfleet_replay_episodes)", "episodes")]),
        dict(title="Replay RPC latency (p99)", width=6, unit="s",
             description="99th percentile latency of replay RPCs by method.",
             targets=[target(
                 f"histogram_quantile(0.99, sum by (le, method) "
                 f"(rate(dreamfleet_replay_rpc_latency_seconds_bucket[{RATE}])))",
                 "{{method}}")]),
        dict(title="WAL fsync latency", width=6, unit="s",
             description="Write-ahead-log fsync time; every insert acknowledgement waits for "
                         "one. Slow disks show here first.",
             targets=quantiles("dreamfleet_replay_wal_fsync_seconds")),
        dict(title="Insert bandwidth", width=8, unit="Bps",
             description="Bytes of chunks inserted per second, over all shards.",
             targets=[target(f"sum(rate(dreamfleet_replay_inserted_bytes_total[{RATE}]))",
                             "bytes/s")]),
        dict(title="Rejected chunks", width=8,
             description="Inserts the shards rejected per second, by reason (signature "
                         "mismatch, out-of-order sequence, ...). Should be zero.",
             targets=[target(f"sum by (reason) (rate(dreamfleet_replay_rejected_total[{RATE}]))",
                             "{{reason}}")]),
        dict(title="Shard connectivity (clients)", width=8,
             description="Per shard: the fewest clients (actors, learner) that see it up "
                         "(1 = all connected), and client reconnects over 5 minutes.",
             targets=[target("min by (shard) (dreamfleet_replay_client_shard_up)", "up: shard {{shard}}"),
                      target("sum by (shard) (increase(dreamfleet_replay_client_reconnects_total[5m]))",
                             "reconnects: shard {{shard}}")]),
    ]),
    ("Learner", [
        dict(title="Learner updates/s", width=8,
             description="Gradient updates per second, as reported and from the update "
                         "counter.",
             targets=[target("dreamfleet_learner_updates_per_second", "self-reported"),
                      target(f"rate(dreamfleet_learner_updates_total[{RATE}])", "counter")]),
        dict(title="Update time by part", width=8, unit="s",
             description="Mean seconds per update spent in the world model and in the "
                         "actor-critic.",
             targets=[target(f"sum by (part) (rate(dreamfleet_learner_update_seconds_sum[{RATE}])) / "
                             f"sum by (part) (rate(dreamfleet_learner_update_seconds_count[{RATE}]))",
                             "{{part}}")]),
        dict(title="Data wait fraction (stalls)", width=8, unit="percentunit", min=0, max=1,
             thresholds=[(None, "green"), (0.1, "orange"), (0.3, "red")],
             description="Fraction of learner time spent waiting for replay batches. Above ~10% "
                         "the GPU starves: add shards or prefetch (learner.prefetch_batches), or "
                         "check the sample-side limiter waits.",
             targets=[target("dreamfleet_learner_data_wait_fraction", "data wait")]),
        dict(title="Weight lag", width=12,
             description="Weight versions the actors are behind the learner: max and mean of "
                         "the actors' own lag, and the learner's version minus the oldest "
                         "actor's. A growing lag means weight broadcasts do not keep up.",
             targets=[target("max(dreamfleet_actor_weights_lag_versions)", "max"),
                      target("avg(dreamfleet_actor_weights_lag_versions)", "mean"),
                      target("max(dreamfleet_learner_weights_version) - "
                             "min(dreamfleet_actor_weights_version)", "learner - oldest actor")]),
        dict(title="Skipped updates", width=12,
             description="Updates the learner skipped over 5 minutes (non-finite loss or "
                         "gradients). Should stay zero.",
             targets=[target("increase(dreamfleet_learner_skipped_updates_total[5m])", "skipped")]),
    ]),
]


def build_panel(spec, panel_id, x, y):
    kind = spec.get("kind", "timeseries")
    defaults = {"unit": spec.get("unit", "short")}
    for key in ("min", "max"):
        if key in spec:
            defaults[key] = spec[key]
    steps = [{"color": color, "value": value}
             for value, color in spec.get("thresholds", [(None, "green")])]
    defaults["thresholds"] = {"mode": "absolute", "steps": steps}
    if kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if "thresholds" in spec else "off"},
        }
        defaults["color"] = {"mode": "palette-classic"}
        options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
    else:
        defaults["color"] = {"mode": "thresholds"}
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                   "orientation": "auto", "textMode": "auto"}
    targets = []
    for i, t in enumerate(spec["targets"]):
        targets.append({"datasource": DATASOURCE, "refId": chr(ord("A") + i), "expr": t["expr"],
                        "legendFormat": t["legendFormat"], "range": True, "instant": False,
                        "editorMode": "code"})
    return {
        "id": panel_id,
        "type": kind,
        "title": spec["title"],
        "description": spec["description"],
        "datasource": DATASOURCE,
        "gridPos": {"h": spec.get("height", 8), "w": spec["width"], "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    }


def build_dashboard():
    panels = []
    panel_id = 1
    y = 0
    for row_title, specs in ROWS:
        panels.append({"id": panel_id, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        panel_id += 1
        y += 1
        x = 0
        row_height = 0
        for spec in specs:
            if x + spec["width"] > 24:
                x = 0
                y += row_height
                row_height = 0
            panels.append(build_panel(spec, panel_id, x, y))
            panel_id += 1
            x += spec["width"]
            row_height = max(row_height, spec.get("height", 8))
        y += row_height
    return {
        "uid": "dreamfleet",
        "title": "dreamfleet",
        "description": "Distributed DreamerV3: training progress, actors, replay shards, learner.",
        "tags": ["dreamfleet", "dreamerv3"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": []},
        "panels": panels,
    }


def render():
    return json.dumps(build_dashboard(), indent=2) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the dashboard JSON differs from what this script writes")
    parser.add_argument("--output", type=pathlib.Path, default=OUTPUT)
    args = parser.parse_args()
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python3 {pathlib.Path(__file__).name}",
                  file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
