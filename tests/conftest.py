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
SLOW_FILES = (  # seconds per file on 4 workers and 2 cores, 2026-12-07 (junit), longest first
    "e2e/test_smb_rotation.py",  # 273
    "e2e/test_checks.py",  # 259
    "e2e/test_operator_restarts.py",  # about 230 (test_operator.py's 427, split)
    "e2e/test_operator.py",  # about 200
    "e2e/test_azure_reality.py",  # 185
    "e2e/test_brownfield.py",  # 131
    "e2e/test_extended_network.py",  # 124
    "e2e/test_rollout.py",  # 111
    "e2e/test_plugin.py",  # 78
    "integration/test_provisioning.py",  # 68
    "deploy/test_monitoring.py",  # 68
    "e2e/test_api_outage.py",  # 51
    "deploy/test_rbac.py",  # 47
    "e2e/test_kstatus.py",  # 44
    "e2e/test_fair_share.py",  # 41
    "e2e/test_hotpatch_data.py",  # 38
    "deploy/test_kustomize.py",  # 34
    "e2e/test_upgrade.py",  # 33
    "e2e/test_tenancy.py",  # 26
    "e2e/test_controlplane.py",  # 24
    "e2e/test_admission.py",  # 21
)
TESTS = Path(__file__).resolve().parent


def _rank(item: pytest.Item) -> int:
    path = item.path.resolve()
    relative = path.relative_to(TESTS).as_posix() if TESTS in path.parents else ""
    return SLOW_FILES.index(relative) if relative in SLOW_FILES else len(SLOW_FILES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: a file's tests keep their order
