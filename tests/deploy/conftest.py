"""Fixtures for the deploy/ tests.

The control-plane fixtures are tests/e2e's (imported, not copied): with $KUBECONFIG they use that
cluster, otherwise a private etcd + kube-apiserver for the session. Tests that need the API
server are marked `e2e` in their modules.

Fixtures for other suites:

* ``operator_rbac``: the ServiceAccount, its (Cluster)Roles and bindings from deploy/base, plus the
  namespace and the CRD, applied for real (no Deployment: the operator runs where the test wants).
* ``operator_kubeconfig``: a kubeconfig authenticating as that ServiceAccount with a TokenRequest
  token, written by deploy/scripts/sa-kubeconfig.sh. Run the operator with
  ``KUBECONFIG=<operator_kubeconfig>`` and it has exactly the permissions deploy/ grants.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import DEPLOY, NAMESPACE, RBAC_KINDS, SERVICE_ACCOUNT, kustomize, run
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Cluster, Kubectl

# tests/e2e's fixtures, shared rather than copied (a session fixture registered by two conftests
# runs once per directory: with both suites selected, each gets its own control plane).
cluster = e2e.cluster
kubeconfig = e2e.kubeconfig
kubectl = e2e.kubectl
namespace = e2e.namespace
crd_path = e2e.crd_path
crd = e2e.crd

OPERATOR_TOKEN_DURATION = "2h"


def _wait_established(kubectl: Kubectl, objects: list[dict]) -> None:
    for obj in objects:
        if obj["kind"] == "CustomResourceDefinition":
            name = obj["metadata"]["name"]
            e2e.wait_established(kubectl, name)


@pytest.fixture(scope="session")
def operator_rbac(kubectl: Kubectl) -> list[dict]:
    """Namespace, CRD, ServiceAccount and RBAC of deploy/base, applied (and left installed)."""
    objects = [o for o in kustomize(DEPLOY / "base") if o["kind"] in RBAC_KINDS]
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    _wait_established(kubectl, objects)
    return objects


@pytest.fixture(scope="session")
def operator_kubeconfig(
    cluster: Cluster, operator_rbac: list[dict], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig that authenticates as system:serviceaccount:azure-edition-system:azure-edition-operator."""
    path = tmp_path_factory.mktemp("operator-sa") / "operator.kubeconfig"
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "KUBECTL": str(cluster.kubectl_binary),
        "NAMESPACE": NAMESPACE,
        "SERVICE_ACCOUNT": SERVICE_ACCOUNT,
        "DURATION": OPERATOR_TOKEN_DURATION,
    }
    result = run_script(DEPLOY / "scripts" / "sa-kubeconfig.sh", str(path), env=env)
    assert result.returncode == 0, result.stderr
    return path


def run_script(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture(scope="session")
def kubectl_as_operator(
    cluster: Cluster, operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
):
    """Run kubectl with the operator ServiceAccount's token (not impersonation)."""
    cache_dir = tmp_path_factory.mktemp("kubectl-sa-cache")

    def as_operator(*args: str, input: str | None = None):
        return run(
            str(cluster.kubectl_binary),
            f"--kubeconfig={operator_kubeconfig}",
            f"--cache-dir={cache_dir}",
            *args,
            input=input,
        )

    return as_operator
