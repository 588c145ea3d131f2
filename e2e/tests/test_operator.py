"""The operator scenario (issue 4) on a real kube-apiserver and controller-manager.

The chart is rendered with Helm and applied (CRDs, ServiceAccount, least-privilege RBAC);
the operator runs as a host process with that ServiceAccount's token, so RBAC is real.
The brokers run as pods of our e2e kubelet. Replica count: E2E_REPLICAS (default 1).

E2E_OPERATOR=deployment (used by e2e/kind/) runs the same scenario against an operator that
`helm install` deployed in-cluster: "kill" then force-deletes its pod, and its HTTP
endpoints are read through the API server's pod proxy.

Order matters within the module (one cluster, built up step by step), so the tests run in
file order and later ones assume earlier ones passed.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import kube  # noqa: E402
from load import Load, create_topic  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SYSTEM_NS = "runnel-system"
CLUSTER = "demo"
GROUP = "kafka.runnel.dev"
IN_CLUSTER = os.environ.get("E2E_OPERATOR", "process") == "deployment"


def helm():
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    out = subprocess.run([str(REPO / "scripts/install-helm.sh")], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def render_chart(*sets):
    args = [helm(), "template", "runnel", str(REPO / "charts/runnel"), "--namespace", SYSTEM_NS, "--include-crds"]
    for s in sets:
        args += ["--set", s]
    return kube.run(args)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Operator:
    """runnel-operator as a host process, authenticated as the chart's ServiceAccount."""

    def __init__(self, kubeconfig, log):
        self.kubeconfig = kubeconfig
        self.log = log
        self.port = free_port()
        self.proc = None
        self.extra = ()

    def start(self, *extra):
        bin_dir = os.environ["RUNNEL_BIN_DIR"].split(":")[0]
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), POD_NAMESPACE=SYSTEM_NS,
                   POD_NAME=f"runnel-operator-{uuid.uuid4().hex[:6]}", RUST_LOG="info,kube=warn")
        f = open(self.log, "a")
        f.write(f"=== start {time.strftime('%H:%M:%S')}\n")
        f.flush()
        self.proc = subprocess.Popen(
            [f"{bin_dir}/runnel-operator", "--metrics-addr", f"127.0.0.1:{self.port}",
             "--leader-elect", "--lease-namespace", SYSTEM_NS, "--lease-duration", "4",
             "--topic-resync-seconds", "3", "--cluster-resync-seconds", "10", *(extra or self.extra)],
            env=env, stdout=f, stderr=subprocess.STDOUT)
        kube.wait_for("operator /readyz", lambda: self.http("/readyz")[0] == 200, 60)

    def http(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""
        except OSError:
            return 0, ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None


class InClusterOperator:
    """The operator Deployment that `helm install` made (E2E_OPERATOR=deployment)."""

    selector = "app.kubernetes.io/name=runnel,app.kubernetes.io/component=operator"

    def pods(self):
        out = json.loads(kube.kubectl("get", "pods", "-n", SYSTEM_NS, "-l", self.selector, "-o", "json"))
        return [p for p in out["items"] if not p["metadata"].get("deletionTimestamp")]

    def start(self):
        kube.wait_for("operator pod Ready", lambda: any(kube.pod_ready(p) for p in self.pods()), 180)

    def kill9(self):
        kube.kubectl("delete", "pods", "-n", SYSTEM_NS, "-l", self.selector, "--force", "--grace-period=0")

    def http(self, path):
        # The leader's endpoints (a standby replica reports leader 0).
        lease = kube.get("lease", "runnel-operator", SYSTEM_NS) or {}
        holder = lease.get("spec", {}).get("holderIdentity")
        ready = [p for p in self.pods() if kube.pod_ready(p)]
        ready.sort(key=lambda p: p["metadata"]["name"] != holder)
        if not ready:
            return 0, ""
        name = ready[0]["metadata"]["name"]
        r = subprocess.run(["kubectl", "get", "--raw", f"/api/v1/namespaces/{SYSTEM_NS}/pods/{name}:8080/proxy{path}"],
                           capture_output=True, text=True)
        return (200, r.stdout) if r.returncode == 0 else (503, r.stderr)

    def stop(self):
        return 0


@pytest.fixture(scope="module")
def installed():
    """CRDs and RBAC from the rendered chart (operator Deployment scaled to 0: it runs on the host)."""
    if IN_CLUSTER:
        return kube.run([helm(), "get", "manifest", "runnel", "-n", SYSTEM_NS])
    rendered = render_chart("replicaCount=0", "leaderElection.enabled=true")
    kube.kubectl("create", "namespace", SYSTEM_NS, check=False)
    kube.kubectl("apply", "--server-side", "-f", "-", input=rendered)
    for crd in ("kafkaclusters", "kafkatopics", "kafkaconnects", "kafkaconnectors"):
        kube.kubectl("wait", "--for=condition=Established", f"crd/{crd}.{GROUP}", "--timeout=60s")
    return rendered


@pytest.fixture(scope="module")
def operator(installed):
    if IN_CLUSTER:
        op = InClusterOperator()
        op.start()
        yield op
        return
    docs = [d for d in yaml.safe_load_all(installed) if d]
    sa = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
    token = kube.kubectl("create", "token", sa, "-n", SYSTEM_NS, "--duration", "2h").strip()
    admin = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    cluster = admin["clusters"][0]
    kc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": sa}}],
        "current-context": "operator",
    }
    path = kube.STATE_DIR / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    op = Operator(path, kube.STATE_DIR / "logs" / "operator.log")
    op.start()
    yield op
    rc = op.stop()
    assert rc == 0, f"operator exited {rc} on SIGTERM (log: {op.log})"


@pytest.fixture(scope="module")
def ns(operator):
    name = f"kafka-{uuid.uuid4().hex[:5]}"
    kube.create_namespace(name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def sample(file, ns, **spec_overrides):
    doc = yaml.safe_load((REPO / "config/samples" / file).read_text())
    doc["metadata"]["namespace"] = ns
    doc["spec"].update(spec_overrides)
    return doc


def apply_obj(doc, check=True):
    return kube.kubectl("apply", "--server-side", "--field-manager", "e2e-test", "-f", "-",
                        input=yaml.safe_dump(doc), check=check)


def apply_refused(doc):
    """Applies `doc` expecting the API server to refuse it; returns its message."""
    r = subprocess.run(["kubectl", "apply", "--server-side", "--field-manager", "e2e-test", "-f", "-"],
                       input=yaml.safe_dump(doc), capture_output=True, text=True)
    assert r.returncode != 0, f"accepted: {r.stdout}"
    return r.stderr


def cond(obj, type_):
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return None


def wait_cond(kind, name, ns, type_, status="True", reason=None, timeout=180):
    def check():
        o = kube.get(kind, name, ns)
        c = cond(o, type_)
        if c and c["status"] == status and (reason is None or c["reason"] == reason) \
                and c.get("observedGeneration") == o["metadata"]["generation"]:
            return o
    return kube.wait_for(f"{kind} {ns}/{name} {type_}={status} {reason or ''}", check, timeout)


def bootstrap(ns):
    return f"{CLUSTER}-kafka-bootstrap.{ns}.svc:9092"


def admin(ns):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap(ns), "socket.timeout.ms": 10000})


def kafka_topic(ns, name):
    md = admin(ns).list_topics(topic=name, timeout=10)
    t = md.topics.get(name)
    if t is None or t.error is not None:
        return None
    return t


def kafka_topic_configs(ns, name):
    from confluent_kafka.admin import ConfigResource
    res = ConfigResource("TOPIC", name)
    a = admin(ns)  # keep the client alive until the future resolves
    fut = a.describe_configs([res])[res]
    return {k: v.value for k, v in fut.result(timeout=10).items() if v.source == 1}  # DYNAMIC_TOPIC_CONFIG


# --- the scenario ---------------------------------------------------------------------


