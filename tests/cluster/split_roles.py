"""Split-role clusters (issue 9): controller-only nodes (`process.roles=controller`,
the metadata quorum's voters) and broker-only nodes (`process.roles=broker`,
observers of the metadata log), as real processes on loopback. Kept apart from
conftest.py; the same Node start/stop/kill machinery, other properties."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import compat_util as cu
from conftest import APACHE, REPO, START_TIMEOUT, Node, _cluster_id


class SplitNode(Node):
    """A controller-only node (its only listener is CONTROLLER on `cport`) or
    a broker-only node (its only listener is PLAINTEXT on `port`)."""

    def __init__(self, node_id, role, port, cport, voters, cluster_id, work: Path, extra_props=None):
        super().__init__(node_id, port, cport, voters, cluster_id, work, extra_props)
        self.role = role

    @property
    def is_broker(self):
        return self.role == "broker"

    def _props(self):
        common = {
            "node.id": str(self.node_id),
            "controller.listener.names": "CONTROLLER",
            "group.initial.rebalance.delay.ms": "0",
        }
        if self.voters:
            common["controller.quorum.voters"] = self.voters
        if self.is_broker:
            props = {
                "process.roles": "broker",
                "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
                "inter.broker.listener.name": "PLAINTEXT",
            }
        else:
            props = {
                "process.roles": "controller",
                "listeners": f"CONTROLLER://127.0.0.1:{self.cport}",
                "advertised.listeners": f"CONTROLLER://127.0.0.1:{self.cport}",
            }
        return {**common, **props, **self.extra_props}

    def start(self):
        if APACHE:
            # The launcher waits for its PORT: the client port of a broker,
            # the controller port of a controller. Six JVMs: a smaller heap.
            env = dict(os.environ, KAFKA_CONTROLLER_PORT=str(self.cport), KAFKA_CLUSTER_ID=self.cluster_id,
                       KAFKA_START_TIMEOUT=str(int(START_TIMEOUT)),
                       KAFKA_FORMAT_ARGS=" ".join(getattr(self, "format_args", [])))
            env.setdefault("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m")
            port = self.port if self.is_broker else self.cport
            args = [str(REPO / "scripts" / "run-apache-kafka.sh"), str(self.work), str(port)]
            props = dict(self._props())
            if not self.is_broker:
                props.pop("inter.broker.listener.name", None)
            args += [f"{k}={v}" for k, v in props.items()]
            self.proc = subprocess.Popen(args, env=env, stdout=open(self.work / "launcher.log", "ab"),
                                         stderr=subprocess.STDOUT)
            return self
        return super().start()


class SplitCluster:
    """`controllers` controller-only nodes (ids 1..) and `brokers`
    broker-only nodes (the ids after them)."""

    def __init__(self, controllers=3, brokers=3, broker_props=None, controller_props=None):
        self.work = Path(tempfile.mkdtemp(prefix="runnel-split-"))
        ports = set()
        while len(ports) < controllers + brokers:
            ports.add(cu.free_port())
        ports = sorted(ports)
        cports, bports = ports[:controllers], ports[controllers:]
        self.voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(cports))
        cid = _cluster_id()
        self.controllers, self.brokers = [], []
        for i, cp in enumerate(cports):
            w = self.work / f"controller{i + 1}"
            w.mkdir()
            self.controllers.append(SplitNode(i + 1, "controller", cp, cp, self.voters, cid, w, controller_props))
        for j, bp in enumerate(bports):
            nid = controllers + j + 1
            w = self.work / f"broker{nid}"
            w.mkdir()
            self.brokers.append(SplitNode(nid, "broker", bp, 0, self.voters, cid, w, broker_props))

    @property
    def nodes(self):
        return self.controllers + self.brokers

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.brokers if n.alive())

    def start(self):
        for n in self.nodes:
            n.start()
        self.wait_brokers(len(self.brokers))
        return self

    def wait_brokers(self, count, timeout=START_TIMEOUT):
        """Wait until Metadata through a broker lists `count` brokers."""
        from confluent_kafka.admin import AdminClient
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for n in self.brokers:
                if not n.alive() or not cu.port_open("127.0.0.1", n.port):
                    continue
                try:
                    md = AdminClient({"bootstrap.servers": n.bootstrap}).list_topics(timeout=5)
                    last = md
                    if len(md.brokers) >= count and md.controller_id >= 0:
                        return md
                except Exception as e:  # noqa: BLE001 - retried until the deadline
                    last = e
            time.sleep(0.5)
        raise AssertionError(f"split cluster did not list {count} brokers within {timeout}s: {last!r}\n"
                             + "\n".join(f"--- node {n.node_id} ({n.role})\n{n.tail()}" for n in self.nodes))

    def node(self, node_id):
        return next(n for n in self.nodes if n.node_id == node_id)

    def close(self, keep=False):
        # Brokers first: their controlled shutdown needs the controllers.
        for n in self.brokers + self.controllers:
            n.stop()
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)
