"""Prometheus metrics. Per-resource labels are only (namespace, name), plus a bounded enum label.

Check timestamps live here rather than in status: a check that found nothing new must not
rewrite the resource.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from . import reasons as vocab
from .api.v1alpha1 import CertificateState

LABELS = ("namespace", "name")

CERT_NOT_AFTER = Gauge(
    "azureedition_certificate_not_after_timestamp_seconds",
    "SMB over QUIC certificate notAfter (Unix seconds)",
    LABELS,
)
CERT_DAYS = Gauge(
    "azureedition_certificate_days_remaining", "Whole days until the certificate expires", LABELS
)
CERT_STATE = Gauge(
    "azureedition_certificate_state", "1 for the certificate's current state", (*LABELS, "state")
)
SMB_ENABLED = Gauge(
    "azureedition_smb_quic_enabled", "EnableSMBQUIC as the in-guest check last saw it", LABELS
)
HOTPATCH_REBOOT = Gauge("azureedition_hotpatch_reboot_pending", "1 when the guest waits for a reboot", LABELS)
HOTPATCH_FAILED = Gauge(
    "azureedition_hotpatch_failed_patches", "Failed patches in the last installation", LABELS
)
HOTPATCH_STATE = Gauge(
    "azureedition_hotpatch_state", "1 for the current HotpatchHealthy reason", (*LABELS, "reason")
)
READY = Gauge("azureedition_ready", "1 when the resource is Ready", LABELS)
STALLED = Gauge(
    "azureedition_stalled",
    "1 while Stalled=True (a person must act), by the Stalled reason",
    (*LABELS, "reason"),
)
LAST_CHECK = Gauge(
    "azureedition_last_check_timestamp_seconds", "When a check last completed", (*LABELS, "check")
)
CHECK_DURATION = Histogram(
    "azureedition_check_duration_seconds",
    "Duration of periodic checks",
    ("check",),
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ROLLOUT_STOPPED = Gauge(
    "azureedition_hotpatch_rollout_stopped",
    "1 while the namespace's baseline rollout is stopped by a failed ring (a person must act)",
    ("namespace",),
)
ROLLOUT_INSTALLS = Counter(
    "azureedition_hotpatch_rollout_installs_total",
    "installPatches of the baseline rollout that ended, by result (Installed, Failed)",
    ("result",),
)
AZURE_REQUESTS = Counter(
    "azureedition_azure_requests_total", "ARM requests by operation and HTTP status", ("operation", "code")
)
RECONCILE_ERRORS = Counter(
    "azureedition_reconcile_errors_total", "Reconcile passes that ended in an error", ("reason",)
)
BUILD_INFO = Gauge("azureedition_build_info", "Operator build", ("version",))
RECONCILE_DURATION = Histogram(
    "azureedition_reconcile_duration_seconds",
    "Reconcile runs (a series of passes until Azure is done, its waits included) by result; _count is the number of runs",
    ("result",),
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900),
)
AZURE_REQUEST_DURATION = Histogram(
    "azureedition_azure_request_duration_seconds",
    "ARM request attempts (retries and LRO polls included) by resource type, method and HTTP status",
    ("resource_type", "method", "code"),
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RECONCILE_WAITING = Gauge(
    "azureedition_reconcile_waiting", "Reconcile passes waiting for a slot (AEO_MAX_CONCURRENT_RECONCILES)"
)
RECONCILE_ACTIVE = Gauge(
    "azureedition_reconcile_active", "Reconcile passes holding a slot (talking to Azure)"
)

# Bounded label values: the vocabulary's HotpatchHealthy reasons (one place, reasons.py).
HOTPATCH_REASONS = tuple(vocab.CAPABILITY_REASONS[vocab.HOTPATCH_HEALTHY])


def record_azure_request(
    method: str, operation: str, status: int | None, duration: float | None = None
) -> None:
    code = str(status or "error")
    AZURE_REQUESTS.labels(operation=f"{method} {operation}", code=code).inc()
    if duration is not None:
        AZURE_REQUEST_DURATION.labels(resource_type=operation, method=method, code=code).observe(duration)


RECONCILE_RESULTS = ("success", "in_progress", "retry", "stalled")
"""The bounded ``result`` label: Azure done, an operation still running, Azure said later, a person must act."""


def reconcile_result(kind: vocab.Kind | None) -> str:
    """The result of a reconcile run from the kind of its failing condition (None: nothing failed)."""
    return {
        vocab.Kind.PROGRESS: "in_progress",
        vocab.Kind.TRANSIENT: "retry",
        vocab.Kind.USER: "stalled",
    }.get(kind, "success")  # type: ignore[arg-type]


def record_reconcile(kind: vocab.Kind | None, seconds: float) -> None:
    RECONCILE_DURATION.labels(result=reconcile_result(kind)).observe(seconds)


def watch_slots(slots: Any) -> None:
    """The controller's backlog (due objects no worker has taken) and its busy workers, read at scrape
    time (``controller.Schedule``)."""
    RECONCILE_WAITING.set_function(lambda: slots.waiting)
    RECONCILE_ACTIVE.set_function(lambda: slots.active)


def set_certificate(namespace: str, name: str, state: str, not_after: float | None, days: int | None) -> None:
    for candidate in CertificateState:
        CERT_STATE.labels(namespace, name, str(candidate)).set(1 if candidate == state else 0)
    if not_after is not None:
        CERT_NOT_AFTER.labels(namespace, name).set(not_after)
    if days is not None:
        CERT_DAYS.labels(namespace, name).set(days)


def set_hotpatch(namespace: str, name: str, reason: str, reboot_pending: bool, failed: int) -> None:
    for candidate in HOTPATCH_REASONS:
        HOTPATCH_STATE.labels(namespace, name, candidate).set(1 if candidate == reason else 0)
    HOTPATCH_REBOOT.labels(namespace, name).set(1 if reboot_pending else 0)
    HOTPATCH_FAILED.labels(namespace, name).set(failed)


_stalled_reason: dict[tuple[str, str], str] = {}


def set_summary(namespace: str, name: str, status: Mapping[str, Any]) -> None:
    """Ready and Stalled from the status just computed (one series per stalled object, none otherwise)."""
    conditions = {c.get("type"): c for c in status.get("conditions") or () if isinstance(c, dict)}
    READY.labels(namespace, name).set(1 if (conditions.get("Ready") or {}).get("status") == "True" else 0)
    stalled = conditions.get("Stalled") or {}
    reason = vocab.metric_reason(str(stalled.get("reason"))) if stalled.get("status") == "True" else None
    before = _stalled_reason.pop((namespace, name), None)
    if before is not None and before != reason:
        _remove(STALLED, namespace, name, before)
    if reason is not None:
        STALLED.labels(namespace, name, reason).set(1)
        _stalled_reason[(namespace, name)] = reason


def forget(namespace: str, name: str) -> None:
    """Drop a deleted resource's series so cardinality follows the fleet."""
    for gauge in (CERT_NOT_AFTER, CERT_DAYS, SMB_ENABLED, HOTPATCH_REBOOT, HOTPATCH_FAILED, READY):
        _remove(gauge, namespace, name)
    for candidate in CertificateState:
        _remove(CERT_STATE, namespace, name, str(candidate))
    for candidate in HOTPATCH_REASONS:
        _remove(HOTPATCH_STATE, namespace, name, candidate)
    before = _stalled_reason.pop((namespace, name), None)
    if before is not None:
        _remove(STALLED, namespace, name, before)
    for check in ("hotpatch", "smb_probe", "smb_in_guest", "extended_network", "extended_network_in_guest"):
        _remove(LAST_CHECK, namespace, name, check)


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


def set_build_info() -> None:
    """azureedition_build_info: 1, labelled with the installed version (every replica exports it)."""
    try:
        BUILD_INFO.labels(version=version("azure-edition-operator")).set(1)
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        BUILD_INFO.labels(version="dev").set(1)
