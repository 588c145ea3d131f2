#!/usr/bin/env python3
"""Runnel throughput benchmark driver (invoked by bench/run.sh).

Runs one workload matrix (record size x acks) against runnel-broker, a
single-node KRaft Apache Kafka started from the Maven jars, and Tansu, one
broker at a time, each run on a freshly started broker with a fresh data dir
on loopback. Load is generated with Kafka's own perf tools
(org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance) plus a
group-less consumer (bench/lib/BenchTool.java, assign()+seekToBeginning()) so
that brokers without consumer groups can be measured too.

Only the Python standard library is used. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = Path(os.environ.get("RUNNEL_CACHE") or Path.home() / ".cache" / "runnel")

ALL_BROKERS = ["runnel", "kafka", "tansu"]

# Records per run, sized so that one produce run takes roughly 10-20 s against
# Apache Kafka on the 2-core reference machine (see README for the figures).
DEFAULT_RECORDS = {100: 6_000_000, 1024: 1_500_000}
QUICK_RECORDS = {100: 200_000, 1024: 50_000}

# Identical for every broker.
BASE_PRODUCER_PROPS = {
    "linger.ms": "5",
    "batch.size": "65536",
    "compression.type": "none",
}

# What bin/kafka-run-class.sh and the perf-test wrappers use.
JVM_PERF_OPTS = [
    "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]
TOOL_HEAP = ["-Xms512m", "-Xmx512m"]          # kafka-*-perf-test.sh: -Xmx512M
KAFKA_BROKER_HEAP = ["-Xms1g", "-Xmx1g"]      # kafka-server-start.sh default
LEAN_JVM = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m", "-Xshare:auto"]

ALL_WORKLOADS = ["produce", "group", "cluster"]
DEFAULT_WORKLOADS = ["produce", "group"]   # cluster only when asked for

# Cluster workload: three combined broker+controller nodes per broker kind
# (runnel and kafka only; Tansu 0.6 does not replicate), one topic, acks=all.
CLUSTER_NODES = 3
CLUSTER_PARTITIONS = 6
CLUSTER_RF = 3
CLUSTER_MIN_ISR = 2
CLUSTER_BROKERS = ["runnel", "kafka"]
DEFAULT_CLUSTER_RECORDS = 1_000_000
QUICK_CLUSTER_RECORDS = 100_000
DEFAULT_CLUSTER_SIZE = 1024
# Three Kafka JVMs, the tool JVMs and the OS share 2 cores and 24 GB.
CLUSTER_KAFKA_HEAP = ["-Xms512m", "-Xmx512m"]
# The same on every node of both brokers: internal topics replicated like the
# benchmark topic, no initial rebalance delay.
CLUSTER_BROKER_CONFIG = {
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "group.initial.rebalance.delay.ms": "0",
}

# Group workload: a data set pre-produced once per broker, then consumed by
# one group per protocol.
GROUP_PROTOCOLS = ["classic", "classic-coop", "consumer"]
GROUP_PROTOCOL_TITLES = {
    "classic": "classic protocol, RangeAssignor (eager)",
    "classic-coop": "classic protocol, CooperativeStickyAssignor (incremental)",
    "consumer": "consumer protocol (KIP-848, group.protocol=consumer, server-side assignor)",
}
DEFAULT_GROUP_RECORDS = 20_000_000
QUICK_GROUP_RECORDS = 300_000
# Broker config for the group workload, identical on runnel and Kafka: no
# initial rebalance delay, and for KIP-848 groups the same small session
# timeout / heartbeat interval the classic consumers ask for in their client
# config (session.timeout.ms=6000, heartbeat.interval.ms=2000).
GROUP_BROKER_CONFIG = {
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.session.timeout.ms": "6000",
    "group.consumer.heartbeat.interval.ms": "2000",
}
# Kafka refuses values below its minimums (45000 / 5000 by default).
KAFKA_GROUP_BROKER_CONFIG = {
    "group.consumer.min.session.timeout.ms": "6000",
    "group.consumer.min.heartbeat.interval.ms": "2000",
}


class BenchError(Exception):
    """A step failed; the message becomes the 'failed: <reason>' cell."""


def log(msg: str) -> None:
    ts = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[bench {ts}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, n: int = 15) -> str:
    """Last n lines of a log, without the "$ command" lines we write ourselves."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    lines = [ln for ln in lines if not ln.startswith("$ ") and ln.strip()]
    return "\n".join(lines[-n:]) or "(no output)"


def last_match(regex, text):
    """The last line of `text` that `regex` matches (its match), or None."""
    m = None
    for line in text.splitlines():
        m = regex.search(line) or m
    return m


def short(msg: str, limit: int = 160) -> str:
    msg = " ".join(msg.split())
    msg = msg.replace("|", "/")
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def java_error(err: str, out: str = "") -> str:
    """The most telling line of a failed Java tool: its exception message."""
    for line in (err + "\n" + out).splitlines():
        m = re.search(r"(?:Exception|Error): (.+)$", line)
        if m and not line.lstrip().startswith("at "):
            return m.group(1).strip()
    text = (err.strip() or out.strip())
    return text.splitlines()[-1] if text else "(no output)"


