"""One round of periodic checks for one VM: Hotpatch state and the SMB over QUIC certificate.

A thin shell: it reads Azure (one VM GET with the instance view), probes QUIC, occasionally asks
the guest through Run Command, and hands everything to the pure evaluators, whose verdicts it returns.
Remediation happens here, each with an Event: patch settings are restored in one place at the end of the
round (``azure.patches``, the comparison the reconcile pass makes); SMB over QUIC is re-enabled within its
in-guest look, which probes again right after.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core.exceptions import AzureError

from .. import extended_network as xn
from .. import metrics, text
from ..api.v1alpha1 import AzureEditionVMSpec
from ..azure import extended as azure_extended
from ..azure import patches as azure_patches
from ..azure.errors import AzurePermanentError
from ..azure.sdk import compute as compute_models
from ..azure.specs import (
    TAKEN,
    Owner,
    Ownership,
    discover,
    ownership,
    ownership_conflict_message,
    patch_drift,
    power_state_of,
    vm_identity,
)
from ..conditions import Condition, ConditionType, format_timestamp
from ..hotpatch_calendar import BUILTIN, Calendar, PatchSummary
from ..images import Capability, hotpatch_end_notice
from ..status import Observation, condition
from .hotpatch import evaluate_hotpatch
from .smb_certificate import CertificateObservation, EndpointUnreachable, evaluate_certificate
from .smb_guest import (
    ENABLE_SCRIPT,
    STATUS_SCRIPT,
    GuestOutputError,
    GuestState,
    mapping_problems,
    parse_guest_state,
    run_command_stdout,
)
from .smb_probe import probe_smb_quic
from .smb_rotation import reachability_note
from .smb_rotator import (
    RotationMemory,
    SecretReader,
    access_round,
    confirm,
    key_vault_round,
    ports_round,
    rotation_round,
)

PROBE_TIMEOUT_SECONDS = 5.0
OBSERVE_GUEST_NOTE = "observe only: the guest is not looked at (no Run Command)"
OBSERVE_SMB_NOTE = (
    "observe only: the guest is not looked at (no Run Command); no certificate rotation, mapping, client "
    "access or port is applied"
)

EventSink = Callable[[str, str, str], None]  # (type, reason, message)
Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


def backoff(failures: int, interval: float, minimum: float) -> float:
    """Seconds before the next in-guest look after ``failures`` failed ones in a row: the minimum,
    doubled per failure, at most the routine interval (Run Command counts against the VM's budget)."""
    return min(interval, minimum * 2.0**failures)


def failure_text(err: Exception) -> str:
    """A failed in-guest look as status and Events say it: the error's type and Azure's message."""
    return f"{type(err).__name__}: {getattr(err, 'message', None) or err}"[:300]


def failing_note(failures: int, wait_seconds: float, error: str) -> str:
    return f"in-guest check failing {failures}x, next try in {wait_seconds / 60:.0f} min: {error}"


@dataclass
class CheckMemory:
    """Per-object state kept between rounds in the operator's memory (lost on restart by design)."""

    in_guest_interval: float  # from OperatorConfig, the one place the defaults live
    in_guest_min_interval: float
    smb_guest: GuestLook = field(default_factory=lambda: GuestLook())  # SMB over QUIC's in-guest look
    network_guest: GuestLook = field(default_factory=lambda: GuestLook())  # Extended Network's in-guest look
    network_unreadable: bool = False  # the last round could not read the network (Warning posted once)
    smb_rotation: RotationMemory = field(default_factory=RotationMemory)  # rotation from a certificate source

    def wait(self, look: GuestLook, troubled: bool) -> float:
        return look.wait(self.in_guest_interval, self.in_guest_min_interval, troubled)


@dataclass
class GuestLook:
    """One in-guest check's memory (SMB over QUIC's, Extended Network's): when it last looked through Run
    Command, what it saw, and how often the look itself failed in a row."""

    seen: Any = None
    checked_at: float = field(default=-1e18)
    failures: int = 0
    error: str = ""

    def wait(self, interval: float, minimum: float, troubled: bool) -> float:
        """Seconds between looks: the interval while all is well; the minimum while there is trouble (so a
        fix is seen soon), doubling per consecutive failure of the look itself."""
        if self.failures:
            return backoff(self.failures, interval, minimum)
        return minimum if troubled else interval

    def succeeded(self, seen: Any) -> None:
        self.seen, self.failures, self.error = seen, 0, ""

    def failed(self, err: Exception, emit: EventSink, check: str) -> None:
        """Count the failure; the first of a streak is announced, the rest are only in the condition."""
        self.failures += 1
        self.error = failure_text(err)
        if self.failures == 1:
            emit("Warning", "InGuestCheckFailed", f"the in-guest {check} check failed: {self.error}")

    def note(self, interval: float, minimum: float) -> str:
        """What the condition adds while the look fails (empty while it works)."""
        if not self.failures:
            return ""
        return failing_note(self.failures, self.wait(interval, minimum, True), self.error)


@dataclass(frozen=True)
class CheckResult:
    """A round's verdict: what status says of the VM and its capabilities."""

    vm: dict[str, Any]
    conditions: tuple[Condition, ...]
    hotpatch: dict[str, Any] | None
    smb_over_quic: dict[str, Any] | None

    def observed(self, base: Observation) -> Observation:
        return replace(base, vm=self.vm, capability_conditions=self.conditions, hotpatch=self.hotpatch,
                       smb_over_quic=self.smb_over_quic)  # fmt: skip


def _wire(model: Any) -> dict[str, Any]:
    """ARM's wire shape (camelCase, ``properties`` nesting) of an SDK model."""
    return model.as_dict() if model is not None else {}


def vm_status_of(vm_wire: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """Refresh status.vm from a VM GET (with instance view); addresses come from the last reconcile."""
    props = vm_wire.get("properties") or {}
    statuses = (props.get("instanceView") or {}).get("statuses") or []
    refreshed = dict(previous)
    refreshed.update({k: v for k, v in {
        "resourceId": vm_wire.get("id"),
        "vmId": props.get("vmId"),
        "provisioningState": props.get("provisioningState"),
        "powerState": power_state_of(s.get("code") for s in statuses),
    }.items() if v is not None})  # fmt: skip
    return refreshed


async def run_checks(
    *,
    spec: AzureEditionVMSpec,
    namespace: str,
    name: str,
    compute: Any,
    vm_name: str,
    memory: CheckMemory,
    emit: EventSink,
    now: dt.datetime,
    owner: Owner | None = None,
    known_vm: Mapping[str, Any] | None = None,
    network: Any = None,
    extended_nic: str | None = None,
    assess_token: str | None = None,
    vm: Any = None,
    patches: PatchSummary | None = None,
    calendar: Calendar = BUILTIN,
    read_secret: SecretReader | None = None,
    observe: bool = False,
) -> CheckResult:
    """``known_vm`` is what this operator last read from Azure (addresses): never status, which anyone
    who may write status could point at another machine. ``owner``: the VM's owner tag is checked
    before any remediation or Run Command touches it. ``assess_token``: the last assess token answered
    (from the operator's annotation), kept in ``status.hotpatch.lastAssessToken``. ``vm``: the VM as the
    caller has just read it with ``$expand=instanceView`` (the pass the round is folded into); None: GET it.
    ``read_secret``: reads a Secret of the object's own namespace (the certificate source).
    ``observe`` (managementPolicy Observe): GETs and QUIC probes only. Nothing that changes Azure or the
    guest runs (patch-settings restore, SMB re-enable, certificate rotation and mapping, client access, the
    alternative port, extension installs), and no Run Command at all, so Reader suffices; the conditions say
    what was not done. A VM without our tags may be observed."""
    log: Log = owner.logger(__name__) if owner is not None else logging.getLogger(__name__)
    caps = set(spec.capabilities)
    rg = spec.azure.resource_group
    started = time.perf_counter()
    if vm is None or getattr(vm, "instance_view", None) is None:
        vm = await compute.virtual_machines.get(rg, vm_name, expand="instanceView")
    taken = TAKEN | {Ownership.UNMANAGED} if observe else TAKEN
    if owner is not None and ownership(vm.tags, owner) not in taken:
        raise AzurePermanentError(
            "OwnershipConflict", ownership_conflict_message("Virtual machine", vm_name, vm.tags, owner), 409,
            reason="OwnershipConflict",
        )  # fmt: skip
    vm_wire = _wire(vm)
    vm_status = vm_status_of(vm_wire, known_vm or {})
    conditions: list[Condition] = []
    hotpatch_status, drift = None, []
    if Capability.HOTPATCH in caps:
        props = vm_wire.get("properties") or {}
        settings = ((props.get("osProfile") or {}).get("windowsConfiguration") or {}).get("patchSettings")
        patch_status = (props.get("instanceView") or {}).get("patchStatus")
        drift = patch_drift(spec, vm)
        sku = ((props.get("storageProfile") or {}).get("imageReference") or {}).get("sku") or ""
        notice = hotpatch_end_notice(sku, caps, now.date())
        verdict = evaluate_hotpatch(
            settings, patch_status, now.date(), drift, notice, patches=patches, now=now, calendar=calendar,
            observe=observe,
        )  # fmt: skip
        hotpatch_status = {**verdict.status, **({"lastAssessToken": assess_token} if assess_token else {})}
        conditions.append(verdict.condition)
        metrics.set_hotpatch(namespace, name, verdict.condition.reason, bool(verdict.status.get("rebootPending")),
                             int(verdict.status.get("failedPatchCount") or 0))  # fmt: skip
        metrics.LAST_CHECK.labels(namespace, name, "hotpatch").set(time.time())
    metrics.CHECK_DURATION.labels("hotpatch").observe(time.perf_counter() - started)

    smb_status = None
    if Capability.SMB_OVER_QUIC in caps and spec.smb_over_quic is not None:
        smb_status, smb_condition = await _check_smb(
            spec, vm_status, namespace, name, compute, vm_name, memory, emit, now, log,
            read_secret, str(vm_wire.get("location") or ""), vm_wire, observe,
        )  # fmt: skip
        conditions.append(smb_condition)
    if spec.azure.vm_name is not None and owner is not None:  # an existing VM: its second NIC by its own name
        found = discover(vm_identity(owner, spec.azure), vm)
        extended_nic = found.identity.extended_nic_name if found.second_nic else extended_nic
    if azure_extended.requested(spec) and network is not None and extended_nic is not None:
        xnet = await _check_extended_network(spec, namespace, name, compute, network, vm_name, extended_nic,
                                             memory, emit, log, observe)  # fmt: skip
        conditions.extend([xnet] if xnet is not None else [])
    if drift and not observe:  # remediation, after the round has read everything
        await azure_patches.restore_patch_settings(compute, rg, vm_name, spec)
        log.info("restored the patch settings of VirtualMachine/%s (%s)", vm_name, "; ".join(drift))
        emit("Warning", "HotpatchSettingsRestored",
             "patch settings were changed outside the operator (" + "; ".join(drift) + "); restored them")  # fmt: skip
    return CheckResult(vm_status, tuple(conditions), hotpatch_status, smb_status)


async def _check_extended_network(
    spec: AzureEditionVMSpec, namespace: str, name: str, compute: Any, network: Any, vm_name: str,
    extended_nic: str, memory: CheckMemory, emit: EventSink, log: Log, observe: bool = False,
) -> Condition | None:  # fmt: skip
    """Network prerequisites (static facts cached, connection and NIC read now), then the guest through
    Run Command at most every in-guest interval (backing off per failure, like the SMB look).

    ``None`` when the network could not be read (no answer, no permission): the condition keeps what it
    said, and the other checks of the round still count; a Warning says why, once per streak."""
    started = time.perf_counter()
    look = memory.network_guest
    try:
        problems = await azure_extended.network_problems(compute, network, spec, extended_nic)
    except AzureError as err:
        if not memory.network_unreadable:
            emit("Warning", "ExtendedNetworkCheckFailed",
                 f"could not read the network for Extended Network's checks: {getattr(err, 'message', None) or err}"[:1000])  # fmt: skip
        memory.network_unreadable = True
        return None
    memory.network_unreadable = False
    clock = time.monotonic()
    if not observe and clock - look.checked_at >= memory.wait(
        look, troubled=xn.check_guest(look.seen) is not None
    ):
        look.checked_at = clock
        try:
            stdout = await _run_command(compute, spec.azure.resource_group, vm_name, xn.STATUS_SCRIPT, log)
            look.succeeded(xn.parse_guest(stdout))
        except (AzureError, xn.GuestNetworkOutputError) as err:
            look.failed(err, emit, "Extended Network")
        metrics.LAST_CHECK.labels(namespace, name, "extended_network_in_guest").set(time.time())
    problems.append(xn.check_guest(look.seen))
    note = (
        OBSERVE_GUEST_NOTE if observe else look.note(memory.in_guest_interval, memory.in_guest_min_interval)
    )
    metrics.CHECK_DURATION.labels("extended_network").observe(time.perf_counter() - started)
    metrics.LAST_CHECK.labels(namespace, name, "extended_network").set(time.time())
    return xn.extended_network_condition(problems, note)


async def _run_command(compute: Any, rg: str, vm_name: str, script: list[str], log: Log) -> str:
    """One Run Command (a write: it counts against the VM's update budget), logged once; its stdout."""
    poller = await compute.virtual_machines.begin_run_command(
        rg, vm_name, compute_models.RunCommandInput(command_id="RunPowerShellScript", script=script)
    )
    log.info("started a Run Command on VirtualMachine/%s (%d lines of PowerShell)", vm_name, len(script))
    return run_command_stdout(await poller.result())


async def _check_smb(
    spec: AzureEditionVMSpec, vm_status: Mapping[str, Any], namespace: str, name: str, compute: Any,
    vm_name: str, memory: CheckMemory, emit: EventSink, now: dt.datetime, log: Log,
    read_secret: SecretReader | None = None, location: str = "", vm_wire: Mapping[str, Any] | None = None,
    observe: bool = False,
) -> tuple[dict[str, Any], Condition]:  # fmt: skip
    smb = spec.smb_over_quic
    assert smb is not None
    rg = spec.azure.resource_group
    address = vm_status.get("publicIPAddress") or vm_status.get("privateIPAddress")
    started = time.perf_counter()
    if address:
        observed = await probe_smb_quic(address, smb.port, smb.server_name, timeout=PROBE_TIMEOUT_SECONDS)
    else:
        observed = EndpointUnreachable("", smb.port, "the VM has no IP address yet")
    metrics.CHECK_DURATION.labels("smb_probe").observe(time.perf_counter() - started)
    metrics.LAST_CHECK.labels(namespace, name, "smb_probe").set(time.time())

    look = memory.smb_guest
    clock = time.monotonic()
    since_guest = clock - look.checked_at
    spacing = memory.wait(look, troubled=True)  # least time between looks, backing off per failure
    due = since_guest >= memory.in_guest_interval
    # Worth a look inside (rate-limited): the endpoint is silent, or it serves a certificate the guest's
    # mapping did not name when we last asked (a renewal, or a wrong mapping).
    served = observed.thumbprint if isinstance(observed, CertificateObservation) else None
    known = look.seen.mapping_for(smb.server_name) if look.seen else None
    changed = served is not None and (known is None or known.thumbprint != served)
    worried = isinstance(observed, EndpointUnreachable) or changed
    looked = False
    if (due or worried) and since_guest >= spacing and not observe:
        started = time.perf_counter()
        look.checked_at = clock
        try:
            found = parse_guest_state(await _run_command(compute, rg, vm_name, STATUS_SCRIPT, log))
            if not found.smb_quic_enabled and not observe:
                enabled = parse_guest_state(await _run_command(compute, rg, vm_name, ENABLE_SCRIPT, log))
                found = GuestState(enabled.smb_quic_enabled, found.mappings)
                emit("Warning", "SMBOverQUICReEnabled",
                     f"SMB over QUIC was disabled on the VM (EnableSMBQUIC false); re-enabled it for {smb.server_name}")  # fmt: skip
                observed = await probe_smb_quic(address, smb.port, smb.server_name, timeout=PROBE_TIMEOUT_SECONDS) \
                    if address else observed  # fmt: skip
            look.succeeded(found)
            looked = True
        except (AzureError, GuestOutputError) as err:
            # Back off per VM (Run Command counts against the VM's update budget) and say so in the
            # condition, instead of repeating the Run Command every round.
            look.failed(err, emit, "SMB over QUIC")
        metrics.CHECK_DURATION.labels("smb_in_guest").observe(time.perf_counter() - started)
        metrics.LAST_CHECK.labels(namespace, name, "smb_in_guest").set(time.time())

    rotation_note, rotation_status = "", {}
    source = smb.certificate
    if observe:
        rotation_note = OBSERVE_SMB_NOTE
    elif source is not None and (source.key_vault is not None or read_secret is not None):  # rotate from it
        served = observed.thumbprint if isinstance(observed, CertificateObservation) else None
        if source.key_vault is not None:
            rotated = await key_vault_round(
                spec=spec, vm_wire=vm_wire or {}, server_name=smb.server_name, served=served, guest=look.seen,
                memory=memory.smb_rotation, compute=compute, rg=rg, vm_name=vm_name, location=location, emit=emit,
                log=log, now=now,
            )  # fmt: skip
        else:
            assert source.secret_ref is not None and read_secret is not None
            rotated = await rotation_round(
                secret_name=source.secret_ref.name, read_secret=read_secret, server_name=smb.server_name,
                served=served, guest=look.seen, memory=memory.smb_rotation, compute=compute, rg=rg,
                vm_name=vm_name, location=location, emit=emit, log=log, now=now,
            )  # fmt: skip
        rotation_note, rotation_status = rotated.note, rotated.status
        if rotated.guest is not None:  # the map (or status) script printed the state it left
            look.succeeded(rotated.guest)
            look.checked_at, looked = time.monotonic(), True
        if rotated.mapped:
            observed = await probe_smb_quic(address, smb.port, smb.server_name, timeout=PROBE_TIMEOUT_SECONDS) \
                if address else observed  # fmt: skip
            served = observed.thumbprint if isinstance(observed, CertificateObservation) else None
            if confirm(memory.smb_rotation, served, rotation_status["certificateSource"], emit, now):
                rotation_status["lastRotated"] = now
    if (
        smb.client_access is not None and not observe
    ):  # declared client access, corrected when a look saw it differ
        fresh, access_note = await access_round(
            access=smb.client_access, server_name=smb.server_name, guest=look.seen, memory=memory.smb_rotation,
            compute=compute, rg=rg, vm_name=vm_name, location=location, emit=emit, log=log,
        )  # fmt: skip
        if fresh is not None:
            look.succeeded(fresh)
        rotation_note = "; ".join(n for n in (rotation_note, access_note) if n)
    if (
        smb.alternative_port is not None and not observe
    ):  # the alternative QUIC port, corrected when it differs
        fresh, ports_note = await ports_round(
            port=smb.alternative_port, guest=look.seen, memory=memory.smb_rotation, compute=compute, rg=rg,
            vm_name=vm_name, location=location, emit=emit, log=log,
        )  # fmt: skip
        if fresh is not None:
            look.succeeded(fresh)
        rotation_note = "; ".join(n for n in (rotation_note, ports_note) if n)
    guest: GuestState | None = look.seen
    verdict = evaluate_certificate(observed, smb.server_name, smb.expiry_warning_days, now,
                                   smb_enabled=guest.smb_quic_enabled if guest else None)  # fmt: skip
    cert = verdict.certificate
    reason, message, ok = str(verdict.reason), verdict.message, verdict.condition_status
    # A certificate rotated since the last in-guest look: the remembered mapping is stale, not wrong.
    # Judge by the probe until the next look (no false CertificateInvalid after a rotation).
    mapping_known = (looked or not changed) and memory.smb_rotation.pending is None  # mid-rotation: not wrong
    if guest is not None and isinstance(observed, CertificateObservation) and mapping_known:
        problems = mapping_problems(guest, smb.server_name, observed.thumbprint)
        if problems and ok:
            reason, message, ok = "CertificateInvalid", "; ".join(problems), False
    if note := look.note(memory.in_guest_interval, memory.in_guest_min_interval):
        message += f" ({note})"
    if rotation_note:
        message += f" ({rotation_note})"
    if fqdn := vm_status.get("fqdn"):  # reachable by name: the public IP's DNS label
        message += reachability_note(smb.server_name, str(fqdn))
    served_ports = None
    if smb.alternative_port is not None:  # the alternative port is probed too (a handshake: no Azure call)
        from .smb_ports import ports_served

        alt = await probe_smb_quic(address, smb.alternative_port, smb.server_name, timeout=PROBE_TIMEOUT_SECONDS) \
            if address else None  # fmt: skip
        served_ports, ports_note = ports_served(smb.port, observed, smb.alternative_port, alt)
        if ports_note:
            message += f" ({ports_note})"
    state = "Invalid" if reason == "CertificateInvalid" else str(verdict.state)
    smb_status: dict[str, Any] = {"serverName": smb.server_name, "state": state, "source": "Probe"}
    if guest is not None:
        smb_status["serverEnabled"] = guest.smb_quic_enabled
    if served_ports is not None:
        smb_status["ports"] = served_ports
    smb_status.update({k: format_timestamp(v) if isinstance(v, dt.datetime) else v
                       for k, v in rotation_status.items()})  # fmt: skip
    if cert is not None:
        smb_status.update({
            "notAfter": format_timestamp(cert.not_after), "daysRemaining": verdict.days_remaining,
            "subject": text.field(cert.subject), "issuer": text.field(cert.issuer), "thumbprint": cert.thumbprint,
            "dnsNames": text.fields(cert.dns_names),  # the guest's certificate: visible, bounded
        })  # fmt: skip
    elif guest is not None and (mapping := guest.mapping_for(smb.server_name)) and mapping.not_after:
        days = (mapping.not_after - now) // dt.timedelta(days=1)
        smb_status.update({"notAfter": format_timestamp(mapping.not_after), "daysRemaining": days,
                           "thumbprint": mapping.thumbprint, "source": "InGuest"})  # fmt: skip
    metrics.set_certificate(namespace, name, state,
                            cert.not_after.timestamp() if cert else None, verdict.days_remaining)  # fmt: skip
    if guest is not None:
        metrics.SMB_ENABLED.labels(namespace, name).set(1 if guest.smb_quic_enabled else 0)
    return smb_status, condition(ConditionType.SMB_CERTIFICATE_VALID, ok, reason, message)
