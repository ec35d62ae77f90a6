"""The operator's RBAC, proven against the real API server's authorizer.

Three angles: `kubectl auth can-i --as=<the ServiceAccount>` for what the operator must and must
not do; a full resource × verb matrix through SubjectAccessReviews (with the groups a real
ServiceAccount token carries) in a tenant namespace, one that is not onboarded and the operator's
own, so any broadened rule fails; and the ServiceAccount's own token (the `operator_kubeconfig`
fixture) doing and failing real requests. Secrets and Events are granted per tenant namespace
(deploy/tenant-namespace); the `tenant` fixture onboards the test's namespace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from azure_edition_operator.kube import CredentialsUnavailable, Kube
from tests.deploy.support import DEPLOY, NAMESPACE, SA_GROUPS, SA_USER, find, kustomize
from tests.e2e.conftest import wait_established

pytestmark = pytest.mark.e2e

AEVM = "azureeditionvms.azureedition.io"
TENANT_ROLE = "azure-edition-operator-tenant"


def relative(target: Path, start: Path) -> str:
    return os.path.relpath(target, start)


@pytest.fixture
def tenant(kubectl, operator_rbac, namespace, tmp_path) -> str:
    """The test's namespace onboarded as a platform team does: deploy/tenant-namespace with the
    namespace set by a kustomization of its own. Removed with the namespace."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {"namespace": namespace, "resources": [relative(DEPLOY / "tenant-namespace", tmp_path)]}
        )
    )
    kubectl("apply", "-k", str(tmp_path))
    return namespace


@pytest.fixture
def elsewhere(kubectl, namespace) -> Iterator[str]:
    """A namespace that exists but was never onboarded."""
    name = f"{namespace}-x"[:63]
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


# (verb, resource, extra args). "-A" means cluster-wide; otherwise a namespace is added.
MUST = [
    ("watch", AEVM, "-A"),
    ("list", AEVM, "-A"),
    ("get", AEVM, ""),
    ("patch", AEVM, ""),  # finalizer and kopf's annotations
    ("patch", AEVM, "--subresource=status"),
    ("create", "events", ""),
    ("create", "events.events.k8s.io", ""),
    ("get", "secrets", ""),  # the admin Secret, by name (tenant namespaces only)
    ("list", "customresourcedefinitions.apiextensions.k8s.io", "-A"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", "-A"),
]
MUST_NOT = [
    ("list", "secrets", "-A"),
    ("list", "secrets", ""),
    ("watch", "secrets", ""),
    ("create", "secrets", ""),
    ("update", "secrets", ""),
    ("delete", "secrets", ""),
    ("get", "deployments.apps", ""),
    ("create", "deployments.apps", ""),
    ("patch", "deployments.apps", ""),
    ("delete", "deployments.apps", ""),
    ("create", "pods", ""),
    ("create", "pods/exec", ""),
    ("get", "configmaps", ""),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", "-A"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", "-A"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io", "-A"),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", "-A"),
    ("delete", "namespaces", "-A"),
    ("create", "namespaces", "-A"),
    ("create", AEVM, ""),
    ("delete", AEVM, ""),
    ("update", AEVM, ""),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", "-A"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", "-A"),
    ("bind", "clusterroles.rbac.authorization.k8s.io", "-A"),
    ("impersonate", "serviceaccounts", ""),
    ("create", "serviceaccounts/token", ""),
    ("patch", "clusterkopfpeerings.kopf.dev", "-A"),  # only with the peering overlay
    ("*", "*", "-A"),
]


