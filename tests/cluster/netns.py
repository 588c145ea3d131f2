"""Three cluster nodes in their own network namespaces, for network-partition
faults (tests/cluster/test_faults.py, scripts/soak-cluster).

Layout (root only; `ip` from iproute2; this kernel has neither
netem nor tc actions, hence no tc):

    root namespace: bridge rnb<tag>, 10.77.<x>.1/24   <- the test's clients
      |- veth rnh<tag><i>  ==  rnp<tag><i> in namespace runnel-<tag>-n<i>, 10.77.<x>.<10+i>/24

Each node binds its listeners (PLAINTEXT :9092, CONTROLLER :9093) and is a
voter on its own address; nodes reach each other, and the clients reach
them, through the bridge. `<tag>` is random and `<x>` a /24 not in use, so
parallel runs do not collide.

A partition is made with neighbour (ARP) entries: `isolate(i)` points node
i's entries for the other nodes, and theirs for node i, at a MAC address
nobody has, so every packet between them is silently dropped in both
directions (no ICMP, no reset), while the clients in the root namespace
still reach it (so a client can keep writing to an isolated
leader, which must not acknowledge what it cannot replicate);
`isolate(i, clients=True)` cuts node i off from everything (the veth goes
down). `heal(i)` removes either. Nothing is reset: connections stall, as in
a real partition, until their timeouts or the heal.

`Net.close()` removes the namespaces, veths and bridge; the fixtures call
it in a finalizer, also when a test fails. `python3 tests/cluster/netns.py
cleanup` removes what crashed runs left behind (every runnel-* namespace
and rnb*/rnh* link).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import APACHE, Cluster, Node, _cluster_id

PORT, CPORT = 9092, 9093


def available():
    """None when namespaces can be used here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` binary (iproute2)"
    return None


def sh(*args, check=True):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def _free_subnet():
    used = sh("ip", "-o", "-4", "addr", "show").stdout
    for _ in range(200):
        x = secrets.randbelow(250) + 1
        if f" 10.77.{x}." not in used:
            return x
    raise RuntimeError("no free 10.77.x.0/24 subnet")


class Net:
    """The bridge, the namespaces and their veths for `n` nodes."""

    def __init__(self, n=3):
        self.n = n
        self.tag = secrets.token_hex(2)
        self.x = _free_subnet()
        self.bridge = f"rnb{self.tag}"
        self.created = []   # (kind, name) in creation order, for close()
        self.isolated = {}  # node index -> "peers" | "all"

    def ns(self, i):
        return f"runnel-{self.tag}-n{i}"

    def ip(self, i):
        return f"10.77.{self.x}.{10 + i}"

    def host_veth(self, i):
        return f"rnh{self.tag}{i}"

    @property
    def gateway(self):
        return f"10.77.{self.x}.1"

    def setup(self):
        try:
            sh("ip", "link", "add", self.bridge, "type", "bridge")
            self.created.append(("link", self.bridge))
            sh("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            sh("ip", "link", "set", self.bridge, "up")
            for i in range(1, self.n + 1):
                ns, h, p = self.ns(i), self.host_veth(i), self.peer_veth(i)
                sh("ip", "netns", "add", ns)
                self.created.append(("netns", ns))
                sh("ip", "link", "add", h, "type", "veth", "peer", "name", p)
                self.created.append(("link", h))
                sh("ip", "link", "set", p, "netns", ns)
                sh("ip", "link", "set", h, "master", self.bridge)
                sh("ip", "link", "set", h, "up")
                sh("ip", "-n", ns, "addr", "add", f"{self.ip(i)}/24", "dev", p)
                sh("ip", "-n", ns, "link", "set", p, "up")
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                sh("ip", "-n", ns, "route", "add", "default", "via", self.gateway)
        except BaseException:
            self.close()
            raise
        return self

    def exec_prefix(self, i):
        return ["ip", "netns", "exec", self.ns(i)]

    # -- faults
    def peer_veth(self, i):
        return f"rnp{self.tag}{i}"

    def _blackhole(self, i, j, on):
        """Node i's packets to node j go to a MAC nobody has (a permanent
        neighbour entry), so the bridge floods them and every port drops
        them; `on=False` removes the entry (ARP resolves j again)."""
        dev = self.peer_veth(i)
        if on:
            sh("ip", "-n", self.ns(i), "neigh", "replace", self.ip(j), "lladdr", f"02:00:5e:ff:{self.x:02x}:{j:02x}",
               "dev", dev, "nud", "permanent")
        else:
            sh("ip", "-n", self.ns(i), "neigh", "del", self.ip(j), "dev", dev, check=False)

    # -- faults
    def isolate(self, i, clients=False):
        """Cut node i off from the other nodes, both directions (and with
        `clients` from everything, the root namespace included)."""
        if clients:
            sh("ip", "link", "set", self.host_veth(i), "down")
            self.isolated[i] = "all"
            return
        self.isolated[i] = "peers"
        for j in range(1, self.n + 1):
            if j != i:
                self._blackhole(i, j, True)
                self._blackhole(j, i, True)

    def heal(self, i=None):
        for k in ([i] if i is not None else list(self.isolated)):
            mode = self.isolated.pop(k, None)
            if mode == "all":
                sh("ip", "link", "set", self.host_veth(k), "up")
            elif mode == "peers":
                for j in range(1, self.n + 1):
                    if j != k:
                        self._blackhole(k, j, False)
                        self._blackhole(j, k, False)

    def reachable(self, i, j, port=PORT):
        """Whether node i's namespace can open a TCP connection to node j's `port`."""
        code = (f"import socket\ns=socket.socket();s.settimeout(1)\n"
                f"try:\n s.connect(('{self.ip(j)}',{port}));print('ok')\nexcept OSError as e:\n print(e)")
        p = sh(*self.exec_prefix(i), sys.executable, "-c", code, check=False)
        return p.stdout.strip() == "ok"

    def close(self):
        self.isolated.clear()
        for kind, name in reversed(self.created):
            if kind == "link":
                sh("ip", "link", "del", name, check=False)
            else:
                sh("ip", "netns", "del", name, check=False)
        self.created.clear()


class NetnsNode(Node):
    """A Node started inside its network namespace, listening on its own IP."""

    def __init__(self, net: Net, index, voters, cluster_id, work: Path, extra_props=None):
        super().__init__(index, PORT, CPORT, voters, cluster_id, work, extra_props)
        self.net, self.host = net, net.ip(index)

    @property
    def bootstrap(self):
        return f"{self.host}:{self.port}"

    def _props(self):
        return {k: v.replace("127.0.0.1", self.host) if k in ("listeners", "advertised.listeners") else v
                for k, v in super()._props().items()}

    def _wrap(self, args):
        if APACHE:   # KAFKA_HOST: the readiness check of scripts/run-apache-kafka.sh
            return self.net.exec_prefix(self.node_id) + ["env", f"KAFKA_HOST={self.host}"] + args
        return self.net.exec_prefix(self.node_id) + args


class NetnsCluster(Cluster):
    """Cluster whose nodes each run in their own network namespace (see the
    module docstring); `self.net` makes and heals partitions."""

    def __init__(self, n=3, props=None):
        self.work = Path(tempfile.mkdtemp(prefix="runnel-cluster-"))
        self.net = Net(n).setup()
        voters = ",".join(f"{i}@{self.net.ip(i)}:{CPORT}" for i in range(1, n + 1))
        cid = _cluster_id()
        self.nodes = []
        for i in range(1, n + 1):
            w = self.work / f"node{i}"
            w.mkdir()
            self.nodes.append(NetnsNode(self.net, i, voters, cid, w, props))

    def close(self, keep=False):
        try:
            super().close(keep=keep)
        finally:
            self.net.close()


def cleanup_leftovers():
    """Remove every runnel-* namespace and rnb*/rnh* link (crashed runs)."""
    for line in sh("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith("runnel-"):
            sh("ip", "netns", "del", name, check=False)
    for line in sh("ip", "-o", "link", "show").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(("rnb", "rnh")):
            sh("ip", "link", "del", name, check=False)


if __name__ == "__main__":
    if sys.argv[1:] == ["cleanup"]:
        cleanup_leftovers()
    else:
        print(__doc__)
