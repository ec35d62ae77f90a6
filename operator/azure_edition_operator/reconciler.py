"""One reconcile pass: spec → image → credentials → Azure → ``status.Observation``.

This is the shell between kopf and the Azure layer. Decisions (image choice, VM parameters,
conditions) are made by pure functions elsewhere; this module sequences them and turns failures
into conditions plus when to come back: an operation in flight after Azure's Retry-After, a
transient error with back-off, an error that needs the user every ``USER_RETRY_SECONDS`` (so a
fix made outside Kubernetes heals without an edit). Only an unreadable spec is final.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from . import reasons as vocab
from .api.v1alpha1 import AzureEditionVMSpec
from .azure.driver import InProgress, OperationRecord
from .azure.errors import PACING_CODE, AzurePermanentError, AzureRetryableError, WriteRefused
from .azure.extended import PrerequisitesNotMet
from .azure.placement import ImageNotOffered
from .azure.provision import ImageChangeRequired, ObservedVM
from .conditions import Condition, ConditionType, format_timestamp
from .images import Capability, ImageReference, UnsupportedCapabilitiesError, resolve
from .kube import AdminCredentials, CredentialsUnavailable
from .status import Observation, condition
from .tenancy import NotPermitted

NOT_PERMITTED_RETRY = 60.0  # seconds: until a cluster administrator changes a TenantPolicy
# Seconds until a refused Extended Network prerequisite is looked at again: the look reads cached facts
# (no Azure call), and a fixed spec (vmSize, extendedSubnetId) is acted on at the next one.
PREREQUISITES_RETRY = 60.0


@dataclass(frozen=True)
class Outcome:
    """An observation to write, and whether/when kopf should try again."""

    observation: Observation
    retry_after: float | None = None  # TemporaryError(delay=...)
    permanent: str | None = None  # PermanentError(message): only for what no time can fix (the spec itself)
    events: tuple[tuple[str, str, str], ...] = ()  # (type, reason, message)

    @property
    def event(self) -> tuple[str, str, str] | None:
        """The error Event of this pass, if any (posted once per new error)."""
        return next((e for e in self.events if e[0] == "Warning"), None)


def transient_delay(asked: float | None, retry: int) -> float:
    """Back-off for a transient failure: what Azure asked for, or doubling from the base, capped."""
    grown = vocab.TRANSIENT_BASE_SECONDS * 2.0 ** min(retry, 10)
    return min(vocab.TRANSIENT_CAP_SECONDS, max(asked or 0.0, grown))


def next_pass_delay(kind: vocab.Kind | None, retry_after: float | None, *, first_poll: bool) -> float | None:
    """Seconds until the next pass of a streak (an operation runs, Azure said "later"), or None when the
    streak ends (done, or a person must act: the controller comes back after the resync or the user
    retry instead). A newly started operation is polled once at once, as azure-core does (Azure often
    finishes network operations within the first answer)."""
    if retry_after is None or kind not in (vocab.Kind.PROGRESS, vocab.Kind.TRANSIENT):
        return None
    return 0.0 if first_poll and kind is vocab.Kind.PROGRESS else retry_after


def report_progress(elapsed: float, delay: float, report_after: float) -> bool:
    """Whether to write status before waiting for the next pass: only once the wait is long enough for a person to look
    (a create at zero Azure latency writes one status, already Ready; a slow one shows its progress)."""
    return elapsed + delay > report_after


_PROGRESS_REASON = {"created": vocab.CREATING, "updated": vocab.UPDATING, "deleted": vocab.DELETING}
_KIND_NAMES = {
    "virtualMachines": "VM",
    "disks": "OS disk",
    "networkInterfaces": "NIC",
    "publicIPAddresses": "public IP",
    "networkSecurityGroups": "network security group",
}


def progress_condition(record: OperationRecord, now: datetime) -> Condition:
    """VMProvisioned=False while an operation runs. The message names what runs, since when, and for
    how long in whole minutes: status is rewritten at most once a minute, not on every poll."""
    reason = _PROGRESS_REASON.get(record.action) or (
        vocab.DELETING if record.verb == "delete" else vocab.UPDATING
    )
    minutes = max(0, int((now - record.started_at()).total_seconds() // 60))
    verb = {vocab.CREATING: "creating", vocab.UPDATING: "updating", vocab.DELETING: "deleting"}[reason]
    what = f"{_KIND_NAMES.get(record.kind, record.kind)} {record.name}"
    since = format_timestamp(record.started_at())
    running = "less than a minute" if minutes < 1 else f"{minutes} min"
    return condition(ConditionType.VM_PROVISIONED, False, reason,
                     f"Azure is {verb} {what} (started {since}, running for {running})")  # fmt: skip


EnsureVM = Callable[[AzureEditionVMSpec, ImageReference, "CredentialsLoader"], Awaitable[ObservedVM]]
CredentialsLoader = Callable[[], Awaitable[AdminCredentials]]
VMProblem = Callable[[ObservedVM], "str | None"]
"""What keeps a provisioned VM from serving as the spec says, read from it (a NIC it lacks), or None."""


def missing_nic(attached: set[str], primary: tuple[str, str], extended: tuple[str, str] | None) -> str | None:
    """The NIC a VM lacks, as a person should read it (pure): ``attached`` are the lower-case ids of the
    VM's NICs, ``primary``/``extended`` (id, name) the ones the spec needs (extended: with ExtendedNetwork)."""
    how = ("a NIC can only be attached to a deallocated VM, which the operator does not do on its own: "
           "deallocate the VM, attach it and start the VM, or create a new AzureEditionVM")  # fmt: skip
    if not attached:
        return f"the VM has no network interface attached (its NIC {primary[1]} was detached outside the operator); {how}"
    if primary[0].lower() not in attached:
        return f"the VM's primary NIC {primary[1]} is not attached (detached outside the operator); {how}"
    if extended is not None and extended[0].lower() not in attached:
        return (f"the VM's extended NIC {extended[1]} is not attached (detached or deleted outside the operator, "
                f"or ExtendedNetwork was requested after the VM was created), so Extended Network cannot work; {how}")  # fmt: skip
    return None


