"""Azure as others shape it, through the real SDKs: eventual consistency, role propagation, resource groups
being created, expiring operation URLs, Azure Policy, out-of-band changes, error details, rate-limit
headers, disk PATCH and statusOnly listings."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.compute import models as cm
from azure.mgmt.network import models as nm

from azure_edition_simulator import Simulator

from .conftest import LOCATION, RESOURCE_GROUP, Arm, Clients, subnet_id, vm_model

pytestmark = pytest.mark.integration


def _nic(clients: Clients, sim: Simulator, name: str = "nic-ec") -> Any:
    model = nm.NetworkInterface(
        location=LOCATION,
        ip_configurations=[
            nm.NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=nm.Subnet(id=subnet_id(sim)))
        ],
    )
    return clients.network.network_interfaces.begin_create_or_update(RESOURCE_GROUP, name, model).result()


SEED_REFUSED_THEN_ACCEPTED = 6  # at rate 0.5 its draws refuse twice, then accept


def test_consistency_rate_answers_retryable_error_naming_the_reference(
    sim: Simulator, strict: Clients, clients: Clients
) -> None:
    sim.control.set_consistency_rate(1.0)
    with pytest.raises(HttpResponseError) as caught:
        _nic(strict, sim)
    error = caught.value
    assert error.status_code == 429 and error.error.code == "RetryableError"
    assert error.error.details[0].code == "ReferencedResourceNotProvisioned"
    assert subnet_id(sim).lower() in error.error.details[0].message.lower()
    assert error.response.headers.get("Retry-After") is not None
    sim.control.set_timing("instant", seed=SEED_REFUSED_THEN_ACCEPTED)  # the same choices every run
    sim.control.set_consistency_rate(0.5)  # the SDK's retry policy (3 status retries) rides it out
    seq = sim.control.last_seq()
    assert _nic(clients, sim, "nic-ec-2").provisioning_state == "Succeeded"
    puts = [r["status"] for r in sim.control.requests(seq) if r["method"] == "PUT"]
    assert puts[0] == 429 and puts[-1] in (200, 201), puts


def test_vm_on_a_nic_still_updating_is_a_retryable_429(sim: Simulator, strict: Clients) -> None:
    sim.control.set_timing("azure", 0.2, seed=1)  # NIC put: 0.4-2 s Updating
    path = f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/networkInterfaces/nic-slow"
    body = {
        "location": LOCATION,
        "properties": {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": subnet_id(sim)}}}]},
    }
    created = strict.network.send_request(HttpRequest("PUT", f"{path}?api-version=2024-07-01", json=body))
    assert created.json()["properties"]["provisioningState"] == "Updating"
    with pytest.raises(HttpResponseError) as caught:
        strict.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, "vm-early", vm_model([path]))
    assert caught.value.status_code == 429
    assert caught.value.error.details[0].code == "ReferencedResourceNotProvisioned"
    assert "is in Updating state" in caught.value.error.details[0].message


def test_vm_put_may_not_see_its_new_nic_yet(sim: Simulator, arm: Arm, strict: Clients) -> None:
    nic = arm.nic()
    sim.control.set_consistency_rate(1.0, not_found=True)
    with pytest.raises(ResourceNotFoundError) as caught:
        strict.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, "vm-soon", vm_model([nic.id]))
    assert caught.value.error.code == "NotFound" and nic.id in caught.value.message
    sim.control.set_consistency_rate(0)  # the NIC becomes visible: the same PUT succeeds
    poller = strict.compute.virtual_machines.begin_create_or_update(
        RESOURCE_GROUP, "vm-soon", vm_model([nic.id])
    )
    assert poller.result().provisioning_state == "Succeeded"


def test_role_assignment_propagation_then_access(sim: Simulator, strict: Clients) -> None:
    scope = f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}"
    sim.control.delay_authorization(sim.client_id, scope, 2)
    with pytest.raises(HttpResponseError) as caught:
        list(strict.compute.virtual_machines.list(RESOURCE_GROUP))
    assert (caught.value.status_code, caught.value.error.code) == (403, "AuthorizationFailed")
    assert "If access was recently granted" in caught.value.message
    time.sleep(2.1)
    assert list(strict.compute.virtual_machines.list(RESOURCE_GROUP)) == []


def test_resource_group_being_created_is_not_found_for_a_while(sim: Simulator, strict: Clients) -> None:
    sim.control.add_resource_group("rg-new", LOCATION, ready_after_seconds=2)
    with pytest.raises(ResourceNotFoundError) as caught:
        list(strict.compute.virtual_machines.list("rg-new"))
    assert caught.value.error.code == "ResourceGroupNotFound"
    time.sleep(2.1)
    assert list(strict.compute.virtual_machines.list("rg-new")) == []


def test_expired_operation_urls_answer_404(sim: Simulator, arm: Arm, strict: Clients) -> None:
    nic = arm.nic()
    sim.control.set_provisioning_seconds(5)
    sim.control.expire_operations(0)
    poller = strict.compute.virtual_machines.begin_create_or_update(
        RESOURCE_GROUP, "vm-expiry", vm_model([nic.id])
    )
    with pytest.raises(HttpResponseError) as caught:
        poller.result()
    assert caught.value.status_code == 404
    vm = strict.compute.virtual_machines.get(RESOURCE_GROUP, "vm-expiry")  # re-reading the resource works
    assert vm.provisioning_state == "Creating"


def test_policy_appends_tags_and_a_system_assigned_identity(sim: Simulator, arm: Arm) -> None:
    sim.control.set_policy({"costCenter": "policy-default", "environment": "prod"}, True)
    vm = arm.vm()
    assert vm.tags == {"costCenter": "42", "environment": "prod"}  # the VM's own value wins
    assert vm.identity.type == "SystemAssigned" and vm.identity.principal_id and vm.identity.tenant_id


def test_out_of_band_changes(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    control = sim.control
    control.out_of_band("resize", RESOURCE_GROUP, vm.name, size="Standard_D4s_v5")
    control.out_of_band("set-tags", RESOURCE_GROUP, vm.name, tags={"owner": "someone-else"})
    changed = clients.compute.virtual_machines.get(RESOURCE_GROUP, vm.name)
    assert changed.hardware_profile.vm_size == "Standard_D4s_v5" and changed.tags == {"owner": "someone-else"}
    assert changed.etag != vm.etag
    control.out_of_band("stop", RESOURCE_GROUP, vm.name, deallocate=True)
    statuses = clients.compute.virtual_machines.instance_view(RESOURCE_GROUP, vm.name).statuses
    assert "PowerState/deallocated" in [s.code for s in statuses]
    nic_id = vm.network_profile.network_interfaces[0].id
    control.out_of_band("remove-nic", RESOURCE_GROUP, vm.name, nic_id=nic_id)
    assert (
        clients.compute.virtual_machines.get(RESOURCE_GROUP, vm.name).network_profile.network_interfaces == []
    )
    assert (
        clients.network.network_interfaces.get(RESOURCE_GROUP, nic_id.rsplit("/", 1)[1]).virtual_machine
        is None
    )
    control.out_of_band("delete", RESOURCE_GROUP, vm.name)
    with pytest.raises(ResourceNotFoundError):
        clients.compute.virtual_machines.get(RESOURCE_GROUP, vm.name)


def test_injected_fault_carries_details_and_additional_info(sim: Simulator, strict: Clients) -> None:
    sim.control.inject_fault(
        method="GET",
        path_regex="/virtualMachines$",
        status=409,
        code="Conflict",
        message="Policy denied it.",
        details=[{"code": "RequestDisallowedByPolicy", "message": "Resource was disallowed by policy."}],
        additional_info=[
            {"type": "PolicyViolation", "info": {"policyDefinitionDisplayName": "Allowed sizes"}}
        ],
    )
    with pytest.raises(HttpResponseError) as caught:
        list(strict.compute.virtual_machines.list(RESOURCE_GROUP))
    error = caught.value.response.json()["error"]
    assert error["details"][0]["code"] == "RequestDisallowedByPolicy"
    assert error["additionalInfo"][0]["type"] == "PolicyViolation"


def test_rate_limit_headers_on_every_answer_including_polls(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    sim.control.set_provisioning_seconds(1)
    nic = arm.nic()
    body = vm_model([nic.id]).as_dict()
    path = f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/vm-rl"
    created = clients.compute.send_request(HttpRequest("PUT", f"{path}?api-version=2025-04-01", json=body))
    assert int(created.headers["x-ms-ratelimit-remaining-subscription-writes"]) > 0
    assert int(created.headers["x-ms-ratelimit-remaining-subscription-global-writes"]) > 0
    assert "Microsoft.Compute/PutVM3Min;" in created.headers["x-ms-ratelimit-remaining-resource"]
    poll = clients.compute.send_request(HttpRequest("GET", created.headers["Azure-AsyncOperation"]))
    assert int(poll.headers["x-ms-ratelimit-remaining-subscription-reads"]) > 0
    assert "Microsoft.Compute/GetOperation3Min;" in poll.headers["x-ms-ratelimit-remaining-resource"]


def test_disk_patch_edits_tags_of_an_orphaned_disk(arm: Arm, clients: Clients) -> None:
    vm = arm.vm(os_disk_delete="Detach")
    clients.compute.virtual_machines.begin_delete(RESOURCE_GROUP, vm.name).result()
    disk_name = vm.storage_profile.os_disk.name
    updated = clients.compute.disks.begin_update(
        RESOURCE_GROUP, disk_name, cm.DiskUpdate(tags={"azureedition.io_orphaned": "true"})
    ).result()
    assert updated.tags == {"azureedition.io_orphaned": "true"}
    assert clients.compute.disks.get(RESOURCE_GROUP, disk_name).tags == {"azureedition.io_orphaned": "true"}


def test_vm_lists_with_status_only_carry_instance_views(sim: Simulator, arm: Arm, clients: Clients) -> None:
    arm.vm()
    listed = list(clients.compute.virtual_machines.list_all(status_only="true"))
    assert [s.code for s in listed[0].instance_view.statuses][-1] == "PowerState/running"
    base = f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines"
    by_rg = clients.compute.send_request(HttpRequest("GET", f"{base}?api-version=2025-04-01&statusOnly=true"))
    assert by_rg.json()["value"][0]["properties"]["instanceView"]["statuses"]
