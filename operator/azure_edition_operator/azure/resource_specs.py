"""One spec object per Azure resource kind, as cluster-api-provider-azure's ``ResourceSpecGetter``
(``azure/services/*/spec.go``): the public IP, the network security group, the NICs, the VM and the Key
Vault VM extension.

Each is pure and built from the spec and the names. ``parameters(existing)`` answers what to send to
bring ``existing`` (None: absent) to the spec, or None when nothing differs, after the kind's rules:

* **ownership**: whose the resource is (``specs.ownership``): ours is changed, an unmanaged one only
  when the spec says ``adopt``, another object's or another cluster's never (``OwnershipConflict``);
* **busy**: a resource in flight with no operation of ours recorded is someone else's operation: it
  is waited for with GETs (``InProgress``), never joined by a second write;
* **tags**: the user's plus ours; tags others set are kept, tags of an earlier version are dropped
  in the same write (``specs.merged_tags``).

``changes(existing, body)`` says in words what that body changes; the driver reports it when it may
not write (observe only). ``provision._ensure`` only says in which order the driver runs them;
``tests/unit/test_resource_specs.py`` drives each kind with fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from .. import reasons as vocab
from ..api.v1alpha1 import AzureEditionVMSpec
from ..conditions import format_timestamp
from ..images import ImageReference
from . import nsg_specs, specs
from .driver import DEFAULT_POLL_SECONDS, InProgress, OperationRecord, Verb
from .errors import AzurePermanentError, AzureRetryableError
from .sdk import compute, network
from .specs import AdminCredentials, AdminLogin, Owner, Ownership

_NO_LOGIN = AdminCredentials("", "")  # for diffs only: the password never takes part in a comparison


@dataclass(eq=False)
class OwnershipConflict(AzurePermanentError):
    """A resource the spec names is not this object's to change; ``ownership`` says whose it is."""

    ownership: Ownership = Ownership.FOREIGN


def refuse_unless_ours(label: str, name: str, tags: Mapping[str, str] | None, owner: Owner,
                       adopt: bool = False) -> Ownership:  # fmt: skip
    """The ownership rule every kind shares: ours (or an earlier version's tags for this object) is
    taken; an unmanaged resource only with ``adopt``; anything else is ``OwnershipConflict``."""
    decision = specs.ownership(tags, owner)
    if decision in specs.TAKEN or (decision is Ownership.UNMANAGED and adopt):
        return decision
    raise OwnershipConflict(
        "OwnershipConflict", specs.ownership_conflict_message(label, name, tags, owner), 409,
        reason=vocab.OWNERSHIP_CONFLICT, ownership=decision,
    )  # fmt: skip


def refuse_if_busy(label: str, name: str, resource: Any, poll: float = DEFAULT_POLL_SECONDS) -> None:
    """The busy rule every kind shares: a resource in flight without a recorded operation is someone
    else's operation (or ours, its record lost): poll it with GETs, never send a second one."""
    state = specs.provisioning_state(resource)
    if specs.is_deleting(state):
        raise AzureRetryableError(
            "ResourceBeingDeleted",
            f"{label} {name} is being deleted; it will be created again once the deletion finishes",
            reason="ResourceBeingDeleted",
            retry_after=poll,
        )
    if specs.is_in_flight(state):
        record = OperationRecord(label, name, str(Verb.PUT), "", format_timestamp(datetime.now(UTC)))
        raise InProgress(record, poll)


@dataclass
class ResourceRules:
    """What every kind shares: its name, whose it must be, its tags, and how long to wait when busy."""

    kind: ClassVar[str]  # ARM's resource type, e.g. "networkInterfaces" (the driver's record and log)
    label: ClassVar[str]  # what a person reads, e.g. "Network interface"
    noun: ClassVar[str | None] = None  # the short name progress messages use (default: the label)

    name: str
    owner: Owner
    tags: Mapping[str, str]
    adopt: bool = False
    poll_seconds: float = DEFAULT_POLL_SECONDS
    observing: bool = False  # observe only: nothing is written, so an unmanaged resource may be looked at

    def check(self, existing: Any) -> Ownership:
        """Ownership, then busy: raises unless the resource may be changed now (observe only: looked at)."""
        adopt = self.adopt or self.observing
        decision = refuse_unless_ours(self.label, self.name, existing.tags, self.owner, adopt)
        refuse_if_busy(self.noun or self.label, self.name, existing, self.poll_seconds)
        return decision

    def parameters(self, existing: Any | None) -> Any | None:
        if existing is None:
            return self.create()
        self.check(existing)
        return self.update(existing)

    def create(self) -> Any:
        raise NotImplementedError

    def update(self, existing: Any) -> Any | None:
        """The kind's own changes (default: none), with our tags applied on whatever is sent."""
        return self.tagged(existing, None)

    def tagged(self, existing: Any, body: Any | None) -> Any | None:
        """``body`` (or, when None and only tags differ, ``existing``) carrying our tags; None: nothing to send."""
        merged = specs.merged_tags(self.tags, existing.tags)
        if body is None:
            return specs.with_tags(existing, merged) if merged is not None else None
        if merged is not None:
            body.tags = merged
        return body

    def changes(self, existing: Any | None, body: Any) -> list[str]:
        """In words, what sending ``body`` changes (for observe-only reports)."""
        if existing is None:
            return [f"create {self.kind}/{self.name}"]
        return [f"{self.kind}/{self.name}: {c}" for c in self._changes(existing, body)]

    def _changes(self, existing: Any, body: Any) -> list[str]:
        return specs.tag_changes(self.tags, existing.tags) or ["update"]


