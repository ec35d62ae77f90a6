"""Pure spec builders: an AzureEditionVM → the SDK models to send, and what differs from Azure.

In the style of cluster-api-provider-azure's ``azure/services/*/spec.go``: names are derived
deterministically from the resource, parameters are built without I/O, and the diff compares only
the fields the operator owns (VM size, tags, patch settings). Nothing here calls Azure, so every
rule is table-tested (tests/unit/test_azure_specs.py).

Tags: Azure refuses ``/`` in tag *names* (learn.microsoft.com, tag-resources "Limitations"), so the
owner tags use ``_`` where Kubernetes would use ``/``, as cluster-api-provider-azure does
(``sigs.k8s.io_cluster-api-provider-azure_…``).

Careful: a ``VirtualMachine`` built by ``vm_parameters`` carries the admin password (it must, for
the PUT); its repr shows it. Never log it; log ``describe_vm_changes`` output instead.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, TypeVar

from pydantic.alias_generators import to_camel

from ..api.v1alpha1 import AzureEditionVMSpec, AzureSpec, RebootSetting
from ..config import OperatorConfig
from ..images import Capability, ImageReference
from .sdk import compute, network

OWNER_TAG = "azureedition.io_owner"  # the object's namespace/name
CLUSTER_TAG = "azureedition.io_cluster"  # the operator's cluster id (OperatorConfig.cluster_id)
MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "azure-edition-operator"
OWNER_UID_TAG = "azureedition.io_owner-uid"
"""Earlier versions' owner tag (the Kubernetes uid): recognised, then dropped in the next write."""
LEGACY_TAG_KEYS = (OWNER_UID_TAG,)
OUR_TAG_KEYS = (OWNER_TAG, CLUSTER_TAG, MANAGED_BY_TAG, *LEGACY_TAG_KEYS)
DEFAULT_CLUSTER: str = OperatorConfig.model_fields["cluster_id"].default

VM_NAME_MAX = 64
COMPUTER_NAME_MAX = 15
HASH_LEN = 8
COMPUTER_HASH_LEN = 5
OS_DISK_STORAGE = "StandardSSD_LRS"  # offered with every VM size; Premium needs an "s" size
IP_CONFIG_NAME = "ipconfig1"

# Azure's defaults for fields it may leave out of a GET (Windows VMs).
DEFAULT_PATCH_MODE = "AutomaticByOS"
DEFAULT_ASSESSMENT_MODE = "ImageDefault"

ResourceT = TypeVar("ResourceT", "network.NetworkInterface", "network.PublicIPAddress")

IN_FLIGHT_STATES = frozenset({"creating", "updating", "migrating"})
DELETING_STATES = frozenset({"deleting"})


# ----------------------------------------------------------------------------- who and what


@dataclass(frozen=True)
class Owner:
    """The Kubernetes object that owns the Azure resources: its namespace/name on ``cluster`` (the
    operator's ``cluster_id``). ``uid`` only names this incarnation in log lines, never ownership."""

    namespace: str
    name: str
    uid: str
    cluster: str = DEFAULT_CLUSTER

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def logger(self, name: str) -> logging.LoggerAdapter[logging.Logger]:
        """Logger ``name`` with this object's reference on every line, as on kopf's per-object logger (its
        formatters print ``[namespace/name]``, or the JSON ``object`` field)."""
        ref = {"namespace": self.namespace, "name": self.name, "uid": self.uid}
        return logging.LoggerAdapter(logging.getLogger(name), {"k8s_ref": ref})


class AdminLogin(Protocol):
    """Anything with the administrator's username and password (e.g. kube.AdminCredentials)."""

    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...


@dataclass(frozen=True)
class AdminCredentials:
    """The VM's local administrator, from the Secret. ``repr`` never shows the password."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class VMIdentity:
    """Where the VM lives and the deterministic names of everything the operator creates for it.

    Names are fixed by the owner's namespace/name (not its uid), so a restarted operator, or one on a
    cluster rebuilt from Git, finds what it started; the owner tags tell whose a found resource is.
    """

    owner: Owner
    subscription_id: str
    resource_group: str
    location: str
    vm_name: str
    computer_name: str
    nic_name: str
    extended_nic_name: str
    public_ip_name: str
    os_disk_name: str
    named: bool = False
    """``spec.azure.vmName``: an existing VM, whose NICs, public IP and disk are discovered from it
    (``discover``) and are only read; the operator writes the VM alone."""

    def resource_id(self, provider: str, kind: str, name: str) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{provider}/{kind}/{name}"
        )

    @property
    def vm_id(self) -> str:
        return self.resource_id("Microsoft.Compute", "virtualMachines", self.vm_name)

    @property
    def nic_id(self) -> str:
        return self.resource_id("Microsoft.Network", "networkInterfaces", self.nic_name)

    @property
    def extended_nic_id(self) -> str:
        return self.resource_id("Microsoft.Network", "networkInterfaces", self.extended_nic_name)

    @property
    def public_ip_id(self) -> str:
        return self.resource_id("Microsoft.Network", "publicIPAddresses", self.public_ip_name)


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _arm_slug(text: str) -> str:
    """Lower-case letters, digits and single hyphens: valid in every ARM name we create."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def vm_name_for(owner: Owner) -> str:
    """``<namespace>-<name>`` (shortened to fit) plus a hash of namespace/name: ≤64 chars, stable.

    The hash keeps ``a-b/c`` and ``a/b-c`` (same slug) and long names cut to the same prefix apart.
    Windows VM names may not contain periods or end with a hyphen; the slug has neither.
    """
    digest = _short_hash(owner.ref, HASH_LEN)
    room = VM_NAME_MAX - HASH_LEN - 1
    base = _arm_slug(f"{owner.namespace}-{owner.name}")[:room].rstrip("-")
    return f"{base}-{digest}" if base else f"vm-{digest}"


