"""The real controllers through our kubelet: a multi-replica StatefulSet
(Parallel) with a PVC per pod and per-pod DNS names, scale-down, PVC deletion
(PV released and reclaimed), a policy/v1 PodDisruptionBudget and the
Eviction API, and CEL validation rules in a CRD (what the operator needs)."""
import json
import socket

import pytest

import kube
from manifests import IMAGE

STS = """
apiVersion: v1
kind: Service
metadata: {{name: sleepers}}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {{app: sleeper}}
  ports: [{{name: x, port: 9}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: sleeper}}
spec:
  serviceName: sleepers
  replicas: {replicas}
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: sleeper}}}}
  template:
    metadata: {{labels: {{app: sleeper}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: main
        image: {image}
        command: ["/bin/sh", "-c", "echo $(POD_NAME) >> /data/runs; exec sleep 600"]
        env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: sleeper}}
spec:
  maxUnavailable: 0
  selector: {{matchLabels: {{app: sleeper}}}}
"""


def test_statefulset_pvcs_pdb(namespace, replicas):
    ns = namespace
    n = max(replicas, 3)
    kube.apply(STS.format(replicas=n, image=IMAGE), ns)
    pods = [kube.wait_pod_ready(ns, f"sleeper-{i}", timeout=90) for i in range(n)]
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == n, ips
    for i, ip in enumerate(ips):
        assert socket.gethostbyname(f"sleeper-{i}.sleepers.{ns}.svc.cluster.local") == ip
    volumes = {}
    for i in range(n):
        pvc = kube.get("pvc", f"data-sleeper-{i}", ns)
        assert pvc["status"]["phase"] == "Bound"
        volumes[i] = pvc["spec"]["volumeName"]
    assert len(set(volumes.values())) == n

    # the disruption controller computes the PDB; the Eviction API honours it
    pdb = kube.wait_for("PDB status", lambda: (lambda p: p if p and p.get("status", {}).get(
        "currentHealthy") == n else None)(kube.get("pdb", "sleeper", ns)), 30)
    assert pdb["status"]["disruptionsAllowed"] == 0
    eviction = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                           "metadata": {"name": "sleeper-0", "namespace": ns}})
    r = kube.run(["kubectl", "create", "--raw", f"/api/v1/namespaces/{ns}/pods/sleeper-0/eviction", "-f", "-"],
                 input=eviction, check=False)
    assert kube.get("pod", "sleeper-0", ns)["metadata"].get("deletionTimestamp") is None, r

    # scale down: pods go, claims stay (StatefulSet retention policy Retain)
    kube.kubectl("-n", ns, "delete", "pdb", "sleeper")
    kube.kubectl("-n", ns, "scale", "statefulset", "sleeper", "--replicas=1")
    kube.wait_for("scale-down", lambda: all(kube.get("pod", f"sleeper-{i}", ns) is None for i in range(1, n)), 60)
    assert kube.get("pvc", f"data-sleeper-{n - 1}", ns) is not None

    # scale up again: the same claim, the same data
    kube.kubectl("-n", ns, "scale", "statefulset", "sleeper", f"--replicas={n}")
    kube.wait_pod_ready(ns, f"sleeper-{n - 1}", timeout=60)
    assert kube.get("pvc", f"data-sleeper-{n - 1}", ns)["spec"]["volumeName"] == volumes[n - 1]
    pv = kube.get("pv", volumes[n - 1])
    runs = kube.wait_for("two runs recorded", lambda: (lambda t: t if t.count("\n") >= 2 else None)(
        open(pv["spec"]["hostPath"]["path"] + "/runs").read()), 20)
    assert runs == f"sleeper-{n - 1}\n" * 2

    # deleting a claim releases its PV; the provisioner deletes it and its data
    kube.kubectl("-n", ns, "scale", "statefulset", "sleeper", "--replicas=1")
    kube.wait_for("scale-down", lambda: kube.get("pod", f"sleeper-{n - 1}", ns) is None, 60)
    kube.kubectl("-n", ns, "delete", "pvc", f"data-sleeper-{n - 1}", "--timeout=30s")
    kube.wait_for("PV reclaimed", lambda: kube.get("pv", volumes[n - 1]) is None, 30)


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.e2e.runnel.dev}
spec:
  group: e2e.runnel.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {type: integer, minimum: 1, maximum: 64}
              size: {type: string, x-kubernetes-validations: [{rule: "self == oldSelf", message: size is immutable}]}
            x-kubernetes-validations:
            - {rule: "self.replicas % 2 == 1", message: replicas must be odd}
"""


def test_crd_cel_validation(namespace):
    ns = namespace
    kube.apply(CRD)
    kube.wait_for("CRD established", lambda: kube.kubectl(
        "get", "crd", "widgets.e2e.runnel.dev", "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}") == "True", 30)
    ok = "apiVersion: e2e.runnel.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {replicas: 3, size: 1Gi}\n"
    kube.wait_for("Widget accepted", lambda: kube.apply(ok, ns), 30)
    with pytest.raises(kube.CommandError, match="replicas must be odd"):
        kube.apply(ok.replace("replicas: 3", "replicas: 2"), ns)
    with pytest.raises(kube.CommandError, match="size is immutable"):
        kube.apply(ok.replace("1Gi", "2Gi"), ns)
    with pytest.raises(kube.CommandError, match="should be less than or equal to 64"):
        kube.apply(ok.replace("replicas: 3", "replicas: 65"), ns)
    kube.kubectl("delete", "crd", "widgets.e2e.runnel.dev")
