"""The thin shell: make Azure match the spec (``ensure_vm``) or let go of it (``delete_vm``).

Every decision is made in ``specs`` (what to send, what differs) and ``errors`` (what a failure
means); this module only sequences the calls. It keeps them few and countable:

* create: GET VM (404) → [GET/PUT public IP] → GET/PUT NIC(s) → PUT VM, each PUT awaited as an LRO;
* steady state: GET VM, GET NIC(s), [GET public IP] and **no writes**;
* change of VM size / tags / reboot setting: the same GETs and exactly one PATCH of the VM;
* an operation found in flight after a restart (provisioningState Creating/Updating) is waited
  for with GETs, never re-sent; names are deterministic and PUT is idempotent, so even a re-sent
  create could not duplicate a VM;
* a resource whose owner-uid tag is another object's (or that has none) is never touched.

Every Azure failure leaves as ``AzureRetryableError`` or ``AzurePermanentError``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.polling import AsyncLROPoller
from azure.mgmt.compute import models as compute
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network import models as network
from azure.mgmt.network.aio import NetworkManagementClient

from ..api.v1alpha1 import AzureEditionVMSpec, DeletionPolicy, VMStatus
from ..images import ImageReference
from . import specs
from .clients import AzureClients
from .errors import REASON_CONFLICT, AzurePermanentError, AzureRetryableError, from_exception
from .specs import AdminCredentials, AdminLogin, Ownership, VMIdentity

log = logging.getLogger(__name__)

T = TypeVar("T")

CredentialsSource = AdminLogin | Callable[[], Awaitable[AdminLogin]]
"""The admin login, or an async loader that is only called when a VM must be created."""

_AZURE_FAILURES = (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ClientAuthenticationError,
    TimeoutError,
)
# 404 codes that mean "this resource is absent" (anything else, e.g. ResourceGroupNotFound, is an error).
_ABSENT_CODES = frozenset({"ResourceNotFound", "NotFound", "NotFoundError"})
# For diffs only: the password never takes part in a comparison.
_NO_LOGIN = AdminCredentials("", "")


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ObservedVM:
    """What Azure reports about the VM after ``ensure_vm``; ``to_status()`` is DESIGN §2's ``status.vm``."""

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

    def to_status(self) -> dict[str, Any]:
        return VMStatus(
            resource_id=self.resource_id,
            vm_id=self.vm_id,
            provisioning_state=self.provisioning_state,
            power_state=self.power_state,
            private_ip_address=self.private_ip_address,
            public_ip_address=self.public_ip_address,
        ).to_wire()

    def hotpatch_settings(self) -> dict[str, Any]:
        """The enrolment half of ``status.hotpatch`` (the patch state comes from the instance view)."""
        return {"enabled": self.patch.enable_hotpatching, "patchMode": self.patch.patch_mode}


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
    except (AzurePermanentError, AzureRetryableError):
        raise
    except _AZURE_FAILURES as exc:
        raise from_exception(exc) from exc


def _is_absent(exc: ResourceNotFoundError) -> bool:
    code = exc.error.code if exc.error is not None else None
    return code is None or code in _ABSENT_CODES


async def _get_or_none(call: Awaitable[T]) -> T | None:
    """The resource, or None on a plain 404 (ResourceGroupNotFound and friends still raise)."""
    try:
        return await call
    except ResourceNotFoundError as exc:
        if _is_absent(exc):
            return None
        raise


async def _finish(poller_call: Awaitable[AsyncLROPoller[T]], limit: float, what: str) -> T:
    """Start an LRO and wait for its result, at most ``limit`` seconds (it keeps running in Azure)."""
    poller = await poller_call
    try:
        async with asyncio.timeout(limit):
            return await poller.result()
    except TimeoutError:
        raise AzureRetryableError(
            "OperationTimeout",
            f"{what} did not finish within {limit:.0f}s; it continues in Azure and will be picked up",
            retry_after=None,
        ) from None


