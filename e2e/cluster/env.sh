# shellcheck shell=bash
# Shared settings for up.sh / down.sh / run. Source it; override with env vars.
E2E_ETCD_PORT="${E2E_ETCD_PORT:-22379}"
E2E_ETCD_PEER_PORT="${E2E_ETCD_PEER_PORT:-22380}"
E2E_APISERVER_PORT="${E2E_APISERVER_PORT:-26443}"
E2E_SERVICE_CIDR="${E2E_SERVICE_CIDR:-10.96.0.0/16}"
E2E_ADMIN_TOKEN="${E2E_ADMIN_TOKEN:-runnel-e2e-admin-token}"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
E2E_K8S_BIN="${E2E_K8S_BIN:-${RUNNEL_K8S_CACHE:-$HOME/.cache/runnel/k8s}/$K8S_VERSION/bin}"
E2E_SUBNET="${E2E_SUBNET:-10.201.0}"   # the e2e kubelet's pod /24; .1 is the host (bridge) address
