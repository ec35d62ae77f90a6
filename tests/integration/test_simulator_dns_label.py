"""A public IP's DNS name label through the real SDK: the FQDN Azure derives from it, and Azure's label rule."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network import models as nm

from azure_edition_simulator import Simulator

from .conftest import LOCATION, RESOURCE_GROUP, Clients

pytestmark = pytest.mark.integration


def pip(label: str | None) -> nm.PublicIPAddress:
    return nm.PublicIPAddress(
        location=LOCATION, sku=nm.PublicIPAddressSku(name="Standard"), public_ip_allocation_method="Static",
        dns_settings=nm.PublicIPAddressDnsSettings(domain_name_label=label) if label else None,
    )  # fmt: skip


def test_dns_label_gives_the_regional_fqdn(sim: Simulator, clients: Clients) -> None:
    made = clients.network.public_ip_addresses.begin_create_or_update(
        RESOURCE_GROUP, "pip-fs01", pip("fs01-branch-a")
    ).result()
    assert made.dns_settings.fqdn == f"fs01-branch-a.{LOCATION}.cloudapp.azure.com"
    got = clients.network.public_ip_addresses.get(RESOURCE_GROUP, "pip-fs01")
    assert (got.dns_settings.domain_name_label, got.dns_settings.fqdn) == (
        "fs01-branch-a",
        made.dns_settings.fqdn,
    )
    plain = clients.network.public_ip_addresses.begin_create_or_update(
        RESOURCE_GROUP, "pip-x", pip(None)
    ).result()
    assert plain.dns_settings is None


def test_an_invalid_label_is_refused_as_azure_does(sim: Simulator, clients: Clients) -> None:
    with pytest.raises(HttpResponseError) as err:
        clients.network.public_ip_addresses.begin_create_or_update(
            RESOURCE_GROUP, "pip-bad", pip("Fs_01")
        ).result()
    assert err.value.error.code == "InvalidDomainNameLabel"
