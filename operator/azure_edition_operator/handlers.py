"""kopf wiring only: one idea per handler; the work happens in ``reconciler``, ``checks`` and ``azure``
(no Azure call here), and status and Events leave through ``publish``.

kopf keeps its own progress in annotations under ``kopf.azureedition.io/`` (not in status, which is
the public contract in docs/reference.md), and adds the finalizer ``azureedition.io/finalizer``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import kopf
from azure.core.exceptions import AzureError

from . import calendar_source, metrics, metrics_server, reconciler, rollout, sealing
from . import reasons as vocab
from .api.v1alpha1 import (
    ASSESS_ANNOTATION,
    ASSESS_FAILED_EVENT,
    FINALIZER,
    GROUP,
    PLURAL,
    VERSION,
    AzureEditionVMSpec,
    annotation_token_problem,
    assess_event_message,
    parse_duration,
)
from .azure import clients as azure_clients
from .azure import errors as azure_errors
from .azure import extended as azure_extended
from .azure import patches as azure_patches
from .azure import placement as azure_placement
from .azure import provision as azure_provision
from .azure import specs as azure_specs
from .azure.driver import InProgress, OperationState
from .azure.errors import AzurePermanentError, AzureRetryableError
from .azure.settings import AzureSettings
from .checks import smb_probe
from .checks.runner import CheckMemory, run_checks
from .config import OperatorConfig
from .credentials import CredentialClients, permitted_clients
from .diffbase import MemoryDiffBaseStorage
from .hotpatch_calendar import PatchSummary
from .images import ImageReference
from .kube import Conflict, Kube
from .publish import post, publish
from .reconciler import CredentialsLoader, reconcile_pass
from .slots import Rank, Slots
from .status import Observation, compute_status
from .tenancy import NotPermitted

RESOURCE = (GROUP, VERSION, PLURAL)
KOPF_PREFIX = f"kopf.{GROUP}"
DIFFBASE = MemoryDiffBaseStorage(ignored_prefixes=(KOPF_PREFIX,))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Settings set once: where kopf keeps its state, how it posts Events, our clients."""
    settings.persistence.finalizer = FINALIZER
    # kopf hides annotations under its own prefix from change detection, so it must not be the
    # user-facing azureedition.io/ (where azureedition.io/assess-patches has to be seen).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    # The last-handled spec in memory, not an annotation: one Kubernetes write less per object
    # (diffbase.py says what a restart costs instead: one pass per object that writes nothing).
    settings.persistence.diffbase_storage = DIFFBASE
    settings.posting.loggers = False  # only our explicit Events, never one per log line
    settings.watching.server_timeout = 300
    config = memo.setdefault("config", OperatorConfig())  # `kopf run -m` (tests): from the environment
    smb_probe.trust_roots(config.smb_trust_bundle)
    memo.kube = await Kube.connect()
    # The key that authenticates the operator's state on the objects (sealing.py): a Secret of the
    # operator's own namespace, made once by whichever replica starts first.
    memo.state_key = await memo.kube.state_key(config.credentials_namespace, config.state_key_secret)
    memo.observed = {}  # uid → status.vm as this process last read it from Azure (addresses for the probe)
    memo.provisioned = {}  # uid → the generation whose pass left the VM provisioned: checks may run
    memo.busy = set()  # uids whose reconcile handler runs (it waits for Azure itself): resync stays out
    memo.checked_at = {}  # uid → monotonic time of the last capability check round
    memo.check_memory = {}  # uid → CheckMemory, shared by the handler's first check and the daemon
    memo.resync_due = {}  # uid → monotonic time of its next resync pass (sooner after a handed-back error)
    # Passes that talk to Azure at once (their waits for Azure do not count), the furthest along first:
    # a burst of a thousand objects then finishes object after object, at bounded memory; namespaces
    # take turns at equal rank, so one tenant's burst does not starve another's new object.
    memo.passes = Slots(config.max_concurrent_reconciles)
    metrics.watch_slots(memo.passes)
    azure_settings = memo.get("azure_settings") or AzureSettings.from_env()
    memo.azure = azure_clients.AzureClients.from_settings(azure_settings, metrics.record_azure_request)
    memo.tenancy = CredentialClients(  # tenancy (issue 14): clients per tenant credential
        azure_settings,
        memo.azure,
        lambda name: memo.kube.operator_secret(config.credentials_namespace, name),
        metrics.record_azure_request,
    )
    memo.metrics_server = await metrics_server.start(config)  # after Kube.connect: reviews use its config
    memo.rollout = rollout.start(  # the baseline rollout's own loop (rollout.py), beside the handlers
        memo.kube, config, lambda namespace, spec: _azure_for(memo, namespace, spec),
        lambda meta: PatchSummary.from_json(_sealed(memo, meta, PATCHES_ANNOTATION)),
    )  # fmt: skip


