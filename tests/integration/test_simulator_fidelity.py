"""Fidelity: every published example in ``tests/fixtures/azure-rest-examples`` replayed against the simulator.

For each example the test sets up what the example presupposes (resource group, subnet, NIC, VM, guest
state), sends the example's request through the real SDK pipeline (``client.send_request``: the same
auth, TLS and retry policies the SDK operations use, with the example's raw JSON and api-version) and
compares the response with the example's response **by keys and value types, recursively**.

Rules of the comparison (:func:`shape_diff`):

* every key of the example must be present with a value of the same JSON type (int/float both count
  as numbers; ``null`` in the example accepts ``null`` or an object, as the API models declare those
  fields nullable objects);
* values are not compared (ids, names, GUIDs, timestamps, addresses and locations legitimately differ);
  ``tags`` is a user map, so only its type is compared (the run-command example answers tags its request
  did not send);
* the simulator may return more keys than an example (real Azure does too, as api-versions add fields);
* lists: each element of the example is compared with the element at the same index (or the last one).

Tolerated differences (features the simulator does not model), by example:

* ``VirtualMachine_Get``: ``resources`` (VM extensions) and ``managedBy`` (VMSS membership).
* ``VirtualMachine_Get_InstanceView``: ``extensions`` and ``vmAgent.extensionHandlers`` (no extensions).
* ``NetworkInterfaceGet``: ``properties.dscpConfiguration``.
* ``PublicIpAddressCreateDefaults``: ``properties.ipConfiguration`` (a fresh public IP is associated with
  nothing; the example shows one associated).
* ``VirtualMachineImage_ListSkus_MaximumSet_Gen``: ``tags`` and ``extendedLocation`` (edge zones).

Quirks from tests/fixtures/azure-rest-examples/SOURCES.md: the Hotpatch create example uses ``2016-Datacenter``, which Azure rejects with
``enableHotpatching: true`` — replayed verbatim it must fail with ``InvalidParameter``; replayed with an
Azure Edition SKU it must match. The example ``Location`` headers start their query with ``&``; the
simulator's are well-formed URLs, and only their presence is compared. Both create examples ask for
``Standard_D1_v2`` with a ``Premium_LRS`` OS disk, which Azure refuses (Dv2 has no premium storage:
``InvalidParameter``); replayed verbatim they must fail so, and replayed with ``Standard_DS1_v2`` (the
size their responses show) they must match.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.rest import HttpRequest, HttpResponse

from azure_edition_simulator import Simulator

from .conftest import Clients

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tests" / "fixtures" / "azure-rest-examples"  # copies with source and licence: SOURCES.md
AE_SKU = "2022-datacenter-azure-edition-core"
PREMIUM_SIZE = "Standard_DS1_v2"  # the create examples' Standard_D1_v2 has no premium storage

TOLERATED: dict[str, set[str]] = {
    "VirtualMachine_Get.json": {"$.resources", "$.managedBy"},
    "VirtualMachine_Get_InstanceView.json": {"$.extensions", "$.vmAgent.extensionHandlers"},
    "NetworkInterfaceGet.json": {"$.properties.dscpConfiguration"},
    "PublicIpAddressCreateDefaults.json": {"$.properties.ipConfiguration"},
    "VirtualMachineImage_ListSkus_MaximumSet_Gen.json": {"$[].tags", "$[].extendedLocation"},
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_diff(
    expected: Any, actual: Any, path: str = "$", tolerated: frozenset[str] = frozenset()
) -> list[str]:
    """Differences in keys and value types between an example and a response (see module docstring)."""
    generic = re.sub(r"\[\d+\]", "[]", path)
    if path in tolerated or generic in tolerated:
        return []
    kind_expected, kind_actual = _kind(expected), _kind(actual)
    if kind_expected == "null":
        return (
            [] if kind_actual in ("null", "object") else [f"{path}: expected null/object, got {kind_actual}"]
        )
    if kind_expected != kind_actual:
        return [f"{path}: expected {kind_expected}, got {kind_actual}"]
    problems: list[str] = []
    if isinstance(expected, dict) and not generic.endswith(".tags"):
        for name, value in expected.items():
            child = f"{path}.{name}"
            if name not in actual:
                if child not in tolerated and re.sub(r"\[\d+\]", "[]", child) not in tolerated:
                    problems.append(f"{child}: missing")
                continue
            problems += shape_diff(value, actual[name], child, tolerated)
    elif isinstance(expected, list) and expected:
        if not actual:
            return [f"{path}: expected {len(expected)} element(s), got none"]
        for index, item in enumerate(expected):
            problems += shape_diff(item, actual[min(index, len(actual) - 1)], f"{path}[{index}]", tolerated)
    return problems


def test_shape_diff_finds_missing_keys_and_type_changes() -> None:
    expected = {"a": 1, "b": {"c": "x"}, "d": [{"e": True}], "f": None}
    assert (
        shape_diff(expected, {"a": 2.5, "b": {"c": "y", "extra": 1}, "d": [{"e": False}], "f": {"g": 1}})
        == []
    )
    assert shape_diff(expected, {"a": "1", "b": {}, "d": [], "f": None}) == [
        "$.a: expected number, got string",
        "$.b.c: missing",
        "$.d: expected 1 element(s), got none",
    ]
    assert (
        shape_diff(
            expected, {"a": 1, "b": {"c": "x"}, "d": [{}], "f": None}, tolerated=frozenset({"$.d[].e"})
        )
        == []
    )


# --- replay machinery -------------------------------------------------------------------------------------


def load(name: str) -> dict[str, Any]:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.fail(f"published example {path} is missing (copy it into tests/fixtures with its source)")
    return json.loads(path.read_text())


class Replay:
    """Sends examples' requests with placeholders mapped onto the simulated world."""

    def __init__(self, sim: Simulator, clients: Clients):
        self.sim = sim
        self.client = clients.compute
        self.sub = sim.subscription_id

    def substitute(self, value: Any, names: dict[str, str]) -> Any:
        text = json.dumps(value)
        for placeholder, real in {
            "{subscription-id}": self.sub,
            "{your-password}": "Sim-Passw0rd!2026",  # a placeholder a user fills in; Azure checks complexity
            "/subscriptions/subid/": f"/subscriptions/{self.sub}/",
            **names,
        }.items():
            text = text.replace(placeholder, real)
        return json.loads(text)

    def send(self, method: str, path: str, api_version: str, body: Any = None, **query: str) -> HttpResponse:
        params = "&".join(f"{k}={v}" for k, v in {**query, "api-version": api_version}.items())
        request = HttpRequest(method, f"{path}?{params}", json=body)
        response = self.client.send_request(request)
        response.read()
        return response

    def poll_location(self, response: HttpResponse) -> HttpResponse:
        location = response.headers["Location"]
        for _ in range(1000):
            result = self.client.send_request(HttpRequest("GET", location))
            result.read()
            if result.status_code != 202:
                return result
            time.sleep(0.01)
        raise AssertionError(f"{location} never finished")

    def rg(self, name: str, location: str) -> str:
        self.sim.control.add_resource_group(name, location)
        return f"/subscriptions/{self.sub}/resourceGroups/{name}"

    def subnet(self, rg: str, vnet: str, name: str, location: str) -> str:
        return self.sim.control.add_subnet(vnet, name, resource_group=rg, location=location)

    def nic(self, rg: str, name: str, location: str, subnet: str, **properties: Any) -> dict[str, Any]:
        body = {
            "location": location,
            "properties": {
                "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": subnet}}}],
                **properties,
            },
        }
        path = f"/subscriptions/{self.sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/{name}"
        response = self.send("PUT", path, "2024-07-01", body)
        assert response.status_code in (200, 201), response.text()
        return response.json()

    def vm(self, rg: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/subscriptions/{self.sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
        response = self.send("PUT", path, "2025-04-01", body)
        assert response.status_code in (200, 201), response.text()
        return self.provisioned(path)

    def provisioned(self, path: str) -> dict[str, Any]:
        """The resource once its operation finished (the azure profile takes a while, as Azure does)."""
        for _ in range(1000):
            doc = self.send("GET", path, "2025-04-01").json()
            if doc["properties"]["provisioningState"] in ("Succeeded", "Failed"):
                return doc
            time.sleep(0.01)
        raise AssertionError(f"{path} never finished provisioning")


# The azure profile at a time scale that keeps a replay fast: a VM create takes 60-120 ms, an
# assessPatches 60-240 ms, Retry-After 20-70 ms or absent; shapes must match in both profiles.
AZURE_TIME_SCALE = 0.002


@pytest.fixture(params=["instant", "azure"])
def replay(request: pytest.FixtureRequest, sim: Simulator, clients: Clients) -> Replay:
    if request.param == "azure":
        sim.control.set_timing("azure", AZURE_TIME_SCALE, seed=11)
    return Replay(sim, clients)


def assert_shape(example: str, expected: Any, actual: Any) -> None:
    problems = shape_diff(expected, actual, tolerated=frozenset(TOLERATED.get(example, set())))
    assert problems == [], f"{example}: {problems}\nresponse: {json.dumps(actual, indent=1)}"


def _my_vm_world(replay: Replay) -> tuple[str, str]:
    """myResourceGroup (westus) with a NIC named like the create examples' placeholder."""
    replay.rg("myResourceGroup", "westus")
    subnet = replay.subnet("myResourceGroup", "my-vnet", "default", "westus")
    nic = replay.nic("myResourceGroup", "existing-nic", "westus", subnet)
    return "myResourceGroup", nic["id"]


def _minimal_vm(
    nic_id: str, *, location: str = "westus", sku: str = AE_SKU, **properties: Any
) -> dict[str, Any]:
    return {
        "location": location,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2as_v5"},
            "storageProfile": {
                "imageReference": {
                    "publisher": "MicrosoftWindowsServer",
                    "offer": "WindowsServer",
                    "sku": sku,
                    "version": "latest",
                }
            },
            "osProfile": {
                "computerName": "myVM",
                "adminUsername": "azureuser",
                "adminPassword": "Sim-Passw0rd!2026",
                "windowsConfiguration": {
                    "provisionVMAgent": True,
                    "enableAutomaticUpdates": True,
                    "patchSettings": {
                        "patchMode": "AutomaticByPlatform",
                        "enableHotpatching": True,
                        "assessmentMode": "AutomaticByPlatform",
                    },
                },
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]},
            **properties,
        },
    }


