"""The Azure SDK side of the driver: an LRO poller as a one-step ``Operation`` and one generic
``SdkResource`` that every kind (VM, disk, NIC, public IP) is an instance of.

The only place that touches azure-core's polling internals (``_pipeline_response`` for the status
code of a failed status poll and for Retry-After): the public ``AsyncLROPoller`` API can only wait
for the end, which is exactly what a non-blocking operator must not do.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.polling import AsyncLROPoller
from azure.core.polling.base_polling import BadResponse, BadStatus, OperationFailed

from . import tokens
from .driver import PollResult, Verb
from .errors import from_exception, retry_after_of

_FAILED = frozenset({"failed", "canceled", "cancelled"})
# 404 codes that mean "this resource is absent" (anything else, e.g. ResourceGroupNotFound, is an error).
ABSENT_CODES = frozenset({"ResourceNotFound", "NotFound", "NotFoundError"})


def is_absent(exc: ResourceNotFoundError) -> bool:
    code = exc.error.code if exc.error is not None else None
    return code is None or code in ABSENT_CODES


async def get_or_none(call: Awaitable[Any]) -> Any | None:
    """The resource, or None on a plain 404 (ResourceGroupNotFound and friends still raise)."""
    try:
        return await call
    except ResourceNotFoundError as exc:
        if is_absent(exc):
            return None
        raise


def _last_response(poller: AsyncLROPoller[Any]) -> Any:
    response = getattr(poller.polling_method(), "_pipeline_response", None)
    return getattr(response, "http_response", None)


class SdkOperation:
    """An ``AsyncLROPoller`` advanced one status request at a time."""

    def __init__(self, poller: AsyncLROPoller[Any]) -> None:
        self._poller = poller

    def token(self) -> str:
        return self._poller.continuation_token()

    def retry_after(self) -> float | None:
        return retry_after_of(_last_response(self._poller))

    def done(self) -> bool:
        method = self._poller.polling_method()
        return bool(method.finished()) and str(method.status()).lower() not in _FAILED

    async def poll(self) -> PollResult:
        method: Any = self._poller.polling_method()
        try:
            await method.update_status()
        except (BadStatus, BadResponse, HttpResponseError) as exc:
            response = _last_response(self._poller)
            if response is not None and response.status_code == 404:
                return PollResult.GONE
            if response is not None and response.status_code >= 400:
                raise from_exception(HttpResponseError(response=response)) from exc
            raise from_exception(HttpResponseError(message=str(exc))) from exc
        if not method.finished():
            return PollResult.RUNNING
        if str(method.status()).lower() in _FAILED:
            try:
                await self._poller.result()
            except (HttpResponseError, OperationFailed) as exc:
                if isinstance(exc, HttpResponseError):
                    raise from_exception(exc) from exc
                raise from_exception(HttpResponseError(message=str(exc))) from exc
        return PollResult.SUCCEEDED


class Parameters(Protocol):
    """A resource's spec object (``resource_specs``): the body to send, or None when nothing differs."""

    def parameters(self, existing: Any | None) -> Any | None: ...


class NothingToChange:
    """The spec of a resource that is only read or deleted."""

    def parameters(self, existing: Any | None) -> None:
        return None


@dataclass
class SdkResource:
    """One resource of one kind: ``ops`` is the SDK's operations group (``virtual_machines``, ...), ``spec``
    its spec object (what to send).

    ``patch_type`` is the body type sent with ``begin_update`` (a PATCH: fields not sent are kept,
    e.g. data disks someone attached); any other body is PUT with ``begin_create_or_update``.
    ``resource_id``, ``subscription_id`` and ``endpoint`` (the configured ARM endpoint) are what a
    continuation token must name before it is resumed (``tokens.problem``).
    """

    kind: str
    name: str
    resource_group: str
    ops: Any
    spec: Parameters = field(default_factory=NothingToChange)
    patch_type: type | None = None
    resource_id: str = ""
    subscription_id: str = ""
    endpoint: str = ""

    async def get(self) -> Any | None:
        return await get_or_none(self.ops.get(self.resource_group, self.name))

    async def parameters(self, existing: Any | None) -> Any | None:
        return self.spec.parameters(existing)

    def changes(self, existing: Any | None, body: Any) -> list[str]:
        """In words, what ``body`` would change (the spec object's own words when it has them)."""
        describe = getattr(self.spec, "changes", None)
        if describe is not None:
            return list(describe(existing, body))
        return [f"{'create' if existing is None else 'update'} {self.kind}/{self.name}"]

    async def begin_put(self, body: Any) -> SdkOperation:
        if self.patch_type is not None and isinstance(body, self.patch_type):
            return SdkOperation(await self.ops.begin_update(self.resource_group, self.name, body))
        return SdkOperation(await self.ops.begin_create_or_update(self.resource_group, self.name, body))

    async def begin_delete(self) -> SdkOperation:
        return SdkOperation(await self.ops.begin_delete(self.resource_group, self.name))

    async def resume(self, verb: Verb, token: str) -> SdkOperation:
        """Rebuild the poller from a recorded token, after checking where it would send the ARM token;
        ValueError (the driver drops the record and reads the resource instead) when it may not."""
        refused = tokens.problem(
            token, endpoint=self.endpoint, resource_id=self.resource_id, subscription_id=self.subscription_id
        )
        if refused is not None:
            raise ValueError(f"continuation token refused: {refused}")
        if verb is Verb.DELETE:
            poller = await self.ops.begin_delete(self.resource_group, self.name, continuation_token=token)
        else:
            poller = await self.ops.begin_create_or_update(
                self.resource_group, self.name, None, continuation_token=token
            )
        return SdkOperation(poller)