def cpu_busy(sample_s: float = 2.0) -> float:
    """Fraction of all CPUs busy (any process, niced or not) over sample_s."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return idle, sum(v[:8])
    i0, t0 = read()
    time.sleep(sample_s)
    i1, t1 = read()
    return 0.0 if t1 == t0 else max(0.0, 1.0 - (i1 - i0) / (t1 - t0))


def wait_quiet(max_busy: float | None, timeout: float) -> float:
    """Samples CPU use by others before a run; with max_busy, waits (up to
    timeout seconds) until it drops below max_busy. Returns the last sample."""
    busy = cpu_busy()
    if max_busy is None:
        return busy
    deadline = time.time() + timeout
    announced = False
    while busy > max_busy and time.time() < deadline:
        if not announced:
            log(f"  machine {busy:.0%} busy; waiting for < {max_busy:.0%} "
                f"(up to {timeout:.0f} s)")
            announced = True
        time.sleep(3)
        busy = cpu_busy()
    return busy


def kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a process started with start_new_session=True (its whole group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def run_cmd(cmd: list[str], log_path: Path, timeout: float, env=None) -> tuple[int, str, str]:
    """Runs cmd in its own process group; returns (rc, stdout, stderr).

    rc is -999 on timeout (the group is killed). Both streams are also
    appended to log_path."""
    with open(log_path, "a") as lf:
        lf.write(f"$ {shlex.join(cmd)}\n")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group(proc, grace=5)
        out, err = proc.communicate()
        rc = -999
    with open(log_path, "a") as lf:
        lf.write(out)
        lf.write(err)
        lf.write(f"[exit {rc}]\n\n")
    return rc, out, err


# --------------------------------------------------------------------------
# Java side: jars, BenchTool, perf tools
# --------------------------------------------------------------------------

class Java:
    def __init__(self, libs: Path, work: Path):
        self.libs = libs
        self.java = os.environ.get("JAVA") or shutil.which("java") or "java"
        javac = shutil.which("javac")
        jh = os.environ.get("JAVA_HOME")
        if jh and Path(jh, "bin", "javac").exists():
            javac = str(Path(jh, "bin", "javac"))
        if not javac:
            raise SystemExit("javac not found (a JDK 17+ is required)")
        self.classes = work / "classes"
        self.classes.mkdir(parents=True, exist_ok=True)
        subprocess.run([javac, "-nowarn", "-cp", f"{libs}/*", "-d", str(self.classes),
                        str(HERE / "lib" / "BenchTool.java"),
                        str(HERE / "lib" / "GroupBench.java")], check=True)
        self.log4j = work / "tools-log4j2.properties"
        self.log4j.write_text(
            "status = error\nappender.e.type = Console\nappender.e.name = E\n"
            "appender.e.target = SYSTEM_ERR\nappender.e.layout.type = PatternLayout\n"
            "appender.e.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = warn\nrootLogger.appenderRef.e.ref = E\n")

    def cmd(self, cls: str, args: list[str], jvm: list[str]) -> list[str]:
        return [self.java, *jvm, f"-Dlog4j2.configurationFile={self.log4j}",
                "-cp", f"{self.libs}/*:{self.classes}", cls, *args]

    def tool(self, args: list[str], log_path: Path, timeout: float = 120, perf=False,
             cls: str = "BenchTool"):
        jvm = TOOL_HEAP + JVM_PERF_OPTS if perf else LEAN_JVM
        rc, out, err = run_cmd(self.cmd(cls, args, jvm), log_path, timeout)
        line = next((ln for ln in reversed(out.splitlines()) if ln.startswith("{")), None)
        if line is None:
            why = "timed out" if rc == -999 else f"exit {rc}: {short(java_error(err, out))}"
            raise BenchError(f"{cls} {args[0]} {why}")
        res = json.loads(line)
        if not res.get("ok"):
            raise BenchError(f"{args[0]}: {short(res.get('error', 'unknown error'))}")
        return res


# --------------------------------------------------------------------------
# Brokers
# --------------------------------------------------------------------------

class Broker:
    name = "?"
    start_timeout = 90.0

    def __init__(self, java: Java):
        self.java = java
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path: Path | None = None
        self.fatal: str | None = None   # set when no later run can succeed either
        self.extra: dict[str, str] = {}  # broker config for the next start (group workload)
        # Node identity. Single-node runs keep these defaults; BrokerCluster
        # sets them (and the ports) for each of its nodes before begin().
        self.tag = self.name             # log file prefix
        self.node_id = 1
        self.cport: int | None = None    # controller port (None: a free one)
        self.voters: str | None = None   # controller.quorum.voters (None: this node only)
        self.cluster_id: str | None = None  # None: the broker's / launcher's own

    def group_config(self) -> dict[str, str]:
        """Broker config the group workload starts this broker with."""
        return {}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def describe(self) -> str:
        return self.name

    def launch(self, data: Path, logs: Path) -> None:
        raise NotImplementedError

    def start(self, data: Path, logs: Path) -> None:
        if self.fatal:
            raise BenchError(self.fatal)
        self.port = free_port()
        self.begin(data, logs)
        self.finish(logs)

    def begin(self, data: Path, logs: Path) -> None:
        """Launch the process (self.port set by the caller) without waiting."""
        if self.fatal:
            raise BenchError(self.fatal)
        self.log_path = logs / f"{self.tag}-broker.log"
        self.launch(data, logs)

    def finish(self, logs: Path, nodes: int = 1) -> None:
        """Wait until the launched broker answers Metadata listing >= nodes brokers."""
        assert self.log_path is not None
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise BenchError(f"broker exited with {self.proc.returncode} during startup: "
                                 f"{short(tail(self.log_path, 5), 300)}")
            if port_open(self.port):
                break
            time.sleep(0.2)
        else:
            raise BenchError(f"port {self.port} not open after {self.start_timeout:.0f} s")
        # The port is open; wait until the broker answers Metadata with itself.
        self.java.tool(["ready", self.bootstrap, str(int(self.start_timeout * 1000)), str(nodes)],
                       logs / "tools.log", timeout=self.start_timeout + 30)
        if self.proc and self.proc.poll() is not None:
            raise BenchError(f"broker exited with {self.proc.returncode}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, grace=30)
            self.proc = None

    def _spawn(self, cmd: list[str], cwd: Path, env=None) -> None:
        assert self.log_path is not None
        with open(self.log_path, "a") as lf:
            lf.write(f"$ {shlex.join(cmd)}\n")
            lf.flush()
            self.proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, cwd=cwd,
                                         env=env, start_new_session=True,
                                         stdin=subprocess.DEVNULL)


class RunnelBroker(Broker):
    name = "runnel"
    start_timeout = 60.0

    def group_config(self) -> dict[str, str]:
        return dict(GROUP_BROKER_CONFIG)

    def __init__(self, java: Java):
        super().__init__(java)
        self.bin = Path(os.environ.get("RUNNEL_BROKER_BIN")
                        or REPO / "target" / "release" / "runnel-broker")

    def describe(self) -> str:
        return f"runnel ({self.bin})"

    def launch(self, data: Path, logs: Path) -> None:
        if not (self.bin.is_file() and os.access(self.bin, os.X_OK)):
            self.fatal = (f"binary {self.bin} not found (build it with `cargo build --release`, "
                          f"or set RUNNEL_BROKER_BIN)")
            raise BenchError(self.fatal)
        cport = self.cport or free_port()
        overrides = {
            "node.id": str(self.node_id),
            "process.roles": "broker,controller",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(data),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.quorum.voters": self.voters or f"{self.node_id}@127.0.0.1:{cport}",
            **self.extra,
        }
        cmd = [str(self.bin)]
        if self.cluster_id:
            cmd += ["--cluster-id", self.cluster_id]
        for k, v in overrides.items():
            cmd += ["--override", f"{k}={v}"]
        cmd += shlex.split(os.environ.get("RUNNEL_BROKER_ARGS", ""))
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        self._spawn(cmd, cwd=data, env=env)


def kafka_cluster_id() -> str:
    """A random Kafka Uuid in its base64 form. Like Kafka's Uuid.randomUuid(),
    never one starting with '-' (kafka-storage's argument parser would take
    it for an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class KafkaBroker(Broker):
    """Apache Kafka, one KRaft combined node.

    Started through the repo's scripts/run-apache-kafka.sh when it exists
    (shared with the test suites), else with an equivalent launcher here.
    BENCH_OWN_KAFKA=1 forces the built-in launcher."""
    name = "kafka"
    start_timeout = 120.0
    script = REPO / "scripts" / "run-apache-kafka.sh"

    def __init__(self, java: Java, heap: list[str] | None = None):
        super().__init__(java)
        self.use_script = self.script.is_file() and not os.environ.get("BENCH_OWN_KAFKA")
        self.script_dir: Path | None = None
        self.pid: int | None = None
        self.heap = heap or KAFKA_BROKER_HEAP
        self.starter: subprocess.Popen | None = None  # run-apache-kafka.sh, begin() → finish()

    def group_config(self) -> dict[str, str]:
        return {**GROUP_BROKER_CONFIG, **KAFKA_GROUP_BROKER_CONFIG}

    def describe(self) -> str:
        jar = next(iter(sorted(self.java.libs.glob("kafka_2.13-*.jar"))), None)
        ver = jar.name[len("kafka_2.13-"):-len(".jar")] if jar else "?"
        how = "scripts/run-apache-kafka.sh" if self.use_script else "bench.py launcher"
        return (f"kafka (Apache Kafka {ver}, KRaft combined mode, "
                f"{' '.join(self.heap)}, via {how})")

    def kafka_version(self) -> str:
        jar = next(iter(sorted(self.java.libs.glob("kafka_2.13-*.jar"))), None)
        return jar.name[len("kafka_2.13-"):-len(".jar")] if jar else "?"

    def start(self, data: Path, logs: Path) -> None:
        if not self.use_script:
            return super().start(data, logs)
        self.port = free_port()
        self.log_path = logs / "kafka-broker.log"
        self.script_dir = data
        env = dict(os.environ, KAFKA_HEAP_OPTS=" ".join(self.heap),
                   KAFKA_START_TIMEOUT=str(int(self.start_timeout)))
        for attempt in (1, 2):
            rc, out, err = run_cmd(["bash", str(self.script), str(data), str(self.port),
                                    "auto.create.topics.enable=true",
                                    *[f"{k}={v}" for k, v in self.extra.items()]],
                                   self.log_path, timeout=self.start_timeout + 60, env=env)
            # One retry when `kafka-storage format` rejected the random cluster
            # id (1 in 64 start with '-', which its argument parser refuses).
            if rc == 0 or "kafka-storage: error" not in err or attempt == 2:
                break
            log("  kafka: storage format rejected the random cluster id; retrying")
            self._copy_logs(logs)
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)
        try:
            self.pid = int((data / "pid").read_text().strip())
        except (OSError, ValueError):
            self.pid = None
        if rc != 0:
            self._copy_logs(logs)
            raise BenchError(f"run-apache-kafka.sh exit {rc}: {short(err[-300:])}")
        self.java.tool(["ready", self.bootstrap, str(int(self.start_timeout * 1000))],
                       logs / "tools.log", timeout=self.start_timeout + 30)

    def begin(self, data: Path, logs: Path) -> None:
        """Start run-apache-kafka.sh in the background: the nodes of a cluster
        must start together (a node's startup waits for the controller quorum)."""
        if not self.use_script:
            return super().begin(data, logs)
        self.log_path = logs / f"{self.tag}-broker.log"
        self.script_dir = data
        self.pid = None
        env = dict(os.environ, KAFKA_HEAP_OPTS=" ".join(self.heap),
                   KAFKA_START_TIMEOUT=str(int(self.start_timeout)))
        if self.cport:
            env["KAFKA_CONTROLLER_PORT"] = str(self.cport)
        if self.cluster_id:
            env["KAFKA_CLUSTER_ID"] = self.cluster_id
        # The script writes node.id=1 and a single voter; the key=value
        # arguments are appended after them and win.
        ident = [f"node.id={self.node_id}"]
        if self.voters:
            ident.append(f"controller.quorum.voters={self.voters}")
        cmd = ["bash", str(self.script), str(data), str(self.port),
               "auto.create.topics.enable=true", *ident,
               *[f"{k}={v}" for k, v in self.extra.items()]]
        with open(self.log_path, "a") as lf:
            lf.write(f"$ {shlex.join(cmd)}\n")
            lf.flush()
            self.starter = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, stdin=subprocess.DEVNULL)

    def finish(self, logs: Path, nodes: int = 1) -> None:
        if not self.use_script:
            return super().finish(logs, nodes)
        assert self.starter is not None and self.script_dir is not None
        try:
            rc = self.starter.wait(timeout=self.start_timeout + 60)
        except subprocess.TimeoutExpired:
            kill_group(self.starter, grace=5)
            rc = -999
        self.starter = None
        try:
            self.pid = int((self.script_dir / "pid").read_text().strip())
        except (OSError, ValueError):
            self.pid = None
        if rc != 0:
            self._copy_logs(logs)
            raise BenchError(f"{self.tag}: run-apache-kafka.sh exit {rc}: "
                             f"{short(tail(self.log_path, 4), 300)}")
        self.java.tool(["ready", self.bootstrap, str(int(self.start_timeout * 1000)), str(nodes)],
                       logs / "tools.log", timeout=self.start_timeout + 30)

    def alive(self) -> bool:
        if not self.use_script:
            return super().alive()
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if not self.use_script:
            return super().stop()
        if self.starter is not None:   # begin() without finish()
            try:
                self.starter.wait(timeout=self.start_timeout + 60)
            except subprocess.TimeoutExpired:
                kill_group(self.starter, grace=5)
            self.starter = None
        if self.script_dir is not None:
            run_cmd(["bash", str(self.script), "stop", str(self.script_dir)],
                    self.log_path or Path(os.devnull), timeout=90)
            if self.log_path is not None:
                self._copy_logs(self.log_path.parent)
            self.script_dir = None
            self.pid = None

    def _copy_logs(self, logs: Path) -> None:
        assert self.script_dir is not None
        for f in ("server.log", "stdout.log", "format.log", "server.properties"):
            src = self.script_dir / f
            if src.is_file():
                shutil.copy(src, logs / f"{self.tag}-{f}")

    def launch(self, data: Path, logs: Path) -> None:
        cport = self.cport or free_port()
        conf = data / "server.properties"
        logdir = data / "kraft-logs"
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters or f"{self.node_id}@127.0.0.1:{cport}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(logdir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            **self.extra,
        }
        conf.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        log4j = data / "log4j2.properties"
        log4j.write_text(
            "status = error\nappender.f.type = File\nappender.f.name = F\n"
            f"appender.f.fileName = {logs / (self.tag + '-server-log4j.log')}\nappender.f.append = true\n"
            "appender.f.layout.type = PatternLayout\nappender.f.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = info\nrootLogger.appenderRef.f.ref = F\n"
            "logger.k.name = kafka\nlogger.k.level = warn\n"
            "logger.o.name = org.apache.kafka\nlogger.o.level = warn\n"
            "logger.s.name = kafka.server.KafkaRaftServer\nlogger.s.level = info\n")
        cluster_id = self.cluster_id or kafka_cluster_id()
        rc, out, err = run_cmd(
            self.java.cmd("kafka.tools.StorageTool",
                          ["format", "-t", cluster_id, "-c", str(conf)], LEAN_JVM),
            self.log_path, timeout=120)
        if rc != 0:
            raise BenchError(f"kafka-storage format failed (exit {rc}): {short(err or out)}")
        cmd = self.java.cmd("kafka.Kafka", [str(conf)], self.heap + JVM_PERF_OPTS)
        cmd[1:1] = [f"-Dkafka.logs.dir={logs}"]
        # replace the tools log4j config with the broker's own
        cmd = [c if not c.startswith("-Dlog4j2.configurationFile=") else
               f"-Dlog4j2.configurationFile={log4j}" for c in cmd]
        self._spawn(cmd, cwd=data)


