"""The operator's own settings: one model, every default once, each field also an ``AEO_*`` variable.

``python -m azure_edition_operator`` reads them from the environment (the Deployment's ConfigMap), lets
flags override them (``__main__``) and hands them to the handlers in kopf's memo (``memo.config``).
The first six are defaults for kopf's own ``run`` options; docs/configuration.md lists them all.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AEO_", env_ignore_empty=True, frozen=True, populate_by_name=True
    )

    namespaces: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Namespaces to watch, comma-separated (globs allowed); none: the whole cluster."
    )
    peering: str = Field("", description="kopf peering name for active/standby replicas; empty: standalone.")
    priority: int = Field(0, description="Peering priority of this replica (highest wins).")
    health_address: str = Field("0.0.0.0:8080", description="host:port for /healthz (liveness); empty: off.")
    log_format: Literal["text", "json", "full", "plain"] = Field(
        "text", description="Log format: text (kopf's full), plain or json (one object per line)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    metrics_address: str = Field("0.0.0.0:9090", description="host:port for Prometheus /metrics; empty: off.")
    in_guest_interval: float = Field(
        6 * 3600.0, gt=0, description="Seconds between routine in-guest checks (Run Command, 4/min per VM)."
    )
    in_guest_min_interval: float = Field(
        600.0, gt=0, description="Least seconds between in-guest checks when the probe fails."
    )
    resync_interval: float = Field(
        3600.0, gt=0, description="Seconds between full resyncs with Azure (GETs; writes only on drift)."
    )
    progress_report_after: float = Field(
        10.0, ge=0, description="Seconds a reconcile waits for Azure before it writes progress to status."
    )
    inline_wait: float = Field(
        900.0, ge=0, description="Seconds a reconcile waits for Azure itself before kopf's retry takes over."
    )
    max_concurrent_reconciles: int = Field(
        32, ge=1, description="Reconcile passes talking to Azure at once (waits for operations do not count)."
    )
    missing_secret_retry: float = Field(
        10.0, gt=0, description="Seconds before looking again when a Secret is missing."
    )
    single_tenant: bool = Field(
        False, description="Namespaces no TenantPolicy selects use the operator's own identity (issue 14)."
    )
    credentials_namespace: str = Field(
        "azure-edition-system",
        validation_alias=AliasChoices("AEO_CREDENTIALS_NAMESPACE", "POD_NAMESPACE"),
        description="Namespace of tenant credential Secrets (the operator's own; else $POD_NAMESPACE).",
    )
    smb_trust_bundle: str = Field(
        "", description="PEM roots the SMB over QUIC certificate check trusts; empty: the system roots."
    )

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return tuple(n for n in value.split(",") if n) if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def describe(error: ValidationError, prefix: str = "") -> str:
    """A settings error as one line that names each bad variable (``prefix`` + field) and what it needs."""
    return "; ".join(
        f"{(prefix + str(e['loc'][0])).upper() if prefix else e['loc'][0]}={e['input']!r}: {e['msg']}"
        for e in error.errors()
    )
