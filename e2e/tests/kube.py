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
