"""The thin shell: make Azure match the spec (``ensure_vm``) or let go of it (``delete_vm``).

Every decision is made in ``specs`` (what to send, what differs) and ``errors`` (what a failure
means); every write goes through the one asynchronous ``driver``, which never waits for Azure: a
long operation raises ``InProgress`` and is polled on the next pass (``OperationState`` remembers
it, also across restarts). The calls stay few and countable:

* create: GET VM (404) → [GET/PUT public IP] → GET/PUT NIC(s) → PUT VM, one operation per pass;
* steady state: GET VM, GET NIC(s), [GET public IP] and **no writes**;
* change of VM size / tags / patch settings: the same GETs and exactly one PATCH of the VM;
* a resource in flight without a recorded operation (someone else's) is waited for with GETs;
* a resource whose owner tags name another object or cluster is never touched, one with none only when
  the spec adopts it (``specs.ownership``; the rules per kind in ``resource_specs``).

Every Azure failure leaves as ``AzureRetryableError`` or ``AzurePermanentError``.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from .. import reasons as vocab
from ..api.v1alpha1 import AzureEditionVMSpec, DeletionPolicy, OnMissing, VMStatus
from ..images import OFFER, PUBLISHER, Capability, ImageReference, row_for_sku
from . import nsg_specs, specs
from .clients import AzureClients
from .driver import (
    Driver,
    InProgress,
    OperationState,
    ResourceSpec,
)
from .errors import AzurePermanentError, AzureRetryableError, from_exception
from .resource_specs import (
    NetworkInterfaceSpec,
    PublicIPSpec,
    SecurityGroupSpec,
    Untag,
    VirtualMachineSpec,
)
from .resources import NothingToChange, Parameters, SdkResource
from .sdk import compute, network
from .specs import AdminLogin, Ownership, VMIdentity

CredentialsSource = AdminLogin | Callable[[], Awaitable[AdminLogin]]
"""The admin login, or an async loader that is only called when a VM must be created."""

_AZURE_FAILURES = (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ClientAuthenticationError,
    TimeoutError,
)

# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ObservedVM:
    """What Azure reports about the VM after ``ensure_vm``; ``to_status()`` is docs/reference.md's ``status.vm``."""

    resource_id: str
    name: str
    vm_id: str | None
    provisioning_state: str | None
    power_state: str | None
    vm_size: str | None
    private_ip_address: str | None
    public_ip_address: str | None
    extended_private_ip_address: str | None
    patch: specs.PatchView
    tags: Mapping[str, str]
    image: Mapping[str, str | None]
    drift: tuple[str, ...] = ()
    """Differences the operator reports but does not fix (the image, NICs that can only change when stopped)."""
    actions: tuple[str, ...] = ()
    """The writes this pass made, e.g. ``created VM x`` or ``updated VM x: vmSize``; empty in steady state."""
    events: tuple[tuple[str, str, str], ...] = ()
    """Events to post (type, reason, message), e.g. ``VMRecreated``."""
    image_ref: ImageReference | None = None
    """The image the VM runs, from Azure (status.image is written from it, never read back)."""
    fqdn: str | None = None
    """The public IP's DNS name (dnsSettings.fqdn), when it has a label."""
    would_change: tuple[str, ...] = ()
    """Observe only: what a fully managed pass would have written, in words (``observe_message``)."""
    identity: VMIdentity | None = field(default=None, compare=False)
    """The names as found: for a VM named by spec.azure.vmName, its NICs, public IP and disk as discovered
    from it (e.g. the extended NIC the Extended Network checks read)."""
    model: Any = field(default=None, repr=False, compare=False)
    """The VM as this pass last read it (with its instance view when asked for): the capability checks
    folded into the pass use it instead of a GET of their own. Dropped with the ObservedVM."""

    def observe_message(self) -> str:
        """What an observed object's status says of Azure against the spec: e.g. ``observe only: would
        change: virtualMachines/x: vmSize Standard_D2s_v5 → Standard_D4s_v5 ...; tags ...``."""
        if not self.would_change:
            return "observe only: Azure matches the spec; nothing would change"
        return "observe only: would change: " + "; ".join(self.would_change)

    def to_status(self) -> dict[str, Any]:
        return VMStatus(
            resource_id=self.resource_id,
            vm_id=self.vm_id,
            provisioning_state=self.provisioning_state,
            power_state=self.power_state,
            private_ip_address=self.private_ip_address,
            public_ip_address=self.public_ip_address,
            fqdn=self.fqdn,
        ).to_wire()


