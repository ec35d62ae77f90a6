"""``kubectl aevm``: ask the operator what it knows about an AzureEditionVM (docs/kubectl-plugin.md).

    kubectl aevm status NAME [-o json]     conditions, certificate, Hotpatch calendar, Azure IDs
    kubectl aevm why NAME [-o json]        the reason chain behind Ready, with each reason's fix
    kubectl aevm assess NAME [--timeout]   ask for a patch assessment and wait for its result
    kubectl aevm import [-g RG]            AzureEditionVM manifests for the Azure Edition VMs in Azure

The thin shell: argument parsing, the kubeconfig and the API calls. What to show and what an answer
means is decided in ``render`` and ``importer`` (pure). kubernetes_asyncio (the operator's own client)
is imported only when a command talks to the cluster, the Azure SDKs only when ``import`` reads Azure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .. import text
from . import render
from .render import PluginError

SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
POLL_SECONDS = 1.0


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# ----------------------------------------------------------------------------- arguments


def _parser() -> argparse.ArgumentParser:
    # Cluster flags are accepted before and after the command (kubectl users type both);
    # SUPPRESS keeps a subcommand's unset flag from overwriting one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-n",
        "--namespace",
        default=argparse.SUPPRESS,
        help="namespace (default: the current context's, else 'default')",
    )
    common.add_argument(
        "--kubeconfig",
        default=argparse.SUPPRESS,
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    common.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context (default: current)")  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="kubectl aevm", parents=[common],
        description="Ask the Azure Edition VM operator what it knows about an AzureEditionVM.",
        epilog="exit codes: 0 ok, 1 failed, 2 usage, 3 timed out, 4 not found (object or CRD), "
               "5 not allowed, 6 cluster unreachable. docs/kubectl-plugin.md",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser(
        "status", parents=[common], help="conditions, certificate, Hotpatch, Azure IDs"
    )
    why = commands.add_parser("why", parents=[common], help="the reason chain behind Ready, with the fixes")
    assess = commands.add_parser("assess", parents=[common], help="run a patch assessment and wait for it")
    for sub in (status, why, assess):
        sub.add_argument("name", help="the AzureEditionVM's name")
        sub.add_argument("-o", "--output", choices=("text", "json"), default="text")
    assess.add_argument("--timeout", default="5m", help="how long to wait for the result, e.g. 90s, 5m (default 5m)")  # fmt: skip
    imp = commands.add_parser(
        "import", parents=[common],
        help="print AzureEditionVM manifests for the Azure Edition VMs of a subscription or resource group",
        description="Read the Azure Edition VMs of a subscription (or one resource group) with the Azure SDK "
                    "and print an AzureEditionVM manifest for each, observe-only by default. Azure is reached "
                    "as the operator reaches it (AZURE_* variables, docs/install.md); -n sets the manifests' "
                    "namespace (without -n they name none: kubectl apply's namespace decides). Nothing is "
                    "applied: review the YAML, then kubectl apply it.",
    )  # fmt: skip
    imp.add_argument("--subscription", default=os.environ.get("AZURE_SUBSCRIPTION_ID"),
                     help="subscription ID (default: $AZURE_SUBSCRIPTION_ID)")  # fmt: skip
    imp.add_argument(
        "-g", "--resource-group", help="only this resource group (default: the whole subscription)"
    )
    imp.add_argument("--management-policy", default="Observe", choices=("Observe", "Full", "Paused"),
                     help="spec.managementPolicy of the manifests (default Observe: reads and checks only)")  # fmt: skip
    imp.add_argument("--admin-secret", help="adminCredentialsSecretRef.name for every manifest "
                                            "(default: a '<name>-admin' placeholder per VM)")  # fmt: skip
    return parser


# ----------------------------------------------------------------------------- the cluster


class Cluster:
    """The API calls the plugin makes, each turning an API refusal into a ``PluginError``."""

    def __init__(self, api: Any, namespace: str) -> None:
        from kubernetes_asyncio import client

        from ..api.v1alpha1 import GROUP, PLURAL, VERSION

        self.api = api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.group, self.version, self.plural = GROUP, VERSION, PLURAL

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}"

    async def _call(self, verb: str, name: str | None, call: Any) -> Any:
        from aiohttp import ClientError
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            return await call
        except ApiException as err:
            try:
                body: object = json.loads(err.body) if err.body else {}
            except (TypeError, ValueError):
                body = err.body or err.reason
            raise render.api_problem(
                err.status, body, namespace=self.namespace, name=name, verb=verb, resource=self.resource
            ) from None
        except (TimeoutError, OSError, ClientError) as err:  # no answer, or a broken one
            host = self.api.configuration.host
            raise PluginError(
                f"cannot reach the API server at {host}: {err}", render.EXIT_UNREACHABLE
            ) from None

    async def get(self, name: str) -> dict[str, Any]:
        call = self.custom.get_namespaced_custom_object(
            self.group, self.version, self.namespace, self.plural, name
        )
        return await self._call("get", name, call)  # type: ignore[no-any-return]

    async def merge_patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        call = self.custom.patch_namespaced_custom_object(
            self.group, self.version, self.namespace, self.plural, name, patch,
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        return await self._call("patch", name, call)  # type: ignore[no-any-return]

    async def event_messages(self, uid: str, reason: str) -> list[str]:
        """Messages of the object's Events with ``reason``; [] when Events may not be read."""
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            events = await self.core.list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.uid={uid},reason={reason}"
            )
        except ApiException:  # without Events the wait still ends: by the result or the timeout
            return []
        return [e.message or "" for e in events.items]


