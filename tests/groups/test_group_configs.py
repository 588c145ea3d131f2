"""Group configs (ConfigResource type GROUP = 32, KIP-848): Kafka's
`kafka-configs --entity-type groups` CLI, and their effect on a KIP-848 group.

The suite's brokers run with group.consumer.session.timeout.ms=6000 and
group.consumer.heartbeat.interval.ms=1000 (groups_util.GROUP_OVERRIDES): a
group without overrides shows those as its defaults.
"""

from __future__ import annotations

import time
import uuid

import pytest

import compat_util as cu
import groups_util as gu
import rawproto as rp


def configs(bootstrap, *args, check=True):
    return cu.kafka_tool("configs", "--bootstrap-server", bootstrap, "--entity-type", "groups", *args,
                         check=check)


def test_cli_group_configs(bootstrap, names):
    group = names("group")
    out = configs(bootstrap, "--describe", "--entity-name", group).stdout_text
    assert out.strip() == f"The group '{group}' doesn't exist and doesn't have dynamic config."

    out = configs(bootstrap, "--describe", "--entity-name", group, "--all").stdout_text
    lines = sorted(line.strip() for line in out.splitlines()[1:] if line.strip())
    assert out.splitlines()[0] == f"All configs for group {group} are:"
    session = gu.GROUP_OVERRIDES["group.consumer.session.timeout.ms"]
    heartbeat = gu.GROUP_OVERRIDES["group.consumer.heartbeat.interval.ms"]
    assert lines == sorted([
        f"consumer.heartbeat.interval.ms={heartbeat} sensitive=false synonyms={{DEFAULT_CONFIG:consumer.heartbeat.interval.ms={heartbeat}}}",
        f"consumer.session.timeout.ms={session} sensitive=false synonyms={{DEFAULT_CONFIG:consumer.session.timeout.ms={session}}}",
        "share.auto.offset.reset=latest sensitive=false synonyms={DEFAULT_CONFIG:share.auto.offset.reset=latest}",
        "share.heartbeat.interval.ms=5000 sensitive=false synonyms={DEFAULT_CONFIG:share.heartbeat.interval.ms=5000}",
        "share.isolation.level=read_uncommitted sensitive=false synonyms={DEFAULT_CONFIG:share.isolation.level=read_uncommitted}",
        "share.record.lock.duration.ms=30000 sensitive=false synonyms={DEFAULT_CONFIG:share.record.lock.duration.ms=30000}",
        "share.session.timeout.ms=45000 sensitive=false synonyms={DEFAULT_CONFIG:share.session.timeout.ms=45000}",
        "streams.heartbeat.interval.ms=5000 sensitive=false synonyms={DEFAULT_CONFIG:streams.heartbeat.interval.ms=5000}",
        "streams.num.standby.replicas=0 sensitive=false synonyms={DEFAULT_CONFIG:streams.num.standby.replicas=0}",
        "streams.session.timeout.ms=45000 sensitive=false synonyms={DEFAULT_CONFIG:streams.session.timeout.ms=45000}",
    ])

    out = configs(bootstrap, "--alter", "--entity-name", group, "--add-config",
                  "consumer.session.timeout.ms=12000,consumer.heartbeat.interval.ms=2000").stdout_text
    assert out.strip() == f"Completed updating config for group {group}."
    out = configs(bootstrap, "--describe", "--entity-name", group).stdout_text
    assert out.splitlines()[0] == f"Dynamic configs for group {group} are:"
    assert sorted(line.strip() for line in out.splitlines()[1:]) == [
        "consumer.heartbeat.interval.ms=2000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:consumer.heartbeat.interval.ms=2000}",
        "consumer.session.timeout.ms=12000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:consumer.session.timeout.ms=12000}",
    ]

    bad = {
        "consumer.session.timeout.ms=70000":
            "consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms",
        "consumer.session.timeout.ms=1000":
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms",
        "consumer.heartbeat.interval.ms=16000":
            "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms",
        "consumer.heartbeat.interval.ms=12000":
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms",
        "foo.bar=1": "Unknown group config name: foo.bar",
        "consumer.heartbeat.interval.ms=abc":
            "Invalid value abc for configuration consumer.heartbeat.interval.ms: Not a number of type INT",
        "share.isolation.level=READ_COMMITTED":
            "Invalid value READ_COMMITTED for configuration share.isolation.level: "
            "String must be one of: read_committed, read_uncommitted",
    }
    for kv, message in bad.items():
        p = configs(bootstrap, "--alter", "--entity-name", group, "--add-config", kv, check=False)
        assert p.returncode != 0, kv
        assert f"InvalidConfigurationException: {message}" in p.stdout_text + p.stderr_text, kv

    configs(bootstrap, "--alter", "--entity-name", group, "--delete-config", "consumer.heartbeat.interval.ms")
    out = configs(bootstrap, "--describe", "--entity-name", group).stdout_text
    assert [line.strip() for line in out.splitlines()[1:]] == [
        "consumer.session.timeout.ms=12000 sensitive=false synonyms={DYNAMIC_GROUP_CONFIG:consumer.session.timeout.ms=12000}",
    ]


