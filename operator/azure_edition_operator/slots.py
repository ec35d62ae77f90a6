"""Slots for reconcile passes: at most N talk to Azure at once, a free slot goes to the object furthest
along (issue #15: the operator must never be the queue), and tenants take turns (issue 22).

With a first-come-first-served semaphore, a burst queues every object's first pass before any
object's second, so all objects finish together at the end. Here a waiter's rank decides first
(lower first): an object whose Azure work is done and only needs its first check comes before one
polling an operation, which comes before a new object's first pass.

At equal rank, *shares* (the object's namespace: a tenant) take turns, round-robin, and each share's
waiters go in arrival order. So one tenant's flood cannot starve another: a waiter is handed a slot
after at most one grant to each other share waiting at its rank (plus the grants to lower ranks,
which only objects already started make; a flood starts no more of its objects while they wait). With
arrival order alone, 5,000 objects of one namespace kept another tenant's new object from its first
pass for over 20 minutes.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Rank(enum.IntEnum):
    """How far along a pass is; lower gets a slot first."""

    CHECK = 0  # Azure is done: the first capability check, then status
    RESUME = 1  # an operation of this object is in flight or has just finished
    START = 2  # the first pass of a handler (a new object, an edit, a resync)


class Slots:
    """A semaphore of ``size`` that hands a released slot to the lowest rank, and at equal rank to the
    share whose turn it is (round-robin; a share that starts waiting joins the end of the turn order)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._free = size
        # rank → share → its waiters in arrival order; a dict's order is the turn order (next first)
        self._queues: dict[int, dict[str, deque[asyncio.Future[None]]]] = {}

    @property
    def waiting(self) -> int:
        """Passes waiting for a slot (the backlog behind the limit; a cancelled waiter leaves at once)."""
        return sum(len(waiters) for shares in self._queues.values() for waiters in shares.values())

    @property
    def active(self) -> int:
        """Passes holding a slot now (a slot handed over leaves its queue without returning to ``_free``)."""
        return self._size - self._free

    @asynccontextmanager
    async def hold(self, rank: Rank, share: str = "") -> AsyncIterator[None]:
        if self._free > 0 and not self._queues:
            self._free -= 1
        else:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._queues.setdefault(int(rank), {}).setdefault(share, deque()).append(granted)
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():  # handed over just before the cancel
                    self._release()
                else:
                    self._withdraw(int(rank), share, granted)
                raise
        try:
            yield
        finally:
            self._release()

    def _withdraw(self, rank: int, share: str, granted: asyncio.Future[None]) -> None:
        """A cancelled waiter leaves its queue, and an empty queue the turn order (nothing left behind)."""
        shares = self._queues.get(rank, {})
        waiters = shares.get(share)
        if waiters is None or granted not in waiters:
            return
        waiters.remove(granted)
        if not waiters:
            del shares[share]
        if not shares:
            del self._queues[rank]

    def _release(self) -> None:
        while self._queues:
            rank = min(self._queues)
            shares = self._queues[rank]
            share = next(iter(shares))  # whose turn it is
            waiters = shares.pop(share)
            granted = waiters.popleft()
            if waiters:
                shares[share] = waiters  # to the end of the turn order
            if not shares:
                del self._queues[rank]
            if not granted.done():  # (a cancelled waiter withdraws itself; kept for safety)
                granted.set_result(None)
                return
        self._free += 1