class TansuBroker(Broker):
    name = "tansu"
    start_timeout = 60.0

    def __init__(self, java: Java, storage: str):
        super().__init__(java)
        self.bin = Path(os.environ.get("TANSU_BIN") or CACHE / "tansu" / "bin" / "tansu")
        self.storage = storage

    def version(self) -> str:
        try:
            out = subprocess.run([str(self.bin), "--version"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
            return out or "?"
        except Exception:
            return "?"

    def describe(self) -> str:
        return f"tansu ({self.version()}, storage {self.storage})"

    def launch(self, data: Path, logs: Path) -> None:
        if not (self.bin.is_file() and os.access(self.bin, os.X_OK)):
            self.fatal = (f"binary {self.bin} not found (run bench/install-tansu.sh, "
                          f"or set TANSU_BIN)")
            raise BenchError(self.fatal)
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [str(self.bin), "broker",
               "--listener-url", url,
               "--advertised-listener-url", url,
               "--storage-engine", self.storage,
               "--cluster-id", "runnel-bench"]
        cmd += shlex.split(os.environ.get("TANSU_ARGS", ""))
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        self._spawn(cmd, cwd=data, env=env)


class BrokerCluster:
    """CLUSTER_NODES combined broker+controller nodes of one broker kind on
    loopback: a shared controller.quorum.voters and cluster id, a fresh data
    dir per node, started together (each node's startup needs the quorum)."""

    def __init__(self, name: str, nodes: list[Broker]):
        self.name = name
        self.nodes = nodes
        for i, node in enumerate(nodes):
            node.node_id = i + 1
            node.tag = f"{name}-node{i + 1}"

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def describe(self) -> str:
        return f"{len(self.nodes)} × {self.nodes[0].describe()}"

    def start(self, data: Path, logs: Path) -> None:
        ports: list[int] = []
        while len(ports) < 2 * len(self.nodes):
            p = free_port()
            if p not in ports:
                ports.append(p)
        voters = ",".join(f"{i + 1}@127.0.0.1:{ports[2 * i + 1]}" for i in range(len(self.nodes)))
        cid = kafka_cluster_id()
        for i, node in enumerate(self.nodes):
            node.port, node.cport = ports[2 * i], ports[2 * i + 1]
            node.voters, node.cluster_id = voters, cid
            node.extra = dict(CLUSTER_BROKER_CONFIG)
        for i, node in enumerate(self.nodes):
            d = data / f"node{i + 1}"
            d.mkdir(parents=True, exist_ok=True)
            node.begin(d, logs)
        for node in self.nodes:
            try:
                node.finish(logs, nodes=len(self.nodes))
            except BenchError as e:
                raise BenchError(f"{node.tag}: {e}") from None

    def alive(self) -> bool:
        return all(n.alive() for n in self.nodes)

    def dead(self) -> list[str]:
        return [n.tag for n in self.nodes if not n.alive()]

    def stop(self) -> None:
        """Stops all nodes at once (one by one, the last ones would wait for
        a controller quorum that is gone)."""
        import threading
        threads = [threading.Thread(target=n.stop) for n in self.nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in self.nodes:
            n.extra = {}

    def log_tails(self, n: int = 12) -> dict[str, str]:
        out = {}
        for node in self.nodes:
            f = node.log_path
            if isinstance(node, KafkaBroker) and node.use_script and f is not None:
                f = f.parent / f"{node.tag}-server.log"
            if f is not None and f.exists():
                out[node.tag] = tail(f, n)
        return out


# --------------------------------------------------------------------------
# Workload steps
# --------------------------------------------------------------------------

PRODUCE_RE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th")


def produce(java: Java, broker: Broker, topic: str, n: int, size: int, acks: str,
            extra_props: dict, logs: Path, timeout: float) -> dict:
    props = {"bootstrap.servers": broker.bootstrap, "acks": acks, **BASE_PRODUCER_PROPS,
             **extra_props}
    args = ["--topic", topic, "--num-records", str(n), "--record-size", str(size),
            "--throughput", "-1", "--producer-props", *[f"{k}={v}" for k, v in props.items()]]
    log_path = logs / "produce.log"
    rc, out, err = run_cmd(java.cmd("org.apache.kafka.tools.ProducerPerformance", args,
                                    TOOL_HEAP + JVM_PERF_OPTS), log_path, timeout)
    if rc == -999:
        raise BenchError(f"produce timed out after {timeout:.0f} s")
    m = last_match(PRODUCE_RE, out)
    if rc != 0 or m is None:
        raise BenchError(f"ProducerPerformance exit {rc}: {short(java_error(err, out))}")
    errors = err.count("Exception")
    res = {
        "records": int(m.group(1)),
        "records_per_sec": float(m.group(2)),
        "mb_per_sec": float(m.group(3)),
        "avg_ms": float(m.group(4)),
        "max_ms": float(m.group(5)),
        "p50_ms": int(m.group(6)),
        "p95_ms": int(m.group(7)),
        "p99_ms": int(m.group(8)),
        "p999_ms": int(m.group(9)),
        "exceptions_in_stderr": errors,
    }
    return res


def consume_group(java: Java, broker: Broker, topic: str, n: int, logs: Path,
                  timeout: float) -> dict:
    args = ["--bootstrap-server", broker.bootstrap, "--topic", topic, "--messages", str(n),
            "--timeout", "20000", "--group", f"bench-{uuid.uuid4().hex[:8]}"]
    rc, out, err = run_cmd(java.cmd("org.apache.kafka.tools.ConsumerPerformance", args,
                                    TOOL_HEAP + JVM_PERF_OPTS), logs / "consume-group.log",
                           timeout)
    if rc == -999:
        raise BenchError(f"ConsumerPerformance timed out after {timeout:.0f} s")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    hdr_i = next((i for i, ln in enumerate(lines) if ln.startswith("start.time")), None)
    if rc != 0 or hdr_i is None or hdr_i + 1 >= len(lines):
        raise BenchError(f"ConsumerPerformance exit {rc}: {short(java_error(err, out))}")
    keys = [k.strip() for k in lines[hdr_i].split(",")]
    vals = [v.strip() for v in lines[hdr_i + 1].split(",")]
    row = dict(zip(keys, vals))
    got = int(row["data.consumed.in.nMsg"])
    res = {
        "records": got,
        "mb": float(row["data.consumed.in.MB"]),
        # fetch.* exclude the time spent joining the group (rebalance.time.ms)
        "mb_per_sec": float(row["fetch.MB.sec"]),
        "records_per_sec": float(row["fetch.nMsg.sec"]),
        "total_mb_per_sec": float(row["MB.sec"]),
        "rebalance_ms": float(row["rebalance.time.ms"]),
        "fetch_ms": float(row["fetch.time.ms"]),
    }
    if got < n:
        raise BenchError(f"ConsumerPerformance read {got} of {n} records"
                         + (" (timed out)" if "WARNING: Exiting" in out + err else ""))
    return res


def consume_assign(java: Java, broker: Broker, topic: str, n: int, logs: Path,
                   timeout: float) -> dict:
    res = java.tool(["consume", broker.bootstrap, topic, str(n), "20000"],
                    logs / "consume-assign.log", timeout=timeout, perf=True)
    if res["records"] < n:
        raise BenchError(f"read {res['records']} of {n} records")
    return res


RDKAFKA_RE = re.compile(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms")


def rdkafka_perf_bin() -> str | None:
    """librdkafka's rdkafka_performance, built on first use (None when it cannot be)."""
    path = os.environ.get("RDKAFKA_PERF_BIN")
    if path:
        return path
    try:
        out = subprocess.run([str(HERE / "lib" / "build-rdkafka-perf.sh")], check=True,
                             capture_output=True, text=True, timeout=300).stdout.strip()
    except (subprocess.SubprocessError, OSError) as e:
        log(f"rdkafka_performance unavailable: {e}")
        return None
    return out.splitlines()[-1] if out else None


def consume_rdkafka(broker: Broker, topic: str, partitions: int, n: int, logs: Path,
                    timeout: float) -> dict:
    """librdkafka's perf tool (rdkafka_performance -C): a simple consumer over
    every partition from the beginning until n records (no group)."""
    tool = rdkafka_perf_bin()
    if tool is None:
        raise BenchError("rdkafka_performance not available (bench/lib/build-rdkafka-perf.sh)")
    cmd = [tool, "-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning",
           "-c", str(n), "-X", "fetch.max.bytes=52428800",
           "-X", "max.partition.fetch.bytes=1048576", "-X", "socket.receive.buffer.bytes=2097152"]
    for p in range(partitions):
        cmd += ["-p", str(p)]
    rc, out, err = run_cmd(cmd, logs / "consume-rdkafka.log", timeout)
    if rc == -999:
        raise BenchError(f"rdkafka_performance timed out after {timeout:.0f} s")
    m = last_match(RDKAFKA_RE, out)
    if m is None:
        raise BenchError(f"rdkafka_performance exit {rc}: {short(err or out)}")
    got, nbytes, ms = int(m.group(1)), int(m.group(2)), max(1, int(m.group(3)))
    if got < n:
        raise BenchError(f"rdkafka_performance read {got} of {n} records")
    return {"records": got, "mb": nbytes / 2**20, "ms": ms,
            "mb_per_sec": nbytes / 2**20 / (ms / 1000), "records_per_sec": got / (ms / 1000)}


def run_one(java: Java, broker: Broker, size: int, acks: str, n: int, args, logs: Path,
            data_root: Path) -> dict:
    logs.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix=f"{broker.name}-", dir=data_root))
    busy = wait_quiet(args.wait_idle, args.wait_idle_timeout)
    result: dict = {"broker": broker.name, "size": size, "acks": acks, "records": n,
                    "cpu_busy_before": round(busy, 2),
                    "load_avg_before": round(os.getloadavg()[0], 2), "logs": str(logs)}
    topic = f"bench-{size}b-acks{acks}"
    result["partitions"] = args.partitions
    try:
        t0 = time.time()
        broker.start(data, logs)
        result["startup_s"] = round(time.time() - t0, 1)
        java.tool(["create-topic", broker.bootstrap, topic, str(args.partitions), "60000"],
                  logs / "tools.log", timeout=120)
        result["produce"] = produce(java, broker, topic, n, size, acks, args.producer_prop,
                                    logs, args.timeout)
        if not broker.alive():
            raise BenchError("broker died during produce")
        if result["produce"]["exceptions_in_stderr"]:
            result.setdefault("warnings", []).append(
                f"{result['produce']['exceptions_in_stderr']} exceptions in producer stderr "
                f"(see produce.log)")
        end = java.tool(["end-offset", broker.bootstrap, topic], logs / "tools.log")["end_offset"]
        result["end_offset"] = end
        if end != n:
            # Not fatal: the consumers below count what is really there (Tansu
            # 0.6 memory:// under-reports the end offset by ~1 per batch while
            # serving every record).
            result.setdefault("warnings", []).append(
                f"end offset {end} after producing {n} records "
                f"({result['produce']['exceptions_in_stderr']} exceptions in producer stderr)")
        if "group" in args.consumer:
            try:
                result["consume_group"] = consume_group(java, broker, topic, n, logs, args.timeout)
            except BenchError as e:
                result["consume_group"] = {"error": str(e)}
                log(f"  {broker.name}: group consume failed: {e}")
        if "assign" in args.consumer:
            try:
                result["consume_assign"] = consume_assign(java, broker, topic, n, logs,
                                                          args.timeout)
            except BenchError as e:
                result["consume_assign"] = {"error": str(e)}
                log(f"  {broker.name}: assign consume failed: {e}")
        if "rdkafka" in args.consumer:
            try:
                result["consume_rdkafka"] = consume_rdkafka(broker, topic, args.partitions, n,
                                                            logs, args.timeout)
            except BenchError as e:
                result["consume_rdkafka"] = {"error": str(e)}
                log(f"  {broker.name}: rdkafka consume failed: {e}")
        if not broker.alive():
            result.setdefault("warnings", []).append("broker died during consume")
    except BenchError as e:
        result["error"] = str(e)
    except Exception as e:  # never abort the other brokers
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        broker.stop()
        result["load_avg_after"] = round(os.getloadavg()[0], 2)
        if not args.keep_data:
            shutil.rmtree(data, ignore_errors=True)
    return result


def group_consume(java: Java, broker: Broker, topic: str, n: int, protocol: str, args,
                  logs: Path) -> dict:
    """One GroupBench run: a fresh group of args.group_consumers consumers."""
    targs = ["run", broker.bootstrap, topic, str(args.group_partitions), str(n),
             str(args.group_consumers), protocol, "true" if args.group_kill else "false",
             str(int(args.timeout * 1000))]
    # phase timeouts inside the tool: consume <= args.timeout, then <= ~5 min
    res = java.tool(targs, logs / f"group-{protocol}.log", timeout=args.timeout + 360,
                    perf=True, cls="GroupBench")
    return res


def run_group(java: Java, broker: Broker, n: int, args, logs: Path, data_root: Path) -> dict:
    """Group workload on one broker: start it with GROUP_BROKER_CONFIG, produce
    n records to a fresh args.group_partitions-partition topic, then one
    GroupBench run (fresh group) per protocol."""
    logs.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix=f"{broker.name}-group-", dir=data_root))
    busy = wait_quiet(args.wait_idle, args.wait_idle_timeout)
    result: dict = {"broker": broker.name, "workload": "group", "records": n,
                    "size": args.group_size, "partitions": args.group_partitions,
                    "consumers": args.group_consumers, "cpu_busy_before": round(busy, 2),
                    "load_avg_before": round(os.getloadavg()[0], 2), "logs": str(logs)}
    topic = "bench-group"
    try:
        broker.extra = broker.group_config()
        result["broker_config"] = dict(broker.extra)
        t0 = time.time()
        broker.start(data, logs)
        result["startup_s"] = round(time.time() - t0, 1)
        java.tool(["create-topic", broker.bootstrap, topic, str(args.group_partitions), "60000"],
                  logs / "tools.log", timeout=120)
        result["produce"] = produce(java, broker, topic, n, args.group_size, "1",
                                    args.producer_prop, logs, args.timeout)
        if not broker.alive():
            raise BenchError("broker died during produce")
        end = java.tool(["end-offset", broker.bootstrap, topic], logs / "tools.log")["end_offset"]
        result["end_offset"] = end
        if end != n:
            result.setdefault("warnings", []).append(
                f"end offset {end} after producing {n} records")
        for proto in args.group_protocols:
            if not broker.alive():
                result[proto] = {"error": "broker died"}
                continue
            pbusy = wait_quiet(args.wait_idle, args.wait_idle_timeout)
            try:
                res = group_consume(java, broker, topic, n, proto, args, logs)
                res["cpu_busy_before"] = round(pbusy, 2)
                result[proto] = res
                log(f"  {broker.name} {proto}: first record {res['first_record_ms']:.0f} ms, "
                    f"all assigned {res.get('all_assigned_ms')} ms, "
                    f"{res['mb_per_sec']:.1f} MB/s, leave {res['leave_rebalance_ms']:.0f} ms"
                    + (f", kill -9 {res['kill_rebalance_ms']:.0f} ms"
                       if "kill_rebalance_ms" in res else ""))
            except BenchError as e:
                result[proto] = {"error": str(e), "cpu_busy_before": round(pbusy, 2)}
                log(f"  {broker.name} {proto}: FAILED: {e}")
        if not broker.alive():
            result.setdefault("warnings", []).append("broker died during the group runs")
    except BenchError as e:
        result["error"] = str(e)
    except Exception as e:  # never abort the other brokers
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        broker.stop()
        broker.extra = {}
        result["load_avg_after"] = round(os.getloadavg()[0], 2)
        if not args.keep_data:
            shutil.rmtree(data, ignore_errors=True)
    return result