def computer_name_for(owner: Owner) -> str:
    """Windows computer name: ≤15 chars, letters/digits/hyphens, never all digits, stable.

    Built from the object's name (the part a person recognises) plus a short hash of
    namespace/name; a name that does not start with a letter gets a ``w`` prefix.
    """
    digest = _short_hash(owner.ref, COMPUTER_HASH_LEN)
    room = COMPUTER_NAME_MAX - COMPUTER_HASH_LEN - 1
    base = _arm_slug(owner.name)
    if not base or not base[0].isalpha():
        base = f"w{base}"
    base = base[:room].rstrip("-")
    return f"{base}-{digest}"


def vm_identity(owner: Owner, azure: AzureSpec) -> VMIdentity:
    """All names for ``owner`` placed per ``spec.azure``: the VM's is ``spec.azure.vmName`` when the spec
    names an existing VM (whose other resources are then discovered from it, ``discovered``)."""
    vm = azure.vm_name or vm_name_for(owner)
    return VMIdentity(
        owner=owner,
        subscription_id=azure.subscription_id,
        resource_group=azure.resource_group,
        location=azure.location,
        vm_name=vm,
        computer_name=computer_name_for(owner),
        nic_name=f"{vm}-nic",
        extended_nic_name=f"{vm}-nic-ext",
        public_ip_name=f"{vm}-pip",
        os_disk_name=f"{vm}-osdisk",
        named=azure.vm_name is not None,
    )


# ----------------------------------------------------------------------------- an existing VM's resources


def _in_group(identity: VMIdentity, resource_id: str | None) -> str | None:
    """The resource's name when ``resource_id`` lies in the VM's subscription and resource group, else None."""
    parts = (resource_id or "").strip("/").split("/")
    if len(parts) < 8 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
        return None
    same = (
        parts[1].lower() == identity.subscription_id.lower()
        and parts[3].lower() == identity.resource_group.lower()
    )
    return parts[-1] if same else None


@dataclass(frozen=True)
class Discovery:
    """What an existing VM refers to: the identity with its resources' real names, which of them exist,
    and the notes for what lies outside the resource group (never read, never changed)."""

    identity: VMIdentity
    primary_nic: bool
    second_nic: bool
    notes: tuple[str, ...] = ()


def discover(identity: VMIdentity, vm: compute.VirtualMachine) -> Discovery:
    """The VM's primary NIC (``primary``, else the first), its second NIC (Extended Network's, if any) and
    its OS disk, by name. A resource in another resource group is reported, not followed: the namespace's
    TenantPolicy allows ``spec.azure.resourceGroup``, nothing else."""
    refs = attr_path(vm, "properties", "network_profile", "network_interfaces") or []
    primary = next((r for r in refs if attr_path(r, "properties", "primary")), refs[0] if refs else None)
    others = [r for r in refs if r is not primary]
    notes = []
    names: dict[str, str] = {}
    for role, ref in (("nic_name", primary), ("extended_nic_name", others[0] if others else None)):
        if ref is None:
            continue
        name = _in_group(identity, ref.id)
        if name is None:
            notes.append(f"the VM's NIC {ref.id} is outside resource group {identity.resource_group}: the "
                         "operator neither reads nor changes it")  # fmt: skip
        else:
            names[role] = name
    disk = attr_path(vm, "properties", "storage_profile", "os_disk", "name")
    if disk:
        names["os_disk_name"] = disk
    found = replace(identity, **names)
    return Discovery(found, "nic_name" in names, "extended_nic_name" in names, tuple(notes))


def with_public_ip(
    identity: VMIdentity, nic: network.NetworkInterface | None
) -> tuple[VMIdentity, str | None]:
    """The identity naming the public IP of ``nic`` (None when it has none or it lies in another resource
    group), and a note for the latter."""
    pip_id = nic_public_ip_id(nic)
    if pip_id is None:
        return identity, None
    name = _in_group(identity, pip_id)
    if name is None:
        return identity, (f"the VM's public IP {pip_id} is outside resource group {identity.resource_group}: "
                          "the operator neither reads nor changes it")  # fmt: skip
    return replace(identity, public_ip_name=name), None


