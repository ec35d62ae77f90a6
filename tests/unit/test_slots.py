"""The controller's ready queue: a due object goes to a worker furthest-along first, namespaces in turns."""

from __future__ import annotations

from azure_edition_operator.slots import FairQueue, Rank


def _order(waiters: list[tuple[Rank, str, str]]) -> list[str]:
    """Queue ``waiters`` (rank, share, key) in order, then take them all: who a worker got when."""
    queue = FairQueue()
    for rank, share, key in waiters:
        queue.push(key, rank, share)
    order = []
    while (key := queue.pop()) is not None:
        order.append(key)
    assert len(queue) == 0
    return order


def test_a_flood_of_one_namespace_does_not_starve_another_that_arrives_last() -> None:
    flood = [(Rank.START, "tenant-a", f"a{i}") for i in range(500)]
    order = _order([*flood, (Rank.START, "tenant-b", "b")])
    assert order.index("b") <= 1  # at most one object of the flooding namespace first (k = 1 per other share)
    assert [x for x in order if x != "b"] == [f"a{i}" for i in range(500)]  # a's own stay in arrival order


def test_namespaces_take_turns_at_equal_rank() -> None:
    waiters = [(Rank.START, "a", f"a{i}") for i in range(4)]
    waiters += [(Rank.START, "b", f"b{i}") for i in range(2)] + [(Rank.START, "c", "c0")]
    assert _order(waiters) == ["a0", "b0", "c0", "a1", "b1", "a2", "a3"]


def test_every_object_is_taken_within_one_turn_of_each_other_waiting_namespace() -> None:
    """The bound with many namespaces: an object that arrives last is taken after at most one object of
    each other namespace waiting at its rank (k = 7 here), not after the 210 that arrived before it."""
    waiters = [(Rank.START, f"ns{i % 7}", f"{i}") for i in range(7 * 30)]
    waiters += [(Rank.START, "late", "late")]
    assert _order(waiters).index("late") <= 7


def test_ranks_are_honoured_across_namespaces() -> None:
    waiters = [(Rank.START, "a", f"start-a{i}") for i in range(3)]
    waiters += [(Rank.START, "b", "start-b0"), (Rank.RESUME, "a", "resume-a0"), (Rank.CHECK, "b", "check-b0")]
    waiters += [(Rank.RESUME, "b", "resume-b0"), (Rank.RESUME, "a", "resume-a1")]
    assert _order(waiters) == [
        "check-b0", "resume-a0", "resume-b0", "resume-a1", "start-a0", "start-b0", "start-a1", "start-a2",
    ]  # fmt: skip


def test_a_key_is_queued_once_and_keeps_its_place() -> None:
    queue = FairQueue()
    queue.push("x", Rank.START, "a")
    queue.push("y", Rank.START, "a")
    queue.push("x", Rank.CHECK, "a")  # already waiting: no second entry
    assert len(queue) == 2 and "x" in queue
    assert [queue.pop(), queue.pop(), queue.pop()] == ["x", "y", None]


def test_removed_keys_leave_nothing_behind() -> None:
    queue = FairQueue()
    for i in range(50):
        queue.push(f"gone-{i}", Rank.RESUME, f"gone-{i}")
    queue.push("kept", Rank.RESUME, "kept")
    for i in range(50):
        queue.remove(f"gone-{i}")
    queue.remove("never-queued")
    assert len(queue) == 1 and list(queue._queues[Rank.RESUME]) == ["kept"]  # no empty queue, no turn
    assert queue.pop() == "kept"
    assert len(queue) == 0 and not queue._queues and not queue._where
