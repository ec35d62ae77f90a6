"""Monitoring: the alert rules pass promtool's check and unit tests, the tests have teeth, and the
rules and the Grafana dashboard use only metrics the operator exports."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from tests.deploy.support import DEPLOY, REPO, find, kustomize, require_tool, run

MONITORING = DEPLOY / "monitoring"
REPO_DOCS = REPO / "docs"
RULES = MONITORING / "rules" / "azure-edition-operator.rules.yaml"
RULE_TESTS = MONITORING / "tests" / "azure-edition-operator.test.yaml"
DASHBOARD = MONITORING / "grafana" / "azure-edition-operator.json"

# The operator's metrics (the contract with azure_edition_operator.metrics), by type.
GAUGES = {
    "azureedition_certificate_not_after_timestamp_seconds",
    "azureedition_certificate_days_remaining",
    "azureedition_certificate_state",
    "azureedition_smb_quic_enabled",
    "azureedition_hotpatch_reboot_pending",
    "azureedition_hotpatch_failed_patches",
    "azureedition_hotpatch_state",
    "azureedition_ready",
    "azureedition_stalled",
    "azureedition_last_check_timestamp_seconds",
    "azureedition_build_info",
    "azureedition_reconcile_waiting",
    "azureedition_reconcile_active",
    "azureedition_hotpatch_rollout_stopped",
}
HISTOGRAMS = {
    "azureedition_check_duration_seconds",
    "azureedition_reconcile_duration_seconds",
    "azureedition_azure_request_duration_seconds",
}
COUNTERS = {
    "azureedition_azure_requests_total",
    "azureedition_reconcile_errors_total",
    "azureedition_hotpatch_rollout_installs_total",
}
EXPOSED = GAUGES | COUNTERS | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}

REQUIRED_ALERTS = {
    "AzureEditionCertificateExpiringSoon",
    "AzureEditionCertificateExpiresWithin7Days",
    "AzureEditionCertificateExpired",
    "AzureEditionSMBOverQUICDisabled",
    "AzureEditionHotpatchRebootPending",
    "AzureEditionHotpatchInstallationFailed",
    "AzureEditionHotpatchRolloutStopped",
    "AzureEditionOperatorAbsent",
    "AzureEditionReconcileErrorsRising",
    "AzureEditionAzureRequestsSlow",
    "AzureEditionReconcileSlow",
    "AzureEditionReconcileBacklog",
}
RUNBOOK_BASE = (
    "https://github.com/azure-edition-operator/azure-edition-operator/blob/main/docs/troubleshooting.md"
)

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
    "inf", "nan", "le",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values, regexes)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors ($__rate_interval included)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("(") or word.lower() in PROMQL_WORDS:
            continue  # a function call or keyword
        if re.fullmatch(r"\d+[smhdwy]", word) or word.isdigit():
            continue
        names.add(word)
    return names


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r.get("alert") or r["record"]: r["expr"] for g in groups for r in g["rules"]}


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def recorded() -> set[str]:
    return {
        r["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "record" in r
    }


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_metric_names_parser():
    assert metric_names(
        'sum by (le, check) (rate(azureedition_check_duration_seconds_bucket{check="x"}[5m]))'
    ) == {"azureedition_check_duration_seconds_bucket"}
    assert metric_names("time() - max by (namespace) (a_metric) > 3 * 86400 unless on (name) b_metric") == {
        "a_metric",
        "b_metric",
    }


def test_contract_matches_the_operator_metrics_module():
    """The names above are exactly what azure_edition_operator.metrics registers."""
    from prometheus_client.metrics import MetricWrapperBase

    from azure_edition_operator import metrics

    registered: dict[str, str] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.collect():
                registered[family.name] = family.type
    kinds = {**dict.fromkeys(GAUGES, "gauge"), **dict.fromkeys(HISTOGRAMS, "histogram")}
    kinds |= {c.removesuffix("_total"): "counter" for c in COUNTERS}
    assert registered == kinds


def test_rules_pass_promtool_check():
    promtool = require_tool("promtool")
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_pass_their_promtool_unit_tests():
    promtool = require_tool("promtool")
    result = run(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_catch_a_broken_rule(tmp_path):
    """Mutate the reboot threshold and drop the failover aggregation: promtool's tests must fail."""
    promtool = require_tool("promtool")
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    original = RULES.read_text()
    mutated = original.replace(
        "expr: max by (namespace, name) (azureedition_hotpatch_reboot_pending) == 1\n        for: 24h",
        "expr: azureedition_hotpatch_reboot_pending == 1\n        for: 24h",
    )
    assert mutated != original
    (tmp_path / "rules" / RULES.name).write_text(mutated)
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    result = run(promtool, "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name))
    assert result.returncode != 0, result.stdout
    assert "AzureEditionHotpatchRebootPending" in result.stdout + result.stderr


def test_required_alerts_exist_and_each_is_tested_firing_and_quiet():
    alerts = {r["alert"] for r in alert_rules()}
    assert alerts >= REQUIRED_ALERTS
    cases = [c for t in yaml.safe_load(RULE_TESTS.read_text())["tests"] for c in t.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert firing == alerts, f"alerts without a test that makes them fire: {sorted(alerts - firing)}"
    assert quiet == alerts, f"alerts without a test that keeps them quiet: {sorted(alerts - quiet)}"


def test_rules_use_only_exported_metrics():
    for alert, expr in rule_expressions().items():
        unknown = metric_names(expr) - EXPOSED - recorded()
        assert not unknown, f"{alert} uses {unknown}"


def test_prometheusrule_and_servicemonitor_build():
    objects = kustomize(MONITORING)
    rule = find(objects, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    assert find(objects, "ServiceMonitor")
    dashboard = find(objects, "ConfigMap", "azure-edition-operator-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"][DASHBOARD.name]) == json.loads(DASHBOARD.read_text())


# ------------------------------------------------------------------------------------------------
# Grafana dashboard
# ------------------------------------------------------------------------------------------------


def test_dashboard_is_valid_json_with_unique_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    queries = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert queries and all(p.get("targets") for p in queries)
    for panel in queries:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_covers_the_fleet_views():
    used = set().union(*(metric_names(e) for e in dashboard_expressions()))
    assert {"azureedition_certificate_days_remaining", "azureedition_hotpatch_state", "azureedition_azure_requests_total",
            "azureedition_reconcile_errors_total"} <= used  # fmt: skip
    assert any('code="429"' in e for e in dashboard_expressions()), "throttling must be visible"


def test_dashboard_uses_only_exported_metrics():
    for expr in dashboard_expressions():
        unknown = metric_names(expr) - EXPOSED
        assert not unknown, f"{expr!r} uses {unknown}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path):
    """promtool parses every query (as a recording rule) once Grafana's variables are substituted."""
    promtool = require_tool("promtool")
    substitutions = {"$__rate_interval": "5m", "$namespace": ".*", "$cluster": ".*", "${datasource}": ""}
    rules = []
    for index, expr in enumerate(dashboard_expressions()):
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------------
# Day-2 signals: runbooks, the histograms' rules, the dashboard's cluster and Stalled views
# ------------------------------------------------------------------------------------------------


def test_every_alert_has_a_runbook_url_at_a_troubleshooting_anchor():
    from tests.deploy.test_docs import anchors

    headings = anchors(REPO_DOCS / "troubleshooting.md")
    for rule in alert_rules():
        url = rule["annotations"].get("runbook_url", "")
        base, _, anchor = url.partition("#")
        assert base == RUNBOOK_BASE, f"{rule['alert']}: {url!r}"
        assert anchor in headings, f"{rule['alert']}: no #{anchor} in troubleshooting.md"
        named = re.findall(r"docs/troubleshooting\.md#([\w-]+)", rule["annotations"]["description"])
        assert not named or anchor == named[0], f"{rule['alert']}: runbook and description disagree"


def test_the_histograms_have_recording_rules_that_promtool_tests_check():
    tested = {
        case["expr"]
        for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in t.get("promql_expr_test", [])
    }
    for record, expr in rule_expressions().items():
        if record in recorded():
            assert metric_names(expr) & HISTOGRAM_SERIES, record
            assert record in tested, f"{record} has no promql_expr_test"


HISTOGRAM_SERIES = {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_count")}


def _mutated_rules_fail(tmp_path, old: str, new: str, alert: str) -> None:
    promtool = require_tool("promtool")
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    original = RULES.read_text()
    mutated = original.replace(old, new)
    assert mutated != original
    (tmp_path / "rules" / RULES.name).write_text(mutated)
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    result = run(promtool, "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name))
    assert result.returncode != 0, result.stdout
    assert alert in result.stdout + result.stderr


def test_unit_tests_catch_a_slow_reconcile_rule_that_counts_every_result(tmp_path):
    _mutated_rules_fail(
        tmp_path, 'azureedition:reconcile_duration_seconds:p95{result="success"} > 600',
        "azureedition:reconcile_duration_seconds:p95 > 600", "AzureEditionReconcileSlow",
    )  # fmt: skip


def test_unit_tests_catch_a_backlog_alert_without_its_wait(tmp_path):
    _mutated_rules_fail(
        tmp_path, "expr: max(azureedition_reconcile_waiting) > 0\n        for: 15m",
        "expr: max(azureedition_reconcile_waiting) > 0\n        for: 5m", "AzureEditionReconcileBacklog",
    )  # fmt: skip


def test_dashboard_has_a_cluster_variable_on_every_query_and_a_stalled_view():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["cluster"]["includeAll"] and variables["cluster"]["allValue"] == ".*"
    assert 'cluster=~"$cluster"' in variables["namespace"]["definition"]
    for expr in dashboard_expressions():
        selectors = re.findall(r"\b(azureedition_\w+)(\{[^}]*\})?", expr)
        assert selectors, expr
        for name, matchers in selectors:
            assert 'cluster=~"$cluster"' in matchers, f"{name} in {expr!r} ignores the cluster"
    stalled = [p for p in dashboard["panels"] if "azureedition_stalled" in json.dumps(p.get("targets", []))]
    assert {p["type"] for p in stalled} >= {"stat", "table"}, [p["title"] for p in stalled]
    used = set().union(*(metric_names(e) for e in dashboard_expressions()))
    assert {"azureedition_reconcile_duration_seconds_bucket", "azureedition_azure_request_duration_seconds_bucket",
            "azureedition_reconcile_waiting"} <= used  # fmt: skip