class DeletionOutcome(enum.StrEnum):
    DELETED = "deleted"
    ABSENT = "absent"
    UNTAGGED = "untagged"  # Orphan: our tags removed
    SKIPPED = "skipped"  # not ours: left alone


@dataclass
class DeletionReport:
    """What ``delete_vm`` did to each resource, by ARM resource type and name."""

    outcomes: list[tuple[str, str, DeletionOutcome, str]] = field(default_factory=list)

    def add(self, kind: str, name: str, outcome: DeletionOutcome, note: str = "") -> None:
        """Record an outcome; a resource deleted (or untagged) by an earlier pass stays so."""
        for i, (k, n, o, _) in enumerate(self.outcomes):
            if (k, n) == (kind, name):
                if (
                    o in (DeletionOutcome.DELETED, DeletionOutcome.UNTAGGED)
                    and outcome is DeletionOutcome.ABSENT
                ):
                    return
                self.outcomes[i] = (kind, name, outcome, note)
                return
        self.outcomes.append((kind, name, outcome, note))

    def of(self, outcome: DeletionOutcome) -> list[str]:
        return [name for _, name, o, _ in self.outcomes if o is outcome]

    @property
    def skipped(self) -> list[str]:
        return self.of(DeletionOutcome.SKIPPED)


# ----------------------------------------------------------------------------- helpers


@asynccontextmanager
async def _azure_errors() -> AsyncIterator[None]:
    """Turn azure-core/identity/timeout failures into AzureRetryableError/AzurePermanentError."""
    try:
        yield
    except (AzurePermanentError, AzureRetryableError, InProgress):
        raise
    except _AZURE_FAILURES as exc:
        raise from_exception(exc) from exc


async def _credentials(source: CredentialsSource) -> AdminLogin:
    if callable(source):
        return await source()
    return source


class ImageChangeRequired(Exception):
    """The spec asks for a capability the VM's image (read from Azure) cannot carry."""

    def __init__(self, sku: str, missing: tuple[Capability, ...]) -> None:
        caps = ", ".join(missing)
        super().__init__(
            f"the VM runs {sku}, which cannot carry {caps}; a VM cannot change its image in place: "
            f"remove {caps} from spec.capabilities, or create a new AzureEditionVM for it"
        )


def _image(ref: Mapping[str, str | None] | None, why: str) -> ImageReference | None:
    row = row_for_sku(ref.get("sku") or "") if ref else None
    if ref is None or row is None:
        return None
    return ImageReference(
        sku=row.sku,
        version=ref.get("version") or "latest",
        windows_server_version=row.version,
        experience=row.experience,
        reason=f"{row.sku}: {why}",
        publisher=ref.get("publisher") or "MicrosoftWindowsServer",
        offer=ref.get("offer") or "WindowsServer",
    )


def _image_fields(vm: compute.VirtualMachine | None) -> dict[str, str] | None:
    """storageProfile.imageReference as Azure reports it (publisher, offer, sku, version)."""
    ref = specs.attr_path(vm, "properties", "storage_profile", "image_reference")
    if ref is None or not ref.sku:
        return None
    fields_ = {"publisher": ref.publisher, "offer": ref.offer, "sku": ref.sku, "version": ref.version}
    return {k: v for k, v in fields_.items() if v}


def image_of_vm(vm: compute.VirtualMachine | None) -> ImageReference | None:
    """The image a VM runs, from Azure's storageProfile.imageReference and the catalog (never status)."""
    return _image(
        _image_fields(vm), "the image the VM runs (read from Azure; an image cannot change in place)"
    )


