"""The simulator's platform-image catalog: what Compute accepts in ``storageProfile.imageReference``.

This is the simulator's own data (it never imports the operator), so the operator's image resolution is
tested against an independent table. Hotpatch capability per docs/capabilities.md (sources: windowsserverdocs
``get-started/hotpatch.md`` supported SKUs, 2024; the 2021 seed table). Versions are simulated
``<build>.<revision>.<yymmdd>`` strings in Azure's format; ``latest`` resolves to the last one.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOWS_SERVER_PUBLISHER = "MicrosoftWindowsServer"
WINDOWS_SERVER_OFFER = "WindowsServer"

_VERSIONS_2016 = ("14393.7699.250110", "14393.7785.250206")
_VERSIONS_2019 = ("17763.6775.250110", "17763.6893.250206")
_VERSIONS_2022 = ("20348.3091.250110", "20348.3207.250210", "20348.3328.250306")
_VERSIONS_2025 = ("26100.2894.250110", "26100.3194.250210", "26100.3476.250306")

SRC_HOTPATCH = "windowsserverdocs get-started/hotpatch.md, supported SKUs (2024)"
SRC_SEED = "seed capability table (2021)"
SRC_MARKETPLACE = "Azure Marketplace WindowsServer offer (classic Datacenter SKUs)"
SRC_HOTPATCH_2025 = "windowsserverdocs get-started/hotpatch.md (2025-07): supported SKUs incl. -smalldisk"

NOT_EVERYWHERE_2025 = frozenset(
    {"mexicocentral", "spaincentral", "israelcentral", "qatarcentral", "newzealandnorth"}
)
"""Regions where this simulator does not offer Windows Server 2025 Azure Edition: Azure rolls a new image out
region by region, and ``az vm image list-skus --location <region>`` is the only authority on where it is. The
youngest regions stand in for those (simulated data: which real regions lack it changes month to month)."""


@dataclass(frozen=True)
class PlatformImage:
    """One platform image SKU as Compute knows it."""

    publisher: str
    offer: str
    sku: str
    versions: tuple[str, ...]
    hotpatch_capable: bool
    os_name: str
    hyper_v_generation: str
    disk_size_gb: int
    source: str
    missing_in: frozenset[str] = frozenset()  # regions that do not offer it (normalized names)

    def offered_in(self, location: str) -> bool:
        return location.replace(" ", "").lower() not in self.missing_in

    @property
    def latest(self) -> str:
        return self.versions[-1]

    @property
    def os_version(self) -> str:
        build = self.latest.split(".")[0]
        return f"Microsoft Windows NT 10.0.{build}.0"


def _ws(
    sku: str,
    versions: tuple[str, ...],
    hotpatch: bool,
    os_name: str,
    source: str,
    gen: str = "V2",
    missing_in: frozenset[str] = frozenset(),
) -> PlatformImage:
    small = "smalldisk" in sku
    return PlatformImage(
        publisher=WINDOWS_SERVER_PUBLISHER,
        offer=WINDOWS_SERVER_OFFER,
        sku=sku,
        versions=versions,
        hotpatch_capable=hotpatch,
        os_name=os_name,
        hyper_v_generation=gen,
        disk_size_gb=30 if small else 127,
        source=source,
        missing_in=missing_in,
    )


_AE2022 = "Windows Server 2022 Datacenter: Azure Edition"
_AE2025 = "Windows Server 2025 Datacenter: Azure Edition"

CATALOG: tuple[PlatformImage, ...] = (
    _ws("2022-datacenter-azure-edition", _VERSIONS_2022, False, _AE2022, SRC_SEED),
    _ws("2022-datacenter-azure-edition-smalldisk", _VERSIONS_2022, False, _AE2022, SRC_HOTPATCH_2025),
    _ws("2022-datacenter-azure-edition-hotpatch", _VERSIONS_2022, True, _AE2022, SRC_HOTPATCH),
    _ws("2022-datacenter-azure-edition-hotpatch-smalldisk", _VERSIONS_2022, True, _AE2022, SRC_HOTPATCH),
    _ws("2022-datacenter-azure-edition-core", _VERSIONS_2022, True, _AE2022, SRC_HOTPATCH),
    _ws("2022-datacenter-azure-edition-core-smalldisk", _VERSIONS_2022, True, _AE2022, SRC_HOTPATCH),
    _ws(
        "2025-datacenter-azure-edition",
        _VERSIONS_2025,
        True,
        _AE2025,
        SRC_HOTPATCH,
        missing_in=NOT_EVERYWHERE_2025,
    ),
    _ws(
        "2025-datacenter-azure-edition-smalldisk",
        _VERSIONS_2025,
        True,
        _AE2025,
        SRC_HOTPATCH,
        missing_in=NOT_EVERYWHERE_2025,
    ),
    _ws(
        "2025-datacenter-azure-edition-core",
        _VERSIONS_2025,
        True,
        _AE2025,
        SRC_HOTPATCH,
        missing_in=NOT_EVERYWHERE_2025,
    ),
    _ws(
        "2025-datacenter-azure-edition-core-smalldisk",
        _VERSIONS_2025,
        True,
        _AE2025,
        SRC_HOTPATCH,
        missing_in=NOT_EVERYWHERE_2025,
    ),
    # Classic (non Azure Edition) SKUs: valid images that cannot carry Hotpatch.
    _ws("2016-Datacenter", _VERSIONS_2016, False, "Windows Server 2016 Datacenter", SRC_MARKETPLACE, "V1"),
    _ws("2019-Datacenter", _VERSIONS_2019, False, "Windows Server 2019 Datacenter", SRC_MARKETPLACE, "V1"),
    _ws("2022-datacenter", _VERSIONS_2022, False, "Windows Server 2022 Datacenter", SRC_MARKETPLACE, "V1"),
    _ws("2022-datacenter-g2", _VERSIONS_2022, False, "Windows Server 2022 Datacenter", SRC_MARKETPLACE),
    _ws("2025-datacenter-g2", _VERSIONS_2025, False, "Windows Server 2025 Datacenter", SRC_MARKETPLACE),
)


def find_image(publisher: str, offer: str, sku: str) -> PlatformImage | None:
    """The catalog row for an image reference; Azure compares these case-insensitively."""
    key = (publisher.lower(), offer.lower(), sku.lower())
    for image in CATALOG:
        if (image.publisher.lower(), image.offer.lower(), image.sku.lower()) == key:
            return image
    return None


def resolve_version(image: PlatformImage, version: str) -> str | None:
    """The exact version for ``latest`` or a listed version; None if the version does not exist."""
    if version.lower() == "latest":
        return image.latest
    return version if version in image.versions else None


def skus(publisher: str, offer: str, location: str | None = None) -> list[PlatformImage]:
    """The SKUs of an offer (for the ListSkus API), those offered in ``location`` when it is given."""
    return [
        image
        for image in CATALOG
        if image.publisher.lower() == publisher.lower()
        and image.offer.lower() == offer.lower()
        and (location is None or image.offered_in(location))
    ]
