"""The catalog and the resolver: every row, every impossible combination."""

from __future__ import annotations

from datetime import date

import pytest

from azure_edition_operator.images import (
    CATALOG,
    Capability,
    Experience,
    ImagePins,
    Support,
    UnsupportedCapabilitiesError,
    WindowsServerVersion,
    hotpatch_end_notice,
    resolve,
    successor,
)

HP, SMB, EXT = Capability.HOTPATCH, Capability.SMB_OVER_QUIC, Capability.EXTENDED_NETWORK
V22, V25 = WindowsServerVersion.WS2022, WindowsServerVersion.WS2025
CORE, DESK = Experience.CORE, Experience.DESKTOP

# docs/capabilities.md, restated independently of the catalog's data so a typo in either shows up.
EXPECTED_ROWS = {
    "2022-datacenter-azure-edition": (V22, DESK, False, {SMB, EXT}),
    "2022-datacenter-azure-edition-smalldisk": (V22, DESK, True, {SMB, EXT}),
    "2022-datacenter-azure-edition-hotpatch": (V22, DESK, False, {HP, SMB, EXT}),
    "2022-datacenter-azure-edition-hotpatch-smalldisk": (V22, DESK, True, {HP, SMB, EXT}),
    "2022-datacenter-azure-edition-core": (V22, CORE, False, {HP, SMB, EXT}),
    "2022-datacenter-azure-edition-core-smalldisk": (V22, CORE, True, {HP, SMB, EXT}),
    "2025-datacenter-azure-edition": (V25, DESK, False, {HP, SMB}),
    "2025-datacenter-azure-edition-smalldisk": (V25, DESK, True, {HP, SMB}),
    "2025-datacenter-azure-edition-core": (V25, CORE, False, {HP, SMB}),
    "2025-datacenter-azure-edition-core-smalldisk": (V25, CORE, True, {HP, SMB}),
}


@pytest.mark.parametrize("row", CATALOG, ids=lambda r: r.sku)
def test_every_catalog_row_matches_design(row):
    version, experience, small, carried = EXPECTED_ROWS[row.sku]
    assert (row.version, row.experience, row.small_disk) == (version, experience, small)
    assert {c for c in Capability if row.carries(c)} == carried
    assert row.sources, f"{row.sku} has no source"
    assert row.sku.endswith("-smalldisk") == row.small_disk


def test_catalog_has_exactly_the_design_rows():
    assert {r.sku for r in CATALOG} == set(EXPECTED_ROWS)


def test_unconfirmed_cells_count_as_unsupported():
    row = next(r for r in CATALOG if r.sku == "2025-datacenter-azure-edition-core")
    assert row.support[EXT] is Support.UNCONFIRMED
    assert not row.carries(EXT)


@pytest.mark.parametrize(
    ("caps", "pins", "sku"),
    [
        (set(), ImagePins(), "2025-datacenter-azure-edition-core"),
        ({HP}, ImagePins(), "2025-datacenter-azure-edition-core"),
        ({SMB}, ImagePins(), "2025-datacenter-azure-edition-core"),
        ({EXT}, ImagePins(), "2022-datacenter-azure-edition-core"),
        ({HP, SMB, EXT}, ImagePins(), "2022-datacenter-azure-edition-core"),
        ({HP, SMB, EXT}, ImagePins(small_disk=True), "2022-datacenter-azure-edition-core-smalldisk"),
        (set(), ImagePins(experience=DESK), "2025-datacenter-azure-edition"),
        ({HP}, ImagePins(V22, DESK), "2022-datacenter-azure-edition-hotpatch"),
        ({SMB}, ImagePins(V22, DESK), "2022-datacenter-azure-edition"),
        ({SMB}, ImagePins(V22, DESK, small_disk=True), "2022-datacenter-azure-edition-smalldisk"),
        ({EXT}, ImagePins(experience=DESK), "2022-datacenter-azure-edition"),
        ({HP, EXT}, ImagePins(experience=DESK), "2022-datacenter-azure-edition-hotpatch"),
        ({HP}, ImagePins(V25, small_disk=True), "2025-datacenter-azure-edition-core-smalldisk"),
    ],
)
def test_resolve_defaults_newest_then_core(caps, pins, sku):
    image = resolve(caps, pins)
    assert image.sku == sku
    assert image.publisher == "MicrosoftWindowsServer" and image.offer == "WindowsServer"
    assert sku in image.reason


def test_resolve_keeps_pinned_image_version():
    assert resolve({HP}, ImagePins(image_version="20348.2402.240405")).version == "20348.2402.240405"


@pytest.mark.parametrize(
    ("caps", "pins", "missing", "relax"),
    [
        ({EXT}, ImagePins(V25), (EXT,), ("windowsServerVersion",)),
        ({EXT, HP}, ImagePins(V25, CORE), (EXT,), ("windowsServerVersion",)),
        ({EXT, SMB}, ImagePins(V25, DESK, small_disk=True), (EXT,), ("windowsServerVersion",)),
        ({EXT}, ImagePins(V25, small_disk=True), (EXT,), ("windowsServerVersion",)),
    ],
)
def test_impossible_combinations_name_capability_and_pins(caps, pins, missing, relax):
    with pytest.raises(UnsupportedCapabilitiesError) as err:
        resolve(caps, pins)
    assert err.value.capabilities == missing
    assert err.value.relaxable_pins == relax
    assert "ExtendedNetwork" in str(err.value) and "spec.image.windowsServerVersion" in str(err.value)