def fitting_image(image: ImageReference | None, spec: AzureEditionVMSpec) -> ImageReference | None:
    """``image`` when it is the catalog's publisher and offer and fits the spec's pins and capabilities."""
    if image is None or (image.publisher.lower(), image.offer.lower()) != (PUBLISHER.lower(), OFFER.lower()):
        return None
    row = row_for_sku(image.sku)
    pins = spec.image_pins()
    if row is None or not pins.matches(row) or not row.carries_all(spec.capabilities):
        return None
    if pins.image_version != "latest" and image.version != pins.image_version:
        return None
    return image


def recorded_image(state: OperationState, spec: AzureEditionVMSpec) -> ImageReference | None:
    """The image the last VM ran (``OperationState.image``, recorded only from a VM Azure reported
    provisioned, in the operator's sealed state), to recreate a VM deleted outside as it was rather than
    from what the catalog would choose today; only when it is the catalog's publisher and offer and still
    fits the spec's pins and capabilities (``fitting_image``). Anything else comes from the spec and the
    catalog. (The record outlives ``vm_id``, which is cleared when the loss is announced: a recreate that
    waits for its network first must still use it.)"""
    image = _image(state.image, "the image the deleted VM ran (recorded from Azure; recreated as it was)")
    return fitting_image(image, spec)


# ----------------------------------------------------------------------------- ensure


@dataclass
class _Pass:
    """One pass over one object: the clients, the names, the driver and the writes made so far."""

    clients: AzureClients
    identity: VMIdentity
    driver: Driver
    actions: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def rg(self) -> str:
        return self.identity.resource_group

    def of(self, spec: VirtualMachineSpec | PublicIPSpec | SecurityGroupSpec | NetworkInterfaceSpec,
           patch_type: type | None = None) -> SdkResource:  # fmt: skip
        """The SDK resource a spec object is driven through."""
        return self.resource(spec.kind, spec.name, spec, patch_type)

    def resource(self, kind: str, name: str, spec: Parameters | None = None,
                 patch_type: type | None = None) -> SdkResource:  # fmt: skip
        sub = self.identity.subscription_id
        ops = {
            "virtualMachines": lambda: self.clients.compute(sub).virtual_machines,
            "disks": lambda: self.clients.compute(sub).disks,
            "networkInterfaces": lambda: self.clients.network(sub).network_interfaces,
            "publicIPAddresses": lambda: self.clients.network(sub).public_ip_addresses,
            "networkSecurityGroups": lambda: self.clients.network(sub).network_security_groups,
        }[kind]()
        provider = "Microsoft.Compute" if kind in ("virtualMachines", "disks") else "Microsoft.Network"
        return SdkResource(
            kind, name, self.rg, ops, spec or NothingToChange(), patch_type,
            resource_id=self.identity.resource_id(provider, kind, name), subscription_id=sub,
            endpoint=self.clients.settings.base_url,
        )  # fmt: skip


async def ensure_vm(
    clients: AzureClients,
    identity: VMIdentity,
    spec: AzureEditionVMSpec,
    image: ImageReference,
    credentials: CredentialsSource,
    *,
    state: OperationState | None = None,
    instance_view: bool = False,
    wait: bool = False,
    events: list[tuple[str, str, str]] | None = None,
    observe: bool = False,
) -> ObservedVM:
    """Create what is missing, correct what we own and drifted, and report the VM.

    ``observe`` (managementPolicy Observe): the same reads and spec objects, but no PUT, PATCH, DELETE or
    POST; what they would send is reported in ``ObservedVM.would_change``, and a missing VM is
    ``VMNotFound``, never created (nor the admin login read).

    Non-blocking: raises ``InProgress`` while an operation runs (``state`` records it); with
    ``wait=True`` (tests, tools) it polls until done, at most the operation timeout.
    ``credentials`` may be an async loader: it is only called when the VM has to be created.
    ``events`` collects Events to post (e.g. ``VMRecreated``), also from a pass that ends in progress.
    ``observe`` (spec.managementPolicy Observe): reads only; a write it would make raises ``WriteRefused``.
    """
    state = state if state is not None else OperationState()
    deadline = time.monotonic() + clients.settings.operation_timeout
    actions: list[str] = []
    events = events if events is not None else []  # Events survive a pass that ends in progress
    while True:
        try:
            async with _azure_errors():
                log = identity.owner.logger(__name__)
                driver = Driver(
                    state, on_write=actions.append, logger=log, poll_seconds=clients.settings.polling_interval,
                    observe=observe,
                )  # fmt: skip
                p = _Pass(clients, identity, driver, actions, events)
                observed = await _ensure(p, spec, image, credentials, instance_view)
                return replace(observed, would_change=tuple(driver.would_change))
        except InProgress as progress:
            if not wait:
                raise
            if time.monotonic() + progress.retry_after > deadline:
                raise AzureRetryableError(
                    "OperationTimeout", f"{progress} after {clients.settings.operation_timeout:.0f}s",
                    reason=vocab.RETRYING, retry_after=progress.retry_after,
                ) from None  # fmt: skip
            await asyncio.sleep(min(progress.retry_after, clients.settings.polling_interval))


