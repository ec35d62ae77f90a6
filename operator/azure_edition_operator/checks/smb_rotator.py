"""The shell of SMB over QUIC rotation: read the source, run the plan's steps in the guest, remember.

Decisions are ``smb_rotation``'s; this module does the I/O they need. Steps run as managed Run Commands
(``virtualMachines/runCommands``): the PFX and its one-time password only ever travel as protected
parameters, which ARM does not return; nothing here logs or emits them (log lines name the Run Command
and the thumbprint). A rotation is announced when the QUIC probe shows clients the new certificate.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError

from ..azure import specs as azure_specs
from ..azure.driver import InProgress
from ..azure.resource_specs import KeyVaultExtensionSpec
from ..azure.sdk import compute as compute_models
from ..kube import SecretUnavailable
from .smb_guest import (
    CLIENT_ACCESS_SCRIPT,
    IMPORT_SCRIPT,
    MAP_SCRIPT,
    STATUS_SCRIPT,
    GuestOutputError,
    GuestState,
    parse_guest_state,
)
from .smb_rotation import (
    RotationPlan,
    SecretProblem,
    extension_problem,
    newest_in_store,
    pfx_of,
    plan_rotation,
    plan_store_rotation,
    rotation_message,
    source_certificate,
    source_problems,
)

EventSink = Callable[[str, str, str], None]  # (type, reason, message), as the check runner's
SecretReader = Callable[[str], Awaitable[Mapping[str, str]]]  # Secret name (the object's namespace) → data
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]
IMPORT_COMMAND = "azureedition-smb-cert-import"
MAP_COMMAND = "azureedition-smb-cert-map"
# After a failed step, wait at least this long (doubling per failure, at most MAX) before trying again:
# each step is a write against the VM's update budget.
RETRY_MIN_SECONDS = 5.0
RETRY_MAX_SECONDS = 600.0


class StepFailed(Exception):
    """A managed Run Command did not succeed in the guest; the message is its error output (no inputs)."""


@dataclass
class GuestSetting:
    """A setting the spec declares and the operator keeps in the guest: applied once (later changes are
    drift, announced as corrected), and its back-off after a failed Run Command."""

    applied: bool = False
    failures: int = 0
    retry_at: float = -1e18


@dataclass
class RotationMemory:
    """Per object, in the operator's memory: the last rotation, one in flight, the last problem told."""

    rotated_at: dt.datetime | None = None
    pending: RotationPlan | None = None  # mapped, not yet seen by the probe
    pending_not_after: dt.datetime | None = None
    announced: str = ""  # the problem last announced by an Event (one Event per distinct problem)
    failures: int = 0
    retry_at: float = field(default=-1e18)
    extension_applied: dict[str, Any] | None = (
        None  # the Key Vault extension settings this process PUT or saw
    )
    extension_seen: str = ""  # the extension status the guest's store was last read after
    access: GuestSetting = field(default_factory=lambda: GuestSetting())  # client access control
    ports: GuestSetting = field(default_factory=lambda: GuestSetting())  # the alternative QUIC port


@dataclass(frozen=True)
class RotationRound:
    """What a round of rotation leaves for the SMB check: a fresh guest state when it mapped, a note for
    the condition (empty when all is well), and the status fields it owns."""

    guest: GuestState | None = None
    mapped: bool = False
    note: str = ""
    status: dict[str, Any] = field(default_factory=dict)


def source_label(secret_name: str) -> str:
    return f"Secret/{secret_name}"


