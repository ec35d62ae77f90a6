"""Hotpatch: the baseline calendar and the evaluation of a VM's patch state (pure).

Inputs are ARM's wire shapes (camelCase), as in the published examples: the VM's
``osProfile.windowsConfiguration.patchSettings`` and the instance view's ``patchStatus``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from .. import reasons as vocab
from ..api.v1alpha1 import CycleMonth
from ..conditions import Condition, ConditionType
from ..status import condition

# Baseline (cumulative update + reboot) months; the months between are hotpatch months (docs/capabilities.md).
BASELINE_MONTHS = (1, 4, 7, 10)


def cycle_month(day: date) -> CycleMonth:
    return CycleMonth.BASELINE if day.month in BASELINE_MONTHS else CycleMonth.HOTPATCH


def next_baseline_month(day: date) -> str:
    """The first baseline month strictly after ``day``'s month, as YYYY-MM."""
    year, month = day.year, day.month
    for _ in range(12):
        month += 1
        if month > 12:
            year, month = year + 1, 1
        if month in BASELINE_MONTHS:
            return f"{year:04d}-{month:02d}"
    raise AssertionError("unreachable: a baseline month occurs every quarter")


def last_baseline_month(day: date) -> str:
    """The latest baseline month at or before ``day``'s month, as YYYY-MM."""
    year, month = day.year, day.month
    while month not in BASELINE_MONTHS:
        month -= 1
        if month < 1:
            year, month = year - 1, 12
    return f"{year:04d}-{month:02d}"


@dataclass(frozen=True)
class HotpatchVerdict:
    status: dict[str, Any]
    condition: Condition
    drift: tuple[str, ...]  # non-empty: patch settings were changed outside the operator; restore them


def evaluate_hotpatch(
    settings: Mapping[str, Any] | None,
    patch_status: Mapping[str, Any] | None,
    today: date,
    drift: Sequence[str] = (),
    support_notice: str | None = None,
) -> HotpatchVerdict:
    """Fill ``status.hotpatch`` and choose the HotpatchHealthy condition; ``drift`` is how the patch
    settings differ from the spec's (``azure.specs.patch_drift``, the comparison the reconcile pass makes).

    ``support_notice``: ``images.hotpatch_end_notice`` for the VM's image (None: nothing due).

    Precedence: settings drift > failed installation > failed assessment > reboot pending > updates
    available > end of Hotpatch support ahead > healthy;
    the first is what the user (or the operator) must act on first.
    """
    settings = settings or {}
    assessment = (patch_status or {}).get("availablePatchSummary") or {}
    installation = (patch_status or {}).get("lastPatchInstallationSummary") or {}
    status = {
        "enabled": settings.get("enableHotpatching"),
        "patchMode": settings.get("patchMode"),
        "assessmentState": assessment.get("status"),
        "lastAssessmentTime": assessment.get("startTime"),
        "criticalAndSecurityPatchCount": assessment.get("criticalAndSecurityPatchCount"),
        "otherPatchCount": assessment.get("otherPatchCount"),
        "rebootPending": assessment.get("rebootPending"),
        "lastInstallationState": installation.get("status"),
        "lastInstallationTime": installation.get("startTime"),
        "installedPatchCount": installation.get("installedPatchCount"),
        "failedPatchCount": installation.get("failedPatchCount"),
        "cycleMonth": str(cycle_month(today)),
        "nextBaselineMonth": next_baseline_month(today),
    }
    status = {k: v for k, v in status.items() if v is not None}
    healthy = ConditionType.HOTPATCH_HEALTHY
    if drift:
        verdict = condition(healthy, False, "HotpatchNotEnabled",
                            "patch settings changed outside the operator (" + "; ".join(drift) + "); restoring them")  # fmt: skip
    elif (
        installation.get("status") in ("Failed", "CompletedWithWarnings")
        or (installation.get("failedPatchCount") or 0) > 0
    ):
        error = (installation.get("error") or {}).get("message", "")
        verdict = condition(healthy, False, "PatchInstallationFailed",
                            f"last patch installation {installation.get('status')}: "
                            f"{installation.get('failedPatchCount', 0)} patch(es) failed {error}".strip()
                            + "; check the VM's Windows Update log and retry with installPatches")  # fmt: skip
    elif assessment.get("status") == "Failed":
        error = (assessment.get("error") or {}).get("message", "no detail")
        verdict = condition(healthy, False, "AssessmentFailed",
                            f"patch assessment failed: {error}; check the VM agent is running")  # fmt: skip
    elif assessment.get("rebootPending"):
        verdict = condition(healthy, False, "RebootPending",
                            "the guest waits for a reboot to finish patching; reboot it in a maintenance window")  # fmt: skip
    elif (assessment.get("criticalAndSecurityPatchCount") or 0) > 0:
        verdict = condition(healthy, False, "UpdatesAvailable",
                            f"the last assessment found {assessment['criticalAndSecurityPatchCount']} critical/security "
                            f"update(s) not installed yet ({assessment.get('otherPatchCount') or 0} other); the platform "
                            "installs them in its next patch window, installPatches installs them now")  # fmt: skip
    elif support_notice:
        verdict = condition(healthy, False, vocab.HOTPATCH_SUPPORT_ENDING, support_notice)
    else:
        verdict = condition(healthy, True, "HotpatchEnabled",
                            f"Hotpatch enrolled; {status['cycleMonth']} month, next baseline {status['nextBaselineMonth']}")  # fmt: skip
    return HotpatchVerdict(status, verdict, tuple(drift))
