"""Fixtures for multi-node cluster tests: three combined broker+controller
nodes started as real processes on loopback, sharing one cluster id.

Which broker (first match wins):
  CLUSTER_APACHE_KAFKA=1        three Apache Kafka 4.1.1 nodes via scripts/run-apache-kafka.sh
  RUNNEL_BROKER_BIN=/path/bin   that binary (default: <repo>/target/release/runnel-broker)
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "compat"))

import compat_util as cu  # noqa: E402

APACHE = os.environ.get("CLUSTER_APACHE_KAFKA") == "1"
START_TIMEOUT = float(os.environ.get("CLUSTER_START_TIMEOUT", "120"))


def _cluster_id() -> str:
    while True:
        s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not s.startswith("-"):
            return s


class Node:
    """One node of the cluster; can be killed with SIGKILL and started again
    on the same data directory and ports."""

    # The address its listeners bind (netns.NetnsNode: its namespace's IP).
    host = "127.0.0.1"

    def _wrap(self, args):
        """The command line that starts it (netns.NetnsNode: inside its network namespace)."""
        return args

    def __init__(self, node_id, port, cport, voters, cluster_id, work: Path, extra_props=None):
        self.node_id, self.port, self.cport = node_id, port, cport
        self.extra_props = dict(extra_props or {})
        self.voters, self.cluster_id, self.work = voters, cluster_id, work
        self.proc = None
        self.log = work / "node.log"

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def _props(self):
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "group.initial.rebalance.delay.ms": "0",
            **self.extra_props,
        }

    @property
    def data_dir(self) -> Path:
        """log.dirs of this node (the same layout for Runnel and Kafka)."""
        return self.work / "data"

    def start(self):
        if APACHE:
            env = dict(os.environ, KAFKA_CONTROLLER_PORT=str(self.cport), KAFKA_CLUSTER_ID=self.cluster_id,
                       KAFKA_START_TIMEOUT=str(int(START_TIMEOUT)),
                       KAFKA_FORMAT_ARGS=" ".join(getattr(self, "format_args", [])))
            args = [str(REPO / "scripts" / "run-apache-kafka.sh"), str(self.work), str(self.port)]
            args += [f"{k}={v}" for k, v in self._props().items()]
            self.proc = subprocess.Popen(self._wrap(args), env=env, stdout=open(self.work / "launcher.log", "ab"),
                                         stderr=subprocess.STDOUT)
        else:
            binary = os.environ.get("RUNNEL_BROKER_BIN") or str(REPO / "target" / "release" / "runnel-broker")
            # format_args: `--standalone` / `--no-initial-controllers` /
            # `--release-version V` (used only when the storage is
            # formatted, as kafka-storage format's).
            args = [binary, "--cluster-id", self.cluster_id, *getattr(self, "format_args", [])]
            props = dict(self._props(), **{"log.dirs": str(self.work / "data")})
            for k, v in props.items():
                args += ["--override", f"{k}={v}"]
            self.proc = subprocess.Popen(self._wrap(args), stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def pid(self):
        if APACHE:
            p = self.work / "pid"
            return int(p.read_text()) if p.exists() else None
        return self.proc.pid if self.proc else None

    def alive(self):
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        if not APACHE and self.proc.poll() is not None:
            return False
        return True

    def kill9(self):
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not APACHE and self.proc:
            self.proc.wait(10)
        else:
            deadline = time.time() + 10
            while self.alive() and time.time() < deadline:
                time.sleep(0.1)
            (self.work / "pid").unlink(missing_ok=True)

    def stop(self):
        self.signal_stop()
        self.wait_stopped()

    def signal_stop(self):
        """SIGTERM: a controlled shutdown starts."""
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    def wait_stopped(self, timeout=30):
        """Waits for the process to exit after `signal_stop`, kill -9 after `timeout`."""
        deadline = time.time() + timeout
        while self.alive() and time.time() < deadline:
            time.sleep(0.1)
        if self.alive():
            self.kill9()
        if APACHE:
            (self.work / "pid").unlink(missing_ok=True)

    def tail(self, n=40):
        f = (self.work / "server.log") if APACHE else self.log
        if not f.exists():
            return ""
        return "\n".join(f.read_text(errors="replace").splitlines()[-n:])


class Cluster:
    def __init__(self, n=3, props=None):
        """`props`: extra broker properties for every node (override the defaults)."""
        self.work = Path(tempfile.mkdtemp(prefix="runnel-cluster-"))
        ports = set()
        while len(ports) < 2 * n:
            ports.add(cu.free_port())
        ports = sorted(ports)
        voters = ",".join(f"{i + 1}@127.0.0.1:{ports[2 * i + 1]}" for i in range(n))
        cid = _cluster_id()
        self.nodes = []
        for i in range(n):
            w = self.work / f"node{i + 1}"
            w.mkdir()
            self.nodes.append(Node(i + 1, ports[2 * i], ports[2 * i + 1], voters, cid, w, props))

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes)

    def start(self):
        for n in self.nodes:
            n.start()
        self.wait_brokers(len(self.nodes))
        return self

    def wait_brokers(self, count, via=None, timeout=START_TIMEOUT):
        """Wait until Metadata through `via` (default: any live node) lists `count` brokers."""
        from confluent_kafka.admin import AdminClient
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            targets = [via] if via else [n for n in self.nodes if n.alive()]
            for n in targets:
                if not cu.port_open(n.host, n.port):
                    continue
                try:
                    md = AdminClient({"bootstrap.servers": n.bootstrap}).list_topics(timeout=5)
                    last = md
                    if len(md.brokers) >= count and md.controller_id >= 0:
                        return md
                except Exception as e:  # noqa: BLE001 - retried until the deadline
                    last = e
            time.sleep(0.5)
        raise AssertionError(f"cluster did not list {count} brokers within {timeout}s: {last!r}\n"
                             + "\n".join(f"--- node {n.node_id}\n{n.tail()}" for n in self.nodes))

    def close(self, keep=False):
        # All at once: stopped one by one, the last node of a combined
        # cluster has no quorum left to approve its controlled shutdown and
        # waits out the 30 s before kill -9 (Kafka waits the same way).
        for n in self.nodes:
            n.signal_stop()
        for n in self.nodes:
            n.wait_stopped()
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)


def managed(request, make, start=None, kill=False):
    """A cluster fixture's life: builds the cluster with `make()`, starts it
    (`start(c)`, default `c.start()`), yields it, then stops it (kill -9 first
    when `kill`), keeping its directory when a test of the module failed or
    CLUSTER_KEEP_DATA=1. Nodes that did start never outlive a failed start.
    Use as `yield from managed(request, ...)`."""
    if APACHE:
        cu.load_env_sh()
    c = make()

    def stop(keep):
        if kill:
            for n in c.nodes:
                n.kill9()
        c.close(keep=keep)

    try:
        (start or (lambda cl: cl.start()))(c)
    except BaseException:
        stop(True)
        raise
    yield c
    failed = getattr(request.module, "_cluster_failed", False)
    stop(failed or os.environ.get("CLUSTER_KEEP_DATA") == "1")


@pytest.fixture(scope="module")
def cluster(request):
    yield from managed(request, lambda: Cluster(3))


def pytest_runtest_makereport(item, call):
    if call.when == "call" and call.excinfo is not None:
        item.module._cluster_failed = True


def pytest_report_header(config):
    return "cluster: " + ("3 x Apache Kafka (CLUSTER_APACHE_KAFKA=1)" if APACHE else
                          f"3 x runnel-broker ({os.environ.get('RUNNEL_BROKER_BIN', 'target/release/runnel-broker')})")
