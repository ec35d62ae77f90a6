"""The ready queue of the controller (controller.py): which due object a free worker takes next.

Objects whose time has come wait here for one of the controller's workers. The order decides how a
burst ends, and who waits behind whom:

* **Rank first** (lower first): a check round (one VM read, a bounded number per interval) comes before
  a pass polling an operation, which comes before a new object's first pass. With arrival order
  alone, a burst queues every object's first pass before any object's second, so all objects finish
  together at the end; furthest-along-first finishes them object after object, at bounded memory.
* **At equal rank, shares take turns** (a share is the object's namespace: a tenant), round-robin, and
  each share's objects go in arrival order. So one tenant's flood cannot starve another: an object is
  taken after at most one object of each other share waiting at its rank (plus the objects of lower
  ranks, which only objects already started make; a flood starts no more of its objects while they
  wait). With arrival order alone, 5,000 objects of one namespace kept another tenant's new object from
  its first pass for over 20 minutes (bench/README.md).

Pure and synchronous: the controller awaits, this only orders.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Hashable


class Rank(enum.IntEnum):
    """How far along an object is; lower is taken first."""

    CHECK = 0  # a check round: one VM read, then the capability checks and status
    RESUME = 1  # an operation of this object is in flight or has just finished
    START = 2  # a first pass (a new object, an edit, a resync) or a routine check round


class FairQueue:
    """Keys by rank, then share by share in turns; a key is queued at most once."""

    def __init__(self) -> None:
        # rank → share → its keys in arrival order; a dict's order is the turn order (next first)
        self._queues: dict[int, dict[str, deque[Hashable]]] = {}
        self._where: dict[Hashable, tuple[int, str]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._where

    def push(self, key: Hashable, rank: Rank, share: str = "") -> None:
        """Queue ``key``; a share that starts waiting joins the end of the turn order. A key already
        queued keeps its place."""
        if key in self._where:
            return
        self._queues.setdefault(int(rank), {}).setdefault(share, deque()).append(key)
        self._where[key] = (int(rank), share)

    def pop(self) -> Hashable | None:
        """The next key: lowest rank, the share whose turn it is, its oldest key; None when empty."""
        if not self._queues:
            return None
        rank = min(self._queues)
        shares = self._queues[rank]
        share = next(iter(shares))  # whose turn it is
        keys = shares.pop(share)
        key = keys.popleft()
        if keys:
            shares[share] = keys  # to the end of the turn order
        if not shares:
            del self._queues[rank]
        del self._where[key]
        return key

    def remove(self, key: Hashable) -> None:
        """Take ``key`` out (its object is gone); an empty queue leaves the turn order."""
        where = self._where.pop(key, None)
        if where is None:
            return
        rank, share = where
        shares = self._queues[rank]
        shares[share].remove(key)
        if not shares[share]:
            del shares[share]
        if not shares:
            del self._queues[rank]
