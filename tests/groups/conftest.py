"""Fixtures for the consumer-group suite.

The broker is chosen like tests/compat (first match wins):
  KAFKA_BOOTSTRAP=host:port   an already running broker (restart tests are skipped)
  RUNNEL_BROKER_BIN=/path     start runnel-broker with a temp data dir
  COMPAT_APACHE_KAFKA=1       start Apache Kafka via scripts/run-apache-kafka.sh

Started brokers get groups_util.GROUP_OVERRIDES and can be restarted in place (same
data dir, same ports), gracefully or with kill -9, for the durability tests.
"""

from __future__ import annotations

import os
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
sys.path.insert(0, str(HERE))
if str(HERE.parent / "compat") not in sys.path:
    sys.path.append(str(HERE.parent / "compat"))  # after ours: tests/compat has a conftest.py too

import compat_util as cu  # noqa: E402  (tests/compat helpers)
import groups_util as gu  # noqa: E402

BROKER_START_TIMEOUT = float(os.environ.get("COMPAT_BROKER_START_TIMEOUT", "90"))
LOG_TAIL_LINES = int(os.environ.get("COMPAT_LOG_TAIL_LINES", "80"))

GROUP_OVERRIDES = gu.GROUP_OVERRIDES


def _tails(logs, n=LOG_TAIL_LINES):
    out = []
    for p in logs:
        p = Path(p)
        if p.exists():
            lines = p.read_text(errors="replace").splitlines()
            out.append(f"==> {p} (last {min(n, len(lines))} lines) <==")
            out.extend(line[:2000] for line in lines[-n:])
    return "\n".join(out)


def wait_ready(bootstrap, proc=None, logs=(), timeout=BROKER_START_TIMEOUT):
    """Wait for the port, then for Metadata to list a broker."""
    host, port = bootstrap.rsplit(":", 1)
    deadline = time.time() + timeout
    while not cu.port_open(host, int(port)):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode} before listening\n" + _tails(logs))
        if time.time() > deadline:
            raise RuntimeError(f"broker did not listen on {bootstrap} within {timeout}s\n" + _tails(logs))
        time.sleep(0.1)
    adm = cu.admin_client(bootstrap)
    last = None
    while time.time() < deadline:
        try:
            md = adm.list_topics(timeout=5)
            if md.brokers:
                return md
        except Exception as e:  # noqa: BLE001
            last = e
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}\n" + _tails(logs))
        time.sleep(0.2)
    raise RuntimeError(f"broker on {bootstrap} did not answer Metadata: {last!r}\n" + _tails(logs))


