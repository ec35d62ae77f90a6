"""The baseline rollout at runtime: in a baseline month, inside each VM's maintenance window, installPatches
ring by ring, per namespace (the decisions are ``maintenance``'s; this is the thin shell around them).

Every ``AEO_ROLLOUT_INTERVAL`` seconds one round: LIST the AzureEditionVMs, read the rollout configuration
(rings and soak: a ConfigMap of the operator's namespace) and the rollout state (another, written only by
the operator), then per namespace: look at the VMs whose installation runs or who should be Ready again
(one instance view GET each), take ``maintenance.next_step``, start installPatches on the VMs of the
current ring whose window is open, and write ``status.maintenance`` and the ``HotpatchRollout`` condition
where they changed (through ``publish``).

Trust: the ring label is the tenant's (on its own object), everything else is the operator's. A rollout is
per namespace, so relabelling moves a VM inside its own namespace's rollout and nowhere else; whether a VM
installed, failed and is Ready again is read from Azure, never from status. The state ConfigMap survives a
restart: an installation in flight is recognised by Azure's installation activity id, never started again.
Two replicas (kopf peering) both run the loop today; the state ConfigMap's resourceVersion, written before
any installPatches is sent, lets only one of them send it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from . import calendar_source, maintenance, metrics
from . import conditions as cond
from . import hotpatch_calendar as cal
from . import reasons as vocab
from .api.v1alpha1 import GROUP, PLURAL, VERSION, AzureEditionVMSpec, CycleMonth, ManagementPolicy
from .azure import patches as azure_patches
from .azure import specs as azure_specs
from .azure.errors import AzurePermanentError, AzureRetryableError
from .clock import Clock
from .config import OperatorConfig
from .images import Capability
from .kube import Conflict, Kube
from .maintenance import Member, NamespaceRollout, RolloutConfig, StepKind, VMPhase
from .publish import post_outside_handlers, publish
from .status import condition as make_condition
from .status import conditions_of
from .tenancy import NotPermitted

log = logging.getLogger(__name__)

STATE_SUFFIX = "-state"
INSTALL_GRACE = maintenance.MAX_INSTALL + maintenance.READY_TIMEOUT
"""An installation Azure took (a new activity id) but never reported ended fails its ring after this:
longer than any ``maximumDuration`` plus a reboot. (One Azure never took is sent again:
``maintenance.NO_START_GRACE``.)"""

AzureFor = Callable[[str, AzureEditionVMSpec], Awaitable[Any]]
"""(namespace, spec) → the namespace's permitted Azure clients for the spec's subscription (tenancy)."""
PatchesOf = Callable[[Mapping[str, Any]], "cal.PatchSummary | None"]
"""An object's metadata → the operator's own (sealed) record of its last assessPatches, if any."""


def selected(namespace: str, patterns: tuple[str, ...]) -> bool:
    """kopf's namespace patterns (globs; ``!glob`` excludes); none: every namespace."""
    includes = [p for p in patterns if not p.startswith("!")]
    if any(fnmatch.fnmatchcase(namespace, p[1:]) for p in patterns if p.startswith("!")):
        return False
    return not includes or any(fnmatch.fnmatchcase(namespace, p) for p in includes)


def baseline_month_of(
    calendar: cal.Calendar, now: dt.datetime, tz: str, data: cal.PatchSummary | None
) -> cal.Month | None:
    """``now``'s month in ``tz`` when it is a baseline month (the calendar, or this month's patch data:
    the data wins); None in a hotpatch month. The data's evidence is recounted for this month, so an
    assessment of an earlier month proves nothing about this one."""
    month = cal.local_month(now, tz)
    fresh = None
    if data is not None:
        wire = [{"kbId": p.kb, "classifications": p.classification.split(", "), "publishedDate": p.published,
                 "rebootBehavior": p.reboot} for p in data.patches]  # fmt: skip
        fresh = cal.summarize(wire, data.activity_id, month, tz)
    return month if cal.month_kind(calendar, month, fresh).kind is CycleMonth.BASELINE else None


