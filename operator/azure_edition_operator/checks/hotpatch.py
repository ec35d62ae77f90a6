"""Hotpatch: the baseline calendar and the evaluation of a VM's patch state (pure).

Inputs are ARM's wire shapes (camelCase), as in the published examples: the VM's
``osProfile.windowsConfiguration.patchSettings`` and the instance view's ``patchStatus``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from .. import hotpatch_calendar as cal
from .. import reasons as vocab
from ..api.v1alpha1 import CycleMonth
from ..conditions import Condition, ConditionType
from ..status import condition

# Baseline (cumulative update + reboot) months of the built-in calendar (hotpatch_calendar.BUILTIN, data with
# its source); the plugin's offline view uses them. The checks use the calendar they are given.
BASELINE_MONTHS = tuple(sorted(cal.BUILTIN.planned_months))


def cycle_month(day: date, calendar: cal.Calendar = cal.BUILTIN) -> CycleMonth:
    return CycleMonth.BASELINE if calendar.is_baseline((day.year, day.month)) else CycleMonth.HOTPATCH


def next_baseline_month(day: date, calendar: cal.Calendar = cal.BUILTIN) -> str:
    """The first baseline month strictly after ``day``'s month, as YYYY-MM."""
    return cal.fmt(cal.next_baseline(calendar, (day.year, day.month)))


def last_baseline_month(day: date, calendar: cal.Calendar = cal.BUILTIN) -> str:
    """The latest baseline month at or before ``day``'s month, as YYYY-MM."""
    return cal.fmt(cal.last_baseline(calendar, (day.year, day.month)))


def configuration_states(statuses: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    """``configurationStatuses`` codes (``PatchModeConfigurationState/Ready``) as {"patchModeState": "Ready",
    "assessmentModeState": ...}."""
    names = {"patchmodeconfigurationstate": "patchModeState",
             "assessmentmodeconfigurationstate": "assessmentModeState"}  # fmt: skip
    out: dict[str, str] = {}
    for entry in statuses or []:
        kind, _, state = str(entry.get("code") or "").partition("/")
        if kind.lower() in names and state:
            out[names[kind.lower()]] = state
    return out


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
    *,
    calendar: cal.Calendar = cal.BUILTIN,
    patches: cal.PatchSummary | None = None,
    now: datetime | None = None,
    observe: bool = False,
) -> HotpatchVerdict:
    """Fill ``status.hotpatch`` and choose the HotpatchHealthy condition; ``drift`` is how the patch
    settings differ from the spec's (``azure.specs.patch_drift``, the comparison the reconcile pass makes).

    ``support_notice``: ``images.hotpatch_end_notice`` for the VM's image (None: nothing due).
    ``patches``: the per-patch counts of the operator's last assessPatches; used only while it is the
    latest assessment (its activity id is the instance view's), else the platform has assessed since.
    ``calendar``: the Hotpatch calendar (data); the month's kind follows ``patches`` when they disagree.
    ``observe``: observe only: drift is reported, and said not to be restored.

    Precedence: settings drift > failed installation > failed assessment > reboot pending > updates
    available > end of Hotpatch support ahead > healthy;
    the first is what the user (or the operator) must act on first.
    """
    settings = settings or {}
    assessment = (patch_status or {}).get("availablePatchSummary") or {}
    installation = (patch_status or {}).get("lastPatchInstallationSummary") or {}
    now = now or datetime.combine(today, time(12), UTC)
    month = (today.year, today.month)
    current = patches if patches is not None and patches.activity_id and (
        patches.activity_id == assessment.get("assessmentActivityId")) else None  # fmt: skip
    kind = cal.month_kind(calendar, month, current)
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
        "pendingPatchCount": installation.get("pendingPatchCount"),
        "maintenanceWindowExceeded": installation.get("maintenanceWindowExceeded"),
        **configuration_states((patch_status or {}).get("configurationStatuses")),
        "cycleMonth": str(kind.kind),
        "cycleMonthSource": kind.source,
        "nextBaselineMonth": next_baseline_month(today, calendar),
        "daysSinceBaseline": cal.days_since_baseline(calendar, now),
        "hotpatchesPending": current.hotpatches if current else None,
        "rebootUpdatesPending": current.need_reboot if current else None,
    }
    status = {k: v for k, v in status.items() if v is not None}
    healthy = ConditionType.HOTPATCH_HEALTHY
    if drift:
        then = (
            "observe only: not restored (managementPolicy Full restores them)"
            if observe
            else "restoring them"
        )
        verdict = condition(healthy, False, "HotpatchNotEnabled",
                            "patch settings changed outside the operator (" + "; ".join(drift) + f"); {then}")  # fmt: skip
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
                            f"the guest waits for a reboot to finish patching ({kind.note}); reboot it in a "
                            "maintenance window")  # fmt: skip
    elif (assessment.get("criticalAndSecurityPatchCount") or 0) > 0:
        split = (f"; {current.hotpatches} hotpatch(es) without a reboot, {current.need_reboot} needing a reboot"
                 if current else "")  # fmt: skip
        verdict = condition(healthy, False, "UpdatesAvailable",
                            f"the last assessment found {assessment['criticalAndSecurityPatchCount']} critical/security "
                            f"update(s) not installed yet ({assessment.get('otherPatchCount') or 0} other){split}; "
                            f"{kind.note}; the platform installs them in its next patch window, installPatches "
                            "installs them now")  # fmt: skip
    elif support_notice:
        verdict = condition(healthy, False, vocab.HOTPATCH_SUPPORT_ENDING, support_notice)
    else:
        verdict = condition(healthy, True, "HotpatchEnabled",
                            f"Hotpatch enrolled; {kind.note}; next baseline {status['nextBaselineMonth']}")  # fmt: skip
    return HotpatchVerdict(status, verdict, tuple(drift))
