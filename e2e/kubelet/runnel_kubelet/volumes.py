"""Pod volumes as host directories under STATE_DIR/pods/<pod>/volumes/<name>
(ConfigMap, Secret, downwardAPI, projected, emptyDir) or the PV's directory
(persistentVolumeClaim, hostPath). Containers see them through bind mounts
made by launch.py in their own mount namespace. ConfigMap/Secret contents are
refreshed on every sync, like the kubelet's (eventually consistent) updates."""
import logging
import os
import time
from pathlib import Path

from .envs import ConfigError, field_ref

log = logging.getLogger("volumes")


class NotReady(Exception):
    """A volume cannot be set up yet (e.g. the PVC is not bound)."""


def _write_files(dest: Path, files: dict, mode: int):
    """files: relative path -> bytes. Rewrites only what changed; removes stale
    files. Each file is replaced atomically (rename), as the kubelet does."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for rel, content in files.items():
        p = dest / rel
        wanted.add(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            if p.read_bytes() == content:
                continue
        except OSError:
            pass
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_bytes(content)
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    for p in list(dest.rglob("*")):
        if p.is_file() and p not in wanted and not p.name.startswith("."):
            p.unlink()


def _select(data: dict, items, optional, what) -> dict:
    if data is None:
        if optional:
            return {}
        raise NotReady(f"{what} not found")
    if not items:
        return dict(data)
    out = {}
    for it in items:
        if it["key"] not in data:
            if optional:
                continue
            raise NotReady(f"{what} has no key {it['key']!r}")
        out[it["path"]] = data[it["key"]]
    return out


class VolumeManager:
    def __init__(self, cfg, api):
        self.cfg = cfg
        self.api = api   # kubelet.Api
        self.claims = {}     # claim name -> host path (a bound claim keeps its volume)
        self.tokens = {}     # (audience, seconds) -> (token, refresh at)

    def _claim_path(self, ns, claim):
        if claim not in self.claims:
            self.claims[claim] = self.api.claim_path(ns, claim)
        return self.claims[claim]

    def _token(self, pod, seconds, audience):
        key = (audience, seconds)
        tok, refresh_at = self.tokens.get(key, (None, 0))
        if time.time() >= refresh_at:
            tok = self.api.service_account_token(pod, seconds, audience)
            # like the kubelet: refresh at 80% of the lifetime (at least 600 s)
            self.tokens[key] = (tok, time.time() + 0.8 * max(600, int(seconds)))
        return tok

    def pod_dir(self, pod) -> Path:
        md = pod["metadata"]
        return self.cfg.pods_dir / f"{md['namespace']}_{md['name']}_{md['uid'][:8]}"

    def setup(self, pod, pod_ip) -> dict:
        """Materialize every volume; returns {volume name: host path}."""
        ns = pod["metadata"]["namespace"]
        base = self.pod_dir(pod) / "volumes"
        paths = {}
        for v in pod["spec"].get("volumes") or []:
            name = v["name"]
            d = base / name
            if "emptyDir" in v:
                d.mkdir(parents=True, exist_ok=True)
            elif "configMap" in v:
                src = v["configMap"]
                data = self.api.read_data("ConfigMap", ns, src["name"], binary=True)
                files = _select(data, src.get("items"), src.get("optional"), f"ConfigMap {src['name']!r}")
                _write_files(d, files, src.get("defaultMode", 0o644))
            elif "secret" in v:
                src = v["secret"]
                data = self.api.read_data("Secret", ns, src["secretName"], binary=True)
                files = _select(data, src.get("items"), src.get("optional"), f"Secret {src['secretName']!r}")
                _write_files(d, files, src.get("defaultMode", 0o644))
            elif "downwardAPI" in v:
                _write_files(d, self._downward(pod, v["downwardAPI"].get("items"), pod_ip), 0o644)
            elif "projected" in v:
                _write_files(d, self._projected(pod, v["projected"], pod_ip), v["projected"].get("defaultMode", 0o644))
            elif "persistentVolumeClaim" in v:
                d = Path(self._claim_path(ns, v["persistentVolumeClaim"]["claimName"]))
            elif "hostPath" in v:
                d = Path(v["hostPath"]["path"])
                if (v["hostPath"].get("type") or "") in ("DirectoryOrCreate",):
                    d.mkdir(parents=True, exist_ok=True)
            else:
                raise ConfigError(f"volume {name!r}: unsupported volume type {sorted(set(v) - {'name'})}")
            paths[name] = str(d)
        return paths

    def _downward(self, pod, items, pod_ip) -> dict:
        out = {}
        for it in items or []:
            if "fieldRef" in it:
                out[it["path"]] = field_ref(pod, it["fieldRef"]["fieldPath"], pod_ip, self.cfg.host_ip).encode()
        return out

    def _projected(self, pod, proj, pod_ip) -> dict:
        ns = pod["metadata"]["namespace"]
        out = {}
        for s in proj.get("sources") or []:
            if "serviceAccountToken" in s:
                t = s["serviceAccountToken"]
                token = self._token(pod, t.get("expirationSeconds", 3600), t.get("audience"))
                out[t["path"]] = token.encode()
            elif "configMap" in s:
                c = s["configMap"]
                data = self.api.read_data("ConfigMap", ns, c["name"], binary=True)
                out.update(_select(data, c.get("items"), c.get("optional"), f"ConfigMap {c['name']!r}"))
            elif "secret" in s:
                c = s["secret"]
                data = self.api.read_data("Secret", ns, c["name"], binary=True)
                out.update(_select(data, c.get("items"), c.get("optional"), f"Secret {c['name']!r}"))
            elif "downwardAPI" in s:
                out.update(self._downward(pod, s["downwardAPI"].get("items"), pod_ip))
        return out

    @staticmethod
    def mounts(container, paths) -> list:
        out = []
        for m in container.get("volumeMounts") or []:
            if m["name"] not in paths:
                raise ConfigError(f"volumeMount {m['name']!r} names no volume of the pod")
            src = paths[m["name"]]
            if m.get("subPath"):
                src = os.path.join(src, m["subPath"])
                if not os.path.exists(src):
                    os.makedirs(src, exist_ok=True)
            out.append({"src": src, "dst": m["mountPath"], "readOnly": bool(m.get("readOnly"))})
        return out