# --- Compute -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "sku"),
    [
        ("VirtualMachine_Create_WindowsVmWithAutomaticByPlatformSettings.json", None),
        (
            "VirtualMachine_Create_WindowsVmWithPatchSettingModeOfAutomaticByPlatformAndEnableHotPatchingTrue.json",
            AE_SKU,
        ),
    ],
)
def test_vm_create_examples(replay: Replay, example: str, sku: str | None) -> None:
    data = load(example)
    rg, _ = _my_vm_world(replay)
    params = replay.substitute(data["parameters"], {"{existing-nic-name}": "existing-nic"})
    body = copy.deepcopy(params["parameters"])
    body["properties"]["hardwareProfile"]["vmSize"] = PREMIUM_SIZE  # see the module docstring
    if sku:
        body["properties"]["storageProfile"]["imageReference"]["sku"] = sku
    path = f"/subscriptions/{replay.sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{params['vmName']}"
    created = replay.send("PUT", path, params["api-version"], body)
    assert created.status_code == 201, created.text()
    assert "Azure-AsyncOperation" in created.headers
    assert_shape(example, data["responses"]["201"]["body"], created.json())
    updated = replay.send("PUT", path, params["api-version"], body)
    assert updated.status_code == 200, updated.text()
    assert_shape(example, data["responses"]["200"]["body"], updated.json())