def test_every_impossible_combination_is_one_with_extended_network_on_2025():
    """Enumerates all pins × capability sets: the only refusals are ExtendedNetwork pinned to 2025."""
    from azure_edition_operator.api.cel import all_capability_sets, all_pins

    refused = []
    for pins in all_pins():
        for caps in all_capability_sets():
            try:
                resolve(caps, pins)
            except UnsupportedCapabilitiesError:
                refused.append((pins, caps))
    assert refused
    assert all(p.windows_server_version == V25 and EXT in c for p, c in refused)
    assert len(refused) == 3 * 2 * 4  # experiences(unset, Core, Desktop) × smallDisk × sets with EXT


def test_nothing_resolves_with_an_empty_catalog_and_the_error_says_to_remove_the_capability():
    with pytest.raises(UnsupportedCapabilitiesError) as err:
        resolve({HP}, ImagePins(), catalog=())
    assert "remove the capability" in str(err.value)


# ----------------------------------------------------------------------------- end of Hotpatch support


def _row(sku):
    return next(r for r in CATALOG if r.sku == sku)


@pytest.mark.parametrize("row", CATALOG, ids=lambda r: r.sku)
def test_hotpatch_end_is_dated_with_a_source_on_2022_hotpatch_rows_only(row):
    # windowsserverdocs get-started/hotpatch.md (2025-07): Hotpatch for 2022 Azure Edition ends October 2027
    if row.version is V22 and row.carries(HP):
        assert (row.hotpatch_ends.year, row.hotpatch_ends.month) == (2027, 10)
        assert "hotpatch.md" in row.lifecycle_source
    else:
        assert row.hotpatch_ends is None and row.lifecycle_source == ""


def test_smalldisk_pin_without_hotpatch_resolves_to_the_new_row():
    pins = ImagePins(V22, DESK, small_disk=True)
    assert resolve({SMB, EXT}, pins).sku == "2022-datacenter-azure-edition-smalldisk"
    assert resolve({HP, SMB}, pins).sku == "2022-datacenter-azure-edition-hotpatch-smalldisk"


@pytest.mark.parametrize(
    ("sku", "caps", "expected"),
    [
        ("2022-datacenter-azure-edition-core", {HP}, "2025-datacenter-azure-edition-core"),
        (
            "2022-datacenter-azure-edition-core-smalldisk",
            {HP, SMB},
            "2025-datacenter-azure-edition-core-smalldisk",
        ),
        ("2022-datacenter-azure-edition-hotpatch", {HP}, "2025-datacenter-azure-edition"),
        ("2022-datacenter-azure-edition-hotpatch-smalldisk", {HP}, "2025-datacenter-azure-edition-smalldisk"),
        # Extended Network is unconfirmed on 2025: nothing to move to that keeps it
        ("2022-datacenter-azure-edition-core", {HP, EXT}, None),
    ],
)
def test_successor_keeps_experience_disk_and_capabilities(sku, caps, expected):
    nxt = successor(_row(sku), caps)
    assert (nxt.sku if nxt else None) == expected


@pytest.mark.parametrize(
    ("today", "due"),
    [
        (date(2027, 4, 3), False),  # 181 days before 2027-10-01
        (date(2027, 4, 4), True),  # 180 days: the warning starts
        (date(2027, 9, 30), True),
        (date(2027, 10, 1), True),  # ended: still said, worded as past
        (date(2031, 1, 1), True),
    ],
)
def test_notice_starts_180_days_ahead(today, due):
    notice = hotpatch_end_notice("2022-datacenter-azure-edition-core", {HP}, today)
    assert (notice is not None) is due
    if due:
        assert "2025-datacenter-azure-edition-core" in notice
        assert ("ended in October 2027" in notice) is (today >= date(2027, 10, 1))


def test_notice_counts_days_and_names_the_pin_to_use():
    notice = hotpatch_end_notice("2022-datacenter-azure-edition-core", {HP, SMB}, date(2027, 9, 1))
    assert "ends in October 2027 (30 days)" in notice
    assert 'spec.image.windowsServerVersion: "2025"' in notice


def test_notice_says_when_nothing_newer_carries_extended_network():
    notice = hotpatch_end_notice("2022-datacenter-azure-edition-core", {HP, EXT}, date(2027, 9, 1))
    assert "no newer Azure Edition image carries every requested capability" in notice
    assert "ExtendedNetwork" in notice


@pytest.mark.parametrize(
    "sku",
    ["2025-datacenter-azure-edition-core", "2022-datacenter-azure-edition", "2016-Datacenter", ""],
)
def test_no_notice_without_an_announced_end(sku):
    assert hotpatch_end_notice(sku, {HP}, date(2030, 1, 1)) is None


def test_notice_matches_the_sku_case_insensitively():
    assert hotpatch_end_notice("2022-Datacenter-Azure-Edition-Core", {HP}, date(2027, 9, 1)) is not None
