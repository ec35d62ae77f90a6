"""The one way status and Events leave the operator: ``publish`` writes status, ``post`` posts an Event
(``post_outside_handlers`` from the operator's own loops, where kopf's event queue does not reach).

Every status writer (the controller's passes and check rounds, assess, delete) sends a JSON merge patch
of what changed through the status subresource (``kube.patch_status``). Not kopf's ``patch``: the
controller writes outside kopf's handler cycle, where there is none, and kopf would send status in a
request of its own anyway. A write may carry the ``resourceVersion`` it was computed from, so a write
that raced with another one is refused (``kube.Conflict``).

One de-duplication rule for Events: a change is announced once, by whoever made it. A status change
(Ready's transition, a new warning, a certificate's expiry stage, a new error) is announced from the
difference between the status before and the status written (``status_events``): no write, no Event,
and a restart, which reads back what was written, repeats nothing. An action (settings restored, a VM
recreated, an assessment done) is announced as it is taken.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kopf

from . import conditions as cond
from . import text
from .conditions import ConditionType, format_timestamp
from .kube import Kube
from .status import conditions_of, status_patch

Event = tuple[str, str, str]  # (type, reason, message)


EVENT_MESSAGE_LIMIT = 1000
"""Bytes: Kubernetes caps an Event's message at 1 KiB."""


def post(body: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
    """The only ``kopf.event`` call: reason and message made safe to show and capped (``text``)."""
    reason = text.visible(reason, keep_newlines=False)[:128]  # a reason is one CamelCase word
    kopf.event(body, type=kind, reason=reason, message=text.message(message or reason, EVENT_MESSAGE_LIMIT))


async def post_outside_handlers(
    kube: Kube, body: Mapping[str, Any], kind: str, reason: str, message: str
) -> None:
    """``post`` for a loop of the operator's own (the baseline rollout), where kopf's per-object event queue
    does not exist: the same core/v1 Event, made safe the same way, created directly."""
    meta = body["metadata"]
    now = format_timestamp(dt.datetime.now(dt.UTC))
    event = {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta.get("uid")},
        "type": kind, "reason": text.visible(reason, keep_newlines=False)[:128],
        "message": text.message(message or reason, EVENT_MESSAGE_LIMIT),
        "source": {"component": EVENT_SOURCE}, "reportingComponent": EVENT_SOURCE,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }  # fmt: skip
    await kube.core.create_namespaced_event(meta["namespace"], event)


EVENT_SOURCE = "azure-edition-operator"


def warning_stage(state: str | None, days_remaining: int | None) -> str | None:
    """The Event of the expiry warning that applies; each is announced once per certificate."""
    if state == "ExpiringSoon":
        soon = days_remaining is not None and days_remaining <= 7
        return "CertificateExpiresWithin7Days" if soon else "CertificateExpiringSoon"
    return "CertificateExpired" if state == "Expired" else None


def _certificate(status: Mapping[str, Any]) -> tuple[str | None, str | None]:
    smb = status.get("smbOverQuic") or {}
    return smb.get("thumbprint"), warning_stage(smb.get("state"), smb.get("daysRemaining"))


def _key(condition: cond.Condition | None) -> tuple[str, str] | None:
    return (str(condition.status), condition.reason) if condition is not None else None


def status_events(
    old: Mapping[str, Any], new: Mapping[str, Any], errors: Iterable[Event] = ()
) -> list[Event]:
    """The Events a status write announces (pure): Ready's transition, a capability condition newly
    carrying a warning, a certificate's new expiry stage (per thumbprint), a new management policy
    (``Synced``), and ``errors`` (the pass's
    error Events) when the conditions changed and Ready did not already say it."""
    events: list[Event] = []
    before, after = conditions_of(old), conditions_of(new)
    was, ready = cond.find(before, ConditionType.READY), cond.find(after, ConditionType.READY)
    progressing, announced = ready is not None and ready.reason == "Provisioning", None
    # Ready's transition; a new object starting out is not news
    if ready is not None and _key(was) != _key(ready) and (was is not None or not progressing):
        announced = ready.reason
        events.append(("Normal" if ready.is_true or progressing else "Warning", ready.reason, ready.message))
    events += cond.warning_events(before, after)  # a warning keeps Ready=True
    synced, was_synced = cond.find(after, ConditionType.SYNCED), cond.find(before, ConditionType.SYNCED)
    if synced is not None and (was_synced is None or was_synced.reason != synced.reason):
        events.append(("Normal", synced.reason, synced.message))  # paused, or observe only, from now on
    thumbprint, stage = _certificate(new)
    if stage is not None and thumbprint is not None and _certificate(old) != (thumbprint, stage):
        smb = cond.find(after, ConditionType.SMB_CERTIFICATE_VALID)
        events.append(("Warning", stage, smb.message if smb else ""))
    if old.get("conditions") != new.get("conditions"):  # an error Event once per new error, not per retry
        events += [e for e in errors if e[1] != announced]
    return events


async def publish(
    kube: Kube, body: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any], *,
    resource_version: str | None = None, actions: Iterable[Event] = (), errors: Iterable[Event] = (),
    written: Callable[[str | None], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Post the ``actions`` taken, write what changed from ``old`` to ``new`` (nothing when nothing
    did; refused if the object moved on since ``resource_version``, the one ``old`` was read at), then
    the Events of that write. Returns the merge patch written; ``written`` hears the new resourceVersion."""
    for event in actions:
        post(body, *event)
    changes = status_patch(old, new)
    if changes:
        meta = body["metadata"]
        version = await kube.patch_status(meta["namespace"], meta["name"], resource_version, changes)
        if written is not None:
            written(version)
        for event in status_events(old, new, errors):
            post(body, *event)
    return changes