async def rotation_round(
    *, secret_name: str, read_secret: SecretReader, server_name: str, served: str | None,
    guest: GuestState | None, memory: RotationMemory, compute: Any, rg: str, vm_name: str, location: str,
    emit: EventSink, log: Log, now: dt.datetime,
) -> RotationRound:  # fmt: skip
    """One look at the source: confirm a rotation the probe now shows, or run the missing steps."""
    label = source_label(secret_name)
    status: dict[str, Any] = {"certificateSource": label}
    if memory.rotated_at is not None:
        status["lastRotated"] = memory.rotated_at
    try:
        source = source_certificate(await read_secret(secret_name))
        problems = source_problems(source, server_name, now)
    except (SecretUnavailable, SecretProblem) as err:
        problems = (str(err),)
        source = None
    if source is None or problems:
        note = f"certificate source {label} cannot be used: {'; '.join(problems)}"
        _announce(memory, emit, note)
        return RotationRound(note=note, status=status)
    memory.announced = ""
    if confirm(memory, served, label, emit, now):
        return RotationRound(status={**status, "lastRotated": now})
    if served == source.thumbprint:
        return RotationRound(status=status)
    plan = plan_rotation(source, server_name, guest)
    if plan.empty or time.monotonic() < memory.retry_at:
        return RotationRound(status=status)
    try:
        if plan.import_pfx:
            password = secrets.token_urlsafe(32)
            pfx = base64.b64encode(pfx_of(source, password.encode())).decode()
            await _managed_run(compute, rg, vm_name, location, IMPORT_COMMAND, IMPORT_SCRIPT, log,
                               protected={"PfxBase64": pfx, "PfxPassword": password})  # fmt: skip
        stdout = await _managed_run(compute, rg, vm_name, location, MAP_COMMAND, MAP_SCRIPT, log, parameters={
            "ServerName": server_name, "Thumbprint": plan.thumbprint, "RemoveThumbprints": ",".join(plan.replaced),
        })  # fmt: skip
        fresh = parse_guest_state(stdout)
    except (AzureError, StepFailed, GuestOutputError) as err:
        memory.failures += 1
        wait = min(RETRY_MAX_SECONDS, RETRY_MIN_SECONDS * 2.0 ** (memory.failures - 1))
        memory.retry_at = time.monotonic() + wait
        text = f"{type(err).__name__}: {getattr(err, 'message', None) or err}"[:300]
        note = f"rotating to {plan.thumbprint} from {label} failed {memory.failures}x, next try in {wait:.0f} s: {text}"
        _announce(memory, emit, note)
        return RotationRound(note=note, status=status)
    memory.failures, memory.retry_at = 0, -1e18
    memory.pending, memory.pending_not_after = plan, source.not_after
    log.info("mapped certificate %s for %s on VirtualMachine/%s (from %s)", plan.thumbprint, server_name,
             vm_name, label)  # fmt: skip
    return RotationRound(guest=fresh, mapped=True, status=status)


def confirm(
    memory: RotationMemory, served: str | None, label: str, emit: EventSink, now: dt.datetime
) -> bool:
    """After mapping, the probe again: announce the rotation once clients get the new certificate."""
    if memory.pending is None or served != memory.pending.thumbprint:
        return False
    memory.rotated_at = now
    emit("Normal", "SMBOverQUICCertificateRotated",
         rotation_message(memory.pending, label, memory.pending_not_after or now))  # fmt: skip
    memory.pending = None
    return True


def _announce(memory: RotationMemory, emit: EventSink, note: str) -> None:
    if note != memory.announced:
        memory.announced = note
        emit("Warning", "SMBOverQUICCertificateNotRotated", note[:1000])


async def _managed_run(
    compute: Any, rg: str, vm_name: str, location: str, command: str, script: list[str], log: Log,
    parameters: Mapping[str, str] | None = None, protected: Mapping[str, str] | None = None,
) -> str:  # fmt: skip
    """PUT a managed Run Command (re-running it), wait, read its instance view; its output, or StepFailed."""
    body = compute_models.VirtualMachineRunCommand(
        location=location,
        source=compute_models.VirtualMachineRunCommandScriptSource(script="\n".join(script)),
        parameters=[
            compute_models.RunCommandInputParameter(name=k, value=v) for k, v in (parameters or {}).items()
        ],
        protected_parameters=[
            compute_models.RunCommandInputParameter(name=k, value=v) for k, v in (protected or {}).items()
        ],
        treat_failure_as_deployment_failure=False,
    )
    poller = await compute.virtual_machine_run_commands.begin_create_or_update(rg, vm_name, command, body)
    log.info("started managed Run Command %s on VirtualMachine/%s", command, vm_name)
    await poller.result()
    done = await compute.virtual_machine_run_commands.get_by_virtual_machine(
        rg, vm_name, command, expand="instanceView"
    )
    view = done.instance_view
    if view is None or view.execution_state != "Succeeded":
        state = view.execution_state if view is not None else "unknown"
        error = (view.error or view.execution_message or "") if view is not None else ""
        raise StepFailed(f"Run Command {command} ended {state}: {error.strip()[:300]}")
    return view.output or ""


def _step_failed(memory: RotationMemory, err: Exception, what: str, label: str, emit: EventSink) -> str:
    memory.failures += 1
    wait = min(RETRY_MAX_SECONDS, RETRY_MIN_SECONDS * 2.0 ** (memory.failures - 1))
    memory.retry_at = time.monotonic() + wait
    text = f"{type(err).__name__}: {getattr(err, 'message', None) or err}"[:300]
    note = f"{what} from {label} failed {memory.failures}x, next try in {wait:.0f} s: {text}"
    _announce(memory, emit, note)
    return note


