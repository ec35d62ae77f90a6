"""One test group per spec object (public IP, security group, NIC, VM, Key Vault extension, untag): what
``parameters(existing)`` sends for an absent resource, for one that matches, for one that drifted, and
how the kind's ownership, busy and tag rules answer. Pure: SDK models as Azure returns them, no network."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from azure.mgmt.compute import models as compute
from azure.mgmt.network import models as network

from azure_edition_operator.azure import nsg_specs, specs
from azure_edition_operator.azure.driver import InProgress
from azure_edition_operator.azure.errors import AzureRetryableError
from azure_edition_operator.azure.resource_specs import (
    KeyVaultExtensionSpec,
    NetworkInterfaceSpec,
    OwnershipConflict,
    PublicIPSpec,
    SecurityGroupSpec,
    Untag,
    VirtualMachineSpec,
)
from azure_edition_operator.azure.specs import Owner, Ownership
from azure_edition_operator.images import resolve
from tests.unit.test_azure_specs import (
    EXTENDED,
    FULL,
    HOTPATCH,
    LOGIN,
    OWNER,
    SERVERS,
    as_azure_returns,
    identity,
    make_spec,
    observed_nic,
)

IDENT = identity(FULL)
TAGS = specs.desired_tags(FULL, OWNER)
OTHER = Owner("branch-b", "another-fs", "22222222-2222-4222-8222-222222222222")
UNTAGGED: dict[str, str] = {"createdBy": "terraform"}


def returned(model: Any, *, state: str = "Succeeded", tags: dict[str, str] | None = None) -> Any:
    """``model`` as a GET returns it: an id, a provisioning state, and the given tags."""
    body = model.as_dict()
    body["id"] = (
        f"/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/x/{model.__class__.__name__}"
    )
    body.setdefault("properties", {})["provisioningState"] = state
    if tags is not None:
        body["tags"] = tags
    return type(model)(body)


# ----------------------------------------------------------------------------- rules every kind shares


def pip_spec(**kw: Any) -> PublicIPSpec:
    return PublicIPSpec(IDENT.public_ip_name, OWNER, TAGS, identity=IDENT, **kw)


def test_an_absent_resource_is_created_with_our_tags() -> None:
    body = pip_spec(dns_label="fs01").parameters(None)
    assert body.tags == TAGS
    assert body.properties.dns_settings.domain_name_label == "fs01"
    assert pip_spec().changes(None, body) == [f"create publicIPAddresses/{IDENT.public_ip_name}"]


def test_a_resource_that_matches_needs_nothing() -> None:
    spec = pip_spec()
    assert spec.parameters(returned(spec.create())) is None


def test_tags_others_set_are_kept_and_ours_restored_in_one_write() -> None:
    spec = pip_spec()
    drifted = returned(spec.create(), tags={**TAGS, specs.MANAGED_BY_TAG: "someone", "policy": "x"})
    body = spec.parameters(drifted)
    assert body.tags == {**TAGS, "policy": "x"}
    assert spec.changes(drifted, body) == [
        f"publicIPAddresses/{IDENT.public_ip_name}: tags managed-by: someone → {specs.MANAGED_BY_VALUE}"
    ]


def test_another_objects_resource_is_refused_naming_it() -> None:
    theirs = returned(pip_spec().create(), tags=specs.owner_tags(OTHER))
    with pytest.raises(OwnershipConflict) as caught:
        pip_spec().parameters(theirs)
    assert caught.value.ownership is Ownership.FOREIGN and OTHER.ref in caught.value.message


def test_an_unmanaged_resource_is_taken_only_when_adopted() -> None:
    stray = returned(pip_spec().create(), tags=UNTAGGED)
    with pytest.raises(OwnershipConflict) as caught:
        pip_spec().parameters(stray)
    assert caught.value.ownership is Ownership.UNMANAGED
    body = pip_spec(adopt=True).parameters(stray)
    assert body.tags == {**UNTAGGED, **TAGS}


@pytest.mark.parametrize("state", ["Creating", "Updating"])
def test_someone_elses_operation_in_flight_is_waited_for(state: str) -> None:
    busy = returned(pip_spec().create(), state=state, tags=TAGS)
    with pytest.raises(InProgress) as caught:
        pip_spec(poll_seconds=7).parameters(busy)
    assert caught.value.retry_after == 7 and caught.value.record.token == ""


def test_a_resource_being_deleted_is_retried_after_the_deletion() -> None:
    going = returned(pip_spec().create(), state="Deleting", tags=TAGS)
    with pytest.raises(AzureRetryableError, match="being deleted"):
        pip_spec().parameters(going)


# ----------------------------------------------------------------------------- public IP


def test_public_ip_dns_label_is_set_in_place_and_reported() -> None:
    spec = pip_spec(dns_label="fs01")
    before = returned(pip_spec().create())
    body = spec.parameters(before)
    assert body.properties.dns_settings.domain_name_label == "fs01"
    assert before.properties.dns_settings is None, "what was read is never changed"
    assert spec.changes(before, body) == [f"publicIPAddresses/{IDENT.public_ip_name}: dnsLabel None → fs01"]


def test_an_adopted_public_ips_label_is_not_ours_to_set() -> None:
    spec = pip_spec(dns_label="fs01", manage_dns=False)
    assert spec.parameters(returned(pip_spec().create())) is None


# ----------------------------------------------------------------------------- security group

PORTS = nsg_specs.SmbPorts(443, 8443)


def nsg_spec() -> SecurityGroupSpec:
    return SecurityGroupSpec(nsg_specs.nsg_name(IDENT), OWNER, TAGS, identity=IDENT, ports=PORTS)


def test_security_group_admits_both_ports_and_corrects_only_its_rules() -> None:
    created = nsg_spec().create()
    assert {r["name"] for r in created.as_dict()["properties"]["securityRules"]} == set(nsg_specs.OUR_RULES)
    assert nsg_spec().parameters(returned(created)) is None
    body = returned(nsg_specs.nsg_parameters(IDENT, TAGS, nsg_specs.SmbPorts(443, 9443))).as_dict()
    moved = network.NetworkSecurityGroup(body)
    fixed = nsg_spec().parameters(moved)
    assert fixed is not None and nsg_spec().changes(moved, fixed) == [
        f"networkSecurityGroups/{nsg_spec().name}: rules"
    ]


# ----------------------------------------------------------------------------- NICs


def nic_spec(**kw: Any) -> NetworkInterfaceSpec:
    kw.setdefault("subnet_id", SERVERS)
    kw.setdefault("public_ip_id", IDENT.public_ip_id)
    return NetworkInterfaceSpec(IDENT.nic_name, OWNER, TAGS, identity=IDENT, **kw)


def test_nic_is_created_on_its_subnet_with_the_public_ip() -> None:
    body = nic_spec().parameters(None)
    assert specs.nic_subnet_id(body) == SERVERS and specs.nic_public_ip_id(body) == IDENT.public_ip_id
    ext = NetworkInterfaceSpec(IDENT.extended_nic_name, OWNER, TAGS, identity=IDENT, subnet_id=EXTENDED,
                               ip_forwarding=True).parameters(None)  # fmt: skip
    assert ext.properties.enable_ip_forwarding is True and specs.nic_public_ip_id(ext) is None


def test_nic_moved_to_another_subnet_is_sent_back_keeping_what_azure_set() -> None:
    elsewhere = observed_nic(specs.nic_parameters(IDENT, EXTENDED, TAGS, IDENT.public_ip_id))
    body = nic_spec().parameters(elsewhere)
    assert specs.nic_subnet_id(body) == SERVERS and specs.nic_private_ip(body) == "10.0.1.4"
    assert nic_spec().changes(elsewhere, body) == [
        f"networkInterfaces/{IDENT.nic_name}: ipConfiguration (subnet, public IP)"
    ]


def test_nic_gets_our_security_group_and_our_tags_in_one_write() -> None:
    ours = nsg_specs.nsg_id(IDENT)
    drifted = {**TAGS, specs.MANAGED_BY_TAG: "someone", "old": "1"}
    before = observed_nic(specs.nic_parameters(IDENT, SERVERS, drifted, IDENT.public_ip_id))
    body = nic_spec(nsg=ours, our_nsg=ours).parameters(before)
    assert body.network_security_group.id == ours
    assert body.tags == {"old": "1", **TAGS}


def test_a_discovered_nics_differences_are_reported_in_words() -> None:
    theirs = observed_nic(specs.nic_parameters(IDENT, EXTENDED, UNTAGGED, None))
    found = nic_spec().differences(theirs)
    assert len(found) == 2 and "spec.azure.subnetId" in found[0] and "no public IP" in found[1]
    assert nic_spec(public_ip_id=None, subnet_id=EXTENDED).differences(theirs) == []


# ----------------------------------------------------------------------------- VM


def vm_spec(spec: Any = HOTPATCH, **kw: Any) -> VirtualMachineSpec:
    ident = identity(spec)
    tags = specs.desired_tags(spec, OWNER)
    return VirtualMachineSpec(ident.vm_name, OWNER, tags, identity=ident, spec=spec,
                              image=resolve(spec.capabilities), **kw)  # fmt: skip


def test_vm_is_created_only_with_the_login() -> None:
    with pytest.raises(ValueError, match="admin login"):
        vm_spec().parameters(None)
    body = vm_spec(login=LOGIN).parameters(None)
    assert body.os_profile.admin_password == LOGIN.password


def test_vm_that_matches_needs_nothing_and_a_resize_is_one_patch() -> None:
    running = as_azure_returns(vm_spec(login=LOGIN).create())
    assert vm_spec().parameters(running) is None
    bigger = make_spec(capabilities=["Hotpatch"], hotpatch={"rebootSetting": "Never"},
                       azure={"tags": {"env": "prod"}, "vmSize": "Standard_D4as_v5"})  # fmt: skip
    spec = vm_spec(bigger)
    body = spec.parameters(running)
    assert (
        isinstance(body, compute.VirtualMachineUpdate) and body.hardware_profile.vm_size == "Standard_D4as_v5"
    )
    assert spec.changes(running, body) == [
        f"virtualMachines/{spec.name}: vmSize Standard_D2as_v5 → Standard_D4as_v5 (Azure restarts a running VM "
        "to resize it)"
    ]


def test_a_failed_vm_is_repaired_unless_it_is_not_ours_to_resend() -> None:
    failed = as_azure_returns(vm_spec(login=LOGIN).create(), **{"properties.provisioningState": "Failed"})
    assert isinstance(vm_spec().parameters(failed), compute.VirtualMachine)
    assert vm_spec(repair=False).parameters(failed) is None


def test_vm_patch_setting_drift_is_described_with_both_values() -> None:
    running = as_azure_returns(vm_spec(login=LOGIN).create(),
                               **{"properties.osProfile.windowsConfiguration.patchSettings.patchMode": "Manual"})  # fmt: skip
    spec = vm_spec()
    body = spec.parameters(running)
    assert body is not None
    assert spec.changes(running, body) == [
        f"virtualMachines/{spec.name}: patchMode is 'Manual', want 'AutomaticByPlatform'"
    ]


# ----------------------------------------------------------------------------- Key Vault extension

KV = make_spec(capabilities=["SMBOverQUIC"], smbOverQuic={
    "serverName": "fs01.contoso.com",
    "certificate": {"keyVault": {"secretUrl": "https://kv1.vault.azure.net/secrets/fs01"}},
})  # fmt: skip


def extension(settings: dict[str, Any], state: str = "Succeeded") -> compute.VirtualMachineExtension:
    body = specs.key_vault_extension_parameters(KV, "westeurope").as_dict()
    body["properties"].update({"settings": settings, "provisioningState": state})
    return compute.VirtualMachineExtension(body)


def test_key_vault_extension_is_installed_kept_and_corrected() -> None:
    spec = KeyVaultExtensionSpec(KV, "westeurope")
    assert spec.parameters(None).properties.settings == specs.key_vault_extension_settings(KV)
    assert spec.parameters(extension(specs.key_vault_extension_settings(KV))) is None
    assert spec.parameters(extension({"secretsManagementSettings": {}})) is not None
    with pytest.raises(InProgress):
        spec.parameters(extension({}, state="Updating"))
    assert spec.parameters(extension(specs.key_vault_extension_settings(KV), state="Updating")) is None


# ----------------------------------------------------------------------------- Orphan


def test_untag_drops_only_our_tags_per_kind() -> None:
    vm = as_azure_returns(vm_spec(login=LOGIN).create())
    update = Untag("virtualMachines", vm.name).parameters(vm)
    assert isinstance(update, compute.VirtualMachineUpdate) and update.tags == {
        "env": "prod",
        "policy-added": "yes",
    }
    nic = observed_nic(specs.nic_parameters(IDENT, SERVERS, {"keep": "1"}, None))
    assert Untag("networkInterfaces", "n").parameters(nic) is None  # nothing of ours on it
    assert Untag("networkInterfaces", "n").parameters(None) is None


# ----------------------------------------------------------------------------- observe only


def test_the_observe_message_lists_what_would_change_or_says_nothing_would() -> None:
    from azure_edition_operator.azure.provision import ObservedVM

    nothing = ObservedVM("id", "vm", None, None, None, None, None, None, None, specs.PatchView(None, False, None, None, False, None), {}, {})  # fmt: skip
    assert nothing.observe_message() == "observe only: Azure matches the spec; nothing would change"
    drifted = dataclasses.replace(
        nothing, would_change=("virtualMachines/vm: vmSize A → B", "virtualMachines/vm: tags +k=v")
    )
    assert drifted.observe_message() == (
        "observe only: would change: virtualMachines/vm: vmSize A → B; virtualMachines/vm: tags +k=v"
    )


def test_observing_looks_at_an_unmanaged_resource_but_never_at_another_objects() -> None:
    stray = returned(pip_spec().create(), tags=UNTAGGED)
    assert pip_spec(observing=True).parameters(stray).tags == {
        **UNTAGGED,
        **TAGS,
    }  # what taking it would send
    theirs = returned(pip_spec().create(), tags=specs.owner_tags(OTHER))
    with pytest.raises(OwnershipConflict):
        pip_spec(observing=True).parameters(theirs)
