#!/usr/bin/env bash
# The operator scenario on real nodes: `helm install` of charts/runnel (two
# operator replicas, leader election) running the bundled image built here,
# then e2e/tests/test_operator.py in deployment mode: brokers are pods of the
# operator's StatefulSet on upstream kubelets, clients reach them by their
# Service names through CoreDNS and kube-proxy.
#
#   e2e/node/run --exec e2e/node/helm-scenario.sh [pytest args...]
#
# The test process runs on the host under e2e/node/with-cluster-dns.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=e2e/node/env.sh
source "$REPO/e2e/node/env.sh"
[[ ${E2E_NODE_DNS_NS:-} == 1 ]] || exec "$REPO/e2e/node/with-cluster-dns" "$0" "$@"
cd "$REPO"
H="$(scripts/install-helm.sh | tail -1)"
TAG="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["image"].rsplit(":",1)[1])' "$E2E_STATE_DIR/images/images.json")"
"$H" upgrade --install runnel charts/runnel -n runnel-system --create-namespace \
  --set replicaCount=2 --set leaderElection.enabled=true \
  --set image.tag="$TAG" --set image.pullPolicy=Never --wait --timeout 5m
E2E_OPERATOR=deployment HELM="$H" exec "${PYTHON:-python3}" -m pytest -p no:cacheprovider \
  e2e/tests/test_operator.py "$@"
