"""The baseline rollout's pure parts: the API's window, the platform team's rings, the state a restarted
operator reads back, and each VM's transitions from what Azure shows (maintenance.py, rollout.py)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from pydantic import ValidationError

from azure_edition_operator import reasons
from azure_edition_operator.api.v1alpha1 import RING_LABEL, MaintenanceWindowSpec
from azure_edition_operator.clock import Clock
from azure_edition_operator.hotpatch_calendar import BUILTIN, KeptPatch, PatchSummary
from azure_edition_operator.maintenance import (
    MAX_INSTALL,
    MIN_INSTALL,
    NO_START_GRACE,
    READY_TIMEOUT,
    InstallSeen,
    Member,
    NamespaceRollout,
    RolloutConfig,
    RolloutConfigError,
    StepKind,
    VMPhase,
    VMRecord,
    begin,
    current,
    install_parameters,
    installing,
    join,
    needs_look,
    next_step,
    observe,
    parse_rollout_config,
    report,
    window_of,
)
from azure_edition_operator.rollout import baseline_month_of, member_of, selected

UTC = dt.UTC
T0 = dt.datetime(2027, 1, 9, 1, 0, tzinfo=UTC)  # Saturday 02:00 in Berlin (CET), January: a baseline month
SOAK = dt.timedelta(hours=24)
CONFIG = RolloutConfig(("canary", "broad"), SOAK)


def window(**overrides) -> MaintenanceWindowSpec:
    wire = {"daysOfWeek": ["Saturday"], "startTime": "02:00", "timeZone": "Europe/Berlin", "duration": "3h"}
    return MaintenanceWindowSpec.model_validate({**wire, **overrides})


SAT_BERLIN = window_of(window())


def member(name: str, ring: str | None = "canary", uid: str | None = None) -> Member:
    return Member(name, uid or f"uid-{name}", ring, SAT_BERLIN)


# ----------------------------------------------------------------------------- the API


def test_the_window_from_the_api():
    w = window_of(window(daysOfWeek=["Saturday", "Sunday"], startTime="23:30", duration="1h30m"))
    assert (w.days, w.start, w.duration, w.tz) == (
        frozenset({5, 6}), dt.time(23, 30), dt.timedelta(minutes=90), "Europe/Berlin")  # fmt: skip
    assert current(SAT_BERLIN, T0) == (T0, T0 + dt.timedelta(hours=3))


def test_the_window_crosses_midnight_into_the_next_month():
    # Sunday 31 January 2027 23:00 Berlin for 2 h: open at 00:30 on Monday 1 February, local
    w = window_of(window(daysOfWeek=["Sunday"], startTime="23:00", duration="2h"))
    assert current(w, dt.datetime(2027, 1, 31, 23, 30, tzinfo=UTC)) == (
        dt.datetime(2027, 1, 31, 22, 0, tzinfo=UTC), dt.datetime(2027, 2, 1, 0, 0, tzinfo=UTC))  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timeZone": "Mars/Olympus_Mons"}, "not an IANA time zone"),
        ({"duration": "20m"}, "between 30m and 3h55m"),
        ({"duration": "4h"}, "between 30m and 3h55m"),
        ({"startTime": "24:00"}, "pattern"),
        ({"startTime": "2:00"}, "pattern"),
        ({"daysOfWeek": []}, "at least 1"),
        ({"daysOfWeek": ["Saturday", "Saturday"]}, "must not repeat"),
        ({"daysOfWeek": ["Samstag"]}, "Saturday"),
    ],
)
def test_bad_windows_are_refused_with_what_to_change(overrides, message):
    with pytest.raises(ValidationError, match=message):
        window(**overrides)


def test_the_api_bounds_are_the_install_bounds():
    assert dt.timedelta(minutes=30) == MIN_INSTALL and dt.timedelta(hours=3, minutes=55) == MAX_INSTALL
    assert window_of(window(duration="3h55m")).duration == MAX_INSTALL


# ----------------------------------------------------------------------------- the rings


def test_rollout_config_and_ring_labels():
    config = parse_rollout_config({"rollout.json": json.dumps({"rings": ["canary", "broad"], "soak": "24h"})})
    assert config == CONFIG
    assert config.ring_of({RING_LABEL: "canary"}) == "canary"
    assert config.ring_of({}) == "broad" and config.ring_of(None) == "broad"  # unlabelled: the last ring
    assert config.ring_of({RING_LABEL: "prod"}) is None  # a ring nobody configured: not in the rollout
    assert parse_rollout_config({"rollout.json": '{"rings": ["all"]}'}).soak == dt.timedelta(0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "no key rollout.json"),
        ({"rollout.json": "{"}, "not JSON"),
        ({"rollout.json": "[]"}, "JSON object"),
        ({"rollout.json": '{"rings": []}'}, "non-empty list"),
        ({"rollout.json": '{"rings": ["a", "a"]}'}, "distinct"),
        ({"rollout.json": '{"rings": ["a b"]}'}, "label values"),
        ({"rollout.json": '{"rings": ["a"], "soak": "1 day"}'}, "soak"),
    ],
)
def test_a_bad_rollout_config_says_what_is_wrong(data, message):
    with pytest.raises(RolloutConfigError, match=message):
        parse_rollout_config(data)


def _obj(**spec_changes) -> dict:
    spec = {
        "capabilities": ["Hotpatch"],
        "azure": {"subscriptionId": "00000000-0000-0000-0000-000000000000", "resourceGroup": "rg",
                  "location": "westeurope", "vmSize": "Standard_D2as_v5",
                  "subnetId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
                              "Microsoft.Network/virtualNetworks/v/subnets/s"},
        "adminCredentialsSecretRef": {"name": "admin"},
        "hotpatch": {"maintenanceWindow": window().model_dump(by_alias=True)},
    }  # fmt: skip
    spec.update(spec_changes)
    return {"metadata": {"name": "fs01", "namespace": "branch-a", "uid": "u1", "labels": {RING_LABEL: "canary"}},
            "spec": spec}  # fmt: skip


def test_who_takes_part():
    found = member_of(_obj(), CONFIG)
    assert found is not None and found[0] == Member("fs01", "u1", "canary", SAT_BERLIN)
    assert member_of(_obj(hotpatch={}), CONFIG) is None  # no window: the platform alone patches
    assert member_of(_obj(capabilities=[]), CONFIG) is None
    assert member_of(_obj(managementPolicy="Observe"), CONFIG) is None  # observe: no Azure write
    assert member_of(_obj(vmSize="not valid"), CONFIG) is None  # a spec that does not validate
    gone = _obj()
    gone["metadata"]["deletionTimestamp"] = "2027-01-01T00:00:00Z"
    assert member_of(gone, CONFIG) is None
    assert member_of(_obj(), None)[0].ring is None  # no configuration: reported, never installed


def test_namespace_patterns_as_kopf_reads_them():
    assert selected("branch-a", ())
    assert selected("branch-a", ("branch-*",)) and not selected("hq", ("branch-*",))
    assert not selected("e2e-own-1", ("!e2e-own*",)) and selected("branch-a", ("!e2e-own*",))


# ----------------------------------------------------------------------------- the month


def test_baseline_month_from_the_calendar_and_from_this_months_data():
    assert baseline_month_of(BUILTIN, T0, "Europe/Berlin", None) == (2027, 1)
    february = dt.datetime(2027, 2, 13, 1, tzinfo=UTC)
    assert baseline_month_of(BUILTIN, february, "Europe/Berlin", None) is None
    reboots = PatchSummary("a1", 0, 1, 0, ("5099",), (KeptPatch("5099", "Security Updates",
                                                                 "2027-02-09T18:00:00Z", "AlwaysRequiresReboot"),))  # fmt: skip
    assert baseline_month_of(BUILTIN, february, "Europe/Berlin", reboots) == (2027, 2)  # unplanned: data wins
    march = dt.datetime(2027, 3, 13, 1, tzinfo=UTC)
    assert baseline_month_of(BUILTIN, march, "Europe/Berlin", reboots) is None  # last month's data: no proof


# ----------------------------------------------------------------------------- state and transitions


def test_the_state_survives_a_restart_exactly():
    state = begin(CONFIG, "2027-01", [member("c1"), member("b1", "broad"), member("x", None)], T0)
    assert set(state.vms) == {"c1", "b1"}  # a VM in no configured ring is not in the rollout
    record = installing(state.vms["c1"], "previous-activity", T0)
    state = NamespaceRollout(state.month, state.rollout, {**state.vms, "c1": record}, "")
    assert NamespaceRollout.from_json(state.to_json()) == state
    assert NamespaceRollout.from_json("{not json") is None and NamespaceRollout.from_json(None) is None


def test_the_max_patch_publish_date_is_fixed_once_for_every_ring():
    state = begin(CONFIG, "2027-01", [member("c1"), member("b1", "broad")], T0 + dt.timedelta(seconds=7.5))
    body = install_parameters(state.rollout, SAT_BERLIN, T0 + dt.timedelta(minutes=5))
    later = install_parameters(state.rollout, SAT_BERLIN, T0 + dt.timedelta(days=7, minutes=50))
    assert body["windowsParameters"]["maxPatchPublishDate"] == "2027-01-09T01:00:07Z"
    assert later["windowsParameters"] == body["windowsParameters"]  # a week later, the next ring: the same
    assert body == {"maximumDuration": "PT2H55M", "rebootSetting": "IfRequired",
                    "windowsParameters": {"classificationsToInclude": ["Critical", "Security"],
                                          "maxPatchPublishDate": "2027-01-09T01:00:07Z"}}  # fmt: skip
    assert later["maximumDuration"] == "PT2H10M"  # ends with the window
    assert install_parameters(state.rollout, SAT_BERLIN, T0 + dt.timedelta(hours=2, minutes=31)) is None
    assert install_parameters(state.rollout, SAT_BERLIN, T0 - dt.timedelta(minutes=1)) is None


def seen(activity="new", state="Succeeded", serving=True, error="") -> InstallSeen:
    return InstallSeen(activity, state, error, serving)


def test_an_installation_ends_reboots_and_is_ready_again():
    record = installing(VMRecord("u", "canary"), "old", T0)
    assert needs_look(record)
    assert observe(record, seen("old"), T0 + dt.timedelta(minutes=1)) == record  # still the previous one
    assert observe(record, seen("new", "InProgress"), T0) == record
    rebooting = observe(record, seen(serving=False), T0 + dt.timedelta(minutes=10))
    assert (rebooting.phase, rebooting.finished, rebooting.ready) == (
        VMPhase.INSTALLED,
        T0 + dt.timedelta(minutes=10),
        None,
    )
    assert needs_look(rebooting)
    back = observe(rebooting, seen(serving=True), T0 + dt.timedelta(minutes=13))
    assert back.ready == T0 + dt.timedelta(minutes=13) and not needs_look(back)


def test_an_installation_that_never_reached_azure_is_sent_again():
    """Recorded, then the operator stopped before sending it: Azure still shows the previous activity."""
    record = installing(VMRecord("u", "canary"), "old", T0)
    assert observe(record, seen("old"), T0 + NO_START_GRACE - dt.timedelta(seconds=1)) == record
    again = observe(record, seen("old"), T0 + NO_START_GRACE)
    assert (again.phase, again.before, again.started) == (VMPhase.WAITING, "", None)
    # Azure took it (InProgress under a new id): it runs, however long
    assert observe(record, seen("new", "InProgress"), T0 + NO_START_GRACE * 3) == record


def test_a_failed_installation_or_no_return_fails_the_ring():
    record = installing(VMRecord("u", "canary"), "", T0)
    failed = observe(record, seen(state="Failed", error="0x80070643"), T0)
    assert failed.phase is VMPhase.FAILED and failed.detail == "installPatches ended Failed: 0x80070643"
    rebooting = observe(record, seen(serving=False), T0)
    assert (
        observe(rebooting, seen(serving=False), T0 + READY_TIMEOUT - dt.timedelta(seconds=1)).phase
        is VMPhase.INSTALLED
    )
    lost = observe(rebooting, seen(serving=False), T0 + READY_TIMEOUT)
    assert lost.phase is VMPhase.FAILED and "not running with its agent Ready" in lost.detail


def test_members_join_move_and_leave():
    state = begin(CONFIG, "2027-01", [member("c1"), member("b1", "broad")], T0)
    state = NamespaceRollout(state.month, state.rollout,
                             {**state.vms, "c1": installing(state.vms["c1"], "", T0)})  # fmt: skip
    joined = join(state, [member("c1", "broad"), member("b1", "canary"), member("n1", "broad")])
    assert joined.vms["c1"].ring == "canary"  # installing: keeps the ring it installs in
    assert joined.vms["b1"].ring == "canary"  # waiting: follows its label (its own VM, its own namespace)
    assert joined.vms["n1"] == VMRecord("uid-n1", "broad")  # a new VM joins waiting
    recreated = join(state, [member("c1", uid="other")])
    assert recreated.vms == {"c1": VMRecord("other", "canary")}  # a new object of the same name starts over
    assert "b1" not in recreated.vms  # gone: forgotten


def test_ring_order_from_persisted_state():
    """A restarted operator reads the state and takes the same next step."""
    state = begin(CONFIG, "2027-01", [member("c1"), member("b1", "broad"), member("b2", "broad")], T0)
    vms = dict(state.vms)
    vms["c1"] = VMRecord("uid-c1", "canary", VMPhase.INSTALLED, "", T0, T0 + dt.timedelta(minutes=9),
                         T0 + dt.timedelta(minutes=12))  # fmt: skip
    state = NamespaceRollout.from_json(NamespaceRollout(state.month, state.rollout, vms).to_json())
    ring_vms = [r.ring_vm(n) for n, r in state.vms.items()]
    soaking = next_step(state.rollout, ring_vms, T0 + dt.timedelta(hours=1))
    assert (soaking.kind, soaking.ring, soaking.until) == (
        StepKind.WAIT,
        "broad",
        T0 + dt.timedelta(hours=24, minutes=12),
    )
    go = next_step(state.rollout, ring_vms, T0 + dt.timedelta(hours=24, minutes=12))
    assert (go.kind, go.ring, go.vms) == (StepKind.INSTALL, "broad", ("b1", "b2"))


def test_each_vm_reports_its_place():
    state = begin(CONFIG, "2027-01", [member("c1"), member("b1", "broad")], T0)
    status, (ok, reason, _) = report(state, member("b1", "broad"), T0)
    assert (ok, reason) == (True, reasons.RING_WAITING)
    assert status == {"ring": "broad", "phase": "Waiting", "month": "2027-01",
                      "maxPatchPublishDate": "2027-01-09T01:00:00Z", "nextWindow": "2027-01-16T01:00:00Z"}  # fmt: skip
    failed = VMRecord("uid-c1", "canary", VMPhase.FAILED, detail="installPatches ended Failed: boom")
    stopped = NamespaceRollout(
        state.month, state.rollout, {**state.vms, "c1": failed}, "ring canary failed on c1"
    )
    _, (ok, reason, message) = report(stopped, member("c1"), T0)
    assert (ok, reason) == (False, reasons.ROLLOUT_STOPPED) and "boom" in message
    _, (ok, reason, _) = report(stopped, member("b1", "broad"), T0)
    assert (ok, reason) == (False, reasons.ROLLOUT_STOPPED)
    status, (ok, reason, _) = report(None, member("x", None), T0)
    assert (status["phase"], ok, reason) == ("NotInRollout", False, reasons.RING_NOT_CONFIGURED)
    for reason in (reasons.RING_WAITING, reasons.PATCHES_INSTALLING, reasons.PATCHES_INSTALLED,
                   reasons.ROLLOUT_STOPPED, reasons.RING_NOT_CONFIGURED):  # fmt: skip
        assert reasons.explain(reasons.HOTPATCH_ROLLOUT, reason) is not None  # documented, one place


def test_a_scaled_clock_for_tests_only():
    assert abs(Clock().now() - dt.datetime.now(UTC)) < dt.timedelta(seconds=2)
    fast = Clock(T0, 3600.0)
    time.sleep(0.01)
    assert T0 + dt.timedelta(seconds=30) <= fast.now() < T0 + dt.timedelta(minutes=30)
    assert fast.real_seconds(dt.timedelta(hours=1)) == 1.0