# ----------------------------------------------------------------------------- tags and ownership


def owner_tags(owner: Owner) -> dict[str, str]:
    return {OWNER_TAG: owner.ref, CLUSTER_TAG: owner.cluster, MANAGED_BY_TAG: MANAGED_BY_VALUE}


def desired_tags(spec: AzureEditionVMSpec, owner: Owner) -> dict[str, str]:
    """The user's tags plus ours; ours win a clash (case-insensitively, as Azure compares names)."""
    ours = owner_tags(owner)
    ours_lower = {k.lower() for k in ours}
    user = {k: v for k, v in spec.azure.tags.items() if k.lower() not in ours_lower}
    return {**user, **ours}


def _get_ci(tags: Mapping[str, str], key: str) -> str | None:
    lowered = key.lower()
    return next((v for k, v in tags.items() if k.lower() == lowered), None)


class Ownership(enum.Enum):
    """Whose an Azure resource is, read from its tags (``ownership``)."""

    OURS = "ours"  # this object's (namespace/name) on this cluster
    OURS_LEGACY = (
        "ours-legacy"  # this object's, tagged by an earlier version (uid, no cluster): re-tagged once
    )
    FOREIGN = "foreign"  # another AzureEditionVM's
    OTHER_CLUSTER = "other-cluster"  # an object of the same namespace/name on another cluster
    UNMANAGED = "unmanaged"  # no owner tag: created outside the operator, or orphaned


TAKEN = frozenset({Ownership.OURS, Ownership.OURS_LEGACY})
"""Decisions under which the operator changes a resource without being asked to adopt it."""


def ownership(tags: Mapping[str, str] | None, owner: Owner) -> Ownership:
    """The owner is the object's namespace/name on a cluster, never its uid: the same manifest applied to
    a cluster rebuilt from Git (new uid, same cluster id) finds its resources as its own.

    Tags of earlier versions (``azureedition.io_owner-uid`` and no cluster tag) are this object's when
    their owner tag names it (those versions always wrote both). Tag names compare case-insensitively,
    as Azure does; values exactly."""
    tags = tags or {}
    ref, cluster = _get_ci(tags, OWNER_TAG), _get_ci(tags, CLUSTER_TAG)
    if ref is None and _get_ci(tags, OWNER_UID_TAG) is None:
        return Ownership.UNMANAGED
    if ref != owner.ref:
        return Ownership.FOREIGN
    if cluster is None:
        return Ownership.OURS_LEGACY
    return Ownership.OURS if cluster == owner.cluster else Ownership.OTHER_CLUSTER


def ownership_conflict_message(kind: str, name: str, tags: Mapping[str, str] | None, owner: Owner) -> str:
    """What to tell the user when a resource the spec names is not this object's to change."""
    tags = tags or {}
    other, cluster = _get_ci(tags, OWNER_TAG), _get_ci(tags, CLUSTER_TAG)
    decision = ownership(tags, owner)
    if decision is Ownership.OTHER_CLUSTER:
        return (
            f"{kind} {name} belongs to AzureEditionVM {other} on cluster {cluster!r} (tag {CLUSTER_TAG}); this "
            f"operator runs as cluster {owner.cluster!r}. Two clusters never manage one VM: if {cluster!r} is "
            f"this cluster rebuilt, set the operator's AEO_CLUSTER_ID to {cluster!r}; otherwise delete the "
            f"AzureEditionVM on cluster {cluster!r} (deletionPolicy: Orphan keeps the VM) and adopt it here"
        )
    if decision is Ownership.FOREIGN:
        where = f" on cluster {cluster!r}" if cluster else ""
        who = other or f"uid {_get_ci(tags, OWNER_UID_TAG)}"
        return (
            f"{kind} {name} already exists and belongs to AzureEditionVM {who}{where}; the operator will not "
            f"touch it. Delete that AzureEditionVM (or the resource), or move this AzureEditionVM to another "
            f"resource group or VM name"
        )
    return (
        f"{kind} {name} already exists and carries no owner tag of this operator (created outside it, or "
        f"orphaned). To manage it, set spec.azure.adopt: true; otherwise delete or rename it"
    )


def merged_tags(desired: Mapping[str, str], observed: Mapping[str, str] | None) -> dict[str, str] | None:
    """The tag set to send if ``observed`` lacks any desired tag/value, or still carries an earlier
    version's owner tag (``LEGACY_TAG_KEYS``, dropped in the same write), else None.

    Tags set by others (Azure Policy, people) are kept: the operator only adds and corrects its own.
    Names compare case-insensitively, values exactly, as Azure does.
    """
    observed = dict(observed or {})
    desired_lower = {k.lower() for k in desired}
    legacy = {k.lower() for k in LEGACY_TAG_KEYS} - desired_lower
    stale = any(k.lower() in legacy for k in observed)
    if not stale and all(_get_ci(observed, k) == v for k, v in desired.items()):
        return None
    kept = {k: v for k, v in observed.items() if k.lower() not in desired_lower | legacy}
    return {**kept, **desired}