async def _wait_while_in_flight(
    get: Callable[[], Awaitable[T]], first: T, interval: float, limit: float
) -> T:
    """Poll GET until the resource leaves Creating/Updating: resume an operation, never re-send it."""
    current = first
    try:
        async with asyncio.timeout(limit):
            while specs.is_in_flight(specs.provisioning_state(current)):
                await asyncio.sleep(interval)
                current = await get()
    except TimeoutError:
        raise AzureRetryableError(
            "OperationInProgress",
            f"an operation on the resource is still {specs.provisioning_state(current)} after {limit:.0f}s",
            retry_after=interval,
        ) from None
    return current


def _refuse_if_not_ours(kind: str, name: str, tags: Mapping[str, str] | None, identity: VMIdentity) -> None:
    if specs.ownership(tags, identity.owner) is not Ownership.OURS:
        raise AzurePermanentError(
            "OwnershipConflict",
            specs.ownership_conflict_message(kind, name, tags, identity.owner),
            409,
            reason=REASON_CONFLICT,
        )


async def _credentials(source: CredentialsSource) -> AdminLogin:
    if callable(source):
        return await source()
    return source


# ----------------------------------------------------------------------------- ensure


@dataclass
class _Pass:
    """State of one ensure pass: the clients, the names, and the writes made so far."""

    clients: AzureClients
    identity: VMIdentity
    actions: list[str] = field(default_factory=list)

    @property
    def rg(self) -> str:
        return self.identity.resource_group

    @property
    def compute(self) -> ComputeManagementClient:
        return self.clients.compute(self.identity.subscription_id)

    @property
    def network(self) -> NetworkManagementClient:
        return self.clients.network(self.identity.subscription_id)

    def did(self, action: str) -> None:
        """Record (and log) a write: steady state is recognisable as a pass that did nothing."""
        log.info("%s: %s", self.identity.owner.ref, action)
        self.actions.append(action)

    @property
    def interval(self) -> float:
        return self.clients.settings.polling_interval

    @property
    def timeout(self) -> float:
        return self.clients.settings.operation_timeout

    async def ensure_public_ip(self, tags: Mapping[str, str]) -> network.PublicIPAddress:
        name = self.identity.public_ip_name
        ops = self.network.public_ip_addresses
        pip = await _get_or_none(ops.get(self.rg, name))
        if pip is None:
            pip = await _finish(
                ops.begin_create_or_update(self.rg, name, specs.public_ip_parameters(self.identity, tags)),
                self.timeout,
                f"creating public IP {name}",
            )
            self.did(f"created public IP {name}")
            return pip
        _refuse_if_not_ours("Public IP address", name, pip.tags, self.identity)
        pip = await _wait_while_in_flight(lambda: ops.get(self.rg, name), pip, self.interval, self.timeout)
        if (merged := specs.merged_tags(tags, pip.tags)) is not None:
            body = specs.with_tags(pip, merged)
            pip = await _finish(
                ops.begin_create_or_update(self.rg, name, body), self.timeout, f"tagging {name}"
            )
            self.did(f"updated public IP {name}: tags")
        return pip

    async def ensure_nic(
        self, name: str, subnet_id: str, tags: Mapping[str, str], public_ip_id: str | None
    ) -> tuple[network.NetworkInterface, str | None]:
        """The NIC, created or corrected; also the public IP id it dropped, if it dropped one."""
        ops = self.network.network_interfaces
        desired = specs.nic_parameters(self.identity, subnet_id, tags, public_ip_id)
        nic = await _get_or_none(ops.get(self.rg, name))
        if nic is None:
            nic = await _finish(
                ops.begin_create_or_update(self.rg, name, desired), self.timeout, f"creating NIC {name}"
            )
            self.did(f"created NIC {name}")
            return nic, None
        _refuse_if_not_ours("Network interface", name, nic.tags, self.identity)
        nic = await _wait_while_in_flight(lambda: ops.get(self.rg, name), nic, self.interval, self.timeout)
        change = specs.diff_nic(desired, nic)
        dropped = None
        if change is specs.NicChange.PUT:
            had = specs.nic_public_ip_id(nic)
            if had and not public_ip_id:
                dropped = had
            body = specs.nic_update_parameters(desired, nic)
            nic = await _finish(
                ops.begin_create_or_update(self.rg, name, body), self.timeout, f"updating NIC {name}"
            )
            self.did(f"updated NIC {name}: ip configuration")
        elif change is specs.NicChange.TAGS:
            body = specs.with_tags(nic, specs.merged_tags(tags, nic.tags) or {})
            nic = await _finish(
                ops.begin_create_or_update(self.rg, name, body), self.timeout, f"tagging {name}"
            )
            self.did(f"updated NIC {name}: tags")
        return nic, dropped

    async def delete_dropped_public_ip(self, pip_id: str) -> None:
        """After the NIC let go of our public IP (spec.azure.publicIP turned off), delete it."""
        if not specs.same_id(pip_id, self.identity.public_ip_id):
            return  # not the one we create: leave it
        ops = self.network.public_ip_addresses
        pip = await _get_or_none(ops.get(self.rg, self.identity.public_ip_name))
        if pip is not None and specs.ownership(pip.tags, self.identity.owner) is Ownership.OURS:
            await _finish(
                ops.begin_delete(self.rg, self.identity.public_ip_name), self.timeout, "deleting public IP"
            )
            self.did(f"deleted public IP {self.identity.public_ip_name}")

    async def get_vm(self, instance_view: bool) -> compute.VirtualMachine | None:
        expand = "instanceView" if instance_view else None
        return await _get_or_none(
            self.compute.virtual_machines.get(self.rg, self.identity.vm_name, expand=expand)
        )