@pytest.mark.skipif(IN_CLUSTER, reason="Helm owns the objects in-cluster; the process mode covers it")
def test_chart_render_applies_twice_without_drift(installed):
    """GitOps: a second server-side apply of the same render changes nothing."""
    before = json.loads(kube.kubectl("get", "crd,clusterrole,clusterrolebinding,serviceaccount,service,deployment",
                                     "-A", "-l", "app.kubernetes.io/name=runnel", "-o", "json"))
    assert before["items"], "the chart's objects are labelled app.kubernetes.io/name=runnel"
    kube.kubectl("apply", "--server-side", "-f", "-", input=installed)
    diff = subprocess.run(["kubectl", "diff", "--server-side", "-f", "-"], input=installed,
                          capture_output=True, text=True)
    assert diff.returncode == 0, f"drift after re-apply:\n{diff.stdout}{diff.stderr}"
    after = json.loads(kube.kubectl("get", "crd,clusterrole,clusterrolebinding,serviceaccount,service,deployment",
                                    "-A", "-l", "app.kubernetes.io/name=runnel", "-o", "json"))
    # Only the chart's own objects: children of a KafkaCluster carry the same
    # label, and another scenario's may be going away while this runs.
    ours = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(installed) if d}
    rv = lambda items: {(i["kind"], i["metadata"]["name"]): i["metadata"]["resourceVersion"]  # noqa: E731
                        for i in items if (i["kind"], i["metadata"]["name"]) in ours}
    assert rv(before["items"]), "none of the chart's objects found"
    assert rv(before["items"]) == rv(after["items"])


def test_cluster_becomes_ready(ns, replicas):
    apply_obj(sample("kafkacluster.yaml", ns, replicas=replicas))
    kc = wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=240)
    st = kc["status"]
    assert st["readyReplicas"] == replicas and st["replicas"] == replicas
    assert [b["id"] for b in st["brokers"]] == list(range(replicas))
    assert all(b["ready"] for b in st["brokers"])
    assert st["bootstrapServers"] == bootstrap(ns)
    assert len(st["clusterId"]) == 22
    assert st["version"] == "0.1.0"
    assert cond(kc, "Degraded")["status"] == "False"
    # The children, owned by the cluster.
    sts = kube.get("statefulset", f"{CLUSTER}-broker", ns)
    assert sts["spec"]["updateStrategy"]["type"] == "OnDelete"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    for kind, name in [("configmap", f"{CLUSTER}-broker-config"), ("service", f"{CLUSTER}-brokers"),
                       ("service", f"{CLUSTER}-kafka-bootstrap"), ("pdb", f"{CLUSTER}-broker")]:
        o = kube.get(kind, name, ns)
        assert o, f"{kind} {name} missing"
        assert o["metadata"]["ownerReferences"][0]["kind"] == "KafkaCluster"
    cm = kube.get("configmap", f"{CLUSTER}-broker-config", ns)
    props = cm["data"][f"{CLUSTER}-broker-0.properties"]
    assert "node.id=0\n" in props and "num.partitions=3\n" in props
    # The cluster id the brokers report is the one derived from the resource.
    md = admin(ns).list_topics(timeout=10)
    assert md.cluster_id == st["clusterId"]
    assert sorted(md.brokers) == list(range(replicas))
    # A combined cluster's KRaft voters are dynamic (KIP-853): node 0 formed the quorum
    # alone, the operator made the others voters once they followed the log.
    assert st["quorum"]["mode"] == "Dynamic", st.get("quorum")
    assert st["quorum"]["voters"] == list(range(replicas)), st["quorum"]
    assert "controller.quorum.voters" not in props and "controller.quorum.bootstrap.servers=" in props
    events = kube.kubectl("get", "events", "-n", ns, "-o", "json")
    reasons = {e.get("reason") for e in json.loads(events)["items"]}
    assert {"Created", "ClusterReady"} <= reasons, reasons


def test_produce_and_consume_through_bootstrap(ns):
    # The sample cluster turns auto-creation off, so the topic comes from a KafkaTopic.
    t = sample("kafkatopic.yaml", ns, partitions=1)
    t["metadata"]["name"] = "e2e-kcat"
    apply_obj(t)
    wait_cond("kafkatopic", "e2e-kcat", ns, "Ready", timeout=60)
    msgs = "".join(f"k{i}:v{i}\n" for i in range(50))
    kube.kcat("-b", bootstrap(ns), "-P", "-t", "e2e-kcat", "-K:", "-p", "0", input=msgs)
    out = kube.kcat("-b", bootstrap(ns), "-C", "-t", "e2e-kcat", "-p", "0", "-o", "beginning", "-e", "-K:", "-q")
    assert out.splitlines() == msgs.splitlines()


def test_topic_created_with_partitions_and_configs(ns):
    apply_obj(sample("kafkatopic.yaml", ns))
    kt = wait_cond("kafkatopic", "orders", ns, "Ready")
    assert kt["status"]["topicName"] == "orders" and kt["status"]["partitions"] == 3
    assert len(kt["status"]["topicId"]) == 22
    assert "kafka.runnel.dev/topic" in kt["metadata"]["finalizers"]
    t = kafka_topic(ns, "orders")
    assert t is not None and len(t.partitions) == 3
    assert kafka_topic_configs(ns, "orders") == {"retention.ms": "604800000", "cleanup.policy": "delete"}


def test_topic_config_change_and_partition_increase_applied(ns):
    doc = sample("kafkatopic.yaml", ns, partitions=5)
    doc["spec"]["config"] = {"retention.ms": 3600000, "segment.bytes": 1048576}
    apply_obj(doc)
    wait_cond("kafkatopic", "orders", ns, "Ready")
    kube.wait_for("5 partitions in Kafka", lambda: len(kafka_topic(ns, "orders").partitions) == 5, 30)
    # cleanup.policy was removed from the spec, so it is removed from the topic.
    assert kafka_topic_configs(ns, "orders") == {"retention.ms": "3600000", "segment.bytes": "1048576"}


def test_partition_decrease_is_refused_with_a_condition(ns):
    doc = sample("kafkatopic.yaml", ns, partitions=2)
    doc["spec"]["config"] = {"retention.ms": 3600000, "segment.bytes": 1048576}
    apply_obj(doc)
    kt = wait_cond("kafkatopic", "orders", ns, "Ready", status="False", reason="PartitionDecreaseRefused")
    assert "cannot remove partitions" in cond(kt, "Ready")["message"]
    assert len(kafka_topic(ns, "orders").partitions) == 5
    events = json.loads(kube.kubectl("get", "events", "-n", ns, "-o", "json"))["items"]
    assert any(e.get("reason") == "PartitionDecreaseRefused" for e in events)
    doc["spec"]["partitions"] = 5
    apply_obj(doc)
    wait_cond("kafkatopic", "orders", ns, "Ready")


def test_out_of_band_change_is_reported_and_reverted(ns):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    res = ConfigResource("TOPIC", "orders", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET)])
    a = admin(ns)
    a.incremental_alter_configs([res])[res].result(timeout=10)
    assert kafka_topic_configs(ns, "orders")["retention.ms"] == "1000"

    def reverted():
        kt = kube.get("kafkatopic", "orders", ns)
        drift = kt["status"].get("lastDrift")
        return drift and kafka_topic_configs(ns, "orders").get("retention.ms") == "3600000" and drift

    drift = kube.wait_for("drift reverted", reverted, 60)
    assert any("retention.ms=1000 in Kafka, 3600000 in spec" in c for c in drift["changes"]), drift
    assert any("max.message.bytes=2000000 set in Kafka, absent from spec" in c for c in drift["changes"]), drift
    assert kafka_topic_configs(ns, "orders") == {"retention.ms": "3600000", "segment.bytes": "1048576"}
    events = json.loads(kube.kubectl("get", "events", "-n", ns, "-o", "json"))["items"]
    assert any(e.get("reason") == "DriftReverted" for e in events)


def test_second_topic_claiming_the_same_topic_is_refused(ns):
    doc = sample("kafkatopic.yaml", ns, topicName="orders", partitions=9)
    doc["metadata"]["name"] = "orders-copy"
    apply_obj(doc)
    kt = wait_cond("kafkatopic", "orders-copy", ns, "Ready", status="False", reason="TopicConflict")
    assert f"already managed by KafkaTopic {ns}/orders" in cond(kt, "Ready")["message"]
    time.sleep(4)  # more than a resync: still nothing changed in Kafka
    assert len(kafka_topic(ns, "orders").partitions) == 5
    kube.kubectl("delete", "kafkatopic", "orders-copy", "-n", ns, "--timeout=60s")
    assert kafka_topic(ns, "orders") is not None, "deleting the losing claim must not delete the topic"