def kubeconfig_paths(flag: str | None) -> str | None:
    """--kubeconfig, else $KUBECONFIG (read now; it may list several files), else ~/.kube/config;
    None when there is none (then a pod's service account is used, if any)."""
    paths = flag or os.environ.get("KUBECONFIG")
    if not paths:
        default = Path.home() / ".kube" / "config"
        return str(default) if default.exists() else None
    if not any(Path(p).expanduser().is_file() for p in paths.split(os.pathsep) if p):
        where = "--kubeconfig" if flag else "KUBECONFIG"
        raise PluginError(f"{where} names no existing file ({paths})", render.EXIT_UNREACHABLE)
    return paths


def in_cluster_namespace() -> str:
    """In a pod without a kubeconfig: its service account's namespace."""
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise PluginError(
            "no kubeconfig: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config",
            render.EXIT_UNREACHABLE,
        )
    return SA_NAMESPACE_FILE.read_text().strip() if SA_NAMESPACE_FILE.exists() else "default"


async def connect(paths: str | None, context: str | None, namespace: str | None) -> Cluster:
    """A client and the namespace to use, the way kubectl chooses them (``paths``: ``kubeconfig_paths``)."""
    from kubernetes_asyncio import client, config

    if paths is None:
        default_ns = in_cluster_namespace()
        config.load_incluster_config()
        return Cluster(client.ApiClient(), namespace or default_ns)
    try:
        contexts, current = config.list_kube_config_contexts(paths)
        chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
        if context and chosen is None:
            names = ", ".join(c.get("name", "?") for c in contexts)
            raise PluginError(
                f"context {context!r} is not in the kubeconfig (it has: {names})", render.EXIT_USAGE
            )
        configuration = type.__call__(client.Configuration)
        await config.load_kube_config(
            config_file=paths, context=context, client_configuration=configuration, persist_config=False
        )
    except config.ConfigException as err:
        raise PluginError(f"cannot use the kubeconfig ({paths}): {err}", render.EXIT_UNREACHABLE) from None
    default_ns = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return Cluster(client.ApiClient(configuration), namespace or default_ns)


# ----------------------------------------------------------------------------- commands


def _show(stream: TextIO, output: str) -> None:
    """Every line of text the plugin prints leaves here, each character a terminal would act on
    escaped (``text.visible``): status carries text from Azure, guests and whoever can write the object.
    (``-o json`` is escaped by ``json.dumps`` itself.)"""
    stream.write(text.visible(output))


def _width() -> int:
    return shutil.get_terminal_size((120, 40)).columns


async def cmd_status(cluster: Cluster, args: argparse.Namespace) -> int:
    obj = await cluster.get(args.name)
    view = render.status_view(obj, now())
    if args.output == "json":
        print(json.dumps(view, indent=2))
    else:
        _show(sys.stdout, render.render_status(view, _width()))
    return render.EXIT_OK


async def cmd_why(cluster: Cluster, args: argparse.Namespace) -> int:
    obj = await cluster.get(args.name)
    if args.output == "json":
        print(json.dumps(render.why_view(obj), indent=2))
    else:
        _show(sys.stdout, render.render_why(obj, min(_width(), 110)))
    return render.EXIT_OK


async def cmd_assess(cluster: Cluster, args: argparse.Namespace) -> int:
    from ..api.v1alpha1 import ASSESS_FAILED_EVENT

    timeout = _timeout_seconds(args.timeout)
    obj = await cluster.get(args.name)
    token = render.fresh_token(now())
    obj = await cluster.merge_patch(args.name, render.assess_patch(token))
    uid = obj["metadata"]["uid"]
    if args.output == "text":
        _show(
            sys.stdout,
            f"asked {obj['metadata']['namespace']}/{args.name} for assessment {token}; waiting up to {args.timeout}\n",
        )
    deadline = time.monotonic() + timeout
    while True:
        failures = await cluster.event_messages(uid, ASSESS_FAILED_EVENT)
        outcome = render.assess_outcome(obj, token, failures)
        if outcome.done or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
        obj = await cluster.get(args.name)
    if args.output == "json":
        hot = (obj.get("status") or {}).get("hotpatch") or {}
        print(json.dumps({"token": token, "done": outcome.done, "exitCode": outcome.code,
                          "hotpatch": hot if hot.get("lastAssessToken") == token else None,
                          "message": outcome.text.strip()}, indent=2))  # fmt: skip
    else:
        _show(sys.stdout if outcome.code == render.EXIT_OK else sys.stderr, outcome.text)
    return outcome.code