async def key_vault_round(
    *, spec: Any, vm_wire: Mapping[str, Any], server_name: str, served: str | None, guest: GuestState | None,
    memory: RotationMemory, compute: Any, rg: str, vm_name: str, location: str, emit: EventSink, log: Log,
    now: dt.datetime,
) -> RotationRound:  # fmt: skip
    """Key Vault source: keep the KeyVaultForWindows extension as the spec says, tell why it cannot fetch
    (role and vault), read the guest's store when the extension reports news, map the newest valid one."""
    source = azure_specs.key_vault_source(spec)
    label = f"KeyVault/{source.secret_url.rstrip('/')}"
    status: dict[str, Any] = {"certificateSource": label}
    if memory.rotated_at is not None:
        status["lastRotated"] = memory.rotated_at
    if confirm(memory, served, label, emit, now):
        return RotationRound(status={**status, "lastRotated": now})
    wanted = azure_specs.key_vault_extension_settings(spec)
    if memory.extension_applied != wanted and time.monotonic() >= memory.retry_at:
        try:
            await _ensure_extension(compute, rg, vm_name, location, spec, wanted, log)
            memory.extension_applied = wanted
        except AzureError as err:
            return RotationRound(note=_step_failed(memory, err, "installing the Key Vault extension", label, emit),
                                 status=status)  # fmt: skip
    props = vm_wire.get("properties") or {}
    extension = next((e for e in (props.get("instanceView") or {}).get("extensions") or []
                      if e.get("name") == azure_specs.KEY_VAULT_EXTENSION), None)  # fmt: skip
    latest = ((extension or {}).get("statuses") or [{}])[0]
    principal = (vm_wire.get("identity") or {}).get("principalId")
    problem = extension_problem(latest.get("level"), latest.get("message"), source.secret_url, principal)
    if problem:
        _announce(memory, emit, problem)
        return RotationRound(note=problem, status=status)
    if memory.announced and not memory.failures:
        memory.announced = ""
    seen = f"{latest.get('time')}|{latest.get('message')}"
    fresh = guest
    if extension is not None and seen != memory.extension_seen and time.monotonic() >= memory.retry_at:
        try:  # the extension polled: read the store it writes
            fresh = parse_guest_state(await _run_status(compute, rg, vm_name, log))
            memory.extension_seen = seen
        except (AzureError, GuestOutputError) as err:
            return RotationRound(note=_step_failed(memory, err, "reading the guest's store", label, emit),
                                 status=status)  # fmt: skip
    chosen = newest_in_store(fresh, server_name, now) if fresh is not None else None
    if chosen is None or fresh is None or chosen.thumbprint == served:
        return RotationRound(guest=fresh if fresh is not guest else None, mapped=False, status=status)
    plan = plan_store_rotation(chosen, server_name, fresh)
    if plan.empty or time.monotonic() < memory.retry_at:
        return RotationRound(guest=fresh if fresh is not guest else None, status=status)
    try:
        stdout = await _managed_run(compute, rg, vm_name, location, MAP_COMMAND, MAP_SCRIPT, log, parameters={
            "ServerName": server_name, "Thumbprint": plan.thumbprint, "RemoveThumbprints": ",".join(plan.replaced),
        })  # fmt: skip
        mapped = parse_guest_state(stdout)
    except (AzureError, StepFailed, GuestOutputError) as err:
        return RotationRound(
            note=_step_failed(memory, err, f"mapping {plan.thumbprint}", label, emit), status=status
        )
    memory.failures, memory.retry_at = 0, -1e18
    memory.pending, memory.pending_not_after = plan, chosen.not_after
    log.info("mapped certificate %s for %s on VirtualMachine/%s (from %s)", plan.thumbprint, server_name, vm_name,
             label)  # fmt: skip
    return RotationRound(guest=mapped, mapped=True, status=status)


async def _ensure_extension(
    compute: Any, rg: str, vm_name: str, location: str, spec: Any, wanted: Mapping[str, Any], log: Log
) -> None:
    """GET the extension; PUT what its spec object asks for when it is missing or not the spec's (one write)."""
    from azure.core.exceptions import ResourceNotFoundError

    extension = KeyVaultExtensionSpec(spec, location)
    try:
        have = await compute.virtual_machine_extensions.get(rg, vm_name, extension.name)
    except ResourceNotFoundError:
        have = None
    try:
        body = extension.parameters(have)
    except InProgress as busy:  # someone else's operation on it: try again after the back-off
        raise AzureError(f"the {extension.name} extension is busy ({busy})") from None
    if body is None:
        return
    poller = await compute.virtual_machine_extensions.begin_create_or_update(
        rg, vm_name, extension.name, body
    )
    log.info("installing the %s extension on VirtualMachine/%s", extension.name, vm_name)
    await poller.result()
    del wanted


async def _run_status(compute: Any, rg: str, vm_name: str, log: Log) -> str:
    """The status script through Run Command (what the SMB check's in-guest look runs)."""
    poller = await compute.virtual_machines.begin_run_command(
        rg, vm_name, compute_models.RunCommandInput(command_id="RunPowerShellScript", script=STATUS_SCRIPT)
    )
    log.info("started a Run Command on VirtualMachine/%s (reading the certificate store)", vm_name)
    from .smb_guest import run_command_stdout

    return run_command_stdout(await poller.result())


