"""The simulated Key Vault through azure-keyvault-certificates: the challenge and the vault audience,
versions, the policy, renewal (the AutoRenew action firing), Azure RBAC for another principal."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.keyvault.certificates import CertificateClient, CertificatePolicy
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from azure_edition_simulator import Simulator

from .conftest import secret_credential

pytestmark = pytest.mark.integration

SERVER = "fs01.branch-a.contoso.com"


def client(sim: Simulator, vault_url: str, credential=None) -> CertificateClient:
    return CertificateClient(
        vault_url, credential or secret_credential(sim), verify_challenge_resource=False,
        connection_verify=str(sim.ca_path),
    )  # fmt: skip


def thumbprint(cer: bytes) -> str:
    return x509.load_der_x509_certificate(cer).fingerprint(hashes.SHA1()).hex().upper()


def test_create_renew_and_versions_through_the_sdk(sim: Simulator) -> None:
    vault = sim.control.key_vault("kv-branch", create=True)
    certificates = client(sim, vault["vaultUrl"])
    policy = CertificatePolicy(
        issuer_name="Self", subject=f"CN={SERVER}", san_dns_names=[SERVER], validity_in_months=12
    )
    created = certificates.begin_create_certificate("fs01-smb", policy).result()
    first = certificates.get_certificate("fs01-smb")
    assert first.cer == created.cer and thumbprint(first.cer) == sim.control.key_vault("kv-branch")["certificates"][
        "fs01-smb"][0]["thumbprint"]  # fmt: skip
    leaf = x509.load_der_x509_certificate(first.cer)
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [SERVER]  # fmt: skip
    assert [a.action for a in certificates.get_certificate_policy("fs01-smb").lifetime_actions] == [
        "AutoRenew"
    ]

    renewed = sim.control.renew_key_vault_certificate("kv-branch", "fs01-smb")
    latest = certificates.get_certificate("fs01-smb")
    assert thumbprint(latest.cer) == renewed["thumbprint"] != thumbprint(first.cer)
    versions = list(certificates.list_properties_of_certificate_versions("fs01-smb"))
    assert len(versions) == 2
    older = certificates.get_certificate_version("fs01-smb", first.properties.version)
    assert older.cer == first.cer


def test_another_principal_needs_a_role_on_the_vault(sim: Simulator) -> None:
    vault = sim.control.key_vault("kv-rbac", create=True)
    admin = client(sim, vault["vaultUrl"])
    admin.begin_create_certificate("c", CertificatePolicy.get_default()).result()
    vm = sim.control.add_principal(displayName="vm-identity")
    credential = ClientSecretCredential(
        sim.tenant_id, vm["clientId"], vm["clientSecret"], authority=sim.authority_host,
        disable_instance_discovery=True, connection_verify=str(sim.ca_path),
    )  # fmt: skip
    reader = client(sim, vault["vaultUrl"], credential)
    with pytest.raises(HttpResponseError) as err:
        reader.get_certificate("c")
    assert err.value.status_code == 403 and "Assignment: not found" in str(err.value)
    sim.control.grant_key_vault_role("kv-rbac", vm["objectId"])
    assert reader.get_certificate("c").cer
    sim.control.revoke_key_vault_roles("kv-rbac", vm["objectId"])
    with pytest.raises(HttpResponseError):
        reader.get_certificate("c")
