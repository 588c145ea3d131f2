#!/usr/bin/env bash
# Stops what e2e/node/up.sh started: every process of each node (its netns
# and its cgroup tree, which holds the pods), the kubelets' mounts, the cgroup
# roots, the namespaces, veths, routes and the bridge. The control plane is
# e2e/cluster/down.sh's.
#
#   e2e/node/down.sh STATE_DIR
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=e2e/node/env.sh
source "$HERE/env.sh"
STATE=${1:?usage: down.sh STATE_DIR}
[[ -f $STATE/nodes/kube-scheduler.pid ]] && kill "$(cat "$STATE/nodes/kube-scheduler.pid")" 2>/dev/null
for D in "$STATE"/nodes/node*; do
  [[ -d $D ]] || continue
  node=$(basename "$D") i=${node#node}
  ns="$E2E_NODE_NETNS$i"
  # the node's daemons first, so nothing restarts the pods
  for p in kubelet kube-proxy containerd; do
    [[ -f $D/$p.pid ]] && kill -9 "$(cat "$D/$p.pid")" 2>/dev/null
  done
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  # the pods and their shims: everything in the node's cgroup tree
  for _ in 1 2 3; do
    find /sys/fs/cgroup/pids/runnel-"$node" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
    sleep 0.3
  done
  pkill -9 -f "containerd-shim.*-address $D/run/containerd.sock" 2>/dev/null
  # the kubelet's and containerd's mounts (volumes, rootfs overlays, netns binds)
  grep -o " $D/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  for d in /sys/fs/cgroup/*/runnel-"$node"; do
    [[ -d $d ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  ip netns del "$ns" 2>/dev/null
  ip link del "${E2E_NODE_NETNS}h$i" 2>/dev/null
  ip route del "$E2E_POD_PREFIX.$i.0/24" 2>/dev/null
  rm -f "$D"/*.pid
done
# pod network namespaces containerd made (cni-*) since these nodes started,
# now empty: their sandboxes were killed above without a CNI DEL
if [[ -d $STATE/nodes ]]; then
  for f in $(find /var/run/netns -maxdepth 1 -name 'cni-*' -newer "$STATE/nodes" 2>/dev/null); do
    [[ -z $(ip netns pids "$(basename "$f")" 2>/dev/null) ]] && ip netns del "$(basename "$f")" 2>/dev/null
  done
fi
ip route del "$E2E_SERVICE_CIDR" 2>/dev/null
ip link del "$E2E_NODE_BRIDGE" 2>/dev/null
exit 0
