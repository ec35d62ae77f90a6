"""SMB over QUIC client access control in the simulated guest, judged by its real QUIC endpoint: the
operator's script applies require/audit/grant/block/revoke through Run Command (real SDK), and a client
presenting a blocked (or ungranted) certificate is refused while an allowed one gets through."""

from __future__ import annotations

import asyncio
import json
import ssl
import tempfile
from pathlib import Path

import pytest
from aioquic.asyncio import connect
from aioquic.quic.configuration import QuicConfiguration
from azure.mgmt.compute import models as cm
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from azure_edition_operator.checks.smb_guest import CLIENT_ACCESS_SCRIPT, parse_guest_state
from azure_edition_simulator import Simulator, certs

from .conftest import RESOURCE_GROUP, Arm, Clients
from .test_simulator_quic import endpoint_for, wait_for

pytestmark = pytest.mark.integration

SERVER = "fs01.branch-a.contoso.com"


def client_certificate(name: str) -> certs.IssuedCertificate:
    spec = certs.CertificateSpec.from_dict({"commonName": name, "dnsNames": [name], "expiresInDays": 30})
    return certs.issue_certificate(spec)


def client_configuration(client: certs.IssuedCertificate | None) -> QuicConfiguration:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=["smb"], verify_mode=ssl.CERT_NONE,
                                      server_name=SERVER)  # fmt: skip
    if client is not None:
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "c.pem").write_text(client.cert_pem)
            Path(tmp, "k.pem").write_text(client.key_pem)
            configuration.load_cert_chain(Path(tmp, "c.pem"), Path(tmp, "k.pem"))
    return configuration


async def attempt(host: str, port: int, client: certs.IssuedCertificate | None) -> str:
    """Connect with ALPN smb (and a client certificate); 'admitted' or why the server closed."""
    configuration = client_configuration(client)
    async with asyncio.timeout(5), connect(host, port, configuration=configuration) as protocol:
        await protocol.ping()  # a round trip after the handshake: refused clients are closed by then
        return "admitted"


async def verdict(host: str, port: int, client: certs.IssuedCertificate | None) -> str:
    try:
        return await attempt(host, port, client)
    except ConnectionError as err:
        return f"refused: {err}"


def sha256(issued: certs.IssuedCertificate) -> str:
    return x509.load_pem_x509_certificate(issued.cert_pem.encode()).fingerprint(hashes.SHA256()).hex().upper()


def run(clients: Clients, vm: str, parameters: dict[str, str]) -> dict:
    body = cm.VirtualMachineRunCommand(
        location="westeurope",
        source=cm.VirtualMachineRunCommandScriptSource(script="\n".join(CLIENT_ACCESS_SCRIPT)),
        parameters=[cm.RunCommandInputParameter(name=k, value=v) for k, v in parameters.items()],
    )
    clients.compute.virtual_machine_run_commands.begin_create_or_update(
        RESOURCE_GROUP, vm, "access", body
    ).result()
    done = clients.compute.virtual_machine_run_commands.get_by_virtual_machine(
        RESOURCE_GROUP, vm, "access", expand="instanceView"
    )
    assert done.instance_view.execution_state == "Succeeded", done.instance_view.error
    return json.loads(done.instance_view.output)


async def test_blocked_and_ungranted_clients_are_refused(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = await asyncio.to_thread(arm.vm)
    sim.control.set_certificate(RESOURCE_GROUP, vm.name, SERVER, {"expiresInDays": 90})
    host = (await asyncio.to_thread(wait_for, lambda: endpoint_for(sim, vm.id)))["host"]
    good, bad, stranger = (
        client_certificate("good.contoso.com"),
        client_certificate("bad"),
        client_certificate("x"),
    )
    assert await verdict(host, sim.quic_port, None) == "admitted"  # nobody is asked yet

    issuer = x509.load_pem_x509_certificate(good.cert_pem.encode()).issuer.rfc4514_string()
    state = await asyncio.to_thread(run, clients, vm.name, {
        "ServerName": SERVER, "Require": "true", "Audit": "true",
        "Grant": json.dumps([{"type": "ISSUER", "identifier": issuer}]),
        "Block": json.dumps([{"type": "SHA256", "identifier": sha256(bad)}]), "Revoke": "[]",
    })  # fmt: skip
    parsed = parse_guest_state(json.dumps(state))
    mapping = parsed.mapping_for(SERVER)
    assert mapping.require_client_authentication and parsed.audit_client_access
    assert {(e.type, e.action) for e in mapping.client_access} == {("ISSUER", "Allow"), ("SHA256", "Deny")}

    assert await verdict(host, sim.quic_port, good) == "admitted"
    assert (await verdict(host, sim.quic_port, bad)).startswith("refused")
    assert (await verdict(host, sim.quic_port, None)).startswith("refused")
    # the same issuer, so only the block list keeps "bad" out; revoking the block admits it
    await asyncio.to_thread(run, clients, vm.name, {
        "ServerName": SERVER, "Require": "true", "Audit": "false", "Grant": "[]", "Block": "[]",
        "Revoke": json.dumps([{"type": "SHA256", "identifier": sha256(bad)}]),
    })  # fmt: skip
    assert await verdict(host, sim.quic_port, bad) == "admitted"
    assert await verdict(host, sim.quic_port, stranger) == "admitted"  # same issuer: granted by ISSUER
