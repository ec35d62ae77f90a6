"""The Windows Server Hotpatch calendar as data, and what the patch data says about this month (pure).

Microsoft's calendar (the Windows Server Hotpatch calendar on release-health, and windowsserverdocs
``get-started/hotpatch.md``): a *baseline* month brings the cumulative update and a reboot; the planned
baselines are January, April, July and October, and the months between are *hotpatch* months (no reboot).
Microsoft also publishes *unplanned* baselines (a fix that cannot be hotpatched turns a hotpatch month into
a baseline month). So the calendar is data with its source and date (``BUILTIN``); a team can replace it
before a release of ours (``parse_calendar``, the ConfigMap's format). What Azure's ``assessPatches``
returns per patch (``rebootBehavior``) is evidence about the month the calendar only predicts: when the two
disagree, the data wins (``month_kind``).

Months are calendar months in a time zone (a window's, else UTC): "this month" at 00:30 on 1 May in
Auckland is still April in UTC. A month's release is Patch Tuesday, the second Tuesday of the month
(learn.microsoft.com "Windows monthly updates explained"): days since the last baseline count from it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple
from zoneinfo import ZoneInfo

from .api.v1alpha1 import CycleMonth
from .configdata import json_object

Month = tuple[int, int]  # (year, month)

NEVER_REBOOTS = "NeverReboots"
CRITICAL_AND_SECURITY = frozenset({"critical", "security", "critical updates", "security updates"})


@dataclass(frozen=True)
class Calendar:
    """Which months are baselines: the planned months of every year, plus unplanned baselines, minus
    planned ones Microsoft cancelled; ``source`` and ``as_of`` say where this came from and when."""

    source: str
    as_of: dt.date
    planned_months: frozenset[int] = frozenset({1, 4, 7, 10})
    unplanned: frozenset[Month] = frozenset()
    cancelled: frozenset[Month] = frozenset()

    def is_baseline(self, month: Month) -> bool:
        if month in self.unplanned:
            return True
        return month[1] in self.planned_months and month not in self.cancelled

    def describe(self) -> str:
        return f"{self.source}, as of {self.as_of.isoformat()}"


BUILTIN = Calendar(
    source="Windows Server Hotpatch calendar (release-health) and windowsserverdocs get-started/hotpatch.md: "
    "planned baselines in January, April, July and October",
    as_of=dt.date(2025, 7, 14),
)


class CalendarError(ValueError):
    """A calendar override that cannot be read; the message says which key and why."""


def _months(value: object, key: str) -> frozenset[Month]:
    if not isinstance(value, list):
        raise CalendarError(f"{key} must be a list of YYYY-MM strings")
    out = set()
    for item in value:
        try:
            year, month = (int(p) for p in str(item).split("-"))
            dt.date(year, month, 1)
        except ValueError:
            raise CalendarError(f"{key}: {item!r} is not a YYYY-MM month") from None
        out.add((year, month))
    return frozenset(out)


def parse_calendar(data: Mapping[str, str]) -> Calendar:
    """A calendar from a ConfigMap's ``data``: ``calendar.json`` holding ``source`` and ``asOf``
    (required: a calendar without its provenance cannot be judged), and optionally ``plannedMonths``
    (month numbers), ``unplannedBaselines`` and ``cancelledBaselines`` (YYYY-MM lists)."""
    doc = json_object(data, "calendar.json", CalendarError)
    source = doc.get("source")
    if not isinstance(source, str) or not source.strip():
        raise CalendarError("calendar.json needs a non-empty source (where the months come from)")
    try:
        as_of = dt.date.fromisoformat(str(doc.get("asOf")))
    except ValueError:
        raise CalendarError("calendar.json needs asOf, a YYYY-MM-DD date") from None
    planned = doc.get("plannedMonths", sorted(BUILTIN.planned_months))
    if (
        not isinstance(planned, list)
        or not planned
        or not all(isinstance(m, int) and 1 <= m <= 12 for m in planned)
    ):
        # never empty: every month's arithmetic (next, last baseline) needs a baseline within the year
        raise CalendarError("plannedMonths must be a non-empty list of month numbers 1-12")
    return Calendar(source.strip(), as_of, frozenset(planned),
                    _months(doc.get("unplannedBaselines", []), "unplannedBaselines"),
                    _months(doc.get("cancelledBaselines", []), "cancelledBaselines"))  # fmt: skip


# ----------------------------------------------------------------------------- month arithmetic


def local_month(now: dt.datetime, tz: str = "UTC") -> Month:
    """The calendar month ``now`` (aware) falls in, in time zone ``tz`` (IANA name)."""
    local = now.astimezone(ZoneInfo(tz))
    return local.year, local.month


def shift(month: Month, by: int) -> Month:
    index = month[0] * 12 + (month[1] - 1) + by
    return index // 12, index % 12 + 1


def fmt(month: Month) -> str:
    return f"{month[0]:04d}-{month[1]:02d}"


def next_baseline(calendar: Calendar, month: Month) -> Month:
    """The first baseline month strictly after ``month`` (within 5 years: a calendar without one is wrong)."""
    for step in range(1, 61):
        if calendar.is_baseline(candidate := shift(month, step)):
            return candidate
    raise CalendarError("the calendar has no baseline month in the next five years")


def last_baseline(calendar: Calendar, month: Month) -> Month:
    """The latest baseline month at or before ``month``."""
    for step in range(0, 61):
        if calendar.is_baseline(candidate := shift(month, -step)):
            return candidate
    raise CalendarError("the calendar has no baseline month in the last five years")


def patch_tuesday(month: Month) -> dt.date:
    """The second Tuesday of the month: Microsoft's monthly security release."""
    first = dt.date(month[0], month[1], 1)
    return first + dt.timedelta(days=(1 - first.weekday()) % 7 + 7)


