"""The Helm chart (charts/azure-edition-operator): `helm lint`, `helm template`, and agreement with
deploy/base — with default values the chart renders the same objects as `kubectl kustomize
deploy/base`, so the two install paths cannot drift. The `e2e` test applies a render with tenants
to a real kube-apiserver (server-side dry run: the TenantPolicy schema, RBAC, admission objects)."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY, REPO, kustomize
from tests.e2e.conftest import wait_established

CHART = REPO / "charts" / "azure-edition-operator"
HELM_TOOLS = REPO / "hack" / "release" / "tools.sh"
SUB = "00000000-0000-0000-0000-000000000000"
CLUSTER_SCOPED = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "TenantPolicy"}
TENANT = {
    "name": "branch-a",
    "namespaces": ["branch-a"],
    "subscriptionIds": [SUB],
    "resourceGroups": ["rg-branch-a"],
    "subnetIdPrefixes": [f"/subscriptions/{SUB}/resourceGroups/rg-branch-a/"],
}


def helm_binary() -> Path:
    """bin/helm, built from the Go module proxy on first use (hack/release/tools.sh, cached)."""
    linked = REPO / "bin" / "helm"  # `make release-tools` links it (under any CACHE_DIR)
    if os.access(linked, os.X_OK):
        return linked
    result = subprocess.run([str(HELM_TOOLS), "helm"], capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.splitlines()[0])


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_binary()


def helm_run(helm: Path, *args: str, values: dict | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["-f", "-"] if values is not None else []
    return subprocess.run(
        [str(helm), *args, *extra],
        capture_output=True, text=True, timeout=120, input=yaml.safe_dump(values) if values is not None else None,
    )  # fmt: skip


def render(helm: Path, values: dict | None = None, *flags: str) -> list[dict[str, Any]]:
    result = helm_run(helm, "template", "azure-edition-operator", str(CHART), "-n", "azure-edition-system",
                      *flags, values=values)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def comparable(obj: dict) -> dict:
    """An object without what legitimately differs between the two renderers: labels (Helm's own
    chart/version labels, kustomize's managed-by), the ConfigMap's content hash and the chart's
    config checksum annotation (two ways of rolling the pod on a change), the image reference."""
    obj = copy.deepcopy(obj)
    meta = obj["metadata"]
    meta.pop("labels", None)
    if obj["kind"] in CLUSTER_SCOPED:  # kustomize's namespace on kinds it does not know; the server drops it
        meta.pop("namespace", None)
    if obj["kind"] == "ConfigMap" and meta["name"].startswith("azure-edition-operator-config"):
        meta["name"] = "azure-edition-operator-config"
    if obj["kind"] == "Deployment":
        template = obj["spec"]["template"]
        template["metadata"]["annotations"].pop("checksum/config", None)
        template["metadata"]["labels"].pop("app.kubernetes.io/part-of", None)
        for container in template["spec"]["containers"]:
            container["image"] = "<image>"
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef", {})
                if ref.get("name", "").startswith("azure-edition-operator-config"):
                    ref["name"] = "azure-edition-operator-config"
    return obj


def test_lint_strict(helm):
    result = helm_run(helm, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    full = {
        "tenants": [TENANT],
        "monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    }
    result = helm_run(helm, "lint", "--strict", str(CHART), values=full)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_values_render_what_deploy_base_renders(helm):
    """Every object of deploy/base, the same in the chart except labels, hash names and the image;
    the Namespace is the one object the chart leaves to `kubectl create namespace` (Helm's release
    namespace)."""
    base = [comparable(o) for o in kustomize(DEPLOY / "base") if o["kind"] != "Namespace"]
    chart = [comparable(o) for o in render(helm, None, "--include-crds")]
    base, chart = {key(o): o for o in base}, {key(o): o for o in chart}
    assert sorted(chart) == sorted(base)
    for k in base:
        assert chart[k] == base[k], k


def test_image_by_digest_wins_over_tag(helm):
    digest = "sha256:" + "ab" * 32
    deployment = next(o for o in render(helm, {"image": {"repository": "r.example/aeo", "digest": digest}})
                      if o["kind"] == "Deployment")  # fmt: skip
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"r.example/aeo@{digest}"
    deployment = next(o for o in render(helm) if o["kind"] == "Deployment")
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == f"azure-edition-operator:{version}"
    )


def test_credentials_modes(helm):
    def pieces(values: dict) -> tuple[dict, dict, dict]:
        objects = render(helm, {"credentials": values})
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        account = next(o for o in objects if o["kind"] == "ServiceAccount")
        config = next(o for o in objects if o["kind"] == "ConfigMap")
        return deployment["spec"]["template"], account, config["data"]

    template, account, data = pieces({"mode": "workload-identity",
                                      "workloadIdentity": {"clientId": "c-id", "tenantId": "t-id"}})  # fmt: skip
    assert template["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert account["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": "c-id",
        "azure.workload.identity/tenant-id": "t-id",
    }
    assert data["AZURE_CREDENTIAL_MODE"] == "workload-identity"

    template, account, data = pieces({"mode": "client-secret", "clientSecret": {"secretName": "sp"}})
    assert {"secretRef": {"name": "sp"}} in template["spec"]["containers"][0]["envFrom"]
    assert "annotations" not in account["metadata"]
    assert data["AZURE_CREDENTIAL_MODE"] == "client-secret"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"credentials": {"mode": "password"}}, 'credentials.mode "password": use one of default, workload-identity, client-secret'),
        ({"credentials": {"mode": "workload-identity"}}, "credentials.workloadIdentity.clientId is required"),
        ({"tenants": [{"name": "t", "subscriptionIds": [SUB]}]}, "tenants[t].namespaces: list the namespaces"),
        ({"tenants": [{**TENANT, "subnetIdPrefixes": None}]}, "tenants[branch-a].subnetIdPrefixes is required"),
        ({"clusterId": "Prod_WEU"}, 'clusterId "Prod_WEU": use 1-63 lower-case letters, digits and \'-\''),
        ({"clusterId": ""}, 'clusterId "": use 1-63'),
    ],
    ids=["bad-mode", "workload-identity-without-client", "tenant-without-namespaces", "tenant-without-subnets",
         "bad-cluster-id", "empty-cluster-id"],
)  # fmt: skip
def test_bad_values_are_refused_with_what_to_set(helm, values, message):
    result = helm_run(helm, "template", "x", str(CHART), values=values)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_cluster_id_reaches_the_operator(helm):
    """clusterId is AEO_CLUSTER_ID (owner tags; docs/install.md#cluster-id), `default` unless set, and
    the chart accepts exactly what the operator's setting does."""
    from azure_edition_operator.config import OperatorConfig

    def cluster_id(values: dict | None) -> str:
        config = next(o for o in render(helm, values) if o["kind"] == "ConfigMap")
        return config["data"]["AEO_CLUSTER_ID"]

    assert cluster_id(None) == "default"
    assert cluster_id({"clusterId": "prod-weu-1"}) == "prod-weu-1"
    longest = cluster_id({"clusterId": "a" * 63})
    assert OperatorConfig(cluster_id=longest).cluster_id == longest  # the operator takes what the chart does


def test_tenants_onboard_their_namespaces_and_get_a_policy(helm):
    objects = render(helm, {"tenants": [{**TENANT, "namespaces": ["branch-a", "branch-b"]}]})
    bindings = [
        o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "azure-edition-operator"
    ]
    tenant_binding = next(o for o in kustomize(DEPLOY / "tenant-namespace") if o["kind"] == "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["branch-a", "branch-b"]
    for binding in bindings:
        assert binding["roleRef"] == tenant_binding["roleRef"]
        assert binding["subjects"] == tenant_binding["subjects"]
    (policy,) = [o for o in objects if o["kind"] == "TenantPolicy"]
    assert policy["metadata"]["name"] == "branch-a" and "namespace" not in policy["metadata"]
    assert policy["spec"] == {k: v for k, v in TENANT.items() if k != "name"} | {
        "namespaces": ["branch-a", "branch-b"]
    }
    # Cluster-wide Secrets instead: no per-namespace bindings, one ClusterRoleBinding.
    objects = render(helm, {"tenants": [TENANT], "tenancy": {"clusterwideSecrets": True}})
    assert not [o for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["namespace"] == "branch-a"]
    assert any(o["kind"] == "ClusterRoleBinding" and o["metadata"]["name"] == "azure-edition-operator-tenant"
               for o in objects)  # fmt: skip


def test_monitoring_labels_and_rules(helm):
    assert not [o for o in render(helm) if o["kind"] in ("ServiceMonitor", "PrometheusRule")]
    release = {"release": "kube-prometheus-stack"}
    objects = render(helm, {"monitoring": {"scrapeNamespace": "prom",
                                           "serviceMonitor": {"enabled": True, "labels": release},
                                           "prometheusRule": {"enabled": True, "labels": release}}})  # fmt: skip
    monitor = next(o for o in objects if o["kind"] == "ServiceMonitor")
    rule = next(o for o in objects if o["kind"] == "PrometheusRule")
    shipped = kustomize(DEPLOY / "monitoring")
    assert (
        monitor["metadata"]["labels"]["release"]
        == rule["metadata"]["labels"]["release"]
        == "kube-prometheus-stack"
    )
    assert monitor["spec"] == next(o for o in shipped if o["kind"] == "ServiceMonitor")["spec"]
    assert rule["spec"] == next(o for o in shipped if o["kind"] == "PrometheusRule")["spec"]
    assert not [
        o for o in objects if o["kind"] == "ClusterRoleBinding" and "metrics-reader" in o["metadata"]["name"]
    ]
    component = kustomize(DEPLOY / "monitoring-kube-prometheus-stack")
    shipped_binding = next(o for o in component if o["kind"] == "ClusterRoleBinding")
    objects = render(helm, {"monitoring": {"readers": shipped_binding["subjects"]}})
    binding = next(
        o for o in objects if o["kind"] == "ClusterRoleBinding" and "metrics-reader" in o["metadata"]["name"]
    )
    assert (binding["roleRef"], binding["subjects"]) == (
        shipped_binding["roleRef"],
        shipped_binding["subjects"],
    )
    objects = render(helm, {"monitoring": {"scrapeNamespace": "prom"}})
    policy = next(o for o in objects if o["kind"] == "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "prom"
    }


@pytest.mark.e2e
def test_render_with_a_tenant_is_accepted_by_the_api_server(helm, kubectl):
    """The chart's objects, TenantPolicy included, pass a real kube-apiserver's validation."""
    objects = render(helm, {"tenants": [TENANT]}, "--include-crds")
    first = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    first.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "azure-edition-system"}})
    first.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "branch-a"}})
    kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(first))
    for crd in (o for o in first if o["kind"] == "CustomResourceDefinition"):
        wait_established(kubectl, crd["metadata"]["name"])
    rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
    # --force-conflicts: the docs walkthrough may have applied deploy/base to the same server.
    result = kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-",
                     input=yaml.safe_dump_all(rest))  # fmt: skip
    assert "tenantpolicy.azureedition.io/branch-a serverside-applied (server dry run)" in result.stdout, (
        result.stdout
    )


