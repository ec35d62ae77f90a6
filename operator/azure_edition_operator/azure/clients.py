"""Azure SDK clients (aio), built once per subscription and closed together.

One credential serves every subscription. Each client gets the ARM endpoint and token scope of the
configured cloud (public, sovereign, or the project's simulator), the CA bundle when one is set,
a bounded retry policy, and a request-counting policy whose callback lets metrics be wired in
later without this module importing prometheus.

Retries (the choice, documented): azure-core's retry policy already honours ``Retry-After`` on 429
and 5xx. We keep it, but bounded: at most ``settings.max_retries`` retries per request, and only when
Azure asks for a wait of at most ``settings.max_retry_after`` seconds. A longer wait (real ARM
throttling windows last up to minutes) or an exhausted budget surfaces as ``AzureRetryableError``
carrying ``retry_after``, so kopf requeues the resource instead of a handler sleeping invisibly.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import AsyncHTTPPolicy, AsyncRetryPolicy, SansIOHTTPPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import (
    ClientSecretCredential,
    DefaultAzureCredential,
    WorkloadIdentityCredential,
)

from .. import reasons as vocab
from .errors import PACING_CODE, AzureRetryableError
from .pacing import READS_HEADERS, WRITES_HEADERS, Pacer, remaining_of
from .settings import AzureSettings, CredentialMode, SettingsError

if TYPE_CHECKING:  # imported when the first subscription's clients are built (sdk.py says why)
    from azure.mgmt.compute.aio import ComputeManagementClient
    from azure.mgmt.network.aio import NetworkManagementClient

log = logging.getLogger(__name__)

RequestHook = Callable[[str, str, int | None, float | None], None]
"""``on_request(method, operation, status, seconds)``; status is None when no response arrived, seconds
from sending the attempt to its answer (or failure)."""


def operation_of(path: str) -> str:
    """Name an ARM request by its provider and resource types, e.g. ``Microsoft.Compute/virtualMachines``.

    Names (which are unbounded) are dropped so the result is a low-cardinality metric label:
    ``.../providers/Microsoft.Compute/virtualMachines/vm1/assessPatches`` is
    ``Microsoft.Compute/virtualMachines/assessPatches`` and an LRO status URL
    ``.../providers/Microsoft.Compute/locations/westus/operations/id`` is
    ``Microsoft.Compute/locations/operations``.
    """
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    lowered = [s.lower() for s in segments]
    if "providers" not in lowered:
        if len(segments) >= 3 and lowered[0] == "subscriptions" and lowered[2] == "resourcegroups":
            return "resourceGroups"
        return "subscriptions" if lowered[:1] == ["subscriptions"] else "other"
    start = len(lowered) - 1 - lowered[::-1].index("providers")
    rest = segments[start + 1 :]
    if not rest:
        return "providers"
    namespace, types = rest[0], rest[1::2]
    return "/".join([namespace, *types])


class RequestCounter(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Reports every HTTP attempt (retries and LRO polls included) to ``on_request``.

    Placed after the retry policy, so a 429 that is retried shows up as a 429 and then a 200:
    that is what Azure's throttling budget sees.
    """

    def __init__(self, on_request: RequestHook) -> None:
        super().__init__()
        self._on_request = on_request

    STARTED = "azureedition_request_started"  # key in the request's pipeline context

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.context[self.STARTED] = time.monotonic()

    def _report(self, request: PipelineRequest[Any], status: int | None) -> None:
        http = request.http_request
        started = request.context.get(self.STARTED)
        seconds = time.monotonic() - started if started is not None else None
        try:
            self._on_request(http.method, operation_of(_path_of(http.url)), status, seconds)
        except Exception:  # a metrics hook must never break an Azure call
            log.exception("request hook failed")

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        self._report(request, response.http_response.status_code)

    def on_exception(self, request: PipelineRequest[Any]) -> None:
        self._report(request, None)


def _path_of(url: str) -> str:
    return urlsplit(url).path


RESOURCE_THROTTLE_HEADER = "x-ms-ratelimit-remaining-resource"
"""A resource provider's own bucket (Compute's per-VM Run Command, update and GET budgets) reports itself
in this header; ARM's subscription-wide refusal does not carry it (learn.microsoft.com/azure/
azure-resource-manager/management/request-limits-and-throttling, and virtual-machines/troubleshooting/
troubleshooting-throttling-errors)."""


def resource_scope(url: str) -> str:
    """The ARM resource a request is about (``/subscriptions/…/providers/<ns>/<type>/<name>``, lower
    case): a resource provider's 429 holds back this resource's requests only."""
    parts = [p for p in _path_of(url).lower().split("/") if p]
    return "/".join(parts[:8])


