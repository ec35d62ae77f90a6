"""Spec builders: names, tags, ownership, the SDK models to send, and the owned-field diffs."""

from __future__ import annotations

import re

import pytest
from azure.mgmt.compute import models as compute
from azure.mgmt.network import models as network

from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec
from azure_edition_operator.azure import specs
from azure_edition_operator.azure.specs import (
    CLUSTER_TAG,
    MANAGED_BY_TAG,
    OWNER_TAG,
    OWNER_UID_TAG,
    AdminCredentials,
    NicChange,
    Owner,
    Ownership,
)
from azure_edition_operator.images import resolve

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-branch-a"
VNET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet-branch-a"
SERVERS = f"{VNET}/subnets/servers"
EXTENDED = f"{VNET}/subnets/extended"
OWNER = Owner("branch-a", "branch-fs-01", "6f1c2f4e-0000-4000-8000-000000000001")
LOGIN = AdminCredentials("azureadmin", "S3cret-Passw0rd!")

# ARM VM names: 1-64 chars, letters/digits/hyphens here, no leading/trailing hyphen, no period (Windows).
VM_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")
# Windows computer names: 1-15 chars, letters/digits/hyphens, not all digits.
COMPUTER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,14}$")


def make_spec(**overrides: object) -> AzureEditionVMSpec:
    azure = {"subscriptionId": SUB, "resourceGroup": RG, "location": "westeurope", "subnetId": SERVERS}
    azure.update(overrides.pop("azure", {}))  # type: ignore[arg-type]
    raw = {"capabilities": [], "azure": azure, "adminCredentialsSecretRef": {"name": "admin"}, **overrides}
    return AzureEditionVMSpec.model_validate(raw)


HOTPATCH = make_spec(
    capabilities=["Hotpatch"], hotpatch={"rebootSetting": "Never"}, azure={"tags": {"env": "prod"}}
)
FULL = make_spec(
    capabilities=["Hotpatch", "SMBOverQUIC", "ExtendedNetwork"],
    azure={"publicIP": True, "tags": {"costCenter": "42"}},
    smbOverQuic={"serverName": "fs01.branch-a.contoso.com"},
    extendedNetwork={"extendedSubnetId": EXTENDED},
)


def identity(spec: AzureEditionVMSpec = HOTPATCH, owner: Owner = OWNER) -> specs.VMIdentity:
    return specs.vm_identity(owner, spec.azure)


def desired_vm(spec: AzureEditionVMSpec = HOTPATCH) -> compute.VirtualMachine:
    return specs.vm_parameters(identity(spec), spec, resolve(spec.capabilities), LOGIN)


