"""Apache Kafka 4.x CLI tools (scripts/kafka-tool): kafka-topics, kafka-configs,
console producer/consumer, GetOffsetShell.  Outputs are compared with what the
real Apache Kafka broker makes these tools print."""

import re

import pytest

import compat_util as cu

TOOL_TIMEOUT = 90


def tool(name, bootstrap, *args, input=None, check=True, timeout=TOOL_TIMEOUT):
    return cu.kafka_tool(name, "--bootstrap-server", bootstrap, *args, input=input, check=check,
                         timeout=timeout)


def describe_partitions(out, topic):
    """Parse `kafka-topics --describe` partition lines -> {partition: (leader, replicas, isr)}."""
    parts = {}
    for line in out.splitlines():
        m = re.match(rf"\s+Topic: {re.escape(topic)}\s+Partition: (\d+)\s+Leader: (-?\d+)\s+"
                     r"Replicas: ([\d,]*)\s+Isr: ([\d,]*)", line)
        if m:
            parts[int(m[1])] = (int(m[2]), m[3], m[4])
    return parts


def test_cli_topics(bootstrap, broker_id, topic_name):
    t = topic_name
    p = tool("topics", bootstrap, "--create", "--topic", t, "--partitions", 2,
             "--config", "retention.ms=1000000")
    assert p.stdout_text.strip() == f"Created topic {t}.", p.stdout_text

    p = tool("topics", bootstrap, "--create", "--topic", t, "--partitions", 2, check=False)
    assert p.returncode == 1, (p.returncode, p.stdout_text, p.stderr_text)
    assert f"Error while executing topic command : Topic '{t}' already exists." in p.stdout_text, \
        (p.stdout_text, p.stderr_text)

    p = tool("topics", bootstrap, "--list")
    assert t in p.stdout_text.split(), p.stdout_text

    p = tool("topics", bootstrap, "--describe", "--topic", t)
    head = p.stdout_text.splitlines()[0]
    assert head.startswith(f"Topic: {t}\tTopicId: "), p.stdout_text
    assert "\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: " in head, p.stdout_text
    assert "retention.ms=1000000" in head.split("Configs: ", 1)[1].split(","), p.stdout_text
    topic_id = head.split("TopicId: ", 1)[1].split("\t")[0]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", topic_id), topic_id
    b = str(broker_id)
    assert describe_partitions(p.stdout_text, t) == {0: (broker_id, b, b), 1: (broker_id, b, b)}, p.stdout_text

    p = tool("topics", bootstrap, "--alter", "--topic", t, "--partitions", 4)
    assert p.stdout_text.strip() == "", p.stdout_text
    cu.wait_topic_ready(bootstrap, t, 4)
    p = tool("topics", bootstrap, "--describe", "--topic", t)
    assert "\tPartitionCount: 4\t" in p.stdout_text, p.stdout_text
    assert sorted(describe_partitions(p.stdout_text, t)) == [0, 1, 2, 3], p.stdout_text
    # the topic id does not change when partitions are added
    assert f"TopicId: {topic_id}\t" in p.stdout_text, p.stdout_text

    p = tool("topics", bootstrap, "--alter", "--topic", t, "--partitions", 3, check=False)
    assert p.returncode == 1, (p.returncode, p.stdout_text)
    assert (f"Error while executing topic command : The topic {t} currently has 4 partition(s); "
            "3 would not be an increase.") in p.stdout_text, (p.stdout_text, p.stderr_text)

    p = tool("topics", bootstrap, "--describe", "--topic", t + "-missing", check=False)
    assert p.returncode == 1, (p.returncode, p.stdout_text)
    assert f"Error while executing topic command : Topic '{t}-missing' does not exist as expected" \
        in p.stdout_text, (p.stdout_text, p.stderr_text)

    p = tool("topics", bootstrap, "--delete", "--topic", t)
    assert p.stdout_text.strip() == "", p.stdout_text
    p = tool("topics", bootstrap, "--list")
    assert t not in p.stdout_text.split(), p.stdout_text


