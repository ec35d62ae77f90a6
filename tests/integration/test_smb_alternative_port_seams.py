# ruff: noqa: F811 (the fixtures imported from test_provisioning are parameters here)
"""An alternative SMB over QUIC port through the operator's own seams against the ARM simulator, with the
real aio SDKs and real QUIC: provisioning puts the NSG on the NIC, a check round sets the port in the guest
(managed Run Command), the probe reaches it, status.smbOverQuic.ports lists both ports, and a port removed
in the guest behind the operator's back is put back with a Warning Event."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket

import pytest

from azure_edition_operator.checks.runner import CheckMemory, run_checks
from azure_edition_operator.checks.smb_rotator import PORTS_COMMAND
from tests.integration.test_provisioning import (  # noqa: F401 (fixtures)
    OWNER,
    World,
    clients,
    ensure,
    identity_for,
    world,
)

pytestmark = pytest.mark.integration

SERVER = "fs01.branch-a.contoso.com"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_alternative_port_is_set_probed_reported_and_corrected(world: World, clients) -> None:
    alt = free_udp_port()
    spec = world.spec(
        capabilities=["SMBOverQUIC"], hotpatch=None, azure={"publicIP": True},
        smbOverQuic={"serverName": SERVER, "port": world.sim.quic_port, "alternativePort": alt},
    )  # fmt: skip
    observed = await ensure(clients, world, spec, instance_view=True)
    assert observed.image_ref.windows_server_version == "2025"
    vm_name = identity_for(world, spec).vm_name
    rg = spec.azure.resource_group
    world.control.set_certificate(rg, vm_name, SERVER, {"expiresInDays": 90})
    events, memory = [], CheckMemory(0.0, 0.0)  # every round looks inside (drift is seen at once)

    async def round_():
        return await run_checks(
            spec=spec, namespace="ns", name="x", compute=clients.compute(spec.azure.subscription_id),
            vm_name=vm_name, memory=memory, emit=lambda *e: events.append(e), now=dt.datetime.now(dt.UTC),
            owner=OWNER, known_vm=observed.to_status(),
        )  # fmt: skip

    since = world.mark()
    result = await round_()
    assert [e[1] for e in events].count("SMBOverQUICAlternativePortApplied") == 1, events
    assert ("PUT", "VirtualMachineRunCommands_CreateOrUpdate") in world.writes(since)
    ports = world.control.guest(rg, vm_name)["alternativePorts"]
    assert ports == [{"transportType": "QUIC", "port": alt, "enableInstances": "Default"}]
    # the simulator opens the endpoint a moment after the guest changed: this round may not reach it yet
    assert result.smb_over_quic["ports"][0] == world.sim.quic_port

    since = world.mark()
    result = await round_()  # steady: nothing to apply
    assert ("PUT", "VirtualMachineRunCommands_CreateOrUpdate") not in world.writes(since)
    assert result.smb_over_quic["ports"] == [world.sim.quic_port, alt], result.conditions[-1].message
    assert "alternative port" not in result.conditions[-1].message

    # drift behind the operator's back: the port removed in the guest; the next look puts it back
    world.control.set_guest(rg, vm_name, alternativePorts=[])
    await round_()
    corrected = [e for e in events if e[1] == "SMBOverQUICAlternativePortCorrected"]
    assert len(corrected) == 1 and f"add QUIC port {alt}" in corrected[0][2], events
    assert world.control.guest(rg, vm_name)["alternativePorts"][0]["port"] == alt
    assert PORTS_COMMAND == "azureedition-smb-alternative-port"

    # the NSG rule removed by hand: nothing reaches the port; the probe says so (provisioning restores the rule)
    from azure_edition_operator.azure import nsg_specs
    from azure_edition_operator.azure.sdk import network

    net = clients.network(spec.azure.subscription_id)
    ident = identity_for(world, spec)
    body = (await net.network_security_groups.get(rg, nsg_specs.nsg_name(ident))).as_dict()
    body["properties"]["securityRules"] = [
        r for r in body["properties"]["securityRules"] if r["name"] != nsg_specs.ALTERNATIVE_RULE
    ]
    poller = await net.network_security_groups.begin_create_or_update(
        rg, nsg_specs.nsg_name(ident), network.NetworkSecurityGroup(body)
    )
    await poller.result()
    for _ in range(50):  # the simulator closes the endpoint a moment later
        if not world.control.quic()["alternates"]:
            break
        await asyncio.sleep(0.1)
    result = await round_()
    assert result.smb_over_quic["ports"] == [world.sim.quic_port]
    assert f"alternative port {alt}/udp does not answer" in result.conditions[-1].message
