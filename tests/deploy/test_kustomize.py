"""deploy/ as kustomize: every overlay builds, says what it should, and the real API server accepts it.

The structural tests need only `kubectl kustomize`; the `e2e` ones apply with `--dry-run=server`
against a real kube-apiserver, which runs admission (Pod Security `restricted` on the namespace
included), schema validation and defaulting without persisting anything.
"""

from __future__ import annotations

import json
import os
import re
import tomllib

import pytest
import yaml

from tests.deploy.support import (
    CLUSTER_SCOPED_KINDS,
    DEPLOY,
    NAMESPACE,
    OVERLAYS,
    REPO,
    config_data,
    find,
    kustomize,
    operator_container,
)
from tests.e2e.conftest import wait_established, without_admission_policies

MONITORING_VARIANTS = [DEPLOY / "monitoring-kube-prometheus-stack", DEPLOY / "monitoring-aks"]
BUILDABLE = [DEPLOY / "base", DEPLOY / "crd", DEPLOY / "kopf-peering", DEPLOY / "monitoring", *MONITORING_VARIANTS,
             *OVERLAYS]  # fmt: skip
CRD_NAME = "azureeditionvms.azureedition.io"
TENANT_ROLE = "azure-edition-operator-tenant"
SAMPLES_NS = re.search(r'^SAMPLES_NS = "([^"]+)"', (REPO / "tests/node/test_node_e2e.py").read_text(), re.M)[
    1
]


def relative(target, start) -> str:
    """kustomize accepts only relative paths to other kustomizations."""
    return os.path.relpath(target, start)


def test_the_four_overlays_exist():
    assert {p.name for p in OVERLAYS} >= {"workload-identity", "client-secret", "simulator-demo", "peering"}