def test_cli_configs_topic(bootstrap, topic_name):
    t = topic_name
    cu.create_topic(bootstrap, t, 1, {"retention.ms": "1000000"})
    args = ["--entity-type", "topics", "--entity-name", t]

    p = tool("configs", bootstrap, "--describe", *args)
    assert p.stdout_text.splitlines() == [
        f"Dynamic configs for topic {t} are:",
        "  retention.ms=1000000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000000}",
    ], p.stdout_text

    p = tool("configs", bootstrap, "--alter", *args,
             "--add-config", "retention.ms=2000000,cleanup.policy=[compact,delete],segment.ms=3600000")
    assert p.stdout_text.strip() == f"Completed updating config for topic {t}.", p.stdout_text
    p = tool("configs", bootstrap, "--describe", *args)
    assert p.stdout_text.splitlines() == [
        f"Dynamic configs for topic {t} are:",
        "  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, "
        "DEFAULT_CONFIG:log.cleanup.policy=delete}",
        "  retention.ms=2000000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=2000000}",
        "  segment.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.ms=3600000}",
    ], p.stdout_text

    p = tool("configs", bootstrap, "--alter", *args, "--delete-config", "cleanup.policy,segment.ms")
    assert p.stdout_text.strip() == f"Completed updating config for topic {t}.", p.stdout_text

    p = tool("configs", bootstrap, "--alter", *args, "--add-config", "retention.ms=abc", check=False)
    assert p.returncode == 1, (p.returncode, p.stdout_text, p.stderr_text)
    assert ("InvalidConfigurationException: Invalid value abc for configuration retention.ms: "
            "Not a number of type LONG") in p.stderr_text, p.stderr_text

    p = tool("configs", bootstrap, "--describe", "--all", *args)
    lines = p.stdout_text.splitlines()
    assert lines[0] == f"All configs for topic {t} are:", p.stdout_text
    body = {ln.strip().split("=", 1)[0]: ln.strip() for ln in lines[1:]}
    assert body.get("retention.ms", "").startswith("retention.ms=2000000 sensitive=false "
                                                   "synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=2000000"), p.stdout_text
    assert body.get("cleanup.policy", "").startswith("cleanup.policy=delete sensitive=false "
                                                     "synonyms={DEFAULT_CONFIG:log.cleanup.policy=delete}"), p.stdout_text
    assert body.get("segment.bytes", "").startswith("segment.bytes=1073741824 sensitive=false"), p.stdout_text
    assert body.get("max.message.bytes", "").startswith("max.message.bytes=1048588 sensitive=false"), p.stdout_text


def test_cli_configs_brokers(bootstrap, broker_id):
    key = "log.segment.delete.delay.ms"  # cluster-wide dynamic; harmless to change
    default_args = ["--entity-type", "brokers", "--entity-default"]
    broker_args = ["--entity-type", "brokers", "--entity-name", broker_id]
    try:
        p = tool("configs", bootstrap, "--alter", *default_args, "--add-config", f"{key}=60001")
        assert p.stdout_text.strip() == "Completed updating default config for brokers in the cluster.", \
            p.stdout_text
        p = tool("configs", bootstrap, "--alter", *broker_args, "--add-config", f"{key}=60002")
        assert p.stdout_text.strip() == f"Completed updating config for broker {broker_id}.", p.stdout_text

        p = tool("configs", bootstrap, "--describe", *default_args)
        lines = p.stdout_text.splitlines()
        assert lines[0] == "Default configs for brokers in the cluster are:", p.stdout_text
        assert f"  {key}=60001 sensitive=false synonyms={{DYNAMIC_DEFAULT_BROKER_CONFIG:{key}=60001}}" in lines, \
            p.stdout_text

        p = tool("configs", bootstrap, "--describe", *broker_args)
        assert p.stdout_text.splitlines() == [
            f"Dynamic configs for broker {broker_id} are:",
            f"  {key}=60002 sensitive=false synonyms={{DYNAMIC_BROKER_CONFIG:{key}=60002, "
            f"DYNAMIC_DEFAULT_BROKER_CONFIG:{key}=60001, DEFAULT_CONFIG:{key}=60000}}",
        ], p.stdout_text

        # a read-only (static) broker config cannot be altered
        p = tool("configs", bootstrap, "--alter", *broker_args, "--add-config", "log.dirs=/tmp", check=False)
        assert p.returncode == 1, (p.returncode, p.stdout_text, p.stderr_text)
        assert "InvalidRequestException: Cannot update these configs dynamically: Set(log.dirs)" \
            in p.stderr_text, p.stderr_text
    finally:
        tool("configs", bootstrap, "--alter", *broker_args, "--delete-config", key, check=False)
        tool("configs", bootstrap, "--alter", *default_args, "--delete-config", key, check=False)
    p = tool("configs", bootstrap, "--describe", *broker_args)
    assert p.stdout_text.splitlines() == [f"Dynamic configs for broker {broker_id} are:"], p.stdout_text