def held_back_by(status: int, headers: Any) -> str | None:
    """Whom a 429 holds back (pure): ``resource`` when a resource provider's bucket refused (the header
    above), ``subscription`` when ARM did; None for any other answer."""
    if status != 429:
        return None
    return "resource" if headers.get(RESOURCE_THROTTLE_HEADER) is not None else "subscription"


HAND_BACK_WRITES: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "hand_back_writes", default=None
)
"""Set by the controller around a pass: a write the gate would hold back longer than this many seconds
is handed back (``AzureRetryableError``, reason Throttled, with the wait) instead of waited for, so status
says the operator is pacing and no task waits. Unset (tools, tests): the gate waits, as before."""


def paced(seconds: float) -> AzureRetryableError:
    return AzureRetryableError(
        PACING_CODE,
        f"the operator holds this write back for {seconds:.0f} s: the subscription's ARM write budget "
        "(x-ms-ratelimit-remaining-subscription-writes) is nearly spent, or Azure asked to wait (Retry-After)",
        reason=vocab.THROTTLED, retry_after=seconds,
    )  # fmt: skip


class ThrottleGate(AsyncHTTPPolicy):  # type: ignore[type-arg]
    """Every request of one subscription passes here, paced before ARM refuses it.

    Why: ARM's buckets are per subscription and principal; without a shared gate each of a fleet's
    requests discovers the throttling on its own and spends the budget being refused. So: reads and
    writes each wait while ``pacing.Pacer``'s estimate of their bucket (from the
    ``x-ms-ratelimit-remaining-subscription-*`` headers) is at its reserve; once ARM answers 429 anyway,
    every request waits until Retry-After has passed. Throttling is scoped as Azure scopes it: a 429 from
    a resource provider's per-resource bucket (one VM's Run Command) holds back that resource's requests
    only, and teaches the subscription's estimate nothing.
    """

    def __init__(self, default_wait: float = 5.0) -> None:
        super().__init__()
        self.default_wait = default_wait
        self.until = 0.0
        self.held: dict[str, float] = {}  # resource scope → until when its requests wait
        self.reads, self.writes = Pacer(), Pacer()
        self._locks = {id(self.reads): asyncio.Lock(), id(self.writes): asyncio.Lock()}

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        read = request.http_request.method in ("GET", "HEAD")
        pacer, headers = (self.reads, READS_HEADERS) if read else (self.writes, WRITES_HEADERS)
        scope = resource_scope(request.http_request.url)
        held = self.held.get(scope, 0.0) - time.monotonic()
        if held > 0:  # this resource only, outside the shared lock: nobody else waits for it
            await asyncio.sleep(held)
        async with self._locks[id(pacer)]:  # one at a time past the estimate: FIFO, no stampede
            wait = max(self.until - time.monotonic(), pacer.delay(time.monotonic()))
            hand_back = HAND_BACK_WRITES.get()
            if not read and hand_back is not None and wait > hand_back:
                raise paced(wait)
            if wait > 0:
                await asyncio.sleep(wait)
            pacer.sending()
        try:
            response = await self.next.send(request)
        except BaseException:
            pacer.answered(None, time.monotonic(), accepted=False)
            raise
        status = response.http_response.status_code
        remaining = remaining_of(response.http_response.headers, headers)
        by = held_back_by(status, response.http_response.headers)
        if by == "subscription" and remaining is None:
            remaining = 0  # ARM refused: the subscription's bucket is empty
        pacer.answered(remaining, time.monotonic(), accepted=status != 429)
        if by is not None:
            header = response.http_response.headers.get("Retry-After", "")
            seconds = float(header) if header.replace(".", "", 1).isdigit() else self.default_wait
            now = time.monotonic()
            if by == "resource":
                self.held = {k: v for k, v in self.held.items() if v > now}  # the expired ones go
                self.held[scope] = max(self.held.get(scope, 0.0), now + seconds)
            else:
                self.until = max(self.until, now + seconds)
        return response