@kopf.on.cleanup()
async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    if memo.get("rollout") is not None:
        await memo.rollout.stop()
    await memo.tenancy.close()  # closes memo.azure too
    if memo.get("metrics_server") is not None:
        await memo.metrics_server.close()
    await memo.kube.close()


async def _azure_for(memo: kopf.Memo, namespace: str, vm_spec: AzureEditionVMSpec) -> Any:
    """Tenancy (issue 14): the only way to Azure clients; ``NotPermitted`` before any Azure call."""
    return await permitted_clients(memo.kube, memo.tenancy, namespace, vm_spec, memo.config.single_tenant)


def _owner(meta: Mapping[str, Any], memo: kopf.Memo) -> azure_specs.Owner:
    return azure_specs.Owner(meta["namespace"], meta["name"], meta["uid"], memo.config.cluster_id)


STATE_ANNOTATION = f"{KOPF_PREFIX}/azure-state"
"""The driver's memory (operation in flight, vmId last seen, the VM's image): under kopf's prefix, so
writing it is not a spec change, and in metadata, not status: status is output, never input. Sealed
(sealing.py): a value the operator did not write for this object reads as no state at all."""


def _sealed(memo: kopf.Memo, meta: Mapping[str, Any], annotation: str) -> str | None:
    """The payload of one of the operator's annotations, if the operator wrote it for this object."""
    raw = (meta.get("annotations") or {}).get(annotation)
    return sealing.unseal(memo.state_key, meta["uid"], annotation, raw)


def _load_state(memo: kopf.Memo, meta: Mapping[str, Any]) -> OperationState:
    return OperationState.loads(_sealed(memo, meta, STATE_ANNOTATION))


def _save_state(memo: kopf.Memo, meta: Mapping[str, Any], patch: kopf.Patch, state: OperationState) -> None:
    """Write the annotation only when it changed (never PUT what has not changed); a value that did not
    verify is replaced (or removed when there is nothing to remember)."""
    old = (meta.get("annotations") or {}).get(STATE_ANNOTATION)
    remembered = state.operation or state.vm_id or state.image
    new = sealing.seal(memo.state_key, meta["uid"], STATE_ANNOTATION, state.dumps()) if remembered else None
    if new != old:
        patch.metadata.annotations[STATE_ANNOTATION] = new


