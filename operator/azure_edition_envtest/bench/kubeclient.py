"""The tightest Kubernetes client we can write: aiohttp straight at the API server, concurrent.

It serves three purposes: creating the fleet at once (the same way for the operator's run and for
the floor), the floor's own writes, and ``FleetWatch``, which counts every change of every object
(a new resourceVersion is one write that reached etcd) and notes when each became Ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

GROUP, VERSION, PLURAL = "azureedition.io", "v1alpha1", "azureeditionvms"
MERGE_PATCH = "application/merge-patch+json"


class KubeError(RuntimeError):
    """The API server answered with an unexpected status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} → {status}: {body[:500]}")
        self.status = status


def vms_path(namespace: str, name: str = "", subresource: str = "") -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


IGNORED_PATHS = frozenset({"metadata.resourceVersion", "metadata.managedFields"})


def changed_paths(old: Any, new: Any, prefix: str = "", depth: int = 3) -> list[str]:
    """Dotted paths (at most ``depth`` deep) whose values differ: what one write changed."""
    if old == new:
        return []
    if depth == 0 or not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return [prefix or "."]
    paths: list[str] = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}.{key}" if prefix else str(key)
        if path in IGNORED_PATHS:
            continue
        paths += changed_paths(old.get(key), new.get(key), path, depth - 1)
    return paths


def is_ready(obj: Mapping[str, Any]) -> bool:
    """True when status.conditions has Ready=True (what `kubectl wait --for=condition=Ready` checks)."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class Kube:
    """An aiohttp session with the admin client certificate of our control plane."""

    def __init__(self, server: str, pki_dir: Path, *, connections: int = 64) -> None:
        context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        context.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        self.server = server.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=connections),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            read_bufsize=2**20,
        )

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        ok: Iterable[int] = (200, 201),
        params: Mapping[str, str] | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        for attempt in range(60):  # 429 while a new CRD's storage initialises: wait as asked
            async with self.session.request(
                method, self.server + path, data=data, headers=headers, params=params
            ) as response:
                text = await response.text()
                if response.status == 429 and 429 not in set(ok) and attempt < 59:
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                if response.status not in set(ok):
                    raise KubeError(method, path, response.status, text)
                return json.loads(text) if text and response.content_type == "application/json" else text
        raise AssertionError("unreachable")

    async def text(self, path: str) -> str:
        return str(await self.call("GET", path))

    async def create_namespace(self, name: str) -> None:
        await self.call(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.call("POST", path, body)  # type: ignore[no-any-return]

    async def merge_patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.call("PATCH", path, body, content_type=MERGE_PATCH)  # type: ignore[no-any-return]

    async def list_vms(self, namespace: str) -> dict[str, Any]:
        return await self.call("GET", vms_path(namespace))  # type: ignore[no-any-return]

    async def purge_vms(self, namespace: str, concurrency: int = 32) -> int:
        """Delete every AzureEditionVM of ``namespace``, dropping finalizers (the operator is stopped).

        Keeps etcd and the watch cache the same size for the next scenario.
        """
        items = (await self.list_vms(namespace))["items"]
        limit = asyncio.Semaphore(concurrency)

        async def drop(name: str) -> None:
            async with limit:
                with contextlib.suppress(KubeError):
                    await self.merge_patch(vms_path(namespace, name), {"metadata": {"finalizers": None}})
                with contextlib.suppress(KubeError):
                    await self.call("DELETE", vms_path(namespace, name), ok=(200, 202, 404))

        await asyncio.gather(*(drop(i["metadata"]["name"]) for i in items))
        return len(items)


async def gather_limited(calls: Iterable[Callable[[], Any]], concurrency: int) -> list[Any]:
    """Run coroutine factories concurrently, at most ``concurrency`` at a time; results in order."""
    limit = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Any]) -> Any:
        async with limit:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


@dataclass
class Tracked:
    """What the watch saw of one object."""

    added_at: float | None = None
    ready_at: float | None = None
    writes: int = 0  # MODIFIED events: each is one write that changed the object in etcd
    writes_until_ready: int | None = None
    resource_version: str = ""
    true_at: dict[str, float] = field(default_factory=dict)  # condition type → first seen True


@dataclass
class FleetWatch:
    """Watch the namespace's AzureEditionVMs; count writes per object and note the first Ready.

    Times are ``time.monotonic()`` of arrival at this process.
    """

    kube: Kube
    namespace: str
    objects: dict[str, Tracked] = field(default_factory=dict)
    events: int = 0
    write_kinds: dict[str, int] = field(default_factory=dict)  # "what changed" → how many writes
    _last: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _resource_version: str = ""

    async def start(self) -> FleetWatch:
        listing = await self.kube.list_vms(self.namespace)
        self._resource_version = listing["metadata"]["resourceVersion"]
        for item in listing["items"]:
            self._see("ADDED", item)
        self._task = asyncio.create_task(self._run(), name=f"watch {self.namespace}")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def ready_count(self, names: Iterable[str] | None = None) -> int:
        pool = self.objects.values() if names is None else (self.objects.get(n) for n in names)
        return sum(1 for t in pool if t is not None and t.ready_at is not None)

    def total_writes(self) -> int:
        return sum(t.writes for t in self.objects.values())

    async def wait(self, predicate: Callable[[], bool], ready_within: float) -> bool:
        """Wait until ``predicate()`` holds (re-checked on every event); False on timeout."""
        deadline = time.monotonic() + ready_within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._task is not None and self._task.done():
                self._task.result()  # surface the watch's failure
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))
        return True

    async def wait_ready(self, names: Iterable[str], ready_within: float) -> bool:
        wanted = list(names)
        return await self.wait(lambda: self.ready_count(wanted) == len(wanted), ready_within)

    def _see(self, kind: str, obj: Mapping[str, Any]) -> None:
        now = time.monotonic()
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        tracked = self.objects.setdefault(name, Tracked())
        if kind == "ADDED" and tracked.added_at is None:
            tracked.added_at = now
        elif kind == "MODIFIED" and meta.get("resourceVersion") != tracked.resource_version:
            tracked.writes += 1
            what = " + ".join(changed_paths(self._last.get(name, {}), obj)) or "(nothing visible)"
            self.write_kinds[what] = self.write_kinds.get(what, 0) + 1
        self._last[name] = obj
        tracked.resource_version = meta.get("resourceVersion", "")
        for condition in (obj.get("status") or {}).get("conditions") or []:
            if condition.get("status") == "True":
                tracked.true_at.setdefault(condition.get("type", ""), now)
        if tracked.ready_at is None and is_ready(obj):
            tracked.ready_at = now
            tracked.writes_until_ready = tracked.writes
        self.events += 1
        self._changed.set()

    async def _run(self) -> None:
        path = vms_path(self.namespace)
        while True:
            params = {
                "watch": "1",
                "resourceVersion": self._resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "1800",
            }
            async with self.kube.session.get(self.kube.server + path, params=params) as response:
                if response.status != 200:
                    raise KubeError("WATCH", path, response.status, await response.text())
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        raise KubeError("WATCH", path, int(obj.get("code", 0)), json.dumps(obj))
                    self._resource_version = (obj.get("metadata") or {}).get(
                        "resourceVersion", self._resource_version
                    )
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self._see(kind, obj)
