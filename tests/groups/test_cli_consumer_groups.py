"""Kafka's own CLI: scripts/kafka-tool consumer-groups
(org.apache.kafka.tools.consumer.group.ConsumerGroupCommand, Kafka 4.1.1).

The tool exits 0 even when it prints "Error: ...", so the tests check its
output. Table rows are compared as whitespace-split columns; offset tables
are sorted by partition first (for a group without members the tool prints
them in hash-map order).
"""

import pytest

import compat_util as cu
import groups_util as gu
import rawproto as rp

# records per partition: LOG-END-OFFSET of partitions 0, 1, 2
COUNTS = {0: 5, 1: 7, 2: 3}


def cg(bootstrap, *args):
    p = cu.kafka_tool("consumer-groups", "--bootstrap-server", bootstrap, *args, timeout=60)
    return p.stdout_text, p.stderr_text


def rows(text):
    return [line.split() for line in text.splitlines() if line.strip()]


def table(text, header, sort_col=None):
    """The rows under `header` (a whitespace-split header line) in the tool's output,
    sorted by the integer in column sort_col if given."""
    r = rows(text)
    assert header in r, f"no header {' '.join(header)} in:\n{text}"
    r = r[r.index(header) + 1:]
    if sort_col is not None:
        r.sort(key=lambda row: int(row[sort_col]) if row[sort_col].lstrip("-").isdigit() else -1)
    return r


def offsets_table(text):
    return table(text, DESCRIBE_HEADER, sort_col=2)


DESCRIBE_HEADER = "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID".split()
RESET_HEADER = "GROUP TOPIC PARTITION NEW-OFFSET".split()
DELETE_OFFSETS_HEADER = "TOPIC PARTITION STATUS".split()


@pytest.fixture
def topic(bootstrap, names):
    t = names("topic")
    cu.create_topic(bootstrap, t, 3)
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap})
    for part, n in COUNTS.items():
        for i in range(n):
            p.produce(t, value=f"{part}-{i}".encode(), partition=part)
    assert p.flush(30) == 0
    return t


@pytest.fixture(scope="module")
def coordinator_column(bootstrap):
    md = cu.admin_client(bootstrap).list_topics(timeout=15)
    b = md.brokers[sorted(md.brokers)[0]]
    return [f"{b.host}:{b.port}", f"({b.id})"]


