"""ARM handlers of ``virtualMachines/{vm}/extensions`` (the model and the guest side: vmextensions.py)."""

from __future__ import annotations

from typing import Any

from . import compute, errors, lro, throttle, vmextensions
from .context import Reply, RequestContext
from .world import check_location, key


def put_extension(ctx: RequestContext, sub: str, rg: str, name: str, ext: str) -> Reply:
    body = ctx.body_object()
    vm = compute._vm_for_action(ctx, sub, rg, name, "PUT")
    location = check_location(body.get("location"), vmextensions.EXTENSION_TYPE)
    props = body.get("properties") or {}
    for required in ("publisher", "type", "typeHandlerVersion"):
        if not props.get(required):
            raise errors.missing_parameter(f"properties.{required}")
    ctx.vm_token(throttle.VM_UPDATE, vm["id"])
    existed = key(vmextensions.extension_id(vm, ext)) in ctx.world.extensions
    doc = vmextensions.put(ctx.world, vm, ext, body, location)
    ctx.world.touch()
    op = ctx.world.new_operation(
        provider=compute.COMPUTE, subscription=sub, location=location, kind="extension.put",
        operation_name=ctx.operation, resource_id=doc["id"], duration=ctx.settings.duration("extension.put"),
    )  # fmt: skip
    return Reply(200 if existed else 201, vmextensions.render(doc), lro.lro_headers(ctx, op))


def get_extension(ctx: RequestContext, sub: str, rg: str, name: str, ext: str) -> Reply:
    vm = compute.find_vm(ctx.world, sub, rg, name)
    doc = ctx.world.extensions.get(key(vmextensions.extension_id(vm, ext)))
    if doc is None:
        raise errors.resource_not_found(vmextensions.EXTENSION_TYPE, f"{name}/{ext}", rg)
    return Reply(200, vmextensions.render(doc, ctx.query.get("$expand", "")))


def list_extensions(ctx: RequestContext, sub: str, rg: str, name: str) -> Reply:
    vm = compute.find_vm(ctx.world, sub, rg, name)
    expand = ctx.query.get("$expand", "")
    return Reply(200, {"value": [vmextensions.render(d, expand) for d in vmextensions.of_vm(ctx.world, vm)]})


def delete_extension(ctx: RequestContext, sub: str, rg: str, name: str, ext: str) -> Reply:
    vm = compute.find_vm(ctx.world, sub, rg, name)
    doc: dict[str, Any] | None = ctx.world.extensions.pop(key(vmextensions.extension_id(vm, ext)), None)
    if doc is None:
        return Reply(204)
    ctx.world.touch()
    op = ctx.world.new_operation(
        provider=compute.COMPUTE, subscription=sub, location=vm["location"], kind="extension.delete",
        operation_name=ctx.operation, resource_id=doc["id"], duration=ctx.settings.duration("extension.delete"),
    )  # fmt: skip
    return Reply(202, None, lro.lro_headers(ctx, op, location=True))