def _copy(model: Any) -> Any:
    """A model rebuilt from its wire form: changing it never changes what was read."""
    return type(model)(model.as_dict())


@dataclass
class PublicIPSpec(ResourceRules):
    """A Standard static IPv4 address for the primary NIC; its DNS label when the spec names one."""

    kind: ClassVar[str] = "publicIPAddresses"
    label: ClassVar[str] = "Public IP address"
    identity: specs.VMIdentity | None = None  # where (its location)
    dns_label: str | None = None
    manage_dns: bool = True  # False for an adopted VM's address: the label is reported, not set

    def create(self) -> network.PublicIPAddress:
        assert self.identity is not None
        return specs.public_ip_parameters(self.identity, self.tags, self.dns_label)

    def update(self, existing: network.PublicIPAddress) -> network.PublicIPAddress | None:
        body = (
            specs.public_ip_dns_update(_copy(existing), self.dns_label, self.tags)
            if self.manage_dns
            else None
        )
        return self.tagged(existing, body)

    def _changes(self, existing: Any, body: Any) -> list[str]:
        out = []
        have = specs.attr_path(existing, "properties", "dns_settings", "domain_name_label")
        want = specs.attr_path(body, "properties", "dns_settings", "domain_name_label")
        if want != have:
            out.append(f"dnsLabel {have} → {want}")
        return out + specs.tag_changes(self.tags, existing.tags)


@dataclass
class SecurityGroupSpec(ResourceRules):
    """The group on the primary NIC that admits SMB over QUIC's ports (``nsg_specs``)."""

    kind: ClassVar[str] = "networkSecurityGroups"
    label: ClassVar[str] = "Network security group"
    identity: specs.VMIdentity | None = None
    ports: nsg_specs.SmbPorts | None = None

    def create(self) -> network.NetworkSecurityGroup:
        assert self.ports is not None and self.identity is not None
        return nsg_specs.nsg_parameters(self.identity, self.tags, self.ports)

    def update(self, existing: network.NetworkSecurityGroup) -> network.NetworkSecurityGroup | None:
        assert self.ports is not None
        return nsg_specs.nsg_update(existing, self.tags, self.ports)

    def _changes(self, existing: Any, body: Any) -> list[str]:
        assert self.ports is not None
        rules = [] if nsg_specs.nsg_update(existing, existing.tags or {}, self.ports) is None else ["rules"]
        return rules + specs.tag_changes(self.tags, existing.tags)


@dataclass
class NetworkInterfaceSpec(ResourceRules):
    """A NIC: one dynamic IPv4 configuration on its subnet (with the public IP, on the primary one).

    A NIC discovered from an existing VM (spec.azure.vmName) is only compared: ``differences`` says what
    the spec says otherwise, to be reported, never changed."""

    kind: ClassVar[str] = "networkInterfaces"
    label: ClassVar[str] = "Network interface"
    identity: specs.VMIdentity | None = None
    subnet_id: str = ""
    public_ip_id: str | None = None
    ip_forwarding: bool = False
    nsg: str | None = None  # the group to refer to (primary NIC only); None: none of ours
    our_nsg: str | None = None  # the id of the operator's group, to remove only our own reference

    def desired(self) -> network.NetworkInterface:
        assert self.identity is not None
        body = specs.nic_parameters(
            self.identity, self.subnet_id, self.tags, self.public_ip_id, self.ip_forwarding
        )
        if self.nsg is not None and self.our_nsg is not None:
            body = nsg_specs.nic_nsg_update(body, self.nsg, self.our_nsg) or body
        return body

    def create(self) -> network.NetworkInterface:
        return self.desired()

    def update(self, existing: network.NetworkInterface) -> network.NetworkInterface | None:
        desired, body = self.desired(), None
        if specs.diff_nic(desired, existing) is specs.NicChange.PUT:
            body = specs.nic_update_parameters(desired, existing)
        if self.our_nsg is not None:
            body = nsg_specs.nic_nsg_update(body or _copy(existing), self.nsg, self.our_nsg) or body
        return self.tagged(existing, body)

    def _changes(self, existing: Any, body: Any) -> list[str]:
        out = []
        if specs.diff_nic(self.desired(), existing) is specs.NicChange.PUT:
            out.append("ipConfiguration (subnet, public IP)")
        have = specs.attr_path(existing, "properties", "network_security_group", "id")
        want = specs.attr_path(body, "properties", "network_security_group", "id")
        if not specs.same_id(have, want):
            out.append(f"networkSecurityGroup {_last(have)} → {_last(want)}")
        return out + specs.tag_changes(self.tags, existing.tags)

    def differences(self, existing: network.NetworkInterface) -> list[str]:
        """What a discovered NIC has that the spec says otherwise (reported, never changed)."""
        want = self.desired()
        out = []
        if not specs.same_id(specs.nic_subnet_id(want), specs.nic_subnet_id(existing)):
            out.append(f"the VM's NIC {self.name} is on subnet {specs.nic_subnet_id(existing)}, the spec names "
                       f"{self.subnet_id}; a NIC cannot move subnets in place: change spec.azure.subnetId")  # fmt: skip
        has_pip = specs.nic_public_ip_id(existing) is not None
        if self.public_ip_id is not None and not has_pip:
            out.append(f"the VM's NIC {self.name} has no public IP but spec.azure.publicIP is true; the operator "
                       "does not add one to an existing VM: set publicIP: false, or add it in Azure")  # fmt: skip
        if self.public_ip_id is None and has_pip:
            out.append(f"the VM's NIC {self.name} has a public IP but spec.azure.publicIP is false; the operator "
                       "does not remove it from an existing VM: set publicIP: true, or remove it in Azure")  # fmt: skip
        return out