async def _run_passes(
    body: kopf.Body, spec: Mapping[str, Any], meta: Mapping[str, Any], status: Mapping[str, Any],
    patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, retry: int,
) -> reconciler.Outcome:  # fmt: skip
    """Passes until Azure is done (or needs a person): Azure toward the spec, then the first capability
    check, then status (only what changed, one write when nothing took long), the driver's state, Events."""
    owner = _owner(meta, memo)
    kube: Kube = memo.kube
    secret_name = (spec.get("adminCredentialsSecretRef") or {}).get("name", "")
    state = _load_state(memo, meta)
    azure_events: list[tuple[str, str, str]] = []  # e.g. VMRecreated, posted whatever the pass ends in
    last_read: dict[str, Any] = {}  # the VM as the last pass read it (the folded checks need no GET)

    async def load_credentials() -> Any:
        return await kube.admin_credentials(owner.namespace, secret_name)

    async def ensure(
        vm_spec: AzureEditionVMSpec, image: ImageReference, creds: CredentialsLoader
    ) -> azure_provision.ObservedVM:
        identity = azure_specs.vm_identity(owner, vm_spec.azure)
        azure = await _azure_for(memo, owner.namespace, vm_spec)  # NotPermitted before any Azure call
        await azure_extended.preflight(azure, vm_spec)  # PrerequisitesNotMet before any PUT (cached reads)
        if state.vm_id is None:  # before the first PUT: ImageNotOffered when the region lacks the image
            await azure_placement.check_image(azure, vm_spec, image)
        try:
            observed = await azure_provision.ensure_vm(
                azure,
                identity,
                vm_spec,
                image,
                creds,
                state=state,
                events=azure_events,
                instance_view=True,  # the same one GET: power state too, so a resume rewrites nothing
            )  # fmt: skip
        except AzurePermanentError as err:  # a refused size: name the family's sizes the region offers
            raise await azure_placement.with_size_advice(azure, vm_spec, err)  # noqa: B904 (same error)
        last_read["vm"] = observed.model
        return observed

    current = dict(status)  # what status holds now (for the patch only: decisions never read it)
    started = time.monotonic()
    memo.busy.add(owner.uid)
    rank = Rank.RESUME if state.operation is not None or retry else Rank.START
    try:
        while True:
            before = state.operation
            async with memo.passes.hold(rank, owner.namespace):  # tenants take turns
                outcome = await reconcile_pass(
                    spec, meta.get("generation", 0), ensure, load_credentials,
                    memo.config.missing_secret_retry, retry=retry, now=now(),
                )  # fmt: skip
            if outcome.observation.vm is not None:
                memo.observed[owner.uid] = dict(outcome.observation.vm)
            failed = outcome.observation.vm_condition or outcome.observation.image_condition
            kind = vocab.kind_of(failed.reason) if failed is not None and not failed.is_true else None
            elapsed = time.monotonic() - started
            delay = reconciler.inline_delay(
                kind, outcome.retry_after, elapsed=elapsed, budget=memo.config.inline_wait,
                first_poll=state.operation is not None and state.operation != before,
            )  # fmt: skip
            if delay is None:
                break
            if reconciler.report_progress(elapsed, delay, memo.config.progress_report_after):
                # at most once a minute while an operation runs (the message counts minutes)
                new = compute_status(current, outcome.observation, now())
                await publish(kube, body, current, new, actions=azure_events, errors=outcome.events)
                current, azure_events[:] = new, []
            if kind is vocab.Kind.TRANSIENT:
                retry += 1
            last_read.clear()  # not held while waiting; the next pass reads again
            await asyncio.sleep(delay)
            rank = Rank.RESUME
            if await kube.deletion_requested(owner.namespace, owner.name):
                break  # kopf runs the delete handler next; a delete supersedes what runs
        observation = outcome.observation
        memo.provisioned.pop(owner.uid, None)
        if _provisioned(observation):
            memo.provisioned[owner.uid] = meta.get("generation")
            async with memo.passes.hold(Rank.CHECK, owner.namespace):
                observation = await _with_first_checks(
                    body, spec, meta, memo, observation, logger, last_read.get("vm")
                )
    finally:  # busy until the folded checks are done: the daemon's round must not run beside them
        memo.busy.discard(owner.uid)  # (Azure runs one Run Command per VM at a time: Conflict)
    _save_state(memo, meta, patch, state)
    new = compute_status(current, observation, now())
    await publish(kube, body, current, new, actions=azure_events, errors=outcome.events)
    vm_condition = outcome.observation.vm_condition or outcome.observation.image_condition
    if (
        vm_condition is not None
        and not vm_condition.is_true
        and vocab.kind_of(vm_condition.reason) in (vocab.Kind.TRANSIENT, vocab.Kind.USER)
    ):
        metrics.RECONCILE_ERRORS.labels(reason=vocab.metric_reason(vm_condition.reason)).inc()
        logger.warning("%s: %s", vm_condition.reason, vm_condition.message)  # with Azure's correlation id
    if vm_condition is not None and vm_condition.reason == vocab.NOT_PERMITTED:
        metrics.forget(owner.namespace, owner.name)  # a refused namespace (any namespace) holds no series
    else:
        metrics.set_summary(owner.namespace, owner.name, new)
    metrics.record_reconcile(_failed_kind(outcome), time.monotonic() - started)
    return outcome


def _provisioned(observation: Observation) -> bool:
    return bool(observation.vm_condition and observation.vm_condition.is_true and observation.capabilities)


