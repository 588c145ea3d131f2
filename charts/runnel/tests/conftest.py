"""Fixtures for the chart tests: a Helm binary and a `render` helper.

HELM names the binary (scripts/test-chart sets it); otherwise
scripts/install-helm.sh provides one (building it on first use).
"""

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

CHART = Path(__file__).resolve().parents[1]
REPO = CHART.parents[1]
RELEASE = "runnel"
NAMESPACE = "runnel-system"


@pytest.fixture(scope="session")
def helm():
    path = os.environ.get("HELM")
    if not path:
        path = subprocess.run(
            [str(REPO / "scripts" / "install-helm.sh")],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    return path


class Rendered(list):
    """The documents of one `helm template`, with lookups by kind/name."""

    def __init__(self, docs, text):
        super().__init__(docs)
        self.text = text

    def kinds(self, kind):
        return [d for d in self if d["kind"] == kind]

    def one(self, kind, name=None, namespace=None):
        found = [
            d for d in self.kinds(kind)
            if (name is None or d["metadata"]["name"] == name)
            and (namespace is None or d["metadata"].get("namespace") == namespace)
        ]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def deployment(self):
        return self.one("Deployment")

    def container(self):
        containers = self.deployment()["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]

    def args(self):
        return self.container()["args"]


def run_helm_template(helm, values=None, extra=()):
    """`helm template` with `values` (a dict) as a values file; returns
    (returncode, stdout, stderr)."""
    cmd = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(values or {}, f)
        path = f.name
    try:
        cmd += ["-f", path]
        p = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.unlink(path)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="session")
def render(helm):
    def _render(values=None, extra=()):
        rc, out, err = run_helm_template(helm, values, extra)
        assert rc == 0, f"helm template failed:\n{err}"
        docs = [d for d in yaml.safe_load_all(out) if d]
        return Rendered(docs, out)
    return _render


@pytest.fixture(scope="session")
def render_fail(helm):
    """Renders values that must be rejected; returns helm's error text."""
    def _render_fail(values=None, extra=()):
        rc, out, err = run_helm_template(helm, values, extra)
        assert rc != 0, f"helm template accepted values it should reject: {values}\n{out[:2000]}"
        return err
    return _render_fail
