"""Fair share end to end: one tenant's flood of new objects does not starve another tenant's new object.

Real kube-apiserver, the real operator process, the ARM simulator at zero latency and without
throttling (the slots are what is measured, not ARM's budget). 2,000 AzureEditionVMs are created in one
namespace as fast as the API server takes them (64 in flight, as `make bench` creates its fleets), then
one in another namespace; the test measures how long that one takes to be provisioned and how much of
the flood the operator provisioned meanwhile. With slots served in arrival order it waited behind the
whole flood; namespaces now take turns at equal rank (``slots.Slots``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from azure_edition_envtest.bench.fleet import (
    BENCH_SUBNET,
    BENCH_SUBNET_PREFIX,
    BENCH_VNET,
    FleetSpec,
    secret_manifest,
    vm_manifest,
)
from azure_edition_envtest.stack import operator_env, start_operator, start_simulator
from azure_edition_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from azure_edition_simulator.client import SimulatorControl

FLOOD = 2000
CONCURRENCY = 64
BOUND_SECONDS = 120.0
"""The stated bound: the other tenant's object is provisioned within this many seconds of its create.
Measured on a shared 2-core machine (load 14-20): 19.9 s and 33.0 s; with slots in arrival order (the
code before namespaces took turns) 177 s (docs/security.md#fair-share)."""
BACKLOG_SHARE = 0.15
"""... and while the operator provisioned at most this share of the flood's backlog (measured: 88 of
2,000 and 84 of 1,933; in arrival order 554 of 1,933 went first)."""


@dataclass
class Measured:
    backlog: int  # flood objects not yet provisioned when the other tenant's object was created
    flood_done_meanwhile: int  # flood objects provisioned between its create and its VMProvisioned=True
    seconds: float  # its create → VMProvisioned=True
    create_seconds: float  # how long the flood's creates took


def _provisioned(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "VMProvisioned" and c.get("status") == "True" for c in conditions)


async def _limited(calls: Sequence[Callable[[], Awaitable[Any]]], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            for attempt in range(30):  # 429 while the API server's priority queues are full: wait as told
                try:
                    await call()
                    return
                except ApiException as err:
                    if err.status != 429 or attempt == 29:
                        raise
                    await asyncio.sleep(1.0)

    await asyncio.gather(*(one(c) for c in calls))


class Api:
    def __init__(self, api: client.ApiClient) -> None:
        self.api, self.custom, self.core = api, client.CustomObjectsApi(api), client.CoreV1Api(api)

    @classmethod
    async def connect(cls, kubeconfig: Path) -> Api:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = CONCURRENCY
        return cls(client.ApiClient(configuration))

    async def create(self, namespace: str, manifest: dict[str, Any]) -> None:
        await self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)

    async def provisioned(self, namespace: str) -> int:
        listing = await self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        return sum(1 for item in listing["items"] if _provisioned(item))

    async def purge(self, namespace: str) -> None:
        """Every object gone, finalizers dropped (the operator is stopped): nothing left for the fixture."""
        listing = await self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)

        async def drop(name: str) -> None:
            try:
                await self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}},
                    _content_type="application/merge-patch+json",
                )  # fmt: skip
                await self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            except ApiException as err:
                if err.status != 404:
                    raise

        await _limited([lambda n=i["metadata"]["name"]: drop(n) for i in listing["items"]], CONCURRENCY)


async def _flood_then_one(kubeconfig: Path, flood_ns: str, other_ns: str, fleet: FleetSpec) -> Measured:
    api = await Api.connect(kubeconfig)
    try:
        for namespace in (flood_ns, other_ns):
            await api.core.create_namespaced_secret(namespace, secret_manifest(namespace))
        started = time.monotonic()
        names = [f"flood-{i:04d}" for i in range(FLOOD)]
        await _limited(
            [lambda n=n: api.create(flood_ns, vm_manifest(n, flood_ns, fleet)) for n in names], CONCURRENCY
        )
        created = time.monotonic()
        done_before = await api.provisioned(flood_ns)
        at = time.monotonic()
        await api.create(other_ns, vm_manifest("late", other_ns, fleet))
        deadline = at + 3 * BOUND_SECONDS  # measure past the bound (a failure says by how much)
        while True:
            obj = await api.custom.get_namespaced_custom_object(GROUP, VERSION, other_ns, PLURAL, "late")
            if _provisioned(obj):
                seconds = time.monotonic() - at
                break
            if time.monotonic() > deadline:
                seconds = float("inf")
                break
            await asyncio.sleep(0.25)
        done_after = await api.provisioned(flood_ns)
        return Measured(FLOOD - done_before, done_after - done_before, seconds, created - started)
    finally:
        await api.api.close()


async def _purge(kubeconfig: Path, namespaces: Sequence[str]) -> None:
    api = await Api.connect(kubeconfig)
    try:
        for namespace in namespaces:
            await api.purge(namespace)
    finally:
        await api.api.close()


@pytest.mark.timeout(900)
def test_a_flood_in_one_namespace_does_not_starve_a_new_object_in_another(
    crd, kubeconfig: Path, namespace: str, second_namespace: str, tmp_path: Path
) -> None:
    simulator, env = start_simulator(
        tmp_path / "armsim", "--provisioning-seconds", "0", "--retry-after", "1", "--no-throttling",
        quic_port=0, persist=False,
    )  # fmt: skip
    operator = None
    try:
        subnet_id = SimulatorControl.from_env(env).add_subnet(
            BENCH_VNET, BENCH_SUBNET, BENCH_SUBNET_PREFIX, resource_group=env["ARMSIM_RESOURCE_GROUP"]
        )
        fleet = FleetSpec(
            env["AZURE_SUBSCRIPTION_ID"], env["ARMSIM_RESOURCE_GROUP"], env["ARMSIM_LOCATION"], subnet_id, ()
        )
        operator = start_operator(
            tmp_path / "operator.log",
            operator_env(kubeconfig, env, AEO_NAMESPACES=f"{namespace},{second_namespace}"),
            timeout=60,
            wait_metrics=True,
        )
        measured = asyncio.run(_flood_then_one(kubeconfig, namespace, second_namespace, fleet))
        print(f"fair share: {measured}")  # the figures the closing note reports (pytest -s)
        assert operator.alive(), operator.tail()
    finally:
        if operator is not None:
            operator.stop()
        asyncio.run(_purge(kubeconfig, (namespace, second_namespace)))
        simulator.stop()
    assert measured.backlog >= FLOOD // 2, f"not a flood: the operator kept up ({measured})"
    assert measured.seconds <= BOUND_SECONDS, measured
    assert measured.flood_done_meanwhile <= BACKLOG_SHARE * measured.backlog, measured
