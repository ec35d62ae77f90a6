"""Hotpatch calendar and patch-state evaluation, including year boundaries and the published example."""

from __future__ import annotations

import json
from datetime import date

import pytest
from azure.mgmt.compute import models as compute

from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec
from azure_edition_operator.azure.specs import patch_drift
from azure_edition_operator.checks.hotpatch import cycle_month, next_baseline_month
from azure_edition_operator.checks.hotpatch import evaluate_hotpatch as evaluate_with_drift
from tests.conftest import REPO


def hotpatch_spec(reboot: str = "IfRequired") -> AzureEditionVMSpec:
    return AzureEditionVMSpec.model_validate({
        "capabilities": ["Hotpatch"], "hotpatch": {"rebootSetting": reboot},
        "adminCredentialsSecretRef": {"name": "admin"},
        "azure": {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "rg",
                  "location": "westeurope", "subnetId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
                  "Microsoft.Network/virtualNetworks/v/subnets/s"},
    })  # fmt: skip


def drift_of(settings, reboot: str = "IfRequired") -> list[str]:
    """The check path's drift: the reconcile pass's comparison, of a VM as Azure returns it."""
    windows = {"enableAutomaticUpdates": True, "patchSettings": settings} if settings is not None else {}
    vm = compute.VirtualMachine(
        {"location": "westeurope", "properties": {"osProfile": {"windowsConfiguration": windows}}}
    )
    return patch_drift(hotpatch_spec(reboot), vm)


def evaluate_hotpatch(settings, patch_status, today, reboot_setting: str = "IfRequired"):
    return evaluate_with_drift(settings, patch_status, today, drift_of(settings, reboot_setting))


ENROLLED = {
    "patchMode": "AutomaticByPlatform",
    "enableHotpatching": True,
    "assessmentMode": "AutomaticByPlatform",
    "automaticByPlatformSettings": {
        "rebootSetting": "IfRequired",
        "bypassPlatformSafetyChecksOnUserSchedule": False,
    },
}


@pytest.mark.parametrize(
    ("day", "cycle", "next_baseline"),
    [
        (date(2026, 1, 1), "Baseline", "2026-04"),
        (date(2026, 1, 31), "Baseline", "2026-04"),
        (date(2026, 2, 14), "Hotpatch", "2026-04"),
        (date(2026, 3, 31), "Hotpatch", "2026-04"),
        (date(2026, 4, 1), "Baseline", "2026-07"),
        (date(2026, 6, 30), "Hotpatch", "2026-07"),
        (date(2026, 7, 15), "Baseline", "2026-10"),
        (date(2026, 9, 1), "Hotpatch", "2026-10"),
        (date(2026, 10, 31), "Baseline", "2027-01"),
        (date(2026, 11, 26), "Hotpatch", "2027-01"),
        (date(2026, 12, 31), "Hotpatch", "2027-01"),
        (date(2099, 12, 1), "Hotpatch", "2100-01"),
    ],
)
def test_calendar(day, cycle, next_baseline):
    assert cycle_month(day) == cycle
    assert next_baseline_month(day) == next_baseline


def _summary(**kw):
    base = {"status": "Succeeded", "rebootPending": False, "criticalAndSecurityPatchCount": 0, "otherPatchCount": 2,
            "startTime": "2026-11-20T10:00:00Z"}  # fmt: skip
    return {**base, **kw}


def _install(**kw):
    return {
        "status": "Succeeded",
        "installedPatchCount": 3,
        "failedPatchCount": 0,
        "startTime": "2026-11-21T10:00:00Z",
        **kw,
    }


TODAY = date(2026, 11, 26)


def test_healthy():
    v = evaluate_hotpatch(
        ENROLLED, {"availablePatchSummary": _summary(), "lastPatchInstallationSummary": _install()}, TODAY
    )
    assert v.condition.is_true and v.condition.reason == "HotpatchEnabled"
    assert v.status == {
        "enabled": True, "patchMode": "AutomaticByPlatform", "assessmentState": "Succeeded",
        "lastAssessmentTime": "2026-11-20T10:00:00Z", "criticalAndSecurityPatchCount": 0, "otherPatchCount": 2,
        "rebootPending": False, "lastInstallationState": "Succeeded", "lastInstallationTime": "2026-11-21T10:00:00Z",
        "installedPatchCount": 3, "failedPatchCount": 0, "cycleMonth": "Hotpatch", "nextBaselineMonth": "2027-01",
        "cycleMonthSource": "Calendar", "daysSinceBaseline": 44,  # since Patch Tuesday 13 October 2026
    }  # fmt: skip
    assert v.drift == ()


