"""Shared test helpers (repository paths) and how the suite is ordered and grouped for parallel runs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "deploy" / "samples"
CRD_PATH = REPO / "crds" / "azureeditionvms.azureedition.io.yaml"


# Parallel runs (`make test`: pytest-xdist, --dist loadfile --no-loadscope-reorder) give each file to
# one worker (module fixtures start a simulator and an operator; deploy files share their control
# plane in file order) and hand files out in collection order. So the longest files go first, slowest
# first as measured (a long file started last would be the run's tail), then everything else in its
# usual order. (xdist's loadgroup cannot regroup tests under pytest 9: it rewrites Item._nodeid, which
# pytest no longer reads.)
SLOW_FILES = (
    "deploy/test_rbac.py",
    "deploy/test_kustomize.py",
    "e2e/test_operator.py",
    "e2e/test_azure_reality.py",
    "e2e/test_checks.py",
    "e2e/test_tenancy.py",
    "e2e/test_fair_share.py",
    "integration/test_provisioning.py",
    "e2e/test_admission.py",
    "deploy/test_docs.py",
    "unit/test_cel_agreement.py",
    "unit/test_admission_agreement.py",
    "integration/test_simulator_cli.py",
    "e2e/test_controlplane.py",
    "integration/test_simulator_sdk.py",
)
TESTS = Path(__file__).resolve().parent


def _rank(item: pytest.Item) -> int:
    path = item.path.resolve()
    relative = path.relative_to(TESTS).as_posix() if TESTS in path.parents else ""
    return SLOW_FILES.index(relative) if relative in SLOW_FILES else len(SLOW_FILES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: a file's tests keep their order
