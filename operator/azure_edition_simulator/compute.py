"""Microsoft.Compute: virtual machines, their OS disks, Run Command, guest patching and platform images.

Validation follows CRP: the image must exist (``PlatformImageNotFound``); Hotpatch rules
(``enableHotpatching`` only on the Hotpatch-capable SKUs, with ``patchMode: AutomaticByPlatform``, the VM
agent, automatic updates, and never with ``bypassPlatformSafetyChecksOnUserSchedule``); referenced NICs
must exist; create-only properties cannot change (``PropertyChangeNotAllowed``). Codes are Azure's;
messages are Azure's where a captured response was found (see :mod:`errors`).
"""

from __future__ import annotations

import copy
import random
import re
import time
import uuid
from typing import Any

from . import errors, guest, images, limits, lro, others, skus, throttle, vmextensions
from .context import Reply, RequestContext
from .world import (
    REGIONS,
    World,
    check_location,
    check_location_unchanged,
    crp_reference,
    key,
    resource_id,
    utc_now_iso,
)

VM_TYPE = "Microsoft.Compute/virtualMachines"
DISK_TYPE = "Microsoft.Compute/disks"
RUN_COMMAND_TYPE = "Microsoft.Compute/virtualMachines/runCommands"
COMPUTE = "Microsoft.Compute"
MIN_HOTPATCH_API_VERSION = "2020-06-01"
PATCH_MODES = ("Manual", "AutomaticByOS", "AutomaticByPlatform")
ASSESSMENT_MODES = ("ImageDefault", "AutomaticByPlatform")
REBOOT_SETTINGS = ("Unknown", "IfRequired", "Never", "Always")
WINDOWS_COMMAND_IDS = (
    "RunPowerShellScript",
    "EnableRemotePS",
    "IPConfig",
    "EnableAdminAccount",
    "ResetRDPCert",
    "SetRDPPort",
    "DisableNLA",
    "DisableWindowsUpdate",
    "EnableWindowsUpdate",
    "RDPSettings",
    "ResetRDPConfig",
)
SERVER_NAME_TAG = "azureedition.io_smb-over-quic-server-name"


# --- helpers ---------------------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge ``patch`` into a copy of ``base``: objects recursively, everything else replaced."""
    out = copy.deepcopy(base)
    for name, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = deep_merge(out[name], value)
        else:
            out[name] = copy.deepcopy(value)
    return out


def _vm_id(world: World, sub: str, rg: str, name: str) -> str:
    rg_name = world.resource_group(sub, rg)["name"]
    return resource_id(sub, rg_name, COMPUTE, "virtualMachines", name)


def find_vm(world: World, sub: str, rg: str, name: str) -> dict[str, Any]:
    """The VM document, or ARM's ResourceNotFound."""
    vm = world.vms.get(key(_vm_id(world, sub, rg, name)))
    if vm is None:
        raise errors.resource_not_found(VM_TYPE, name, rg)
    return vm


def _internal(world: World, vm: dict[str, Any]) -> dict[str, Any]:
    return world.vm_internal.setdefault(key(vm["id"]), {})


def _windows(props: dict[str, Any]) -> dict[str, Any]:
    return (props.get("osProfile") or {}).get("windowsConfiguration") or {}


def patch_settings(vm: dict[str, Any]) -> dict[str, Any]:
    return _windows(vm["properties"]).get("patchSettings") or {}


def hotpatch_enabled(vm: dict[str, Any]) -> bool:
    return bool(patch_settings(vm).get("enableHotpatching"))


def image_of(vm: dict[str, Any]) -> images.PlatformImage | None:
    ref = vm["properties"].get("storageProfile", {}).get("imageReference", {})
    return images.find_image(ref.get("publisher", ""), ref.get("offer", ""), ref.get("sku", ""))


def _mac() -> str:
    return "00-0D-3A-" + "-".join(f"{random.randint(0, 255):02X}" for _ in range(3))


# --- validation (pure on the effective model) -----------------------------------------------------------


def _enum(value: Any, allowed: tuple[str, ...], name: str) -> None:
    if value is not None and value not in allowed:
        raise errors.invalid_parameter(
            f"The value '{value}' of parameter '{name}' is not valid. Allowed values are "
            f"{', '.join(repr(a) for a in allowed)}.",
            target=name,
        )


def validate_image(props: dict[str, Any]) -> tuple[images.PlatformImage, str]:
    """The catalog image and exact version the model refers to, or PlatformImageNotFound."""
    storage = props.get("storageProfile") or {}
    ref = storage.get("imageReference")
    if not ref:
        raise errors.missing_parameter("imageReference")
    publisher, offer = ref.get("publisher", ""), ref.get("offer", "")
    sku, version = ref.get("sku", ""), ref.get("version", "latest")
    image = images.find_image(publisher, offer, sku)
    exact = images.resolve_version(image, version) if image else None
    if image is None or exact is None:
        raise errors.platform_image_not_found(publisher, offer, sku, version)
    return image, exact


def validate_patch_settings(
    image: images.PlatformImage, windows: dict[str, Any] | None, api_version: str
) -> None:
    """CRP's Hotpatch / guest-patching rules on ``osProfile.windowsConfiguration``."""
    if image.hotpatch_capable and api_version < MIN_HOTPATCH_API_VERSION:
        raise errors.ArmError(
            400,
            "BadRequest",
            f"Hotpatch compatible VMs cannot be created or updated with an API version lower than "
            f"'{MIN_HOTPATCH_API_VERSION}'.",
        )
    windows = windows or {}
    settings = windows.get("patchSettings")
    if image.hotpatch_capable and settings is None:
        # Azure's wording (captured from a Packer failure).
        raise errors.invalid_parameter(
            "PatchSettings must be specified for hotpatch compatible VMs.", "patchSettings"
        )
    settings = settings or {}
    patch_mode = settings.get("patchMode", "AutomaticByOS")
    _enum(settings.get("patchMode"), PATCH_MODES, "patchMode")
    _enum(settings.get("assessmentMode"), ASSESSMENT_MODES, "assessmentMode")
    platform = settings.get("automaticByPlatformSettings") or {}
    _enum(platform.get("rebootSetting"), REBOOT_SETTINGS, "rebootSetting")
    hotpatch = bool(settings.get("enableHotpatching"))
    if hotpatch and not image.hotpatch_capable:
        # (wording: simulator)
        raise errors.invalid_parameter(
            f"Hotpatching is not supported on the image '{image.publisher}:{image.offer}:{image.sku}'. "
            "'enableHotpatching' can only be set to true on Windows Server Datacenter: Azure Edition images "
            "that support Hotpatch.",
            target="enableHotpatching",
        )
    if hotpatch and patch_mode != "AutomaticByPlatform":
        # (wording: simulator)
        raise errors.invalid_parameter(
            f"'enableHotpatching' requires 'patchMode' to be set to 'AutomaticByPlatform' (got '{patch_mode}').",
            target="patchMode",
        )
    if patch_mode == "AutomaticByPlatform" and windows.get("provisionVMAgent") is False:
        # (wording: simulator)
        raise errors.invalid_parameter(
            "'provisionVMAgent' must be set to true when 'patchMode' is set to 'AutomaticByPlatform'.",
            target="provisionVMAgent",
        )
    if patch_mode == "AutomaticByPlatform" and windows.get("enableAutomaticUpdates") is False:
        # (wording: simulator)
        raise errors.invalid_parameter(
            "'enableAutomaticUpdates' must be set to true when 'patchMode' is set to 'AutomaticByPlatform'.",
            target="enableAutomaticUpdates",
        )
    if hotpatch and platform.get("bypassPlatformSafetyChecksOnUserSchedule") is True:
        # Azure's wording (captured from a Terraform failure).
        raise errors.invalid_parameter(
            "Hotpatch updates require platform safety checks. The 'BypassPlatformSafetyChecksOnUserSchedule' "
            "flag must be set to false to enable hotpatching.",
            target="bypassPlatformSafetyChecksOnUserSchedule",
        )