async def ensure_vm(
    clients: AzureClients,
    identity: VMIdentity,
    spec: AzureEditionVMSpec,
    image: ImageReference,
    credentials: CredentialsSource,
    *,
    instance_view: bool = False,
) -> ObservedVM:
    """Create what is missing, correct what we own and drifted, and report the VM.

    ``instance_view=True`` reads the VM with ``$expand=instanceView`` (same number of calls) so
    ``power_state`` is filled; leave it off when a Hotpatch check reads the instance view anyway.
    ``credentials`` may be an async loader: it is only called when the VM has to be created.
    """
    async with _azure_errors():
        return await _ensure(_Pass(clients, identity), spec, image, credentials, instance_view)


async def _ensure(
    p: _Pass,
    spec: AzureEditionVMSpec,
    image: ImageReference,
    credentials: CredentialsSource,
    instance_view: bool,
) -> ObservedVM:
    identity = p.identity
    tags = specs.desired_tags(spec, identity.owner)
    plan = specs.network_plan(spec)
    vms = p.compute.virtual_machines
    drift: list[str] = []

    vm = await p.get_vm(instance_view)
    if vm is not None:
        _refuse_if_not_ours("Virtual machine", identity.vm_name, vm.tags, identity)
        if specs.is_deleting(specs.provisioning_state(vm)):
            raise AzureRetryableError(
                "ResourceBeingDeleted",
                f"VM {identity.vm_name} is being deleted; it will be created again once the deletion finishes",
                retry_after=p.interval,
            )
        vm = await _wait_while_in_flight(lambda: p.get_vm(instance_view), vm, p.interval, p.timeout)
        if vm is None:
            raise AzureRetryableError(
                "ResourceNotFound", f"VM {identity.vm_name} disappeared while we waited"
            )

    # Network first: the VM refers to the NICs, the primary NIC to the public IP.
    pip = await p.ensure_public_ip(tags) if plan.public_ip else None
    nic, dropped_pip = await p.ensure_nic(
        identity.nic_name, plan.primary_subnet_id, tags, pip.id if pip else None
    )
    ext_nic = None
    attached = _attached_nic_ids(vm)
    if plan.extended_subnet_id is not None:
        if vm is None or identity.extended_nic_id.lower() in attached:
            ext_nic, _ = await p.ensure_nic(identity.extended_nic_name, plan.extended_subnet_id, tags, None)
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
    if dropped_pip:
        await p.delete_dropped_public_ip(dropped_pip)

    if vm is None:
        login = await _credentials(credentials)
        body = specs.vm_parameters(identity, spec, image, login, tags)
        vm = await _finish(
            vms.begin_create_or_update(identity.resource_group, identity.vm_name, body),
            p.timeout,
            f"creating VM {identity.vm_name}",
        )
        p.did(f"created VM {identity.vm_name}")
        if instance_view:
            vm = await p.get_vm(True) or vm
    else:
        desired = specs.vm_parameters(identity, spec, image, _NO_LOGIN, tags)
        if (message := specs.image_drift(desired, vm)) is not None:
            drift.append(message)
        wrote = False
        if specs.is_failed(specs.provisioning_state(vm)):
            # Azure's remedy for a Failed VM is to send its model again (PUT is idempotent).
            vm = await _finish(
                vms.begin_create_or_update(
                    identity.resource_group, identity.vm_name, specs.repair_parameters(desired, vm)
                ),
                p.timeout,
                f"re-sending VM {identity.vm_name}",
            )
            p.did(f"re-sent VM {identity.vm_name} (it was Failed)")
            wrote = True
        elif (update := specs.diff_vm(desired, vm)) is not None:
            changed = specs.describe_vm_changes(desired, vm)
            vm = await _finish(
                vms.begin_update(identity.resource_group, identity.vm_name, update),
                p.timeout,
                f"updating VM {identity.vm_name}",
            )
            p.did(f"updated VM {identity.vm_name}: {', '.join(changed)}")
            wrote = True
        if instance_view and wrote:  # the LRO's final GET carries no instance view
            vm = await p.get_vm(True) or vm
    return _observe(identity, vm, nic, ext_nic, pip, drift, p.actions)


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
        extended_private_ip_address=specs.nic_private_ip(ext_nic),
        patch=specs.patch_view(vm),
        tags=dict(vm.tags or {}),
        image=image,
        drift=tuple(drift),
        actions=tuple(actions),
    )


