"""In-cluster access to the API server for pods (e.g. the operator run as a
Deployment): the API server listens on 127.0.0.1 only, which a pod's network
namespace cannot reach, so the kubelet forwards TCP from the bridge address
(10.201.0.1:443, in the serving certificate's SANs) to it. Pods get
KUBERNETES_SERVICE_HOST/PORT pointing here, and `kubernetes.default.svc`
resolves to it. TLS passes through untouched."""
import logging
import socket
import threading

log = logging.getLogger("apiproxy")


class ApiProxy:
    def __init__(self, listen_host, listen_port, target_host, target_port):
        self.listen = (listen_host, listen_port)
        self.target = (target_host, target_port)
        self.sock = None

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(self.listen)
        s.listen(64)
        self.sock = s
        threading.Thread(target=self._accept, name="apiproxy", daemon=True).start()
        log.info("forwarding %s:%s -> %s:%s for in-cluster clients", *self.listen, *self.target)

    def stop(self):
        if self.sock:
            self.sock.close()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError as e:
                log.warning("cannot reach the API server: %s", e)
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