def test_invalid_resources_are_rejected_or_reported(ns):
    def rejected(doc, fragment):
        r = subprocess.run(["kubectl", "apply", "--server-side", "--field-manager", "e2e-test", "-f", "-"],
                           input=yaml.safe_dump(doc), capture_output=True, text=True)
        assert r.returncode != 0, f"accepted: {r.stdout}"
        assert fragment in r.stderr, r.stderr

    bad = sample("kafkacluster.yaml", ns, replicas=0)
    bad["metadata"]["name"] = "bad1"
    rejected(bad, "spec.replicas")
    bad = sample("kafkacluster.yaml", ns, listeners=[{"name": "CONTROLLER", "port": 9094}])
    bad["metadata"]["name"] = "bad2"
    rejected(bad, "listener name CONTROLLER is reserved")
    grow = sample("kafkacluster.yaml", ns, storage={"size": "2Gi"})
    rejected(grow, "storage.size cannot be changed")
    t = sample("kafkatopic.yaml", ns, partitions=0)
    t["metadata"]["name"] = "bad-topic"
    rejected(t, "spec.partitions")
    t = sample("kafkatopic.yaml", ns, topicName="renamed")
    rejected(t, "spec.topicName is immutable")

    # Accepted by the API server, reported by the operator.
    managed = sample("kafkacluster.yaml", ns)
    managed["metadata"]["name"] = "managed-keys"
    managed["spec"]["config"] = {"node.id": 5}
    apply_obj(managed)
    kc = wait_cond("kafkacluster", "managed-keys", ns, "Degraded", reason="InvalidSpec", timeout=60)
    assert "node.id" in cond(kc, "Degraded")["message"]
    assert kube.get("statefulset", "managed-keys-broker", ns) is None
    kube.kubectl("delete", "kafkacluster", "managed-keys", "-n", ns)

    t = sample("kafkatopic.yaml", ns)
    t["metadata"]["name"] = "sideways"
    t["spec"]["config"] = {"cleanup.policy": "sideways"}
    apply_obj(t)
    kt = wait_cond("kafkatopic", "sideways", ns, "Ready", status="False", reason="InvalidConfig", timeout=60)
    assert "cleanup.policy" in cond(kt, "Ready")["message"]
    assert kafka_topic(ns, "sideways") is None
    kube.kubectl("delete", "kafkatopic", "sideways", "-n", ns, "--timeout=60s")

    t = sample("kafkatopic.yaml", ns)
    t["metadata"]["name"] = "orphan"
    del t["metadata"]["labels"]
    apply_obj(t)
    kt = wait_cond("kafkatopic", "orphan", ns, "Ready", status="False", reason="MissingClusterLabel", timeout=60)
    assert "kafka.runnel.dev/cluster" in cond(kt, "Ready")["message"]
    kube.kubectl("delete", "kafkatopic", "orphan", "-n", ns, "--timeout=60s")

    # The good resources were not harmed.
    wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=30)
    wait_cond("kafkatopic", "orders", ns, "Ready", timeout=30)


def test_operator_killed_mid_reconcile_converges_after_restart(ns, operator):
    names = [f"burst-{i}" for i in range(6)]
    for n in names:
        t = sample("kafkatopic.yaml", ns, partitions=2)
        t["metadata"]["name"] = n
        apply_obj(t)
    time.sleep(0.3)
    operator.kill9()
    # A topic changed while no operator runs.
    t = sample("kafkatopic.yaml", ns, partitions=4)
    t["metadata"]["name"] = names[0]
    apply_obj(t)
    operator.start()
    for n in names:
        wait_cond("kafkatopic", n, ns, "Ready", timeout=120)
        assert kafka_topic(ns, n) is not None
    kube.wait_for("burst-0 grown to 4", lambda: len(kafka_topic(ns, names[0]).partitions) == 4, 30)
    wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=60)


def test_deleting_a_topic_deletes_it_in_kafka_unless_retained(ns):
    kube.kubectl("delete", "kafkatopic", "burst-1", "-n", ns, "--timeout=60s")
    kube.wait_for("burst-1 gone from Kafka", lambda: kafka_topic(ns, "burst-1") is None, 30)
    kube.kubectl("annotate", "kafkatopic", "burst-2", "-n", ns, "kafka.runnel.dev/deletion-policy=Retain")
    kube.kubectl("delete", "kafkatopic", "burst-2", "-n", ns, "--timeout=60s")
    time.sleep(2)
    assert kafka_topic(ns, "burst-2") is not None, "Retain keeps the topic"


class PodWatch:
    """Samples the pods of `selector` and remembers the most that were down at once."""

    def __init__(self, ns, selector, expected):
        self.ns, self.selector, self.expected = ns, selector, expected
        self.max_down, self.down_sets, self.plans = 0, [], []
        self.uids = {}  # pod name -> every uid seen
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                pods = json.loads(kube.kubectl("get", "pods", "-n", self.ns, "-l", self.selector, "-o", "json"))["items"]
                up = {p["metadata"]["name"] for p in pods
                      if kube.pod_ready(p) and not p["metadata"].get("deletionTimestamp")}
                for p in pods:
                    self.uids.setdefault(p["metadata"]["name"], set()).add(p["metadata"]["uid"])
                down = sorted(set(self.expected) - up)
                if len(down) > self.max_down:
                    self.max_down = len(down)
                if down and down not in self.down_sets:
                    self.down_sets.append(down)
                plan = (kube.get("kafkacluster", CLUSTER, self.ns) or {}).get("status", {}).get("plan")
                if plan and plan.get("restarts") and plan not in self.plans:
                    self.plans.append(plan)
            except Exception:  # noqa: BLE001 - a failed sample is skipped
                pass
            time.sleep(0.5)

    def stop(self):
        self._stop.set()
        self._t.join(10)


def broker_config(ns, broker_id, key):
    """(value, source) of broker config `key` as broker `broker_id` describes it."""
    from confluent_kafka.admin import ConfigResource
    res = ConfigResource("BROKER", str(broker_id))
    a = admin(ns)  # keep the client alive until the future resolves
    e = a.describe_configs([res])[res].result(timeout=20)[key]
    return e.value, e.source


def pod_identities(ns, replicas):
    """Per broker pod: (uid, restart count of its containers)."""
    out = {}
    for p in range(replicas):
        pod = kube.get("pod", f"{CLUSTER}-broker-{p}", ns)
        restarts = sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses", []))
        out[pod["metadata"]["name"]] = (pod["metadata"]["uid"], restarts)
    return out


def test_dynamic_broker_config_applies_without_restart(ns, replicas):
    """log.retention.ms and message.max.bytes are set as cluster-default dynamic configs
    (IncrementalAlterConfigs on BROKER ""): every broker describes the new value, no pod
    restarts, the config hash and the ConfigMap do not change."""
    before = pod_identities(ns, replicas)
    sts = kube.get("statefulset", f"{CLUSTER}-broker", ns)
    hash_before = sts["spec"]["template"]["metadata"]["annotations"]["kafka.runnel.dev/config-hash"]
    cm_before = kube.get("configmap", f"{CLUSTER}-broker-config", ns)["data"]
    kc = sample("kafkacluster.yaml", ns, replicas=replicas)
    kc["spec"]["config"]["log.retention.ms"] = 123456789
    kc["spec"]["config"]["message.max.bytes"] = 2000000
    kc["spec"]["config"]["log.segment.bytes"] = 536870912
    apply_obj(kc)
    gen = kube.get("kafkacluster", CLUSTER, ns)["metadata"]["generation"]

    def applied():
        st = kube.get("kafkacluster", CLUSTER, ns)["status"].get("dynamicConfig") or {}
        return st if st.get("observedGeneration") == gen else None
    st = kube.wait_for("status.dynamicConfig of the new generation", applied, 120)
    assert st["applied"] == {"log.retention.ms": "123456789", "message.max.bytes": "2000000",
                             "log.segment.bytes": "536870912"}, st
    assert "error" not in st, st

    def everywhere():
        got = {b: (broker_config(ns, b, "log.retention.ms"), broker_config(ns, b, "message.max.bytes"),
                   broker_config(ns, b, "log.segment.bytes"))
               for b in range(replicas)}
        want = (("123456789", 3), ("2000000", 3), ("536870912", 3))  # DYNAMIC_DEFAULT_BROKER_CONFIG
        return got if all(v == want for v in got.values()) else None
    kube.wait_for("every broker describes the new values", everywhere, 60)
    # Give a (wrong) roll time to start: the operator reconciles every few seconds.
    time.sleep(20)
    wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=60)
    assert pod_identities(ns, replicas) == before, "no broker pod was restarted or replaced"
    sts = kube.get("statefulset", f"{CLUSTER}-broker", ns)
    assert sts["spec"]["template"]["metadata"]["annotations"]["kafka.runnel.dev/config-hash"] == hash_before
    assert kube.get("configmap", f"{CLUSTER}-broker-config", ns)["data"] == cm_before
    assert not (kube.get("kafkacluster", CLUSTER, ns)["status"].get("plan") or {}).get("restarts")
    events = json.loads(kube.kubectl("get", "events", "-n", ns, "-o", "json"))["items"]
    notes = [e.get("note") or e.get("message") or "" for e in events if e.get("reason") == "DynamicConfigApplied"]
    assert any("SET log.retention.ms=123456789" in n for n in notes), notes
    assert not [e for e in events if e.get("reason") == "BrokerRestarted"]


