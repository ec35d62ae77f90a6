"""Both ways: docs/reference.md, the Argo CD and Flux health checks and the alert rules agree with the
code on every reason of the vocabulary (azure_edition_operator.reasons), and none of them names a reason
the code lacks.

The checks are not compared with lists: they are run (Lua under lupa, CEL under cel-python) on the
status the operator's own pure functions compute for each reason, and must give the verdict the
reason's classification asks for (a warning Healthy, an outage Degraded or, when the operator repairs
it itself, Progressing; time-fixes-it Progressing; needs-a-person Degraded)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from azure_edition_operator import conditions as cond
from azure_edition_operator import reasons as vocab
from azure_edition_operator.api.v1alpha1 import CertificateState, Phase
from azure_edition_operator.checks.smb_certificate import _REASON_OF_STATE
from azure_edition_operator.images import Capability, resolve
from azure_edition_operator.status import Observation, compute_status, condition
from tests.deploy.support import DEPLOY, REPO
from tests.deploy.test_argocd_health import HEALTH_DIR, argo_health
from tests.deploy.test_flux_health import flux_status, health_check_exprs
from tests.deploy.test_monitoring import RULES

NOW = datetime(2026, 3, 2, 9, 20, tzinfo=UTC)
TEMPLATE = yaml.safe_load((HEALTH_DIR / "testdata" / "healthy_ready.yaml").read_text())
CAPS = frozenset(Capability)
HEALTHY = {
    vocab.HOTPATCH_HEALTHY: condition(vocab.HOTPATCH_HEALTHY, True, vocab.HOTPATCH_ENABLED, "enrolled"),
    vocab.SMB_CERTIFICATE_VALID: condition(
        vocab.SMB_CERTIFICATE_VALID, True, vocab.CERTIFICATE_VALID, "valid"
    ),
    vocab.EXTENDED_NETWORK_READY: condition(
        vocab.EXTENDED_NETWORK_READY, True, vocab.EXTENDED_NETWORK_READY, "every prerequisite holds"
    ),
}
IMAGE_OK = condition("ImageResolved", True, vocab.IMAGE_RESOLVED, "chosen")
ARGO_TO_KSTATUS = {"Healthy": "Current", "Progressing": "InProgress", "Degraded": "Failed"}


def operator_object(obs: Observation) -> dict[str, Any]:
    """The AzureEditionVM as the operator would leave it after this observation (its own functions)."""
    obj = copy.deepcopy(TEMPLATE)
    obj["spec"]["capabilities"] = sorted(str(c) for c in obs.capabilities)
    obj["status"] = compute_status({}, obs, NOW)
    obj["metadata"]["generation"] = obs.generation
    return json.loads(json.dumps(obj))  # plain wire data, as the API server would return it


def verdicts(obj: dict[str, Any]) -> tuple[str, str, str]:
    argo = argo_health(obj)
    return argo["status"], flux_status(obj), argo.get("message", "")


def expected_for(kind: vocab.Kind, severity: vocab.Severity = vocab.Severity.OUTAGE) -> str:
    if kind is vocab.Kind.OK or severity is not vocab.Severity.OUTAGE:
        return "Healthy"
    return "Degraded" if kind is vocab.Kind.USER else "Progressing"


@pytest.mark.parametrize("reason", sorted(vocab.VM_PROVISIONED))
def test_argo_and_flux_on_every_vm_provisioned_reason(reason):
    kind = vocab.kind_of(reason)
    assert kind is not None
    vm = condition("VMProvisioned", kind is vocab.Kind.OK, reason, f"about {reason}")
    obj = operator_object(Observation(2, frozenset(), image_condition=IMAGE_OK, vm_condition=vm))
    argo, flux, message = verdicts(obj)
    assert argo == expected_for(kind), obj["status"]["conditions"]
    assert flux == ARGO_TO_KSTATUS[argo]
    if argo != "Healthy":
        assert message == f"{reason}: about {reason}"  # the reason and its message, whichever tool


@pytest.mark.parametrize(("condition_type", "reason"), [(r.condition, r.name) for r in vocab.CAPABILITY])
def test_argo_and_flux_on_every_capability_reason(condition_type, reason):
    entry = vocab.CAPABILITY_REASONS[condition_type][reason]
    checked = condition(condition_type, entry.severity is vocab.Severity.OK, reason, f"about {reason}")
    others = [c for t, c in HEALTHY.items() if t != condition_type]
    vm = condition("VMProvisioned", True, vocab.SUCCEEDED, "the VM is provisioned")
    image = resolve(CAPS)
    obs = Observation(2, CAPS, image=image, image_condition=IMAGE_OK, vm_condition=vm,
                      capability_conditions=(checked, *others))  # fmt: skip
    obj = operator_object(obs)
    argo, flux, message = verdicts(obj)
    assert argo == expected_for(entry.kind, entry.severity)
    assert flux == ARGO_TO_KSTATUS[argo]
    if entry.severity is vocab.Severity.WARNING:  # Healthy, and says so
        assert f"{condition_type}: {reason}: about {reason}" in message
        assert obj["status"]["phase"] == str(Phase.READY)
    elif entry.severity is vocab.Severity.OUTAGE:
        assert message == f"{reason}: about {reason}"


@pytest.mark.parametrize(
    "reason", sorted(r for r, k in vocab.IMAGE_REASONS.items() if k is not vocab.Kind.OK)
)
def test_argo_and_flux_on_every_image_reason(reason):
    bad = condition("ImageResolved", False, reason, "pin")
    obj = operator_object(Observation(2, CAPS, image_condition=bad))
    argo, flux, _ = verdicts(obj)
    assert argo == expected_for(vocab.IMAGE_REASONS[reason]) == "Degraded" and flux == "Failed"


# ------------------------------------------------------------------------------------------------
# Nothing names a reason the code lacks
# ------------------------------------------------------------------------------------------------

CONDITION_TYPES = {str(t) for t in cond.ConditionType}
ALL_REASONS = (
    set(vocab.VM_PROVISIONED)
    | set(vocab.IMAGE_REASONS)
    | {r.name for r in vocab.CAPABILITY}
    | set(vocab.READY_REASONS)
    | {vocab.IDLE, vocab.NOT_STALLED}
)
WORDS = CONDITION_TYPES | ALL_REASONS | {str(p) for p in Phase} | {"True", "False", "Unknown"}
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing"}


def quoted_words(text: str) -> set[str]:
    return set(re.findall(r"""["']([A-Z][A-Za-z0-9]+)["']""", text))


def test_argo_lua_names_nothing_the_code_lacks():
    lua = (HEALTH_DIR / "health.lua").read_text()
    unknown = quoted_words(lua) - WORDS - ARGO_STATUSES
    assert not unknown, f"health.lua names {sorted(unknown)}, which the operator does not have"


def test_flux_expressions_name_nothing_the_code_lacks():
    unknown = quoted_words(" ".join(health_check_exprs().values())) - WORDS
    assert not unknown, f"the Flux check names {sorted(unknown)}, which the operator does not have"


def test_the_name_scan_has_teeth():
    assert quoted_words("""if ready.reason == "SomethingNew" then""") - WORDS == {"SomethingNew"}


# ------------------------------------------------------------------------------------------------
# docs/reference.md, both ways
# ------------------------------------------------------------------------------------------------

REFERENCE = (REPO / "docs" / "reference.md").read_text()


def reference_rows(heading: str) -> set[str]:
    section = REFERENCE.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.M))