def tag_changes(desired: Mapping[str, str], observed: Mapping[str, str] | None) -> list[str]:
    """``["tags +k=v, k: a → b, -k"]`` for what ``merged_tags`` would change; empty when nothing."""
    new = merged_tags(desired, observed)
    if new is None:
        return []
    old = dict(observed or {})
    parts = [f"+{k}={v}" for k, v in new.items() if k not in old]
    parts += [f"{k}: {old[k]} → {v}" for k, v in new.items() if k in old and old[k] != v]
    parts += [f"-{k}" for k in old if k not in new]
    return ["tags " + ", ".join(parts)]


def with_tags(resource: ResourceT, tags: Mapping[str, str]) -> ResourceT:
    """``resource`` as Azure returned it, with ``tags`` instead of its own: a PUT body that changes only tags.

    Used for NICs and public IPs rather than their ``updateTags`` PATCH: a PUT of the current model is
    equally one write in Azure, and works wherever the resource's PUT does (the SDK drops read-only
    fields when it serialises the body).
    """
    return type(resource)({**resource.as_dict(), "tags": dict(tags)})


def without_our_tags(tags: Mapping[str, str] | None) -> dict[str, str] | None:
    """``tags`` minus the operator's own (for deletionPolicy Orphan), or None if none were there."""
    tags = dict(tags or {})
    ours = {k.lower() for k in OUR_TAG_KEYS}
    kept = {k: v for k, v in tags.items() if k.lower() not in ours}
    return kept if len(kept) != len(tags) else None


# ----------------------------------------------------------------------------- network


def public_ip_parameters(
    identity: VMIdentity, tags: Mapping[str, str], dns_label: str | None = None
) -> network.PublicIPAddress:
    """A Standard, static IPv4 address; deleteOption Delete so it goes with the VM; a DNS label if asked."""
    return network.PublicIPAddress(
        location=identity.location,
        tags=dict(tags),
        sku=network.PublicIPAddressSku(name="Standard", tier="Regional"),
        properties=network.PublicIPAddressPropertiesFormat(
            public_ip_allocation_method="Static",
            public_ip_address_version="IPv4",
            delete_option="Delete",
            dns_settings=network.PublicIPAddressDnsSettings(domain_name_label=dns_label)
            if dns_label
            else None,
        ),
    )


def public_ip_dns_update(
    pip: network.PublicIPAddress, dns_label: str | None, tags: Mapping[str, str]
) -> network.PublicIPAddress | None:
    """The public IP to PUT when its DNS label is not the spec's (None: it is). A label set outside the
    operator while the spec names none is left alone (the spec does not own it then)."""
    have = attr_path(pip, "properties", "dns_settings", "domain_name_label")
    if dns_label is None or have == dns_label:
        return None
    pip.properties.dns_settings = network.PublicIPAddressDnsSettings(domain_name_label=dns_label)
    merged = merged_tags(tags, pip.tags)
    return with_tags(pip, merged) if merged is not None else pip


def nic_parameters(
    identity: VMIdentity, subnet_id: str, tags: Mapping[str, str], public_ip_id: str | None = None,
    ip_forwarding: bool = False,
) -> network.NetworkInterface:  # fmt: skip
    """One NIC with one dynamic IPv4 configuration on ``subnet_id`` (and the public IP, if any).

    ``ip_forwarding``: the extended NIC forwards for on-premises addresses (Extended Network's appliance);
    set at creation only: a NIC changed later is reported (``IPForwardingDisabled``), not overwritten."""
    ip_config = network.NetworkInterfaceIPConfigurationPropertiesFormat(
        subnet=network.Subnet(id=subnet_id),
        private_ip_allocation_method="Dynamic",
        private_ip_address_version="IPv4",
        primary=True,
    )
    if public_ip_id is not None:
        ip_config.public_ip_address = network.PublicIPAddress(id=public_ip_id)
    return network.NetworkInterface(
        location=identity.location,
        tags=dict(tags),
        properties=network.NetworkInterfacePropertiesFormat(
            ip_configurations=[
                network.NetworkInterfaceIPConfiguration(name=IP_CONFIG_NAME, properties=ip_config)
            ],
            enable_ip_forwarding=True if ip_forwarding else None,
        ),
    )


@dataclass(frozen=True)
class NetworkPlan:
    """Which network resources the spec wants: the primary NIC always, the others on request."""

    primary_subnet_id: str
    public_ip: bool
    extended_subnet_id: str | None


def network_plan(spec: AzureEditionVMSpec) -> NetworkPlan:
    extended = None
    if Capability.EXTENDED_NETWORK in spec.capabilities and spec.extended_network is not None:
        extended = spec.extended_network.extended_subnet_id
    return NetworkPlan(spec.azure.subnet_id, spec.azure.public_ip, extended)


