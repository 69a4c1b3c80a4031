#!/usr/bin/python3
"""deploy/docker/Dockerfile can build from the repository root: every file it copies from the build
context exists and is not excluded by the ignore files, stages it copies from exist, it starts from
debian:12 and installs with scripts/setup.sh only. deploy/docker/runtime-packages.sh (which picks
the runtime image's packages) maps real binaries to their Debian packages.

No Docker engine runs here, so the image itself is not built; these are the checks that need none.
"""
import fnmatch
import os
import re
import shutil
import tempfile
import unittest

import deploy_testlib as lib

SRC = lib.source_dir()
DOCKERFILE = SRC / "deploy" / "docker" / "Dockerfile"
RUNTIME_PACKAGES = SRC / "deploy" / "docker" / "runtime-packages.sh"
CERTS = SRC / "deploy" / "certs.sh"
SCRIPTS = [SRC / "deploy" / "docker" / "entrypoint.sh", RUNTIME_PACKAGES, CERTS]


def instructions():
    """[(INSTRUCTION, arguments)] with line continuations joined and comments dropped."""
    result, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        result.append((word.upper(), rest.strip()))
        current = ""
    return result


def ignore_patterns(path):
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def ignored(relative, patterns):
    parts = relative.split("/")
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatch(prefix, pattern) or (
                    pattern.startswith("**/") and fnmatch.fnmatch(parts[depth - 1], pattern[3:])):
                return True
    return False


