"""The Hotpatch calendar as data and the month arithmetic (time zones, DST, month and year ends), and
what assessPatches' per-patch data says about the month."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from azure_edition_operator.api.v1alpha1 import CycleMonth
from azure_edition_operator.hotpatch_calendar import (
    BUILTIN,
    Calendar,
    CalendarError,
    PatchSummary,
    days_since_baseline,
    last_baseline,
    local_month,
    month_kind,
    next_baseline,
    parse_calendar,
    patch_tuesday,
    shift,
    summarize,
)

UTC = dt.UTC


def at(*args: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def test_builtin_calendar_has_its_source_and_date():
    assert "hotpatch.md" in BUILTIN.source and BUILTIN.as_of == dt.date(2025, 7, 14)
    assert [m for m in range(1, 13) if BUILTIN.is_baseline((2026, m))] == [1, 4, 7, 10]


@pytest.mark.parametrize(
    ("now", "tz", "month"),
    [
        (at(2027, 4, 30, 12, 30), "Pacific/Auckland", (2027, 5)),  # already May in Auckland (UTC+12)
        (at(2027, 5, 1, 3, 0), "America/Los_Angeles", (2027, 4)),  # still April in California
        (at(2026, 12, 31, 23, 59), "UTC", (2026, 12)),
        (at(2026, 12, 31, 23, 30), "Europe/Berlin", (2027, 1)),  # the year turns first in Berlin
        (at(2027, 1, 1, 0, 30), "America/New_York", (2026, 12)),
        # the DST switch nights do not move a month boundary: 31 March 2027 01:30 UTC in Berlin (CEST since 28 March)
        (at(2027, 3, 31, 22, 30), "Europe/Berlin", (2027, 4)),  # 00:30 CEST on 1 April
        (at(2027, 3, 31, 21, 30), "Europe/Berlin", (2027, 3)),  # 23:30 CEST on 31 March
        (at(2026, 10, 31, 23, 30), "Europe/London", (2026, 10)),  # GMT again since 25 Oct: 23:30 on 31 Oct
    ],
)
def test_local_month_in_time_zones(now, tz, month):
    assert local_month(now, tz) == month


@pytest.mark.parametrize(
    ("month", "by", "expected"),
    [
        ((2026, 12), 1, (2027, 1)),
        ((2027, 1), -1, (2026, 12)),
        ((2026, 11), 14, (2028, 1)),
        ((2026, 3), -15, (2024, 12)),
    ],
)
def test_shift_crosses_year_ends(month, by, expected):
    assert shift(month, by) == expected


@pytest.mark.parametrize(
    ("month", "nxt", "last"),
    [
        ((2026, 12), (2027, 1), (2026, 10)),
        ((2027, 1), (2027, 4), (2027, 1)),
        ((2026, 10), (2027, 1), (2026, 10)),
        ((2027, 3), (2027, 4), (2027, 1)),
    ],
)
def test_next_and_last_baseline_of_the_builtin_calendar(month, nxt, last):
    assert next_baseline(BUILTIN, month) == nxt
    assert last_baseline(BUILTIN, month) == last


def test_unplanned_and_cancelled_baselines():
    cal = Calendar(
        "test", dt.date(2026, 1, 1), unplanned=frozenset({(2026, 12)}), cancelled=frozenset({(2027, 1)})
    )
    assert cal.is_baseline((2026, 12)) and not cal.is_baseline((2027, 1))
    assert next_baseline(cal, (2026, 11)) == (2026, 12)
    assert next_baseline(cal, (2026, 12)) == (2027, 4)
    assert last_baseline(cal, (2027, 3)) == (2026, 12)


def test_a_calendar_without_baselines_is_an_error():
    with pytest.raises(CalendarError):
        next_baseline(Calendar("empty", dt.date(2026, 1, 1), planned_months=frozenset()), (2026, 1))


@pytest.mark.parametrize(
    ("month", "day"),
    [
        ((2026, 12), 8),
        ((2027, 1), 12),
        ((2027, 4), 13),
        ((2026, 9), 8),
        ((2027, 6), 8),
        ((2024, 10), 8),
        ((2026, 2), 10),
    ],
)
def test_patch_tuesday_is_the_second_tuesday(month, day):
    date = patch_tuesday(month)
    assert (date.year, date.month, date.day) == (*month, day) and date.weekday() == 1


@pytest.mark.parametrize(
    ("now", "tz", "days"),
    [
        (at(2026, 12, 7, 12), "UTC", (dt.date(2026, 12, 7) - dt.date(2026, 10, 13)).days),
        # a baseline month before its Patch Tuesday (12 Jan 2027) counts from October's
        (at(2027, 1, 11, 12), "UTC", (dt.date(2027, 1, 11) - dt.date(2026, 10, 13)).days),
        (at(2027, 1, 12, 12), "UTC", 0),
        # 11 Jan 23:30 UTC is already Patch Tuesday in Auckland
        (at(2027, 1, 11, 23, 30), "Pacific/Auckland", 0),
        (at(2027, 1, 12, 3, 0), "America/Los_Angeles", (dt.date(2027, 1, 11) - dt.date(2026, 10, 13)).days),
        # across a DST change (Berlin, 28 March 2027): whole calendar days, not 24-hour periods
        (at(2027, 3, 29, 22, 30), "Europe/Berlin", (dt.date(2027, 3, 30) - dt.date(2027, 1, 12)).days),
    ],
)
def test_days_since_baseline(now, tz, days):
    assert days_since_baseline(BUILTIN, now, tz) == days


def _doc(**kw):
    return {
        "calendar.json": json.dumps(
            {"source": "release-health, copied 2026-12-01", "asOf": "2026-12-01", **kw}
        )
    }


def test_parse_calendar_override():
    cal = parse_calendar(
        _doc(unplannedBaselines=["2026-12"], cancelledBaselines=["2027-01"], plannedMonths=[1, 4, 7, 10])
    )
    assert cal.source == "release-health, copied 2026-12-01" and cal.as_of == dt.date(2026, 12, 1)
    assert cal.unplanned == {(2026, 12)} and cal.cancelled == {(2027, 1)}
    assert parse_calendar(_doc()).planned_months == BUILTIN.planned_months


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({}, "no key calendar.json"),
        ({"calendar.json": "{"}, "not JSON"),
        ({"calendar.json": "[]"}, "JSON object"),
        ({"calendar.json": json.dumps({"asOf": "2026-12-01"})}, "source"),
        ({"calendar.json": json.dumps({"source": "x"})}, "asOf"),
        (_doc(unplannedBaselines=["2026-13"]), "unplannedBaselines: '2026-13'"),
        (_doc(unplannedBaselines="2026-12"), "must be a list"),
        (_doc(plannedMonths=[0, 4]), "plannedMonths"),
        (_doc(plannedMonths=[]), "non-empty"),
    ],
)
def test_parse_calendar_refuses_with_a_reason(data, says):
    with pytest.raises(CalendarError, match=says):
        parse_calendar(data)


# ----------------------------------------------------------------------------- assessPatches data


def patch(kb, classification, reboot, published="2026-12-08T18:00:00Z"):
    return {
        "kbId": kb,
        "classifications": [classification],
        "rebootBehavior": reboot,
        "publishedDate": published,
    }


DEC = (2026, 12)


def test_summarize_counts_by_reboot_behaviour():
    s = summarize(
        [
            patch("5001", "Security Updates", "NeverReboots"),
            patch("5002", "Critical Updates", "NeverReboots"),
            patch("5003", "Definition Updates", "NeverReboots"),
            patch("5004", "Update Rollups", "CanRequestReboot"),
            patch("5005", "Security Updates", "AlwaysRequiresReboot"),
            patch("5006", "Security Updates", "AlwaysRequiresReboot", published="2026-11-10T18:00:00Z"),
            patch("5007", "Security Updates", None),  # unknown: never promise no reboot
        ],
        "act-1",
        DEC,
    )
    assert (s.hotpatches, s.need_reboot, s.other_no_reboot) == (2, 4, 1)
    assert s.baseline_evidence == ("5005", "5007")  # this month's security updates that reboot


def test_summary_round_trips_through_its_record_with_each_patch_kept():
    s = summarize([patch("5005", "Security Updates", "AlwaysRequiresReboot")], "act-1", DEC)
    assert PatchSummary.from_json(s.to_json()) == s
    assert s.patches == (("5005", "Security Updates", "2026-12-08T18:00:00Z", "AlwaysRequiresReboot"),)
    many = summarize([patch(str(n), "Definition Updates", "NeverReboots") for n in range(100)], "a", DEC)
    assert len(many.patches) == 40 and many.other_no_reboot == 100  # the list is capped, the counts are not
    assert PatchSummary.from_json("not json") is None and PatchSummary.from_json(None) is None


def test_the_data_wins_over_the_calendar_for_an_unplanned_baseline():
    data = summarize([patch("5005", "Security Updates", "AlwaysRequiresReboot")], "a", DEC)
    kind = month_kind(BUILTIN, DEC, data)
    assert (kind.kind, kind.source) == (CycleMonth.BASELINE, "AssessPatches")
    assert "unplanned baseline" in kind.note and "KB5005" in kind.note and "the data wins" in kind.note


def test_a_hotpatch_month_from_data_and_calendar():
    data = summarize([patch("5001", "Security Updates", "NeverReboots")], "a", DEC)
    kind = month_kind(BUILTIN, DEC, data)
    assert (kind.kind, kind.source) == (CycleMonth.HOTPATCH, "Calendar")


def test_hotpatch_only_data_in_a_calendar_baseline_month_keeps_the_calendar():
    jan = (2027, 1)
    data = summarize([patch("5001", "Security Updates", "NeverReboots", "2027-01-12T18:00:00Z")], "a", jan)
    assert month_kind(BUILTIN, jan, data).kind is CycleMonth.BASELINE
    assert month_kind(BUILTIN, jan, None).source == "Calendar"
