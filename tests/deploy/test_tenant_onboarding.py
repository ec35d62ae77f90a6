"""The first tenant namespace, as docs/install.md onboards it: deploy/tenant-namespace-with-policy
(the operator's RoleBinding and a TenantPolicy) on a real kube-apiserver with the admission policies,
and the API server's refusals that docs/troubleshooting.md explains, by their exact text."""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest
import yaml

from tests.deploy.support import DEPLOY, REPO, kustomize
from tests.e2e.conftest import wait_established, without_admission_policies

VARIANT = DEPLOY / "tenant-namespace-with-policy"
TROUBLESHOOTING = (REPO / "docs" / "troubleshooting.md").read_text()
NO_POLICY_HEADING = "no params found for policy binding"


def test_the_variant_onboards_its_namespace_and_carries_a_policy():
    objects = kustomize(VARIANT)
    binding = next(o for o in objects if o["kind"] == "RoleBinding")
    policy = next(o for o in objects if o["kind"] == "TenantPolicy")
    namespace = yaml.safe_load((VARIANT / "kustomization.yaml").read_text())["namespace"]
    assert binding["metadata"]["namespace"] == namespace
    template = next(o for o in kustomize(DEPLOY / "tenant-namespace") if o["kind"] == "RoleBinding")
    assert binding["roleRef"] == template["roleRef"]
    assert policy["spec"]["namespaces"] == [namespace]


def test_security_md_shows_the_variants_policy():
    """docs/security.md's example is the shipped file (comments aside), so the two cannot drift."""
    text = (REPO / "docs" / "security.md").read_text()
    section = text.split("### A TenantPolicy", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)[1]
    assert yaml.safe_load(example) == yaml.safe_load((VARIANT / "tenantpolicy.yaml").read_text())


def test_troubleshooting_has_an_entry_for_the_api_servers_no_policy_text():
    assert f"### {NO_POLICY_HEADING}\n" in TROUBLESHOOTING


@pytest.fixture(scope="module")
def admission(kubectl):
    """CRDs and admission policies of deploy/ applied to the session's API server."""
    for directory in ("crd", "admission"):
        kubectl("apply", "--server-side", "--force-conflicts", "-k", str(DEPLOY / directory))
    for name in ("azureeditionvms.azureedition.io", "tenantpolicies.azureedition.io"):
        wait_established(kubectl, name)
    yield
    without_admission_policies(kubectl)


def sample(namespace: str, resource_group: str | None = None) -> str:
    docs = yaml.safe_load_all((DEPLOY / "samples" / "hotpatch.yaml").read_text())
    vm = next(d for d in docs if d and d["kind"] == "AzureEditionVM")
    vm["metadata"]["namespace"] = namespace
    vm["metadata"]["name"] = f"onboarding-{uuid.uuid4().hex[:8]}"  # not the walkthrough's live `hotpatch`
    if resource_group:
        vm["spec"]["azure"]["resourceGroup"] = resource_group
    return yaml.safe_dump(vm)


@pytest.mark.e2e
def test_without_any_policy_the_api_servers_text_is_the_one_troubleshooting_explains(kubectl, admission):
    """No TenantPolicy at all: the API server's own text (a ValidatingAdmissionPolicy cannot word it).
    A binding of our tenancy policy of its own, selecting TenantPolicies by a label none has and
    matching one fresh namespace only, makes the case without touching other tests' policies."""
    namespace = f"no-policy-{uuid.uuid4().hex[:8]}"
    label = f"test.azureedition.io/{namespace}"
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": f"azureedition.io-tenancy-{namespace}"},
        "spec": {
            "policyName": "azureedition.io-tenancy",
            "validationActions": ["Deny"],
            "paramRef": {"selector": {"matchLabels": {label: "x"}}, "parameterNotFoundAction": "Deny"},
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    kubectl("create", "namespace", namespace)
    kubectl("apply", "-f", "-", input=yaml.safe_dump(binding))
    try:
        for _ in range(60):  # the binding reaches the admission plugin's informer within a second or so
            result = kubectl("apply", "--dry-run=server", "-f", "-", input=sample(namespace), check=False)
            if result.returncode:
                break
        assert result.returncode != 0, result.stdout
        assert NO_POLICY_HEADING in result.stderr, result.stderr
        quoted = re.search(r"### no params found for policy binding\n\n```\n(.*?)```", TROUBLESHOOTING, re.S)[
            1
        ]
        assert (
            "failed to configure binding: no params found for policy binding with\n`Deny` parameterNotFoundAction"
            in quoted
        )
        assert (
            "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
            in result.stderr
        )
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", binding["metadata"]["name"], check=False)


@pytest.mark.e2e
def test_onboarding_with_the_variant_admits_the_sample_and_refuses_other_targets(kubectl, admission):
    """`kubectl apply -k` of the variant as docs/install.md says; then the hotpatch sample is admitted
    in the namespace and a resource group the policy does not list is refused with the text
    docs/troubleshooting.md names."""
    namespace = yaml.safe_load((VARIANT / "kustomization.yaml").read_text())["namespace"]
    kubectl("apply", "-f", "-", input=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": namespace}}))  # fmt: skip
    kubectl("apply", "-k", str(VARIANT))
    try:
        policy = yaml.safe_load(kubectl("get", "tenantpolicy", "branch-a", "-o", "yaml").stdout)
        assert "namespace" not in policy["metadata"]  # cluster-scoped: kustomize's namespace is dropped
        kubectl("-n", namespace, "get", "rolebinding", "azure-edition-operator")
        accepted = kubectl("apply", "--dry-run=server", "-f", "-", input=sample(namespace))
        assert "(server dry run)" in accepted.stdout
        other = "rg-another-team"
        refused = kubectl("apply", "--dry-run=server", "-f", "-", input=sample(namespace, other), check=False)
        assert refused.returncode != 0
        assert (
            f"TenantPolicy branch-a does not allow namespace {namespace} to use resource group {other}"
            in refused.stderr
        )
        assert "### does not allow namespace\n" in TROUBLESHOOTING
    finally:
        kubectl("delete", "-k", str(VARIANT), "--ignore-not-found", check=False)


@pytest.mark.e2e
def test_the_api_server_is_the_version_this_run_is_for(kubectl, cluster):
    """`make admission-lowest` runs these tests on the lowest supported minor: prove it is that server
    (AZURE_EDITION_EXPECT_SERVER_VERSION); otherwise our control plane is the pinned current one."""
    expected = os.environ.get("AZURE_EDITION_EXPECT_SERVER_VERSION")
    if not expected:
        if cluster.local is None:
            return  # someone else's cluster (KUBECONFIG): any supported version is fine
        env = (REPO / "hack" / "controlplane" / "versions.env").read_text()
        expected = re.search(r"^KUBERNETES_VERSION=(\S+)$", env, re.M)[1]
    served = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    assert served == expected