def validate_vm_size(
    world: World, location: str, props: dict[str, Any], image: images.PlatformImage, nic_ids: list[str]
) -> None:
    """``vmSize`` against the catalogue (skus.py): offered here, bootable generation, premium IO, AN."""
    name = (props.get("hardwareProfile") or {}).get("vmSize")
    if not name:
        return
    size = skus.find(name)
    if size is None:
        offered = ",".join(s.name for s in skus.CATALOGUE if not world.sku_restricted(location, s.name))
        raise errors.ArmError(
            400,
            "InvalidParameter",
            f"The requested VM size {name} is not available in the current region. The sizes available in the "
            f"current region are: {offered}. Find out more on the available VM sizes in each region at "
            "https://aka.ms/azure-regions.",
            target="vmSize",
        )
    if world.sku_restricted(location, size.name):
        raise errors.ArmError(
            409,
            "SkuNotAvailable",
            f"The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: {size.name}' "
            f"is currently not available in location '{location}'. Please try another size or deploy to a "
            "different location or different zone. See https://aka.ms/azureskunotavailable for details.",
        )
    if image.hyper_v_generation not in size.hyper_v_generations:
        generation = image.hyper_v_generation.removeprefix("V")
        raise errors.ArmError(
            400,
            "BadRequest",
            f"The selected VM size '{size.name}' cannot boot Hypervisor Generation '{generation}'. If this was a "
            "Create operation please check that the Hypervisor Generation of the Image matches the Hypervisor "
            "Generation of the selected VM Size. If this was an Update operation please select a Hypervisor "
            f"Generation '{generation}' VM Size. For more information, see https://aka.ms/azuregen2vm",
        )
    storage = props.get("storageProfile") or {}
    for disk in [storage.get("osDisk") or {}, *(storage.get("dataDisks") or [])]:
        account = (disk.get("managedDisk") or {}).get("storageAccountType", "")
        if account.startswith("Premium") and not size.premium_io:
            # Wording: a captured 400 (google/cloud-forensics-utils#488).
            raise errors.ArmError(
                400,
                "InvalidParameter",
                f"Requested operation cannot be performed because the VM size {size.name} does not support the "
                f"storage account type {account} of disk '{disk.get('name', '')}'. Consider updating the VM to a "
                "size that supports Premium storage.",
            )
    for nic_id in nic_ids:
        nic = world.nics.get(key(nic_id))
        if nic and nic["properties"].get("enableAcceleratedNetworking") and not size.accelerated_networking:
            # Code from Network's error list; wording: simulator.
            raise errors.ArmError(
                400,
                "VMSizeIsNotPermittedToEnableAcceleratedNetworking",
                f"VM size {size.name} is not compatible with Accelerated Networking on NIC(s) [{nic['id']}]. "
                "Please use a size that supports Accelerated Networking or disable it on the NIC.",
            )


def validate_network_profile(world: World, vm_id: str, props: dict[str, Any]) -> list[str]:
    """Ids of the NICs the model references; each must exist and be free (or already this VM's)."""
    nics = (props.get("networkProfile") or {}).get("networkInterfaces") or []
    if not nics:
        raise errors.missing_parameter("networkProfile")
    ids = []
    for ref in nics:
        nic_id = ref.get("id", "")
        nic = world.nics.get(key(nic_id))
        if nic is None:
            # Network's NotFound wording; the HTTP status CRP uses here is not confirmed (400 chosen).
            raise errors.ArmError(
                400, "NotFound", f"Resource {nic_id} not found.", target="networkInterfaces"
            )
        owner = (nic["properties"].get("virtualMachine") or {}).get("id")
        if owner and key(owner) != key(vm_id):
            # (wording: simulator)
            raise errors.ArmError(
                400, "NicInUse", f"Network interface {nic['id']} is in use by virtual machine {owner}."
            )
        ids.append(nic["id"])
    return ids


def _check_create_only(old: dict[str, Any], new: dict[str, Any]) -> None:
    old_ref = old.get("storageProfile", {}).get("imageReference", {})
    new_ref = new.get("storageProfile", {}).get("imageReference", {})
    for part in ("publisher", "offer", "sku", "version"):
        if str(old_ref.get(part, "")).lower() != str(new_ref.get(part, "")).lower():
            raise errors.property_change_not_allowed("imageReference")
    old_os, new_os = old.get("osProfile", {}), new.get("osProfile", {})
    for name in ("computerName", "adminUsername"):
        if old_os.get(name) != new_os.get(name):
            raise errors.property_change_not_allowed(name)
    if old.get("storageProfile", {}).get("osDisk", {}).get("name") != new.get("storageProfile", {}).get(
        "osDisk", {}
    ).get("name"):
        raise errors.property_change_not_allowed("osDisk.name")


# --- the model -----------------------------------------------------------------------------------------


_READ_ONLY = ("vmId", "provisioningState", "instanceView", "timeCreated")


