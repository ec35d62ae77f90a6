"""Hotpatch's Azure calls outside the reconcile pass: restore the patch settings, assess patches, and the
baseline rollout's installPatches with the instance view that follows it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError

from .. import hotpatch_calendar as cal
from .. import maintenance
from ..api.v1alpha1 import AzureEditionVMSpec
from ..conditions import format_timestamp
from . import sdk, specs
from .errors import AzurePermanentError, from_exception


async def restore_patch_settings(compute: Any, rg: str, vm_name: str, spec: AzureEditionVMSpec) -> None:
    """PATCH the VM's patch settings back to the spec's (the reconcile pass's ``diff_vm`` sends the same)."""
    update = specs.patch_settings_update(specs.windows_configuration(spec))
    await (await compute.virtual_machines.begin_update(rg, vm_name, update)).result()


async def assess_patches(
    compute: Any, identity: specs.VMIdentity, now: datetime | None = None
) -> tuple[dict[str, Any], cal.PatchSummary]:
    """One assessPatches on our VM; its result as ``status.hotpatch`` fields, and its per-patch counts
    (``hotpatch_calendar.summarize``: what each patch costs to install, this month's reboot evidence).

    Raises ``AzureRetryableError`` (try again later) or ``AzurePermanentError`` whose message is for the
    user (a VM that is not ours is never touched)."""
    rg, name = identity.resource_group, identity.vm_name
    try:
        vm = await compute.virtual_machines.get(rg, name)
        if specs.ownership(vm.tags, identity.owner) not in specs.TAKEN:
            message = specs.ownership_conflict_message("Virtual machine", name, vm.tags, identity.owner)
            raise AzurePermanentError("OwnershipConflict", message, 409, reason="OwnershipConflict")
        poller = await compute.virtual_machines.begin_assess_patches(rg, name)
        identity.owner.logger(__name__).info("started assessPatches on VirtualMachine/%s", name)
        result = await poller.result()
    except AzureError as err:
        mapped = from_exception(err)
        if isinstance(mapped, AzurePermanentError):
            mapped.message = f"assessPatches failed ({mapped.code}): {mapped.message}"
        raise mapped from err
    wire = result.as_dict()
    month = cal.local_month(now or datetime.now(UTC))
    summary = cal.summarize(wire.get("availablePatches") or [], wire.get("assessmentActivityId"), month)
    assessed = {
        "hotpatchesPending": summary.hotpatches,
        "rebootUpdatesPending": summary.need_reboot,
        "assessmentState": result.status,
        "criticalAndSecurityPatchCount": result.critical_and_security_patch_count,
        "otherPatchCount": result.other_patch_count,
        "rebootPending": result.reboot_pending,
        "lastAssessmentTime": format_timestamp(result.start_date_time) if result.start_date_time else None,
    }
    return {k: v for k, v in assessed.items() if v is not None}, summary


async def install_patches(compute: Any, identity: specs.VMIdentity, parameters: dict[str, Any]) -> None:
    """Send one installPatches to our VM (``maintenance.install_parameters``' body).

    The poller is not awaited: the rollout sees the installation in the instance view on its next rounds
    (under a new activity id), also after a restart. Raises ``AzureRetryableError`` or
    ``AzurePermanentError`` (a VM that is not ours is never touched)."""
    rg, name = identity.resource_group, identity.vm_name
    windows = parameters["windowsParameters"]
    body = sdk.compute.VirtualMachineInstallPatchesParameters(
        maximum_duration=parameters["maximumDuration"],
        reboot_setting=parameters["rebootSetting"],
        windows_parameters=sdk.compute.WindowsParameters(
            classifications_to_include=windows["classificationsToInclude"],
            max_patch_publish_date=datetime.fromisoformat(
                windows["maxPatchPublishDate"].replace("Z", "+00:00")
            ),
        ),
    )
    try:
        vm = await compute.virtual_machines.get(rg, name)
        if specs.ownership(vm.tags, identity.owner) is not specs.Ownership.OURS:
            message = specs.ownership_conflict_message("Virtual machine", name, vm.tags, identity.owner)
            raise AzurePermanentError("OwnershipConflict", message, 409, reason="OwnershipConflict")
        await compute.virtual_machines.begin_install_patches(rg, name, body)
    except AzureError as err:
        mapped = from_exception(err)
        if isinstance(mapped, AzurePermanentError):
            mapped.message = f"installPatches failed ({mapped.code}): {mapped.message}"
        raise mapped from err
    identity.owner.logger(__name__).info(
        "started installPatches on VirtualMachine/%s (maxPatchPublishDate %s, maximumDuration %s)",
        name, windows["maxPatchPublishDate"], parameters["maximumDuration"])  # fmt: skip


async def install_seen(compute: Any, identity: specs.VMIdentity) -> maintenance.InstallSeen:
    """The VM's last installation and whether it serves (one instance view GET); a VM not there (yet)
    does not serve."""
    try:
        view = await compute.virtual_machines.instance_view(identity.resource_group, identity.vm_name)
    except ResourceNotFoundError:
        return maintenance.InstallSeen("", "", "", serving=False)
    except AzureError as err:
        raise from_exception(err) from err
    return _seen(view)


def _seen(view: Any) -> maintenance.InstallSeen:
    summary = getattr(getattr(view, "patch_status", None), "last_patch_installation_summary", None)
    statuses = [s.code for s in (getattr(view, "statuses", None) or [])]
    agent = getattr(view, "vm_agent", None)
    agent_ready = any(
        (s.display_status or "").lower() == "ready" for s in (getattr(agent, "statuses", None) or [])
    )
    error = getattr(summary, "error", None)
    status = getattr(summary, "status", None)
    return maintenance.InstallSeen(
        activity_id=str(getattr(summary, "installation_activity_id", "") or ""),
        state=str(getattr(status, "value", status) or ""),  # the SDK's enum, or a string it did not know
        error=str(getattr(error, "message", "") or ""),
        serving=specs.power_state_of(statuses) == "running" and agent_ready,
    )