@pytest.mark.parametrize("condition_type", sorted(vocab.CAPABILITY_REASONS))
def test_reference_documents_exactly_the_capability_reasons(condition_type):
    assert reference_rows(f"### {condition_type}") == set(vocab.CAPABILITY_REASONS[condition_type])


def test_reference_severity_table_is_the_vocabulary():
    section = REFERENCE.split("\n## Capability reasons: a warning is not an outage\n", 1)[1].split(
        "\n## ", 1
    )[0]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| (\w+) \| (\w+) ", section, re.M)
    assert {(t, r, s) for t, r, s, _ in rows} == {
        (e.condition, e.name, str(e.severity)) for e in vocab.CAPABILITY
    }
    for _, reason, severity, ready in rows:
        assert (ready == "True") is (severity != "outage"), reason


def test_reference_image_reasons_are_the_vocabulary():
    assert reference_rows("### ImageResolved") == set(vocab.IMAGE_REASONS)


# ------------------------------------------------------------------------------------------------
# Alerts: warnings warn, outages page; nothing stalled falls through; no unknown names
# ------------------------------------------------------------------------------------------------

# Metrics that carry one reason each (no reason label to match on).
DEDICATED = {
    "azureedition_hotpatch_reboot_pending": vocab.REBOOT_PENDING,
    "azureedition_hotpatch_failed_patches": vocab.PATCH_INSTALLATION_FAILED,
    "azureedition_smb_quic_enabled": vocab.SMB_OVER_QUIC_DISABLED,
}
STATE_REASON = {str(state): str(reason) for state, reason in _REASON_OF_STATE.items()}
SEVERITY_LABEL = {vocab.Severity.WARNING: "warning", vocab.Severity.OUTAGE: "critical"}


