"""Helpers for the e2e tests: kubectl, waiting, kcat."""
import json
import os
import subprocess
import time
from pathlib import Path

STATE_DIR = Path(os.environ.get("E2E_STATE_DIR", "/tmp/runnel-e2e"))


class CommandError(AssertionError):
    pass


def run(cmd, input=None, timeout=60, check=True):
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise CommandError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr.strip()}\n{r.stdout.strip()[-2000:]}")
    return r.stdout


def kubectl(*args, input=None, timeout=60, check=True):
    return run(["kubectl", *args], input=input, timeout=timeout, check=check)


def get(kind, name, ns=None):
    args = ["get", kind, name, "-o", "json"] + (["-n", ns] if ns else [])
    r = subprocess.run(["kubectl", *args], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else None


def apply(manifest: str, ns=None):
    return kubectl("apply", *(["-n", ns] if ns else []), "-f", "-", input=manifest)


def wait_for(what, fn, timeout=120, interval=0.5):
    """Poll fn() until it returns a truthy value; fail with `what` otherwise."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retry until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last})" if last else ""))


def create_namespace(ns):
    """Creates `ns` and waits for its default ServiceAccount (pods are refused before it exists)."""
    kubectl("create", "namespace", ns)
    wait_for(f"default ServiceAccount in {ns}", lambda: get("serviceaccount", "default", ns), 30)


def pod_ready(pod):
    return pod and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def wait_pod_ready(ns, name, timeout=120, not_uid=None):
    def check():
        p = get("pod", name, ns)
        if p and p["metadata"]["uid"] != not_uid and pod_ready(p):
            return p
    return wait_for(f"pod {ns}/{name} Ready", check, timeout)


def kcat(*args, input=None, timeout=60):
    return run(["kcat", *args], input=input, timeout=timeout)


def container_log(ns, pod, container):
    p = STATE_DIR / "logs" / f"{ns}_{pod}_{container}.log"
    return p.read_text(errors="replace") if p.exists() else ""


class HostProcess:
    """A process the test runs on the host side of the e2e (e.g. the operator
    started outside the cluster), inside e2e/run's mount namespace so it
    resolves Service and pod names. Output goes to
    STATE_DIR/logs/host_<name>.log, which the tests print on failure."""

    def __init__(self, name, argv, env=None):
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.log_path = STATE_DIR / "logs" / f"host_{name}.log"
        self.proc = None

    def start(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"=== e2e: start {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=15, timeout=15):
        """SIGTERM (or `sig`), then SIGKILL after `timeout` seconds; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        return self.stop(sig=9, timeout=5)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def container_pid(pod):
    """The host pid of the pod's first container, from its node's containerd (the real-node
    e2e: e2e/node/run). The test runs as root in the host's pid namespace."""
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    sock = STATE_DIR / "nodes" / pod["spec"]["nodeName"] / "run" / "containerd.sock"
    out = run(["ctr", "-a", str(sock), "-n", "k8s.io", "task", "ls"])
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == cid:
            return int(parts[1])
    raise AssertionError(f"container {cid} not among {pod['spec']['nodeName']}'s tasks:\n{out}")
