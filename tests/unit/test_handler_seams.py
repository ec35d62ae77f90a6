"""Handler seams that need no cluster: what decides whether the capability checks may run."""

from __future__ import annotations

import kopf
from prometheus_client import REGISTRY, generate_latest

from azure_edition_operator import handlers, metrics


def memo_with(**provisioned: int) -> kopf.Memo:
    memo = kopf.Memo()
    memo.provisioned = dict(provisioned)
    for name in ("observed", "checked_at", "check_memory", "resync_due"):
        setattr(memo, name, {})
    return memo


def test_checks_wait_for_a_pass_that_left_this_generation_provisioned() -> None:
    """Memory, not status (which anyone with status access could forge), says the VM is there."""
    memo = memo_with(uid1=1)
    assert handlers._checks_due(memo, {"uid": "uid1", "generation": 1})
    assert not handlers._checks_due(memo, {"uid": "uid1", "generation": 2})  # the new spec is not reconciled
    assert not handlers._checks_due(memo, {"uid": "uid2", "generation": 1})  # never seen provisioned


def test_forgetting_an_object_stops_its_checks() -> None:
    memo = memo_with(uid1=1)
    handlers._forget(memo, {"uid": "uid1", "namespace": "ns", "name": "vm"})
    assert not handlers._checks_due(memo, {"uid": "uid1", "generation": 1})


def _series(namespace: str, name: str) -> list[str]:
    exposition = generate_latest(REGISTRY).decode()
    return [line for line in exposition.splitlines() if f'name="{name}",namespace="{namespace}"' in line]


def test_forgetting_an_object_drops_every_metric_series_it_had() -> None:
    """Every path out of ``delete`` calls ``_forget``: a create/delete loop leaves no series behind."""
    stalled = {"conditions": [{"type": "Ready", "status": "False"},
                              {"type": "Stalled", "status": "True", "reason": "NotPermitted"}]}  # fmt: skip
    metrics.set_summary("loop", "vm-1", stalled)
    metrics.set_certificate("loop", "vm-1", "Valid", 1.0, 3)
    metrics.set_hotpatch("loop", "vm-1", "HotpatchEnabled", False, 0)
    assert len(_series("loop", "vm-1")) > 5
    handlers._forget(memo_with(), {"uid": "u", "namespace": "loop", "name": "vm-1"})
    assert _series("loop", "vm-1") == []
