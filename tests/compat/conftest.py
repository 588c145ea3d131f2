"""Fixtures for the Kafka client compatibility suite.

Which broker is tested (first match wins):
  KAFKA_BOOTSTRAP=host:port      an already running broker (Runnel, Apache Kafka, ...)
  RUNNEL_BROKER_BIN=/path/bin    start that binary with a fresh temp data dir
  COMPAT_APACHE_KAFKA=1          start the real Apache Kafka via scripts/run-apache-kafka.sh
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compat_util as cu  # noqa: E402

BROKER_START_TIMEOUT = float(os.environ.get("COMPAT_BROKER_START_TIMEOUT", "60"))
LOG_TAIL_LINES = int(os.environ.get("COMPAT_LOG_TAIL_LINES", "80"))


class BrokerHandle:
    def __init__(self, bootstrap, kind, logs=(), proc=None, workdir=None, stop=None):
        self.bootstrap = bootstrap
        self.kind = kind
        self.logs = [Path(p) for p in logs]
        self.proc = proc
        self.workdir = workdir
        self._stop = stop
        self.offsets = {}

    def mark(self):
        """Remember the current size of each log so a failure shows only new lines."""
        self.offsets = {p: (p.stat().st_size if p.exists() else 0) for p in self.logs}

    def log_since_mark(self, max_lines=LOG_TAIL_LINES):
        out = []
        for p in self.logs:
            if not p.exists():
                continue
            with open(p, "rb") as f:
                f.seek(self.offsets.get(p, 0))
                lines = f.read().decode(errors="replace").splitlines()
            if not lines:
                continue
            skipped = max(0, len(lines) - max_lines)
            out.append(f"==> {p} (last {len(lines) - skipped} of {len(lines)} new lines) <==")
            out.extend(lines[skipped:])
        return "\n".join(out)

    def stop(self):
        if self._stop:
            self._stop()
            self._stop = None


def _wait_ready(bootstrap, proc=None, logs=()):
    host, port = bootstrap.rsplit(":", 1)
    deadline = time.time() + BROKER_START_TIMEOUT
    while not cu.port_open(host, int(port)):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode} before listening\n"
                               + _tails(logs))
        if time.time() > deadline:
            raise RuntimeError(f"broker did not listen on {bootstrap} within {BROKER_START_TIMEOUT}s\n"
                               + _tails(logs))
        time.sleep(0.1)
    # listening is not the same as serving metadata: wait for a broker in Metadata
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


def _tails(logs, n=LOG_TAIL_LINES):
    out = []
    for p in logs:
        p = Path(p)
        if p.exists():
            lines = p.read_text(errors="replace").splitlines()
            out.append(f"==> {p} (last {min(n, len(lines))} lines) <==")
            out.extend(lines[-n:])
    return "\n".join(out)


def _start_runnel(binary):
    work = Path(tempfile.mkdtemp(prefix="runnel-compat-"))
    data = work / "data"
    data.mkdir()
    port, cport = cu.free_port(), cu.free_port()
    while cport == port:
        cport = cu.free_port()
    cmd = [binary,
           "--override", f"log.dirs={data}",
           "--override", f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
           "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
           "--override", f"controller.quorum.voters=1@127.0.0.1:{cport}"]
    extra = os.environ.get("RUNNEL_BROKER_ARGS")
    if extra:
        import shlex
        cmd += shlex.split(extra)
    out_log, err_log = work / "broker.stdout.log", work / "broker.stderr.log"
    (work / "cmdline").write_text(" ".join(map(str, cmd)) + "\n")
    proc = subprocess.Popen(cmd, stdout=open(out_log, "wb"), stderr=open(err_log, "wb"),
                            stdin=subprocess.DEVNULL, start_new_session=True)
    logs = [err_log, out_log]

    def stop(keep=os.environ.get("COMPAT_KEEP_DATA") == "1"):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)

    bootstrap = f"127.0.0.1:{port}"
    try:
        _wait_ready(bootstrap, proc, logs)
    except Exception as e:
        stop(keep=True)  # keep the logs for inspection
        raise RuntimeError(f"{e}\n(broker command line and logs kept in {work})") from None
    return BrokerHandle(bootstrap, f"runnel ({binary})", logs, proc, work, stop)


def _start_apache():
    work = Path(tempfile.mkdtemp(prefix="apache-kafka-compat-"))
    port = cu.free_port()
    script = cu.SCRIPTS / "run-apache-kafka.sh"
    cu.run(["bash", str(script), str(work), str(port)], timeout=150)

    def stop():
        subprocess.run(["bash", str(script), "stop", str(work)], capture_output=True, timeout=60)
        if os.environ.get("COMPAT_KEEP_DATA") != "1":
            shutil.rmtree(work, ignore_errors=True)

    bootstrap = f"127.0.0.1:{port}"
    _wait_ready(bootstrap)
    return BrokerHandle(bootstrap, "apache-kafka (scripts/run-apache-kafka.sh)",
                        [work / "server.log", work / "stdout.log"], None, work, stop)


_BROKER: BrokerHandle | None = None


@pytest.fixture(scope="session")
def broker():
    global _BROKER
    cu.load_env_sh()
    if os.environ.get("KAFKA_BOOTSTRAP"):
        bs = os.environ["KAFKA_BOOTSTRAP"]
        _wait_ready(bs)
        h = BrokerHandle(bs, "external")
    elif os.environ.get("RUNNEL_BROKER_BIN"):
        h = _start_runnel(os.environ["RUNNEL_BROKER_BIN"])
    elif os.environ.get("COMPAT_APACHE_KAFKA") == "1":
        h = _start_apache()
    else:
        pytest.fail("no broker to test: set KAFKA_BOOTSTRAP=host:port, RUNNEL_BROKER_BIN=/path/to/broker "
                    "or COMPAT_APACHE_KAFKA=1 (see tests/compat/README.md)", pytrace=False)
    _BROKER = h
    try:
        yield h
    finally:
        _BROKER = None
        h.stop()


@pytest.fixture(scope="session")
def bootstrap(broker) -> str:
    return broker.bootstrap


@pytest.fixture(scope="session")
def broker_id(bootstrap) -> int:
    md = cu.admin_client(bootstrap).list_topics(timeout=15)
    assert len(md.brokers) >= 1, f"Metadata lists no brokers: {md.brokers}"
    return sorted(md.brokers)[0]


@pytest.fixture
def topic_name(request) -> str:
    return cu.unique_topic(request.node.name)


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
            rep.sections.append((f"broker log during this test [{_BROKER.kind}]", text))
    if rep.when == "setup" and _BROKER is not None:
        _BROKER.mark()


def pytest_report_header(config):
    for k in ("KAFKA_BOOTSTRAP", "RUNNEL_BROKER_BIN", "COMPAT_APACHE_KAFKA"):
        if os.environ.get(k):
            return f"compat broker: {k}={os.environ[k]}"
    return "compat broker: none configured"
