"""How the operator reaches Azure: endpoints, trust, credentials, timeouts and retry budget.

One pydantic-settings model, read from the environment once at startup and handed to the handlers in
kopf's memo. The standard variables azure-identity reads (AZURE_TENANT_ID, AZURE_CLIENT_ID,
AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST) keep their meaning; the model
reads the ones a pinned client-secret credential needs, and adds what azure-identity does not know: the ARM endpoint of a sovereign cloud (or the simulator), an
extra CA bundle, which credential to build, and how patient to be.

The names match the ARM simulator's env file (``azure-edition-armsim --env-file``):
AZURE_RESOURCE_MANAGER_ENDPOINT, AZURE_RESOURCE_MANAGER_SCOPE and AZURE_AUTHORITY_HOST. The
simulator's file trusts its CA through SSL_CERT_FILE, which the aiohttp transport honours by
itself; AZURE_CA_BUNDLE is the explicit alternative that does not change trust process-wide: it adds
its CAs to the system roots (``ssl_context``), for ARM and the authority alike.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..config import describe

PUBLIC_CLOUD_ARM_ENDPOINT = "https://management.azure.com"


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


class AzureSettings(BaseSettings):
    """Everything the Azure layer needs to know about its environment.

    ``polling_interval`` is the LRO poll period used when Azure sends no Retry-After, and the period
    of the GET loop that follows an operation found in flight. ``max_retries`` and
    ``max_retry_after`` bound azure-core's in-process retries: a 429/5xx is retried at most
    ``max_retries`` times, and only if Azure asks for a wait of at most ``max_retry_after`` seconds;
    beyond that the error surfaces as ``AzureRetryableError(retry_after=…)`` so kopf requeues the
    resource instead of a coroutine sleeping for minutes. ``operation_timeout`` caps how long one
    ensure/delete waits for a long-running operation.
    """

    model_config = SettingsConfigDict(env_ignore_empty=True, frozen=True, populate_by_name=True)

    arm_endpoint: str = Field(
        PUBLIC_CLOUD_ARM_ENDPOINT,
        validation_alias="AZURE_RESOURCE_MANAGER_ENDPOINT",
        description="ARM endpoint of a sovereign cloud (or the simulator).",
    )
    arm_scope: str | None = Field(
        None, validation_alias="AZURE_RESOURCE_MANAGER_SCOPE", description="Token scope; else the endpoint's."
    )
    authority_host: str | None = Field(
        None, validation_alias="AZURE_AUTHORITY_HOST", description="Entra ID authority of a sovereign cloud."
    )
    ca_bundle: FilePath | None = Field(
        None,
        validation_alias="AZURE_CA_BUNDLE",
        description="Extra CA file trusted for ARM and the authority, in addition to the system roots.",
    )
    credential_mode: CredentialMode = Field(
        CredentialMode.DEFAULT,
        validation_alias="AZURE_CREDENTIAL_MODE",
        description="`default`, `workload-identity` or `client-secret` (docs/credentials.md).",
    )
    polling_interval: float = Field(
        15.0,
        gt=0,
        validation_alias="AZURE_POLLING_INTERVAL",
        description="Poll period when Azure sends no Retry-After.",
    )
    request_timeout: float = Field(
        60.0, gt=0, validation_alias="AZURE_REQUEST_TIMEOUT", description="Seconds one ARM request may take."
    )
    max_retries: int = Field(
        3, ge=0, validation_alias="AZURE_MAX_RETRIES", description="azure-core retries per request."
    )
    max_retry_after: float = Field(
        30.0,
        ge=0,
        validation_alias="AZURE_MAX_RETRY_AFTER",
        description="Longest Retry-After retried in-process.",
    )
    operation_timeout: float = Field(
        1800.0,
        gt=0,
        validation_alias="AZURE_OPERATION_TIMEOUT",
        description="Longest wait for one operation.",
    )
    # The service principal of credential mode client-secret (azure-identity's own variable names).
    tenant_id: str | None = Field(
        None, validation_alias="AZURE_TENANT_ID", description="Service principal's tenant."
    )
    client_id: str | None = Field(
        None, validation_alias="AZURE_CLIENT_ID", description="Service principal's id."
    )
    client_secret: SecretStr | None = Field(
        None, validation_alias="AZURE_CLIENT_SECRET", description="Service principal's secret."
    )
    federated_token_file: str | None = Field(
        None,
        validation_alias="AZURE_FEDERATED_TOKEN_FILE",
        description="Projected service account token a TenantPolicy's workload identity signs in with.",
    )

    @field_validator("arm_endpoint", "authority_host")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme != "https" or not urlsplit(value).netloc):
            raise ValueError("use an https:// URL")
        return value

    @property
    def base_url(self) -> str:
        """The ARM endpoint without a trailing slash, as the SDK clients' ``base_url``."""
        return self.arm_endpoint.rstrip("/")

    @property
    def credential_scopes(self) -> list[str]:
        """The token scope for this ARM endpoint: sovereign clouds (and the simulator) differ."""
        return [self.arm_scope or f"{self.base_url}/.default"]

    def ssl_context(self) -> ssl.SSLContext:
        """The trust for ARM and the authority: the system roots, *plus* AZURE_CA_BUNDLE's CAs when set
        (docs/install.md: it adds a CA). azure-core given a CA file as ``connection_verify`` would trust
        that file alone, so every transport takes this context instead."""
        context = ssl.create_default_context()
        if self.ca_bundle:
            context.load_verify_locations(cafile=str(self.ca_bundle))
        return context

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AzureSettings:
        """Settings from the environment (or a given mapping, for tests); a bad value names its variable."""
        try:
            return cls() if env is None else cls.model_validate({k: v for k, v in env.items() if v.strip()})
        except ValidationError as error:
            raise SettingsError(describe(error)) from None
