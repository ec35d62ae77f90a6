"""One reconcile pass: spec → image → credentials → Azure → ``status.Observation``.

This is the shell between kopf and the Azure layer. Decisions (image choice, VM parameters,
conditions) are made by pure functions elsewhere; this module sequences them and turns failures
into conditions plus kopf's retry semantics (``TemporaryError`` for what time fixes,
``PermanentError`` for what needs the user).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .api.v1alpha1 import AzureEditionVMSpec
from .azure.errors import AzurePermanentError, AzureRetryableError
from .conditions import ConditionType
from .images import (
    Capability,
    Experience,
    ImagePins,
    ImageReference,
    UnsupportedCapabilitiesError,
    WindowsServerVersion,
    resolve,
    row_for_sku,
)
from .kube import AdminCredentials, CredentialsUnavailable
from .status import Observation, condition
from .tenancy import REASON as NOT_PERMITTED
from .tenancy import NotPermitted

NOT_PERMITTED_RETRY = 60.0  # seconds: until a cluster administrator changes a TenantPolicy


@dataclass(frozen=True)
class Outcome:
    """An observation to write, and whether/when kopf should try again."""

    observation: Observation
    retry_after: float | None = None  # TemporaryError(delay=...)
    permanent: str | None = None  # PermanentError(message)
    event: tuple[str, str, str] | None = None  # (type, reason, message) for an error Event


def pins_of(spec: AzureEditionVMSpec) -> ImagePins:
    image = spec.image
    if image is None:
        return ImagePins()
    return ImagePins(image.windows_server_version, image.experience, image.small_disk, image.version)


def image_from_status(status: Mapping[str, Any]) -> ImageReference | None:
    """The image recorded in status: once chosen it is kept, because a VM cannot change image in place."""
    image = status.get("image")
    if not image:
        return None
    return ImageReference(
        sku=image["sku"],
        version=image["version"],
        windows_server_version=WindowsServerVersion(image["windowsServerVersion"]),
        experience=Experience(image["experience"]),
        reason=f"{image['sku']}: the image the VM was created from (an image cannot change in place)",
        publisher=image["publisher"],
        offer=image["offer"],
    )


def choose_image(spec: AzureEditionVMSpec, status: Mapping[str, Any]) -> ImageReference:
    """Keep the recorded image if it still carries every capability; otherwise resolve afresh."""
    capabilities = set(spec.capabilities)
    recorded = image_from_status(status)
    if recorded is None:
        return resolve(capabilities, pins_of(spec))
    row = row_for_sku(recorded.sku)
    missing = tuple(c for c in capabilities if row is None or not row.carries(c))
    if missing:
        raise ImageChangeRequired(recorded, missing)
    return recorded


class ImageChangeRequired(Exception):
    """The spec now asks for something the VM's image cannot carry; we never replace a VM silently."""

    def __init__(self, image: ImageReference, missing: tuple[Capability, ...]) -> None:
        caps = ", ".join(missing)
        super().__init__(
            f"the VM runs {image.sku}, which cannot carry {caps}; a VM cannot change its image in place: "
            f"remove {caps} from spec.capabilities, or create a new AzureEditionVM for it"
        )


CredentialsLoader = Callable[[], Awaitable[AdminCredentials]]
EnsureVM = Callable[[AzureEditionVMSpec, ImageReference, CredentialsLoader], Awaitable[Mapping[str, Any]]]


async def reconcile_pass(
    raw_spec: Mapping[str, Any],
    status: Mapping[str, Any],
    generation: int,
    ensure_vm: EnsureVM,
    load_credentials: CredentialsLoader,
    missing_secret_retry: float,
) -> Outcome:
    """Run one pass and describe it; never raises for expected failures."""
    try:
        spec = AzureEditionVMSpec.model_validate(raw_spec)
    except ValidationError as err:
        message = f"spec is invalid: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}"
        obs = Observation(
            generation,
            frozenset(),
            vm_condition=condition(ConditionType.VM_PROVISIONED, False, "InvalidSpec", message),
        )
        return Outcome(obs, permanent=message, event=("Warning", "InvalidSpec", message))
    caps = frozenset(spec.capabilities)
    try:
        image = choose_image(spec, status)
    except (UnsupportedCapabilitiesError, ImageChangeRequired) as err:
        reason = "UnsupportedCapabilities"
        obs = Observation(
            generation, caps, image_condition=condition(ConditionType.IMAGE_RESOLVED, False, reason, str(err))
        )
        return Outcome(obs, permanent=str(err), event=("Warning", reason, str(err)))
    image_ok = condition(ConditionType.IMAGE_RESOLVED, True, "ImageResolved", image.reason)
    try:
        vm = await ensure_vm(spec, image, load_credentials)
    except NotPermitted as err:  # tenancy (issue 14): no Azure call was made; a policy change may allow it
        failed = condition(ConditionType.VM_PROVISIONED, False, NOT_PERMITTED, str(err))
        obs = Observation(generation, caps, image=image, image_condition=image_ok, vm_condition=failed)
        return Outcome(obs, retry_after=NOT_PERMITTED_RETRY, event=("Warning", NOT_PERMITTED, str(err)))
    except CredentialsUnavailable as err:
        reason = getattr(err, "reason", "AdminCredentialsMissing")  # AdminCredentialsInvalid names the rule
        failed = condition(ConditionType.VM_PROVISIONED, False, reason, str(err))
        obs = Observation(generation, caps, image=image, image_condition=image_ok, vm_condition=failed)
        return Outcome(obs, retry_after=missing_secret_retry, event=("Warning", reason, str(err)))
    except AzureRetryableError as err:
        reason = "Throttled" if err.reason == "Throttled" else "Creating"
        message = f"Azure asked us to retry ({err.code}): {err.message}"
        failed = condition(ConditionType.VM_PROVISIONED, False, reason, message)
        obs = Observation(generation, caps, image=image, image_condition=image_ok, vm_condition=failed)
        return Outcome(obs, retry_after=err.retry_after or 5.0)
    except AzurePermanentError as err:
        reason = err.reason if err.reason in ("QuotaExceeded", "OwnershipConflict") else "Failed"
        message = f"Azure refused the VM ({err.code}): {err.message}"
        failed = condition(ConditionType.VM_PROVISIONED, False, reason, message)
        obs = Observation(generation, caps, image=image, image_condition=image_ok, vm_condition=failed)
        return Outcome(obs, permanent=message, event=("Warning", err.code, message))
    ok = condition(ConditionType.VM_PROVISIONED, True, "Succeeded", "the VM is provisioned")
    return Outcome(
        Observation(generation, caps, image=image, image_condition=image_ok, vm=vm, vm_condition=ok)
    )
