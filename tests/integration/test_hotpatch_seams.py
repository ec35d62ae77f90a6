# ruff: noqa: F811 (the fixtures imported from test_provisioning are parameters here)
"""The Hotpatch work the handlers hand off, against the ARM simulator with the real aio SDKs: a check
round that finds patch settings changed restores them with the reconcile pass's own comparison (one
PATCH, then nothing), and ``assess_patches`` answers for our VM only (seconds, no Kubernetes)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from azure_edition_operator.azure.errors import AzurePermanentError
from azure_edition_operator.azure.patches import assess_patches
from azure_edition_operator.checks.runner import CheckMemory, run_checks
from tests.integration.test_provisioning import (  # noqa: F401 (fixtures)
    OWNER,
    World,
    clients,
    ensure,
    identity_for,
    world,
)

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)


async def round_(clients, world: World, spec, events: list, token: str | None = None, vm=None, observe=False):
    ident = identity_for(world, spec)
    return await run_checks(
        spec=spec, namespace="ns", name="x", compute=clients.compute(spec.azure.subscription_id),
        vm_name=ident.vm_name, memory=CheckMemory(3600.0, 600.0), emit=lambda *e: events.append(e), now=NOW,
        owner=OWNER, assess_token=token, vm=vm, observe=observe,
    )  # fmt: skip


async def test_a_round_folded_into_a_pass_uses_the_pass_read_of_the_vm(world: World, clients) -> None:
    """Issue #15 (ARM reads per VM): the pass's GET with the instance view serves the folded check; a
    model read without it (e.g. a PUT's answer) is read again."""
    spec = world.spec()
    await ensure(clients, world, spec)
    observed = await ensure(clients, world, spec, instance_view=True)
    since = world.mark()
    folded = await round_(clients, world, spec, [], vm=observed.model)
    assert world.arm_requests(since) == []
    alone = await round_(clients, world, spec, [])
    assert world.arm_requests(since) == [("GET", "VirtualMachines_Get", 200)]
    assert (folded.vm, folded.conditions, folded.hotpatch) == (alone.vm, alone.conditions, alone.hotpatch)
    assert folded.conditions[0].reason == "HotpatchEnabled"
    plain = await ensure(clients, world, spec)  # no instance view: no power state, no patch status
    since = world.mark()
    await round_(clients, world, spec, [], vm=plain.model)
    assert world.arm_requests(since) == [("GET", "VirtualMachines_Get", 200)]


async def test_a_check_round_restores_changed_patch_settings_once(world: World, clients, caplog) -> None:
    spec = world.spec()
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    events: list = []
    result = await round_(clients, world, spec, events, token="run-1")
    assert events == [] and result.hotpatch["lastAssessToken"] == "run-1"
    world.control.set_patch_settings(ident.resource_group, ident.vm_name, {"patchMode": "automaticbyplatform",
                                     "enableHotpatching": True, "assessmentMode": "AutomaticByPlatform",
                                     "automaticByPlatformSettings": {"rebootSetting": "IfRequired"}})  # fmt: skip
    since = world.mark()
    await round_(clients, world, spec, events)
    assert world.writes(since) == [] and events == []  # case alone is no drift (as in the reconcile pass)

    world.control.set_patch_settings(ident.resource_group, ident.vm_name, {"patchMode": "AutomaticByOS"})
    caplog.set_level("INFO", logger="azure_edition_operator")
    result = await round_(clients, world, spec, events)
    assert world.writes(since) == [("PATCH", "VirtualMachines_Update")]
    logged = [r for r in caplog.records if "patch settings" in r.getMessage()]  # the write, logged once
    assert len(logged) == 1 and logged[0].k8s_ref["name"] == OWNER.name
    assert [e[1] for e in events] == [
        "HotpatchSettingsRestored"
    ] and "patchMode is 'AutomaticByOS'" in events[0][2]
    assert result.conditions[0].reason == "HotpatchNotEnabled" and "lastAssessToken" not in result.hotpatch
    since = world.mark()
    result = await round_(clients, world, spec, events)
    assert world.writes(since) == [] and result.conditions[0].reason == "HotpatchEnabled"
    # the restored VM is what the reconcile pass wants too: it writes nothing
    await ensure(clients, world, spec)
    assert world.writes(since) == []


async def test_an_observed_round_reports_changed_patch_settings_and_restores_nothing(
    world: World, clients
) -> None:
    spec = world.spec()
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    world.control.set_patch_settings(ident.resource_group, ident.vm_name, {"patchMode": "AutomaticByOS"})
    events: list = []
    since = world.mark()
    for _ in range(3):  # several rounds: never a write, never an Event claiming a restore
        result = await round_(clients, world, spec, events, observe=True)
    assert [r for r in world.arm_requests(since) if r[0] != "GET"] == [] and events == []
    healthy = result.conditions[0]
    assert healthy.reason == "HotpatchNotEnabled" and "patchMode is 'AutomaticByOS'" in healthy.message
    assert "observe only: not restored" in healthy.message


async def test_assess_patches_answers_for_our_vm_only(world: World, clients) -> None:
    spec = world.spec()
    await ensure(clients, world, spec)
    compute = clients.compute(spec.azure.subscription_id)
    assessed, per_patch = await assess_patches(compute, identity_for(world, spec))
    assert assessed["assessmentState"] == "Succeeded" and "criticalAndSecurityPatchCount" in assessed
    assert per_patch.activity_id and assessed["hotpatchesPending"] == per_patch.hotpatches
    intruder = dataclasses.replace(OWNER, cluster="another-cluster")  # the same object on another cluster
    since = world.mark()
    with pytest.raises(AzurePermanentError) as caught:
        await assess_patches(compute, identity_for(world, spec, intruder))
    assert caught.value.code == "OwnershipConflict" and world.writes(since) == []


async def test_assess_patches_reports_per_patch_reboot_behaviour_by_month(world: World, clients) -> None:
    """The simulator plays a hotpatch month, then an (unplanned) baseline month; assessPatches' per-patch
    rebootBehavior is what the operator counts."""
    spec = world.spec()
    await ensure(clients, world, spec)
    compute = clients.compute(spec.azure.subscription_id)
    name = identity_for(world, spec).vm_name
    world.control.set_guest(spec.azure.resource_group, name, monthKind="Hotpatch",
                            availablePatches={"Security": 2, "Definition": 1})  # fmt: skip
    assessed, per_patch = await assess_patches(compute, identity_for(world, spec))
    assert (per_patch.hotpatches, per_patch.need_reboot, per_patch.other_no_reboot) == (2, 0, 1)
    assert per_patch.baseline_evidence == ()
    world.control.set_guest(
        spec.azure.resource_group, name, monthKind="Baseline", availablePatches={"Security": 1}
    )
    assessed, per_patch = await assess_patches(compute, identity_for(world, spec))
    assert (assessed["hotpatchesPending"], assessed["rebootUpdatesPending"]) == (0, 1)
    assert len(per_patch.baseline_evidence) == 1  # this month's security update needs a reboot
