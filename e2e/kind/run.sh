#!/usr/bin/env bash
# The operator e2e scenario on kind, for anyone with Docker (it cannot run on Runnel's
# CI machines, which have no container engine; there e2e/run does the same with a
# real kube-apiserver and our e2e kubelet).
#
#   e2e/kind/run.sh [--replicas N] [--keep] [--name CLUSTER]
#
# Needs: docker, kind (>= 0.27, Kubernetes >= 1.30 for CEL and policy/v1), kubectl, helm.
# Steps: create a kind cluster; build the bundled image (Dockerfile) and the test-runner
# image; load both into kind; `helm install` the chart with leader election; run the
# scenario (e2e/tests/test_operator.py, E2E_OPERATOR=deployment) as a Job inside the
# cluster; print its log; delete the cluster unless --keep. Exit code: the Job's.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
NAME=runnel-e2e REPLICAS=1 KEEP=0
while (($#)); do
  case $1 in
    --replicas) REPLICAS=$2; shift 2;;
    --keep) KEEP=1; shift;;
    --name) NAME=$2; shift 2;;
    *) echo "usage: $0 [--replicas N] [--keep] [--name CLUSTER]" >&2; exit 2;;
  esac
done
say() { echo "kind-e2e: $*" >&2; }
for t in docker kind kubectl helm; do
  command -v "$t" >/dev/null || { say "missing tool: $t"; exit 2; }
done
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -1)"
IMAGE=ghcr.io/runnel-dev/runnel
RUNNER=runnel-e2e-runner:dev
CTX="kind-$NAME"

cleanup() {
  if ((KEEP == 0)); then
    say "deleting kind cluster $NAME"
    kind delete cluster --name "$NAME" >/dev/null 2>&1 || true
  else
    say "kept kind cluster $NAME (kubectl --context $CTX)"
  fi
}
trap cleanup EXIT

if ! kind get clusters 2>/dev/null | grep -qx "$NAME"; then
  say "creating kind cluster $NAME"
  kind create cluster --name "$NAME" --wait 120s
fi

say "building $IMAGE:$VERSION (Dockerfile) and $RUNNER"
docker build -t "$IMAGE:$VERSION" -f "$REPO/Dockerfile" "$REPO"
docker build -t "$RUNNER" -f "$REPO/e2e/kind/Dockerfile.runner" "$REPO"
kind load docker-image --name "$NAME" "$IMAGE:$VERSION" "$RUNNER"

say "helm install (leader election on, 2 operator replicas)"
helm upgrade --install runnel "$REPO/charts/runnel" --kube-context "$CTX" \
  --namespace runnel-system --create-namespace \
  --set image.tag="$VERSION" --set image.pullPolicy=IfNotPresent \
  --set replicaCount=2 --set leaderElection.enabled=true --wait --timeout 5m

say "running the scenario as a Job (replicas=$REPLICAS)"
kubectl --context "$CTX" delete job runnel-e2e -n runnel-system --ignore-not-found >/dev/null
kubectl --context "$CTX" apply -f - <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: runnel-e2e-runner, namespace: runnel-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: runnel-e2e-runner}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: runnel-e2e-runner, namespace: runnel-system}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: runnel-e2e, namespace: runnel-system}
spec:
  backoffLimit: 0
  template:
    spec:
      serviceAccountName: runnel-e2e-runner
      restartPolicy: Never
      containers:
        - name: runner
          image: $RUNNER
          imagePullPolicy: IfNotPresent
          env: [{name: E2E_REPLICAS, value: "$REPLICAS"}]
YAML
kubectl --context "$CTX" wait -n runnel-system --for=condition=Ready pod -l job-name=runnel-e2e --timeout=300s >/dev/null || true
kubectl --context "$CTX" logs -n runnel-system -f job/runnel-e2e || true
for _ in $(seq 120); do
  s="$(kubectl --context "$CTX" get job runnel-e2e -n runnel-system -o jsonpath='{.status.succeeded}{"/"}{.status.failed}')"
  case $s in 1/*) say "scenario passed"; exit 0;; */1) say "scenario failed"; exit 1;; esac
  sleep 5
done
say "the Job did not finish"; exit 1