def as_azure_returns(vm: compute.VirtualMachine, **changes: object) -> compute.VirtualMachine:
    """What a GET gives back for ``vm``: read-only fields added, the password gone, policy tags added."""
    body = vm.as_dict()
    body["id"] = identity().vm_id
    body["name"] = identity().vm_name
    body["tags"] = {**body["tags"], "policy-added": "yes"}
    props = body["properties"]
    props["provisioningState"] = "Succeeded"
    props["vmId"] = "0f47b100-583c-48e3-a4c0-aefc2c9bbcc1"
    props["osProfile"].pop("adminPassword")
    props["osProfile"]["secrets"] = []
    props["storageProfile"]["imageReference"]["exactVersion"] = "20348.3328.250306"
    props["storageProfile"]["osDisk"]["diskSizeGB"] = 127
    for path, value in changes.items():
        target = body
        keys = path.split(".")
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return compute.VirtualMachine(body)


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("branch-a", "branch-fs-01"),
        ("a", "b"),
        ("team.x", "fs.01.example.com"),  # periods are not allowed in Windows VM names
        ("n" * 63, "x" * 253),  # the longest Kubernetes allows
        ("ns", "9-starts-with-digit"),
        ("ns", "ends-with-hyphen-"),
    ],
)
def test_vm_names_are_valid_arm_names_and_stable(namespace: str, name: str) -> None:
    owner = Owner(namespace, name, "uid")
    vm = specs.vm_name_for(owner)
    assert VM_NAME.match(vm), vm
    assert len(vm) <= 64
    assert vm == specs.vm_name_for(Owner(namespace, name, "another-uid")), "names must not depend on the uid"
    ident = specs.vm_identity(owner, HOTPATCH.azure)
    for derived in (ident.nic_name, ident.extended_nic_name, ident.public_ip_name, ident.os_disk_name):
        assert len(derived) <= 80 and re.match(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$", derived), derived


def test_vm_name_is_readable_and_hashed() -> None:
    assert re.fullmatch(r"branch-a-branch-fs-01-[0-9a-f]{8}", specs.vm_name_for(OWNER))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (Owner("team-a", "fs", "u"), Owner("team-b", "fs", "u")),  # same name, other namespace
        (Owner("a-b", "c", "u"), Owner("a", "b-c", "u")),  # same slug "a-b-c"
        (Owner("ns", "x" * 100 + "1", "u"), Owner("ns", "x" * 100 + "2", "u")),  # same truncated prefix
    ],
)
def test_different_objects_never_share_names(a: Owner, b: Owner) -> None:
    assert specs.vm_name_for(a) != specs.vm_name_for(b)
    assert specs.computer_name_for(a) != specs.computer_name_for(b)


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("branch-fs-01", "branch-fs"),
        ("fs", "fs"),
        ("12345", "w12345"),  # all digits is not a valid computer name: prefixed
        ("0-fs", "w0-fs"),
        ("file-server-in-branch-office", "file-serv"),
        ("a.b.c", "a-b-c"),
    ],
)
def test_computer_names(name: str, prefix: str) -> None:
    computer = specs.computer_name_for(Owner("ns", name, "uid"))
    assert len(computer) <= 15
    assert COMPUTER_NAME.match(computer), computer
    assert not computer.isdigit()
    assert re.fullmatch(re.escape(prefix) + r"-[0-9a-f]{5}", computer), computer
    assert computer == specs.computer_name_for(Owner("ns", name, "other-uid"))


def test_identity_ids() -> None:
    ident = identity()
    base = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers"
    assert ident.vm_id == f"{base}/Microsoft.Compute/virtualMachines/{ident.vm_name}"
    assert ident.nic_id == f"{base}/Microsoft.Network/networkInterfaces/{ident.vm_name}-nic"
    assert ident.extended_nic_id == f"{base}/Microsoft.Network/networkInterfaces/{ident.vm_name}-nic-ext"
    assert ident.public_ip_id == f"{base}/Microsoft.Network/publicIPAddresses/{ident.vm_name}-pip"


# ----------------------------------------------------------------------------- tags and ownership


def test_desired_tags_are_the_users_plus_ours() -> None:
    assert specs.desired_tags(HOTPATCH, OWNER) == {
        "env": "prod",
        OWNER_TAG: "branch-a/branch-fs-01",
        CLUSTER_TAG: "default",
        MANAGED_BY_TAG: "azure-edition-operator",
    }
    assert OWNER.uid not in specs.desired_tags(HOTPATCH, OWNER).values(), "the uid never names the owner"


def test_user_cannot_override_owner_tags() -> None:
    spec = make_spec(
        azure={
            "tags": {"AzureEdition.io_Owner": "forged", "azureedition.io_CLUSTER": "x", "managed-by": "me"}
        }
    )
    tags = specs.desired_tags(spec, OWNER)
    assert tags == specs.owner_tags(OWNER)


def test_tag_names_are_valid_in_azure() -> None:
    # Azure refuses < > % & \ ? / in tag names.
    for key in specs.OUR_TAG_KEYS:
        assert not set(key) & set("<>%&\\?/"), key


REBUILT = Owner(OWNER.namespace, OWNER.name, "a-new-uid-after-a-rebuild")  # same cluster id, new uid
ELSEWHERE = Owner(OWNER.namespace, OWNER.name, OWNER.uid, cluster="west")
LEGACY = {OWNER_UID_TAG: "the-old-uid", OWNER_TAG: OWNER.ref, MANAGED_BY_TAG: "azure-edition-operator"}


