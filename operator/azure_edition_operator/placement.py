"""Where a VM can go: is the image offered in the region, and which sizes could replace one Azure refuses
(pure; the reads are in ``azure/placement.py``).

Images: Azure's ``virtualMachineImages`` list (Virtual Machine Images - List Skus, per region) is the
authority on what a region offers; Windows Server 2025 Azure Edition is not offered everywhere. Sizes: the
same Resource SKUs answer that Extended Network reads (``extended_network.sizes_in``): a refused size
is answered with the sizes of its family that the region offers to the subscription. The family is the
Resource SKU's ``family`` when the region lists the size, else it is read from the size's name (Azure's
naming convention: learn.microsoft.com/azure/virtual-machines/vm-naming-conventions), so a size the region
does not list at all still gets an answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .extended_network import Size

MAX_SUGGESTED = 6

# [Family] + [# of vCPUs] + [constrained vCPUs] + [additive features] + [accelerator] + [version]
_NAME = re.compile(r"^standard_([a-z]+)(\d+)(?:-\d+)?([a-z]*)(?:_([a-z0-9]+))??(?:_(v\d+))?$", re.IGNORECASE)


def series_of(size_name: str) -> str | None:
    """The series key of a size name: ``Standard_D2s_v5`` and ``Standard_D16s_v5`` are ``ds-v5``;
    ``Standard_D2as_v5`` is ``das-v5``; ``Standard_B2s`` is ``bs``. None for a name not in Azure's form."""
    match = _NAME.match(size_name.strip())
    if match is None:
        return None
    family, _, features, accelerator, version = match.groups()
    key = (family + features + (accelerator or "")).lower()
    return f"{key}-{version.lower()}" if version else key


def image_offered(sku: str, offered: Iterable[str]) -> bool:
    """Whether the region's list of SKUs (names, as Azure answers) has ``sku`` (case-insensitive, as ARM)."""
    return sku.lower() in {s.lower() for s in offered}


def image_refusal(sku: str, location: str, regions_with_it: Iterable[str], looked_in: int) -> str:
    """The message of ``ImageNotOfferedInRegion``: what is missing where, and where it is offered."""
    regions = sorted(set(regions_with_it))
    where = (f"regions that offer it: {', '.join(regions)}" if regions
             else f"none of the {looked_in} regions looked in offers it")  # fmt: skip
    return (f"the image MicrosoftWindowsServer:WindowsServer:{sku} is not offered in {location} (Azure's "
            f"virtualMachineImages list for the region lacks it); {where}; change spec.azure.location, or pin "
            "an image the region offers in spec.image")  # fmt: skip


def same_family(vm_size: str, sizes: Mapping[str, Size]) -> list[str]:
    """Sizes of ``vm_size``'s family the region offers to the subscription (not restricted), closest in
    vCPUs and memory first; the refused size itself is never suggested."""
    own = sizes.get(vm_size.lower())
    series = series_of(vm_size)

    def kin(size: Size) -> bool:
        if own is not None and own.family:
            return size.family.lower() == own.family.lower()
        return series is not None and series_of(size.name) == series

    fits = [s for s in sizes.values() if s.name.lower() != vm_size.lower() and not s.restricted and kin(s)]
    like_cpu = own.vcpus if own is not None else _vcpus_of(vm_size)
    like_mem = own.memory_gb if own is not None else 0.0
    fits.sort(key=lambda s: (abs(s.vcpus - like_cpu), abs(s.memory_gb - like_mem), s.name))
    return [s.name for s in fits[:MAX_SUGGESTED]]


def _vcpus_of(size_name: str) -> float:
    match = _NAME.match(size_name.strip())
    return float(match.group(2)) if match else 0.0


def size_advice(vm_size: str, location: str, sizes: Mapping[str, Size]) -> str:
    """What to add to Azure's refusal of ``vm_size`` (SkuNotAvailable, or "not available in the current
    region"); empty when Resource SKUs could not be read (``sizes`` empty)."""
    if not sizes:
        return ""
    would = same_family(vm_size, sizes)
    if would:
        return f"sizes of the same family {location} offers to this subscription: {', '.join(would)}"
    return f"{location} offers no size of {vm_size}'s family to this subscription; choose another family"


SIZE_REFUSALS = frozenset({"SkuNotAvailable"})


def is_size_refusal(code: str, azure_message: str) -> bool:
    """A refusal of the VM size: SkuNotAvailable, or InvalidParameter's "The requested VM size ... is not
    available in the current region" (Azure's answer for a size the region does not offer at all)."""
    if code in SIZE_REFUSALS:
        return True
    text = azure_message.lower()
    return code == "InvalidParameter" and "vm size" in text and "not available" in text
