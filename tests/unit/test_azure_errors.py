"""Azure failures → retry later, or tell the user what to change (the pure part of errors.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import CredentialUnavailableError

from azure_edition_operator import correlation
from azure_edition_operator import reasons as vocab
from azure_edition_operator.azure.errors import (
    AzurePermanentError,
    AzureRetryableError,
    classify,
    from_exception,
    retry_after_of,
)
from azure_edition_operator.conditions import Condition, upsert

QUOTA_MESSAGE = (
    "Operation could not be completed as it results in exceeding approved standardDASv5Family Cores quota. "
    "Additional details - Deployment Model: Resource Manager, Location: westeurope, Current Limit: 10, "
    "Current Usage: 8, Additional Required: 4, (Minimum) New Limit Required: 12."
)
HOTPATCH_BYPASS = (
    "Hotpatch updates require platform safety checks. Set bypassPlatformSafetyChecksOnUserSchedule to false."
)


@pytest.mark.parametrize(
    ("status", "code", "message", "retry_after", "kind", "reason", "hint"),
    [
        # throttling: always retryable, Retry-After kept
        (429, "TooManyRequests", "too many", 17.0, AzureRetryableError, vocab.THROTTLED, "throttling"),
        (429, "OperationNotAllowed", "The server rejected the request because too many requests", 2.0,
         AzureRetryableError, vocab.THROTTLED, "throttling"),
        # server side and transport
        (500, "InternalServerError", "boom", None, AzureRetryableError, "InternalServerError", "boom"),
        (503, None, "", 5.0, AzureRetryableError, vocab.RETRYING, "HTTP503"),
        (502, "BadGateway", "", None, AzureRetryableError, vocab.RETRYING, "BadGateway"),
        (408, "RequestTimeout", "", None, AzureRetryableError, "RequestTimeout", "RequestTimeout"),
        (None, "ServiceRequestError", "connection refused", None, AzureRetryableError, vocab.RETRYING, "refused"),
        # transient conflicts
        (409, "RetryableError", "A retryable error occurred.", None, AzureRetryableError, "RetryableError", ""),
        (409, "Conflict", "Another operation is in progress", None, AzureRetryableError, "Conflict", ""),
        (409, "OperationNotAllowed",
         "Operation 'update' is not allowed since the VM is marked for deletion. You can only retry the Delete",
         None, AzureRetryableError, "Conflict", "in progress"),
        (409, "OperationNotAllowed", "Operation 'PutVM' is not allowed since another operation is in progress",
         None, AzureRetryableError, "Conflict", "in progress"),
        (409, "OperationNotAllowed", "Disk d1 is attached to VM /subscriptions/x/vm1.", None,
         AzureRetryableError, "Conflict", "in progress"),
        (400, "NicInUse", "Network Interface n is used by existing resource vm", None,
         AzureRetryableError, "NicInUse", ""),
        (409, "SomethingNew", "", None, AzureRetryableError, vocab.RETRYING, ""),  # unknown 409: concurrency
        (409, "AllocationFailed", "no capacity", None, AzureRetryableError, "AllocationFailed", "spec.azure.vmSize"),
        # the user must change something
        (400, "InvalidParameter", HOTPATCH_BYPASS, None, AzurePermanentError, "InvalidParameter", "bypassPlatform"),
        (409, "SkuNotAvailable", "The requested size is not available", None, AzurePermanentError, "SkuNotAvailable",
         "spec.azure.vmSize"),
        (409, "OperationNotAllowed", QUOTA_MESSAGE, None, AzurePermanentError, vocab.QUOTA_EXCEEDED, "quota increase"),
        (400, "QuotaExceeded", "quota", None, AzurePermanentError, vocab.QUOTA_EXCEEDED, "quota increase"),
        (404, "PlatformImageNotFound", "The platform image 'a:b:c:d' is not available", None, AzurePermanentError,
         "PlatformImageNotFound", "spec.image.version"),
        (404, "ImageNotFound", "nope", None, AzurePermanentError, "PlatformImageNotFound", "spec.image"),
        # transient under GitOps (issue #12): another tool creates the group, the subnet, the role a moment later
        (400, "InvalidResourceReference", "Resource /subnets/nope referenced by resource nic was not found",
         None, AzureRetryableError, "InvalidResourceReference", "spec.azure.subnetId"),
        (403, "AuthorizationFailed", "does not have authorization", None, AzureRetryableError,
         "AuthorizationFailed", "Virtual Machine Contributor"),
        (403, "LinkedAuthorizationFailed", "join/action", None, AzureRetryableError, "LinkedAuthorizationFailed",
         "subnets/join/action"),
        (404, "ResourceGroupNotFound", "Resource group 'x' could not be found.", None, AzureRetryableError,
         "ResourceGroupNotFound", "spec.azure.resourceGroup"),
        (409, "MissingSubscriptionRegistration", "not registered", None, AzureRetryableError,
         "MissingSubscriptionRegistration", "register"),
        (400, "ReferencedResourceNotProvisioned", "nic is Updating", None, AzureRetryableError,
         "ReferencedResourceNotProvisioned", "still being provisioned"),
        (404, "SubscriptionNotFound", "", None, AzurePermanentError, "SubscriptionNotFound",
         "spec.azure.subscriptionId"),
        (409, "PropertyChangeNotAllowed", "Changing property 'osDisk.name' is not allowed.", None,
         AzurePermanentError, "InvalidParameter", "create a new AzureEditionVM"),
        (409, "OperationNotAllowed", "Some other rule", None, AzurePermanentError, "OperationNotAllowed",
         "Some other rule"),
        (400, "LocationNotAvailableForResourceType", "", None, AzurePermanentError, "InvalidParameter",
         "spec.azure.location"),
        (400, "WhoKnows", "strange", None, AzurePermanentError, vocab.FAILED, "strange"),  # unknown 4xx
        (401, "InvalidAuthenticationToken", "bad token", None, AzurePermanentError, "AuthenticationFailed",
         "identity"),
    ],
)  # fmt: skip
def test_classify(status, code, message, retry_after, kind, reason, hint) -> None:
    error = classify(status, code, message, retry_after)
    assert type(error) is kind
    assert error.reason == reason
    assert error.code == (code or f"HTTP{status}")
    assert error.status == status
    assert hint in error.message, error.message
    if message:
        assert message in error.message, "Azure's own words must stay visible"
        assert error.azure_message == message
    if isinstance(error, AzureRetryableError) and code != "AllocationFailed":
        assert error.retry_after == retry_after


def test_allocation_failures_wait_minutes_by_default() -> None:
    error = classify(409, "AllocationFailed", "no capacity")
    assert isinstance(error, AzureRetryableError)
    assert error.retry_after == 300.0
    assert classify(409, "AllocationFailed", "", 42.0).retry_after == 42.0  # type: ignore[attr-defined]


def test_errors_print_code_and_message() -> None:
    error = classify(400, "InvalidParameter", HOTPATCH_BYPASS)
    assert str(error).startswith("InvalidParameter: ")
    assert error.args == (error.code, error.message)


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (ServiceRequestError("connection refused"), AzureRetryableError, "ServiceRequestError"),
        (ServiceResponseError("connection reset"), AzureRetryableError, "ServiceResponseError"),
        (TimeoutError(), AzureRetryableError, "Timeout"),
        (ClientAuthenticationError("AADSTS7000215: Invalid client secret provided."), AzurePermanentError,
         "AuthenticationFailed"),
        (CredentialUnavailableError("EnvironmentCredential authentication unavailable."), AzurePermanentError,
         "CredentialUnavailable"),
    ],
)  # fmt: skip
def test_from_exception_without_response(exc: BaseException, kind: type, code: str) -> None:
    error = from_exception(exc)
    assert type(error) is kind
    assert error.code == code


def test_our_own_errors_pass_through() -> None:
    mine = AzurePermanentError("OwnershipConflict", "not ours", 409, reason=vocab.OWNERSHIP_CONFLICT)
    assert from_exception(mine) is mine


def test_other_exceptions_are_not_swallowed() -> None:
    with pytest.raises(TypeError):
        from_exception(KeyError("x"))


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"Retry-After": "2"}, 2.0, 2.0),
        ({"retry-after": "0"}, 0.0, 0.0),
        ({"Retry-After": "1.5"}, 1.5, 1.5),
        ({"Retry-After": "-3"}, 0.0, 0.0),
        ({"Retry-After": "Thu, 15 Jan 2026 11:59:00 GMT"}, 0.0, 0.0),  # in the past: go now
        ({"x-ms-retry-after-ms": "1500"}, 1.5, 1.5),
        ({"Retry-After": "soon"}, None, None),  # unreadable: no advice
        ({}, None, None),
    ],
)
def test_retry_after_is_read_as_the_sdk_reads_it(
    headers: dict[str, str], low: float | None, high: float | None
) -> None:
    seconds = retry_after_of(SimpleNamespace(headers=headers, request=None))
    assert seconds is None if low is None else low <= seconds <= high  # type: ignore[operator]
    assert retry_after_of(None) is None


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    assert 3500.0 < retry_after_of(SimpleNamespace(headers={"Retry-After": when}, request=None)) <= 3600.0  # type: ignore[operator]


class _Response:
    """The parts of an azure-core HTTP response that HttpResponseError and ``from_exception`` read."""

    def __init__(self, status: int, body: dict, headers: dict[str, str]) -> None:
        from azure.core.utils import CaseInsensitiveDict

        self.status_code, self.reason, self.request = status, "x", None
        self.headers = CaseInsensitiveDict(headers)
        self._body = json.dumps(body)
        self.content_type = "application/json"

    def text(self, encoding: str | None = None) -> str:
        return self._body


CORRELATION = "5f6a8c1e-0b7d-4f0e-9c51-2d3b4a5e6f70"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (409, {"error": {"code": "OperationNotAllowed", "message": QUOTA_MESSAGE}}, AzurePermanentError),
        (429, {"error": {"code": "TooManyRequests", "message": "slow down"}}, AzureRetryableError),
        (200, {"status": "Failed", "error": {"code": "InternalExecutionError", "message": "boom"}}, AzureRetryableError),
    ],
)  # fmt: skip
def test_every_answered_failure_carries_azures_correlation_id(status: int, body: dict, kind: type) -> None:
    """For a support ticket: the id is in the field and in the message the condition, Event and log quote."""
    exc = HttpResponseError(response=_Response(status, body, {"x-ms-correlation-request-id": CORRELATION}))
    error = from_exception(exc)
    assert type(error) is kind
    assert error.correlation_id == CORRELATION
    assert error.message.endswith(f" [x-ms-correlation-request-id: {CORRELATION}]"), error.message
    without = from_exception(HttpResponseError(response=_Response(status, body, {})))
    assert without.correlation_id == "" and "correlation" not in without.message
    assert correlation.without(error.message) == without.message


def test_the_same_failure_with_a_new_correlation_id_rewrites_no_condition() -> None:
    """Each retry gets a new id from Azure; the condition keeps the first (status is written on change)."""
    now = datetime(2026, 12, 7, tzinfo=UTC)
    first = Condition("VMProvisioned", "False", "QuotaExceeded", "quota" + correlation.note("a"))
    again = Condition("VMProvisioned", "False", "QuotaExceeded", "quota" + correlation.note("b"))
    other = Condition("VMProvisioned", "False", "QuotaExceeded", "another quota" + correlation.note("c"))
    stored = upsert([], first, now, 1)
    assert upsert(stored, again, now + timedelta(minutes=15), 1) == stored
    assert upsert(stored, other, now, 1)[0].message == other.message
    assert correlation.same_failure("a", "a") and not correlation.same_failure("a", "b")