@pytest.mark.parametrize(
    ("tags", "owner", "expected"),
    [
        (specs.owner_tags(OWNER), OWNER, Ownership.OURS),
        (specs.owner_tags(OWNER), REBUILT, Ownership.OURS),  # a cluster rebuilt from Git: same object
        (
            {k.upper(): v for k, v in specs.owner_tags(OWNER).items()},
            OWNER,
            Ownership.OURS,
        ),  # names: any case
        (specs.owner_tags(Owner("branch-a", "branch-fs-02", "u")), OWNER, Ownership.FOREIGN),
        (specs.owner_tags(Owner("branch-b", "branch-fs-01", "u")), OWNER, Ownership.FOREIGN),
        (specs.owner_tags(Owner("branch-b", "x", "u", cluster="west")), OWNER, Ownership.FOREIGN),
        (specs.owner_tags(OWNER), ELSEWHERE, Ownership.OTHER_CLUSTER),  # same namespace/name, other cluster
        (specs.owner_tags(ELSEWHERE), OWNER, Ownership.OTHER_CLUSTER),
        (LEGACY, OWNER, Ownership.OURS_LEGACY),  # an earlier version's tags: ours by namespace/name
        (LEGACY, ELSEWHERE, Ownership.OURS_LEGACY),  # no cluster tag yet: whichever cluster comes first
        ({**LEGACY, OWNER_TAG: "branch-a/other"}, OWNER, Ownership.FOREIGN),
        ({OWNER_UID_TAG: OWNER.uid}, OWNER, Ownership.FOREIGN),  # a uid alone names no namespace/name
        ({MANAGED_BY_TAG: "azure-edition-operator"}, OWNER, Ownership.UNMANAGED),
        ({"env": "prod"}, OWNER, Ownership.UNMANAGED),
        ({}, OWNER, Ownership.UNMANAGED),
        (None, OWNER, Ownership.UNMANAGED),
    ],
)
def test_ownership(tags: dict[str, str] | None, owner: Owner, expected: Ownership) -> None:
    assert specs.ownership(tags, owner) is expected


def test_conflict_messages_name_the_owner_and_say_what_to_do() -> None:
    foreign = specs.ownership_conflict_message(
        "Virtual machine", "vm1", specs.owner_tags(Owner("other", "thing", "u", cluster="east")), OWNER
    )
    assert "AzureEditionVM other/thing on cluster 'east'" in foreign and "Delete" in foreign
    elsewhere = specs.ownership_conflict_message("Virtual machine", "vm1", specs.owner_tags(ELSEWHERE), OWNER)
    assert "AzureEditionVM branch-a/branch-fs-01 on cluster 'west'" in elsewhere
    assert "runs as cluster 'default'" in elsewhere and "AEO_CLUSTER_ID to 'west'" in elsewhere
    unmanaged = specs.ownership_conflict_message("Virtual machine", "vm1", {}, OWNER)
    assert "spec.azure.adopt: true" in unmanaged


def test_legacy_tags_are_retagged_once_in_the_same_write() -> None:
    """The uid tag goes and the cluster tag comes in one tag set; once done, nothing more to send."""
    desired = specs.owner_tags(OWNER)
    merged = specs.merged_tags(desired, {**LEGACY, "env": "prod"})
    assert merged == {"env": "prod", **desired}
    assert specs.merged_tags(desired, merged) is None
    assert specs.merged_tags(desired, {**desired, OWNER_UID_TAG.upper(): "x"}) == desired  # any case


@pytest.mark.parametrize(
    ("desired", "observed", "expected"),
    [
        ({"a": "1"}, {"a": "1"}, None),
        ({"a": "1"}, {"a": "1", "policy": "x"}, None),  # foreign tags are left alone
        ({"a": "1"}, {"A": "1"}, None),  # names compare case-insensitively
        ({"a": "1"}, {"a": "2", "policy": "x"}, {"policy": "x", "a": "1"}),
        ({"a": "1"}, {"A": "2"}, {"a": "1"}),  # a case variant is replaced, not duplicated
        ({"a": "1"}, None, {"a": "1"}),
        ({"a": "1"}, {"a": "1 "}, {"a": "1"}),  # values compare exactly
    ],
)
def test_merged_tags(desired: dict[str, str], observed: dict[str, str] | None, expected: dict | None) -> None:
    assert specs.merged_tags(desired, observed) == expected


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({**specs.owner_tags(OWNER), "env": "prod"}, {"env": "prod"}),
        (specs.owner_tags(OWNER), {}),
        (LEGACY, {}),  # an earlier version's tags are ours too
        ({"env": "prod"}, None),
        (None, None),
    ],
)
def test_without_our_tags(tags: dict[str, str] | None, expected: dict[str, str] | None) -> None:
    assert specs.without_our_tags(tags) == expected


