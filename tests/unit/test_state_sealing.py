"""The operator's state on a tenant's object is authenticated (sealing.py): only what the operator
wrote for this object, for this annotation, with its key, reads back; everything else reads as absent."""

from __future__ import annotations

import pytest

from azure_edition_operator import sealing
from azure_edition_operator.azure.driver import MAX_STATE_CHARS, OperationRecord, OperationState

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
STATE = OperationState(
    OperationRecord("virtualMachines", "vm1", "put", "dG9rZW4=", "2026-12-07T00:00:00Z", "created"),
    "8e1c6b2e-0000-4000-8000-000000000001",
    {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2022-datacenter-azure-edition"},
)


def test_sealed_state_round_trips() -> None:
    sealed = sealing.seal(KEY, "uid-1", "azure-state", STATE.dumps())
    assert OperationState.loads(sealing.unseal(KEY, "uid-1", "azure-state", sealed)) == STATE


def test_sealing_is_deterministic_so_an_unchanged_state_is_not_written_again() -> None:
    assert sealing.seal(KEY, "u", "p", "x") == sealing.seal(KEY, "u", "p", "x")


@pytest.mark.parametrize(
    ("why", "value"),
    [
        ("the old, unsealed format (what a tenant can write)", STATE.dumps()),
        ("sealed with another key", sealing.seal(OTHER_KEY, "uid-1", "azure-state", STATE.dumps())),
        ("sealed for another object (copied from a tenant's other object)",
         sealing.seal(KEY, "uid-2", "azure-state", STATE.dumps())),
        ("sealed for another annotation", sealing.seal(KEY, "uid-1", "assessed", STATE.dumps())),
        ("a payload changed after sealing",
         sealing.seal(KEY, "uid-1", "azure-state", STATE.dumps()).replace("vm1", "vm2")),
        ("a forged MAC", "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA." + STATE.dumps()),
        ("another scheme", "v2." + sealing.seal(KEY, "uid-1", "azure-state", STATE.dumps())[3:]),
        ("no MAC at all", "v1.." + STATE.dumps()),
        ("garbage", "\x00\x1b]52;c;bad\x07"),
        ("non-ASCII MAC", "v1.ÿÿÿ." + STATE.dumps()),
        ("oversized", "v1.x." + "a" * (sealing.MAX_SEALED_CHARS + 1)),
        ("empty", ""),
        ("absent", None),
    ],
)  # fmt: skip
def test_anything_the_operator_did_not_seal_for_this_object_reads_as_absent(
    why: str, value: str | None
) -> None:
    assert sealing.unseal(KEY, "uid-1", "azure-state", value) is None, why


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,  # deep nesting: RecursionError in json, not a wedged object
        '{"vm_id": "' + "x" * 300 + '"}',
        '{"operation": {"kind": "virtualMachines", "name": "n", "verb": "post", "token": "t", "started": "s"}}',
        "x" * (MAX_STATE_CHARS + 1),
    ],
)
def test_state_outside_its_bounds_counts_as_empty(text: str) -> None:
    state = OperationState.loads(text)
    assert state.operation is None and state.vm_id is None


def test_only_the_image_fields_are_kept() -> None:
    loaded = OperationState.loads('{"vm_id": "v", "image": {"sku": "s", "exec": "rm -rf", "offer": "o"}}')
    assert loaded.image == {"sku": "s", "offer": "o"}


def test_a_new_key_is_random_and_long_enough() -> None:
    assert len(sealing.new_key()) == sealing.KEY_BYTES and sealing.new_key() != sealing.new_key()
