"""Shared test helpers (repository paths) and how the suite is ordered and grouped for parallel runs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "deploy" / "samples"
CRD_PATH = REPO / "crds" / "azureeditionvms.azureedition.io.yaml"


# Parallel runs (`make test`: pytest-xdist, --dist loadgroup --no-loadscope-reorder). A file under
# tests/e2e or tests/deploy runs whole on one worker: its module fixtures start a simulator and an
# operator, and it shares its directory's control plane and cluster-wide objects in file order. Every
# other test is handed out on its own. Work is handed out in collection order, so the longest pieces go
# first (a long file started last would be the run's tail): these files (slowest first, measured),
# then these single tests, then everything else in its usual order.
SLOW_FILES = (
    "deploy/test_rbac.py",
    "deploy/test_kustomize.py",
    "e2e/test_operator.py",
    "e2e/test_azure_reality.py",
    "e2e/test_checks.py",
    "e2e/test_admission.py",
    "deploy/test_docs.py",
    "e2e/test_controlplane.py",
    "e2e/test_tenancy.py",
)
SLOW_TESTS = (
    "unit/test_cel_agreement.py::test_combination_rule_is_added_when_per_capability_rules_are_not_enough",
    "unit/test_admission_agreement.py::test_crd_and_pydantic_agree_on_vm_specs",
    "unit/test_admission_agreement.py::test_crd_and_pydantic_agree_on_tenant_policies",
)
GROUPED = ("e2e", "deploy")
TESTS = Path(__file__).resolve().parent


def _relative(item: pytest.Item) -> str:
    path = item.path.resolve()
    return path.relative_to(TESTS).as_posix() if TESTS in path.parents else str(path)


def _rank(item: pytest.Item) -> int:
    relative = _relative(item)
    if relative in SLOW_FILES:
        return SLOW_FILES.index(relative)
    test = f"{relative}::{item.name}"
    return len(SLOW_FILES) + (SLOW_TESTS.index(test) if test in SLOW_TESTS else len(SLOW_TESTS))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        relative = _relative(item)
        if relative.split("/", 1)[0] in GROUPED:
            item.add_marker(pytest.mark.xdist_group(relative))
    items.sort(key=_rank)  # stable: a file's tests keep their order
