#!/usr/bin/env bash
# Real Kubernetes nodes on this host: upstream kubelet + kube-proxy, containerd
# with runc and the CNI bridge plugins, one network namespace per node.
#
#   e2e/node/up.sh STATE_DIR NODES IMAGE_DIR
#
# Needs a running control plane from e2e/cluster/up.sh started with
#   E2E_SUBNET=$E2E_NODE_SUBNET E2E_APISERVER_BIND=0.0.0.0 E2E_ENDPOINT_RECONCILER=lease
#   E2E_EXTRA_CONTROLLERS=nodelifecycle,podgc,ttl
# (e2e/node/run does that), the node binaries from e2e/node/build.sh and the
# OCI archives from e2e/image/build.py in IMAGE_DIR (every *.oci.tar there is
# imported into every node's containerd; nothing is pulled).
#
# Layout (node i = 1..NODES):
#   host bridge $E2E_NODE_BRIDGE with $E2E_NODE_SUBNET.1/24 (the API server's
#   address for the nodes and the Service `kubernetes` endpoint)
#   netns ${E2E_NODE_NETNS}i, eth0 = $E2E_NODE_SUBNET.(10+i), default route via the host
#   pods: CNI bridge in the node's netns, $E2E_POD_PREFIX.i.0/24; every node and
#   the host route the other nodes' pod ranges via their node address
#   containerd, kubelet and kube-proxy (iptables mode) run inside the node's
#   netns with their own state under STATE_DIR/nodes/nodeI and their own
#   cgroup root /runnel-nodeI (each kubelet manages only its own pods)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/node/env.sh
source "$HERE/env.sh"
STATE=${1:?usage: up.sh STATE_DIR NODES IMAGE_DIR}
NODES=${2:?usage: up.sh STATE_DIR NODES IMAGE_DIR}
IMAGES=${3:?usage: up.sh STATE_DIR NODES IMAGE_DIR}
KCFG="$STATE/kubeconfig"
# the nodes reach the API server on the bridge address (its certificate names it)
NODE_KCFG="$STATE/nodes/kubeconfig"
NODE_BIN="$("$HERE/build.sh")"
K8S_BIN="${E2E_K8S_BIN:?E2E_K8S_BIN (the control plane bin dir) must be set}"
log() { echo "node/up.sh: $*" >&2; }
for t in containerd runc ctr iptables /usr/lib/cni/bridge; do
  command -v "$t" >/dev/null || { log "missing $t (apt-get install containerd runc containernetworking-plugins iptables)"; exit 2; }
done

# ---- host side ---------------------------------------------------------------
mkdir -p "$STATE/nodes"
sed -E "s#(server: https://)[^:/]+:#\\1$E2E_NODE_SUBNET.1:#" "$KCFG" > "$NODE_KCFG"
grep -q "server: https://$E2E_NODE_SUBNET.1:" "$NODE_KCFG" || { log "cannot rewrite the server of $KCFG"; exit 1; }
sysctl -qw net.ipv4.ip_forward=1
if ! ip link show "$E2E_NODE_BRIDGE" >/dev/null 2>&1; then
  ip link add "$E2E_NODE_BRIDGE" type bridge
  ip addr add "$E2E_NODE_SUBNET.1/24" dev "$E2E_NODE_BRIDGE"
fi
ip link set "$E2E_NODE_BRIDGE" up

