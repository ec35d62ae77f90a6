"""Hotpatch's Azure calls outside the reconcile pass: restore the patch settings, assess patches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError

from .. import hotpatch_calendar as cal
from ..api.v1alpha1 import AzureEditionVMSpec
from ..conditions import format_timestamp
from . import specs
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
