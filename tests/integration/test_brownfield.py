"""An existing VM brought under management (spec.azure.vmName, spec.azure.adopt), with the real SDKs
against the simulator: found by its own name, its NICs and public IP discovered from it and only read,
nothing recreated; taken only when adopted; what the spec says otherwise reported, never forced. Every
write claim is checked in the simulator's own request log."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from azure.mgmt.compute import models as cm

from azure_edition_operator import reasons as vocab
from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec, DeletionPolicy
from azure_edition_operator.azure import specs
from azure_edition_operator.azure.clients import AzureClients
from azure_edition_operator.azure.driver import OperationState
from azure_edition_operator.azure.errors import AzurePermanentError
from azure_edition_operator.azure.provision import ImageChangeRequired, ObservedVM, delete_vm, ensure_vm
from azure_edition_operator.checks.runner import CheckMemory, run_checks
from azure_edition_operator.images import resolve
from azure_edition_simulator import Simulator
from tests.integration import test_provisioning as base
from tests.integration.conftest import RESOURCE_GROUP, Arm, Clients, vm_model
from tests.integration.test_provisioning import LOGIN, OWNER, World

pytestmark = pytest.mark.integration


@pytest.fixture
def world(sim: Simulator) -> World:
    return World(sim, sim.env())


@pytest.fixture
async def clients(world: World) -> AsyncIterator[AzureClients]:
    async with base.azure_clients(world) as made:
        yield made


NAME = "fs-legacy-01"  # as a person named it in the portal: not the operator's derived name
NIC, PIP = "fs-legacy-01-nic-by-hand", "pip-fs-legacy"


def outside_vm(make_clients: Callable[..., Clients], sim: Any, *, sku: str | None = None,
               tags: dict[str, str] | None = None) -> Any:  # fmt: skip
    """A VM made outside the operator (a public IP, a NIC, the VM), the way a portal or Terraform would."""
    arm = Arm(sim, make_clients())
    pip = arm.public_ip(PIP)
    nic = arm.nic(NIC, public_ip_id=pip.id)
    extra: dict[str, Any] = (
        {"sku": sku, "patch_settings": cm.PatchSettings(patch_mode="AutomaticByOS")} if sku else {}
    )
    model = vm_model([nic.id], tags=tags or {"createdBy": "terraform"}, **extra)
    return arm.clients.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, NAME, model).result()


def named_spec(world: World, **azure: Any) -> AzureEditionVMSpec:
    return world.spec(azure={"vmName": NAME, "publicIP": True, **azure})


async def take(clients: AzureClients, spec: AzureEditionVMSpec, **kw: Any) -> ObservedVM:
    identity = specs.vm_identity(OWNER, spec.azure)
    kw.setdefault("state", OperationState())
    image = resolve(set(spec.capabilities), spec.image_pins())  # as the reconcile pass resolves it
    return await ensure_vm(clients, identity, spec, image, LOGIN, wait=True, **kw)


async def test_a_vm_without_our_tags_is_taken_only_with_adopt(
    world: World, clients: AzureClients, make_clients: Callable[..., Clients]
) -> None:
    outside_vm(make_clients, world.sim)
    since = world.mark()
    with pytest.raises(AzurePermanentError) as caught:
        await take(clients, named_spec(world))
    assert (
        caught.value.reason == vocab.OWNERSHIP_CONFLICT and "spec.azure.adopt: true" in caught.value.message
    )
    assert world.writes(since) == []


async def test_an_adopted_vm_is_found_by_name_and_only_the_vm_is_written(
    world: World, clients: AzureClients, make_clients: Callable[..., Clients]
) -> None:
    before = outside_vm(make_clients, world.sim)
    spec = named_spec(world, adopt=True)
    since = world.mark()

    vm = await take(clients, spec)

    assert world.writes(since) == [("PATCH", "VirtualMachines_Update")]  # our tags: the VM is taken
    assert vm.vm_id == before.vm_id and vm.name == NAME and len(world.control.vms()) == 1
    assert vm.tags[specs.OWNER_TAG] == OWNER.ref and vm.tags["createdBy"] == "terraform"
    assert vm.identity is not None and (vm.identity.nic_name, vm.identity.public_ip_name) == (NIC, PIP)
    assert vm.private_ip_address and vm.public_ip_address  # read from the discovered NIC and address
    assert vm.drift == (), "the image is the one the VM runs, not the catalog's newest"
    assert vm.image_ref is not None and vm.image_ref.sku == before.storage_profile.image_reference.sku
    since = world.mark()
    await take(clients, spec)
    assert world.writes(since) == []

    bigger = named_spec(world, adopt=True, vmSize="Standard_D4as_v5")
    resized = await take(clients, bigger)
    assert resized.vm_size == "Standard_D4as_v5" and resized.vm_id == before.vm_id


async def test_what_cannot_change_in_place_is_reported_not_forced(
    world: World, clients: AzureClients, make_clients: Callable[..., Clients]
) -> None:
    outside_vm(make_clients, world.sim)
    spec = world.spec(
        capabilities=["Hotpatch", "ExtendedNetwork"],
        azure={
            "vmName": NAME,
            "adopt": True,
            "publicIP": False,
            "subnetId": world.env["ARMSIM_EXTENDED_SUBNET_ID"],
        },
        extendedNetwork={"extendedSubnetId": world.env["ARMSIM_EXTENDED_SUBNET_ID"]},
        image={"experience": "DesktopExperience"},
    )
    since = world.mark()

    vm = await take(clients, spec)

    assert world.writes(since) == [("PATCH", "VirtualMachines_Update")]  # tags only; the NIC is untouched
    drift = " | ".join(vm.drift)
    assert "spec.azure.subnetId" in drift  # the NIC stays on its subnet
    assert "has a public IP but spec.azure.publicIP is false" in drift  # the address stays
    assert "ExtendedNetwork needs a second NIC" in drift  # none is attached to a running VM
    assert "cannot change its image in place" in drift  # the VM runs Core; the spec pins Desktop Experience
    assert len(world.control.vms()) == 1


async def test_a_capability_the_vms_image_cannot_carry_is_refused_before_any_write(
    world: World, clients: AzureClients, make_clients: Callable[..., Clients]
) -> None:
    outside_vm(make_clients, world.sim, sku="2022-datacenter-azure-edition")
    since = world.mark()
    with pytest.raises(ImageChangeRequired, match="cannot carry Hotpatch"):
        await take(clients, named_spec(world, adopt=True))
    assert world.writes(since) == []


async def test_a_named_vm_that_does_not_exist_is_reported_never_created(
    world: World, clients: AzureClients
) -> None:
    since = world.mark()
    with pytest.raises(AzurePermanentError) as caught:
        await take(clients, named_spec(world, adopt=True))
    assert caught.value.reason == vocab.VM_NOT_FOUND and "spec.azure.vmName" in caught.value.message
    assert world.writes(since) == [] and world.control.vms() == []


async def test_deleting_an_adopted_vm_touches_the_vm_alone(
    world: World, clients: AzureClients, make_clients: Callable[..., Clients]
) -> None:
    outside_vm(make_clients, world.sim)
    spec = named_spec(world, adopt=True)
    await take(clients, spec)
    identity = specs.vm_identity(OWNER, spec.azure)

    since = world.mark()
    report = await delete_vm(clients, identity, DeletionPolicy.ORPHAN, wait=True)
    assert world.writes(since) == [("PATCH", "VirtualMachines_Update")]
    assert [name for _, name, _, _ in report.outcomes] == [NAME]
    net = clients.network(identity.subscription_id)
    assert (await net.network_interfaces.get(RESOURCE_GROUP, NIC)).tags in (None, {})  # never ours


# ----------------------------------------------------------------------------- observe only


def non_reads(world: World, since: int) -> list[tuple[str, str, int]]:
    """Every ARM request after ``since`` that is not a GET: PUT, PATCH, DELETE and POST alike."""
    return [r for r in world.arm_requests(since) if r[0] != "GET"]


async def test_observing_a_drifted_vm_reads_and_says_what_it_would_change(
    world: World, clients: AzureClients
) -> None:
    spec = world.spec(azure={"publicIP": True})
    ident = specs.vm_identity(OWNER, spec.azure)
    await base.ensure(clients, world, spec)
    world.control.set_patch_settings(ident.resource_group, ident.vm_name, {"patchMode": "AutomaticByOS"})
    wanted = world.spec(azure={"publicIP": True, "vmSize": "Standard_D4as_v5", "tags": {"costCenter": "43"}})
    since = world.mark()

    vm = await base.ensure(clients, world, wanted, observe=True)

    assert non_reads(world, since) == []
    assert vm.actions == () and vm.vm_size == "Standard_D2as_v5"
    message = vm.observe_message()
    assert message.startswith("observe only: would change: ")
    assert f"virtualMachines/{ident.vm_name}: vmSize Standard_D2as_v5 → Standard_D4as_v5" in message
    assert (
        "costCenter: 42 → 43" in message
        and "patchMode is 'AutomaticByOS', want 'AutomaticByPlatform'" in message
    )
    assert f"networkInterfaces/{ident.nic_name}: tags" in message  # the NIC's tags too
    since = world.mark()
    await base.ensure(clients, world, spec, observe=True)
    assert non_reads(world, since) == []


async def test_observing_a_missing_vm_reports_it_and_creates_nothing(
    world: World, clients: AzureClients
) -> None:
    async def no_login() -> Any:
        raise AssertionError("observing never reads the admin login")

    spec = world.spec(azure={"publicIP": True})
    since = world.mark()
    with pytest.raises(AzurePermanentError) as caught:
        await ensure_vm(clients, specs.vm_identity(OWNER, spec.azure), spec, resolve(spec.capabilities), no_login,
                        observe=True, wait=True)  # fmt: skip
    assert caught.value.reason == vocab.VM_NOT_FOUND and "observe only" in caught.value.message
    assert non_reads(world, since) == [] and world.control.vms() == []


async def test_an_outside_vm_is_observed_without_a_write_then_taken_with_one(
    world: World, clients: AzureClients, make_clients: Callable[..., Clients]
) -> None:
    """The migration path: observe first (no adopt needed to look), then Full with adopt: one PATCH."""
    outside_vm(make_clients, world.sim)
    since = world.mark()

    seen = await take(clients, named_spec(world), observe=True)

    assert non_reads(world, since) == []
    assert seen.private_ip_address and seen.public_ip_address
    message = seen.observe_message()
    assert (
        "taken only with spec.azure.adopt: true" in message and f"+{specs.OWNER_TAG}={OWNER.ref}" in message
    )
    since = world.mark()
    await take(clients, named_spec(world, adopt=True))
    assert non_reads(world, since) == [("PATCH", "VirtualMachines_Update", 200)]


async def test_observing_never_takes_another_objects_vm(world: World, clients: AzureClients) -> None:
    spec = world.spec()
    await base.ensure(clients, world, spec)
    taken = specs.vm_identity(OWNER, spec.azure).vm_name
    other = specs.Owner("branch-a", "someone-else", "u")
    since = world.mark()
    with pytest.raises(AzurePermanentError) as caught:
        await ensure_vm(clients, specs.vm_identity(other, world.spec(azure={"vmName": taken}).azure),
                        world.spec(azure={"vmName": taken}), resolve(spec.capabilities), LOGIN, observe=True)  # fmt: skip
    assert caught.value.reason == vocab.OWNERSHIP_CONFLICT
    assert non_reads(world, since) == []


async def test_checks_look_at_an_unadopted_vm_only_while_observing(
    world: World, clients: AzureClients, make_clients: Callable[..., Clients]
) -> None:
    outside_vm(make_clients, world.sim)
    spec = named_spec(world)
    events: list[tuple[str, str, str]] = []

    async def round_(observe: bool) -> Any:
        return await run_checks(
            spec=spec, namespace="ns", name="x", compute=clients.compute(spec.azure.subscription_id),
            vm_name=NAME, memory=CheckMemory(3600.0, 600.0), emit=lambda *e: events.append(e),
            now=dt.datetime.now(dt.UTC), owner=OWNER, observe=observe,
        )  # fmt: skip

    since = world.mark()
    result = await round_(observe=True)
    assert result.conditions[0].reason == "HotpatchEnabled" and result.vm["powerState"] == "running"
    with pytest.raises(AzurePermanentError, match=r"spec\.azure\.adopt: true"):
        await round_(observe=False)
    assert non_reads(world, since) == [] and events == []


async def test_an_existing_vms_second_nic_is_the_one_extended_network_checks_read(
    world: World, clients: AzureClients, make_clients: Callable[..., Clients]
) -> None:
    arm = Arm(world.sim, make_clients())
    nic = arm.nic("primary-by-hand")
    ext = arm.nic("appliance-nic-by-hand", subnet=world.env["ARMSIM_EXTENDED_SUBNET_ID"])
    model = vm_model([nic.id, ext.id], tags={"createdBy": "bicep"})
    arm.clients.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, NAME, model).result()
    spec = world.spec(capabilities=["ExtendedNetwork"], azure={"vmName": NAME},
                      extendedNetwork={"extendedSubnetId": world.env["ARMSIM_EXTENDED_SUBNET_ID"]})  # fmt: skip
    derived = specs.vm_identity(OWNER, spec.azure).extended_nic_name
    sub = spec.azure.subscription_id
    since = world.mark()

    await run_checks(
        spec=spec, namespace="ns", name="x", compute=clients.compute(sub), vm_name=NAME,
        memory=CheckMemory(3600.0, 600.0), emit=lambda *e: None, now=dt.datetime.now(dt.UTC), owner=OWNER,
        network=clients.network(sub), extended_nic=derived, observe=True,
    )  # fmt: skip

    nic_reads = [e["path"].rsplit("/", 1)[-1] for e in world.control.requests(since)
                 if e["operation"] == "NetworkInterfaces_Get"]  # fmt: skip
    assert nic_reads == ["appliance-nic-by-hand"], nic_reads
    assert non_reads(world, since) == []
