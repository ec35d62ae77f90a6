"""AZURE_CA_BUNDLE adds to the system trust, as docs/install.md says; it does not replace it.

Two simulators, each with its own CA, and the real Azure SDKs (azure-identity for the token, the
compute client for an ARM read) built the way the operator builds them (``AzureClients.from_settings``).
"The system roots" are what OpenSSL's default verify paths hold: here ``SSL_CERT_FILE`` names simulator
B's CA and ``SSL_CERT_DIR`` an empty directory, so B stands for any public endpoint and A for the one
private CA an installation adds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from azure_edition_operator.azure.clients import AzureClients
from azure_edition_operator.azure.settings import AzureSettings, CredentialMode
from azure_edition_simulator import Simulator

pytestmark = pytest.mark.integration

RESOURCE_GROUP = "rg-branch-a"


@pytest.fixture(scope="module")
def other_simulator():
    """Simulator B: its own CA (a fresh temporary state directory)."""
    with Simulator.start(provisioning_seconds=0, retry_after_seconds=0, quic_port=0) as simulator:
        yield simulator


@pytest.fixture
def system_roots_are_b(other_simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-certs"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(other_simulator.ca_path))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))


def settings(sim: Simulator, ca_bundle: Path | None) -> AzureSettings:
    return AzureSettings(
        arm_endpoint=sim.endpoint, arm_scope=sim.credential_scope, authority_host=sim.authority_host,
        ca_bundle=str(ca_bundle) if ca_bundle else None, credential_mode=CredentialMode.CLIENT_SECRET,
        tenant_id=sim.tenant_id, client_id=sim.client_id, client_secret=sim.client_secret,
        max_retries=0, request_timeout=10.0,
    )  # fmt: skip


async def reaches(sim: Simulator, ca_bundle: Path | None) -> str:
    """ "ok" when a token and an ARM read succeed, else the error chain's text."""
    try:
        async with AzureClients.from_settings(settings(sim, ca_bundle)) as clients:
            compute = clients.for_subscription(sim.subscription_id).compute
            async for _ in compute.virtual_machines.list(RESOURCE_GROUP):
                pass
    except Exception as err:  # the test reports what failed
        chain, seen = [], err
        while seen is not None:
            chain.append(f"{type(seen).__name__}: {seen}")
            seen = seen.__cause__ or seen.__context__
        return " <- ".join(chain)
    return "ok"


@pytest.mark.usefixtures("system_roots_are_b")
async def test_the_bundle_adds_its_ca_and_the_system_roots_stay_trusted(sim: Simulator, other_simulator):
    a_ca = sim.ca_path
    assert await reaches(sim, a_ca) == "ok"  # A through the bundle
    assert await reaches(other_simulator, a_ca) == "ok"  # B through the system roots, bundle set
    assert await reaches(other_simulator, None) == "ok"  # B without a bundle


@pytest.mark.usefixtures("system_roots_are_b")
async def test_without_the_bundle_the_private_ca_is_not_trusted(sim: Simulator):
    """The control: the environment above really is the only trust (A is not trusted without its bundle)."""
    assert "certificate verify failed" in (await reaches(sim, None)).lower()
