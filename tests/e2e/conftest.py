"""Fixtures for end-to-end tests against a real kube-apiserver.

With $KUBECONFIG set the suite uses that cluster (kind, AKS, `make cluster-up`) and starts nothing;
otherwise it starts a private etcd + kube-apiserver for the session and stops it afterwards.
Everything under tests/e2e is marked `e2e`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
import yaml

from azure_edition_envtest.controlplane import ControlPlane, find_bin_dir, is_envtest_kubeconfig, pid_alive
from azure_edition_envtest.controlplane import wait_established as controlplane_wait_established

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = REPO_ROOT / "crds" / "azureeditionvms.azureedition.io.yaml"
ADMISSION_POLICIES = REPO_ROOT / "deploy" / "admission" / "policies.yaml"
E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test below tests/e2e as `e2e` so `-m e2e` / `-m "not e2e"` select them."""
    for item in items:
        if E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Cluster:
    """The API server the session talks to; `local` is set only when this session started it."""

    kubeconfig: Path
    kubectl_binary: Path
    local: ControlPlane | None

    @property
    def runs_controllers(self) -> bool:
        """False for our control plane (this session's or `make cluster-up`'s): no kube-controller-manager."""
        return self.local is None and not is_envtest_kubeconfig(self.kubeconfig)


class Kubectl(Protocol):
    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]: ...


def _kubectl_binary() -> Path:
    """bin/kubectl (matches the API server version); a kubectl on PATH only for external clusters."""
    repo_kubectl = REPO_ROOT / "bin" / "kubectl"
    if os.access(repo_kubectl, os.X_OK):
        return repo_kubectl
    on_path = shutil.which("kubectl")
    if on_path:
        return Path(on_path)
    return find_bin_dir() / "kubectl"


def _stop_session_on_sigterm() -> None:
    """SIGTERM ends the whole run with teardown (so the control plane stops), like Ctrl-C does.

    The launcher's own handler raises SystemExit, which pytest would report as one failed test
    and then carry on; pytest.exit stops the session instead.
    """
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

        def exit_session(signum: int, _frame: object) -> None:
            pytest.exit(f"interrupted by signal {signum}", returncode=128 + signum)

        signal.signal(signal.SIGTERM, exit_session)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """$KUBECONFIG when set (nothing started), else a fresh local control plane for the session."""
    external = os.environ.get("KUBECONFIG")
    if external:
        if os.pathsep in external:
            pytest.exit("e2e: set KUBECONFIG to a single file (kubectl --kubeconfig takes one)", returncode=4)
        yield Cluster(Path(external), _kubectl_binary(), None)
        return
    _stop_session_on_sigterm()
    with ControlPlane.start() as control_plane:
        yield Cluster(control_plane.kubeconfig, control_plane.kubectl, control_plane)


@pytest.fixture(scope="session")
def kubeconfig(cluster: Cluster) -> Path:
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """Run kubectl against the session's cluster; returns the CompletedProcess (text)."""
    cache_dir = tmp_path_factory.mktemp("kubectl-cache")  # keep ~/.kube/cache free of throwaway servers

    def run(
        *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        command = [
            str(cluster.kubectl_binary),
            f"--kubeconfig={cluster.kubeconfig}",
            f"--cache-dir={cache_dir}",
            *args,
        ]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
            )
        return result

    return run


