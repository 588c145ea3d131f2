"""The main loop: bind pending pods (we are the scheduler), start/stop pod
workers, provision PVCs, keep the hosts file and the Node heartbeat."""
import logging
import os
import threading
import time

import urllib3

from .api import ApiError
from .apiproxy import ApiProxy
from .hosts import HostsWriter
from .netns import Network
from .node import NodeAgent
from .server import KubeletServer
from .pod_worker import PodWorker, kill_leftovers
from .storage import Provisioner

log = logging.getLogger("kubelet")


class Kubelet:
    def __init__(self, cfg, api):
        self.cfg = cfg
        self.api = api
        self.net = Network(cfg)
        self.node = NodeAgent(cfg, api)
        self.storage = Provisioner(cfg, api)
        self.hosts = HostsWriter(cfg.hosts_file)
        self.workers = {}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.generation = 0          # completed syncs (hosts file written)

    def poke(self):
        self.wake.set()

    def wait_synced(self, timeout=5.0):
        """Wait until a full sync (hosts file included) started after this call."""
        target = self.generation + 2
        deadline = time.time() + timeout
        self.poke()
        while self.generation < target and time.time() < deadline:
            time.sleep(0.05)

    def forget(self, uid):
        with self.lock:
            self.workers.pop(uid, None)

    def run(self):
        for d in (self.cfg.logs_dir, self.cfg.pods_dir, self.cfg.volumes_dir):
            d.mkdir(parents=True, exist_ok=True)
        kill_leftovers(self.cfg.pods_dir, log)
        self.net.setup_bridge()
        host, port = self.api.rest.host_port()
        self.proxy = ApiProxy(self.cfg.host_ip, 443, host, port)
        self.proxy.start()
        self.server = KubeletServer(self.cfg, self.cfg.host_ip)
        self.server.start()
        self.storage.ensure_storage_class()
        self.node.register()
        log.info("node %s ready; running images containing %r from %s", self.cfg.node_name,
                 self.cfg.image_marker, ":".join(self.cfg.bin_dirs))
        try:
            while not self.stop_event.is_set():
                try:
                    self.sync()
                except (OSError, urllib3.exceptions.HTTPError) as e:
                    log.warning("sync failed, retrying: %s", e)
                except Exception as e:
                    log.exception("sync failed: %s", e)
                self.wake.wait(self.cfg.sync_period)
                self.wake.clear()
        finally:
            self.shutdown()

    def sync(self):
        self.node.beat()
        pods = self.api.pods()
        for p in pods:
            if self._schedulable(p):
                try:
                    self.api.bind(p)
                    log.info("bound %s/%s to %s", p["metadata"]["namespace"], p["metadata"]["name"],
                             self.cfg.node_name)
                    p["spec"]["nodeName"] = self.cfg.node_name
                    self.api.event(p, "Normal", "Scheduled", f"Successfully assigned {p['metadata']['namespace']}/"
                                   f"{p['metadata']['name']} to {self.cfg.node_name}", "default-scheduler")
                except ApiError as e:
                    log.warning("binding %s: %s %s", p["metadata"]["name"], e.status, e.reason)
        self.storage.sync(self.api.pvcs(), self.api.pvs())
        mine = {p["metadata"]["uid"]: p for p in pods if p["spec"].get("nodeName") == self.cfg.node_name}
        with self.lock:
            for uid, w in list(self.workers.items()):
                if uid in mine:
                    w.update(mine[uid])
                else:
                    w.gone = True
            for uid, p in mine.items():
                if uid not in self.workers and p["status"].get("phase") not in ("Succeeded", "Failed") \
                        or uid not in self.workers and p["metadata"].get("deletionTimestamp"):
                    w = PodWorker(self, p)
                    self.workers[uid] = w
                    w.start()
            pod_ips = [(w.pod, w.ip) for w in self.workers.values()]
        names = self.hosts.compute(self.api.services(), self.api.endpoint_slices(), pod_ips)
        for n in ("kubernetes.default.svc.cluster.local", "kubernetes.default.svc", "kubernetes.default"):
            names[n] = self.cfg.host_ip      # the API server, through ApiProxy
        self.hosts.write(names)
        self.generation += 1

    def _schedulable(self, p):
        spec = p["spec"]
        return (not spec.get("nodeName") and not p["metadata"].get("deletionTimestamp")
                and spec.get("schedulerName", "default-scheduler") == "default-scheduler"
                and p["status"].get("phase", "Pending") == "Pending")

    def shutdown(self):
        log.info("shutting down: stopping %d pods", len(self.workers))
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.shutdown = True
        for w in workers:
            w.join(timeout=15)
        kill_leftovers(self.cfg.pods_dir, log)    # anything a stuck worker left running
        try:
            self.hosts.restore()
        except OSError:
            pass
        for part in (getattr(self, "proxy", None), getattr(self, "server", None)):
            if part:
                part.stop()
        self.net.teardown_bridge()
        remove_mountpoints(self.cfg.state_dir / "created-mountpoints", self.cfg.lock_path)
        log.info("kubelet stopped")


def other_kubelet_running(own_lock):
    """Is another e2e kubelet (another bridge) running on this machine?"""
    import fcntl
    import glob
    for path in glob.glob("/run/runnel-e2e-kubelet*.lock"):
        if os.path.realpath(path) == os.path.realpath(own_lock):
            continue
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
            except BlockingIOError:
                return True
    return False


def remove_mountpoints(record, own_lock):
    """Remove the host paths launch.py created as mount points, deepest first,
    if they are still empty. Only once no pod runs, ours or another kubelet's:
    removing a mount point detaches it from every mount namespace using it."""
    if other_kubelet_running(own_lock):
        log.info("another e2e kubelet is running: leaving the mount points in %s", record)
        return
    try:
        paths = set(record.read_text().split("\n")) - {""}
    except OSError:
        return
    for p in sorted(paths, key=lambda p: -p.count("/")):
        try:
            if os.path.isdir(p):
                os.rmdir(p)
            elif os.path.isfile(p) and os.path.getsize(p) == 0:
                os.unlink(p)
        except OSError:
            pass
    record.unlink(missing_ok=True)
