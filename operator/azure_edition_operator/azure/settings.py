"""How the operator reaches Azure: endpoints, trust, credentials, timeouts and retry budget.

Read once from the environment at startup (``AzureSettings.from_env``). The standard variables
azure-identity reads itself (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST) keep their meaning; the settings below only add
what azure-identity does not know: the ARM endpoint of a sovereign cloud (or the simulator), an
extra CA bundle, which credential to build, and how patient to be.

The names match the ARM simulator's env file (``azure-edition-armsim --env-file``):
AZURE_RESOURCE_MANAGER_ENDPOINT, AZURE_RESOURCE_MANAGER_SCOPE and AZURE_AUTHORITY_HOST. The
simulator's file trusts its CA through SSL_CERT_FILE, which the aiohttp transport honours by
itself; AZURE_CA_BUNDLE is the explicit alternative that does not change trust process-wide.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

PUBLIC_CLOUD_ARM_ENDPOINT = "https://management.azure.com"
PUBLIC_CLOUD_AUTHORITY_HOST = "https://login.microsoftonline.com"

ENV_ARM_ENDPOINT = "AZURE_RESOURCE_MANAGER_ENDPOINT"
ENV_ARM_SCOPE = "AZURE_RESOURCE_MANAGER_SCOPE"
ENV_AUTHORITY_HOST = "AZURE_AUTHORITY_HOST"
ENV_CA_BUNDLE = "AZURE_CA_BUNDLE"
ENV_CREDENTIAL = "AZURE_CREDENTIAL_MODE"
ENV_POLLING_INTERVAL = "AZURE_POLLING_INTERVAL"
ENV_REQUEST_TIMEOUT = "AZURE_REQUEST_TIMEOUT"
ENV_MAX_RETRIES = "AZURE_MAX_RETRIES"
ENV_MAX_RETRY_AFTER = "AZURE_MAX_RETRY_AFTER"
ENV_OPERATION_TIMEOUT = "AZURE_OPERATION_TIMEOUT"


class CredentialMode(enum.StrEnum):
    """Which azure-identity credential to build.

    ``default`` is DefaultAzureCredential (environment → workload identity → managed identity → …),
    right for most installs; ``workload-identity`` pins the AKS/federated path used in-cluster;
    ``client-secret`` pins a service principal secret (AZURE_CLIENT_SECRET).
    """

    DEFAULT = "default"
    WORKLOAD_IDENTITY = "workload-identity"
    CLIENT_SECRET = "client-secret"


class SettingsError(ValueError):
    """An environment variable holds a value we cannot use; the message names it and the fix."""


@dataclass(frozen=True)
class AzureSettings:
    """Everything the Azure layer needs to know about its environment.

    ``polling_interval`` is the LRO poll period used when Azure sends no Retry-After, and the period
    of the GET loop that follows an operation found in flight. ``max_retries`` and
    ``max_retry_after`` bound azure-core's in-process retries: a 429/5xx is retried at most
    ``max_retries`` times, and only if Azure asks for a wait of at most ``max_retry_after`` seconds;
    beyond that the error surfaces as ``AzureRetryableError(retry_after=…)`` so kopf requeues the
    resource instead of a coroutine sleeping for minutes. ``operation_timeout`` caps how long one
    ensure/delete waits for a long-running operation.
    """

    arm_endpoint: str = PUBLIC_CLOUD_ARM_ENDPOINT
    arm_scope: str | None = None
    authority_host: str | None = None
    ca_bundle: str | None = None
    credential_mode: CredentialMode = CredentialMode.DEFAULT
    polling_interval: float = 15.0
    request_timeout: float = 60.0
    max_retries: int = 3
    max_retry_after: float = 30.0
    operation_timeout: float = 1800.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.arm_endpoint)
        if parts.scheme != "https" or not parts.netloc:
            raise SettingsError(f"{ENV_ARM_ENDPOINT}={self.arm_endpoint!r}: use an https:// URL")
        if self.authority_host is not None and urlsplit(self.authority_host).scheme != "https":
            raise SettingsError(f"{ENV_AUTHORITY_HOST}={self.authority_host!r}: use an https:// URL")
        for name, value in (
            ("polling_interval", self.polling_interval),
            ("request_timeout", self.request_timeout),
            ("operation_timeout", self.operation_timeout),
        ):
            if value <= 0:
                raise SettingsError(f"{name} must be positive, got {value}")
        if self.max_retries < 0 or self.max_retry_after < 0:
            raise SettingsError("max_retries and max_retry_after must not be negative")

    @property
    def base_url(self) -> str:
        """The ARM endpoint without a trailing slash, as the SDK clients' ``base_url``."""
        return self.arm_endpoint.rstrip("/")

    @property
    def credential_scopes(self) -> list[str]:
        """The token scope for this ARM endpoint: sovereign clouds (and the simulator) differ."""
        return [self.arm_scope or f"{self.base_url}/.default"]

    @property
    def connection_verify(self) -> str | bool:
        """What azure-core's transports take as ``connection_verify``: a CA file, or system trust."""
        return self.ca_bundle if self.ca_bundle else True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AzureSettings:
        """Build settings from the environment (or a given mapping, for tests)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if endpoint := env.get(ENV_ARM_ENDPOINT, "").strip():
            values["arm_endpoint"] = endpoint
        if scope := env.get(ENV_ARM_SCOPE, "").strip():
            values["arm_scope"] = scope
        if authority := env.get(ENV_AUTHORITY_HOST, "").strip():
            values["authority_host"] = authority
        if bundle := env.get(ENV_CA_BUNDLE, "").strip():
            if not os.path.isfile(bundle):
                raise SettingsError(f"{ENV_CA_BUNDLE}={bundle!r}: no such file")
            values["ca_bundle"] = bundle
        if mode := env.get(ENV_CREDENTIAL, "").strip():
            try:
                values["credential_mode"] = CredentialMode(mode)
            except ValueError:
                choices = ", ".join(m.value for m in CredentialMode)
                raise SettingsError(f"{ENV_CREDENTIAL}={mode!r}: use one of {choices}") from None
        for env_name, field_name, kind in (
            (ENV_POLLING_INTERVAL, "polling_interval", float),
            (ENV_REQUEST_TIMEOUT, "request_timeout", float),
            (ENV_MAX_RETRIES, "max_retries", int),
            (ENV_MAX_RETRY_AFTER, "max_retry_after", float),
            (ENV_OPERATION_TIMEOUT, "operation_timeout", float),
        ):
            if raw := env.get(env_name, "").strip():
                try:
                    values[field_name] = kind(raw)
                except ValueError:
                    raise SettingsError(f"{env_name}={raw!r}: expected a number") from None
        return cls(**values)  # type: ignore[arg-type]
