"""Exactly-once read-process-write with real clients (issue 14, KIP-98 and
KIP-447): AddOffsetsToTxn, TxnOffsetCommit, the transaction's markers on
`__consumer_offsets` and OffsetFetch with requireStable.

The Java program tests/compat/java/TxnOffsetsScenario.java (`rpw`) copies
an input topic to an output topic with a subscribed KafkaConsumer and a
transactional KafkaProducer that commits the consumer's offsets with
`sendOffsetsToTransaction`, for a classic group and a KIP-848 consumer
group: a committed transaction moves the group's offsets, an aborted one
leaves them unchanged (and while it runs a read_committed consumer cannot
read them: UNSTABLE_OFFSET_COMMIT), and at the end every input record is in
the output exactly once and the offsets are at the input's end.

Passes against Apache Kafka 4.1.1 too (COMPAT_APACHE_KAFKA=1).
"""

import uuid
from pathlib import Path

import pytest

import compat_util as cu

JAVA_SRC = Path(__file__).resolve().parent / "java" / "TxnOffsetsScenario.java"
PARTITIONS = 3


def run_scenario(bootstrap, *args, timeout=240):
    p = cu.run_java_source(JAVA_SRC, bootstrap, *args, heap="256m", timeout=timeout)
    detail = f"\n--- stdout ---\n{p.stdout_text}\n--- stderr (tail) ---\n{p.stderr_text[-3000:]}"
    result = [ln for ln in p.stdout_text.splitlines() if ln.startswith("RESULT ")]
    assert result, f"TxnOffsetsScenario printed no result{detail}"
    assert result[-1] == "RESULT OK", f"{result[-1]}{detail}"
    return p.stdout_text


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_read_process_write_commits_offsets_in_the_transaction(broker, protocol):
    tag = uuid.uuid4().hex[:6]
    src, dst = f"rpw-in-{tag}", f"rpw-out-{tag}"
    cu.create_topic(broker.bootstrap, src, partitions=PARTITIONS)
    cu.create_topic(broker.bootstrap, dst, partitions=PARTITIONS)
    out = run_scenario(broker.bootstrap, "rpw", src, dst, f"rpw-g-{tag}", f"rpw-tx-{tag}",
                       PARTITIONS, protocol)
    print(out)
    assert "STABLE-WAIT timed out" in out