# ----------------------------------------------------------------------------- network models


def test_public_ip_is_standard_static_and_goes_with_the_vm() -> None:
    pip = specs.public_ip_parameters(identity(FULL), {"k": "v"})
    assert pip.as_dict() == {
        "location": "westeurope",
        "tags": {"k": "v"},
        "sku": {"name": "Standard", "tier": "Regional"},
        "properties": {
            "publicIPAllocationMethod": "Static",
            "publicIPAddressVersion": "IPv4",
            "deleteOption": "Delete",
        },
    }


def test_nic_with_and_without_public_ip() -> None:
    ident = identity(FULL)
    with_pip = specs.nic_parameters(ident, SERVERS, {"k": "v"}, ident.public_ip_id).as_dict()
    ip = with_pip["properties"]["ipConfigurations"][0]
    assert ip["name"] == "ipconfig1"
    assert ip["properties"] == {
        "subnet": {"id": SERVERS},
        "privateIPAllocationMethod": "Dynamic",
        "privateIPAddressVersion": "IPv4",
        "primary": True,
        "publicIPAddress": {"id": ident.public_ip_id},
    }
    without = specs.nic_parameters(ident, EXTENDED, {}, None).as_dict()
    assert "publicIPAddress" not in without["properties"]["ipConfigurations"][0]["properties"]


def test_network_plan() -> None:
    assert specs.network_plan(HOTPATCH) == specs.NetworkPlan(SERVERS, False, None)
    assert specs.network_plan(FULL) == specs.NetworkPlan(SERVERS, True, EXTENDED)


def observed_nic(desired: network.NetworkInterface, **props: object) -> network.NetworkInterface:
    body = desired.as_dict()
    body["id"] = identity().nic_id
    ip = body["properties"]["ipConfigurations"][0]["properties"]
    ip.update({"privateIPAddress": "10.0.1.4", "provisioningState": "Succeeded", **props})
    body["properties"]["provisioningState"] = "Succeeded"
    body["properties"]["macAddress"] = "00-0D-3A-00-00-01"
    return network.NetworkInterface(body)


def test_diff_nic() -> None:
    ident = identity(FULL)
    tags = specs.desired_tags(FULL, OWNER)
    desired = specs.nic_parameters(ident, SERVERS, tags, ident.public_ip_id)
    same = observed_nic(desired)
    assert specs.diff_nic(desired, same) is NicChange.NONE
    retagged = network.NetworkInterface({**same.as_dict(), "tags": {"only": "theirs"}})
    assert specs.diff_nic(desired, retagged) is NicChange.TAGS
    no_pip = specs.nic_parameters(ident, SERVERS, tags, None)
    assert specs.diff_nic(no_pip, same) is NicChange.PUT
    moved = specs.nic_parameters(ident, EXTENDED, tags, ident.public_ip_id)
    assert specs.diff_nic(moved, same) is NicChange.PUT


def test_nic_update_keeps_what_azure_set() -> None:
    ident = identity(FULL)
    tags = specs.desired_tags(FULL, OWNER)
    observed = observed_nic(specs.nic_parameters(ident, SERVERS, tags, ident.public_ip_id))
    desired = specs.nic_parameters(ident, SERVERS, tags, None)
    body = specs.nic_update_parameters(desired, observed).as_dict()
    ip = body["properties"]["ipConfigurations"][0]["properties"]
    assert "publicIPAddress" not in ip
    assert ip["privateIPAddress"] == "10.0.1.4"
    assert ip["subnet"] == {"id": SERVERS}
    assert specs.nic_private_ip(observed) == "10.0.1.4"


# ----------------------------------------------------------------------------- the VM model


# docs/capabilities.md, written out: what Hotpatch onboarding must send.
HOTPATCH_WINDOWS_CONFIGURATION = {
    "provisionVMAgent": True,
    "enableAutomaticUpdates": True,
    "patchSettings": {
        "patchMode": "AutomaticByPlatform",
        "enableHotpatching": True,
        "assessmentMode": "AutomaticByPlatform",
        "automaticByPlatformSettings": {
            "rebootSetting": "Never",
            "bypassPlatformSafetyChecksOnUserSchedule": False,
        },
    },
}