def days_since_baseline(calendar: Calendar, now: dt.datetime, tz: str = "UTC") -> int:
    """Whole days from the last baseline's release (its Patch Tuesday, local midnight) to ``now`` in ``tz``;
    a baseline month before its Patch Tuesday counts from the baseline before it."""
    local = now.astimezone(ZoneInfo(tz))
    month = last_baseline(calendar, (local.year, local.month))
    if patch_tuesday(month) > local.date():
        month = last_baseline(calendar, shift(month, -1))
    return (local.date() - patch_tuesday(month)).days


# ----------------------------------------------------------------------------- what assessPatches says


MAX_KEPT_PATCHES = 40
"""Patches kept per assessment in the operator's record (an annotation: 256 KiB for all of an object's):
a month's offer is a handful; a VM years behind lists its first 40, the counts still cover every one."""


class KeptPatch(NamedTuple):
    """One patch of an assessment as the operator keeps it (never in status: the counts are)."""

    kb: str
    classification: str
    published: str  # ISO 8601, as Azure sent it ("" when absent)
    reboot: str  # rebootBehavior ("" when absent)


@dataclass(frozen=True)
class PatchSummary:
    """Counts of an assessPatches result, by what installing them costs (the whole list stays out of
    status); ``baseline_evidence``: critical/security patches published this month that need a reboot."""

    activity_id: str | None
    hotpatches: int = 0  # critical/security, NeverReboots
    need_reboot: int = 0  # any classification, CanRequestReboot or AlwaysRequiresReboot
    other_no_reboot: int = 0  # other classifications that never reboot (definitions, ...)
    baseline_evidence: tuple[str, ...] = field(default=())  # their KB ids
    patches: tuple[KeptPatch, ...] = field(default=())  # per patch, at most MAX_KEPT_PATCHES

    def to_json(self) -> str:
        return json.dumps({"activityId": self.activity_id, "hotpatches": self.hotpatches,
                           "needReboot": self.need_reboot, "otherNoReboot": self.other_no_reboot,
                           "baselineKbs": list(self.baseline_evidence),
                           "patches": [list(p) for p in self.patches]}, sort_keys=True)  # fmt: skip

    @classmethod
    def from_json(cls, raw: str | None) -> PatchSummary | None:
        """The operator's own record (its annotation); None when absent or unreadable."""
        try:
            doc = json.loads(raw or "")
            kept = tuple(KeptPatch(*(str(v) for v in p)) for p in doc.get("patches", []))
            return cls(doc.get("activityId"), int(doc.get("hotpatches", 0)), int(doc.get("needReboot", 0)),
                       int(doc.get("otherNoReboot", 0)), tuple(str(k) for k in doc.get("baselineKbs", [])),
                       kept)  # fmt: skip
        except (ValueError, TypeError, AttributeError):
            return None


