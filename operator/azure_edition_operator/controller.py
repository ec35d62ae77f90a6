"""The per-object control loop in one place: one scheduler for every object, a bounded set of workers.

controller-runtime's rate-limited work queue with ``RequeueAfter`` is the model. kopf's handlers only
feed it (handlers.py: an object created, changed, resumed, seen, deleted, asked to assess); here is
decided *when* each object's next pass, check round and resync run, and one worker at a time runs one
step of one object:

* **Schedule** (pure, a fake clock drives it in tests): a due-time heap in front of the fair ready
  queue (slots.FairQueue: furthest along first, namespaces in turns). An object is queued at most once
  and never handed to two workers; a wish to run it again while it runs is kept until it is done.
* **ObjectRecord**: everything this process remembers about one object (what kopf last showed of it,
  the driver's state, when it is due, whether its VM is provisioned for the current generation, the
  check memory), so forgetting an object is one ``del``.
* **Controller**: the steps. A *pass* (reconciler.reconcile_pass: Azure toward the spec) never waits
  for Azure: an operation in flight or an Azure "later" ends the step, and the object is due again
  after Azure's Retry-After. A *check round* reads the VM (one GET with the instance view) every
  ``spec.checkInterval`` for every provisioned object, capabilities or none, and asks for a pass at once
  when what it read is not what the spec says (deleted, stopped, a NIC gone, size or tags changed).
  A resync pass runs every ``resync_interval``. Kubernetes trouble (the API server away) is retried
  after a short back-off (``kube_retry_base``..``kube_retry_cap``).

The management policy (docs/reference.md, ``spec.managementPolicy``) is applied here: ``Paused`` makes
no Azure call at all (one status write says so), ``Observe`` runs the same reads and checks with
``observe=True`` (nothing written to Azure or the guest), and deleting an object that is not ``Full``
leaves Azure as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core.exceptions import AzureError

from . import calendar_source, metrics, reconciler, sealing
from . import reasons as vocab
from .api.v1alpha1 import (
    ASSESS_FAILED_EVENT,
    AzureEditionVMSpec,
    ManagementPolicy,
    annotation_token_problem,
    assess_event_message,
    parse_duration,
)
from .azure import clients as azure_clients
from .azure import extended as azure_extended
from .azure import patches as azure_patches
from .azure import placement as azure_placement
from .azure import provision as azure_provision
from .azure import specs as azure_specs
from .azure.driver import InProgress, OperationState
from .azure.errors import AzurePermanentError, AzureRetryableError, from_exception
from .checks.runner import CheckMemory, run_checks
from .conditions import Condition, ConditionType
from .config import OperatorConfig
from .credentials import CredentialClients, permitted_clients
from .hotpatch_calendar import PatchSummary
from .images import ImageReference
from .kube import Kube
from .publish import post, publish
from .reconciler import CredentialsLoader, Outcome, reconcile_pass
from .slots import FairQueue, Rank
from .status import Observation, compute_status, condition
from .tenancy import NotPermitted

KOPF_PREFIX = "kopf.azureedition.io"
STATE_ANNOTATION = f"{KOPF_PREFIX}/azure-state"
"""The driver's memory (operation in flight, vmId last seen, the VM's image): under kopf's prefix, so
writing it is not a spec change, and in metadata, not status: status is output, never input. Sealed
(sealing.py): a value the operator did not write for this object reads as no state at all."""
ASSESSED_ANNOTATION = f"{KOPF_PREFIX}/assessed"
"""The last assess token answered (assessed, or refused for good): the operator's memory, under kopf's
prefix and sealed like the driver's state (a forged answer reads as none, so it cannot suppress an
assessment); ``status.hotpatch.lastAssessToken`` reports it and is never read back."""
PATCHES_ANNOTATION = f"{KOPF_PREFIX}/patch-assessment"
"""The per-patch counts of the operator's last assessPatches (``hotpatch_calendar.PatchSummary``): the
operator's memory like ``assessed``; the checks use it while it is the VM's latest assessment."""

NEVER = math.inf
CHECK_JITTER = 0.1
"""±10% on every check interval: a fleet created together must not poll Azure in lockstep."""

Clock = Callable[[], float]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# ----------------------------------------------------------------------------- the schedule (pure)


class Schedule:
    """When each key is due (a heap, stale entries skipped), and the fair ready queue behind it."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._due: dict[Hashable, float] = {}  # key → its one live due time
        self._how: dict[Hashable, tuple[Rank, str]] = {}  # key → (rank, share) when it becomes ready
        self._ready = FairQueue()
        self._active: set[Hashable] = set()
        self._again: dict[Hashable, float] = {}  # key running now → when it was asked for again
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._due) + len(self._ready) + len(self._active)

    @property
    def waiting(self) -> int:
        """Due keys no worker has taken yet (the backlog behind the workers)."""
        return len(self._ready)

    @property
    def active(self) -> int:
        return len(self._active)

    def add(self, key: Hashable, at: float, rank: Rank, share: str = "") -> None:
        """Due at ``at``, or earlier if it already is; a running key runs again after it is done."""
        self._how[key] = (rank, share)
        if key in self._active:
            self._again[key] = min(at, self._again.get(key, NEVER))
            return
        if key in self._ready or self._due.get(key, NEVER) <= at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, next(self._seq), key))

    def release(self, clock: float) -> None:
        """Move every key due by ``clock`` to the ready queue."""
        while self._heap and self._heap[0][0] <= clock:
            at, _, key = heapq.heappop(self._heap)
            if self._due.get(key) != at:
                continue  # moved earlier, or forgotten
            del self._due[key]
            rank, share = self._how[key]
            self._ready.push(key, rank, share)

    def next_due(self) -> float | None:
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # stale
        return self._heap[0][0] if self._heap else None

    def take(self) -> Hashable | None:
        """The next ready key for a worker (now running), or None."""
        key = self._ready.pop()
        if key is not None:
            self._active.add(key)
        return key

    def done(self, key: Hashable, at: float | None, rank: Rank | None = None, share: str = "") -> None:
        """The worker finished ``key``; it is due again at ``at`` (None: only when fed again), with
        ``rank`` from now on (None: as before)."""
        self._active.discard(key)
        if rank is not None and key in self._how:
            self._how[key] = (rank, share)
        again = min(at if at is not None else NEVER, self._again.pop(key, NEVER))
        if again < NEVER and key in self._how:
            rank, share = self._how[key]
            self.add(key, again, rank, share)

    def forget(self, key: Hashable) -> None:
        """Nothing of ``key`` is left (a running key is not queued again when it is done)."""
        self._due.pop(key, None)
        self._how.pop(key, None)
        self._again.pop(key, None)
        self._ready.remove(key)
        if len(self._heap) > 2 * len(self._due) + 64:  # stale entries: rebuild now and then
            self._heap = [e for e in self._heap if self._due.get(e[2]) == e[0]]
            heapq.heapify(self._heap)