@pytest.mark.parametrize(
    ("settings", "patch_status", "reason"),
    [
        ({**ENROLLED, "enableHotpatching": False}, {}, "HotpatchNotEnabled"),
        ({**ENROLLED, "patchMode": "AutomaticByOS"}, {}, "HotpatchNotEnabled"),
        (None, {}, "HotpatchNotEnabled"),
        (ENROLLED, {"lastPatchInstallationSummary": _install(status="Failed", failedPatchCount=2)}, "PatchInstallationFailed"),
        (ENROLLED, {"availablePatchSummary": _summary(status="Failed", error={"message": "agent down"})}, "AssessmentFailed"),
        (ENROLLED, {"availablePatchSummary": _summary(rebootPending=True)}, "RebootPending"),
        (ENROLLED, {"availablePatchSummary": _summary(criticalAndSecurityPatchCount=3)}, "UpdatesAvailable"),
        # a pending reboot outranks updates found (the reboot may install them)
        (ENROLLED, {"availablePatchSummary": _summary(rebootPending=True, criticalAndSecurityPatchCount=3)}, "RebootPending"),
        # precedence: a failed installation outranks a pending reboot
        (ENROLLED, {"availablePatchSummary": _summary(rebootPending=True),
                    "lastPatchInstallationSummary": _install(status="Failed", failedPatchCount=1)}, "PatchInstallationFailed"),
    ],
)  # fmt: skip
def test_unhealthy_reasons(settings, patch_status, reason):
    v = evaluate_hotpatch(settings, patch_status, TODAY)
    assert not v.condition.is_true and v.condition.reason == reason
    assert v.condition.message


def test_drift_lists_what_changed_including_reboot_setting():
    changed = {**ENROLLED, "automaticByPlatformSettings": {"rebootSetting": "Always"}}
    v = evaluate_hotpatch(changed, {}, TODAY, reboot_setting="IfRequired")
    assert v.drift == ("rebootSetting is 'Always', want 'IfRequired'",)


def test_drift_ignores_case_as_the_reconcile_pass_does():
    assert drift_of({**ENROLLED, "patchMode": "automaticbyplatform"}) == []
    assert drift_of({**ENROLLED, "enableHotpatching": False}) == ["enableHotpatching is False, want True"]


def test_published_instance_view_example():
    example = json.loads(
        (
            REPO / "tests" / "fixtures" / "azure-rest-examples" / "VirtualMachine_Get_InstanceView.json"
        ).read_text()
    )
    patch_status = example["responses"]["200"]["body"]["patchStatus"]
    v = evaluate_hotpatch(ENROLLED, patch_status, TODAY)
    # the example has one failed patch in its last installation and a pending reboot
    assert v.condition.reason == "PatchInstallationFailed"
    assert v.status["rebootPending"] is True and v.status["criticalAndSecurityPatchCount"] == 1


# ----------------------------------------------------------------------------- end of Hotpatch support


def test_support_ending_is_a_warning_below_every_patch_state():
    from azure_edition_operator import reasons as vocab
    from azure_edition_operator.images import hotpatch_end_notice

    notice = hotpatch_end_notice("2022-datacenter-azure-edition-core", ["Hotpatch"], date(2027, 6, 1))
    healthy = {"availablePatchSummary": _summary(), "lastPatchInstallationSummary": _install()}
    v = evaluate_with_drift(ENROLLED, healthy, date(2027, 6, 1), (), notice)
    assert not v.condition.is_true and v.condition.reason == vocab.HOTPATCH_SUPPORT_ENDING
    assert v.condition.message == notice and "2025-datacenter-azure-edition-core" in notice
    assert vocab.severity_of("HotpatchHealthy", v.condition.reason) is vocab.Severity.WARNING
    # what needs acting on now outranks a date months ahead
    waiting = {"availablePatchSummary": _summary(criticalAndSecurityPatchCount=1)}
    assert (
        evaluate_with_drift(ENROLLED, waiting, date(2027, 6, 1), (), notice).condition.reason
        == "UpdatesAvailable"
    )
    assert (
        evaluate_with_drift(ENROLLED, healthy, date(2027, 6, 1), (), None).condition.reason
        == "HotpatchEnabled"
    )


