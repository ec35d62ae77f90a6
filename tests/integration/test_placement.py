# ruff: noqa: F811 (the fixtures imported from test_provisioning are parameters here)
"""Placement with the real aio SDKs against the ARM simulator over HTTPS: the image offered in the VM's
region (Virtual Machine Images - List Skus) before the first PUT, and a refused size answered with the
sizes of its family the region offers (Resource SKUs - List)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from azure_edition_operator.azure import extended, placement
from azure_edition_operator.azure.errors import AzurePermanentError
from azure_edition_operator.images import resolve
from tests.integration.test_provisioning import (  # noqa: F401 (fixtures)
    World,
    clients,
    ensure,
    world,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    extended.forget_static()
    placement.IMAGE_SKUS.forget()
    yield
    extended.forget_static()
    placement.IMAGE_SKUS.forget()


def _list_skus(world: World, since: int) -> list[str]:
    return [op for _, op, _ in world.arm_requests(since) if op == "VirtualMachineImages_ListSkus"]


async def test_2025_image_in_a_region_without_it_is_refused_naming_the_regions(world: World, clients) -> None:
    spec = world.spec(azure={"location": "qatarcentral"})
    image = resolve(spec.capabilities)  # nothing pinned: 2025 Core
    assert image.sku == "2025-datacenter-azure-edition-core"
    mark = world.mark()
    with pytest.raises(placement.ImageNotOffered) as caught:
        await placement.check_image(clients, spec, image)
    message = str(caught.value)
    assert "not offered in qatarcentral" in message
    assert "westeurope" in message and "eastus" in message  # regions the simulator offers it in
    assert "spec.azure.location" in message
    assert world.writes(mark) == [], "a refusal writes nothing"
    assert len(_list_skus(world, mark)) == 1 + len(placement.PROBE_REGIONS)  # here, then each other region
    # the probe looked at every region once; asking again reads nothing (cached per region)
    mark = world.mark()
    with pytest.raises(placement.ImageNotOffered):
        await placement.check_image(clients, spec, image)
    assert _list_skus(world, mark) == []


async def test_a_named_vm_is_never_created_so_its_image_is_not_placed(world: World, clients) -> None:
    spec = world.spec(azure={"location": "qatarcentral", "vmName": "fs-legacy-01"})
    mark = world.mark()
    await placement.check_image(clients, spec, resolve(spec.capabilities))  # 2025 Core: not offered there
    assert world.arm_requests(mark) == []


async def test_an_image_the_region_offers_passes_with_one_cached_read(world: World, clients) -> None:
    spec = world.spec()
    image = resolve(spec.capabilities)
    mark = world.mark()
    await placement.check_image(clients, spec, image)
    await placement.check_image(clients, spec, image)
    assert len(_list_skus(world, mark)) == 1


async def test_the_2022_image_is_offered_where_2025_is_not(world: World, clients) -> None:
    spec = world.spec(azure={"location": "qatarcentral"}, image={"windowsServerVersion": "2022"})
    await placement.check_image(clients, spec, resolve(spec.capabilities, spec.image_pins()))


async def test_the_simulator_lists_image_skus_per_region(world: World, clients) -> None:
    compute = clients.compute(world.sim.subscription_id)
    here = {r.name for r in await compute.virtual_machine_images.list_skus("westeurope", "MicrosoftWindowsServer",
                                                                            "WindowsServer")}  # fmt: skip
    there = {r.name for r in await compute.virtual_machine_images.list_skus("qatarcentral", "MicrosoftWindowsServer",
                                                                             "WindowsServer")}  # fmt: skip
    assert {"2025-datacenter-azure-edition-core", "2022-datacenter-azure-edition-smalldisk"} <= here
    assert "2025-datacenter-azure-edition-core" not in there
    assert "2022-datacenter-azure-edition-core" in there


async def test_the_commonest_size_is_accepted(world: World, clients) -> None:
    spec = world.spec(azure={"vmSize": "Standard_D2s_v5"})
    vm = await ensure(clients, world, spec)
    assert vm.model is not None


async def test_a_restricted_size_is_answered_with_its_family(world: World, clients) -> None:
    world.control.restrict_sku(world.env["ARMSIM_LOCATION"], "Standard_D2s_v5")
    spec = world.spec(azure={"vmSize": "Standard_D2s_v5"})
    with pytest.raises(AzurePermanentError) as caught:
        await ensure(clients, world, spec)
    err = await placement.with_size_advice(clients, spec, caught.value)
    assert err.code == "SkuNotAvailable"
    location = world.env["ARMSIM_LOCATION"]
    assert (
        f"sizes of the same family {location} offers to this subscription: Standard_D4s_v5, Standard_D8s_v5"
        in err.message
    )
    assert "Standard_D2as_v5" not in err.message.split("family")[-1]  # another family


async def test_a_size_the_region_does_not_offer_is_answered_from_its_name(world: World, clients) -> None:
    spec = world.spec(azure={"vmSize": "Standard_D32s_v5"})
    with pytest.raises(AzurePermanentError) as caught:
        await ensure(clients, world, spec)
    err = await placement.with_size_advice(clients, spec, caught.value)
    assert err.code == "InvalidParameter"
    assert "offers to this subscription: Standard_D16s_v5, Standard_D8s_v5" in err.message