def run_cluster(java: Java, cluster: BrokerCluster, n: int, size: int, args, logs: Path,
                data_root: Path) -> dict:
    """Cluster workload on one broker kind: start CLUSTER_NODES nodes, create a
    CLUSTER_PARTITIONS-partition topic with RF CLUSTER_RF and
    min.insync.replicas=CLUSTER_MIN_ISR, wait for full ISRs, produce n records
    with acks=all through all nodes, check the end offsets and ISRs, consume."""
    logs.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix=f"{cluster.name}-cluster-", dir=data_root))
    busy = wait_quiet(args.wait_idle, args.wait_idle_timeout)
    result: dict = {"broker": cluster.name, "workload": "cluster", "records": n, "size": size,
                    "nodes": len(cluster.nodes), "partitions": CLUSTER_PARTITIONS,
                    "rf": CLUSTER_RF, "min_isr": CLUSTER_MIN_ISR, "acks": "all",
                    "broker_config": dict(CLUSTER_BROKER_CONFIG),
                    "cpu_busy_before": round(busy, 2),
                    "load_avg_before": round(os.getloadavg()[0], 2), "logs": str(logs)}
    topic = "bench-cluster"
    tools_log = logs / "tools.log"
    try:
        t0 = time.time()
        cluster.start(data, logs)
        result["startup_s"] = round(time.time() - t0, 1)
        java.tool(["create-topic", cluster.bootstrap, topic, str(CLUSTER_PARTITIONS), "120000",
                   str(CLUSTER_RF), f"min.insync.replicas={CLUSTER_MIN_ISR}"],
                  tools_log, timeout=180)
        result["layout_before"] = java.tool(["describe", cluster.bootstrap, topic], tools_log)
        result["produce"] = produce(java, cluster, topic, n, size, "all", args.producer_prop,
                                    logs, args.timeout)
        dead = cluster.dead()
        if dead:
            raise BenchError(f"{', '.join(dead)} died during produce")
        if result["produce"]["exceptions_in_stderr"]:
            result.setdefault("warnings", []).append(
                f"{result['produce']['exceptions_in_stderr']} exceptions in producer stderr "
                f"(see produce.log)")
        after = java.tool(["describe", cluster.bootstrap, topic], tools_log)
        result["layout_after_produce"] = after
        if after.get("min_isr", 0) < CLUSTER_RF:
            result.setdefault("warnings", []).append(
                f"ISR below {CLUSTER_RF} after produce: {after.get('layout')}")
        end = java.tool(["end-offset", cluster.bootstrap, topic], tools_log)["end_offset"]
        result["end_offset"] = end
        if end != n:
            result.setdefault("warnings", []).append(
                f"end offset {end} after producing {n} records")
        if "group" in args.consumer:
            try:
                result["consume_group"] = consume_group(java, cluster, topic, n, logs,
                                                        args.timeout)
            except BenchError as e:
                result["consume_group"] = {"error": str(e)}
                log(f"  {cluster.name}: group consume failed: {e}")
        if "assign" in args.consumer:
            try:
                result["consume_assign"] = consume_assign(java, cluster, topic, n, logs,
                                                          args.timeout)
            except BenchError as e:
                result["consume_assign"] = {"error": str(e)}
                log(f"  {cluster.name}: assign consume failed: {e}")
        dead = cluster.dead()
        if dead:
            result.setdefault("warnings", []).append(f"{', '.join(dead)} died during consume")
    except BenchError as e:
        result["error"] = str(e)
    except Exception as e:  # never abort the other brokers
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if "error" in result or result.get("warnings"):
            # what the nodes said, for the report's reader (JSON) and the log
            result["node_log_tails"] = cluster.log_tails()
        cluster.stop()
        result["load_avg_after"] = round(os.getloadavg()[0], 2)
        if not args.keep_data:
            shutil.rmtree(data, ignore_errors=True)
    return result


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

