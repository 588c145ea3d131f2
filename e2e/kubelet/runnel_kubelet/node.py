"""The Node object: registered Ready, with a heartbeat."""
import logging
import time

from .api import ApiError

from .pod_worker import now_iso

log = logging.getLogger("node")


class NodeAgent:
    def __init__(self, cfg, api, heartbeat=10.0):
        self.cfg = cfg
        self.api = api
        self.heartbeat = heartbeat
        self.last = 0.0
        self.since = now_iso()

    def register(self):
        name = self.cfg.node_name
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": "e2e-zone-a", "runnel.dev/e2e-kubelet": "true"}},
                "spec": {}}
        if self.api.create("/api/v1/nodes", body):
            log.info("registered node %s", name)
        else:
            log.info("node %s already registered", name)
        self.beat(force=True)

    def beat(self, force=False):
        if not force and time.time() - self.last < self.heartbeat:
            return
        t = now_iso()
        cap = {"cpu": "2", "memory": "24Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        conds = [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                  "message": "runnel e2e kubelet is posting ready status",
                  "lastHeartbeatTime": t, "lastTransitionTime": self.since}]
        for ctype in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            conds.append({"type": ctype, "status": "False", "reason": f"KubeletHasNo{ctype}",
                          "lastHeartbeatTime": t, "lastTransitionTime": self.since})
        status = {"conditions": conds, "capacity": cap, "allocatable": cap,
                  "addresses": [{"type": "InternalIP", "address": self.cfg.host_ip},
                                {"type": "Hostname", "address": self.cfg.node_name}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                  "nodeInfo": {"kubeletVersion": "v1.34.4-runnel-e2e", "kubeProxyVersion": "",
                               "containerRuntimeVersion": "runnel-e2e://local-processes",
                               "operatingSystem": "linux", "architecture": "amd64",
                               "osImage": "runnel e2e", "kernelVersion": "", "machineID": "",
                               "systemUUID": "", "bootID": ""}}
        self.api.rest.merge_patch(f"/api/v1/nodes/{self.cfg.node_name}/status", {"status": status})
        self.last = time.time()

    def deregister(self):
        try:
            self.api.rest.delete(f"/api/v1/nodes/{self.cfg.node_name}")
        except ApiError:
            pass
