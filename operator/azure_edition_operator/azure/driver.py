"""One asynchronous driver for every Azure resource kind (cluster-api-provider-azure's
``azure/services/async`` is the model).

A resource is a small ``ResourceSpec``: its name, how to read it, how to start a PUT or DELETE and
how to resume one from a token, and ``parameters(existing) -> body | None`` (None: nothing to do).
``ensure`` and ``delete`` drive them all the same way and never wait for Azure:

* an operation that is started and not finished at once is recorded in ``OperationState`` (kind,
  name, verb, poller continuation token, start time) and ``InProgress`` is raised with the delay
  Azure asked for (Retry-After) or ``DEFAULT_POLL_SECONDS``; the shell persists the state outside
  status (an annotation) and comes back then;
* a recorded operation is polled once per pass, never started a second time, also after a restart;
* an operation URL that answers 404 (Azure forgets finished operations) is answered by reading the
  resource itself;
* only one operation per object runs at a time: a recorded one is finished before anything else;
* observe only: the same reads and ``parameters``, no write; ``would_change`` says what it would send.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ..conditions import format_timestamp, parse_timestamp
from .errors import write_refused
from .settings import AzureSettings

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS: float = AzureSettings.model_fields["polling_interval"].default
"""When Azure sends no Retry-After (the documented default client behaviour is to poll every ~15-30 s)."""
MIN_POLL_SECONDS = 1.0
MAX_STATE_CHARS = 56 * 1024  # a continuation token holds the initial response body: a few KiB
MAX_FIELD_CHARS = 256  # a resource name, a vmId or an image field is far shorter
IMAGE_FIELDS = frozenset({"publisher", "offer", "sku", "version"})


class Verb(enum.StrEnum):
    PUT = "put"
    DELETE = "delete"


class PollResult(enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    GONE = "gone"  # the operation URL answers 404: read the resource to learn the outcome


class Operation(Protocol):
    """A started Azure long-running operation, polled one step at a time."""

    def token(self) -> str: ...

    def retry_after(self) -> float | None: ...

    async def poll(self) -> PollResult:
        """One status request; raises the classified error when the operation ended Failed."""
        ...

    def done(self) -> bool:
        """Finished already in the initial answer (a 200/201 with a terminal state)."""
        ...


class ResourceSpec(Protocol):
    """One Azure resource the operator manages (CAPZ's ResourceSpecGetter + the client calls)."""

    kind: str  # e.g. "virtualMachines"
    name: str

    async def get(self) -> Any | None:
        """The resource, or None when it does not exist."""
        ...

    async def parameters(self, existing: Any | None) -> Any | None:
        """The body to PUT to reach the spec from ``existing``, or None when nothing differs."""
        ...

    async def begin_put(self, body: Any) -> Operation: ...

    async def begin_delete(self) -> Operation: ...

    async def resume(self, verb: Verb, token: str) -> Operation: ...


@dataclass(frozen=True)
class OperationRecord:
    """What a restarted operator needs to resume polling instead of starting again."""

    kind: str
    name: str
    verb: str
    token: str
    started: str  # ISO 8601 UTC
    action: str = ""  # "created" | "updated" | "deleted": what the user is shown

    def started_at(self) -> datetime:
        return parse_timestamp(self.started) or datetime.now(UTC)

    def is_for(self, spec: ResourceSpec) -> bool:
        return (self.kind, self.name.lower()) == (spec.kind, spec.name.lower())


@dataclass
class OperationState:
    """The per-object memory the shell keeps in an annotation (never status: status is output).

    ``vm_id`` is the vmId of the VM this object last saw provisioned: with it, a VM that is gone was
    deleted outside the operator (``spec.azure.onMissing``); without it, it was never created.
    ``image`` is that VM's storageProfile.imageReference as Azure reported it (publisher, offer, sku,
    version): a VM deleted outside is recreated from it, not from what the catalog would choose now.
    """

    operation: OperationRecord | None = None
    vm_id: str | None = None
    image: dict[str, str] | None = None

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> OperationState:
        """Anything unreadable counts as empty: at worst a GET finds the resource in flight. The text is
        the operator's own (sealed, ``controller.ObjectRecord.state``); sizes are bounded all the same."""
        if not text or len(text) > MAX_STATE_CHARS:
            return cls()
        try:
            data = json.loads(text)
            op = data.get("operation")
            fields = ("kind", "name", "verb", "token", "started")
            record = (
                OperationRecord(**{k: str(op[k]) for k in fields}, action=str(op.get("action") or ""))
                if op
                else None
            )
            if record is not None and (record.verb not in set(Verb) or len(record.name) > MAX_FIELD_CHARS):
                record = None
            vm_id = data.get("vm_id")
            vm_id = str(vm_id) if vm_id and len(str(vm_id)) <= MAX_FIELD_CHARS else None
            image = data.get("image")
            image = (
                {
                    str(k): str(v)
                    for k, v in image.items()
                    if k in IMAGE_FIELDS and v and len(str(v)) <= MAX_FIELD_CHARS
                }
                if isinstance(image, dict)
                else None
            )
            return cls(record, vm_id, image or None)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return cls()


class InProgress(Exception):
    """An operation runs in Azure; come back after ``retry_after`` seconds."""

    def __init__(self, record: OperationRecord, retry_after: float) -> None:
        super().__init__(f"{record.verb} of {record.kind}/{record.name} in progress")
        self.record = record
        self.retry_after = retry_after

    @property
    def verb(self) -> Verb:
        return Verb(self.record.verb)


def _delay(op: Operation | None, default: float = DEFAULT_POLL_SECONDS) -> float:
    asked = op.retry_after() if op is not None else None
    return max(MIN_POLL_SECONDS, asked if asked is not None else default)


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Driver:
    """Drives ResourceSpecs for one object; ``state`` is loaded before the pass and saved after it."""

    state: OperationState
    clock: Clock = _now
    on_write: Callable[[str], None] | None = None
    # The one place an Azure write (PUT/PATCH/DELETE) is logged, with the object's reference (Owner.logger).
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = log
    poll_seconds: float = (
        DEFAULT_POLL_SECONDS  # when Azure sends no Retry-After (AzureSettings.polling_interval)
    )
    observe: bool = False
    """Observe only (managementPolicy Observe): read and compute, never write; what a write would have
    changed is collected in ``would_change`` instead."""
    would_change: list[str] = field(default_factory=list)

    def _would(self, spec: ResourceSpec, existing: Any | None, body: Any | None) -> None:
        describe = getattr(spec, "changes", None)
        if body is None:
            found = [f"delete {spec.kind}/{spec.name}"]
        elif describe is not None:
            found = describe(existing, body)
        else:
            found = [f"{'create' if existing is None else 'update'} {spec.kind}/{spec.name}"]
        self.would_change.extend(c for c in found if c not in self.would_change)

    def _did(self, what: str) -> None:
        self.logger.info("%s", what)
        if self.on_write is not None:
            self.on_write(what)

    async def _start(self, spec: ResourceSpec, verb: Verb, begin: Awaitable[Operation], what: str) -> None:
        if self.observe:  # a write that ``ensure``/``delete`` did not catch: refused, never sent
            begin.close()  # type: ignore[attr-defined]  # the coroutine is never awaited: nothing is sent
            raise write_refused(f"{what.removesuffix('d')} {spec.kind}/{spec.name}")
        op = await begin
        self._did(f"{what} {spec.kind}/{spec.name}")
        if op.done():
            return
        record = OperationRecord(
            spec.kind, spec.name, str(verb), op.token(), format_timestamp(self.clock()), what
        )
        self.state.operation = record
        raise InProgress(record, _delay(op, self.poll_seconds))

    async def finish_recorded(self, specs: dict[tuple[str, str], ResourceSpec]) -> OperationRecord | None:
        """Poll the recorded operation once. Returns the record when it has finished (state cleared),
        None when none was recorded or its resource is no longer managed; raises InProgress while it runs."""
        record = self.state.operation
        if record is None:
            return None
        spec = specs.get((record.kind, record.name.lower()))
        if spec is None:  # spec changed meanwhile: the next GET tells the rest
            self.state.operation = None
            return None
        try:
            op = await spec.resume(Verb(record.verb), record.token)
        except (ValueError, TypeError, KeyError) as exc:  # an unreadable token (hand-edited annotation)
            self.logger.warning(
                "dropping unreadable operation record for %s/%s: %s", record.kind, record.name, exc
            )
            self.state.operation = None
            return None
        try:
            result = await op.poll()
        except Exception:
            self.state.operation = None  # a Failed operation is over: the error is classified by the caller
            raise
        if result is PollResult.RUNNING:
            raise InProgress(record, _delay(op, self.poll_seconds))
        self.state.operation = None
        self.logger.info("%s of %s/%s finished (%s)", record.verb, record.kind, record.name, result.value)
        return record

    async def ensure(self, spec: ResourceSpec, existing: Any | None = ..., read: bool = True) -> Any | None:
        """Bring one resource to its spec: GET, ``parameters(existing)``, PUT if needed, then the fresh resource.

        ``existing`` may be passed when the caller has just read it (no second GET).
        """
        if existing is ...:
            existing = await spec.get()
        body = await spec.parameters(existing)
        if body is None:
            return existing
        if self.observe:
            self._would(spec, existing, body)
            return existing
        await self._start(spec, Verb.PUT, spec.begin_put(body), "created" if existing is None else "updated")
        return await spec.get() if read else None

    async def delete(self, spec: ResourceSpec, existing: Any | None = ...) -> bool:
        """Delete one resource; True when it was there. Raises InProgress while Azure deletes it."""
        if existing is ...:
            existing = await spec.get()
        if existing is None:
            return False
        if self.observe:
            self._would(spec, existing, None)
            return False
        await self._start(spec, Verb.DELETE, spec.begin_delete(), "deleted")
        return True