PRODUCE_METRICS = [
    ("produce MB/s", ("produce", "mb_per_sec"), "{:.1f}"),
    ("produce rec/s", ("produce", "records_per_sec"), "{:,.0f}"),
    ("p50 ms", ("produce", "p50_ms"), "{}"),
    ("p99 ms", ("produce", "p99_ms"), "{}"),
]
CONSUME_METRICS = [
    ("consume MB/s (assign)", ("consume_assign", "mb_per_sec"), "{:.1f}"),
    ("consume rec/s (assign)", ("consume_assign", "records_per_sec"), "{:,.0f}"),
    ("consume MB/s (group)", ("consume_group", "mb_per_sec"), "{:.1f}"),
    ("consume rec/s (group)", ("consume_group", "records_per_sec"), "{:,.0f}"),
    ("consume MB/s (rdkafka)", ("consume_rdkafka", "mb_per_sec"), "{:.1f}"),
    ("consume rec/s (rdkafka)", ("consume_rdkafka", "records_per_sec"), "{:,.0f}"),
]


def metric(res: dict | None, path: tuple[str, str]):
    if not res or "error" in res:
        return None
    sec = res.get(path[0])
    if not isinstance(sec, dict) or "error" in sec:
        return None
    return sec.get(path[1])


def cell(res: dict | None, path, fmt) -> str:
    if res is None:
        return "not run"
    if "error" in res:
        return "—"
    sec = res.get(path[0])
    if sec is None:
        return "not run"
    if "error" in sec:
        return "failed: " + short(sec["error"], 90)
    v = sec.get(path[1])
    return "—" if v is None else fmt.format(v)


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}"