# ----------------------------------------------------------------------------- one object's memory


@dataclass
class ObjectRecord:
    """What this process remembers of one object; lost on restart by design (the resume pass reads
    Azure again, and status and the sealed annotations are read back, never trusted as input)."""

    uid: str
    namespace: str
    name: str
    body: Mapping[str, Any]  # kopf's body as last seen: spec and metadata (status is ``status``)
    cluster: str = "default"  # the operator's cluster id (OperatorConfig.cluster_id): half of the owner
    status: dict[str, Any] = field(default_factory=dict)  # as last read from, or written to, the API server
    status_version: int = 0  # the resourceVersion ``status`` was read at, or our last write made (0: unknown)
    state: OperationState | None = None  # the driver's memory, loaded once from its sealed annotation
    written: dict[str, str | None] = field(default_factory=dict)  # our annotations as we last wrote them
    annotated_version: int = 0  # the resourceVersion our last annotation write made
    next_pass: float = 0.0  # monotonic: when the next pass is due (now: wanted at once)
    next_check: float = NEVER  # when the next check round is due (only while provisioned)
    rank: Rank = Rank.START
    retry: int = 0  # transient Azure failures in a row (reconciler.transient_delay)
    failures: int = 0  # steps that failed on Kubernetes (or a bug) in a row
    not_before: float = 0.0  # back-off after such a failure
    streak_started: float | None = None  # when the running series of passes (an operation, retries) began
    pending_events: list[tuple[str, str, str]] = field(default_factory=list)  # to post with the next write
    provisioned_generation: int | None = None  # the generation whose pass left the VM provisioned
    passed_generation: int | None = None  # the generation of the last pass that finished
    observed_vm: dict[str, Any] | None = None  # status.vm as this process last read it (addresses)
    vm_model: Any = None  # the VM as the running pass last read it (the folded checks need no GET)
    check_memory: CheckMemory | None = None
    drift: list[str] = field(default_factory=list)  # what a check round saw differ; the pass corrects it
    would_change: tuple[str, ...] = ()  # Observe: what the last pass would have written (Synced says it)
    reported: list[str] = field(default_factory=list)  # Observe: the differences a round last saw
    corrected: list[str] = field(default_factory=list)  # writes the running passes made to correct drift
    assess_token: str | None = None
    assess_due: float = 0.0
    deleting: bool = False
    unwritten: tuple[dict[str, Any], tuple[tuple[str, str, str], ...]] | None = None  # status the API refused
    unsaved: bool = False  # the driver's state could not be written (the API server away)

    @property
    def meta(self) -> Mapping[str, Any]:
        return self.body.get("metadata") or {}

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.body.get("spec") or {}

    @property
    def generation(self) -> int:
        return int(self.meta.get("generation") or 0)

    @property
    def owner(self) -> azure_specs.Owner:
        return azure_specs.Owner(self.namespace, self.name, self.uid, self.cluster)

    @property
    def policy(self) -> ManagementPolicy:
        try:
            return ManagementPolicy(self.spec.get("managementPolicy") or ManagementPolicy.FULL)
        except ValueError:
            return ManagementPolicy.FULL  # admission refuses others; the pass says InvalidSpec

    @property
    def provisioned(self) -> bool:
        """The VM was left provisioned by a pass of the current spec: checks and assessments may run.
        From memory, not from status: whoever can write status must not steer the checks."""
        return self.provisioned_generation is not None and self.provisioned_generation == self.generation

    def check_interval(self) -> float:
        return parse_duration(self.spec.get("checkInterval") or "10m").total_seconds()

    def due_rank(self) -> Rank:
        """The rank of what is due next: a check round (one GET, a bounded number per interval) goes before
        passes, so a burst of new objects does not push any object past its checkInterval."""
        if self.provisioned and self.failures == 0 and self.next_check < self.next_pass:
            return Rank.CHECK
        return self.rank

    def due(self) -> float | None:
        """When this object next needs a worker (None: only when kopf feeds it again)."""
        if self.deleting:
            return None
        if self.failures:  # the last step failed (a status write too, paused or not): after the back-off
            return self.not_before
        if self.policy is ManagementPolicy.PAUSED:
            return None
        due = self.next_pass
        if self.provisioned:
            due = min(due, self.next_check)
            if self.assess_token:
                due = min(due, self.assess_due)
        return None if due == NEVER else max(due, self.not_before)


