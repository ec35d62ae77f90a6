"""Entry point: ``python -m azure_edition_operator`` or the ``azure-edition-operator`` console script.

Every flag has an environment variable (shown in ``--help``) so a Deployment configures it from a
ConfigMap. Azure endpoints and credentials come from the environment too (see ``azure.settings``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence

import kopf

from .config import OperatorConfig


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines; kopf's per-object context is kept."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        k8s = getattr(record, "k8s_ref", None)
        if k8s:
            entry["object"] = {k: k8s.get(k) for k in ("namespace", "name") if k8s.get(k)}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def parse_args(argv: Sequence[str] | None = None) -> OperatorConfig:
    p = argparse.ArgumentParser(prog="azure-edition-operator", description=__doc__.splitlines()[0])
    p.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        help="watch only these namespaces (repeatable; globs allowed). Env AEO_NAMESPACES, comma-separated",
    )
    p.add_argument(
        "--all-namespaces",
        "-A",
        action="store_true",
        default=_env("AEO_ALL_NAMESPACES", "") == "true",
        help="watch the whole cluster (default when no namespace is given). Env AEO_ALL_NAMESPACES=true",
    )
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=_env("AEO_LOG_FORMAT", "text"),
        help="log format. Env AEO_LOG_FORMAT",
    )
    p.add_argument("--log-level", default=_env("AEO_LOG_LEVEL", "INFO"), help="log level. Env AEO_LOG_LEVEL")
    p.add_argument(
        "--health-address",
        default=_env("AEO_HEALTH_ADDRESS", "0.0.0.0:8080"),
        help="host:port for /healthz (liveness); empty disables. Env AEO_HEALTH_ADDRESS",
    )
    p.add_argument(
        "--metrics-address",
        default=_env("AEO_METRICS_ADDRESS", "0.0.0.0:9090"),
        help="host:port for Prometheus /metrics; empty disables. Env AEO_METRICS_ADDRESS",
    )
    p.add_argument(
        "--peering",
        default=_env("AEO_PEERING", ""),
        help="kopf peering name for active/standby replicas; empty runs standalone. Env AEO_PEERING",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=int(_env("AEO_PRIORITY", "0")),
        help="peering priority of this replica (highest wins). Env AEO_PRIORITY",
    )
    p.add_argument(
        "--in-guest-interval",
        type=float,
        default=float(_env("AEO_IN_GUEST_INTERVAL", "21600")),
        help="seconds between routine in-guest checks (Run Command: SMB over QUIC, Extended Network). Env AEO_IN_GUEST_INTERVAL",
    )
    p.add_argument(
        "--in-guest-min-interval",
        type=float,
        default=float(_env("AEO_IN_GUEST_MIN_INTERVAL", "600")),
        help="least seconds between in-guest checks when the probe fails. Env AEO_IN_GUEST_MIN_INTERVAL",
    )
    p.add_argument(
        "--resync-interval",
        type=float,
        default=float(_env("AEO_RESYNC_INTERVAL", "3600")),
        help="seconds between full resyncs of every object with Azure (GETs only; writes on drift). "
        "Env AEO_RESYNC_INTERVAL",
    )
    p.add_argument(
        "--progress-report-after",
        type=float,
        default=float(_env("AEO_PROGRESS_REPORT_AFTER", "10")),
        help="seconds a reconcile may wait for Azure before it writes progress to status (a faster create "
        "writes status once, already Ready). Env AEO_PROGRESS_REPORT_AFTER",
    )
    p.add_argument(
        "--inline-wait",
        type=float,
        default=float(_env("AEO_INLINE_WAIT", "900")),
        help="seconds a reconcile waits for Azure operations and transient errors itself before handing "
        "back to kopf's retry. Env AEO_INLINE_WAIT",
    )
    p.add_argument(
        "--max-concurrent-reconciles",
        type=int,
        default=int(_env("AEO_MAX_CONCURRENT_RECONCILES", "32")),
        help="reconcile passes talking to Azure at once (waits for Azure operations do not count); a free "
        "slot goes to the object furthest along. Env AEO_MAX_CONCURRENT_RECONCILES",
    )
    p.add_argument(
        "--single-tenant",
        action="store_true",
        default=_env("AEO_SINGLE_TENANT", "") == "true",
        help="let namespaces no TenantPolicy selects use the operator's own identity anywhere (off by "
        "default). Env AEO_SINGLE_TENANT=true",
    )
    p.add_argument(
        "--credentials-namespace",
        default=_env("AEO_CREDENTIALS_NAMESPACE", _env("POD_NAMESPACE", "azure-edition-system")),
        help="namespace of tenant credential Secrets (the operator's own). Env AEO_CREDENTIALS_NAMESPACE",
    )
    args = p.parse_args(argv)
    namespaces = args.namespace or [n for n in _env("AEO_NAMESPACES", "").split(",") if n]
    return OperatorConfig(
        namespaces=tuple(namespaces),
        log_format=args.log_format,
        log_level=args.log_level.upper(),
        health_address=args.health_address,
        metrics_address=args.metrics_address,
        peering=args.peering,
        priority=args.priority,
        in_guest_interval_seconds=args.in_guest_interval,
        in_guest_min_interval_seconds=args.in_guest_min_interval,
        resync_interval_seconds=args.resync_interval,
        progress_report_seconds=args.progress_report_after,
        inline_wait_seconds=args.inline_wait,
        max_concurrent_passes=max(1, args.max_concurrent_reconciles),
        single_tenant=args.single_tenant,
        credentials_namespace=args.credentials_namespace,
    )


def _progress_is_not_an_error(record: logging.LogRecord) -> bool:
    """kopf logs every TemporaryError at ERROR; an Azure operation that is still running is INFO."""
    if (
        record.levelno == logging.ERROR
        and record.name.startswith("kopf")
        and "failed temporarily: in progress" in (record.getMessage())
    ):
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True


BODY_LOGGERS = ("kubernetes_asyncio.client.rest", "msal", "urllib3.connectionpool")


def configure_logging(config: OperatorConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(_progress_is_not_an_error)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Secrets never leave (issue 14): the Kubernetes clients log whole response bodies — Secrets
    # included — at DEBUG, and MSAL/azure-identity log token requests; never below INFO, at any level.
    for body_logger in BODY_LOGGERS:
        logging.getLogger(body_logger).setLevel(max(logging.INFO, root.level))


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    configure_logging(config)
    from . import handlers  # registers the handlers with kopf's default registry

    handlers.CONFIG = config
    handlers.register_resync(config.resync_interval_seconds)
    liveness = f"http://{config.health_address}/healthz" if config.health_address else None
    asyncio.run(
        kopf.operator(
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            liveness_endpoint=liveness,
            standalone=not config.peering,
            peering_name=config.peering or None,
            priority=config.priority,
        )
    )


if __name__ == "__main__":
    main()
