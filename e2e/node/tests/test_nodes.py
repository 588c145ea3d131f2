"""The bundled image on real nodes (e2e/node/run): upstream kubelet, containerd
and runc, kube-proxy Services, CoreDNS, local-path PVCs.

Each test checks a place where the old process kubelet (e2e/kubelet) had a
fake: the image (it ran host binaries), the securityContext (everything ran as
root), PID 1 signal handling, Service port mapping through kube-proxy, DNS of
headless Services across nodes, and volumes that outlive the pod.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from kube import create_namespace, get, kubectl, wait_for, wait_pod_ready  # noqa: E402

STATE = Path(os.environ.get("E2E_STATE_DIR", "/tmp/runnel-node-e2e"))
IMAGE = os.environ.get("E2E_RUNNEL_IMAGE", "ghcr.io/runnel-dev/runnel:0.1.0")
CLIENT = "runnel.dev/e2e/client:1"


@pytest.fixture
def ns():
    name = f"node-e2e-{uuid.uuid4().hex[:6]}"
    create_namespace(name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def broker_pod(name, node, claim=None, grace=30):
    """A broker pod as the operator's StatefulSet runs it: the bundled image,
    non-root, read-only root filesystem, advertised on its pod IP."""
    vol = ({"name": "data", "persistentVolumeClaim": {"claimName": claim}} if claim
           else {"name": "data", "emptyDir": {}})
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "broker", "pod": name}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "hostname": name, "subdomain": "brokers",
            "terminationGracePeriodSeconds": grace,
            "securityContext": {"runAsNonRoot": True, "fsGroup": 65532,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "broker", "image": IMAGE, "imagePullPolicy": "Never",
                "command": ["/usr/local/bin/runnel-broker", "/etc/runnel/server.properties",
                            "--override", "advertised.listeners=PLAINTEXT://$(POD_IP):9092"],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "ports": [{"containerPort": 9092, "name": "kafka"}],
                "readinessProbe": {"tcpSocket": {"port": 9092}, "periodSeconds": 1},
                "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/runnel/data"}],
            }],
            "volumes": [vol],
        },
    }


def services(ns):
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "brokers"},
         "spec": {"clusterIP": "None", "selector": {"app": "broker"}, "publishNotReadyAddresses": True,
                  "ports": [{"port": 9092, "name": "kafka"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bootstrap"},
         "spec": {"selector": {"app": "broker"}, "ports": [{"port": 19092, "targetPort": 9092, "name": "kafka"}]}},
    ]}))


def client(ns, node, script, name=None, timeout=120):
    """Runs `sh -c script` in the client image on `node`; returns its log."""
    name = name or f"client-{uuid.uuid4().hex[:5]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"nodeSelector": {"kubernetes.io/hostname": node}, "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True},
                    "containers": [{"name": "c", "image": CLIENT, "imagePullPolicy": "Never",
                                    "command": ["sh", "-c", script]}]}}
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(pod))
    phase = wait_for(f"client pod {name} to finish",
                     lambda: (get("pod", name, ns) or {}).get("status", {}).get("phase") in ("Succeeded", "Failed")
                     and get("pod", name, ns)["status"]["phase"], timeout)
    log = kubectl("-n", ns, "logs", name, check=False)
    if phase != "Succeeded":
        status = json.dumps(get("pod", name, ns)["status"].get("containerStatuses"), indent=1)
        raise AssertionError(f"client pod {name} ({script!r}) failed:\n{log}\n{status}")
    return log


def container_pid(pod):
    """The host pid of the pod's first container, from its node's containerd."""
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    node = pod["spec"]["nodeName"]
    sock = STATE / "nodes" / node / "run" / "containerd.sock"
    out = subprocess.run(["ctr", "-a", str(sock), "-n", "k8s.io", "task", "ls"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == cid:
            return int(parts[1])
    raise AssertionError(f"container {cid} not among {node}'s tasks:\n{out}")


def test_nodes_are_real_kubelets_on_containerd():
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    assert len(nodes) >= 3
    for n in nodes:
        info = n["status"]["nodeInfo"]
        assert info["containerRuntimeVersion"].startswith("containerd://"), info
        assert info["kubeletVersion"].startswith("v1.34"), info
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        assert not n["spec"].get("taints"), n["spec"]["taints"]
    ips = {a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "InternalIP"}
    assert len(ips) == len(nodes), "each node has its own address (its own network namespace)"


def test_image_runs_as_nonroot_pid1_on_a_read_only_root(ns):
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(broker_pod("b0", "node2")))
    pod = wait_pod_ready(ns, "b0")
    pid = container_pid(pod)
    status = Path(f"/proc/{pid}/status").read_text()
    uid = next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1:]
    assert set(uid) == {"65532"}, status
    # PID 1 in its own pid namespace, and the image's binary (not a host path)
    nspid = next(l for l in status.splitlines() if l.startswith("NSpid:")).split()
    assert nspid[-1] == "1", nspid
    assert os.readlink(f"/proc/{pid}/exe") == "/usr/local/bin/runnel-broker"
    mounts = Path(f"/proc/{pid}/mounts").read_text().splitlines()
    root = next(m for m in mounts if m.split()[1] == "/")
    assert "ro" in root.split()[3].split(","), root


def test_services_through_kube_proxy_and_dns_across_nodes(ns):
    services(ns)
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(broker_pod("b0", "node3")))
    wait_pod_ready(ns, "b0")
    fqdn = f"b0.brokers.{ns}.svc.cluster.local"
    # from node 1: the pod by its headless-Service name, and the ClusterIP
    # Service on a different port than the container's (kube-proxy's mapping)
    log = client(ns, "node1", f"kcat -b {fqdn}:9092 -L -m 20 && kcat -b bootstrap.{ns}.svc:19092 -L -m 20")
    assert log.count("1 brokers:") == 2, log


def test_pod_deletion_stops_the_broker_gracefully_within_its_grace_period(ns):
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(broker_pod("b0", "node1", grace=30)))
    wait_pod_ready(ns, "b0")
    lines = []
    follower = subprocess.Popen(["kubectl", "-n", ns, "logs", "-f", "b0"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = threading.Thread(target=lambda: lines.extend(follower.stdout), daemon=True)
    reader.start()
    time.sleep(1)
    t0 = time.monotonic()
    kubectl("-n", ns, "delete", "pod", "b0", "--wait=true", timeout=90)
    took = time.monotonic() - t0
    follower.wait(timeout=30)
    reader.join(timeout=5)
    log = "".join(lines)
    assert "shutdown complete" in log, log[-3000:]
    assert took < 25, f"pod deletion took {took:.1f}s: SIGTERM to PID 1 was not acted on promptly"


def test_broker_restarted_on_the_same_claim_keeps_its_data(ns):
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-b0"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
    services(ns)
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(broker_pod("b0", "node2", claim="data-b0")))
    pod = wait_pod_ready(ns, "b0")
    pv = get("pvc", "data-b0", ns)["spec"]["volumeName"]
    pvo = get("pv", pv, ns)
    assert pvo["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
    terms = pvo["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert any("node2" in e.get("values", []) for t in terms for e in t["matchExpressions"]), terms
    fqdn = f"b0.brokers.{ns}.svc.cluster.local:9092"
    msgs = "".join(f"k{i}:v{i}\n" for i in range(50))
    client(ns, "node1", f"printf '{msgs}' | kcat -b {fqdn} -P -t keep -K: -p 0 -X topic.request.required.acks=-1")
    uid = pod["metadata"]["uid"]
    kubectl("-n", ns, "delete", "pod", "b0", "--wait=true", timeout=90)
    kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(broker_pod("b0", "node2", claim="data-b0")))
    pod = wait_pod_ready(ns, "b0", not_uid=uid)
    assert pod["metadata"]["uid"] != uid
    # The new pod has a new address: its name resolves to it once CoreDNS has
    # seen the new endpoint (a few seconds of cache), so retry as a client would.
    out = client(ns, "node3", "for i in $(seq 1 30); do "
                 f"out=$(kcat -b {fqdn} -C -t keep -p 0 -o beginning -e -q -K: -m 10 2>/dev/null) "
                 "&& [ \"$(echo \"$out\" | grep -c .)\" -ge 50 ] && echo \"$out\" && exit 0; sleep 1; done; exit 1")
    records = [l for l in out.split() if not l.startswith("%") and ":" in l]
    assert records == msgs.split(), out
