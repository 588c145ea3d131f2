"""A tiny raw Kafka-protocol client for sending exact group requests.

Requests and responses are kafka-python 3's JSON-schema message classes
(kafka.protocol.*); this module only frames them on a blocking socket, so a
test controls every field (member id, generation, protocol type, metadata).
APIs kafka-python has no schema for (ConsumerGroupHeartbeat, ConsumerGroupDescribe)
are built from the JSON message specs inside $KAFKA_LIBS/kafka-clients-*.jar.

Error codes are Kafka's (org.apache.kafka.common.protocol.Errors).
"""

from __future__ import annotations

import glob
import json
import os
import re
import socket
import struct
import time

from kafka.protocol.admin import (DeleteGroupsRequest, DescribeGroupsRequest,  # noqa: F401
                                  ListGroupsRequest)
from kafka.protocol.consumer import (HeartbeatRequest, JoinGroupRequest,  # noqa: F401
                                     LeaveGroupRequest, OffsetCommitRequest,
                                     OffsetDeleteRequest, OffsetFetchRequest,
                                     SyncGroupRequest)
from kafka.protocol.metadata import ApiVersionsRequest, FindCoordinatorRequest  # noqa: F401

# org.apache.kafka.common.protocol.Errors
NONE = 0
UNKNOWN_SERVER_ERROR = -1
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
GROUP_ID_NOT_FOUND = 69
GROUP_SUBSCRIBED_TO_TOPIC = 86
NON_EMPTY_GROUP = 68
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82
GROUP_MAX_SIZE_REACHED = 81
UNSUPPORTED_ASSIGNOR = 112
FENCED_MEMBER_EPOCH = 110
UNRELEASED_INSTANCE_ID = 111
STALE_MEMBER_EPOCH = 113
INVALID_REQUEST = 42
MESSAGE_TOO_LARGE = 10
RECORD_LIST_TOO_LARGE = 18
OFFSET_METADATA_TOO_LARGE = 12
UNSTABLE_OFFSET_COMMIT = 88

ERROR_NAMES = {v: k for k, v in dict(globals()).items() if k.isupper() and isinstance(v, int)}

RETRIABLE_COORD = {COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR}


def err_name(code):
    return f"{ERROR_NAMES.get(code, '?')}({code})"


# ------------------------------------------------------------ KIP-848 messages from the jar

_EXTRA = {}


def _jar_json(name):
    libs = os.environ.get("KAFKA_LIBS", "")
    jars = glob.glob(os.path.join(libs, "kafka-clients-*.jar"))
    if not jars:
        raise RuntimeError(f"no kafka-clients jar in KAFKA_LIBS={libs!r}")
    import zipfile
    with zipfile.ZipFile(jars[0]) as z:
        text = z.read(f"common/message/{name}.json").decode()
    data = json.loads(re.sub(r"(?m)^\s*//.*\n?", "", text))
    from kafka.protocol.schemas.load_json import _resolve_common_structs
    common = {s["name"]: s["fields"] for s in data.get("commonStructs", [])}
    if common:
        _resolve_common_structs(data.get("fields", []), common)
    return data


def extra_message(name):
    """A kafka-python ApiMessage class for a message kafka-python has no schema for."""
    if name in _EXTRA:
        return _EXTRA[name]
    import kafka.protocol.api_data as api_data
    from kafka.protocol.api_message import ApiMessage
    orig = api_data.load_json

    def loader(msg_type, package=None):
        return _jar_json(msg_type)

    api_data.load_json = loader
    try:
        cls = type(ApiMessage)(name, (ApiMessage,), {"__slots__": ()})
    finally:
        api_data.load_json = orig
    _EXTRA[name] = cls
    return cls


# ------------------------------------------------------------ connection

class RawConn:
    def __init__(self, address, client_id="groups-raw", timeout=30.0):
        host, port = address.rsplit(":", 1)
        self.address = address
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        self.client_id = client_id
        self.corr = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"connection to {self.address} closed by the broker")
            buf += chunk
        return bytes(buf)

    def send(self, request_cls, version, timeout=None, **fields):
        """Send one request and return the decoded response (header stripped)."""
        self.corr += 1
        req = request_cls[version](**fields)
        req.with_header(correlation_id=self.corr, client_id=self.client_id)
        data = req.encode(header=True, framed=True)
        old = self.sock.gettimeout()
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
            size = struct.unpack(">i", self._recv_exact(4))[0]
            payload = self._recv_exact(size)
        finally:
            self.sock.settimeout(old)
        resp_cls = req.header.get_response_class()
        resp = resp_cls.decode(payload, header=True)
        if resp.header.correlation_id != self.corr:
            raise AssertionError(f"correlation id {resp.header.correlation_id} != {self.corr}")
        return resp