async def _with_first_checks(
    body: kopf.Body, spec: Mapping[str, Any], meta: Mapping[str, Any], memo: kopf.Memo,
    observation: Observation, logger: logging.Logger, vm: Any = None,
) -> Observation:  # fmt: skip
    """The capability checks folded into the pass that provisioned (or resumed): the one status write
    already says Ready, and a restart computes the same status the checks wrote before it. A check that
    fails here is left to the ``keep_checking`` daemon, which then runs it soon."""
    try:
        result = await _run_checks(body, spec, meta, memo, vm)
    except Exception as err:  # any failure: the daemon retries on its own cadence
        logger.info("first check deferred to the check daemon: %s", err)
        return observation
    memo.checked_at[meta["uid"]] = time.monotonic()
    return result.observed(observation)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def reconcile(
    body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
    memo: kopf.Memo, logger: logging.Logger, retry: int = 0, **_: Any,
) -> None:  # fmt: skip
    """Bring Azure to the spec and report it in status; waits for Azure itself (up to AEO_INLINE_WAIT),
    safe to repeat."""
    outcome = await _run_passes(body, spec, meta, status, patch, memo, logger, retry)
    if outcome.permanent:
        raise kopf.PermanentError(outcome.permanent)
    if reconciler.handed_back(_failed_kind(outcome), outcome.retry_after):
        _schedule_resync(memo, meta["uid"], outcome.retry_after)
        logger.info("%s; the next spec edit or the resync timer tries again", _waiting(outcome))
        return
    if outcome.retry_after is not None:
        delay = outcome.retry_after * random.uniform(1.0, 1.2)  # a fleet must not come back in lockstep
        raise kopf.TemporaryError(_waiting(outcome), delay=delay)
    logger.info("reconciled: %s", status.get("phase"))


IN_PROGRESS = "in progress"  # kopf logs a TemporaryError at ERROR; __main__ lowers these to INFO


def _waiting(outcome: reconciler.Outcome) -> str:
    """The TemporaryError text: an Azure operation that runs is progress, not an error."""
    failed = outcome.observation.vm_condition or outcome.observation.image_condition
    reason = failed.reason if failed else "Unknown"
    if vocab.kind_of(reason) is vocab.Kind.PROGRESS:
        return f"{IN_PROGRESS}: {reason} (see status.conditions)"
    return f"waiting after {reason} (see status.conditions)"


def _failed_kind(outcome: reconciler.Outcome) -> vocab.Kind | None:
    failed = outcome.observation.vm_condition or outcome.observation.image_condition
    return vocab.kind_of(failed.reason) if failed is not None and not failed.is_true else None


def _schedule_resync(memo: kopf.Memo, uid: str, after: float | None = None) -> None:
    interval = memo.config.resync_interval
    memo.resync_due[uid] = time.monotonic() + (interval if after is None else min(after, interval))


def _handler_pending(meta: Mapping[str, Any]) -> bool:
    """kopf is still retrying ``reconcile`` (its progress annotation is there): the resync stays out of its way."""
    annotations = meta.get("annotations") or {}
    return any(k.startswith(f"{KOPF_PREFIX}/reconcile") for k in annotations)


async def resync(
    body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
    memo: kopf.Memo, logger: logging.Logger, retry: int = 0, **_: Any,
) -> None:  # fmt: skip
    """Every resyncInterval: the same pass as ``reconcile`` (GETs; writes only on drift), so a VM resized,
    retagged, stopped or deleted outside the operator is noticed even when nothing in Kubernetes changed."""
    uid = meta["uid"]
    if meta.get("deletionTimestamp") or _handler_pending(meta) or uid in memo.busy:
        return
    due = memo.resync_due.get(uid)
    if due is None:  # first tick in this process (the resume pass has just run): a full interval
        _schedule_resync(memo, uid)
        return
    if time.monotonic() < due:
        return
    outcome = await _run_passes(body, spec, meta, status, patch, memo, logger, retry)
    # Work started (a VM recreated) or an error: the next pass after this delay, not the whole interval.
    _schedule_resync(memo, uid, None if outcome.permanent else outcome.retry_after)


RESYNC_TIMER_ID = "resync"
RESYNC_TICK = 30.0
"""How often the resync timer looks whether an object is due (a dictionary lookup, no API call): the
resolution of a handed-back retry."""


