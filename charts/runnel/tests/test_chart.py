"""Checks over `helm template` output of charts/runnel.

The expected RBAC is operator-contract.md's "RBAC it needs", written out here
by hand so that a template change cannot silently widen it.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

from conftest import CHART, NAMESPACE, RELEASE, REPO

FULLNAME = "runnel"  # release "runnel" already contains the chart name
IMAGE = "ghcr.io/runnel-dev/runnel:0.1.0"

# (apiGroup, resource, verb) the operator may use in each watched namespace.
OPERATOR_PERMISSIONS = set()


def _grant(group, resources, verbs):
    for r in resources:
        for v in verbs:
            OPERATOR_PERMISSIONS.add((group, r, v))


_CRDS = ["kafkaclusters", "kafkatopics", "kafkaconnects", "kafkaconnectors"]
_grant("kafka.runnel.dev", _CRDS, ["get", "list", "watch", "patch", "update"])
_grant("kafka.runnel.dev", [f"{c}/status" for c in _CRDS], ["get", "patch", "update"])
_grant("kafka.runnel.dev", [f"{c}/finalizers" for c in _CRDS], ["update"])
_grant("", ["configmaps", "services"], ["get", "list", "watch", "create", "patch", "update", "delete"])
_grant("", ["pods", "persistentvolumeclaims"], ["get", "list", "watch", "delete"])
_grant("", ["events"], ["create", "patch"])
_grant("events.k8s.io", ["events"], ["create", "patch"])
_grant("apps", ["statefulsets", "deployments"], ["get", "list", "watch", "create", "patch", "update", "delete"])
_grant("policy", ["poddisruptionbudgets"], ["get", "list", "watch", "create", "patch", "update", "delete"])

STANDARD_LABELS = {
    "helm.sh/chart": "runnel-0.1.0",
    "app.kubernetes.io/name": "runnel",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "operator",
    "app.kubernetes.io/version": "0.1.0",
    "app.kubernetes.io/part-of": "runnel",
    "app.kubernetes.io/managed-by": "Helm",
}
SELECTOR = {
    "app.kubernetes.io/name": "runnel",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "operator",
}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
NAMESPACED_HA = {"replicaCount": 2, "watchNamespaces": ["kafka", "kafka-staging"]}


def permissions(rules):
    """Expand RBAC rules to (group, resource, verb[, resourceName]) tuples."""
    out = set()
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                for v in rule["verbs"]:
                    if "resourceNames" in rule:
                        for n in rule["resourceNames"]:
                            out.add((g, r, v, n))
                    else:
                        out.add((g, r, v))
    return out


def arg_values(args, flag):
    """Values following each occurrence of `flag` in an argv list."""
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


# ------------------------------------------------------------------ labels

@pytest.mark.parametrize("values", [{}, NAMESPACED_HA], ids=["default", "namespaced-ha"])
def test_every_object_has_standard_labels_and_namespace(render, values):
    docs = render(values)
    assert docs, "nothing rendered"
    for d in docs:
        meta = d["metadata"]
        what = f'{d["kind"]}/{meta["name"]}'
        for k, v in STANDARD_LABELS.items():
            assert meta["labels"].get(k) == v, f"{what}: label {k}={meta['labels'].get(k)!r}"
        if d["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in meta, what
        else:
            # explicit namespaces, so `helm template | kubectl apply` lands
            # where `helm install -n` would
            assert meta.get("namespace"), f"{what} has no namespace"


def test_pod_labels_match_selector_and_cannot_override_it(render):
    docs = render({"podLabels": {"team": "streaming", "app.kubernetes.io/component": "evil"}})
    dep = docs.deployment()
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector == SELECTOR
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["team"] == "streaming"
    for k, v in selector.items():
        assert pod_labels[k] == v
    svc = docs.one("Service")
    assert svc["spec"]["selector"] == SELECTOR


def test_selector_is_disjoint_from_broker_pods(render):
    # Broker pods the operator creates carry app.kubernetes.io/name=runnel and
    # component=broker; a release named like a KafkaCluster must not select them.
    assert render().deployment()["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"


# -------------------------------------------------------------- deployment

def test_deployment_defaults(render):
    docs = render()
    dep = docs.deployment()
    assert dep["metadata"]["name"] == FULLNAME
    assert dep["spec"]["replicas"] == 1
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == FULLNAME
    c = docs.container()
    assert c["image"] == IMAGE
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["command"] == ["/usr/local/bin/runnel-operator"]
    assert c["args"] == ["--metrics-addr", "0.0.0.0:8080", "--broker-image", IMAGE]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["RUST_LOG"]["value"] == "info"
    assert c["ports"] == [{"name": "http-metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["livenessProbe"]["httpGet"]["port"] == "http-metrics"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["readinessProbe"]["httpGet"]["port"] == "http-metrics"
    assert c["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
    for absent in ("imagePullSecrets", "nodeSelector", "affinity", "tolerations", "priorityClassName"):
        assert absent not in pod, absent
    assert "annotations" not in dep["spec"]["template"]["metadata"]


def test_security_context(render):
    docs = render()
    pod = docs.deployment()["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 65532
    assert psc["runAsGroup"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = docs.container()["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in sc or sc["privileged"] is False


def test_image_tag_digest_and_broker_image(render):
    c = render({"image": {"tag": "9.9.9"}}).container()
    assert c["image"] == "ghcr.io/runnel-dev/runnel:9.9.9"
    assert arg_values(c["args"], "--broker-image") == ["ghcr.io/runnel-dev/runnel:9.9.9"]
    digest = "sha256:" + "a" * 64
    c = render({"image": {"digest": digest, "tag": "ignored"}}).container()
    assert c["image"] == f"ghcr.io/runnel-dev/runnel@{digest}"
    c = render({"brokerImage": "example.com/broker:1"}).container()
    assert c["image"] == IMAGE
    assert arg_values(c["args"], "--broker-image") == ["example.com/broker:1"]


def test_values_wiring(render):
    values = yaml.safe_load((CHART / "ci" / "full-values.yaml").read_text())
    docs = render(values)
    dep = docs.deployment()
    pod = dep["spec"]["template"]["spec"]
    c = docs.container()
    assert dep["metadata"]["name"] == "runnel-operator"
    assert dep["spec"]["replicas"] == 3
    assert c["image"] == "registry.example.com/runnel:0.1.0-rc.1"
    assert c["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["serviceAccountName"] == "runnel-sa"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == values["nodeSelector"]
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]
    assert dep["spec"]["template"]["metadata"]["annotations"] == values["podAnnotations"]
    assert {e["name"]: e.get("value") for e in c["env"]}["RUST_LOG"] == "debug,kube=info"
    assert arg_values(c["args"], "--metrics-addr") == ["0.0.0.0:9090"]
    assert c["ports"][0]["containerPort"] == 9090
    sa = docs.one("ServiceAccount")
    assert sa["metadata"]["name"] == "runnel-sa"
    assert sa["metadata"]["annotations"] == {"example.com/role": "runnel"}
    svc = docs.one("Service")
    assert svc["spec"]["ports"] == [{"name": "http-metrics", "port": 9090, "targetPort": "http-metrics", "protocol": "TCP"}]


def test_existing_service_account(render, render_fail):
    docs = render({"serviceAccount": {"create": False, "name": "existing"}})
    assert not docs.kinds("ServiceAccount")
    assert docs.deployment()["spec"]["template"]["spec"]["serviceAccountName"] == "existing"
    assert docs.one("ClusterRoleBinding")["subjects"] == [
        {"kind": "ServiceAccount", "name": "existing", "namespace": NAMESPACE}]
    err = render_fail({"serviceAccount": {"create": False}})
    assert "serviceAccount.name is required" in err


# --------------------------------------------------------- leader election

def test_single_replica_has_no_leader_election(render):
    docs = render()
    args = docs.args()
    for flag in ("--leader-elect", "--lease-name", "--lease-namespace"):
        assert flag not in args
    assert not docs.kinds("PodDisruptionBudget")
    assert not [r for r in docs.kinds("Role") if "leader" in r["metadata"]["name"]]
    assert not any(p[0] == "coordination.k8s.io" for p in permissions(docs.one("ClusterRole")["rules"]))


@pytest.mark.parametrize("values", [
    {"replicaCount": 2},
    {"replicaCount": 1, "leaderElection": {"enabled": True, "leaseName": "runnel-operator"}},
], ids=["replicas-2", "enabled"])
def test_leader_election_wiring(render, values):
    docs = render(values)
    args = docs.args()
    assert args.count("--leader-elect") == 1
    assert arg_values(args, "--lease-name") == ["runnel-operator"]
    assert arg_values(args, "--lease-namespace") == [NAMESPACE]
    role = docs.one("Role", f"{FULLNAME}-leader-election", NAMESPACE)
    assert permissions(role["rules"]) == {
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "get", "runnel-operator"),
        ("coordination.k8s.io", "leases", "update", "runnel-operator"),
        # not in the contract: kube-lease-manager renews with PATCH
        ("coordination.k8s.io", "leases", "patch", "runnel-operator"),
    }
    binding = docs.one("RoleBinding", f"{FULLNAME}-leader-election", NAMESPACE)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": f"{FULLNAME}-leader-election"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    # the lease is never granted cluster-wide
    assert not any(p[0] == "coordination.k8s.io" for p in permissions(docs.one("ClusterRole")["rules"]))


def test_pdb_only_with_several_replicas(render):
    assert not render({"replicaCount": 1, "leaderElection": {"enabled": True, "leaseName": "x"}}).kinds(
        "PodDisruptionBudget")
    pdb = render({"replicaCount": 2}).one("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == SELECTOR
    assert not render({"replicaCount": 2, "podDisruptionBudget": {"enabled": False}}).kinds("PodDisruptionBudget")


def test_custom_lease_name_limits_rbac(render):
    docs = render({"leaderElection": {"enabled": True, "leaseName": "my-lock"}})
    assert arg_values(docs.args(), "--lease-name") == ["my-lock"]
    role = docs.one("Role", f"{FULLNAME}-leader-election")
    assert ("coordination.k8s.io", "leases", "update", "my-lock") in permissions(role["rules"])


# ---------------------------------------------------------------------- RBAC

def test_cluster_mode_rbac_is_exactly_the_contract(render):
    docs = render()
    assert not docs.kinds("Role") and not docs.kinds("RoleBinding")
    cr = docs.one("ClusterRole", FULLNAME)
    assert permissions(cr["rules"]) == OPERATOR_PERMISSIONS
    crb = docs.one("ClusterRoleBinding", FULLNAME)
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": FULLNAME}
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    assert "--namespace" not in docs.args()


def test_namespaced_mode_renders_roles_not_cluster_roles(render):
    docs = render(NAMESPACED_HA)
    assert not docs.kinds("ClusterRole")
    assert not docs.kinds("ClusterRoleBinding")
    for ns in NAMESPACED_HA["watchNamespaces"]:
        role = docs.one("Role", FULLNAME, ns)
        assert permissions(role["rules"]) == OPERATOR_PERMISSIONS
        rb = docs.one("RoleBinding", FULLNAME, ns)
        assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FULLNAME}
        # the ServiceAccount lives in the release namespace
        assert rb["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    # operator Roles only in watched namespaces, plus the lease Role at home
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in docs.kinds("Role")}
    assert roles == {("kafka", FULLNAME), ("kafka-staging", FULLNAME),
                     (NAMESPACE, f"{FULLNAME}-leader-election")}
    assert arg_values(docs.args(), "--namespace") == ["kafka", "kafka-staging"]


def test_watch_namespaces_deduplicated(render):
    docs = render({"watchNamespaces": ["a", "b", "a"]})
    assert arg_values(docs.args(), "--namespace") == ["a", "b"]
    assert sorted(r["metadata"]["namespace"] for r in docs.kinds("Role")) == ["a", "b"]


@pytest.mark.parametrize("values", [{}, NAMESPACED_HA, {"replicaCount": 3}], ids=["default", "namespaced-ha", "ha"])
def test_no_wildcards_or_escalation_verbs(render, values):
    for d in render(values):
        if d["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in d["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), f'{d["kind"]}/{d["metadata"]["name"]}: * in {key}'
            assert "nonResourceURLs" not in rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
            assert not {"secrets", "roles", "clusterroles", "rolebindings", "clusterrolebindings"} & set(
                rule["resources"])


# ------------------------------------------------------- metrics / monitoring

def test_metrics_service_and_service_monitor(render):
    docs = render()
    svc = docs.one("Service", f"{FULLNAME}-metrics")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http-metrics", "port": 8080, "targetPort": "http-metrics",
                                     "protocol": "TCP"}]
    assert not docs.kinds("ServiceMonitor")
    # enabled, but the cluster does not serve the API: nothing rendered
    assert not render({"metrics": {"enabled": True, "port": 8080, "serviceMonitor": {"enabled": True}}}).kinds(
        "ServiceMonitor")
    # the API is available
    sm = render({"metrics": {"enabled": True, "port": 8080, "serviceMonitor": {"enabled": True}}},
                extra=["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"]).one("ServiceMonitor")
    assert sm["spec"]["endpoints"] == [{"port": "http-metrics", "path": "/metrics"}]
    assert sm["spec"]["selector"]["matchLabels"] == SELECTOR
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    # forced, with interval and labels
    sm = render({"metrics": {"enabled": True, "port": 8080, "serviceMonitor": {
        "enabled": True, "force": True, "interval": "15s", "labels": {"release": "prom"}}}}).one("ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["interval"] == "15s"
    assert sm["metadata"]["labels"]["release"] == "prom"


def test_metrics_disabled_keeps_probes(render):
    docs = render({"metrics": {"enabled": False, "port": 8080,
                               "serviceMonitor": {"enabled": True, "force": True}}})
    assert not docs.kinds("Service")
    assert not docs.kinds("ServiceMonitor")
    c = docs.container()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert arg_values(c["args"], "--metrics-addr") == ["0.0.0.0:8080"]


# ----------------------------------------------------------- values schema

@pytest.mark.parametrize("values,expected", [
    ({"replicaCount": -1}, ["/replicaCount", "minimum"]),
    ({"replicaCount": "two"}, ["/replicaCount", "want integer"]),
    ({"image": {"repository": 5}}, ["/image/repository", "want string"]),
    ({"image": {"repository": ""}}, ["/image/repository"]),
    ({"image": {"pullPolicy": "Sometimes"}}, ["/image/pullPolicy"]),
    ({"image": {"digest": "latest"}}, ["/image/digest"]),
    ({"metrics": {"port": 0}}, ["/metrics/port", "minimum"]),
    ({"metrics": {"port": 70000}}, ["/metrics/port", "maximum"]),
    ({"watchNamespaces": "kafka"}, ["/watchNamespaces", "want array"]),
    ({"watchNamespaces": ["Bad_NS"]}, ["/watchNamespaces/0", "does not match pattern"]),
    ({"leaderElection": {"enabled": "yes"}}, ["/leaderElection/enabled", "want boolean"]),
    ({"serviceAccount": {"create": "true"}}, ["/serviceAccount/create", "want boolean"]),
    ({"logLevel": ""}, ["/logLevel"]),
    ({"podAnnotations": {"a": 1}}, ["/podAnnotations/a", "want string"]),
    ({"replicas": 2}, ["additional properties 'replicas' not allowed"]),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, ["/metrics/serviceMonitor/interval"]),
], ids=lambda v: json.dumps(v, sort_keys=True) if isinstance(v, dict) else None)
def test_schema_rejects_bad_values_readably(render_fail, values, expected):
    err = render_fail(values)
    assert "values don't meet the specifications of the schema" in err, err
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in helm's error:\n{err}"


def test_schema_accepts_defaults_and_ci_values(render):
    for f in sorted((CHART / "ci").glob("*-values.yaml")):
        render(yaml.safe_load(f.read_text()) or {})


def test_schema_documents_every_default_value():
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(defaults) <= set(schema["properties"]), set(defaults) - set(schema["properties"])
    assert schema.get("additionalProperties") is False


# ------------------------------------------------------ GitOps / determinism

RENDER_SETS = [
    {},
    NAMESPACED_HA,
    {"replicaCount": 3, "leaderElection": {"enabled": True, "leaseName": "l"}},
    {"metrics": {"enabled": True, "port": 8080, "serviceMonitor": {"enabled": True, "force": True}}},
]


@pytest.mark.parametrize("values", RENDER_SETS, ids=["default", "namespaced-ha", "ha", "servicemonitor"])
def test_render_is_deterministic(render, values):
    first = render(values, extra=["--include-crds"]).text
    for _ in range(2):
        assert render(values, extra=["--include-crds"]).text == first


def _empty_paths(node, path="$", in_list=False):
    # An empty string is data inside a list (apiGroups: [""] is the core
    # group) but an omitted field as a map value (omitempty).
    if node is None or node == {} or node == [] or (node == "" and not in_list):
        yield path
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _empty_paths(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _empty_paths(v, f"{path}[{i}]", in_list=True)


@pytest.mark.parametrize("values", RENDER_SETS, ids=["default", "namespaced-ha", "ha", "servicemonitor"])
def test_no_empty_or_null_fields(render, values):
    # The API server drops empty maps/lists and nulls, so emitting them shows
    # up as drift in GitOps diffs. (CRDs are excluded: `status: {}` is how a
    # status subresource is declared.)
    for d in render(values):
        empties = list(_empty_paths(d))
        assert not empties, f'{d["kind"]}/{d["metadata"]["name"]}: {empties}'


def test_default_quantities_are_canonical(render):
    # The API server stores quantities canonically ("0.5" becomes "500m");
    # a non-canonical value in the render would differ from what it reads back.
    res = render().container()["resources"]
    for kind in res.values():
        for name, q in kind.items():
            assert re.fullmatch(r"[1-9][0-9]*(m|Ki|Mi|Gi)?", str(q)), f"{name}: {q}"


def test_templates_use_no_cluster_lookups_or_random_values():
    banned = re.compile(r"\b(lookup|now|date|randAlpha|randAlphaNum|randNumeric|randAscii|randBytes|uuidv4|"
                        r"genCA|genPrivateKey|genSelfSignedCert|genSignedCert|derivePassword)\b")
    for f in sorted((CHART / "templates").iterdir()):
        for lineno, line in enumerate(f.read_text().splitlines(), 1):
            code = re.findall(r"\{\{(.*?)\}\}", line)
            for c in code:
                if c.strip().startswith("/*") or c.strip().startswith("- /*"):
                    continue
                assert not banned.search(c), f"{f.name}:{lineno}: {line.strip()}"


# --------------------------------------------------------------------- CRDs

CRD_NAMES = {
    "kafkaclusters": ("KafkaCluster", "kc"),
    "kafkatopics": ("KafkaTopic", "kt"),
    "kafkaconnects": ("KafkaConnect", "kconn"),
    "kafkaconnectors": ("KafkaConnector", "kctr"),
}


def test_crds_in_chart():
    files = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert files == sorted(f"{p}.kafka.runnel.dev.yaml" for p in CRD_NAMES)
    for plural, (kind, short) in CRD_NAMES.items():
        crd = yaml.safe_load((CHART / "crds" / f"{plural}.kafka.runnel.dev.yaml").read_text())
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["kind"] == "CustomResourceDefinition"
        assert crd["metadata"]["name"] == f"{plural}.kafka.runnel.dev"
        spec = crd["spec"]
        assert spec["group"] == "kafka.runnel.dev"
        assert spec["scope"] == "Namespaced"
        assert spec["names"]["kind"] == kind
        assert spec["names"]["plural"] == plural
        assert short in spec["names"].get("shortNames", [])
        assert "kafka" in spec["names"].get("categories", [])
        versions = {v["name"]: v for v in spec["versions"]}
        assert versions["v1alpha1"]["served"] and versions["v1alpha1"]["storage"]
        assert "status" in versions["v1alpha1"].get("subresources", {})


def test_crds_rendered_with_include_crds(render):
    crds = render(extra=["--include-crds"]).kinds("CustomResourceDefinition")
    assert sorted(c["metadata"]["name"] for c in crds) == sorted(f"{p}.kafka.runnel.dev" for p in CRD_NAMES)


def test_crds_match_generator_output_when_present():
    # crdgen writes crds/yaml/ and copies it here verbatim.
    gen = REPO / "crds" / "yaml"
    if not gen.is_dir() or not list(gen.glob("*.yaml")):
        pytest.skip("crds/yaml/ not generated in this checkout")
    for p in CRD_NAMES:
        name = f"{p}.kafka.runnel.dev.yaml"
        assert (gen / name).read_bytes() == (CHART / "crds" / name).read_bytes(), (
            f"charts/runnel/crds/{name} differs from crds/yaml/{name}: run crdgen")


# ------------------------------------------------------------------ samples

SAMPLES = REPO / "config" / "samples"


def _schema_props(crd):
    v = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    return v["schema"]["openAPIV3Schema"]


def _unknown_fields(obj, schema, path):
    """Fields in obj that a (non-placeholder) structural schema does not declare."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(obj, dict):
        return []
    props = schema.get("properties")
    if props is None:
        return []  # a map (additionalProperties) or an untyped object
    out = []
    for k, v in obj.items():
        if k not in props:
            out.append(f"{path}.{k}")
        else:
            out += _unknown_fields(v, props[k], f"{path}.{k}")
    return out


