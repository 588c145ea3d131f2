"""The e2e platform itself, without the operator: a real StatefulSet
controller, our kubelet, a runnel-broker pod, Services, DNS names, PVCs."""
import json
import os
import socket
import sys

import kube
from manifests import IMAGE, kafka_cluster

CLUSTER = "demo"
PY = sys.executable


def fqdn(name, ns):
    return f"{name}.{ns}.svc.cluster.local"


def resolve(name):
    try:
        return socket.gethostbyname(name)
    except socket.gaierror:
        return None


def consume_all(bootstrap, topic, count, timeout=60):
    def check():
        out = kube.kcat("-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                        "-m", "10", "-f", "%s\n", timeout=30)
        lines = out.splitlines()
        return lines if len(lines) >= count else None
    return kube.wait_for(f"{count} records in {topic}", check, timeout, interval=1)


def test_broker_statefulset(namespace):
    ns = namespace
    kube.apply(kafka_cluster(CLUSTER, ns, replicas=1), ns)
    pod = kube.wait_for("pod demo-broker-0 to exist", lambda: kube.get("pod", f"{CLUSTER}-broker-0", ns), 60)
    pod = kube.wait_pod_ready(ns, f"{CLUSTER}-broker-0", timeout=120)

    # the pod has its own address on the e2e bridge; the hosts file knows its names
    ip = pod["status"]["podIP"]
    subnet = os.environ.get("E2E_SUBNET", "10.201.0")
    assert ip.startswith(f"{subnet}."), ip
    assert pod["status"]["hostIP"] == f"{subnet}.1"
    assert pod["spec"]["nodeName"] == "runnel-e2e-node"
    assert socket.gethostbyname(fqdn(f"{CLUSTER}-broker-0.{CLUSTER}-brokers", ns)) == ip
    bootstrap_host = fqdn(f"{CLUSTER}-kafka-bootstrap", ns)
    # the Service name follows the EndpointSlice controller, a moment after Ready
    kube.wait_for(f"{bootstrap_host} to resolve to {ip}", lambda: resolve(bootstrap_host) == ip, 30)
    assert resolve(f"{CLUSTER}-kafka-bootstrap.{ns}.svc") == ip
    cs = pod["status"]["containerStatuses"][0]
    assert cs["ready"] and "running" in cs["state"], cs

    # the PVC from the volumeClaimTemplate is bound by the real PV binder
    pvc = kube.wait_for("PVC bound", lambda: (lambda p: p if p and p["status"].get("phase") == "Bound" else None)(
        kube.get("pvc", f"data-{CLUSTER}-broker-0", ns)), 30)
    volume = pvc["spec"]["volumeName"]

    # produce and consume through the bootstrap Service
    bootstrap = f"{bootstrap_host}:9092"
    records = [f"record-{i}" for i in range(10)]
    kube.kcat("-b", bootstrap, "-P", "-t", "e2e-platform", "-X", "message.timeout.ms=30000",
              input="\n".join(records) + "\n")
    assert consume_all(bootstrap, "e2e-platform", 10) == records

    # delete the pod: the StatefulSet controller recreates it, with the same PVC and data
    old_uid = pod["metadata"]["uid"]
    kube.kubectl("delete", "pod", f"{CLUSTER}-broker-0", "-n", ns, "--timeout=60s", timeout=90)
    pod2 = kube.wait_pod_ready(ns, f"{CLUSTER}-broker-0", timeout=120, not_uid=old_uid)
    assert pod2["metadata"]["uid"] != old_uid
    assert kube.get("pvc", f"data-{CLUSTER}-broker-0", ns)["spec"]["volumeName"] == volume
    log = kube.container_log(ns, f"{CLUSTER}-broker-0", "broker")
    assert log.count("runnel-e2e-kubelet") >= 2, "both broker runs are in the container log"
    assert consume_all(bootstrap, "e2e-platform", 10) == records


ENV_POD = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{greeting: hello, app.properties: "a=1\\n"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData: {{password: s3cret}}
---
apiVersion: v1
kind: Pod
metadata: {{name: envcheck, labels: {{app: envcheck}}}}
spec:
  restartPolicy: Never
  hostname: envcheck
  subdomain: envs
  containers:
  - name: main
    image: {image}
    command: ["/bin/sh", "-c"]
    args:
    - |
      echo "name=$(POD_NAME) ns=$(POD_NAMESPACE) ip=$(POD_IP) node=$(NODE) greeting=$(GREETING) password=$(PASSWORD) combo=$(COMBO)" 'literal=$$(POD_NAME) undefined=$(NOPE)'
      echo "file=$(cat /etc/settings/app.properties) secret=$(cat /etc/creds/password) hostname=$(hostname)"
      touch /scratch/ready
      sleep 300
    env:
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: POD_NAMESPACE, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
    - {{name: POD_IP, valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}}}
    - {{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: settings, key: greeting}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
    - {{name: COMBO, value: "$(POD_NAME)@$(POD_IP)"}}
    readinessProbe:
      exec: {{command: ["cat", "/scratch/ready"]}}
      periodSeconds: 1
    volumeMounts:
    - {{name: settings, mountPath: /etc/settings}}
    - {{name: creds, mountPath: /etc/creds}}
    - {{name: scratch, mountPath: /scratch}}
  volumes:
  - {{name: settings, configMap: {{name: settings}}}}
  - {{name: creds, secret: {{secretName: creds}}}}
  - {{name: scratch, emptyDir: {{}}}}
"""


def test_env_volumes_and_probes(namespace):
    ns = namespace
    kube.apply(ENV_POD.format(image=IMAGE), ns)
    pod = kube.wait_pod_ready(ns, "envcheck", timeout=60)   # exec readiness probe in the pod
    ip = pod["status"]["podIP"]
    log = kube.wait_for("envcheck output", lambda: (lambda s: s if "file=" in s else None)(
        kube.container_log(ns, "envcheck", "main")), 30)
    assert (f"name=envcheck ns={ns} ip={ip} node=runnel-e2e-node greeting=hello password=s3cret "
            f"combo=envcheck@{ip} literal=$(POD_NAME) undefined=$(NOPE)") in log, log
    assert "file=a=1 secret=s3cret hostname=envcheck" in log, log
    # kubectl logs goes through the API server to the kubelet's /containerLogs
    assert "file=a=1 secret=s3cret" in kube.kubectl("-n", ns, "logs", "envcheck")
    assert kube.kubectl("-n", ns, "logs", "envcheck", "--tail=1").startswith("file=")
    # per-pod DNS name from hostname + subdomain
    assert socket.gethostbyname(f"envcheck.envs.{ns}.svc.cluster.local") == ip
    # ConfigMap volumes follow updates
    kube.kubectl("-n", ns, "patch", "configmap", "settings", "-p", '{"data":{"app.properties":"a=2\\n"}}')
    vol = kube.STATE_DIR / "pods" / f"{ns}_envcheck_{pod['metadata']['uid'][:8]}" / "volumes" / "settings"
    kube.wait_for("ConfigMap volume update", lambda: (vol / "app.properties").read_text() == "a=2\n", 20)
    kube.kubectl("-n", ns, "delete", "pod", "envcheck", "--grace-period=1", "--timeout=30s", timeout=60)
    assert kube.get("pod", "envcheck", ns) is None


def test_pod_to_pod_and_host(namespace):
    """A pod reaches another pod by IP and the host reaches pods (probe above)."""
    ns = namespace
    kube.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: server}}
spec:
  containers:
  - name: main
    image: {IMAGE}
    command: ["{PY}", "-m", "http.server", "8080"]
    readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
""", ns)
    server = kube.wait_pod_ready(ns, "server", timeout=60)
    kube.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {IMAGE}
    command: ["{PY}", "-c", "import urllib.request,sys; print(urllib.request.urlopen('http://{server['status']['podIP']}:8080/', timeout=5).status)"]
""", ns)
    done = kube.wait_for("client pod to finish", lambda: (lambda p: p if p and p["status"].get("phase") in (
        "Succeeded", "Failed") else None)(kube.get("pod", "client", ns)), 60)
    assert done["status"]["phase"] == "Succeeded", kube.container_log(ns, "client", "main")
    assert "200" in kube.container_log(ns, "client", "main")


def test_foreign_image_is_reported(namespace):
    ns = namespace
    kube.apply("""
apiVersion: v1
kind: Pod
metadata: {name: nginx}
spec:
  containers:
  - {name: web, image: "nginx:1.27"}
""", ns)
    pod = kube.wait_for("nginx pod to be reported failed", lambda: (lambda p: p if p and p["status"].get(
        "phase") == "Failed" else None)(kube.get("pod", "nginx", ns)), 30)
    assert pod["status"]["reason"] == "UnsupportedImage"
    events = kube.kubectl("-n", ns, "get", "events", "--field-selector", "involvedObject.name=nginx")
    assert "Scheduled" in events and "UnsupportedImage" in events, events
    assert "nginx:1.27" in pod["status"]["message"]
    kube.kubectl("-n", ns, "delete", "pod", "nginx", "--timeout=30s", timeout=60)


IN_CLUSTER = r'''
import json, os, ssl, urllib.request
d = "/var/run/secrets/kubernetes.io/serviceaccount"
ns = open(d + "/namespace").read()
url = "https://%s:%s/api/v1/namespaces/%s/pods" % (
    os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"], ns)
req = urllib.request.Request(url, headers={"Authorization": "Bearer " + open(d + "/token").read()})
pods = json.load(urllib.request.urlopen(req, context=ssl.create_default_context(cafile=d + "/ca.crt"), timeout=10))
print("in-cluster pods:", sorted(p["metadata"]["name"] for p in pods["items"]))
req = urllib.request.Request(url.replace(os.environ["KUBERNETES_SERVICE_HOST"], "kubernetes.default.svc"),
                             headers={"Authorization": "Bearer " + open(d + "/token").read()})
urllib.request.urlopen(req, context=ssl.create_default_context(cafile=d + "/ca.crt"), timeout=10)
print("kubernetes.default.svc ok")
'''


def test_in_cluster_api_access(namespace):
    """A pod reaches the API server with its service-account token, as an
    operator running in-cluster would (projected token volume, kube-root-ca.crt,
    KUBERNETES_SERVICE_HOST, kubernetes.default.svc)."""
    ns = namespace
    kube.kubectl("-n", ns, "create", "rolebinding", "view", "--clusterrole=view", f"--serviceaccount={ns}:default")
    kube.wait_for("kube-root-ca.crt", lambda: kube.get("configmap", "kube-root-ca.crt", ns), 30)
    kube.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: incluster}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {IMAGE}
    command: ["{PY}", "-c", {json.dumps(IN_CLUSTER)}]
""", ns)
    done = kube.wait_for("incluster pod to finish", lambda: (lambda p: p if p and p["status"].get("phase") in (
        "Succeeded", "Failed") else None)(kube.get("pod", "incluster", ns)), 60)
    log = kube.container_log(ns, "incluster", "main")
    assert done["status"]["phase"] == "Succeeded", log
    assert "in-cluster pods: ['incluster']" in log and "kubernetes.default.svc ok" in log, log


