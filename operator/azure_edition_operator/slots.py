"""Slots for reconcile passes: at most N talk to Azure at once, and a free slot goes to the object
furthest along (issue #15: the operator must never be the queue).

With a first-come-first-served semaphore, a burst queues every object's first pass before any
object's second, so all objects finish together at the end. Here a waiter's rank decides (lower
first; equal ranks in arrival order): an object whose Azure work is done and only needs its first
check comes before one polling an operation, which comes before a new object's first pass.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Rank(enum.IntEnum):
    """How far along a pass is; lower gets a slot first."""

    CHECK = 0  # Azure is done: the first capability check, then status
    RESUME = 1  # an operation of this object is in flight or has just finished
    START = 2  # the first pass of a handler (a new object, an edit, a resync)


class Slots:
    """A semaphore of ``size`` that hands a released slot to the lowest-ranked waiter."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._free = size
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """Passes waiting for a slot (the backlog behind the limit; a cancelled waiter does not count)."""
        return sum(1 for _, _, granted in self._waiters if not granted.done())

    @property
    def active(self) -> int:
        """Passes holding a slot now (a slot handed over leaves the heap without returning to ``_free``)."""
        return self._size - self._free

    @asynccontextmanager
    async def hold(self, rank: Rank) -> AsyncIterator[None]:
        if self._free > 0 and not self._waiters:
            self._free -= 1
        else:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (int(rank), next(self._order), granted))
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():  # handed over just before the cancel
                    self._release()
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiters:
            granted = heapq.heappop(self._waiters)[2]
            if not granted.done():  # a cancelled waiter is skipped
                granted.set_result(None)
                return
        self._free += 1
