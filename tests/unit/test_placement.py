"""Placement decisions (pure): image offered in the region, sizes to name when Azure refuses one."""

from __future__ import annotations

import pytest

from azure_edition_operator.extended_network import Size, sizes_in
from azure_edition_operator.placement import (
    image_offered,
    image_refusal,
    is_size_refusal,
    same_family,
    series_of,
    size_advice,
)


@pytest.mark.parametrize(
    ("name", "series"),
    [
        ("Standard_D2s_v5", "ds-v5"),
        ("Standard_D16s_v5", "ds-v5"),
        ("standard_d2as_v5", "das-v5"),
        ("Standard_D2ads_v6", "dads-v6"),
        ("Standard_E4-2s_v5", "es-v5"),  # constrained vCPUs
        ("Standard_B2s", "bs"),
        ("Standard_NC6s_v3", "ncs-v3"),
        ("Standard_Nope_v9", None),
        ("D2s_v5", None),
    ],
)
def test_series_of_follows_azures_naming(name, series):
    assert series_of(name) == series


def test_image_offered_is_case_insensitive():
    assert image_offered("2025-datacenter-azure-edition", ["2025-Datacenter-Azure-Edition", "x"])
    assert not image_offered("2025-datacenter-azure-edition", ["2025-datacenter-azure-edition-core"])


def test_image_refusal_names_regions_sorted_once():
    msg = image_refusal("2025-datacenter-azure-edition", "qatarcentral", ["westus", "eastus", "westus"], 19)
    assert "not offered in qatarcentral" in msg
    assert "regions that offer it: eastus, westus;" in msg
    assert "spec.azure.location" in msg
    none = image_refusal("x", "qatarcentral", [], 19)
    assert "none of the 19 regions looked in offers it" in none


def _sku(name, family, vcpus, mem, restricted=False, location="westeurope"):
    return {
        "resourceType": "virtualMachines", "name": name, "family": family, "locations": [location],
        "capabilities": [{"name": "vCPUs", "value": str(vcpus)}, {"name": "MemoryGB", "value": str(mem)}],
        "restrictions": [{"type": "Location", "values": [location]}] if restricted else [],
    }  # fmt: skip


SIZES = sizes_in(
    [
        _sku("Standard_D2s_v5", "standardDSv5Family", 2, 8, restricted=True),
        _sku("Standard_D4s_v5", "standardDSv5Family", 4, 16),
        _sku("Standard_D8s_v5", "standardDSv5Family", 8, 32),
        _sku("Standard_D16s_v5", "standardDSv5Family", 16, 64, restricted=True),
        _sku("Standard_D2as_v5", "standardDASv5Family", 2, 8),
        _sku("Standard_E2s_v5", "standardESv5Family", 2, 16),
        _sku("Standard_D2s_v6", "standardDSv6Family", 2, 8),
    ],
    "westeurope",
)


def test_same_family_uses_resource_sku_family_closest_first_never_restricted_nor_itself():
    assert same_family("Standard_D2s_v5", SIZES) == ["Standard_D4s_v5", "Standard_D8s_v5"]


def test_same_family_of_a_size_the_region_does_not_list_reads_the_name():
    # Standard_D32s_v5 is not listed here: its family comes from its name (ds-v5)
    assert same_family("Standard_D32s_v5", SIZES) == ["Standard_D8s_v5", "Standard_D4s_v5"]
    assert same_family("Standard_Nope_v9", SIZES) == []


def test_size_advice_wording():
    assert size_advice("Standard_D2s_v5", "westeurope", SIZES) == (
        "sizes of the same family westeurope offers to this subscription: Standard_D4s_v5, Standard_D8s_v5"
    )
    assert "offers no size of Standard_F2s_v2's family" in size_advice("Standard_F2s_v2", "westeurope", SIZES)
    assert size_advice("Standard_D2s_v5", "westeurope", {}) == ""  # Resource SKUs unreadable: no advice


def test_same_family_caps_the_list():
    many = {f"standard_d{n}s_v5": Size(f"Standard_D{n}s_v5", "standardDSv5Family", n, 4 * n, False)
            for n in (2, 4, 8, 16, 32, 48, 64, 96)}  # fmt: skip
    assert len(same_family("Standard_D2s_v5", many)) == 6


@pytest.mark.parametrize(
    ("code", "message", "refusal"),
    [
        ("SkuNotAvailable", "The requested VM size for resource ... is currently not available", True),
        (
            "InvalidParameter",
            "The requested VM size Standard_X is not available in the current region.",
            True,
        ),
        ("InvalidParameter", "The value of parameter adminPassword is invalid.", False),
        ("QuotaExceeded", "VM size quota not available", False),
    ],
)
def test_is_size_refusal(code, message, refusal):
    assert is_size_refusal(code, message) is refusal
