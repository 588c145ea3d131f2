"""Fixtures for the crash/restart durability suite.

Each test gets its own broker on a fresh data directory, which the test can
kill -9, stop with SIGTERM and start again on the same directory and ports.

Which broker (first match wins):
  RUNNEL_BROKER_BIN=/path/bin   that binary (default: <repo>/target/release/runnel-broker)
  DURABILITY_APACHE_KAFKA=1     the real Apache Kafka via scripts/run-apache-kafka.sh
                                (reference run; slow, about 1 GiB of heap per broker)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "compat"))

import compat_util as cu  # noqa: E402

START_TIMEOUT = float(os.environ.get("DURABILITY_BROKER_START_TIMEOUT", "60"))
LOG_TAIL_LINES = int(os.environ.get("DURABILITY_LOG_TAIL_LINES", "60"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Broker configs every test runs with: the retention check runs often.
BASE_OVERRIDES = {"log.retention.check.interval.ms": "500"}


def _two_ports():
    port, cport = cu.free_port(), cu.free_port()
    while cport == port:
        cport = cu.free_port()
    return port, cport


def _tail(path: Path, n: int) -> list[str]:
    if not path.exists():
        return []
    lines = ANSI.sub("", path.read_text(errors="replace")).splitlines()
    return [f"==> {path.name} (last {min(n, len(lines))} of {len(lines)} lines) <=="] + lines[-n:]


def _wait_metadata(bootstrap, alive, describe, timeout=START_TIMEOUT):
    """Wait for the port, then for a broker in Metadata; `alive()` is False once the process died."""
    host, port = bootstrap.rsplit(":", 1)
    deadline = time.time() + timeout
    while not cu.port_open(host, int(port)):
        if not alive():
            raise RuntimeError(f"broker exited before listening on {bootstrap}\n{describe()}")
        if time.time() > deadline:
            raise RuntimeError(f"broker did not listen on {bootstrap} within {timeout}s\n{describe()}")
        time.sleep(0.05)
    adm = cu.admin_client(bootstrap)
    last = None
    while time.time() < deadline:
        try:
            md = adm.list_topics(timeout=5)
            if md.brokers:
                return md
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        if not alive():
            raise RuntimeError(f"broker exited during startup\n{describe()}")
        time.sleep(0.1)
    raise RuntimeError(f"broker on {bootstrap} did not answer Metadata: {last!r}\n{describe()}")


class RunnelBroker:
    """A runnel-broker process that can be killed and restarted on the same dir and ports."""

    kind = "runnel"
    # SIGTERM is a graceful shutdown that exits 0
    graceful_exit_code = 0

    def __init__(self, binary: str, work: Path, overrides: dict):
        self.binary = binary
        self.work = work
        self.data = work / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port, self.cport = _two_ports()
        self.overrides = {**BASE_OVERRIDES, **overrides}
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.logs: list[Path] = []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cmdline(self) -> list[str]:
        cmd = [self.binary,
               "--override", f"log.dirs={self.data}",
               "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.cport}",
               "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
               "--override", f"controller.quorum.voters=1@127.0.0.1:{self.cport}"]
        for k, v in self.overrides.items():
            cmd += ["--override", f"{k}={v}"]
        extra = os.environ.get("RUNNEL_BROKER_ARGS")
        if extra:
            cmd += shlex.split(extra)
        return cmd

    def start(self):
        assert not self.running(), "broker already running"
        self.starts += 1
        n = self.starts
        err, out = self.work / f"broker.{n}.stderr.log", self.work / f"broker.{n}.stdout.log"
        self.logs += [err, out]
        cmd = self.cmdline()
        (self.work / f"cmdline.{n}").write_text(shlex.join(map(str, cmd)) + "\n")
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        _wait_metadata(self.bootstrap, self.running, self.describe)
        return self

    def kill9(self):
        assert self.running(), f"broker not running (exit code {self.proc and self.proc.returncode})"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def sigterm(self, timeout=15.0):
        """SIGTERM; returns the exit code, or raises if it does not exit within `timeout`."""
        assert self.running(), f"broker not running (exit code {self.proc and self.proc.returncode})"
        t0 = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"broker did not exit within {timeout}s of SIGTERM (killed it)\n"
                                 + self.describe()) from None
        print(f"broker exited {rc} {time.time() - t0:.2f}s after SIGTERM")
        return rc

    def close(self):
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def describe(self, n=LOG_TAIL_LINES) -> str:
        out = [f"[{self.kind} {self.binary}, work dir {self.work}, started {self.starts}x, "
               f"exit code {self.proc.poll() if self.proc else None}]"]
        for p in self.logs:
            out += _tail(p, n)
        return "\n".join(out)


class ApacheKafkaBroker:
    """The real Apache Kafka (scripts/run-apache-kafka.sh), for checking the suite itself."""

    kind = "apache-kafka"
    # The JVM exits 143 on SIGTERM after Kafka's shutdown hook ran; the exit
    # code is not observable anyway (the script detaches the process).
    graceful_exit_code = None

    def __init__(self, work: Path, overrides: dict):
        self.work = work
        self.dir = work / "ak"
        self.data = self.dir / "data"
        self.port, self.cport = _two_ports()
        # Kafka delays its first retention check by log.initial.task.delay.ms (30 s)
        self.overrides = {**BASE_OVERRIDES, "log.initial.task.delay.ms": "0", **overrides}
        self._pid = None
        self.starts = 0
        self.logs: list[Path] = []
        self.script = cu.SCRIPTS / "run-apache-kafka.sh"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self._pid

    def running(self) -> bool:
        if self._pid is None:
            return False
        try:
            os.kill(self._pid, 0)
        except ProcessLookupError:
            return False
        st = Path(f"/proc/{self._pid}/stat")
        return not (st.exists() and st.read_text().split(") ", 1)[1].startswith("Z"))

    def _save_log(self):
        log = self.dir / "server.log"
        if log.exists() and self.starts:
            shutil.copy(log, self.work / f"server.{self.starts}.log")

    def start(self):
        assert not self.running()
        self._save_log()
        self.starts += 1
        env = dict(os.environ, KAFKA_CONTROLLER_PORT=str(self.cport))
        cu.run(["bash", str(self.script), str(self.dir), str(self.port),
                *[f"{k}={v}" for k, v in self.overrides.items()]], timeout=150, env=env)
        self._pid = int((self.dir / "pid").read_text())
        self.logs = sorted(self.work.glob("server.*.log")) + [self.dir / "server.log"]
        _wait_metadata(self.bootstrap, self.running, self.describe)
        return self

    def _wait_gone(self, timeout):
        deadline = time.time() + timeout
        while self.running():
            if time.time() > deadline:
                return False
            time.sleep(0.05)
        # the detached JVM may stay a zombie (nobody reaps it); the script's
        # "already running" check would see it
        (self.dir / "pid").unlink(missing_ok=True)
        return True

    def kill9(self):
        assert self.running()
        os.kill(self._pid, signal.SIGKILL)
        assert self._wait_gone(10)

    def sigterm(self, timeout=15.0):
        assert self.running()
        os.kill(self._pid, signal.SIGTERM)
        if not self._wait_gone(timeout):
            os.kill(self._pid, signal.SIGKILL)
            raise AssertionError(f"Kafka did not exit within {timeout}s of SIGTERM\n" + self.describe())
        return None

    def close(self):
        if self.running():
            subprocess.run(["bash", str(self.script), "stop", str(self.dir)], capture_output=True, timeout=60)

    def describe(self, n=LOG_TAIL_LINES) -> str:
        out = [f"[{self.kind}, dir {self.dir}, started {self.starts}x]"]
        for p in self.logs:
            out += _tail(p, n)
        return "\n".join(out)


_BROKERS: list = []


def _binary():
    b = os.environ.get("RUNNEL_BROKER_BIN") or str(REPO / "target" / "release" / "runnel-broker")
    if not Path(b).is_file():
        pytest.fail(f"no broker binary at {b}: build it (cargo build --release -p runnel-broker) "
                    "or set RUNNEL_BROKER_BIN", pytrace=False)
    return b


@pytest.fixture
def make_broker(request):
    """make_broker(**broker_config_overrides) -> a started broker on a fresh data dir."""
    apache = os.environ.get("DURABILITY_APACHE_KAFKA") == "1"
    if apache:
        cu.load_env_sh()
    made = []

    def make(**overrides):
        work = Path(tempfile.mkdtemp(prefix="runnel-durability-"))
        ov = {k.replace("_", "."): str(v) for k, v in overrides.items()}
        b = ApacheKafkaBroker(work, ov) if apache else RunnelBroker(_binary(), work, ov)
        made.append(b)
        _BROKERS.append(b)
        return b.start()

    yield make
    failed = getattr(request.node, "_durability_failed", False)
    for b in made:
        b.close()
        _BROKERS.remove(b)
        if failed or os.environ.get("DURABILITY_KEEP_DATA") == "1":
            print(f"kept {b.work}")
        else:
            shutil.rmtree(b.work, ignore_errors=True)


@pytest.fixture
def topic_name(request) -> str:
    return cu.unique_topic(request.node.name).replace("compat-", "dur-", 1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        item._durability_failed = True
        for b in _BROKERS:
            rep.sections.append((f"broker logs [{b.kind}] (data kept in {b.work})", b.describe()))


def pytest_report_header(config):
    if os.environ.get("DURABILITY_APACHE_KAFKA") == "1":
        return "durability broker: Apache Kafka (scripts/run-apache-kafka.sh)"
    return "durability broker: " + (os.environ.get("RUNNEL_BROKER_BIN")
                                    or str(REPO / "target" / "release" / "runnel-broker"))
