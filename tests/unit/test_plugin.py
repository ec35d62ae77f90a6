"""kubectl aevm: the pure views (status, why, assess) and the error messages, without a cluster."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from datetime import UTC, date, datetime, timedelta

import pytest

from azure_edition_operator import reasons as vocab
from azure_edition_operator.api.v1alpha1 import (
    ANNOTATION_TOKEN_PATTERN,
    ASSESS_ANNOTATION,
    CertificateState,
    assess_event_message,
)
from azure_edition_operator.checks.hotpatch import BASELINE_MONTHS, last_baseline_month, next_baseline_month
from azure_edition_operator.plugin import main as plugin_main
from azure_edition_operator.plugin import render
from tests import plugin_samples as samples
from tests.conftest import REPO

NOW = datetime(2026, 11, 29, 1, 30, tzinfo=UTC)


# ----------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (86399, "23h"), (86400 * 8, "8d")],
)
def test_age_is_kubectls_compact_form(seconds, shown):
    assert render.age(NOW - timedelta(seconds=seconds), NOW) == shown


def test_age_of_unknown_or_future_time():
    assert render.age(None, NOW) == "-"
    assert render.age(NOW + timedelta(minutes=5), NOW) == "0s"  # clock skew is not negative age


@pytest.mark.parametrize("value", [None, "", 42, "yesterday", "2026-13-01T00:00:00Z"])
def test_garbage_timestamps_read_as_none(value):
    assert render.parse_timestamp(value) is None


def test_timestamps_parse_with_and_without_zone():
    assert render.parse_timestamp("2026-11-20T08:00:00Z") == datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert render.parse_timestamp("2026-11-20T08:00:00") == datetime(2026, 11, 20, 8, tzinfo=UTC)


def test_shorten_keeps_short_text_and_marks_cuts():
    assert render.shorten("a  b\nc", 10) == "a b c"
    cut = render.shorten("x" * 50, 10)
    assert len(cut) == 10 and cut.endswith("…")


@pytest.mark.parametrize(
    ("type_", "status", "ok"),
    [
        ("Ready", "True", True),
        ("Ready", "False", False),
        ("Ready", "Unknown", False),
        ("ExtendedNetworkReady", "False", False),  # a condition this plugin has never heard of
        ("Stalled", "True", False),  # kstatus abnormal-true: True is the problem
        ("Stalled", "False", True),
        ("Reconciling", "True", False),
        ("Reconciling", "False", True),
    ],
)
def test_polarity(type_, status, ok):
    assert render.as_it_should_be({"type": type_, "status": status}) is ok


def test_stale_condition_describes_an_older_generation():
    assert render.is_stale({"observedGeneration": 1}, 2)
    assert not render.is_stale({"observedGeneration": 2}, 2)
    assert not render.is_stale({}, 2)
    assert not render.is_stale({"observedGeneration": 0}, 2)  # never stamped: not claimed stale


def test_malformed_conditions_are_skipped():
    obj = samples.obj({"conditions": [{"type": "Ready", "status": "True"}, "garbage", {"status": "True"}]})
    assert [c["type"] for c in render.conditions_of(obj)] == ["Ready"]
    assert render.conditions_of(samples.obj({"conditions": "nope"})) == []


# ----------------------------------------------------------------------------- status


@pytest.mark.parametrize("state", list(CertificateState))
def test_certificate_trust_says_something_for_every_state(state):
    text = render.certificate_trust(str(state))
    if state in (CertificateState.VALID, CertificateState.EXPIRING_SOON):
        assert text.startswith("trusted")
    elif state is CertificateState.UNTRUSTED:
        assert text.startswith("untrusted")
    else:
        assert text.startswith("not judged") and str(state) in text


def test_status_view_of_a_degraded_vm():
    view = render.status_view(samples.obj(samples.degraded_status()), NOW)
    assert view["phase"] == "Degraded" and view["name"] == "branch-fs-01" and view["namespace"] == "branch-a"
    assert [(c["type"], c["ok"]) for c in view["conditions"]] == [
        ("Ready", False),
        ("ImageResolved", True),
        ("VMProvisioned", True),
        ("HotpatchHealthy", False),
        ("SMBOverQUICCertificateValid", False),
    ]
    assert all(c["age"] == "8d" for c in view["conditions"])
    cert = view["certificate"]
    assert cert["subject"] == "CN=fs01.branch-a.contoso.com" and cert["daysRemaining"] == 10
    assert cert["daysRemainingNow"] == 10 and cert["trust"].startswith("trusted")
    hot = view["hotpatch"]
    assert hot["lastBaselineMonth"] == "2026-10" and hot["nextBaselineMonth"] == "2027-01"
    assert hot["rebootPending"] is True
    assert view["azure"]["status.vm.resourceId"] == samples.VM_ID
    assert view["azure"]["spec.extendedNetwork.extendedSubnetId"].endswith("/subnets/extended")
    assert "resourceId" not in view["vm"]
    json.dumps(view)  # -o json prints exactly this


def test_days_left_follow_the_clock_not_the_last_write():
    view = render.status_view(samples.obj(samples.degraded_status()), NOW + timedelta(days=3))
    assert view["certificate"]["daysRemainingNow"] == 7 and view["certificate"]["daysRemaining"] == 10


def test_status_view_before_the_operator_wrote_anything():
    obj = samples.obj()
    obj["spec"]["capabilities"] = []
    del obj["spec"]["smbOverQuic"]
    view = render.status_view(obj, NOW)
    assert view["conditions"] == [] and "certificate" not in view and "hotpatch" not in view
    text = render.render_status(view, 100)
    assert "Pending" in text and "operator has not written status" in text
    assert "subnets/servers" in text  # the Azure IDs the spec names are known already


def test_any_arm_id_in_status_is_shown_without_a_change_here():
    status = samples.degraded_status()
    status["extendedNetwork"] = {"gatewayId": f"/subscriptions/{samples.SUB}/resourceGroups/rg/providers/"
                                               "Microsoft.Network/virtualNetworkGateways/gw"}  # fmt: skip
    ids = render.azure_ids(samples.obj(status))
    assert ids["status.extendedNetwork.gatewayId"].endswith("/virtualNetworkGateways/gw")


def test_conditions_added_by_other_parts_of_the_operator_render_generically():
    status = samples.degraded_status()
    status["conditions"] += [
        samples.cond("Reconciling", "False", "Reconciled", "nothing in progress"),
        samples.cond("Stalled", "True", "NeedsHuman", "a person must act"),
        samples.cond("ExtendedNetworkReady", "False", "GatewayNotConnected", "connect the gateway"),
    ]
    view = render.status_view(samples.obj(status), NOW)
    flags = {c["type"]: c["ok"] for c in view["conditions"]}
    assert (
        flags["Reconciling"] is True and flags["Stalled"] is False and flags["ExtendedNetworkReady"] is False
    )
    text = render.render_status(view, 140)
    for name in ("Reconciling", "Stalled", "ExtendedNetworkReady", "GatewayNotConnected"):
        assert name in text


def test_rendered_status_has_every_section_and_fits_the_width():
    text = render.render_status(render.status_view(samples.obj(samples.degraded_status()), NOW), 100)
    for needle in (
        "AzureEditionVM branch-a/branch-fs-01",
        "Degraded (generation 1, status observed 1)",
        "! HotpatchHealthy",
        "  VMProvisioned",
        "expires:    2026-12-09T12:00:00Z (10 days left)",
        "trust:      trusted",
        "last baseline:   2026-10",
        "next baseline:   2027-01",
        "reboot pending:  yes",
        "2 critical/security, 1 other missing",
        samples.VM_ID,
    ):
        assert needle in text, needle
    table = text.split("Conditions")[1].split("\n\n")[0].splitlines()[1:]
    assert all(len(line) <= 100 for line in table), table


def test_rendered_status_marks_a_disabled_server_and_an_untrusted_chain():
    status = samples.degraded_status()
    status["smbOverQuic"].update(state="Untrusted", serverEnabled=False)
    text = render.render_status(render.status_view(samples.obj(status), NOW), 120)
    assert "untrusted (its chain" in text and "SMB over QUIC DISABLED" in text


# ----------------------------------------------------------------------------- why


def test_why_of_a_degraded_vm_walks_from_ready_to_each_failing_capability():
    ready, findings = render.why(samples.obj(samples.degraded_status()))
    assert ready is not None and ready["reason"] == "Degraded"
    assert [(f.type, f.reason) for f in findings] == [
        ("Ready", "Degraded"),
        ("HotpatchHealthy", "RebootPending"),
        ("SMBOverQUICCertificateValid", "CertificateExpiringSoon"),
    ]
    reboot = findings[1]
    assert reboot.action == vocab.CONDITION_REASONS["HotpatchHealthy"]["RebootPending"].action
    text = render.render_why(samples.obj(samples.degraded_status()), 100)
    assert text.startswith("branch-a/branch-fs-01 is not Ready (Degraded):")
    assert "└─ HotpatchHealthy=False  RebootPending" in text
    assert "fix:     Reboot the VM in a maintenance window" in text


def test_why_of_a_provisioning_failure_gives_the_vmprovisioned_fix():
    _, findings = render.why(samples.obj(samples.failed_status()))
    assert [(f.type, f.reason) for f in findings] == [
        ("Ready", "ProvisioningFailed"),
        ("VMProvisioned", "QuotaExceeded"),
    ]
    assert findings[1].meaning == vocab.VM_PROVISIONED["QuotaExceeded"].meaning
    assert "quota" in render.render_why(samples.obj(samples.failed_status())).lower()


def test_why_of_a_ready_vm_says_nothing_to_fix():
    text = render.render_why(samples.obj(samples.ready_status()))
    assert "is Ready" in text and "every condition is as it should be" in text
    assert render.why_view(samples.obj(samples.ready_status())) == {
        "name": "branch-fs-01", "namespace": "branch-a", "ready": True, "behind": None, "findings": []}  # fmt: skip


def test_why_without_status_points_at_the_operator():
    text = render.render_why(samples.obj())
    assert "no Ready condition yet" in text and "operator" in text
    assert render.why_view(samples.obj())["ready"] is None


def test_why_shows_warnings_behind_a_true_ready():
    status = samples.ready_status()
    status["conditions"][3] = samples.cond("HotpatchHealthy", "False", "RebootPending", "reboot it")
    text = render.render_why(samples.obj(status))
    assert "is Ready, but:" in text and "RebootPending" in text


def test_why_includes_stalled_and_unknown_reasons_and_skips_a_settled_reconciling():
    status = samples.failed_status()
    status["conditions"] += [
        samples.cond("Reconciling", "False", "Reconciled"),
        samples.cond("Stalled", "True", "SomethingNew", "the operator's own words"),
    ]
    _, findings = render.why(samples.obj(status))
    types = [f.type for f in findings]
    assert "Reconciling" not in types and "Stalled" in types
    stalled = findings[types.index("Stalled")]
    assert stalled.action is None
    text = render.render_why(samples.obj(status))
    assert "the operator's own words" in text and "not in this plugin's reason table" in text


def test_why_says_when_status_lags_the_spec_and_flags_old_failures():
    obj = samples.obj(samples.ready_status())
    obj["metadata"]["generation"] = 2
    _, findings = render.why(obj)
    assert findings == []  # healthy conditions about an older spec are not problems to list
    assert render.render_why(obj).startswith("Note: status describes generation 1, the spec is at 2")
    assert render.why_view(obj)["behind"].startswith("status describes generation 1")
    failed = samples.obj(samples.failed_status())
    failed["metadata"]["generation"] = 3
    _, findings = render.why(failed)
    assert [f.stale for f in findings] == [True, True]
    assert "(describes an older generation" in render.render_why(failed)
    assert render.why_view(samples.obj(samples.failed_status()))["behind"] is None


DOCUMENTED = [(kind, name) for kind, table in vocab.CONDITION_REASONS.items() for name in table]


@pytest.mark.parametrize(("kind", "reason"), DOCUMENTED, ids=[f"{k}/{r}" for k, r in DOCUMENTED])
def test_why_gives_the_documented_fix_of_every_reason(kind, reason):
    """The fix comes from reasons.CONDITION_REASONS, the table docs/reference.md is generated from."""
    doc = vocab.CONDITION_REASONS[kind][reason]
    status = samples.ready_status()
    status["conditions"] = [c for c in status["conditions"] if c["type"] != kind]
    bad = "False" if kind not in vocab.NEGATIVE_POLARITY else "True"
    status["conditions"].append(samples.cond(kind, bad, reason, "message"))
    _, findings = render.why(samples.obj(status))
    finding = next(f for f in findings if f.type == kind)
    assert (finding.meaning, finding.action) == (doc.meaning, doc.action)
    first_words = " ".join(doc.action.split()[:3])
    assert first_words in " ".join(render.render_why(samples.obj(status), 200).split())


def test_a_summary_condition_repeating_another_reason_gets_that_reasons_fix():
    status = samples.failed_status()
    status["conditions"].append(samples.cond("Stalled", "True", "QuotaExceeded", "a person must act"))
    _, findings = render.why(samples.obj(status))
    stalled = next(f for f in findings if f.type == "Stalled")
    assert stalled.action == vocab.VM_PROVISIONED["QuotaExceeded"].action


def test_explain_reads_the_one_table():
    assert (
        vocab.explain("VMProvisioned", "Throttled") is vocab.CONDITION_REASONS["VMProvisioned"]["Throttled"]
    )
    assert vocab.explain("Ready", "NoSuchReason") is None and vocab.explain("NoSuchType", "Ready") is None
    assert set(vocab.CONDITION_REASONS["VMProvisioned"]) == set(vocab.VM_PROVISIONED)


def test_why_view_is_json():
    view = render.why_view(samples.obj(samples.degraded_status()))
    assert json.loads(json.dumps(view))["findings"][1]["reason"] == "RebootPending"


# ----------------------------------------------------------------------------- assess


def test_fresh_tokens_are_what_the_operator_accepts_and_never_repeat():
    tokens = {render.fresh_token(NOW) for _ in range(200)}
    assert len(tokens) == 200
    assert all(
        re.fullmatch(ANNOTATION_TOKEN_PATTERN, t) and t.startswith("20261129T013000Z-") for t in tokens
    )


def test_a_token_the_operator_would_refuse_is_never_sent():
    with pytest.raises(ValueError, match="assess-patches"):
        render.fresh_token(NOW, entropy="not ok!")


def test_assess_patch_sets_the_operators_annotation():
    assert render.assess_patch("t-1") == {"metadata": {"annotations": {ASSESS_ANNOTATION: "t-1"}}}


def _assessed(token: str, state: str) -> dict:
    status = samples.ready_status()
    status["hotpatch"].update(lastAssessToken=token, assessmentState=state)
    return samples.obj(status)


def test_assess_result_in_status_ends_the_wait():
    outcome = render.assess_outcome(_assessed("t-1", "Succeeded"), "t-1")
    assert outcome.done and outcome.code == render.EXIT_OK
    assert (
        "assessment t-1: Succeeded" in outcome.text and "critical/security patches missing: 2" in outcome.text
    )


def test_a_failed_assessment_exits_non_zero():
    outcome = render.assess_outcome(_assessed("t-1", "Failed"), "t-1")
    assert outcome.done and outcome.code == render.EXIT_FAILED and "VM agent" in outcome.text


def test_an_older_token_in_status_is_not_our_answer():
    outcome = render.assess_outcome(_assessed("t-0", "Succeeded"), "t-1")
    assert not outcome.done and outcome.code == render.EXIT_TIMEOUT


def test_the_operator_giving_up_on_our_token_ends_the_wait():
    obj = samples.obj(samples.ready_status())
    events = [
        assess_event_message("t-0", "old news"),
        assess_event_message("t-1", "assessPatches failed (X): no"),
    ]
    outcome = render.assess_outcome(obj, "t-1", events)
    assert outcome.done and outcome.code == render.EXIT_FAILED and "assessPatches failed (X)" in outcome.text
    assert not render.assess_outcome(obj, "t-2", events).done


def test_waiting_hint_names_what_the_operator_waits_for():
    assert (
        "not provisioned (QuotaExceeded)"
        in render.assess_outcome(samples.obj(samples.failed_status()), "t").text
    )
    assert "not provisioned (no status yet)" in render.assess_outcome(samples.obj(), "t").text
    assert "is the operator running" in render.assess_outcome(samples.obj(samples.ready_status()), "t").text


# ----------------------------------------------------------------------------- errors


def _problem(status, body, name="vm1"):
    return render.api_problem(
        status, body, namespace="ns", name=name, verb="get", resource="azureeditionvms.azureedition.io"
    )


def test_object_not_found_says_how_to_list():
    err = _problem(404, {"reason": "NotFound", "details": {"name": "vm1", "kind": "azureeditionvms"}})
    assert err.code == render.EXIT_NOT_FOUND and "'vm1' not found in namespace 'ns'" in err.message
    assert "kubectl get aevm -n ns" in err.message


def test_unknown_resource_means_the_crd_is_missing():
    for body in (
        {"reason": "NotFound", "message": "the server could not find the requested resource"},
        "404 page not found",
    ):
        err = _problem(404, body)
        assert err.code == render.EXIT_NOT_FOUND and "CRD is not installed" in err.message


def test_forbidden_names_the_verb_and_resource_to_ask_for():
    message = (
        'azureeditionvms.azureedition.io "vm1" is forbidden: User "system:serviceaccount:ns:x" cannot get'
    )
    err = _problem(403, {"message": message})
    assert err.code == render.EXIT_FORBIDDEN and message in err.message
    assert "allows `get` on azureeditionvms (apiGroups: [azureedition.io])" in err.message


def test_unauthorized_and_other_answers():
    assert _problem(401, {}).code == render.EXIT_FORBIDDEN
    other = _problem(500, {"message": "etcd is sad"})
    assert other.code == render.EXIT_FAILED and "500: etcd is sad" in other.message


@pytest.mark.parametrize(
    ("name", "ok"), [("branch-fs-01", True), ("a.b", True), ("Bad", False), ("-x", False), ("", False)]
)
def test_object_names_are_checked_before_asking(name, ok):
    assert (render.name_problem(name) is None) is ok


# ----------------------------------------------------------------------------- the calendar


@pytest.mark.parametrize(
    ("day", "last"),
    [(date(2026, 1, 15), "2026-01"), (date(2026, 3, 31), "2026-01"), (date(2026, 4, 1), "2026-04"),
     (date(2026, 12, 31), "2026-10"), (date(2027, 2, 1), "2027-01")],
)  # fmt: skip
def test_last_baseline_month(day, last):
    assert last_baseline_month(day) == last


def test_last_and_next_baseline_bracket_every_month():
    for month in range(1, 25):
        day = date(2026 + (month - 1) // 12, (month - 1) % 12 + 1, 10)
        last, nxt = last_baseline_month(day), next_baseline_month(day)
        assert last <= f"{day:%Y-%m}" < nxt and int(last[5:]) in BASELINE_MONTHS
        gap = (int(nxt[:4]) - int(last[:4])) * 12 + int(nxt[5:]) - int(last[5:])
        assert gap == 3


# ----------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "ns", "status", "vm1"],
        ["status", "vm1", "-n", "ns"],
        ["--namespace=ns", "status", "vm1", "-o", "json"],
        ["status", "--namespace", "ns", "vm1", "--kubeconfig", "k", "--context", "c"],
    ],
)
def test_cluster_flags_go_before_or_after_the_command(argv):
    args = plugin_main._parser().parse_args(argv)
    assert args.command == "status" and args.name == "vm1" and args.namespace == "ns"


def test_flags_not_given_stay_unset_and_assess_has_a_timeout():
    args = plugin_main._parser().parse_args(["assess", "vm1"])
    assert not hasattr(args, "namespace") and args.timeout == "5m" and args.output == "text"


@pytest.mark.parametrize("argv", [[], ["status"], ["nope", "vm1"], ["status", "vm1", "-o", "yaml"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        plugin_main.main(argv)
    assert exit_.value.code == render.EXIT_USAGE


def test_bad_name_and_bad_timeout_are_usage_errors(capsys):
    assert plugin_main.main(["status", "Not_A_Name"]) == render.EXIT_USAGE
    assert "not a valid object name" in capsys.readouterr().err
    assert plugin_main.main(["assess", "vm1", "--timeout", "soon"]) == render.EXIT_USAGE
    assert "--timeout: invalid duration 'soon'" in capsys.readouterr().err


def test_no_kubeconfig_anywhere_says_what_to_set(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert plugin_main.main(["why", "vm1"]) == render.EXIT_UNREACHABLE
    assert "no kubeconfig" in capsys.readouterr().err
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert plugin_main.main(["why", "vm1"]) == render.EXIT_UNREACHABLE
    assert "KUBECONFIG names no existing file" in capsys.readouterr().err


def test_the_console_script_is_installed_with_the_operator_package():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-aevm"] == "azure_edition_operator.plugin.main:main"


def test_the_plugin_imports_neither_kopf_nor_the_azure_sdks():
    """Even with the Kubernetes client loaded, `kubectl aevm` stays clear of the heavy parts."""
    probe = (
        "import sys, azure_edition_operator.plugin.main, kubernetes_asyncio.client, kubernetes_asyncio.config\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('kopf', 'azure', 'aioquic', 'prometheus_client'))\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""