def test_hotpatch_example_verbatim_is_refused_as_azure_does(replay: Replay) -> None:
    example = "VirtualMachine_Create_WindowsVmWithPatchSettingModeOfAutomaticByPlatformAndEnableHotPatchingTrue.json"
    data = load(example)
    rg, _ = _my_vm_world(replay)
    params = replay.substitute(data["parameters"], {"{existing-nic-name}": "existing-nic"})
    path = f"/subscriptions/{replay.sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{params['vmName']}"
    response = replay.send("PUT", path, params["api-version"], params["parameters"])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidParameter"


def test_create_example_verbatim_is_refused_for_premium_disk_on_dv2(replay: Replay) -> None:
    example = "VirtualMachine_Create_WindowsVmWithAutomaticByPlatformSettings.json"
    data = load(example)
    rg, _ = _my_vm_world(replay)
    params = replay.substitute(data["parameters"], {"{existing-nic-name}": "existing-nic"})
    path = f"/subscriptions/{replay.sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{params['vmName']}"
    response = replay.send("PUT", path, params["api-version"], params["parameters"])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidParameter"
    assert "does not support the storage account type Premium_LRS" in response.json()["error"]["message"]


def test_vm_get_example(replay: Replay) -> None:
    example = "VirtualMachine_Get.json"
    data = load(example)
    rg, nic_id = _my_vm_world(replay)
    shown = data["responses"]["200"]["body"]
    properties = replay.substitute(copy.deepcopy(shown["properties"]), {})
    extra = {
        k: properties[k]
        for k in (
            "availabilitySet",
            "proximityPlacementGroup",
            "applicationProfile",
            "userData",
            "diagnosticsProfile",
            "extensionsTimeBudget",
        )
    }
    body = _minimal_vm(nic_id, **extra)
    body["tags"] = shown["tags"]
    body["properties"]["storageProfile"]["dataDisks"] = [
        {k: v for k, v in disk.items() if k != "managedDisk"} | {"createOption": "Empty"}
        for disk in properties["storageProfile"]["dataDisks"]
    ]
    replay.vm(rg, "myVM", body)
    response = replay.send(
        "GET",
        f"/subscriptions/{replay.sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/myVM",
        "2025-04-01",
        **{"$expand": "userData"},
    )
    assert response.status_code == 200
    assert_shape(example, shown, response.json())


