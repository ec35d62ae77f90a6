# ruff: noqa: F811 (the fixtures imported from test_provisioning are parameters here)
"""Extended Network's prerequisites with the real aio SDKs against the ARM simulator over HTTPS.

Each ExtendedNetworkReady reason is driven here through the simulator's control API (SKUs, subnets and
delegations, gateways and connections, the NIC, the guest behind Run Command) and read back by the
operator's own shell (``azure.extended``, ``checks.runner``). The simulator's request log proves the
before-PUT refusal sends no write and that static facts are not read again every round.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from azure_edition_operator import reasons as vocab
from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec
from azure_edition_operator.azure import extended
from azure_edition_operator.azure.clients import AzureClients
from azure_edition_operator.azure.errors import AzureRetryableError
from azure_edition_operator.checks.runner import CheckMemory, run_checks
from tests.integration.test_provisioning import (  # noqa: F401 (fixtures)
    OWNER,
    World,
    azure_clients,
    ensure,
    identity_for,
    world,
)

pytestmark = pytest.mark.integration

RG = "rg-branch-a"
NOW = dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Static facts are cached per process; each test starts from a freshly reset simulator."""
    extended.forget_static()
    yield
    extended.forget_static()


@pytest.fixture
async def az(world: World) -> AsyncIterator[AzureClients]:
    async with azure_clients(world) as c:
        yield c


def xspec(w: World, subnet: str | None = None, ext: str | None = None, **azure: Any) -> AzureEditionVMSpec:
    return w.spec(
        capabilities=["ExtendedNetwork"],
        azure={"subnetId": subnet or w.env["ARMSIM_SUBNET_ID"], **azure},
        extendedNetwork={"extendedSubnetId": ext or w.env["ARMSIM_EXTENDED_SUBNET_ID"]},
    )


def subnet_in(w: World, vnet: str, name: str) -> str:
    return w.env["ARMSIM_SUBNET_ID"].replace("vnet-branch-a/subnets/servers", f"{vnet}/subnets/{name}")


def reasons_of(problems: list[Any]) -> list[str]:
    return [p.reason for p in problems if p is not None]


async def problems(az: AzureClients, spec: AzureEditionVMSpec) -> list[str]:
    sub = spec.azure.subscription_id
    nic = identity_for(None, spec, OWNER).extended_nic_name  # type: ignore[arg-type]
    return reasons_of(await extended.network_problems(az.compute(sub), az.network(sub), spec, nic))


# ----------------------------------------------------------------------------- before any PUT


async def test_a_size_without_nested_virtualization_is_refused_before_any_put(world: World, az: AzureClients):
    spec = xspec(world, vmSize="Standard_B2s")
    mark = world.mark()
    with pytest.raises(extended.PrerequisitesNotMet) as refused:
        await extended.preflight(az, spec)
    condition = refused.value.condition
    assert condition.reason == vocab.NESTED_VIRTUALIZATION_UNSUPPORTED
    assert "Standard_D2as_v5" in condition.message and "Standard_B2s (standardBSFamily)" in condition.message
    calls = world.arm_requests(mark)
    assert [op for _, op, _ in calls] == ["Subnets_Get", "ResourceSkus_List"], calls  # reads only
    mark = world.mark()
    with pytest.raises(extended.PrerequisitesNotMet):
        await extended.preflight(az, spec)
    assert world.arm_requests(mark) == []  # static facts are not read again


async def test_a_restricted_nesting_size_is_not_suggested(world: World, az: AzureClients):
    world.control.restrict_sku(world.env["ARMSIM_LOCATION"], "Standard_D2as_v5")
    with pytest.raises(extended.PrerequisitesNotMet) as refused:
        await extended.preflight(az, xspec(world, vmSize="Standard_B2s"))
    assert "Standard_D2as_v5" not in refused.value.condition.message