def _primary_ip_config(nic: network.NetworkInterface) -> network.NetworkInterfaceIPConfiguration | None:
    configs = (nic.properties.ip_configurations if nic.properties else None) or []
    return next(
        (c for c in configs if c.properties and c.properties.primary), configs[0] if configs else None
    )


def same_id(a: str | None, b: str | None) -> bool:
    return (a or "").rstrip("/").lower() == (b or "").rstrip("/").lower()


class NicChange(enum.Enum):
    NONE = "none"
    TAGS = "tags"  # only tags differ: one PUT of the current NIC with our tags (see with_tags)
    PUT = "put"  # the IP configuration changed (subnet or public IP): send the whole NIC


def diff_nic(desired: network.NetworkInterface, observed: network.NetworkInterface) -> NicChange:
    """Compare the NIC fields we own: the primary IP configuration's subnet and public IP, and tags."""
    want, have = _primary_ip_config(desired), _primary_ip_config(observed)
    want_p = want.properties if want else None
    have_p = have.properties if have else None
    want_subnet = want_p.subnet.id if want_p and want_p.subnet else None
    have_subnet = have_p.subnet.id if have_p and have_p.subnet else None
    want_pip = want_p.public_ip_address.id if want_p and want_p.public_ip_address else None
    have_pip = have_p.public_ip_address.id if have_p and have_p.public_ip_address else None
    if not same_id(want_subnet, have_subnet) or not same_id(want_pip, have_pip):
        return NicChange.PUT
    if merged_tags(desired.tags or {}, observed.tags) is not None:
        return NicChange.TAGS
    return NicChange.NONE


def nic_update_parameters(
    desired: network.NetworkInterface, observed: network.NetworkInterface
) -> network.NetworkInterface:
    """The NIC to PUT when its IP configuration must change: Azure's current NIC with ours applied.

    Starting from what Azure returned keeps what we do not own (the allocated private IP, DNS,
    NSG someone attached) instead of resetting it.
    """
    body: dict[str, Any] = observed.as_dict()
    want = _primary_ip_config(desired)
    configs = body.setdefault("properties", {}).setdefault("ipConfigurations", [])
    target = next(
        (c for c in configs if (c.get("properties") or {}).get("primary")), configs[0] if configs else None
    )
    if target is None or want is None or want.properties is None:
        return desired
    props = target.setdefault("properties", {})
    props["subnet"] = {"id": want.properties.subnet.id if want.properties.subnet else None}
    if want.properties.public_ip_address is not None:
        props["publicIPAddress"] = {"id": want.properties.public_ip_address.id}
    else:
        props.pop("publicIPAddress", None)
    body["tags"] = merged_tags(desired.tags or {}, observed.tags) or dict(observed.tags or {})
    return network.NetworkInterface(body)


def nic_subnet_id(nic: network.NetworkInterface | None) -> str | None:
    config = _primary_ip_config(nic) if nic is not None else None
    return attr_path(config, "properties", "subnet", "id")


def nic_public_ip_id(nic: network.NetworkInterface | None) -> str | None:
    config = _primary_ip_config(nic) if nic is not None else None
    return attr_path(config, "properties", "public_ip_address", "id")


def nic_private_ip(nic: network.NetworkInterface | None) -> str | None:
    config = _primary_ip_config(nic) if nic is not None else None
    return config.properties.private_ip_address if config and config.properties else None


# ----------------------------------------------------------------------------- the VM


def patch_settings(spec: AzureEditionVMSpec) -> compute.PatchSettings:
    """Hotpatch onboarding exactly as docs/capabilities.md says, or Windows' own automatic updates otherwise."""
    if Capability.HOTPATCH in spec.capabilities:
        reboot = (spec.hotpatch.reboot_setting if spec.hotpatch else RebootSetting.IF_REQUIRED).value
        return compute.PatchSettings(
            patch_mode="AutomaticByPlatform",
            enable_hotpatching=True,
            assessment_mode="AutomaticByPlatform",
            automatic_by_platform_settings=compute.WindowsVMGuestPatchAutomaticByPlatformSettings(
                reboot_setting=reboot,
                bypass_platform_safety_checks_on_user_schedule=False,
            ),
        )
    return compute.PatchSettings(
        patch_mode="AutomaticByOS", enable_hotpatching=False, assessment_mode="ImageDefault"
    )


def windows_configuration(spec: AzureEditionVMSpec) -> compute.WindowsConfiguration:
    return compute.WindowsConfiguration(
        provision_vm_agent=True, enable_automatic_updates=True, patch_settings=patch_settings(spec)
    )


def image_reference(image: ImageReference) -> compute.ImageReference:
    return compute.ImageReference(
        publisher=image.publisher, offer=image.offer, sku=image.sku, version=image.version
    )


