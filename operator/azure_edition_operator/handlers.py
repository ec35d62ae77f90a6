"""kopf wiring only: each handler feeds the controller (controller.py), which decides when each object's
passes, check rounds and resyncs run, and does them. No Azure call, no wait and no delay here.

kopf keeps its own progress in annotations under ``kopf.azureedition.io/`` (not in status, which is
the public contract in docs/reference.md), and adds the finalizer ``azureedition.io/finalizer``.
"""

from __future__ import annotations

from typing import Any

import kopf

from . import metrics, metrics_server, rollout
from .api.v1alpha1 import ASSESS_ANNOTATION, FINALIZER, GROUP, PLURAL, VERSION
from .azure import clients as azure_clients
from .azure.settings import AzureSettings
from .checks import smb_probe
from .config import OperatorConfig
from .controller import KOPF_PREFIX, Controller, Services
from .credentials import CredentialClients
from .diffbase import MemoryDiffBaseStorage
from .kube import Kube

RESOURCE = (GROUP, VERSION, PLURAL)
DIFFBASE = MemoryDiffBaseStorage(ignored_prefixes=(KOPF_PREFIX,))


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Settings set once: where kopf keeps its state, how it posts Events, our clients, the controller."""
    settings.persistence.finalizer = FINALIZER
    # kopf hides annotations under its own prefix from change detection, so it must not be the
    # user-facing azureedition.io/ (where azureedition.io/assess-patches has to be seen).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    # The last-handled spec in memory, not an annotation: one Kubernetes write less per object
    # (diffbase.py says what a restart costs instead: one pass per object that writes nothing).
    settings.persistence.diffbase_storage = DIFFBASE
    settings.posting.loggers = False  # only our explicit Events, never one per log line
    settings.watching.server_timeout = 300
    config = memo.setdefault("config", OperatorConfig())  # `kopf run -m` (tests): from the environment
    smb_probe.trust_roots(config.smb_trust_bundle)
    memo.kube = kube = await Kube.connect()
    azure_settings = memo.get("azure_settings") or AzureSettings.from_env()
    memo.azure = azure_clients.AzureClients.from_settings(azure_settings, metrics.record_azure_request)
    memo.tenancy = CredentialClients(  # clients per tenant credential (docs/security.md)
        azure_settings, memo.azure,
        lambda name: kube.operator_secret(config.credentials_namespace, name), metrics.record_azure_request,
    )  # fmt: skip
    # The key that authenticates the operator's state on the objects (sealing.py): a Secret of the
    # operator's own namespace, made once by whichever replica starts first.
    state_key = await kube.state_key(config.credentials_namespace, config.state_key_secret)
    memo.controller = Controller(Services(config, kube, memo.tenancy, state_key))
    metrics.watch_slots(memo.controller.schedule)
    memo.metrics_server = await metrics_server.start(config)  # after Kube.connect: reviews use its config
    # The baseline rollout's own loop (rollout.py): maintenance windows and rings, beside the objects' loop.
    memo.rollout = rollout.start(kube, config, memo.controller.azure_for, memo.controller.patches_of)


@kopf.on.cleanup()
async def close_clients(memo: kopf.Memo, **_: Any) -> None:
    if memo.get("rollout") is not None:
        await memo.rollout.stop()
    await memo.controller.stop()
    await memo.tenancy.close()  # closes memo.azure too
    if memo.get("metrics_server") is not None:
        await memo.metrics_server.close()
    await memo.kube.close()


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Created, spec changed, or seen again after a restart: the controller runs a pass at once."""
    memo.controller.changed(body)


@kopf.index(*RESOURCE)
async def seen(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Every event: the controller keeps the freshest body (its status is what the next write diffs).
    An indexer because kopf runs those quietly (no log line per event) and this one stores nothing."""
    memo.controller.seen(body)


def _deleted(type: str | None = None, **_: Any) -> bool:  # kopf passes the event type as `type`
    return type == "DELETED"


@kopf.on.event(*RESOURCE, when=_deleted)
async def gone(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Gone from the API server (after our finalizer, or with it removed by hand): nothing of it is kept,
    and nothing is scheduled for it again."""
    memo.controller.forget(body["metadata"]["uid"])
    DIFFBASE.forget(body["metadata"]["uid"])


@kopf.on.delete(*RESOURCE)
async def delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Remove (Delete) or disown (Orphan) the Azure resources, then let the finalizer go; comes back
    while Azure deletes (``Controller.delete`` says when)."""
    try:
        again = await memo.controller.delete(body)
    except Exception as err:  # the API server away: soon again, not kopf's default minute
        raise kopf.TemporaryError(f"delete deferred: {err!r}", delay=memo.config.kube_retry_cap) from err
    if again is not None:
        raise kopf.TemporaryError("in progress: Azure is deleting", delay=again)
    DIFFBASE.forget(body["metadata"]["uid"])


@kopf.on.field(*RESOURCE, field=("metadata", "annotations", ASSESS_ANNOTATION))
async def assess_patches(new: Any, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """``azureedition.io/assess-patches: <token>`` → one assessPatches once the VM is provisioned; the
    token lands in status.hotpatch. A permanent failure is a Warning Event ``PatchAssessmentFailed``
    whose message starts with ``assessment <token>:`` (``kubectl aevm assess`` waits for either)."""
    if new:
        memo.controller.assess(body, str(new))
