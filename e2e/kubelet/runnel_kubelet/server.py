"""The kubelet's HTTPS endpoint, just enough for `kubectl logs`: the API
server proxies GET /containerLogs/<ns>/<pod>/<container> to the node's
InternalIP (10.201.0.1) on port 10250. Serves the current run of the
container (the part of its log file after the last start marker), or the
previous run with ?previous=true; honours tailLines and follow.
No exec/attach/port-forward."""
import logging
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("server")
MARKER = b"=== runnel-e2e-kubelet "


def split_runs(data: bytes):
    runs, cur = [], []
    for line in data.splitlines(keepends=True):
        if line.startswith(MARKER):
            if cur or runs:
                runs.append(b"".join(cur))
            cur = []
        else:
            cur.append(line)
    runs.append(b"".join(cur))
    return runs


class KubeletServer:
    def __init__(self, cfg, host, port=10250):
        self.cfg = cfg
        self.addr = (host, port)
        self.httpd = None

    def start(self):
        d = self.cfg.state_dir / "kubelet-pki"
        d.mkdir(parents=True, exist_ok=True)
        crt, key = d / "kubelet.crt", d / "kubelet.key"
        if not crt.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                            "-subj", f"/CN={self.cfg.node_name}", "-addext", f"subjectAltName=IP:{self.addr[0]}",
                            "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        cfg = self.cfg

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):
                log.debug(fmt, *args)

            def do_GET(self):
                u = urlsplit(self.path)
                parts = u.path.strip("/").split("/")
                if parts == ["healthz"]:
                    return self._send(200, b"ok")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    return self._send(404, b"the runnel e2e kubelet serves only /containerLogs\n")
                q = {k: v[-1] for k, v in parse_qs(u.query).items()}
                path = cfg.logs_dir / f"{parts[1]}_{parts[2]}_{parts[3]}.log"
                if not path.exists():
                    return self._send(404, f"no log for container {parts[3]} of pod {parts[1]}/{parts[2]}\n".encode())
                runs = split_runs(path.read_bytes())
                previous = q.get("previous") == "true"
                if previous and len(runs) < 2:
                    return self._send(400, b"previous terminated container not found\n")
                body = runs[-2] if previous else runs[-1]
                if "tailLines" in q:
                    lines = body.splitlines(keepends=True)
                    body = b"".join(lines[-int(q["tailLines"]):]) if int(q["tailLines"]) > 0 else b""
                if q.get("follow") != "true" or previous:
                    return self._send(200, body)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                    pos = path.stat().st_size
                    while True:
                        time.sleep(0.2)
                        size = path.stat().st_size
                        if size > pos:
                            with open(path, "rb") as f:
                                f.seek(pos)
                                chunk = f.read(size - pos)
                            pos = size
                            if MARKER in chunk:      # the container restarted: stop, like kubectl
                                self.wfile.write(chunk.split(MARKER)[0])
                                return
                            self.wfile.write(chunk)
                            self.wfile.flush()
                except (OSError, ValueError):
                    return

            def _send(self, code, body):
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(self.addr, Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, name="kubelet-server", daemon=True).start()
        log.info("serving container logs on https://%s:%s", *self.addr)

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