def _vm_for_patch_examples(replay: Replay, rg: str, name: str) -> str:
    replay.rg(rg, "westus")
    subnet = replay.subnet(rg, "vnet", "default", "westus")
    nic = replay.nic(rg, f"{name}-nic", "westus", subnet)
    replay.vm(rg, name, _minimal_vm(nic["id"]))
    return (
        f"/subscriptions/{replay.sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
    )


def test_instance_view_example(replay: Replay, sim: Simulator) -> None:
    example = "VirtualMachine_Get_InstanceView.json"
    data = load(example)
    rg, nic_id = _my_vm_world(replay)
    body = _minimal_vm(
        nic_id,
        diagnosticsProfile={
            "bootDiagnostics": {"enabled": True, "storageUri": "https://sa.blob.core.windows.net"}
        },
    )
    body["properties"]["storageProfile"]["dataDisks"] = [
        {"lun": 0, "createOption": "Empty", "diskSizeGB": 30}
    ]
    replay.vm(rg, "myVM", body)
    sim.control.set_guest(
        rg,
        "myVM",
        availablePatches={"Security": 1, "Definition": 2},
        rebootPending=True,
        installation={"installedPatchCount": 1},
    )
    response = replay.send(
        "GET",
        f"/subscriptions/{replay.sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/myVM/instanceView",
        "2025-04-01",
    )
    assert response.status_code == 200
    assert_shape(example, data["responses"]["200"]["body"], response.json())


def test_assess_patches_example(replay: Replay, sim: Simulator) -> None:
    example = "VirtualMachine_AssessPatches.json"
    data = load(example)
    path = _vm_for_patch_examples(replay, "myResourceGroupName", "myVMName")
    sim.control.set_guest(
        "myResourceGroupName", "myVMName", availablePatches={"Definition": 1, "UpdateRollUp": 1}
    )
    accepted = replay.send("POST", f"{path}/assessPatches", data["parameters"]["api-version"])
    assert accepted.status_code == 202
    assert "Location" in accepted.headers
    result = replay.poll_location(accepted)
    assert result.status_code == 200
    assert_shape(example, data["responses"]["200"]["body"], result.json())


def test_install_patches_example(replay: Replay, sim: Simulator) -> None:
    example = "VirtualMachine_InstallPatches.json"
    data = load(example)
    path = _vm_for_patch_examples(replay, "myResourceGroupName", "myVMName")
    sim.control.set_guest(
        "myResourceGroupName", "myVMName", availablePatches={"Definition": 1, "UpdateRollUp": 1}
    )
    accepted = replay.send(
        "POST",
        f"{path}/installPatches",
        data["parameters"]["api-version"],
        data["parameters"]["installPatchesInput"],
    )
    assert accepted.status_code == 202
    assert "Location" in accepted.headers
    result = replay.poll_location(accepted)
    assert result.status_code == 200
    assert_shape(example, data["responses"]["200"]["body"], result.json())