def sealed(key: bytes, rec: ObjectRecord, annotation: str) -> str | None:
    """The payload of one of the operator's annotations, if the operator wrote it for this object."""
    raw = (
        rec.written[annotation]
        if annotation in rec.written
        else (rec.meta.get("annotations") or {}).get(annotation)
    )
    return sealing.unseal(key, rec.uid, annotation, raw)


def jittered(interval: float) -> float:
    return interval * random.uniform(1 - CHECK_JITTER, 1 + CHECK_JITTER)


def _version(meta: Mapping[str, Any] | str | None) -> int:
    raw = meta.get("resourceVersion") if isinstance(meta, Mapping) else meta
    try:
        return int(raw or 0)
    except (TypeError, ValueError):  # opaque on some servers: every event is then taken as newer
        return 0


def synced_condition(policy: ManagementPolicy, note: str = "") -> Condition | None:
    """``Synced`` for a policy that is not Full (None: Full, and the condition is absent)."""
    if policy is ManagementPolicy.PAUSED:
        return condition(ConditionType.SYNCED, False, vocab.RECONCILE_PAUSED, vocab.PAUSED_MESSAGE)
    if policy is ManagementPolicy.OBSERVE:
        message = vocab.OBSERVE_MESSAGE + (f"; differs from the spec: {note}" if note else "")
        return condition(ConditionType.SYNCED, False, vocab.OBSERVE_ONLY, message)
    return None


def needs_pass(vm: Any, spec: AzureEditionVMSpec, identity: azure_specs.VMIdentity) -> list[str]:
    """What a check round's read of the VM says only a pass can act on or report (pure): stopped, not
    Succeeded, a NIC gone, the size or our tags changed outside. Empty: the round's checks suffice.
    A VM named by ``spec.azure.vmName`` is looked at under the names found on it (``specs.discover``).
    Under Observe the caller passes only a difference it has not reported yet (``ObjectRecord.reported``)."""
    if spec.azure.vm_name:
        identity = azure_specs.discover(identity, vm).identity
    found = []
    state = azure_specs.provisioning_state(vm)
    if state and state.lower() != "succeeded":
        found.append(f"provisioningState {state}")
    power = azure_specs.power_state(vm)
    if reconciler.is_stopped(power):
        found.append(f"power state {power}")
    if (nic := missing_nic_of(vm, identity, spec)) is not None:
        found.append(nic)
    size = azure_specs.enum_str(azure_specs.attr_path(vm, "properties", "hardware_profile", "vm_size"))
    if size and size.lower() != spec.azure.vm_size.lower():
        found.append(f"vmSize {size} (spec: {spec.azure.vm_size})")
    if azure_specs.merged_tags(azure_specs.desired_tags(spec, identity.owner), vm.tags) is not None:
        found.append("tags")
    return found


def missing_nic_of(vm: Any, identity: azure_specs.VMIdentity, spec: AzureEditionVMSpec) -> str | None:
    refs = azure_specs.attr_path(vm, "properties", "network_profile", "network_interfaces") or []
    attached = {(r.id or "").lower() for r in refs}
    extended = (
        (identity.extended_nic_id, identity.extended_nic_name) if azure_extended.requested(spec) else None
    )
    return reconciler.missing_nic(attached, (identity.nic_id, identity.nic_name), extended)


def failed_kind(outcome: Outcome) -> vocab.Kind | None:
    failed = outcome.observation.vm_condition or outcome.observation.image_condition
    return vocab.kind_of(failed.reason) if failed is not None and not failed.is_true else None


# ----------------------------------------------------------------------------- the controller


@dataclass
class Services:
    """What the steps talk to, made once at startup (handlers.configure)."""

    config: OperatorConfig
    kube: Kube
    tenancy: CredentialClients
    state_key: bytes