def test_a_downgrade_the_target_cannot_run_is_refused_and_restarts_nothing(ns, replicas):
    """Issue 11 item 5: an image of a version that cannot run the finalized
    metadata.version (here: one the operator does not know, 0.0.9) is refused with the
    DowngradeBlocked condition and a warning event; the StatefulSet keeps the running
    image and no pod restarts. (The image does not exist here: rolling it would leave
    pods in ImagePullBackOff.) Going back to the running version clears the condition."""
    st = kube.wait_for("status.version and status.metadataVersion",
                       lambda: (lambda s: s if s.get("version") and s.get("metadataVersion") else None)(
                           kube.get("kafkacluster", CLUSTER, ns)["status"]), 120)
    assert st["version"] == "0.1.0", st
    before = pod_identities(ns, replicas)

    def images():
        sts = kube.get("statefulset", f"{CLUSTER}-broker", ns)
        return [c["image"] for c in sts["spec"]["template"]["spec"]["containers"]]
    running = images()
    assert any(i.endswith(":0.1.0") for i in running), running
    kc = sample("kafkacluster.yaml", ns, replicas=replicas, version="0.0.9")
    apply_obj(kc)
    blocked = wait_cond("kafkacluster", CLUSTER, ns, "DowngradeBlocked", timeout=60)
    msg = cond(blocked, "DowngradeBlocked")["message"]
    assert "downgrade from 0.1.0 to 0.0.9 refused" in msg, msg
    time.sleep(15)  # a (wrong) roll would have started by now
    assert images() == running, images()
    assert pod_identities(ns, replicas) == before, "no broker pod was restarted or replaced"
    events = json.loads(kube.kubectl("get", "events", "-n", ns, "-o", "json"))["items"]
    assert any(e.get("reason") == "DowngradeRefused" for e in events)
    apply_obj(sample("kafkacluster.yaml", ns, replicas=replicas))
    wait_cond("kafkacluster", CLUSTER, ns, "DowngradeBlocked", status="False", timeout=60)
    wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=60)
    assert pod_identities(ns, replicas) == before


def test_metadata_version_follows_the_spec_within_kafkas_rules(ns, replicas):
    """Issue 11 item 5: spec.metadataVersion finalizes that level with UpdateFeatures
    (4.1-IV1 -> 4.0-IV3 is a safe downgrade Kafka allows), a level Kafka refuses (3.9, a
    metadata format change away) gets MetadataVersionBlocked and changes nothing, and
    without the field the operator upgrades back to the highest level every broker
    supports. No pod restarts."""
    before = pod_identities(ns, replicas)

    def finalized(level):
        return lambda: kube.get("kafkacluster", CLUSTER, ns)["status"].get("metadataVersion") == level
    kube.wait_for("metadata.version 4.1-IV1 reported", finalized("4.1-IV1"), 60)
    apply_obj(sample("kafkacluster.yaml", ns, replicas=replicas, metadataVersion="4.0"))
    kube.wait_for("metadata.version 4.0-IV3 finalized", finalized("4.0-IV3"), 60)
    events = json.loads(kube.kubectl("get", "events", "-n", ns, "-o", "json"))["items"]
    notes = [e.get("note") or e.get("message") or "" for e in events
             if e.get("reason") == "MetadataVersionFinalized"]
    assert any("downgraded from 4.1-IV1 to 4.0-IV3" in n for n in notes), notes
    apply_obj(sample("kafkacluster.yaml", ns, replicas=replicas, metadataVersion="3.9"))
    blocked = wait_cond("kafkacluster", CLUSTER, ns, "MetadataVersionBlocked", timeout=60)
    msg = cond(blocked, "MetadataVersionBlocked")["message"]
    assert "3.9-IV0" in msg and "refused" in msg, msg
    assert kube.get("kafkacluster", CLUSTER, ns)["status"]["metadataVersion"] == "4.0-IV3"
    apply_obj(sample("kafkacluster.yaml", ns, replicas=replicas))
    kube.wait_for("metadata.version upgraded back to 4.1-IV1", finalized("4.1-IV1"), 60)
    wait_cond("kafkacluster", CLUSTER, ns, "MetadataVersionBlocked", status="False", timeout=60)
    assert pod_identities(ns, replicas) == before, "no broker pod was restarted or replaced"


def test_broker_config_change_rolls_brokers_without_losing_data(ns, replicas):
    """A config change rolls one broker at a time (the active controller last) while an
    acks=all producer and a checker run: no acknowledged record is lost, no delivery fails."""
    before = {p: kube.get("pod", f"{CLUSTER}-broker-{p}", ns)["metadata"]["uid"] for p in range(replicas)}
    load = None
    if replicas >= 3 and not IN_CLUSTER:
        create_topic(bootstrap(ns), "roll-load", partitions=3, rf=3, min_isr=2)
        load = Load(bootstrap(ns), "roll-load").start()
        kube.wait_for("load flowing", lambda: len(load.acked) > 50, 60)
    pods = [f"{CLUSTER}-broker-{p}" for p in range(replicas)]
    watch = PodWatch(ns, "app.kubernetes.io/instance=demo,app.kubernetes.io/component=broker", pods).start()
    kc = sample("kafkacluster.yaml", ns, replicas=replicas)
    kc["spec"]["config"]["log.retention.hours"] = 100
    apply_obj(kc)

    def rolled():
        pods = [kube.get("pod", f"{CLUSTER}-broker-{p}", ns) for p in range(replicas)]
        return all(p and p["metadata"]["uid"] != before[i] and kube.pod_ready(p) for i, p in enumerate(pods))

    try:
        kube.wait_for("every broker restarted once", rolled, 300)
        wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=120)
    finally:
        watch.stop()
        result = load.stop() if load else None
    assert watch.max_down <= 1, f"more than one broker down at once: {watch.down_sets}"
    if replicas > 1:
        assert watch.plans, "status.plan showed the restarts while rolling"
        first = watch.plans[0]["restarts"]
        assert {r["pod"] for r in first} <= set(pods) and all(r["reason"] for r in first), first
    if result:
        acked, lost, failed = result
        print(f"roll under load: {acked} acked, {len(lost)} lost, {len(failed)} failed deliveries")
        assert acked > 100
        assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
        assert not failed, f"{len(failed)} deliveries failed during the roll, e.g. {failed[:3]}"
    cm = kube.get("configmap", f"{CLUSTER}-broker-config", ns)
    assert "log.retention.hours=100\n" in cm["data"][f"{CLUSTER}-broker-0.properties"]
    # The keys applied without restart that the new spec dropped are DELETEd from the
    # cluster default (the previous test set them).
    for b in range(replicas):
        v, source = broker_config(ns, b, "log.retention.ms")
        assert source != 3, (b, v, source)
        v, source = broker_config(ns, b, "message.max.bytes")
        assert (v, source) == ("1048588", 5), (b, v, source)
    dyn = kube.get("kafkacluster", CLUSTER, ns)["status"]["dynamicConfig"]
    assert dyn["applied"] == {}, dyn
    out = kube.kcat("-b", bootstrap(ns), "-C", "-t", "e2e-kcat", "-p", "0", "-o", "beginning", "-e", "-K:", "-q")
    assert len(out.splitlines()) == 50, "records written before the restart are still there"
    events = json.loads(kube.kubectl("get", "events", "-n", ns, "-o", "json"))["items"]
    assert sum(e.get("reason") == "BrokerRestarted" for e in events) >= 1
    st = kube.get("kafkacluster", CLUSTER, ns)["status"]
    assert st["underMinIsrPartitions"] == 0
    assert sum(b.get("activeController", False) for b in st["brokers"]) == 1
    assert all(b["outOfSyncPartitions"] == 0 and b["fenced"] is False for b in st["brokers"])