def test_samples():
    kust = yaml.safe_load((SAMPLES / "kustomization.yaml").read_text())
    files = kust["resources"]
    assert sorted(files) == ["kafkacluster.yaml", "kafkaconnect.yaml", "kafkaconnector.yaml", "kafkatopic.yaml"]
    docs = {}
    for f in files:
        d = yaml.safe_load((SAMPLES / f).read_text())
        assert d["apiVersion"] == "kafka.runnel.dev/v1alpha1"
        docs[d["kind"]] = d
    assert set(docs) == {"KafkaCluster", "KafkaTopic", "KafkaConnect", "KafkaConnector"}
    namespaces = {d["metadata"]["namespace"] for d in docs.values()}
    assert len(namespaces) == 1, namespaces
    cluster = docs["KafkaCluster"]["metadata"]["name"]
    assert docs["KafkaCluster"]["spec"]["replicas"] == 1
    assert docs["KafkaTopic"]["metadata"]["labels"]["kafka.runnel.dev/cluster"] == cluster
    assert docs["KafkaConnect"]["spec"]["clusterRef"] == cluster
    assert docs["KafkaConnector"]["spec"]["connectRef"] == docs["KafkaConnect"]["metadata"]["name"]
    topic = docs["KafkaTopic"]["spec"]
    assert topic["partitions"] == 3
    assert {"retention.ms", "cleanup.policy"} <= set(topic["config"])
    assert docs["KafkaConnector"]["spec"]["state"] in ("running", "paused", "stopped")
    # Once crdgen has replaced the placeholders: the samples use only declared
    # fields (kubectl's strict field validation rejects others) and pass the
    # OpenAPI schema (CEL rules are left to the API server in e2e).
    for kind, d in docs.items():
        check_against_crd(d, CHART / "crds" / f"{kind.lower()}s.kafka.runnel.dev.yaml")


