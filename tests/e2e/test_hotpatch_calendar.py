"""A team's Hotpatch calendar (a ConfigMap in the operator's namespace) replaces the built-in one: this
month declared an unplanned baseline shows as a baseline month, from the calendar, on the next round."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
import yaml

from azure_edition_envtest.stack import Process, operator_env, start_operator
from azure_edition_operator.hotpatch_calendar import Calendar, days_since_baseline
from tests.e2e.operator_stack import condition, get, simulator  # noqa: F401
from tests.e2e.test_checks import apply_sample

pytestmark = pytest.mark.e2e

OPERATOR_NS = "e2e-hotpatch-calendar-system"
CONFIG_MAP = "team-hotpatch-calendar"


@pytest.fixture(scope="module")
def calendar_operator(crd, kubeconfig, kubectl, simulator, tmp_path_factory) -> Iterator[Process]:
    """An operator whose own namespace holds a calendar that makes this month an unplanned baseline (created
    before it starts, so its first read finds it)."""
    now = dt.datetime.now(dt.UTC)
    doc = {"source": "e2e copy of the release-health calendar", "asOf": now.date().isoformat(),
           "unplannedBaselines": [f"{now.year:04d}-{now.month:02d}"]}  # fmt: skip
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIG_MAP, "namespace": OPERATOR_NS},
                  "data": {"calendar.json": json.dumps(doc)}}  # fmt: skip
    kubectl("create", "namespace", OPERATOR_NS, check=False)
    kubectl("apply", "-f", "-", input=yaml.safe_dump(config_map))
    env = operator_env(kubeconfig, simulator[1], AEO_CREDENTIALS_NAMESPACE=OPERATOR_NS,
                       AEO_HOTPATCH_CALENDAR_CONFIGMAP=CONFIG_MAP)  # fmt: skip
    proc = start_operator(tmp_path_factory.mktemp("op") / "operator.log", env)
    yield proc
    proc.stop()
    kubectl("delete", "configmap", CONFIG_MAP, "-n", OPERATOR_NS, check=False)


def test_a_calendar_configmap_replaces_the_builtin_calendar(calendar_operator, kubectl, namespace):
    apply_sample(kubectl, namespace, "hotpatch")
    kubectl("wait", "--for=condition=Ready", "aevm/hotpatch", "-n", namespace, "--timeout=60s", timeout=90)
    obj = get(kubectl, namespace, "hotpatch")
    hp = obj["status"]["hotpatch"]
    assert (hp["cycleMonth"], hp["cycleMonthSource"]) == ("Baseline", "Calendar")
    # counted from this month's Patch Tuesday, or before it from the baseline before (the pure function's rule)
    now = dt.datetime.now(dt.UTC)
    team = Calendar("team", now.date(), unplanned=frozenset({(now.year, now.month)}))
    assert hp["daysSinceBaseline"] in (days_since_baseline(team, now), days_since_baseline(team, now) - 1)
    assert "e2e copy of the release-health calendar, as of" in condition(obj, "HotpatchHealthy")["message"]