def test_an_image_change_rolls_the_brokers_under_load_and_back(ns, replicas):
    """Issue 11: a new image (the bundled image's layers as a second image of version
    $E2E_NEXT_VERSION, e2e/image/build.py --next-tag, standing for a newer release)
    rolls one broker at a time under acks=all load (RF 3, min.insync.replicas 2): no acknowledged record lost, no
    delivery failed, at most one broker down, status.version follows. Rolling back to
    0.1.0 is a downgrade the operator allows (0.1.0 supports the finalized
    metadata.version), so it rolls too."""
    nxt = os.environ.get("E2E_NEXT_VERSION")
    if not nxt:
        pytest.skip("needs the second image e2e/node/run builds (E2E_NEXT_VERSION)")
    load = None
    if replicas >= 3 and not IN_CLUSTER:
        create_topic(bootstrap(ns), "image-roll", partitions=3, rf=3, min_isr=2)
        load = Load(bootstrap(ns), "image-roll").start()
        kube.wait_for("load flowing", lambda: len(load.acked) > 50, 60)
    pods = [f"{CLUSTER}-broker-{p}" for p in range(replicas)]
    try:
        for version in (nxt, "0.1.0"):
            before = {p: kube.get("pod", p, ns)["metadata"]["uid"] for p in pods}
            watch = PodWatch(ns, "app.kubernetes.io/instance=demo,app.kubernetes.io/component=broker",
                             pods).start()
            kc = sample("kafkacluster.yaml", ns, replicas=replicas)
            kc["spec"] = kube.get("kafkacluster", CLUSTER, ns)["spec"]
            kc["spec"]["version"] = version

            def rolled():
                now = [kube.get("pod", p, ns) for p in pods]
                return all(p and p["metadata"]["uid"] != before[p["metadata"]["name"]] and kube.pod_ready(p)
                           and p["spec"]["containers"][0]["image"].endswith(f":{version}") for p in now)
            try:
                apply_obj(kc)
                kube.wait_for(f"every broker restarted on {version}", rolled, 300)
                kube.wait_for(f"status.version {version}",
                              lambda: kube.get("kafkacluster", CLUSTER, ns)["status"].get("version") == version, 60)
                wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=120)
            finally:
                watch.stop()
            print(f"rolled to {version}: at most {watch.max_down} broker(s) down at once")
            assert watch.max_down <= 1, f"more than one broker down at once: {watch.down_sets}"
    finally:
        result = load.stop() if load else None
    if result:
        acked, lost, failed = result
        print(f"image rolls under load: {acked} acked, {len(lost)} lost, {len(failed)} failed deliveries")
        assert acked > 100
        assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
        assert not failed, f"{len(failed)} deliveries failed during the rolls, e.g. {failed[:3]}"
    obj = kube.get("kafkacluster", CLUSTER, ns)
    assert (cond(obj, "DowngradeBlocked") or {}).get("status", "False") == "False", obj["status"]
    assert obj["status"]["metadataVersion"] == "4.1-IV1", obj["status"]


def test_metrics_and_health(operator):
    assert operator.http("/healthz")[0] == 200
    code, text = operator.http("/metrics")
    assert code == 200
    assert 'runnel_operator_reconciliations_total{controller="kafkatopic"}' in text
    assert 'runnel_operator_actions_total{controller="kafkatopic",action="TopicDeleted"}' in text
    assert "runnel_operator_leader 1" in text
    lease = kube.get("lease", "runnel-operator", SYSTEM_NS)
    assert lease and lease["spec"].get("holderIdentity")
    if not IN_CLUSTER:
        assert lease["spec"]["holderIdentity"].startswith("runnel-operator-")


def test_a_roll_survives_a_broker_and_the_operator_killed_mid_roll(ns, replicas, operator):
    """(After test_metrics_and_health: it restarts the operator, whose counters that test
    reads.) A config-change roll under acks=all load, with two faults in its middle: once the first
    broker is replaced the operator is kill -9ed, and a broker not yet rolled is force-deleted
    (the StatefulSet brings it back on the new template while no operator runs). The restarted
    operator resumes the roll: it replaces only the brokers not yet rolled (every broker pod is
    replaced exactly once), never has more than the killed broker and one other down, and no
    acknowledged record is lost."""
    if replicas < 3 or IN_CLUSTER:
        pytest.skip("needs 3 brokers and the host-process operator (load from the host)")
    pods = [f"{CLUSTER}-broker-{p}" for p in range(replicas)]
    before = {n: kube.get("pod", n, ns)["metadata"]["uid"] for n in pods}
    create_topic(bootstrap(ns), "midroll-load", partitions=3, rf=3, min_isr=2)
    load = Load(bootstrap(ns), "midroll-load").start()
    kube.wait_for("load flowing", lambda: len(load.acked) > 50, 60)
    watch = PodWatch(ns, "app.kubernetes.io/instance=demo,app.kubernetes.io/component=broker", pods).start()

    def replaced():
        return [n for n in pods if (p := kube.get("pod", n, ns)) and p["metadata"]["uid"] != before[n]]

    victim = None
    try:
        kc = sample("kafkacluster.yaml", ns, replicas=replicas)
        kc["spec"]["config"]["log.retention.hours"] = 101
        apply_obj(kc)
        first = kube.wait_for("the first broker replaced", replaced, 300)
        operator.kill9()
        left = [n for n in pods if n not in replaced()]
        assert left, f"the roll finished before the operator was killed: {first}"
        victim = left[-1]
        kube.kubectl("delete", "pod", victim, "-n", ns, "--force", "--grace-period=0")
        kube.wait_for(f"{victim} back (StatefulSet) while no operator runs",
                      lambda: (p := kube.get("pod", victim, ns)) and p["metadata"]["uid"] != before[victim]
                      and kube.pod_ready(p), 240)
        operator.start()
        kube.wait_for("every broker replaced and Ready",
                      lambda: len(replaced()) == len(pods)
                      and all(kube.pod_ready(kube.get("pod", n, ns)) for n in pods), 420)
        wait_cond("kafkacluster", CLUSTER, ns, "Ready", timeout=180)
    finally:
        watch.stop()
        result = load.stop()
    acked, lost, failed = result
    print(f"roll with a broker and the operator killed: {acked} acked, {len(lost)} lost, "
          f"{len(failed)} failed deliveries; down at once: {watch.down_sets}")
    assert acked > 100
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
    for n in pods:
        assert len(watch.uids.get(n, ())) == 2, (n, watch.uids.get(n))
    assert watch.max_down <= 2, f"more than the killed broker and one other down: {watch.down_sets}"
    cm = kube.get("configmap", f"{CLUSTER}-broker-config", ns)
    assert "log.retention.hours=101\n" in cm["data"][f"{CLUSTER}-broker-0.properties"]
    st = kube.get("kafkacluster", CLUSTER, ns)["status"]
    kube.wait_for("no partition under min ISR",
                  lambda: kube.get("kafkacluster", CLUSTER, ns)["status"]["underMinIsrPartitions"] == 0, 120)
    assert sum(b.get("activeController", False) for b in st["brokers"]) == 1


@pytest.mark.skipif(IN_CLUSTER, reason="starts operator processes")
def test_two_replicas_one_leader_and_failover(ns, operator):
    standby = Operator(operator.kubeconfig, kube.STATE_DIR / "logs" / "operator-standby.log")
    standby.start()  # ready while standing by
    code, text = standby.http("/metrics")
    assert code == 200 and "runnel_operator_leader 0" in text, "the second replica must not lead"
    # A topic applied now is handled by the leader only; the standby logs no reconcile.
    t = sample("kafkatopic.yaml", ns, partitions=1)
    t["metadata"]["name"] = "while-standby"
    apply_obj(t)
    wait_cond("kafkatopic", "while-standby", ns, "Ready", timeout=60)
    assert "reconciled" not in standby.log.read_text() and "created topic" not in standby.log.read_text()
    # Graceful stop of the leader releases the lease; the standby takes over.
    assert operator.stop() == 0
    kube.wait_for("standby leads", lambda: "runnel_operator_leader 1" in standby.http("/metrics")[1], 60)
    t["metadata"]["name"] = "after-failover"
    apply_obj(t)
    wait_cond("kafkatopic", "after-failover", ns, "Ready", timeout=60)
    assert "created topic" in standby.log.read_text()
    assert standby.stop() == 0
    operator.start()  # the module's operator again, for anything after this test


