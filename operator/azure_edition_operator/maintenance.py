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
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from . import reasons
from .api.v1alpha1 import RING_LABEL, WINDOW_MAX, WINDOW_MIN, MaintenanceWindowSpec, parse_duration
from .configdata import json_object

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


# ----------------------------------------------------------------------------- the API, the settings, the state


def window_of(spec: MaintenanceWindowSpec) -> Window:
    """The window a ``spec.hotpatch.maintenanceWindow`` declares (the API has validated it)."""
    hours, minutes = (int(p) for p in spec.start_time.split(":"))
    return Window(frozenset(WEEKDAYS.index(str(d)) for d in spec.days_of_week), dt.time(hours, minutes),
                  parse_duration(spec.duration), spec.time_zone)  # fmt: skip


class RolloutConfigError(ValueError):
    """A rollout ConfigMap that cannot be read; the message says which key and why."""


@dataclass(frozen=True)
class RolloutConfig:
    """The rings in order and the soak after each: the platform team's, in a ConfigMap of the operator's
    namespace (tenants can neither read nor write it). A VM without the ring label is in the last ring."""

    rings: tuple[str, ...]
    soak: dt.timedelta

    def ring_of(self, labels: Mapping[str, str] | None) -> str | None:
        """The VM's ring: its label's, the last ring when unlabelled; None when the label names no ring."""
        named = (labels or {}).get(RING_LABEL)
        if named is None or named == "":
            return self.rings[-1]
        return named if named in self.rings else None


def parse_rollout_config(data: Mapping[str, str]) -> RolloutConfig:
    """``rollout.json``: ``{"rings": ["canary", "broad"], "soak": "24h"}`` (soak: after each ring is Ready
    again, before the next starts; the duration grammar of the API, default 0s)."""
    doc = json_object(data, "rollout.json", RolloutConfigError)
    rings = doc.get("rings")
    if (not isinstance(rings, list) or not rings or len(set(rings)) != len(rings)
            or not all(isinstance(r, str) and re.fullmatch(RING_NAME_PATTERN, r) for r in rings)):  # fmt: skip
        raise RolloutConfigError("rings must be a non-empty list of distinct label values (e.g. canary)")
    try:
        soak = parse_duration(str(doc.get("soak", "0s")))
    except ValueError as err:
        raise RolloutConfigError(f"soak: {err}") from None
    return RolloutConfig(tuple(rings), soak)


RING_NAME_PATTERN = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
"""A label value (Kubernetes' rule), as the ring label carries it."""

READY_TIMEOUT = dt.timedelta(minutes=30)
"""A VM not running with its agent Ready this long after its installation finished failed its ring."""

NO_START_GRACE = dt.timedelta(minutes=10)
"""Azure shows an accepted installPatches InProgress under a new activity id at once; still the previous id
this long after ours was recorded: it never reached Azure (the operator stopped between recording and
sending it), so the VM waits for its turn again."""

TERMINAL_INSTALL_STATES = frozenset({"Succeeded", "Failed", "CompletedWithWarnings"})
"""lastPatchInstallationSummary states that end an installation (Azure: InProgress, Unknown otherwise)."""


@dataclass(frozen=True)
class VMRecord:
    """One VM in its namespace's rollout, as the operator remembers it (its state ConfigMap)."""

    uid: str
    ring: str
    phase: VMPhase = VMPhase.WAITING
    before: str = ""  # the installation activity id Azure showed before our installPatches
    started: dt.datetime | None = None  # when our installPatches was sent
    finished: dt.datetime | None = None  # when we saw the installation end
    ready: dt.datetime | None = None  # when we saw the VM running with its agent Ready after it
    detail: str = ""  # why it failed

    def ring_vm(self, name: str) -> RingVM:
        return RingVM(name, self.ring, self.phase, self.ready is not None, self.ready)