def _to_json_schema(node):
    """An OpenAPI v3 structural schema as JSON Schema (draft 4 keywords)."""
    if isinstance(node, list):
        return [_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k.startswith("x-kubernetes-") or k in ("description", "default", "format", "example", "nullable"):
            continue
        if k in ("properties", "patternProperties", "definitions"):
            out[k] = {name: _to_json_schema(sub) for name, sub in v.items()}
        else:
            out[k] = _to_json_schema(v)
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        out["type"] = (out["type"] if isinstance(out["type"], list) else [out["type"]]) + ["null"]
    return out


def check_against_crd(obj, crd_path):
    crd = yaml.safe_load(Path(crd_path).read_text())
    schema = _schema_props(crd)
    unknown = _unknown_fields(obj.get("spec", {}), schema.get("properties", {}).get("spec", {}),
                              f'{obj["kind"]}.spec')
    assert not unknown, f"fields the CRD does not declare: {unknown}"
    jsonschema = pytest.importorskip("jsonschema")
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    errors = sorted(jsonschema.Draft4Validator(_to_json_schema(schema)).iter_errors(body), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


# ------------------------------------------- against a real API server (opt-in)

@pytest.mark.parametrize("values", [{}, NAMESPACED_HA], ids=["default", "namespaced-ha"])
def test_server_side_apply_twice_changes_nothing(render, values, tmp_path):
    """With RUNNEL_CHART_KUBECONFIG set (a throwaway API server: this creates
    namespaces, CRDs and cluster RBAC), apply the render with server-side
    apply twice: the second apply must change no object and `kubectl diff
    --server-side` must be empty."""
    import os
    import shutil
    import subprocess
    kubeconfig = os.environ.get("RUNNEL_CHART_KUBECONFIG")
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not kubeconfig or not kubectl:
        pytest.skip("set RUNNEL_CHART_KUBECONFIG (and KUBECTL) to run against an API server")

    def k(*args, check=True):
        p = subprocess.run([kubectl, "--kubeconfig", kubeconfig, *args], capture_output=True, text=True)
        assert p.returncode == 0 or not check, f"kubectl {' '.join(args)}:\n{p.stderr}"
        return p

    release = "ssa-" + ("ns" if values else "cluster")
    docs = render(values, extra=["--include-crds"])
    manifest = tmp_path / "render.yaml"
    manifest.write_text(docs.text)
    for ns in {NAMESPACE, *values.get("watchNamespaces", [])}:
        k("create", "namespace", ns, check=False)
    manager = ["--server-side", f"--field-manager={release}", "-f", str(manifest)]
    # The first apply takes ownership of whatever an earlier run left (e.g. the
    # CRDs); from then on this field manager owns every field it renders.
    k("apply", "--force-conflicts", *manager)
    k("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")

    def versions():
        got = k("get", "-f", str(manifest), "-o",
                "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}="
                "{.metadata.resourceVersion}{'\\n'}{end}").stdout
        return sorted(got.split())

    before = versions()
    assert len(before) == len(docs)
    k("apply", *manager)
    assert versions() == before, "the second server-side apply changed objects"
    diff = k("diff", *manager, check=False)
    assert diff.returncode == 0, f"kubectl diff --server-side is not empty:\n{diff.stdout}{diff.stderr}"


def test_kube_version_floor(render, render_fail):
    render(extra=["--kube-version", "1.27.0"])
    assert "incompatible with Kubernetes v1.26" in render_fail(extra=["--kube-version", "1.26.9"])


def test_package_holds_chart_files_only(helm, tmp_path):
    import subprocess
    import tarfile
    subprocess.run([helm, "package", str(CHART), "-d", str(tmp_path)], check=True, capture_output=True)
    (pkg,) = tmp_path.glob("runnel-*.tgz")
    names = tarfile.open(pkg).getnames()
    assert "runnel/values.schema.json" in names
    assert sum(n.startswith("runnel/crds/") for n in names) == len(CRD_NAMES)
    assert not [n for n in names if n.startswith(("runnel/tests/", "runnel/ci/")) or "__pycache__" in n]