def alerts() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def matcher_values(expr: str, label: str, ops: tuple[str, ...]) -> set[str]:
    values: set[str] = set()
    for op, value in re.findall(rf'\b{label}\s*(=~|!~|!=|=)\s*"([^"]*)"', expr):
        if op in ops:
            values |= set(value.split("|"))
    return values


def named_reasons(expr: str) -> set[str]:
    """Reasons an expression selects positively: reason matchers, certificate states, dedicated metrics."""
    named = matcher_values(expr, "reason", ("=", "=~"))
    named |= {STATE_REASON[s] for s in matcher_values(expr, "state", ("=", "=~")) if s in STATE_REASON}
    named |= {reason for metric, reason in DEDICATED.items() if metric in expr}
    return named


def test_no_rule_names_a_reason_or_state_the_code_lacks():
    known_states = {str(s) for s in CertificateState}
    for rule in alerts():
        expr = rule["expr"]
        reasons = matcher_values(expr, "reason", ("=", "=~", "!=", "!~"))
        assert reasons <= ALL_REASONS | {"Other"}, (rule["alert"], reasons - ALL_REASONS)
        states = matcher_values(expr, "state", ("=", "=~", "!=", "!~"))
        assert states <= known_states, (rule["alert"], states - known_states)


@pytest.mark.parametrize(
    "entry", [e for e in vocab.CAPABILITY if e.severity is not vocab.Severity.OK], ids=lambda e: e.name
)
def test_every_capability_warning_warns_and_every_outage_pages(entry):
    wanted = SEVERITY_LABEL[entry.severity]
    covering = [r["alert"] for r in alerts() if entry.name in named_reasons(r["expr"])]
    assert covering, f"no alert covers {entry.condition}/{entry.name}"
    assert any(r["labels"]["severity"] == wanted for r in alerts() if r["alert"] in covering), (
        f"{entry.name} is a {entry.severity}: an alert with severity {wanted} must cover it"
    )


def test_an_alert_about_reasons_has_their_severity():
    """An alert that names warning reasons does not page, and one that names outages does."""
    for rule in alerts():
        severities = {
            entry.severity
            for entry in vocab.CAPABILITY
            if entry.name in named_reasons(rule["expr"]) and entry.severity is not vocab.Severity.OK
        }
        if severities:
            assert {SEVERITY_LABEL[s] for s in severities} == {rule["labels"]["severity"]}, rule["alert"]


STALLED_REASONS = (
    {r for r in vocab.VM_PROVISIONED if vocab.kind_of(r) is vocab.Kind.USER}
    | {r for r, k in vocab.IMAGE_REASONS.items() if k is vocab.Kind.USER}
    | {e.name for e in vocab.CAPABILITY if e.severity is vocab.Severity.OUTAGE and e.kind is vocab.Kind.USER}
)


def test_every_stalled_reason_alerts():
    """The generic Stalled alert covers every reason it does not exclude; each it excludes pages elsewhere."""
    [generic] = [r for r in alerts() if "azureedition_stalled" in r["expr"] and not named_reasons(r["expr"])]
    excluded = matcher_values(generic["expr"], "reason", ("!~", "!="))
    assert excluded <= STALLED_REASONS
    for reason in excluded:
        paging = [
            r["alert"]
            for r in alerts()
            if reason in named_reasons(r["expr"]) and r["labels"]["severity"] == "critical"
        ]
        assert paging, f"the Stalled alert leaves out {reason}, but no critical alert covers it"
    outages = {vocab.VM_STOPPED, vocab.VM_NOT_FOUND}  # reference.md: a VM missing or stopped is an outage
    assert all(reason in excluded for reason in outages)


def test_alert_rules_file_is_the_one_promtool_tests():
    assert RULES.is_relative_to(DEPLOY)
