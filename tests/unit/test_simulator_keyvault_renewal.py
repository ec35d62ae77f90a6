"""The simulated Key Vault renews a certificate by its policy's own AutoRenew trigger as time passes
(days before expiry, or a share of the lifetime), once per version: what makes a renewal in the
simulator more than a control-API call."""

from __future__ import annotations

from typing import Any

import pytest

from azure_edition_simulator import keyvault

DAY = 86400.0
NBF, EXP = 1_000_000.0, 1_000_000.0 + 100 * DAY


def entry(trigger: dict[str, Any], action: str = "AutoRenew") -> dict[str, Any]:
    policy = keyvault.default_policy("CN=fs01.branch-a.contoso.com", ["fs01.branch-a.contoso.com"])
    policy["lifetime_actions"] = [{"trigger": trigger, "action": {"action_type": action}}]
    return {"policy": policy, "versions": [{"version": "v1", "nbf": NBF, "exp": EXP}]}


@pytest.mark.parametrize(
    ("trigger", "now", "due"),
    [
        ({"days_before_expiry": 30}, EXP - 31 * DAY, False),
        ({"days_before_expiry": 30}, EXP - 30 * DAY, True),
        ({"lifetime_percentage": 80}, NBF + 79 * DAY, False),
        ({"lifetime_percentage": 80}, NBF + 80 * DAY, True),
        ({}, EXP + DAY, False),  # no trigger: never
    ],
)
def test_the_trigger_decides_when_a_renewal_is_due(trigger: dict[str, Any], now: float, due: bool) -> None:
    assert keyvault.renewal_due(entry(trigger), now) is due


def test_an_email_contacts_action_never_renews() -> None:
    assert not keyvault.renewal_due(entry({"days_before_expiry": 30}, action="EmailContacts"), EXP)


def test_renew_due_makes_one_new_version_that_is_not_due_itself() -> None:
    vault = keyvault.new_vault("kv")
    vault["certificates"]["fs01"] = entry({"days_before_expiry": 30})
    now = EXP - 10 * DAY
    assert keyvault.renew_due({"kv": vault}, now) == [("kv", "fs01")]
    versions = vault["certificates"]["fs01"]["versions"]
    assert len(versions) == 2 and versions[-1]["exp"] > EXP
    assert keyvault.renew_due({"kv": vault}, now) == []  # the new version is months from its trigger
