"""Pure status computation: from what a reconcile observed to the status object, and the patch.

The handlers never assemble status by hand: they describe the outcome (``Observation``) and this
module turns it into docs/reference.md's status. ``status_patch`` yields only what changed, so a pass whose
outcome is unchanged writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import conditions as cond
from . import reasons as vocab
from .api.v1alpha1 import ConditionStatus
from .conditions import Condition, ConditionType
from .images import Capability, ImageReference

CAPABILITY_CONDITION = {
    Capability.HOTPATCH: ConditionType.HOTPATCH_HEALTHY,
    Capability.SMB_OVER_QUIC: ConditionType.SMB_CERTIFICATE_VALID,
    Capability.EXTENDED_NETWORK: ConditionType.EXTENDED_NETWORK_READY,
}

CAPABILITY_STATUS_KEY = {Capability.HOTPATCH: "hotpatch", Capability.SMB_OVER_QUIC: "smbOverQuic"}


@dataclass(frozen=True)
class Observation:
    """What one reconcile pass learnt. ``None`` means "not looked at this time: keep what status had"."""

    generation: int
    capabilities: frozenset[Capability]
    image: ImageReference | None = None
    image_condition: Condition | None = None
    vm: Mapping[str, Any] | None = None
    vm_condition: Condition | None = None
    capability_conditions: Sequence[Condition] = field(default_factory=tuple)
    hotpatch: Mapping[str, Any] | None = None
    smb_over_quic: Mapping[str, Any] | None = None
    deleting: bool = False
    synced: Condition | None = None
    """``Synced`` while spec.managementPolicy is not Full (None: Full, and the condition is absent)."""
    prerequisites_met: bool = False
    """The before-PUT checks passed this pass: a capability condition they set earlier is stale (the
    next check round sets it again from what it sees)."""


def image_status(image: ImageReference) -> dict[str, Any]:
    return {
        "publisher": image.publisher,
        "offer": image.offer,
        "sku": image.sku,
        "version": image.version,
        "windowsServerVersion": str(image.windows_server_version),
        "experience": str(image.experience),
    }


def conditions_of(status: Mapping[str, Any]) -> list[Condition]:
    """The conditions in status, skipping anything that is not one (status can be hand-edited)."""
    raw = status.get("conditions")
    if not isinstance(raw, list):
        return []
    return [Condition.from_wire(c) for c in raw if isinstance(c, dict) and isinstance(c.get("type"), str)]


def compute_status(old: Mapping[str, Any], obs: Observation, now: datetime) -> dict[str, Any]:
    """The complete new status, given the old one and an observation."""
    new: dict[str, Any] = {k: v for k, v in old.items() if k != "conditions"}
    conditions = conditions_of(old)
    if obs.prerequisites_met:
        conditions = [c for c in conditions if not _refused_before_put(c)]
    for update in (obs.image_condition, obs.vm_condition, *obs.capability_conditions, obs.synced):
        if update is not None:
            conditions = cond.upsert(conditions, update, now, obs.generation)
    if obs.synced is None:
        conditions = cond.remove(conditions, ConditionType.SYNCED)
    paused = obs.synced is not None and obs.synced.reason == vocab.RECONCILE_PAUSED
    wanted = {CAPABILITY_CONDITION[c] for c in obs.capabilities if c in CAPABILITY_CONDITION}
    for capability, condition_type in CAPABILITY_CONDITION.items():
        if condition_type not in wanted:
            conditions = cond.remove(conditions, condition_type)
            if capability in CAPABILITY_STATUS_KEY:  # Extended Network has its condition only
                new.pop(CAPABILITY_STATUS_KEY[capability], None)
    assessment = cond.assess(conditions, required=sorted(wanted, key=cond.ORDER.index))
    for summary in (
        assessment.ready,
        *cond.kstatus_conditions(assessment, deleting=obs.deleting, paused=paused),
    ):
        conditions = cond.upsert(conditions, summary, now, obs.generation)
    if obs.image is not None:
        new["image"] = image_status(obs.image)
    for key, value in (("vm", obs.vm), ("hotpatch", obs.hotpatch), ("smbOverQuic", obs.smb_over_quic)):
        if value is not None:
            new[key] = {k: v for k, v in value.items() if v is not None}
    new["conditions"] = [c.to_wire() for c in conditions]
    new["phase"] = str(cond.derive_phase(conditions, deleting=obs.deleting))
    new["observedGeneration"] = obs.generation
    return new


def _refused_before_put(c: Condition) -> bool:
    entry = vocab.EXTENDED_NETWORK.get(c.reason) if c.type == ConditionType.EXTENDED_NETWORK_READY else None
    return entry is not None and entry.before_put


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning ``old`` into ``new``; empty when nothing changed.

    Lists (conditions) are replaced whole, as merge patches do; nested objects are diffed.
    """
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            sub = status_patch(before, value)
            if sub:
                patch[key] = sub
        elif value != before:
            patch[key] = value
    return patch


def condition(type_: str, ok: bool, reason: str, message: str = "") -> Condition:
    """Shorthand for building a condition to feed ``compute_status``."""
    return Condition(type_, ConditionStatus.TRUE if ok else ConditionStatus.FALSE, reason, message)
