"""Produce sequential values as fast as possible, logging every acknowledgement.

    python producer_proc.py BOOTSTRAP TOPIC PARTITIONS ACK_FILE

Value n is b"%08d" % n and goes to partition n % PARTITIONS (no key). For each
successful delivery report the line "partition offset value\\n" is appended to
ACK_FILE and flushed at once. Failed deliveries go to ACK_FILE + ".errors".
SIGTERM (or SIGINT) stops producing, waits up to 60 s for the outstanding
deliveries, prints a summary line to stdout and exits 0.
"""

import signal
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, partitions, ack_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    stop = False

    def on_signal(_sig, _frm):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    acks = open(ack_path, "a", buffering=1)
    errs = open(ack_path + ".errors", "a", buffering=1)
    counts = {"acked": 0, "failed": 0, "sent": 0}

    def on_delivery(err, msg):
        if err is None:
            acks.write(f"{msg.partition()} {msg.offset()} {msg.value().decode()}\n")
            acks.flush()
            counts["acked"] += 1
        else:
            errs.write(f"{msg.partition()} {msg.value().decode()} {err}\n")
            errs.flush()
            counts["failed"] += 1

    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "linger.ms": 1,
        # survive the broker being down for a while: retry, never time out a message
        "message.timeout.ms": 120000,
        "request.timeout.ms": 10000,
        "retry.backoff.ms": 50,
        "retry.backoff.max.ms": 200,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 200,
        "topic.metadata.refresh.interval.ms": 1000,
        # bound what is in flight, so a kill catches a sane amount of unacked data
        "queue.buffering.max.messages": 20000,
    })
    n = 0
    t0 = time.time()
    while not stop:
        value = b"%08d" % n
        try:
            p.produce(topic, value=value, partition=n % partitions, on_delivery=on_delivery)
        except BufferError:
            p.poll(0.02)
            continue
        counts["sent"] += 1
        n += 1
        p.poll(0)
    left = p.flush(60)
    print(f"sent={counts['sent']} acked={counts['acked']} failed={counts['failed']} "
          f"undelivered={left} seconds={time.time() - t0:.1f}", flush=True)
    acks.close()
    errs.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
