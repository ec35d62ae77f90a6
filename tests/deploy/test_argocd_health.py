"""The Argo CD health check, run the way Argo CD runs it: the Lua script with the object as `obj`.

Argo CD embeds gopher-lua (Lua 5.1), so the script runs under lupa's Lua 5.1 runtime. Layout and
test table follow argo-cd's resource_customizations/<group>/<kind>/ (health.lua,
health_test.yaml, testdata/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from azure_edition_operator.api.v1alpha1 import AzureEditionVM
from tests.deploy.support import DEPLOY, require_tool, run

HEALTH_DIR = DEPLOY / "argocd" / "azureedition.io" / "AzureEditionVM"
CASES = yaml.safe_load((HEALTH_DIR / "health_test.yaml").read_text())["tests"]


def argo_health(obj: dict[str, Any]) -> dict[str, str]:
    """Evaluate health.lua for `obj`; returns {status, message} like Argo CD's HealthStatus."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute((HEALTH_DIR / "health.lua").read_text())
    return {key: result[key] for key in ("status", "message") if result[key] is not None}


@pytest.mark.parametrize("case", CASES, ids=lambda c: Path(c["inputPath"]).stem)
def test_health(case):
    obj = yaml.safe_load((HEALTH_DIR / case["inputPath"]).read_text())
    assert argo_health(obj) == case["healthStatus"]


def test_every_testdata_object_is_in_the_table_and_all_statuses_are_covered():
    listed = {c["inputPath"] for c in CASES}
    on_disk = {f"testdata/{p.name}" for p in (HEALTH_DIR / "testdata").glob("*.yaml")}
    assert listed == on_disk
    assert {c["healthStatus"]["status"] for c in CASES} == {"Healthy", "Progressing", "Degraded"}


@pytest.mark.parametrize("path", sorted((HEALTH_DIR / "testdata").glob("*.yaml")), ids=lambda p: p.stem)
def test_testdata_objects_have_the_real_api_shape(path):
    """Each test object is a valid AzureEditionVM per the models, so the health check is tested on
    objects the operator can actually produce, not on invented shapes."""
    AzureEditionVM.model_validate(yaml.safe_load(path.read_text()))


def test_a_broken_status_is_not_reported_healthy():
    """Sanity of the harness: flipping Ready to False on the healthy object changes the verdict."""
    healthy = yaml.safe_load((HEALTH_DIR / "testdata" / "healthy_ready.yaml").read_text())
    for condition in healthy["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition.update(
                status="False", reason="Degraded", message="HotpatchHealthy: RebootPending: reboot"
            )
    assert argo_health(healthy) == {
        "status": "Degraded",
        "message": "Degraded: HotpatchHealthy: RebootPending: reboot",
    }


def test_ignore_differences_select_exactly_what_the_operator_writes():
    """The jq expressions of argocd-cm-patch.yaml pick kopf's kopf.azureedition.io/ annotations, our warning marker and our
    finalizer, and nothing the user wrote. (Argo CD uses gojq; jq evaluates the same paths.)"""
    jq = require_tool("jq")
    patch = yaml.safe_load((DEPLOY / "argocd" / "argocd-cm-patch.yaml").read_text())
    config = yaml.safe_load(
        patch["data"]["resource.customizations.ignoreDifferences.azureedition.io_AzureEditionVM"]
    )
    assert config["jsonPointers"] == ["/status"]
    obj = yaml.safe_load((HEALTH_DIR / "testdata" / "healthy_ready.yaml").read_text())
    obj["metadata"]["annotations"].update(
        {
            "kopf.azureedition.io/reconcile": "{}",
            "azureedition.io/certificate-warned": "AB12:window",
            "azureedition.io/assess-patches": "run-1",  # the user's: must stay visible
            "team.example.com/owner": "branch-a",
        }
    )
    obj["metadata"]["finalizers"].append("example.com/keep")
    paths = []
    for expression in config["jqPathExpressions"]:
        result = run(jq, "-c", f"[path({expression})]", input=json.dumps(obj))
        assert result.returncode == 0, result.stderr
        paths += json.loads(result.stdout)
    assert sorted(paths, key=str) == sorted(
        [
            ["metadata", "annotations", "kopf.azureedition.io/last-handled-configuration"],
            ["metadata", "annotations", "kopf.azureedition.io/reconcile"],
            ["metadata", "annotations", "azureedition.io/certificate-warned"],
            ["metadata", "finalizers", 0],
        ],
        key=str,
    )
    bare = {"metadata": {"name": "x"}}
    for expression in config["jqPathExpressions"]:
        result = run(jq, "-c", f"[path({expression})]", input=json.dumps(bare))
        assert result.returncode == 0 and json.loads(result.stdout) == [], result.stderr
