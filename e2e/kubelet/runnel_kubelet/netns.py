"""Pod networking: one network namespace per pod, a veth pair into a host
bridge, addresses from a /24. No default route in pods: they reach each
other and the host (the bridge address), nothing else."""
import logging
import os
import signal
import subprocess
import threading

log = logging.getLogger("netns")


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


class Network:
    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.used = set()
        self.next = 2

    # ---- host side ----------------------------------------------------------
    def cleanup_leftovers(self):
        """Remove pod namespaces, veths and the bridge a killed run left behind."""
        for line in ip("netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(self.cfg.netns_prefix):
                self._kill_netns_pids(name)
                ip("netns", "del", name, check=False)
                log.info("removed leftover netns %s", name)
        for line in ip("-o", "link", "show", check=False).stdout.splitlines():
            parts = line.split(":")
            if len(parts) > 1:
                name = parts[1].strip().split("@")[0]
                if name.startswith(self.cfg.veth_prefix):
                    ip("link", "del", name, check=False)
                    log.info("removed leftover link %s", name)
        if ip("link", "show", self.cfg.bridge, check=False).returncode == 0:
            ip("link", "del", self.cfg.bridge, check=False)
            log.info("removed leftover bridge %s", self.cfg.bridge)

    def setup_bridge(self):
        self.cleanup_leftovers()
        ip("link", "add", self.cfg.bridge, "type", "bridge")
        ip("addr", "add", f"{self.cfg.host_ip}/24", "dev", self.cfg.bridge)
        ip("link", "set", self.cfg.bridge, "up")
        log.info("bridge %s up at %s/24", self.cfg.bridge, self.cfg.host_ip)

    def teardown_bridge(self):
        self.cleanup_leftovers()

    # ---- pods ---------------------------------------------------------------
    def allocate_ip(self) -> str:
        with self.lock:
            for _ in range(253):
                n = self.next
                self.next = 2 if self.next >= 254 else self.next + 1
                if n not in self.used:
                    self.used.add(n)
                    return f"{self.cfg.subnet_prefix}.{n}"
        raise RuntimeError("pod IP range exhausted")

    def release_ip(self, addr: str):
        with self.lock:
            self.used.discard(int(addr.rsplit(".", 1)[1]))

    def names(self, uid: str):
        u = uid.replace("-", "")
        return (self.cfg.netns_prefix + u[:12], self.cfg.veth_prefix + u[:10], "rnp" + u[:10])

    def netns_path(self, uid: str) -> str:
        return f"/run/netns/{self.names(uid)[0]}"

    def create_pod_netns(self, uid: str, addr: str):
        ns, host_if, peer_if = self.names(uid)
        self.delete_pod_netns(uid)
        ip("netns", "add", ns)
        ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        ip("link", "set", peer_if, "netns", ns)
        ip("-n", ns, "link", "set", peer_if, "name", "eth0")
        ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("link", "set", host_if, "master", self.cfg.bridge)
        ip("link", "set", host_if, "up")
        log.info("netns %s: %s via %s", ns, addr, host_if)

    def _kill_netns_pids(self, ns):
        for pid in ip("netns", "pids", ns, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    def delete_pod_netns(self, uid: str):
        ns, host_if, _ = self.names(uid)
        if ip("netns", "list", check=False).stdout.find(ns) >= 0:
            self._kill_netns_pids(ns)
            ip("netns", "del", ns, check=False)
        ip("link", "del", host_if, check=False)