def _namespace_name(test_name: str) -> str:
    """A valid, unique DNS-1123 label derived from the test name, for readable leftovers."""
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"e2e-{slug}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(request: pytest.FixtureRequest, cluster: Cluster, kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards.

    Our control plane (this session's, or `make cluster-up`'s behind $KUBECONFIG) has no
    kube-controller-manager, so nothing would ever finalize a deleted namespace (the envtest
    limitation); there we clear the `kubernetes` finalizer through the /finalize subresource, which
    leaves the namespace's objects orphaned in the throwaway etcd. On a real cluster the namespace
    controller does the cleanup.
    """
    with fresh_namespace(_namespace_name(request.node.name), cluster, kubectl) as name:
        yield name


@pytest.fixture
def second_namespace(request: pytest.FixtureRequest, cluster: Cluster, kubectl: Kubectl) -> Iterator[str]:
    """Another fresh namespace with the same name prefix (tests that split objects across two)."""
    with fresh_namespace(_namespace_name(request.node.name), cluster, kubectl) as name:
        yield name


@contextlib.contextmanager
def fresh_namespace(name: str, cluster: Cluster, kubectl: Kubectl) -> Iterator[str]:
    kubectl("create", "namespace", name)
    yield name
    # Delete our objects while an operator may still be there to release them; then drop any finalizer
    # left (no operator, or a test that stopped it), so nothing outlives the test in this etcd.
    kubectl("delete", "azureeditionvms", "--all", "-n", name, "--wait=false", check=False)
    leftovers = _released_or_stuck(kubectl, name)
    for obj in leftovers:
        kubectl(
            "patch", obj, "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False
        )
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
    if not cluster.runs_controllers:
        finalize = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {}}
        result = kubectl(
            "replace", "--raw", f"/api/v1/namespaces/{name}/finalize", "-f", "-",
            input=json.dumps(finalize), check=False,
        )  # fmt: skip
        if result.returncode != 0 and "NotFound" not in result.stderr:
            raise AssertionError(f"could not finalize namespace {name}: {result.stderr}")


def _released_or_stuck(
    kubectl: Kubectl, namespace: str, timeout: float = 20.0, stuck: float = 3.0
) -> list[str]:
    """The objects still there once every one is gone, or nothing about them changed for ``stuck``
    seconds (no operator left to release them: the test stopped it), at most ``timeout``."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while True:
        listing = kubectl(
            "get", "azureeditionvms", "-n", namespace, "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}", check=False,
        ).stdout.split()  # fmt: skip
        if not listing or time.monotonic() > deadline:
            break
        if listing != last:
            last, since = listing, time.monotonic()
        elif time.monotonic() - since >= stuck:
            break
        time.sleep(0.5)
    return [f"azureeditionvm/{entry.split('=', 1)[0]}" for entry in listing]


@pytest.fixture(scope="session")
def crd_path() -> Path:
    if not CRD_FILE.exists():
        pytest.skip(f"{CRD_FILE.relative_to(REPO_ROOT)} does not exist yet (generate it with `make crds`)")
    return CRD_FILE


@pytest.fixture(scope="session")
def crd(crd_path: Path, kubectl: Kubectl) -> dict:
    """Install the AzureEditionVM CRD (server-side apply, idempotent) and wait until Established.

    It is left installed: on an external cluster deleting a CRD deletes every object of its kind.
    """
    document = yaml.safe_load(crd_path.read_text())
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd_path))
    wait_established(kubectl, document["metadata"]["name"])
    return document


def without_admission_policies(kubectl: Kubectl) -> None:
    """Delete deploy/admission's cluster-wide policies: a test that applied them (directly, or with
    deploy/base or an overlay) calls this when done. Tenancy denies every namespace without a TenantPolicy,
    and the next file this worker's control plane serves creates objects in namespaces of its own."""
    kubectl("delete", "-f", str(ADMISSION_POLICIES), "--ignore-not-found", check=False)


def wait_established(kubectl: Kubectl, name: str) -> None:
    """``controlplane.wait_established`` through the session's kubectl (a session fixture that failed
    would take every test of its worker with it)."""
    controlplane_wait_established(lambda *args: kubectl(*args, check=False).stdout, name)


@pytest.fixture
def wait_for_pids_gone() -> Callable[[list[int], float], list[int]]:
    """Poll until none of the pids is alive; returns the survivors (empty when all are gone)."""

    def wait(pids: list[int], timeout: float = 15.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while True:
            alive = [pid for pid in pids if pid_alive(pid)]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)

    return wait