# ----------------------------------------------------------------------------- per-patch data and the calendar


def _with_activity(activity="act-1", **summary):
    return {"availablePatchSummary": {**_summary(**summary), "assessmentActivityId": activity}}


def test_current_assessment_splits_hotpatches_from_reboots_and_an_unplanned_baseline_wins():
    from azure_edition_operator.hotpatch_calendar import summarize

    dec = date(2026, 12, 14)
    data = summarize([
        {"kbId": "5001", "classifications": ["Security Updates"], "rebootBehavior": "NeverReboots"},
        {"kbId": "5002", "classifications": ["Security Updates"], "rebootBehavior": "AlwaysRequiresReboot",
         "publishedDate": "2026-12-08T18:00:00Z"},
    ], "act-1", (2026, 12))  # fmt: skip
    v = evaluate_with_drift(ENROLLED, _with_activity(criticalAndSecurityPatchCount=2), dec, (), patches=data)
    assert (v.status["hotpatchesPending"], v.status["rebootUpdatesPending"]) == (1, 1)
    assert (v.status["cycleMonth"], v.status["cycleMonthSource"]) == ("Baseline", "AssessPatches")
    assert v.condition.reason == "UpdatesAvailable"
    assert "1 hotpatch(es) without a reboot, 1 needing a reboot" in v.condition.message
    assert "unplanned baseline" in v.condition.message and "the data wins" in v.condition.message


def test_a_stale_assessment_is_not_reported():
    from azure_edition_operator.hotpatch_calendar import PatchSummary

    old = PatchSummary("act-0", hotpatches=3, need_reboot=1, baseline_evidence=("5002",))
    v = evaluate_with_drift(ENROLLED, _with_activity("act-1"), date(2026, 12, 14), (), patches=old)
    assert "hotpatchesPending" not in v.status and "rebootUpdatesPending" not in v.status
    assert (v.status["cycleMonth"], v.status["cycleMonthSource"]) == ("Hotpatch", "Calendar")


def test_a_calendar_override_moves_the_baseline():
    from azure_edition_operator.hotpatch_calendar import Calendar

    cal = Calendar("team copy", date(2026, 12, 1), unplanned=frozenset({(2026, 12)}))
    v = evaluate_with_drift(ENROLLED, _with_activity(), date(2026, 12, 14), (), calendar=cal)
    assert (v.status["cycleMonth"], v.status["cycleMonthSource"], v.status["daysSinceBaseline"]) == (
        "Baseline",
        "Calendar",
        6,
    )
    assert v.status["nextBaselineMonth"] == "2027-01"
    assert "team copy, as of 2026-12-01" in v.condition.message


def test_configuration_statuses_and_the_installation_are_read_fully():
    status = {
        "configurationStatuses": [
            {"code": "PatchModeConfigurationState/Ready", "level": "Info"},
            {"code": "AssessmentModeConfigurationState/Pending", "level": "Info"},
        ],
        "lastPatchInstallationSummary": _install(pendingPatchCount=2, maintenanceWindowExceeded=True),
    }
    v = evaluate_hotpatch(ENROLLED, status, TODAY)
    assert (v.status["patchModeState"], v.status["assessmentModeState"]) == ("Ready", "Pending")
    assert (v.status["pendingPatchCount"], v.status["maintenanceWindowExceeded"]) == (2, True)


def test_observed_drift_is_reported_and_said_not_to_be_restored() -> None:
    drift = ("patchMode is 'AutomaticByOS', want 'AutomaticByPlatform'",)
    full = evaluate_with_drift({}, None, date(2026, 12, 7), drift)
    observed = evaluate_with_drift({}, None, date(2026, 12, 7), drift, observe=True)
    assert full.condition.message.endswith("restoring them")
    assert observed.condition.reason == full.condition.reason == "HotpatchNotEnabled"
    assert observed.condition.message.endswith(
        "observe only: not restored (managementPolicy Full restores them)"
    )