class Controller:
    """The scheduler and its workers; kopf's handlers call ``changed``, ``seen``, ``assess``, ``delete``."""

    def __init__(self, services: Services, *, clock: Clock = time.monotonic) -> None:
        self.services = services
        self.config = services.config
        self.clock = clock
        self.records: dict[str, ObjectRecord] = {}
        self.schedule = Schedule()
        self.workers = services.config.max_concurrent_reconciles
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._log = logging.getLogger(__name__)

    # ------------------------------------------------------------------ feeding (kopf's handlers)

    def _record(self, body: Mapping[str, Any]) -> ObjectRecord:
        meta = body["metadata"]
        rec = self.records.get(meta["uid"])
        if rec is None:
            rec = self.records[meta["uid"]] = ObjectRecord(
                meta["uid"], meta["namespace"], meta["name"], body, cluster=self.services.config.cluster_id
            )
            self.seen(body)
        return rec

    def seen(self, body: Mapping[str, Any]) -> None:
        """Any event of an object: the freshest spec, metadata and status (a status edited by hand is
        then rewritten from what the operator computes)."""
        rec = self.records.get(body["metadata"]["uid"])
        if rec is None:
            return
        rec.body = body
        version = _version(body["metadata"])
        if version > rec.annotated_version:  # our annotations overwritten since we wrote them (a tenant):
            on_object = body["metadata"].get("annotations") or {}  # read from the object again (a value
            for annotation in [a for a, ours in rec.written.items() if on_object.get(a) != ours]:
                del rec.written[
                    annotation
                ]  # that does not verify reads as none) and rewritten by the next save
        if version == 0 or version >= rec.status_version:  # an event older than our own write says less
            rec.status, rec.status_version = dict(body.get("status") or {}), version

    def changed(self, body: Mapping[str, Any]) -> None:
        """Created, spec changed, or resumed: a pass at once (paused: one status write, no Azure call)."""
        rec = self._record(body)
        self.seen(body)
        if rec.deleting:
            return
        rec.retry, rec.rank, rec.next_pass = 0, Rank.START, self.clock()
        if rec.streak_started is not None or (rec.state is not None and rec.state.operation is not None):
            rec.rank = Rank.RESUME
        self._enqueue(rec, self.clock())

    def assess(self, body: Mapping[str, Any], token: str) -> None:
        """``azureedition.io/assess-patches: <token>``: one assessPatches once the VM is provisioned."""
        rec = self._record(body)
        self.seen(body)
        rec.assess_token, rec.assess_due = token, self.clock()
        if (due := rec.due()) is not None:
            self._enqueue(rec, due)

    def forget(self, uid: str) -> None:
        """Drop everything this process remembers of an object; its metric series too."""
        rec = self.records.pop(uid, None)
        self.schedule.forget(uid)
        if rec is not None:
            metrics.forget(rec.namespace, rec.name)

    def _enqueue(self, rec: ObjectRecord, at: float) -> None:
        self.schedule.add(rec.uid, at, rec.rank, rec.namespace)
        self._wake.set()
        self.start()

    # ------------------------------------------------------------------ dispatching

    def start(self) -> None:
        """Start the dispatcher, from a kopf handler: its tasks inherit the context kopf posts Events in."""
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def stop(self) -> None:
        tasks = [t for t in (self._dispatcher, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def tick(self) -> list[asyncio.Task[None]]:
        """One round of the dispatcher: due keys to the ready queue, ready keys to free workers."""
        self.schedule.release(self.clock())
        started = []
        while len(self._running) < self.workers and (uid := self.schedule.take()) is not None:
            task = asyncio.get_running_loop().create_task(self._work(str(uid)))
            self._running[str(uid)] = task
            started.append(task)
        return started

    async def _dispatch(self) -> None:
        while True:
            self._wake.clear()
            self.tick()
            due = self.schedule.next_due()
            timeout = None if due is None else max(0.0, due - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _work(self, uid: str) -> None:
        rec = self.records.get(uid)
        try:
            if rec is not None:
                await self._guarded_step(rec)
        finally:
            self._running.pop(uid, None)
            rec = self.records.get(uid)
            if rec is None:
                self.schedule.done(uid, None)
            else:
                self.schedule.done(uid, rec.due(), rec.due_rank(), rec.namespace)
            self._wake.set()

    async def _guarded_step(self, rec: ObjectRecord) -> None:
        """A step, and the back-off after one that failed on Kubernetes (or a bug). What Azure said is
        kept when only the write failed: the retry writes it, with no Azure call."""
        try:
            await self.step(rec)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the API server away, or a bug: soon again, backing off
            self._failed(rec, repr(err))
        else:
            if rec.unwritten is not None or rec.unsaved:
                self._failed(rec, "the API server refused the write")
            else:
                rec.failures, rec.not_before = 0, 0.0

    def _failed(self, rec: ObjectRecord, why: str) -> None:
        rec.failures += 1
        delay = min(self.config.kube_retry_cap, self.config.kube_retry_base * 2.0 ** (rec.failures - 1))
        rec.not_before = self.clock() + delay
        rec.owner.logger(__name__).warning("step failed (retrying in %.1f s): %s", delay, why)
        metrics.RECONCILE_ERRORS.labels(reason="Other").inc()

    async def idle(self, uid: str) -> None:
        """Wait until no worker runs ``uid`` (a delete waits for the step in flight)."""
        task = self._running.get(uid)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    # ------------------------------------------------------------------ one step of one object

    async def step(self, rec: ObjectRecord) -> None:
        """One thing per step, the most urgent first: a pass, an assessment, a check round."""
        if rec.deleting:
            return
        if rec.unwritten is not None or rec.unsaved:  # what the API server refused last time, first
            await self._flush(rec)
            return
        if rec.policy is ManagementPolicy.PAUSED:
            await self._publish(rec, Observation(rec.generation, frozenset(self._capabilities(rec))))
            return
        clock = self.clock()
        if clock >= rec.next_pass:
            await self._pass(rec)
        elif rec.provisioned and rec.assess_token and clock >= rec.assess_due:
            await self._assess(rec)
        elif rec.provisioned and clock >= rec.next_check:
            await self._check_round(rec)

    @staticmethod
    def _capabilities(rec: ObjectRecord) -> list[Any]:
        try:
            return list(AzureEditionVMSpec.model_validate(rec.spec).capabilities)
        except ValueError:
            return []

    def _state(self, rec: ObjectRecord) -> OperationState:
        if rec.state is None:
            rec.state = OperationState.loads(sealed(self.services.state_key, rec, STATE_ANNOTATION))
        return rec.state

    async def _save_state(self, rec: ObjectRecord) -> None:
        """Write the driver's state only when it changed (never PUT what has not changed); a value that
        did not verify is replaced (or removed when there is nothing to remember)."""
        state = self._state(rec)
        current = rec.written.get(STATE_ANNOTATION, (rec.meta.get("annotations") or {}).get(STATE_ANNOTATION))
        remembered = state.operation or state.vm_id or state.image
        key = self.services.state_key
        new = sealing.seal(key, rec.uid, STATE_ANNOTATION, state.dumps()) if remembered else None
        if new != current:
            try:
                version = await self.services.kube.annotate(rec.namespace, rec.name, {STATE_ANNOTATION: new})  # type: ignore[dict-item]
            except Exception as err:  # the API server away: kept, written by the next step
                rec.owner.logger(__name__).warning("the driver's state was not written: %r", err)
                rec.unsaved = True
                return
            self._annotated(rec, version)
        rec.written[STATE_ANNOTATION], rec.unsaved = new, False

    @staticmethod
    def _wrote(rec: ObjectRecord, version: str | None) -> None:
        """Our own write made ``version``: an event from before it must not take ``status`` back."""
        rec.status_version = max(rec.status_version, _version(version))

    @classmethod
    def _annotated(cls, rec: ObjectRecord, version: str | None) -> None:
        """Our own annotation write made ``version``: only a later event can show someone else's value."""
        cls._wrote(rec, version)
        rec.annotated_version = max(rec.annotated_version, _version(version))

    async def _publish(
        self, rec: ObjectRecord, observation: Observation, *, actions: list[tuple[str, str, str]] | None = None,
        errors: tuple[tuple[str, str, str], ...] = (),
    ) -> dict[str, Any]:  # fmt: skip
        """The one status write of a step (only what changed), with the management policy's ``Synced``
        (under Observe it lists what the last pass would have changed, the same words every step)."""
        note = "; ".join(rec.would_change) if rec.policy is ManagementPolicy.OBSERVE else ""
        new = compute_status(
            rec.status, replace(observation, synced=synced_condition(rec.policy, note)), now()
        )
        posted = tuple(actions or ())
        if actions:
            actions.clear()  # posted once, whatever the write does
        await self._write(rec, new, posted, errors)
        failed = observation.vm_condition
        if failed is not None and failed.reason == vocab.NOT_PERMITTED:
            metrics.forget(rec.namespace, rec.name)  # a refused namespace holds no series
        else:
            metrics.set_summary(rec.namespace, rec.name, new)
        return new

    async def _write(
        self, rec: ObjectRecord, new: dict[str, Any], actions: tuple[tuple[str, str, str], ...] = (),
        errors: tuple[tuple[str, str, str], ...] = (),
    ) -> None:  # fmt: skip
        """``publish`` from what the API server holds to ``new``; refused, it is kept for the next step."""
        try:
            await publish(self.services.kube, rec.body, rec.status, new, actions=actions, errors=errors,
                          written=lambda version: self._wrote(rec, version))  # fmt: skip
        except Exception as err:  # the API server away: kept, written by the next step (no Azure call)
            rec.owner.logger(__name__).warning("status was not written: %r", err)
            rec.unwritten = (new, errors)
            return
        rec.status, rec.unwritten = new, None

    async def _flush(self, rec: ObjectRecord) -> None:
        """Write what the API server refused before: the driver's state, then status."""
        if rec.unsaved:
            await self._save_state(rec)
        if rec.unwritten is not None and not rec.unsaved:
            new, errors = rec.unwritten
            await self._write(rec, new, errors=errors)

    async def _azure(self, rec: ObjectRecord, vm_spec: AzureEditionVMSpec) -> Any:
        return await self.azure_for(rec.namespace, vm_spec)

    async def azure_for(self, namespace: str, vm_spec: AzureEditionVMSpec) -> Any:
        """Tenancy: the only way to Azure clients; ``NotPermitted`` before any Azure call (the baseline
        rollout, rollout.py, comes through here too)."""
        s = self.services
        return await permitted_clients(s.kube, s.tenancy, namespace, vm_spec, s.config.single_tenant)

    def patches_of(self, meta: Mapping[str, Any]) -> PatchSummary | None:
        """The operator's own (sealed) record of an object's last assessPatches, for the rollout."""
        raw = (meta.get("annotations") or {}).get(PATCHES_ANNOTATION)
        return PatchSummary.from_json(
            sealing.unseal(self.services.state_key, meta["uid"], PATCHES_ANNOTATION, raw)
        )

    # ------------------------------------------------------------------ the pass

    async def _pass(self, rec: ObjectRecord) -> None:
        """One pass (Azure toward the spec); while Azure works or says "later", the object is due again
        after its wait. When the series ends: the first checks folded in, then status, the state."""
        observe = rec.policy is ManagementPolicy.OBSERVE
        kube, owner, state = self.services.kube, rec.owner, self._state(rec)
        secret_name = (rec.spec.get("adminCredentialsSecretRef") or {}).get("name", "")
        clock = self.clock()
        if rec.streak_started is None:
            rec.streak_started = clock
        identities: dict[str, azure_specs.VMIdentity] = {}

        async def load_credentials() -> Any:
            return await kube.admin_credentials(owner.namespace, secret_name)

        async def ensure(
            vm_spec: AzureEditionVMSpec, image: ImageReference, creds: CredentialsLoader
        ) -> azure_provision.ObservedVM:
            identity = identities["vm"] = azure_specs.vm_identity(owner, vm_spec.azure)
            azure = await self._azure(rec, vm_spec)  # NotPermitted before any Azure call
            await azure_extended.preflight(azure, vm_spec)  # PrerequisitesNotMet before any PUT
            if state.vm_id is None:  # before the first PUT: ImageNotOffered when the region lacks it
                await azure_placement.check_image(azure, vm_spec, image)
            events: list[tuple[str, str, str]] = []
            try:
                observed = await azure_provision.ensure_vm(
                    azure, identity, vm_spec, image, creds, state=state, events=events,
                    instance_view=True, observe=observe,  # power state in the same GET
                )  # fmt: skip
            except InProgress as progress:
                if progress.record.action == "updated" and rec.passed_generation == rec.generation:
                    rec.corrected.append(f"{progress.record.kind}/{progress.record.name}")
                raise
            except AzurePermanentError as err:  # a refused size: name the family's sizes the region offers
                raise await azure_placement.with_size_advice(azure, vm_spec, err)  # noqa: B904 (same error)
            finally:
                if not observe:  # e.g. VMRecreated; under Observe nothing is recreated
                    rec.pending_events += events
            if rec.passed_generation == rec.generation:
                rec.corrected += [a.split(" ", 1)[1] for a in observed.actions if a.startswith("updated ")]
            rec.vm_model, rec.would_change = observed.model, observed.would_change
            identities["vm"] = observed.identity or identity  # a named VM's NICs: as found on it
            return observed

        def vm_problem(vm: azure_provision.ObservedVM) -> str | None:
            identity = identities.get("vm")
            spec = AzureEditionVMSpec.model_validate(rec.spec)
            return missing_nic_of(vm.model, identity, spec) if identity and vm.model is not None else None

        before = state.operation
        pacing = azure_clients.HAND_BACK_WRITES.set(self.config.pacing_hand_back)  # no task waits for pacing
        try:
            outcome = await reconcile_pass(
                rec.spec, rec.generation, ensure, load_credentials, self.config.missing_secret_retry,
                retry=rec.retry, now=now(), vm_problem=vm_problem,
            )  # fmt: skip
        finally:
            azure_clients.HAND_BACK_WRITES.reset(pacing)
        if outcome.observation.vm is not None:
            rec.observed_vm = dict(outcome.observation.vm)
        kind = failed_kind(outcome)
        first_poll = state.operation is not None and state.operation != before
        delay = reconciler.next_pass_delay(kind, outcome.retry_after, first_poll=first_poll)
        clock = self.clock()
        if delay is not None:  # the series goes on: an operation runs, or Azure said "later"
            if kind is vocab.Kind.TRANSIENT:
                rec.retry += 1
            rec.rank, rec.next_pass, rec.vm_model = Rank.RESUME, clock + delay, None
            if reconciler.report_progress(
                clock - rec.streak_started, delay, self.config.progress_report_after
            ):
                await self._publish(
                    rec, outcome.observation, actions=rec.pending_events, errors=outcome.events
                )
                await self._save_state(rec)  # long enough to be worth surviving a restart
            return
        await self._finish_pass(rec, outcome, kind, observe)

    async def _finish_pass(
        self, rec: ObjectRecord, outcome: Outcome, kind: vocab.Kind | None, observe: bool
    ) -> None:
        started = rec.streak_started or self.clock()
        observation = outcome.observation
        provisioned = bool(observation.vm_condition and observation.vm_condition.is_true)
        rec.provisioned_generation = rec.generation if provisioned else None
        if provisioned:
            observation = await self._first_checks(rec, observation, observe)
        await self._save_state(rec)
        if rec.corrected:  # one Event for a drift the operator corrected (a spec edit is no drift)
            what = "; ".join(rec.drift) or ", ".join(dict.fromkeys(rec.corrected))
            rec.pending_events.append(("Warning", "DriftCorrected", f"changed outside the operator: {what}; "
                                       f"corrected ({', '.join(dict.fromkeys(rec.corrected))})"))  # fmt: skip
        await self._publish(rec, observation, actions=rec.pending_events, errors=outcome.events)
        clock = self.clock()
        vm_condition = observation.vm_condition or observation.image_condition
        if (
            vm_condition is not None
            and not vm_condition.is_true
            and kind in (vocab.Kind.TRANSIENT, vocab.Kind.USER)
        ):
            metrics.RECONCILE_ERRORS.labels(reason=vocab.metric_reason(vm_condition.reason)).inc()
            rec.owner.logger(__name__).warning("%s: %s", vm_condition.reason, vm_condition.message)
        metrics.record_reconcile(kind, clock - started)
        rec.owner.logger(__name__).info("reconciled: %s", rec.status.get("phase"))
        if outcome.permanent:
            rec.owner.logger(__name__).error("%s; the next spec edit tries again", outcome.permanent)
        interval = rec.check_interval()
        after = NEVER if outcome.permanent else min(self.config.resync_interval, outcome.retry_after or NEVER)
        if observation.vm is not None and not provisioned:
            after = min(after, interval)  # a VM that is there but not serving is read every interval
        after = jittered(after) if after < NEVER else after  # a fleet must not come back in lockstep
        rec.next_pass, rec.rank, rec.retry = clock + after, Rank.START, rec.retry if kind else 0
        rec.next_check = clock + jittered(interval) if provisioned else NEVER
        rec.streak_started, rec.vm_model, rec.passed_generation = None, None, rec.generation
        rec.drift, rec.corrected = [], []

    def _memory(self, rec: ObjectRecord) -> CheckMemory:
        if rec.check_memory is None:
            rec.check_memory = CheckMemory(self.config.in_guest_interval, self.config.in_guest_min_interval)
        return rec.check_memory

    async def _run_checks(self, rec: ObjectRecord, vm_spec: AzureEditionVMSpec, azure: Any, vm: Any,
                          observe: bool) -> Any:  # fmt: skip
        """One round of capability checks on ``vm`` (read with its instance view); writes no status."""
        identity = azure_specs.vm_identity(rec.owner, vm_spec.azure)
        key, kube, config = self.services.state_key, self.services.kube, self.config
        return await run_checks(
            spec=vm_spec, namespace=rec.namespace, name=rec.name, compute=azure.compute,
            vm_name=identity.vm_name, memory=self._memory(rec), emit=lambda *event: post(rec.body, *event),
            now=now(), owner=rec.owner, known_vm=rec.observed_vm, network=azure.network,
            extended_nic=identity.extended_nic_name, assess_token=sealed(key, rec, ASSESSED_ANNOTATION), vm=vm,
            patches=PatchSummary.from_json(sealed(key, rec, PATCHES_ANNOTATION)),
            calendar=await calendar_source.calendar(
                kube.core, config.credentials_namespace, config.hotpatch_calendar_configmap),
            read_secret=lambda secret: kube.tls_secret(rec.namespace, secret), observe=observe,
        )  # fmt: skip

    async def _first_checks(self, rec: ObjectRecord, observation: Observation, observe: bool) -> Observation:
        """The checks folded into the pass that provisioned (or resumed), on the pass's own read of the VM:
        the one status write already says Ready, and a restart computes what the checks wrote before."""
        try:
            vm_spec = AzureEditionVMSpec.model_validate(rec.spec)
            azure = (await self._azure(rec, vm_spec)).for_subscription(vm_spec.azure.subscription_id)
            result = await self._run_checks(rec, vm_spec, azure, rec.vm_model, observe)
        except Exception as err:  # any failure: the next check round (soon) tries again
            rec.owner.logger(__name__).info("first check deferred to the next check round: %s", err)
            rec.next_check = self.clock() + vocab.TRANSIENT_BASE_SECONDS
            return observation
        return result.observed(observation)

    # ------------------------------------------------------------------ the check round

    async def _check_round(self, rec: ObjectRecord) -> None:
        """Every checkInterval (jittered): one VM GET with its instance view; a pass at once when it says
        the VM is not as the spec says; else the capability checks, then status (only what changed).
        A round that fails on Kubernetes is not counted: it runs again after the back-off."""
        clock = self.clock()
        planned = clock + jittered(rec.check_interval())
        rec.next_check = await self._checked(rec, clock) or planned

    async def _checked(self, rec: ObjectRecord, clock: float) -> float | None:
        """The round; when the next one is due if not after a whole interval (Azure said "later")."""
        observe, log = rec.policy is ManagementPolicy.OBSERVE, rec.owner.logger(__name__)
        vm_spec = AzureEditionVMSpec.model_validate(rec.spec)
        identity = azure_specs.vm_identity(rec.owner, vm_spec.azure)
        try:
            azure = (await self._azure(rec, vm_spec)).for_subscription(vm_spec.azure.subscription_id)
            try:
                vm = await azure.compute.virtual_machines.get(
                    vm_spec.azure.resource_group, identity.vm_name, expand="instanceView"
                )
            except AzureError as err:
                failure = from_exception(err)
                if failure.status == 404:  # deleted outside: the pass recreates or reports it
                    rec.drift, rec.next_pass, rec.rank = ["the VM was deleted"], clock, Rank.RESUME
                    return None
                raise failure from err
            differs = needs_pass(vm, vm_spec, identity)
            if observe:  # a pass reports what differs and corrects nothing: once per new difference
                new, rec.reported = differs != rec.reported, differs
                differs = (differs or ["the differences are gone"]) if new else []
            if differs:
                log.info("VirtualMachine/%s differs from the spec (%s): a pass follows", identity.vm_name,
                         "; ".join(differs))  # fmt: skip
                rec.drift, rec.next_pass, rec.rank = differs, clock, Rank.RESUME
                return None
            result = await self._run_checks(rec, vm_spec, azure, vm, observe)
        except NotPermitted as err:  # tenancy: the policy changed after the VM was created
            log.warning("checks skipped: %s", err)
            metrics.forget(rec.namespace, rec.name)
            return None
        except (AzureError, AzurePermanentError, AzureRetryableError) as err:
            mapped = from_exception(err)
            metrics.RECONCILE_ERRORS.labels(reason=vocab.metric_reason(mapped.reason)).inc()
            log.warning("check deferred (%s): %s", mapped.code, mapped.message)
            if isinstance(
                mapped, AzureRetryableError
            ):  # this VM's checks only (Azure's per-resource buckets)
                return clock + max(mapped.retry_after or 0.0, vocab.TRANSIENT_BASE_SECONDS)
            return None
        await self._publish(
            rec, result.observed(Observation(rec.generation, frozenset(vm_spec.capabilities)))
        )
        return None

    # ------------------------------------------------------------------ assess

    async def _assess(self, rec: ObjectRecord) -> None:
        """One assessPatches for the token; the answer is sealed on the object and lands in status."""
        token, key, kube = rec.assess_token or "", self.services.state_key, self.services.kube
        if not token or sealed(key, rec, ASSESSED_ANNOTATION) == token:
            rec.assess_token = None
            return
        if problem := annotation_token_problem(token):  # admission refuses it; never copied into status
            rec.owner.logger(__name__).error("assess token refused: %s", problem)
            rec.assess_token = None
            return
        vm_spec, failure = AzureEditionVMSpec.model_validate(rec.spec), None
        try:
            azure = (await self._azure(rec, vm_spec)).for_subscription(vm_spec.azure.subscription_id)
            assessed, per_patch = await azure_patches.assess_patches(
                azure.compute, azure_specs.vm_identity(rec.owner, vm_spec.azure), now()
            )
        except AzureRetryableError as err:
            rec.assess_due = self.clock() + (err.retry_after or vocab.TRANSIENT_BASE_SECONDS)
            return
        except (NotPermitted, AzurePermanentError) as err:
            failure = getattr(err, "message", None) or str(err)
        record = {ASSESSED_ANNOTATION: sealing.seal(key, rec.uid, ASSESSED_ANNOTATION, token)}
        if not failure:  # the checks' per-patch data, sealed like the token
            record[PATCHES_ANNOTATION] = sealing.seal(key, rec.uid, PATCHES_ANNOTATION, per_patch.to_json())
        self._annotated(rec, await kube.annotate(rec.namespace, rec.name, record))
        rec.written.update(record)
        rec.assess_token = None
        if failure:
            post(rec.body, "Warning", ASSESS_FAILED_EVENT, assess_event_message(token, failure))
            return
        old = rec.status
        new = {**old, "hotpatch": {**(old.get("hotpatch") or {}), **assessed, "lastAssessToken": token}}
        await publish(kube, rec.body, old, new, written=lambda version: self._wrote(rec, version))
        rec.status = new
        post(rec.body, "Normal", "PatchAssessmentCompleted", assess_event_message(token, (
            f"{assessed.get('assessmentState')}, {assessed.get('criticalAndSecurityPatchCount')} critical/security, "
            f"{assessed.get('otherPatchCount')} other patches")))  # fmt: skip

    # ------------------------------------------------------------------ delete

    async def delete(self, body: Mapping[str, Any]) -> float | None:
        """Remove (Delete) or disown (Orphan) the Azure resources; seconds until trying again, or None
        when the finalizer may go. Never blocks on Azure; always finishes (nothing there: released with
        a Warning). Under a policy other than Full, Azure is left as it is, without a call."""
        rec = self._record(body)
        self.seen(body)
        rec.deleting = True
        self.schedule.forget(rec.uid)
        await self.idle(rec.uid)  # the step in flight first: its state is the freshest
        kube, log = self.services.kube, rec.owner.logger(__name__)
        await publish(kube, rec.body, rec.status, {**rec.status, "phase": "Deleting"})
        rec.status = {**rec.status, "phase": "Deleting"}
        if rec.policy is not ManagementPolicy.FULL:
            post(rec.body, "Normal", "AzureLeftAsIs", f"spec.managementPolicy is {rec.policy}: the Azure "
                 "resources were left as they are (no Azure call); the finalizer is released")  # fmt: skip
            return self._released(rec)
        try:
            vm_spec = AzureEditionVMSpec.model_validate(rec.spec)
        except ValueError:  # an object that never validated never reached Azure
            return self._released(rec)
        identity = azure_specs.vm_identity(rec.owner, vm_spec.azure)
        state = self._state(rec)
        try:
            azure = await self._azure(rec, vm_spec)
        except NotPermitted as err:  # never touch what the namespace may not use; Azure is left as is
            post(rec.body, "Warning", vocab.NOT_PERMITTED, f"Azure left alone: {err}")
            return self._released(rec)
        try:
            report = await azure_provision.delete_vm(azure, identity, vm_spec.deletion_policy, state=state)
        except InProgress as progress:
            await self._save_state(rec)
            log.info("%s: %s", vocab.DELETING, progress)
            return progress.retry_after
        except (AzureRetryableError, AzurePermanentError) as err:
            await self._save_state(rec)
            never_created = state.vm_id is None and state.operation is None
            if err.code in azure_provision.NOTHING_THERE_CODES or (
                never_created and err.reason in vocab.REFUSED_ON_DELETE
            ):
                post(rec.body, "Warning", "NothingToDelete", f"released without deleting: {err.message}")
                return self._released(rec)
            if isinstance(err, AzureRetryableError):
                rec.retry += 1
                return reconciler.transient_delay(err.retry_after, rec.retry)
            post(rec.body, "Warning", err.reason, err.message)
            return vocab.TRANSIENT_CAP_SECONDS
        if report.skipped:
            post(
                rec.body,
                "Warning",
                "NotOurs",
                f"left alone (owned by another resource): {', '.join(report.skipped)}",
            )
        log.info("Azure resources %s", "deleted" if vm_spec.deletion_policy == "Delete" else "orphaned")
        return self._released(rec)

    def _released(self, rec: ObjectRecord) -> None:
        self.forget(rec.uid)
        return None
