"""A confluent-kafka (librdkafka) group consumer run as its own process.

    python3 ck_worker.py '<json config>'

Config keys: bootstrap, group, topics, name, and optionally protocol
("classic" | "consumer"), assignor, instance_id, session_timeout_ms,
heartbeat_ms, max_poll_ms, extra (dict of librdkafka properties).

It subscribes, processes every record it gets (prints it), and after each
batch commits exactly what it processed, synchronously, with explicit
offsets. Offsets it processed but could not commit yet are retried, and are
committed in the revoke callback before a partition is given up.

stdout: one JSON event per line (flushed), each with "t" (epoch ms):
  started | assigned parts | revoked parts | lost parts | recs [[p,o,value]...]
  | commit offsets ok err | status member gen assignment | closed
stdin commands: "status", "close" (graceful close: leaves the group unless
static), "exit-noclose" (exit without closing).
GROUPS_CK_DEBUG=<librdkafka debug contexts> turns on librdkafka's debug log
(to the worker's stderr file).
"""

import json
import os
import queue
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def now_ms():
    return int(time.time() * 1000)


def emit(ev, **kw):
    kw["ev"] = ev
    kw["t"] = now_ms()
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def main():
    cfg = json.loads(sys.argv[1])
    conf = {
        "bootstrap.servers": cfg["bootstrap"],
        "group.id": cfg["group"],
        "client.id": cfg.get("name", "ck-worker"),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "topic.metadata.refresh.interval.ms": 2000,
        "log_level": 4,
        "reconnect.backoff.max.ms": 1000,
    }
    protocol = cfg.get("protocol", "classic")
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf["session.timeout.ms"] = cfg.get("session_timeout_ms", 6000)
        conf["heartbeat.interval.ms"] = cfg.get("heartbeat_ms", 1000)
        conf["max.poll.interval.ms"] = cfg.get("max_poll_ms", 60000)
        if cfg.get("assignor"):
            conf["partition.assignment.strategy"] = cfg["assignor"]
    if cfg.get("instance_id"):
        conf["group.instance.id"] = cfg["instance_id"]
    conf.update(cfg.get("extra", {}))
    if os.environ.get("GROUPS_CK_DEBUG"):  # e.g. "broker,cgrp,protocol": to stderr
        conf["debug"] = os.environ["GROUPS_CK_DEBUG"]
        conf["log_level"] = 7

    c = Consumer(conf)
    pending = {}  # (topic, partition) -> next offset to commit

    def commit(keys=None):
        keys = [k for k in (pending if keys is None else keys) if k in pending]
        if not keys:
            return True
        offs = [TopicPartition(t, p, pending[(t, p)]) for (t, p) in keys]
        shown = {f"{t}:{p}": pending[(t, p)] for (t, p) in keys}
        try:
            res = c.commit(offsets=offs, asynchronous=False)
            bad = [f"{tp.topic}:{tp.partition}:{tp.error}" for tp in (res or []) if tp.error]
            if bad:
                emit("commit", offsets=shown, ok=False, err=";".join(bad))
                return False
        except KafkaException as e:
            emit("commit", offsets=shown, ok=False, err=str(e.args[0]))
            return False
        for k in keys:
            pending.pop(k, None)
        emit("commit", offsets=shown, ok=True)
        return True

    def on_assign(consumer, parts):
        emit("assigned", parts=[p.partition for p in parts], topics=[p.topic for p in parts],
             member=consumer.memberid())

    def on_revoke(consumer, parts):
        keys = [(p.topic, p.partition) for p in parts]
        commit(keys)  # commit what we processed before giving them up
        for k in keys:
            pending.pop(k, None)
        emit("revoked", parts=[p.partition for p in parts])

    def on_lost(consumer, parts):
        for p in parts:
            pending.pop((p.topic, p.partition), None)
        emit("lost", parts=[p.partition for p in parts])

    c.subscribe(cfg["topics"], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    cmds = queue.Queue()

    def reader():
        for line in sys.stdin:
            cmds.put(line.strip())
        cmds.put("eof")

    threading.Thread(target=reader, daemon=True).start()
    emit("started", pid=os.getpid())
    while True:
        msgs = c.consume(num_messages=200, timeout=0.1)
        recs = []
        for m in msgs:
            if m.error():
                emit("error", err=str(m.error()))
                continue
            v = m.value()
            recs.append([m.partition(), m.offset(), v.decode() if v is not None else None])
            pending[(m.topic(), m.partition())] = m.offset() + 1
        if recs:
            emit("recs", recs=recs)
        commit()
        try:
            cmd = cmds.get_nowait()
        except queue.Empty:
            continue
        if cmd == "status":
            a = c.assignment()
            emit("status", member=c.memberid(), gen=-1, assignment=[p.partition for p in a])
        elif cmd in ("close", "eof"):
            commit()
            c.close()
            emit("closed")
            return
        elif cmd == "exit-noclose":
            emit("closed", noclose=True)
            os._exit(0)


if __name__ == "__main__":
    main()