@pytest.mark.skipif(IN_CLUSTER, reason="starts operator processes")
def test_namespace_scoping(operator):
    """--namespace: the operator sees only the namespaces it is given."""
    watched, other = (f"scope-{uuid.uuid4().hex[:5]}" for _ in range(2))
    for n in (watched, other):
        kube.kubectl("create", "namespace", n)
    assert operator.stop() == 0
    scoped = Operator(operator.kubeconfig, kube.STATE_DIR / "logs" / "operator-scoped.log")
    scoped.extra = ("--namespace", watched)  # same Lease: the chart grants only that one
    try:
        scoped.start()
        for n in (watched, other):
            t = sample("kafkatopic.yaml", n)  # names a cluster that does not exist there
            apply_obj(t)
        wait_cond("kafkatopic", "orders", watched, "Ready", status="False", reason="ClusterNotFound", timeout=60)
        time.sleep(3)
        assert not kube.get("kafkatopic", "orders", other).get("status"), "the unwatched namespace is untouched"
        assert not kube.get("kafkatopic", "orders", other)["metadata"].get("finalizers")
    finally:
        assert scoped.stop() == 0
        operator.start()
    kube.wait_for("status in the other namespace once it is watched",
                  lambda: cond(kube.get("kafkatopic", "orders", other), "Ready"), 60)
    for n in (watched, other):
        kube.kubectl("delete", "namespace", n, "--wait=false")


def free_the_nodes():
    """Deletes every KafkaCluster (without waiting), so a test that needs all
    the nodes gets them: the module's combined cluster's tests are done."""
    for n in kube.kubectl("get", "kafkacluster", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}").split():
        ns_, name = n.split("/")
        kube.kubectl("delete", "kafkacluster", name, "-n", ns_, "--wait=false", check=False)


@pytest.mark.skipif(IN_CLUSTER, reason="the process-mode run covers node pools")
def test_controller_pool_forms_a_cluster_and_scaling_brokers_restarts_none(operator, replicas):
    """spec.controllers: 3 dedicated controllers + 3 brokers serve acks=all RF=3 traffic;
    scaling the brokers 3->4 restarts no existing pod; the CRD refuses an even or changed
    controller count; pause-reconciliation shows the plan and changes nothing."""
    if replicas < 3:
        pytest.skip("needs three nodes")
    free_the_nodes()
    pool_ns = f"pool-{uuid.uuid4().hex[:5]}"
    kube.create_namespace(pool_ns)
    try:
        kc = sample("kafkacluster.yaml", pool_ns, replicas=3)
        kc["spec"]["config"] = {"num.partitions": 3, "auto.create.topics.enable": False}
        kc["spec"]["controllers"] = {"replicas": 2, "storage": {"size": "1Gi"}}
        out = apply_refused(kc)
        assert "controllers.replicas must be odd" in out, out
        kc["spec"]["controllers"]["replicas"] = 3
        apply_obj(kc)
        st = wait_cond("kafkacluster", CLUSTER, pool_ns, "Ready", timeout=300)["status"]
        assert [c["id"] for c in st["controllers"]] == [1000, 1001, 1002]
        assert sum(c.get("activeController", False) for c in st["controllers"]) == 1
        assert not any(b.get("controller") for b in st["brokers"]), "brokers are process.roles=broker"
        assert [b["id"] for b in st["brokers"]] == [0, 1, 2]
        cm = kube.get("configmap", f"{CLUSTER}-broker-config", pool_ns)["data"]
        assert "process.roles=controller\n" in cm[f"{CLUSTER}-controller-0.properties"]
        assert "process.roles=broker\n" in cm[f"{CLUSTER}-broker-0.properties"]
        # The voter set is fixed: the API server refuses a change.
        kc2 = json.loads(json.dumps(kc))
        kc2["spec"]["controllers"]["replicas"] = 5
        out = apply_refused(kc2)
        assert "controllers.replicas is immutable" in out, out
        # acks=all, RF=3, min.insync.replicas=2 through the brokers' bootstrap.
        bs = f"{CLUSTER}-kafka-bootstrap.{pool_ns}.svc:9092"
        create_topic(bs, "pool-traffic", partitions=3, rf=3, min_isr=2)
        load = Load(bs, "pool-traffic").start()
        kube.wait_for("traffic acked", lambda: len(load.acked) > 200, 60)

        def uids():
            pods = json.loads(kube.kubectl("get", "pods", "-n", pool_ns, "-l", "app.kubernetes.io/instance=demo", "-o", "json"))["items"]
            return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}
        before = uids()
        assert len(before) == 6, before
        kc["spec"]["replicas"] = 4
        apply_obj(kc)
        kube.wait_for("4 ready brokers", lambda: (kube.get("kafkacluster", CLUSTER, pool_ns)["status"].get("readyReplicas") == 4
                                                 and cond(kube.get("kafkacluster", CLUSTER, pool_ns), "Ready")["status"] == "True"), 240)
        after = uids()
        assert {n: after.get(n) for n in before} == before, "scaling the brokers restarted an existing pod"
        assert f"{CLUSTER}-broker-3" in after
        acked, lost, failed = load.stop()
        print(f"pool traffic: {acked} acked, {len(lost)} lost, {len(failed)} failed")
        assert acked > 200 and not lost and not failed, (lost[:5], failed[:3])
        # Paused: a config change is planned (every pod, controllers first) but not applied.
        kube.kubectl("annotate", "kafkacluster", CLUSTER, "-n", pool_ns, "kafka.runnel.dev/pause-reconciliation=true")
        kc["spec"]["config"]["log.retention.hours"] = 100
        apply_obj(kc)

        def planned():
            plan = kube.get("kafkacluster", CLUSTER, pool_ns)["status"].get("plan") or {}
            return plan if plan.get("paused") and len(plan.get("restarts", [])) == 7 else None
        plan = kube.wait_for("status.plan of the paused change", planned, 60)
        order = [r["pod"] for r in plan["restarts"]]
        assert all(p.startswith(f"{CLUSTER}-controller-") for p in order[:3]), order
        assert "active controller" in plan["restarts"][2]["reason"], plan
        assert all(p.startswith(f"{CLUSTER}-broker-") for p in order[3:]), order
        rec = cond(kube.get("kafkacluster", CLUSTER, pool_ns), "Reconciling")
        assert rec["reason"] == "ReconciliationPaused", rec
        cm = kube.get("configmap", f"{CLUSTER}-broker-config", pool_ns)["data"]
        assert "log.retention.hours" not in cm[f"{CLUSTER}-broker-0.properties"], "paused: nothing applied"
        # Revert while paused, resume: nothing to do, nothing restarted.
        del kc["spec"]["config"]["log.retention.hours"]
        apply_obj(kc)
        kube.kubectl("annotate", "kafkacluster", CLUSTER, "-n", pool_ns, "kafka.runnel.dev/pause-reconciliation-")
        wait_cond("kafkacluster", CLUSTER, pool_ns, "Ready", timeout=60)
        time.sleep(3)
        assert uids() == after, "resuming with no change restarts nothing"
    finally:
        kube.kubectl("delete", "namespace", pool_ns, "--wait=false", check=False)