@dataclass(frozen=True)
class NamespaceRollout:
    """A namespace's rollout of one baseline month: ``Rollout`` plus each VM's record; ``stopped`` says
    why it stopped (a failed ring), empty while it runs."""

    month: str  # YYYY-MM
    rollout: Rollout
    vms: Mapping[str, VMRecord]
    stopped: str = ""

    def to_json(self) -> str:
        def stamp(v: dt.datetime | None) -> str | None:
            return v.astimezone(dt.UTC).isoformat() if v else None

        return json.dumps({
            "month": self.month, "rings": list(self.rollout.rings), "soakSeconds": self.rollout.soak.total_seconds(),
            "maxPatchPublishDate": stamp(self.rollout.max_patch_publish_date), "stopped": self.stopped,
            "vms": {n: {"uid": r.uid, "ring": r.ring, "phase": str(r.phase), "before": r.before,
                        "started": stamp(r.started), "finished": stamp(r.finished), "ready": stamp(r.ready),
                        "detail": r.detail} for n, r in sorted(self.vms.items())},
        }, sort_keys=True)  # fmt: skip

    @classmethod
    def from_json(cls, raw: str | None) -> NamespaceRollout | None:
        """The operator's own record; None when absent or unreadable (a new rollout starts)."""

        def when(v: object) -> dt.datetime | None:
            return dt.datetime.fromisoformat(str(v)) if v else None

        try:
            doc = json.loads(raw or "")
            rollout = Rollout(tuple(doc["rings"]), dt.timedelta(seconds=float(doc["soakSeconds"])),
                              when(doc["maxPatchPublishDate"]))  # type: ignore[arg-type]  # fmt: skip
            vms = {str(n): VMRecord(str(r["uid"]), str(r["ring"]), VMPhase(r["phase"]), str(r.get("before") or ""),
                                    when(r.get("started")), when(r.get("finished")), when(r.get("ready")),
                                    str(r.get("detail") or ""))
                   for n, r in doc["vms"].items()}  # fmt: skip
            return cls(str(doc["month"]), rollout, vms, str(doc.get("stopped") or ""))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


@dataclass(frozen=True)
class Member:
    """A VM object that takes part: it has a window, Hotpatch, full management, and is not being deleted."""

    name: str
    uid: str
    ring: str | None  # None: its label names a ring the configuration does not have
    window: Window


def begin(config: RolloutConfig, month: str, members: Iterable[Member], now: dt.datetime) -> NamespaceRollout:
    """A new rollout of ``month``: the patches published up to ``now``, the rings as configured now."""
    rollout = start_rollout(config.rings, config.soak, now)
    return NamespaceRollout(month, rollout, {m.name: VMRecord(m.uid, m.ring) for m in members if m.ring})


def join(state: NamespaceRollout, members: Iterable[Member]) -> NamespaceRollout:
    """VMs that appeared (or were recreated, a new uid) join waiting; a waiting VM follows its label; an
    installed one keeps the ring it was installed in; VMs that left are forgotten."""
    vms: dict[str, VMRecord] = {}
    for m in members:
        known = state.vms.get(m.name)
        if known is not None and known.uid == m.uid:
            if known.phase is VMPhase.WAITING and m.ring and m.ring != known.ring:
                known = replace(known, ring=m.ring)
            if known.phase is not VMPhase.WAITING or m.ring:
                vms[m.name] = known
        elif m.ring in state.rollout.rings:
            vms[m.name] = VMRecord(m.uid, m.ring)
    return replace(state, vms=vms)


@dataclass(frozen=True)
class InstallSeen:
    """What Azure's instance view says about a VM after our installPatches."""

    activity_id: str  # lastPatchInstallationSummary.installationActivityId ("" when none)
    state: str  # its status
    error: str  # its error message, if any
    serving: bool  # PowerState/running and the VM agent Ready


