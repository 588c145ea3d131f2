import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import kube  # noqa: E402


def pytest_configure(config):
    for var in ("KUBECONFIG", "RUNNEL_BIN_DIR", "E2E_STATE_DIR"):
        if not os.environ.get(var):
            raise pytest.UsageError(f"{var} is not set: run the e2e through e2e/run")


@pytest.fixture(scope="session")
def replicas():
    return int(os.environ.get("E2E_REPLICAS", "1"))


@pytest.fixture
def namespace(request):
    ns = f"e2e-{request.node.name.replace('_', '-')[:30].strip('-').lower()}-{uuid.uuid4().hex[:5]}"
    kube.create_namespace(ns)
    yield ns
    kube.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def host_process():
    """Factory: host_process(name, argv, env=None) -> a started kube.HostProcess,
    stopped (SIGTERM, then SIGKILL) after the test. E.g. the operator:
    host_process("operator", [f"{os.environ['RUNNEL_BIN_DIR']}/runnel-operator", "--namespace", ns])."""
    started = []

    def start(name, argv, env=None):
        p = kube.HostProcess(name, argv, env).start()
        started.append(p)
        return p
    yield start
    for p in started:
        p.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        ns = item.funcargs.get("namespace")
        logs = kube.STATE_DIR / "logs"
        sections = []
        if ns:
            sections.append(("kubectl get all,pvc,events", kube.kubectl(
                "get", "all,pvc,events", "-n", ns, "-o", "wide", check=False)))
            for f in sorted(logs.glob(f"{ns}_*.log")):
                sections.append((f.name, f.read_text(errors="replace")[-4000:]))
        for f in sorted(logs.glob("host_*.log")):
            sections.append((f.name, f.read_text(errors="replace")[-4000:]))
        kl = logs / "kubelet.log"
        if kl.exists():
            sections.append(("kubelet.log (tail)", "\n".join(kl.read_text(errors="replace").splitlines()[-60:])))
        for title, text in sections:
            rep.sections.append((title, text))