async def test_subnet_reasons_before_any_put(world: World, az: AzureClients):
    control = world.control
    other = control.add_subnet("vnet-branch-b", "extended")
    delegated = control.delegate_subnet("vnet-branch-a", "webapps", "Microsoft.Web/serverFarms")
    cases = {
        vocab.EXTENDED_SUBNET_IS_PRIMARY: world.env["ARMSIM_SUBNET_ID"],
        vocab.EXTENDED_SUBNET_IN_OTHER_NETWORK: other,
        vocab.EXTENDED_SUBNET_IS_GATEWAY_SUBNET: subnet_in(world, "vnet-branch-a", "GatewaySubnet"),
        vocab.EXTENDED_SUBNET_DELEGATED: delegated,
    }
    for reason, ext in cases.items():
        mark = world.mark()
        with pytest.raises(extended.PrerequisitesNotMet) as refused:
            await extended.preflight(az, xspec(world, ext=ext))
        assert refused.value.condition.reason == reason, refused.value.condition
        assert all(method == "GET" for method, _, _ in world.arm_requests(mark))
    assert "Microsoft.Web/serverFarms" in refused.value.condition.message
    await extended.preflight(az, xspec(world))  # the seeded world meets them


# ----------------------------------------------------------------------------- gateway and connection


async def test_gateway_chain_is_read_and_reported_never_created(world: World, az: AzureClients):
    control = world.control
    assert await problems(az, xspec(world)) == []
    control.set_connection_status(RG, "cn-branch-a-onprem", "NotConnected")
    assert await problems(az, xspec(world)) == [
        vocab.GATEWAY_NOT_CONNECTED
    ]  # connections are read every round
    control.set_connection_status(RG, "cn-branch-a-onprem", "Connecting")
    assert await problems(az, xspec(world)) == [vocab.GATEWAY_NOT_CONNECTED]
    control.add_connection("cn-backup", "vgw-branch-a")  # a second connection that is up is enough
    assert await problems(az, xspec(world)) == []

    b_servers, b_ext = (
        control.add_subnet("vnet-branch-b", "servers"),
        control.add_subnet("vnet-branch-b", "ext"),
    )
    assert await problems(az, xspec(world, b_servers, b_ext)) == [vocab.GATEWAY_SUBNET_MISSING]
    c_servers, c_ext = (
        control.add_subnet("vnet-branch-c", "servers"),
        control.add_subnet("vnet-branch-c", "ext"),
    )
    control.add_subnet("vnet-branch-c", "GatewaySubnet")
    assert await problems(az, xspec(world, c_servers, c_ext)) == [vocab.GATEWAY_MISSING]
    assert not any(m != "GET" for m, _, _ in world.arm_requests(0))  # nothing was ever written


async def test_a_removed_gateway_shows_once_the_static_facts_expire(world: World, az: AzureClients):
    assert await problems(az, xspec(world)) == []  # the gateway is now a cached static fact
    world.control.remove_gateway(RG, "vgw-branch-a")
    assert await problems(az, xspec(world)) == [vocab.GATEWAY_NOT_CONNECTED]  # its connections went with it
    extended.FACTS.ttl, saved = 0.0, extended.FACTS.ttl
    try:
        assert await problems(az, xspec(world)) == [vocab.GATEWAY_MISSING]
    finally:
        extended.FACTS.ttl = saved


# ----------------------------------------------------------------------------- a VM: NIC and guest


async def check(az: AzureClients, spec: AzureEditionVMSpec, memory: CheckMemory, events: list) -> Any:
    ident = identity_for(None, spec, OWNER)  # type: ignore[arg-type]
    sub = spec.azure.subscription_id

    result = await run_checks(
        spec=spec, namespace="ns", name="x", compute=az.compute(sub), vm_name=ident.vm_name,
        memory=memory, emit=lambda *e: events.append(e), now=NOW, owner=OWNER,
        network=az.network(sub), extended_nic=ident.extended_nic_name,
    )  # fmt: skip
    return next(c for c in result.conditions if c.type == "ExtendedNetworkReady")