def test_cli_console_round_trip(bootstrap, topic_name):
    t = topic_name
    cu.create_topic(bootstrap, t, 1)
    lines = [
        "h1:a,h2:b\tk1\tv1",
        "h1:c\tk2\tv two",
        "h0:z\tNULL\tnokey",        # NULL key
        "h3:x,h3:y\tk4\tNULL",      # NULL value, duplicate header key
        "h5:NULL\tk5\tv5",          # NULL header value
        "h6:w\tk6\t" + "long" * 5000,
    ]
    t0 = cu.now_ms()
    tool("console-producer", bootstrap, "--topic", t, "--producer-property", "acks=all",
         "--compression-codec", "zstd", "--property", "parse.key=true", "--property", "parse.headers=true",
         "--property", "null.marker=NULL", input="\n".join(lines) + "\n")
    t1 = cu.now_ms()

    p = tool("console-consumer", bootstrap, "--topic", t, "--partition", 0, "--offset", "earliest",
             "--max-messages", len(lines), "--timeout-ms", 30000,
             "--property", "print.key=true", "--property", "print.offset=true",
             "--property", "print.partition=true", "--property", "print.timestamp=true",
             "--property", "print.headers=true", "--property", "key.separator=|",
             "--property", "null.literal=<null>")
    assert f"Processed a total of {len(lines)} messages" in p.stderr_text, (p.stdout_text, p.stderr_text)
    got = p.stdout_text.splitlines()
    want_tail = ["h1:a,h2:b|k1|v1", "h1:c|k2|v two", "h0:z|<null>|nokey", "h3:x,h3:y|k4|<null>",
                 "h5:<null>|k5|v5", "h6:w|k6|" + "long" * 5000]
    assert len(got) == len(lines), p.stdout_text
    for off, (line, tail) in enumerate(zip(got, want_tail)):
        m = re.fullmatch(r"CreateTime:(\d+)\|Partition:0\|Offset:(\d+)\|(.*)", line, re.S)
        assert m, line[:200]
        assert t0 - 1000 <= int(m[1]) <= t1 + 1000, (line[:200], t0, t1)
        assert int(m[2]) == off, line[:200]
        assert m[3] == tail, (m[3][:200], tail[:200])

    # start at an explicit offset in the middle of the compressed batch
    p = tool("console-consumer", bootstrap, "--topic", t, "--partition", 0, "--offset", 2,
             "--max-messages", 2, "--timeout-ms", 30000, "--property", "print.key=true")
    assert p.stdout_text.splitlines() == ["null\tnokey", "k4\tnull"], p.stdout_text
    assert "Processed a total of 2 messages" in p.stderr_text, p.stderr_text


def test_cli_get_offset_shell(bootstrap, topic_name):
    t = topic_name
    cu.create_topic(bootstrap, t, 3)
    from confluent_kafka import Producer
    prod = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    base = cu.now_ms() - 10_000
    for i, part in enumerate([0, 0, 0, 1, 0, 1]):  # partition 0: 4 records, 1: 2, 2: none
        prod.produce(t, value=b"v%d" % i, partition=part, timestamp=base + (5000 if i == 1 else i * 100))
    assert prod.flush(30) == 0

    p = cu.kafka_tool("get-offsets", "--bootstrap-server", bootstrap, "--topic", t)
    assert p.stdout_text.splitlines() == [f"{t}:0:4", f"{t}:1:2", f"{t}:2:0"], p.stdout_text
    p = cu.kafka_tool("get-offsets", "--bootstrap-server", bootstrap, "--topic", t, "--time", "-2")
    assert p.stdout_text.splitlines() == [f"{t}:0:0", f"{t}:1:0", f"{t}:2:0"], p.stdout_text
    # -3 = offset of the record with the largest timestamp (offset 1 in partition 0)
    p = cu.kafka_tool("get-offsets", "--bootstrap-server", bootstrap, "--topic", t, "--time", "-3")
    assert p.stdout_text.splitlines() == [f"{t}:0:1", f"{t}:1:1"], p.stdout_text
    # partition ranges are end-exclusive; a timestamp lookup
    p = cu.kafka_tool("get-offsets", "--bootstrap-server", bootstrap, "--topic-partitions", f"{t}:0-2",
                      "--time", base + 250)
    assert p.stdout_text.splitlines() == [f"{t}:0:1", f"{t}:1:0"], p.stdout_text
