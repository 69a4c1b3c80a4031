#!/usr/bin/env python3
"""Compares deploy/grafana/exported_metrics.txt with what dreamfleet processes really serve.

  check_metrics.py --role replay http://replay-0:9100/metrics
  check_metrics.py --role actor --role replay-client actor-metrics.txt

Each SOURCE is a URL or a file holding a /metrics page (Prometheus text format). For the chosen
roles it reports listed metrics the sources lack and type mismatches (errors), and dreamfleet_*
metrics of those roles the sources serve but the list lacks (warnings: the dashboard cannot use
them until they are listed). A listed metric with labels whose family is absent is a warning only:
prometheus-cpp shows a labelled family once its first series exists. Exit status 1 on errors.
"""
import argparse
import pathlib
import re
import sys
import urllib.request

LIST = pathlib.Path(__file__).resolve().parent / "exported_metrics.txt"
# Which listed metrics each role's process exports.
ROLES = {
    "replay": lambda n: n.startswith("dreamfleet_replay_") and not n.startswith("dreamfleet_replay_client_"),
    "replay-client": lambda n: n.startswith("dreamfleet_replay_client_"),
    "actor": lambda n: n.startswith("dreamfleet_actor_"),
    "learner": lambda n: n.startswith("dreamfleet_learner_"),
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def load_list(path=LIST):
    """{name: (type, [labels])}."""
    metrics = {}
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            metrics[fields[0]] = (fields[1], fields[2:])
    return metrics


def parse_exposition(text):
    """({family: type}, {family names with samples}) of a Prometheus text page."""
    types, sampled = {}, set()
    for line in text.splitlines():
        m = re.match(r"#\s*TYPE\s+(\S+)\s+(\S+)", line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        if not line or line.startswith("#"):
            continue
        name = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0)
        sampled.add(name)
    families = set(types)
    for name in sampled:
        family = name
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in types:
                family = name[: -len(suffix)]
        families.add(family)
    return types, families


def read_source(source):
    if re.match(r"https?://", source):
        with urllib.request.urlopen(source, timeout=10) as response:
            return response.read().decode()
    return pathlib.Path(source).read_text()


def check(listed, texts, roles):
    """(errors, warnings) for the listed metrics of `roles` against the exposition texts."""
    types, families = {}, set()
    for text in texts:
        t, f = parse_exposition(text)
        types.update(t)
        families |= f
    wanted = {n: v for n, v in listed.items() if any(ROLES[r](n) for r in roles)}
    errors, warnings = [], []
    for name, (kind, labels) in sorted(wanted.items()):
        if name not in families:
            message = f"{name}: listed as {kind} but not served"
            (warnings if labels else errors).append(
                message + (f" (labelled by {', '.join(labels)}; appears with its first series)"
                           if labels else ""))
        elif name in types and types[name] != kind:
            errors.append(f"{name}: listed as {kind} but served as {types[name]}")
    for name in sorted(families):
        if name.startswith("dreamfleet_") and name not in listed and any(ROLES[r](name) for r in roles):
            warnings.append(f"{name}: served but not in {LIST.name}")
    return errors, warnings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", action="append", choices=sorted(ROLES), required=True,
                        help="whose listed metrics to expect (repeatable)")
    parser.add_argument("sources", nargs="+", help="/metrics URL or file")
    args = parser.parse_args()
    errors, warnings = check(load_list(), [read_source(s) for s in args.sources], args.role)
    for w in warnings:
        print(f"warning: {w}")
    for e in errors:
        print(f"error: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
