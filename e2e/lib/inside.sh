#!/usr/bin/env bash
# Runs inside e2e/run's private mount namespace: control plane, kubelet, pytest.
set -uo pipefail
E2E="$(cd "$(dirname "$0")/.." && pwd)"
S="$E2E_STATE_DIR"
say() { echo "e2e/run: $*" >&2; }

cp /etc/hosts "$S/hosts"
mount --bind "$S/hosts" /etc/hosts

KUBELET_PID=""
cleanup() {
  if [[ -n $KUBELET_PID ]] && kill -0 "$KUBELET_PID" 2>/dev/null; then
    kill -TERM "$KUBELET_PID"
    for _ in $(seq 300); do kill -0 "$KUBELET_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$KUBELET_PID" 2>/dev/null
  fi
  "$E2E/cluster/down.sh" "$S"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t=$SECONDS
export KUBECONFIG
KUBECONFIG="$("$E2E/cluster/up.sh" "$S")" || { say "control plane failed to start; logs in $S/logs"; tail -20 "$S"/logs/*.log >&2; exit 3; }
export PATH="$E2E_K8S_BIN:$PATH"
say "control plane up in $((SECONDS - t))s"

PYTHONPATH="$E2E/kubelet" "$PYTHON" -m runnel_kubelet --state-dir "$S" --hosts-file "$S/hosts" \
  >"$S/logs/kubelet.log" 2>&1 &
KUBELET_PID=$!
node_ready() {
  [[ $(kubectl get node runnel-e2e-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
for ((i = 0; i < 300; i++)); do
  node_ready && break
  kill -0 "$KUBELET_PID" 2>/dev/null || break
  sleep 0.2
done
if ! node_ready; then
  say "kubelet did not register a Ready node:"; tail -30 "$S/logs/kubelet.log" >&2; exit 3
fi
say "kubelet ready (log $S/logs/kubelet.log)"

if [[ ${E2E_EXEC:-} == 1 ]]; then
  cd "$E2E/.." || exit 2
  "$@"
  exit
fi

have_path=0
for a in "$@"; do [[ $a != -* && -e ${a%%::*} ]] && have_path=1; done
TESTS=()
((have_path)) || TESTS=("$E2E/kubelet/tests" "$E2E/tests")
OPTS=(-p no:cacheprovider)
# no test may hang the run: pytest-timeout, when installed
"$PYTHON" -c 'import pytest_timeout' 2>/dev/null && OPTS+=("--timeout=${E2E_TEST_TIMEOUT:-600}")
cd "$E2E/.." || exit 2
"$PYTHON" -m pytest "${OPTS[@]}" "${TESTS[@]}" "$@"
