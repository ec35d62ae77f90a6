"""tests/node runs only through `make e2e-node` (the one-node cluster and the images must exist)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.node.target import Target, from_env

NODE_DIR = Path(os.environ.get("NODE_DIR", REPO / ".node")).resolve()
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
    "version"
]  # `make image` tags with it
OPERATOR_IMAGE = os.environ.get("E2E_OPERATOR_IMAGE", f"localhost/azure-edition-operator:{VERSION}")
ROLLOUT_IMAGE = os.environ.get("E2E_ROLLOUT_IMAGE", f"localhost/azure-edition-operator:{VERSION}-rollout")
ARMSIM_IMAGE = os.environ.get("E2E_ARMSIM_IMAGE", f"localhost/azure-edition-armsim:{VERSION}")


def pytest_configure(config):
    config.addinivalue_line("markers", "node: needs the one-node cluster and the images (`make e2e-node`)")


@pytest.fixture(scope="session")
def node(tmp_path_factory) -> Target:
    """The cluster (tests/node/target.py), with the images loaded once for every module."""
    try:
        target = from_env(dict(os.environ), NODE_DIR, tmp_path_factory.mktemp("e2e"))
    except (LookupError, ValueError) as error:
        pytest.fail(str(error))
    target.load_images((OPERATOR_IMAGE, ROLLOUT_IMAGE, ARMSIM_IMAGE))
    return target