def register_resync(interval: float) -> None:
    """The resync timer (interval from the operator's settings, known only after parsing flags): it ticks
    often and passes only when an object is due (after the interval, or sooner after a handed-back error)."""
    tick = min(interval, RESYNC_TICK)
    kopf.timer(*RESOURCE, interval=tick, initial_delay=tick, id=RESYNC_TIMER_ID)(resync)


def _forget(memo: kopf.Memo, meta: Mapping[str, Any]) -> None:
    """Drop what this process remembers about an object that is gone, its metric series included: every
    path out of ``delete`` comes here, so a create/delete loop leaves nothing behind."""
    uid = meta["uid"]
    for per_object in (memo.observed, memo.provisioned, memo.checked_at, memo.check_memory, memo.resync_due):
        per_object.pop(uid, None)
    DIFFBASE.forget(uid)
    metrics.forget(meta["namespace"], meta["name"])


# Azure refuses a delete this way when the operator may not (or no longer) see anything there.
_REFUSED = frozenset({"AuthorizationFailed", "LinkedAuthorizationFailed", "SubscriptionNotFound"})


@kopf.on.delete(*RESOURCE)
async def delete(
    body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
    memo: kopf.Memo, logger: logging.Logger, retry: int = 0, **_: Any,
) -> None:  # fmt: skip
    """Remove (Delete) or disown (Orphan) the Azure resources, then let the finalizer go.

    Never blocks: a delete in flight comes back after Retry-After. Always finishes: when Azure says
    nothing can exist (resource group or subscription gone, or nothing ever created), the finalizer
    is released with a Warning Event.
    """
    await publish(memo.kube, body, status, {**status, "phase": "Deleting"})
    try:
        vm_spec = AzureEditionVMSpec.model_validate(spec)
    except Exception:  # an object that never validated never reached Azure
        _forget(memo, meta)
        return
    identity = azure_specs.vm_identity(_owner(meta, memo), vm_spec.azure)
    state = _load_state(memo, meta)
    try:
        azure = await _azure_for(memo, meta["namespace"], vm_spec)  # tenancy
    except NotPermitted as err:  # tenancy: never touch what the namespace may not use; Azure is left as is
        post(body, "Warning", vocab.NOT_PERMITTED, f"Azure left alone: {err}")
        _forget(memo, meta)
        return
    try:
        report = await azure_provision.delete_vm(azure, identity, vm_spec.deletion_policy, state=state)
    except InProgress as progress:
        _save_state(memo, meta, patch, state)
        raise kopf.TemporaryError(f"{IN_PROGRESS}: {progress}", delay=progress.retry_after) from None
    except (AzureRetryableError, AzurePermanentError) as err:
        _save_state(memo, meta, patch, state)
        never_created = state.vm_id is None and state.operation is None
        if err.code in azure_provision.NOTHING_THERE_CODES or (never_created and err.reason in _REFUSED):
            post(body, "Warning", "NothingToDelete", f"released without deleting: {err.message}")
            _forget(memo, meta)
            return
        if isinstance(err, AzureRetryableError):
            raise kopf.TemporaryError(f"Azure asked us to retry ({err.code})",
                                      delay=reconciler.transient_delay(err.retry_after, retry)) from err  # fmt: skip
        post(body, "Warning", err.reason, err.message)
        raise kopf.TemporaryError(f"delete failed ({err.code}): {err.message}", delay=60) from err
    _forget(memo, meta)
    if report.skipped:
        post(
            body, "Warning", "NotOurs", f"left alone (owned by another resource): {', '.join(report.skipped)}"
        )
    logger.info("Azure resources %s", "deleted" if vm_spec.deletion_policy == "Delete" else "orphaned")


# ----------------------------------------------------------------------------- periodic checks

ASSESSED_ANNOTATION = f"{KOPF_PREFIX}/assessed"
PATCHES_ANNOTATION = f"{KOPF_PREFIX}/patch-assessment"
"""The per-patch counts of the operator's last assessPatches (``hotpatch_calendar.PatchSummary``): the
operator's memory like ``assessed``; the checks use it while it is the VM's latest assessment."""
"""The last assess token answered (assessed, or refused for good): the operator's memory, under kopf's
prefix and sealed like the driver's state (a forged answer reads as none, so it cannot suppress an
assessment); ``status.hotpatch.lastAssessToken`` reports it and is never read back."""


