"""Validation Azure does, through the real SDKs: VM sizes (and Resource SKUs), api-versions, tags, names,
credentials — each refused with Azure's status and code."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.mgmt.compute import models as cm
from azure.mgmt.network import models as nm

from azure_edition_simulator import Simulator
from azure_edition_simulator.limits import password_ok
from azure_edition_simulator.skus import CATALOGUE, find

from .conftest import LOCATION, RESOURCE_GROUP, Arm, Clients, vm_model

pytestmark = pytest.mark.integration


def _refused(call: Any, status: int, code: str) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        call()
    assert (caught.value.status_code, caught.value.error.code) == (status, code), caught.value.message
    return caught.value


def _sized(nic_id: str, size: str, **kwargs: Any) -> cm.VirtualMachine:
    model = vm_model([nic_id], **kwargs)
    model.hardware_profile = cm.HardwareProfile(vm_size=size)
    return model


def _create(clients: Clients, name: str, model: cm.VirtualMachine) -> Any:
    return lambda: clients.compute.virtual_machines.begin_create_or_update(
        RESOURCE_GROUP, name, model
    ).result()


# --- VM sizes ----------------------------------------------------------------------------------------------


def test_unknown_size_is_invalid_parameter_listing_the_offered_ones(arm: Arm, strict: Clients) -> None:
    nic = arm.nic()
    error = _refused(_create(strict, "vm-x", _sized(nic.id, "Standard_Nope_v9")), 400, "InvalidParameter")
    assert "Standard_D2as_v5" in error.message and error.error.target == "vmSize"


def test_restricted_size_is_sku_not_available_and_listed_as_restricted(
    sim: Simulator, arm: Arm, strict: Clients
) -> None:
    sim.control.restrict_sku(LOCATION, "Standard_D4s_v5")
    nic = arm.nic()
    _refused(_create(strict, "vm-x", _sized(nic.id, "Standard_D4s_v5")), 409, "SkuNotAvailable")
    skus = list(strict.compute.resource_skus.list(filter=f"location eq '{LOCATION}'"))
    restricted = next(s for s in skus if s.name == "Standard_D4s_v5")
    assert restricted.restrictions[0].reason_code == "NotAvailableForSubscription"
    assert next(s for s in skus if s.name == "Standard_D2as_v5").restrictions == []


def test_generation_1_size_cannot_boot_the_gen2_azure_edition_image(arm: Arm, strict: Clients) -> None:
    nic = arm.nic()
    error = _refused(_create(strict, "vm-x", _sized(nic.id, "Standard_A2_v2")), 400, "BadRequest")
    assert "cannot boot Hypervisor Generation '2'" in error.message


def test_premium_disk_on_a_size_without_premium_io(arm: Arm, strict: Clients) -> None:
    nic = arm.nic()
    model = _sized(
        nic.id,
        "Standard_D1_v2",
        sku="2019-datacenter",
        patch_settings=cm.PatchSettings(patch_mode="AutomaticByOS"),
    )
    # a Gen 1 image without Hotpatch, so only premium IO fails
    error = _refused(_create(strict, "vm-x", model), 400, "InvalidParameter")
    assert "does not support the storage account type Premium_LRS" in error.message


def test_accelerated_networking_on_a_size_without_it(sim: Simulator, strict: Clients) -> None:
    subnet = f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/virtualNetworks/vnet-branch-a/subnets/servers"
    nic = strict.network.network_interfaces.begin_create_or_update(
        RESOURCE_GROUP,
        "nic-an",
        nm.NetworkInterface(
            location=LOCATION,
            enable_accelerated_networking=True,
            ip_configurations=[
                nm.NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=nm.Subnet(id=subnet))
            ],
        ),
    ).result()
    _refused(
        _create(strict, "vm-x", _sized(nic.id, "Standard_B2s")),
        400,
        "VMSizeIsNotPermittedToEnableAcceleratedNetworking",
    )
    assert _create(strict, "vm-an", _sized(nic.id, "Standard_D2as_v5"))().provisioning_state == "Succeeded"


def test_resource_skus_serve_the_catalogue_in_azures_shape(strict: Clients) -> None:
    skus = list(strict.compute.resource_skus.list(filter="location eq 'westeurope'"))
    assert sorted(s.name for s in skus) == sorted(s.name for s in CATALOGUE)
    d2as = next(s for s in skus if s.name == "Standard_D2as_v5")
    capabilities = {c.name: c.value for c in d2as.capabilities}
    assert d2as.resource_type == "virtualMachines" and d2as.locations == ["westeurope"]
    assert capabilities["vCPUs"] == "2" and capabilities["MemoryGB"] == "8"
    assert capabilities["HyperVGenerations"] == "V1,V2"
    assert capabilities["AcceleratedNetworkingEnabled"] == "True" and capabilities["PremiumIO"] == "True"
    b2s = {c.name: c.value for c in next(s for s in skus if s.name == "Standard_B2s").capabilities}
    assert b2s["AcceleratedNetworkingEnabled"] == "False" and b2s["MemoryGB"] == "4"
    assert find("standard_d2as_v5") is not None  # ARM compares size names case-insensitively


# --- api-version ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_version", "code"),
    [
        (None, "MissingApiVersionParameter"),
        ("2021", "InvalidApiVersionParameter"),
        ("2099-01-01", "NoRegisteredProviderFound"),
        ("2024-03-02", "NoRegisteredProviderFound"),  # a Disk RP version: not one of virtualMachines'
    ],
)
def test_api_version_is_checked_per_provider_and_type(
    sim: Simulator, strict: Clients, api_version: str | None, code: str
) -> None:
    path = f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines"
    url = path if api_version is None else f"{path}?api-version={api_version}"
    response = strict.compute.send_request(HttpRequest("GET", url))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_each_type_has_its_own_versions(sim: Simulator, strict: Clients) -> None:
    base = f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers"
    ok = strict.compute.send_request(
        HttpRequest("GET", f"{base}/Microsoft.Compute/disks?api-version=2024-03-02")
    )
    assert ok.status_code == 200
    nic = strict.compute.send_request(
        HttpRequest("GET", f"{base}/Microsoft.Network/networkInterfaces?api-version=2025-04-01")
    )
    assert nic.status_code == 400 and nic.json()["error"]["code"] == "NoRegisteredProviderFound"


# --- tags, names, credentials ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "code"),
    [
        ({f"t{i}": "v" for i in range(51)}, "InvalidTagCount"),
        ({"a/b": "v"}, "InvalidTagNameCharacters"),
        ({"x" * 513: "v"}, "InvalidTagNameLength"),
        ({"k": "v" * 257}, "InvalidTagValueLength"),
    ],
)
def test_tag_limits(arm: Arm, strict: Clients, tags: dict[str, str], code: str) -> None:
    nic = arm.nic()
    _refused(_create(strict, "vm-x", vm_model([nic.id], tags=tags)), 400, code)
    _refused(
        lambda: strict.network.public_ip_addresses.begin_create_or_update(
            RESOURCE_GROUP, "pip-tags", nm.PublicIPAddress(location=LOCATION, tags=tags)
        ).result(),
        400,
        code,
    )


def test_fifty_tags_of_maximum_size_are_accepted(arm: Arm, strict: Clients) -> None:
    tags = {f"{i:02d}" + "n" * 510: "v" * 256 for i in range(50)}
    nic = arm.nic()
    assert _create(strict, "vm-tags", vm_model([nic.id], tags=tags))().tags == tags


def test_names_and_credentials(arm: Arm, strict: Clients) -> None:
    nic = arm.nic()
    _refused(_create(strict, "bad.name.", vm_model([nic.id])), 400, "InvalidParameter")
    _refused(
        lambda: strict.network.public_ip_addresses.begin_create_or_update(
            RESOURCE_GROUP, "-pip", nm.PublicIPAddress(location=LOCATION)
        ).result(),
        400,
        "InvalidResourceName",
    )
    weak = vm_model([nic.id])
    weak.os_profile.admin_password = "alllowercase"
    error = _refused(_create(strict, "vm-x", weak), 400, "InvalidParameter")
    assert error.error.target == "adminPassword" and "8-123 characters" in error.message
    admin = vm_model([nic.id])
    admin.os_profile.admin_username = "Administrator"
    assert _refused(_create(strict, "vm-x", admin), 400, "InvalidParameter").error.target == "adminUsername"
    long_computer = vm_model([nic.id])
    long_computer.os_profile.computer_name = "a-computer-name-too-long"
    assert (
        _refused(_create(strict, "vm-x", long_computer), 400, "InvalidParameter").error.target
        == "computerName"
    )


def test_password_rules() -> None:
    assert password_ok("Sim-Passw0rd!2026") and password_ok("abcDEF123")
    assert not password_ok("Short1!") and not password_ok("P@ssw0rd") and not password_ok("lowercase123")
