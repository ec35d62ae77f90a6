"""The Flux health check (deploy/flux/): its CEL `healthCheckExprs`, evaluated the way Flux's
kustomize-controller does (RFC-0009: status.observedGeneration first, then inProgress, failed, current;
the first true wins, none true is in progress), agree with the Argo CD health check on every object
of its test table. cel-python stands in for Flux's cel-go; the expressions use only standard CEL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from tests.deploy.support import DEPLOY
from tests.deploy.test_argocd_health import CASES, HEALTH_DIR

FLUX = DEPLOY / "flux" / "kustomization-healthcheck.yaml"
ENV = celpy.Environment()
ARGO_TO_KSTATUS = {"Healthy": "Current", "Progressing": "InProgress", "Degraded": "Failed"}


def health_check_exprs() -> dict[str, str]:
    kustomization = yaml.safe_load(FLUX.read_text())
    [entry] = [e for e in kustomization["spec"]["healthCheckExprs"] if e["kind"] == "AzureEditionVM"]
    assert entry["apiVersion"] == "azureedition.io/v1alpha1"
    return {key: entry[key] for key in ("inProgress", "failed", "current") if key in entry}


PROGRAMS = {key: ENV.program(ENV.compile(expr)) for key, expr in health_check_exprs().items()}


def flux_status(obj: dict[str, Any]) -> str:
    """kstatus status Flux gives `obj` with these expressions (kustomize-controller's CEL status reader)."""
    observed = (obj.get("status") or {}).get("observedGeneration")
    if observed is not None and observed != obj["metadata"].get("generation"):
        return "InProgress"
    activation = {key: celpy.json_to_cel(value) for key, value in obj.items()}
    for key, verdict in (("inProgress", "InProgress"), ("failed", "Failed"), ("current", "Current")):
        result = PROGRAMS[key].evaluate(activation)
        if isinstance(result, celpy.CELEvalError):
            raise result
        if result:
            return verdict
    return "InProgress"


def test_the_snippet_is_a_flux_kustomization_that_waits():
    kustomization = yaml.safe_load(FLUX.read_text())
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert kustomization["kind"] == "Kustomization" and kustomization["spec"]["wait"] is True
    assert set(PROGRAMS) == {"inProgress", "failed", "current"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: Path(c["inputPath"]).stem)
def test_flux_agrees_with_argo_cd(case):
    obj = yaml.safe_load((HEALTH_DIR / case["inputPath"]).read_text())
    assert flux_status(obj) == ARGO_TO_KSTATUS[case["healthStatus"]["status"]]


def test_an_object_without_status_is_in_progress_under_cel_python():
    """Said in docs/argocd.md: with no status at all, no expression is true here (has() on a missing field)."""
    obj = yaml.safe_load((HEALTH_DIR / "testdata" / "progressing_no_status.yaml").read_text())
    assert flux_status(obj) == "InProgress"


def test_the_harness_has_teeth():
    """Flipping Stalled to True on a healthy object makes Flux report Failed; a stale generation wins."""
    obj = yaml.safe_load((HEALTH_DIR / "testdata" / "healthy_ready.yaml").read_text())
    assert flux_status(obj) == "Current"
    for condition in obj["status"]["conditions"]:
        if condition["type"] == "Stalled":
            condition.update(status="True", reason="QuotaExceeded")
    assert flux_status(obj) == "Failed"
    obj["metadata"]["generation"] += 1
    assert flux_status(obj) == "InProgress"
