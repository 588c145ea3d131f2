"""A numbered data set for copy checks (MirrorMaker 2 across a killed Connect worker).

`Producer(bootstrap, topic, n, partitions, rate)` writes records 0..n-1 from a thread, key
`k<i>` and value `<i>`, record i to partition i % partitions, at about `rate` records a
second (acks=all, idempotent). `Reader(bootstrap, topic, partitions)` reads a topic from its
first offset on a thread and counts every sequence number it sees. `gaps(counts, n)` is
what a check asserts on: the numbers below n never seen (lost), how many were seen more
than once (duplicates, which at-least-once delivery allows) and records whose key does not
match their value (corrupt).
"""
import threading
import time


class Producer:
    def __init__(self, bootstrap, topic, n, partitions, rate):
        self.bootstrap, self.topic, self.n, self.partitions, self.rate = bootstrap, topic, n, partitions, rate
        self.acked = 0
        self.errors = []
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _on_delivery(self, err, _msg):
        with self._lock:
            if err is not None:
                self.errors.append(str(err))
            else:
                self.acked += 1

    def _run(self):
        from confluent_kafka import Producer as KafkaProducer
        p = KafkaProducer({"bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 20, "message.timeout.ms": 120000, "socket.timeout.ms": 10000})
        chunk = max(1, self.rate // 10)
        t0 = time.time()
        try:
            for i in range(self.n):
                while True:
                    try:
                        p.produce(self.topic, key=f"k{i}", value=str(i), partition=i % self.partitions,
                                  on_delivery=self._on_delivery)
                        break
                    except BufferError:
                        p.poll(0.1)
                if (i + 1) % chunk == 0:
                    p.poll(0)
                    ahead = (i + 1) / self.rate - (time.time() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            p.flush(130)
        finally:
            self.done.set()

    def wait(self, timeout):
        self._thread.join(timeout)
        assert self.done.is_set(), f"producer not done after {timeout}s ({self.acked} acked)"
        assert not self.errors and self.acked == self.n, (self.acked, self.errors[:5])


class Reader:
    def __init__(self, bootstrap, topic, partitions):
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.counts = {}
        self.records = 0
        self.corrupt = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"check-{self.topic}",
                      "enable.auto.commit": False, "socket.timeout.ms": 10000,
                      "topic.metadata.refresh.interval.ms": 2000})
        c.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)])
        try:
            while not self._stop.is_set():
                for m in c.consume(1000, 0.5):
                    if m.error() is not None:
                        continue
                    v = m.value().decode()
                    with self._lock:
                        self.records += 1
                        if m.key() is None or m.key().decode() != f"k{v}":
                            self.corrupt.append((m.key(), v))
                            continue
                        i = int(v)
                        self.counts[i] = self.counts.get(i, 0) + 1
        finally:
            c.close()

    def distinct(self):
        with self._lock:
            return len(self.counts)

    def stop(self):
        self._stop.set()
        self._thread.join(30)
        with self._lock:
            return dict(self.counts), self.records, list(self.corrupt)


def gaps(counts, n):
    """(missing numbers below n, duplicate deliveries) of a Reader's counts."""
    missing = [i for i in range(n) if i not in counts]
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    return missing, duplicates


def read_all(bootstrap, topic, partitions, n, timeout=60):
    """Reads `topic` from its first offsets until n distinct numbers were seen or nothing
    new came for 10 s (or `timeout`); returns the Reader's counts."""
    r = Reader(bootstrap, topic, partitions).start()
    deadline, last, last_change = time.time() + timeout, -1, time.time()
    while time.time() < deadline and r.distinct() < n:
        d = r.distinct()
        if d != last:
            last, last_change = d, time.time()
        elif time.time() - last_change > 10:
            break
        time.sleep(0.5)
    return r.stop()[0]
