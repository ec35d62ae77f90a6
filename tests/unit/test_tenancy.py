"""tenancy.decide: which namespace may target which subscription, resource group and subnets."""

from __future__ import annotations

import pytest

from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec, TenantPolicy
from azure_edition_operator.tenancy import NotPermitted, decide, parse_policies, selects

SUB_A = "aaaaaaaa-0000-4000-8000-00000000000a"
SUB_B = "bbbbbbbb-0000-4000-8000-00000000000b"


def subnet(sub: str, vnet: str = "vnet-a", name: str = "servers", rg: str = "rg-net") -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{name}"


def policy(name: str, **spec: object) -> TenantPolicy:
    base = {
        "subscriptionIds": [SUB_A],
        "resourceGroups": ["rg-a"],
        "subnetIdPrefixes": [
            f"/subscriptions/{SUB_A}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-a/"
        ],
        "namespaces": ["team-a"],
    }
    return TenantPolicy.model_validate({"metadata": {"name": name}, "spec": {**base, **spec}})


def vm(
    sub: str = SUB_A, rg: str = "rg-a", subnet_id: str | None = None, extended: str | None = None
) -> AzureEditionVMSpec:
    raw: dict = {
        "azure": {
            "subscriptionId": sub,
            "resourceGroup": rg,
            "location": "westeurope",
            "subnetId": subnet_id or subnet(sub),
        },
        "adminCredentialsSecretRef": {"name": "admin"},
    }
    if extended:
        raw["capabilities"] = ["ExtendedNetwork"]
        raw["extendedNetwork"] = {"extendedSubnetId": extended}
    return AzureEditionVMSpec.model_validate(raw)


def test_allowed_target_gets_a_permit_with_the_policys_credential():
    p = policy("team-a", credential={"clientSecret": {"secretName": "tenant-a"}})
    permit = decide([p], "team-a", {}, vm())
    assert permit.credential_name == "client-secret:tenant-a" and permit.policies == ("team-a",)


def test_no_policy_means_nothing_unless_single_tenant():
    with pytest.raises(NotPermitted, match="no TenantPolicy selects namespace team-b"):
        decide([policy("team-a")], "team-b", {}, vm())
    assert decide([], "team-b", {}, vm(), single_tenant=True).credential is None


@pytest.mark.parametrize(
    ("spec", "what"),
    [
        (vm(sub=SUB_B), "subscription"),
        (vm(rg="rg-b"), "resource group"),
        (vm(subnet_id=subnet(SUB_A, vnet="vnet-b")), "subnet"),
        (vm(extended=subnet(SUB_A, vnet="vnet-b", name="ext")), "subnet"),
    ],
)
def test_each_refusal_names_the_policy_and_the_rule(spec, what):
    with pytest.raises(
        NotPermitted, match=f"TenantPolicy team-a does not allow namespace team-a to use {what}"
    ):
        decide([policy("team-a")], "team-a", {}, spec)


def test_comparisons_ignore_case_like_azure():
    spec = vm(
        sub=SUB_A.upper(),
        rg="RG-A",
        subnet_id=subnet(SUB_A.upper(), vnet="VNET-A").replace("subscriptions", "SUBSCRIPTIONS"),
    )
    decide([policy("team-a")], "team-a", {}, spec)


def test_a_prefix_is_not_a_sibling():
    """vnet-a/ must not admit vnet-ab: prefixes are ARM path prefixes, ending in '/'."""
    with pytest.raises(NotPermitted):
        decide([policy("team-a")], "team-a", {}, vm(subnet_id=subnet(SUB_A, vnet="vnet-ab")))


def test_a_prefix_must_end_a_path_segment():
    """Refused at admission (CRD CEL) and by the model alike: 'vnet-a' would admit 'vnet-ab'."""
    vnet = f"/subscriptions/{SUB_A}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-a"
    with pytest.raises(ValueError, match="end each prefix with '/'"):
        policy("team-a", subnetIdPrefixes=[vnet + "/", vnet])


def test_a_whole_subnet_id_with_a_slash_admits_that_subnet_only():
    only = policy("team-a", subnetIdPrefixes=[subnet(SUB_A) + "/"])
    decide([only], "team-a", {}, vm(subnet_id=subnet(SUB_A)))
    decide(
        [only], "team-a", {}, vm(subnet_id=subnet(SUB_A).upper().replace("SUBSCRIPTIONS", "subscriptions"))
    )
    with pytest.raises(NotPermitted):
        decide([only], "team-a", {}, vm(subnet_id=subnet(SUB_A, name="servers2")))


def test_selection_by_labels_and_every_selecting_policy_must_allow():
    by_label = policy("by-label", namespaces=None, namespaceSelector={"matchLabels": {"tenant": "a"}})
    assert selects(by_label, "anything", {"tenant": "a", "x": "y"})
    assert not selects(by_label, "anything", {"tenant": "b"})
    narrower = policy("narrow", resourceGroups=["rg-other"])
    with pytest.raises(NotPermitted, match="TenantPolicy narrow"):
        decide([by_label, narrower], "team-a", {"tenant": "a"}, vm())
    assert decide([by_label, policy("same")], "team-a", {"tenant": "a"}, vm()).policies == (
        "by-label",
        "same",
    )


def test_any_resource_group():
    decide([policy("team-a", resourceGroups=["*"])], "team-a", {}, vm(rg="whatever"))


def test_conflicting_credentials_are_refused_not_guessed():
    one = policy("one", credential={"clientSecret": {"secretName": "a"}})
    two = policy("two", credential={"workloadIdentity": {"clientId": SUB_A, "tenantId": SUB_B}})
    with pytest.raises(NotPermitted, match="different credentials"):
        decide([one, two], "team-a", {}, vm())


def test_invalid_policy_objects_are_skipped():
    good = policy("good").model_dump(mode="json", by_alias=True, exclude_none=True)
    assert [p.metadata.name for p in parse_policies([good, {"metadata": {"name": "bad"}, "spec": {}}])] == [
        "good"
    ]


def test_credential_key_never_holds_a_secret():
    p = policy("x", credential={"workloadIdentity": {"clientId": SUB_A, "tenantId": SUB_B}})
    assert p.spec.credential is not None and p.spec.credential.key == f"workload-identity:{SUB_B}/{SUB_A}"
