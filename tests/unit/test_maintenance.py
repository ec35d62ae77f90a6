"""The maintenance window (time zones, DST, month and year ends) and the ring rollout's decisions (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from azure_edition_operator.maintenance import (
    MAX_INSTALL,
    RingVM,
    StepKind,
    VMPhase,
    Window,
    current,
    install_duration,
    iso_duration,
    next_opening,
    next_step,
    start_rollout,
)

UTC = dt.UTC
SAT = 5


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


SAT_0200_BERLIN = Window(frozenset({SAT}), dt.time(2, 0), dt.timedelta(hours=3), "Europe/Berlin")


@pytest.mark.parametrize(
    ("now", "open_"),
    [
        (
            utc(2026, 12, 12, 1, 0),
            (utc(2026, 12, 12, 1, 0), utc(2026, 12, 12, 4, 0)),
        ),  # 02:00 CET = 01:00 UTC
        (utc(2026, 12, 12, 0, 59), None),
        (utc(2026, 12, 12, 4, 0), None),  # the end is exclusive
        (utc(2027, 7, 10, 0, 30), (utc(2027, 7, 10, 0, 0), utc(2027, 7, 10, 3, 0))),  # CEST: 00:00 UTC
    ],
)
def test_current_window_in_its_time_zone(now, open_):
    assert current(SAT_0200_BERLIN, now) == open_


def test_spring_forward_start_in_the_skipped_hour():
    # 28 March 2027, Berlin: 02:00 -> 03:00. A 02:30 Sunday window opens at 03:30 CEST (01:30 UTC).
    w = Window(frozenset({6}), dt.time(2, 30), dt.timedelta(hours=1), "Europe/Berlin")
    assert next_opening(w, utc(2027, 3, 27, 12)) == utc(2027, 3, 28, 1, 30)


def test_fall_back_ambiguous_start_is_the_first_and_duration_is_elapsed_time():
    # 31 October 2027, Berlin: 03:00 CEST -> 02:00 CET; 02:30 happens twice: the first (00:30 UTC).
    w = Window(frozenset({6}), dt.time(2, 30), dt.timedelta(hours=2), "Europe/Berlin")
    start = next_opening(w, utc(2027, 10, 30, 12))
    assert start == utc(2027, 10, 31, 0, 30)
    assert current(w, utc(2027, 10, 31, 2, 29)) == (start, start + dt.timedelta(hours=2))


def test_window_across_midnight_month_and_year_end():
    # Thursday 31 December 2026 23:00 in New York, for 3 hours: into 1 January
    w = Window(frozenset({3}), dt.time(23, 0), dt.timedelta(hours=3), "America/New_York")
    assert current(w, utc(2027, 1, 1, 6, 30)) == (utc(2027, 1, 1, 4, 0), utc(2027, 1, 1, 7, 0))
    assert next_opening(w, utc(2027, 1, 1, 7, 0)) == utc(2027, 1, 8, 4, 0)


def test_the_local_day_decides_not_the_utc_day():
    # Saturday 02:00 in Auckland (UTC+13 in January) is Friday 13:00 UTC
    w = Window(frozenset({SAT}), dt.time(2, 0), dt.timedelta(hours=2), "Pacific/Auckland")
    assert next_opening(w, utc(2027, 1, 4)) == utc(2027, 1, 8, 13, 0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 12, 12, 1, 0), dt.timedelta(hours=3)),
        (utc(2026, 12, 12, 3, 29, 30), dt.timedelta(minutes=30)),
        (utc(2026, 12, 12, 3, 31), None),  # less than 30 minutes left
        (utc(2026, 12, 11, 12, 0), None),  # closed
    ],
)
def test_install_duration_ends_with_the_window(now, expected):
    assert install_duration(SAT_0200_BERLIN, now) == expected


def test_install_duration_is_capped():
    w = Window(frozenset(range(7)), dt.time(0, 0), dt.timedelta(hours=8))
    assert install_duration(w, utc(2026, 12, 12, 0, 0)) == MAX_INSTALL


@pytest.mark.parametrize(
    ("span", "iso"),
    [
        (dt.timedelta(hours=4), "PT4H"),
        (dt.timedelta(minutes=235), "PT3H55M"),
        (dt.timedelta(minutes=30), "PT30M"),
    ],
)
def test_iso_duration(span, iso):
    assert iso_duration(span) == iso


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": frozenset(), "start": dt.time(2), "duration": dt.timedelta(hours=1)},
        {"days": frozenset({7}), "start": dt.time(2), "duration": dt.timedelta(hours=1)},
        {"days": frozenset({1}), "start": dt.time(2), "duration": dt.timedelta(0)},
        {
            "days": frozenset({1}),
            "start": dt.time(2),
            "duration": dt.timedelta(hours=1),
            "tz": "Mars/Olympus",
        },
    ],
)
def test_bad_windows_are_refused(kwargs):
    with pytest.raises(Exception):  # noqa: B017 (ValueError, or zoneinfo's ZoneInfoNotFoundError)
        Window(**kwargs)


# ----------------------------------------------------------------------------- rings

T0 = utc(2027, 1, 16, 1, 0)
SOAK = dt.timedelta(hours=24)


def vm(name, ring, phase=VMPhase.WAITING, ready=True, finished=None):
    return RingVM(name, ring, phase, ready, finished)


def test_the_rollout_fixes_one_patch_set():
    rollout = start_rollout(["test", "rest"], SOAK, dt.datetime(2027, 1, 16, 1, 0, 5, 123, tzinfo=UTC))
    assert rollout.max_patch_publish_date == utc(2027, 1, 16, 1, 0, 5)
    with pytest.raises(ValueError):
        start_rollout(["a", "a"], SOAK, T0)


def test_two_rings_in_order_with_ready_and_soak():
    rollout = start_rollout(["test", "rest"], SOAK, T0)
    fleet = [vm("t1", "test"), vm("r1", "rest"), vm("r2", "rest")]
    step = next_step(rollout, fleet, T0)
    assert (step.kind, step.ring, step.vms) == (StepKind.INSTALL, "test", ("t1",))
    # ring 1 installed but rebooting (not Ready): wait
    fleet[0] = vm("t1", "test", VMPhase.INSTALLED, ready=False, finished=T0 + dt.timedelta(hours=1))
    step = next_step(rollout, fleet, T0 + dt.timedelta(hours=1))
    assert (step.kind, step.vms) == (StepKind.WAIT, ("t1",))
    # Ready again: the soak runs from when it finished
    fleet[0] = vm("t1", "test", VMPhase.INSTALLED, ready=True, finished=T0 + dt.timedelta(hours=1))
    step = next_step(rollout, fleet, T0 + dt.timedelta(hours=2))
    assert (step.kind, step.ring, step.until) == (StepKind.WAIT, "rest", T0 + dt.timedelta(hours=25))
    step = next_step(rollout, fleet, T0 + dt.timedelta(hours=25))
    assert (step.kind, step.ring, step.vms) == (StepKind.INSTALL, "rest", ("r1", "r2"))
    done = [
        fleet[0],
        *(vm(n, "rest", VMPhase.INSTALLED, True, T0 + dt.timedelta(hours=26)) for n in ("r1", "r2")),
    ]
    assert next_step(rollout, done, T0 + dt.timedelta(hours=27)).kind is StepKind.DONE


def test_a_failed_vm_stops_the_later_rings():
    rollout = start_rollout(["test", "rest"], SOAK, T0)
    fleet = [vm("t1", "test", VMPhase.FAILED), vm("t2", "test", VMPhase.INSTALLED), vm("r1", "rest")]
    step = next_step(rollout, fleet, T0 + dt.timedelta(days=3))
    assert (step.kind, step.ring, step.vms) == (StepKind.STOPPED, "test", ("t1",))
    assert "later rings wait for a person" in step.reason


def test_empty_rings_are_passed_over_and_unknown_rings_ignored():
    rollout = start_rollout(["canary", "test", "rest"], SOAK, T0)
    fleet = [vm("r1", "rest"), vm("x1", "not-a-ring")]
    step = next_step(rollout, fleet, T0)
    assert (step.kind, step.ring, step.vms) == (StepKind.INSTALL, "rest", ("r1",))