def table(title: str, metrics, rows: dict, brokers: list[str]) -> list[str]:
    # ratio columns runnel/<other> for the other brokers of this run
    others = [b for b in brokers if b != "runnel"] if "runnel" in brokers else []
    hdr = ["broker"]
    for name, _, _ in metrics:
        hdr += [name] + [f"runnel/{o}" for o in others]
    out = [f"**{title}**", "", "| " + " | ".join(hdr) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(hdr) - 1)) + "|"]
    run = rows.get("runnel")
    for b in brokers:
        res = rows.get(b)
        if res is not None and "error" in res:
            cells = [b, "failed: " + short(res["error"], 140)] + ["—"] * (len(hdr) - 2)
        else:
            cells = [b]
            for _, path, fmt in metrics:
                cells.append(cell(res, path, fmt))
                if b == "runnel":
                    cells += [ratio(metric(run, path), metric(rows.get(o), path))
                              for o in others]
                else:
                    cells += [""] * len(others)
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]


def group_metrics(proto: str, kill: bool):
    m = [
        ("first record ms", (proto, "first_record_ms"), "{:,.0f}"),
        ("every consumer has a record ms", (proto, "all_first_record_ms"), "{:,.0f}"),
        ("every consumer assigned ms", (proto, "all_assigned_ms"), "{:,.0f}"),
        ("leave: reassigned ms", (proto, "leave_rebalance_ms"), "{:,.0f}"),
    ]
    if kill:
        m.append(("kill -9: reassigned ms", (proto, "kill_rebalance_ms"), "{:,.0f}"))
    m += [("group MB/s", (proto, "mb_per_sec"), "{:.1f}"),
          ("group rec/s", (proto, "records_per_sec"), "{:,.0f}")]
    return m


def render_group(group_results: list[dict], gm: dict, brokers: list[str]) -> list[str]:
    rows = {r["broker"]: r for r in group_results}
    lines = [f"## Group workload: {gm['consumers']} consumers, one group, "
             f"{gm['partitions']} partitions, {gm['records']:,} × {gm['size']} B records", "",
             f"The data set is produced once per broker (ProducerPerformance, acks=1) into a "
             f"fresh {gm['partitions']}-partition topic; then, per protocol, a fresh group of "
             f"{gm['consumers']} KafkaConsumers (one thread each, one JVM: "
             f"`bench/lib/GroupBench.java`) all subscribe at t0 and read it. "
             "*first record*: t0 → first record at any consumer; *every consumer has a "
             "record* / *assigned*: t0 → the last consumer's first record / first non-empty "
             "assignment; *leave*: one consumer close()s, ms from the start of close() until "
             "the others' assignments cover every partition again"
             + ("; *kill -9*: a member in a child JVM is SIGKILLed, ms until the others cover "
                "every partition (≥ the 6 s session timeout)" if gm["kill"] else "")
             + "; *group MB/s, rec/s*: all consumers together, first record → last record of "
             "the data set (unique offsets). Times: lower is better (ratio below 1 = Runnel "
             "faster); MB/s, rec/s: higher is better.", "",
             "Group settings (both brokers): broker "
             + ", ".join(f"`{k}={v}`" for k, v in GROUP_BROKER_CONFIG.items())
             + " (Kafka also " + ", ".join(f"`{k}={v}`" for k, v in
                                          KAFKA_GROUP_BROKER_CONFIG.items())
             + ", which its validation needs); classic consumers `session.timeout.ms=6000`, "
             "`heartbeat.interval.ms=2000`; offsets committed on revocation, auto-commit off.",
             ""]
    for proto in gm["protocols"]:
        lines += table(f"{proto}: {GROUP_PROTOCOL_TITLES.get(proto, proto)}",
                       group_metrics(proto, gm["kill"]), rows, brokers)
    notes = []
    for b in brokers:
        r = rows.get(b)
        if r is None:
            continue
        parts = [f"CPU {r.get('cpu_busy_before', 0):.0%} busy before",
                 f"load {r.get('load_avg_before')}→{r.get('load_avg_after')}"]
        if "startup_s" in r:
            parts.append(f"startup {r['startup_s']} s")
        p = r.get("produce")
        if isinstance(p, dict) and "error" not in p:
            parts.append(f"pre-produce {p['mb_per_sec']:.1f} MB/s")
        for proto in gm["protocols"]:
            x = r.get(proto)
            if not isinstance(x, dict) or "error" in x:
                continue
            extra = [f"CPU {x.get('cpu_busy_before', 0):.0%} before"]
            if x.get("close_ms") is not None:
                extra.append(f"close() {x['close_ms']:,.0f} ms"
                             + (f" (of which commit {x['close_commit_ms']:,.0f} ms)"
                                if x.get("close_commit_ms") is not None else ""))
            if x.get("delivered", 0) > x.get("records", 0):
                extra.append(f"{x['delivered'] - x['records']:,} re-delivered")
            parts.append(f"{proto}: " + ", ".join(extra))
        parts += [f"WARNING: {w}" for w in r.get("warnings", [])]
        notes.append(f"{b}: " + ", ".join(parts))
    if notes:
        lines += ["<sub>" + "; ".join(notes) + "</sub>", ""]
    return lines


def render_cluster(cluster_results: list[dict], cm: dict, brokers: list[str]) -> list[str]:
    rows = {r["broker"]: r for r in cluster_results}
    bs = [b for b in brokers if b in CLUSTER_BROKERS]
    lines = [f"## Cluster workload: {cm['nodes']} brokers, {cm['partitions']} partitions, "
             f"RF={cm['rf']}, min.insync.replicas={cm['min_isr']}, acks=all, "
             f"{cm['records']:,} × {cm['size']} B records", "",
             f"Per broker kind, {cm['nodes']} combined broker+controller processes on loopback "
             "(shared `controller.quorum.voters` and cluster id, fresh data dirs); node config "
             + ", ".join(f"`{k}={v}`" for k, v in CLUSTER_BROKER_CONFIG.items())
             + f". Kafka nodes `{' '.join(CLUSTER_KAFKA_HEAP)}` each. The topic is created "
             f"with RF {cm['rf']} and `min.insync.replicas={cm['min_isr']}`, and the run waits "
             "until every partition has all replicas in its ISR. ProducerPerformance "
             "(`acks=all`, idempotent by default) and the consumers bootstrap from all nodes "
             "and read from the partition leaders. Tansu is not run (no replication).", ""]
    lines += table("produce (acks=all)", PRODUCE_METRICS, rows, bs)
    lines += table("consume", CONSUME_METRICS, rows, bs)
    notes = []
    for b in bs:
        r = rows.get(b)
        if r is None:
            continue
        parts = [f"CPU {r.get('cpu_busy_before', 0):.0%} busy before",
                 f"load {r.get('load_avg_before')}→{r.get('load_avg_after')}"]
        if "startup_s" in r:
            parts.append(f"cluster startup {r['startup_s']} s")
        lb = r.get("layout_before")
        if isinstance(lb, dict) and lb.get("leaders"):
            parts.append("leaders per node " + ", ".join(
                f"{k}: {v}" for k, v in sorted(lb["leaders"].items())))
        la = r.get("layout_after_produce")
        if isinstance(la, dict) and "min_isr" in la:
            parts.append(f"smallest ISR after produce {la['min_isr']}/{la.get('replicas')}")
        parts += [f"WARNING: {short(w, 300)}" for w in r.get("warnings", [])]
        notes.append(f"{b}: " + ", ".join(parts))
    if notes:
        lines += ["<sub>" + "; ".join(notes) + "</sub>", ""]
    return lines


