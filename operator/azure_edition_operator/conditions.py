"""Pure helpers for status conditions and the phase derived from them.

Conditions follow metav1.Condition: ``lastTransitionTime`` moves only when ``status`` changes, so
a resource whose world did not change is not rewritten. Order is stable (known types first, in
the order of docs/reference.md) so that an equal set of conditions serialises identically.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from . import correlation, text
from . import reasons as vocab
from .api.v1alpha1 import ConditionStatus, Phase


class ConditionType(enum.StrEnum):
    READY = "Ready"
    IMAGE_RESOLVED = "ImageResolved"
    VM_PROVISIONED = "VMProvisioned"
    HOTPATCH_HEALTHY = "HotpatchHealthy"
    SMB_CERTIFICATE_VALID = "SMBOverQUICCertificateValid"
    EXTENDED_NETWORK_READY = vocab.EXTENDED_NETWORK_READY
    HOTPATCH_ROLLOUT = vocab.HOTPATCH_ROLLOUT  # the baseline rollout (rollout.py); never changes Ready
    RECONCILING = vocab.RECONCILING  # kstatus: the operator works toward the spec; time fixes it
    STALLED = vocab.STALLED  # kstatus: progress needs a person
    SYNCED = vocab.SYNCED  # only while spec.managementPolicy is not Full


ORDER: tuple[str, ...] = tuple(ConditionType)
CAPABILITY_CONDITIONS = (
    ConditionType.HOTPATCH_HEALTHY,
    ConditionType.SMB_CERTIFICATE_VALID,
    ConditionType.EXTENDED_NETWORK_READY,  # every False reason of it is an outage (reasons.EXTENDED_NETWORK)
)


@dataclass(frozen=True)
class Condition:
    """A metav1.Condition as plain data (wire form via ``to_wire``)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: datetime | None = None
    observed_generation: int = 0

    def to_wire(self) -> dict[str, object]:
        stamp = self.last_transition_time
        return {
            "type": self.type,
            "status": str(self.status),
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": format_timestamp(stamp) if stamp else None,
            "observedGeneration": self.observed_generation,
        }

    @classmethod
    def from_wire(cls, data: dict[str, object]) -> Condition:
        """Read a condition from status; anyone can write status, so garbage reads as absent values."""
        try:
            status = ConditionStatus(str(data.get("status", "Unknown")))
        except ValueError:
            status = ConditionStatus.UNKNOWN
        try:
            generation = int(data.get("observedGeneration", 0) or 0)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            generation = 0
        return cls(
            type=str(data["type"]),
            status=status,
            reason=str(data.get("reason", "")),
            message=str(data.get("message", "")),
            last_transition_time=parse_timestamp(data.get("lastTransitionTime")),
            observed_generation=generation,
        )

    @property
    def is_true(self) -> bool:
        return self.status is ConditionStatus.TRUE


