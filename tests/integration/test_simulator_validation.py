"""Azure's validation rules, surfaced through the real SDK as ``HttpResponseError.error.code``."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import models as cm
from azure.mgmt.network import models as nm

from azure_edition_simulator import Simulator

from .conftest import LOCATION, RESOURCE_GROUP, Arm, Clients, hotpatch_settings, vm_model

pytestmark = pytest.mark.integration

HOTPATCH_CAPABLE = (
    "2022-datacenter-azure-edition-hotpatch",
    "2022-datacenter-azure-edition-hotpatch-smalldisk",
    "2022-datacenter-azure-edition-core",
    "2022-datacenter-azure-edition-core-smalldisk",
    "2025-datacenter-azure-edition",
    "2025-datacenter-azure-edition-smalldisk",
    "2025-datacenter-azure-edition-core",
    "2025-datacenter-azure-edition-core-smalldisk",
)


def _create_vm(clients: Clients, nic_id: str, name: str = "vm", **kwargs: Any) -> cm.VirtualMachine:
    model = vm_model([nic_id], **kwargs)
    return clients.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, name, model).result()


def _refused(clients: Clients, nic_id: str, **kwargs: Any) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as refused:
        _create_vm(clients, nic_id, **kwargs)
    return refused.value


@pytest.mark.parametrize("sku", HOTPATCH_CAPABLE)
def test_hotpatch_is_accepted_on_every_capable_sku(arm: Arm, clients: Clients, sku: str) -> None:
    nic = arm.nic()
    vm = _create_vm(clients, nic.id, sku=sku)
    assert vm.os_profile.windows_configuration.patch_settings.enable_hotpatching is True


@pytest.mark.parametrize("sku", ["2022-datacenter-azure-edition", "2022-datacenter-g2", "2016-Datacenter"])
def test_hotpatch_on_an_incapable_image_is_invalid_parameter(arm: Arm, clients: Clients, sku: str) -> None:
    error = _refused(clients, arm.nic().id, sku=sku)
    assert error.status_code == 400
    assert error.error.code == "InvalidParameter"
    assert error.error.target == "enableHotpatching"


def test_incapable_image_without_hotpatch_is_fine(arm: Arm, clients: Clients) -> None:
    settings = cm.PatchSettings(patch_mode="AutomaticByOS")
    vm = _create_vm(clients, arm.nic().id, sku="2022-datacenter-azure-edition", patch_settings=settings)
    assert vm.provisioning_state == "Succeeded"


def test_hotpatch_requires_automatic_by_platform(arm: Arm, clients: Clients) -> None:
    error = _refused(
        clients,
        arm.nic().id,
        patch_settings=cm.PatchSettings(patch_mode="AutomaticByOS", enable_hotpatching=True),
    )
    assert (error.error.code, error.error.target) == ("InvalidParameter", "patchMode")


def test_automatic_by_platform_requires_the_vm_agent(arm: Arm, clients: Clients) -> None:
    error = _refused(clients, arm.nic().id, provision_vm_agent=False)
    assert (error.error.code, error.error.target) == ("InvalidParameter", "provisionVMAgent")


def test_hotpatch_with_bypassed_safety_checks_is_refused_in_azures_words(arm: Arm, clients: Clients) -> None:
    error = _refused(clients, arm.nic().id, patch_settings=hotpatch_settings(bypass=True))
    assert error.status_code == 400
    assert error.error.code == "InvalidParameter"
    assert error.error.message.startswith("Hotpatch updates require platform safety checks.")


def test_bypass_on_update_is_refused_too(arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    update = cm.VirtualMachineUpdate(
        os_profile=cm.OSProfile(
            windows_configuration=cm.WindowsConfiguration(
                patch_settings=cm.PatchSettings(
                    automatic_by_platform_settings=cm.WindowsVMGuestPatchAutomaticByPlatformSettings(
                        bypass_platform_safety_checks_on_user_schedule=True
                    )
                )
            )
        )
    )
    with pytest.raises(HttpResponseError) as refused:
        clients.compute.virtual_machines.begin_update(RESOURCE_GROUP, vm.name, update).result()
    assert refused.value.error.code == "InvalidParameter"


def test_hotpatch_capable_image_needs_patch_settings(arm: Arm, clients: Clients) -> None:
    model = vm_model([arm.nic().id])
    model.os_profile.windows_configuration.patch_settings = None
    with pytest.raises(HttpResponseError) as refused:
        clients.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, "vm", model).result()
    assert refused.value.error.code == "InvalidParameter"
    assert refused.value.error.message == "PatchSettings must be specified for hotpatch compatible VMs."


@pytest.mark.parametrize(
    ("sku", "version"),
    [
        ("2022-datacenter-azure-edition-core-nonexistent", "latest"),
        ("2022-datacenter-azure-edition-core", "1.2.3"),
    ],
)
def test_unknown_image_is_platform_image_not_found(
    arm: Arm, clients: Clients, sku: str, version: str
) -> None:
    model = vm_model([arm.nic().id], sku=sku)
    model.storage_profile.image_reference.version = version
    with pytest.raises(HttpResponseError) as refused:
        clients.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, "vm", model).result()
    assert refused.value.status_code == 404
    assert refused.value.error.code == "PlatformImageNotFound"
    assert (
        f"'MicrosoftWindowsServer:WindowsServer:{sku}:{version}' is not available"
        in refused.value.error.message
    )


def test_image_sku_matching_is_case_insensitive(arm: Arm, clients: Clients) -> None:
    assert (
        _create_vm(clients, arm.nic().id, sku="2022-Datacenter-Azure-Edition-Core").provisioning_state
        == "Succeeded"
    )


def test_vm_with_missing_nic_is_refused(sim: Simulator, clients: Clients) -> None:
    missing = (
        f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/"
        "networkInterfaces/ghost"
    )
    error = _refused(clients, missing)
    assert error.error.code == "NotFound"
    assert missing in error.error.message


def test_nic_on_unknown_subnet_is_invalid_resource_reference(sim: Simulator, arm: Arm) -> None:
    unknown = (
        f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/"
        "virtualNetworks/vnet-branch-a/subnets/nowhere"
    )
    with pytest.raises(HttpResponseError) as refused:
        arm.nic(subnet=unknown)
    assert refused.value.status_code == 400
    assert refused.value.error.code == "InvalidResourceReference"
    assert f"Resource {unknown} referenced by resource" in refused.value.error.message


def test_subnet_registered_through_the_control_api_becomes_usable(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    subnet = sim.control.add_subnet("vnet-branch-b", "servers", "127.0.5.0/24", resource_group="rg-branch-b")
    nic = arm.nic("nic-b", subnet=subnet)
    assert nic.ip_configurations[0].private_ip_address == "127.0.5.4"
    fetched = clients.network.subnets.get("rg-branch-b", "vnet-branch-b", "servers")
    assert fetched.address_prefix == "127.0.5.0/24"


def test_nic_with_unknown_public_ip_is_invalid_resource_reference(sim: Simulator, arm: Arm) -> None:
    ghost = f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/publicIPAddresses/ghost"
    with pytest.raises(HttpResponseError) as refused:
        arm.nic(public_ip_id=ghost)
    assert refused.value.error.code == "InvalidResourceReference"


def test_image_cannot_change_on_update(arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    model = vm_model([vm.network_profile.network_interfaces[0].id], sku="2025-datacenter-azure-edition-core")
    with pytest.raises(HttpResponseError) as refused:
        clients.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, vm.name, model).result()
    assert refused.value.error.code == "PropertyChangeNotAllowed"
    assert refused.value.error.target == "imageReference"


def test_unknown_region_is_refused(arm: Arm, clients: Clients) -> None:
    error = _refused(clients, arm.nic().id, location="moon-central")
    assert error.error.code == "LocationNotAvailableForResourceType"


def test_unknown_resource_group_is_refused_before_validation(sim: Simulator, clients: Clients) -> None:
    model = nm.PublicIPAddress(location=LOCATION)
    with pytest.raises(HttpResponseError) as refused:
        clients.network.public_ip_addresses.begin_create_or_update("rg-missing", "pip", model).result()
    assert refused.value.status_code == 404
    assert refused.value.error.code == "ResourceGroupNotFound"


def test_old_api_version_cannot_touch_hotpatch_vms(arm: Arm, clients: Clients) -> None:
    model = vm_model([arm.nic().id])
    with pytest.raises(HttpResponseError) as refused:
        clients.compute.virtual_machines.begin_create_or_update(
            RESOURCE_GROUP, "vm", model, api_version="2019-07-01"
        ).result()
    assert refused.value.error.code == "BadRequest"
    assert "API version lower than '2020-06-01'" in refused.value.error.message
