"""Shared helpers for the deploy/ tests: paths, `kubectl kustomize`, external tools."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from azure_edition_envtest.controlplane import find_bin_dir

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = sorted(p for p in (DEPLOY / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
NAMESPACE = "azure-edition-system"
SERVICE_ACCOUNT = "azure-edition-operator"
SA_USER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
SA_GROUPS = ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated"]
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterKopfPeering",
}
RBAC_KINDS = {
    "Namespace",
    "CustomResourceDefinition",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
}


@functools.cache
def kubectl_binary() -> Path:
    """bin/kubectl, the kubectl the project builds (built on first use by `make controlplane`)."""
    repo_kubectl = REPO / "bin" / "kubectl"
    if os.access(repo_kubectl, os.X_OK):
        return repo_kubectl
    return find_bin_dir(build=True) / "kubectl"


def kustomize_text(directory: Path | str) -> str:
    """`kubectl kustomize DIR` (no cluster needed); fails the test with kustomize's message."""
    result = subprocess.run(
        [str(kubectl_binary()), "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return result.stdout


def kustomize(directory: Path | str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(kustomize_text(directory)) if doc]


def find(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def operator_container(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    deployment = find(objects, "Deployment", "azure-edition-operator")
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "operator"
    ]
    return container


def config_data(objects: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The operator's ConfigMap (its name carries a content hash)."""
    (config,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("azure-edition-operator-config")
    ]
    return config["data"]


def require_tool(name: str, hint: str = "run `make tools`") -> str:
    """Path of an external tool; a missing tool fails the test (never a silent skip)."""
    venv_bin = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / name
    path = str(venv_bin) if os.access(venv_bin, os.X_OK) else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: {hint}")
    return path


def run(*command: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, input=input, timeout=timeout)


def load_docgen():
    """hack/docgen.py as a module (hack/ is not a package)."""
    if "docgen" in sys.modules:
        return sys.modules["docgen"]
    spec = importlib.util.spec_from_file_location("docgen", REPO / "hack" / "docgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docgen"] = module
    spec.loader.exec_module(module)
    return module
