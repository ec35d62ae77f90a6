"""Handler seams that need no cluster: what decides whether the capability checks may run."""

from __future__ import annotations

import kopf

from azure_edition_operator import handlers


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
    handlers._forget(memo, "uid1")
    assert not handlers._checks_due(memo, {"uid": "uid1", "generation": 1})
