#!/usr/bin/env bash
# The same e2e scenario on a kind cluster, for anyone with Docker.
# NOT RUN on the project's machines (no container engine there): written
# with care, checked with `bash -n` and shellcheck only. See README.md.
#
#   e2e/kind/run.sh [--replicas N] [--keep-cluster] [pytest args...]
#
# Steps: create (or reuse) a kind cluster, build the bundled image from the
# repo's Dockerfile, load it into the cluster, helm install charts/runnel
# (CRDs, RBAC, the operator Deployment), then run pytest e2e/tests with
# E2E_PLATFORM=kind (tests of the local platform itself are skipped; Kafka
# clients run as pods inside the cluster).
#
# Environment:
#   KIND_CLUSTER      cluster name (default runnel-e2e)
#   KIND_NODE_IMAGE   e.g. kindest/node:v1.34.0 (default: kind's default)
#   RUNNEL_IMAGE      image to build and load (default ghcr.io/runnel-dev/runnel:<workspace version>)
#   E2E_KCAT_IMAGE    image with kcat for in-cluster clients (default edenhill/kcat:1.7.1)
#   HELM_ARGS         extra arguments for helm upgrade --install
set -euo pipefail
E2E="$(cd "$(dirname "$0")/.." && pwd)"
REPO="$(cd "$E2E/.." && pwd)"
say() { echo "e2e/kind: $*" >&2; }

REPLICAS=1 KEEP=0 ARGS=()
while (($#)); do
  case $1 in
    --replicas) REPLICAS=$2; shift 2;;
    --replicas=*) REPLICAS=${1#*=}; shift;;
    --keep-cluster) KEEP=1; shift;;
    *) ARGS+=("$1"); shift;;
  esac
done

for t in docker kind kubectl helm python3; do
  command -v "$t" >/dev/null || { say "missing tool: $t"; exit 2; }
done
docker info >/dev/null 2>&1 || { say "docker is not running (or not reachable by this user)"; exit 2; }

CLUSTER="${KIND_CLUSTER:-runnel-e2e}"
VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$REPO/Cargo.toml")"
IMAGE="${RUNNEL_IMAGE:-ghcr.io/runnel-dev/runnel:$VERSION}"
NS=runnel-system
STATE="$(mktemp -d "${TMPDIR:-/tmp}/runnel-kind-e2e.XXXXXX")"
export KUBECONFIG="$STATE/kubeconfig"

# 1. cluster
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  say "reusing kind cluster $CLUSTER"
else
  say "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
  CREATED=1
fi
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG"
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  if [[ ${CREATED:-0} == 1 && $KEEP == 0 ]]; then
    say "deleting kind cluster $CLUSTER (keep it with --keep-cluster)"
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  rm -rf "$STATE"
}
trap cleanup EXIT

# 2. image
[[ -f $REPO/Dockerfile ]] || { say "no Dockerfile at the repo root"; exit 2; }
say "building $IMAGE"
docker build -t "$IMAGE" -f "$REPO/Dockerfile" "$REPO"
say "loading $IMAGE into $CLUSTER"
kind load docker-image "$IMAGE" --name "$CLUSTER"

# 3. operator, CRDs and RBAC from the chart
[[ -d $REPO/charts/runnel ]] || { say "no chart at charts/runnel"; exit 2; }
say "helm install runnel into $NS"
# shellcheck disable=SC2086  # HELM_ARGS is a list of words on purpose
helm upgrade --install runnel "$REPO/charts/runnel" --namespace "$NS" --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --set image.pullPolicy=IfNotPresent \
  --wait --timeout 5m ${HELM_ARGS:-}
kubectl -n "$NS" rollout status deployment --timeout=180s

# 4. the scenario
python3 -c 'import kubernetes, pytest, yaml' 2>/dev/null || python3 -m pip install -q -r "$E2E/requirements.txt"
export E2E_PLATFORM=kind E2E_REPLICAS="$REPLICAS" E2E_STATE_DIR="$STATE" E2E_OPERATOR_NAMESPACE="$NS"
export E2E_KCAT_IMAGE="${E2E_KCAT_IMAGE:-edenhill/kcat:1.7.1}"
if docker pull -q "$E2E_KCAT_IMAGE" >/dev/null; then
  kind load docker-image "$E2E_KCAT_IMAGE" --name "$CLUSTER"
else
  say "warning: could not pull $E2E_KCAT_IMAGE; the cluster will try to pull it itself"
fi
mkdir -p "$STATE/logs"
set +e
(cd "$REPO" && python3 -m pytest -p no:cacheprovider "$E2E/tests" "${ARGS[@]}")
rc=$?
set -e
if ((rc != 0)); then
  say "operator logs:"; kubectl -n "$NS" logs deployment/runnel-operator --tail=100 2>/dev/null || \
    kubectl -n "$NS" logs -l app.kubernetes.io/name=runnel --all-containers --tail=100 || true
fi
exit $rc