@pytest.mark.skipif(IN_CLUSTER, reason="the process-mode run covers scaling")
def test_a_combined_cluster_scales_with_dynamic_voters_and_restarts_no_broker(operator, replicas):
    """Issue 11 part 1 in combined mode: 3 broker+controller nodes under acks=all RF=3
    load. 3->4: node 3 joins as an observer of the metadata log and the operator makes
    it a voter (AddRaftVoter); 4->3: it stops voting (RemoveRaftVoter) and is drained
    before its pod goes. No existing pod restarts, nothing acknowledged is lost."""
    if replicas < 3:
        pytest.skip("needs three nodes")
    free_the_nodes()
    dns = f"voters-{uuid.uuid4().hex[:5]}"
    kube.create_namespace(dns)
    bs = f"{CLUSTER}-kafka-bootstrap.{dns}.svc:9092"

    def status():
        return kube.get("kafkacluster", CLUSTER, dns)["status"]

    def uids():
        pods = json.loads(kube.kubectl("get", "pods", "-n", dns, "-l", "app.kubernetes.io/instance=demo", "-o", "json"))["items"]
        return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}

    def events(reason):
        evs = json.loads(kube.kubectl("get", "events", "-n", dns, "-o", "json"))["items"]
        return [e["message"] for e in evs if e.get("reason") == reason]

    try:
        kc = sample("kafkacluster.yaml", dns, replicas=3)
        kc["spec"]["config"] = {"num.partitions": 3, "auto.create.topics.enable": False}
        apply_obj(kc)
        st = wait_cond("kafkacluster", CLUSTER, dns, "Ready", timeout=300)["status"]
        assert st["quorum"] == {"mode": "Dynamic", "voters": [0, 1, 2]}, st["quorum"]
        # (Same-reason events fold into one series: one suffices.)
        assert events("VoterAdded"), "no VoterAdded event"
        cm = kube.get("configmap", f"{CLUSTER}-broker-config", dns)["data"]
        # Formed: a lost node 0 would rejoin as an observer, never form a second quorum.
        kube.wait_for("node 0 no longer formats standalone",
                      lambda: kube.get("configmap", f"{CLUSTER}-broker-config", dns)["data"][f"{CLUSTER}-broker-0.format-flags"]
                      .strip() == "--no-initial-controllers", 60)
        assert cm[f"{CLUSTER}-broker-1.format-flags"].strip() == "--no-initial-controllers"
        create_topic(bs, "voters-traffic", partitions=3, rf=3, min_isr=2)
        load = Load(bs, "voters-traffic").start()
        kube.wait_for("traffic acked", lambda: len(load.acked) > 200, 60)
        before = uids()
        assert len(before) == 3, before

        kc["spec"]["replicas"] = 4
        apply_obj(kc)
        kube.wait_for("node 3 votes and the cluster is ready",
                      lambda: (status().get("quorum", {}).get("voters") == [0, 1, 2, 3]
                               and status().get("readyReplicas") == 4
                               and cond(kube.get("kafkacluster", CLUSTER, dns), "Ready")["status"] == "True"), 300)
        after = uids()
        assert {n: after.get(n) for n in before} == before, "scaling up restarted an existing pod"

        kc["spec"]["replicas"] = 3
        apply_obj(kc)

        def shrunk():
            pods = uids()
            st = status()
            return (len(pods) == 3 and st.get("quorum", {}).get("voters") == [0, 1, 2]
                    and cond(kube.get("kafkacluster", CLUSTER, dns), "Ready")["status"] == "True")
        kube.wait_for("node 3 removed from the voters, drained and gone", shrunk, 400)
        assert any(m.startswith("node 3 ") for m in events("VoterRemoved")), events("VoterRemoved")
        assert not any("restart" in m.lower() for m in events("BrokerRestarted")), "no roll"
        assert uids() == before, "scaling down restarted an existing pod"
        acked, lost, failed = load.stop()
        print(f"combined 3->4->3 under load: {acked} acked, {len(lost)} lost, {len(failed)} failed")
        assert acked > 200 and not lost and not failed, (lost[:5], failed[:3])
    finally:
        kube.kubectl("delete", "namespace", dns, "--wait=false", check=False)