@pytest.mark.parametrize("directory", BUILDABLE, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_builds(directory):
    objects = kustomize(directory)
    assert objects
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED_KINDS and not is_tenant_object(obj):
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"


def is_tenant_binding(obj: dict) -> bool:
    """The RoleBinding deploy/tenant-namespace puts in a tenant namespace (the only object outside
    the operator's namespace)."""
    return obj["kind"] == "RoleBinding" and obj["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": TENANT_ROLE,
    }


TENANT_QUOTA = "azure-edition-vms"
QUOTA_KEY = "count/azureeditionvms.azureedition.io"


def is_tenant_object(obj: dict) -> bool:
    """What deploy/tenant-namespace puts in a tenant namespace: the RoleBinding and the ResourceQuota."""
    return is_tenant_binding(obj) or (
        obj["kind"] == "ResourceQuota" and obj["metadata"]["name"] == TENANT_QUOTA
    )


def tenant_namespaces(objects: list[dict]) -> set[str]:
    return {o["metadata"]["namespace"] for o in objects if is_tenant_binding(o)}


def test_crd_is_the_generated_one_not_an_edited_copy():
    """The CRD deploy/ installs is exactly crds/ (equality of the bytes: tests/deploy/test_generated.py)."""
    built = find(kustomize(DEPLOY / "base"), "CustomResourceDefinition", CRD_NAME)
    generated = yaml.safe_load((REPO / "crds" / f"{CRD_NAME}.yaml").read_text())
    assert built["spec"] == generated["spec"]


@pytest.mark.parametrize("directory", OVERLAYS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_overlay_ships_the_crd_with_gitops_prune_protection(directory):
    """No overlay may drop the annotations that keep Argo CD and Flux from deleting every VM."""
    annotations = find(kustomize(directory), "CustomResourceDefinition", CRD_NAME)["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
    assert annotations["kustomize.toolkit.fluxcd.io/prune"] == "disabled"


def test_base_deployment_is_locked_down():
    objects = kustomize(DEPLOY / "base")
    deployment = find(objects, "Deployment", "azure-edition-operator")
    pod = deployment["spec"]["template"]["spec"]
    container = operator_container(objects)
    security = container["securityContext"]

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # standalone kopf: never two at once
    assert pod["serviceAccountName"] == "azure-edition-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_base_configuration_matches_the_operator_flags():
    objects = kustomize(DEPLOY / "base")
    data = config_data(objects)
    assert data["AEO_HEALTH_ADDRESS"] == "0.0.0.0:8080"
    assert data["AEO_METRICS_ADDRESS"] == "0.0.0.0:9090"
    assert data["AEO_LOG_FORMAT"] == "json"
    assert data["AEO_PEERING"] == ""  # standalone, matching the Recreate strategy
    assert data["AEO_NAMESPACES"] == ""  # cluster-wide
    assert data["AEO_CLUSTER_ID"] == "default"  # an overlay names its cluster (docs/install.md#cluster-id)
    container = operator_container(objects)
    config_name = next(o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap")
    assert {"configMapRef": {"name": config_name}} in container["envFrom"]


def test_metrics_service_selects_the_operator_pod():
    objects = kustomize(DEPLOY / "base")
    service = find(objects, "Service", "azure-edition-operator-metrics")
    pod_labels = find(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    monitor = find(kustomize(DEPLOY / "monitoring"), "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_image_tag_follows_the_project_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert operator_container(kustomize(DEPLOY / "base"))["image"] == f"azure-edition-operator:{version}"


def test_workload_identity_overlay():
    objects = kustomize(DEPLOY / "overlays" / "workload-identity")
    account = find(objects, "ServiceAccount", "azure-edition-operator")
    assert "azure.workload.identity/client-id" in account["metadata"]["annotations"]
    labels = find(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"
    assert config_data(objects)["AZURE_CREDENTIAL_MODE"] == "workload-identity"
    assert not [o for o in objects if o["kind"] == "Secret"]  # nothing secret to store
    assert not [e for e in operator_container(objects)["envFrom"] if "secretRef" in e]


def test_client_secret_overlay_reads_a_secret_it_does_not_ship():
    objects = kustomize(DEPLOY / "overlays" / "client-secret")
    assert config_data(objects)["AZURE_CREDENTIAL_MODE"] == "client-secret"
    env_from = operator_container(objects)["envFrom"]
    assert {"secretRef": {"name": "azure-edition-operator-azure"}} in env_from
    assert any("configMapRef" in e for e in env_from)  # the configuration is still there
    assert not [o for o in objects if o["kind"] == "Secret"]  # never a credential in git


def test_simulator_demo_overlay_points_everything_at_the_simulator():
    objects = kustomize(DEPLOY / "overlays" / "simulator-demo")
    data = config_data(objects)
    assert data["AZURE_RESOURCE_MANAGER_ENDPOINT"].startswith("https://")
    assert data["AZURE_AUTHORITY_HOST"] == data["AZURE_RESOURCE_MANAGER_ENDPOINT"]
    container = operator_container(objects)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "armsim-ca")
    assert data["AZURE_CA_BUNDLE"] == f"{mount['mountPath']}/ca.crt"
    volume = next(
        v
        for v in find(objects, "Deployment", "azure-edition-operator")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "armsim-ca"
    )
    assert volume["configMap"]["name"] == "azure-edition-armsim-ca"
    secret = find(objects, "Secret", "azure-edition-operator-azure")
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in container["envFrom"]


def test_peering_overlay():
    objects = kustomize(DEPLOY / "overlays" / "peering")
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    peering = find(objects, "ClusterKopfPeering")
    assert config_data(objects)["AEO_PEERING"] == peering["metadata"]["name"]
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"} >= {
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }
    role = find(objects, "ClusterRole", "azure-edition-operator-peering")
    named = [r for r in role["rules"] if "patch" in r["verbs"]]
    assert named and all(r.get("resourceNames") == [peering["metadata"]["name"]] for r in named)
    # Equal priorities make kopf pause every replica: each replica draws its own.
    command = " ".join(operator_container(objects)["command"])
    assert "--priority=" in command and "/dev/urandom" in command
    assert find(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_components_compose(tmp_path):
    """A production overlay combines credentials and peering (components, not exclusive overlays)."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [relative(DEPLOY / "base", tmp_path)],
                "components": [
                    relative(DEPLOY / "components" / "workload-identity", tmp_path),
                    relative(DEPLOY / "components" / "peering", tmp_path),
                ],
            }
        )
    )
    objects = kustomize(tmp_path)
    data = config_data(objects)
    assert data["AZURE_CREDENTIAL_MODE"] == "workload-identity"
    assert data["AEO_PEERING"] == "azure-edition-operator"
    deployment = find(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"


def write_kustomization(directory, **fields) -> None:
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(fields))


def test_base_grants_secrets_and_events_in_no_tenant_namespace():
    """Least privilege by default: the tenant role exists, but nothing binds it cluster-wide."""
    objects = kustomize(DEPLOY / "base")
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"] == [
        "azure-edition-operator"
    ]
    cluster_wide = find(objects, "ClusterRole", "azure-edition-operator")
    resources = {r for rule in cluster_wide["rules"] for r in rule["resources"]}
    assert not resources & {"secrets", "events"}, cluster_wide["rules"]
    tenant = find(objects, "ClusterRole", TENANT_ROLE)
    assert tenant["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},  # never list or watch
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    ]
    assert not tenant_namespaces(objects)
    # The operator's own namespace: the credential Secrets TenantPolicies name, the ConfigMaps a team keeps
    # (the Hotpatch calendar, the rollout's rings) read by name, and the rollout's state, read and replaced
    # by name and made once (create cannot name it); nothing else.
    role = find(objects, "Role", "azure-edition-operator-credentials")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]},
        {"apiGroups": [""], "resources": ["configmaps"],
         "resourceNames": ["azure-edition-hotpatch-calendar", "azure-edition-rollout"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["azure-edition-rollout-state"],
         "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    ]  # fmt: skip
    from azure_edition_operator.config import OperatorConfig
    from azure_edition_operator.rollout import STATE_SUFFIX

    fields = OperatorConfig.model_fields
    rollout = fields["rollout_configmap"].default
    assert [fields["hotpatch_calendar_configmap"].default, rollout] == role["rules"][1]["resourceNames"]
    assert [rollout + STATE_SUFFIX] == role["rules"][2]["resourceNames"]  # one name, two places
    binding = find(objects, "RoleBinding", "azure-edition-operator-credentials")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def test_tenant_namespace_template_binds_one_namespace(tmp_path):
    write_kustomization(
        tmp_path, namespace="team-x", resources=[relative(DEPLOY / "tenant-namespace", tmp_path)]
    )
    objects = kustomize(tmp_path)
    # a RoleBinding and a ResourceQuota; never a Namespace (delete -k must not delete one)
    assert sorted(o["kind"] for o in objects) == ["ResourceQuota", "RoleBinding"]
    binding = find(objects, "RoleBinding", "azure-edition-operator")
    assert is_tenant_binding(binding) and binding["metadata"]["namespace"] == "team-x"
    quota = find(objects, "ResourceQuota", TENANT_QUOTA)
    assert quota["metadata"]["namespace"] == "team-x" and quota["spec"] == {"hard": {QUOTA_KEY: "500"}}
    # kustomize's namespace must not move the subject: it is the operator's ServiceAccount.
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "azure-edition-operator", "namespace": NAMESPACE}
    ]


def test_clusterwide_secrets_component_is_the_opt_in(tmp_path):
    write_kustomization(
        tmp_path,
        resources=[relative(DEPLOY / "base", tmp_path)],
        components=[relative(DEPLOY / "components" / "clusterwide-secrets", tmp_path)],
    )
    objects = kustomize(tmp_path)
    binding = find(objects, "ClusterRoleBinding", TENANT_ROLE)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": TENANT_ROLE,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "azure-edition-operator", "namespace": NAMESPACE}
    ]


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        # tests/node applies every sample in SAMPLES_NS; the component brings the walkthrough's branch-a.
        ("node-e2e", {SAMPLES_NS, "branch-a"}),
        ("simulator-demo", {"branch-a"}),
        ("workload-identity", set()),
        ("client-secret", set()),
        ("peering", set()),
    ],
)
def test_overlays_onboard_the_namespaces_their_samples_use(overlay, expected):
    """The demo and node-e2e installs give the operator Secrets and Events where their samples live
    (and create those namespaces, so one `kubectl apply -k` works); production overlays onboard none."""
    objects = kustomize(DEPLOY / "overlays" / overlay)
    assert tenant_namespaces(objects) == expected
    namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    assert expected <= namespaces
    assert not [
        o for o in objects if o["kind"] == "ClusterRoleBinding" and o["roleRef"]["name"] == TENANT_ROLE
    ]


def test_simulator_demo_tenant_namespace_is_the_one_its_tenant_policy_allows():
    policy = yaml.safe_load((DEPLOY / "tenancy" / "simulator-demo.yaml").read_text())
    objects = kustomize(DEPLOY / "overlays" / "simulator-demo")
    assert set(policy["spec"]["namespaces"]) == tenant_namespaces(objects)


# ------------------------------------------------------------------------------------------------
# Against the real API server
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prerequisites(kubectl):
    """What must exist before a server-side dry run of the namespaced objects can pass.

    A dry run persists nothing, so the namespace and the CRDs must already be there (kubectl
    resolves kinds and the API server namespaces before admitting anything). On a fresh cluster a
    plain `kubectl apply -k` creates them in order; docs/install.md says so.
    """
    for directory in (DEPLOY / "crd", DEPLOY / "kopf-peering"):
        kubectl("apply", "-k", str(directory))
    namespaces = {
        o["metadata"]["name"]: o
        for directory in (*OVERLAYS, DEPLOY / "base")  # base last: its azure-edition-system wins
        for o in kustomize(directory)
        if o["kind"] == "Namespace"
    }  # the operator's, and the tenant namespaces the demo overlays create (branch-a, e2e-samples)
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(namespaces.values()))
    for name in (CRD_NAME, "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        wait_established(kubectl, name)


@pytest.mark.e2e
@pytest.mark.parametrize("directory", [DEPLOY / "base", *OVERLAYS], ids=lambda p: str(p.relative_to(DEPLOY)))
def test_server_dry_run_apply(kubectl, prerequisites, directory):
    result = kubectl("apply", "-k", str(directory), "--dry-run=server")
    expected = {f"{o['kind'].lower()}" for o in kustomize(directory)}
    applied = {line.split("/")[0].split(".")[0] for line in result.stdout.splitlines() if line.strip()}
    assert expected <= applied, result.stdout
    assert all("(server dry run)" in line for line in result.stdout.splitlines() if line.strip())
    if directory.name == "node-e2e":
        # The test overlay for hostNetwork nodes relaxes `enforce` on purpose and keeps `warn`
        # restricted: exactly these two violations are announced, nothing else.
        warnings = [line for line in result.stderr.splitlines() if "Warning" in line]
        assert warnings and all(
            'host namespaces (hostNetwork=true), probe or lifecycle host (container "' in w for w in warnings
        ), result.stderr
        return
    assert "would violate PodSecurity" not in result.stderr, result.stderr
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.e2e
def test_real_apply_of_base_is_idempotent(cluster, kubectl, prerequisites):
    """Apply for real (local control plane only: it has no nodes, so no pod runs) and again: unchanged."""
    if cluster.local is None:
        pytest.skip("applies a Deployment for real; only on the throwaway local control plane")
    try:
        kubectl("apply", "-k", str(DEPLOY / "base"))
        again = kubectl("apply", "-k", str(DEPLOY / "base"))
    finally:
        without_admission_policies(kubectl)  # base's, cluster-wide
    changed = [line for line in again.stdout.splitlines() if not line.endswith(" unchanged")]
    assert not changed, again.stdout
    stored = json.loads(
        kubectl("get", "deployment", "azure-edition-operator", "-n", NAMESPACE, "-o", "json").stdout
    )
    assert (
        stored["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"]
        is True
    )


def test_the_demo_simulator_admits_only_the_operator_pod():
    """The in-cluster simulator mints tokens and shows the demo secret: only the operator's pod reaches it
    (and the control API answers loopback or a token: tests/integration/test_simulator_isolation.py)."""
    objects = kustomize(DEPLOY / "overlays" / "simulator-demo")
    policy = find(objects, "NetworkPolicy", "azure-edition-armsim")
    armsim = find(objects, "Deployment", "azure-edition-armsim")["spec"]["template"]
    operator = find(objects, "Deployment", "azure-edition-operator")["spec"]["template"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= armsim["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"}  # this namespace only, the operator's pods only
    assert source["podSelector"]["matchLabels"].items() <= operator["metadata"]["labels"].items()
    assert rule["ports"] == [{"port": "https", "protocol": "TCP"}]
    assert {p["name"] for p in armsim["spec"]["containers"][0]["ports"]} == {"https"}


def test_networkpolicy_admits_metrics_only_from_monitoring():
    """/metrics protection (docs/security.md): the port is reachable only from the monitoring namespace."""
    policy = yaml.safe_load((REPO / "deploy" / "base" / "networkpolicy.yaml").read_text())
    deployment = yaml.safe_load((REPO / "deploy" / "base" / "deployment.yaml").read_text())
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    rules = {rule["ports"][0]["port"]: rule.get("from") for rule in policy["spec"]["ingress"]}
    assert rules["metrics"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    assert set(rules) == {"metrics", "health"}
    ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert set(rules) <= ports


# ------------------------------------------------------------------------------------------------
# Monitoring that lands: kube-prometheus-stack's selectors, AKS managed Prometheus
# ------------------------------------------------------------------------------------------------

METRICS_READER = "azure-edition-operator-metrics-reader"


def _scrapes_with_its_token(endpoint: dict) -> None:
    assert endpoint["scheme"] == "https" and endpoint["port"] == "metrics" and endpoint["honorLabels"] is True
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_servicemonitor_scrapes_https_with_prometheus_token():
    monitor = find(kustomize(DEPLOY / "monitoring"), "ServiceMonitor")
    _scrapes_with_its_token(monitor["spec"]["endpoints"][0])
    reader = find(kustomize(DEPLOY / "base"), "ClusterRole", METRICS_READER)
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]


def test_kube_prometheus_stack_variant_carries_the_release_label_and_binds_its_prometheus():
    """kube-prometheus-stack's defaults select ServiceMonitors and PrometheusRules by `release`."""
    plain = kustomize(DEPLOY / "monitoring")
    objects = kustomize(DEPLOY / "monitoring-kube-prometheus-stack")
    for kind in ("ServiceMonitor", "PrometheusRule"):
        labels = find(objects, kind)["metadata"]["labels"]
        assert labels["release"] == "kube-prometheus-stack", kind
        assert "release" not in find(plain, kind)["metadata"]["labels"]
    assert find(objects, "PrometheusRule")["spec"] == find(plain, "PrometheusRule")["spec"]
    binding = find(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == METRICS_READER
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kube-prometheus-stack-prometheus", "namespace": "monitoring"}
    ]
    assert (
        "release" not in find(objects, "ConfigMap", "azure-edition-operator-dashboard")["metadata"]["labels"]
    )


def test_aks_variant_is_the_add_ons_servicemonitor_binding_and_networkpolicy():
    objects = kustomize(DEPLOY / "monitoring-aks")
    assert {o["kind"] for o in objects} == {"ServiceMonitor", "ClusterRoleBinding", "NetworkPolicy"}
    monitor = find(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "azmonitoring.coreos.com/v1"  # the add-on ignores monitoring.coreos.com
    plain = find(kustomize(DEPLOY / "monitoring"), "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == plain["spec"]["endpoints"]
    assert monitor["spec"]["selector"] == plain["spec"]["selector"]
    assert {"labelLimit", "labelNameLengthLimit", "labelValueLengthLimit"} <= set(monitor["spec"])
    binding = find(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == METRICS_READER
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "ama-metrics-serviceaccount", "namespace": "kube-system"}
    ]
    policy = find(objects, "NetworkPolicy")
    base = kustomize(DEPLOY / "base")
    pod_labels = find(base, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"rsName": "ama-metrics"}},
                }
            ],
            "ports": [{"port": "metrics", "protocol": "TCP"}],
        }
    ]


def _with_component(tmp_path, resource, component) -> list[dict]:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {"resources": [relative(resource, tmp_path)], "components": [relative(component, tmp_path)]}
        )
    )
    return kustomize(tmp_path)