def test_host_process_resolves_cluster_names(namespace, host_process):
    """What the operator does when run outside the cluster: a host process
    inside e2e/run's namespace resolves the per-pod names."""
    ns = namespace
    kube.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: named}}
spec:
  hostname: named
  subdomain: here
  containers: [{{name: main, image: {IMAGE}, command: [sleep, "600"]}}]
""", ns)
    ip = kube.wait_pod_ready(ns, "named", 60)["status"]["podIP"]
    p = host_process("getent", ["getent", "hosts", f"named.here.{ns}.svc.cluster.local"])
    kube.wait_for("getent to exit", lambda: not p.running(), 10)
    assert p.proc.returncode == 0 and ip in p.log(), p.log()


def test_restart_policy_and_backoff(namespace):
    ns = namespace
    kube.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: crasher}}
spec:
  containers:
  - name: main
    image: {IMAGE}
    command: ["/bin/sh", "-c", "echo run; exit 3"]
""", ns)

    def restarted_twice():
        p = kube.get("pod", "crasher", ns)
        cs = (p["status"].get("containerStatuses") or [{}])[0] if p else {}
        return cs if cs.get("restartCount", 0) >= 2 else None
    cs = kube.wait_for("two restarts", restarted_twice, 30)
    assert cs["lastState"]["terminated"]["exitCode"] == 3, cs
    assert kube.kubectl("-n", ns, "logs", "crasher", "--previous") == "run\n"
    events = kube.kubectl("-n", ns, "get", "events", "--field-selector", "involvedObject.name=crasher")
    assert "BackOff" in events, events
