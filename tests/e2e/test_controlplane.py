"""The local control plane is real and leaves nothing behind; RBAC and the CRD behave like a cluster.

Launcher tests start their own control planes (they test the launcher); the rest use the session
cluster from conftest, so they also run against any $KUBECONFIG.
"""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from azure_edition_envtest.controlplane import ControlPlane, pid_alive, pinned_versions

if TYPE_CHECKING:
    from .conftest import Cluster, Kubectl

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "samples"
WaitForPidsGone = Callable[[list[int], float], list[int]]


def _kubectl(control_plane: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(control_plane.kubectl), f"--kubeconfig={control_plane.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


# ---------------------------------------------------------------------------------------------
# The launcher
# ---------------------------------------------------------------------------------------------


def test_launcher_serves_a_ready_api_and_stops_every_process(
    tmp_path: Path, wait_for_pids_gone: WaitForPidsGone
) -> None:
    with ControlPlane.start(work_dir=tmp_path / "cp") as control_plane:
        pids = list(control_plane.pids.values())
        assert set(control_plane.pids) == {"etcd", "kube-apiserver"}
        assert all(pid_alive(pid) for pid in pids)

        status, body = control_plane.readyz()
        assert (status, body) == (200, "ok")

        version = _kubectl(control_plane, "version", "-o", "json")
        assert version.returncode == 0, version.stderr
        server_version = json.loads(version.stdout)["serverVersion"]["gitVersion"]
        assert server_version == pinned_versions()["KUBERNETES_VERSION"]
        assert control_plane.server.startswith("https://127.0.0.1:")

    assert wait_for_pids_gone(pids, 15.0) == []
    assert control_plane.stopped


def test_exception_inside_the_context_still_stops_the_processes(wait_for_pids_gone: WaitForPidsGone) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), ControlPlane.start() as control_plane:
        pids = list(control_plane.pids.values())
        work_dir = control_plane.work_dir
        assert all(pid_alive(pid) for pid in pids)
        raise Boom

    assert wait_for_pids_gone(pids, 15.0) == []
    assert not work_dir.exists(), "a temporary work dir must be removed with the control plane"


