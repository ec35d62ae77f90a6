"""The operator's own settings (flags/env), set once at startup."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()
    log_format: str = "text"
    log_level: str = "INFO"
    health_address: str = "0.0.0.0:8080"
    metrics_address: str = "0.0.0.0:9090"
    peering: str = ""
    priority: int = 0
    # How long to wait before looking again when a Secret is missing or Azure asks us to retry.
    missing_secret_retry_seconds: float = 10.0
    # In-guest SMB over QUIC check (Run Command counts against "Update VM" throttling, 4/min per VM):
    # routinely this often, and when the probe fails at most this often.
    in_guest_interval_seconds: float = 6 * 3600.0
    in_guest_min_interval_seconds: float = 600.0
    # The reconcile handler waits for Azure operations and transient trouble itself, this long at most,
    # before handing back to kopf's retry (which writes two annotations per retry); and writes progress
    # to status only once a wait is longer than ``progress_report_seconds`` (issue #15).
    inline_wait_seconds: float = 900.0
    progress_report_seconds: float = 10.0
    max_concurrent_passes: int = 32
    # A full resync with Azure (drift, out-of-band deletes): GETs only, writes only on difference.
    resync_interval_seconds: float = 3600.0
    # Tenancy (issue 14): without a TenantPolicy selecting it, a namespace may target nothing, unless
    # this explicit single-tenant mode is on (the operator's own identity, anywhere it reaches). The
    # default install leaves it off; the envtest stack (e2e, demo, bench) turns it on.
    single_tenant: bool = False
    # Where tenant credential Secrets (TenantPolicy spec.credential.clientSecret) live: the operator's own.
    credentials_namespace: str = "azure-edition-system"
