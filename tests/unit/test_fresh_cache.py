"""kube.Fresh: the tenancy reads (TenantPolicies, a namespace's labels) behind every reconcile and check
round. The scale bench (issue #15) counted 5.4 `GET namespaces` a second for one namespace with a 2 s
cache: every round that missed while the read was in flight read again."""

from __future__ import annotations

import asyncio

import pytest

from azure_edition_operator.fresh import Fresh


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Reader:
    """Counts reads; each waits until released, as an API request in flight does."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self) -> dict[str, str]:
        self.calls += 1
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return {"read": str(self.calls)}


async def test_callers_that_miss_together_share_one_read() -> None:
    cache: Fresh[dict[str, str]] = Fresh(2.0, Clock())
    read = Reader()
    waiting = [asyncio.create_task(cache.get("ns-a", read)) for _ in range(50)]
    await asyncio.sleep(0)
    read.release.set()
    assert await asyncio.gather(*waiting) == [{"read": "1"}] * 50
    assert read.calls == 1


async def test_a_value_is_reused_until_it_is_older_than_the_ttl() -> None:
    clock = Clock()
    cache: Fresh[dict[str, str]] = Fresh(2.0, clock)
    read = Reader()
    read.release.set()
    assert await cache.get("ns-a", read) == {"read": "1"}
    clock.now += 1.9
    assert await cache.get("ns-a", read) == {"read": "1"}
    assert await cache.get("ns-b", read) == {"read": "2"}  # one entry per key
    clock.now += 0.1  # ns-a is now ttl old
    assert await cache.get("ns-a", read) == {"read": "3"}
    assert read.calls == 3


async def test_a_failed_read_reaches_every_caller_and_is_not_kept() -> None:
    cache: Fresh[dict[str, str]] = Fresh(2.0, Clock())
    read = Reader()
    read.fail = RuntimeError("apiserver unavailable")
    waiting = [asyncio.create_task(cache.get("ns-a", read)) for _ in range(3)]
    await asyncio.sleep(0)
    read.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [str(r) for r in results] == ["apiserver unavailable"] * 3 and read.calls == 1
    read.fail = None
    assert await cache.get("ns-a", read) == {"read": "2"}


async def test_a_cancelled_caller_does_not_cancel_the_read_the_others_wait_for() -> None:
    cache: Fresh[dict[str, str]] = Fresh(2.0, Clock())
    read = Reader()
    first, second = (asyncio.create_task(cache.get("ns-a", read)) for _ in range(2))
    await asyncio.sleep(0)
    first.cancel()
    read.release.set()
    assert await second == {"read": "1"}
    with pytest.raises(asyncio.CancelledError):
        await first
    assert read.calls == 1


async def test_keys_that_come_and_go_are_not_kept_forever() -> None:
    """Namespaces churn (a CI namespace per run): expired values are swept, so the cache stays about the
    size of what was read within one ttl, not of every key ever read."""
    clock = Clock()
    cache: Fresh[int] = Fresh(2.0, clock)

    async def value() -> int:
        return 1

    for i in range(10_000):
        await cache.get(f"ns-{i}", value)
        clock.now += 0.01  # 200 keys a ttl
    assert len(cache._values) < 2 * 64 + 2 * 200
    assert await cache.get("ns-9999", value) == 1
