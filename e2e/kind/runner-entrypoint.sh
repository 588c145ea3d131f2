#!/bin/sh
# Builds a kubeconfig from the pod's ServiceAccount (the tests call kubectl and helm),
# then runs the operator scenario.
set -eu
SA=/var/run/secrets/kubernetes.io/serviceaccount
export KUBECONFIG=/tmp/kubeconfig
mkdir -p "$E2E_STATE_DIR/logs"
kubectl config set-cluster in-cluster --server="https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}" \
  --certificate-authority="$SA/ca.crt" --embed-certs=true >/dev/null
kubectl config set-credentials runner --token="$(cat "$SA/token")" >/dev/null
kubectl config set-context runner --cluster=in-cluster --user=runner >/dev/null
kubectl config use-context runner >/dev/null
exec python3 -m pytest -p no:cacheprovider -v e2e/tests/test_operator.py "$@"
