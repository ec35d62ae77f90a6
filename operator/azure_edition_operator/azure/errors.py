"""Azure failures → two kinds the operator acts on: retry later, or tell the user what to change.

``classify`` is the pure decision (status, Azure code, Azure message, Retry-After → error), table-
tested; ``from_exception`` reads those facts out of azure-core's exceptions, including the
``HttpResponseError`` an LRO poller raises when an operation ends ``Failed`` (its body carries the
operation's ``error``). Every error keeps Azure's code and adds what to change, because the message
ends up in a condition that a person reads.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

# Condition reasons (DESIGN §2, VMProvisioned) an error maps to.
REASON_THROTTLED = "Throttled"
REASON_QUOTA = "QuotaExceeded"
REASON_RETRYING = "Retrying"
REASON_FAILED = "Failed"
REASON_CONFLICT = "OwnershipConflict"

# Default wait for capacity problems, which clear on the scale of minutes, not seconds.
ALLOCATION_RETRY_AFTER = 300.0


@dataclass(eq=False)
class AzureError(Exception):
    """An Azure call failed. ``code`` is Azure's (or ours when Azure gave none); ``message`` says what to do."""

    code: str
    message: str
    status: int | None = None
    azure_message: str = ""
    reason: str = REASON_FAILED

    def __post_init__(self) -> None:
        super().__init__(self.code, self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(eq=False)
class AzureRetryableError(AzureError):
    """Time fixes this one (throttling, a busy resource, a 5xx, a dropped connection)."""

    retry_after: float | None = None
    reason: str = REASON_RETRYING


@dataclass(eq=False)
class AzurePermanentError(AzureError):
    """Retrying the same request will fail the same way; a person must change something."""


# ----------------------------------------------------------------------------- what to tell the user

_SUBNETS = "spec.azure.subnetId (and spec.extendedNetwork.extendedSubnetId)"
_RBAC = (
    "grant the operator's Azure identity Virtual Machine Contributor and Network Contributor on the "
    "resource group, and Microsoft.Network/virtualNetworks/subnets/join/action on the subnets"
)

PERMANENT_HINTS: Mapping[str, str] = {
    "InvalidParameter": "Azure refused a VM parameter; change the spec field it concerns",
    "BadRequest": "Azure refused the request; change the spec field it concerns",
    "InvalidRequestContent": "Azure could not read the request; this is an operator bug, please report it",
    "SkuNotAvailable": (
        "the VM size is not offered in this region for this subscription: choose another spec.azure.vmSize "
        "(az vm list-skus --location <region>) or another spec.azure.location"
    ),
    "QuotaExceeded": (
        "the subscription's vCPU quota would be exceeded: request a quota increase, free capacity, or "
        "choose a smaller spec.azure.vmSize"
    ),
    "PlatformImageNotFound": (
        "the Marketplace image is not available here: unpin or change spec.image.version, or use another "
        "spec.azure.location"
    ),
    "ImageNotFound": "the image does not exist: unpin or change spec.image",
    "InvalidResourceReference": (
        f"a referenced resource does not exist or is in another region: check {_SUBNETS}"
    ),
    "InvalidSubnetReference": f"the subnet is invalid: check {_SUBNETS}",
    "AuthorizationFailed": f"the operator is not allowed to do this: {_RBAC}",
    "LinkedAuthorizationFailed": f"the operator may not use a linked resource (usually the subnet): {_RBAC}",
    "AuthenticationFailed": "Azure rejected the operator's credential: check its Azure identity settings",
    "InvalidAuthenticationToken": "Azure rejected the operator's token: check its Azure identity settings",
    "InvalidAuthenticationTokenTenant": (
        "the operator's identity belongs to another tenant than the subscription: check AZURE_TENANT_ID"
    ),
    "CredentialUnavailable": "no Azure credential is configured: see the operator's Azure identity settings",
    "ResourceGroupNotFound": (
        "the resource group does not exist: create it or fix spec.azure.resourceGroup "
        "(the operator does not create resource groups)"
    ),
    "SubscriptionNotFound": (
        "the subscription does not exist or the operator cannot see it: check spec.azure.subscriptionId"
    ),
    "LocationNotAvailableForResourceType": "the region cannot host this resource: change spec.azure.location",
    "NoRegisteredProviderFound": "the subscription cannot serve this API: register the resource provider",
    "MissingSubscriptionRegistration": (
        "register the Microsoft.Compute and Microsoft.Network resource providers in the subscription"
    ),
    "PropertyChangeNotAllowed": (
        "that property cannot change after creation: revert the change, or create a new AzureEditionVM"
    ),
    "OperationNotAllowed": "Azure does not allow this operation on the VM now",
    "OwnershipConflict": "",  # our own error: its message already says what to do
    "ImageDrift": "",
}

RETRYABLE_CODES = frozenset(
    {
        "RetryableError",
        "Conflict",
        "AnotherOperationInProgress",
        "OperationPreempted",
        "InternalServerError",
        "InternalExecutionError",
        "InternalOperationError",
        "ServerTimeout",
        "GatewayTimeout",
        "ServiceUnavailable",
        "TooManyRequests",
        "NicInUse",
        "PublicIPAddressCannotBeDeleted",
        "ReferencedResourceNotProvisioned",
        "RequestTimeout",
        "AllocationFailed",
        "ZonalAllocationFailed",
        "OverconstrainedAllocationRequest",
        "OverconstrainedZonalAllocationRequest",
        "ResourceBeingDeleted",
        "ResourceNotFound",  # only ever reaches classify for a resource we just created or are polling
    }
)
ALLOCATION_CODES = frozenset(
    {
        "AllocationFailed",
        "ZonalAllocationFailed",
        "OverconstrainedAllocationRequest",
        "OverconstrainedZonalAllocationRequest",
    }
)
QUOTA_CODES = frozenset({"QuotaExceeded", "OperationNotAllowedQuota", "SubscriptionQuotaExceeded"})
# Generic wrapper codes whose first detail says what actually went wrong.
WRAPPER_CODES = frozenset({"DeploymentFailed", "ResourceDeploymentFailure", "MultipleErrorsOccurred"})

_QUOTA_TEXT = re.compile(r"\bquota\b", re.IGNORECASE)
_BUSY_TEXT = re.compile(
    r"another operation|in progress|marked for deletion|is attached to|currently being|try again later",
    re.IGNORECASE,
)


def classify(
    status: int | None,
    code: str | None,
    azure_message: str = "",
    retry_after: float | None = None,
) -> AzureError:
    """Decide what an Azure failure means. ``status`` None means no HTTP answer arrived (or an LRO failed)."""
    code = code or (f"HTTP{status}" if status else "ConnectionError")
    text = azure_message.strip()

    def retryable(
        reason: str = REASON_RETRYING, wait: float | None = retry_after, hint: str = ""
    ) -> AzureError:
        msg = (
            f"{hint} (Azure {code}: {text})" if hint else f"Azure {code}: {text}" if text else f"Azure {code}"
        )
        return AzureRetryableError(code, msg, status, text, reason, retry_after=wait)

    def permanent(reason: str = REASON_FAILED, hint: str | None = None) -> AzureError:
        hint = PERMANENT_HINTS.get(code, "") if hint is None else hint
        msg = f"{hint} (Azure {code}: {text})" if hint and text else hint or text or f"Azure {code}"
        return AzurePermanentError(code, msg, status, text, reason)

    if status == 429:
        return retryable(REASON_THROTTLED, hint="Azure is throttling the operator's requests; it will retry")
    if code in QUOTA_CODES or (code == "OperationNotAllowed" and _QUOTA_TEXT.search(text)):
        return permanent(REASON_QUOTA, PERMANENT_HINTS["QuotaExceeded"])
    if code == "OperationNotAllowed":
        if _BUSY_TEXT.search(text):
            return retryable(hint="the resource is busy with another operation; it will retry")
        return permanent()
    if code in ALLOCATION_CODES:
        hint = (
            "Azure has no capacity for this VM size here right now; it will retry, or choose another "
            "spec.azure.vmSize or spec.azure.location"
        )
        return retryable(wait=retry_after or ALLOCATION_RETRY_AFTER, hint=hint)
    if code in RETRYABLE_CODES:
        return retryable()
    if code in PERMANENT_HINTS:
        return permanent()
    if status is None or status == 408 or status >= 500:
        return retryable()
    if status == 409:  # unknown conflicts are concurrency, which time resolves
        return retryable()
    return permanent()


# ----------------------------------------------------------------------------- reading azure-core errors


def _error_body(exc: HttpResponseError) -> tuple[str | None, str]:
    """(code, message) from the ARM/ODataV4 envelope, unwrapping generic wrapper codes."""
    error = exc.error
    code, message = (error.code, error.message or "") if error is not None else (None, "")
    if error is None and exc.response is not None:
        try:
            body: Any = json.loads(exc.response.text())
        except (ValueError, TypeError):
            body = None
        if isinstance(body, dict):
            inner = body.get("error", body)
            if isinstance(inner, dict):
                code, message = inner.get("code"), str(inner.get("message") or "")
    if code in WRAPPER_CODES and error is not None and error.details:
        first = error.details[0]
        code, message = first.code or code, first.message or message
    if not message:
        message = str(exc.message or exc.reason or "")
    return code, message


def parse_retry_after(value: str, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (RFC 9110 §10.2.3); None if unreadable."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _retry_after_of(exc: HttpResponseError) -> float | None:
    response = exc.response
    if response is None:
        return None
    headers = {k.lower(): v for k, v in response.headers.items()}
    if value := headers.get("retry-after"):
        return parse_retry_after(value)
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if (value := headers.get(name)) and (ms := parse_retry_after(value)) is not None:
            return ms / 1000.0
    return None


def from_exception(exc: BaseException) -> AzureError:
    """Map an azure-core / azure-identity / asyncio exception to our two kinds.

    An LRO that ends Failed raises HttpResponseError whose response is the *status poll* (HTTP 200)
    and whose body carries the operation's error: it is classified by code alone.
    """
    if isinstance(exc, AzureError):
        return exc
    if isinstance(exc, HttpResponseError) and exc.response is not None:
        status = exc.status_code
        code, message = _error_body(exc)
        if status is not None and status < 400:
            status = None  # a failed LRO, reported through a successful status poll
            return _lro_failure(code or "OperationFailed", message)
        return classify(status, code, message, _retry_after_of(exc))
    if isinstance(exc, ClientAuthenticationError):
        # Raised by azure-identity when no token could be obtained.
        text = str(exc.message or exc)
        if "unavailable" in text.lower():
            return classify(401, "CredentialUnavailable", text)
        return classify(401, "AuthenticationFailed", text)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return classify(None, type(exc).__name__, str(exc.message or exc))
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return classify(None, "Timeout", str(exc) or "the request to Azure timed out")
    if isinstance(exc, HttpResponseError):
        return classify(exc.status_code, None, str(exc.message or exc))
    raise TypeError(f"not an Azure error: {exc!r}") from exc


def _lro_failure(code: str, message: str) -> AzureError:
    """A long-running operation ended Failed. Codes we know keep their meaning; an unknown code is
    permanent, because the resource is now Failed and resending the same request rarely helps."""
    error = classify(None, code, message)
    known = code in RETRYABLE_CODES or code in ALLOCATION_CODES or code == "OperationNotAllowed"
    if isinstance(error, AzureRetryableError) and not known:
        return AzurePermanentError(error.code, error.message, None, error.azure_message, REASON_FAILED)
    return error
