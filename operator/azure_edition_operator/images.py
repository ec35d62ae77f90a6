"""The capability → image catalog, as data with a source per row, and the resolver.

A new SKU is a one-line change to ``CATALOG``. A cell whose support is not confirmed by a
source is ``UNCONFIRMED`` and counts as unsupported: we refuse rather than guess. The CRD's
CEL rules are generated from this same table (``api.cel``), so admission and the resolver
cannot disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

PUBLISHER = "MicrosoftWindowsServer"
OFFER = "WindowsServer"


class Capability(enum.StrEnum):
    """A Windows Server Azure Edition capability a user can request."""

    HOTPATCH = "Hotpatch"
    SMB_OVER_QUIC = "SMBOverQUIC"
    EXTENDED_NETWORK = "ExtendedNetwork"


class WindowsServerVersion(enum.StrEnum):
    """Windows Server release of an Azure Edition image."""

    WS2022 = "2022"
    WS2025 = "2025"


class Experience(enum.StrEnum):
    """Installation option: Server Core or Desktop Experience."""

    CORE = "Core"
    DESKTOP = "DesktopExperience"


class Support(enum.StrEnum):
    """Whether a source confirms a capability on an image. Only SUPPORTED counts."""

    SUPPORTED = "yes"
    UNSUPPORTED = "no"
    UNCONFIRMED = "unconfirmed"


SRC_SEED = "seed capability table (2021)"
SRC_HOTPATCH = "windowsserverdocs WindowsServerDocs/get-started/hotpatch.md, supported SKUs (2024)"
SRC_AZURE_EDITION = "windowsserverdocs azure-edition.md (SMB over QUIC, Extended Network on 2022 images)"
SRC_EXTENDED_NETWORK = "windowsserverdocs manage/windows-admin-center/azure/azure-extended-network.md"
SRC_HOTPATCH_2025 = (
    "windowsserverdocs WindowsServerDocs/get-started/hotpatch.md (2025-07): supported SKUs, and Hotpatch for "
    "Windows Server 2022 Datacenter: Azure Edition ending October 2027"
)

HOTPATCH_END_2022 = date(2027, 10, 1)
"""Hotpatch for 2022 Azure Edition ends "October 2027" (SRC_HOTPATCH_2025, no day given): the month's first
day, so a warning is never late."""

HOTPATCH_END_WARNING_DAYS = 180
"""How long before a row's end of Hotpatch the HotpatchHealthy condition warns: moving a VM to another image
is a rebuild (the image cannot change in place), which a team plans a release or two ahead."""

_Y, _N, _U = Support.SUPPORTED, Support.UNSUPPORTED, Support.UNCONFIRMED


@dataclass(frozen=True)
class CatalogRow:
    """One Azure Edition SKU and what it is known to carry, with where we know it from."""

    sku: str
    version: WindowsServerVersion
    experience: Experience
    small_disk: bool
    support: Mapping[Capability, Support]
    sources: tuple[str, ...]
    hotpatch_ends: date | None = None  # the last day Hotpatch is serviced on this SKU; None: none announced
    lifecycle_source: str = ""  # where ``hotpatch_ends`` comes from

    def carries(self, capability: Capability) -> bool:
        return self.support.get(capability, Support.UNCONFIRMED) is Support.SUPPORTED

    def carries_all(self, capabilities: Iterable[Capability]) -> bool:
        return all(self.carries(c) for c in capabilities)


def _row(
    sku: str,
    version: str,
    experience: Experience,
    small: bool,
    hp: Support,
    smb: Support,
    ext: Support,
    *sources: str,
) -> CatalogRow:
    support = {Capability.HOTPATCH: hp, Capability.SMB_OVER_QUIC: smb, Capability.EXTENDED_NETWORK: ext}
    ends, lifecycle = (HOTPATCH_END_2022, SRC_HOTPATCH_2025) if version == "2022" and hp is _Y else (None, "")
    return CatalogRow(
        sku, WindowsServerVersion(version), experience, small, support, sources, ends, lifecycle
    )


_CORE, _DESKTOP = Experience.CORE, Experience.DESKTOP

# Order within a (version, experience, smallDisk) group is the preference order: the first row
# that carries every requested capability wins.
CATALOG: tuple[CatalogRow, ...] = (
    _row("2022-datacenter-azure-edition", "2022", _DESKTOP, False, _N, _Y, _Y,
         SRC_SEED, SRC_AZURE_EDITION, SRC_EXTENDED_NETWORK),
    _row("2022-datacenter-azure-edition-smalldisk", "2022", _DESKTOP, True, _N, _Y, _Y,
         SRC_HOTPATCH_2025, SRC_AZURE_EDITION, SRC_EXTENDED_NETWORK),
    _row("2022-datacenter-azure-edition-hotpatch", "2022", _DESKTOP, False, _Y, _Y, _Y,
         SRC_HOTPATCH, SRC_AZURE_EDITION, SRC_EXTENDED_NETWORK),
    _row("2022-datacenter-azure-edition-hotpatch-smalldisk", "2022", _DESKTOP, True, _Y, _Y, _Y,
         SRC_HOTPATCH, SRC_AZURE_EDITION, SRC_EXTENDED_NETWORK),
    _row("2022-datacenter-azure-edition-core", "2022", _CORE, False, _Y, _Y, _Y,
         SRC_HOTPATCH, SRC_AZURE_EDITION, SRC_EXTENDED_NETWORK),
    _row("2022-datacenter-azure-edition-core-smalldisk", "2022", _CORE, True, _Y, _Y, _Y,
         SRC_HOTPATCH, SRC_AZURE_EDITION, SRC_EXTENDED_NETWORK),
    _row("2025-datacenter-azure-edition", "2025", _DESKTOP, False, _Y, _Y, _U, SRC_HOTPATCH),
    _row("2025-datacenter-azure-edition-smalldisk", "2025", _DESKTOP, True, _Y, _Y, _U, SRC_HOTPATCH),
    _row("2025-datacenter-azure-edition-core", "2025", _CORE, False, _Y, _Y, _U, SRC_HOTPATCH),
    _row("2025-datacenter-azure-edition-core-smalldisk", "2025", _CORE, True, _Y, _Y, _U, SRC_HOTPATCH),
)  # fmt: skip

# SMB over QUIC client access control (client certificates allowed or blocked by SHA-256 or issuer,
# auditing) arrived with Windows Server 2025 (learn.microsoft.com/windows-server/storage/file-server/
# configure-smb-over-quic-client-access-control): the Windows Server versions whose images run it.
SMB_CLIENT_ACCESS_VERSIONS: frozenset[WindowsServerVersion] = frozenset({WindowsServerVersion.WS2025})
# Alternative SMB over QUIC ports (New-SmbServerAlternativePort) arrived with Windows Server 2025
# (learn.microsoft.com/windows-server/storage/file-server/smb-ports): the versions whose images run them.
SMB_ALTERNATIVE_PORT_VERSIONS: frozenset[WindowsServerVersion] = frozenset({WindowsServerVersion.WS2025})

_EXPERIENCE_ORDER = {Experience.CORE: 0, Experience.DESKTOP: 1}


def preference_order(catalog: Iterable[CatalogRow] = CATALOG) -> list[CatalogRow]:
    """Newest version first, Core before Desktop Experience, then catalog order (stable sort)."""
    return sorted(catalog, key=lambda r: (-int(r.version), _EXPERIENCE_ORDER[r.experience]))


def row_for_sku(sku: str, catalog: Iterable[CatalogRow] = CATALOG) -> CatalogRow | None:
    return next((r for r in catalog if r.sku == sku), None)


@dataclass(frozen=True)
class ImagePins:
    """What the user pinned in ``spec.image``; None means "let resolution choose"."""

    windows_server_version: WindowsServerVersion | None = None
    experience: Experience | None = None
    small_disk: bool = False
    image_version: str = "latest"  # the Marketplace image's version (ImageReference.version)

    def matches(self, row: CatalogRow) -> bool:
        return (
            (self.windows_server_version in (None, row.version))
            and (self.experience is None or row.experience == self.experience)
            and row.small_disk == self.small_disk
        )

    def describe(self) -> str:
        parts = [f"windowsServerVersion={self.windows_server_version}" if self.windows_server_version else "",
                 f"experience={self.experience}" if self.experience else "",
                 "smallDisk=true" if self.small_disk else ""]  # fmt: skip
        return ", ".join(p for p in parts if p) or "nothing pinned"


@dataclass(frozen=True)
class ImageReference:
    """A resolved Azure Marketplace image, plus why it was chosen."""

    sku: str
    version: str
    windows_server_version: WindowsServerVersion
    experience: Experience
    reason: str
    publisher: str = PUBLISHER
    offer: str = OFFER


@dataclass(eq=False)
class UnsupportedCapabilitiesError(Exception):
    """No allowed image carries every requested capability.

    ``capabilities`` are those no image matching the pins carries; ``relaxable_pins`` are the
    pins whose removal would make the request resolvable (empty when nothing helps).
    """

    capabilities: tuple[Capability, ...]
    pins: ImagePins
    relaxable_pins: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        caps = ", ".join(self.capabilities)
        msg = f"no Azure Edition image matching ({self.pins.describe()}) carries {caps}"
        if self.relaxable_pins:
            msg += f"; unpin or change spec.image.{' or spec.image.'.join(self.relaxable_pins)}"
        else:
            msg += "; remove the capability from spec.capabilities"
        return msg


def resolve(
    capabilities: Iterable[Capability],
    pins: ImagePins = ImagePins(),
    catalog: Iterable[CatalogRow] = CATALOG,
) -> ImageReference:
    """Choose the image that carries every requested capability within the user's pins."""
    requested = sorted(set(capabilities), key=list(Capability).index)
    rows = preference_order(catalog)
    candidates = [r for r in rows if pins.matches(r)]
    for row in candidates:
        if row.carries_all(requested):
            return ImageReference(
                sku=row.sku,
                version=pins.image_version,
                windows_server_version=row.version,
                experience=row.experience,
                reason=_reason(row, requested, pins),
            )
    missing = tuple(c for c in requested if not any(r.carries(c) for r in candidates)) or tuple(requested)
    raise UnsupportedCapabilitiesError(missing, pins, _relaxable(requested, pins, rows))


