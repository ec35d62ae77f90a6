"""Ready, Reconciling and Stalled from one vocabulary: every reason classified once (reasons.py) gives
kstatus semantics (Reconciling=True while time fixes it, Stalled=True when a person must act, both
False once settled) and "a warning is not an outage" (Ready stays True)."""

from __future__ import annotations

import itertools

import pytest

from azure_edition_operator import conditions as cond
from azure_edition_operator import reasons as vocab
from azure_edition_operator.api.v1alpha1 import ConditionStatus
from azure_edition_operator.checks.smb_certificate import CertificateReason
from azure_edition_operator.conditions import Condition, ConditionType

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
IMAGE_OK = Condition(ConditionType.IMAGE_RESOLVED, TRUE, "ImageResolved")
VM_OK = Condition(ConditionType.VM_PROVISIONED, TRUE, "Succeeded")


def summary(*conditions: Condition, deleting: bool = False) -> tuple[Condition, Condition, Condition]:
    assessment = cond.assess(list(conditions))
    reconciling, stalled = cond.kstatus_conditions(assessment, deleting=deleting)
    return assessment.ready, reconciling, stalled


def kstatus(ready: Condition, reconciling: Condition, stalled: Condition) -> str:
    """sigs.k8s.io/cli-utils kstatus for a custom resource: Reconciling first, then Stalled, else Current."""
    if reconciling.is_true:
        return "InProgress"
    if stalled.is_true:
        return "Failed"
    return "Current"


@pytest.mark.parametrize("reason", sorted(vocab.VM_PROVISIONED))
def test_every_vm_provisioned_reason_is_in_progress_failed_or_current(reason):
    kind = vocab.kind_of(reason)
    status = TRUE if kind is vocab.Kind.OK else FALSE
    ready, reconciling, stalled = summary(
        IMAGE_OK, Condition(ConditionType.VM_PROVISIONED, status, reason, "m")
    )
    assert not (reconciling.is_true and stalled.is_true)
    if kind is vocab.Kind.USER:
        assert kstatus(ready, reconciling, stalled) == "Failed"
        assert stalled.reason == reason and stalled.message == "m" and not ready.is_true
    elif kind is vocab.Kind.OK:
        assert ready.is_true and kstatus(ready, reconciling, stalled) == "Current"
    else:  # PROGRESS, TRANSIENT: time fixes it
        assert kstatus(ready, reconciling, stalled) == "InProgress"
        assert reconciling.reason == reason and not ready.is_true


CAPABILITY = [(r.condition, r.name) for r in vocab.CAPABILITY]


@pytest.mark.parametrize(("condition_type", "reason"), CAPABILITY)
def test_every_capability_reason_by_its_severity(condition_type, reason):
    entry = vocab.CAPABILITY_REASONS[condition_type][reason]
    status = TRUE if entry.severity is vocab.Severity.OK else FALSE
    capability = Condition(condition_type, status, reason, "what to do")
    ready, reconciling, stalled = summary(IMAGE_OK, VM_OK, capability)
    if entry.severity is vocab.Severity.OUTAGE:
        assert not ready.is_true and ready.reason == "Degraded" and f"{reason}: what to do" in ready.message
        expected = "Failed" if entry.kind is vocab.Kind.USER else "InProgress"
        assert kstatus(ready, reconciling, stalled) == expected
        assert (stalled if expected == "Failed" else reconciling).reason == reason
    else:  # OK or WARNING: serving now
        assert ready.is_true and ready.reason == "Ready"
        assert kstatus(ready, reconciling, stalled) == "Current"
        assert (reason in ready.message) is (entry.severity is vocab.Severity.WARNING)


def test_outage_and_warning_severities_are_what_the_issue_asks():
    severity = {r.name: r.severity for r in vocab.CAPABILITY}
    for warning in ("CertificateExpiringSoon", "RebootPending", "UpdatesAvailable"):
        assert severity[warning] is vocab.Severity.WARNING
    for outage in ("CertificateExpired", "CertificateUntrusted", "EndpointUnreachable", "SMBOverQUICDisabled",
                   "HotpatchNotEnabled", "PatchInstallationFailed", "CertificateInvalid"):  # fmt: skip
        assert severity[outage] is vocab.Severity.OUTAGE


@pytest.mark.parametrize(
    ("first", "second"),
    [(a, b) for a, b in itertools.product(vocab.CAPABILITY_REASONS[vocab.HOTPATCH_HEALTHY].values(),
                                          vocab.CAPABILITY_REASONS[vocab.SMB_CERTIFICATE_VALID].values())],
    ids=lambda r: r.name,
)  # fmt: skip
def test_never_both_reconciling_and_stalled_and_a_person_wins(first, second):
    conds = [
        Condition(r.condition, TRUE if r.severity is vocab.Severity.OK else FALSE, r.name)
        for r in (first, second)
    ]
    ready, reconciling, stalled = summary(IMAGE_OK, VM_OK, *conds)
    assert not (reconciling.is_true and stalled.is_true)
    outages = [r for r in (first, second) if r.severity is vocab.Severity.OUTAGE]
    assert ready.is_true is (not outages)
    assert stalled.is_true is any(r.kind is vocab.Kind.USER for r in outages)


