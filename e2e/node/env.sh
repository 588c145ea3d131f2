# shellcheck shell=bash
# Settings for the real-node e2e (e2e/node). Source it; override with env vars.
E2E_NODE_BRIDGE="${E2E_NODE_BRIDGE:-rnode0}"
E2E_NODE_SUBNET="${E2E_NODE_SUBNET:-10.202.0}"   # .1 the host (API server), .11.. the nodes
E2E_NODE_NETNS="${E2E_NODE_NETNS:-rnode}"        # netns rnode1.., host veths rnodeh1..
E2E_POD_PREFIX="${E2E_POD_PREFIX:-10.244}"       # node i's pods: $E2E_POD_PREFIX.i.0/24
E2E_SERVICE_CIDR="${E2E_SERVICE_CIDR:-10.96.0.0/16}"
E2E_DNS_IP="${E2E_DNS_IP:-10.96.0.10}"
E2E_PAUSE_IMAGE="${E2E_PAUSE_IMAGE:-registry.k8s.io/pause:3.10}"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
# The bundled image's layers as a second image of this version (e2e/image/build.py
# --next-tag), standing for a newer release: the image-change roll rolls to it and back.
export E2E_NEXT_VERSION="${E2E_NEXT_VERSION:-0.1.1-e2e}"