def _published_month(patch: Mapping[str, object], tz: str) -> Month | None:
    raw = patch.get("publishedDate")
    if isinstance(raw, dt.datetime):
        when = raw
    elif isinstance(raw, str) and raw:
        try:
            when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return local_month(when, tz)


def summarize(
    available: Iterable[Mapping[str, object]], activity_id: str | None, month: Month, tz: str = "UTC"
) -> PatchSummary:
    """Count ``availablePatches[]`` (wire shape: ``kbId``, ``classifications``, ``rebootBehavior``,
    ``publishedDate``). An unknown ``rebootBehavior`` counts as needing a reboot (never promise none)."""
    hot = reboot = other = 0
    evidence: list[str] = []
    kept: list[KeptPatch] = []
    for patch in available:
        if len(kept) < MAX_KEPT_PATCHES:
            published = patch.get("publishedDate")
            kept.append(KeptPatch(
                str(patch.get("kbId") or ""), ", ".join(str(c) for c in patch.get("classifications") or []),  # type: ignore[union-attr]
                published.isoformat() if isinstance(published, dt.datetime) else str(published or ""),
                str(patch.get("rebootBehavior") or ""),
            ))  # fmt: skip
        classes = {str(c).lower() for c in patch.get("classifications") or []}  # type: ignore[union-attr]
        security = bool(classes & CRITICAL_AND_SECURITY)
        never = patch.get("rebootBehavior") == NEVER_REBOOTS
        if never and security:
            hot += 1
        elif never:
            other += 1
        else:
            reboot += 1
            if security and _published_month(patch, tz) == month:
                evidence.append(str(patch.get("kbId") or "?"))
    return PatchSummary(activity_id, hot, reboot, other, tuple(evidence), tuple(kept))


@dataclass(frozen=True)
class MonthKind:
    kind: CycleMonth
    source: str  # "Calendar" or "AssessPatches"
    note: str  # what the condition says about it


def month_kind(calendar: Calendar, month: Month, data: PatchSummary | None) -> MonthKind:
    """This month's kind: the calendar's, unless the patch data says otherwise; the data wins.

    The data can only prove a baseline (a critical/security update of this month that reboots). A
    hotpatch-only result in a calendar baseline month proves nothing (the baseline may not be offered
    yet, or is installed), so the calendar stands then."""
    planned = CycleMonth.BASELINE if calendar.is_baseline(month) else CycleMonth.HOTPATCH
    if data is not None and data.baseline_evidence:
        kbs = ", ".join(f"KB{k}" for k in data.baseline_evidence)
        if planned is CycleMonth.HOTPATCH:
            return MonthKind(CycleMonth.BASELINE, "AssessPatches",
                             f"an unplanned baseline: the calendar ({calendar.describe()}) has {fmt(month)} as a "
                             f"hotpatch month, but assessPatches found {kbs} that need a reboot; the data wins")  # fmt: skip
        return MonthKind(CycleMonth.BASELINE, "AssessPatches", f"baseline month ({kbs} need a reboot)")
    return MonthKind(planned, "Calendar", f"{planned} month per the calendar ({calendar.describe()})")
