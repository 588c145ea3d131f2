"""Unit tests of the e2e kubelet's pure parts: python3 -m pytest e2e/kubelet/tests"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from runnel_kubelet.envs import expand, resolve_env  # noqa: E402
from runnel_kubelet.hosts import HostsWriter, strip_block  # noqa: E402


def test_expand():
    env = {"A": "1", "B": "x"}
    assert expand("$(A)-$(B)", env) == "1-x"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$(C)", env) == "$(C)"
    assert expand("$A $(A", env) == "$A $(A"
    assert expand("a$$b", env) == "a$b"


def test_resolve_env_order_and_refs():
    pod = {"metadata": {"name": "p", "namespace": "n", "uid": "u"}, "spec": {"nodeName": "node"}}
    c = {"env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "X", "value": "$(N)-$(LATER)"},
                 {"name": "LATER", "value": "l"},
                 {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
                 {"name": "O", "valueFrom": {"secretKeyRef": {"name": "s", "key": "missing", "optional": True}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    reader = lambda kind, name: {"k": "v"} if kind == "ConfigMap" else {}  # noqa: E731
    env = resolve_env(pod, c, reader, "10.0.0.5", "10.0.0.1")
    assert env == {"N": "p", "X": "p-$(LATER)", "LATER": "l", "K": "v", "IP": "10.0.0.5"}


def test_hosts_in_place(tmp_path):
    f = tmp_path / "hosts"
    f.write_text("127.0.0.1 localhost\n")
    ino = f.stat().st_ino
    w = HostsWriter(f)
    svc = {"metadata": {"name": "b", "namespace": "ns"}}
    sl = {"metadata": {"namespace": "ns", "labels": {"kubernetes.io/service-name": "b"}},
          "endpoints": [{"addresses": ["10.1.0.3"], "conditions": {"ready": True}},
                        {"addresses": ["10.1.0.2"], "conditions": {"ready": False}}]}
    pod = {"metadata": {"namespace": "ns"}, "spec": {"hostname": "b-0", "subdomain": "h"}}
    names = w.compute([svc], [sl], [(pod, "10.1.0.3")])
    assert names["b.ns.svc.cluster.local"] == "10.1.0.3"
    assert names["b-0.h.ns.svc.cluster.local"] == "10.1.0.3"
    w.write(names)
    assert f.stat().st_ino == ino
    assert "10.1.0.3\tb.ns.svc" in f.read_text()
    assert strip_block(f.read_text()) == "127.0.0.1 localhost\n"