def test_delete_force_example(replay: Replay) -> None:
    data = load("VirtualMachine_Delete_Force.json")
    rg, nic_id = _my_vm_world(replay)
    replay.vm(rg, "myVM", _minimal_vm(nic_id))
    params = data["parameters"]
    path = f"/subscriptions/{replay.sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/myVM"
    response = replay.send("DELETE", path, params["api-version"], forceDeletion=params["forceDeletion"])
    assert str(response.status_code) in data["responses"]
    assert response.status_code == 202
    assert "Location" in response.headers
    assert replay.poll_location(response).status_code in (200, 204)
    assert replay.send("GET", path, params["api-version"]).status_code == 404


def test_run_command_action_example(replay: Replay) -> None:
    example = "VirtualMachineRunCommand.json"
    data = load(example)
    params = data["parameters"]
    path = _vm_for_patch_examples(replay, params["resourceGroupName"], params["vmName"])
    accepted = replay.send("POST", f"{path}/runCommand", params["api-version"], params["parameters"])
    assert accepted.status_code == 202
    assert "Location" in accepted.headers
    result = replay.poll_location(accepted)
    assert result.status_code == 200
    assert_shape(example, data["responses"]["200"]["body"], result.json())


def test_run_command_resource_examples(replay: Replay) -> None:
    create = load("VirtualMachineRunCommand_CreateOrUpdate.json")
    get = load("VirtualMachineRunCommand_Get.json")
    path = _vm_for_patch_examples(replay, "myResourceGroup", "myVM")
    params = create["parameters"]
    rc_path = f"{path}/runCommands/{params['runCommandName']}"
    created = replay.send("PUT", rc_path, params["api-version"], params["runCommand"])
    assert created.status_code == 201
    assert "Azure-AsyncOperation" in created.headers
    assert_shape(
        "VirtualMachineRunCommand_CreateOrUpdate.json", create["responses"]["201"]["body"], created.json()
    )
    updated = replay.send("PUT", rc_path, params["api-version"], params["runCommand"])
    assert updated.status_code == 200
    assert_shape(
        "VirtualMachineRunCommand_CreateOrUpdate.json", create["responses"]["200"]["body"], updated.json()
    )
    shown = get["responses"]["200"]["body"]
    script_body = {
        "location": "westus",
        "tags": shown["tags"],
        "properties": {k: v for k, v in shown["properties"].items() if k != "provisioningState"},
    }
    assert replay.send("PUT", rc_path, params["api-version"], script_body).status_code == 200
    fetched = replay.send("GET", rc_path, get["parameters"]["api-version"])
    assert fetched.status_code == 200
    assert_shape("VirtualMachineRunCommand_Get.json", shown, fetched.json())


@pytest.mark.parametrize(
    "example",
    ["VirtualMachineImage_ListSkus_MinimumSet_Gen.json", "VirtualMachineImage_ListSkus_MaximumSet_Gen.json"],
)
def test_list_skus_examples(replay: Replay, example: str) -> None:
    data = load(example)
    path = (
        f"/subscriptions/{replay.sub}/providers/Microsoft.Compute/locations/westeurope/publishers/"
        "MicrosoftWindowsServer/artifacttypes/vmimage/offers/WindowsServer/skus"
    )
    response = replay.send("GET", path, data["parameters"]["api-version"])
    assert response.status_code == 200
    skus = response.json()
    assert AE_SKU in {sku["name"] for sku in skus}
    assert_shape(example, data["responses"]["200"]["body"], skus)


# --- Network -------------------------------------------------------------------------------------------------


def _rg1(replay: Replay) -> str:
    replay.rg("rg1", "eastus")
    return replay.subnet("rg1", "rg1-vnet", "default", "eastus")


def _pip(replay: Replay, name: str, body: dict[str, Any]) -> HttpResponse:
    path = (
        f"/subscriptions/{replay.sub}/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/{name}"
    )
    return replay.send("PUT", path, "2024-07-01", body)


