"""The ``azure`` profile walked through the real SDKs: durations, Retry-After, lifecycles as Azure shows them.

Each test turns the session simulator to ``azure`` at a small time scale (the ``sim`` fixture turns it
back to ``instant``); every duration below is the real-Azure range times that scale.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.rest import HttpRequest
from azure.mgmt.network import models as nm

from azure_edition_simulator import Simulator
from azure_edition_simulator.timing import AZURE_DURATIONS, RETRY_AFTER_RANGE, Timing, format_seconds

from .conftest import LOCATION, RESOURCE_GROUP, Arm, Clients, subnet_id, vm_model

pytestmark = pytest.mark.integration

SCALE = 0.01  # VM create 0.3-0.6 s; Retry-After 0.1-0.35 s rounds to "0" (the client's polling interval)


def _send(clients: Clients, method: str, path: str, body: Any = None, api: str = "2024-07-01") -> Any:
    separator = "&" if "?" in path else "?"
    response = clients.compute.send_request(
        HttpRequest(method, f"{path}{separator}api-version={api}", json=body)
    )
    response.read()
    return response


def _rg_path(sim: Simulator) -> str:
    return f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}"


def _assert_retry_after(headers: Any) -> None:
    """10-35 s scaled, or no header at all."""
    value = headers.get("Retry-After")
    if value is not None:
        low, high = RETRY_AFTER_RANGE
        assert round(low * SCALE) <= int(value) <= round(high * SCALE), value


def _wait_state(clients: Clients, path: str, api: str, wanted: str, timeout: float = 10.0) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = _send(clients, "GET", path, api=api)
        state = (
            "NotFound" if response.status_code == 404 else response.json()["properties"]["provisioningState"]
        )
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == wanted:
            return seen
        time.sleep(0.01)
    raise AssertionError(f"{path}: never {wanted}; saw {seen}")


# --- pure: the profile's choices ---------------------------------------------------------------------------


def test_same_seed_same_choices_and_durations_in_azure_ranges() -> None:
    def draw(seed: int) -> list[Any]:
        timing = Timing("azure", 1.0, seed)
        return [(kind, timing.duration(kind, 0), timing.retry_after(kind, 1)) for kind in AZURE_DURATIONS] * 1

    first, again, other = draw(7), draw(7), draw(8)
    assert first == again and first != other
    for kind, duration, retry_after in first:
        low, high = AZURE_DURATIONS[kind]
        assert low <= duration <= high
        assert retry_after is None or 10 <= int(retry_after) <= 35


def test_some_responses_carry_no_retry_after_and_scaling_shrinks_everything() -> None:
    timing = Timing("azure", 0.05, seed=3)
    values = [timing.retry_after("vm.update", 1) for _ in range(200)]
    assert None in values and any(v is not None for v in values)
    assert {int(v) for v in values if v is not None} <= {0, 1, 2}  # 0.5-1.75 s, whole seconds
    assert all(timing.retry_after("vm.create", 1) is not None for _ in range(50))  # creates always carry one
    assert 1.5 <= Timing("azure", 0.05, seed=1).duration("vm.create", 0) <= 3.0
    instant = Timing("instant")
    assert instant.duration("vm.create", 0.5) == 0.5 and instant.duration("network.put", 0.5) == 0.0
    assert instant.retry_after("poll", 1) == "1"
    assert format_seconds(12) == "12" and format_seconds(0.123) == "0" and format_seconds(1.6) == "2"
    with pytest.raises(ValueError):
        Timing("slow")


# --- through the SDKs --------------------------------------------------------------------------------------


def test_vm_create_takes_azure_time_and_its_201_lacks_what_azure_fills_later(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    sim.control.set_timing("azure", SCALE, seed=5)
    nic = arm.nic()
    _wait_state(clients, nic.id, "2024-07-01", "Succeeded")
    path = f"{_rg_path(sim)}/providers/Microsoft.Compute/virtualMachines/vm-timed"
    body = vm_model([nic.id]).as_dict()
    started = time.monotonic()
    created = _send(clients, "PUT", path, body, api="2025-04-01")
    assert created.status_code == 201, created.text()
    _assert_retry_after(created.headers)
    props = created.json()["properties"]
    assert props["provisioningState"] == "Creating"
    assert "timeCreated" not in props and "exactVersion" not in props["storageProfile"]["imageReference"]
    assert "id" not in props["storageProfile"]["osDisk"]["managedDisk"]
    poll = _send(clients, "GET", created.headers["Azure-AsyncOperation"].split("?")[0], api="2025-04-01")
    assert poll.json()["status"] == "InProgress"
    _assert_retry_after(poll.headers)
    assert _wait_state(clients, path, "2025-04-01", "Succeeded") == ["Creating", "Succeeded"]
    elapsed = time.monotonic() - started
    low, high = AZURE_DURATIONS["vm.create"]
    assert low * SCALE * 0.9 <= elapsed <= high * SCALE + 2.0, elapsed
    done = _send(clients, "GET", path, api="2025-04-01").json()["properties"]
    assert done["timeCreated"] and done["storageProfile"]["osDisk"]["managedDisk"]["id"]
    op = next(o for o in sim.control.operations() if o["kind"] == "vm.create")
    assert low * SCALE <= op["due"] - op["startEpoch"] <= high * SCALE


def test_sdk_poller_completes_under_the_azure_profile(sim: Simulator, arm: Arm, clients: Clients) -> None:
    sim.control.set_timing("azure", SCALE, seed=6)
    vm = arm.vm()  # begin_create_or_update(...).result() for the public IP, the NIC and the VM
    assert vm.provisioning_state == "Succeeded"
    poller = clients.compute.virtual_machines.begin_delete(RESOURCE_GROUP, vm.name)
    assert clients.compute.virtual_machines.get(RESOURCE_GROUP, vm.name).provisioning_state == "Deleting"
    poller.result()


def test_nic_and_public_ip_pass_through_updating_and_stay_readable_while_deleting(
    sim: Simulator, clients: Clients
) -> None:
    sim.control.set_timing("azure", SCALE, seed=9)
    nic_path = f"{_rg_path(sim)}/providers/Microsoft.Network/networkInterfaces/nic-lifecycle"
    body = {
        "location": LOCATION,
        "properties": {
            "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id(sim)}}}]
        },
    }
    created = _send(clients, "PUT", nic_path, body)
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Updating"
    assert _wait_state(clients, nic_path, "2024-07-01", "Succeeded") == ["Updating", "Succeeded"]
    deleted = _send(clients, "DELETE", nic_path)
    assert deleted.status_code == 202 and "Location" in deleted.headers
    assert _wait_state(clients, nic_path, "2024-07-01", "NotFound") == ["Deleting", "NotFound"]

    pip_path = f"{_rg_path(sim)}/providers/Microsoft.Network/publicIPAddresses/pip-lifecycle"
    pip = _send(clients, "PUT", pip_path, {"location": LOCATION, "sku": {"name": "Standard"}})
    assert pip.json()["properties"]["provisioningState"] == "Updating"
    assert _wait_state(clients, pip_path, "2024-07-01", "Succeeded") == ["Updating", "Succeeded"]


def test_dynamic_public_ip_has_no_address_until_its_vm_runs(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    sim.control.set_timing("azure", SCALE, seed=10)
    pip = clients.network.public_ip_addresses.begin_create_or_update(
        RESOURCE_GROUP,
        "pip-dynamic",
        nm.PublicIPAddress(
            location=LOCATION, sku=nm.PublicIPAddressSku(name="Basic"), public_ip_allocation_method="Dynamic"
        ),
    ).result()
    assert pip.ip_address is None
    nic = arm.nic("nic-dynamic", public_ip_id=pip.id)
    assert clients.network.public_ip_addresses.get(RESOURCE_GROUP, "pip-dynamic").ip_address is None
    poller = clients.compute.virtual_machines.begin_create_or_update(
        RESOURCE_GROUP, "vm-dynamic", vm_model([nic.id])
    )
    assert clients.network.public_ip_addresses.get(RESOURCE_GROUP, "pip-dynamic").ip_address is None
    poller.result()
    assert clients.network.public_ip_addresses.get(RESOURCE_GROUP, "pip-dynamic").ip_address