def api_versions(address):
    with RawConn(address) as c:
        r = c.send(ApiVersionsRequest, 3, client_software_name="groups-raw",
                   client_software_version="1")
        assert r.error_code == 0, err_name(r.error_code)
        return {k.api_key: (k.min_version, k.max_version) for k in r.api_keys}


def find_coordinator(bootstrap, group, timeout=30.0, key_type=0):
    """FindCoordinator v4 (batched); retries while the coordinator is not available yet."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        with RawConn(bootstrap) as c:
            r = c.send(FindCoordinatorRequest, 4, key_type=key_type, coordinator_keys=[group])
        co = r.coordinators[0]
        last = co
        if co.error_code == 0:
            return f"{co.host}:{co.port}"
        if co.error_code not in RETRIABLE_COORD:
            raise AssertionError(f"FindCoordinator({group}) -> {err_name(co.error_code)}")
        time.sleep(0.2)
    raise AssertionError(f"no coordinator for {group} within {timeout}s: {last}")


# ------------------------------------------------------------ consumer protocol payloads

def subscription_bytes(topics, user_data=None, owned=None, version=1):
    """ConsumerProtocolSubscription (what Java/librdkafka put in JoinGroup metadata).
    v1: version, topics, user_data, owned_partitions."""
    out = bytearray(struct.pack(">h", version))
    out += struct.pack(">i", len(topics))
    for t in topics:
        b = t.encode()
        out += struct.pack(">h", len(b)) + b
    if user_data is None:
        out += struct.pack(">i", -1)
    else:
        out += struct.pack(">i", len(user_data)) + user_data
    if version >= 1:
        owned = owned or {}
        out += struct.pack(">i", len(owned))
        for t, parts in owned.items():
            b = t.encode()
            out += struct.pack(">h", len(b)) + b + struct.pack(">i", len(parts))
            for p in parts:
                out += struct.pack(">i", p)
    return bytes(out)


def assignment_bytes(assign, user_data=None, version=1):
    """ConsumerProtocolAssignment: {topic: [partitions]}."""
    out = bytearray(struct.pack(">h", version) + struct.pack(">i", len(assign)))
    for t, parts in assign.items():
        b = t.encode()
        out += struct.pack(">h", len(b)) + b + struct.pack(">i", len(parts))
        for p in parts:
            out += struct.pack(">i", p)
    if user_data is None:
        out += struct.pack(">i", -1)
    else:
        out += struct.pack(">i", len(user_data)) + user_data
    return bytes(out)


def parse_assignment(data):
    if not data:
        return {}
    pos = 2
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    out = {}
    for _ in range(n):
        (ln,) = struct.unpack_from(">h", data, pos)
        pos += 2
        t = data[pos:pos + ln].decode()
        pos += ln
        (k,) = struct.unpack_from(">i", data, pos)
        pos += 4
        out[t] = list(struct.unpack_from(f">{k}i", data, pos))
        pos += 4 * k
    return out


# ------------------------------------------------------------ group requests (pinned versions)
# The newest versions Apache Kafka 4.1.1 advertises (and kafka-python 3 encodes).
V_JOIN, V_SYNC, V_HEARTBEAT, V_LEAVE = 9, 5, 4, 5
V_COMMIT, V_FETCH, V_DESCRIBE, V_LIST, V_DELETE = 9, 9, 5, 5, 2


def _coord_retry(fn, bootstrap, group, timeout=60.0, err_of=lambda r: r.error_code):
    """Call fn(conn) on the group's coordinator, retrying while it is loading/moving."""
    deadline = time.time() + timeout
    while True:
        co = find_coordinator(bootstrap, group, timeout=max(1.0, deadline - time.time()))
        try:
            with RawConn(co) as c:
                r = fn(c)
        except (ConnectionError, OSError):
            r = None
        if r is not None and err_of(r) not in RETRIABLE_COORD:
            return r
        if time.time() > deadline:
            raise AssertionError(f"group {group}: coordinator not ready within {timeout}s "
                                 f"(last {err_name(err_of(r)) if r is not None else 'connection error'})")
        time.sleep(0.2)


