"""reconcile_pass with a fake Azure layer: progress, classified reasons, retry timing, status never input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from azure_edition_operator import reasons as vocab
from azure_edition_operator.azure.driver import InProgress, OperationRecord
from azure_edition_operator.azure.errors import AzurePermanentError, AzureRetryableError, classify
from azure_edition_operator.azure.provision import ImageChangeRequired, ObservedVM
from azure_edition_operator.azure.specs import PatchView
from azure_edition_operator.conditions import ConditionType, Phase, assess, derive_phase
from azure_edition_operator.images import resolve
from azure_edition_operator.kube import CredentialsUnavailable
from azure_edition_operator.reconciler import progress_condition, reconcile_pass, transient_delay
from azure_edition_operator.status import compute_status, status_patch

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SPEC = {
    "capabilities": ["Hotpatch"],
    "azure": {
        "subscriptionId": "00000000-0000-0000-0000-000000000000",
        "resourceGroup": "rg",
        "location": "westeurope",
        "subnetId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
        "Microsoft.Network/virtualNetworks/v/subnets/s",
    },
    "adminCredentialsSecretRef": {"name": "admin"},
}


def observed(**kw: Any) -> ObservedVM:
    base: dict[str, Any] = dict(
        resource_id="/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
        name="vm", vm_id="uuid", provisioning_state="Succeeded", power_state=None, vm_size="Standard_D2as_v5",
        private_ip_address="10.0.0.4", public_ip_address=None, extended_private_ip_address=None,
        patch=PatchView("AutomaticByPlatform", True, "AutomaticByPlatform", "IfRequired", False, True),
        tags={}, image={},
    )  # fmt: skip
    base.update(kw)
    return ObservedVM(**base)


async def no_credentials() -> Any:
    raise AssertionError("credentials are only loaded by the Azure layer when it creates a VM")


async def run(ensure: Any, retry: int = 0) -> Any:
    return await reconcile_pass(SPEC, 3, ensure, no_credentials, 10.0, retry=retry, now=NOW)


def raising(exc: BaseException) -> Any:
    async def ensure(*_: Any) -> ObservedVM:
        raise exc

    return ensure


def vm_condition(outcome: Any) -> Any:
    return outcome.observation.vm_condition


async def test_success_reports_succeeded_and_no_retry() -> None:
    async def ensure(*_: Any) -> ObservedVM:
        return observed()

    outcome = await run(ensure)
    assert vm_condition(outcome).reason == "Succeeded" and vm_condition(outcome).is_true
    assert outcome.retry_after is None and outcome.permanent is None


@pytest.mark.parametrize("power", ["deallocated", "stopped", "deallocating", "stopping"])
async def test_a_stopped_vm_is_reported_not_ready_and_not_started(power: str) -> None:
    """docs/reference.md: a VM missing or stopped makes Ready=False; status.vm still shows it (with powerState)."""

    async def ensure(*_: Any) -> ObservedVM:
        return observed(power_state=power)

    outcome = await run(ensure)
    cond = vm_condition(outcome)
    assert not cond.is_true and cond.reason == "VMStopped" and power in cond.message
    assert outcome.observation.vm["powerState"] == power
    assert outcome.retry_after is None, "the resync notices a start; nothing to retry"
    assert [e[:2] for e in outcome.events] == [("Warning", "VMStopped")]
    ready = assess([outcome.observation.image_condition, cond]).ready
    assert (ready.status, ready.reason) == ("False", "VMStopped")
    assert derive_phase([ready]) is Phase.DEGRADED


@pytest.mark.parametrize("power", ["running", "starting", None])
async def test_a_running_or_unknown_power_state_is_provisioned(power: str | None) -> None:
    async def ensure(*_: Any) -> ObservedVM:
        return observed(power_state=power)

    assert vm_condition(await run(ensure)).reason == "Succeeded"


async def test_an_operation_in_flight_is_progress_with_retry_after() -> None:
    started = (NOW - timedelta(minutes=3, seconds=20)).isoformat()
    record = OperationRecord("virtualMachines", "vm", "put", "tok", started, "created")
    outcome = await run(raising(InProgress(record, 17.0)))
    cond = vm_condition(outcome)
    assert (cond.status, cond.reason) == ("False", "Creating")
    assert (
        "VM vm" in cond.message and "3 min" in cond.message and "started 2026-11-28T11:56:40Z" in cond.message
    )
    assert outcome.retry_after == 17.0 and outcome.events == ()


def test_progress_message_changes_at_most_once_a_minute() -> None:
    record = OperationRecord("networkInterfaces", "nic", "put", "tok", NOW.isoformat(), "updated")
    messages = {progress_condition(record, NOW + timedelta(seconds=s)).message for s in range(0, 60, 5)}
    assert len(messages) == 1
    assert progress_condition(record, NOW + timedelta(seconds=61)).message not in messages
    assert progress_condition(record, NOW).reason == "Updating"
    deleting = OperationRecord("disks", "d", "delete", "tok", NOW.isoformat(), "deleted")
    assert progress_condition(deleting, NOW).reason == "Deleting"


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("AuthorizationFailed", 403, "AuthorizationFailed"),
        ("ResourceGroupNotFound", 404, "ResourceGroupNotFound"),
        ("InvalidResourceReference", 400, "InvalidResourceReference"),
        ("MissingSubscriptionRegistration", 409, "MissingSubscriptionRegistration"),
        ("ReferencedResourceNotProvisioned", 400, "ReferencedResourceNotProvisioned"),
        ("TooManyRequests", 429, "Throttled"),
        (None, 503, "Retrying"),
    ],
)
async def test_transient_codes_retry_with_backoff_and_show_their_code(
    code: str, status: int, reason: str
) -> None:
    outcome = await run(raising(classify(status, code, "m")), retry=3)
    cond = vm_condition(outcome)
    assert cond.reason == reason and not cond.is_true
    assert outcome.permanent is None and outcome.events == ()
    assert outcome.retry_after == transient_delay(None, 3) == 40.0


async def test_a_dependency_error_is_not_reported_as_throttling() -> None:
    outcome = await run(raising(classify(400, "ReferencedResourceNotProvisioned", "nic is Updating")))
    assert vm_condition(outcome).reason != "Throttled"


def test_transient_delay_honours_retry_after_and_is_capped() -> None:
    assert transient_delay(30.0, 0) == 30.0
    assert transient_delay(None, 0) == vocab.TRANSIENT_BASE_SECONDS
    assert transient_delay(None, 50) == vocab.TRANSIENT_CAP_SECONDS


@pytest.mark.parametrize(
    ("code", "status", "reason", "hint"),
    [
        ("InvalidParameter", 400, "InvalidParameter", "spec field"),
        ("SkuNotAvailable", 409, "SkuNotAvailable", "spec.azure.vmSize"),
        ("PlatformImageNotFound", 404, "PlatformImageNotFound", "spec.image"),
        ("QuotaExceeded", 409, "QuotaExceeded", "quota increase"),
        ("OperationNotAllowed", 409, "OperationNotAllowed", ""),
    ],
)
async def test_user_fixable_codes_stop_say_what_to_change_and_retry_slowly(
    code: str, status: int, reason: str, hint: str
) -> None:
    outcome = await run(raising(classify(status, code, "m")))
    cond = vm_condition(outcome)
    assert cond.reason == reason and hint in cond.message
    assert outcome.retry_after == vocab.USER_RETRY_SECONDS == 900.0
    assert outcome.permanent is None, "a fixed quota or a granted role must heal without an edit"
    assert outcome.event is not None and outcome.event[1] == reason


async def test_ownership_conflict_is_user_fixable() -> None:
    err = AzurePermanentError("OwnershipConflict", "someone else's", 409, reason="OwnershipConflict")
    outcome = await run(raising(err))
    assert vm_condition(outcome).reason == "OwnershipConflict"
    ready = compute_status({}, outcome.observation, NOW)["conditions"][0]
    assert (ready["type"], ready["reason"]) == ("Ready", "ProvisioningFailed")


async def test_vm_not_found_report() -> None:
    err = AzurePermanentError("VMNotFound", "deleted outside", 404, reason="VMNotFound")
    outcome = await run(raising(err))
    assert vm_condition(outcome).reason == "VMNotFound"


async def test_missing_secret_is_its_own_reason() -> None:
    outcome = await run(raising(CredentialsUnavailable("no Secret admin")))
    assert vm_condition(outcome).reason == "AdminCredentialsMissing" and outcome.retry_after == 10.0


async def test_an_image_that_cannot_carry_a_new_capability_is_refused() -> None:
    from azure_edition_operator.images import Capability

    outcome = await run(raising(ImageChangeRequired("2022-datacenter-azure-edition", (Capability.HOTPATCH,))))
    cond = outcome.observation.image_condition
    assert (cond.reason, cond.is_true) == ("UnsupportedCapabilities", False)


async def test_status_image_comes_from_the_vm_not_from_status() -> None:
    runs = resolve({"Hotpatch"})

    async def ensure(*_: Any) -> ObservedVM:
        return observed(image_ref=runs)

    outcome = await run(ensure)
    assert outcome.observation.image is runs


GARBAGE_STATUS: dict[str, Any] = {
    "phase": "Ready",
    "image": {"sku": "forged-sku", "publisher": "evil", "offer": "x", "version": "1"},
    "vm": {"privateIPAddress": "203.0.113.66", "resourceId": "/subscriptions/other/vm"},
    "observedGeneration": "not-a-number",
    "conditions": [
        {"type": "VMProvisioned", "status": "True", "reason": "Succeeded", "lastTransitionTime": "yesterday"},
        {"type": "Ready", "status": "Maybe", "reason": 42, "lastTransitionTime": 12345},
        {"nonsense": True},
    ],
}


async def test_a_hand_edited_status_with_garbage_reconciles_normally() -> None:
    seen: list[Any] = []

    async def ensure(spec: Any, image: Any, _creds: Any) -> ObservedVM:
        seen.append(image)
        return observed(image_ref=image)

    outcome = await run(ensure)  # reconcile_pass is not even given the status
    assert seen[0].sku != "forged-sku" and seen[0].publisher == "MicrosoftWindowsServer"
    new = compute_status(GARBAGE_STATUS, outcome.observation, NOW)
    assert new["image"]["sku"] == seen[0].sku and new["image"]["publisher"] == "MicrosoftWindowsServer"
    assert new["observedGeneration"] == 3
    by_type = {c["type"]: c for c in new["conditions"]}
    assert by_type["VMProvisioned"]["status"] == "True"
    assert status_patch(GARBAGE_STATUS, new)  # the forgery is overwritten


def test_every_classified_reason_is_in_the_vocabulary() -> None:
    for code in vocab.AZURE_CODES:
        for status in (400, 404, 409, 429, 500):
            assert classify(status, code, "m").reason in vocab.VM_PROVISIONED, code
    for status in (None, 400, 403, 404, 408, 409, 500, 503):
        assert classify(status, "SomethingNobodyKnows", "").reason in vocab.VM_PROVISIONED


def test_not_permitted_is_in_the_vocabulary_for_the_preflight_check() -> None:
    assert vocab.kind_of("NotPermitted") is vocab.Kind.USER
    assert "NotPermitted" in vocab.READY_PASS_THROUGH


def test_metric_reasons_are_a_closed_set() -> None:
    assert vocab.metric_reason("Throttled") == "Throttled"
    assert vocab.metric_reason("an arbitrary string") == "Other"


def test_transient_and_user_kinds_agree_with_the_code_table() -> None:
    for entry in vocab.AZURE_CODES.values():
        kind = vocab.kind_of(entry.reason_name)
        if entry.reason_name in ("Failed", "OwnershipConflict", "Throttled", "QuotaExceeded"):
            continue  # fixed reasons, several codes map there
        assert kind is (vocab.Kind.TRANSIENT if entry.transient else vocab.Kind.USER), entry.code


def test_condition_types_used() -> None:
    assert ConditionType.VM_PROVISIONED == "VMProvisioned"


def test_an_azure_retryable_error_keeps_its_reason() -> None:
    err = AzureRetryableError("X", "m", reason="Retrying")
    assert err.reason == "Retrying"


def test_an_operation_in_progress_is_logged_as_info_not_error() -> None:
    import logging

    from azure_edition_operator.__main__ import _progress_is_not_an_error

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.ERROR, __file__, 1, message, None, None)

    progress = record("Handler 'reconcile' failed temporarily: in progress: Creating (see status.conditions)")
    assert _progress_is_not_an_error(progress) and progress.levelno == logging.INFO
    failure = record(
        "Handler 'reconcile' failed temporarily: waiting after QuotaExceeded (see status.conditions)"
    )
    assert _progress_is_not_an_error(failure) and failure.levelno == logging.ERROR


async def test_a_write_the_operator_holds_back_says_throttled_not_creating() -> None:
    from azure_edition_operator.azure.clients import paced

    outcome = await run(raising(paced(12.0)))
    vm = outcome.observation.vm_condition
    assert (vm.reason, outcome.retry_after) == ("Throttled", 12.0)
    assert (
        vm.message.startswith("the operator holds this write back for 12 s") and "creating" not in vm.message
    )


async def test_observe_only_reports_the_write_it_did_not_make() -> None:
    from azure_edition_operator.azure.errors import write_refused

    outcome = await run(raising(write_refused("update virtualMachines/vm-1")))
    vm = outcome.observation.vm_condition
    assert (vm.status, vm.reason) == (
        "False",
        "ObserveOnly",
    ) and "would have update virtualMachines/vm-1" in vm.message
    assert outcome.retry_after is None and outcome.permanent is None


async def test_a_vm_without_the_nic_it_needs_is_not_provisioned_and_the_message_names_it() -> None:
    async def ensure(*_: Any) -> ObservedVM:
        return observed()

    outcome = await reconcile_pass(SPEC, 3, ensure, no_credentials, 10.0, now=NOW,
                                   vm_problem=lambda vm: "the VM's primary NIC vm-1-nic is not attached")  # fmt: skip
    vm = outcome.observation.vm_condition
    assert (vm.status, vm.reason) == ("False", "NetworkInterfaceMissing") and "vm-1-nic" in vm.message
    assert outcome.events[0][1] == "NetworkInterfaceMissing"