def _reason(row: CatalogRow, requested: list[Capability], pins: ImagePins) -> str:
    wanted = ", ".join(requested) if requested else "no capabilities"
    how = "newest version that fits, Core before Desktop Experience"
    return f"{row.sku}: carries {wanted}; pinned: {pins.describe()}; chosen as the {how}"


def _relaxable(requested: list[Capability], pins: ImagePins, rows: list[CatalogRow]) -> tuple[str, ...]:
    options = {
        "windowsServerVersion": ImagePins(None, pins.experience, pins.small_disk),
        "experience": ImagePins(pins.windows_server_version, None, pins.small_disk),
        "smallDisk": ImagePins(pins.windows_server_version, pins.experience, not pins.small_disk),
    }
    pinned = {"windowsServerVersion": pins.windows_server_version is not None, "experience": pins.experience is not None,
              "smallDisk": pins.small_disk}  # fmt: skip
    return tuple(
        name
        for name, relaxed in options.items()
        if pinned[name] and any(relaxed.matches(r) and r.carries_all(requested) for r in rows)
    )


# ----------------------------------------------------------------------------- lifecycle


def successor(row: CatalogRow, capabilities: Iterable[Capability], catalog: Iterable[CatalogRow] = CATALOG
              ) -> CatalogRow | None:  # fmt: skip
    """The image to move to before ``row``'s Hotpatch ends: the same experience and disk size, a newer
    version carrying every requested capability, with no end of Hotpatch announced before ``row``'s."""
    wanted = set(capabilities)
    for other in preference_order(catalog):
        later = other.hotpatch_ends is None or (
            row.hotpatch_ends is not None and other.hotpatch_ends > row.hotpatch_ends
        )
        if (int(other.version) > int(row.version) and other.experience == row.experience
                and other.small_disk == row.small_disk and other.carries_all(wanted) and later):  # fmt: skip
            return other
    return None


