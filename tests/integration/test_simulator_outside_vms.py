"""VMs made outside the operator (issue #24): the control API's ``outside-vms`` makes what the portal,
Terraform or Bicep leave, and the real SDKs see it exactly as a VM created by PUT: GET, list, instance
view, patch status, assessPatches and Run Command, with its NIC (and public IP) and tags, and none of
it in the request log the tests count the operator's calls with."""

from __future__ import annotations

import json

import pytest
from azure.mgmt.compute import models as cm
from azure.mgmt.network import models as nm

from azure_edition_simulator import ControlError, Simulator

from .conftest import ADMIN_PASSWORD, RESOURCE_GROUP, Clients, hotpatch_settings, subnet_id, vm_model

pytestmark = pytest.mark.integration

OUTSIDE_SKUS = (
    "2022-datacenter-azure-edition",
    "2022-datacenter-azure-edition-smalldisk",
    "2022-datacenter-azure-edition-hotpatch",
    "2022-datacenter-azure-edition-core",
    "2025-datacenter-azure-edition",
    "2025-datacenter-azure-edition-core-smalldisk",
)


@pytest.mark.parametrize("sku", OUTSIDE_SKUS)
def test_an_outside_vm_reads_like_any_vm_through_the_sdk(sim: Simulator, clients: Clients, sku: str) -> None:
    hotpatch = "hotpatch" in sku or "core" in sku or sku.startswith("2025")
    made = sim.control.create_outside_vm(
        f"Branch-FS_{sku[:4]}", sku, hotpatch=hotpatch, tags={"costCenter": "42"}
    )
    vm = clients.compute.virtual_machines.get(RESOURCE_GROUP, made["name"], expand="instanceView")
    assert vm.provisioning_state == "Succeeded" and vm.vm_id == made["properties"]["vmId"]
    assert vm.storage_profile.image_reference.sku == sku
    assert vm.storage_profile.image_reference.exact_version  # resolved, as for a PUT
    assert vm.storage_profile.os_disk.disk_size_gb == (30 if "smalldisk" in sku else 127)
    assert vm.tags == {"costCenter": "42"}
    patch = vm.os_profile.windows_configuration.patch_settings
    assert patch.enable_hotpatching is hotpatch
    assert patch.patch_mode == ("AutomaticByPlatform" if hotpatch else "AutomaticByOS")
    assert vm.instance_view.statuses[-1].code == "PowerState/running"
    assert vm.instance_view.patch_status is not None
    # Its NIC, in the subnet, named the way the portal names them, attached as primary.
    nic_id = vm.network_profile.network_interfaces[0].id
    nic = clients.network.network_interfaces.get(RESOURCE_GROUP, nic_id.rsplit("/", 1)[-1])
    assert nic.virtual_machine.id.lower() == vm.id.lower() and nic.primary is True
    assert nic.ip_configurations[0].subnet.id.lower() == subnet_id(sim).lower()
    assert nic.tags == {"costCenter": "42"}
    # Its OS disk exists, managed by the VM.
    disk = clients.compute.disks.get(RESOURCE_GROUP, vm.storage_profile.os_disk.name)
    assert disk.managed_by.lower() == vm.id.lower()
    listed = {v.name for v in clients.compute.virtual_machines.list(RESOURCE_GROUP)}
    assert made["name"] in listed and made["name"] in {
        v.name for v in clients.compute.virtual_machines.list_all()
    }


def test_an_outside_vm_is_assessed_and_runs_commands(sim: Simulator, clients: Clients) -> None:
    sim.control.create_outside_vm("fs-hotpatch", "2022-datacenter-azure-edition-core", hotpatch=True)
    result = clients.compute.virtual_machines.begin_assess_patches(RESOURCE_GROUP, "fs-hotpatch").result()
    assert result.status == "Succeeded"
    script = ["# azureedition.io/script: smb-quic-status"]
    run = clients.compute.virtual_machines.begin_run_command(
        RESOURCE_GROUP, "fs-hotpatch", cm.RunCommandInput(command_id="RunPowerShellScript", script=script)
    ).result()
    assert json.loads(run.value[0].message)["enableSmbQuic"] is True


def test_an_outside_vm_with_a_public_ip_and_no_tags(sim: Simulator, clients: Clients) -> None:
    made = sim.control.create_outside_vm(
        "fs-public", "2025-datacenter-azure-edition", publicIp=True, hotpatch=False
    )
    vm = clients.compute.virtual_machines.get(RESOURCE_GROUP, "fs-public")
    assert not vm.tags
    nic = clients.network.network_interfaces.get(
        RESOURCE_GROUP, vm.network_profile.network_interfaces[0].id.rsplit("/", 1)[-1]
    )
    pip_id = nic.ip_configurations[0].public_ip_address.id
    pip = clients.network.public_ip_addresses.get(RESOURCE_GROUP, pip_id.rsplit("/", 1)[-1])
    assert pip.name == "fs-public-ip" and pip.ip_address and pip.provisioning_state == "Succeeded"
    assert made["properties"]["osProfile"]["computerName"] == "fs-public"
    assert "adminPassword" not in json.dumps(made)


