"""The operator's own settings: one model, every default once, each field also an ``AEO_*`` variable.

``python -m azure_edition_operator`` reads them from the environment (the Deployment's ConfigMap), lets
flags override them (``__main__``) and hands them to the handlers in kopf's memo (``memo.config``).
The first six are defaults for kopf's own ``run`` options; docs/configuration.md lists them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AEO_", env_ignore_empty=True, frozen=True, populate_by_name=True
    )

    namespaces: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Namespaces to watch, comma-separated (globs allowed); empty: the whole cluster."
    )
    peering: str = Field("", description="kopf peering object name (docs/peering.md); empty: standalone.")
    priority: int = Field(0, description="Peering priority of this replica (the highest works).")
    health_address: str = Field(
        "0.0.0.0:8080", description="host:port of kopf's liveness `/healthz`; empty: off."
    )
    log_format: Literal["text", "json", "full", "plain"] = Field(
        "text", description="`json` (one object per line, with the object reference) or `text` (kopf's full)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Python log level.")
    metrics_address: str = Field(
        "0.0.0.0:9090", description="host:port of Prometheus `/metrics`; empty: off."
    )
    metrics_secure: bool = Field(
        True,
        description="Serve `/metrics` over HTTPS, only to a bearer token the API server authenticates "
        "(TokenReview) and allows `get` on the URL /metrics (SubjectAccessReview; ClusterRole "
        "azure-edition-operator-metrics-reader). false: plain HTTP for anyone, for local development only.",
    )
    metrics_cert_dir: str = Field(
        "",
        description="Directory holding the `/metrics` serving certificate as tls.crt and tls.key (a "
        "kubernetes.io/tls Secret or cert-manager Certificate mounted; re-read when it changes); empty: "
        "a self-signed certificate made at start.",
    )
    in_guest_interval: float = Field(
        6 * 3600.0,
        gt=0,
        description="Seconds between routine in-guest checks of SMB over QUIC and Extended Network (Run "
        'Command counts against Azure\'s "Update VM" throttling, 4/min per VM).',
    )
    in_guest_min_interval: float = Field(
        600.0,
        gt=0,
        description="Least seconds between in-guest checks triggered by a failed probe, a changed certificate "
        "or an Extended Network problem the guest reported.",
    )
    resync_interval: float = Field(
        3600.0, gt=0, description="Seconds between full resyncs with Azure (GETs; writes only on drift)."
    )
    progress_report_after: float = Field(
        10.0,
        ge=0,
        description="Seconds a reconcile waits for Azure before it writes progress to status; a faster "
        "create writes status once, already Ready.",
    )
    max_concurrent_reconciles: int = Field(
        32,
        ge=1,
        description="Workers of the controller: passes and check rounds talking to Azure at once (waits for "
        "Azure do not count): bounds memory and in-flight ARM requests in a burst. A free worker takes the "
        "object furthest along: first checks, then passes that resume an operation, then new objects; at "
        "equal rank namespaces take turns.",
    )
    pacing_hand_back: float = Field(
        2.0,
        ge=0,
        description="Seconds: a write to Azure that the operator's own pacing (ARM's write budget, or a "
        "Retry-After) would hold back longer ends the pass instead; status says Throttled and the object "
        "is due again after the wait.",
    )
    kube_retry_base: float = Field(
        0.5,
        gt=0,
        description="Seconds before an object's step that failed on Kubernetes (the API server away) runs "
        "again, doubling per failure in a row up to kube_retry_cap.",
    )
    kube_retry_cap: float = Field(
        5.0, gt=0, description="The longest wait before retrying a step that failed on Kubernetes."
    )
    missing_secret_retry: float = Field(
        10.0, gt=0, description="Seconds before looking again for a missing Secret."
    )
    single_tenant: bool = Field(
        False,
        description="Let a namespace no TenantPolicy selects use the operator's own identity anywhere it "
        "reaches (docs/security.md); leave it off on a shared cluster.",
    )
    credentials_namespace: str = Field(
        "azure-edition-system",
        validation_alias=AliasChoices("AEO_CREDENTIALS_NAMESPACE", "POD_NAMESPACE"),
        description="The operator's own namespace: the Secrets a TenantPolicy's credential.clientSecret "
        "names, and the state key (else $POD_NAMESPACE).",
    )
    cluster_id: str = Field(
        "default",
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="This cluster's name in the owner tags of the Azure resources (with the object's "
        "namespace/name): a cluster rebuilt from Git keeps it and finds its resources again; clusters "
        "sharing a subscription must set different ones.",
    )
    state_key_secret: str = Field(
        "azure-edition-operator-state-key",
        min_length=1,
        description="Secret in the credentials namespace holding the key that authenticates the operator's "
        "state on each object (made at first start if missing; docs/security.md).",
    )
    hotpatch_calendar_configmap: str = Field(
        "azure-edition-hotpatch-calendar",
        description="ConfigMap in the operator's namespace whose `calendar.json` replaces the built-in Windows "
        "Server Hotpatch calendar (docs/capabilities.md#the-hotpatch-calendar); absent: the built-in one.",
    )
    rollout_configmap: str = Field(
        "azure-edition-rollout",
        description="ConfigMap in the operator's namespace whose `rollout.json` lists the baseline rollout's rings "
        "in order and the soak after each (docs/capabilities.md#maintenance-window-and-rings); absent: no "
        "rollout, the platform alone installs. Its state lives in the ConfigMap of this name + `-state`.",
    )
    rollout_interval: float = Field(
        60.0,
        gt=0,
        description="Seconds between rounds of the baseline rollout (one LIST of the objects each).",
    )
    clock_start: str = Field(
        "",
        description="Tests and demos only: the rollout's clock starts at this instant (ISO 8601 with an offset, "
        "e.g. 2027-01-09T01:57:00+01:00) instead of now; empty: now.",
    )
    clock_speed: float = Field(
        1.0,
        gt=0,
        description="Tests and demos only: seconds of the rollout's clock per real second (1/the simulator's "
        "--time-scale keeps its windows and soak in step with the simulator's Azure).",
    )
    smb_trust_bundle: str = Field(
        "",
        description="PEM file of the roots SMB over QUIC clients trust (else the system roots); a chain "
        "that leads to none is CertificateUntrusted.",
    )

    @field_validator("clock_start")
    @classmethod
    def _instant(cls, value: str) -> str:
        if value and datetime.fromisoformat(value).tzinfo is None:
            raise ValueError("give an offset (e.g. +01:00 or Z)")
        return value

    @property
    def clock_start_at(self) -> datetime | None:
        return datetime.fromisoformat(self.clock_start) if self.clock_start else None

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
