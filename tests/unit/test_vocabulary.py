"""The vocabulary module is the single source: the reference agrees with it (the Argo CD and Flux checks and
the alerts: tests/deploy/test_status_agreement.py)."""

from __future__ import annotations

import re
from pathlib import Path

from azure_edition_operator import conditions
from azure_edition_operator import reasons as vocab

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "reference.md"


def test_reference_lists_exactly_the_vm_provisioned_reasons() -> None:
    text = REFERENCE.read_text()
    section = text.split("### VMProvisioned", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
    assert documented == set(vocab.VM_PROVISIONED)


def test_reference_lists_every_azure_code() -> None:
    section = REFERENCE.read_text().split("## Azure error codes", 1)[1]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
    assert documented == set(vocab.AZURE_CODES)


def test_conditions_derive_from_the_vocabulary() -> None:
    assert conditions.FAILED_PROVISIONING_REASONS == vocab.USER_REASONS
    assert conditions.PASS_THROUGH_REASONS == vocab.READY_PASS_THROUGH
    assert "QuotaExceeded" in vocab.USER_REASONS and "Throttled" not in vocab.USER_REASONS


def test_reasons_are_valid_condition_reasons() -> None:
    pattern = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")  # metav1.Condition.reason
    assert all(pattern.match(r) for r in vocab.VM_PROVISIONED)