def test_an_unknown_capability_reason_is_an_outage_a_person_must_read():
    odd = Condition(ConditionType.HOTPATCH_HEALTHY, FALSE, "SomethingNew", "?")
    ready, _reconciling, stalled = summary(IMAGE_OK, VM_OK, odd)
    assert not ready.is_true and stalled.is_true and stalled.reason == "SomethingNew"


def test_unresolved_image_stalls_and_a_fresh_object_reconciles():
    bad = Condition(ConditionType.IMAGE_RESOLVED, FALSE, "UnsupportedCapabilities", "pin")
    assert kstatus(*summary(bad)) == "Failed"
    _ready, reconciling, stalled = summary()
    assert reconciling.is_true and reconciling.reason == "Provisioning" and not stalled.is_true


def test_waiting_for_the_first_capability_check_is_reconciling():
    assessment = cond.assess([IMAGE_OK, VM_OK], required=[ConditionType.HOTPATCH_HEALTHY])
    reconciling, stalled = cond.kstatus_conditions(assessment)
    assert (
        reconciling.is_true
        and reconciling.reason == "Provisioning"
        and "HotpatchHealthy" in reconciling.message
    )
    assert not stalled.is_true


def test_deleting_is_reconciling_even_when_stalled_before():
    bad = Condition(ConditionType.VM_PROVISIONED, FALSE, "QuotaExceeded")
    _ready, reconciling, stalled = summary(IMAGE_OK, bad, deleting=True)
    assert reconciling.is_true and reconciling.reason == "Deleting" and not stalled.is_true


def test_settled_is_both_false_with_stable_reasons():
    ready, reconciling, stalled = summary(IMAGE_OK, VM_OK)
    assert (reconciling.status, reconciling.reason) == (FALSE, "Idle")
    assert (stalled.status, stalled.reason) == (FALSE, "NotStalled")
    assert summary(IMAGE_OK, VM_OK) == (ready, reconciling, stalled)  # pure: same facts, same answer


def test_warning_events_fire_once_per_transition_into_a_warning():
    hp = ConditionType.HOTPATCH_HEALTHY
    healthy = [Condition(hp, TRUE, "HotpatchEnabled")]
    reboot = [Condition(hp, FALSE, "RebootPending", "reboot it")]
    assert cond.warning_events(healthy, reboot) == [
        ("Warning", "RebootPending", "HotpatchHealthy: reboot it")
    ]
    assert cond.warning_events([], reboot) == [("Warning", "RebootPending", "HotpatchHealthy: reboot it")]
    assert cond.warning_events(reboot, reboot) == []  # the next check round: no repeat
    assert cond.warning_events(reboot, healthy) == []
    outage = [Condition(hp, FALSE, "PatchInstallationFailed")]
    assert cond.warning_events(healthy, outage) == []  # outages are announced by Ready's transition
    expiring = [Condition(ConditionType.SMB_CERTIFICATE_VALID, FALSE, "CertificateExpiringSoon")]
    assert cond.warning_events([], expiring) == []  # announced once per certificate by its own marker


def test_certificate_reasons_are_the_vocabulary_s():
    assert {str(r) for r in CertificateReason} == set(vocab.CAPABILITY_REASONS[vocab.SMB_CERTIFICATE_VALID])


def test_every_capability_condition_type_has_a_vocabulary():
    assert set(cond.CAPABILITY_CONDITIONS) == set(vocab.CAPABILITY_REASONS)


def test_stalled_metric_has_one_series_per_stalled_object_and_none_once_settled():
    from prometheus_client import REGISTRY

    from azure_edition_operator import metrics

    def value(reason: str) -> float | None:
        return REGISTRY.get_sample_value(
            "azureedition_stalled", {"namespace": "ns-k", "name": "vm-k", "reason": reason}
        )

    def status(stalled: str | None) -> dict:
        summary = [{"type": "Ready", "status": "False" if stalled else "True", "reason": "x"}]
        if stalled:
            summary.append({"type": "Stalled", "status": "True", "reason": stalled})
        return {"conditions": summary}

    metrics.set_summary("ns-k", "vm-k", status("QuotaExceeded"))
    assert value("QuotaExceeded") == 1
    metrics.set_summary("ns-k", "vm-k", status("NoSuchReasonAnywhere"))
    assert value("QuotaExceeded") is None and value("Other") == 1  # a closed label set
    metrics.set_summary("ns-k", "vm-k", status(None))
    assert value("Other") is None
    assert REGISTRY.get_sample_value("azureedition_ready", {"namespace": "ns-k", "name": "vm-k"}) == 1
    metrics.set_summary("ns-k", "vm-k", status("VMStopped"))
    metrics.forget("ns-k", "vm-k")
    assert value("VMStopped") is None
