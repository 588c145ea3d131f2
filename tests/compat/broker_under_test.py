"""A broker of its own for the hostile-input tests (test_bad_input.py,
test_fuzz_frames.py), so what they do to a broker cannot leak into other tests.

With RUNNEL_BROKER_BIN (and no KAFKA_BOOTSTRAP) it starts a fresh Runnel under
an address space limit (`prlimit --as`, RUNNEL_AS_LIMIT bytes, default 4 GiB):
a decoder that sizes an allocation from a count read off the wire then aborts
the process, where unlimited overcommit would hide it. Otherwise it is the
suite's configured broker (Apache Kafka with COMPAT_APACHE_KAFKA=1, or
KAFKA_BOOTSTRAP), as started."""
from __future__ import annotations

import os
import socket
import stat
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path

import conftest

AS_LIMIT = int(os.environ.get("RUNNEL_AS_LIMIT", str(4 << 30)))


class Target:
    def __init__(self, bootstrap, proc=None, kind="", logs=()):
        self.bootstrap = bootstrap
        self.proc = proc
        self.kind = kind
        self.logs = logs

    def assert_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            why = [line for p in self.logs if Path(p).exists()
                   for line in Path(p).read_text(errors="replace").splitlines()
                   if "memory allocation of" in line or "panicked at" in line]
            raise AssertionError(f"the broker ({self.kind}) exited with {self.proc.returncode}: "
                                 f"{why[:3]}\n" + conftest._tails(self.logs, 10))


@contextmanager
def target(request):
    binary = os.environ.get("RUNNEL_BROKER_BIN")
    if binary and not os.environ.get("KAFKA_BOOTSTRAP"):
        wrapper = Path(tempfile.mkdtemp(prefix="runnel-limited-")) / "runnel-broker-limited"
        wrapper.write_text(f"#!/bin/sh\nexec prlimit --as={AS_LIMIT} -- {binary} \"$@\"\n")
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        h = conftest._start_runnel(str(wrapper))
        try:
            limits = Path(f"/proc/{h.proc.pid}/limits").read_text()
            assert str(AS_LIMIT) in limits, f"no address space limit on the broker:\n{limits}"
            yield Target(h.bootstrap, h.proc, f"runnel under prlimit --as={AS_LIMIT}", h.logs)
        finally:
            h.stop()
    else:
        yield Target(request.getfixturevalue("bootstrap"), None, "the configured broker")


def read_exact(s, n):
    """n bytes from s, or None if the peer closed first."""
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_response(s):
    """One response frame (without its size), or None if the peer closed.
    Raises ConnectionResetError on a reset and socket.timeout on silence."""
    size = read_exact(s, 4)
    if size is None:
        return None
    return read_exact(s, struct.unpack(">i", size)[0])


def connect(bootstrap, timeout):
    host, port = bootstrap.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)
