"""Fault injection, failed operations and the request log, observed through the real SDKs."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from azure_edition_simulator import Simulator

from .conftest import RESOURCE_GROUP, Arm, Clients, secret_credential, vm_model

pytestmark = pytest.mark.integration


def test_injected_503_is_retried_by_the_sdk_and_logged(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    since = sim.control.last_seq()
    fault = sim.control.inject_fault(
        method="GET",
        path_regex=r"/virtualMachines/branch-fs-01$",
        status=503,
        headers={"Retry-After": "0"},
        times=2,
    )
    assert clients.compute.virtual_machines.get(RESOURCE_GROUP, vm.name).name == vm.name
    gets = [e for e in sim.control.requests(since) if e["operation"] == "VirtualMachines_Get"]
    assert [(e["status"], e["fault"]) for e in gets] == [(503, fault), (503, fault), (200, None)]
    assert gets[0]["errorCode"] == "ServiceUnavailable"
    assert sim.control.faults()[0]["hits"] == 2


def test_injected_error_code_surfaces_as_error_code(sim: Simulator, arm: Arm, strict: Clients) -> None:
    nic = arm.nic()
    sim.control.inject_fault(
        method="PUT",
        operation="VirtualMachines_CreateOrUpdate",
        status=409,
        code="QuotaExceeded",
        message="Operation could not be completed as it results in exceeding approved standardDASv5Family Cores quota.",
    )
    with pytest.raises(HttpResponseError) as refused:
        strict.compute.virtual_machines.begin_create_or_update(
            RESOURCE_GROUP, "vm", vm_model([nic.id])
        ).result()
    assert refused.value.status_code == 409
    assert refused.value.error.code == "QuotaExceeded"
    # times=1: the next attempt goes through.
    vm = strict.compute.virtual_machines.begin_create_or_update(
        RESOURCE_GROUP, "vm", vm_model([nic.id])
    ).result()
    assert vm.provisioning_state == "Succeeded"


def test_injected_latency_delays_the_answer(sim: Simulator, arm: Arm, clients: Clients) -> None:
    pip = arm.public_ip()
    sim.control.inject_fault(method="GET", path_regex="publicIPAddresses", latency_seconds=0.6)
    started = time.monotonic()
    assert clients.network.public_ip_addresses.get(RESOURCE_GROUP, pip.name).name == pip.name
    assert time.monotonic() - started >= 0.6


def test_dropped_connection_fails_a_strict_client_and_is_retried_by_default(
    sim: Simulator, arm: Arm, clients: Clients, strict: Clients
) -> None:
    pip = arm.public_ip()
    sim.control.inject_fault(method="GET", path_regex="publicIPAddresses", drop=True, times=1)
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        strict.network.public_ip_addresses.get(RESOURCE_GROUP, pip.name)
    sim.control.inject_fault(method="GET", path_regex="publicIPAddresses", drop=True, times=1)
    assert clients.network.public_ip_addresses.get(RESOURCE_GROUP, pip.name).name == pip.name
    dropped = [e for e in sim.control.requests() if e["errorCode"] == "ConnectionDropped"]
    assert len(dropped) == 2


def test_failed_operation_fails_the_poller_and_the_vm(sim: Simulator, arm: Arm, clients: Clients) -> None:
    nic = arm.nic()
    sim.control.fail_operation(
        "VirtualMachines_CreateOrUpdate",
        code="AllocationFailed",
        message="Allocation failed. Please try another size.",
    )
    with pytest.raises(HttpResponseError) as failed:
        clients.compute.virtual_machines.begin_create_or_update(
            RESOURCE_GROUP, "vm", vm_model([nic.id])
        ).result()
    assert failed.value.error.code == "AllocationFailed"
    assert clients.compute.virtual_machines.get(RESOURCE_GROUP, "vm").provisioning_state == "Failed"
    statuses = [
        op["status"]
        for op in sim.control.operations()
        if op["operationName"] == "VirtualMachines_CreateOrUpdate"
    ]
    assert statuses == ["Failed"]
    # A retry of the PUT recovers the VM.
    vm = clients.compute.virtual_machines.begin_create_or_update(
        RESOURCE_GROUP, "vm", vm_model([nic.id])
    ).result()
    assert vm.provisioning_state == "Succeeded"


def test_failed_action_on_the_location_url(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    sim.control.fail_operation("VirtualMachines_AssessPatches", code="VMAgentStatusCommunicationError")
    with pytest.raises(HttpResponseError) as failed:
        clients.compute.virtual_machines.begin_assess_patches(RESOURCE_GROUP, vm.name).result()
    assert failed.value.error.code == "VMAgentStatusCommunicationError"


def test_token_endpoint_faults_are_retried_by_azure_identity(sim: Simulator) -> None:
    sim.control.inject_fault(method="POST", operation="Identity_Token", status=500, times=1)
    assert secret_credential(sim).get_token(sim.credential_scope).token
    assert sim.control.count("Identity_Token", 500) == 1
    assert sim.control.count("Identity_Token", 200) == 1


def test_fault_filters_and_removal(sim: Simulator, arm: Arm, strict: Clients) -> None:
    vm = arm.vm()
    fault = sim.control.inject_fault(method="POST", path_regex="assessPatches", status=500, times=None)
    assert strict.compute.virtual_machines.get(RESOURCE_GROUP, vm.name).name == vm.name  # GET unaffected
    for _ in range(2):
        with pytest.raises(HttpResponseError):
            strict.compute.virtual_machines.begin_assess_patches(RESOURCE_GROUP, vm.name)
    sim.control.remove_fault(fault)
    assert (
        strict.compute.virtual_machines.begin_assess_patches(RESOURCE_GROUP, vm.name).result().status
        == "Succeeded"
    )


def test_counters_and_log_reset(sim: Simulator, arm: Arm, clients: Clients) -> None:
    arm.vm()
    counters = sim.control.counters()
    assert counters["operations"]["VirtualMachines_CreateOrUpdate"]["statuses"] == {"201": 1}
    assert counters["requestsTotal"] >= 4
    entry = next(e for e in sim.control.requests() if e["operation"] == "PublicIPAddresses_CreateOrUpdate")
    assert entry["method"] == "PUT"
    assert entry["path"].endswith("/publicIPAddresses/branch-fs-01-pip")
    assert entry["clientId"] == sim.client_id
    assert entry["query"]["api-version"]
    sim.control.reset_counters()
    assert sim.control.counters()["requestsTotal"] == 0
    assert sim.control.requests() == []