def test_nic_create_example(replay: Replay) -> None:
    example = "NetworkInterfaceCreate.json"
    data = load(example)
    _rg1(replay)
    assert _pip(replay, "test-ip", {"location": "eastus"}).status_code == 201
    params = replay.substitute(data["parameters"], {})
    path = f"/subscriptions/{replay.sub}/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/{params['networkInterfaceName']}"
    created = replay.send("PUT", path, params["api-version"], params["parameters"])
    assert created.status_code == 201, created.text()
    assert "Azure-AsyncOperation" in created.headers
    assert_shape(example, data["responses"]["201"]["body"], created.json())
    updated = replay.send("PUT", path, params["api-version"], params["parameters"])
    assert updated.status_code == 200
    assert_shape(example, data["responses"]["200"]["body"], updated.json())


def test_nic_get_example(replay: Replay) -> None:
    example = "NetworkInterfaceGet.json"
    data = load(example)
    subnet = _rg1(replay)
    shown = replay.substitute(data["responses"]["200"]["body"], {})
    assert _pip(replay, "test-ip", {"location": "eastus"}).status_code == 201
    body = {
        "location": "eastus",
        "properties": {
            "ipConfigurations": [
                {
                    "name": c["name"],
                    "properties": {
                        k: v
                        for k, v in c["properties"].items()
                        if k in ("subnet", "publicIPAddress", "privateIPAddressPrefixLength")
                    },
                }
                for c in shown["properties"]["ipConfigurations"]
            ],
            "networkSecurityGroup": shown["properties"]["networkSecurityGroup"],
            "enableAcceleratedNetworking": True,
            "disableTcpStateTracking": True,
        },
    }
    # The example's NIC refers to a network security group, which must exist (Azure: InvalidResourceReference).
    group = replay.send(
        "PUT", shown["properties"]["networkSecurityGroup"]["id"], "2024-07-01", {"location": "eastus"}
    )
    assert group.status_code == 201, group.text()
    nic = replay.send(
        "PUT",
        f"/subscriptions/{replay.sub}/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/test-nic",
        "2024-07-01",
        body,
    )
    assert nic.status_code == 201, nic.text()
    replay.vm("rg1", "vm1", _minimal_vm(nic.json()["id"], location="eastus"))
    assert subnet
    response = replay.send(
        "GET",
        f"/subscriptions/{replay.sub}/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/test-nic",
        data["parameters"]["api-version"],
    )
    assert response.status_code == 200
    assert_shape(example, shown, response.json())


def test_public_ip_create_defaults_example(replay: Replay) -> None:
    example = "PublicIpAddressCreateDefaults.json"
    data = load(example)
    _rg1(replay)
    created = _pip(replay, data["parameters"]["publicIpAddressName"], data["parameters"]["parameters"])
    assert created.status_code == 201
    assert_shape(example, data["responses"]["201"]["body"], created.json())
    updated = _pip(replay, data["parameters"]["publicIpAddressName"], data["parameters"]["parameters"])
    assert updated.status_code == 200
    assert_shape(example, data["responses"]["200"]["body"], updated.json())


def test_public_ip_get_example(replay: Replay) -> None:
    example = "PublicIpAddressGet.json"
    data = load(example)
    subnet = _rg1(replay)
    shown = replay.substitute(data["responses"]["200"]["body"], {})
    body = {
        "location": "westus",
        "properties": {k: shown["properties"][k] for k in ("ddosSettings", "ipTags")},
    }
    name = data["parameters"]["publicIpAddressName"]
    assert _pip(replay, name, body).status_code == 201
    pip_id = (
        f"/subscriptions/{replay.sub}/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/{name}"
    )
    replay.nic("rg1", "testDNS649", "eastus", subnet)
    nic_body = {
        "location": "eastus",
        "properties": {
            "ipConfigurations": [
                {
                    "name": "ipconfig1",
                    "properties": {"subnet": {"id": subnet}, "publicIPAddress": {"id": pip_id}},
                }
            ]
        },
    }
    assert (
        replay.send(
            "PUT",
            f"/subscriptions/{replay.sub}/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/testDNS649",
            "2024-07-01",
            nic_body,
        ).status_code
        == 200
    )
    response = replay.send("GET", pip_id, data["parameters"]["api-version"])
    assert response.status_code == 200
    assert_shape(example, shown, response.json())


def test_every_example_file_is_replayed() -> None:
    """A new example file must get a replay here (or a conscious exclusion)."""
    source = Path(__file__).read_text()
    files = sorted(p.name for p in EXAMPLES.glob("*.json"))
    assert files, f"no examples in {EXAMPLES}"
    assert [name for name in files if name not in source] == []