def commit_offsets(bootstrap, group, topic, offsets, generation=-1, member_id="", instance_id=None,
                   conn=None):
    """OffsetCommit; offsets = {partition: (offset, metadata, leader_epoch)}.
    Returns {partition: error_code}."""
    T = OffsetCommitRequest.OffsetCommitRequestTopic
    P = T.OffsetCommitRequestPartition
    parts = [P(partition_index=p, committed_offset=o, committed_leader_epoch=e, commit_timestamp=-1,
               committed_metadata=m) for p, (o, m, e) in sorted(offsets.items())]

    def call(c):
        return c.send(OffsetCommitRequest, V_COMMIT, group_id=group, generation_id_or_member_epoch=generation,
                      member_id=member_id, group_instance_id=instance_id, retention_time_ms=-1,
                      topics=[T(name=topic, partitions=parts)])

    def first_err(r):
        return r.topics[0].partitions[0].error_code
    r = call(conn) if conn is not None else _coord_retry(call, bootstrap, group, err_of=first_err)
    return {p.partition_index: p.error_code for t in r.topics for p in t.partitions}


def fetch_offsets(bootstrap, group, topics=None, timeout=60.0):
    """OffsetFetch v9 for one group; topics=None fetches all. Returns
    (group_error, {(topic, partition): (offset, metadata, leader_epoch, error)})."""
    G = OffsetFetchRequest.OffsetFetchRequestGroup
    T = G.OffsetFetchRequestTopics
    req_topics = None if topics is None else [T(name=t, partition_indexes=ps) for t, ps in topics.items()]

    def call(c):
        return c.send(OffsetFetchRequest, V_FETCH, groups=[G(group_id=group, member_id=None, member_epoch=-1,
                                                             topics=req_topics)],
                      require_stable=True)

    def err(r):
        g = r.groups[0]
        if g.error_code:
            return g.error_code
        for t in g.topics:
            for p in t.partitions:
                if p.error_code in RETRIABLE_COORD or p.error_code == UNSTABLE_OFFSET_COMMIT:
                    return COORDINATOR_LOAD_IN_PROGRESS
        return 0
    r = _coord_retry(call, bootstrap, group, timeout=timeout, err_of=err)
    g = r.groups[0]
    return g.error_code, {(t.name, p.partition_index): (p.committed_offset, p.metadata, p.committed_leader_epoch,
                                                        p.error_code)
                          for t in g.topics for p in t.partitions}


def describe_groups(bootstrap, groups, version=V_DESCRIBE):
    """DescribeGroups on the first group's coordinator (single-broker tests)."""
    def call(c):
        return c.send(DescribeGroupsRequest, version, groups=list(groups), include_authorized_operations=False)
    r = _coord_retry(call, bootstrap, groups[0], err_of=lambda r: r.groups[0].error_code)
    return {g.group_id: g for g in r.groups}


def list_groups(bootstrap, states=(), types=(), version=V_LIST):
    with RawConn(bootstrap) as c:
        r = c.send(ListGroupsRequest, version, states_filter=list(states), types_filter=list(types))
    assert r.error_code == 0, err_name(r.error_code)
    return {g.group_id: g for g in r.groups}


def delete_groups(bootstrap, groups):
    def call(c):
        return c.send(DeleteGroupsRequest, V_DELETE, groups_names=list(groups))
    r = _coord_retry(call, bootstrap, groups[0], err_of=lambda r: r.results[0].error_code)
    return {x.group_id: x.error_code for x in r.results}


def delete_offsets(bootstrap, group, topic, partitions):
    T = OffsetDeleteRequest.OffsetDeleteRequestTopic
    P = T.OffsetDeleteRequestPartition

    def call(c):
        return c.send(OffsetDeleteRequest, 0, group_id=group,
                      topics=[T(name=topic, partitions=[P(partition_index=p) for p in partitions])])
    r = _coord_retry(call, bootstrap, group)
    return r.error_code, {p.partition_index: p.error_code for t in r.topics for p in t.partitions}


