"""Feature versions (KIP-584/KIP-778, issue 11): `metadata.version` is
finalized when the cluster is formatted (`--release-version`, as
`kafka-storage format`'s), every node reports the supported and finalized
levels in ApiVersions, and UpdateFeatures, sent through any broker, changes
it with Kafka's checks: an upgrade every broker supports, a safe downgrade
(no metadata format change in between), a refused unsafe downgrade, an
unknown feature, a level no broker supports, validate-only. All through
Kafka 4.1.1's own `kafka-features` tool; passes on Apache Kafka 4.1.1 with
the same layout (CLUSTER_APACHE_KAFKA=1).

Before this, Runnel advertised no features and did not serve
UpdateFeatures: `kafka-features describe` listed nothing and every
upgrade failed with UNSUPPORTED_VERSION."""

from __future__ import annotations

import time

import pytest

import compat_util as cu
from conftest import Cluster, managed


@pytest.fixture(scope="module")
def cluster(request):
    def make():
        c = Cluster(3)
        for n in c.nodes:
            n.format_args = ["--release-version", "3.9"]
        return c

    yield from managed(request, make)


def _features(node):
    """`kafka-features describe` through `node`: feature -> its fields."""
    p = cu.kafka_tool("features", "--bootstrap-server", node.bootstrap, "describe", timeout=90)
    out = {}
    for line in p.stdout_text.splitlines():
        if not line.startswith("Feature:"):
            continue
        fields = dict(f.split(": ", 1) for f in line.split("\t"))
        out[fields["Feature"]] = fields
    return out


def _features_cmd(node, *args):
    p = cu.kafka_tool("features", "--bootstrap-server", node.bootstrap, *args, timeout=90, check=False)
    return p.returncode, p.stdout_text + p.stderr_text


def _wait_level(cluster, level, timeout=30):
    """Every node reports metadata.version finalized at `level`."""
    deadline = time.time() + timeout
    while True:
        got = [_features(n)["metadata.version"]["FinalizedVersionLevel"] for n in cluster.nodes]
        if all(g == level for g in got) or time.time() > deadline:
            break
        time.sleep(0.5)
    assert all(g == level for g in got), got


def test_every_node_reports_the_release_version_it_was_formatted_at(cluster):
    for n in cluster.nodes:
        mv = _features(n)["metadata.version"]
        assert mv["SupportedMinVersion"] == "3.3-IV3", mv
        assert mv["SupportedMaxVersion"] == "4.1-IV1", mv
        assert mv["FinalizedVersionLevel"] == "3.9-IV0", mv
        assert int(mv["Epoch"]) > 0, mv


def test_validate_only_and_invalid_updates_change_nothing(cluster):
    rc, out = _features_cmd(cluster.nodes[0], "upgrade", "--metadata", "4.1", "--dry-run")
    assert rc == 0 and "metadata.version can be upgraded to 27" in out, out
    rc, out = _features_cmd(cluster.nodes[1], "upgrade", "--feature", "runnel.test.version=1")
    assert rc != 0, out
    assert "Invalid update version 1 for feature runnel.test.version" in out, out
    assert "does not support this feature" in out, out
    rc, out = _features_cmd(cluster.nodes[1], "disable", "--feature", "metadata.version")
    assert rc != 0 and "only supports versions 7-27" in out, out
    # The tool refuses names it does not know before sending anything.
    rc, out = _features_cmd(cluster.nodes[2], "upgrade", "--metadata", "4.2")
    assert rc != 0 and "Unknown metadata.version 4.2" in out, out
    _wait_level(cluster, "3.9-IV0", timeout=0)


def test_upgrade_through_a_broker_reaches_every_node(cluster):
    rc, out = _features_cmd(cluster.nodes[1], "upgrade", "--metadata", "4.1")
    assert rc == 0 and "metadata.version was upgraded to 27" in out, out
    _wait_level(cluster, "4.1-IV1")


def test_safe_downgrade_is_allowed_and_one_that_may_lose_metadata_is_refused(cluster):
    rc, out = _features_cmd(cluster.nodes[2], "downgrade", "--metadata", "3.9")
    assert rc != 0, out
    assert ("Invalid metadata.version 21. Refusing to perform the requested downgrade because it "
            "might delete metadata information.") in out, out
    rc, out = _features_cmd(cluster.nodes[2], "downgrade", "--metadata", "3.9", "--unsafe")
    assert rc != 0 and "Unsafe metadata downgrade is not supported" in out, out
    _wait_level(cluster, "4.1-IV1", timeout=0)
    # 4.1-IV1 -> 4.0-IV3 changes no metadata format: allowed.
    rc, out = _features_cmd(cluster.nodes[0], "downgrade", "--metadata", "4.0")
    assert rc == 0 and "metadata.version was downgraded to 25" in out, out
    _wait_level(cluster, "4.0-IV3")
    rc, out = _features_cmd(cluster.nodes[0], "upgrade", "--metadata", "4.1")
    assert rc == 0, out
    _wait_level(cluster, "4.1-IV1")


def test_the_finalized_level_survives_a_restart_of_every_node(cluster):
    for n in cluster.nodes:
        n.kill9()
    for n in cluster.nodes:
        n.start()
    cluster.wait_brokers(3)
    _wait_level(cluster, "4.1-IV1", timeout=60)
