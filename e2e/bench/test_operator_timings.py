"""Operator timings on the e2e platform (a benchmark, not a test: it prints figures and
asserts only that things happened).

    e2e/run -s e2e/bench/test_operator_timings.py

Measures, with the operator as a host process (chart RBAC) and brokers as e2e-kubelet pods:
apply of a KafkaCluster → Ready; apply of N KafkaTopics → all Ready and present in Kafka;
a topic config change → visible in Kafka; the operator's peak RSS and CPU time.
"""
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import kube  # noqa: E402
from test_operator import (CLUSTER, apply_obj, installed, kafka_topic, kafka_topic_configs,  # noqa: E402,F401
                           ns, operator, sample, wait_cond)

N_TOPICS = 50


def proc_stats(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmHWM:"))
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(stat[11]) + int(stat[12])
    import os
    return hwm / 1024, ticks / os.sysconf("SC_CLK_TCK")


def test_timings(ns, operator, replicas):
    figures = {}
    t0 = time.monotonic()
    apply_obj(sample("kafkacluster.yaml", ns, replicas=replicas))
    wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=240, )
    figures["KafkaCluster apply → Ready (s)"] = time.monotonic() - t0

    t0 = time.monotonic()
    docs = []
    for i in range(N_TOPICS):
        t = sample("kafkatopic.yaml", ns, partitions=3)
        t["metadata"]["name"] = f"bench-{i}"
        docs.append(yaml.safe_dump(t))
    kube.kubectl("apply", "--server-side", "--field-manager", "e2e-test", "-f", "-", input="---\n".join(docs))
    for i in range(N_TOPICS):
        wait_cond("kafkatopic", f"bench-{i}", ns, "Ready", timeout=300)
    figures[f"{N_TOPICS} KafkaTopics apply → all Ready (s)"] = time.monotonic() - t0
    assert all(kafka_topic(ns, f"bench-{i}") is not None for i in range(N_TOPICS))

    t0 = time.monotonic()
    t = sample("kafkatopic.yaml", ns, partitions=3)
    t["metadata"]["name"] = "bench-0"
    t["spec"]["config"] = {"retention.ms": 123456}
    apply_obj(t)
    kube.wait_for("config in Kafka", lambda: kafka_topic_configs(ns, "bench-0").get("retention.ms") == "123456", 60,
                  interval=0.05)
    figures["topic config change → in Kafka (s)"] = time.monotonic() - t0

    rss, cpu = proc_stats(operator.proc.pid)
    figures["operator peak RSS (MiB)"] = rss
    figures["operator CPU time so far (s)"] = cpu
    print("\n== operator timings (replicas=%d)" % replicas)
    for k, v in figures.items():
        print(f"  {k:45s} {v:8.2f}")