def _network_specs(p: _Pass, spec: AzureEditionVMSpec, tags: Mapping[str, str]) -> _NetworkSpecs:
    """The spec objects of the VM's network, by the derived names."""
    identity, plan = p.identity, specs.network_plan(spec)
    common = {
        "owner": identity.owner,
        "tags": tags,
        "poll_seconds": p.driver.poll_seconds,
        "identity": identity,
        "observing": p.driver.observe,
        "adopt": spec.azure.adopt,
    }
    ports = nsg_specs.smb_ports(spec)
    our_nsg = nsg_specs.nsg_id(identity)
    return _NetworkSpecs(
        public_ip=PublicIPSpec(identity.public_ip_name, dns_label=spec.azure.public_ip_dns_label, **common),
        nsg=SecurityGroupSpec(nsg_specs.nsg_name(identity), ports=ports, **common),
        nic=NetworkInterfaceSpec(
            identity.nic_name, subnet_id=plan.primary_subnet_id,
            public_ip_id=identity.public_ip_id if plan.public_ip else None,
            nsg=our_nsg if ports is not None else None, our_nsg=our_nsg, **common,
        ),
        extended_nic=NetworkInterfaceSpec(
            identity.extended_nic_name, subnet_id=plan.extended_subnet_id or "", ip_forwarding=True, **common
        ),
    )  # fmt: skip


@dataclass
class _NetworkSpecs:
    public_ip: PublicIPSpec
    nsg: SecurityGroupSpec
    nic: NetworkInterfaceSpec
    extended_nic: NetworkInterfaceSpec


