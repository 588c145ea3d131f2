"""Continuous acks=all produce load with a checker, for disruptions (rolling restarts).

`Load(bootstrap, topic)` produces numbered records with acks=all and idempotence from a
thread while a consumer thread reads the topic from the beginning; `stop()` then proves
every acknowledged record was consumed (none lost) and reports failed deliveries.
"""
import threading
import time


def create_topic(bootstrap, topic, partitions=3, rf=3, min_isr=2):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})
    fut = a.create_topics([NewTopic(topic, partitions, rf, config={"min.insync.replicas": str(min_isr)})])[topic]
    fut.result(timeout=30)


class Load:
    def __init__(self, bootstrap, topic, partitions=3, rate=100):
        self.bootstrap, self.topic, self.rate, self.partitions = bootstrap, topic, rate, partitions
        self.acked, self.failed, self.seen = set(), [], set()
        self.sent = 0
        self._stop = threading.Event()
        self._produced = threading.Event()  # set once the producer flushed: no more acks
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._produce, daemon=True),
                         threading.Thread(target=self._consume, daemon=True)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def _on_delivery(self, err, msg):
        with self._lock:
            if err is not None:
                self.failed.append(str(err))
            else:
                self.acked.add(msg.key().decode())

    def _produce(self):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                      "message.timeout.ms": 120000, "linger.ms": 5, "socket.timeout.ms": 10000})
        while not self._stop.is_set():
            p.produce(self.topic, key=str(self.sent), value=f"v{self.sent}", on_delivery=self._on_delivery)
            self.sent += 1
            p.poll(0)
            time.sleep(1 / self.rate)
        p.flush(130)
        self._produced.set()

    def _consume(self):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        # Assigned, not subscribed: the checker needs no group coordinator (whose
        # __consumer_offsets may have one replica), only the topic's partition leaders.
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"checker-{self.topic}",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "socket.timeout.ms": 10000})
        c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)])
        try:
            while not self._stop.is_set() or self._draining():
                m = c.poll(0.5)
                if m is not None and m.error() is None:
                    with self._lock:
                        self.seen.add(m.key().decode())
        finally:
            c.close()

    def _draining(self):
        # Until the producer has flushed (acks may still come) and every acked record
        # was read, or the deadline.
        if time.time() >= self._drain_deadline:
            return False
        if not self._produced.is_set():
            return True
        with self._lock:
            return not self.acked <= self.seen

    def stop(self, drain=120):
        """Stops producing, waits until the checker consumed every acked record (or
        `drain` seconds); returns (acked, lost, failed deliveries)."""
        self._drain_deadline = time.time() + 140 + drain
        self._stop.set()
        self._threads[0].join(140)
        self._threads[1].join(150 + drain)
        with self._lock:
            return len(self.acked), sorted(self.acked - self.seen, key=int), list(self.failed)
