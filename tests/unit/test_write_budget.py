"""The write budget, its pure parts: when the controller comes back for the next pass of a series (an
operation runs, Azure said "later") instead of ending it, when it reports progress, the in-memory diff base."""

from __future__ import annotations

import kopf
import pytest

from azure_edition_operator import reasons as vocab
from azure_edition_operator.diffbase import MemoryDiffBaseStorage
from azure_edition_operator.reconciler import next_pass_delay, report_progress

PROGRESS, TRANSIENT, USER = vocab.Kind.PROGRESS, vocab.Kind.TRANSIENT, vocab.Kind.USER


@pytest.mark.parametrize(
    ("kind", "retry_after", "first_poll", "expected"),
    [
        (PROGRESS, 1.0, True, 0.0),  # a new operation: polled once at once, as azure-core does
        (PROGRESS, 1.0, False, 1.0),  # then after Retry-After
        (TRANSIENT, 5.0, True, 5.0),  # throttling is never polled at once
        (PROGRESS, 3600.0, False, 3600.0),  # however long: the controller holds no task while it waits
        (USER, 900.0, False, None),  # needs a person: status and an Event now, the slow retry after
        (None, None, False, None),  # done
        (PROGRESS, None, False, None),  # nothing to wait for
    ],
)
def test_next_pass_delay(kind, retry_after, first_poll, expected):
    assert next_pass_delay(kind, retry_after, first_poll=first_poll) == expected


def test_progress_is_reported_only_for_a_wait_a_person_would_see():
    assert not report_progress(0.1, 1.0, 3.0)  # zero-latency create: the one status write says Ready
    assert not report_progress(1.1, 1.0, 3.0)
    assert report_progress(2.2, 1.0, 3.0)  # a slow create shows VMProvisioned=False/Creating
    assert report_progress(0.0, 5.0, 3.0)  # a transient error with back-off shows its reason at once


def _body(uid: str, spec: dict, annotations: dict[str, str] | None = None) -> kopf.Body:
    raw = {
        "metadata": {"uid": uid, "name": "x", "namespace": "n", "annotations": annotations or {}},
        "spec": spec,
    }
    return kopf.Body(raw)


def test_diffbase_in_memory_writes_nothing_and_hides_our_bookkeeping():
    storage = MemoryDiffBaseStorage(ignored_prefixes=("kopf.azureedition.io",))
    body = _body(
        "u1",
        {"vmSize": "a"},
        {"kopf.azureedition.io/azure-state": "{}", "azureedition.io/assess-patches": "t"},
    )
    assert (
        storage.fetch(body=body) is None
    )  # never seen (a new object, or after a restart): kopf says "create"
    essence = storage.build(body=body)
    assert essence["metadata"]["annotations"] == {"azureedition.io/assess-patches": "t"}  # the user's stays
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=essence)
    assert not patch  # no annotation to write
    # Our own state annotation changing is no spec change: the same essence.
    moved = _body("u1", {"vmSize": "a"}, {"kopf.azureedition.io/azure-state": '{"vm_id":"v"}',
                                          "azureedition.io/assess-patches": "t"})  # fmt: skip
    assert storage.build(body=moved) == storage.fetch(body=moved)
    assert storage.build(body=_body("u1", {"vmSize": "b"})) != storage.fetch(body=moved)
    storage.forget("u1")
    assert storage.fetch(body=body) is None and len(storage) == 0
