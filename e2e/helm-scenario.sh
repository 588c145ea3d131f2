#!/usr/bin/env bash
# The operator scenario against the chart's own Deployment: `helm install` with two
# replicas and leader election, then e2e/tests/test_operator.py in deployment mode
# (the e2e kubelet runs runnel-operator from RUNNEL_BIN_DIR with in-cluster config,
# the chart's ServiceAccount, RBAC, probes and flags).
#
#   e2e/run --exec e2e/helm-scenario.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
H="$(scripts/install-helm.sh | tail -1)"
"$H" upgrade --install runnel charts/runnel -n runnel-system --create-namespace \
  --set replicaCount=2 --set leaderElection.enabled=true --wait --timeout 5m
E2E_OPERATOR=deployment HELM="$H" exec "${PYTHON:-python3}" -m pytest -p no:cacheprovider \
  e2e/tests/test_operator.py "$@"