class StatusWatch:
    """Every distinct value a KafkaCluster's (or another object's) status field (a
    jsonpath) had, from a watch (each version of the object, so values shown for less
    than a poll interval are seen too). A list value adds its distinct items."""

    def __init__(self, ns, path, kind="kafkacluster", name=CLUSTER):
        self.seen = []
        self._p = subprocess.Popen(
            ["kubectl", "get", kind, name, "-n", ns, "-w", "-o",
             f'jsonpath={{{path}}}{{"\\n"}}'],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        for line in self._p.stdout:
            try:
                v = json.loads(line.strip() or "null")
            except ValueError:
                continue
            for item in (v if isinstance(v, list) else [v]):
                if item and item not in self.seen:
                    self.seen.append(item)

    def stop(self):
        self._p.terminate()
        self._p.wait(10)
        self._t.join(10)
        return self.seen


def preload(bootstrap, topic, total_bytes, partitions):
    """Writes `total_bytes` of 1 KiB records spread over `partitions` (acks=all)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                  "enable.idempotence": True})
    value = b"x" * 1024
    for i in range(total_bytes // 1024):
        while True:
            try:
                p.produce(topic, key=f"pre-{i}".encode(), value=value, partition=i % partitions)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(120) == 0, "preload not delivered"


SCALE_PRELOAD = 18 * 1024 * 1024  # bytes written to the scaled topic before 3->4
SCALE_THROTTLE = 1_000_000  # spec.rebalance.throttleBytesPerSecond of the 3->4 moves


@pytest.mark.skipif(IN_CLUSTER, reason="the process-mode run covers scaling")

def test_scaling_moves_partitions_drains_before_shrinking_and_refuses_data_loss(operator, replicas):
    """Issue 11 part 3: 3 brokers (dedicated controllers) with an RF=2 topic under acks=all
    load. 3->4: the rebalance moves replicas onto broker 3 (status.plan.moves shows it).
    4->2: brokers 2 and 3 are drained first and the StatefulSet shrinks only after; no
    acknowledged record is lost. 2->1: refused (ScaleDownBlocked condition and event),
    nothing removed. The 3->4 moves run under `spec.rebalance.throttleBytesPerSecond`:
    the throttle is shown in status while they run, paces the copy, and is removed
    after."""
    if replicas < 3:
        pytest.skip("needs three nodes")
    free_the_nodes()
    sns = f"scale-{uuid.uuid4().hex[:5]}"
    kube.create_namespace(sns)
    from confluent_kafka.admin import AdminClient
    bs = f"{CLUSTER}-kafka-bootstrap.{sns}.svc:9092"

    def replicas_of(topic):
        md = AdminClient({"bootstrap.servers": bs, "socket.timeout.ms": 10000}).list_topics(topic=topic, timeout=10)
        t = md.topics[topic]
        return {p.id: list(p.replicas) for p in t.partitions.values()}

    def sts_replicas():
        return kube.get("statefulset", f"{CLUSTER}-broker", sns)["spec"]["replicas"]

    try:
        kc = sample("kafkacluster.yaml", sns, replicas=3)
        # Internal topics with RF 2, so that 2 brokers can hold them.
        kc["spec"]["config"] = {"num.partitions": 3, "auto.create.topics.enable": False,
                                "offsets.topic.replication.factor": 2,
                                "transaction.state.log.replication.factor": 2,
                                "transaction.state.log.min.isr": 1}
        kc["spec"]["controllers"] = {"replicas": 3, "storage": {"size": "1Gi"}}
        apply_obj(kc)
        wait_cond("kafkacluster", CLUSTER, sns, "Ready", timeout=300)
        create_topic(bs, "scale-rf2", partitions=6, rf=2, min_isr=1)
        # Data to copy, so that a throttled move takes seconds (unthrottled: under one).
        preload(bs, "scale-rf2", SCALE_PRELOAD, 6)
        load = Load(bs, "scale-rf2", partitions=6).start()
        kube.wait_for("traffic acked", lambda: len(load.acked) > 200, 60)

        # Scale up: broker 3 joins and receives replicas, throttled.
        watch = StatusWatch(sns, ".status.plan.moves")
        throttles = StatusWatch(sns, ".status.replicationThrottle")

        def rebalanced():
            reps = replicas_of("scale-rf2")
            on3 = sum(3 in r for r in reps.values())
            counts = [sum(b in r for r in reps.values()) for b in range(4)]
            # (mid-move a partition lists its old and new replicas: RF 2 means done)
            done = all(len(r) == 2 for r in reps.values())
            return counts if done and on3 >= 2 and max(counts) - min(counts) <= 1 else None
        kc["spec"]["replicas"] = 4
        kc["spec"]["rebalance"] = {"throttleBytesPerSecond": SCALE_THROTTLE}
        apply_obj(kc)
        t0 = time.time()
        counts = kube.wait_for("partitions moved onto broker 3", rebalanced, 300)
        took = time.time() - t0
        moves_seen = watch.stop()
        print(f"after 3->4: replicas per broker {counts}; moves shown {moves_seen}")
        moved_in = [m for m in moves_seen if 3 in m["to"] and 3 not in m["from"] and m["reason"]]
        assert moved_in, moves_seen
        events = json.loads(kube.kubectl("get", "events", "-n", sns, "-o", "json"))["items"]
        assert any(e.get("reason") == "RebalanceStarted" for e in events)
        # The throttle: shown while the moves ran, on the topic and the brokers moved
        # between, then removed (status, topic configs, event).
        kube.wait_for("the throttle removed from status",
                      lambda: not kube.get("kafkacluster", CLUSTER, sns)["status"].get("replicationThrottle"), 120)
        shown = throttles.stop()
        print(f"throttle shown: {shown}; {len(moved_in)} partition(s) copied to broker 3 in {took:.1f}s")
        assert shown and shown[0]["bytesPerSecond"] == SCALE_THROTTLE, shown
        assert "scale-rf2" in shown[0]["topics"] and 3 in shown[0]["brokers"], shown
        events = json.loads(kube.kubectl("get", "events", "-n", sns, "-o", "json"))["items"]
        assert any(e.get("reason") == "ThrottleRemoved" for e in events)
        a = AdminClient({"bootstrap.servers": bs, "socket.timeout.ms": 10000})
        from confluent_kafka.admin import ConfigResource
        res = ConfigResource(ConfigResource.Type.TOPIC, "scale-rf2")
        configs = a.describe_configs([res])[res].result(timeout=30)
        for k in ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas"):
            assert configs[k].value in (None, ""), (k, configs[k].value)
        # Paced: broker 3 fetched the copied partitions at the throttle's rate, less the
        # first window's burst (one fetch of up to 1 MiB goes through at once).
        copied = len({m["partition"] for m in moved_in if m["topic"] == "scale-rf2"}) * SCALE_PRELOAD / 6
        floor = 0.5 * (copied - 1_048_576) / SCALE_THROTTLE
        assert took >= floor, f"{copied:.0f} bytes copied in {took:.1f}s (< {floor:.1f}s): not throttled"
        kc["spec"].pop("rebalance")
        apply_obj(kc)

        # Scale down: drained before the StatefulSet shrinks.
        violations = []
        watch = StatusWatch(sns, ".status.plan.moves")

        def shrunk():
            n = sts_replicas()
            reps = replicas_of("scale-rf2")
            on_removed = [p for p, r in reps.items() if 2 in r or 3 in r]
            if n < 4 and on_removed:
                violations.append((n, reps))
            pods = json.loads(kube.kubectl("get", "pods", "-n", sns, "-l", "app.kubernetes.io/component=broker", "-o", "json"))["items"]
            return n == 2 and len(pods) == 2 and not on_removed
        kc["spec"]["replicas"] = 2
        apply_obj(kc)
        kube.wait_for("brokers 2 and 3 drained, then removed", shrunk, 400)
        drain_moves = watch.stop()
        assert not violations, f"StatefulSet shrank while replicas were on brokers 2/3: {violations[:2]}"
        # status.plan.moves showed the drain (Runnel moves small partitions within a
        # second or two, so the poll may see only some of it), and the event names it.
        print(f"drain moves seen in status.plan: {len(drain_moves)}")
        assert any("scale-down" in m["reason"] and ("2" in m["reason"] or "3" in m["reason"])
                   for m in drain_moves), drain_moves
        events = json.loads(kube.kubectl("get", "events", "-n", sns, "-o", "json"))["items"]
        assert any(e.get("reason") == "DrainStarted" and e["message"].startswith("drain:") for e in events)
        assert not any(e.get("reason") == "ScaleDownBlocked" for e in events), "4->2 is not refused"
        assert all(set(r) <= {0, 1} for r in replicas_of("scale-rf2").values())
        acked, lost, failed = load.stop()
        print(f"scale 3->4->2 under load: {acked} acked, {len(lost)} lost, {len(failed)} failed")
        assert acked > 200 and not lost, lost[:5]
        assert not failed, failed[:3]
        events = json.loads(kube.kubectl("get", "events", "-n", sns, "-o", "json"))["items"]
        assert any(e.get("reason") == "ScaleDownDrained" for e in events)
        wait_cond("kafkacluster", CLUSTER, sns, "Ready", timeout=120)
        # Once their pods are gone and fenced, the removed brokers are unregistered
        # (UnregisterBroker). Same-reason events fold into one series: one suffices.
        def unregistered():
            evs = json.loads(kube.kubectl("get", "events", "-n", sns, "-o", "json"))["items"]
            return [e["message"] for e in evs if e.get("reason") == "BrokerUnregistered"]
        msgs = kube.wait_for("a removed broker unregistered", unregistered, 120)
        assert any(m.startswith(("broker 2 ", "broker 3 ")) for m in msgs), msgs

        # RF=2 cannot fit one broker: refused, nothing removed.
        kc["spec"]["replicas"] = 1
        apply_obj(kc)
        blocked = wait_cond("kafkacluster", CLUSTER, sns, "ScaleDownBlocked", timeout=60)
        msg = cond(blocked, "ScaleDownBlocked")["message"]
        assert "scale-rf2 (replication factor 2)" in msg, msg
        time.sleep(5)
        assert sts_replicas() == 2
        events = json.loads(kube.kubectl("get", "events", "-n", sns, "-o", "json"))["items"]
        assert any(e.get("reason") == "ScaleDownBlocked" for e in events)
        assert all(set(r) <= {0, 1} and len(r) == 2 for r in replicas_of("scale-rf2").values())
        kc["spec"]["replicas"] = 2
        apply_obj(kc)
        wait_cond("kafkacluster", CLUSTER, sns, "ScaleDownBlocked", status="False", timeout=60)

        # KafkaTopic replication factor 1 -> 2 by reassignment, throttled by the
        # cluster's spec.rebalance (shown in the KafkaTopic's status, removed after);
        # 3 on 2 brokers is refused.
        t = sample("kafkatopic.yaml", sns, partitions=3, replicas=1)
        t["metadata"]["name"] = "rf-change"
        apply_obj(t)
        wait_cond("kafkatopic", "rf-change", sns, "Ready", timeout=60)
        kube.kcat("-b", bs, "-P", "-t", "rf-change", "-K:", "-p", "0",
                  input="".join(f"k{i}:v{i}\n" for i in range(20)))
        kc["spec"]["rebalance"] = {"throttleBytesPerSecond": SCALE_THROTTLE}
        apply_obj(kc)
        topic_throttles = StatusWatch(sns, ".status.replicationThrottle", kind="kafkatopic", name="rf-change")
        t["spec"]["replicas"] = 2
        apply_obj(t)
        kube.wait_for("rf-change has 2 replicas per partition",
                      lambda: all(len(r) == 2 for r in replicas_of("rf-change").values()), 120)
        wait_cond("kafkatopic", "rf-change", sns, "Ready", timeout=120)
        kube.wait_for("the topic's throttle removed from its status",
                      lambda: not kube.get("kafkatopic", "rf-change", sns)["status"].get("replicationThrottle"), 120)
        shown = topic_throttles.stop()
        print(f"KafkaTopic throttle shown: {shown}")
        assert shown and shown[0]["bytesPerSecond"] == SCALE_THROTTLE and shown[0]["topics"] == ["rf-change"], shown
        assert set(shown[0]["brokers"]) == {0, 1}, shown
        events = json.loads(kube.kubectl("get", "events", "-n", sns, "-o", "json"))["items"]
        assert any(e.get("reason") == "ThrottleRemoved" and e["involvedObject"]["kind"] == "KafkaTopic"
                   for e in events), [e.get("reason") for e in events]
        res = ConfigResource(ConfigResource.Type.TOPIC, "rf-change")
        configs = a.describe_configs([res])[res].result(timeout=30)
        for k in ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas"):
            assert configs[k].value in (None, ""), (k, configs[k].value)
        kc["spec"].pop("rebalance")
        apply_obj(kc)
        out = kube.kcat("-b", bs, "-C", "-t", "rf-change", "-p", "0", "-o", "beginning", "-e", "-K:", "-q")
        assert len(out.splitlines()) == 20, out
        t["spec"]["replicas"] = 3
        apply_obj(t)
        kt = wait_cond("kafkatopic", "rf-change", sns, "Ready", status="False",
                       reason="ReplicationFactorTooHigh", timeout=60)
        assert "2 registered broker" in cond(kt, "Ready")["message"], cond(kt, "Ready")
        assert all(len(r) == 2 for r in replicas_of("rf-change").values())
    finally:
        kube.kubectl("delete", "namespace", sns, "--wait=false", check=False)