async def _ensure(
    p: _Pass,
    spec: AzureEditionVMSpec,
    image: ImageReference,
    credentials: CredentialsSource,
    instance_view: bool,
) -> ObservedVM:
    """The order in which the driver runs the spec objects: finish what is recorded, read the VM and
    decide whose it is, then the network (the VM refers to the NICs, the primary NIC to the public IP),
    then the VM; what cannot change in place is reported as drift."""
    identity = p.identity
    tags = specs.desired_tags(spec, identity.owner)
    plan = specs.network_plan(spec)
    drift: list[str] = []
    net = _network_specs(p, spec, tags)
    vm_spec = VirtualMachineSpec(identity.vm_name, identity.owner, tags, poll_seconds=p.driver.poll_seconds,
                                 identity=identity, spec=spec, image=image, adopt=spec.azure.adopt,
                                 observing=p.driver.observe)  # fmt: skip
    pip_res, nsg_res, nic, ext = (p.of(s) for s in (net.public_ip, net.nsg, net.nic, net.extended_nic))
    vm_res = p.of(vm_spec, patch_type=compute.VirtualMachineUpdate)
    if instance_view:
        vm_res.ops = _ExpandInstanceView(vm_res.ops)
    everything: list[ResourceSpec] = [pip_res, nsg_res, nic, ext, vm_res]
    finished = await p.driver.finish_recorded({(r.kind, r.name.lower()): r for r in everything})

    vm = await vm_res.get()
    if identity.named:
        return await _ensure_named(p, spec, vm_res, vm_spec, vm)
    if vm is None and p.driver.observe:
        raise _vm_not_found(f"observe only: VM {identity.vm_name} does not exist in resource group "
                            f"{identity.resource_group}; the operator creates it only under managementPolicy Full")  # fmt: skip
    if vm is not None:
        _take(p, vm_spec, vm)
        _refuse_missing_capabilities(vm, spec)
    if vm is None and p.driver.state.vm_id:
        if spec.azure.on_missing == OnMissing.REPORT:
            raise _vm_not_found(f"VM {identity.vm_name} (vmId {p.driver.state.vm_id}) was deleted outside the "
                                "operator; spec.azure.onMissing is Report: delete the AzureEditionVM, or set "
                                "onMissing: Recreate")  # fmt: skip
        again = recorded_image(p.driver.state, spec) or image
        p.events.append(("Warning", "VMRecreated",
                         f"VM {identity.vm_name} (vmId {p.driver.state.vm_id}) was deleted outside the operator; "
                         f"creating it again from {again.sku} (spec.azure.onMissing: Recreate)"))  # fmt: skip
        p.driver.state.vm_id = None
    if vm is None:
        # Before anything is created: without the admin login no VM can be, so create no network either.
        vm_spec.login = await _credentials(credentials)
        vm_spec.image = recorded_image(p.driver.state, spec) or image

    pip = await p.driver.ensure(pip_res) if plan.public_ip else None
    if net.nsg.ports is not None:
        await p.driver.ensure(nsg_res)
    nic_model = await p.driver.ensure(nic)
    ext_model = None
    attached = _attached_nic_ids(vm)
    if plan.extended_subnet_id is not None:
        if vm is None or identity.extended_nic_id.lower() in attached:
            ext_model = await p.driver.ensure(ext)
        else:
            drift.append(
                "ExtendedNetwork was requested after the VM was created: a second NIC can only be attached to a "
                "deallocated VM, which the operator does not do on its own; create a new AzureEditionVM"
            )
    elif identity.extended_nic_id.lower() in attached:
        drift.append(
            "ExtendedNetwork is no longer requested but the VM still has its second NIC; it can only be detached "
            "from a deallocated VM, which the operator does not do on its own"
        )
    if vm is not None and identity.nic_id.lower() not in attached:
        drift.append(f"the VM's primary NIC {identity.nic_name} was detached outside the operator; "
                     "NICs can only be attached to a deallocated VM, which the operator does not do on its own")  # fmt: skip
    # Only a NIC update can let go of a public IP or a group: a NIC just created never held one (two
    # GETs fewer per created VM).
    nic_written = f"updated networkInterfaces/{identity.nic_name}" in p.actions or (
        finished is not None and finished.is_for(nic) and finished.action != "created"
    )
    if nic_written and not plan.public_ip:
        # spec.azure.publicIP turned off: once the NIC has let go of our public IP, delete it.
        dropped = await pip_res.get()
        if dropped is not None and specs.ownership(dropped.tags, identity.owner) in specs.TAKEN:
            await p.driver.delete(pip_res, dropped)
    if nic_written and net.nsg.ports is None:
        # alternativePort removed: once the NIC has let go of our group, delete it.
        group = await nsg_res.get()
        if group is not None and specs.ownership(group.tags, identity.owner) in specs.TAKEN:
            await p.driver.delete(nsg_res, group)

    if vm is not None and (message := specs.image_drift(vm_spec.desired(), vm)) is not None:
        drift.append(message)
    vm = await _ensure_vm_last(p, vm_res, vm)
    return _observe(identity, vm, nic_model, ext_model, pip, drift, p.actions, p.events)


def _vm_not_found(message: str) -> AzurePermanentError:
    return AzurePermanentError(vocab.VM_NOT_FOUND, message, 404, reason=vocab.VM_NOT_FOUND)