def _checks_due(memo: kopf.Memo, meta: Mapping[str, Any]) -> bool:
    """Check only a VM this process saw provisioned for the current spec (no race with the reconcile
    pass). From memory, not from status: whoever can write status must not steer the checks."""
    return meta.get("generation") is not None and memo.provisioned.get(meta["uid"]) == meta["generation"]


WAITING_LOOK_SECONDS = 10.0
"""How often a check daemon looks again while its object's reconcile pass has not finished."""


@kopf.daemon(*RESOURCE, cancellation_timeout=10.0)
async def keep_checking(
    stopped: kopf.DaemonStopped, body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status,
    memo: kopf.Memo, logger: logging.Logger, **_: Any,
) -> None:  # fmt: skip
    """Every checkInterval (jittered): Hotpatch state and the SMB over QUIC certificate, into status."""
    delay = random.uniform(0.1, 1.0) * min(
        parse_duration(spec.get("checkInterval", "10m")).total_seconds(), 1.0
    )
    while not stopped:
        await stopped.wait(delay)
        if stopped:
            break
        interval = parse_duration(spec.get("checkInterval", "10m")).total_seconds()
        delay = interval * random.uniform(
            0.9, 1.1
        )  # ±10%: a fleet created together must not poll in lockstep
        uid = meta["uid"]
        if not _checks_due(memo, meta) or uid in memo.busy:  # provisioned implies memo.observed
            # Waiting for the reconcile pass (a local check, no API call). The pass runs the first
            # checks itself, so this only bounds how late a first check it deferred starts. Each wake-up
            # costs kopf a task and a timer, and all objects of a burst wait at once: waking every
            # second was a third of the operator's CPU with 10,000 objects (bench/README.md).
            delay = random.uniform(0.5, 1.0) * min(interval, WAITING_LOOK_SECONDS)
            continue
        since = time.monotonic() - memo.checked_at.get(uid, -1e18)
        if since < 0.9 * interval:  # the reconcile pass checked already (at create, after a restart)
            delay = max(0.5, delay - since)
            continue
        try:
            await _check_round(body, spec, meta, status, memo)
        except NotPermitted as err:  # tenancy: the policy changed after the VM was created
            logger.warning("checks skipped: %s", err)
            metrics.forget(meta["namespace"], meta["name"])  # what they said is no longer looked after
        except Conflict as err:
            logger.debug("check round raced with another write: %s", err)
            delay = min(delay, 5.0)
        except AzurePermanentError as err:  # the VM's owner tag is not ours: touch nothing
            metrics.RECONCILE_ERRORS.labels(reason=vocab.metric_reason(err.reason)).inc()
            logger.warning("check skipped (%s): %s", err.code, err.message)
        except AzureError as err:
            mapped = azure_errors.from_exception(err)
            metrics.RECONCILE_ERRORS.labels(reason=vocab.metric_reason(mapped.reason)).inc()
            if isinstance(mapped, AzureRetryableError):
                delay = max(mapped.retry_after or 0.0, 5.0)
            logger.warning("check deferred (%s): %s", mapped.code, mapped.message)
        except Exception:  # a check must never kill the daemon; the next round tries again
            metrics.RECONCILE_ERRORS.labels(reason="Other").inc()
            logger.exception("check failed; retrying next round")


async def _run_checks(
    body: kopf.Body, spec: Mapping[str, Any], meta: Mapping[str, Any], memo: kopf.Memo, vm: Any = None
) -> Any:
    """One round of capability checks (reads Azure, may restore patch settings); writes no status.
    ``vm``: the VM as the caller has just read it with its instance view (None: the round GETs it)."""
    vm_spec = AzureEditionVMSpec.model_validate(spec)
    identity = azure_specs.vm_identity(_owner(meta, memo), vm_spec.azure)
    azure = (await _azure_for(memo, meta["namespace"], vm_spec)).for_subscription(
        vm_spec.azure.subscription_id
    )
    memory = memo.check_memory.get(meta["uid"]) or memo.check_memory.setdefault(
        meta["uid"], CheckMemory(memo.config.in_guest_interval, memo.config.in_guest_min_interval)
    )
    return await run_checks(
        spec=vm_spec, namespace=meta["namespace"], name=meta["name"], compute=azure.compute,
        vm_name=identity.vm_name, memory=memory, emit=lambda *event: post(body, *event), now=now(),
        owner=_owner(meta, memo), known_vm=memo.observed.get(meta["uid"]), network=azure.network,
        extended_nic=identity.extended_nic_name,
        assess_token=_sealed(memo, meta, ASSESSED_ANNOTATION), vm=vm,
        patches=PatchSummary.from_json(_sealed(memo, meta, PATCHES_ANNOTATION)),
        calendar=await calendar_source.calendar(
            memo.kube.core, memo.config.credentials_namespace, memo.config.hotpatch_calendar_configmap),
        read_secret=lambda secret: memo.kube.tls_secret(meta["namespace"], secret),
    )  # fmt: skip


