"""Thin helpers over the `kubernetes` client that return plain JSON dicts
(camelCase, as the API server sends them)."""
import base64
import json
import logging

from kubernetes import client, config
from kubernetes.client.rest import ApiException

log = logging.getLogger("api")


def raw(resp):
    return json.loads(resp.data)


class Api:
    def __init__(self, kubeconfig, node_name, claim_root=None):
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = 32
        self.client = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.client)
        self.storage = client.StorageV1Api(self.client)
        self.discovery = client.DiscoveryV1Api(self.client)
        self.node_name = node_name

    # ---- lists --------------------------------------------------------------
    def pods(self):
        return raw(self.core.list_pod_for_all_namespaces(_preload_content=False))["items"]

    def services(self):
        return raw(self.core.list_service_for_all_namespaces(_preload_content=False))["items"]

    def endpoint_slices(self):
        return raw(self.discovery.list_endpoint_slice_for_all_namespaces(_preload_content=False))["items"]

    def pvcs(self):
        return raw(self.core.list_persistent_volume_claim_for_all_namespaces(_preload_content=False))["items"]

    def pvs(self):
        return raw(self.core.list_persistent_volume(_preload_content=False))["items"]

    # ---- reads used by pods -------------------------------------------------
    def read_data(self, kind, ns, name, binary=False):
        """ConfigMap/Secret data as {key: str} (or bytes if binary); None if absent."""
        try:
            if kind == "ConfigMap":
                o = raw(self.core.read_namespaced_config_map(name, ns, _preload_content=False))
                data = {k: v.encode() for k, v in (o.get("data") or {}).items()}
                data.update({k: base64.b64decode(v) for k, v in (o.get("binaryData") or {}).items()})
            else:
                o = raw(self.core.read_namespaced_secret(name, ns, _preload_content=False))
                data = {k: base64.b64decode(v) for k, v in (o.get("data") or {}).items()}
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        if binary:
            return data
        return {k: v.decode("utf-8", "replace") for k, v in data.items()}

    def claim_path(self, ns, claim):
        from .volumes import NotReady
        try:
            pvc = raw(self.core.read_namespaced_persistent_volume_claim(claim, ns, _preload_content=False))
        except ApiException as e:
            if e.status == 404:
                raise NotReady(f"PersistentVolumeClaim {claim!r} not found")
            raise
        vol = pvc["spec"].get("volumeName")
        if (pvc.get("status") or {}).get("phase") != "Bound" or not vol:
            raise NotReady(f"PersistentVolumeClaim {claim!r} is not bound yet")
        pv = raw(self.core.read_persistent_volume(vol, _preload_content=False))
        spec = pv["spec"]
        if "hostPath" in spec:
            return spec["hostPath"]["path"]
        if "local" in spec:
            return spec["local"]["path"]
        raise NotReady(f"PersistentVolume {vol!r} is neither hostPath nor local")

    def service_account_token(self, pod, seconds, audience):
        md, spec = pod["metadata"], pod["spec"]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": max(600, int(seconds)),
                         "audiences": [audience] if audience else None,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                            "name": md["name"], "uid": md["uid"]}}}
        r = raw(self.core.create_namespaced_service_account_token(
            spec.get("serviceAccountName") or "default", md["namespace"], body, _preload_content=False))
        return r["status"]["token"]

    # ---- writes -------------------------------------------------------------
    def bind(self, pod):
        md = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md["uid"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name}}
        self.core.create_namespaced_binding(md["namespace"], body, _preload_content=False)

    def patch_pod_status(self, pod, status):
        md = pod["metadata"]
        self.core.patch_namespaced_pod_status(md["name"], md["namespace"], {"status": status},
                                              _preload_content=False)

    def delete_pod_now(self, pod):
        md = pod["metadata"]
        body = client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=md["uid"]))
        try:
            self.core.delete_namespaced_pod(md["name"], md["namespace"], body=body, _preload_content=False)
        except ApiException as e:
            if e.status not in (404, 409):
                raise
