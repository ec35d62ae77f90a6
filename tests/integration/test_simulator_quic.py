"""Real QUIC: a VM with SMB over QUIC serves its mapped certificate on the address ARM reports for it."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest
from aioquic.asyncio import connect
from aioquic.quic.configuration import QuicConfiguration
from azure.mgmt.compute import models as cm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from azure_edition_simulator import Simulator

from .conftest import RESOURCE_GROUP, Arm, Clients

pytestmark = pytest.mark.integration

SERVER_NAME = "fs01.branch-a.contoso.com"


async def handshake(
    host: str, port: int, server_name: str = SERVER_NAME, wait_seconds: float = 3.0
) -> tuple[x509.Certificate, str | None]:
    """A QUIC/TLS 1.3 handshake with ALPN smb; returns the server's leaf certificate and the ALPN."""
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=["smb"], verify_mode=ssl.CERT_NONE, server_name=server_name
    )
    async with asyncio.timeout(wait_seconds):
        async with connect(host, port, configuration=configuration, wait_connected=True) as client:
            tls = client._quic.tls  # aioquic has no public accessor for the peer certificate
            return tls._peer_certificate, tls.alpn_negotiated


def thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # Windows' certificate thumbprint


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def endpoint_for(sim: Simulator, vm_id: str) -> dict[str, Any] | None:
    return next((e for e in sim.control.quic()["endpoints"] if e["vmId"].lower() == vm_id.lower()), None)


async def test_quic_endpoint_serves_the_mapped_certificate_on_the_public_ip(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    vm = await asyncio.to_thread(arm.vm)
    mapping = sim.control.set_certificate(RESOURCE_GROUP, vm.name, SERVER_NAME, {"expiresInDays": 30})
    pip = clients.network.public_ip_addresses.get(RESOURCE_GROUP, f"{vm.name}-pip")
    endpoint = await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id))
    assert endpoint["host"] == pip.ip_address
    assert endpoint["port"] == sim.quic_port
    cert, alpn = await handshake(pip.ip_address, sim.quic_port)
    assert alpn == "smb"
    assert thumbprint(cert) == mapping["thumbprint"]
    assert cert.not_valid_after_utc.isoformat() == mapping["notAfter"]
    assert SERVER_NAME in cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


async def test_without_public_ip_the_private_ip_serves_and_renewal_changes_the_certificate(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    vm = await asyncio.to_thread(arm.vm, public_ip=False)
    sim.control.set_certificate(RESOURCE_GROUP, vm.name, SERVER_NAME, {"expiresInDays": 5})
    nic = clients.network.network_interfaces.get(RESOURCE_GROUP, f"{vm.name}-nic")
    private_ip = nic.ip_configurations[0].private_ip_address
    assert (await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id)))["host"] == private_ip
    old, _ = await handshake(private_ip, sim.quic_port)
    renewed = sim.control.set_certificate(RESOURCE_GROUP, vm.name, SERVER_NAME, {"expiresInDays": 365})
    assert renewed["thumbprint"] != thumbprint(old)
    await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id)["thumbprint"] == renewed["thumbprint"])
    new, _ = await handshake(private_ip, sim.quic_port)
    assert thumbprint(new) == renewed["thumbprint"]


async def test_disabling_smb_over_quic_stops_the_endpoint_and_run_command_re_enables_it(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    vm = await asyncio.to_thread(arm.vm)
    sim.control.set_certificate(RESOURCE_GROUP, vm.name, SERVER_NAME, {"expiresInDays": 30})
    host = (await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id)))["host"]
    sim.control.set_guest(RESOURCE_GROUP, vm.name, enableSmbQuic=False)
    await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id) is None)
    with pytest.raises((TimeoutError, ConnectionError)):
        await handshake(host, sim.quic_port, wait_seconds=0.5)
    request = cm.RunCommandInput(
        command_id="RunPowerShellScript", script=["# azureedition.io/script: smb-quic-enable"]
    )
    await asyncio.to_thread(
        lambda: clients.compute.virtual_machines.begin_run_command(RESOURCE_GROUP, vm.name, request).result()
    )
    await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id))
    cert, _ = await handshake(host, sim.quic_port)
    status = await asyncio.to_thread(
        lambda: clients.compute.virtual_machines.begin_run_command(
            RESOURCE_GROUP,
            vm.name,
            cm.RunCommandInput(
                command_id="RunPowerShellScript", script=["# azureedition.io/script: smb-quic-status"]
            ),
        ).result()
    )
    assert json.loads(status.value[0].message)["mappings"][0]["thumbprint"] == thumbprint(cert)


async def test_deleting_the_vm_stops_its_endpoint(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = await asyncio.to_thread(arm.vm)
    sim.control.set_certificate(RESOURCE_GROUP, vm.name, SERVER_NAME, {"expiresInDays": 30})
    await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id))
    await asyncio.to_thread(
        lambda: clients.compute.virtual_machines.begin_delete(RESOURCE_GROUP, vm.name).result()
    )
    await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id) is None)


async def test_guest_defaults_give_new_vms_a_certificate_named_by_tag(sim: Simulator, arm: Arm) -> None:
    sim.control.set_guest_defaults(enableSmbQuic=True, certificate={"expiresInDays": 90})
    vm = await asyncio.to_thread(
        lambda: arm.vm(tags={"azureedition.io_smb-over-quic-server-name": "fs02.branch-a.contoso.com"})
    )
    mapping = sim.control.guest(RESOURCE_GROUP, vm.name)["mappings"][0]
    assert mapping["name"] == "fs02.branch-a.contoso.com"
    endpoint = await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id))
    cert, _ = await handshake(endpoint["host"], sim.quic_port, "fs02.branch-a.contoso.com")
    assert thumbprint(cert) == mapping["thumbprint"]
    assert cert.public_bytes(serialization.Encoding.PEM)
