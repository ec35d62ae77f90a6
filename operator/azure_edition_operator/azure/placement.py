"""The thin shell of placement (decisions in ``placement.py``): is the resolved image offered in the VM's
region (before the first PUT), and which sizes to name when Azure refuses ``spec.azure.vmSize``.

Reads, all cached for ``extended.STATIC_TTL_SECONDS`` and shared while in flight (``fresh.Fresh``): the
region's image SKUs (Virtual Machine Images - List Skus: one read per subscription, region and offer), and
the region's Resource SKUs (``extended.sizes``, the very read Extended Network makes). The regions that do
offer a missing image are looked up only on a refusal, in ``PROBE_REGIONS``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError

from .. import placement
from .. import reasons as vocab
from ..api.v1alpha1 import AzureEditionVMSpec
from ..fresh import Fresh
from ..images import ImageReference
from . import extended
from .errors import AzureFailure, AzurePermanentError, from_exception

log = logging.getLogger(__name__)

IMAGE_SKUS: Fresh[frozenset[str] | None] = Fresh(extended.STATIC_TTL_SECONDS)

PROBE_REGIONS = (
    "eastus", "eastus2", "centralus", "westus2", "westus3", "canadacentral", "brazilsouth", "northeurope",
    "westeurope", "uksouth", "francecentral", "germanywestcentral", "swedencentral", "switzerlandnorth",
    "eastasia", "southeastasia", "japaneast", "koreacentral", "australiaeast", "centralindia",
)  # fmt: skip
"""Where to look for a missing image (Azure's public regions with the most services, per
learn.microsoft.com/azure/reliability/regions-list): a refusal names those of them that offer it."""


class ImageNotOffered(Exception):
    """The resolved image is not offered in ``spec.azure.location``: refused before the first PUT."""

    reason = vocab.IMAGE_NOT_OFFERED


async def image_skus(compute: Any, subscription_id: str, location: str, publisher: str, offer: str
                     ) -> frozenset[str] | None:  # fmt: skip
    """The region's SKUs of the offer, lower case; None when they cannot be read (then nothing is judged)."""

    async def read() -> frozenset[str] | None:
        try:
            rows = await compute.virtual_machine_images.list_skus(location, publisher, offer)
        except HttpResponseError as err:
            if err.status_code not in (403, 404):
                raise
            log.warning("cannot list image SKUs of %s:%s in %s (%s): the image's region is not checked",
                        publisher, offer, location, err.status_code)  # fmt: skip
            return None
        return frozenset(str(r.name).lower() for r in rows)

    key = ("image-skus", subscription_id.lower(), location.lower(), publisher.lower(), offer.lower())
    return await IMAGE_SKUS.get(key, read)


async def check_image(clients: Any, spec: AzureEditionVMSpec, image: ImageReference) -> None:
    """Before the first PUT: ``ImageNotOffered`` when the region's list lacks the image's SKU. A VM named by
    spec.azure.vmName is never created, so nothing is asked: it runs the image it runs."""
    azure = spec.azure
    if azure.vm_name is not None:
        return
    compute = clients.compute(azure.subscription_id)
    try:
        offered = await image_skus(
            compute, azure.subscription_id, azure.location, image.publisher, image.offer
        )
        if offered is None or placement.image_offered(image.sku, offered):
            return
        others = [r for r in PROBE_REGIONS if r != azure.location.lower().replace(" ", "")]
        found = await asyncio.gather(
            *(_offers(compute, azure.subscription_id, r, image) for r in others), return_exceptions=True
        )
    except AzureError as err:  # the reconcile pass reports these as it does any Azure failure
        raise from_exception(err) from err
    regions = [r for r, ok in zip(others, found, strict=True) if ok is True]
    raise ImageNotOffered(placement.image_refusal(image.sku, azure.location, regions, len(others)))


async def _offers(compute: Any, subscription_id: str, region: str, image: ImageReference) -> bool:
    offered = await image_skus(compute, subscription_id, region, image.publisher, image.offer)
    return offered is not None and placement.image_offered(image.sku, offered)


async def with_size_advice(clients: Any, spec: AzureEditionVMSpec, err: AzureFailure) -> AzureFailure:
    """Azure's refusal of the VM size, with the sizes of its family the region offers (from Resource SKUs,
    one cached read per region); any other failure as it came."""
    if not isinstance(err, AzurePermanentError) or not placement.is_size_refusal(err.code, err.azure_message):
        return err
    azure = spec.azure
    try:
        sizes = await extended.sizes(
            clients.compute(azure.subscription_id), azure.subscription_id, azure.location
        )
    except AzureError as read_err:  # advice is a courtesy: Azure's own refusal still stands
        log.warning("cannot read Resource SKUs of %s for size advice: %s", azure.location, read_err)
        return err
    advice = placement.size_advice(azure.vm_size, azure.location, sizes)
    if advice:
        err.message = f"{err.message}; {advice}"
    return err
