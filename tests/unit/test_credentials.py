"""credentials.CredentialClients: one set of Azure clients per credential, rebuilt on rotation."""

from __future__ import annotations

import logging

import pytest

from azure_edition_operator.api.v1alpha1 import TenantCredential
from azure_edition_operator.azure.clients import AzureClients
from azure_edition_operator.azure.settings import AzureSettings
from azure_edition_operator.credentials import CredentialClients, fingerprint
from azure_edition_operator.tenancy import NotPermitted

SECRET = "s3cr3t-value-never-logged"
IDS = {"tenantId": "10000000-0000-4000-8000-000000000001", "clientId": "20000000-0000-4000-8000-000000000002"}


def cred(name: str) -> TenantCredential:
    return TenantCredential.model_validate({"clientSecret": {"secretName": name}})


@pytest.fixture
def secrets() -> dict[str, dict[str, str]]:
    return {"tenant-a": {**IDS, "clientSecret": SECRET}, "tenant-b": {**IDS, "clientSecret": "other"}}


@pytest.fixture
async def registry(secrets):
    settings = AzureSettings(arm_endpoint="https://arm.invalid")

    async def load(name: str) -> dict[str, str]:
        return dict(secrets.get(name, {}))

    default = AzureClients(settings, credential=None, owns_credential=False)  # type: ignore[arg-type]
    reg = CredentialClients(settings, default, load)
    yield reg
    await reg.close()


async def test_each_credential_has_its_own_clients_and_they_are_cached(registry, caplog):
    caplog.set_level(logging.DEBUG)
    a1 = await registry.for_credential(cred("tenant-a"))
    a2 = await registry.for_credential(cred("tenant-a"))
    b = await registry.for_credential(cred("tenant-b"))
    assert a1 is a2 and a1 is not b and b is not registry.default
    assert await registry.for_credential(None) is registry.default
    assert a1.for_subscription("x") is not b.for_subscription("x")  # no shared throttle gate or token
    assert "client-secret:tenant-a" in caplog.text and SECRET not in caplog.text


async def test_a_rotated_secret_builds_new_clients(registry, secrets):
    before = await registry.for_credential(cred("tenant-a"))
    secrets["tenant-a"]["clientSecret"] = "rotated"
    after = await registry.for_credential(cred("tenant-a"))
    assert after is not before


async def test_a_missing_or_incomplete_secret_is_not_permitted_and_names_no_value(registry, secrets):
    with pytest.raises(NotPermitted, match="tenantId, clientId, clientSecret"):
        await registry.for_credential(cred("absent"))
    secrets["half"] = {"clientSecret": SECRET}
    with pytest.raises(NotPermitted, match="tenantId, clientId") as err:
        await registry.for_credential(cred("half"))
    assert SECRET not in str(err.value)


def test_fingerprint_changes_with_content_and_hides_it():
    one = fingerprint({"clientSecret": SECRET})
    assert one != fingerprint({"clientSecret": "x"}) and SECRET not in one and len(one) == 16