def test_install_md_values_render(helm):
    """docs/install.md#helm's values file, as written, renders: the tenant's policy and RoleBinding,
    workload identity, and the ServiceMonitor/PrometheusRule with kube-prometheus-stack's label."""
    text = (REPO / "docs" / "install.md").read_text().split("## Helm\n", 1)[1]
    values = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    objects = render(helm, values)
    assert next(o for o in objects if o["kind"] == "TenantPolicy")["spec"]["namespaces"] == ["branch-a"]
    assert any(o["kind"] == "RoleBinding" and o["metadata"]["namespace"] == "branch-a" for o in objects)
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert (
            next(o for o in objects if o["kind"] == kind)["metadata"]["labels"]["release"]
            == "kube-prometheus-stack"
        )
    install = re.search(r"^helm install .*$", text, re.M)[0]
    assert "-n azure-edition-system" in install and "-f values-branch-a.yaml" in install


def test_lab_values_give_the_pod_what_the_install_yaml_overlay_gives_it(helm, tmp_path):
    """tests/node installs install.yaml with a kustomize overlay and the chart with values, both
    made from the node-e2e overlay's settings (tests/node/support.py): the operator pods they render
    agree on everything those settings touch, so the two one-node installs test the same pod."""
    from tests.node.support import chart_values, install_overlay, lab_settings, wrapper_kustomization

    lab_dir, install_dir = tmp_path / "lab", tmp_path / "install"
    for d in (lab_dir, install_dir):
        d.mkdir()
    overlay = DEPLOY / "overlays" / "node-e2e"
    (lab_dir / "kustomization.yaml").write_text(
        wrapper_kustomization(lab_dir, overlay, ("127.0.0.1", 6443), "https://issuer.example")
    )
    lab = lab_settings(kustomize(lab_dir), kustomize(DEPLOY / "base"))
    assert {e["name"] for e in lab["env"]} >= {"KUBERNETES_SERVICE_HOST", "AZURE_RESOURCE_MANAGER_ENDPOINT"}
    assert {v["name"] for v in lab["volumes"]} == {"armsim-ca", "azure-identity-token"}
    (install_dir / "base.yaml").write_text(yaml.safe_dump_all(kustomize(DEPLOY / "base")))
    (install_dir / "kustomization.yaml").write_text(install_overlay("base.yaml", lab))
    image = "localhost/azure-edition-operator:9.9.9"
    policy = {"metadata": {"name": "p"}, "spec": {k: v for k, v in TENANT.items() if k != "name"}}
    from_chart = render(helm, chart_values(image, lab, policy))
    pods = [
        next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
        for docs in (kustomize(install_dir), from_chart)
    ]
    for pod in pods:
        assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "Default"
    (a, b) = pods
    assert a["volumes"] == b["volumes"]
    ca, cb = a["containers"][0], b["containers"][0]
    for field in (
        "ports",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
        "volumeMounts",
        "imagePullPolicy",
    ):
        assert ca[field] == cb[field], field
    assert sorted(ca["env"], key=lambda e: e["name"]) == sorted(cb["env"], key=lambda e: e["name"])
    assert cb["image"] == image
    assert next(d for d in from_chart if d["kind"] == "TenantPolicy")["spec"]["namespaces"] == ["branch-a"]
