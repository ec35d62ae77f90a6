"""An alternative SMB over QUIC port end to end against the simulator, with the operator's own parts and the
real SDKs: the guest script (Run Command) adds the port, the operator's NSG spec opens it on the NIC, and the
simulated endpoint answers a real QUIC handshake on it only when both have happened; removing either shuts it."""

from __future__ import annotations

import asyncio
import socket

import pytest
from azure.mgmt.compute import models as cm

from azure_edition_operator.azure import nsg_specs, specs
from azure_edition_operator.checks.smb_guest import ALTERNATIVE_PORT_SCRIPT, GuestState, parse_guest_state
from azure_edition_operator.checks.smb_ports import plan_ports
from azure_edition_simulator import Simulator

from .conftest import LOCATION, RESOURCE_GROUP, Arm, Clients
from .test_simulator_client_access import SERVER, verdict
from .test_simulator_quic import endpoint_for, wait_for

pytestmark = pytest.mark.integration


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ports(clients: Clients, vm: str, parameters: dict[str, str]):
    body = cm.VirtualMachineRunCommand(
        location=LOCATION,
        source=cm.VirtualMachineRunCommandScriptSource(script="\n".join(ALTERNATIVE_PORT_SCRIPT)),
        parameters=[cm.RunCommandInputParameter(name=k, value=v) for k, v in parameters.items()],
    )
    clients.compute.virtual_machine_run_commands.begin_create_or_update(
        RESOURCE_GROUP, vm, "ports", body
    ).result()
    done = clients.compute.virtual_machine_run_commands.get_by_virtual_machine(
        RESOURCE_GROUP, vm, "ports", expand="instanceView"
    )
    assert done.instance_view.execution_state == "Succeeded", done.instance_view.error
    return parse_guest_state(done.instance_view.output)


def alternate(sim: Simulator, vm_id: str, port: int) -> bool:
    return any(
        a["vmId"].lower() == vm_id.lower() and a["port"] == port for a in sim.control.quic()["alternates"]
    )


def gone(sim: Simulator, vm_id: str, port: int) -> bool:
    return not alternate(sim, vm_id, port)


async def test_the_alternative_port_answers_only_with_guest_port_and_nsg_rule(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    vm = await asyncio.to_thread(arm.vm)
    sim.control.set_certificate(RESOURCE_GROUP, vm.name, SERVER, {"expiresInDays": 90})
    host = (await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id)))["host"]
    port = free_udp_port()

    # 1. The guest listens on it (the operator's plan and script), but no NSG admits it yet.
    plan = plan_ports(port, GuestState(True))
    assert plan is not None
    state = await asyncio.to_thread(run_ports, clients, vm.name, plan.parameters())
    assert state.alternative_quic_ports == (port,)
    assert plan_ports(port, state) is None  # read back: nothing left to do
    assert sim.control.quic()["alternates"] == []  # the NIC has no group: nothing says UDP port is open...

    # 2. ...so the operator's group goes on the primary NIC, opening both QUIC ports.
    group = nsg_specs.nsg_parameters(
        specs.VMIdentity(specs.Owner("b", "alt", "u"), sim.subscription_id, RESOURCE_GROUP, LOCATION, vm.name,
                         "alt", f"{vm.name}-nic", "", f"{vm.name}-pip", ""),
        {"managed-by": "test"}, nsg_specs.SmbPorts(sim.quic_port, port),
    )  # fmt: skip
    made = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, f"{vm.name}-nsg", group
    ).result()
    nic = clients.network.network_interfaces.get(RESOURCE_GROUP, f"{vm.name}-nic")
    update = nsg_specs.nic_nsg_update(nic, made.id, made.id)
    assert update is not None
    clients.network.network_interfaces.begin_create_or_update(
        RESOURCE_GROUP, f"{vm.name}-nic", update
    ).result()
    await asyncio.to_thread(wait_for, lambda: alternate(sim, vm.id, port))
    assert await verdict(host, port, None) == "admitted"  # a real QUIC handshake on the alternative port
    assert await verdict(host, sim.quic_port, None) == "admitted"  # the main port still answers

    # 3. The rule goes (edited by hand): the port falls to DenyAllInBound and stops answering.
    body = clients.network.network_security_groups.get(RESOURCE_GROUP, f"{vm.name}-nsg").as_dict()
    body["properties"]["securityRules"] = [
        r for r in body["properties"]["securityRules"] if r["name"] != nsg_specs.ALTERNATIVE_RULE
    ]
    observed = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, f"{vm.name}-nsg", type(made)(body)
    ).result()
    await asyncio.to_thread(wait_for, lambda: gone(sim, vm.id, port))
    # the operator's diff sees it and its update restores it
    restore = nsg_specs.nsg_update(observed, {"managed-by": "test"}, nsg_specs.SmbPorts(sim.quic_port, port))
    assert restore is not None
    clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, f"{vm.name}-nsg", restore
    ).result()
    await asyncio.to_thread(wait_for, lambda: alternate(sim, vm.id, port))

    # 4. The guest stops listening (drift behind the operator's back): the endpoint closes; the plan re-adds.
    sim.control.set_guest(RESOURCE_GROUP, vm.name, alternativePorts=[])
    await asyncio.to_thread(wait_for, lambda: gone(sim, vm.id, port))
    seen = await asyncio.to_thread(run_ports, clients, vm.name, {})
    again = plan_ports(port, seen)
    assert (
        again is not None and again.add == (port,) and again.parameters() == {"Add": str(port), "Remove": ""}
    )
