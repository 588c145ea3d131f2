"""Name resolution without a DNS server: a managed block in a hosts file that
the kubelet rewrites IN PLACE (same inode, so a bind mount over /etc/hosts
sees each update). Names:
  <svc>.<ns>.svc.cluster.local, <svc>.<ns>.svc, <svc>.<ns>
      -> a ready endpoint of the Service (no kube-proxy, so ClusterIP
         Services resolve straight to a backing pod), keeping the previous
         choice while it stays ready;
  <hostname>.<subdomain>.<ns>.svc.cluster.local (+ .svc)
      -> the pod's IP, for pods with hostname and subdomain (StatefulSets)."""
import logging
from pathlib import Path

log = logging.getLogger("hosts")
BEGIN, END = "# BEGIN runnel-e2e-kubelet", "# END runnel-e2e-kubelet"


def strip_block(text: str) -> str:
    out, skip = [], False
    for line in text.splitlines():
        if line.strip() == BEGIN:
            skip = True
        elif line.strip() == END:
            skip = False
        elif not skip:
            out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"


def svc_names(name, ns):
    return [f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}.svc", f"{name}.{ns}"]


class HostsWriter:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.base = strip_block(self.path.read_text())
        self.last = None
        self.chosen = {}    # service key -> ip

    def compute(self, services, slices, pod_ips) -> dict:
        """pod_ips: list of (pod dict, ip). Returns {name: ip}."""
        names = {}
        ready_by_svc = {}
        for s in slices:
            md = s["metadata"]
            svc = (md.get("labels") or {}).get("kubernetes.io/service-name")
            if not svc:
                continue
            for ep in s.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                for a in ep.get("addresses") or []:
                    ready_by_svc.setdefault((md["namespace"], svc), []).append(a)
        for svc in services:
            md = svc["metadata"]
            key = (md["namespace"], md["name"])
            ips = sorted(set(ready_by_svc.get(key, [])))
            if not ips:
                self.chosen.pop(key, None)
                continue
            ip = self.chosen.get(key)
            if ip not in ips:
                ip = ips[0]
                self.chosen[key] = ip
            for n in svc_names(md["name"], md["namespace"]):
                names[n] = ip
        for pod, ip in pod_ips:
            spec, md = pod["spec"], pod["metadata"]
            if ip and spec.get("hostname") and spec.get("subdomain"):
                for n in svc_names(f"{spec['hostname']}.{spec['subdomain']}", md["namespace"])[:2]:
                    names[n] = ip
        return names

    def write(self, names: dict):
        lines = [BEGIN] + [f"{ip}\t{n}" for n, ip in sorted(names.items())] + [END]
        text = self.base + "\n".join(lines) + "\n"
        if text == self.last:
            return
        with open(self.path, "r+") as f:     # in place: keep the inode
            f.write(text)
            f.truncate()
        self.last = text
        log.debug("hosts file updated: %d names", len(names))

    def restore(self):
        with open(self.path, "r+") as f:
            f.write(self.base)
            f.truncate()
