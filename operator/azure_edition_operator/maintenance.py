"""A weekly maintenance window in a time zone, and a ring-by-ring rollout of one patch set (pure).

What Azure permits (docs/capabilities.md, "What a caller controls on a Hotpatch VM"): Update Manager's
schedules are closed to Hotpatch VMs, but ``installPatches`` is not; so a window is honoured by calling
``installPatches`` inside it, in baseline months, with ``rebootSetting: IfRequired``, a ``maximumDuration``
that ends with the window, and one ``maxPatchPublishDate`` per rollout, so every ring gets the same patches.
Rings go in order; the next starts only when every VM of the previous one is Ready again after its reboot
and the soak time has passed since the last of them finished; a failed ring stops the rollout.

Time: a window opens at a wall-clock time in its IANA time zone and lasts an elapsed duration. On a
spring-forward day a start inside the skipped hour opens at the same elapsed offset after midnight as the
clock would have shown (zoneinfo's ``fold=0``: e.g. 02:30 becomes 03:30 local); on a fall-back day an
ambiguous start is the first of the two (``fold=0``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from .api.v1alpha1 import WINDOW_MAX, WINDOW_MIN, parse_duration

MIN_INSTALL = parse_duration(WINDOW_MIN)
"""Less left in the window than this: not worth starting (Update Manager's shortest maintenance window)."""
MAX_INSTALL = parse_duration(WINDOW_MAX)
"""Update Manager's longest maintenance window (3 h 55 min): what ``maximumDuration`` is capped at."""

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Window:
    """Every week on ``days`` (0 = Monday) at ``start`` local time in ``tz``, for ``duration``."""

    days: frozenset[int]
    start: dt.time
    duration: dt.timedelta
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if not self.days or not all(0 <= d <= 6 for d in self.days):
            raise ValueError("days must name at least one weekday (0 = Monday ... 6 = Sunday)")
        if not dt.timedelta(0) < self.duration <= dt.timedelta(days=1):
            raise ValueError("a window lasts more than nothing and at most a day")
        ZoneInfo(self.tz)  # an unknown zone fails here, not at the first check


def _opening(window: Window, day: dt.date) -> dt.datetime:
    local = dt.datetime.combine(day, window.start, tzinfo=ZoneInfo(window.tz))  # fold=0: see the module doc
    return local.astimezone(dt.UTC)


def occurrences(window: Window, around: dt.datetime, days_back: int = 2, days_ahead: int = 8
                ) -> list[tuple[dt.datetime, dt.datetime]]:  # fmt: skip
    """The window's (start, end) in UTC for the local days around ``around``, in order."""
    local_day = around.astimezone(ZoneInfo(window.tz)).date()
    out = []
    for offset in range(-days_back, days_ahead + 1):
        day = local_day + dt.timedelta(days=offset)
        if day.weekday() in window.days:
            start = _opening(window, day)
            out.append((start, start + window.duration))
    return out


def current(window: Window, now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The occurrence ``now`` falls in (start inclusive, end exclusive), else None."""
    return next(((s, e) for s, e in occurrences(window, now) if s <= now < e), None)


def next_opening(window: Window, now: dt.datetime) -> dt.datetime:
    """The first start strictly after ``now``."""
    return next(s for s, _ in occurrences(window, now) if s > now)


def install_duration(window: Window, now: dt.datetime) -> dt.timedelta | None:
    """``maximumDuration`` for an ``installPatches`` started at ``now``: what is left of the open window in
    whole minutes, capped at ``MAX_INSTALL``; None when closed or less than ``MIN_INSTALL`` is left."""
    open_ = current(window, now)
    if open_ is None:
        return None
    left = dt.timedelta(minutes=int((open_[1] - now).total_seconds() // 60))
    return min(left, MAX_INSTALL) if left >= MIN_INSTALL else None


def iso_duration(span: dt.timedelta) -> str:
    """ISO 8601 as installPatches takes it: ``PT3H55M``."""
    minutes = int(span.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes or not hours else "")


# ----------------------------------------------------------------------------- rings


class VMPhase(enum.StrEnum):
    WAITING = "Waiting"  # not installed in this rollout yet
    INSTALLING = "Installing"  # installPatches runs
    INSTALLED = "Installed"  # finished; Ready tells whether it is back
    FAILED = "Failed"  # installPatches failed, or the VM did not come back


@dataclass(frozen=True)
class RingVM:
    name: str
    ring: str
    phase: VMPhase
    ready: bool = False
    finished_at: dt.datetime | None = None


@dataclass(frozen=True)
class Rollout:
    """One patch set (``max_patch_publish_date``, fixed when the rollout starts) through ``rings`` in order."""

    rings: tuple[str, ...]
    soak: dt.timedelta
    max_patch_publish_date: dt.datetime


class StepKind(enum.StrEnum):
    INSTALL = "Install"  # install on ``vms`` of ``ring`` now (the window decides whether now is allowed)
    WAIT = "Wait"  # the ring runs, reboots, or soaks: look again at ``until`` (None: at the next change)
    STOPPED = "Stopped"  # a ring failed: nothing more until a person acts
    DONE = "Done"


@dataclass(frozen=True)
class Step:
    kind: StepKind
    ring: str | None = None
    vms: tuple[str, ...] = ()
    until: dt.datetime | None = None
    reason: str = ""


def start_rollout(rings: Sequence[str], soak: dt.timedelta, now: dt.datetime) -> Rollout:
    """A rollout of what is published up to ``now``: every ring installs exactly that set."""
    if len(set(rings)) != len(rings) or not rings:
        raise ValueError("rings must be a non-empty list of distinct names")
    return Rollout(tuple(rings), soak, now.astimezone(dt.UTC).replace(microsecond=0))


def next_step(rollout: Rollout, vms: Iterable[RingVM], now: dt.datetime) -> Step:
    """What the rollout does next. A VM whose ring is not in the rollout is left alone (reported by the
    caller); an empty ring is passed over."""
    by_ring: dict[str, list[RingVM]] = {r: [] for r in rollout.rings}
    for vm in vms:
        if vm.ring in by_ring:
            by_ring[vm.ring].append(vm)
    previous_done: dt.datetime | None = None
    for ring in rollout.rings:
        members = by_ring[ring]
        if not members:
            continue
        failed = sorted(v.name for v in members if v.phase is VMPhase.FAILED)
        if failed:
            return Step(StepKind.STOPPED, ring, tuple(failed),
                        reason=f"ring {ring} failed on {', '.join(failed)}; later rings wait for a person")  # fmt: skip
        waiting = sorted(v.name for v in members if v.phase is VMPhase.WAITING)
        if waiting:
            if previous_done is not None and now < previous_done + rollout.soak:
                return Step(StepKind.WAIT, ring, until=previous_done + rollout.soak,
                            reason=f"the previous ring soaks until {(previous_done + rollout.soak).isoformat()}")  # fmt: skip
            return Step(StepKind.INSTALL, ring, tuple(waiting), reason=f"ring {ring}: install")
        busy = sorted(v.name for v in members if v.phase is VMPhase.INSTALLING or not v.ready)
        if busy:
            return Step(StepKind.WAIT, ring, tuple(busy),
                        reason=f"ring {ring}: waiting for {', '.join(busy)} to finish and be Ready again")  # fmt: skip
        previous_done = max((v.finished_at for v in members if v.finished_at), default=now)
    return Step(StepKind.DONE, reason="every ring installed and Ready")