# the cgroup v1 hierarchies (and the v2 `unified` mount) each node's kubelet roots its pods in
cgroup_root() { # name
  local d
  for d in /sys/fs/cgroup/*/; do
    [[ -d $d ]] || continue
    mkdir -p "$d$1"
    if [[ -f ${d}cpuset.cpus ]]; then
      [[ -s $d$1/cpuset.cpus ]] || cat "${d}cpuset.cpus" > "$d$1/cpuset.cpus"
      [[ -s $d$1/cpuset.mems ]] || cat "${d}cpuset.mems" > "$d$1/cpuset.mems"
    fi
  done
}

start() { # node name logfile cmd...
  local node=$1 name=$2 logf=$3; shift 3
  local pidf="$STATE/nodes/$node/$name.pid"
  if [[ -f $pidf ]] && kill -0 "$(cat "$pidf")" 2>/dev/null; then return; fi
  # nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroup mounts the kubelet needs
  nsenter --net="/var/run/netns/$E2E_NODE_NETNS${node#node}" setsid "$@" >>"$logf" 2>&1 < /dev/null &
  echo $! > "$pidf"
}

wait_for() { # what seconds cmd...
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || { log "timed out waiting for $what"; return 1; }
    sleep 0.5
  done
}

for i in $(seq 1 "$NODES"); do
  node="node$i" ns="$E2E_NODE_NETNS$i" ip4="$E2E_NODE_SUBNET.$((10 + i))" hveth="${E2E_NODE_NETNS}h$i"
  D="$STATE/nodes/$node"
  mkdir -p "$D"/{containerd,cni,cni-ipam,run,kubelet,pod-logs,logs}
  # network namespace, veth into the host bridge
  if ! ip netns list | grep -qw "$ns"; then
    ip netns add "$ns"
    ip link add "$hveth" type veth peer name eth0 netns "$ns"
    ip link set "$hveth" master "$E2E_NODE_BRIDGE" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$ip4/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$E2E_NODE_SUBNET.1"
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  fi
  for j in $(seq 1 "$NODES"); do
    ((j == i)) && continue
    ip -n "$ns" route replace "$E2E_POD_PREFIX.$j.0/24" via "$E2E_NODE_SUBNET.$((10 + j))"
  done
  ip route replace "$E2E_POD_PREFIX.$i.0/24" via "$ip4"

  # containerd: the distribution's defaults, with this node's paths, the local
  # pause image, CNI from Debian's plugins, runc state apart from other nodes
  # and oom_score_adj restricted (this host may not lower it: runc fails with
  # "can't get final child's PID from pipe" otherwise).
  if [[ ! -f $D/containerd/config.toml ]]; then
    containerd config default | python3 "$HERE/containerd_config.py" "$D" "$E2E_PAUSE_IMAGE" > "$D/containerd/config.toml"
  fi
  cat > "$D/cni/10-runnel.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "runnel-e2e", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$E2E_POD_PREFIX.$i.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$D/cni-ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}]}
EOF
  start "$node" containerd "$D/logs/containerd.log" containerd --config "$D/containerd/config.toml"
  wait_for "$node containerd" 30 ctr -a "$D/run/containerd.sock" version
  for a in "$IMAGES"/*.oci.tar; do
    ctr -a "$D/run/containerd.sock" -n k8s.io images import --no-unpack=false "$a" >/dev/null
  done

  cgroup_root "runnel-$node"
  cat > "$D/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The e2e API server reaches kubelets without client certificates: anonymous
# access with AlwaysAllow, as a throwaway test cluster (not what a real
# cluster does; kubectl logs/exec work through it).
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: /runnel-$node
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$D/run/containerd.sock
clusterDNS: [$E2E_DNS_IP]
clusterDomain: cluster.local
resolvConf: $D/resolv.conf
podLogsDir: $D/pod-logs
readOnlyPort: 0
nodeStatusUpdateFrequency: 4s
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
  echo "nameserver $E2E_NODE_SUBNET.1" > "$D/resolv.conf"
  start "$node" kubelet "$D/logs/kubelet.log" "$NODE_BIN/kubelet" --config "$D/kubelet.yaml" \
    --kubeconfig "$NODE_KCFG" --root-dir "$D/kubelet" --hostname-override "$node" --node-ip "$ip4" \
    --node-labels "topology.kubernetes.io/zone=e2e-zone-$i" --v=1

  cat > "$D/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $E2E_POD_PREFIX.0.0/16
hostnameOverride: $node
clientConnection: {kubeconfig: $NODE_KCFG}
# conntrack sysctls are host-wide: leave them alone
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 0.0.0.0:10256
EOF
  start "$node" kube-proxy "$D/logs/kube-proxy.log" "$NODE_BIN/kube-proxy" --config "$D/kube-proxy.yaml" --v=1
done

# one scheduler for the cluster, on the host
mkdir -p "$STATE/nodes"
if ! { [[ -f $STATE/nodes/kube-scheduler.pid ]] && kill -0 "$(cat "$STATE/nodes/kube-scheduler.pid")" 2>/dev/null; }; then
  setsid "$NODE_BIN/kube-scheduler" --kubeconfig "$KCFG" --leader-elect=false --secure-port=0 --v=1 \
    >>"$STATE/logs/kube-scheduler.log" 2>&1 < /dev/null &
  echo $! > "$STATE/nodes/kube-scheduler.pid"
fi
# Services from the host (tests, kcat) go through node 1's kube-proxy
ip route replace "$E2E_SERVICE_CIDR" via "$E2E_NODE_SUBNET.11"

# Ready, and the node lifecycle controller has lifted its not-ready taints
# (it adds them when the node registers and removes them a little after Ready)
ready() {
  local n
  n=$("$K8S_BIN/kubectl" --kubeconfig "$KCFG" get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{.spec.taints}{"\n"}{end}' | grep -c '^True $' || true)
  ((n >= NODES))
}
wait_for "$NODES Ready nodes without taints" 120 ready
log "$NODES nodes Ready"

KC=("$K8S_BIN/kubectl" --kubeconfig "$KCFG")
# Storage: Rancher's local-path-provisioner (dynamic, as on kind), the default
# StorageClass `runnel-e2e` (WaitForFirstConsumer): the real scheduler picks
# the node, the provisioner's helper pod makes the directory on it, the PV
# controller binds the claim and the kubelet mounts it.
paths="["
for i in $(seq 1 "$NODES"); do
  mkdir -p "$STATE/nodes/node$i/local-path"
  ((i > 1)) && paths+=","
  paths+="{\"node\": \"node$i\", \"paths\": [\"$STATE/nodes/node$i/local-path\"]}"
done
paths+="]"
sed "s#NODE_PATH_MAP#$paths#" "$HERE/manifests/local-path.yaml" | "${KC[@]}" apply -f - >/dev/null
wait_for "local-path-provisioner" 120 "${KC[@]}" -n local-path-storage wait --for=condition=Available deployment/local-path-provisioner --timeout=2s
log "local-path-provisioner ready"

# Cluster DNS
if [[ -f $IMAGES/coredns.oci.tar ]]; then
  "${KC[@]}" apply -f "$HERE/manifests/coredns.yaml" >/dev/null
  wait_for "CoreDNS" 120 "${KC[@]}" -n kube-system wait --for=condition=Available deployment/coredns --timeout=2s
  log "CoreDNS ready at $E2E_DNS_IP"
else
  log "no $IMAGES/coredns.oci.tar: no cluster DNS"
fi
