"""Container environment and command lines, with Kubernetes' rules:
env entries in order, each may reference earlier ones as $(VAR); `$$` is a
literal `$`; an undefined $(VAR) stays as written."""
import base64


class ConfigError(Exception):
    """The container cannot start yet (a referenced ConfigMap/Secret key is
    missing): reported as CreateContainerConfigError and retried."""


def expand(s: str, env: dict) -> str:
    out, i, n = [], 0, len(s)
    while i < n:
        c = s[i]
        if c == "$" and i + 1 < n:
            nxt = s[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                j = s.find(")", i + 2)
                if j != -1:
                    name = s[i + 2:j]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(s[i:j + 1])
                    i = j + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def field_ref(pod: dict, path: str, pod_ip: str, host_ip: str) -> str:
    md = pod["metadata"]
    if path == "metadata.name":
        return md["name"]
    if path == "metadata.namespace":
        return md["namespace"]
    if path == "metadata.uid":
        return md["uid"]
    if path.startswith("metadata.labels['") or path.startswith("metadata.annotations['"):
        kind, key = path.split("['", 1)
        key = key.rstrip("']")
        return (md.get(kind.split(".")[1]) or {}).get(key, "")
    if path == "spec.nodeName":
        return pod["spec"].get("nodeName") or ""
    if path == "spec.serviceAccountName":
        return pod["spec"].get("serviceAccountName") or ""
    if path in ("status.podIP", "status.podIPs"):
        return pod_ip or ""
    if path in ("status.hostIP", "status.hostIPs"):
        return host_ip
    raise ConfigError(f"unsupported fieldRef {path}")


def _key_ref(reader, kind, ref):
    name, key, optional = ref["name"], ref["key"], ref.get("optional", False)
    data = reader(kind, name)
    if data is None or key not in data:
        if optional:
            return None
        raise ConfigError(f"{kind} {name!r} key {key!r} not found")
    return data[key]


def resolve_env(pod, container, reader, pod_ip, host_ip) -> dict:
    """reader(kind, name) -> dict of decoded string data, or None if absent."""
    env = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in src:
                data = reader(kind, src[key]["name"])
                if data is None:
                    if src[key].get("optional"):
                        continue
                    raise ConfigError(f"{kind} {src[key]['name']!r} not found")
                for k, v in data.items():
                    env[prefix + k] = v
    for e in container.get("env") or []:
        name = e["name"]
        if "value" in e or "valueFrom" not in e:
            env[name] = expand(e.get("value") or "", env)
            continue
        vf = e["valueFrom"]
        if "fieldRef" in vf:
            env[name] = field_ref(pod, vf["fieldRef"]["fieldPath"], pod_ip, host_ip)
        elif "configMapKeyRef" in vf:
            v = _key_ref(reader, "ConfigMap", vf["configMapKeyRef"])
            if v is not None:
                env[name] = v
        elif "secretKeyRef" in vf:
            v = _key_ref(reader, "Secret", vf["secretKeyRef"])
            if v is not None:
                env[name] = v
        elif "resourceFieldRef" in vf:
            res = vf["resourceFieldRef"]["resource"]
            kind, what = res.split(".", 1)
            val = ((container.get("resources") or {}).get(kind) or {}).get(what)
            env[name] = str(val) if val is not None else ("2" if what == "cpu" else str(24 << 30))
        else:
            raise ConfigError(f"unsupported valueFrom for {name}")
    return env


def decode_secret(data: dict) -> dict:
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (data or {}).items()}


def decode_secret_bytes(data: dict) -> dict:
    return {k: base64.b64decode(v) for k, v in (data or {}).items()}
