"""UnregisterBroker (API 64, issue 11): `kafka-cluster unregister` removes a
stopped broker's registration, so DescribeCluster, even with
`--include-fenced-brokers` (v2, KIP-1073), no longer lists it; an id that is
not registered gets BROKER_ID_NOT_REGISTERED with Kafka's message; the
broker registers again when it restarts. Through Kafka 4.1.1's own
`kafka-cluster` tool against any broker; passes on Apache Kafka 4.1.1 with
the same layout (CLUSTER_APACHE_KAFKA=1).

Before this, Runnel did not serve UnregisterBroker (the tool failed with
UNSUPPORTED_VERSION) and DescribeCluster ignored IncludeFencedBrokers."""

from __future__ import annotations

import time

import compat_util as cu

CLUSTER_TOOL = "org.apache.kafka.tools.ClusterTool"


def _endpoints(node, fenced=True):
    """`kafka-cluster list-endpoints` through `node`: broker id -> its row."""
    args = ["list-endpoints", "--bootstrap-server", node.bootstrap]
    if fenced:
        args.append("--include-fenced-brokers")
    p = cu.kafka_tool(CLUSTER_TOOL, *args, timeout=90)
    rows = {}
    for line in p.stdout_text.splitlines()[1:]:
        cols = line.split()
        if cols and cols[0].isdigit():
            rows[int(cols[0])] = line
    return rows


def _unregister(node, broker_id):
    p = cu.kafka_tool(CLUSTER_TOOL, "unregister", "--bootstrap-server", node.bootstrap, "--id", str(broker_id),
                      timeout=90, check=False)
    return p.stdout_text + p.stderr_text


def _wait(what, check, timeout=60):
    deadline = time.time() + timeout
    while True:
        got = check()
        if got or time.time() > deadline:
            break
        time.sleep(1)
    assert got, what


def test_an_unknown_id_is_not_registered(cluster):
    out = _unregister(cluster.nodes[0], 9)
    assert "Broker ID 9 is not currently registered" in out, out


def test_a_stopped_broker_is_unregistered_and_registers_again_on_restart(cluster):
    n3 = cluster.nodes[2]
    via = cluster.nodes[1]
    assert set(_endpoints(via)) == {1, 2, 3}
    n3.stop()
    _wait("broker 3 is not fenced after its shutdown",
          lambda: 3 in _endpoints(via) and 3 not in _endpoints(via, fenced=False))
    assert "fenced" in _endpoints(via)[3].lower(), _endpoints(via)[3]
    out = _unregister(via, 3)
    assert "Broker 3 is no longer registered." in out, out
    _wait("broker 3 is still listed after UnregisterBroker", lambda: set(_endpoints(via)) == {1, 2})
    assert set(_endpoints(cluster.nodes[0])) == {1, 2}
    out = _unregister(cluster.nodes[0], 3)
    assert "Broker ID 3 is not currently registered" in out, out
    n3.start()
    cluster.wait_brokers(3)
    _wait("broker 3 did not register again", lambda: set(_endpoints(via, fenced=False)) == {1, 2, 3})