def vm_parameters(
    identity: VMIdentity,
    spec: AzureEditionVMSpec,
    image: ImageReference,
    credentials: AdminLogin,
    tags: Mapping[str, str] | None = None,
) -> compute.VirtualMachine:
    """The VM to PUT. Contains the admin password: never log the result."""
    plan = network_plan(spec)
    nics = [
        compute.NetworkInterfaceReference(
            id=identity.nic_id,
            properties=compute.NetworkInterfaceReferenceProperties(primary=True, delete_option="Delete"),
        )
    ]
    if plan.extended_subnet_id is not None:
        nics.append(
            compute.NetworkInterfaceReference(
                id=identity.extended_nic_id,
                properties=compute.NetworkInterfaceReferenceProperties(primary=False, delete_option="Delete"),
            )
        )
    return compute.VirtualMachine(
        location=identity.location,
        tags=dict(tags if tags is not None else desired_tags(spec, identity.owner)),
        identity=compute.VirtualMachineIdentity(type="SystemAssigned")
        if wants_system_identity(spec)
        else None,
        properties=compute.VirtualMachineProperties(
            hardware_profile=compute.HardwareProfile(vm_size=spec.azure.vm_size),
            storage_profile=compute.StorageProfile(
                image_reference=image_reference(image),
                os_disk=compute.OSDisk(
                    name=identity.os_disk_name,
                    os_type="Windows",
                    create_option="FromImage",
                    caching="ReadWrite",
                    managed_disk=compute.ManagedDiskParameters(storage_account_type=OS_DISK_STORAGE),
                    delete_option="Delete",
                ),
            ),
            os_profile=compute.OSProfile(
                computer_name=identity.computer_name,
                admin_username=credentials.username,
                admin_password=credentials.password,
                windows_configuration=windows_configuration(spec),
            ),
            network_profile=compute.NetworkProfile(network_interfaces=nics),
        ),
    )


# ----------------------------------------------------------------------------- Key Vault certificate source

KEY_VAULT_EXTENSION = "KeyVaultForWindows"
KEY_VAULT_PUBLISHER = "Microsoft.Azure.KeyVault"
KEY_VAULT_HANDLER_VERSION = "3.0"


def key_vault_source(spec: AzureEditionVMSpec) -> Any:
    """spec.smbOverQuic.certificate.keyVault, or None."""
    smb = spec.smb_over_quic
    return smb.certificate.key_vault if smb is not None and smb.certificate is not None else None


def wants_system_identity(spec: AzureEditionVMSpec) -> bool:
    """The Key Vault extension authenticates with the VM's system-assigned managed identity."""
    return key_vault_source(spec) is not None


def identity_update(desired: compute.VirtualMachine, observed: compute.VirtualMachine) -> Any:
    """The identity to PATCH when ours wants a system-assigned one and the VM lacks it (user-assigned
    identities someone added are kept), else None. Never removes an identity."""
    want = enum_str(attr_path(desired, "identity", "type")) or ""
    have = enum_str(attr_path(observed, "identity", "type")) or ""
    if "SystemAssigned" not in want or "SystemAssigned" in have:
        return None
    if "UserAssigned" in have:
        return compute.VirtualMachineIdentity(
            type="SystemAssigned, UserAssigned",
            user_assigned_identities=observed.identity.user_assigned_identities,
        )
    return compute.VirtualMachineIdentity(type="SystemAssigned")


def key_vault_extension_settings(spec: AzureEditionVMSpec) -> dict[str, Any]:
    """KeyVaultForWindows' public settings (learn.microsoft.com/azure/virtual-machines/extensions/
    key-vault-windows): the observed certificate into LocalMachine\\My, polled at the spec's interval."""
    source = key_vault_source(spec)
    assert source is not None
    return {"secretsManagementSettings": {
        "pollingIntervalInS": str(source.polling_interval_seconds),
        "certificateStoreName": "MY",
        "certificateStoreLocation": "LocalMachine",
        "observedCertificates": [source.secret_url.rstrip("/")],
    }}  # fmt: skip


def key_vault_extension_parameters(
    spec: AzureEditionVMSpec, location: str
) -> compute.VirtualMachineExtension:
    return compute.VirtualMachineExtension(
        location=location,
        properties=compute.VirtualMachineExtensionProperties(
            publisher=KEY_VAULT_PUBLISHER, type=KEY_VAULT_EXTENSION, type_handler_version=KEY_VAULT_HANDLER_VERSION,
            auto_upgrade_minor_version=True, settings=key_vault_extension_settings(spec),
        ),
    )  # fmt: skip


def key_vault_extension_drift(spec: AzureEditionVMSpec, observed_settings: Mapping[str, Any] | None) -> bool:
    """True when the extension is missing (None) or its settings are not ours."""
    return observed_settings is None or dict(observed_settings) != key_vault_extension_settings(spec)


# ----------------------------------------------------------------------------- reading a VM


def attr_path(model: Any, *names: str) -> Any:
    """``model.a.b.c`` with None for any missing link (SDK models leave absent fields None)."""
    for name in names:
        if model is None:
            return None
        model = getattr(model, name, None)
    return model