async def reconcile_pass(
    raw_spec: Mapping[str, Any],
    generation: int,
    ensure_vm: EnsureVM,
    load_credentials: CredentialsLoader,
    missing_secret_retry: float,
    *,
    retry: int = 0,
    now: datetime | None = None,
    vm_problem: VMProblem | None = None,
) -> Outcome:
    """Run one pass and describe it; never raises for expected failures.

    Decides from the spec, the catalog and what ``ensure_vm`` reads from Azure: never from status.
    """
    now = now or datetime.now(UTC)
    try:
        spec = AzureEditionVMSpec.model_validate(raw_spec)
    except ValidationError as err:
        message = f"spec is invalid: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}"
        obs = Observation(
            generation,
            frozenset(),
            vm_condition=condition(ConditionType.VM_PROVISIONED, False, vocab.INVALID_SPEC, message),
        )
        return Outcome(obs, permanent=message, events=(("Warning", vocab.INVALID_SPEC, message),))
    caps = frozenset(spec.capabilities)
    try:
        catalog = resolve(set(spec.capabilities), spec.image_pins())
    except UnsupportedCapabilitiesError as err:
        return _unsupported(generation, caps, str(err))
    image_ok = condition(ConditionType.IMAGE_RESOLVED, True, "ImageResolved", catalog.reason)

    def failed(reason: str, message: str) -> Observation:
        vm_condition = condition(ConditionType.VM_PROVISIONED, False, reason, message)
        return Observation(generation, caps, image_condition=image_ok, vm_condition=vm_condition)

    # Tenancy is checked inside ``ensure_vm`` before any Azure call: it picks the credential, and
    # raises NotPermitted when no TenantPolicy allows the namespace that target.
    try:
        vm = await ensure_vm(spec, catalog, load_credentials)
    except InProgress as progress:
        obs = Observation(generation, caps, image_condition=image_ok,
                          vm_condition=progress_condition(progress.record, now))  # fmt: skip
        return Outcome(obs, retry_after=progress.retry_after)
    except ImageChangeRequired as err:
        return _unsupported(generation, caps, str(err))
    except WriteRefused as err:  # managementPolicy Observe: reported, retried with the next read
        return Outcome(failed(vocab.OBSERVE_ONLY, err.message))
    except NotPermitted as err:  # tenancy: no Azure call was made; a policy change may allow it
        return Outcome(failed(vocab.NOT_PERMITTED, str(err)), retry_after=NOT_PERMITTED_RETRY,
                       events=(("Warning", vocab.NOT_PERMITTED, str(err)),))  # fmt: skip
    except CredentialsUnavailable as err:
        reason = err.reason  # AdminCredentialsMissing, or AdminCredentialsInvalid naming the rule
        return Outcome(failed(reason, str(err)), retry_after=missing_secret_retry,
                       events=(("Warning", reason, str(err)),))  # fmt: skip
    except PrerequisitesNotMet as err:  # before any PUT; ExtendedNetworkReady says what to change
        refused = err.condition
        message = f"refused before creating anything: {refused.reason}: {refused.message}"
        obs = replace(failed(vocab.PREREQUISITES_NOT_MET, message), capability_conditions=(refused,))
        return Outcome(obs, retry_after=PREREQUISITES_RETRY, events=(("Warning", refused.reason, message),))
    except ImageNotOffered as err:  # before the first PUT; the message names the regions that offer it
        return Outcome(failed(err.reason, str(err)), retry_after=vocab.USER_RETRY_SECONDS,
                       events=(("Warning", err.reason, str(err)),))  # fmt: skip
    except AzureRetryableError as err:
        message = (
            err.message if err.code == PACING_CODE else f"Azure asked to retry ({err.code}): {err.message}"
        )
        return Outcome(failed(err.reason, message), retry_after=transient_delay(err.retry_after, retry))
    except AzurePermanentError as err:
        message = f"Azure refused ({err.code}): {err.message}; tried again every {vocab.USER_RETRY_SECONDS / 60:.0f} min"
        return Outcome(failed(err.reason, message), retry_after=vocab.USER_RETRY_SECONDS,
                       events=(("Warning", err.reason, message),))  # fmt: skip
    message = "the VM is provisioned"
    if vm.drift:
        message += "; not corrected (needs a person): " + "; ".join(vm.drift)
    ok = condition(ConditionType.VM_PROVISIONED, True, vocab.SUCCEEDED, message)
    events: tuple[tuple[str, str, str], ...] = ()
    if is_stopped(vm.power_state):
        message = (f"Azure reports the VM {vm.power_state} (stopped outside the operator, which does not start "
                   "it on its own); start it in Azure and the next resync reports it Ready")  # fmt: skip
        ok = condition(ConditionType.VM_PROVISIONED, False, vocab.VM_STOPPED, message)
        events = (("Warning", vocab.VM_STOPPED, message),)
    elif vm_problem is not None and (problem := vm_problem(vm)) is not None:
        ok = condition(ConditionType.VM_PROVISIONED, False, vocab.NIC_MISSING, problem)
        events = (("Warning", vocab.NIC_MISSING, problem),)
    image = vm.image_ref or catalog
    if vm.image_ref is not None:
        image_ok = condition(ConditionType.IMAGE_RESOLVED, True, "ImageResolved", vm.image_ref.reason)
    return Outcome(
        Observation(
            generation,
            caps,
            image=image,
            image_condition=image_ok,
            vm=vm.to_status(),
            vm_condition=ok,
            prerequisites_met=True,  # ensure_vm ran: the before-PUT checks passed
        ),
        events=events,
    )


STOPPED_POWER_STATES = frozenset({"stopping", "stopped", "deallocating", "deallocated"})


def is_stopped(power_state: str | None) -> bool:
    """docs/reference.md: a stopped VM is not Ready. Unknown (no instance view) is not stopped."""
    return (power_state or "").lower() in STOPPED_POWER_STATES


def _unsupported(generation: int, caps: frozenset[Capability], message: str) -> Outcome:
    reason = "UnsupportedCapabilities"
    obs = Observation(
        generation, caps, image_condition=condition(ConditionType.IMAGE_RESOLVED, False, reason, message)
    )
    return Outcome(obs, retry_after=vocab.USER_RETRY_SECONDS, events=(("Warning", reason, message),))