def observe(record: VMRecord, seen: InstallSeen, now: dt.datetime) -> VMRecord:
    """An installing or installed VM after a look at Azure: finished (or failed), then Ready again; a VM
    not Ready ``READY_TIMEOUT`` after its installation ended fails its ring."""
    if record.phase is VMPhase.INSTALLING:
        if seen.activity_id == record.before and record.started and now - record.started >= NO_START_GRACE:
            return replace(record, phase=VMPhase.WAITING, before="", started=None)
        if seen.activity_id == record.before or seen.state not in TERMINAL_INSTALL_STATES:
            return record  # our installation has not ended (the summary still shows it, or the previous one)
        if seen.state != "Succeeded":
            detail = f"installPatches ended {seen.state}" + (f": {seen.error}" if seen.error else "")
            return replace(record, phase=VMPhase.FAILED, finished=now, detail=detail)
        record = replace(record, phase=VMPhase.INSTALLED, finished=now)
    if record.phase is VMPhase.INSTALLED and record.ready is None:
        if seen.serving:
            return replace(record, ready=now)
        if record.finished is not None and now - record.finished >= READY_TIMEOUT:
            return replace(record, phase=VMPhase.FAILED,
                           detail=f"not running with its agent Ready {READY_TIMEOUT} after the installation")  # fmt: skip
    return record


def needs_look(record: VMRecord) -> bool:
    """Whether the rollout must read this VM's instance view this round."""
    return record.phase is VMPhase.INSTALLING or (record.phase is VMPhase.INSTALLED and record.ready is None)


def installing(record: VMRecord, before: str, now: dt.datetime) -> VMRecord:
    return replace(record, phase=VMPhase.INSTALLING, before=before, started=now)


def install_parameters(rollout: Rollout, window: Window, now: dt.datetime) -> dict[str, object] | None:
    """installPatches' body for a VM of the current ring at ``now``; None outside its window (or too little
    of it left). Classifications as Microsoft's example (Critical, Security); the same cutoff for all rings."""
    left = install_duration(window, now)
    if left is None:
        return None
    return {
        "maximumDuration": iso_duration(left),
        "rebootSetting": "IfRequired",
        "windowsParameters": {
            "classificationsToInclude": ["Critical", "Security"],
            "maxPatchPublishDate": rollout.max_patch_publish_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }


def stop_reason(step: Step) -> str:
    return f"{step.reason}: remove this namespace's key from the rollout state ConfigMap to start again"


def report(state: NamespaceRollout | None, member: Member, now: dt.datetime
           ) -> tuple[dict[str, object], tuple[bool, str, str]]:  # fmt: skip
    """``status.maintenance`` and the ``HotpatchRollout`` condition (status, reason, message) of one VM."""
    upcoming = next_opening(member.window, now).strftime("%Y-%m-%dT%H:%M:%SZ")
    if member.ring is None:
        return ({"phase": "NotInRollout", "nextWindow": upcoming},
                (False, reasons.RING_NOT_CONFIGURED, f"label {RING_LABEL} names a ring the operator's rollout "
                 "configuration does not have; use one of its rings (or remove the label: the last ring)"))  # fmt: skip
    record = state.vms.get(member.name) if state else None
    if state is None or record is None:
        return ({"ring": member.ring, "phase": "Waiting", "nextWindow": upcoming},
                (True, reasons.RING_WAITING, f"ring {member.ring}: no baseline rollout runs; the next window "
                 f"opens {upcoming}"))  # fmt: skip
    out: dict[str, object] = {"ring": record.ring, "phase": str(record.phase), "month": state.month,
                              "maxPatchPublishDate": state.rollout.max_patch_publish_date.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "nextWindow": upcoming}  # fmt: skip
    if state.stopped:
        return out, (False, reasons.ROLLOUT_STOPPED, state.stopped
                     + (f" (this VM: {record.detail})" if record.detail else ""))  # fmt: skip
    if record.phase is VMPhase.INSTALLED and record.ready is not None:
        return out, (True, reasons.PATCHES_INSTALLED, f"{state.month} baseline installed in ring {record.ring} "
                     f"(patches published up to {out['maxPatchPublishDate']}); the VM is Ready again")  # fmt: skip
    if record.phase in (VMPhase.INSTALLING, VMPhase.INSTALLED):
        return out, (True, reasons.PATCHES_INSTALLING, f"{state.month} baseline installing in ring {record.ring}; "
                     "the VM may reboot (rebootSetting IfRequired)")  # fmt: skip
    return out, (True, reasons.RING_WAITING, f"ring {record.ring} waits for its turn in the {state.month} "
                 f"baseline rollout, then for its window (next opening {upcoming})")  # fmt: skip