@pytest.mark.parametrize("reboot", ["IfRequired", "Never", "Always"])
def test_hotpatch_onboarding_follows_design(reboot: str) -> None:
    spec = make_spec(capabilities=["Hotpatch"], hotpatch={"rebootSetting": reboot})
    expected = {
        **HOTPATCH_WINDOWS_CONFIGURATION,
        "patchSettings": {**HOTPATCH_WINDOWS_CONFIGURATION["patchSettings"]},
    }
    expected["patchSettings"]["automaticByPlatformSettings"] = {
        "rebootSetting": reboot,
        "bypassPlatformSafetyChecksOnUserSchedule": False,
    }
    assert specs.windows_configuration(spec).as_dict() == expected


def test_hotpatch_without_hotpatch_block_defaults_to_if_required() -> None:
    spec = make_spec(capabilities=["Hotpatch"])
    abp = specs.patch_settings(spec).as_dict()["automaticByPlatformSettings"]
    assert abp["rebootSetting"] == "IfRequired"


@pytest.mark.parametrize("caps", [[], ["SMBOverQUIC"], ["ExtendedNetwork"]])
def test_without_hotpatch_windows_patches_itself(caps: list[str]) -> None:
    spec = make_spec(
        capabilities=caps,
        smbOverQuic={"serverName": "fs.example.com"},
        extendedNetwork={"extendedSubnetId": EXTENDED},
    )
    assert specs.windows_configuration(spec).as_dict() == {
        "provisionVMAgent": True,
        "enableAutomaticUpdates": True,
        "patchSettings": {
            "patchMode": "AutomaticByOS",
            "enableHotpatching": False,
            "assessmentMode": "ImageDefault",
        },
    }


def test_vm_model() -> None:
    ident = identity(FULL)
    image = resolve(FULL.capabilities)
    body = specs.vm_parameters(ident, FULL, image, LOGIN).as_dict()
    assert body["location"] == "westeurope"
    assert body["tags"] == specs.desired_tags(FULL, OWNER)
    props = body["properties"]
    assert props["hardwareProfile"] == {"vmSize": "Standard_D2as_v5"}
    assert props["storageProfile"]["imageReference"] == {
        "publisher": "MicrosoftWindowsServer",
        "offer": "WindowsServer",
        "sku": image.sku,
        "version": "latest",
    }
    os_disk = props["storageProfile"]["osDisk"]
    assert os_disk["name"] == ident.os_disk_name
    assert (os_disk["createOption"], os_disk["deleteOption"], os_disk["osType"]) == (
        "FromImage",
        "Delete",
        "Windows",
    )
    assert props["osProfile"]["computerName"] == ident.computer_name
    assert props["osProfile"]["adminUsername"] == "azureadmin"
    assert props["osProfile"]["adminPassword"] == "S3cret-Passw0rd!"
    assert props["networkProfile"]["networkInterfaces"] == [
        {"id": ident.nic_id, "properties": {"primary": True, "deleteOption": "Delete"}},
        {"id": ident.extended_nic_id, "properties": {"primary": False, "deleteOption": "Delete"}},
    ]


def test_vm_model_has_one_nic_without_extended_network() -> None:
    nics = desired_vm().as_dict()["properties"]["networkProfile"]["networkInterfaces"]
    assert [n["id"] for n in nics] == [identity().nic_id]


def test_admin_credentials_never_show_the_password() -> None:
    assert "S3cret" not in repr(LOGIN)
    assert "S3cret" not in str(LOGIN)


# ----------------------------------------------------------------------------- the VM diff


def test_unchanged_vm_needs_no_update() -> None:
    desired = desired_vm()
    assert specs.diff_vm(desired, as_azure_returns(desired)) is None
    assert specs.describe_vm_changes(desired, as_azure_returns(desired)) == []


def test_size_change_patches_only_the_size() -> None:
    desired = desired_vm()
    observed = as_azure_returns(desired, **{"properties.hardwareProfile": {"vmSize": "Standard_D4as_v5"}})
    update = specs.diff_vm(desired, observed)
    assert update is not None
    assert update.as_dict() == {"properties": {"hardwareProfile": {"vmSize": "Standard_D2as_v5"}}}


