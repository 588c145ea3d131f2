#!/usr/bin/env python3
"""Drive a real Apache Kafka so it writes group coordinator records.

Usage: crosscheck.py BOOTSTRAP EXPECT_JSON

Creates a topic, produces a few messages, then:
  * classic group "my-group": two members (one static), range assignor,
    commits offsets with metadata strings and leader epochs;
  * "日本語グループ": a consumer that never joins commits offsets (metadata
    with non-ASCII text and an empty one);
  * "grüppe-ñ": a KIP-848 (group.protocol=consumer) group that commits;
  * "expire-group": a raw OffsetCommit v2 with a retention time, which
    makes Kafka write an OffsetCommitValue v1 with an expire timestamp.
Writes what the clients did to EXPECT_JSON for the Rust side to check.

Note: confluent-kafka (Python) sends commit metadata as a C string *with* its
NUL terminator (metadata_size = strlen + 1), so Kafka stores md + NUL. It strips
the NUL again when reading committed offsets back; other clients see it.
"metadata_wire" is what Kafka is expected to have stored.
"""
import json
import socket
import struct
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, expect_path = sys.argv[1], sys.argv[2]
TOPIC = "xc-topic"
start_ms = int(time.time() * 1000)
expect = {"start_ms": start_ms, "topic": TOPIC, "offsets": [], "classic_group": None,
          "consumer_protocol_group": "grüppe-ñ"}

admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)])[TOPIC].result()
time.sleep(1)

p = Producer({"bootstrap.servers": bootstrap})
for i in range(30):
    p.produce(TOPIC, key=str(i).encode(), value=b"v%d" % i, partition=i % 3)
p.flush(10)


def wait_assigned(consumers, want_total, timeout=60):
    deadline = time.time() + timeout
    msgs = []
    while time.time() < deadline:
        for c in consumers:
            m = c.poll(0.2)
            if m is not None and not m.error():
                msgs.append(m)
        if sum(len(c.assignment()) for c in consumers) == want_total:
            return msgs
    raise SystemExit("group did not stabilise")


# --- classic group, two members, one static -------------------------------
G1 = "my-group"
common = {"bootstrap.servers": bootstrap, "group.id": G1, "enable.auto.commit": False,
          "auto.offset.reset": "earliest", "session.timeout.ms": 12345,
          "max.poll.interval.ms": 123456, "partition.assignment.strategy": "range"}
c1 = Consumer(dict(common, **{"client.id": "xc-client-a", "group.instance.id": "static-1"}))
c2 = Consumer(dict(common, **{"client.id": "xc-client-b"}))
c1.subscribe([TOPIC])
c2.subscribe([TOPIC])
wait_assigned([c1, c2], 3)
# let any in-flight rebalance settle, then make sure both still hold partitions
time.sleep(3)
wait_assigned([c1, c2], 3)
for idx, c in enumerate((c1, c2)):
    tps = []
    for tp in c.assignment():
        off = 3 + tp.partition + 10 * idx
        md = "meta-%s-p%d" % (c.memberid()[:8], tp.partition)
        tps.append(TopicPartition(TOPIC, tp.partition, off, metadata=md, leader_epoch=0))
        expect["offsets"].append({"group": G1, "topic": TOPIC, "partition": tp.partition,
                                  "offset": off, "metadata": md, "metadata_wire": md + "\0",
                                  "leader_epoch": 0})
    c.commit(offsets=tps, asynchronous=False)
expect["classic_group"] = {
    "group": G1, "protocol_type": "consumer", "protocol": "range",
    "members": [
        {"member_id": c1.memberid(), "group_instance_id": "static-1", "client_id": "xc-client-a",
         "session_timeout_ms": 12345, "rebalance_timeout_ms": 123456},
        {"member_id": c2.memberid(), "group_instance_id": None, "client_id": "xc-client-b",
         "session_timeout_ms": 12345, "rebalance_timeout_ms": 123456},
    ],
}
c1.close()
c2.close()

# --- a consumer that never joins commits offsets (non-ASCII group id) -----
G2 = "日本語グループ"
c3 = Consumer({"bootstrap.servers": bootstrap, "group.id": G2, "enable.auto.commit": False})
tps = [TopicPartition(TOPIC, 0, 7, metadata="メタデータ ✓"), TopicPartition(TOPIC, 1, 0, metadata=""),
       TopicPartition(TOPIC, 2, 123456789012, metadata="x" * 300)]
c3.commit(offsets=tps, asynchronous=False)
for tp in tps:
    expect["offsets"].append({"group": G2, "topic": TOPIC, "partition": tp.partition,
                              "offset": tp.offset, "metadata": tp.metadata,
                              "metadata_wire": tp.metadata + "\0", "leader_epoch": -1})
c3.close()

# --- KIP-848 consumer group ---------------------------------------------
G3 = "grüppe-ñ"
c4 = Consumer({"bootstrap.servers": bootstrap, "group.id": G3, "group.protocol": "consumer",
               "enable.auto.commit": False, "auto.offset.reset": "earliest",
               "client.id": "xc-client-848"})
c4.subscribe([TOPIC])
msgs = wait_assigned([c4], 3)
deadline = time.time() + 20
while len(msgs) < 5 and time.time() < deadline:
    m = c4.poll(0.5)
    if m is not None and not m.error():
        msgs.append(m)
m = msgs[0]
tp = TopicPartition(TOPIC, m.partition(), m.offset() + 1, metadata="kip848",
                    leader_epoch=m.leader_epoch())
c4.commit(offsets=[tp], asynchronous=False)
expect["offsets"].append({"group": G3, "topic": TOPIC, "partition": tp.partition,
                          "offset": tp.offset, "metadata": "kip848", "metadata_wire": "kip848\0",
                          "leader_epoch": -1 if m.leader_epoch() is None else m.leader_epoch()})
c4.close()


# --- raw OffsetCommit v2 with a retention time ---------------------------
def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def find_coordinator(group):
    host, port = bootstrap.split(":")
    return host, int(port)  # single broker


G4 = "expire-group"
RETENTION = 86_400_000
body = kstr(G4) + struct.pack(">i", -1) + kstr("") + struct.pack(">q", RETENTION)
body += struct.pack(">i", 1) + kstr(TOPIC) + struct.pack(">i", 1)
body += struct.pack(">iq", 1, 42) + kstr("with-expiry")
hdr = struct.pack(">hhi", 8, 2, 77) + kstr("xc-raw")
req = hdr + body
s = socket.create_connection(find_coordinator(G4))
s.sendall(struct.pack(">i", len(req)) + req)
n = struct.unpack(">i", s.recv(4))[0]
resp = b""
while len(resp) < n:
    resp += s.recv(n - len(resp))
s.close()
corr, = struct.unpack(">i", resp[:4])
# v2 response: topics[1]{name, partitions[1]{index int32, error int16}}
err, = struct.unpack(">h", resp[-2:])
assert corr == 77 and err == 0, (corr, err, resp.hex())
expect["offsets"].append({"group": G4, "topic": TOPIC, "partition": 1, "offset": 42,
                          "metadata": "with-expiry", "leader_epoch": -1,
                          "retention_ms": RETENTION})

expect["end_ms"] = int(time.time() * 1000)
with open(expect_path, "w", encoding="utf-8") as f:
    json.dump(expect, f, ensure_ascii=False, indent=1)
print("ok", expect_path)