def hotpatch_end_notice(
    sku: str, capabilities: Iterable[Capability], today: date, catalog: Iterable[CatalogRow] = CATALOG,
    warn_days: int = HOTPATCH_END_WARNING_DAYS,
) -> str | None:  # fmt: skip
    """What to tell the owner of a Hotpatch VM on ``sku`` whose Hotpatch ends within ``warn_days`` of
    ``today`` (or has ended), naming what to move to; None when nothing is due (or the SKU is unknown)."""
    catalog = tuple(catalog)
    row = next((r for r in catalog if r.sku.lower() == sku.lower()), None)  # Azure echoes the PUT's case
    if row is None or row.hotpatch_ends is None or (row.hotpatch_ends - today).days > warn_days:
        return None
    requested = sorted(set(capabilities), key=list(Capability).index)
    when = row.hotpatch_ends.strftime("%B %Y")
    head = (f"Hotpatch on {row.sku} ended in {when}" if today >= row.hotpatch_ends
            else f"Hotpatch on {row.sku} ends in {when} ({(row.hotpatch_ends - today).days} days)")  # fmt: skip
    head += f" ({row.lifecycle_source})"
    nxt = successor(row, requested, catalog)
    if nxt is not None:
        return (f"{head}; move to {nxt.sku} (Windows Server {nxt.version}): create a new AzureEditionVM with "
                f"spec.image.windowsServerVersion: \"{nxt.version}\" and move the workload, the image cannot "
                "change in place")  # fmt: skip
    blockers = [str(c) for c in requested if not any(
        r.carries(c) for r in catalog if int(r.version) > int(row.version))]  # fmt: skip
    why = f" (no newer image is confirmed to carry {', '.join(blockers)})" if blockers else ""
    return f"{head}; no newer Azure Edition image carries every requested capability{why}: plan the move off Hotpatch"
