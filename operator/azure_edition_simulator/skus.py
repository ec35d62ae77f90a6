"""The VM size catalogue: a handful of real sizes with their published capabilities, per location.

Why: Azure refuses a ``vmSize`` it does not offer in the region (``InvalidParameter``), one restricted for
the subscription (``SkuNotAvailable``), a size that cannot boot the image's Hyper-V generation, premium
disks on a size without premium IO, and accelerated networking on a size without it. The operator reads
capabilities from ``GET /subscriptions/{s}/providers/Microsoft.Compute/skus`` (Resource SKUs - List), so
the simulator serves that too, in its shape (``capabilities`` as name/value strings).

Data: the size pages on Microsoft Learn (virtual-machines/sizes/general-purpose/... and memory-optimized/...:
Dsv5, Dv5, Dasv5, Ddsv5, Esv5, Ev5, Easv5, Dsv6, Dasv6, Ddsv6, Dlsv6, Esv6, Easv6, B-series, Bsv2, Basv2,
Dsv3, DSv2, Av2), one row per size: vCPUs, memory GiB, Hyper-V generations, nested virtualization,
accelerated networking, premium IO, max data disks, max NICs; the family names as Resource SKUs - List
spells them (``family``, e.g. ``standardDSv5Family``). The D and E v5 and v6 families and the B-series are
the sizes users pick for a branch file server; the B-series has no v5 or v6 (its newest is v2, Bsv2/Basv2).
v6 sizes boot Generation 2 only (their pages: "Generation 1 VMs: Not Supported"). Nested virtualization is
a property of the series on those pages; Resource SKUs has no capability for it, so it is kept here and not
served. Not modelled: v6's NVMe-only disk controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VmSize:
    name: str
    family: str
    vcpus: int
    memory_gb: float
    hyper_v_generations: tuple[str, ...]
    nested_virtualization: bool
    accelerated_networking: bool
    premium_io: bool
    max_data_disks: int
    max_nics: int

    @property
    def size(self) -> str:
        return self.name.removeprefix("Standard_")

    def capabilities(self) -> list[dict[str, str]]:
        """Resource SKUs ``capabilities`` (string values, ``True``/``False`` capitalised as Azure does)."""

        def flag(value: bool) -> str:
            return "True" if value else "False"

        return [
            {"name": "MaxResourceVolumeMB", "value": "0"},
            {"name": "OSVhdSizeMB", "value": "1047552"},
            {"name": "vCPUs", "value": str(self.vcpus)},
            {"name": "MemoryPreservingMaintenanceSupported", "value": "True"},
            {"name": "HyperVGenerations", "value": ",".join(self.hyper_v_generations)},
            {"name": "MemoryGB", "value": f"{self.memory_gb:g}"},
            {"name": "MaxDataDiskCount", "value": str(self.max_data_disks)},
            {"name": "CpuArchitectureType", "value": "x64"},
            {"name": "LowPriorityCapable", "value": "True"},
            {"name": "PremiumIO", "value": flag(self.premium_io)},
            {"name": "VMDeploymentTypes", "value": "IaaS"},
            {"name": "vCPUsAvailable", "value": str(self.vcpus)},
            {"name": "vCPUsPerCore", "value": "2" if self.vcpus > 1 else "1"},
            {"name": "EphemeralOSDiskSupported", "value": "False"},
            {"name": "AcceleratedNetworkingEnabled", "value": flag(self.accelerated_networking)},
            {"name": "RdmaEnabled", "value": "False"},
            {"name": "MaxNetworkInterfaces", "value": str(self.max_nics)},
        ]


_G12 = ("V1", "V2")
CATALOGUE: tuple[VmSize, ...] = (
    # Dasv5 (Learn: sizes/general-purpose/dasv5-series): Gen 1+2, AN, premium, nested virtualization.
    VmSize("Standard_D2as_v5", "standardDASv5Family", 2, 8, _G12, True, True, True, 4, 2),
    VmSize("Standard_D4as_v5", "standardDASv5Family", 4, 16, _G12, True, True, True, 8, 2),
    # Dsv5 (dsv5-series) and Esv5 (esv5-series): the same capabilities.
    VmSize("Standard_D8as_v5", "standardDASv5Family", 8, 32, _G12, True, True, True, 16, 4),
    VmSize("Standard_D2s_v5", "standardDSv5Family", 2, 8, _G12, True, True, True, 4, 2),
    VmSize("Standard_D4s_v5", "standardDSv5Family", 4, 16, _G12, True, True, True, 8, 2),
    VmSize("Standard_D8s_v5", "standardDSv5Family", 8, 32, _G12, True, True, True, 16, 4),
    VmSize("Standard_D16s_v5", "standardDSv5Family", 16, 64, _G12, True, True, True, 32, 8),
    VmSize("Standard_E2s_v5", "standardESv5Family", 2, 16, _G12, True, True, True, 4, 2),
    VmSize("Standard_E4s_v5", "standardESv5Family", 4, 32, _G12, True, True, True, 8, 2),
    VmSize("Standard_E8s_v5", "standardESv5Family", 8, 64, _G12, True, True, True, 16, 4),
    # Dv5 and Ev5 (dv5-series, ev5-series): as Dsv5/Esv5 but no premium storage.
    VmSize("Standard_D2_v5", "standardDv5Family", 2, 8, _G12, True, True, False, 4, 2),
    VmSize("Standard_D4_v5", "standardDv5Family", 4, 16, _G12, True, True, False, 8, 2),
    VmSize("Standard_E2_v5", "standardEv5Family", 2, 16, _G12, True, True, False, 4, 2),
    # Ddsv5 (ddsv5-series, local temp disk) and Easv5 (easv5-series).
    VmSize("Standard_D2ds_v5", "standardDDSv5Family", 2, 8, _G12, True, True, True, 4, 2),
    VmSize("Standard_D4ds_v5", "standardDDSv5Family", 4, 16, _G12, True, True, True, 8, 2),
    VmSize("Standard_E2as_v5", "standardEASv5Family", 2, 16, _G12, True, True, True, 4, 2),
    VmSize("Standard_E4as_v5", "standardEASv5Family", 4, 32, _G12, True, True, True, 8, 2),
    # v6 (dsv6-, dasv6-, ddsv6-, dlsv6-, esv6-, easv6-series): Generation 2 only, AN, premium, nested.
    VmSize("Standard_D2s_v6", "standardDSv6Family", 2, 8, ("V2",), True, True, True, 8, 2),
    VmSize("Standard_D4s_v6", "standardDSv6Family", 4, 16, ("V2",), True, True, True, 12, 2),
    VmSize("Standard_D8s_v6", "standardDSv6Family", 8, 32, ("V2",), True, True, True, 24, 4),
    VmSize("Standard_D2as_v6", "standardDASv6Family", 2, 8, ("V2",), True, True, True, 4, 2),
    VmSize("Standard_D4as_v6", "standardDASv6Family", 4, 16, ("V2",), True, True, True, 8, 2),
    VmSize("Standard_D2ds_v6", "standardDDSv6Family", 2, 8, ("V2",), True, True, True, 8, 2),
    VmSize("Standard_D2ls_v6", "standardDLSv6Family", 2, 4, ("V2",), True, True, True, 8, 2),
    VmSize("Standard_E2s_v6", "standardESv6Family", 2, 16, ("V2",), True, True, True, 8, 2),
    VmSize("Standard_E4s_v6", "standardESv6Family", 4, 32, ("V2",), True, True, True, 12, 2),
    VmSize("Standard_E2as_v6", "standardEASv6Family", 2, 16, ("V2",), True, True, True, 4, 2),
    # Dsv3 (dsv3-series): nested virtualization, AN, premium.
    VmSize("Standard_D2s_v3", "standardDSv3Family", 2, 8, _G12, True, True, True, 4, 2),
    # DSv2 (dsv2-series), the size in the published create examples; one vCPU, no AN here.
    VmSize("Standard_DS1_v2", "standardDSv2Family", 1, 3.5, _G12, False, False, True, 4, 2),
    # Dv2 (dv2-series): the size in the published create examples' requests; Generation 1, no premium
    # storage (so Azure refuses those requests verbatim, with their Premium_LRS OS disk).
    VmSize("Standard_D1_v2", "standardDv2Family", 1, 3.5, ("V1",), False, False, False, 4, 2),
    # B-series (sizes-b-series-burstable): premium storage yes, AN only from B12ms, no nested.
    VmSize("Standard_B2s", "standardBSFamily", 2, 4, _G12, False, False, True, 4, 3),
    VmSize("Standard_B2ms", "standardBSFamily", 2, 8, _G12, False, False, True, 4, 3),
    VmSize("Standard_B4ms", "standardBSFamily", 4, 16, _G12, False, False, True, 8, 4),
    # Bsv2 and Basv2 (bsv2-series, basv2-series): burstable, AN supported, no nested virtualization.
    VmSize("Standard_B2s_v2", "standardBsv2Family", 2, 8, _G12, False, True, True, 4, 2),
    VmSize("Standard_B4s_v2", "standardBsv2Family", 4, 16, _G12, False, True, True, 8, 2),
    VmSize("Standard_B2as_v2", "standardBasv2Family", 2, 8, _G12, False, True, True, 4, 2),
    # Av2 (av2-series): Generation 1 only, standard storage only, no AN.
    VmSize("Standard_A2_v2", "standardAv2Family", 2, 4, ("V1",), False, False, False, 4, 2),
)
BY_NAME = {size.name.lower(): size for size in CATALOGUE}


def find(name: str | None) -> VmSize | None:
    """A size by name, case-insensitively (ARM accepts ``standard_d2as_v5``)."""
    return BY_NAME.get((name or "").lower())


def resource_sku(size: VmSize, location: str, restricted: bool) -> dict[str, Any]:
    """One ``virtualMachines`` entry of Resource SKUs - List for ``location``."""
    restrictions: list[dict[str, Any]] = []
    if restricted:
        restrictions.append(
            {
                "type": "Location",
                "values": [location],
                "restrictionInfo": {"locations": [location]},
                "reasonCode": "NotAvailableForSubscription",
            }
        )
    return {
        "resourceType": "virtualMachines",
        "name": size.name,
        "tier": "Standard",
        "size": size.size,
        "family": size.family,
        "locations": [location],
        "locationInfo": [{"location": location, "zones": ["1", "2", "3"], "zoneDetails": []}],
        "capabilities": size.capabilities(),
        "restrictions": restrictions,
    }
