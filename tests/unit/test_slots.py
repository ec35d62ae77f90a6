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


async def _grant_order(slots: Slots, waiters: list[tuple[Rank, str, str]]) -> list[str]:
    """Hold the one slot, queue ``waiters`` (rank, share, label) in order, then release: who got it when."""
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with slots.hold(Rank.START, "holder"):
            await release.wait()

    async def waiter(rank: Rank, share: str, label: str) -> None:
        async with slots.hold(rank, share):
            order.append(label)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = []
    for rank, share, label in waiters:
        tasks.append(asyncio.create_task(waiter(rank, share, label)))
        await asyncio.sleep(0)  # queued in this order
    release.set()
    await asyncio.gather(first, *tasks)
    return order


async def test_a_flood_of_one_namespace_does_not_starve_another_that_arrives_last() -> None:
    flood = [(Rank.START, "tenant-a", f"a{i}") for i in range(500)]
    order = await _grant_order(Slots(1), [*flood, (Rank.START, "tenant-b", "b")])
    assert order.index("b") <= 1  # at most one grant to the flooding namespace first (k = 1 per other share)
    assert [x for x in order if x != "b"] == [f"a{i}" for i in range(500)]  # a's own stay in arrival order


async def test_namespaces_take_turns_at_equal_rank() -> None:
    waiters = [(Rank.START, "a", f"a{i}") for i in range(4)]
    waiters += [(Rank.START, "b", f"b{i}") for i in range(2)] + [(Rank.START, "c", "c0")]
    order = await _grant_order(Slots(1), waiters)
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]


async def test_every_waiter_is_served_within_one_turn_of_each_other_waiting_namespace() -> None:
    """The bound with many namespaces: a waiter that arrives last is granted after at most one grant to
    each other namespace waiting at its rank (k = 7 here), not after the 210 that arrived before it."""
    waiters = [(Rank.START, f"ns{i % 7}", f"{i}") for i in range(7 * 30)]
    waiters += [(Rank.START, "late", "late")]
    order = await _grant_order(Slots(1), waiters)
    assert order.index("late") <= 7  # one turn of each of the 7 namespaces at most


async def test_ranks_are_honoured_across_namespaces() -> None:
    waiters = [(Rank.START, "a", f"start-a{i}") for i in range(3)]
    waiters += [(Rank.START, "b", "start-b0"), (Rank.RESUME, "a", "resume-a0"), (Rank.CHECK, "b", "check-b0")]
    waiters += [(Rank.RESUME, "b", "resume-b0"), (Rank.RESUME, "a", "resume-a1")]
    order = await _grant_order(Slots(1), waiters)
    assert order == [
        "check-b0",
        "resume-a0",
        "resume-b0",
        "resume-a1",
        "start-a0",
        "start-b0",
        "start-a1",
        "start-a2",
    ]


async def test_cancelled_waiters_leave_nothing_behind() -> None:
    slots = Slots(1)
    release = asyncio.Event()

    async def holder() -> None:
        async with slots.hold(Rank.START, "a"):
            await release.wait()

    async def waiter(share: str) -> None:
        async with slots.hold(Rank.RESUME, share):
            pass

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    doomed = [asyncio.create_task(waiter(f"gone-{i}")) for i in range(50)]
    kept = asyncio.create_task(waiter("kept"))
    await asyncio.sleep(0)
    assert slots.waiting == 51
    for task in doomed:
        task.cancel()
    await asyncio.gather(*doomed, return_exceptions=True)
    assert slots.waiting == 1 and list(slots._queues[Rank.RESUME]) == ["kept"]  # no empty queue, no turn
    release.set()
    await asyncio.gather(first, kept)
    assert slots.waiting == 0 and not slots._queues and slots._free == 1


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
