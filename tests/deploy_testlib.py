"""Shared helpers of the deployment tests (tests/deploy_*_test.py).

The deployment tests validate docker-compose.yml and deploy/ with the real tools that
scripts/setup.sh installs (docker-compose, promtool, kubectl). A test exits with SKIP (77, CTest's
SKIP_RETURN_CODE) only when its tool is absent from the machine.
"""
import os
import pathlib
import shutil
import subprocess
import sys

SKIP = 77
TOOL_TIMEOUT_S = 60


def source_dir():
    env = os.environ.get("DREAMFLEET_SOURCE_DIR")
    return pathlib.Path(env) if env else pathlib.Path(__file__).resolve().parent.parent


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def require_tool(name):
    """Path of `name` on PATH; skips the test when it is absent."""
    path = shutil.which(name)
    if path is None:
        skip(f"{name} is not installed (scripts/setup.sh installs it)")
    return path


def import_yaml():
    try:
        import yaml  # Debian: python3-yaml, a dependency of docker-compose.
    except ImportError:
        skip(f"PyYAML is not available to {sys.executable} (Debian package python3-yaml)")
    return yaml


def run(cmd, cwd=None, env=None, input_text=None):
    """Runs cmd, returning the CompletedProcess (text, stdout and stderr captured)."""
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, input=input_text,
                          capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)


def clean_env(**extra):
    """The environment without dreamfleet/compose variables, so files interpolate their defaults."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DREAMFLEET_", "COMPOSE_", "GRAFANA_"))}
    env.update(extra)
    return env


def parse_set_list(text):
    """'a.b=1 c.d=2' -> {'a.b': '1', 'c.d': '2'}."""
    result = {}
    for item in text.split():
        key, _, value = item.partition("=")
        result[key] = value
    return result


def flag_values(args, flag):
    """Values of every `flag VALUE` / `flag=VALUE` in args."""
    values = []
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            values.append(args[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg[len(flag) + 1:])
    return values