def _strip_input(props: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Remove read-only and secret fields from a request's properties; returns (props, adminPassword)."""
    props = copy.deepcopy(props)
    for name in _READ_ONLY:
        props.pop(name, None)
    os_profile = props.get("osProfile") or {}
    password = os_profile.pop("adminPassword", None)
    os_profile.pop("customData", None)
    return props, password


def _with_defaults(
    name: str, props: dict[str, Any], image: images.PlatformImage, exact_version: str
) -> dict[str, Any]:
    """The model as CRP stores it: defaults filled in."""
    props = copy.deepcopy(props)
    storage = props.setdefault("storageProfile", {})
    storage["imageReference"] = {**storage["imageReference"], "exactVersion": exact_version}
    storage["imageReference"].setdefault("version", "latest")
    os_disk = storage.setdefault("osDisk", {})
    os_disk.setdefault("osType", "Windows")
    os_disk.setdefault("name", f"{name}_OsDisk_1_{uuid.uuid4().hex}")
    os_disk.setdefault("createOption", "FromImage")
    os_disk.setdefault("caching", "ReadWrite")
    os_disk.setdefault("managedDisk", {}).setdefault("storageAccountType", "Premium_LRS")
    os_disk.setdefault("deleteOption", "Detach")
    os_disk.setdefault("diskSizeGB", image.disk_size_gb)
    storage.setdefault("dataDisks", [])
    os_profile = props.setdefault("osProfile", {})
    os_profile.setdefault("computerName", name[:15])
    os_profile.setdefault("secrets", [])
    os_profile.setdefault("allowExtensionOperations", True)
    os_profile.setdefault("requireGuestProvisionSignal", True)
    windows = os_profile.setdefault("windowsConfiguration", {})
    windows.setdefault("provisionVMAgent", True)
    windows.setdefault("enableAutomaticUpdates", True)
    settings = windows.setdefault("patchSettings", {})
    settings.setdefault("patchMode", "AutomaticByOS")
    settings.setdefault("assessmentMode", "ImageDefault")
    network = props.setdefault("networkProfile", {})
    refs = network.get("networkInterfaces") or []
    network["networkInterfaces"] = [
        {
            "id": ref["id"],
            "properties": {
                "primary": (ref.get("properties") or {}).get("primary", len(refs) == 1 or index == 0),
                "deleteOption": (ref.get("properties") or {}).get("deleteOption", "Detach"),
            },
        }
        for index, ref in enumerate(refs)
    ]
    return props


def render_vm(world: World, vm: dict[str, Any], expand: str = "") -> dict[str, Any]:
    """The VM as GET returns it (userData and instanceView only when expanded)."""
    doc = copy.deepcopy(vm)
    wanted = {part.strip().lower() for part in expand.split(",") if part.strip()}
    if "userdata" not in wanted:
        doc["properties"].pop("userData", None)
    if "instanceview" in wanted:
        doc["properties"]["instanceView"] = instance_view(world, vm)
    return doc


def rebooting(world: World, vm: dict[str, Any]) -> bool:
    """The guest restarts after an installation that rebooted it (``rebootUntil``, wall clock)."""
    return float(world.vm_internal.get(key(vm["id"]), {}).get("rebootUntil") or 0) > time.time()


def power_state(world: World, vm: dict[str, Any]) -> str:
    """running, starting, stopped or deallocated (the last two only after an out-of-band stop); starting
    also while the guest reboots after installPatches."""
    stopped = world.vm_internal.get(key(vm["id"]), {}).get("powerState")
    if stopped:
        return str(stopped)
    if rebooting(world, vm):
        return "starting"
    return "running" if vm["properties"].get("provisioningState") in ("Succeeded", "Updating") else "starting"


def power_status(world: World, vm: dict[str, Any]) -> dict[str, str]:
    state = power_state(world, vm)
    return {"code": f"PowerState/{state}", "level": "Info", "displayStatus": f"VM {state}"}


def instance_view(world: World, vm: dict[str, Any]) -> dict[str, Any]:
    """``virtualMachines/{vm}/instanceView`` (shape of VirtualMachine_Get_InstanceView.json)."""
    props = vm["properties"]
    image = image_of(vm)
    state = props.get("provisioningState", "Succeeded")
    created = props.get("timeCreated")
    status_time = _internal(world, vm).get("stateTime", created)
    running = state in ("Succeeded", "Updating") and not rebooting(world, vm)  # the agent is down meanwhile
    disk_status = [
        {
            "code": "ProvisioningState/succeeded",
            "level": "Info",
            "displayStatus": "Provisioning succeeded",
            "time": created,
        }
    ]
    storage = props.get("storageProfile", {})
    disks = [{"name": storage.get("osDisk", {}).get("name"), "statuses": disk_status}]
    disks += [{"name": d.get("name"), "statuses": disk_status} for d in storage.get("dataDisks", [])]
    display = {"succeeded": "Provisioning succeeded", "failed": "Provisioning failed"}.get(
        state.lower(), state
    )
    view: dict[str, Any] = {
        "platformUpdateDomain": 0,
        "platformFaultDomain": 0,
        "computerName": props.get("osProfile", {}).get("computerName"),
        "osName": image.os_name if image else "Windows",
        "osVersion": image.os_version if image else "",
        "vmAgent": {
            "vmAgentVersion": "2.7.41491.1172",
            "statuses": [
                {
                    "code": "ProvisioningState/succeeded" if running else "ProvisioningState/Unavailable",
                    "level": "Info" if running else "Warning",
                    "displayStatus": "Ready" if running else "Not Ready",
                    "message": "GuestAgent is running and processing the extensions."
                    if running
                    else "VM status blob is found but not yet populated.",
                    "time": utc_now_iso(),
                }
            ],
            "extensionHandlers": [],
        },
        "disks": disks,
        "hyperVGeneration": image.hyper_v_generation if image else "V2",
        "patchStatus": guest.patch_status(
            world.guests.get(key(vm["id"]), guest.new_guest({})), patch_settings(vm)
        ),
        "isVMInStandbyPool": False,
        "extensions": [vmextensions.instance_view(d) for d in vmextensions.of_vm(world, vm)],
        "statuses": [
            {
                "code": f"ProvisioningState/{state.lower()}",
                "level": "Error" if state == "Failed" else "Info",
                "displayStatus": display,
                "time": status_time,
            },
            power_status(world, vm),
        ],
    }
    boot = (props.get("diagnosticsProfile") or {}).get("bootDiagnostics") or {}
    if boot.get("enabled"):
        base = (boot.get("storageUri") or "https://simulated.blob.core.windows.net/").rstrip("/")
        disk_name = storage.get("osDisk", {}).get("name")
        view["bootDiagnostics"] = {
            "consoleScreenshotBlobUri": f"{base}/bootdiagnostics-{disk_name}/{disk_name}.screenshot.bmp",
            "serialConsoleLogBlobUri": f"{base}/bootdiagnostics-{disk_name}/{disk_name}.serialconsole.log",
        }
    return view


# --- virtual machines ------------------------------------------------------------------------------------


def get_vm(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    vm = find_vm(ctx.world, sub, rg, name)
    ctx.vm_token(throttle.VM_GET, vm["id"])
    return Reply(200, render_vm(ctx.world, vm, ctx.query.get("$expand", "")))


def get_instance_view(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    vm = find_vm(ctx.world, sub, rg, name)
    ctx.vm_token(throttle.VM_GET, vm["id"])
    return Reply(200, instance_view(ctx.world, vm))


def list_vms(ctx: RequestContext, sub: str, rg: str | None) -> Reply:
    prefix = (
        f"/subscriptions/{sub}/resourcegroups/{rg}/".lower()
        if rg is not None
        else f"/subscriptions/{sub}/".lower()
    )
    if rg is not None:
        ctx.world.resource_group(sub, rg)
    status_only = ctx.query.get("statusOnly", "").lower() == "true"
    value = []
    for k, vm in sorted(ctx.world.vms.items()):
        if k.startswith(prefix):
            doc = render_vm(ctx.world, vm)
            if status_only:  # each VM with its instanceView (CRP's statusOnly=true listing)
                doc["properties"]["instanceView"] = instance_view(ctx.world, vm)
            value.append(doc)
    return Reply(200, {"value": value})


def _refuse_if_deleting(world: World, vm: dict[str, Any] | None, operation: str) -> None:
    if vm is not None and _internal(world, vm).get("deleting"):
        raise errors.vm_marked_for_deletion(operation, vm["name"])


def put_vm(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    world = ctx.world
    body = ctx.body_object()
    vm_id = _vm_id(world, sub, rg, name)
    existing = world.vms.get(key(vm_id))
    _refuse_if_deleting(world, existing, "PUT")
    location = check_location(body.get("location"), VM_TYPE)
    check_location_unchanged(existing, location, rg)
    if existing is not None:
        ctx.vm_token(throttle.VM_UPDATE, vm_id)
    else:
        ctx.response_headers["x-ms-ratelimit-remaining-resource"] = others.meter(ctx.settings, "PutVM", sub)
    props_in, password = _strip_input(body.get("properties") or {})
    limits.check_tags(body.get("tags"))
    if existing is None:
        limits.check_vm_name(name)
        os_profile = props_in.get("osProfile")
        if os_profile is None:
            raise errors.missing_parameter("osProfile")
        if not os_profile.get("adminUsername"):
            raise errors.missing_parameter("adminUsername")
        if not password:
            raise errors.missing_parameter("adminPassword")
        limits.check_windows_os_profile(os_profile, password)
        merged = props_in
    else:
        merged = deep_merge(existing["properties"], props_in)
        for name_ in _READ_ONLY:
            merged.pop(name_, None)
    return _apply_vm_model(ctx, sub, rg, name, vm_id, existing, merged, location, body)


def patch_vm(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    world = ctx.world
    body = ctx.body_object()
    vm = find_vm(world, sub, rg, name)
    _refuse_if_deleting(world, vm, "PATCH")
    limits.check_tags(body.get("tags"))
    ctx.vm_token(throttle.VM_UPDATE, vm["id"])
    props_in, _ = _strip_input(body.get("properties") or {})
    merged = deep_merge(vm["properties"], props_in)
    for name_ in _READ_ONLY:
        merged.pop(name_, None)
    reply = _apply_vm_model(ctx, sub, rg, name, vm["id"], vm, merged, vm["location"], body)
    reply.status = 200
    return reply


def _apply_vm_model(
    ctx: RequestContext,
    sub: str,
    rg: str,
    name: str,
    vm_id: str,
    existing: dict[str, Any] | None,
    merged: dict[str, Any],
    location: str,
    body: dict[str, Any],
) -> Reply:
    world = ctx.world
    image, exact = validate_image(merged)
    if existing is None and not image.offered_in(location):  # a create only: a VM keeps its image
        ref = merged["properties"]["storageProfile"]["imageReference"]
        raise errors.platform_image_not_found(
            image.publisher, image.offer, image.sku, ref.get("version", "latest")
        )
    validate_patch_settings(image, _windows(merged), ctx.api_version)
    nic_ids = validate_network_profile(world, vm_id, merged)
    validate_vm_size(world, location, merged, image, nic_ids)
    for nic_id in nic_ids:
        others.check_nic_visible(ctx.settings, world.nics[key(nic_id)])
        others.check_reference(ctx.settings, world.nics[key(nic_id)], vm_id, "PutNicOperation")
    model = _with_defaults(name, merged, image, exact)
    if existing is not None:
        _check_create_only(existing["properties"], model)
    now_iso = utc_now_iso()
    creating = existing is None
    if creating:
        model["vmId"] = str(uuid.uuid4())
        model["timeCreated"] = now_iso
        etag = 1
    else:
        model["vmId"] = existing["properties"]["vmId"]
        model["timeCreated"] = existing["properties"]["timeCreated"]
        etag = int(existing.get("etag", '"0"').strip('"')) + 1
    rg_name = world.resource_group(sub, rg)["name"]
    model["provisioningState"] = "Creating" if creating else "Updating"
    tags = body.get("tags", existing.get("tags", {}) if existing else {})
    vm = {
        "name": name,
        "id": vm_id,
        "type": VM_TYPE,
        "location": location,
        "tags": tags or {},
        "etag": f'"{etag}"',
        "properties": model,
    }
    for passthrough in ("zones", "identity", "plan", "extendedLocation"):
        if passthrough in body:
            vm[passthrough] = copy.deepcopy(body[passthrough])
        elif existing is not None and passthrough in existing:
            vm[passthrough] = existing[passthrough]
    vmextensions.system_identity(world, sub, vm, existing)
    others.apply_policy(ctx.settings, world, sub, vm)
    world.vms[key(vm_id)] = vm
    internal = _internal(world, vm)
    internal["stateTime"] = now_iso
    if creating:
        world.guests[key(vm_id)] = guest.new_guest(world.guest_defaults)
        if "availablePatches" in world.guest_defaults:
            world.guests[key(vm_id)]["patches"] = guest.patches_from(
                world.guest_defaults["availablePatches"],
                hotpatch=hotpatch_enabled(vm),
                month=world.guests[key(vm_id)]["monthKind"],
            )
    _ensure_disks(world, vm, sub, rg_name, image, exact)
    _attach_nics(world, vm, nic_ids)
    op = world.new_operation(
        provider=COMPUTE,
        subscription=sub,
        location=location,
        kind="vm.create" if creating else "vm.update",
        operation_name=ctx.operation,
        resource_id=vm_id,
        duration=ctx.settings.duration("vm.create" if creating else "vm.update"),
    )
    internal["operation"] = op["id"]
    doc = render_vm(world, vm)
    if creating and ctx.settings.timing.realistic:
        doc = first_create_response(doc)
    return Reply(201 if creating else 200, doc, lro.lro_headers(ctx, op))


def first_create_response(doc: dict[str, Any]) -> dict[str, Any]:
    """A VM create's 201 as real CRP sends it: without what it fills in while provisioning.

    The published create examples' 201 bodies have no ``timeCreated``, no ``exactVersion``, no disk ids
    or sizes and no ``etag``; a client must read those from the resource once the operation finished.
    """
    doc = copy.deepcopy(doc)
    doc.pop("etag", None)
    props = doc["properties"]
    props.pop("timeCreated", None)
    storage = props.get("storageProfile", {})
    storage.get("imageReference", {}).pop("exactVersion", None)
    storage.get("osDisk", {}).pop("diskSizeGB", None)
    for disk in [storage.get("osDisk", {}), *storage.get("dataDisks", [])]:
        (disk.get("managedDisk") or {}).pop("id", None)
    return doc


def _new_disk(
    world: World,
    vm: dict[str, Any],
    disk_id: str,
    size_gb: int,
    account: str,
    creation_data: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    world.disks[key(disk_id)] = {
        "name": disk_id.rsplit("/", 1)[-1],
        "id": disk_id,
        "type": DISK_TYPE,
        "location": vm["location"],
        "tags": {},
        "managedBy": crp_reference(vm["id"]),
        "sku": {"name": account, "tier": account.split("_")[0]},
        "properties": {
            **extra,
            "creationData": creation_data,
            "diskSizeGB": size_gb,
            "diskSizeBytes": size_gb * 1024**3,
            "uniqueId": str(uuid.uuid4()),
            "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
            "networkAccessPolicy": "AllowAll",
            "publicNetworkAccess": "Enabled",
            "timeCreated": utc_now_iso(),
            "provisioningState": "Succeeded",
            "diskState": "Attached",
        },
    }


def _ensure_disks(
    world: World, vm: dict[str, Any], sub: str, rg_name: str, image: images.PlatformImage, exact: str
) -> None:
    """Create the managed disks a VM model implies (OS disk from the image, empty data disks)."""
    storage = vm["properties"]["storageProfile"]
    os_disk = storage["osDisk"]
    os_disk_id = resource_id(sub, rg_name, COMPUTE, "disks", os_disk["name"])
    os_disk["managedDisk"]["id"] = crp_reference(os_disk_id)
    if key(os_disk_id) not in world.disks:
        image_ref_id = (
            f"/Subscriptions/{sub}/Providers/Microsoft.Compute/Locations/{vm['location']}/Publishers/"
            f"{image.publisher}/ArtifactTypes/VMImage/Offers/{image.offer}/Skus/{image.sku}/Versions/{exact}"
        )
        _new_disk(
            world,
            vm,
            os_disk_id,
            int(os_disk.get("diskSizeGB", image.disk_size_gb)),
            os_disk["managedDisk"]["storageAccountType"],
            {"createOption": "FromImage", "imageReference": {"id": image_ref_id}},
            {"osType": "Windows", "hyperVGeneration": image.hyper_v_generation},
        )
    for data_disk in storage.get("dataDisks", []):
        managed = data_disk.setdefault("managedDisk", {})
        managed.setdefault("storageAccountType", "Premium_LRS")
        data_disk.setdefault("deleteOption", "Detach")
        data_disk.setdefault("caching", "None")
        if managed.get("id"):
            attached = world.disks.get(key(managed["id"]))
            if attached is not None:
                attached["managedBy"] = crp_reference(vm["id"])
                attached["properties"]["diskState"] = "Attached"
            continue
        data_disk.setdefault("name", f"{vm['name']}_disk{data_disk.get('lun', 0)}_{uuid.uuid4().hex}")
        disk_id = resource_id(sub, rg_name, COMPUTE, "disks", data_disk["name"])
        managed["id"] = crp_reference(disk_id)
        _new_disk(
            world,
            vm,
            disk_id,
            int(data_disk.get("diskSizeGB", 32)),
            managed["storageAccountType"],
            {"createOption": "Empty"},
            {},
        )


def _attach_nics(world: World, vm: dict[str, Any], nic_ids: list[str]) -> None:
    wanted = {key(n) for n in nic_ids}
    primary = {
        key(ref["id"]): bool(ref["properties"].get("primary"))
        for ref in vm["properties"]["networkProfile"]["networkInterfaces"]
    }
    for nic_key, nic in world.nics.items():
        owner = (nic["properties"].get("virtualMachine") or {}).get("id")
        if nic_key in wanted:
            nic["properties"]["virtualMachine"] = {"id": crp_reference(vm["id"])}
            nic["properties"]["primary"] = primary.get(nic_key, False)
            nic["properties"].setdefault("macAddress", _mac())
        elif owner and key(owner) == key(vm["id"]):
            detach_nic(world, nic)
    world.touch()


def detach_nic(world: World, nic: dict[str, Any]) -> None:
    nic["properties"].pop("virtualMachine", None)
    nic["properties"].pop("primary", None)
    nic["properties"].pop("macAddress", None)
    for cfg in nic["properties"].get("ipConfigurations", []):
        pip = world.public_ips.get(key((cfg["properties"].get("publicIPAddress") or {}).get("id", "")))
        if pip and pip["properties"].get("publicIPAllocationMethod") == "Dynamic":
            pip["properties"].pop("ipAddress", None)


def delete_vm(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    world = ctx.world
    world.resource_group(sub, rg)
    vm = world.vms.get(key(_vm_id(world, sub, rg, name)))
    if vm is None:
        return Reply(204)
    internal = _internal(world, vm)
    if internal.get("deleting"):
        op = world.operations[internal["operation"]]
        return Reply(202, None, lro.lro_headers(ctx, op, location=True))
    vm["properties"]["provisioningState"] = "Deleting"
    internal["deleting"] = True
    internal["stateTime"] = utc_now_iso()
    op = world.new_operation(
        provider=COMPUTE,
        subscription=sub,
        location=vm["location"],
        kind="vm.delete",
        operation_name=ctx.operation,
        resource_id=vm["id"],
        duration=ctx.settings.duration("vm.delete"),
        params={"forceDeletion": ctx.query.get("forceDeletion", "false")},
    )
    internal["operation"] = op["id"]
    return Reply(202, None, lro.lro_headers(ctx, op, location=True))


def _vm_for_action(ctx: RequestContext, sub: str, rg: str, name: str, operation: str) -> dict[str, Any]:
    vm = find_vm(ctx.world, sub, rg, name)
    _refuse_if_deleting(ctx.world, vm, operation)
    return vm


def _action(ctx: RequestContext, vm: dict[str, Any], sub: str, kind: str, params: dict[str, Any]) -> Reply:
    op = ctx.world.new_operation(
        provider=COMPUTE,
        subscription=sub,
        location=vm["location"],
        kind=kind,
        operation_name=ctx.operation,
        resource_id=vm["id"],
        duration=ctx.settings.duration(kind),
        params=params,
    )
    return Reply(202, None, lro.lro_headers(ctx, op, location=True))


def assess_patches(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    vm = _vm_for_action(ctx, sub, rg, name, "POST")
    ctx.vm_token(throttle.VM_GUEST_PATCH, vm["id"])
    return _action(ctx, vm, sub, "vm.assessPatches", {})


def install_patches(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    body = ctx.body_object()
    vm = _vm_for_action(ctx, sub, rg, name, "POST")
    if not body.get("maximumDuration"):
        raise errors.missing_parameter("maximumDuration")
    if not body.get("rebootSetting"):
        raise errors.missing_parameter("rebootSetting")
    _enum(body.get("rebootSetting"), ("IfRequired", "Never", "Always"), "rebootSetting")
    ctx.vm_token(throttle.VM_GUEST_PATCH, vm["id"])
    # How long the guest's restart takes if the installation reboots it (drawn now, with the operation's).
    params = {"input": copy.deepcopy(body), "rebootSeconds": ctx.settings.duration("vm.reboot")}
    g = ctx.world.guests.get(key(vm["id"]))
    if g is not None:  # as on Azure, the instance view shows the installation InProgress while it runs
        params["activityId"] = guest.start_installation(g)
    return _action(ctx, vm, sub, "vm.installPatches", params)


def run_command(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    body = ctx.body_object()
    vm = _vm_for_action(ctx, sub, rg, name, "POST")
    command_id = body.get("commandId")
    if not command_id:
        raise errors.missing_parameter("commandId")
    if command_id not in WINDOWS_COMMAND_IDS:
        raise errors.ArmError(
            404, "NotFound", f"The entity was not found in this Azure location. (commandId '{command_id}')"
        )
    ctx.vm_token(throttle.VM_UPDATE, vm["id"])
    for op in ctx.world.operations.values():
        if (
            op["kind"] == "vm.runCommand"
            and op["status"] == "InProgress"
            and key(op["resourceId"]) == key(vm["id"])
        ):
            raise errors.ArmError(
                409,
                "Conflict",
                "Run command extension execution is in progress. Please wait for completion before invoking a "
                "run command.",
            )
    script = body.get("script") or []
    if isinstance(script, str):
        script = script.splitlines()
    return _action(ctx, vm, sub, "vm.runCommand", {"commandId": command_id, "script": list(script)})


# --- run command resources -------------------------------------------------------------------------------


def _run_command_id(vm: dict[str, Any], name: str) -> str:
    return f"{vm['id']}/runCommands/{name}"


def _named_values(items: Any) -> dict[str, str]:
    """Run Command ``parameters``/``protectedParameters`` (``[{name, value}]``) by name."""
    return {str(i.get("name")): str(i.get("value", "")) for i in items or [] if isinstance(i, dict)}


def _render_run_command(world: World, doc: dict[str, Any], expand: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    view = out.pop("_instanceView", None)
    if "instanceview" in expand.lower() and view is not None:
        out["properties"]["instanceView"] = view
    return out


def put_run_command(ctx: RequestContext, sub: str, rg: str, name: str, command: str) -> Reply:
    body = ctx.body_object()
    vm = _vm_for_action(ctx, sub, rg, name, "PUT")
    location = check_location(body.get("location"), RUN_COMMAND_TYPE)
    ctx.vm_token(throttle.VM_UPDATE, vm["id"])
    rc_id = _run_command_id(vm, command)
    existing = ctx.world.run_commands.get(key(rc_id))
    props = copy.deepcopy(body.get("properties") or {})
    ctx.world.protected_parameters[key(rc_id)] = _named_values(props.get("protectedParameters"))
    for secret in (
        "runAsPassword",
        "protectedParameters",
        "outputBlobManagedIdentity",
        "errorBlobManagedIdentity",
    ):
        props.pop(secret, None)
    props.pop("instanceView", None)
    props.setdefault("asyncExecution", False)
    props.setdefault("treatFailureAsDeploymentFailure", False)
    props.setdefault("timeoutInSeconds", 0)
    props["provisioningState"] = "Creating" if existing is None else "Updating"
    doc = {
        "name": command,
        "id": rc_id,
        "type": RUN_COMMAND_TYPE,
        "location": location,
        "tags": body.get("tags") or {},
        "properties": props,
    }
    ctx.world.run_commands[key(rc_id)] = doc
    op = ctx.world.new_operation(
        provider=COMPUTE,
        subscription=sub,
        location=location,
        kind="runCommand.put",
        operation_name=ctx.operation,
        resource_id=rc_id,
        duration=ctx.settings.duration("runCommand.put"),
        params={"vm": vm["id"]},
    )
    return Reply(
        201 if existing is None else 200, _render_run_command(ctx.world, doc, ""), lro.lro_headers(ctx, op)
    )


def get_run_command(ctx: RequestContext, sub: str, rg: str, name: str, command: str) -> Reply:
    vm = find_vm(ctx.world, sub, rg, name)
    doc = ctx.world.run_commands.get(key(_run_command_id(vm, command)))
    if doc is None:
        raise errors.resource_not_found(f"{VM_TYPE}/runCommands", f"{name}/{command}", rg)
    return Reply(200, _render_run_command(ctx.world, doc, ctx.query.get("$expand", "")))


def list_run_commands(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    vm = find_vm(ctx.world, sub, rg, name)
    prefix = key(vm["id"]) + "/runcommands/"
    value = [
        _render_run_command(ctx.world, doc, ctx.query.get("$expand", ""))
        for k, doc in sorted(ctx.world.run_commands.items())
        if k.startswith(prefix)
    ]
    return Reply(200, {"value": value})


def delete_run_command(ctx: RequestContext, sub: str, rg: str, name: str, command: str) -> Reply:
    vm = find_vm(ctx.world, sub, rg, name)
    doc = ctx.world.run_commands.pop(key(_run_command_id(vm, command)), None)
    if doc is None:
        return Reply(204)
    ctx.world.touch()
    op = ctx.world.new_operation(
        provider=COMPUTE,
        subscription=sub,
        location=vm["location"],
        kind="runCommand.delete",
        operation_name=ctx.operation,
        resource_id=doc["id"],
        duration=ctx.settings.duration("runCommand.delete"),
    )
    return Reply(202, None, lro.lro_headers(ctx, op, location=True))


# --- disks -----------------------------------------------------------------------------------------------


def _disk_id(world: World, sub: str, rg: str, name: str) -> str:
    return resource_id(sub, world.resource_group(sub, rg)["name"], COMPUTE, "disks", name)


def get_disk(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    disk = ctx.world.disks.get(key(_disk_id(ctx.world, sub, rg, name)))
    if disk is None:
        raise errors.resource_not_found(DISK_TYPE, name, rg)
    return Reply(200, copy.deepcopy(disk))


def list_disks(ctx: RequestContext, sub: str, rg: str) -> Reply:
    ctx.world.resource_group(sub, rg)
    prefix = f"/subscriptions/{sub}/resourcegroups/{rg}/".lower()
    return Reply(
        200, {"value": [copy.deepcopy(d) for k, d in sorted(ctx.world.disks.items()) if k.startswith(prefix)]}
    )


def patch_disk(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    """Disks - Update: tags (replaced when given) and a few mutable properties, as an LRO."""
    body = ctx.body_object()
    disk = ctx.world.disks.get(key(_disk_id(ctx.world, sub, rg, name)))
    if disk is None:
        raise errors.resource_not_found(DISK_TYPE, name, rg)
    if "tags" in body:
        limits.check_tags(body["tags"])
        disk["tags"] = dict(body["tags"] or {})
    for prop in ("diskSizeGB", "networkAccessPolicy", "publicNetworkAccess"):
        if prop in (body.get("properties") or {}):
            disk["properties"][prop] = body["properties"][prop]
    if "sku" in body:
        disk["sku"] = body["sku"]
    ctx.world.touch()
    op = ctx.world.new_operation(
        provider=COMPUTE,
        subscription=sub,
        location=disk["location"],
        kind="disk.update",
        operation_name=ctx.operation,
        resource_id=disk["id"],
        duration=ctx.settings.duration("disk.update"),
    )
    return Reply(200, copy.deepcopy(disk), lro.lro_headers(ctx, op))


def delete_disk(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    disk_key = key(_disk_id(ctx.world, sub, rg, name))
    disk = ctx.world.disks.get(disk_key)
    if disk is None:
        return Reply(204)
    if disk.get("managedBy"):
        raise errors.disk_attached(disk["name"], disk["managedBy"])
    del ctx.world.disks[disk_key]
    ctx.world.touch()
    op = ctx.world.new_operation(
        provider=COMPUTE,
        subscription=sub,
        location=disk["location"],
        kind="disk.delete",
        operation_name=ctx.operation,
        resource_id=disk["id"],
        duration=ctx.settings.duration("disk.delete"),
    )
    return Reply(202, None, lro.lro_headers(ctx, op, location=True))


# --- images ---------------------------------------------------------------------------------------------


def _image_base(sub: str, location: str, publisher: str, offer: str) -> str:
    return (
        f"/Subscriptions/{sub}/Providers/Microsoft.Compute/Locations/{location}/Publishers/{publisher}"
        f"/ArtifactTypes/VMImage/Offers/{offer}"
    )


_LOCATION_FILTER = re.compile(r"^\s*location\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)


def list_resource_skus(ctx: RequestContext, sub: str) -> Reply:
    """Resource SKUs - List: the VM sizes per region (``$filter=location eq '<region>'`` narrows it)."""
    wanted = ctx.query.get("$filter")
    if wanted:
        match = _LOCATION_FILTER.match(wanted)
        if not match:
            # (wording: simulator) Resource SKUs supports only a location filter.
            raise errors.ArmError(
                400, "InvalidFilter", f"The filter '{wanted}' is not supported; use location eq '<region>'."
            )
        locations = [check_location(match.group(1), "Microsoft.Compute/skus")]
    else:
        locations = sorted(REGIONS)
    value = [
        skus.resource_sku(size, loc, ctx.world.sku_restricted(loc, size.name))
        for loc in locations
        for size in skus.CATALOGUE
    ]
    return Reply(200, {"value": value})


def list_image_skus(ctx: RequestContext, sub: str, location: str, publisher: str, offer: str) -> Reply:
    loc = check_location(location, "Microsoft.Compute/locations/publishers")
    rows = images.skus(publisher, offer, loc)  # what this region offers
    if not images.skus(publisher, offer):
        raise errors.ArmError(
            404, "NotFound", f"Artifact: VMImage was not found. (offer '{publisher}:{offer}')"
        )
    canonical = images.skus(publisher, offer)[0]  # Azure answers in the catalog's casing
    base = _image_base(sub, loc, canonical.publisher, canonical.offer)
    return Reply(200, [{"location": loc, "name": r.sku, "id": f"{base}/Skus/{r.sku}"} for r in rows])


def _image_or_404(publisher: str, offer: str, sku: str, location: str | None = None) -> images.PlatformImage:
    image = images.find_image(publisher, offer, sku)
    if image is None or (location is not None and not image.offered_in(location)):
        raise errors.ArmError(404, "NotFound", "Artifact: VMImage was not found.")
    return image


def list_image_versions(
    ctx: RequestContext, sub: str, location: str, publisher: str, offer: str, sku: str
) -> Reply:
    loc = check_location(location, "Microsoft.Compute/locations/publishers")
    image = _image_or_404(publisher, offer, sku, loc)
    base = _image_base(sub, loc, image.publisher, image.offer)
    return Reply(
        200,
        [{"location": loc, "name": v, "id": f"{base}/Skus/{image.sku}/Versions/{v}"} for v in image.versions],
    )


def get_image_version(
    ctx: RequestContext, sub: str, location: str, publisher: str, offer: str, sku: str, version: str
) -> Reply:
    loc = check_location(location, "Microsoft.Compute/locations/publishers")
    image = _image_or_404(publisher, offer, sku, loc)
    exact = images.resolve_version(image, version)
    if exact is None:
        raise errors.ArmError(404, "NotFound", "Artifact: VMImage was not found.")
    base = _image_base(sub, loc, image.publisher, image.offer)
    return Reply(
        200,
        {
            "location": loc,
            "name": exact,
            "id": f"{base}/Skus/{image.sku}/Versions/{exact}",
            "properties": {
                "osDiskImage": {"operatingSystem": "Windows", "sizeInGb": image.disk_size_gb},
                "dataDiskImages": [],
                "hyperVGeneration": image.hyper_v_generation,
                "architecture": "x64",
                "imageDeprecationStatus": {"imageState": "Active"},
            },
        },
    )


# --- completion of operations ------------------------------------------------------------------------------


def complete(world: World, op: dict[str, Any]) -> None:
    """Apply the effect of a finished Compute operation."""
    failure = op.get("injectedFailure")
    kind = op["kind"]
    vm = world.vms.get(key(op["resourceId"]))
    if kind in ("vm.create", "vm.update"):
        if vm is None:
            world.finish_operation(op, "Canceled")
            return
        internal = _internal(world, vm)
        internal["stateTime"] = utc_now_iso()
        if failure:
            vm["properties"]["provisioningState"] = "Failed"
            world.finish_operation(op, "Failed", error=failure)
            return
        vm["properties"]["provisioningState"] = "Succeeded"
        _on_provisioned(world, vm, first=kind == "vm.create")
        world.finish_operation(op, "Succeeded")
    elif kind == "vm.delete":
        if vm is not None:
            remove_vm(world, vm)
        world.finish_operation(op, "Succeeded")
    elif kind in ("vm.assessPatches", "vm.installPatches", "vm.runCommand"):
        g = world.guests.get(key(op["resourceId"]))
        if failure or vm is None or g is None:
            world.finish_operation(
                op, "Failed", error=failure or {"code": "NotFound", "message": "VM is gone."}
            )
            return
        if kind == "vm.assessPatches":
            result = guest.assess(g)
        elif kind == "vm.installPatches":
            result = guest.install(g, op["params"]["input"], op["params"].get("activityId"))
            guest.refresh_assessment(g)
            if result["rebootStatus"] == "Completed":  # the VM restarts: starting, agent Not Ready, then back
                reboot = float(op["params"].get("rebootSeconds") or 0)
                world.vm_internal.setdefault(key(vm["id"]), {})["rebootUntil"] = time.time() + reboot
        else:
            script = op["params"]["script"] if op["params"]["commandId"] == "RunPowerShellScript" else []
            try:
                stdout, stderr = guest.run_script(g, script)
            except guest.certstore.ScriptFailed as err:
                stdout, stderr = "", str(err)
            result = {"value": guest.run_command_statuses(stdout, stderr)}
        world.finish_operation(op, "Succeeded", result=result)
    elif kind == "extension.put":
        vmextensions.complete(world, op["resourceId"])
        world.finish_operation(op, "Failed" if failure else "Succeeded", error=failure)
    elif kind == "runCommand.put":
        doc = world.run_commands.get(key(op["resourceId"]))
        g = world.guests.get(key(op["params"]["vm"]))
        if doc is None or g is None:
            world.finish_operation(op, "Canceled")
            return
        started = utc_now_iso(op["startEpoch"])
        source = doc["properties"].get("source") or {}
        script = (source.get("script") or "").splitlines()
        parameters = _named_values(doc["properties"].get("parameters"))
        parameters.update(world.protected_parameters.pop(key(op["resourceId"]), {}))
        script_failed = False
        try:
            stdout, stderr = guest.run_script(g, script, parameters)
        except guest.certstore.ScriptFailed as err:
            # The script's own failure is the execution's; the resource fails with it only when asked to
            # (treatFailureAsDeploymentFailure), as on Azure.
            stdout, stderr, script_failed = "", str(err), True
            if doc["properties"].get("treatFailureAsDeploymentFailure"):
                failure = failure or {"code": "VMExtensionProvisioningError", "message": str(err)}
        state = "Failed" if failure else "Succeeded"
        doc["properties"]["provisioningState"] = state
        doc["_instanceView"] = {
            "executionState": "Failed" if failure or script_failed else "Succeeded",
            "executionMessage": "" if not failure else failure.get("message", ""),
            "exitCode": 1 if failure or script_failed else 0,
            "output": stdout,
            "error": stderr,
            "startTime": started,
            "endTime": utc_now_iso(),
            "statuses": [],
        }
        if failure:
            world.finish_operation(op, "Failed", error=failure)
        else:
            world.finish_operation(op, "Succeeded")
    else:
        world.finish_operation(op, "Failed" if failure else "Succeeded", error=failure)


def _on_provisioned(world: World, vm: dict[str, Any], *, first: bool) -> None:
    for ref in vm["properties"]["networkProfile"]["networkInterfaces"]:
        nic = world.nics.get(key(ref["id"]))
        if nic is None:
            continue
        for cfg in nic["properties"].get("ipConfigurations", []):
            pip = world.public_ips.get(key((cfg["properties"].get("publicIPAddress") or {}).get("id", "")))
            if pip is not None and not pip["properties"].get("ipAddress"):
                pip["properties"]["ipAddress"] = world.allocate_public_ip()
    g = world.guests.get(key(vm["id"]))
    if g is None or not first:
        return
    if patch_settings(vm).get("assessmentMode") == "AutomaticByPlatform":
        guest.assess(g)
    default_cert = world.guest_defaults.get("certificate")
    if default_cert and not g["mappings"]:
        spec = dict(default_cert)
        server_name = spec.pop("serverName", None) or (vm.get("tags") or {}).get(SERVER_NAME_TAG)
        server_name = server_name or f"{vm['properties']['osProfile']['computerName'].lower()}.simulated.test"
        try:
            mapping, _ = guest.issue_mapping(server_name, spec)
        except Exception as exc:  # the certificate module may not exist yet; the VM still provisions
            world.vm_internal.setdefault(key(vm["id"]), {})["certificateError"] = repr(exc)
        else:
            g["mappings"] = [mapping]
            guest.certstore.add_to_store(g, guest.certstore.entry_of(mapping))


def remove_vm(world: World, vm: dict[str, Any]) -> None:
    vm_key = key(vm["id"])
    storage = vm["properties"].get("storageProfile", {})
    for disk_ref in [storage.get("osDisk", {}), *storage.get("dataDisks", [])]:
        disk_id = (disk_ref.get("managedDisk") or {}).get("id")
        disk = world.disks.get(key(disk_id)) if disk_id else None
        if disk is None:
            continue
        if disk_ref.get("deleteOption") == "Delete":
            del world.disks[key(disk_id)]
        else:
            disk.pop("managedBy", None)
            disk["properties"]["diskState"] = "Unattached"
    for ref in vm["properties"]["networkProfile"]["networkInterfaces"]:
        nic = world.nics.get(key(ref["id"]))
        if nic is None:
            continue
        detach_nic(world, nic)
        if ref["properties"].get("deleteOption") == "Delete":
            from . import network

            network.remove_nic(world, nic)
    vmextensions.remove_vm(world, vm)
    for rc_key in [k for k in world.run_commands if k.startswith(vm_key + "/runcommands/")]:
        del world.run_commands[rc_key]
    world.vms.pop(vm_key, None)
    world.guests.pop(vm_key, None)
    world.vm_internal.pop(vm_key, None)
    world.touch()


def vm_address(world: World, vm: dict[str, Any]) -> str | None:
    """The address clients reach the VM on: the primary NIC's public IP, else its private IP."""
    refs = vm["properties"].get("networkProfile", {}).get("networkInterfaces", [])
    if not refs:
        return None
    primary = next((r for r in refs if r["properties"].get("primary")), refs[0])
    nic = world.nics.get(key(primary["id"]))
    if nic is None:
        return None
    configs = nic["properties"].get("ipConfigurations", [])
    if not configs:
        return None
    cfg = next((c for c in configs if c["properties"].get("primary")), configs[0])
    pip = world.public_ips.get(key((cfg["properties"].get("publicIPAddress") or {}).get("id", "")))
    if pip is not None and pip["properties"].get("ipAddress"):
        return str(pip["properties"]["ipAddress"])
    address = cfg["properties"].get("privateIPAddress")
    return str(address).split("/")[0] if address else None