def test_cli_active_group(bootstrap, topic, names, coordinator_column):
    """--list, --describe (offsets, --state, --members) of a Stable group with one
    member that owns all 3 partitions and committed offsets for two of them; the
    changes the tool refuses while the group is active."""
    group = names("group")
    m = rp.RawMember(bootstrap, group, [topic], session_timeout_ms=60000, client_id="cli-member")
    assert m.join().error_code == 0
    assert m.sync({m.member_id: rp.assignment_bytes({topic: [0, 1, 2]})}).error_code == 0
    assert m.commit(topic, {0: (2, "", -1), 1: (7, "", -1)}) == {0: 0, 1: 0}
    try:
        out, _ = cg(bootstrap, "--list")
        assert group in out.split()
        out, _ = cg(bootstrap, "--list", "--state")
        assert [group, "Stable"] in table(out, ["GROUP", "STATE"])
        out, _ = cg(bootstrap, "--list", "--type")
        assert [group, "Classic"] in table(out, ["GROUP", "TYPE"])
        out, _ = cg(bootstrap, "--list", "--state", "Stable")
        assert [group, "Stable"] in table(out, ["GROUP", "STATE"])
        out, _ = cg(bootstrap, "--list", "--state", "Empty")
        assert group not in out.split()

        out, err = cg(bootstrap, "--describe", "--group", group)
        assert "has no active members" not in out + err
        host, member = "/127.0.0.1", m.member_id
        assert offsets_table(out) == [
            [group, topic, "0", "2", "5", "3", member, host, "cli-member"],
            [group, topic, "1", "7", "7", "0", member, host, "cli-member"],
            [group, topic, "2", "-", "3", "-", member, host, "cli-member"],
        ], out

        out, _ = cg(bootstrap, "--describe", "--group", group, "--state")
        assert table(out, "GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS".split()) == \
            [[group, *coordinator_column, "range", "Stable", "1"]], out

        out, _ = cg(bootstrap, "--describe", "--group", group, "--members")
        assert table(out, "GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS".split()) == \
            [[group, member, host, "cli-member", "3"]], out
        out, _ = cg(bootstrap, "--describe", "--group", group, "--members", "--verbose")
        assert table(out, "GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS CURRENT-EPOCH CURRENT-ASSIGNMENT "
                          "TARGET-EPOCH TARGET-ASSIGNMENT".split()) == \
            [[group, member, host, "cli-member", "3", "-", f"{topic}:0,1,2", "-", "-"]], out

        # refused while the group is active
        out, _ = cg(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
        assert f"Error: Assignments can only be reset if the group '{group}' is inactive, " \
               f"but the current state is Stable." in out, out
        out, _ = cg(bootstrap, "--delete-offsets", "--group", group, "--topic", topic)
        assert "Error: Encountered some partition-level error, see the follow-up details." in out, out
        err_text = ("Error: org.apache.kafka.common.errors.GroupSubscribedToTopicException: Deleting offsets of a "
                    "topic is forbidden while the consumer group is actively subscribed to it.").split()
        assert table(out, DELETE_OFFSETS_HEADER, sort_col=1) == [[topic, str(p), *err_text] for p in range(3)], out
        out, _ = cg(bootstrap, "--delete", "--group", group)
        assert out.strip().splitlines() == [
            "Error: Deletion of some consumer groups failed:",
            f"* Group '{group}' could not be deleted due to: org.apache.kafka.common.errors."
            f"GroupNotEmptyException: The group is not empty."], out
        assert m.heartbeat() == rp.NONE, "the member was disturbed by the refused commands"
    finally:
        m.leave()
        m.close()


def test_cli_inactive_group_reset_delete_offsets_delete(bootstrap, topic, names):
    """--describe of an Empty group, --reset-offsets (dry run, --to-earliest,
    --to-offset), --delete-offsets, --delete, and the errors afterwards."""
    group = names("group")
    # offsets committed by a member that has left: the group is Empty, with offsets
    m = rp.RawMember(bootstrap, group, [topic], client_id="gone")
    assert m.join().error_code == 0
    assert m.sync({m.member_id: rp.assignment_bytes({topic: [0, 1, 2]})}).error_code == 0
    assert m.commit(topic, {0: (4, "", -1), 1: (1, "", -1), 2: (3, "", -1)}) == {0: 0, 1: 0, 2: 0}
    assert m.leave() == (0, [0])
    m.close()

    out, err = cg(bootstrap, "--describe", "--group", group)
    assert f"Consumer group '{group}' has no active members." in out + err
    assert offsets_table(out) == [
        [group, topic, "0", "4", "5", "1", "-", "-", "-"],
        [group, topic, "1", "1", "7", "6", "-", "-", "-"],
        [group, topic, "2", "3", "3", "0", "-", "-", "-"],
    ], out
    out, _ = cg(bootstrap, "--describe", "--group", group, "--state")
    assert table(out, "GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS".split())[0][-3:] == \
        ["-", "Empty", "0"], out
    out, _ = cg(bootstrap, "--list", "--state")
    assert [group, "Empty"] in table(out, ["GROUP", "STATE"])

    out, _ = cg(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--dry-run")
    assert table(out, RESET_HEADER, sort_col=2) == [[group, topic, str(p), "0"] for p in range(3)], out
    assert rp.fetch_offsets(bootstrap, group)[1][(topic, 0)][0] == 4, "--dry-run changed an offset"

    out, _ = cg(bootstrap, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
    assert table(out, RESET_HEADER, sort_col=2) == [[group, topic, str(p), "0"] for p in range(3)], out
    assert {k: v[0] for k, v in rp.fetch_offsets(bootstrap, group)[1].items()} == \
        {(topic, 0): 0, (topic, 1): 0, (topic, 2): 0}

    out, _ = cg(bootstrap, "--reset-offsets", "--group", group, "--topic", f"{topic}:1", "--to-offset", "6",
                "--execute")
    assert table(out, RESET_HEADER, sort_col=2) == [[group, topic, "1", "6"]], out
    out, _ = cg(bootstrap, "--describe", "--group", group)
    assert offsets_table(out) == [
        [group, topic, "0", "0", "5", "5", "-", "-", "-"],
        [group, topic, "1", "6", "7", "1", "-", "-", "-"],
        [group, topic, "2", "0", "3", "3", "-", "-", "-"],
    ], out

    out, _ = cg(bootstrap, "--delete-offsets", "--group", group, "--topic", f"{topic}:0")
    assert f"Request succeeded for deleting offsets from group {group}." in out, out
    assert table(out, DELETE_OFFSETS_HEADER, sort_col=1) == [[topic, "0", "Successful"]], out
    assert {k: v[0] for k, v in rp.fetch_offsets(bootstrap, group)[1].items()} == {(topic, 1): 6, (topic, 2): 0}
    out, _ = cg(bootstrap, "--describe", "--group", group)
    assert [r[2] for r in offsets_table(out)] == ["1", "2"], out

    out, _ = cg(bootstrap, "--delete", "--group", group)
    assert out.strip() == f"Deletion of requested consumer groups ('{group}') was successful.", out
    out, _ = cg(bootstrap, "--list")
    assert group not in out.split()
    assert rp.fetch_offsets(bootstrap, group) == (0, {})
    out, _ = cg(bootstrap, "--delete", "--group", group)
    assert out.strip().splitlines() == [
        "Error: Deletion of some consumer groups failed:",
        f"* Group '{group}' could not be deleted due to: org.apache.kafka.common.errors."
        f"GroupIdNotFoundException: The group id does not exist."], out
    out, err = cg(bootstrap, "--describe", "--group", group)
    assert (f"Error: Executing consumer group command failed due to org.apache.kafka.common.errors."
            f"GroupIdNotFoundException: Group {group} not found.") in out + err, out + err


@pytest.mark.kip848
def test_cli_consumer_protocol_group(bootstrap, topic, names, workers, coordinator_column):
    """A KIP-848 group (group.protocol=consumer, librdkafka): type Consumer, the
    uniform server-side assignor, member epochs in --members --verbose."""
    group = names("group")
    w = workers("ck", group, topic, "kip848-member", protocol="consumer")
    w.wait(lambda w: w.assignment == {0, 1, 2}, 60, "assignment")
    gu.wait_consumed([w], [f"{p}-{i}" for p, n in COUNTS.items() for i in range(n)], 60)
    w.wait(lambda w: w.committed == COUNTS, 30, "commits")
    out, _ = cg(bootstrap, "--list", "--type")
    assert [group, "Consumer"] in table(out, ["GROUP", "TYPE"])
    out, _ = cg(bootstrap, "--describe", "--group", group, "--state")
    st = table(out, "GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS".split())
    assert st == [[group, *coordinator_column, "uniform", "Stable", "1"]], out
    member = gu.describe_group(bootstrap, group).members[0].member_id
    out, _ = cg(bootstrap, "--describe", "--group", group)
    assert offsets_table(out) == [
        [group, topic, str(p), str(n), str(n), "0", member, "/127.0.0.1", "kip848-member"]
        for p, n in COUNTS.items()], out
    out, _ = cg(bootstrap, "--describe", "--group", group, "--members", "--verbose")
    r = table(out, "GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS CURRENT-EPOCH CURRENT-ASSIGNMENT "
                   "TARGET-EPOCH TARGET-ASSIGNMENT".split())
    assert len(r) == 1, out
    g, mid, host, client, n, epoch, cur, tepoch, target = r[0]
    assert (g, mid, host, client, n, cur, target) == \
        (group, member, "/127.0.0.1", "kip848-member", "3", f"{topic}:0,1,2", f"{topic}:0,1,2"), out
    assert int(epoch) >= 1 and epoch == tepoch, out
    w.close()
    out, _ = cg(bootstrap, "--list", "--state")
    assert [group, "Empty"] in table(out, ["GROUP", "STATE"])
