"""Two simulators on one machine never see each other's guests (each claims its own loopback block)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient

from azure_edition_simulator import Simulator
from azure_edition_simulator.loopback import CLAIM_PORT, Block, BlockTaken, claim_block
from azure_edition_simulator.server import control_allowed

from .conftest import RESOURCE_GROUP, Arm, Clients, client_kwargs, secret_credential
from .test_simulator_quic import SERVER_NAME, endpoint_for, handshake, thumbprint, wait_for

pytestmark = pytest.mark.integration


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clients(sim: Simulator) -> Clients:
    credential, kwargs = secret_credential(sim), client_kwargs(sim)
    return Clients(
        ComputeManagementClient(credential, sim.subscription_id, **kwargs),
        NetworkManagementClient(credential, sim.subscription_id, **kwargs),
    )


def test_a_claimed_block_is_refused_to_the_next_claimant() -> None:
    first, held = claim_block(quic_port=0)
    try:
        with pytest.raises(OSError):  # proved by binding: the claim socket is taken
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind((first.claim_address, CLAIM_PORT))
        second, held_too = claim_block(quic_port=0, preferred=first.cidr)
        held_too.close()
        assert second != first
    finally:
        held.close()
    again, held = claim_block(quic_port=0, preferred=first.cidr)  # released: available again
    held.close()
    assert again == first


def test_block_parsing_refuses_what_is_not_a_loopback_16() -> None:
    assert Block.parse("127.40.0.0/16").subnet(1) == "127.40.1.0/24"
    for bad in ("10.0.0.0/16", "127.40.0.0/24"):
        with pytest.raises(ValueError):
            Block.parse(bad)
    assert issubclass(BlockTaken, OSError)


async def test_two_simulators_side_by_side_serve_only_their_own_guests() -> None:
    port = _free_udp_port()  # the same QUIC port for both, as two stacks on :443 would have
    fast = {"provisioning_seconds": 0, "retry_after_seconds": 0, "quic_port": port}
    async with Simulator.start(**fast) as one, Simulator.start(**fast) as two:
        assert one.loopback_block != two.loopback_block
        seen = {}
        for sim in (one, two):
            clients = _clients(sim)
            try:
                vm = await asyncio.to_thread(Arm(sim, clients).vm)
                mapping = sim.control.set_certificate(RESOURCE_GROUP, vm.name, SERVER_NAME, {"validDays": 30})
                endpoint = await asyncio.to_thread(wait_for, lambda s=sim, v=vm: endpoint_for(s, v.id))
                assert Block.parse(sim.loopback_block).contains(endpoint["host"])
                seen[sim.loopback_block] = (endpoint["host"], mapping["thumbprint"])
            finally:
                clients.compute.close()
                clients.network.close()
        (host_one, thumb_one), (host_two, thumb_two) = seen[one.loopback_block], seen[two.loopback_block]
        assert host_one != host_two and thumb_one != thumb_two
        # Each address answers with its own simulator's certificate, never the other's.
        cert_one, _ = await handshake(host_one, port)
        cert_two, _ = await handshake(host_two, port)
        assert thumbprint(cert_one) == thumb_one
        assert thumbprint(cert_two) == thumb_two
        assert one.control.quic()["lastError"] is None and two.control.quic()["lastError"] is None
        assert [e["host"] for e in one.control.quic()["endpoints"]] == [host_one]
        assert [e["host"] for e in two.control.quic()["endpoints"]] == [host_two]


def test_a_persisted_world_whose_block_is_taken_is_renumbered_into_the_new_one() -> None:
    from azure_edition_simulator.world import World

    world = World.seeded(loopback_block="127.40.0.0/16")
    moved = world.moved_to("127.41.0.0/16")
    prefixes = sorted(s["properties"]["addressPrefix"] for s in moved.subnets.values())
    assert prefixes == ["127.41.1.0/24", "127.41.2.0/24", "127.41.3.0/24"]  # servers, extended, GatewaySubnet
    assert moved.allocate_public_ip().startswith("127.41.100.")
    assert moved.next_free_subnet_prefix() == "127.41.10.0/24"


@pytest.mark.parametrize(
    ("remote", "authorization", "token", "allowed"),
    [
        ("127.0.0.1", None, None, True),  # this machine, or kubectl port-forward into the pod
        ("127.0.100.7", None, None, True),
        ("::1", None, None, True),
        ("::ffff:127.0.0.1", None, None, True),
        ("10.244.0.12", None, None, False),  # another pod: no token configured, nothing to present
        ("10.244.0.12", "Bearer s3cret", None, False),
        ("10.244.0.12", None, "s3cret", False),
        ("10.244.0.12", "Bearer wrong", "s3cret", False),
        ("10.244.0.12", "s3cret", "s3cret", False),
        ("10.244.0.12", "Bearer s3cret", "s3cret", True),
        ("::ffff:10.0.0.1", "Bearer s3cret", "s3cret", True),
        (None, None, None, False),
        ("not-an-address", None, None, False),
    ],
)
def test_the_control_api_answers_loopback_or_the_token(remote, authorization, token, allowed):
    """It mints tokens and shows the client secret: a pod next to the in-cluster simulator must not."""
    assert control_allowed(remote, authorization, token) is allowed
