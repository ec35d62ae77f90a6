"""Entry point: ``python -m azure_edition_operator`` or the ``azure-edition-operator`` console script.

kopf's own ``run`` options (namespaces, peering, priority, liveness, verbosity, log format) plus one flag
per setting kopf has none for. Every setting is also an environment variable (``config.OperatorConfig``,
``azure.settings.AzureSettings``), so a Deployment configures it from a ConfigMap; flags win.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import click
import kopf
import kopf.cli
from pydantic import ValidationError

from .azure.settings import AzureSettings, SettingsError
from .config import OperatorConfig, describe

KOPF_FLAGS = {
    "namespaces": "-n/--namespace (repeatable)",
    "peering": "-P/--peering, --standalone",
    "priority": "-p/--priority",
    "health_address": "-L/--liveness (a URL)",
    "log_format": "--log-format (full, plain, json)",
    "log_level": "-v/--verbose, -d/--debug, -q/--quiet",
}
"""Settings that are only defaults for kopf's own ``run`` options, and those options (docs/install.md)."""
OWN_SETTINGS = [name for name in OperatorConfig.model_fields if name not in KOPF_FLAGS]


def _kopf_defaults(config: OperatorConfig) -> dict[str, Any]:
    """The environment's settings as the defaults of kopf's ``run`` options (its flags override them)."""
    return {
        "namespaces": config.namespaces,
        "peering_name": config.peering or None,
        "priority": config.priority,
        "liveness_endpoint": f"http://{config.health_address}/healthz" if config.health_address else None,
        "log_format": {"json": "json", "plain": "plain"}.get(config.log_format, "full"),
    }


def _own_options() -> list[click.Option]:
    """A flag for each of our settings; the model holds its type, default and help."""
    return [
        click.Option(
            [f"--{name.replace('_', '-')}"], default=None, is_flag=field.annotation is bool,
            type=None if field.annotation is bool else field.annotation,
            help=f"{field.description} Env AEO_{name.upper()}.",
        )
        for name, field in ((name, OperatorConfig.model_fields[name]) for name in OWN_SETTINGS)
    ]  # fmt: skip


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


def configure_logging(level: str, **kopf_logging: Any) -> None:
    """kopf's formatters (text or JSON, the object's namespace/name on every per-object line), then ours."""
    kopf.configure(**kopf_logging)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        handler.addFilter(_progress_is_not_an_error)
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Secrets never leave (docs/security.md): the Kubernetes clients log whole response bodies — Secrets
    # included — at DEBUG, and MSAL/azure-identity log token requests; never below INFO, at any level.
    for body_logger in BODY_LOGGERS:
        logging.getLogger(body_logger).setLevel(max(logging.INFO, root.level))


def _run(*, verbose: bool, debug: bool, quiet: bool, log_format: str, log_prefix: bool | None,
         log_refkey: str | None, standalone: bool | None, **args: Any) -> None:  # fmt: skip
    """Build the settings (environment, then flags), configure logging, hand both to kopf in its memo."""
    own = {name: args.pop(name) for name in OWN_SETTINGS}
    try:
        config = OperatorConfig(**{name: value for name, value in own.items() if value is not None})
        azure = AzureSettings.from_env()
    except ValidationError as error:
        raise click.UsageError(describe(error, "AEO_")) from None
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    level = "DEBUG" if debug or verbose else "WARNING" if quiet else config.log_level
    fmt = log_format if isinstance(log_format, kopf.LogFormat) else kopf.LogFormat[log_format.upper()]
    configure_logging(level, debug=debug, log_format=fmt, log_prefix=log_prefix, log_refkey=log_refkey)
    from . import handlers  # noqa: F401  (registers the handlers with kopf's default registry)

    dev, priority, clusterwide = args.pop("dev"), args.pop("priority"), args.pop("clusterwide")
    kopf.run(
        memo=kopf.Memo(config=config, azure_settings=azure),
        standalone=not args["peering_name"] if standalone is None else standalone,
        priority=666 if dev else priority,
        clusterwide=clusterwide or not args["namespaces"],  # no namespace: the whole cluster
        **args,
    )


COMMAND = click.Command(
    "azure-edition-operator",
    callback=_run,
    params=[p for p in kopf.cli.run.params if p.name not in ("modules", "paths")] + _own_options(),
    help=__doc__,
)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        env = OperatorConfig()
    except ValidationError as error:
        sys.exit(f"azure-edition-operator: {describe(error, 'AEO_')}")
    COMMAND.main(args=argv, prog_name="azure-edition-operator", default_map=_kopf_defaults(env))


if __name__ == "__main__":
    main()