def test_vm_size_compares_case_insensitively() -> None:
    desired = desired_vm()
    observed = as_azure_returns(desired, **{"properties.hardwareProfile": {"vmSize": "standard_d2as_v5"}})
    assert specs.diff_vm(desired, observed) is None


def test_tag_change_patches_merged_tags() -> None:
    spec = make_spec(
        capabilities=["Hotpatch"], hotpatch={"rebootSetting": "Never"}, azure={"tags": {"env": "test"}}
    )
    observed = as_azure_returns(desired_vm())
    update = specs.diff_vm(desired_vm(spec), observed)
    assert update is not None
    assert update.as_dict() == {"tags": {**specs.desired_tags(spec, OWNER), "policy-added": "yes"}}


def test_reboot_setting_change_patches_patch_settings() -> None:
    spec = make_spec(
        capabilities=["Hotpatch"], hotpatch={"rebootSetting": "Always"}, azure={"tags": {"env": "prod"}}
    )
    update = specs.diff_vm(desired_vm(spec), as_azure_returns(desired_vm()))
    assert update is not None
    win = update.as_dict()["properties"]["osProfile"]["windowsConfiguration"]
    assert win["patchSettings"]["automaticByPlatformSettings"]["rebootSetting"] == "Always"
    assert set(update.as_dict()) == {"properties"}
    assert set(update.as_dict()["properties"]) == {"osProfile"}
    assert "adminPassword" not in update.as_dict()["properties"]["osProfile"]


def test_turning_hotpatch_off_patches_patch_mode() -> None:
    plain = make_spec(azure={"tags": {"env": "prod"}})
    assert specs.describe_vm_changes(desired_vm(plain), as_azure_returns(desired_vm())) == [
        "patchMode",
        "enableHotpatching",
        "assessmentMode",
    ]


def test_azure_omitting_defaults_is_not_a_change() -> None:
    plain = make_spec(azure={"tags": {"env": "prod"}})
    desired = desired_vm(plain)
    observed = as_azure_returns(desired, **{"properties.osProfile.windowsConfiguration.patchSettings": {}})
    assert specs.diff_vm(desired, observed) is None


def test_image_is_never_patched_but_reported() -> None:
    desired = desired_vm()
    other = {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter-azure-edition",
             "version": "latest"}  # fmt: skip
    observed = as_azure_returns(desired, **{"properties.storageProfile.imageReference": other})
    assert specs.diff_vm(desired, observed) is None
    drift = specs.image_drift(desired, observed)
    assert (
        drift is not None
        and "2022-datacenter-azure-edition:" in drift
        and "create a new AzureEditionVM" in drift
    )
    assert specs.image_drift(desired, as_azure_returns(desired)) is None


def test_with_tags_changes_only_the_tags() -> None:
    ident = identity(FULL)
    observed = observed_nic(specs.nic_parameters(ident, SERVERS, {"old": "1"}, ident.public_ip_id))
    retagged = specs.with_tags(observed, {"new": "2"})
    assert isinstance(retagged, network.NetworkInterface)
    assert retagged.tags == {"new": "2"}
    assert {k: v for k, v in retagged.as_dict().items() if k != "tags"} == {
        k: v for k, v in observed.as_dict().items() if k != "tags"
    }
    assert observed.tags == {"old": "1"}, "the observed model is not modified"


def test_repair_resends_our_model_with_azures_create_only_fields() -> None:
    desired = specs.vm_parameters(
        identity(), HOTPATCH, resolve(HOTPATCH.capabilities), specs.AdminCredentials("", "")
    )
    observed = as_azure_returns(
        desired,
        **{
            "properties.provisioningState": "Failed",
            "properties.osProfile.adminUsername": "original-admin",
            "properties.hardwareProfile": {"vmSize": "Standard_D4as_v5"},
        },
    )
    body = specs.repair_parameters(desired, observed).as_dict()
    assert "adminPassword" not in body["properties"]["osProfile"]
    assert body["properties"]["osProfile"]["adminUsername"] == "original-admin"
    assert body["properties"]["hardwareProfile"] == {"vmSize": "Standard_D2as_v5"}  # ours wins
    assert body["properties"]["storageProfile"]["imageReference"] == {
        k: v
        for k, v in observed.as_dict()["properties"]["storageProfile"]["imageReference"].items()
        if k != "exactVersion"
    }
    assert "provisioningState" not in body["properties"]