async def test_vm_with_every_prerequisite_then_each_in_vm_reason(world: World, az: AzureClients):
    spec = xspec(world)
    await ensure(az, world, spec)
    ident = identity_for(world, spec)
    nic = az.network(spec.azure.subscription_id).network_interfaces
    assert (await nic.get(RG, ident.extended_nic_name)).properties.enable_ip_forwarding is True  # created on
    assert not (await nic.get(RG, ident.nic_name)).properties.enable_ip_forwarding  # the primary NIC: off

    memory, events = CheckMemory(in_guest_interval=3600, in_guest_min_interval=0.0), []
    first = await check(az, spec, memory, events)
    assert first.is_true and first.reason == vocab.EXTENDED_NETWORK_READY, first

    # Steady state: the VM GET, the connections and the NIC; no SKUs, subnets, gateway or Run Command.
    mark = world.mark()
    await check(az, spec, memory, events)
    ops = sorted(op for _, op, _ in world.arm_requests(mark))
    assert ops == ["NetworkInterfaces_Get", "VirtualMachines_Get", "VirtualNetworkGatewayConnections_List"], (
        ops
    )

    world.control.set_nic_ip_forwarding(RG, ident.extended_nic_name, False)
    mark = world.mark()
    assert (await check(az, spec, memory, events)).reason == vocab.IP_FORWARDING_DISABLED
    assert world.writes(mark) == []  # reported, not overwritten
    world.control.set_nic_ip_forwarding(RG, ident.extended_nic_name, True)

    world.control.set_guest(RG, ident.vm_name, extendedNetworkAppliance="Off")
    assert (await check(az, spec, memory, events)).is_true  # the guest is asked at most every interval
    memory.network_guest.checked_at = -1e18  # the interval has passed
    off = await check(az, spec, memory, events)
    assert off.reason == vocab.APPLIANCE_NOT_RUNNING and "Off" in off.message
    world.control.set_guest(RG, ident.vm_name, hypervRole=False)
    memory.network_guest.checked_at = -1e18
    assert (await check(az, spec, memory, events)).reason == vocab.HYPER_V_ROLE_MISSING


async def test_a_failing_run_command_backs_off_and_says_so(world: World, az: AzureClients):
    spec = xspec(world)
    await ensure(az, world, spec)
    ident = identity_for(world, spec)
    world.control.inject_fault(operation="VirtualMachines_RunCommand", status=409, code="Conflict", times=1)
    memory, events = CheckMemory(in_guest_interval=3600, in_guest_min_interval=60), []
    failed = await check(az, spec, memory, events)
    assert failed.is_true and "in-guest check failing 1x" in failed.message  # the network is fine
    assert [e[1] for e in events] == ["InGuestCheckFailed"]
    mark = world.mark()
    await check(az, spec, memory, events)  # within the back-off: no Run Command
    assert "VirtualMachines_RunCommand" not in {op for _, op, _ in world.arm_requests(mark)}
    assert ident.vm_name


async def test_resource_skus_the_identity_may_not_read_leave_the_size_unjudged(
    world: World, az: AzureClients
):
    """Resource SKUs are read at subscription scope: an identity with resource-group roles only still gets
    its VM (Azure judges the size on create), with the size check skipped rather than everything blocked."""
    world.control.inject_fault(operation="ResourceSkus_List", status=403, code="AuthorizationFailed", times=1)
    world.control.inject_fault(operation="Subnets_Get", status=403, code="AuthorizationFailed", times=1)
    await extended.preflight(az, xspec(world, vmSize="Standard_B2s"))
    world.control.inject_fault(operation="Subnets_Get", status=500, code="InternalServerError", times=None)
    extended.forget_static()
    with pytest.raises(AzureRetryableError):  # anything else is the pass's Azure failure, retried
        await extended.preflight(az, xspec(world, vmSize="Standard_B2s"))
    world.control.clear_faults()


async def test_an_unreadable_network_keeps_the_condition_and_warns_once(world: World, az: AzureClients):
    spec = xspec(world)
    await ensure(az, world, spec)
    memory, events = CheckMemory(in_guest_interval=3600, in_guest_min_interval=60), []
    assert (await check(az, spec, memory, events)).is_true
    ident = identity_for(world, spec)
    world.control.inject_fault(
        operation="VirtualNetworkGatewayConnections_List", status=403, code="AuthorizationFailed", times=2
    )

    sub = spec.azure.subscription_id
    for _ in range(2):
        result = await run_checks(
            spec=spec, namespace="ns", name="x", compute=az.compute(sub), vm_name=ident.vm_name,
            memory=memory, emit=lambda *e: events.append(e), now=NOW,
            owner=OWNER, network=az.network(sub), extended_nic=ident.extended_nic_name,
        )  # fmt: skip
        assert "ExtendedNetworkReady" not in {c.type for c in result.conditions}
    assert [e[1] for e in events] == ["ExtendedNetworkCheckFailed"]
    assert (await check(az, spec, memory, events)).is_true
