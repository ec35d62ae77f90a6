"""Long-running operations as ARM exposes them: the two polling URLs and their status documents.

``Azure-AsyncOperation`` → ``/subscriptions/{s}/providers/{RP}/locations/{l}/operations/{id}``, answering
``200 {"name", "status": InProgress|Succeeded|Failed|Canceled, "startTime", ["endTime"], ["error"]}``.
``Location`` → Compute: the same URL with ``monitor=true``; Network: ``.../operationResults/{id}``. It answers
``202`` while running and, when done, ``200`` with the action's result (assessPatches, installPatches,
runCommand) or ``204``; a failed operation answers its error envelope.
``Retry-After`` comes from the timing profile (:mod:`.timing`): ``instant`` sends
``Settings.retry_after_seconds`` on every initial LRO response and running poll; ``azure`` sends 10–35 s
(scaled) or, where real Azure often does, none.
"""

from __future__ import annotations

import time
from typing import Any

from . import errors
from .context import Reply, RequestContext


def _base(ctx: RequestContext, op: dict[str, Any]) -> str:
    return f"{ctx.origin}/subscriptions/{op['subscription']}/providers/{op['provider']}/locations/{op['location']}"


def async_operation_url(ctx: RequestContext, op: dict[str, Any]) -> str:
    return f"{_base(ctx, op)}/operations/{op['id']}?api-version={ctx.api_version}"


def location_url(ctx: RequestContext, op: dict[str, Any]) -> str:
    if op["provider"] == "Microsoft.Network":
        return f"{_base(ctx, op)}/operationResults/{op['id']}?api-version={ctx.api_version}"
    return f"{_base(ctx, op)}/operations/{op['id']}?monitor=true&api-version={ctx.api_version}"


def lro_headers(
    ctx: RequestContext, op: dict[str, Any], *, async_operation: bool = True, location: bool = False
) -> dict[str, str]:
    """Headers of an initial LRO response."""
    headers = ctx.settings.retry_after(op["kind"])
    if async_operation:
        headers["Azure-AsyncOperation"] = async_operation_url(ctx, op)
    if location:
        headers["Location"] = location_url(ctx, op)
    return headers


def _operation(ctx: RequestContext, subscription: str, operation_id: str) -> dict[str, Any]:
    op = ctx.world.operations.get(operation_id)
    if op is None or op["subscription"].lower() != subscription.lower():
        raise errors.ArmError(404, "NotFound", "The entity was not found in this Azure location.")
    expiry = ctx.settings.operation_expiry_seconds
    if expiry is not None and time.time() - op["startEpoch"] > expiry:
        # Operation records are kept for a limited time; a client must then re-read the resource.
        raise errors.ArmError(404, "NotFound", "The entity was not found in this Azure location.")
    return op


def _failed_reply(op: dict[str, Any]) -> Reply:
    error = op["error"] or {"code": "InternalOperationError", "message": "The operation failed."}
    status = int(error.get("httpStatus", 400))
    body_error = {k: v for k, v in error.items() if k != "httpStatus"}
    return Reply(status, {"error": body_error})


def status_document(op: dict[str, Any]) -> dict[str, Any]:
    """The Azure-AsyncOperation body."""
    doc: dict[str, Any] = {"name": op["id"], "status": op["status"], "startTime": op["startTime"]}
    if op["status"] != "InProgress":
        doc["endTime"] = op["endTime"]
    if op["provider"] == "Microsoft.Compute" and op["status"] == "Succeeded" and op["result"] is not None:
        doc["properties"] = {"output": op["result"]}
    if op["status"] == "Failed":
        error = op["error"] or {}
        doc["error"] = {k: v for k, v in error.items() if k != "httpStatus"}
    return doc


def get_status(ctx: RequestContext, subscription: str, operation_id: str) -> Reply:
    """GET .../operations/{id} (Compute with monitor=true behaves as a Location URL)."""
    op = _operation(ctx, subscription, operation_id)
    if ctx.query.get("monitor", "").lower() == "true":
        return get_result(ctx, subscription, operation_id)
    headers = ctx.settings.retry_after("poll") if op["status"] == "InProgress" else {}
    if op["provider"] == "Microsoft.Network":
        doc: dict[str, Any] = {"status": op["status"]}
        if op["status"] == "Failed":
            doc["error"] = {k: v for k, v in (op["error"] or {}).items() if k != "httpStatus"}
        return Reply(200, doc, headers)
    return Reply(200, status_document(op), headers)


def get_result(ctx: RequestContext, subscription: str, operation_id: str) -> Reply:
    """The Location URL: 202 while running, then the result (200), nothing (204) or the error."""
    op = _operation(ctx, subscription, operation_id)
    if op["status"] == "InProgress":
        return Reply(
            202,
            None,
            {"Location": location_url(ctx, op), **ctx.settings.retry_after("poll")},
        )
    if op["status"] == "Failed":
        return _failed_reply(op)
    if op["result"] is None:
        return Reply(204)
    return Reply(200, op["result"])