def parse_timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp from status; anything else (status is written by anyone) reads as None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def format_timestamp(moment: datetime) -> str:
    """The one written form (RFC 3339, UTC, whole seconds, ``Z``), as Kubernetes writes its own times;
    a naive time is UTC, as ``parse_timestamp`` reads it."""
    return (moment.astimezone(UTC) if moment.tzinfo else moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _order_key(condition: Condition) -> tuple[int, str]:
    try:
        return (ORDER.index(condition.type), "")
    except ValueError:
        return (len(ORDER), condition.type)


def sort_conditions(conditions: Iterable[Condition]) -> list[Condition]:
    return sorted(conditions, key=_order_key)


def upsert(
    conditions: Sequence[Condition], new: Condition, now: datetime, generation: int
) -> list[Condition]:
    """Set ``new`` in ``conditions``: keep lastTransitionTime unless status changed; stamp generation.
    Every condition the operator writes passes here, so here its message is made safe to show and capped
    (``text.message``: Azure's and a guest's words, and a tenant's values, are in it). The same failure
    reported again with another Azure correlation id keeps the first one's message."""
    new = replace(new, message=text.message(new.message))
    current = next((c for c in conditions if c.type == new.type), None)
    if (
        current is not None
        and (current.status, current.reason) == (new.status, new.reason)
        and correlation.same_failure(current.message, new.message)
    ):
        new = replace(new, message=current.message)
    unchanged = current is not None and current.status == new.status and current.last_transition_time
    stamp = current.last_transition_time if unchanged else now
    merged = replace(new, last_transition_time=stamp, observed_generation=generation)
    return sort_conditions([*(c for c in conditions if c.type != new.type), merged])


def remove(conditions: Sequence[Condition], condition_type: str) -> list[Condition]:
    return [c for c in conditions if c.type != condition_type]


def find(conditions: Iterable[Condition], condition_type: str) -> Condition | None:
    return next((c for c in conditions if c.type == condition_type), None)


@dataclass(frozen=True)
class Assessment:
    """Ready, and the condition behind a False Ready with who fixes it (for Reconciling/Stalled)."""

    ready: Condition
    cause: Condition | None = None  # None: Ready=True, or waiting for the first check
    needs_human: bool = False
    warnings: tuple[Condition, ...] = ()


def _capability_kind(condition: Condition) -> vocab.Kind:
    entry = vocab.capability_reason(condition.type, condition.reason)
    return entry.kind if entry else vocab.Kind.USER  # an unknown reason: a person should look


def assess(conditions: Sequence[Condition], required: Iterable[str] = ()) -> Assessment:
    """Summarise the other conditions into Ready (the reasons in docs/reference.md), from the reason vocabulary.

    ``required`` are the capability conditions the spec asks for: Ready waits until each has been
    checked once, so Ready means "the capabilities were verified", not merely "the VM exists".
    A capability warning (``reasons.Severity.WARNING``) keeps Ready=True and is named in its message;
    an outage makes Ready=False/Degraded.
    """
    ready = ConditionType.READY
    false = ConditionStatus.FALSE
    image = find(conditions, ConditionType.IMAGE_RESOLVED)
    if image is not None and not image.is_true:
        human = vocab.IMAGE_REASONS.get(image.reason, vocab.Kind.USER) is vocab.Kind.USER
        return Assessment(Condition(ready, false, "ImageUnresolved", image.message), image, human)
    vm = find(conditions, ConditionType.VM_PROVISIONED)
    if vm is None or not vm.is_true:
        human = vm is not None and vocab.kind_of(vm.reason) is vocab.Kind.USER
        if vm is not None and vm.reason in PASS_THROUGH_REASONS:
            return Assessment(Condition(ready, false, vm.reason, vm.message), vm, human)
        if vm is not None and vm.reason in FAILED_PROVISIONING_REASONS:
            return Assessment(Condition(ready, false, "ProvisioningFailed", vm.message), vm, human)
        message = vm.message if vm is not None else "waiting for the VM to be provisioned"
        return Assessment(Condition(ready, false, "Provisioning", message), vm, human)
    failing = [c for c in conditions if c.type in CAPABILITY_CONDITIONS and not c.is_true]
    outages = [c for c in failing if vocab.severity_of(c.type, c.reason) is vocab.Severity.OUTAGE]
    warnings = tuple(c for c in failing if c not in outages)
    if outages:
        message = "; ".join(f"{c.type}: {c.reason}: {c.message}" for c in (*outages, *warnings))
        cause = next((c for c in outages if _capability_kind(c) is vocab.Kind.USER), outages[0])
        human = _capability_kind(cause) is vocab.Kind.USER
        return Assessment(Condition(ready, false, "Degraded", message), cause, human, warnings)
    unchecked = [t for t in required if find(conditions, t) is None]
    if unchecked:
        message = f"the VM is provisioned; waiting for the first check of {', '.join(unchecked)}"
        return Assessment(Condition(ready, false, "Provisioning", message), None, False, warnings)
    message = "VM provisioned and every capability healthy"
    if warnings:
        message = "VM provisioned and serving; warnings: " + "; ".join(
            f"{c.type}: {c.reason}: {c.message}" for c in warnings
        )
    return Assessment(Condition(ready, ConditionStatus.TRUE, "Ready", message), None, False, warnings)


def kstatus_conditions(
    assessment: Assessment, deleting: bool = False, paused: bool = False
) -> tuple[Condition, Condition]:
    """Reconciling and Stalled with kstatus semantics, from the same facts that set Ready.

    Never both True (kstatus reads Reconciling first, so a stalled object that also claimed to be
    reconciling would be waited on forever). Their True reason is the cause's reason. A paused object
    (``spec.managementPolicy: Paused``) is neither: nothing runs, and no person is waited for.
    """
    true, false = ConditionStatus.TRUE, ConditionStatus.FALSE
    idle = Condition(ConditionType.RECONCILING, false, vocab.IDLE, "nothing in progress")
    fine = Condition(ConditionType.STALLED, false, vocab.NOT_STALLED, "nothing waits for a person")
    if paused and not deleting:
        return replace(idle, reason=vocab.RECONCILE_PAUSED, message=vocab.PAUSED_MESSAGE), fine
    if deleting:
        return Condition(ConditionType.RECONCILING, true, vocab.DELETING, "the object is being deleted"), fine
    ready, cause = assessment.ready, assessment.cause
    if ready.is_true:
        return idle, fine
    if assessment.needs_human and cause is not None:
        idle = replace(idle, message="stalled: progress needs a person (see Stalled)")
        return idle, Condition(ConditionType.STALLED, true, cause.reason, cause.message)
    reason = cause.reason if cause is not None else vocab.WAITING_FOR_CHECKS
    message = cause.message if cause is not None else ready.message
    return Condition(ConditionType.RECONCILING, true, reason, message), fine


def warning_events(before: Sequence[Condition], after: Sequence[Condition]) -> list[tuple[str, str, str]]:
    """A Warning Event for each capability condition that newly carries a warning reason (Ready stays
    True, so ``Ready``'s transition Event does not tell anyone). Once per transition, not per check."""
    events = []
    for new in after:
        if new.type not in CAPABILITY_CONDITIONS or new.is_true or new.reason in vocab.ANNOUNCED_ELSEWHERE:
            continue
        if vocab.severity_of(new.type, new.reason) is not vocab.Severity.WARNING:
            continue
        old = find(before, new.type)
        if old is None or (old.status, old.reason) != (new.status, new.reason):
            events.append(("Warning", new.reason, f"{new.type}: {new.message}"))
    return events


# VMProvisioned reasons Ready repeats as they are: they name what the user must provide.
PASS_THROUGH_REASONS = vocab.READY_PASS_THROUGH

# VMProvisioned reasons that need a user's change rather than time (the vocabulary's "user" kind).
FAILED_PROVISIONING_REASONS = vocab.USER_REASONS


def derive_phase(conditions: Sequence[Condition], deleting: bool = False) -> Phase:
    """The one-word summary (docs/reference.md, Phase), computed from conditions only."""
    if deleting:
        return Phase.DELETING
    ready = find(conditions, ConditionType.READY)
    if ready is None:
        return Phase.PENDING
    if ready.is_true:
        return Phase.READY
    return {
        "ImageUnresolved": Phase.FAILED,
        "ProvisioningFailed": Phase.FAILED,
        "Degraded": Phase.DEGRADED,
        vocab.VM_STOPPED: Phase.DEGRADED,  # provisioned, but not running: someone must start it
        vocab.NIC_MISSING: Phase.DEGRADED,  # provisioned, but unreachable as the spec says
    }.get(ready.reason, Phase.PROVISIONING)
