"""Hand-written manifests following /work/operator-contract.md (what the
operator will generate), so the platform can be tested without the operator."""

IMAGE = "ghcr.io/runnel-dev/runnel:0.1.0"


def labels(cluster):
    return {"app.kubernetes.io/name": "runnel", "app.kubernetes.io/instance": cluster,
            "app.kubernetes.io/component": "broker", "kafka.runnel.dev/cluster": cluster}


def _yaml_labels(cluster, indent):
    pad = " " * indent
    return "\n".join(f"{pad}{k}: {v}" for k, v in labels(cluster).items())


def broker_properties(cluster, ns, ordinal, replicas):
    host = lambda n: f"{cluster}-broker-{n}.{cluster}-brokers.{ns}.svc.cluster.local"  # noqa: E731
    voters = ",".join(f"{n}@{host(n)}:9093" for n in range(replicas))
    return f"""process.roles=broker,controller
node.id={ordinal}
controller.quorum.voters={voters}
listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093
advertised.listeners=PLAINTEXT://{host(ordinal)}:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=/var/lib/runnel/data/kafka-log
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
"""


def kafka_cluster(cluster, ns, replicas=1):
    props = "".join(
        f"  {cluster}-broker-{n}.properties: |\n" +
        "".join(f"    {line}\n" for line in broker_properties(cluster, ns, n, replicas).splitlines())
        for n in range(replicas))
    return f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: {cluster}-broker-config
  labels:
{_yaml_labels(cluster, 4)}
data:
{props}---
apiVersion: v1
kind: Service
metadata:
  name: {cluster}-brokers
  labels:
{_yaml_labels(cluster, 4)}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
{_yaml_labels(cluster, 4)}
  ports:
  - {{name: tcp-kafka, port: 9092}}
  - {{name: tcp-controller, port: 9093}}
---
apiVersion: v1
kind: Service
metadata:
  name: {cluster}-kafka-bootstrap
  labels:
{_yaml_labels(cluster, 4)}
spec:
  selector:
{_yaml_labels(cluster, 4)}
  ports:
  - {{name: tcp-kafka, port: 9092}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {cluster}-broker
  labels:
{_yaml_labels(cluster, 4)}
spec:
  serviceName: {cluster}-brokers
  replicas: {replicas}
  podManagementPolicy: Parallel
  updateStrategy: {{type: OnDelete}}
  selector:
    matchLabels:
{_yaml_labels(cluster, 6)}
  template:
    metadata:
      labels:
{_yaml_labels(cluster, 8)}
    spec:
      terminationGracePeriodSeconds: 20
      containers:
      - name: broker
        image: {IMAGE}
        command: ["/usr/local/bin/runnel-broker", "/etc/runnel/$(POD_NAME).properties"]
        env:
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
        - name: POD_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
        - name: POD_NAMESPACE
          valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}
        ports:
        - {{name: tcp-kafka, containerPort: 9092}}
        - {{name: tcp-controller, containerPort: 9093}}
        readinessProbe:
          tcpSocket: {{port: 9092}}
          periodSeconds: 2
        volumeMounts:
        - {{name: data, mountPath: /var/lib/runnel/data}}
        - {{name: config, mountPath: /etc/runnel}}
      volumes:
      - name: config
        configMap: {{name: {cluster}-broker-config}}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
"""