# ----------------------------------------------------------------------------- delete


async def delete_vm(clients: AzureClients, identity: VMIdentity, policy: DeletionPolicy) -> DeletionReport:
    """Let go of the VM and everything created for it; idempotent (a 404 means done).

    Delete: the VM (its OS disk and NICs go with it by deleteOption), then whatever is left of the
    OS disk, the NICs and the public IP, in dependency order, each awaited. Orphan: remove the
    operator's tags from every resource and leave them running. Resources that are not ours
    (another owner-uid, or none) are skipped and reported, never deleted.
    """
    async with _azure_errors():
        if policy is DeletionPolicy.ORPHAN:
            return await _orphan(clients, identity)
        return await _delete(clients, identity)


async def _delete(clients: AzureClients, identity: VMIdentity) -> DeletionReport:
    report = DeletionReport()
    rg, timeout = identity.resource_group, clients.settings.operation_timeout
    cmp = clients.compute(identity.subscription_id)
    net = clients.network(identity.subscription_id)

    vm = await _get_or_none(cmp.virtual_machines.get(rg, identity.vm_name))
    if vm is None:
        report.add("virtualMachines", identity.vm_name, DeletionOutcome.ABSENT)
    elif specs.ownership(vm.tags, identity.owner) is not Ownership.OURS:
        report.add("virtualMachines", identity.vm_name, DeletionOutcome.SKIPPED, "not ours")
    else:
        await _finish(cmp.virtual_machines.begin_delete(rg, identity.vm_name), timeout, "deleting the VM")
        report.add("virtualMachines", identity.vm_name, DeletionOutcome.DELETED)

    # The OS disk is created by Compute from the VM model and carries no tags of ours unless Azure
    # copied them: it is ours unless it says otherwise or is attached to some VM.
    disk = await _get_or_none(cmp.disks.get(rg, identity.os_disk_name))
    if disk is None:
        report.add("disks", identity.os_disk_name, DeletionOutcome.ABSENT)
    elif specs.ownership(disk.tags, identity.owner) is Ownership.FOREIGN or disk.managed_by:
        report.add("disks", identity.os_disk_name, DeletionOutcome.SKIPPED, "not ours, or attached")
    else:
        await _finish(cmp.disks.begin_delete(rg, identity.os_disk_name), timeout, "deleting the OS disk")
        report.add("disks", identity.os_disk_name, DeletionOutcome.DELETED)

    for name in (identity.nic_name, identity.extended_nic_name):
        await _delete_network(net.network_interfaces, "networkInterfaces", name, identity, report, timeout)
    await _delete_network(
        net.public_ip_addresses, "publicIPAddresses", identity.public_ip_name, identity, report, timeout
    )
    return report


