"""A raw transactional producer for the KIP-890 suites: exact InitProducerId,
AddPartitionsToTxn, Produce, EndTxn and ListOffsets requests (kafka-python
3's message classes, framed by tests/groups/rawproto.py), so a test can do
what no real client does, such as writing to a partition it never added to
its transaction."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "groups"))
import rawproto as rp  # noqa: E402

from kafka.protocol.consumer import ListOffsetsRequest  # noqa: E402
from kafka.protocol.producer import (AddPartitionsToTxnRequest, EndTxnRequest,  # noqa: E402
                                     InitProducerIdRequest, ProduceRequest)
from kafka.record.default_records import DefaultRecordBatchBuilder  # noqa: E402

NOT_ENOUGH_REPLICAS = 19
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
CONCURRENT_TRANSACTIONS = 51
PRODUCER_FENCED = 90
TRANSACTION_ABORTABLE = 120
RETRIABLE = {rp.COORDINATOR_LOAD_IN_PROGRESS, rp.COORDINATOR_NOT_AVAILABLE, rp.NOT_COORDINATOR,
             CONCURRENT_TRANSACTIONS}


def retry(fn, what, timeout=60.0):
    """Calls fn() -> (error code, result) until the code is not retriable."""
    deadline = time.time() + timeout
    while True:
        code, result = fn()
        if code not in RETRIABLE or time.time() > deadline:
            assert code == 0, f"{what} -> {code}"
            return result
        time.sleep(0.2)


def record_batch(values, pid=-1, epoch=-1, seq=-1, transactional=False):
    """One v2 batch of `values` (no keys, timestamps now), with the given
    producer id, epoch and base sequence (-1: none)."""
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=transactional,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 20)
    now = int(time.time() * 1000)
    for i, v in enumerate(values):
        b.append(i, timestamp=now, key=None, value=v, headers=[])
    return bytes(b.build())


def txn_batch(pid, epoch, seq, values):
    return record_batch(values, pid, epoch, seq, transactional=True)


class RawTxnProducer:
    """One transactional id's raw producer, talking to its coordinator
    (found with FindCoordinator) and to `bootstrap` (one broker)."""

    def __init__(self, bootstrap, tid, timeout_ms=60000):
        self.bootstrap = bootstrap
        self.tid = tid
        self.coordinator = rp.find_coordinator(bootstrap, tid, timeout=60, key_type=1)
        self.seq = {}

        def init():
            with rp.RawConn(self.coordinator, client_id="txn-raw") as c:
                r = c.send(InitProducerIdRequest, 3, transactional_id=tid,
                           transaction_timeout_ms=timeout_ms, producer_id=-1, producer_epoch=-1)
            return r.error_code, (r.producer_id, r.producer_epoch)
        self.pid, self.epoch = retry(init, "InitProducerId")

    def add_partitions(self, topic, partitions):
        def add():
            t = AddPartitionsToTxnRequest[3].AddPartitionsToTxnTopic(
                name=topic, partitions=list(partitions))
            with rp.RawConn(self.coordinator, client_id="txn-raw") as c:
                r = c.send(AddPartitionsToTxnRequest, 3, v3_and_below_transactional_id=self.tid,
                           v3_and_below_producer_id=self.pid,
                           v3_and_below_producer_epoch=self.epoch,
                           v3_and_below_topics=[t])
            codes = {p.partition_index: p.partition_error_code
                     for t in r.results_by_topic_v3_and_below for p in t.results_by_partition}
            bad = [c for c in codes.values() if c != 0]
            return (bad[0] if bad else 0), codes
        return retry(add, "AddPartitionsToTxn")

    def produce(self, topic, partition, values, version=9, retries=0):
        """One transactional batch: (error code, error message); retried up
        to `retries` times while CONCURRENT_TRANSACTIONS (transaction.version
        2: the previous transaction's markers are being written)."""
        for _ in range(retries):
            err, msg = self.produce(topic, partition, values, version)
            if err != CONCURRENT_TRANSACTIONS:
                return err, msg
            time.sleep(0.1)
        seq = self.seq.get((topic, partition), 0)
        data = txn_batch(self.pid, self.epoch, seq, values)
        req = ProduceRequest[version]
        tpd = req.TopicProduceData
        topic_data = [tpd(name=topic, partition_data=[
            tpd.PartitionProduceData(index=partition, records=data)])]
        with rp.RawConn(self.bootstrap, client_id="txn-raw") as c:
            r = c.send(ProduceRequest, version, transactional_id=self.tid, acks=-1,
                       timeout_ms=30000, topic_data=topic_data)
        p = r.responses[0].partition_responses[0]
        if p.error_code == 0:
            self.seq[(topic, partition)] = seq + len(values)
        return p.error_code, p.error_message

    def end(self, commit, version=3):
        """EndTxn; v5 (transaction.version 2) answers the producer id and
        epoch to go on with, which the producer takes (sequences restart)."""
        def end_txn():
            with rp.RawConn(self.coordinator, client_id="txn-raw") as c:
                r = c.send(EndTxnRequest, version, transactional_id=self.tid,
                           producer_id=self.pid, producer_epoch=self.epoch, committed=commit)
            return r.error_code, r
        r = retry(end_txn, "EndTxn")
        if version >= 5:
            self.pid, self.epoch = r.producer_id, r.producer_epoch
            self.seq = {}
        return r


def latest_offsets(bootstrap, topic, partitions, isolation):
    """ListOffsets LATEST per partition: the high watermark
    (isolation 0) or the last stable offset (isolation 1)."""
    lot = ListOffsetsRequest[5].ListOffsetsTopic
    t = lot(name=topic, partitions=[
        lot.ListOffsetsPartition(partition_index=p, current_leader_epoch=-1, timestamp=-1)
        for p in partitions])
    with rp.RawConn(bootstrap, client_id="txn-raw") as c:
        r = c.send(ListOffsetsRequest, 5, replica_id=-1, isolation_level=isolation, topics=[t])
    out = {}
    for t in r.topics:
        for p in t.partitions:
            assert p.error_code == 0, f"ListOffsets {topic}-{p.partition_index} -> {p.error_code}"
            out[p.partition_index] = p.offset
    return out
