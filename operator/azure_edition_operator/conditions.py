"""Pure helpers for status conditions and the phase derived from them.

Conditions follow metav1.Condition: ``lastTransitionTime`` moves only when ``status`` changes, so
a resource whose world did not change is not rewritten. Order is stable (known types first, in
the order of DESIGN §2) so that an equal set of conditions serialises identically.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from . import reasons as vocab
from .api.v1alpha1 import ConditionStatus, Phase


class ConditionType(enum.StrEnum):
    READY = "Ready"
    IMAGE_RESOLVED = "ImageResolved"
    VM_PROVISIONED = "VMProvisioned"
    HOTPATCH_HEALTHY = "HotpatchHealthy"
    SMB_CERTIFICATE_VALID = "SMBOverQUICCertificateValid"
    EXTENDED_NETWORK_READY = vocab.EXTENDED_NETWORK_READY


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
            "lastTransitionTime": stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else None,
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
            last_transition_time=_timestamp(data.get("lastTransitionTime")),
            observed_generation=generation,
        )

    @property
    def is_true(self) -> bool:
        return self.status is ConditionStatus.TRUE


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


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
    """Set ``new`` in ``conditions``: keep lastTransitionTime unless status changed; stamp generation."""
    current = next((c for c in conditions if c.type == new.type), None)
    unchanged = current is not None and current.status == new.status and current.last_transition_time
    stamp = current.last_transition_time if unchanged else now
    merged = replace(new, last_transition_time=stamp, observed_generation=generation)
    return sort_conditions([*(c for c in conditions if c.type != new.type), merged])


def remove(conditions: Sequence[Condition], condition_type: str) -> list[Condition]:
    return [c for c in conditions if c.type != condition_type]


def find(conditions: Iterable[Condition], condition_type: str) -> Condition | None:
    return next((c for c in conditions if c.type == condition_type), None)


def ready_condition(conditions: Sequence[Condition], required: Iterable[str] = ()) -> Condition:
    """Summarise the other conditions into Ready (DESIGN §2 reasons).

    ``required`` are the capability conditions the spec asks for: Ready waits until each has been
    checked once, so Ready means "the capabilities were verified", not merely "the VM exists".
    """
    image = find(conditions, ConditionType.IMAGE_RESOLVED)
    if image is not None and not image.is_true:
        return Condition(ConditionType.READY, ConditionStatus.FALSE, "ImageUnresolved", image.message)
    vm = find(conditions, ConditionType.VM_PROVISIONED)
    if vm is None or not vm.is_true:
        if vm is not None and vm.reason in PASS_THROUGH_REASONS:
            return Condition(ConditionType.READY, ConditionStatus.FALSE, vm.reason, vm.message)
        if vm is not None and vm.reason in FAILED_PROVISIONING_REASONS:
            return Condition(ConditionType.READY, ConditionStatus.FALSE, "ProvisioningFailed", vm.message)
        message = vm.message if vm is not None else "waiting for the VM to be provisioned"
        return Condition(ConditionType.READY, ConditionStatus.FALSE, "Provisioning", message)
    unhealthy = [c for c in conditions if c.type in CAPABILITY_CONDITIONS and not c.is_true]
    if unhealthy:
        message = "; ".join(f"{c.type}: {c.reason}: {c.message}" for c in unhealthy)
        return Condition(ConditionType.READY, ConditionStatus.FALSE, "Degraded", message)
    unchecked = [t for t in required if find(conditions, t) is None]
    if unchecked:
        message = f"the VM is provisioned; waiting for the first check of {', '.join(unchecked)}"
        return Condition(ConditionType.READY, ConditionStatus.FALSE, "Provisioning", message)
    return Condition(
        ConditionType.READY, ConditionStatus.TRUE, "Ready", "VM provisioned and every capability healthy"
    )


# VMProvisioned reasons Ready repeats as they are: they name what the user must provide.
PASS_THROUGH_REASONS = vocab.READY_PASS_THROUGH

# VMProvisioned reasons that need a user's change rather than time (the vocabulary's "user" kind).
FAILED_PROVISIONING_REASONS = vocab.USER_REASONS


def derive_phase(conditions: Sequence[Condition], deleting: bool = False) -> Phase:
    """The one-word summary of DESIGN §2, computed from conditions only."""
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
    }.get(ready.reason, Phase.PROVISIONING)