def _take(p: _Pass, vm_spec: VirtualMachineSpec, vm: Any) -> None:
    """The VM's ownership and busy rules; observing a VM without our tags says what taking it needs."""
    decision = vm_spec.check(vm)
    if p.driver.observe and decision is Ownership.UNMANAGED and not vm_spec.adopt:
        p.driver.would_change.append(
            f"virtualMachines/{vm_spec.name} carries no owner tag of this operator: under managementPolicy Full "
            "it is taken only with spec.azure.adopt: true"
        )


def _refuse_missing_capabilities(vm: Any, spec: AzureEditionVMSpec) -> None:
    runs = image_of_vm(vm)
    if runs is not None:
        missing = tuple(c for c in spec.capabilities if not (row_for_sku(runs.sku) or _NOROW).carries(c))
        if missing:
            raise ImageChangeRequired(runs.sku, missing)


async def _ensure_vm_last(p: _Pass, vm_res: SdkResource, vm: Any) -> Any:
    """The VM after its network; what this pass saw provisioned is remembered (vmId, image)."""
    vm = await p.driver.ensure(vm_res, vm)
    if vm is None:
        raise AzureRetryableError(
            "ResourceNotFound", f"VM {vm_res.name} is not visible yet", reason="ResourceNotFound"
        )
    if specs.provisioning_state(vm) and specs.provisioning_state(vm).lower() == "succeeded":
        p.driver.state.vm_id = specs.attr_path(vm, "properties", "vm_id") or p.driver.state.vm_id or vm.id
        p.driver.state.image = _image_fields(vm) or p.driver.state.image
    return vm


async def _ensure_named(
    p: _Pass, spec: AzureEditionVMSpec, vm_res: SdkResource, vm_spec: VirtualMachineSpec, vm: Any
) -> ObservedVM:
    """An existing VM the spec names (``spec.azure.vmName``): never created, never recreated. Its NICs and
    public IP are discovered from it and only read; what the spec says otherwise is reported as drift. The
    VM alone is written: tags (taking it, with ``adopt`` when it carries none of ours), size, patch
    settings and identity, in one PATCH."""
    identity = p.identity
    if vm is None:
        gone = f" (vmId {p.driver.state.vm_id}, deleted outside the operator)" if p.driver.state.vm_id else ""
        raise _vm_not_found(
            f"VM {identity.vm_name} named by spec.azure.vmName does not exist in resource group "
            f"{identity.resource_group}{gone}; the operator never creates a VM under a name it is given: "
            "correct spec.azure.vmName (a new AzureEditionVM), or delete this one"
        )
    vm_spec.repair = False
    _take(p, vm_spec, vm)
    _refuse_missing_capabilities(vm, spec)
    vm_spec.image = fitting_image(image_of_vm(vm), spec) or vm_spec.image  # compare with what it runs
    found = specs.discover(identity, vm)
    identity = found.identity
    vm_spec.identity = identity
    drift = list(found.notes)
    plan = specs.network_plan(spec)
    common = {
        "owner": identity.owner,
        "tags": vm_spec.tags,
        "identity": identity,
    }  # to compare, never to send
    nic_model = ext_model = pip = None
    if found.primary_nic:
        nic_model = await p.resource("networkInterfaces", identity.nic_name).get()
        want = NetworkInterfaceSpec(identity.nic_name, subnet_id=plan.primary_subnet_id,
                                    public_ip_id=identity.public_ip_id if plan.public_ip else None, **common)  # fmt: skip
        drift += want.differences(nic_model) if nic_model is not None else []
        identity, note = specs.with_public_ip(identity, nic_model)
        drift += [note] if note else []
        if note is None and specs.nic_public_ip_id(nic_model) is not None:
            pip = await p.resource("publicIPAddresses", identity.public_ip_name).get()
            have = specs.attr_path(pip, "properties", "dns_settings", "domain_name_label")
            label = spec.azure.public_ip_dns_label
            if label is not None and have != label:
                drift.append(f"the VM's public IP {identity.public_ip_name} has DNS label {have!r}, the spec names "
                             f"{label!r}; the operator does not change an existing VM's address: change it in "
                             "Azure, or spec.azure.publicIPDnsLabel")  # fmt: skip
    if nsg_specs.smb_ports(spec) is not None:
        drift.append("spec.smbOverQuic.alternativePort: the operator puts its network security group only on NICs "
                     "it creates; admit the UDP ports on this VM's NIC or subnet in Azure")  # fmt: skip
    if plan.extended_subnet_id is not None:
        if found.second_nic:
            ext_model = await p.resource("networkInterfaces", identity.extended_nic_name).get()
            ext_want = NetworkInterfaceSpec(
                identity.extended_nic_name, subnet_id=plan.extended_subnet_id, **common
            )
            drift += ext_want.differences(ext_model) if ext_model is not None else []
        else:
            drift.append("ExtendedNetwork needs a second NIC on the extended subnet; this VM has none, and one can "
                         "only be attached to a deallocated VM, which the operator does not do on its own: attach "
                         "it in Azure, or remove ExtendedNetwork from spec.capabilities")  # fmt: skip
    if (message := specs.image_drift(vm_spec.desired(), vm)) is not None:
        drift.append(message)
    vm = await _ensure_vm_last(p, vm_res, vm)
    return _observe(identity, vm, nic_model, ext_model, pip, drift, p.actions, p.events)


