"""Internal topics are the brokers' own: clients cannot write them."""

from __future__ import annotations


def test_clients_cannot_produce_to_internal_topics(bootstrap):
    """Kafka refuses a client's write to `__consumer_offsets` with
    INVALID_TOPIC_EXCEPTION ("Cannot append to internal topic ..."); Runnel
    used to append it, corrupting the group coordinator's log."""
    from confluent_kafka import Consumer, KafkaError, Producer
    # Make sure __consumer_offsets exists (a group lookup creates it).
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "internal-topic-probe"})
    c.list_topics(timeout=15)
    try:
        c.committed([__import__("confluent_kafka").TopicPartition("any-topic", 0)], timeout=30)
    except Exception:  # noqa: BLE001 - only the side effect (the topic's creation) matters
        pass
    c.close()
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 15000,
                  "enable.idempotence": False, "retries": 0})
    results = []
    p.produce("__consumer_offsets", b"not a group record", partition=0,
              on_delivery=lambda e, m: results.append(e))
    p.flush(30)
    assert len(results) == 1 and results[0] is not None, "a client write to __consumer_offsets was acked"
    assert results[0].code() == KafkaError.TOPIC_EXCEPTION, results[0]
