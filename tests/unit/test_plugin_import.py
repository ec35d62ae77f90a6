"""`kubectl aevm import`'s decisions as pure functions: an ARM VM (with its primary NIC and public IP,
REST-shaped as the SDK's ``as_dict()`` and the published examples give them) → an AzureEditionVM
manifest, or why it is skipped (issue #24 item 4)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from azure_edition_operator.api.v1alpha1 import AzureEditionVM, ManagementPolicy
from azure_edition_operator.images import CATALOG, Capability, ImagePins, resolve
from azure_edition_operator.plugin import importer, render
from azure_edition_operator.plugin.importer import ImportOptions, manifest_for
from azure_edition_simulator.outside import HOTPATCH_SETTINGS

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-branch-a"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet-a/subnets/servers"
NIC_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/networkInterfaces/fs01123"
PIP_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/publicIPAddresses/fs01-ip"
HOTPATCH = HOTPATCH_SETTINGS  # what the portal's Hotpatch checkbox sends (one place: the simulator's)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "azure-rest-examples"


def vm(
    name: str = "FS01",
    sku: str = "2022-datacenter-azure-edition-core",
    patch: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    version: str = "latest",
    location: str = "westeurope",
    nics: int = 1,
    data_disks: int = 0,
) -> dict[str, Any]:
    """A VM as ARM returns it (the shape of VirtualMachine_Get.json)."""
    refs = [{"id": NIC_ID + (str(i) if i else ""), "properties": {"primary": i == 0}} for i in range(nics)]
    return {
        "name": name,
        "id": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{name}",
        "type": "Microsoft.Compute/virtualMachines",
        "location": location,
        "tags": tags if tags is not None else {},
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D4as_v5"},
            "storageProfile": {
                "imageReference": {
                    "publisher": "MicrosoftWindowsServer",
                    "offer": "WindowsServer",
                    "sku": sku,
                    "version": version,
                    "exactVersion": "20348.3328.250306",
                },
                "dataDisks": [{"lun": i, "name": f"d{i}"} for i in range(data_disks)],
            },
            "osProfile": {
                "computerName": name[:15],
                "windowsConfiguration": {"patchSettings": patch if patch is not None else dict(HOTPATCH)},
            },
            "networkProfile": {"networkInterfaces": refs},
        },
    }


def nic(public_ip: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {"subnet": {"id": SUBNET}, "primary": True}
    if public_ip:
        config["publicIPAddress"] = {"id": PIP_ID}
    return {"id": NIC_ID, "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": config}]}}


def pip(label: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"ipAddress": "20.1.2.3"}
    if label:
        props["dnsSettings"] = {"domainNameLabel": label}
    return {"id": PIP_ID, "properties": props}


def imported(doc: dict[str, Any] | None = None, **kwargs: Any) -> importer.Imported:
    options = kwargs.pop("options", ImportOptions(namespace="branch-a"))
    return manifest_for(doc or vm(), kwargs.pop("nic", nic()), kwargs.pop("pip", None), options, **kwargs)


def spec_of(result: importer.Imported) -> dict[str, Any]:
    assert result.manifest is not None, result.skipped
    AzureEditionVM.model_validate(result.manifest)  # the CRD's Python twin accepts every manifest
    return result.manifest["spec"]


# ----------------------------------------------------------------------------- which VMs


@pytest.mark.parametrize(
    ("offer", "sku", "expected"),
    [
        ("WindowsServer", "2022-datacenter-azure-edition", True),
        ("windowsserver", "2025-Datacenter-Azure-Edition-Core-Smalldisk", True),
        ("WindowsServer", "2022-datacenter-g2", False),
        ("WindowsServer", "2019-Datacenter", False),
        ("UbuntuServer", "azure-edition-lookalike", False),
    ],
)
def test_azure_edition_is_offer_windowsserver_and_an_azure_edition_sku(
    offer: str, sku: str, expected: bool
) -> None:
    doc = vm(sku=sku)
    doc["properties"]["storageProfile"]["imageReference"]["offer"] = offer
    assert importer.is_azure_edition(doc) is expected


def test_the_published_get_example_is_not_azure_edition() -> None:
    body = json.loads((FIXTURES / "VirtualMachine_Get.json").read_text())["responses"]["200"]["body"]
    assert importer.is_azure_edition(body) is False  # 2016-Datacenter


# ----------------------------------------------------------------------------- capabilities and image


@pytest.mark.parametrize("row", CATALOG, ids=lambda r: r.sku)
@pytest.mark.parametrize("hotpatch_on", [True, False], ids=["hotpatch-on", "hotpatch-off"])
def test_every_catalog_image_imports_with_hotpatch_only_when_carried_and_on(
    row: Any, hotpatch_on: bool
) -> None:
    patch = (
        dict(HOTPATCH) if hotpatch_on and row.carries(Capability.HOTPATCH) else {"patchMode": "AutomaticByOS"}
    )
    if hotpatch_on and not row.carries(
        Capability.HOTPATCH
    ):  # Azure refuses it on such images; ARM never shows it
        patch = {"patchMode": "AutomaticByPlatform", "enableHotpatching": True}
    spec = spec_of(imported(vm(sku=row.sku, patch=patch)))
    wants = hotpatch_on and row.carries(Capability.HOTPATCH)
    assert spec["capabilities"] == (["Hotpatch"] if wants else [])
    image = spec["image"]
    assert image["windowsServerVersion"] == str(row.version) and image["experience"] == str(row.experience)
    assert image.get("smallDisk", False) is row.small_disk
    assert "SMBOverQUIC" not in spec["capabilities"] and "ExtendedNetwork" not in spec["capabilities"]
    # The pins lead resolution back to the VM's own image, except where the catalog has a better one.
    pins = ImagePins(row.version, row.experience, row.small_disk)
    chosen = resolve([Capability(c) for c in spec["capabilities"]], pins).sku
    notes = " ".join(imported(vm(sku=row.sku, patch=patch)).notes)
    assert (chosen == row.sku) == ("would choose" not in notes), notes


def test_hotpatch_needs_automatic_by_platform_too() -> None:
    patch = {"patchMode": "AutomaticByOS", "enableHotpatching": True}  # what no PUT would be allowed to make
    assert spec_of(imported(vm(patch=patch)))["capabilities"] == []


def test_a_hotpatch_image_with_hotpatch_off_says_the_operator_would_choose_another() -> None:
    result = imported(vm(sku="2022-datacenter-azure-edition-hotpatch", patch={"patchMode": "AutomaticByOS"}))
    assert spec_of(result)["capabilities"] == []
    assert any("would choose 2022-datacenter-azure-edition," in n for n in result.notes), result.notes
    assert any("carries it but it is off" in n for n in result.notes)


def test_guest_capabilities_are_left_out_with_a_comment() -> None:
    result = imported()
    assert any("SMBOverQUIC and ExtendedNetwork" in n and "ARM cannot tell" in n for n in result.notes)


def test_a_fixed_image_version_is_pinned_latest_is_not() -> None:
    assert "version" not in spec_of(imported(vm(version="latest")))["image"]
    assert spec_of(imported(vm(version="20348.3207.250210")))["image"]["version"] == "20348.3207.250210"


def test_a_sku_in_another_case_is_found() -> None:
    spec = spec_of(imported(vm(sku="2022-Datacenter-Azure-Edition-Core")))
    assert spec["image"]["experience"] == "Core"


def test_an_azure_edition_sku_the_catalog_does_not_know_is_skipped() -> None:
    result = imported(vm(sku="2028-datacenter-azure-edition"))
    assert result.manifest is None and "not in this operator's catalog" in (result.skipped or "")


def test_a_non_default_reboot_setting_is_kept_for_hotpatch() -> None:
    patch = copy.deepcopy(HOTPATCH)
    patch["automaticByPlatformSettings"]["rebootSetting"] = "Never"
    assert spec_of(imported(vm(patch=patch)))["hotpatch"] == {"rebootSetting": "Never"}
    assert "hotpatch" not in spec_of(imported())


# ----------------------------------------------------------------------------- placement


def test_placement_comes_from_the_vm_and_its_primary_nic() -> None:
    spec = spec_of(imported(vm(location="West Europe")))
    azure = spec["azure"]
    assert azure["subscriptionId"] == SUB and azure["resourceGroup"] == RG
    assert azure["location"] == "westeurope" and azure["vmSize"] == "Standard_D4as_v5"
    assert azure["vmName"] == "FS01" and azure["subnetId"] == SUBNET
    assert "publicIP" not in azure


def test_a_public_ip_and_its_dns_label_are_carried() -> None:
    azure = spec_of(imported(nic=nic(public_ip=True), pip=pip("fs01-branch")))["azure"]
    assert azure["publicIP"] is True and azure["publicIPDnsLabel"] == "fs01-branch"
    assert "publicIPDnsLabel" not in spec_of(imported(nic=nic(public_ip=True), pip=pip()))["azure"]


def test_a_vm_whose_nic_cannot_be_read_is_skipped() -> None:
    result = imported(nic=None)
    assert result.manifest is None and "primary NIC" in (result.skipped or "")


def test_extra_nics_and_data_disks_are_noted() -> None:
    notes = " ".join(imported(vm(nics=2, data_disks=3)).notes)
    assert "2 NICs" in notes and "3 data disk(s)" in notes


def test_the_primary_nic_is_the_one_marked_primary() -> None:
    doc = vm(nics=2)
    doc["properties"]["networkProfile"]["networkInterfaces"][0]["properties"]["primary"] = False
    doc["properties"]["networkProfile"]["networkInterfaces"][1]["properties"]["primary"] = True
    assert importer.primary_nic_id(doc) == NIC_ID + "1"
    assert importer.primary_nic_id(vm(nics=0)) is None


# ----------------------------------------------------------------------------- ownership and tags


def test_an_untagged_vm_is_adopted_and_observed_by_default() -> None:
    spec = spec_of(imported())
    assert spec["azure"]["adopt"] is True and spec["managementPolicy"] == "Observe"
    assert spec["deletionPolicy"] == "Orphan" and spec["azure"]["onMissing"] == "Report"


@pytest.mark.parametrize(
    ("tags", "who"),
    [
        ({"azureedition.io_owner": "branch-a/fs01", "azureedition.io_cluster": "prod-weu"},
         "AzureEditionVM branch-a/fs01 on cluster 'prod-weu'"),
        ({"azureedition.io_owner-uid": "0b9e", "azureedition.io_owner": "branch-a/fs01"},
         "AzureEditionVM branch-a/fs01 on a cluster of an earlier version"),
        ({"AzureEdition.IO_Owner-UID": "0b9e"}, "an AzureEditionVM (uid 0b9e)"),
    ],
)  # fmt: skip
def test_a_vm_owned_by_an_object_is_skipped_naming_it(tags: dict[str, str], who: str) -> None:
    result = imported(vm(tags=tags))
    assert result.manifest is None and who in (result.skipped or ""), result.skipped


def test_only_the_users_tags_are_carried() -> None:
    tags = {"costCenter": "42", "managed-by": "azure-edition-operator", "azureedition.io_smb-over-quic-server-name": "x",
            "owner-team": "files", "Managed-By": "terraform"}  # fmt: skip
    assert spec_of(imported(vm(tags=tags)))["azure"]["tags"] == {
        "Managed-By": "terraform", "costCenter": "42", "owner-team": "files"}  # fmt: skip


def test_more_tags_than_the_spec_takes_are_cut_with_a_note() -> None:
    tags = {f"t{i:02d}": "v" for i in range(50)}
    result = imported(vm(tags=tags))
    assert len(spec_of(result)["azure"]["tags"]) == 47
    assert any("t47, t48, t49 left out" in n for n in result.notes)


# ----------------------------------------------------------------------------- names and options


@pytest.mark.parametrize(
    ("vm_name", "expected"),
    [("FS01", "fs01"), ("branch_fs.01", "branch-fs-01"), ("--x--", "x"), ("___", "vm"), ("A" * 80, "a" * 63)],
)
def test_object_names_are_dns_labels(vm_name: str, expected: str) -> None:
    assert importer.object_name(vm_name) == expected


def test_names_stay_distinct_within_one_import() -> None:
    first, second, third = vm("fs01"), vm("FS01"), vm("fs01")
    second["id"] = second["id"].replace(RG, "rg-other")
    third["id"] = third["id"].replace(RG, "rg-other")  # (Azure names are unique within a group only)
    assert importer.unique_names([first, second, third]) == ["fs01", "fs01-rg-other", "fs01-2"]


def test_options_set_policy_namespace_and_secret() -> None:
    options = ImportOptions(
        namespace=None, management_policy=ManagementPolicy.FULL, admin_secret="fleet-admin"
    )
    result = imported(options=options)
    spec = spec_of(result)
    assert spec["managementPolicy"] == "Full" and spec["adminCredentialsSecretRef"] == {"name": "fleet-admin"}
    assert "namespace" not in result.manifest["metadata"]
    assert not any("placeholder" in n for n in result.notes)
    placeholder = imported()
    assert spec_of(placeholder)["adminCredentialsSecretRef"] == {"name": "fs01-admin"}
    assert any("fs01-admin is a placeholder" in n for n in placeholder.notes)


def test_a_secret_name_fits_a_long_object_name() -> None:
    assert importer.secret_name("a" * 63) == "a" * 57 + "-admin"


# ----------------------------------------------------------------------------- the YAML


def test_the_yaml_is_one_commented_document_per_vm_with_a_header_of_skips() -> None:
    owned = imported(vm("owned", tags={"azureedition.io_owner": "ns/x", "azureedition.io_cluster": "c"}))
    items = [imported(), owned, imported(vm("fs02"), name="fs02")]
    text = importer.render_yaml(items, f"subscription {SUB}", others=2)
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert [d["metadata"]["name"] for d in docs] == ["fs01", "fs02"]
    header = text.split("---", 1)[0]
    assert "2 AzureEditionVM(s)" in header and "skipped" in header and "ns/x" in header
    assert "2 other VM(s)" in header and header.count("\n") == len(header.splitlines())
    assert all(line.startswith("#") for line in header.splitlines())
    for block in text.split("---\n")[1:]:
        assert block.startswith("# Azure VM /subscriptions/")
    assert (
        yaml.safe_load(text.split("---\n")[1])["spec"]["image"]["windowsServerVersion"] == "2022"
    )  # a string


def test_an_import_of_nothing_is_a_header_alone() -> None:
    text = importer.render_yaml([], "subscription x")
    assert [d for d in yaml.safe_load_all(text) if d] == [] and "0 AzureEditionVM(s)" in text


# ----------------------------------------------------------------------------- Azure's refusals


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "needle"),
    [
        (401, None, render.EXIT_FORBIDDEN, "cannot sign in"),
        (403, "AuthorizationFailed", render.EXIT_FORBIDDEN, "needs Reader"),
        (404, "ResourceGroupNotFound", render.EXIT_NOT_FOUND, "check --subscription and -g"),
        (None, None, render.EXIT_UNREACHABLE, "AZURE_RESOURCE_MANAGER_ENDPOINT"),
        (500, "InternalServerError", render.EXIT_FAILED, "Azure answered 500"),
    ],
)
def test_azure_problems_say_what_to_do(
    status: int | None, code: str | None, exit_code: int, needle: str
) -> None:
    err = importer.azure_problem(status, code, "boom\nsecond line", "resource group rg-x")
    assert err.code == exit_code and needle in err.message and "\n" not in err.message
