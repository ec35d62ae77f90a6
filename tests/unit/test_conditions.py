"""Condition upsert, ordering and phase derivation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azure_edition_operator.api.v1alpha1 import ConditionStatus, Phase
from azure_edition_operator.conditions import (
    Condition,
    ConditionType,
    assess,
    derive_phase,
    sort_conditions,
    upsert,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE


def c(type_, status, reason="R", message=""):
    return Condition(type_, status, reason, message)


def test_upsert_keeps_transition_time_when_status_unchanged():
    first = upsert([], c("VMProvisioned", FALSE, "Creating"), T0, generation=1)
    second = upsert(first, c("VMProvisioned", FALSE, "Creating", "still"), T1, generation=2)
    assert second[0].last_transition_time == T0
    assert second[0].observed_generation == 2 and second[0].message == "still"


def test_upsert_moves_transition_time_on_change():
    first = upsert([], c("VMProvisioned", FALSE, "Creating"), T0, generation=1)
    second = upsert(first, c("VMProvisioned", TRUE, "Succeeded"), T1, generation=1)
    assert second[0].last_transition_time == T1 and second[0].reason == "Succeeded"


def test_upsert_orders_known_types_then_others_alphabetically():
    conds: list[Condition] = []
    for t in ["Zeta", "SMBOverQUICCertificateValid", "Alpha", "Ready", "VMProvisioned", "ImageResolved"]:
        conds = upsert(conds, c(t, TRUE), T0, 1)
    assert [x.type for x in conds] == [
        "Ready", "ImageResolved", "VMProvisioned", "SMBOverQUICCertificateValid", "Alpha", "Zeta"]  # fmt: skip
    assert sort_conditions(reversed(conds)) == conds


def test_wire_round_trip():
    cond = upsert([], c("Ready", TRUE, "Ready", "ok"), T0, 3)[0]
    wire = cond.to_wire()
    assert wire == {"type": "Ready", "status": "True", "reason": "Ready", "message": "ok",
                    "lastTransitionTime": "2026-11-01T00:00:00Z", "observedGeneration": 3}  # fmt: skip
    assert Condition.from_wire(wire) == cond


def _ready(*conds):
    return assess(list(conds)).ready


def test_ready_summarises():
    img_ok = c(ConditionType.IMAGE_RESOLVED, TRUE, "ImageResolved")
    vm_ok = c(ConditionType.VM_PROVISIONED, TRUE, "Succeeded")
    assert _ready(img_ok, vm_ok).status == TRUE
    assert (
        _ready(c(ConditionType.IMAGE_RESOLVED, FALSE, "UnsupportedCapabilities", "m")).reason
        == "ImageUnresolved"
    )
    assert _ready(img_ok).reason == "Provisioning"
    assert _ready(img_ok, c(ConditionType.VM_PROVISIONED, FALSE, "Creating")).reason == "Provisioning"
    assert (
        _ready(img_ok, c(ConditionType.VM_PROVISIONED, FALSE, "QuotaExceeded")).reason == "ProvisioningFailed"
    )
    missing = _ready(img_ok, c(ConditionType.VM_PROVISIONED, FALSE, "AdminCredentialsMissing", "Secret x"))
    assert missing.reason == "AdminCredentialsMissing" and missing.message == "Secret x"
    degraded = _ready(img_ok, vm_ok, c(ConditionType.HOTPATCH_HEALTHY, FALSE, "PatchInstallationFailed", "x"))
    assert degraded.reason == "Degraded" and "PatchInstallationFailed" in degraded.message
    warned = _ready(img_ok, vm_ok, c(ConditionType.HOTPATCH_HEALTHY, FALSE, "RebootPending", "reboot"))
    assert warned.status == TRUE and warned.reason == "Ready" and "RebootPending: reboot" in warned.message


def test_phase_from_conditions():
    assert derive_phase([]) is Phase.PENDING
    assert derive_phase([c("Ready", TRUE, "Ready")]) is Phase.READY
    assert derive_phase([c("Ready", FALSE, "Degraded")]) is Phase.DEGRADED
    assert derive_phase([c("Ready", FALSE, "ProvisioningFailed")]) is Phase.FAILED
    assert derive_phase([c("Ready", FALSE, "ImageUnresolved")]) is Phase.FAILED
    assert derive_phase([c("Ready", FALSE, "Provisioning")]) is Phase.PROVISIONING
    assert derive_phase([c("Ready", TRUE, "Ready")], deleting=True) is Phase.DELETING