class BoundedRetryPolicy(AsyncRetryPolicy):  # type: ignore[type-arg]
    """azure-core's retry policy, except that it will not sleep longer than ``max_retry_after``.

    When Azure's Retry-After exceeds the bound, the response is returned as is; the SDK raises
    HttpResponseError and ``errors.classify`` turns it into ``AzureRetryableError(retry_after=…)``.
    """

    def __init__(self, *, max_retry_after: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_retry_after = max_retry_after

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self.max_retry_after:
            return False
        return bool(super().is_retry(settings, response))


class TrustedTransport(AioHttpTransport):
    """azure-core's aiohttp transport with the operator's trust (``AzureSettings.ssl_context``: system
    roots plus AZURE_CA_BUNDLE) on its connector; requests keep ``connection_verify=True``, which uses
    the connector's context. For the credentials' token requests (ARM clients share ``_transport``)."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._context = context

    async def open(self) -> None:
        if self.session is None and self._session_owner:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._context),
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        await super().open()


def credential_kwargs(settings: AzureSettings) -> dict[str, Any]:
    """What every credential the operator builds takes: its trust, and the authority of the cloud."""
    common: dict[str, Any] = {"transport": TrustedTransport(settings.ssl_context())}
    if settings.authority_host:
        common["authority"] = settings.authority_host
    return common


def build_credential(settings: AzureSettings) -> AsyncTokenCredential:
    """The credential for ``settings.credential_mode``; azure-identity reads its own env variables."""
    common = credential_kwargs(settings)
    mode = settings.credential_mode
    if mode is CredentialMode.CLIENT_SECRET:
        if not (settings.tenant_id and settings.client_id and settings.client_secret):
            raise SettingsError(
                "credential mode client-secret needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
            )
        return ClientSecretCredential(
            settings.tenant_id, settings.client_id, settings.client_secret.get_secret_value(), **common
        )
    if mode is CredentialMode.WORKLOAD_IDENTITY:
        return WorkloadIdentityCredential(**common)
    return DefaultAzureCredential(**common)


@dataclass
class SubscriptionClients:
    """The two management clients of one subscription."""

    compute: ComputeManagementClient
    network: NetworkManagementClient

    async def close(self) -> None:
        await self.compute.close()
        await self.network.close()


@dataclass
class AzureClients:
    """Per-subscription SDK clients sharing one credential; ``async with`` closes everything.

    ``on_request`` receives every ARM request attempt as (method, operation, status).
    ``owns_credential`` says whether ``close`` should close the credential too (it does when the
    credential was built here).
    """

    settings: AzureSettings
    credential: AsyncTokenCredential
    on_request: RequestHook | None = None
    owns_credential: bool = False
    _by_subscription: dict[str, SubscriptionClients] = field(default_factory=dict, init=False, repr=False)
    _credential_closed: bool = field(default=False, init=False, repr=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: AzureSettings, on_request: RequestHook | None = None) -> AzureClients:
        return cls(settings, build_credential(settings), on_request, owns_credential=True)

    def _transport(self) -> AioHttpTransport:
        """A transport over one shared aiohttp session (created on first use, inside the event loop).

        Why: given a CA *file*, azure-core builds a new SSLContext per request, so no connection is
        ever reused (a TLS handshake per ARM call; measured at ~2x the operator's CPU and ~4x its
        memory at 1000 VMs). One context on one connector keeps connections alive across clients.
        ``trust_env=False``: aiohttp would otherwise re-read ~/.netrc on every request.
        """
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.settings.ssl_context(), limit=64), trust_env=False
            )
        return AioHttpTransport(session=self._session, session_owner=False)

    def _client_kwargs(self, gate: ThrottleGate) -> dict[str, Any]:
        s = self.settings
        kwargs: dict[str, Any] = {
            "base_url": s.base_url,
            "credential_scopes": s.credential_scopes,
            "transport": self._transport(),
            "connection_timeout": s.request_timeout,
            "read_timeout": s.request_timeout,
            "polling_interval": s.polling_interval,
            "retry_policy": BoundedRetryPolicy(
                max_retry_after=s.max_retry_after,
                retry_total=s.max_retries,
                retry_backoff_factor=0.8,
                retry_backoff_max=s.max_retry_after,
            ),
        }
        per_retry: list[Any] = [gate]
        if self.on_request is not None:
            per_retry.append(RequestCounter(self.on_request))
        kwargs["per_retry_policies"] = per_retry
        return kwargs

    def for_subscription(self, subscription_id: str) -> SubscriptionClients:
        """The cached clients of ``subscription_id`` (created on first use)."""
        key = subscription_id.lower()
        clients = self._by_subscription.get(key)
        if clients is None:
            from azure.mgmt.compute.aio import ComputeManagementClient
            from azure.mgmt.network.aio import NetworkManagementClient

            gate = ThrottleGate()  # compute and network share the subscription's ARM buckets
            clients = SubscriptionClients(
                compute=ComputeManagementClient(
                    self.credential, subscription_id, **self._client_kwargs(gate)
                ),
                network=NetworkManagementClient(
                    self.credential, subscription_id, **self._client_kwargs(gate)
                ),
            )
            self._by_subscription[key] = clients
        return clients

    def compute(self, subscription_id: str) -> ComputeManagementClient:
        return self.for_subscription(subscription_id).compute

    def network(self, subscription_id: str) -> NetworkManagementClient:
        return self.for_subscription(subscription_id).network

    async def close(self) -> None:
        """Close every client (and the credential, if we built it); safe to call twice."""
        clients, self._by_subscription = list(self._by_subscription.values()), {}
        for c in clients:
            await c.close()
        if self.owns_credential and not self._credential_closed:
            self._credential_closed = True
            await self.credential.close()  # type: ignore[attr-defined]
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AzureClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