def test_power_state_from_instance_view() -> None:
    body = as_azure_returns(desired_vm()).as_dict()
    assert specs.power_state(compute.VirtualMachine(body)) is None
    body["properties"]["instanceView"] = {
        "statuses": [
            {"code": "ProvisioningState/succeeded", "level": "Info"},
            {"code": "PowerState/running", "level": "Info"},
        ]
    }
    assert specs.power_state(compute.VirtualMachine(body)) == "running"


@pytest.mark.parametrize(
    ("state", "in_flight", "deleting", "failed"),
    [
        ("Creating", True, False, False),
        ("Updating", True, False, False),
        ("Succeeded", False, False, False),
        ("Deleting", False, True, False),
        ("Failed", False, False, True),
        (None, False, False, False),
    ],
)
def test_provisioning_states(state: str | None, in_flight: bool, deleting: bool, failed: bool) -> None:
    assert specs.is_in_flight(state) is in_flight
    assert specs.is_deleting(state) is deleting
    assert specs.is_failed(state) is failed


# ----------------------------------------------------------------------------- an existing VM's resources

NAMED = make_spec(azure={"vmName": "FS-Legacy-01", "adopt": True})


def _nic_ref(name: str, primary: bool | None, group: str = RG) -> compute.NetworkInterfaceReference:
    nic_id = (
        f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Network/networkInterfaces/{name}"
    )
    return compute.NetworkInterfaceReference(id=nic_id, primary=primary)


def _existing(*refs: compute.NetworkInterfaceReference) -> compute.VirtualMachine:
    return compute.VirtualMachine(
        location="westeurope",
        network_profile=compute.NetworkProfile(network_interfaces=list(refs)),
        storage_profile=compute.StorageProfile(
            os_disk=compute.OSDisk(create_option="FromImage", name="disk-7f3a")
        ),
    )


def test_a_named_vm_keeps_its_name_and_is_marked_named() -> None:
    ident = identity(NAMED)
    assert (ident.vm_name, ident.named) == ("FS-Legacy-01", True)
    assert identity(HOTPATCH).named is False


def test_discovery_finds_the_primary_and_the_second_nic_and_the_disk_by_their_own_names() -> None:
    found = specs.discover(identity(NAMED), _existing(_nic_ref("ext-nic", False), _nic_ref("main-nic", True)))
    assert (found.identity.nic_name, found.identity.extended_nic_name) == ("main-nic", "ext-nic")
    assert found.identity.os_disk_name == "disk-7f3a"
    assert (found.primary_nic, found.second_nic, found.notes) == (True, True, ())
    assert found.identity.nic_id.endswith("/networkInterfaces/main-nic")


def test_discovery_takes_the_first_nic_when_none_is_marked_primary() -> None:
    found = specs.discover(identity(NAMED), _existing(_nic_ref("only-nic", None)))
    assert (found.identity.nic_name, found.primary_nic, found.second_nic) == ("only-nic", True, False)


def test_discovery_never_follows_a_resource_into_another_resource_group() -> None:
    found = specs.discover(identity(NAMED), _existing(_nic_ref("far-nic", True, group="rg-network")))
    assert found.primary_nic is False and found.identity.nic_name == identity(NAMED).nic_name
    assert (
        len(found.notes) == 1
        and "rg-network" in found.notes[0]
        and "neither reads nor changes" in found.notes[0]
    )


def test_the_public_ip_is_found_on_the_primary_nic() -> None:
    ident = identity(NAMED)
    pip_id = ident.resource_id("Microsoft.Network", "publicIPAddresses", "pip-by-terraform")
    nic = specs.nic_parameters(ident, SERVERS, {}, pip_id)
    assert specs.with_public_ip(ident, nic)[0].public_ip_name == "pip-by-terraform"
    assert specs.with_public_ip(ident, specs.nic_parameters(ident, SERVERS, {}, None)) == (ident, None)
    far = pip_id.replace(f"/resourceGroups/{RG}/", "/resourceGroups/rg-edge/")
    same, note = specs.with_public_ip(ident, specs.nic_parameters(ident, SERVERS, {}, far))
    assert same == ident and note is not None and "rg-edge" in note
