"""readiness/liveness probes: tcpSocket and httpGet from the host to the pod
IP, exec inside the container's namespaces (nsenter into its process)."""
import http.client
import socket
import subprocess


def _port(container, port):
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"named port {port!r} not found")


def run_probe(probe, container, pod_ip, pid, resolve_argv) -> tuple:
    """Returns (ok, message)."""
    timeout = probe.get("timeoutSeconds", 1)
    try:
        if "tcpSocket" in probe:
            t = probe["tcpSocket"]
            with socket.create_connection((t.get("host") or pod_ip, _port(container, t["port"])), timeout=timeout):
                return True, ""
        if "httpGet" in probe:
            h = probe["httpGet"]
            cls = http.client.HTTPSConnection if (h.get("scheme") or "HTTP").upper() == "HTTPS" else http.client.HTTPConnection
            conn = cls(h.get("host") or pod_ip, _port(container, h["port"]), timeout=timeout)
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            conn.request("GET", h.get("path") or "/", headers=headers)
            r = conn.getresponse()
            conn.close()
            return (200 <= r.status < 400), f"HTTP probe failed with statuscode: {r.status}"
        if "exec" in probe:
            argv = resolve_argv(probe["exec"]["command"])
            r = subprocess.run(["nsenter", "-t", str(pid), "--net", "--mount", "--uts", "--", *argv],
                               capture_output=True, timeout=timeout)
            return r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")[-300:]
        return False, f"unsupported probe {sorted(probe)}"
    except Exception as e:  # connection refused, timeout, ...
        return False, f"{type(e).__name__}: {e}"


class ProbeState:
    """Applies initialDelaySeconds, periodSeconds and the thresholds."""

    def __init__(self, probe, started_at):
        self.probe = probe
        self.next_at = started_at + probe.get("initialDelaySeconds", 0)
        self.successes = 0
        self.failures = 0
        self.result = None          # None = unknown yet
        self.message = ""

    def due(self, now):
        return now >= self.next_at

    def record(self, ok, msg, now):
        self.next_at = now + self.probe.get("periodSeconds", 10)
        if ok:
            self.successes += 1
            self.failures = 0
            if self.successes >= self.probe.get("successThreshold", 1):
                self.result = True
        else:
            self.failures += 1
            self.successes = 0
            self.message = msg
            if self.failures >= self.probe.get("failureThreshold", 3) or self.result is None:
                self.result = False