def _last(resource_id: str | None) -> str:
    return (resource_id or "none").rstrip("/").rsplit("/", 1)[-1]


@dataclass
class VirtualMachineSpec(ResourceRules):
    """The VM. What the operator changes in place is its size (Azure restarts a running VM to resize it),
    tags, patch settings and system identity (``specs.diff_vm``); the image never (``image_drift``).

    ``login`` is needed only to create; ``repair``: a Failed VM's model is sent again (Azure's remedy), off
    for a VM the operator did not create (its model is not ours to re-send)."""

    kind: ClassVar[str] = "virtualMachines"
    label: ClassVar[str] = "Virtual machine"
    noun: ClassVar[str | None] = "VM"
    identity: specs.VMIdentity | None = None
    spec: AzureEditionVMSpec | None = None
    image: ImageReference | None = None
    login: AdminLogin | None = field(default=None, repr=False)
    repair: bool = True

    def _model(self, login: AdminLogin) -> compute.VirtualMachine:
        assert self.identity is not None and self.spec is not None and self.image is not None
        return specs.vm_parameters(self.identity, self.spec, self.image, login, self.tags)

    def desired(self) -> compute.VirtualMachine:
        """The VM as the spec wants it, without the password: what is compared."""
        return self._model(_NO_LOGIN)

    def create(self) -> compute.VirtualMachine:
        if self.login is None:
            raise ValueError("the admin login is needed to create a VM")
        return self._model(self.login)

    def update(self, existing: compute.VirtualMachine) -> Any | None:
        desired = self.desired()
        if self.repair and specs.is_failed(specs.provisioning_state(existing)):
            return specs.repair_parameters(desired, existing)
        return specs.diff_vm(desired, existing)

    def _changes(self, existing: Any, body: Any) -> list[str]:
        if isinstance(body, compute.VirtualMachine):
            return ["model sent again (the VM is Failed)"]
        return specs.describe_vm_changes_in_words(self.desired(), existing)


@dataclass
class KeyVaultExtensionSpec:
    """The KeyVaultForWindows extension that delivers a Key Vault certificate into the guest. It carries
    no tags: it lives on the VM, whose ownership was decided before. Busy: an extension in flight is
    waited for."""

    kind: ClassVar[str] = "virtualMachineExtensions"
    label: ClassVar[str] = "VM extension"
    name: ClassVar[str] = specs.KEY_VAULT_EXTENSION

    spec: AzureEditionVMSpec
    location: str
    poll_seconds: float = DEFAULT_POLL_SECONDS

    def parameters(self, existing: Any | None) -> compute.VirtualMachineExtension | None:
        if existing is not None:
            settings = specs.attr_path(existing, "properties", "settings")
            if not specs.key_vault_extension_drift(self.spec, settings):
                return None
            refuse_if_busy(self.label, self.name, existing, self.poll_seconds)
        return specs.key_vault_extension_parameters(self.spec, self.location)

    def changes(self, existing: Any | None, body: Any) -> list[str]:
        verb = "install" if existing is None else "update the settings of"
        return [f"{verb} the {self.name} extension"]


@dataclass
class Untag:
    """Deletion policy Orphan: the resource loses the operator's tags and stays (any kind)."""

    kind: str
    name: str

    def parameters(self, existing: Any | None) -> Any | None:
        remaining = specs.without_our_tags(existing.tags if existing is not None else None)
        if existing is None or remaining is None:
            return None
        if self.kind == "virtualMachines":
            return compute.VirtualMachineUpdate(tags=remaining)
        if self.kind == "disks":
            return compute.DiskUpdate(tags=remaining)
        return specs.with_tags(existing, remaining)

    def changes(self, existing: Any | None, body: Any) -> list[str]:
        return [f"{self.kind}/{self.name}: remove the operator's tags"]