@pytest.mark.parametrize("kill_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_owner_leaves_no_orphans(
    kill_signal: signal.Signals, tmp_path: Path, wait_for_pids_gone: WaitForPidsGone
) -> None:
    """SIGTERM runs the cleanup; even SIGKILL (no cleanup possible) takes the children along."""
    owner_script = textwrap.dedent(
        """
        import json, sys, time
        from azure_edition_envtest.controlplane import ControlPlane
        control_plane = ControlPlane.launch(work_dir=sys.argv[1])
        print(json.dumps(list(control_plane.pids.values())), flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_script, str(tmp_path / "cp")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        assert len(pids) == 2 and all(pid_alive(pid) for pid in pids)
        owner.send_signal(kill_signal)
        owner.wait(timeout=30)
        assert wait_for_pids_gone(pids, 15.0) == []
    finally:
        owner.kill()
        owner.wait()


def test_cli_up_is_idempotent_and_down_stops_everything(
    tmp_path: Path, wait_for_pids_gone: WaitForPidsGone
) -> None:
    state_dir = tmp_path / "cluster"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "azure_edition_envtest.controlplane", *args, "--dir", str(state_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        first = cli("up")
        assert first.returncode == 0, first.stderr
        assert "started in" in first.stdout
        state = json.loads((state_dir / "state.json").read_text())
        pids = list(state["pids"].values())
        assert int((state_dir / "kube-apiserver.pid").read_text()) == state["pids"]["kube-apiserver"]
        assert all(pid_alive(pid) for pid in pids), "the daemon must outlive the `up` command"

        second = cli("up")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert json.loads((state_dir / "state.json").read_text())["pids"] == state["pids"]

        status = cli("status")
        assert status.returncode == 0 and json.loads(status.stdout)["healthy"] is True

        namespaces = subprocess.run(
            [
                str(Path(state["bin_dir"]) / "kubectl"),
                f"--kubeconfig={state_dir / 'kubeconfig'}",
                "get",
                "ns",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert namespaces.returncode == 0 and "kube-system" in namespaces.stdout, namespaces.stderr

        assert cli("down").returncode == 0
        assert wait_for_pids_gone(pids, 15.0) == []
        assert cli("status").returncode == 1
        assert "was not running" in cli("down").stdout
    finally:
        cli("down")


# ---------------------------------------------------------------------------------------------
# The session cluster (local or $KUBECONFIG)
# ---------------------------------------------------------------------------------------------


def test_kubectl_reaches_the_server(cluster: Cluster, kubectl: Kubectl) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["major"] == "1"
    if cluster.local is not None:
        assert version["serverVersion"]["gitVersion"] == pinned_versions()["KUBERNETES_VERSION"]


def test_rbac_refuses_anonymous_and_unprivileged_requests(cluster: Cluster, kubectl: Kubectl) -> None:
    # An authenticated user without bindings: RBAC answers "no".
    can_i = kubectl("auth", "can-i", "--as=e2e-nobody", "list", "pods", "-A", check=False)
    assert (can_i.returncode, can_i.stdout.strip()) == (1, "no")

    # The authorizer's verdict for anonymous, asked by the admin.
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "system:anonymous",
            "groups": ["system:unauthenticated"],
            "resourceAttributes": {"verb": "list", "resource": "pods"},
        },
    }
    verdict = kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    assert json.loads(verdict.stdout)["status"]["allowed"] is False

    impersonated = kubectl("get", "pods", "-A", "--as=system:anonymous", check=False)
    assert impersonated.returncode != 0
    assert "forbidden" in impersonated.stderr.lower()

    if cluster.local is not None:
        # A request with no credentials at all: authenticated as anonymous, refused by RBAC.
        context = ssl.create_default_context(cafile=str(cluster.local.pki_dir / "ca.crt"))
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{cluster.local.server}/api/v1/pods", context=context, timeout=10)
        assert refused.value.code == 403


def test_rbac_grants_exactly_what_is_bound(kubectl: Kubectl, namespace: str) -> None:
    user = "e2e-alice"
    kubectl("create", "role", "configmap-reader", "--verb=get,list", "--resource=configmaps", "-n", namespace)
    kubectl(
        "create", "rolebinding", "alice-reads", "--role=configmap-reader", f"--user={user}", "-n", namespace
    )

    def can(verb: str, resource: str, ns: str) -> bool:
        answer = kubectl("auth", "can-i", f"--as={user}", verb, resource, "-n", ns, check=False)
        return answer.stdout.strip() == "yes"

    assert can("list", "configmaps", namespace)
    assert not can("delete", "configmaps", namespace)
    assert not can("list", "secrets", namespace)
    assert not can("list", "configmaps", "default")


def test_namespace_fixture_gives_an_empty_active_namespace(kubectl: Kubectl, namespace: str) -> None:
    phase = kubectl("get", "namespace", namespace, "-o", "jsonpath={.status.phase}").stdout
    assert phase == "Active"
    assert kubectl("get", "configmaps", "-n", namespace, "-o", "name").stdout.strip() in (
        "",
        "configmap/kube-root-ca.crt",
    )


# ---------------------------------------------------------------------------------------------
# The AzureEditionVM CRD
# ---------------------------------------------------------------------------------------------


def test_crd_installs_and_is_served(crd: dict, kubectl: Kubectl, namespace: str) -> None:
    name = crd["metadata"]["name"]
    conditions = json.loads(kubectl("get", "crd", name, "-o", "jsonpath={.status.conditions}").stdout)
    assert {c["type"]: c["status"] for c in conditions}.get("Established") == "True"
    assert kubectl("get", name, "-n", namespace, "-o", "name").stdout.strip() == ""
    versions = crd["spec"]["versions"]
    assert any(v.get("subresources", {}).get("status") is not None for v in versions), (
        "the operator writes status through the status subresource"
    )


def _sample_vm(name: str) -> dict:
    """The AzureEditionVM from a deploy/samples file: valid by construction (the lead keeps them so)."""
    documents = yaml.safe_load_all((SAMPLES_DIR / name).read_text())
    return next(d for d in documents if d and d.get("kind") == "AzureEditionVM")


def test_status_subresource_separates_spec_and_status(crd: dict, kubectl: Kubectl, namespace: str) -> None:
    """The operator relies on this split: users own spec (generation), the operator owns status."""
    vm = _sample_vm("plain-core.yaml")
    name = vm["metadata"]["name"]
    vm["status"] = {"phase": "Ready"}  # ignored on create: status is a subresource
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(vm))

    def get() -> dict:
        return json.loads(kubectl("get", "azureeditionvm", name, "-n", namespace, "-o", "json").stdout)

    created = get()
    assert created["metadata"]["generation"] == 1
    assert "phase" not in created.get("status", {})
    original_interval = created["spec"]["checkInterval"]

    # A status write (which also tries to change spec) changes only status.
    status_patch = {
        "spec": {"checkInterval": "7m"},
        "status": {"phase": "Provisioning", "observedGeneration": 1},
    }
    kubectl(
        "patch", "azureeditionvm", name, "-n", namespace,
        "--subresource=status", "--type=merge", "-p", json.dumps(status_patch),
    )  # fmt: skip
    after_status = get()
    assert after_status["status"]["phase"] == "Provisioning"
    assert after_status["status"]["observedGeneration"] == 1
    assert after_status["spec"] == created["spec"]
    assert after_status["spec"]["checkInterval"] == original_interval
    assert after_status["metadata"]["generation"] == 1

    # A spec write (which also tries to change status) changes only spec, and bumps generation.
    new_interval = "2m" if original_interval != "2m" else "3m"
    spec_patch = {"spec": {"checkInterval": new_interval}, "status": {"phase": "Failed"}}
    kubectl("patch", "azureeditionvm", name, "-n", namespace, "--type=merge", "-p", json.dumps(spec_patch))
    after_spec = get()
    assert after_spec["spec"]["checkInterval"] == new_interval
    assert after_spec["metadata"]["generation"] == 2
    assert after_spec["status"] == after_status["status"]