def can_i(kubectl, verb: str, resource: str, extra: str, namespace: str) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={SA_USER}"]
    if extra == "-A":
        args.append("--all-namespaces")
    else:
        args += ["-n", namespace]
        if extra:
            args.append(extra)
    result = kubectl(*args, check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


@pytest.mark.parametrize(("verb", "resource", "extra"), MUST, ids=lambda v: v or "ns")
def test_operator_can(kubectl, tenant, verb, resource, extra):
    assert can_i(kubectl, verb, resource, extra, tenant), (
        f"the operator must be able to {verb} {resource} {extra}"
    )


@pytest.mark.parametrize(("verb", "resource", "extra"), MUST_NOT, ids=lambda v: v or "ns")
def test_operator_cannot(kubectl, tenant, verb, resource, extra):
    assert not can_i(kubectl, verb, resource, extra, tenant), (
        f"the operator must not {verb} {resource} {extra}"
    )


# What only a tenant namespace grants: nowhere else, and never cluster-wide.
TENANT_ONLY = [
    ("get", "secrets", ""),
    ("create", "events", ""),
    ("create", "events.events.k8s.io", ""),
]


@pytest.mark.parametrize(("verb", "resource", "extra"), TENANT_ONLY, ids=lambda v: v or "ns")
def test_secrets_and_events_only_in_tenant_namespaces(kubectl, tenant, elsewhere, verb, resource, extra):
    assert can_i(kubectl, verb, resource, extra, tenant)
    for namespace in (elsewhere, "default", "kube-system"):
        assert not can_i(kubectl, verb, resource, extra, namespace), f"{verb} {resource} in {namespace}"
    assert not can_i(kubectl, verb, resource, "-A", tenant), f"{verb} {resource} cluster-wide"


# ------------------------------------------------------------------------------------------------
# The whole matrix, in one request per run
# ------------------------------------------------------------------------------------------------

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
# (group, resource, subresource)
RESOURCES = [
    ("azureedition.io", "azureeditionvms", ""),
    ("azureedition.io", "azureeditionvms", "status"),
    ("azureedition.io", "tenantpolicies", ""),
    ("", "events", ""),
    ("events.k8s.io", "events", ""),
    ("", "secrets", ""),
    ("", "configmaps", ""),
    ("", "pods", ""),
    ("", "services", ""),
    ("", "serviceaccounts", ""),
    ("", "namespaces", ""),
    ("apps", "deployments", ""),
    ("apiextensions.k8s.io", "customresourcedefinitions", ""),
    ("coordination.k8s.io", "leases", ""),
    ("rbac.authorization.k8s.io", "clusterroles", ""),
    ("rbac.authorization.k8s.io", "rolebindings", ""),
    ("kopf.dev", "clusterkopfpeerings", ""),
    ("kopf.dev", "kopfpeerings", ""),
    ("authentication.k8s.io", "tokenreviews", ""),
    ("authorization.k8s.io", "subjectaccessreviews", ""),
]
# Exactly what deploy/base grants in a namespace nobody onboarded: the cluster-wide rules (which
# show up in every namespace).
CLUSTER_WIDE = {
    ("azureedition.io", "azureeditionvms", ""): {"get", "list", "watch", "patch"},
    ("azureedition.io", "azureeditionvms", "status"): {"get", "patch"},
    ("apiextensions.k8s.io", "customresourcedefinitions", ""): {"list", "watch"},
    ("azureedition.io", "tenantpolicies", ""): {"get", "list", "watch"},  # tenancy: read-only
    ("", "namespaces", ""): {"get"},  # tenancy: a namespace's labels select its TenantPolicy
    ("authentication.k8s.io", "tokenreviews", ""): {"create"},  # who may read /metrics
    ("authorization.k8s.io", "subjectaccessreviews", ""): {"create"},
}
# A tenant namespace adds the admin Secret (by name) and Events on the objects there.
TENANT = {
    **CLUSTER_WIDE,
    ("", "events", ""): {"create"},
    ("events.k8s.io", "events", ""): {"create"},
    ("", "secrets", ""): {"get"},
}
# The operator's own namespace adds the credential Secrets TenantPolicies name and the state key it
# makes at first start, and the baseline rollout's state ConfigMap it makes at the first rollout (get and
# update only by name, which a review without a name does not see); no Events.
OWN = {**CLUSTER_WIDE, ("", "secrets", ""): {"get", "create"}, ("", "configmaps", ""): {"create"}}


def access_reviews(kubectl, namespace: str) -> dict[tuple[str, str, str, str], bool]:
    """(group, resource, subresource, verb) → allowed, for the ServiceAccount with its real groups."""
    reviews = []
    for group, resource, subresource in RESOURCES:
        for verb in VERBS:
            attributes = {"group": group, "resource": resource, "verb": verb, "namespace": namespace}
            if subresource:
                attributes["subresource"] = subresource
            reviews.append(
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SubjectAccessReview",
                    "spec": {"user": SA_USER, "groups": SA_GROUPS, "resourceAttributes": attributes},
                }
            )
    result = kubectl(
        "create",
        "-f",
        "-",
        "-o",
        "json",
        input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": reviews}),
    )
    decisions = {}
    for review in _json_stream(result.stdout):
        a = review["spec"]["resourceAttributes"]
        decisions[(a.get("group", ""), a["resource"], a.get("subresource", ""), a["verb"])] = review[
            "status"
        ].get("allowed", False)
    assert len(decisions) == len(reviews)
    return decisions