class RawMember:
    """A classic-protocol group member driven by hand (one connection to the coordinator)."""

    def __init__(self, bootstrap, group, topics, *, session_timeout_ms=30000, rebalance_timeout_ms=30000,
                 protocol_type="consumer", protocols=None, instance_id=None, client_id="groups-raw"):
        self.bootstrap, self.group = bootstrap, group
        self.coordinator = find_coordinator(bootstrap, group)
        self.conn = RawConn(self.coordinator, client_id=client_id, timeout=90)
        self.session_timeout_ms, self.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
        self.protocol_type = protocol_type
        self.protocols = protocols or [("range", subscription_bytes(topics))]
        self.instance_id = instance_id
        self.member_id = ""
        self.generation = -1
        self.leader = None
        self.protocol_name = None
        self.join_members = []

    def close(self):
        self.conn.close()

    def join_request(self, member_id=None, protocol_type=None, protocols=None, timeout=None):
        J = JoinGroupRequest
        protos = [J.JoinGroupRequestProtocol(name=n, metadata=m) for n, m in (protocols or self.protocols)]
        return self.conn.send(J, V_JOIN, timeout=timeout, group_id=self.group,
                              session_timeout_ms=self.session_timeout_ms,
                              rebalance_timeout_ms=self.rebalance_timeout_ms,
                              member_id=self.member_id if member_id is None else member_id,
                              group_instance_id=self.instance_id,
                              protocol_type=protocol_type or self.protocol_type, protocols=protos, reason=None)

    def join(self, timeout=None):
        """JoinGroup, doing the KIP-394 MEMBER_ID_REQUIRED round trip. Returns the response."""
        r = self.join_request(timeout=timeout)
        if r.error_code == MEMBER_ID_REQUIRED:
            self.member_id = r.member_id
            r = self.join_request(timeout=timeout)
        if r.error_code == 0:
            self.member_id, self.generation = r.member_id, r.generation_id
            self.leader, self.protocol_name = r.leader, r.protocol_name
            self.join_members = r.members
        return r

    def sync(self, assignments=None, generation=None, member_id=None, timeout=None):
        S = SyncGroupRequest
        a = [S.SyncGroupRequestAssignment(member_id=m, assignment=b) for m, b in (assignments or {}).items()]
        return self.conn.send(S, V_SYNC, timeout=timeout, group_id=self.group,
                              generation_id=self.generation if generation is None else generation,
                              member_id=self.member_id if member_id is None else member_id,
                              group_instance_id=self.instance_id, protocol_type=self.protocol_type,
                              protocol_name=self.protocol_name, assignments=a)

    def heartbeat(self, generation=None, member_id=None):
        return self.conn.send(HeartbeatRequest, V_HEARTBEAT, group_id=self.group,
                              generation_id=self.generation if generation is None else generation,
                              member_id=self.member_id if member_id is None else member_id,
                              group_instance_id=self.instance_id).error_code

    def commit(self, topic, offsets, generation=None, member_id=None):
        return commit_offsets(self.bootstrap, self.group, topic, offsets,
                              generation=self.generation if generation is None else generation,
                              member_id=self.member_id if member_id is None else member_id,
                              instance_id=self.instance_id, conn=self.conn)

    def leave(self):
        L = LeaveGroupRequest
        r = self.conn.send(L, V_LEAVE, group_id=self.group, members=[
            L.MemberIdentity(member_id=self.member_id, group_instance_id=self.instance_id, reason="test")])
        return r.error_code, [m.error_code for m in r.members]


# ------------------------------------------------------------ KIP-848 ConsumerGroupHeartbeat
INVALID_REGULAR_EXPRESSION = 128
ERROR_NAMES.update({INVALID_REGULAR_EXPRESSION: "INVALID_REGULAR_EXPRESSION", UNSTABLE_OFFSET_COMMIT:
                    "UNSTABLE_OFFSET_COMMIT", MESSAGE_TOO_LARGE: "MESSAGE_TOO_LARGE",
                    RECORD_LIST_TOO_LARGE: "RECORD_LIST_TOO_LARGE"})
V_CONSUMER_HEARTBEAT = 1


def consumer_heartbeat(conn, group, member_id, member_epoch, *, topics=None, regex=None, rebalance_timeout_ms=-1,
                       server_assignor=None, owned=None, instance_id=None, version=V_CONSUMER_HEARTBEAT):
    """One ConsumerGroupHeartbeat (KIP-848). owned = [(topic_id uuid, [partitions])] or None."""
    req = extra_message("ConsumerGroupHeartbeatRequest")
    extra_message("ConsumerGroupHeartbeatResponse")  # registers the response class
    parts = None if owned is None else [req.TopicPartitions(topic_id=t, partitions=ps) for t, ps in owned]
    return conn.send(req, version, group_id=group, member_id=member_id, member_epoch=member_epoch,
                     instance_id=instance_id, rack_id=None, rebalance_timeout_ms=rebalance_timeout_ms,
                     subscribed_topic_names=topics, subscribed_topic_regex=regex,
                     server_assignor=server_assignor, topic_partitions=parts)