def enum_str(value: Any) -> str | None:
    """An SDK enum or string as its plain string value."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


@dataclass(frozen=True)
class PatchView:
    """Patch settings as compared and reported, with Azure's defaults filled in."""

    patch_mode: str | None
    enable_hotpatching: bool
    assessment_mode: str | None
    reboot_setting: str | None
    bypass_platform_safety_checks_on_user_schedule: bool
    enable_automatic_updates: bool | None


def patch_view(vm: compute.VirtualMachine | compute.VirtualMachineUpdate) -> PatchView:
    return _patch_view_of(attr_path(vm, "properties", "os_profile", "windows_configuration"))


def _patch_view_of(win: compute.WindowsConfiguration | None) -> PatchView:
    ps = attr_path(win, "patch_settings")
    abp = attr_path(ps, "automatic_by_platform_settings")
    return PatchView(
        patch_mode=enum_str(attr_path(ps, "patch_mode")) or DEFAULT_PATCH_MODE,
        enable_hotpatching=bool(attr_path(ps, "enable_hotpatching")),
        assessment_mode=enum_str(attr_path(ps, "assessment_mode")) or DEFAULT_ASSESSMENT_MODE,
        reboot_setting=enum_str(attr_path(abp, "reboot_setting")),
        bypass_platform_safety_checks_on_user_schedule=bool(
            attr_path(abp, "bypass_platform_safety_checks_on_user_schedule")
        ),
        enable_automatic_updates=attr_path(win, "enable_automatic_updates"),
    )


def _patch_differs(want: PatchView, have: PatchView, desired_has_platform_settings: bool) -> list[str]:
    """The one comparison of patch settings (reconcile pass and check rounds alike): enum strings
    case-insensitively, as Azure treats them; ``<field> is <have>, want <want>`` per difference."""
    names = ["patch_mode", "enable_hotpatching", "assessment_mode"]
    if desired_has_platform_settings:
        names += ["reboot_setting", "bypass_platform_safety_checks_on_user_schedule"]
    if want.enable_automatic_updates is not None:
        names.append("enable_automatic_updates")

    def same(w: Any, h: Any) -> bool:
        return (w or "").lower() == (h or "").lower() if isinstance(w, str) or isinstance(h, str) else w == h

    pairs = ((name, getattr(want, name), getattr(have, name)) for name in names)
    return [f"{to_camel(name)} is {h!r}, want {w!r}" for name, w, h in pairs if not same(w, h)]


def patch_drift(spec: AzureEditionVMSpec, vm: compute.VirtualMachine) -> list[str]:
    """How the VM's patch settings differ from what the spec asks for; empty when they agree."""
    desired = windows_configuration(spec)
    has_platform = attr_path(desired, "patch_settings", "automatic_by_platform_settings") is not None
    return _patch_differs(_patch_view_of(desired), patch_view(vm), has_platform)


def patch_settings_update(win: compute.WindowsConfiguration) -> compute.VirtualMachineUpdate:
    """The one PATCH that restores patch settings (``diff_vm`` sends the same ``osProfile``)."""
    win = compute.WindowsConfiguration(
        enable_automatic_updates=win.enable_automatic_updates, patch_settings=win.patch_settings
    )
    return compute.VirtualMachineUpdate(properties=compute.VirtualMachineProperties(os_profile=compute.OSProfile(windows_configuration=win)))  # fmt: skip


def describe_vm_changes(desired: compute.VirtualMachine, observed: compute.VirtualMachine) -> list[str]:
    """Names of the owned fields that differ (vmSize, tags, patch settings); safe to log."""
    changed = []
    want_size = enum_str(attr_path(desired, "properties", "hardware_profile", "vm_size"))
    have_size = enum_str(attr_path(observed, "properties", "hardware_profile", "vm_size"))
    if want_size and (want_size.lower() != (have_size or "").lower()):
        changed.append("vmSize")
    if merged_tags(desired.tags or {}, observed.tags) is not None:
        changed.append("tags")
    has_platform = attr_path(desired, "properties", "os_profile", "windows_configuration", "patch_settings",
                         "automatic_by_platform_settings") is not None  # fmt: skip
    changed += [
        d.split(" ", 1)[0] for d in _patch_differs(patch_view(desired), patch_view(observed), has_platform)
    ]
    if identity_update(desired, observed) is not None:
        changed.append("identity")
    return changed


def describe_vm_changes_in_words(
    desired: compute.VirtualMachine, observed: compute.VirtualMachine
) -> list[str]:
    """``describe_vm_changes`` with the values: ``vmSize Standard_D2s_v5 → Standard_D4s_v5``, the tags
    added, changed and dropped, each patch setting as it is and as it would be; safe to log."""
    out = []
    changed = describe_vm_changes(desired, observed)
    if "vmSize" in changed:
        have = enum_str(attr_path(observed, "properties", "hardware_profile", "vm_size"))
        want = enum_str(attr_path(desired, "properties", "hardware_profile", "vm_size"))
        out.append(f"vmSize {have} → {want} (Azure restarts a running VM to resize it)")
    if "tags" in changed:
        out += tag_changes(desired.tags or {}, observed.tags)
    has_platform = attr_path(desired, "properties", "os_profile", "windows_configuration", "patch_settings",
                             "automatic_by_platform_settings") is not None  # fmt: skip
    out += _patch_differs(patch_view(desired), patch_view(observed), has_platform)
    if "identity" in changed:
        out.append("identity: add SystemAssigned")
    return out