def _json_stream(text: str) -> Iterator[dict]:
    """kubectl prints one JSON document per created object (or a List)."""
    decoder = json.JSONDecoder()
    position = 0
    while position < len(text):
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        document, position = decoder.raw_decode(text, position)
        yield from document["items"] if document.get("kind") == "List" else [document]


def assert_exactly(kubectl, namespace: str, allowed: dict) -> None:
    decisions = access_reviews(kubectl, namespace)
    granted = {key for key, ok in decisions.items() if ok}
    expected = {(g, r, s, v) for (g, r, s), verbs in allowed.items() for v in verbs}
    assert granted == expected, (
        f"{namespace}: unexpected grants: {sorted(granted - expected)}; missing: {sorted(expected - granted)}"
    )


def test_exactly_the_base_permissions(kubectl, tenant, elsewhere):
    assert_exactly(kubectl, tenant, TENANT)
    assert_exactly(kubectl, elsewhere, CLUSTER_WIDE)
    assert_exactly(kubectl, NAMESPACE, OWN)


# ------------------------------------------------------------------------------------------------
# The ServiceAccount's own token
# ------------------------------------------------------------------------------------------------


def test_kubeconfig_authenticates_as_the_service_account(kubectl_as_operator):
    whoami = kubectl_as_operator("auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["status"]["userInfo"]["username"] == SA_USER


def test_token_reads_its_resources_and_a_named_secret_but_cannot_enumerate_secrets(
    kubectl, kubectl_as_operator, crd, tenant
):
    namespace = tenant
    kubectl(
        "create",
        "secret",
        "generic",
        "vm-admin",
        "-n",
        namespace,
        "--from-literal=username=a",
        "--from-literal=password=b",
    )
    assert kubectl_as_operator("get", "azureeditionvms", "--all-namespaces").returncode == 0
    named = kubectl_as_operator(
        "get", "secret", "vm-admin", "-n", namespace, "-o", "jsonpath={.data.username}"
    )
    assert named.returncode == 0 and named.stdout == "YQ==", named.stderr
    listing = kubectl_as_operator("get", "secrets", "-n", namespace)
    assert listing.returncode != 0 and "forbidden" in listing.stderr.lower()
    deployments = kubectl_as_operator("get", "deployments", "-n", NAMESPACE)
    assert deployments.returncode != 0 and "forbidden" in deployments.stderr.lower()


# ------------------------------------------------------------------------------------------------
# Variants: peering, and Secrets per namespace
# ------------------------------------------------------------------------------------------------


def test_peering_rbac_grants_only_its_own_peering_object(kubectl, operator_rbac, namespace):
    objects = kustomize(DEPLOY / "overlays" / "peering")
    for directory in (DEPLOY / "kopf-peering",):
        kubectl("apply", "-k", str(directory))
    wait_established(kubectl, "clusterkopfpeerings.kopf.dev")
    role = find(objects, "ClusterRole", "azure-edition-operator-peering")
    binding = find(objects, "ClusterRoleBinding", "azure-edition-operator-peering")
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all([role, binding]))
    try:
        assert can_i(kubectl, "list", "clusterkopfpeerings.kopf.dev", "-A", namespace)
        assert can_i(kubectl, "watch", "clusterkopfpeerings.kopf.dev", "-A", namespace)
        assert can_i(kubectl, "patch", "clusterkopfpeerings.kopf.dev/azure-edition-operator", "-A", namespace)
        assert not can_i(kubectl, "patch", "clusterkopfpeerings.kopf.dev/another-operator", "-A", namespace)
        assert not can_i(
            kubectl, "delete", "clusterkopfpeerings.kopf.dev/azure-edition-operator", "-A", namespace
        )
        assert not can_i(kubectl, "create", "clusterkopfpeerings.kopf.dev", "-A", namespace)
    finally:
        kubectl("delete", "clusterrolebinding", "azure-edition-operator-peering", "--ignore-not-found")
        kubectl("delete", "clusterrole", "azure-edition-operator-peering", "--ignore-not-found")