_NOROW = type("_NoRow", (), {"carries": staticmethod(lambda c: False)})()


class _ExpandInstanceView:
    """The VM operations with ``$expand=instanceView`` on GET (power state at no extra call)."""

    def __init__(self, ops: Any) -> None:
        self._ops = ops

    def get(self, rg: str, name: str) -> Any:
        return self._ops.get(rg, name, expand="instanceView")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ops, name)


def _attached_nic_ids(vm: compute.VirtualMachine | None) -> set[str]:
    refs = specs.attr_path(vm, "properties", "network_profile", "network_interfaces") or []
    return {(r.id or "").lower() for r in refs}


def _observe(
    identity: VMIdentity,
    vm: compute.VirtualMachine,
    nic: network.NetworkInterface,
    ext_nic: network.NetworkInterface | None,
    pip: network.PublicIPAddress | None,
    drift: list[str],
    actions: list[str],
    events: list[tuple[str, str, str]] | None = None,
) -> ObservedVM:
    ref = specs.attr_path(vm, "properties", "storage_profile", "image_reference")
    image = {
        "publisher": getattr(ref, "publisher", None),
        "offer": getattr(ref, "offer", None),
        "sku": getattr(ref, "sku", None),
        "version": getattr(ref, "version", None),
        "exactVersion": getattr(ref, "exact_version", None),
    }
    return ObservedVM(
        resource_id=vm.id or identity.vm_id,
        name=vm.name or identity.vm_name,
        vm_id=specs.attr_path(vm, "properties", "vm_id"),
        provisioning_state=specs.provisioning_state(vm),
        power_state=specs.power_state(vm),
        vm_size=specs.enum_str(specs.attr_path(vm, "properties", "hardware_profile", "vm_size")),
        private_ip_address=specs.nic_private_ip(nic),
        public_ip_address=specs.attr_path(pip, "properties", "ip_address"),
        fqdn=specs.attr_path(pip, "properties", "dns_settings", "fqdn"),
        extended_private_ip_address=specs.nic_private_ip(ext_nic),
        patch=specs.patch_view(vm),
        tags=dict(vm.tags or {}),
        image=image,
        drift=tuple(drift),
        actions=tuple(actions),
        events=tuple(events or ()),
        image_ref=image_of_vm(vm),
        identity=identity,
        model=vm,
    )


# ----------------------------------------------------------------------------- delete

# Codes that, on delete, mean "nothing of ours can exist there": the finalizer may go.
NOTHING_THERE_CODES = frozenset({"ResourceGroupNotFound", "SubscriptionNotFound"})