def _timeout_seconds(text: str) -> float:
    from ..api.v1alpha1 import parse_duration

    try:
        return parse_duration(text).total_seconds()
    except ValueError as err:
        raise PluginError(f"--timeout: {err}", render.EXIT_USAGE) from None


async def cmd_import(args: argparse.Namespace) -> int:
    """Read the Azure Edition VMs in scope (each one's primary NIC and public IP too) and print manifests."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    from ..api.v1alpha1 import ManagementPolicy
    from ..azure.clients import AzureClients
    from ..azure.settings import AzureSettings, SettingsError
    from . import importer

    if not args.subscription:
        raise PluginError(
            "no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID", render.EXIT_USAGE
        )
    try:
        settings = AzureSettings.from_env()
        clients = AzureClients.from_settings(settings)
    except SettingsError as err:
        raise PluginError(f"cannot reach Azure as configured: {err}", render.EXIT_USAGE) from None
    scope = f"subscription {args.subscription}" + (
        f", resource group {args.resource_group}" if args.resource_group else ""
    )
    options = importer.ImportOptions(
        namespace=getattr(args, "namespace", None),
        management_policy=ManagementPolicy(args.management_policy),
        admin_secret=args.admin_secret,
    )
    async with clients:
        arm = clients.for_subscription(args.subscription)
        try:
            pager = (arm.compute.virtual_machines.list(args.resource_group) if args.resource_group
                     else arm.compute.virtual_machines.list_all())  # fmt: skip
            vms = [vm.as_dict() async for vm in pager]
            edition = [vm for vm in vms if importer.is_azure_edition(vm)]
            imported = []
            for vm, name in zip(edition, importer.unique_names(edition), strict=True):
                nic, public_ip = await _network_of(arm.network, vm)
                imported.append(importer.manifest_for(vm, nic, public_ip, options, name))
        except ClientAuthenticationError as err:  # no token (before any response): sign-in failed
            raise importer.azure_problem(401, None, err.message, scope) from None
        except HttpResponseError as err:
            code = err.error.code if err.error is not None else None
            raise importer.azure_problem(err.status_code, code, err.message, scope) from None
        except (AzureError, OSError) as err:  # no answer at all
            raise importer.azure_problem(None, None, str(err), scope) from None
    sys.stdout.write(importer.render_yaml(imported, scope, others=len(vms) - len(edition)))
    made = sum(1 for i in imported if i.manifest is not None)
    _show(
        sys.stderr, f"kubectl aevm import: {made} manifest(s) from {scope}, {len(imported) - made} skipped\n"
    )
    return render.EXIT_OK


async def _network_of(
    network: Any, vm: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The VM's primary NIC and its public IP, as ARM returns them (None where there is none)."""
    from . import importer

    nic_id = importer.primary_nic_id(vm)
    if nic_id is None:
        return None, None
    nic = (await network.network_interfaces.get(
        importer.arm_segment(nic_id, "resourceGroups"), importer.arm_segment(nic_id, "networkInterfaces"))).as_dict()  # fmt: skip
    pip_id = importer.public_ip_id(nic)
    if pip_id is None:
        return nic, None
    pip = await network.public_ip_addresses.get(
        importer.arm_segment(pip_id, "resourceGroups"), importer.arm_segment(pip_id, "publicIPAddresses"))  # fmt: skip
    return nic, pip.as_dict()


COMMANDS = {"status": cmd_status, "why": cmd_why, "assess": cmd_assess}


async def run(args: argparse.Namespace, paths: str | None) -> int:
    cluster = await connect(paths, getattr(args, "context", None), getattr(args, "namespace", None))
    try:
        return await COMMANDS[args.command](cluster, args)
    finally:
        await cluster.api.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.getLogger("kubernetes_asyncio").setLevel(logging.ERROR)  # our messages say it once, better
    try:
        if args.command == "import":  # Azure only: no kubeconfig needed
            return asyncio.run(cmd_import(args))
        problem = render.name_problem(args.name)
        if problem:
            raise PluginError(problem, render.EXIT_USAGE)
        if args.command == "assess":
            _timeout_seconds(args.timeout)  # a usage error before any API call
        return asyncio.run(run(args, kubeconfig_paths(getattr(args, "kubeconfig", None))))
    except PluginError as err:
        _show(sys.stderr, f"kubectl aevm {args.command}: {err.message}\n")
        return err.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