def render(results: list[dict], meta: dict, brokers: list[str], workloads,
           group_results: list[dict] | None = None, group_meta: dict | None = None,
           cluster_results: list[dict] | None = None, cluster_meta: dict | None = None) -> str:
    lines = [f"# Runnel benchmark — {meta['started']}", ""]
    lines += [f"- host: {meta['host']}, {meta['cpus']} CPUs; load average at start {meta['load']}",
              f"- tools: ProducerPerformance / ConsumerPerformance from {meta['kafka_libs']}",
              f"- producer props (all brokers): {meta['producer_props']}, throughput=-1",
              f"- command: `{meta['command']}` at {meta['git']}"]
    if workloads or group_meta is not None:
        for b in brokers:
            lines.append(f"- {meta['brokers'].get(b, b)}")
    if cluster_meta is not None:
        for b in brokers:
            if b in meta.get("clusters", {}):
                lines.append(f"- cluster workload: {meta['clusters'][b]}")
        lines.append(f"- cluster workload: Kafka nodes run with a modest heap, "
                     f"`{' '.join(CLUSTER_KAFKA_HEAP)}` each (3 JVMs, 2 cores, 24 GB)")
    lines += ["",
              "Ratios are runnel ÷ other: above 1 is better for MB/s and rec/s, "
              "below 1 is better for latency and times."
              + (" `assign` = group-less consumer "
                 "(BenchTool, assign()+seekToBeginning()); `group` = ConsumerPerformance "
                 "(fetch.* figures, group-join time excluded)."
                 if workloads or cluster_meta is not None else ""), ""]
    for size, acks, n in workloads:
        rows = {r["broker"]: r for r in results
                if r["size"] == size and r["acks"] == acks}
        parts = next((r.get("partitions", 1) for r in rows.values()), 1)
        lines.append(f"## {size} B records, acks={acks}, {n:,} records, "
                     f"{parts} partition{'s' if parts != 1 else ''}")
        lines.append("")
        lines += table("produce", PRODUCE_METRICS, rows, brokers)
        lines += table("consume", CONSUME_METRICS, rows, brokers)
        notes = []
        for b in brokers:
            r = rows.get(b)
            if r is None:
                continue
            notes.append(f"{b}: CPU {r.get('cpu_busy_before', 0):.0%} busy before, "
                         f"load {r.get('load_avg_before')}→{r.get('load_avg_after')}"
                         + (f", startup {r['startup_s']} s" if "startup_s" in r else "")
                         + "".join(f", WARNING: {w}" for w in r.get("warnings", [])))
        if notes:
            lines += ["<sub>" + "; ".join(notes) + "</sub>", ""]
    if group_meta is not None:
        lines += render_group(group_results or [], group_meta, brokers)
    if cluster_meta is not None:
        lines += render_cluster(cluster_results or [], cluster_meta, brokers)
    return "\n".join(lines)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "broker"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{rev}{' (broker/ modified)' if dirty else ''}" if rev else "?"
    except Exception:
        return "?"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench/run.sh",
        description="Produce/consume throughput of runnel-broker vs Apache Kafka vs Tansu.")
    p.add_argument("--brokers", default=",".join(ALL_BROKERS),
                   help="comma-separated subset of runnel,kafka,tansu (default: all)")
    p.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                   help="comma-separated subset of produce,group,cluster (default: "
                        "produce,group). produce: the 1-partition produce/consume matrix; "
                        "group: the consumer-group workload; cluster: 3 brokers, 6 "
                        "partitions, RF 3, min.insync.replicas 2, acks=all (runnel and "
                        "kafka only)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK_RECORDS[100]:,} x 100 B and "
                        f"{QUICK_RECORDS[1024]:,} x 1 KiB records")
    p.add_argument("--records", type=int,
                   help="records per run for every record size (overrides the defaults "
                        f"{DEFAULT_RECORDS[100]:,} x 100 B, {DEFAULT_RECORDS[1024]:,} x 1 KiB)")
    p.add_argument("--sizes", default="100,1024", help="record sizes in bytes (default 100,1024)")
    p.add_argument("--acks", default="1,all", help="acks settings (default 1,all)")
    p.add_argument("--consumer", default="both",
                   help="comma-separated consumers: assign (the group-less BenchTool "
                        "KafkaConsumer), group (ConsumerPerformance, needs consumer groups), "
                        "rdkafka (librdkafka's rdkafka_performance -C, built on first use by "
                        "bench/lib/build-rdkafka-perf.sh); both = assign,group (default); "
                        "all = assign,group,rdkafka")
    p.add_argument("--partitions", type=int, default=1, metavar="P",
                   help="produce workload: partitions of its topic (default 1); e.g. "
                        "--partitions 6 --sizes 1024 --consumer all for multi-partition fetch")
    p.add_argument("--group-consumers", type=int, default=3, metavar="N",
                   help="group workload: consumers in the group (default 3)")
    p.add_argument("--group-partitions", type=int, default=12, metavar="P",
                   help="group workload: partitions of its topic (default 12)")
    p.add_argument("--group-records", type=int, default=None, metavar="N",
                   help=f"group workload: records pre-produced and consumed (default "
                        f"{DEFAULT_GROUP_RECORDS:,}; --quick {QUICK_GROUP_RECORDS:,})")
    p.add_argument("--group-size", type=int, default=100, metavar="BYTES",
                   help="group workload: record size (default 100)")
    p.add_argument("--group-protocols", default=",".join(GROUP_PROTOCOLS),
                   help="group workload: comma-separated subset of " + ",".join(GROUP_PROTOCOLS)
                        + " (default: all)")
    p.add_argument("--no-group-kill", dest="group_kill", action="store_false",
                   help="group workload: skip the kill -9 rebalance (saves ~15 s per "
                        "protocol and broker)")
    p.add_argument("--cluster-records", type=int, default=None, metavar="N",
                   help=f"cluster workload: records produced and consumed (default --records, "
                        f"else {DEFAULT_CLUSTER_RECORDS:,}; --quick {QUICK_CLUSTER_RECORDS:,})")
    p.add_argument("--cluster-size", type=int, default=DEFAULT_CLUSTER_SIZE, metavar="BYTES",
                   help=f"cluster workload: record size (default {DEFAULT_CLUSTER_SIZE})")
    p.add_argument("--producer-prop", action="append", default=[], metavar="K=V",
                   help="extra producer property for every broker (repeatable)")
    p.add_argument("--tansu-storage", default=os.environ.get("TANSU_STORAGE", "memory://tansu/"),
                   help="Tansu --storage-engine URL (default memory://tansu/). Tansu runs "
                        "in the run's fresh data dir and resolves sqlite:// paths against "
                        "it, so use e.g. sqlite://tansu.db for a local file")
    p.add_argument("--timeout", type=float, default=600,
                   help="seconds allowed for each produce / consume step (default 600)")
    p.add_argument("--wait-idle", type=float, metavar="FRACTION", default=None,
                   help="before each run wait until the machine's CPUs are less than "
                        "FRACTION busy (e.g. 0.2) over a 2 s sample; the sample is recorded "
                        "either way")
    p.add_argument("--wait-idle-timeout", type=float, default=600,
                   help="give up waiting for --wait-idle after this many seconds and run "
                        "anyway (default 600)")
    p.add_argument("--results", default=str(HERE / "results"),
                   help="where latest.md, latest.json and logs go (default bench/results)")
    p.add_argument("--workdir", default=None,
                   help="parent dir for the brokers' fresh data dirs (default: a new temp dir)")
    p.add_argument("--keep-data", action="store_true", help="do not delete broker data dirs")
    a = p.parse_args(argv)
    a.brokers = [b.strip() for b in a.brokers.split(",") if b.strip()]
    bad = [b for b in a.brokers if b not in ALL_BROKERS]
    if bad:
        p.error(f"unknown broker(s) {bad}; choose from {ALL_BROKERS}")
    a.workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    bad = [w for w in a.workloads if w not in ALL_WORKLOADS]
    if bad or not a.workloads:
        p.error(f"bad --workloads {bad}; choose from {ALL_WORKLOADS}")
    a.group_protocols = [x.strip() for x in a.group_protocols.split(",") if x.strip()]
    bad = [x for x in a.group_protocols if x not in GROUP_PROTOCOLS]
    if bad or not a.group_protocols:
        p.error(f"bad --group-protocols {bad}; choose from {GROUP_PROTOCOLS}")
    if a.group_consumers < 2:
        p.error("--group-consumers must be at least 2 (one of them leaves)")
    if a.group_records is None:
        a.group_records = QUICK_GROUP_RECORDS if a.quick else DEFAULT_GROUP_RECORDS
    if a.cluster_records is None:
        a.cluster_records = a.records or (QUICK_CLUSTER_RECORDS if a.quick
                                          else DEFAULT_CLUSTER_RECORDS)
    alias = {"both": ["assign", "group"], "all": ["assign", "group", "rdkafka"]}
    cons: list[str] = []
    for c in a.consumer.split(","):
        c = c.strip()
        for x in alias.get(c, [c]):
            if x not in ("assign", "group", "rdkafka"):
                p.error(f"bad --consumer {c}")
            if x not in cons:
                cons.append(x)
    a.consumer = cons
    if a.partitions < 1:
        p.error("--partitions must be at least 1")
    a.sizes = [int(s) for s in a.sizes.split(",")]
    a.acks = [x.strip() for x in a.acks.split(",")]
    for x in a.acks:
        if x not in ("0", "1", "all", "-1"):
            p.error(f"bad acks {x}")
    props = {}
    for kv in a.producer_prop:
        k, _, v = kv.partition("=")
        props[k] = v
    a.producer_prop = props
    return a


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    libs = Path(os.environ.get("KAFKA_LIBS", ""))
    if not libs.is_dir() or not list(libs.glob("kafka-tools-*.jar")):
        print("KAFKA_LIBS is not set to a directory with the Kafka jars; use bench/run.sh",
              file=sys.stderr)
        return 2
    started = dt.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    results_dir = Path(args.results)
    run_dir = results_dir / "runs" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="runnel-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    java = Java(libs, run_dir)
    brokers: dict[str, Broker] = {}
    for b in args.brokers:
        if b == "runnel":
            brokers[b] = RunnelBroker(java)
        elif b == "kafka":
            brokers[b] = KafkaBroker(java)
        else:
            brokers[b] = TansuBroker(java, args.tansu_storage)

    def records_for(size: int) -> int:
        if args.records:
            return args.records
        table_ = QUICK_RECORDS if args.quick else DEFAULT_RECORDS
        if size in table_:
            return table_[size]
        # other sizes: same byte volume as the 1 KiB default
        return max(1000, table_[1024] * 1024 // size)

    clusters: dict[str, BrokerCluster] = {}
    cluster_meta = None
    if "cluster" in args.workloads:
        for b in args.brokers:
            if b == "runnel":
                clusters[b] = BrokerCluster(b, [RunnelBroker(java) for _ in range(CLUSTER_NODES)])
            elif b == "kafka":
                clusters[b] = BrokerCluster(b, [KafkaBroker(java, heap=CLUSTER_KAFKA_HEAP)
                                                for _ in range(CLUSTER_NODES)])
        cluster_meta = {"nodes": CLUSTER_NODES, "partitions": CLUSTER_PARTITIONS,
                        "rf": CLUSTER_RF, "min_isr": CLUSTER_MIN_ISR,
                        "records": args.cluster_records, "size": args.cluster_size,
                        "broker_config": dict(CLUSTER_BROKER_CONFIG),
                        "kafka_heap": " ".join(CLUSTER_KAFKA_HEAP)}

    workloads = ([(s, a, records_for(s)) for s in args.sizes for a in args.acks]
                 if "produce" in args.workloads else [])
    group_meta = None
    if "group" in args.workloads:
        group_meta = {"consumers": args.group_consumers, "partitions": args.group_partitions,
                      "records": args.group_records, "size": args.group_size,
                      "protocols": args.group_protocols, "kill": args.group_kill}
    meta = {
        "started": started.strftime("%Y-%m-%d %H:%M:%S"),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "kafka_libs": str(libs),
        "producer_props": ", ".join(f"{k}={v}" for k, v in
                                    {**BASE_PRODUCER_PROPS, **args.producer_prop}.items()),
        "git": git_rev(),
        "command": ("bench/run.sh " + shlex.join(sys.argv[1:] if argv is None else argv)).strip(),
        "brokers": {n: b.describe() for n, b in brokers.items()},
        "workloads": workloads,
        "group": group_meta,
        "cluster": cluster_meta,
        "clusters": {n: c.describe() for n, c in clusters.items()},
    }
    log(f"results -> {run_dir}; broker data under {work}")
    results: list[dict] = []
    group_results: list[dict] = []
    cluster_results: list[dict] = []

    def save_partial() -> None:
        (run_dir / "results.json").write_text(
            json.dumps({"meta": meta, "results": results, "group_results": group_results,
                        "cluster_results": cluster_results}, indent=2))

    try:
        # Workload-major order: the brokers' runs of one workload are adjacent
        # in time, so background load drifts affect them alike.
        for size, acks, n in workloads:
            for name, broker in brokers.items():
                log(f"{name}: {n:,} x {size} B, acks={acks}")
                res = run_one(java, broker, size, acks, n, args,
                              run_dir / f"{size}b-acks{acks}" / name, work)
                results.append(res)
                if "error" in res:
                    log(f"  {name}: FAILED: {res['error']}")
                else:
                    p = res["produce"]
                    msg = (f"  {name}: produce {p['mb_per_sec']:.1f} MB/s "
                           f"{p['records_per_sec']:,.0f} rec/s p50 {p['p50_ms']} ms "
                           f"p99 {p['p99_ms']} ms")
                    for k in ("consume_assign", "consume_group", "consume_rdkafka"):
                        c = res.get(k)
                        if c and "error" not in c:
                            msg += f"; {k.split('_')[1]} {c['mb_per_sec']:.1f} MB/s"
                    log(msg)
                # keep partial results on disk as we go
                save_partial()
        if group_meta is not None:
            for name, broker in brokers.items():
                log(f"{name}: group workload, {args.group_consumers} consumers, "
                    f"{args.group_partitions} partitions, {args.group_records:,} x "
                    f"{args.group_size} B, protocols {','.join(args.group_protocols)}")
                res = run_group(java, broker, args.group_records, args,
                                run_dir / "group" / name, work)
                group_results.append(res)
                if "error" in res:
                    log(f"  {name}: FAILED: {res['error']}")
                save_partial()
        if cluster_meta is not None:
            if "tansu" in args.brokers:
                log("tansu: not in the cluster workload (no replication)")
            for name, cl in clusters.items():
                log(f"{name}: cluster workload, {CLUSTER_NODES} nodes, {CLUSTER_PARTITIONS} "
                    f"partitions, RF {CLUSTER_RF}, min.insync.replicas {CLUSTER_MIN_ISR}, "
                    f"acks=all, {args.cluster_records:,} x {args.cluster_size} B")
                res = run_cluster(java, cl, args.cluster_records, args.cluster_size, args,
                                  run_dir / "cluster" / name, work)
                cluster_results.append(res)
                if "error" in res:
                    log(f"  {name}: FAILED: {res['error']}")
                else:
                    p = res["produce"]
                    msg = (f"  {name}: produce {p['mb_per_sec']:.1f} MB/s "
                           f"{p['records_per_sec']:,.0f} rec/s p50 {p['p50_ms']} ms "
                           f"p99 {p['p99_ms']} ms")
                    for k in ("consume_assign", "consume_group"):
                        c = res.get(k)
                        if c and "error" not in c:
                            msg += f"; {k.split('_')[1]} {c['mb_per_sec']:.1f} MB/s"
                    log(msg)
                for w in res.get("warnings", []):
                    log(f"  {name}: WARNING: {w}")
                for tag, t in res.get("node_log_tails", {}).items():
                    log(f"  {tag} log tail:\n" + "\n".join("    " + ln for ln in t.splitlines()))
                save_partial()
    except KeyboardInterrupt:
        log("interrupted; reporting what has run")
    finally:
        for b in brokers.values():
            b.stop()
        for c in clusters.values():
            c.stop()
        if not args.workdir and not args.keep_data:
            shutil.rmtree(work, ignore_errors=True)

    md = render(results, meta, args.brokers, workloads, group_results, group_meta,
                cluster_results, cluster_meta)
    (run_dir / "results.md").write_text(md + "\n")
    (results_dir / "latest.md").write_text(md + "\n")
    (results_dir / "latest.json").write_text(
        json.dumps({"meta": meta, "results": results, "group_results": group_results,
                    "cluster_results": cluster_results}, indent=2))
    print(md)
    log(f"wrote {results_dir / 'latest.md'} (logs in {run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