async def delete_vm(
    clients: AzureClients, identity: VMIdentity, policy: DeletionPolicy, *,
    state: OperationState | None = None, wait: bool = False,
) -> DeletionReport:  # fmt: skip
    """Let go of the VM and everything created for it; idempotent (a 404 means done).

    Delete: the VM (its OS disk and NICs go with it by deleteOption), then whatever is left of the
    OS disk, the NICs and the public IP, in dependency order, one operation per pass (``InProgress``
    while Azure deletes). Orphan: remove the operator's tags from every resource and leave them
    running. Resources that are not ours (another object's or cluster's, or none) are skipped and reported.
    """
    state = state if state is not None else OperationState()
    deadline = time.monotonic() + clients.settings.operation_timeout
    report = DeletionReport()
    while True:
        try:
            async with _azure_errors():
                log = identity.owner.logger(__name__)
                driver = Driver(state, logger=log, poll_seconds=clients.settings.polling_interval)
                p = _Pass(clients, identity, driver)
                if state.operation is not None and state.operation.verb != "delete":
                    state.operation = None  # a create/update in flight: deleting supersedes it
                if policy is DeletionPolicy.ORPHAN:
                    return await _orphan(p, report)
                return await _delete(p, report)
        except InProgress as progress:
            if not wait or time.monotonic() + progress.retry_after > deadline:
                raise
            await asyncio.sleep(min(progress.retry_after, clients.settings.polling_interval))


def _order(p: _Pass) -> list[SdkResource]:
    """Deletion order. A VM named by spec.azure.vmName goes alone: its NICs, public IP and disk were never
    the operator's (its own deleteOptions say what goes with it)."""
    i = p.identity
    if i.named:
        return [p.resource("virtualMachines", i.vm_name, patch_type=compute.VirtualMachineUpdate)]
    return [
        p.resource("virtualMachines", i.vm_name, patch_type=compute.VirtualMachineUpdate),
        p.resource("disks", i.os_disk_name, patch_type=compute.DiskUpdate),
        p.resource("networkInterfaces", i.nic_name),
        p.resource("networkInterfaces", i.extended_nic_name),
        p.resource("publicIPAddresses", i.public_ip_name),
        p.resource("networkSecurityGroups", nsg_specs.nsg_name(i)),  # after the NIC that refers to it
    ]


async def _present(p: _Pass, report: DeletionReport) -> AsyncIterator[tuple[SdkResource, Any]]:
    """Each of our resources that exists, in deletion order, after any recorded operation finished;
    an absent one is reported as such. Shared by Delete and Orphan."""
    order = _order(p)
    await p.driver.finish_recorded({(r.kind, r.name.lower()): r for r in order})
    for res in order:
        existing = await res.get()
        if existing is None:
            report.add(res.kind, res.name, DeletionOutcome.ABSENT)
        else:
            yield res, existing


async def _delete(p: _Pass, report: DeletionReport) -> DeletionReport:
    async for res, existing in _present(p, report):
        # Only what carries our owner tag, the OS disk too: a disk of our name without it may be anyone's
        # (Compute creates ours from the VM model, untagged, with deleteOption Delete: it goes with our VM).
        if specs.ownership(existing.tags, p.identity.owner) not in specs.TAKEN:
            report.add(res.kind, res.name, DeletionOutcome.SKIPPED, "not ours")
            continue
        if res.kind == "disks" and existing.managed_by:
            report.add(res.kind, res.name, DeletionOutcome.SKIPPED, "attached to a VM")
            continue
        report.add(res.kind, res.name, DeletionOutcome.DELETED)  # before: the delete may still run
        await p.driver.delete(res, existing)
    return report


async def _orphan(p: _Pass, report: DeletionReport) -> DeletionReport:
    async for res, existing in _present(p, report):
        if specs.ownership(existing.tags, p.identity.owner) in (Ownership.FOREIGN, Ownership.OTHER_CLUSTER):
            report.add(res.kind, res.name, DeletionOutcome.SKIPPED, "another owner's")
            continue
        res.spec = Untag(res.kind, res.name)
        report.add(res.kind, res.name, DeletionOutcome.UNTAGGED)
        await p.driver.ensure(res, existing, read=False)
    return report
