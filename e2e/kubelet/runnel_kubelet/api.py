"""A small REST client for the API server, returning plain JSON dicts
(camelCase, as the server sends them). Credentials come from the kubeconfig,
loaded by the `kubernetes` package; requests go through urllib3."""
import base64
import json
import logging
import ssl
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client, config

log = logging.getLogger("api")


class ApiError(Exception):
    def __init__(self, status, reason, body=""):
        super().__init__(f"{status} {reason}: {body[:300]}")
        self.status = status
        self.reason = reason
        self.body = body


class Rest:
    def __init__(self, kubeconfig):
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        self.host = cfg.host.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": "runnel-e2e-kubelet"}
        auth = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
        if auth:
            prefix = cfg.api_key_prefix.get("authorization", "")
            self.headers["Authorization"] = f"{prefix} {auth}".strip() if not auth.startswith("Bearer") else auth
        kw = {"maxsize": 32, "timeout": urllib3.Timeout(connect=5, read=30), "retries": False}
        if cfg.verify_ssl:
            kw.update(cert_reqs=ssl.CERT_REQUIRED, ca_certs=cfg.ssl_ca_cert)
        else:
            kw.update(cert_reqs=ssl.CERT_NONE)
        if cfg.cert_file:
            kw.update(cert_file=cfg.cert_file, key_file=cfg.key_file)
        self.http = urllib3.PoolManager(**kw)

    def host_port(self):
        from urllib.parse import urlsplit
        u = urlsplit(self.host)
        return u.hostname, u.port or 443

    def request(self, method, path, body=None, content_type="application/json", query=None):
        url = self.host + path + (("?" + urlencode(query)) if query else "")
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        r = self.http.request(method, url, body=data, headers=headers)
        text = r.data.decode("utf-8", "replace")
        if r.status >= 400:
            reason = text
            try:
                reason = json.loads(text).get("message", text)
            except ValueError:
                pass
            raise ApiError(r.status, reason, text)
        return json.loads(text) if text else {}

    def get(self, path, **q):
        return self.request("GET", path, query=q or None)

    def post(self, path, body):
        return self.request("POST", path, body)

    def merge_patch(self, path, body):
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def delete(self, path, body=None):
        return self.request("DELETE", path, body)


def q(s):
    return quote(s, safe="")


class Api:
    """The calls the kubelet makes."""

    def __init__(self, kubeconfig, node_name):
        self.rest = Rest(kubeconfig)
        self.node_name = node_name

    # ---- lists --------------------------------------------------------------
    def pods(self):
        return self.rest.get("/api/v1/pods")["items"]

    def services(self):
        return self.rest.get("/api/v1/services")["items"]

    def endpoint_slices(self):
        return self.rest.get("/apis/discovery.k8s.io/v1/endpointslices")["items"]

    def pvcs(self):
        return self.rest.get("/api/v1/persistentvolumeclaims")["items"]

    def pvs(self):
        return self.rest.get("/api/v1/persistentvolumes")["items"]

    # ---- reads used by pods -------------------------------------------------
    def read_data(self, kind, ns, name, binary=False):
        """ConfigMap/Secret data as {key: str} (or bytes if binary); None if absent."""
        try:
            if kind == "ConfigMap":
                o = self.rest.get(f"/api/v1/namespaces/{q(ns)}/configmaps/{q(name)}")
                data = {k: v.encode() for k, v in (o.get("data") or {}).items()}
                data.update({k: base64.b64decode(v) for k, v in (o.get("binaryData") or {}).items()})
            else:
                o = self.rest.get(f"/api/v1/namespaces/{q(ns)}/secrets/{q(name)}")
                data = {k: base64.b64decode(v) for k, v in (o.get("data") or {}).items()}
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        if binary:
            return data
        return {k: v.decode("utf-8", "replace") for k, v in data.items()}

    def claim_path(self, ns, claim):
        from .volumes import NotReady
        try:
            pvc = self.rest.get(f"/api/v1/namespaces/{q(ns)}/persistentvolumeclaims/{q(claim)}")
        except ApiError as e:
            if e.status == 404:
                raise NotReady(f"PersistentVolumeClaim {claim!r} not found")
            raise
        vol = pvc["spec"].get("volumeName")
        if (pvc.get("status") or {}).get("phase") != "Bound" or not vol:
            raise NotReady(f"PersistentVolumeClaim {claim!r} is not bound yet")
        spec = self.rest.get(f"/api/v1/persistentvolumes/{q(vol)}")["spec"]
        if "hostPath" in spec:
            return spec["hostPath"]["path"]
        if "local" in spec:
            return spec["local"]["path"]
        raise NotReady(f"PersistentVolume {vol!r} is neither hostPath nor local")

    def service_account_token(self, pod, seconds, audience):
        md, spec = pod["metadata"], pod["spec"]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": max(600, int(seconds)),
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                            "name": md["name"], "uid": md["uid"]}}}
        if audience:
            body["spec"]["audiences"] = [audience]
        sa = spec.get("serviceAccountName") or "default"
        r = self.rest.post(f"/api/v1/namespaces/{q(md['namespace'])}/serviceaccounts/{q(sa)}/token", body)
        return r["status"]["token"]

    # ---- writes -------------------------------------------------------------
    def bind(self, pod):
        md = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md["uid"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name}}
        self.rest.post(f"/api/v1/namespaces/{q(md['namespace'])}/pods/{q(md['name'])}/binding", body)

    def patch_pod_status(self, pod, status):
        """JSON merge patch: lists (containerStatuses, conditions) are replaced whole."""
        md = pod["metadata"]
        self.rest.merge_patch(f"/api/v1/namespaces/{q(md['namespace'])}/pods/{q(md['name'])}/status",
                              {"metadata": {"uid": md["uid"]}, "status": status})

    def delete_pod_now(self, pod):
        md = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": md["uid"]}}
        try:
            self.rest.delete(f"/api/v1/namespaces/{q(md['namespace'])}/pods/{q(md['name'])}", body)
        except ApiError as e:
            if e.status not in (404, 409):
                raise

    def event(self, pod, type_, reason, message, component="kubelet"):
        """A core/v1 Event about the pod (what `kubectl describe pod` shows); best effort."""
        import time
        import uuid
        md = pod["metadata"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{md['name']}.{uuid.uuid4().hex[:16]}", "namespace": md["namespace"]},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": md["name"],
                                   "namespace": md["namespace"], "uid": md["uid"]},
                "type": type_, "reason": reason, "message": message[:1024],
                "source": {"component": component, "host": self.node_name},
                "reportingComponent": component, "reportingInstance": self.node_name,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1}
        try:
            self.rest.post(f"/api/v1/namespaces/{q(md['namespace'])}/events", body)
        except (ApiError, OSError) as e:
            log.debug("event %s for %s/%s not recorded: %s", reason, md["namespace"], md["name"], e)

    def create(self, path, body):
        """POST; returns False if it already exists (409)."""
        try:
            self.rest.post(path, body)
            return True
        except ApiError as e:
            if e.status == 409:
                return False
            raise