_PATCH_FIELDS = {to_camel(f.name) for f in fields(PatchView)}


def diff_vm(
    desired: compute.VirtualMachine, observed: compute.VirtualMachine
) -> compute.VirtualMachineUpdate | None:
    """The PATCH that brings the owned fields of ``observed`` to ``desired``, or None if they agree.

    Never includes the password (it cannot be read back) nor the image (a VM cannot change image
    in place: see ``image_drift``).
    """
    changed = set(describe_vm_changes(desired, observed))
    if not changed:
        return None
    update = compute.VirtualMachineUpdate()
    if "tags" in changed:
        update.tags = merged_tags(desired.tags or {}, observed.tags)
    if "identity" in changed:
        update.identity = identity_update(desired, observed)
    props = compute.VirtualMachineProperties()
    if "vmSize" in changed:
        props.hardware_profile = compute.HardwareProfile(
            vm_size=attr_path(desired, "properties", "hardware_profile", "vm_size")
        )
    if changed & _PATCH_FIELDS:
        win = attr_path(desired, "properties", "os_profile", "windows_configuration")
        props.os_profile = patch_settings_update(win).properties.os_profile
    if props.hardware_profile is not None or props.os_profile is not None:
        update.properties = props
    return update


def repair_parameters(
    desired: compute.VirtualMachine, observed: compute.VirtualMachine
) -> compute.VirtualMachine:
    """The PUT that re-sends a Failed VM's model: ours, but with what cannot change kept as Azure has it.

    The create-only fields (image, computer name, admin username, OS disk name) come from
    ``observed`` so the PUT cannot be refused as a change; the password is left out (it is not
    needed to update an existing VM, and it cannot be read back).
    """
    body: dict[str, Any] = desired.as_dict()
    props = body.setdefault("properties", {})
    have = observed.as_dict().get("properties", {})
    os_profile = props.setdefault("osProfile", {})
    os_profile.pop("adminPassword", None)
    for name in ("computerName", "adminUsername"):
        if name in have.get("osProfile", {}):
            os_profile[name] = have["osProfile"][name]
    storage = props.setdefault("storageProfile", {})
    have_storage = have.get("storageProfile", {})
    if "imageReference" in have_storage:
        ref = have_storage["imageReference"]
        storage["imageReference"] = {k: ref[k] for k in ("publisher", "offer", "sku", "version") if k in ref}
    if "name" in have_storage.get("osDisk", {}):
        storage.setdefault("osDisk", {})["name"] = have_storage["osDisk"]["name"]
    return compute.VirtualMachine(body)


def image_drift(desired: compute.VirtualMachine, observed: compute.VirtualMachine) -> str | None:
    """A message if the VM runs another image than the spec resolves to (reported, never fixed)."""
    want = attr_path(desired, "properties", "storage_profile", "image_reference")
    have = attr_path(observed, "properties", "storage_profile", "image_reference")
    if want is None or have is None:
        return None
    fields_ = ("publisher", "offer", "sku")
    if all((getattr(want, f) or "").lower() == (getattr(have, f) or "").lower() for f in fields_):
        pinned = want.version and want.version.lower() != "latest"
        if not pinned or (have.version or "").lower() in (want.version.lower(), "latest"):
            return None
    return (
        f"the VM runs {have.publisher}:{have.offer}:{have.sku}:{have.version} but the spec resolves to "
        f"{want.publisher}:{want.offer}:{want.sku}:{want.version}; a VM cannot change its image in place: "
        "revert the spec, or create a new AzureEditionVM"
    )


def provisioning_state(resource: Any) -> str | None:
    return enum_str(attr_path(resource, "properties", "provisioning_state"))


def is_in_flight(state: str | None) -> bool:
    return (state or "").lower() in IN_FLIGHT_STATES


def is_failed(state: str | None) -> bool:
    return (state or "").lower() == "failed"


def is_deleting(state: str | None) -> bool:
    return (state or "").lower() in DELETING_STATES


def power_state_of(codes: Iterable[str | None]) -> str | None:
    """``running`` from the instance view status code ``PowerState/running``; None when there is none.
    The one reading, for SDK models and ARM's wire dicts alike."""
    return next((c.split("/", 1)[1] for c in codes if c and c.startswith("PowerState/")), None)


def power_state(vm: compute.VirtualMachine) -> str | None:
    statuses: Iterable[Any] = attr_path(vm, "properties", "instance_view", "statuses") or []
    return power_state_of(s.code for s in statuses)
