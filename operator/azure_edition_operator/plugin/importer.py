"""``kubectl aevm import``, the deciding half: Azure's VM documents → AzureEditionVM manifests (pure).

Like ``asoctl import azure-resource``: what ARM says about a VM made in the portal, by Terraform or
Bicep becomes a manifest to review and commit to Git. Everything here is a function of the REST-shaped
documents (``model.as_dict()`` of the SDK, or the published examples), so it is table-tested without
Azure; ``main.cmd_import`` only reads them.

What ARM can tell, and what it cannot:

* **Hotpatch** is known: the image SKU says whether the image carries it (the catalog in ``images``),
  ``patchSettings.enableHotpatching`` whether it is on. Hotpatch is requested only when both hold.
* **SMB over QUIC** and **Extended Network** live in the guest (an SMB server certificate mapping, a
  Hyper-V appliance); ARM alone cannot tell whether a VM uses them. They are left out and a comment says so.
* **The image**: the SKU gives the pins (``windowsServerVersion``, ``experience``, ``smallDisk``), and a
  fixed image version is pinned too. When resolution would choose another SKU for the capabilities
  found (a ``-hotpatch`` image without Hotpatch on), a comment says what the operator will report.
* **Who owns it**: a VM carrying this operator's owner tags belongs to an AzureEditionVM already (in this
  cluster or another); it is skipped, naming the owner. A VM without them gets ``adopt: true``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from ..api.v1alpha1 import (
    GROUP,
    KIND,
    MAX_USER_TAGS,
    RESERVED_TAG_PREFIX,
    VERSION,
    AzureEditionVMSpec,
    DeletionPolicy,
    ManagementPolicy,
    OnMissing,
    RebootSetting,
)
from ..azure.specs import CLUSTER_TAG, MANAGED_BY_TAG, MANAGED_BY_VALUE, OWNER_TAG, OWNER_UID_TAG
from ..images import CATALOG, OFFER, Capability, CatalogRow, ImagePins, UnsupportedCapabilitiesError, resolve
from .render import EXIT_FAILED, EXIT_FORBIDDEN, EXIT_NOT_FOUND, EXIT_UNREACHABLE, PluginError

AZURE_EDITION_MARKER = "azure-edition"
GUEST_CAPABILITIES = (Capability.SMB_OVER_QUIC, Capability.EXTENDED_NETWORK)
OBJECT_NAME_MAX = 63
SECRET_SUFFIX = "-admin"


# ----------------------------------------------------------------------------- reading ARM documents


def _ci(mapping: Mapping[str, Any] | None, name: str) -> Any:
    """A key of an ARM document, case-insensitively (ARM's names are not case-sensitive)."""
    lowered = name.lower()
    return next((v for k, v in (mapping or {}).items() if k.lower() == lowered), None)


def _props(doc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (doc or {}).get("properties") or {}


def arm_segment(resource_id: str, name: str) -> str | None:
    """The value after ``/<name>/`` in an ARM id (case-insensitive name), e.g. the resource group."""
    parts = resource_id.strip("/").split("/")
    return next((parts[i + 1] for i in range(len(parts) - 1) if parts[i].lower() == name.lower()), None)


def image_reference(vm: Mapping[str, Any]) -> Mapping[str, Any]:
    return (_props(vm).get("storageProfile") or {}).get("imageReference") or {}


def is_azure_edition(vm: Mapping[str, Any]) -> bool:
    """A Windows Server Azure Edition VM: offer WindowsServer, a SKU naming azure-edition."""
    ref = image_reference(vm)
    return (
        str(ref.get("offer", "")).lower() == OFFER.lower()
        and AZURE_EDITION_MARKER in str(ref.get("sku", "")).lower()
    )


def patch_settings(vm: Mapping[str, Any]) -> Mapping[str, Any]:
    windows = (_props(vm).get("osProfile") or {}).get("windowsConfiguration") or {}
    return windows.get("patchSettings") or {}


def hotpatch_enabled(vm: Mapping[str, Any]) -> bool:
    settings = patch_settings(vm)
    return settings.get("enableHotpatching") is True and settings.get("patchMode") == "AutomaticByPlatform"


def primary_nic_id(vm: Mapping[str, Any]) -> str | None:
    refs = (_props(vm).get("networkProfile") or {}).get("networkInterfaces") or []
    if not refs:
        return None
    primary = next((r for r in refs if (r.get("properties") or {}).get("primary")), refs[0])
    return str(primary.get("id")) if primary.get("id") else None


def primary_ip_configuration(nic: Mapping[str, Any] | None) -> Mapping[str, Any]:
    configs = _props(nic).get("ipConfigurations") or []
    if not configs:
        return {}
    chosen = next((c for c in configs if (c.get("properties") or {}).get("primary")), configs[0])
    return chosen.get("properties") or {}


def public_ip_id(nic: Mapping[str, Any] | None) -> str | None:
    ref = primary_ip_configuration(nic).get("publicIPAddress") or {}
    return str(ref["id"]) if ref.get("id") else None


def normalize_location(location: str) -> str:
    """ARM answers ``West Europe`` or ``westeurope``; the spec takes the latter."""
    return re.sub(r"[^a-z0-9]", "", location.lower())


# ----------------------------------------------------------------------------- ownership


@dataclass(frozen=True)
class OwnerTags:
    """What this operator's tags on a VM say about who owns it."""

    ref: str | None  # namespace/name of the owning AzureEditionVM
    uid: str | None  # legacy: the owner's Kubernetes uid
    cluster: str | None  # the owning operator's cluster id

    @property
    def owned(self) -> bool:
        return bool(self.ref or self.uid)

    def describe(self) -> str:
        who = f"AzureEditionVM {self.ref}" if self.ref else f"an AzureEditionVM (uid {self.uid})"
        where = f"cluster {self.cluster!r}" if self.cluster else "a cluster of an earlier version (uid tags)"
        return f"{who} on {where}"


def owner_tags(tags: Mapping[str, str] | None) -> OwnerTags:
    return OwnerTags(_ci(tags, OWNER_TAG), _ci(tags, OWNER_UID_TAG), _ci(tags, CLUSTER_TAG))


def user_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """The tags that are the user's: neither ours (the reserved prefix, managed-by) nor nothing."""
    return {
        k: v
        for k, v in sorted((tags or {}).items())
        if not k.lower().startswith(RESERVED_TAG_PREFIX)
        and not (k.lower() == MANAGED_BY_TAG and v == MANAGED_BY_VALUE)
    }


# ----------------------------------------------------------------------------- manifests


def object_name(vm_name: str) -> str:
    """A Kubernetes name for a VM name: lower case, '-' for what a DNS label may not hold, at most 63."""
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", vm_name.lower())).strip("-")
    return slug[:OBJECT_NAME_MAX].rstrip("-") or "vm"


def secret_name(name: str) -> str:
    return f"{name[: OBJECT_NAME_MAX - len(SECRET_SUFFIX)].rstrip('-')}{SECRET_SUFFIX}"


@dataclass(frozen=True)
class ImportOptions:
    """What the user chose on the command line."""

    namespace: str | None = None  # metadata.namespace; None: kubectl apply's -n decides
    management_policy: ManagementPolicy = ManagementPolicy.OBSERVE
    admin_secret: str | None = None  # adminCredentialsSecretRef.name; None: "<name>-admin" placeholders


@dataclass
class Imported:
    """One VM's outcome: a manifest with its comments, or why it was skipped."""

    vm_id: str
    manifest: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None


def _image_pins(row: CatalogRow, version: str) -> dict[str, Any]:
    pins: dict[str, Any] = {"windowsServerVersion": str(row.version), "experience": str(row.experience)}
    if row.small_disk:
        pins["smallDisk"] = True
    if version and version.lower() != "latest":
        pins["version"] = version
    return pins


def manifest_for(
    vm: Mapping[str, Any],
    nic: Mapping[str, Any] | None,
    public_ip: Mapping[str, Any] | None,
    options: ImportOptions,
    name: str | None = None,
) -> Imported:
    """The AzureEditionVM for one VM (with the primary NIC and public IP as ARM returns them)."""
    vm_id = str(vm.get("id", ""))
    result = Imported(vm_id)
    owner = owner_tags(vm.get("tags"))
    if owner.owned:
        result.skipped = f"already managed by {owner.describe()}: its manifest is that object's"
        return result
    ref = image_reference(vm)
    sku = str(ref.get("sku", ""))
    row = next((r for r in CATALOG if r.sku.lower() == sku.lower()), None)  # Azure echoes the PUT's case
    if row is None:
        result.skipped = f"image SKU {sku!r} is not in this operator's catalog (a newer operator may know it)"
        return result
    subnet = (primary_ip_configuration(nic).get("subnet") or {}).get("id")
    if not subnet:
        result.skipped = "its primary NIC could not be read (no subnet): check the NIC, then import again"
        return result
    hotpatch_on = hotpatch_enabled(vm)
    capabilities = [Capability.HOTPATCH] if row.carries(Capability.HOTPATCH) and hotpatch_on else []
    vm_name = str(vm.get("name") or arm_segment(vm_id, "virtualMachines") or "")
    name = name or object_name(vm_name)
    tags = user_tags(vm.get("tags"))
    notes = [f"Azure VM {vm_id}", f"image {row.sku} (Windows Server {row.version}, {row.experience})"]
    notes.append(_hotpatch_note(row, hotpatch_on))
    if len(tags) > MAX_USER_TAGS:
        dropped = sorted(tags)[MAX_USER_TAGS:]
        tags = {k: tags[k] for k in sorted(tags)[:MAX_USER_TAGS]}
        notes.append(
            f"tags {', '.join(dropped)} left out: the operator adds its own, {MAX_USER_TAGS} remain for yours"
        )
    azure: dict[str, Any] = {
        "subscriptionId": arm_segment(vm_id, "subscriptions"),
        "resourceGroup": arm_segment(vm_id, "resourceGroups"),
        "location": normalize_location(str(vm.get("location", ""))),
        "vmName": vm_name,
    }
    azure["adopt"] = True  # owned VMs were skipped above: this one carries no owner tag of ours
    notes.append(
        "adopt: true: the VM carries no owner tag of this operator; it gets them on the first write "
        "(managementPolicy Full), never under Observe"
    )
    azure["vmSize"] = str((_props(vm).get("hardwareProfile") or {}).get("vmSize", ""))
    azure["subnetId"] = subnet
    if public_ip_id(nic):
        azure["publicIP"] = True
        label = ((_props(public_ip).get("dnsSettings") or {}).get("domainNameLabel")) if public_ip else None
        if label:
            azure["publicIPDnsLabel"] = label
    if tags:
        azure["tags"] = tags
    azure["onMissing"] = str(OnMissing.REPORT)
    notes.append(
        "onMissing: Report and deletionPolicy: Orphan: a VM with data is never recreated empty nor deleted "
        "with this object; change them once you trust the operator with it"
    )
    spec: dict[str, Any] = {
        "managementPolicy": str(options.management_policy),
        "capabilities": [str(c) for c in capabilities],
        "image": _image_pins(row, str(ref.get("version", "latest"))),
        "azure": azure,
        "adminCredentialsSecretRef": {"name": options.admin_secret or secret_name(name)},
        "deletionPolicy": str(DeletionPolicy.ORPHAN),
    }
    if not options.admin_secret:
        notes.append(
            f"adminCredentialsSecretRef {secret_name(name)} is a placeholder: an existing VM keeps its "
            "password; create a Secret (keys username, password) with the VM's local administrator, or name yours"
        )
    reboot = (patch_settings(vm).get("automaticByPlatformSettings") or {}).get("rebootSetting")
    if capabilities and reboot in {s.value for s in RebootSetting} and reboot != RebootSetting.IF_REQUIRED:
        spec["hotpatch"] = {"rebootSetting": reboot}
    notes.append(
        f"{' and '.join(GUEST_CAPABILITIES)} are set up inside the guest: ARM cannot tell whether this VM "
        "uses them, so they are left out. If it does, add them to spec.capabilities with spec.smbOverQuic "
        "(serverName) or spec.extendedNetwork (extendedSubnetId)"
    )
    notes += _drift_notes(vm, row, capabilities, spec["image"])
    manifest = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}
    if options.namespace:
        manifest["metadata"]["namespace"] = options.namespace
    try:
        AzureEditionVMSpec.model_validate(spec)
    except ValidationError as err:  # the CRD's twin refuses it: say so rather than print a broken manifest
        result.skipped = f"its manifest would be refused ({err.errors()[0]['msg']}); write it by hand"
        return result
    result.manifest, result.notes = manifest, notes
    return result


def _hotpatch_note(row: CatalogRow, enabled: bool) -> str:
    if row.carries(Capability.HOTPATCH) and enabled:
        return "Hotpatch: on (patchMode AutomaticByPlatform, enableHotpatching): requested"
    if row.carries(Capability.HOTPATCH):
        return "Hotpatch: the image carries it but it is off: not requested (add Hotpatch to turn it on)"
    return "Hotpatch: this image does not carry it"


def _drift_notes(
    vm: Mapping[str, Any], row: CatalogRow, capabilities: Sequence[Capability], image: Mapping[str, Any]
) -> list[str]:
    """What the operator will report as differing, as far as ARM shows it."""
    notes = []
    pins = ImagePins(row.version, row.experience, row.small_disk)
    try:
        chosen = resolve(capabilities, pins).sku
    except UnsupportedCapabilitiesError:
        chosen = None
    if chosen is not None and chosen != row.sku:
        notes.append(
            f"for these capabilities the operator would choose {chosen}, not the VM's {row.sku}: it reports "
            "the image as differing (an image never changes in place)"
        )
    refs = (_props(vm).get("networkProfile") or {}).get("networkInterfaces") or []
    if len(refs) > 1:
        notes.append(f"the VM has {len(refs)} NICs: spec.azure.subnetId is the primary NIC's subnet")
    data_disks = (_props(vm).get("storageProfile") or {}).get("dataDisks") or []
    if data_disks:
        notes.append(
            f"{len(data_disks)} data disk(s) stay as they are: the operator does not manage data disks"
        )
    return notes


def unique_names(vms: Sequence[Mapping[str, Any]]) -> list[str]:
    """An object name per VM, distinct within one import (``fs01`` in two resource groups: ``fs01``,
    ``fs01-<resource group>``)."""
    names: list[str] = []
    for vm in vms:
        base = object_name(str(vm.get("name", "")))
        candidate = base
        if candidate in names:
            rg = object_name(arm_segment(str(vm.get("id", "")), "resourceGroups") or "")
            candidate = object_name(f"{base[: OBJECT_NAME_MAX - len(rg) - 1]}-{rg}")
        counter = 2
        while candidate in names:
            candidate = object_name(f"{base[: OBJECT_NAME_MAX - 4]}-{counter}")
            counter += 1
        names.append(candidate)
    return names


def azure_problem(status: int | None, code: str | None, message: str, scope: str) -> PluginError:
    """What to tell the user when Azure refuses or does not answer, with the exit code scripts branch on."""
    first = " ".join(str(message).split())[:300]
    if status == 401:
        return PluginError(
            f"cannot sign in to Azure ({first}): set AZURE_CREDENTIAL_MODE and its variables as for the "
            "operator (docs/credentials.md), or `az login` for the default credential",
            EXIT_FORBIDDEN,
        )
    if status == 403:
        return PluginError(
            f"Azure refused to list {scope} ({code}): the identity needs Reader there (virtualMachines, "
            "networkInterfaces and publicIPAddresses read)",
            EXIT_FORBIDDEN,
        )
    if status == 404:
        return PluginError(
            f"{scope} not found in Azure ({code}): check --subscription and -g", EXIT_NOT_FOUND
        )
    if status is None:
        return PluginError(
            f"cannot reach Azure ({first}): check AZURE_RESOURCE_MANAGER_ENDPOINT", EXIT_UNREACHABLE
        )
    return PluginError(f"Azure answered {status} {code or ''} listing {scope}: {first}", EXIT_FAILED)


def _comment(lines: Iterable[str]) -> str:
    return "".join(f"# {line}\n" for text in lines for line in text.splitlines() or [""])


def render_yaml(imported: Sequence[Imported], scope: str, others: int = 0) -> str:
    """The import as a YAML stream: a header (scope, what was skipped and why), then one commented
    document per VM, ready to review and commit."""
    made = [i for i in imported if i.manifest is not None]
    skipped = [i for i in imported if i.skipped]
    header = [f"kubectl aevm import: {len(made)} AzureEditionVM(s) from {scope}"]
    if made:
        policy = made[0].manifest["spec"]["managementPolicy"] if made[0].manifest else ""
        header.append(
            f"managementPolicy {policy}: review each manifest, apply it, read its Synced condition "
            "(docs/migrate-from-automanage.md)"
        )
    header += [f"skipped {i.vm_id}: {i.skipped}" for i in skipped]
    if others:
        header.append(f"{others} other VM(s) in scope run no Azure Edition image: not imported")
    out = [_comment(header)]
    for item in made:
        body = yaml.safe_dump(item.manifest, sort_keys=False, default_flow_style=False)
        out.append("---\n" + _comment(item.notes) + body)
    return "".join(out)