def test_cert_manager_certificate_is_mounted_where_the_operator_reads_it(tmp_path):
    """deploy/components/metrics-cert-manager: the Secret's tls.crt/tls.key at AEO_METRICS_CERT_DIR."""
    objects = _with_component(tmp_path, DEPLOY / "base", DEPLOY / "components" / "metrics-cert-manager")
    cert_dir = config_data(objects)["AEO_METRICS_CERT_DIR"]
    assert config_data(objects)["AEO_METRICS_SECURE"] == "true"
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "metrics-tls"]
    assert mount["mountPath"] == cert_dir and mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == "metrics-tls"]
    certificate = find(objects, "Certificate")
    assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
    assert {i["path"] for i in volume["secret"]["items"]} == {"tls.crt", "tls.key"}
    service = find(objects, "Service", "azure-edition-operator-metrics")
    assert f"{service['metadata']['name']}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    # The ServiceMonitor's verifying variant names the same Secret and DNS name.
    monitoring = tmp_path / "monitoring"
    monitoring.mkdir()
    monitor = find(_with_component(monitoring, DEPLOY / "monitoring", DEPLOY / "components" / "metrics-tls-verify"),
                   "ServiceMonitor")  # fmt: skip
    tls = monitor["spec"]["endpoints"][0]["tlsConfig"]
    assert (
        tls["ca"]["secret"]["name"] == certificate["spec"]["secretName"] and "insecureSkipVerify" not in tls
    )
    assert tls["serverName"] in certificate["spec"]["dnsNames"]


def test_an_overlay_sets_the_cluster_id_as_install_md_shows(tmp_path):
    """docs/install.md#cluster-id's configMapGenerator merge, over deploy/base: the one value changes,
    the rest of the configuration stays, and the Deployment follows the renamed ConfigMap."""
    import re

    import yaml

    text = (REPO / "docs" / "install.md").read_text()
    block = re.search(
        r"```yaml\n# my-cluster/kustomization.yaml \(next to resources/components\)\n(.*?)```", text, re.S
    )
    overlay = yaml.safe_load(block.group(1))
    overlay["resources"] = [os.path.relpath(DEPLOY / "base", tmp_path)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    objects = kustomize(tmp_path)
    data = config_data(objects)
    assert data["AEO_CLUSTER_ID"] == "prod-weu-1"
    assert data["AEO_LOG_FORMAT"] == "json"
    config_name = next(o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap")
    assert {"configMapRef": {"name": config_name}} in operator_container(objects)["envFrom"]