class GroupBroker:
    """A broker the suite can stop and start again on the same data dir and ports."""

    def __init__(self, kind):
        self.kind = kind  # "runnel" | "apache" | "external"
        self.proc = None
        self.workdir = None
        self.offsets = {}
        self.restarts = 0
        if kind == "external":
            self.bootstrap = os.environ["KAFKA_BOOTSTRAP"]
            self.logs = []
            return
        self.workdir = Path(tempfile.mkdtemp(prefix=f"groups-{kind}-"))
        self.port = cu.free_port()
        self.cport = cu.free_port()
        while self.cport == self.port:
            self.cport = cu.free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        if kind == "runnel":
            self.binary = os.environ["RUNNEL_BROKER_BIN"]
            (self.workdir / "data").mkdir()
            self.logs = [self.workdir / "broker.stderr.log", self.workdir / "broker.stdout.log"]
        else:
            self.logs = [self.workdir / "server.log", self.workdir / "stdout.log"]

    @property
    def can_restart(self):
        return self.kind != "external"

    @property
    def label(self):
        return {"runnel": f"runnel ({getattr(self, 'binary', '')})",
                "apache": "apache-kafka (scripts/run-apache-kafka.sh)",
                "external": f"external {self.bootstrap}"}[self.kind]

    # ---------------------------------------------------------------- lifecycle
    def start(self):
        if self.kind == "external":
            wait_ready(self.bootstrap)
        elif self.kind == "runnel":
            self._start_runnel()
        else:
            self._start_apache()

    def _start_runnel(self):
        cmd = [self.binary,
               "--override", f"log.dirs={self.workdir / 'data'}",
               "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.cport}",
               "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
               "--override", f"controller.quorum.voters=1@127.0.0.1:{self.cport}"]
        for k, v in GROUP_OVERRIDES.items():
            cmd += ["--override", f"{k}={v}"]
        extra = os.environ.get("RUNNEL_BROKER_ARGS")
        if extra:
            cmd += shlex.split(extra)
        (self.workdir / "cmdline").write_text(shlex.join(map(str, cmd)) + "\n")
        # append: a restarted broker keeps the earlier logs above its own
        self.proc = subprocess.Popen(cmd, stdout=open(self.logs[1], "ab"), stderr=open(self.logs[0], "ab"),
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_ready(self.bootstrap, self.proc, self.logs)
        except Exception as e:
            raise RuntimeError(f"{e}\n(broker command line and logs in {self.workdir})") from None

    def _start_apache(self):
        script = cu.SCRIPTS / "run-apache-kafka.sh"
        env = dict(os.environ, KAFKA_CONTROLLER_PORT=str(self.cport))
        # run-apache-kafka.sh truncates server.log on start: keep the previous one
        log = self.workdir / "server.log"
        if log.exists() and log.stat().st_size:
            shutil.copy(log, self.workdir / f"server.log.{self.restarts}")
        cu.run(["bash", str(script), str(self.workdir), str(self.port),
                *[f"{k}={v}" for k, v in GROUP_OVERRIDES.items()]], timeout=150, env=env)
        wait_ready(self.bootstrap)

    def _pid(self):
        if self.kind == "runnel":
            return self.proc.pid if self.proc and self.proc.poll() is None else None
        pidf = self.workdir / "pid"
        return int(pidf.read_text()) if pidf.exists() else None

    def stop(self, timeout=60):
        """Graceful stop (SIGTERM, wait)."""
        if self.kind == "runnel":
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
                    raise AssertionError(f"runnel-broker did not exit within {timeout}s of SIGTERM")
        elif self.kind == "apache":
            subprocess.run(["bash", str(cu.SCRIPTS / "run-apache-kafka.sh"), "stop", str(self.workdir)],
                           capture_output=True, timeout=timeout + 30)

    def kill9(self):
        pid = self._pid()
        assert pid, "broker is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 30
        if self.kind == "runnel":
            self.proc.wait(timeout=30)
        else:
            while time.time() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            (self.workdir / "pid").unlink(missing_ok=True)

    def restart(self, kill=False):
        """Stop (gracefully, or kill -9) and start again on the same data dir and ports."""
        assert self.can_restart, "cannot restart an external broker"
        if kill:
            self.kill9()
        else:
            self.stop()
        host, port = self.bootstrap.rsplit(":", 1)
        deadline = time.time() + 30
        while cu.port_open(host, int(port)) and time.time() < deadline:
            time.sleep(0.1)
        self.restarts += 1
        self.start()

    def close(self):
        self.stop()
        if self.workdir and os.environ.get("COMPAT_KEEP_DATA") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ---------------------------------------------------------------- logs for failing tests
    def mark(self):
        self.offsets = {p: (p.stat().st_size if p.exists() else 0) for p in self.logs}

    def log_since_mark(self, max_lines=LOG_TAIL_LINES):
        out = []
        for p in self.logs:
            if not p.exists():
                continue
            with open(p, "rb") as f:
                start = self.offsets.get(p, 0)
                if start > p.stat().st_size:  # truncated by a restart
                    start = 0
                f.seek(start)
                lines = f.read().decode(errors="replace").splitlines()
            if not lines:
                continue
            skipped = max(0, len(lines) - max_lines)
            out.append(f"==> {p} (last {len(lines) - skipped} of {len(lines)} new lines) <==")
            out.extend(line[:2000] for line in lines[skipped:])
        return "\n".join(out)


_BROKER: GroupBroker | None = None


@pytest.fixture(scope="session")
def broker():
    global _BROKER
    cu.load_env_sh()
    if os.environ.get("KAFKA_BOOTSTRAP"):
        kind = "external"
    elif os.environ.get("RUNNEL_BROKER_BIN"):
        kind = "runnel"
    elif os.environ.get("COMPAT_APACHE_KAFKA") == "1":
        kind = "apache"
    else:
        pytest.fail("no broker to test: set KAFKA_BOOTSTRAP=host:port, RUNNEL_BROKER_BIN=/path/to/broker "
                    "or COMPAT_APACHE_KAFKA=1 (see tests/groups/README.md)", pytrace=False)
    b = GroupBroker(kind)
    try:
        b.start()
    except Exception as first:  # noqa: BLE001
        if kind == "external":
            raise
        # one retry on fresh ports and a fresh dir: a port picked by free_port()
        # can be taken before the broker binds it, and run-apache-kafka.sh fails
        # to format when its random cluster id starts with "-" (1 in 64 starts)
        print(f"broker start failed (dir {b.workdir}), retrying once with new ports: {first}", file=sys.stderr)
        b.stop()
        b = GroupBroker(kind)
        try:
            b.start()
        except Exception:
            print(f"broker start failed again; data kept in {b.workdir}", file=sys.stderr)
            raise
    _BROKER = b
    try:
        yield b
    finally:
        _BROKER = None
        b.close()


@pytest.fixture(scope="session")
def bootstrap(broker) -> str:
    return broker.bootstrap


@pytest.fixture
def restartable_broker(broker):
    if not broker.can_restart:
        pytest.skip("KAFKA_BOOTSTRAP broker: the suite cannot restart it")
    return broker


@pytest.fixture
def names(request):
    """Unique topic/group names for this test: names('topic'), names('group')."""
    base = cu.unique_topic(request.node.name)

    def make(kind="topic"):
        return f"{base}-{kind}"
    return make


@pytest.fixture(scope="session")
def java_classes(tmp_path_factory):
    """GroupWorker.java compiled once per session (java/GroupWorker.java)."""
    return gu.compile_java(tmp_path_factory.mktemp("java-classes"))


@pytest.fixture
def workers(request, bootstrap, tmp_path):
    """Factory for consumer worker processes (kind "ck" = confluent-kafka, "java");
    kills leftovers at the end of the test. A failing test's report shows each
    worker's event summary and stderr."""
    made = []
    request.node._group_workers = made

    def make(kind, group, topic, name, **cfg):
        classes = request.getfixturevalue("java_classes") if kind == "java" else None
        w = gu.Worker(kind, bootstrap, group, topic, name, tmp_path, java_classes=classes, **cfg)
        made.append(w)
        return w
    yield make
    for w in made:
        w.kill()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    if _BROKER is not None:
        _BROKER.mark()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _BROKER is not None and _BROKER.logs:
        text = _BROKER.log_since_mark()
        if text:
            rep.sections.append((f"broker log during this test [{_BROKER.label}]", text))
    if rep.failed:
        for w in getattr(item, "_group_workers", []):
            rep.sections.append((f"worker {w.name}", w.describe()))
    if rep.when == "setup" and _BROKER is not None:
        _BROKER.mark()


def pytest_report_header(config):
    for k in ("KAFKA_BOOTSTRAP", "RUNNEL_BROKER_BIN", "COMPAT_APACHE_KAFKA"):
        if os.environ.get(k):
            return f"groups broker: {k}={os.environ[k]}"
    return "groups broker: none configured"
