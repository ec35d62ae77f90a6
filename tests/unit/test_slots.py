"""Slots for reconcile passes: bounded, and a released slot goes to the pass furthest along."""

from __future__ import annotations

import asyncio

import pytest

from azure_edition_operator.slots import Rank, Slots


async def test_at_most_size_hold_a_slot_at_once() -> None:
    slots, inside, most = Slots(2), 0, 0

    async def one() -> None:
        nonlocal inside, most
        async with slots.hold(Rank.START):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(7)))
    assert most == 2


async def test_a_released_slot_goes_to_the_lowest_rank_then_in_arrival_order() -> None:
    slots, order = Slots(1), []
    release = asyncio.Event()

    async def holder() -> None:
        async with slots.hold(Rank.START):
            await release.wait()

    async def waiter(rank: Rank, label: str) -> None:
        async with slots.hold(rank):
            order.append(label)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(waiter(r, f"{r.name}{i}")) for i, r in
             enumerate([Rank.START, Rank.RESUME, Rank.START, Rank.CHECK, Rank.RESUME])]  # fmt: skip
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *tasks)
    assert order == ["CHECK3", "RESUME1", "RESUME4", "START0", "START2"]


@pytest.mark.parametrize("handed_over", [False, True])
async def test_a_cancelled_waiter_neither_takes_nor_loses_a_slot(handed_over: bool) -> None:
    slots = Slots(1)
    release = asyncio.Event()

    async def holder() -> None:
        async with slots.hold(Rank.START):
            await release.wait()

    async def waiter() -> None:
        async with slots.hold(Rank.CHECK):
            await asyncio.sleep(3600)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    if handed_over:  # the slot is handed to the waiter, which is cancelled before it runs
        release.set()
        await first
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    release.set()
    await first
    async with asyncio.timeout(1):
        async with slots.hold(Rank.START):  # the one slot is free again
            pass
    assert slots._free == 1


async def test_waiting_and_active_count_the_backlog_behind_the_limit() -> None:
    """What azureedition_reconcile_waiting / _active report: a cancelled waiter leaves the backlog."""
    slots = Slots(2)
    release = asyncio.Event()

    async def one() -> None:
        async with slots.hold(Rank.START):
            await release.wait()

    tasks = [asyncio.create_task(one()) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert (slots.active, slots.waiting) == (2, 3)
    tasks[-1].cancel()
    await asyncio.sleep(0.01)
    assert (slots.active, slots.waiting) == (2, 2)
    release.set()
    await asyncio.gather(*tasks[:-1])
    assert (slots.active, slots.waiting) == (0, 0)
