"""Day-2 signals: the reconcile result label, the ARM request histogram, the slots' backlog gauges."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from azure_edition_operator import metrics
from azure_edition_operator import reasons as vocab
from azure_edition_operator.controller import Schedule
from azure_edition_operator.slots import Rank


@pytest.mark.parametrize(
    ("kind", "result"),
    [(None, "success"), (vocab.Kind.OK, "success"), (vocab.Kind.PROGRESS, "in_progress"),
     (vocab.Kind.TRANSIENT, "retry"), (vocab.Kind.USER, "stalled")],
)  # fmt: skip
def test_reconcile_result_is_a_bounded_label(kind, result):
    assert metrics.reconcile_result(kind) == result
    assert result in metrics.RECONCILE_RESULTS


def test_every_kind_has_a_result():
    assert {metrics.reconcile_result(k) for k in vocab.Kind} | {"success"} == set(metrics.RECONCILE_RESULTS)


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_reconcile_runs_are_counted_and_timed_by_result():
    labels = {"result": "stalled"}
    count = _sample("azureedition_reconcile_duration_seconds_count", labels)
    total = _sample("azureedition_reconcile_duration_seconds_sum", labels)
    metrics.record_reconcile(vocab.Kind.USER, 2.5)
    assert _sample("azureedition_reconcile_duration_seconds_count", labels) == count + 1
    assert _sample("azureedition_reconcile_duration_seconds_sum", labels) == total + 2.5
    below = _sample("azureedition_reconcile_duration_seconds_bucket", {**labels, "le": "1.0"})
    metrics.record_reconcile(vocab.Kind.USER, 0.5)
    assert _sample("azureedition_reconcile_duration_seconds_bucket", {**labels, "le": "1.0"}) == below + 1


def test_azure_requests_are_counted_and_timed_by_resource_type_method_and_status():
    labels = {"resource_type": "Microsoft.Network/publicIPAddresses", "method": "GET", "code": "429"}
    count = _sample("azureedition_azure_request_duration_seconds_count", labels)
    total = _sample(
        "azureedition_azure_requests_total",
        {"operation": "GET Microsoft.Network/publicIPAddresses", "code": "429"},
    )
    metrics.record_azure_request("GET", "Microsoft.Network/publicIPAddresses", 429, 0.2)
    metrics.record_azure_request("GET", "Microsoft.Network/publicIPAddresses", 429)  # untimed: counted only
    assert _sample("azureedition_azure_request_duration_seconds_count", labels) == count + 1
    counted = _sample(
        "azureedition_azure_requests_total",
        {"operation": "GET Microsoft.Network/publicIPAddresses", "code": "429"},
    )
    assert counted == total + 2
    metrics.record_azure_request("PUT", "Microsoft.Compute/virtualMachines", None, 30.0)  # no answer
    no_answer = {"resource_type": "Microsoft.Compute/virtualMachines", "method": "PUT", "code": "error"}
    assert _sample("azureedition_azure_request_duration_seconds_count", no_answer) >= 1


def test_the_backlog_gauges_read_the_schedule_at_scrape_time():
    """azureedition_reconcile_waiting: due objects no worker has taken; _active: objects being worked on."""
    schedule = Schedule()
    metrics.watch_slots(schedule)
    for i in range(4):
        schedule.add(f"uid{i}", 0.0, Rank.START, "ns")
    schedule.release(1.0)
    assert schedule.take() == "uid0"
    assert _sample("azureedition_reconcile_active", {}) == 1
    assert _sample("azureedition_reconcile_waiting", {}) == 3
    schedule.done("uid0", None)
    while (key := schedule.take()) is not None:
        schedule.done(key, None)
    assert _sample("azureedition_reconcile_waiting", {}) == 0
    assert _sample("azureedition_reconcile_active", {}) == 0
