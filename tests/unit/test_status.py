"""Status computation and change-only patches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azure_edition_operator.conditions import ConditionType
from azure_edition_operator.images import Capability, resolve
from azure_edition_operator.status import Observation, compute_status, condition, status_patch

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HP, SMB = Capability.HOTPATCH, Capability.SMB_OVER_QUIC


def _ready_obs(generation=1, caps=frozenset(), **kw):
    return Observation(
        generation=generation,
        capabilities=caps,
        image=resolve(caps),
        image_condition=condition(ConditionType.IMAGE_RESOLVED, True, "ImageResolved", "why"),
        vm={"resourceId": "/subscriptions/x/vm", "vmId": "abc", "publicIPAddress": None},
        vm_condition=condition(ConditionType.VM_PROVISIONED, True, "Succeeded"),
        **kw,
    )


def test_first_status_is_complete_and_ready():
    status = compute_status({}, _ready_obs(), T0)
    assert status["phase"] == "Ready" and status["observedGeneration"] == 1
    assert status["image"]["sku"] == "2025-datacenter-azure-edition-core"
    assert status["vm"] == {"resourceId": "/subscriptions/x/vm", "vmId": "abc"}  # None fields left out
    assert [c["type"] for c in status["conditions"]] == [
        "Ready", "ImageResolved", "VMProvisioned", "Reconciling", "Stalled"]  # fmt: skip
    assert [(c["status"], c["reason"]) for c in status["conditions"][3:]] == [
        ("False", "Idle"),
        ("False", "NotStalled"),
    ]
    assert all(c["observedGeneration"] == 1 for c in status["conditions"])


def test_unchanged_outcome_gives_empty_patch_even_later():
    first = compute_status({}, _ready_obs(), T0)
    second = compute_status(first, _ready_obs(), T0 + timedelta(hours=3))
    assert status_patch(first, second) == {}


def test_generation_change_is_a_patch_of_generation_fields_only():
    first = compute_status({}, _ready_obs(), T0)
    second = compute_status(first, _ready_obs(generation=2), T0 + timedelta(minutes=1))
    patch = status_patch(first, second)
    assert patch["observedGeneration"] == 2
    assert set(patch) == {"observedGeneration", "conditions"}
    assert all(c["lastTransitionTime"] == "2026-11-26T12:00:00Z" for c in patch["conditions"])


def test_capability_conditions_only_for_requested_capabilities():
    caps = frozenset({HP, SMB})
    bad = condition(ConditionType.HOTPATCH_HEALTHY, False, "PatchInstallationFailed", "2 failed")
    cert = condition(ConditionType.SMB_CERTIFICATE_VALID, True, "CertificateValid")
    status = compute_status(
        {}, _ready_obs(caps=caps, capability_conditions=[bad, cert], hotpatch={"failedPatchCount": 2}), T0
    )
    assert status["phase"] == "Degraded"
    ready = status["conditions"][0]
    assert ready["reason"] == "Degraded" and "PatchInstallationFailed" in ready["message"]
    dropped = compute_status(status, _ready_obs(caps=frozenset({SMB})), T0)
    assert "hotpatch" not in dropped
    assert ConditionType.HOTPATCH_HEALTHY not in [c["type"] for c in dropped["conditions"]]
    assert status_patch(status, dropped)["hotpatch"] is None


def test_patch_is_nested_and_removes_keys():
    old = {"vm": {"a": 1, "b": 2}, "phase": "Ready", "gone": 1}
    new = {"vm": {"a": 1, "b": 3}, "phase": "Ready"}
    assert status_patch(old, new) == {"vm": {"b": 3}, "gone": None}


def test_image_unresolved_fails_without_vm():
    obs = Observation(
        generation=4,
        capabilities=frozenset({Capability.EXTENDED_NETWORK}),
        image_condition=condition(ConditionType.IMAGE_RESOLVED, False, "UnsupportedCapabilities", "no image"),
    )
    status = compute_status({}, obs, T0)
    assert status["phase"] == "Failed"
    assert status["conditions"][0]["reason"] == "ImageUnresolved"
    assert "vm" not in status and "image" not in status


def test_ready_waits_for_the_first_check_of_each_requested_capability():
    caps = frozenset({HP, SMB})
    status = compute_status({}, _ready_obs(caps=caps), T0)
    ready = status["conditions"][0]
    assert ready["status"] == "False" and ready["reason"] == "Provisioning"
    assert "HotpatchHealthy" in ready["message"] and "SMBOverQUICCertificateValid" in ready["message"]
    checked = [
        condition(ConditionType.HOTPATCH_HEALTHY, True, "HotpatchEnabled"),
        condition(ConditionType.SMB_CERTIFICATE_VALID, True, "CertificateValid"),
    ]
    assert (
        compute_status(status, _ready_obs(caps=caps, capability_conditions=checked), T0)["phase"] == "Ready"
    )
