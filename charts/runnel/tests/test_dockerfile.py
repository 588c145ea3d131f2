"""Checks over the repository's Dockerfile and .dockerignore (no Docker engine
here: scripts/check-dockerfile validates syntax with BuildKit's frontend; these
tests check what the image must contain, per operator-contract.md)."""

import json
import re
import tomllib

import pytest

from conftest import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions():
    """[(stage, INSTRUCTION, args)] with continuations joined and comments dropped."""
    lines, buf = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        s = raw.strip()
        if s.startswith("#") or not s:
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        lines.append(buf + s)
        buf = ""
    out, stage = [], None
    for line in lines:
        op, _, args = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            m = re.search(r"\bAS\s+(\S+)$", args, re.I)
            stage = m.group(1) if m else "?"
        out.append((stage, op, args.strip()))
    return out


def stage(name):
    return [(op, args) for s, op, args in instructions() if s == name]


def global_args():
    out = {}
    for s, op, args in instructions():
        if s is None and op == "ARG":
            k, _, v = args.partition("=")
            out[k] = v
    return out


def test_base_images():
    args = global_args()
    assert args["RUST_IMAGE"] == "rust:1-bookworm"
    assert args["RUNTIME_IMAGE"] == "gcr.io/distroless/cc-debian12:nonroot"


def test_builder_builds_both_binaries_locked_after_caching_dependencies():
    steps = stage("builder")
    runs = [a for op, a in steps if op == "RUN"]
    cook = next(i for i, (op, a) in enumerate(steps) if op == "RUN" and "cargo chef cook" in a)
    copy_all = next(i for i, (op, a) in enumerate(steps) if op == "COPY" and a == ". .")
    build = next(i for i, (op, a) in enumerate(steps) if op == "RUN" and "cargo build" in a)
    assert cook < copy_all < build, "dependencies must build before the sources are copied"
    for r in runs:
        if "cargo chef cook" in r or "cargo build" in r:
            assert "--release" in r and "--locked" in r, r
            assert "-p runnel-broker" in r and "-p runnel-operator" in r, r


def test_runtime_stage():
    steps = stage("runtime")
    ops = [op for op, _ in steps]
    assert "ENTRYPOINT" not in ops
    copies = [a for op, a in steps if op == "COPY"]
    assert any("runnel-broker" in c and "runnel-operator" in c and c.endswith("/usr/local/bin/") for c in copies)
    assert any("--chown=65532:65532" in c and c.endswith("/var/lib/runnel") for c in copies)
    assert ("USER", "65532:65532") in steps
    expose = [a for op, a in steps if op == "EXPOSE"]
    assert expose and set(expose[0].split()) == {"9092", "9093", "8080"}
    cmd = [a for op, a in steps if op == "CMD"]
    assert len(cmd) == 1
    assert json.loads(cmd[0]) == ["/usr/local/bin/runnel-broker", "/etc/runnel/server.properties"]
    # the data directory is created in the builder so the runtime (no shell) can copy it
    build = next(a for op, a in stage("builder") if op == "RUN" and "cargo build" in a)
    assert "/out/var/lib/runnel/data" in build


def test_default_broker_config_rewrite_matches_config_file():
    # The builder rewrites these two keys of config/server.properties with sed.
    text = (REPO / "config" / "server.properties").read_text()
    assert re.search(r"^listeners=", text, re.M)
    assert re.search(r"^log\.dirs=", text, re.M)


def test_packages_exist_in_workspace():
    ws = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    names = {}
    for m in ws:
        manifest = REPO / m / "Cargo.toml"
        if manifest.exists():
            names[tomllib.loads(manifest.read_text())["package"]["name"]] = m
    assert names.get("runnel-broker") == "broker"
    if "operator" not in ws:
        pytest.skip("the runnel-operator crate is not in this checkout's workspace yet")
    assert names.get("runnel-operator") == "operator"


def test_dockerignore():
    patterns = {l.strip() for l in (REPO / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.startswith("#")}
    # the fuzz crate is a workspace member: its manifest stays, its inputs go
    assert {".git", "**/target", "/fuzz/seeds", "/fuzz/corpus", "/fuzz/crashes"} <= patterns
    # nothing the build needs is excluded (vendor/: the patched kafka-protocol)
    for needed in ("Cargo.toml", "Cargo.lock", "config", "broker", "operator", "crds", "admin",
                   "fuzz", "vendor", "vendor/kafka-protocol"):
        assert needed not in patterns and f"/{needed}" not in patterns, needed
