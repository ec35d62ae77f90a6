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
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineContext, PipelineResponse
from azure.core.pipeline.policies import RetryPolicy

from .. import correlation
from .. import reasons as vocab
from ..reasons import AZURE_CODES, WRAPPER_CODES


@dataclass(eq=False)
class AzureFailure(Exception):
    """An Azure call failed, as the operator acts on it (not azure-core's ``AzureError``, which
    ``from_exception`` maps to this). ``code`` is Azure's (or ours when Azure gave none); ``message`` says what to do;
    ``reason`` is the VMProvisioned reason of ``reasons.VM_PROVISIONED``."""

    code: str
    message: str
    status: int | None = None
    azure_message: str = ""
    reason: str = vocab.FAILED
    correlation_id: str = ""  # Azure's x-ms-correlation-request-id, when Azure answered

    def __post_init__(self) -> None:
        super().__init__(self.code, self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(eq=False)
class AzureRetryableError(AzureFailure):
    """Time fixes this one (throttling, a busy resource, RBAC propagation, a 5xx, a dropped connection)."""

    retry_after: float | None = None
    reason: str = vocab.RETRYING


@dataclass(eq=False)
class AzurePermanentError(AzureFailure):
    """Retrying the same request soon will fail the same way; a person must change something."""


PACING_CODE = "OperatorPacing"
"""Ours, not Azure's: the operator held a write back for pacing (clients.ThrottleGate) and handed it back."""


class WriteRefused(AzurePermanentError):
    """``spec.managementPolicy: Observe``: a write was needed and the operator made none (the message
    says what it would have done)."""


def write_refused(what: str) -> WriteRefused:
    return WriteRefused(vocab.OBSERVE_ONLY, f"observe only (spec.managementPolicy): would have {what}; "
                        "nothing was written", None, reason=vocab.OBSERVE_ONLY)  # fmt: skip


ALLOCATION_CODES = frozenset(c for c, e in AZURE_CODES.items() if e.reason_name == "AllocationFailed")

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
) -> AzureFailure:
    """Decide what an Azure failure means, by ``reasons.AZURE_CODES`` first and HTTP status second.

    ``status`` None means no HTTP answer arrived (or an LRO failed).
    """
    code = code or (f"HTTP{status}" if status else "ConnectionError")
    text = azure_message.strip()
    entry = AZURE_CODES.get(code)

    def message(hint: str) -> str:
        azure = f"Azure {code}: {text}" if text else f"Azure {code}"
        return f"{hint} ({azure})" if hint else azure

    def retryable(reason: str, hint: str = "", wait: float | None = retry_after) -> AzureFailure:
        return AzureRetryableError(code, message(hint), status, text, reason, retry_after=wait)

    def permanent(reason: str, hint: str = "") -> AzureFailure:
        return AzurePermanentError(code, message(hint), status, text, reason)

    if status == 429:
        return retryable(vocab.THROTTLED, AZURE_CODES["TooManyRequests"].hint)
    if code == "OperationNotAllowed" and _QUOTA_TEXT.search(text):
        return permanent(vocab.QUOTA_EXCEEDED, AZURE_CODES["QuotaExceeded"].hint)
    if code in ("OperationNotAllowed", "Conflict") and _BUSY_TEXT.search(text):
        return retryable("Conflict", AZURE_CODES["Conflict"].hint)
    if entry is not None:
        if entry.code in ALLOCATION_CODES:
            return retryable(entry.reason_name, entry.hint, retry_after or vocab.ALLOCATION_RETRY_SECONDS)
        if entry.transient:
            return retryable(entry.reason_name, entry.hint)
        return permanent(entry.reason_name, entry.hint)
    if status is None or status == 408 or status >= 500 or status == 409:
        return retryable(vocab.RETRYING)  # unknown conflicts are concurrency, which time resolves
    return permanent(vocab.FAILED)


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


_RETRY_POLICY = RetryPolicy()  # only for its public ``get_retry_after``; it sends nothing


def retry_after_of(response: Any) -> float | None:
    """Azure's wait, in seconds, from an HTTP response's headers: the SDK's own reading.

    azure-core's ``RetryPolicy.get_retry_after`` is its one public Retry-After reader (seconds or an
    HTTP date, and the ``retry-after-ms`` / ``x-ms-retry-after-ms`` variants), so the operator waits
    exactly as the SDK's own retries would. An unreadable value means no advice (None), not an error.
    """
    if response is None:
        return None
    try:
        return _RETRY_POLICY.get_retry_after(
            PipelineResponse(response.request, response, PipelineContext(None))
        )
    except (TypeError, ValueError):  # an HTTP date without a zone raises TypeError in azure-core
        return None


def from_exception(exc: BaseException) -> AzureFailure:
    """Map an azure-core / azure-identity / asyncio exception to our two kinds.

    An LRO that ends Failed raises HttpResponseError whose response is the *status poll* (HTTP 200)
    and whose body carries the operation's error: it is classified by code alone.
    """
    if isinstance(exc, AzureFailure):
        return exc
    if isinstance(exc, HttpResponseError) and exc.response is not None:
        status = exc.status_code
        code, message = _error_body(exc)
        correlation_id = correlation_id_of(exc.response)
        if status is not None and status < 400:
            status = None  # a failed LRO, reported through a successful status poll
            return with_correlation(_lro_failure(code or "OperationFailed", message), correlation_id)
        return with_correlation(classify(status, code, message, retry_after_of(exc.response)), correlation_id)
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


def correlation_id_of(response: Any) -> str:
    """Azure's ``x-ms-correlation-request-id`` of a response ('' without one)."""
    try:
        return str(response.headers.get(correlation.HEADER) or "").strip()
    except AttributeError:
        return ""


def with_correlation(failure: AzureFailure, correlation_id: str) -> AzureFailure:
    """The failure carrying Azure's correlation id, in its field and at the end of its message (which
    the log line, the Event and the condition quote): what a support ticket needs."""
    if correlation_id and not failure.correlation_id:
        failure.correlation_id = correlation_id
        failure.message += correlation.note(correlation_id)
    return failure


def _lro_failure(code: str, message: str) -> AzureFailure:
    """A long-running operation ended Failed. Codes we know keep their meaning; an unknown code is
    permanent, because the resource is now Failed and resending the same request rarely helps."""
    error = classify(None, code, message)
    if isinstance(error, AzureRetryableError) and code not in AZURE_CODES:
        return AzurePermanentError(error.code, error.message, None, error.azure_message, vocab.FAILED)
    return error
