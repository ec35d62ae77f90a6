"""Azure clients per credential: a tenant's credential builds its own clients, cached by credential.

One ``AzureClients`` (credential, per-subscription SDK clients, throttle gates) per credential key,
so a token, a connection or a throttling window of one tenant is never used for another's object.
``for_permit`` is the only way handlers get clients once tenancy is on: the permit comes from
``tenancy.decide`` for the object's own namespace. Logs and the metric name the credential by its
key (``client-secret:<secret name>``, ``workload-identity:<tenant>/<client>``), never its secret.

A client-secret credential lives in a Secret of the operator's own namespace (keys tenantId,
clientId, clientSecret), which tenants cannot read; a rotated secret builds new clients and closes
the old ones.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from azure.identity.aio import ClientSecretCredential, WorkloadIdentityCredential
from prometheus_client import Counter

from .api.v1alpha1 import AzureEditionVMSpec, TenantCredential
from .azure import sdk
from .azure.clients import AzureClients, RequestHook, credential_kwargs
from .azure.settings import AzureSettings
from .tenancy import NotPermitted, Permit, decide, parse_policies

log = logging.getLogger(__name__)

CREDENTIAL_REQUESTS = Counter(
    "azureedition_azure_credential_requests_total",
    "ARM request attempts by the credential that made them (its name, never its secret)",
    ("credential",),
)

SECRET_KEYS = ("tenantId", "clientId", "clientSecret")
SecretLoader = Callable[[str], Awaitable[Mapping[str, str]]]
"""Reads a Secret of the operator's namespace by name: key → decoded value."""


def fingerprint(values: Mapping[str, str]) -> str:
    """Tells rotated secrets apart without keeping or showing them."""
    return hashlib.sha256("\0".join(f"{k}={values[k]}" for k in sorted(values)).encode()).hexdigest()[:16]


def secret_problem(name: str, values: Mapping[str, str]) -> str | None:
    missing = [k for k in SECRET_KEYS if not values.get(k)]
    if missing:
        return (
            f"credential Secret {name} in the operator's namespace has no {', '.join(missing)} (NotPermitted)"
        )
    return None


@dataclass
class CredentialClients:
    """The operator's own clients plus one ``AzureClients`` per tenant credential, built on first use."""

    settings: AzureSettings
    default: AzureClients
    load_secret: SecretLoader
    on_request: RequestHook | None = None
    _by_key: dict[str, tuple[str, AzureClients]] = field(default_factory=dict, init=False, repr=False)

    def _hook(self, key: str) -> RequestHook:
        counter = CREDENTIAL_REQUESTS.labels(credential=key)

        def on_request(method: str, operation: str, status: int | None, seconds: float | None = None) -> None:
            counter.inc()
            if self.on_request is not None:
                self.on_request(method, operation, status, seconds)

        return on_request

    def _common(self) -> dict[str, object]:
        return credential_kwargs(self.settings)

    async def for_credential(self, credential: TenantCredential | None) -> AzureClients:
        if credential is None:
            return self.default
        key = credential.key
        if credential.workload_identity is not None:
            version = "wi"
            cached = self._by_key.get(key)
            if cached is not None:
                return cached[1]
            wi = credential.workload_identity
            built = WorkloadIdentityCredential(
                tenant_id=wi.tenant_id, client_id=wi.client_id,
                token_file_path=self.settings.federated_token_file, **self._common(),
            )  # fmt: skip
        else:
            assert credential.client_secret is not None
            name = credential.client_secret.secret_name
            values = await self.load_secret(name)
            problem = secret_problem(name, values)
            if problem:
                raise NotPermitted(problem)
            version = fingerprint(values)
            cached = self._by_key.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            if cached is not None:  # rotated: new clients, the old ones closed
                log.info("credential %s changed; rebuilding its Azure clients", key)
                await cached[1].close()
            built = ClientSecretCredential(
                values["tenantId"], values["clientId"], values["clientSecret"], **self._common()
            )
        log.info("building Azure clients for credential %s", key)
        clients = AzureClients(self.settings, built, self._hook(key), owns_credential=True)
        self._by_key[key] = (version, clients)
        return clients

    async def for_permit(self, permit: Permit) -> AzureClients:
        return await self.for_credential(permit.credential)

    async def close(self) -> None:
        entries, self._by_key = list(self._by_key.values()), {}
        for _, clients in entries:
            await clients.close()
        await self.default.close()


class TenancyReader(Protocol):
    async def tenancy_inputs(self, namespace: str) -> tuple[list[dict[str, Any]], dict[str, str]]: ...


async def permitted_clients(
    kube: TenancyReader, clients: CredentialClients, namespace: str, spec: AzureEditionVMSpec,
    single_tenant: bool,
) -> AzureClients:  # fmt: skip
    """The clients an object of ``namespace`` may use for ``spec``, or ``NotPermitted``; call before Azure."""
    policies, labels = await kube.tenancy_inputs(namespace)
    permit = decide(parse_policies(policies), namespace, labels, spec, single_tenant)
    log.debug(
        "namespace %s uses credential %s (policies: %s)", namespace, permit.credential_name, permit.policies
    )
    await sdk.imported()  # the first object's: the SDKs are imported off the event loop
    return await clients.for_permit(permit)