def member_of(
    obj: Mapping[str, Any], config: RolloutConfig | None
) -> tuple[Member, AzureEditionVMSpec] | None:
    """The object as a rollout member, or None when it takes no part (no window, no Hotpatch, not fully
    managed, being deleted, or a spec that does not validate)."""
    meta = obj.get("metadata") or {}
    declared = ((obj.get("spec") or {}).get("hotpatch") or {}).get("maintenanceWindow")
    if meta.get("deletionTimestamp") or not declared:
        return None  # most objects: no window, no validation (a LIST of the fleet each round stays cheap)
    try:
        spec = AzureEditionVMSpec.model_validate(obj.get("spec") or {})
    except ValueError:
        return None
    window = spec.hotpatch.maintenance_window if spec.hotpatch else None
    if window is None or Capability.HOTPATCH not in spec.capabilities:
        return None
    if spec.management_policy is not ManagementPolicy.FULL:
        return None
    ring = config.ring_of(meta.get("labels")) if config is not None else None
    return Member(meta["name"], meta["uid"], ring, maintenance.window_of(window)), spec


@dataclass
class Runner:
    kube: Kube
    config: OperatorConfig
    azure_for: AzureFor
    clock: Clock
    patches_of: PatchesOf | None = None
    task: asyncio.Task[None] | None = None

    @property
    def state_name(self) -> str:
        return self.config.rollout_configmap + STATE_SUFFIX

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:  # a round must never end the loop; the next one tries again
                log.exception("baseline rollout round failed; trying again next round")
            await asyncio.sleep(self.config.rollout_interval)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    # ------------------------------------------------------------------------- reads and writes

    async def _rollout_config(self) -> RolloutConfig | None:
        name, namespace = self.config.rollout_configmap, self.config.credentials_namespace
        try:
            found = await self.kube.core.read_namespaced_config_map(name, namespace)
        except ApiException as err:
            if err.status != 404:
                log.warning("cannot read the rollout ConfigMap %s/%s (HTTP %s)", namespace, name, err.status)
            return None
        try:
            return maintenance.parse_rollout_config(found.data or {})
        except maintenance.RolloutConfigError as err:
            log.warning("the rollout ConfigMap %s/%s is invalid (%s): no rollout", namespace, name, err)
            return None

    async def _read_state(self) -> tuple[dict[str, str], str | None]:
        try:
            found = await self.kube.core.read_namespaced_config_map(
                self.state_name, self.config.credentials_namespace
            )
        except ApiException as err:
            if err.status == 404:
                return {}, None
            raise
        return dict(found.data or {}), found.metadata.resource_version

    async def _write_state(self, data: dict[str, str], version: str | None) -> str | None:
        body = {"metadata": {"name": self.state_name,
                             "labels": {"app.kubernetes.io/name": "azure-edition-operator"}}, "data": data}  # fmt: skip
        namespace = self.config.credentials_namespace
        if version is None:
            written = await self.kube.core.create_namespaced_config_map(namespace, body)
        else:
            body["metadata"]["resourceVersion"] = version
            written = await self.kube.core.replace_namespaced_config_map(self.state_name, namespace, body)
        return written.metadata.resource_version

    # ------------------------------------------------------------------------- one round

    async def round(self) -> None:
        now = self.clock.now()
        config = await self._rollout_config()
        listed = await self.kube.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        by_namespace: dict[str, list[tuple[dict[str, Any], Member, AzureEditionVMSpec]]] = {}
        leaving: list[dict[str, Any]] = []
        for obj in listed.get("items") or []:
            namespace = obj["metadata"]["namespace"]
            if not selected(namespace, self.config.namespaces):
                continue
            found = member_of(obj, config)
            if found is None:
                if "maintenance" in (obj.get("status") or {}):
                    leaving.append(obj)
                continue
            by_namespace.setdefault(namespace, []).append((obj, *found))
        for obj in leaving:  # the window was removed: its report goes too
            await self._report(obj, None)
        saved, version = await self._read_state()
        # a namespace of ours whose windows are all gone leaves the state (the ConfigMap stays small)
        states = {
            ns: v for ns, v in saved.items() if ns in by_namespace or not selected(ns, self.config.namespaces)
        }
        calendar = await calendar_source.calendar(
            self.kube.core, self.config.credentials_namespace, self.config.hotpatch_calendar_configmap
        )
        written = {"data": saved, "version": version}

        async def persist(namespace: str, state: NamespaceRollout) -> None:
            """Record installations before they are sent: a restart never sends one twice."""
            data = {**states, namespace: state.to_json()}
            written["version"] = await self._write_state(data, written["version"])
            written["data"] = data

        for namespace, entries in sorted(by_namespace.items()):
            state = NamespaceRollout.from_json(saved.get(namespace))
            if config is not None:
                before = state
                state = await self._advance(namespace, state, entries, config, calendar, now, persist)
                if state is not None and state.stopped and (before is None or not before.stopped):
                    await self._announce_stop(entries, state)
            metrics.ROLLOUT_STOPPED.labels(namespace=namespace).set(1 if state and state.stopped else 0)
            if state is not None:
                states[namespace] = state.to_json()
            for obj, member, _ in entries:
                await self._report(obj, maintenance.report(state, member, now))
        if states != written["data"] and (states or written["version"] is not None):
            await self._write_state(states, written["version"])

    async def _advance(
        self, namespace: str, state: NamespaceRollout | None,
        entries: list[tuple[dict[str, Any], Member, AzureEditionVMSpec]],
        config: RolloutConfig, calendar: cal.Calendar, now: dt.datetime,
        persist: Callable[[str, NamespaceRollout], Awaitable[None]],
    ) -> NamespaceRollout | None:  # fmt: skip
        members = [m for _, m, _ in entries]
        objects = {m.name: (obj, spec) for obj, m, spec in entries}
        due = [cal.fmt(month) for obj, m, _ in entries
               if m.ring is not None and maintenance.current(m.window, now) is not None
               and (month := baseline_month_of(calendar, now, m.window.tz,
                                               self.patches_of(obj["metadata"]) if self.patches_of else None))]  # fmt: skip
        if due and (state is None or state.month < max(due)):  # a new baseline month supersedes the last one
            state = maintenance.begin(config, max(due), members, now)
            log.info("baseline rollout %s starts in namespace %s: rings %s, maxPatchPublishDate %s", state.month,
                     namespace, ", ".join(config.rings), state.rollout.max_patch_publish_date.isoformat())  # fmt: skip
        if state is None:
            return None
        state = maintenance.join(state, members)
        if state.stopped:
            return state
        vms = dict(state.vms)
        for name, record in state.vms.items():
            if not maintenance.needs_look(record):
                continue
            obj, spec = objects[name]
            try:
                seen = await azure_patches.install_seen(
                    await self._compute(namespace, spec), self._identity(obj, spec)
                )
            except (AzureRetryableError, AzurePermanentError, NotPermitted) as err:
                log.info("rollout: cannot look at %s/%s now: %s", namespace, name, err)
                continue
            vms[name] = maintenance.observe(record, seen, now)
            if record.phase is VMPhase.INSTALLING and vms[name].phase is VMPhase.INSTALLING and record.started \
                    and now - record.started > INSTALL_GRACE:  # fmt: skip
                vms[name] = replace(record, phase=VMPhase.FAILED, finished=now,
                                    detail="Azure reported no end of the installation")  # fmt: skip
            if vms[name].phase is not record.phase and vms[name].phase in (VMPhase.INSTALLED, VMPhase.FAILED):
                metrics.ROLLOUT_INSTALLS.labels(result=str(vms[name].phase)).inc()
        state = replace(state, vms=vms)
        step = maintenance.next_step(state.rollout, [r.ring_vm(n) for n, r in vms.items()], now)
        if step.kind is StepKind.STOPPED:
            return replace(state, stopped=maintenance.stop_reason(step))
        if step.kind is not StepKind.INSTALL:
            return state
        sending: list[tuple[str, dict[str, Any]]] = []
        for name in step.vms:  # whose window is open and who serves now: recorded first, then sent
            obj, spec = objects[name]
            member = next(m for m in members if m.name == name)
            parameters = maintenance.install_parameters(state.rollout, member.window, now)
            if parameters is None:
                continue  # its window is closed: the next one
            try:
                seen = await azure_patches.install_seen(
                    await self._compute(namespace, spec), self._identity(obj, spec)
                )
            except (AzureRetryableError, AzurePermanentError, NotPermitted) as err:
                log.info("rollout: %s/%s not ready for installPatches: %s", namespace, name, err)
                continue
            if seen.serving:  # else: not created yet, stopped or restarting; the next round looks again
                vms[name] = maintenance.installing(vms[name], seen.activity_id, now)
                sending.append((name, parameters))
        if not sending:
            return replace(state, vms=vms)
        await persist(namespace, replace(state, vms=vms))
        for name, parameters in sending:
            obj, spec = objects[name]
            try:
                await azure_patches.install_patches(
                    await self._compute(namespace, spec), self._identity(obj, spec), parameters
                )
            except (AzureRetryableError, NotPermitted) as err:
                log.info("rollout: installPatches on %s/%s deferred: %s", namespace, name, err)
                vms[name] = replace(vms[name], phase=VMPhase.WAITING, before="", started=None)
            except AzurePermanentError as err:
                vms[name] = replace(vms[name], phase=VMPhase.FAILED, finished=now, detail=err.message)
        return replace(state, vms=vms)

    async def _compute(self, namespace: str, spec: AzureEditionVMSpec) -> Any:
        return (await self.azure_for(namespace, spec)).for_subscription(spec.azure.subscription_id).compute

    @staticmethod
    def _identity(obj: Mapping[str, Any], spec: AzureEditionVMSpec) -> azure_specs.VMIdentity:
        meta = obj["metadata"]
        owner = azure_specs.Owner(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])
        return azure_specs.vm_identity(owner, spec.azure)

    async def _announce_stop(self, entries: list[tuple[dict[str, Any], Member, AzureEditionVMSpec]],
                             state: NamespaceRollout) -> None:  # fmt: skip
        """One Warning Event per VM of the stopped rollout, when it stops (the state remembers it stopped)."""
        log.warning("baseline rollout %s stopped: %s", state.month, state.stopped)
        for obj, member, _ in entries:
            if member.name in state.vms:
                with contextlib.suppress(ApiException):  # an Event is best effort, as kopf's are
                    await post_outside_handlers(
                        self.kube, obj, "Warning", vocab.ROLLOUT_STOPPED, state.stopped
                    )

    async def _report(
        self,
        obj: dict[str, Any],
        report: tuple[dict[str, object], tuple[bool, str, str]] | None,
    ) -> None:
        """``status.maintenance`` and the HotpatchRollout condition, written only when they changed."""
        old = dict(obj.get("status") or {})
        new = {k: v for k, v in old.items() if k != "maintenance"}
        conditions = conditions_of(old)
        if report is None:
            conditions = cond.remove(conditions, cond.ConditionType.HOTPATCH_ROLLOUT)
        else:
            new["maintenance"], (ok, reason, message) = report
            update = make_condition(cond.ConditionType.HOTPATCH_ROLLOUT, ok, reason, message)
            conditions = cond.upsert(conditions, update, dt.datetime.now(dt.UTC),
                                     int(obj["metadata"].get("generation") or 0))  # fmt: skip
        wire = [c.to_wire() for c in conditions]
        if wire or "conditions" in old:
            new["conditions"] = wire
        with contextlib.suppress(Conflict):  # the object moved on: the next round reads it again
            await publish(self.kube, obj, old, json.loads(json.dumps(new)),
                          resource_version=obj["metadata"].get("resourceVersion"))  # fmt: skip


def start(
    kube: Kube, config: OperatorConfig, azure_for: AzureFor, patches_of: PatchesOf | None = None
) -> Runner:
    """The rollout loop as a task of the running event loop (the operator's startup calls this once)."""
    runner = Runner(kube, config, azure_for, Clock(config.clock_start_at, config.clock_speed), patches_of)
    if config.rollout_configmap:
        runner.task = asyncio.get_running_loop().create_task(runner.run(), name="baseline-rollout")
    return runner