async def _check_round(
    body: kopf.Body, spec: Mapping[str, Any], meta: Mapping[str, Any], status: Mapping[str, Any],
    memo: kopf.Memo,
) -> None:  # fmt: skip
    """The daemon's round: checks, then status (only what changed, refused if the object moved on)."""
    old, version = dict(status), meta["resourceVersion"]  # as read before the round (kopf's meta is live)
    result = await _run_checks(body, spec, meta, memo)
    memo.checked_at[meta["uid"]] = time.monotonic()
    capabilities = frozenset(AzureEditionVMSpec.model_validate(spec).capabilities)
    observation = result.observed(Observation(int(old.get("observedGeneration") or 0), capabilities))
    new = compute_status(old, observation, now())
    await publish(memo.kube, body, old, new, resource_version=version)
    metrics.set_summary(meta["namespace"], meta["name"], new)


@kopf.on.field(*RESOURCE, field=("metadata", "annotations", ASSESS_ANNOTATION))
async def assess_patches(
    new: Any, body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo,
    **_: Any,
) -> None:  # fmt: skip
    """``azureedition.io/assess-patches: <token>`` → one assessPatches; the token lands in status.hotpatch.

    A permanent failure is announced as a Warning Event ``PatchAssessmentFailed`` whose message
    starts with ``assessment <token>:`` (``kubectl aevm assess`` waits for either).
    """
    token = str(new or "")
    if not token or _sealed(memo, meta, ASSESSED_ANNOTATION) == token:
        return
    if annotation_token_problem(token):  # input (issue 14): admission refuses it; never copied into status
        raise kopf.PermanentError(annotation_token_problem(token))
    if not _checks_due(memo, meta):
        raise kopf.TemporaryError("the VM is not provisioned yet; assessing once it is", delay=10)
    vm_spec, failure = AzureEditionVMSpec.model_validate(spec), None
    try:
        azure = (await _azure_for(memo, meta["namespace"], vm_spec)).for_subscription(
            vm_spec.azure.subscription_id
        )
        assessed, per_patch = await azure_patches.assess_patches(
            azure.compute, azure_specs.vm_identity(_owner(meta, memo), vm_spec.azure), now()
        )
    except AzureRetryableError as err:
        raise kopf.TemporaryError(
            f"assessPatches deferred ({err.code})", delay=err.retry_after or 30
        ) from err
    except (NotPermitted, AzurePermanentError) as err:
        failure = getattr(err, "message", None) or str(err)
    answered = sealing.seal(memo.state_key, meta["uid"], ASSESSED_ANNOTATION, token)
    record = (
        {}
        if failure
        else {  # the checks' per-patch data, sealed like the token
            PATCHES_ANNOTATION: sealing.seal(
                memo.state_key, meta["uid"], PATCHES_ANNOTATION, per_patch.to_json()
            )
        }
    )
    await memo.kube.annotate(meta["namespace"], meta["name"], {ASSESSED_ANNOTATION: answered, **record})
    if failure:
        post(body, "Warning", ASSESS_FAILED_EVENT, assess_event_message(token, failure))
        raise kopf.PermanentError(failure)
    old = dict(status)
    await publish(memo.kube, body, old, {**old, "hotpatch": {**(old.get("hotpatch") or {}), **assessed,
                                                             "lastAssessToken": token}})  # fmt: skip
    post(body, "Normal", "PatchAssessmentCompleted", assess_event_message(token, (
        f"{assessed.get('assessmentState')}, {assessed.get('criticalAndSecurityPatchCount')} critical/security, "
        f"{assessed.get('otherPatchCount')} other patches")))  # fmt: skip
