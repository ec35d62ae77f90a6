"""Hotpatch reported from data end to end: assessPatches' per-patch rebootBehavior decides what status
says about the month (the data wins over the calendar), and a hotpatch month shows hotpatches pending with
no reboot. Real API server, real SDKs against the simulator, whose guest plays the month."""

from __future__ import annotations

import datetime as dt

import pytest

from azure_edition_operator.hotpatch_calendar import BUILTIN
from tests.e2e.operator_stack import RG, condition, control, get, simulator, vm_name, wait_for  # noqa: F401
from tests.e2e.test_checks import apply_sample, checking_operator  # noqa: F401

pytestmark = pytest.mark.e2e


@pytest.fixture
def hotpatch_vm(checking_operator, kubectl, namespace):
    apply_sample(kubectl, namespace, "hotpatch")
    kubectl("wait", "--for=condition=Ready", "aevm/hotpatch", "-n", namespace, "--timeout=60s", timeout=90)
    return vm_name(get(kubectl, namespace, "hotpatch"))


def assess(kubectl, namespace: str, token: str) -> dict:
    kubectl(
        "annotate",
        "--overwrite",
        "aevm",
        "hotpatch",
        "-n",
        namespace,
        f"azureedition.io/assess-patches={token}",
    )
    return wait_for(
        lambda: (
            (o := get(kubectl, namespace, "hotpatch"))["status"]["hotpatch"].get("lastAssessToken") == token
            and o
        ),
        what=f"assessment {token}",
    )


def calendar_month_is_baseline() -> bool:
    today = dt.datetime.now(dt.UTC)
    return BUILTIN.is_baseline((today.year, today.month))


def test_an_unplanned_baseline_month_is_reported_as_a_baseline_from_the_data(
    kubectl, namespace, control, hotpatch_vm
):
    # The guest's Windows Update offers this month's cumulative update: a security update that reboots.
    control.set_guest(
        RG, hotpatch_vm, monthKind="Baseline", availablePatches={"Security": 1, "Definition": 1}
    )
    assess(kubectl, namespace, "baseline-1")

    def from_data():
        obj = get(kubectl, namespace, "hotpatch")
        hp = obj["status"]["hotpatch"]
        return obj if hp.get("cycleMonthSource") == "AssessPatches" and "daysSinceBaseline" in hp else None

    obj = wait_for(
        from_data, what="a check round that uses the assessment"
    )  # the daemon, not only the assess write
    hp = obj["status"]["hotpatch"]
    assert hp["cycleMonth"] == "Baseline"
    assert (hp["hotpatchesPending"], hp["rebootUpdatesPending"]) == (0, 1)
    message = condition(obj, "HotpatchHealthy")["message"]
    if not calendar_month_is_baseline():  # this month is a hotpatch month on the calendar: unplanned
        assert "unplanned baseline" in message and "the data wins" in message
    assert "need a reboot" in message


def test_a_hotpatch_month_shows_hotpatches_pending_with_no_reboot(kubectl, namespace, control, hotpatch_vm):
    control.set_guest(
        RG, hotpatch_vm, monthKind="Hotpatch", availablePatches={"Security": 2, "Definition": 1}
    )
    obj = assess(kubectl, namespace, "hotpatch-1")
    hp = obj["status"]["hotpatch"]
    assert (hp["hotpatchesPending"], hp["rebootUpdatesPending"]) == (2, 0)
    obj = wait_for(
        lambda: (
            (o := get(kubectl, namespace, "hotpatch"))["status"]["hotpatch"].get("cycleMonthSource") and o
        ),
        what="a check round",
    )
    hp = obj["status"]["hotpatch"]
    assert hp["cycleMonthSource"] == "Calendar"  # hotpatch-only data proves no baseline: the calendar stands
    assert hp["cycleMonth"] == ("Baseline" if calendar_month_is_baseline() else "Hotpatch")
    assert (hp["hotpatchesPending"], hp["rebootUpdatesPending"]) == (2, 0)  # kept by the check rounds
    assert hp["rebootPending"] is False
    assert isinstance(hp["daysSinceBaseline"], int) and hp["daysSinceBaseline"] >= 0
