"""The Key Vault VM extension in the simulator, through the real SDKs: a VM's system-assigned identity,
the extension's PUT and instance view, a 403 naming the vault and role while the identity has no role,
healing at the next poll once granted, and a renewed version reaching the guest's LocalMachine\\My."""

from __future__ import annotations

import time

import pytest
from azure.keyvault.certificates import CertificateClient, CertificatePolicy
from azure.mgmt.compute import models as cm

from azure_edition_simulator import Simulator

from .conftest import RESOURCE_GROUP, Arm, Clients, secret_credential

pytestmark = pytest.mark.integration

SERVER = "fs01.branch-a.contoso.com"
POLL_SECONDS = 1


def extension_status(clients: Clients, vm: str) -> str:
    view = clients.compute.virtual_machines.get(RESOURCE_GROUP, vm, expand="instanceView").instance_view
    ext = next(e for e in view.extensions if e.name == "KeyVaultForWindows")
    return f"{ext.statuses[0].code}: {ext.statuses[0].message}"


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_key_vault_extension_installs_new_versions_once_the_identity_may_read(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    vault = sim.control.key_vault("kv-ext", create=True)
    certificates = CertificateClient(vault["vaultUrl"], secret_credential(sim), verify_challenge_resource=False,
                                     connection_verify=str(sim.ca_path))  # fmt: skip
    certificates.begin_create_certificate(
        "fs01-smb", CertificatePolicy(issuer_name="Self", subject=f"CN={SERVER}", san_dns_names=[SERVER])
    ).result()
    vm = arm.vm()
    vm = clients.compute.virtual_machines.begin_update(
        RESOURCE_GROUP,
        vm.name,
        cm.VirtualMachineUpdate(identity=cm.VirtualMachineIdentity(type="SystemAssigned")),
    ).result()
    principal = vm.identity.principal_id
    assert principal
    settings = {"secretsManagementSettings": {
        "pollingIntervalInS": str(POLL_SECONDS), "certificateStoreName": "MY", "certificateStoreLocation": "LocalMachine",
        "observedCertificates": [f"{vault['vaultUrl']}/secrets/fs01-smb"],
    }}  # fmt: skip
    clients.compute.virtual_machine_extensions.begin_create_or_update(
        RESOURCE_GROUP, vm.name, "KeyVaultForWindows",
        cm.VirtualMachineExtension(
            location=vm.location,
            properties=cm.VirtualMachineExtensionProperties(
                publisher="Microsoft.Azure.KeyVault", type="KeyVaultForWindows", type_handler_version="3.0",
                auto_upgrade_minor_version=True, settings=settings,
            ),
        ),
    ).result()  # fmt: skip
    denied = wait_for(lambda: (s := extension_status(clients, vm.name)) and "403" in s and s)
    assert "kv-ext" in denied and "Key Vault Secrets User" in denied and principal in denied
    assert sim.control.guest(RESOURCE_GROUP, vm.name)["certStore"] == []

    sim.control.grant_key_vault_role("kv-ext", principal)
    first = sim.control.key_vault("kv-ext")["certificates"]["fs01-smb"][-1]["thumbprint"]
    wait_for(lambda: first in extension_status(clients, vm.name), timeout=POLL_SECONDS * 5)
    store = sim.control.guest(RESOURCE_GROUP, vm.name)["certStore"]
    assert [(c["thumbprint"], c["hasPrivateKey"]) for c in store] == [(first, True)]

    renewed = sim.control.renew_key_vault_certificate("kv-ext", "fs01-smb")["thumbprint"]
    wait_for(lambda: any(c["thumbprint"] == renewed for c in sim.control.guest(RESOURCE_GROUP, vm.name)["certStore"]),
             timeout=POLL_SECONDS * 5)  # fmt: skip
    got = clients.compute.virtual_machine_extensions.get(RESOURCE_GROUP, vm.name, "KeyVaultForWindows")
    assert (
        got.provisioning_state == "Succeeded"
        and got.settings["secretsManagementSettings"]["pollingIntervalInS"]
    )
