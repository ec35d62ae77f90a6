"""One cache for what the operator reads often and trusts for a while: tenancy inputs (kube.py) and
Extended Network's static Azure facts (azure/extended.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Fresh(Generic[T]):
    """Values read at most once per ``ttl`` seconds per key (a value ``ttl`` old is read again). Callers
    that miss while a read is in flight share it: when an entry expires, a fleet's check rounds must not
    all read the same object."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._values: dict[Hashable, tuple[float, T]] = {}
        self._reads: dict[Hashable, asyncio.Future[T]] = {}
        self._sweep_at = 64  # entries at which expired ones are dropped (then twice what is left)

    async def get(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        hit = self._values.get(key)
        if hit is not None and self._clock() - hit[0] < self.ttl:
            return hit[1]
        pending = self._reads.get(key)
        if pending is None:
            pending = self._reads[key] = asyncio.ensure_future(self._read(key, read))
        return await asyncio.shield(pending)  # a caller cancelled does not cancel the others' read

    async def _read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        started = self._clock()
        try:
            value = await read()
        finally:
            self._reads.pop(key, None)
        self._values[key] = (started, value)
        if len(self._values) >= self._sweep_at:
            self._sweep()
        return value

    def _sweep(self) -> None:
        """Drop expired values: keys come and go (namespaces, subnets), and a key read once must not
        be kept forever. Amortised: a sweep only when the entries have doubled since the last one."""
        now = self._clock()
        self._values = {k: v for k, v in self._values.items() if now - v[0] < self.ttl}
        self._sweep_at = max(64, 2 * len(self._values))

    def forget(self) -> None:
        """Drop every value (tests; a restart does the same)."""
        self._values.clear()
