"""Which Events a status write announces (``publish.status_events``): one rule, a change announced once."""

from __future__ import annotations

import pytest

from azure_edition_operator.publish import status_events, warning_stage


def cond(type_: str, status: str, reason: str, message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message or reason.lower(),
            "lastTransitionTime": "2026-11-29T01:00:00Z", "observedGeneration": 1}  # fmt: skip


def status(*conditions: dict, smb: dict | None = None) -> dict:
    return {"conditions": list(conditions), **({"smbOverQuic": smb} if smb else {})}


READY = cond("Ready", "True", "Ready")
PROVISIONING = cond("Ready", "False", "Provisioning")
EXPIRING = cond("SMBOverQUICCertificateValid", "False", "CertificateExpiringSoon", "expires in 10 days")


def reasons(old: dict, new: dict, errors=()) -> list[str]:
    return [reason for _, reason, _ in status_events(old, new, errors)]


def test_ready_transitions_are_announced_once_and_a_new_object_starting_is_not_news():
    assert reasons({}, status(PROVISIONING)) == []
    assert status_events(status(PROVISIONING), status(READY)) == [("Normal", "Ready", "ready")]
    assert reasons(status(READY), status(READY)) == []  # the next round: nothing
    failed = cond("Ready", "False", "QuotaExceeded")
    assert status_events(status(READY), status(failed)) == [("Warning", "QuotaExceeded", "quotaexceeded")]


def test_an_error_event_once_per_new_error_and_not_when_ready_said_it():
    error = ("Warning", "QuotaExceeded", "raise the quota")
    failed = status(cond("Ready", "False", "QuotaExceeded"))
    assert reasons(status(PROVISIONING), failed, [error]) == ["QuotaExceeded"]  # Ready's, not twice
    other = ("Warning", "SkuNotAvailable", "pick another size")
    assert reasons(status(PROVISIONING), failed, [other]) == ["QuotaExceeded", "SkuNotAvailable"]
    assert reasons(failed, failed, [other]) == []  # a retry that changes nothing says nothing


def test_certificate_stages_once_each_per_thumbprint():
    window = {"state": "ExpiringSoon", "daysRemaining": 10, "thumbprint": "AB12"}
    old, new = status(READY), status(READY, EXPIRING, smb=window)
    assert status_events(old, new) == [("Warning", "CertificateExpiringSoon", "expires in 10 days")]
    assert reasons(new, status(READY, EXPIRING, smb={**window, "daysRemaining": 9})) == []  # same stage
    seven = status(READY, EXPIRING, smb={**window, "daysRemaining": 7})
    assert reasons(new, seven) == ["CertificateExpiresWithin7Days"]
    renewed = status(READY, EXPIRING, smb={**window, "thumbprint": "CD34"})
    assert reasons(new, renewed) == ["CertificateExpiringSoon"]  # a renewed certificate starts afresh
    expired = cond("SMBOverQUICCertificateValid", "False", "CertificateExpired")
    assert "CertificateExpired" in reasons(seven, status(READY, expired, smb={**window, "state": "Expired"}))


def test_a_new_warning_condition_is_announced_though_ready_stays_true():
    reboot = cond("HotpatchHealthy", "False", "RebootPending", "reboot it")
    assert status_events(status(READY), status(READY, reboot)) == [
        ("Warning", "RebootPending", "HotpatchHealthy: reboot it")
    ]


W, SEVEN = "CertificateExpiringSoon", "CertificateExpiresWithin7Days"


@pytest.mark.parametrize(
    ("state", "days", "stage"),
    [("Valid", 90, None), ("ExpiringSoon", 30, W), ("ExpiringSoon", 8, W), ("ExpiringSoon", 7, SEVEN),
     ("ExpiringSoon", 0, SEVEN), ("Expired", -1, "CertificateExpired"), ("Invalid", 3, None), ("Unreachable", None, None)],
)  # fmt: skip
def test_warning_stages(state, days, stage):
    assert warning_stage(state, days) == stage


def test_a_new_management_policy_is_announced_once():
    paused = cond("Synced", "False", "ReconcilePaused")
    observe = cond("Synced", "False", "ObserveOnly")
    assert status_events(status(READY), status(READY, paused)) == [
        ("Normal", "ReconcilePaused", "reconcilepaused")
    ]
    assert reasons(status(READY, paused), status(READY, paused)) == []  # said once
    assert reasons(status(READY, paused), status(READY, observe)) == ["ObserveOnly"]
    assert reasons(status(READY, observe), status(READY)) == []  # back to Full: the condition goes quietly
