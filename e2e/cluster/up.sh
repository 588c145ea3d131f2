#!/usr/bin/env bash
# Start a real Kubernetes control plane for the e2e tests:
#   etcd, kube-apiserver, kube-controller-manager
# State (data, certs, logs, pid files, kubeconfig) lives in STATE_DIR.
# Idempotent: components that are already running and healthy are kept;
# stale pid files and processes left by a killed run are cleaned up first.
# Writes STATE_DIR/kubeconfig (admin, token auth).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=./env.sh
. "$HERE/env.sh"
STATE="${1:?usage: up.sh STATE_DIR}"
mkdir -p "$STATE"/{run,logs,pki,etcd}
STATE="$(cd "$STATE" && pwd)"
BIN="$E2E_K8S_BIN"
for t in etcd kube-apiserver kube-controller-manager kubectl; do
  [[ -x "$BIN/$t" ]] || { echo "up.sh: $BIN/$t missing; run e2e/cluster/build-k8s.sh first" >&2; exit 1; }
done
log() { echo "up.sh: $*" >&2; }

alive() { local f="$STATE/run/$1.pid"; [[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && \
          grep -q "$1" "/proc/$(cat "$f")/cmdline" 2>/dev/null; }
port_busy() { ss -Hltn "sport = :$1" | grep -q .; }
need_port() { # name port
  if port_busy "$2"; then
    log "port $2 (for $1) is in use by another process:"; ss -Hltnp "sport = :$2" >&2
    log "stop it or set E2E_*_PORT (see e2e/cluster/env.sh)"; exit 1
  fi
}
start() { # name args...
  local name=$1; shift
  setsid "$BIN/$name" "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1 &
  echo $! > "$STATE/run/$name.pid"
  log "started $name (pid $!), log $STATE/logs/$name.log"
}
wait_for() { # what seconds cmd...
  local what=$1 secs=$2; shift 2
  for ((i = 0; i < secs * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "timed out after ${secs}s waiting for $what"; return 1
}

# ---- certificates and credentials (created once per STATE_DIR) -------------
P="$STATE/pki"
if [[ ! -f $P/apiserver.crt ]]; then
  log "generating CA, serving certificate and service-account keys"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=runnel-e2e-ca" \
    -keyout "$P/ca.key" -out "$P/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$P/apiserver.key" -out "$P/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:%s.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' "$E2E_SUBNET" > "$P/ext.cnf"
  openssl x509 -req -in "$P/apiserver.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial \
    -days 3650 -extfile "$P/ext.cnf" -out "$P/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$P/sa.key" 2048 2>/dev/null
  openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
fi
echo "$E2E_ADMIN_TOKEN,admin,admin,system:masters" > "$P/tokens.csv"

KCFG="$STATE/kubeconfig"
cat > "$KCFG" <<KC
apiVersion: v1
kind: Config
clusters:
- name: runnel-e2e
  cluster:
    server: https://127.0.0.1:$E2E_APISERVER_PORT
    certificate-authority: $P/ca.crt
users:
- name: admin
  user:
    token: $E2E_ADMIN_TOKEN
contexts:
- name: runnel-e2e
  context: {cluster: runnel-e2e, user: admin, namespace: default}
current-context: runnel-e2e
KC

# ---- etcd -----------------------------------------------------------------
etcd_ok() { curl -fsS "http://127.0.0.1:$E2E_ETCD_PORT/health" | grep -q '"health":"true"'; }
if alive etcd && etcd_ok; then log "etcd already running"; else
  "$HERE/down.sh" "$STATE" --only etcd >/dev/null 2>&1 || true
  need_port etcd "$E2E_ETCD_PORT"; need_port etcd-peer "$E2E_ETCD_PEER_PORT"
  start etcd --name runnel-e2e --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$E2E_ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$E2E_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$E2E_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$E2E_ETCD_PEER_PORT" \
    --initial-cluster "runnel-e2e=http://127.0.0.1:$E2E_ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes=2147483648 --log-level=warn
  wait_for etcd 30 etcd_ok
fi

# ---- kube-apiserver ---------------------------------------------------------
api_ok() { curl -fsS --cacert "$P/ca.crt" -H "Authorization: Bearer $E2E_ADMIN_TOKEN" \
             "https://127.0.0.1:$E2E_APISERVER_PORT/readyz" | grep -q ok; }
if alive kube-apiserver && api_ok; then log "kube-apiserver already running"; else
  "$HERE/down.sh" "$STATE" --only kube-apiserver >/dev/null 2>&1 || true
  need_port kube-apiserver "$E2E_APISERVER_PORT"
  start kube-apiserver \
    --etcd-servers="http://127.0.0.1:$E2E_ETCD_PORT" \
    --bind-address="${E2E_APISERVER_BIND:-127.0.0.1}" --secure-port="$E2E_APISERVER_PORT" \
    --advertise-address="$E2E_SUBNET.1" --endpoint-reconciler-type="${E2E_ENDPOINT_RECONCILER:-none}" \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --client-ca-file="$P/ca.crt" \
    --token-auth-file="$P/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-key-file="$P/sa.pub" \
    --service-account-signing-key-file="$P/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$E2E_SERVICE_CIDR" \
    --allow-privileged=true \
    --kubelet-preferred-address-types=InternalIP \
    --profiling=false --v=1
  wait_for kube-apiserver 90 api_ok
fi

# ---- kube-controller-manager -----------------------------------------------
# The real controllers the e2e relies on. No scheduler, no kubelet, no
# kube-proxy: the e2e kubelet (e2e/kubelet) binds pods, runs them, provisions
# PVs and resolves Service/pod names.
CONTROLLERS=clusterrole-aggregation,statefulset,deployment,replicaset,job,garbagecollector,namespace,serviceaccount,serviceaccount-token,disruption,root-ca-cert-publisher,endpoint,endpointslice,persistentvolume-binder,pvc-protection,pv-protection
# real nodes (e2e/node) add the node lifecycle controller (the not-ready taint,
# eviction of pods from dead nodes), pod GC and TTL: E2E_EXTRA_CONTROLLERS.
[[ -n ${E2E_EXTRA_CONTROLLERS:-} ]] && CONTROLLERS+=",$E2E_EXTRA_CONTROLLERS"
if alive kube-controller-manager; then log "kube-controller-manager already running"; else
  "$HERE/down.sh" "$STATE" --only kube-controller-manager >/dev/null 2>&1 || true
  start kube-controller-manager \
    --kubeconfig="$KCFG" --leader-elect=false \
    --controllers="$CONTROLLERS" \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --use-service-account-credentials=false \
    --secure-port=0 \
    --pvclaimbinder-sync-period=2s \
    --concurrent-statefulset-syncs=5 --v=1
fi
# pods are refused until the default ServiceAccount exists
wait_for "default ServiceAccount" 60 "$BIN/kubectl" --kubeconfig "$KCFG" -n default get serviceaccount default
log "control plane ready; KUBECONFIG=$KCFG ($("$BIN/kubectl" --kubeconfig "$KCFG" version -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | tail -1))"
echo "$KCFG"
