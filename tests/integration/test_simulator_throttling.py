"""ARM and Compute throttling: 429 with Retry-After, the rate-limit headers, and what the SDK does with them."""

from __future__ import annotations

import math
import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import models as cm
from azure.mgmt.network import models as nm

from azure_edition_simulator import Simulator
from azure_edition_simulator.throttle import BucketSpec, ThrottleConfig, Throttler

from .conftest import LOCATION, RESOURCE_GROUP, Arm, Clients

pytestmark = pytest.mark.integration


def _rg_request(sim: Simulator) -> HttpRequest:
    return HttpRequest(
        "GET", f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}?api-version=2021-04-01"
    )


def test_throttler_refills_continuously_and_computes_retry_after() -> None:
    now = [0.0]
    throttler = Throttler(ThrottleConfig(buckets={"b": BucketSpec(2, 0.5)}), clock=lambda: now[0])
    assert [throttler.take("b", "k").remaining for _ in range(2)] == [1, 0]
    refused = throttler.take("b", "k")
    assert (refused.allowed, refused.retry_after) == (False, 2)
    now[0] = 2.0
    assert throttler.take("b", "k").allowed
    assert throttler.take("b", "other-key").remaining == 1  # buckets are per key
    assert throttler.throttled_total == 1


def test_subscription_reads_are_throttled_per_principal_with_arm_headers(
    sim: Simulator, strict: Clients
) -> None:
    sim.control.configure_throttling(subscriptionReads={"capacity": 3, "refillPerSecond": 0.5})
    remaining = [
        strict.compute.send_request(_rg_request(sim)).headers["x-ms-ratelimit-remaining-subscription-reads"]
        for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    throttled = strict.compute.send_request(_rg_request(sim))
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    with pytest.raises(HttpResponseError) as refused:
        strict.compute.virtual_machines.get(RESOURCE_GROUP, "anything")
    assert refused.value.status_code == 429
    assert refused.value.error.code == "SubscriptionRequestsThrottled"
    # Another principal in the same subscription has its own bucket.
    sim.control.add_principal(clientId="second-app", clientSecret="s3cret-second")
    other = ClientSecretCredential(
        sim.tenant_id, "second-app", "s3cret-second", authority=sim.authority_host,
        disable_instance_discovery=True, connection_verify=str(sim.ca_path),
    )  # fmt: skip
    token = other.get_token(sim.credential_scope).token
    response = requests.get(
        f"{sim.endpoint}/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}",
        params={"api-version": "2021-04-01"},
        headers={"Authorization": f"Bearer {token}"},
        verify=sim.ca_path,
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["x-ms-ratelimit-remaining-subscription-reads"] == "2"
    assert sim.control.throttled_count() == 2


def test_writes_have_their_own_bucket(sim: Simulator, strict: Clients, arm: Arm) -> None:
    sim.control.configure_throttling(subscriptionWrites={"capacity": 1, "refillPerMinute": 1})
    arm.public_ip("pip-1")
    with pytest.raises(HttpResponseError) as refused:
        strict.network.public_ip_addresses.begin_create_or_update(
            RESOURCE_GROUP, "pip-2", nm.PublicIPAddress(location=LOCATION)
        )
    assert refused.value.error.code == "SubscriptionRequestsThrottled"
    assert refused.value.response.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    assert strict.network.public_ip_addresses.get(RESOURCE_GROUP, "pip-1").name == "pip-1"  # reads unaffected


def test_sdk_retries_after_the_advertised_delay(sim: Simulator, clients: Clients) -> None:
    sim.control.configure_throttling(subscriptionReads={"capacity": 1, "refillPerSecond": 1})
    clients.compute.send_request(_rg_request(sim))
    started = time.monotonic()
    response = clients.compute.send_request(_rg_request(sim))
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.9  # azure-core slept Retry-After: 1
    assert sim.control.counters()["operations"]["ResourceGroups_Get"]["statuses"] == {"200": 2, "429": 1}


def test_vm_update_bucket_counts_run_command(sim: Simulator, arm: Arm, strict: Clients) -> None:
    vm = arm.vm()
    sim.control.configure_throttling(vmUpdate={"capacity": 2, "refillPerMinute": 1})
    request = cm.RunCommandInput(command_id="RunPowerShellScript", script=["hostname"])
    raw = HttpRequest(
        "POST",
        f"{vm.id}/runCommand?api-version=2026-04-01",
        json={"commandId": "RunPowerShellScript", "script": ["hostname"]},
    )
    first = strict.compute.send_request(raw)
    assert first.status_code == 202
    assert first.headers["x-ms-ratelimit-remaining-resource"] == "Microsoft.Compute/UpdateVM;1"
    strict.compute.virtual_machines.begin_run_command(RESOURCE_GROUP, vm.name, request).result()
    with pytest.raises(HttpResponseError) as refused:
        strict.compute.virtual_machines.begin_run_command(RESOURCE_GROUP, vm.name, request)
    error = refused.value
    assert error.status_code == 429
    assert error.error.code == "OperationNotAllowed"
    assert error.error.details[0].code == "TooManyRequests"
    assert error.error.details[0].target == "UpdateVM"
    assert int(error.response.headers["Retry-After"]) == 60
    assert sim.control.throttled_count("VirtualMachines_RunCommand") == 1


def test_guest_patch_operations_allow_six_then_throttle(sim: Simulator, arm: Arm, strict: Clients) -> None:
    vm = arm.vm()
    started = time.monotonic()
    for _ in range(6):
        strict.compute.virtual_machines.begin_assess_patches(RESOURCE_GROUP, vm.name).result()
    with pytest.raises(HttpResponseError) as refused:
        strict.compute.virtual_machines.begin_assess_patches(RESOURCE_GROUP, vm.name)
    assert refused.value.status_code == 429
    # 2 tokens per minute: the next one is 30 s away, less what refilled while the six ran
    refilled = time.monotonic() - started
    assert 30 - math.ceil(refilled) <= int(refused.value.response.headers["Retry-After"]) <= 30
    assert (
        refused.value.response.headers["x-ms-ratelimit-remaining-resource"]
        == "Microsoft.Compute/VMGuestPatchOperations;0"
    )


def test_low_cost_gets_are_throttled_per_vm(sim: Simulator, arm: Arm, strict: Clients) -> None:
    first, second = arm.vm("vm-1"), arm.vm("vm-2")
    sim.control.configure_throttling(vmGet={"capacity": 2, "refillPerMinute": 12})
    strict.compute.virtual_machines.get(RESOURCE_GROUP, first.name)
    strict.compute.virtual_machines.instance_view(RESOURCE_GROUP, first.name)
    with pytest.raises(HttpResponseError) as refused:
        strict.compute.virtual_machines.get(RESOURCE_GROUP, first.name)
    assert refused.value.response.headers["Retry-After"] == "5"
    assert strict.compute.virtual_machines.get(RESOURCE_GROUP, second.name).name == "vm-2"


def test_throttling_can_be_switched_off(sim: Simulator, arm: Arm, strict: Clients) -> None:
    vm = arm.vm()
    sim.control.configure_throttling(enabled=False, vmGet={"capacity": 1, "refillPerMinute": 1})
    for _ in range(5):
        strict.compute.virtual_machines.get(RESOURCE_GROUP, vm.name)
    assert sim.control.throttled_count() == 0


def test_buckets_can_be_refilled(sim: Simulator, arm: Arm, strict: Clients) -> None:
    vm = arm.vm()
    sim.control.configure_throttling(vmGet={"capacity": 1, "refillPerMinute": 1})
    strict.compute.virtual_machines.get(RESOURCE_GROUP, vm.name)
    with pytest.raises(HttpResponseError):
        strict.compute.virtual_machines.get(RESOURCE_GROUP, vm.name)
    sim.control.refill_buckets()
    assert strict.compute.virtual_machines.get(RESOURCE_GROUP, vm.name).name == vm.name


def test_throttling_config_rejects_unknown_buckets(sim: Simulator) -> None:
    from azure_edition_simulator import ControlError

    with pytest.raises(ControlError) as refused:
        sim.control.configure_throttling(noSuchBucket={"capacity": 1})
    assert refused.value.status == 400