@dataclass(frozen=True)
class SettingStep:
    """One declared guest setting's managed Run Command and how its Events and notes name it."""

    command: str  # the managed Run Command's name
    script: str
    doing: str  # for the failure note: "applying client access control"
    event: str  # Event reason prefix: "SMBOverQUICClientAccess" + Failed / Corrected / Applied
    applied: str  # the Normal Event's text, before the drift
    corrected: str  # the Warning Event's text, before the drift


async def _setting_round(
    step: SettingStep, *, parameters: dict[str, str], drift: str, setting: GuestSetting, compute: Any, rg: str,
    vm_name: str, location: str, emit: EventSink, log: Log,
) -> tuple[GuestState | None, str]:  # fmt: skip
    """Run ``step`` once (after its back-off): the fresh guest state when it changed something, else a note
    for the condition when it failed; one Event per outcome (the first failure, each apply or correction)."""
    if time.monotonic() < setting.retry_at:
        return None, ""
    try:
        stdout = await _managed_run(compute, rg, vm_name, location, step.command, step.script, log,
                                    parameters=parameters)  # fmt: skip
        fresh = parse_guest_state(stdout)
    except (AzureError, StepFailed, GuestOutputError) as err:
        setting.failures += 1
        wait = min(RETRY_MAX_SECONDS, RETRY_MIN_SECONDS * 2.0 ** (setting.failures - 1))
        setting.retry_at = time.monotonic() + wait
        note = (f"{step.doing} failed {setting.failures}x, next try in {wait:.0f} s: "
                f"{type(err).__name__}: {getattr(err, 'message', None) or err}")[:500]  # fmt: skip
        if setting.failures == 1:
            emit("Warning", f"{step.event}Failed", note)
        return None, note
    setting.failures, setting.retry_at = 0, -1e18
    if setting.applied:
        emit("Warning", f"{step.event}Corrected", f"{step.corrected}: {drift}")
    else:
        emit("Normal", f"{step.event}Applied", f"{step.applied}: {drift}")
    setting.applied = True
    log.info("%s on VirtualMachine/%s: done", step.doing, vm_name)
    return fresh, ""


ACCESS_COMMAND = "azureedition-smb-client-access"


async def access_round(
    *, access: Any, server_name: str, guest: GuestState | None, memory: RotationMemory, compute: Any, rg: str,
    vm_name: str, location: str, emit: EventSink, log: Log,
) -> tuple[GuestState | None, str]:  # fmt: skip
    """Bring the guest's client access control to the spec (what the last in-guest look saw); the fresh
    state when it changed something, and a note for the condition when that failed."""
    from .smb_access import plan_access

    plan = plan_access(access, guest, server_name) if guest is not None else None
    if plan is None:
        return None, ""
    step = SettingStep(
        ACCESS_COMMAND, CLIENT_ACCESS_SCRIPT, "applying client access control", "SMBOverQUICClientAccess",
        f"client access control for {server_name}",
        f"client access control for {server_name} was changed in the guest; corrected",
    )  # fmt: skip
    return await _setting_round(
        step, parameters=plan.parameters(server_name), drift="; ".join(plan.drift)[:900], setting=memory.access,
        compute=compute, rg=rg, vm_name=vm_name, location=location, emit=emit, log=log,
    )  # fmt: skip


PORTS_COMMAND = "azureedition-smb-alternative-port"


async def ports_round(
    *, port: int, guest: GuestState | None, memory: RotationMemory, compute: Any, rg: str, vm_name: str,
    location: str, emit: EventSink, log: Log,
) -> tuple[GuestState | None, str]:  # fmt: skip
    """Bring the guest's alternative QUIC ports to the spec (what the last in-guest look saw), as
    ``access_round`` does for client access: the fresh state when it changed something, else a note."""
    from .smb_guest import ALTERNATIVE_PORT_SCRIPT
    from .smb_ports import plan_ports

    plan = plan_ports(port, guest) if guest is not None else None
    if plan is None:
        return None, ""
    step = SettingStep(
        PORTS_COMMAND, ALTERNATIVE_PORT_SCRIPT, "setting the alternative QUIC port",
        "SMBOverQUICAlternativePort", "SMB over QUIC alternative port",
        "the alternative QUIC ports were changed in the guest; corrected",
    )  # fmt: skip
    return await _setting_round(
        step, parameters=plan.parameters(), drift=plan.drift(), setting=memory.ports, compute=compute, rg=rg,
        vm_name=vm_name, location=location, emit=emit, log=log,
    )  # fmt: skip
