"""Shared helpers for the client compatibility suite (no pytest fixtures here)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
KAFKA_TOOL = SCRIPTS / "kafka-tool"

COMPRESSIONS = ["none", "gzip", "snappy", "lz4", "zstd"]


def load_env_sh() -> dict:
    """Source scripts/env.sh and copy what it exports into os.environ."""
    out = subprocess.run(
        ["bash", "-c", f". {shlex.quote(str(SCRIPTS / 'env.sh'))} && env -0"],
        check=True, capture_output=True, timeout=30,
    ).stdout
    env = dict(kv.split("=", 1) for kv in out.decode().split("\0") if "=" in kv)
    keys = ["RUNNEL_CACHE", "KAFKA_VERSION", "KAFKA_HOME", "KAFKA_LIBS", "KAFKA_STREAMS_LIBS", "JAVA", "JAVA_HOME",
            "KAFKA_TOOL_JVM_OPTS", "KAFKA_TOOL_LOG4J"]
    for k in keys:
        if k in env:
            os.environ[k] = env[k]
    return {k: env[k] for k in keys if k in env}


def unique_topic(tag: str) -> str:
    # no '_' or '.': Kafka warns that the two collide in metric names
    tag = re.sub(r"[^A-Za-z0-9-]+", "-", tag)[:80].strip("-")
    return f"compat-{tag}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def recv_exact(sock, n: int) -> bytes:
    """Read exactly n bytes; ConnectionError if the peer closes first."""
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed by the broker")
        out += chunk
    return out


def raw_api_versions(sock, corr: int = 1) -> bool:
    """Send ApiVersions v0 on a raw socket; True when the answer carries `corr`."""
    import struct
    body = struct.pack(">hhih", 18, 0, corr, 4) + b"test"
    sock.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    return struct.unpack(">i", recv_exact(sock, size)[:4])[0] == corr


def now_ms() -> int:
    return int(time.time() * 1000)


def run(cmd, *, input=None, timeout=90, check=True, env=None):
    """Run a command; on failure raise with its full output so the test shows what it got."""
    if isinstance(input, str):
        input = input.encode()
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"command timed out after {timeout}s: {shlex.join(map(str, cmd))}\n"
            f"--- stdout ---\n{(e.stdout or b'').decode(errors='replace')}\n"
            f"--- stderr ---\n{(e.stderr or b'').decode(errors='replace')}") from None
    p.stdout_text = p.stdout.decode(errors="replace")
    p.stderr_text = p.stderr.decode(errors="replace")
    if check and p.returncode != 0:
        raise AssertionError(
            f"command failed (exit {p.returncode}): {shlex.join(map(str, cmd))}\n"
            f"--- stdout ---\n{p.stdout_text}\n--- stderr ---\n{p.stderr_text}")
    return p


def run_java_source(src, *args, heap="512m", timeout=200):
    """Runs a single-file Java program (`java Foo.java ...`) against the
    kafka-clients jars in $KAFKA_LIBS (scripts/env.sh is sourced when it is
    unset, as the cluster suite leaves it for Runnel). Fails the test when no
    jar is there; returns the process (check=False)."""
    return run(java_source_command(src, *args, heap=heap), timeout=timeout, check=False)


def java_source_command(src, *args, heap="512m"):
    """The command line of run_java_source (for a program the test runs in
    the background)."""
    if not os.environ.get("KAFKA_LIBS"):
        load_env_sh()
    libs = os.environ.get("KAFKA_LIBS", "")
    if not list(Path(libs).glob("kafka-clients-*.jar")):
        import pytest
        pytest.fail(f"no kafka-clients jar in KAFKA_LIBS={libs!r}; run scripts/install-test-deps.sh")
    java = os.environ.get("JAVA", "java")
    return [java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", f"-Xmx{heap}",
            f"-Dlog4j2.configurationFile={os.environ.get('KAFKA_TOOL_LOG4J', '')}",
            "-cp", f"{libs}/*", str(src), *map(str, args)]


def kafka_tool(tool, *args, input=None, timeout=90, check=True):
    return run([str(KAFKA_TOOL), tool, *map(str, args)], input=input, timeout=timeout, check=check)


# --------------------------------------------------------------- confluent admin helpers

def admin_client(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 30000})


def wait_topic_ready(bootstrap, topic, partitions, timeout=30.0):
    """Wait until metadata shows `partitions` partitions, each with a leader."""
    adm = admin_client(bootstrap)
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            md = adm.list_topics(topic=topic, timeout=10)
            t = md.topics.get(topic)
            last = t
            if t is not None and t.error is None and len(t.partitions) == partitions and all(
                    p.leader >= 0 and p.error is None for p in t.partitions.values()):
                return md
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(0.2)
    raise AssertionError(f"topic {topic} not ready with {partitions} partitions after {timeout}s: {last!r}")


def create_topic(bootstrap, topic, partitions=1, config=None, timeout=30.0):
    from confluent_kafka.admin import NewTopic
    adm = admin_client(bootstrap)
    fut = adm.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                      config=dict(config or {}))],
                            operation_timeout=timeout, request_timeout=timeout)
    fut[topic].result(timeout=timeout)
    wait_topic_ready(bootstrap, topic, partitions, timeout)
    return topic


def topic_names(bootstrap):
    return set(admin_client(bootstrap).list_topics(timeout=15).topics)


# --------------------------------------------------------------- test data

def make_records(n, *, base_ts=None, partitions=1, null_header_values=True, seed=0):
    """Deterministic records exercising keys, NULL keys/values, empty values,
    binary payloads, a large value, duplicate/NULL headers and explicit timestamps."""
    if base_ts is None:
        base_ts = now_ms() - 60_000
    recs = []
    for i in range(n):
        j = i + seed
        key = None if j % 5 == 2 else f"key-{j}".encode()
        if j % 7 == 3:
            value = None
        elif j % 11 == 4:
            value = b""
        elif j % 13 == 6:
            value = (f"large-{j}-".encode() + bytes(range(256))) * 400  # ~100 KiB
        elif j % 4 == 1:
            value = bytes((j * 31 + k) % 256 for k in range(64))  # binary, non UTF-8
        else:
            value = f"value-{j}-{'x' * (j % 17)}".encode()
        if j % 3 == 0:
            headers = []
        elif j % 3 == 1:
            headers = [("h", f"v{j}".encode()), ("h", b"dup"), ("empty", b"")]
        else:
            headers = [("bin", bytes(range(0, 256, 3)))]
            if null_header_values:
                headers.append(("null", None))
        recs.append({
            "key": key, "value": value, "headers": headers,
            "timestamp": base_ts + i * 7, "partition": i % partitions,
        })
    return recs


def short(b, n=60):
    if b is None:
        return None
    return b if len(b) <= n else b[:n] + b"...(%d bytes)" % len(b)