@pytest.mark.kip848
def test_group_session_timeout_and_heartbeat_interval_take_effect(bootstrap, names):
    """A group's own consumer.session.timeout.ms / consumer.heartbeat.interval.ms
    replace the broker's for its KIP-848 members."""
    topic, tuned, plain = names("topic"), names("tuned"), names("plain")
    cu.create_topic(bootstrap, topic, 2)
    configs(bootstrap, "--alter", "--entity-name", tuned, "--add-config",
            "consumer.session.timeout.ms=20000,consumer.heartbeat.interval.ms=3000")
    members = {}
    for g in (tuned, plain):
        rp.fetch_offsets(bootstrap, g)  # waits until the coordinator is ready
    conns = {g: rp.RawConn(rp.find_coordinator(bootstrap, g)) for g in (tuned, plain)}
    try:
        for g, conn in conns.items():
            mid = str(uuid.uuid4())
            r = rp.consumer_heartbeat(conn, g, mid, 0, topics=[topic], rebalance_timeout_ms=30000, owned=[])
            assert r.error_code == rp.NONE, (rp.err_name(r.error_code), r.error_message)
            members[g] = (mid, r.member_epoch, r.heartbeat_interval_ms)
        assert members[tuned][2] == 3000
        assert members[plain][2] == int(gu.GROUP_OVERRIDES["group.consumer.heartbeat.interval.ms"])
        # Silent for longer than the broker's session timeout (6 s), less than the group's (20 s).
        time.sleep(gu.CONSUMER_SESSION_TIMEOUT_MS / 1000 + 5)
        codes = {g: rp.consumer_heartbeat(conn, g, members[g][0], members[g][1]).error_code
                 for g, conn in conns.items()}
        assert codes == {tuned: rp.NONE, plain: rp.UNKNOWN_MEMBER_ID}, {g: rp.err_name(c) for g, c in codes.items()}
        rp.consumer_heartbeat(conns[tuned], tuned, members[tuned][0], -1)
    finally:
        for c in conns.values():
            c.close()


def test_legacy_alter_configs_and_list_config_resources(bootstrap, names):
    """Legacy AlterConfigs (replace-all) on a GROUP resource, DescribeConfigs v4 of it,
    and ListConfigResources (KIP-1142), which kafka-configs uses to find groups with configs."""
    from kafka.protocol.admin import AlterConfigsRequest as A, DescribeConfigsRequest as D
    group = names("group")
    lcr_req = rp.extra_message("ListConfigResourcesRequest")
    rp.extra_message("ListConfigResourcesResponse")
    with rp.RawConn(bootstrap) as c:
        def alter(configs):
            r = c.send(A, 2, validate_only=False, resources=[A.AlterConfigsResource(
                resource_type=32, resource_name=group,
                configs=[A.AlterConfigsResource.AlterableConfig(name=k, value=v) for k, v in configs.items()])])
            return [(x.error_code, x.error_message) for x in r.responses]

        def listed(types, version=1):
            r = c.send(lcr_req, version, resource_types=types) if version else c.send(lcr_req, 0)
            return r.error_code, [(x.resource_name, x.resource_type) for x in r.config_resources]

        assert (group, 32) not in listed([32])[1]
        assert alter({"consumer.heartbeat.interval.ms": "2000"}) == [(0, None)]
        assert alter({"consumer.session.timeout.ms": "50000"}) == [(0, None)]  # replaces the whole set
        r = c.send(D, 4, include_synonyms=True, include_documentation=True, resources=[
            D.DescribeConfigsResource(resource_type=32, resource_name=group,
                                      configuration_keys=["consumer.session.timeout.ms",
                                                          "consumer.heartbeat.interval.ms"])])
        (res,) = r.results
        got = sorted((x.name, x.value, x.config_source, x.read_only, x.config_type, bool(x.documentation),
                      [(s.name, s.value, s.source) for s in x.synonyms]) for x in res.configs)
        heartbeat = gu.GROUP_OVERRIDES["group.consumer.heartbeat.interval.ms"]
        assert (res.error_code, got) == (0, [
            ("consumer.heartbeat.interval.ms", heartbeat, 5, False, 3, True,
             [("consumer.heartbeat.interval.ms", heartbeat, 5)]),
            ("consumer.session.timeout.ms", "50000", 8, False, 3, True,
             [("consumer.session.timeout.ms", "50000", 8)]),
        ])
        err, groups = listed([32])
        assert err == rp.NONE and (group, 32) in groups and {t for _, t in groups} == {32}
        assert listed([1]) == (35, [])  # not a type ListConfigResources lists: UNSUPPORTED_VERSION
        assert listed([], version=0) == (rp.NONE, [])  # v0: client metrics subscriptions only