def test_clusterwide_secrets_opt_in(kubectl, operator_rbac, elsewhere, tmp_path):
    """deploy/components/clusterwide-secrets: Secrets by name and Events in every namespace, still
    no enumeration; removing it returns to the default."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [relative(DEPLOY / "base", tmp_path)],
                "components": [relative(DEPLOY / "components" / "clusterwide-secrets", tmp_path)],
            }
        )
    )
    binding = find(kustomize(tmp_path), "ClusterRoleBinding", TENANT_ROLE)
    assert not can_i(kubectl, "get", "secrets", "", elsewhere)
    kubectl("apply", "-f", "-", input=yaml.safe_dump(binding))
    try:
        for namespace in (elsewhere, "default"):
            assert_exactly(kubectl, namespace, TENANT)
        assert can_i(kubectl, "get", "secrets", "-A", elsewhere)
        assert not can_i(kubectl, "list", "secrets", "-A", elsewhere)
        assert not can_i(kubectl, "watch", "secrets", "-A", elsewhere)
    finally:
        kubectl("delete", "clusterrolebinding", TENANT_ROLE, "--ignore-not-found")
    assert not can_i(kubectl, "get", "secrets", "", "default")


async def test_operator_reports_a_namespace_that_is_not_onboarded(
    kubectl, operator_kubeconfig, tenant, elsewhere, monkeypatch
):
    """The operator's own client, with the ServiceAccount's token: RBAC's refusal outside tenant
    namespaces becomes AdminCredentialsMissing naming the namespace and the fix, not an API error."""
    for namespace in (tenant, elsewhere):
        kubectl("create", "secret", "generic", "vm-admin", "-n", namespace,
                "--from-literal=username=azureadmin", "--from-literal=password=Demo-Only-Passw0rd!")  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(operator_kubeconfig))
    kube = await Kube.connect()
    try:
        assert (await kube.admin_credentials(tenant, "vm-admin")).username == "azureadmin"
        with pytest.raises(CredentialsUnavailable) as refused:
            await kube.admin_credentials(elsewhere, "vm-admin")
        message = str(refused.value)
        assert f"may not read Secrets in namespace {elsewhere}" in message
        assert "deploy/tenant-namespace" in message and "Passw0rd" not in message
        assert refused.value.reason == "AdminCredentialsMissing"
    finally:
        await kube.close()


QUOTA_KEY = "count/azureeditionvms.azureedition.io"


def test_the_tenant_quota_caps_azureeditionvms_per_namespace(kubectl, cluster, crd, tenant):
    """kube-apiserver's ResourceQuota admission refuses the AzureEditionVM past the shipped quota.

    The usage is the quota controller's to count (kube-controller-manager), which our control plane
    does not run: the test writes the status that controller would write with 499 objects counted,
    and the API server's admission takes it from there (it counts each create itself)."""
    if cluster.runs_controllers:
        pytest.skip("the cluster's quota controller owns the usage; 500 creates would be needed")
    quota = json.loads(
        kubectl("get", "resourcequota", "azure-edition-vms", "-n", tenant, "-o", "json").stdout
    )
    hard = quota["spec"]["hard"][QUOTA_KEY]
    assert hard == "500"
    status = {"status": {"hard": {QUOTA_KEY: hard}, "used": {QUOTA_KEY: str(int(hard) - 1)}}}
    kubectl("patch", "resourcequota", "azure-edition-vms", "-n", tenant, "--subresource=status",
            "--type=merge", "-p", json.dumps(status))  # fmt: skip
    sample = [d for d in yaml.safe_load_all((DEPLOY / "samples" / "plain-core.yaml").read_text())]
    vm = next(d for d in sample if d["kind"] == "AzureEditionVM")
    kubectl("apply", "-n", tenant, "-f", "-", input=yaml.safe_dump(vm))  # the 500th
    vm["metadata"]["name"] = "one-too-many"
    refused = kubectl("create", "-n", tenant, "-f", "-", input=yaml.safe_dump(vm), check=False)
    assert refused.returncode != 0 and "exceeded quota: azure-edition-vms" in refused.stderr, refused.stderr