def test_an_outside_vm_is_indistinguishable_from_a_put_one(sim: Simulator, clients: Clients) -> None:
    """The same model through the SDK and through the control API: the same document, ids and generated
    names aside."""
    nic_model = nm.NetworkInterface(
        location="westeurope",
        ip_configurations=[
            nm.NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=nm.Subnet(id=subnet_id(sim)))
        ],
    )
    nic = clients.network.network_interfaces.begin_create_or_update(
        RESOURCE_GROUP, "via-put-nic", nic_model
    ).result()
    model = vm_model([nic.id], sku="2022-datacenter-azure-edition-core", patch_settings=hotpatch_settings())
    put = clients.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, "via-put", model).result()
    outside = sim.control.create_outside_vm(
        "via-outside",
        "2022-datacenter-azure-edition-core",
        hotpatch=True,
        vmSize=put.hardware_profile.vm_size,
    )
    got = clients.compute.virtual_machines.get(RESOURCE_GROUP, "via-outside")
    assert outside["properties"]["vmId"] == got.vm_id
    same = ("provisioning_state", "location", "type")
    assert all(getattr(got, f) == getattr(put, f) for f in same)
    # The same shape, field for field (the portal also turns boot diagnostics on).
    ours, theirs = got.as_dict(), put.as_dict()
    assert set(ours) == set(theirs)
    assert set(ours["properties"]) - set(theirs["properties"]) == {"diagnosticsProfile"}
    for part in ("osProfile", "storageProfile", "hardwareProfile", "networkProfile"):
        assert paths(ours["properties"][part]) == paths(theirs["properties"][part]), part
    assert got.os_profile.admin_password is None and put.os_profile.admin_password is None
    assert ADMIN_PASSWORD not in json.dumps(outside)


def paths(doc: object, prefix: str = "") -> set[str]:
    """Every key path of a JSON document (list items merged): its shape without its values."""
    if isinstance(doc, dict):
        return {p for k, v in doc.items() for p in {prefix + k} | paths(v, prefix + k + ".")}
    if isinstance(doc, list):
        return {p for item in doc for p in paths(item, prefix)}
    return set()


def test_outside_vms_are_provisioned_at_once_under_azure_timing(sim: Simulator, clients: Clients) -> None:
    """With Azure's durations (NIC and public IP Updating for seconds, a VM create for a minute) the VM
    is still there at once, provisioned: it was made before the test began."""
    sim.control.set_timing("azure", 1.0, seed=7)
    sim.control.create_outside_vm(
        "fs-slow", "2022-datacenter-azure-edition-core", hotpatch=True, publicIp=True
    )
    vm = clients.compute.virtual_machines.get(RESOURCE_GROUP, "fs-slow")
    assert vm.provisioning_state == "Succeeded"
    nic = clients.network.network_interfaces.get(
        RESOURCE_GROUP, vm.network_profile.network_interfaces[0].id.rsplit("/", 1)[1]
    )
    assert nic.provisioning_state == "Succeeded"
    pip = clients.network.public_ip_addresses.get(RESOURCE_GROUP, "fs-slow-ip")
    assert pip.provisioning_state == "Succeeded" and pip.ip_address


def test_outside_vms_stay_out_of_the_request_log(sim: Simulator) -> None:
    seq = sim.control.last_seq()
    made = sim.control.create_outside_vm(
        "fs-quiet", "2025-datacenter-azure-edition-core", hotpatch=True, publicIp=True
    )
    assert sim.control.vm_document(RESOURCE_GROUP, "fs-quiet") == made  # a look that is not a request either
    assert sim.control.requests(since=seq) == []


def test_outside_vm_refusals_say_what_to_fix(sim: Simulator) -> None:
    with pytest.raises(ControlError) as unknown_sku:
        sim.control.create_outside_vm("fs-bad", "2019-datacenter-azure-edition")
    assert unknown_sku.value.status == 400 and "catalog" in json.dumps(unknown_sku.value.body)
    with pytest.raises(ControlError) as typo:
        sim.control.create_outside_vm("fs-bad", "2022-datacenter-azure-edition", hotpach=True)
    assert typo.value.status == 400 and "hotpach" in json.dumps(typo.value.body)
    with pytest.raises(ControlError) as not_capable:  # Compute's own rule, as a PUT gets it
        sim.control.create_outside_vm("fs-bad", "2022-datacenter-azure-edition", hotpatch=True)
    assert not_capable.value.status == 400 and not_capable.value.body["error"]["code"] == "InvalidParameter"
    with pytest.raises(ControlError):
        sim.control.create_outside_vm("bad/name", "2022-datacenter-azure-edition")
