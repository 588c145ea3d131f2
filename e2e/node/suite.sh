#!/usr/bin/env bash
# Everything the default test command runs on real nodes, in one platform
# (e2e/node/run --exec e2e/node/suite.sh):
#   1. e2e/node/tests: the image and the node (non-root PID 1, read-only root,
#      kube-proxy Services, headless DNS across nodes, graceful stop, PVC reuse)
#   2. the operator scenario against the Helm-installed operator Deployment
#      (two replicas, leader election) in the bundled image (helm-scenario.sh)
#   3. the operator scenario with the operator as a host process on the chart's
#      ServiceAccount (chart drift, two-operator failover, namespace scoping),
#      with a KafkaCluster of E2E_REPLICAS brokers (default 3: one per node)
#   4. KafkaConnect + KafkaConnector (e2e/tests/test_connect.py: 159 s of pytest
#      on a quiet machine before plugin downloads; 271-320 s with them at load 6-8,
#      where the two-worker roll alone took 90-160 s; 257 s at load about 5 with
#      the MirrorMaker 2 kill step, which took 53 s of it)
# Extra args go to every pytest run. Exit code: the first failure's.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
[[ ${E2E_NODE_DNS_NS:-} == 1 ]] || exec "$HERE/with-cluster-dns" "$0" "$@"
cd "$REPO"
rc=0
step() { echo "== e2e/node/suite.sh: $*" >&2; }
step "node tests"
python3 -m pytest -p no:cacheprovider e2e/node/tests "$@" || rc=$?
step "operator scenario, helm-installed operator"
"$HERE/helm-scenario.sh" "$@" || { r=$?; ((rc)) || rc=$r; }
"$(scripts/install-helm.sh 2>/dev/null | tail -1)" uninstall runnel -n runnel-system --wait >/dev/null 2>&1 || true
step "operator scenario, operator process, ${E2E_SUITE_REPLICAS:-3} brokers"
E2E_REPLICAS="${E2E_SUITE_REPLICAS:-3}" python3 -m pytest -p no:cacheprovider e2e/tests/test_operator.py "$@" \
  || { r=$?; ((rc)) || rc=$r; }
step "Kafka Connect scenario, operator process"
python3 -m pytest -p no:cacheprovider e2e/tests/test_connect.py "$@" || { r=$?; ((rc)) || rc=$r; }
exit "$rc"