async def _delete_network(
    ops: Any, kind: str, name: str, identity: VMIdentity, report: DeletionReport, limit: float
) -> None:
    resource = await _get_or_none(ops.get(identity.resource_group, name))
    if resource is None:
        report.add(kind, name, DeletionOutcome.ABSENT)
    elif specs.ownership(resource.tags, identity.owner) is not Ownership.OURS:
        report.add(kind, name, DeletionOutcome.SKIPPED, "not ours")
    else:
        await _finish(ops.begin_delete(identity.resource_group, name), limit, f"deleting {name}")
        report.add(kind, name, DeletionOutcome.DELETED)


async def _orphan(clients: AzureClients, identity: VMIdentity) -> DeletionReport:
    report = DeletionReport()
    rg, timeout = identity.resource_group, clients.settings.operation_timeout
    cmp = clients.compute(identity.subscription_id)
    net = clients.network(identity.subscription_id)

    async def untag(
        kind: str, name: str, get: Awaitable[Any], write: Callable[[Any, dict[str, str]], Awaitable[Any]]
    ) -> None:
        resource = await _get_or_none(get)
        if resource is None:
            report.add(kind, name, DeletionOutcome.ABSENT)
            return
        if specs.ownership(resource.tags, identity.owner) is Ownership.FOREIGN:
            report.add(kind, name, DeletionOutcome.SKIPPED, "another owner's")
            return
        remaining = specs.without_our_tags(resource.tags)
        if remaining is not None:
            await write(resource, remaining)
        report.add(kind, name, DeletionOutcome.UNTAGGED)

    await untag(
        "virtualMachines",
        identity.vm_name,
        cmp.virtual_machines.get(rg, identity.vm_name),
        lambda _, tags: _finish(
            cmp.virtual_machines.begin_update(rg, identity.vm_name, compute.VirtualMachineUpdate(tags=tags)),
            timeout,
            "untagging the VM",
        ),
    )
    await untag(
        "disks",
        identity.os_disk_name,
        cmp.disks.get(rg, identity.os_disk_name),
        lambda _, tags: _finish(
            cmp.disks.begin_update(rg, identity.os_disk_name, compute.DiskUpdate(tags=tags)),
            timeout,
            "untagging the OS disk",
        ),
    )
    for name in (identity.nic_name, identity.extended_nic_name):
        await untag(
            "networkInterfaces",
            name,
            net.network_interfaces.get(rg, name),
            lambda nic, tags, name=name: _finish(
                net.network_interfaces.begin_create_or_update(rg, name, specs.with_tags(nic, tags)),
                timeout,
                f"untagging {name}",
            ),
        )
    await untag(
        "publicIPAddresses",
        identity.public_ip_name,
        net.public_ip_addresses.get(rg, identity.public_ip_name),
        lambda pip, tags: _finish(
            net.public_ip_addresses.begin_create_or_update(
                rg, identity.public_ip_name, specs.with_tags(pip, tags)
            ),
            timeout,
            "untagging the public IP",
        ),
    )
    return report