class DockerfileTest(unittest.TestCase):
    def test_builds_on_debian_12_with_setup_sh(self):
        steps = instructions()
        args = {rest.split("=")[0]: rest.split("=", 1)[1] for word, rest in steps
                if word == "ARG" and "=" in rest}
        self.assertEqual(args["DEBIAN_IMAGE"], "debian:12")
        bases = [rest.split()[0] for word, rest in steps if word == "FROM"]
        self.assertIn("${DEBIAN_IMAGE}", bases)
        self.assertTrue(all(b in ("${DEBIAN_IMAGE}", "scratch") for b in bases), bases)
        runs = " ".join(rest for word, rest in steps if word == "RUN")
        self.assertIn("bash scripts/setup.sh", runs)
        self.assertTrue((SRC / "scripts" / "setup.sh").is_file())
        self.assertIn("cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release", runs)
        self.assertIn("cmake --build build", runs)
        # No downloads besides Debian packages.
        for tool in ("curl ", "wget ", "git clone", "pip install", "ADD http"):
            self.assertNotIn(tool, runs)
        self.assertFalse([rest for word, rest in steps if word == "ADD"])

    def test_copied_context_files_exist_and_are_not_ignored(self):
        patterns = ignore_patterns(SRC / ".dockerignore")
        copies = [rest.split() for word, rest in instructions() if word == "COPY"]
        context_sources = [c[:-1] for c in copies if not c[0].startswith("--from=")]
        self.assertTrue(context_sources)
        for sources in context_sources:
            for source in sources:
                if source == ".":
                    continue
                relative = source.rstrip("/")
                self.assertTrue((SRC / relative).exists(), f"COPY {source}: missing")
                self.assertFalse(ignored(relative, patterns), f"COPY {source}: in .dockerignore")

    def test_stages_copied_from_exist(self):
        steps = instructions()
        stages = {m.group(1) for word, rest in steps if word == "FROM"
                  for m in [re.search(r"\bAS\s+(\S+)", rest, re.IGNORECASE)] if m}
        for word, rest in steps:
            if word == "COPY" and rest.startswith("--from="):
                self.assertIn(rest.split()[0][len("--from="):], stages, rest)

    def test_build_trees_stay_out_of_the_context(self):
        root = ignore_patterns(SRC / ".dockerignore")
        self.assertEqual(root, ignore_patterns(SRC / "deploy/docker/Dockerfile.dockerignore"))
        for path in ("build", "build-deploy", ".git", "runs", "actor/__pycache__"):
            self.assertTrue(ignored(path, root), path)
        for path in ("scripts/setup.sh", "deploy/docker/entrypoint.sh", "configs/default.yaml"):
            self.assertFalse(ignored(path, root), path)

    def test_builds_without_fetching_a_frontend_image(self):
        # A "# syntax=" directive makes BuildKit pull a frontend image: no offline builds.
        text = (SRC / "deploy" / "docker" / "Dockerfile").read_text()
        self.assertNotRegex(text, r"(?m)^#\s*syntax\s*=")

    def test_runtime_environment_names_variables_the_binaries_read(self):
        # ENV DREAMFLEET_ROM_DIR=... must be a variable some binary really reads (getenv).
        env_text = " ".join(rest for word, rest in instructions() if word == "ENV")
        names = re.findall(r"\b(DREAMFLEET_[A-Z_]+)=", env_text)
        self.assertIn("DREAMFLEET_ROM_DIR", names)
        sources = " ".join(p.read_text(errors="replace")
                           for folder in ("actor", "envs", "dreamer", "learner", "broadcast", "replay_server",
                                          "services", "deploy")
                           for p in (SRC / folder).glob("**/*.cc"))
        for name in names:
            self.assertIn(f'getenv("{name}")', sources, name)

    def test_entrypoint_flags_exist_in_the_binaries(self):
        # The entrypoint adds --actor-id, --actor-index (checked), --shard-index.
        mains = {"actor": SRC / "actor" / "actor_main.cc", "replay": SRC / "replay_server" / "main.cc"}
        flags = {"actor": ["actor-id", "actor-index"], "replay": ["shard-index"]}
        for role, path in mains.items():
            if not path.exists():
                continue
            text = path.read_text()
            for flag in flags[role]:
                self.assertIn(f'"{flag}"', text, f"{path.name} has no --{flag}")

    def test_scripts_are_executable_posix_shell(self):
        for path in SCRIPTS:
            script = path.name
            self.assertTrue(os.access(path, os.X_OK), f"{script} is not executable")
            self.assertEqual(path.read_text().splitlines()[0], "#!/bin/sh")
            result = lib.run(["/bin/sh", "-n", path])
            self.assertEqual(result.returncode, 0, result.stderr)


    def test_scripts_pass_shellcheck(self):
        shellcheck = shutil.which("shellcheck")
        if shellcheck is None:
            self.skipTest("shellcheck is not installed")
        result = lib.run([shellcheck, "--shell=sh", *SCRIPTS])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class CertsScriptTest(unittest.TestCase):
    """deploy/certs.sh (the image's dreamfleet-certs) with the real openssl command."""

    def setUp(self):
        self.openssl = shutil.which("openssl")
        if self.openssl is None:
            self.skipTest("openssl is not installed")
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_makes_a_verifiable_certificate_for_the_hosts_once(self):
        out = os.path.join(self.tmp.name, "certs")
        first = lib.run(["/bin/sh", CERTS, out, "replay-0", "learner", "10.1.2.3"])
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertIn("security:\n  ca_file: " + out + "/ca.pem", first.stdout)
        files = {name: open(os.path.join(out, name), "rb").read()
                 for name in ("ca.pem", "cert.pem", "key.pem", "actor.token", "learner.token",
                              "reader.token")}
        self.assertEqual(len({files[f"{r}.token"] for r in ("actor", "learner", "reader")}), 3)
        self.assertEqual(os.stat(os.path.join(out, "key.pem")).st_mode & 0o077, 0,
                         "the key is readable by others")
        verify = lib.run([self.openssl, "verify", "-CAfile", os.path.join(out, "ca.pem"),
                          os.path.join(out, "cert.pem")])
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        san = lib.run([self.openssl, "x509", "-in", os.path.join(out, "cert.pem"), "-noout",
                       "-ext", "subjectAltName"]).stdout
        for name in ("DNS:replay-0", "DNS:learner", "IP Address:10.1.2.3", "DNS:localhost",
                     "IP Address:127.0.0.1"):
            self.assertIn(name, san)
        # A second run (every compose start) keeps everything.
        second = lib.run(["/bin/sh", CERTS, out, "replay-0", "learner"])
        self.assertEqual(second.returncode, 0, second.stderr)
        for name, content in files.items():
            self.assertEqual(open(os.path.join(out, name), "rb").read(), content, name)

    def test_keeps_the_ca_key_apart_and_gives_actors_only_their_part(self):
        out, ca, actor = (os.path.join(self.tmp.name, d) for d in ("certs", "ca", "actor"))
        result = lib.run(["/bin/sh", CERTS, "--ca-dir", ca, "--actor-dir", actor, out, "learner"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(os.listdir(ca), ["ca.key"])
        self.assertNotIn("ca.key", os.listdir(out))
        self.assertEqual(sorted(os.listdir(actor)), ["actor.token", "ca.pem"])
        # A new host makes a new certificate under the same CA.
        again = lib.run(["/bin/sh", CERTS, "--ca-dir", ca, out, "learner", "replay-7"])
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("does not name replay-7", again.stdout)
        verify = lib.run([self.openssl, "verify", "-CAfile", os.path.join(out, "ca.pem"),
                          os.path.join(out, "cert.pem")])
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)

    def test_refuses_without_an_output_directory(self):
        result = lib.run(["/bin/sh", CERTS])
        self.assertNotEqual(result.returncode, 0)


class RuntimePackagesTest(unittest.TestCase):
    def setUp(self):
        if shutil.which("dpkg-query") is None or shutil.which("ldd") is None:
            self.skipTest("not a Debian system (dpkg-query, ldd)")

    def test_maps_binaries_to_the_packages_of_their_libraries(self):
        binary = os.path.realpath(shutil.which("ls"))
        result = lib.run(["/bin/sh", RUNTIME_PACKAGES, binary])
        self.assertEqual(result.returncode, 0, result.stderr)
        packages = result.stdout.split()
        self.assertIn("libc6", packages)
        self.assertEqual(packages, sorted(set(packages)))
        self.assertFalse([p for p in packages if p.endswith("-dev")])

    def test_skips_files_that_are_not_dynamic_executables(self):
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as script:
            script.write("#!/bin/sh\n")
            script.flush()
            result = lib.run(["/bin/sh", RUNTIME_PACKAGES, script.name])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
