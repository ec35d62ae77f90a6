# ruff: noqa: F811 (the fixtures imported from test_provisioning are parameters here)
"""SMB over QUIC rotation from a TLS Secret, through a check round against the ARM simulator with the real
aio SDKs and real QUIC: the PFX goes in as a managed Run Command's protected parameters, the mapping is
re-pointed, the replaced one removed, and the probe confirms clients get the new certificate; what a
rotation costs in Azure calls; no key material in Events, status, logs or what ARM returns."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import re

import pytest

from azure_edition_operator.checks.runner import CheckMemory, run_checks
from azure_edition_operator.checks.smb_rotator import IMPORT_COMMAND
from azure_edition_operator.kube import SecretUnavailable
from azure_edition_simulator import certs
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


def tls_secret(days: int = 90) -> tuple[dict[str, str], certs.IssuedCertificate]:
    issued = certs.issue_certificate(
        certs.CertificateSpec.from_dict({"commonName": SERVER, "expiresInDays": days})
    )
    return {
        "tls.crt": base64.b64encode(issued.fullchain_pem.encode()).decode(),
        "tls.key": base64.b64encode(issued.key_pem.encode()).decode(),
    }, issued


class Secrets:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {}

    async def read(self, name: str) -> dict[str, str]:
        if name not in self.data:
            raise SecretUnavailable(f"Secret ns/{name} does not exist")
        return self.data[name]


def smb_spec(world: World):
    return world.spec(
        capabilities=["SMBOverQUIC"], hotpatch=None, azure={"publicIP": True},
        smbOverQuic={"serverName": SERVER, "port": world.sim.quic_port, "certificate": {"secretRef": {"name": "fs01-tls"}}},
    )  # fmt: skip


async def test_an_observed_round_probes_but_rotates_and_runs_nothing(world: World, clients) -> None:
    """Observe only: the QUIC probe reads the served certificate; no Run Command (Reader suffices), no
    rotation from the Secret, no client access, although each would be due."""
    spec = world.spec(
        capabilities=["SMBOverQUIC"], hotpatch=None, azure={"publicIP": True},
        smbOverQuic={"serverName": SERVER, "port": world.sim.quic_port, "certificate": {"secretRef": {"name": "fs01-tls"}},
                     "clientAccess": {"requireClientCertificate": True}},
    )  # fmt: skip
    observed = await ensure(clients, world, spec, instance_view=True)
    vm_name = identity_for(world, spec).vm_name
    old = world.control.set_certificate(spec.azure.resource_group, vm_name, SERVER, {"expiresInDays": 20})
    secrets_, events = Secrets(), []
    secrets_.data["fs01-tls"], _ = tls_secret()
    since = world.mark()

    result = await run_checks(
        spec=spec, namespace="ns", name="x", compute=clients.compute(spec.azure.subscription_id), vm_name=vm_name,
        memory=CheckMemory(3600.0, 1.0), emit=lambda *e: events.append(e), now=dt.datetime.now(dt.UTC), owner=OWNER,
        known_vm=observed.to_status(), read_secret=secrets_.read, observe=True,
    )  # fmt: skip

    assert [r for r in world.arm_requests(since) if r[0] != "GET"] == [] and events == []
    assert result.smb_over_quic["thumbprint"] == old["thumbprint"]  # the probe still reads what is served
    assert "observe only" in result.conditions[0].message


async def test_a_secret_rotates_the_served_certificate(world: World, clients, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    spec = smb_spec(world)
    observed = await ensure(clients, world, spec, instance_view=True)
    vm_name = identity_for(world, spec).vm_name
    old = world.control.set_certificate(spec.azure.resource_group, vm_name, SERVER, {"expiresInDays": 20})
    secrets_, events, memory = Secrets(), [], CheckMemory(3600.0, 1.0)
    first, first_issued = tls_secret()
    secrets_.data["fs01-tls"] = first

    async def round_():
        return await run_checks(
            spec=spec, namespace="ns", name="x", compute=clients.compute(spec.azure.subscription_id),
            vm_name=vm_name, memory=memory, emit=lambda *e: events.append(e), now=dt.datetime.now(dt.UTC),
            owner=OWNER, known_vm=observed.to_status(), read_secret=secrets_.read,
        )  # fmt: skip

    since = world.mark()
    result = await round_()
    smb = result.smb_over_quic
    assert smb["thumbprint"] == first_issued.thumbprint, smb
    assert smb["certificateSource"] == "Secret/fs01-tls" and smb["lastRotated"]
    assert [e[1] for e in events if e[1] != "InGuestCheckFailed"] == ["SMBOverQUICCertificateRotated"], events
    assert f"replacing {old['thumbprint']}" in events[-1][2]
    mappings = world.control.guest(spec.azure.resource_group, vm_name)["mappings"]
    assert [(m["name"], m["thumbprint"]) for m in mappings] == [(SERVER, first_issued.thumbprint)]
    first_rotation = world.writes(since)
    assert first_rotation.count(("PUT", "VirtualMachineRunCommands_CreateOrUpdate")) == 2, first_rotation

    # steady state: the served certificate is the Secret's; no Run Command, no write
    since = world.mark()
    events.clear()
    await round_()
    assert world.writes(since) == [] and events == []

    # renewal (cert-manager writes a new certificate into the same Secret): one rotation more
    second, second_issued = tls_secret(180)
    secrets_.data["fs01-tls"] = second
    since = world.mark()
    result = await round_()
    assert result.smb_over_quic["thumbprint"] == second_issued.thumbprint
    assert [e[1] for e in events] == ["SMBOverQUICCertificateRotated"]
    mappings = world.control.guest(spec.azure.resource_group, vm_name)["mappings"]
    assert [(m["name"], m["thumbprint"]) for m in mappings] == [(SERVER, second_issued.thumbprint)]
    calls = world.arm_requests(since)
    print(f"\nAzure calls for one rotation: {len(calls)} ({len(world.writes(since))} writes): {calls}")

    # what ARM returns of the import command, and everything the operator said, carries no key material
    command = await clients.compute(
        spec.azure.subscription_id
    ).virtual_machine_run_commands.get_by_virtual_machine(
        spec.azure.resource_group, vm_name, IMPORT_COMMAND, expand="instanceView"
    )
    said = json.dumps([events, result.smb_over_quic, command.as_dict()], default=str) + caplog.text
    for issued, data in ((first_issued, first), (second_issued, second)):
        key_body = "".join(issued.key_pem.splitlines()[1:-1])
        assert key_body[:40] not in said and data["tls.key"][:40] not in said
    assert not command.protected_parameters
    assert command.instance_view.execution_state == "Succeeded"
    # the PFX (DER, base64 "MII...") would be a long base64 run; no certificate or key travels in the clear
    assert re.search(r"MII[A-Za-z0-9+/]{100,}", said) is None


async def test_an_unusable_secret_is_told_once_and_nothing_is_mapped(world: World, clients) -> None:
    spec = smb_spec(world)
    observed = await ensure(clients, world, spec, instance_view=True)
    vm_name = identity_for(world, spec).vm_name
    world.control.set_certificate(spec.azure.resource_group, vm_name, SERVER, {"expiresInDays": 200})
    secrets_, events, memory = Secrets(), [], CheckMemory(3600.0, 1.0)
    wrong, _ = tls_secret()
    wrong["tls.key"] = tls_secret()[0]["tls.key"]
    secrets_.data["fs01-tls"] = wrong
    for _ in range(2):
        result = await run_checks(
            spec=spec, namespace="ns", name="x", compute=clients.compute(spec.azure.subscription_id),
            vm_name=vm_name, memory=memory, emit=lambda *e: events.append(e), now=dt.datetime.now(dt.UTC),
            owner=OWNER, known_vm=observed.to_status(), read_secret=secrets_.read,
        )  # fmt: skip
    smb_condition = result.conditions[-1]
    assert (
        "certificate source Secret/fs01-tls cannot be used: key 'tls.key' does not belong"
        in smb_condition.message
    )
    assert [e[1] for e in events] == ["SMBOverQUICCertificateNotRotated"]
    assert world.control.guest(spec.azure.resource_group, vm_name)["certStore"][0]["hasPrivateKey"]
    assert len(world.control.guest(spec.azure.resource_group, vm_name)["certStore"]) == 1


async def test_key_vault_source_role_condition_heals_then_renewal_is_served(world: World, clients) -> None:
    from azure.keyvault.certificates import CertificateClient, CertificatePolicy

    from tests.integration.conftest import secret_credential

    vault = world.control.key_vault("kv-smb", create=True)
    certificates = CertificateClient(vault["vaultUrl"], secret_credential(world.sim),
                                     verify_challenge_resource=False, connection_verify=str(world.sim.ca_path))  # fmt: skip
    certificates.begin_create_certificate(
        "fs01-smb", CertificatePolicy(issuer_name="Self", subject=f"CN={SERVER}", san_dns_names=[SERVER])
    ).result()
    secret_url = f"{vault['vaultUrl']}/secrets/fs01-smb"
    spec = world.spec(
        capabilities=["SMBOverQUIC"], hotpatch=None, azure={"publicIP": True},
        smbOverQuic={"serverName": SERVER, "port": world.sim.quic_port,
                     "certificate": {"keyVault": {"secretUrl": secret_url, "pollingIntervalSeconds": 1}}},
    )  # fmt: skip
    observed = await ensure(clients, world, spec, instance_view=True)
    vm_name = identity_for(world, spec).vm_name
    principal = (observed.model.identity.principal_id if observed.model.identity else None) or ""
    assert principal, "the VM got a system-assigned identity for the Key Vault extension"
    events, memory = [], CheckMemory(3600.0, 1.0)

    async def round_():
        return await run_checks(
            spec=spec, namespace="ns", name="x", compute=clients.compute(spec.azure.subscription_id),
            vm_name=vm_name, memory=memory, emit=lambda *e: events.append(e), now=dt.datetime.now(dt.UTC),
            owner=OWNER, known_vm=observed.to_status(),
        )  # fmt: skip

    await round_()  # installs the extension
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        result = await round_()
        message = result.conditions[-1].message
        if "Key Vault Secrets User" in message or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.3)
    assert "kv-smb" in message or vault["vaultUrl"].split("://")[1] in message, message
    assert "'Key Vault Secrets User' on the Key Vault" in message and principal in message, message
    assert [e[1] for e in events].count("SMBOverQUICCertificateNotRotated") == 1

    world.control.grant_key_vault_role("kv-smb", principal)
    first = world.control.key_vault("kv-smb")["certificates"]["fs01-smb"][-1]["thumbprint"]
    result = await _until(round_, lambda r: (r.smb_over_quic or {}).get("thumbprint") == first)
    assert "Key Vault Secrets User" not in result.conditions[-1].message
    assert result.smb_over_quic["certificateSource"] == f"KeyVault/{secret_url}"
    assert "SMBOverQUICCertificateRotated" in [e[1] for e in events]

    renewed = world.control.renew_key_vault_certificate("kv-smb", "fs01-smb")["thumbprint"]
    result = await _until(round_, lambda r: (r.smb_over_quic or {}).get("thumbprint") == renewed)
    mappings = world.control.guest(spec.azure.resource_group, vm_name)["mappings"]
    assert [(m["name"], m["thumbprint"]) for m in mappings] == [(SERVER, renewed)]


async def _until(round_, predicate, within: float = 15.0):
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await round_()
        if predicate(result) or asyncio.get_running_loop().time() > deadline:
            assert predicate(result), (result.smb_over_quic, result.conditions[-1].message)
            return result
        await asyncio.sleep(0.3)


async def test_client_access_is_applied_drift_corrected_and_a_blocked_client_refused(
    world: World, clients
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from tests.integration.test_simulator_client_access import client_certificate, verdict

    allowed, blocked = client_certificate("laptop-1"), client_certificate("laptop-2")

    def sha(issued) -> str:
        return x509.load_pem_x509_certificate(issued.cert_pem.encode()).fingerprint(hashes.SHA256()).hex()

    spec = world.spec(
        capabilities=["SMBOverQUIC"], hotpatch=None, azure={"publicIP": True},
        smbOverQuic={"serverName": SERVER, "port": world.sim.quic_port, "clientAccess": {
            "allow": [{"sha256": sha(allowed)}], "block": [{"sha256": sha(blocked)}], "audit": True}},
    )  # fmt: skip
    observed = await ensure(clients, world, spec, instance_view=True)
    assert observed.image_ref.windows_server_version == "2025"
    vm_name = identity_for(world, spec).vm_name
    world.control.set_certificate(spec.azure.resource_group, vm_name, SERVER, {"expiresInDays": 90})
    events, memory = [], CheckMemory(0.0, 0.0)  # every round looks inside (drift is seen at once)

    async def round_():
        return await run_checks(
            spec=spec, namespace="ns", name="x", compute=clients.compute(spec.azure.subscription_id),
            vm_name=vm_name, memory=memory, emit=lambda *e: events.append(e), now=dt.datetime.now(dt.UTC),
            owner=OWNER, known_vm=observed.to_status(),
        )  # fmt: skip

    await round_()
    assert [e[1] for e in events].count("SMBOverQUICClientAccessApplied") == 1, events
    access = world.control.guest(spec.azure.resource_group, vm_name)["clientAccess"][SERVER]
    assert access["require"] and {(e["identifier"], e["action"]) for e in access["entries"]} == {
        (sha(allowed).upper(), "Allow"),
        (sha(blocked).upper(), "Deny"),
    }
    host = observed.to_status()["publicIPAddress"]
    assert await verdict(host, world.sim.quic_port, allowed) == "admitted"
    assert (await verdict(host, world.sim.quic_port, blocked)).startswith("refused")

    since = world.mark()
    await round_()  # steady: nothing to apply
    assert ("PUT", "VirtualMachineRunCommands_CreateOrUpdate") not in world.writes(since)

    # drift behind the operator's back: the block entry revoked, the requirement switched off
    world.control.set_guest(spec.azure.resource_group, vm_name, clientAccess={SERVER: {"require": False, "entries": [
        {"type": "SHA256", "identifier": sha(allowed).upper(), "action": "Allow"}]}})  # fmt: skip
    assert await verdict(host, world.sim.quic_port, blocked) == "admitted"
    await round_()
    corrected = [e for e in events if e[1] == "SMBOverQUICClientAccessCorrected"]
    assert len(corrected) == 1 and "RequireClientAuthentication False -> True" in corrected[0][2], events
    assert (await verdict(host, world.sim.quic_port, blocked)).startswith("refused")


async def test_a_dns_label_names_the_public_ip_and_the_smb_condition_says_how_to_reach_it(
    world: World, clients
) -> None:
    smb = {"serverName": SERVER, "port": world.sim.quic_port}
    plain = world.spec(capabilities=["SMBOverQUIC"], hotpatch=None, azure={"publicIP": True}, smbOverQuic=smb)
    observed = await ensure(clients, world, plain)
    assert "fqdn" not in observed.to_status()
    labelled = world.spec(capabilities=["SMBOverQUIC"], hotpatch=None, smbOverQuic=smb,
                          azure={"publicIP": True, "publicIPDnsLabel": "fs01-branch-a"})  # fmt: skip
    since = world.mark()
    observed = await ensure(clients, world, labelled)
    assert world.writes(since) == [("PUT", "PublicIPAddresses_CreateOrUpdate")]  # the label, nothing else
    fqdn = observed.to_status()["fqdn"]
    assert fqdn == f"fs01-branch-a.{labelled.azure.location}.cloudapp.azure.com"
    since = world.mark()
    await ensure(clients, world, labelled)
    assert world.writes(since) == []  # steady state
    vm_name = identity_for(world, labelled).vm_name
    world.control.set_certificate(labelled.azure.resource_group, vm_name, SERVER, {"expiresInDays": 90})
    result = await run_checks(
        spec=labelled, namespace="ns", name="x", compute=clients.compute(labelled.azure.subscription_id),
        vm_name=vm_name, memory=CheckMemory(3600.0, 1.0), emit=lambda *e: None, now=dt.datetime.now(dt.UTC),
        owner=OWNER, known_vm=observed.to_status(),
    )  # fmt: skip
    assert (
        f"the public IP's DNS name is {fqdn}: point {SERVER} at it (a CNAME)" in result.conditions[-1].message
    )
