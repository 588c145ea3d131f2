"""The health endpoint (`runnel-broker --health-port P`) the operator's pods
are probed on: `/ready` answers 200 only once the broker serves (registered,
unfenced, caught up), not as soon as its port is bound. A node started while
the quorum has no majority has its client port open (a TCP probe would call
it ready) but answers 503 until a second voter starts; `/live` answers 200
throughout. Runnel-only: Apache Kafka has no such endpoint (Strimzi adds an
agent for it), so the oracle run skips this module."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

import compat_util as cu
from conftest import APACHE, Cluster
from faults_util import wait_for

pytestmark = pytest.mark.skipif(APACHE, reason="a Runnel endpoint; Apache Kafka has none")


def _get(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_ready_only_once_the_broker_serves():
    c = Cluster(3)
    health = {}
    for n in c.nodes:
        health[n.node_id] = cu.free_port()
        n.format_args = ["--health-port", str(health[n.node_id])]
    try:
        n1 = c.nodes[0].start()
        # Bound, but no majority of the voters: not registered, so not ready.
        wait_for(lambda: cu.port_open("127.0.0.1", n1.port) and cu.port_open("127.0.0.1", health[1]),
                 60, "node 1's client port and health port", interval=0.2)
        time.sleep(2)
        code, body = _get(health[1], "/ready")
        assert code == 503 and "not ready" in body, (code, body)
        assert _get(health[1], "/live")[0] == 200
        for n in c.nodes[1:]:
            n.start()
        for nid, port in health.items():
            wait_for(lambda p=port: _get(p, "/ready") == (200, "ready\n"), 90, f"node {nid} ready", interval=0.2)
        c.wait_brokers(3)
        assert _get(health[2], "/nope")[0] == 404
        assert _get(health[2], "/ready", method="POST")[0] == 405
        # A controlled shutdown: not ready (or gone) from the moment it starts.
        c.nodes[2].signal_stop()
        wait_for(lambda: not cu.port_open("127.0.0.1", health[3]) or _get(health[3], "/ready")[0] == 503,
                 30, "node 3 not ready once it shuts down", interval=0.2)
        c.nodes[2].wait_stopped()
        assert _get(health[1], "/ready")[0] == 200
    finally:
        c.close()
