"""An upgrade over live objects (docs/upgrading.md): the previous version's CRDs and admission
policies installed, a VM Ready under them, then the current version's applied over them and the
operator restarted (what the Deployment's Recreate rollout does): the VM stays Ready, nothing is
written to Azure, and the stored object is still accepted by the current API rules.

The previous version is the tree before the last commit that changed pyproject.toml's version (git
history, so a fresh clone has it). The operator process is this checkout's both times: what the test
upgrades is the API surface the cluster holds (CRD schemas, CEL rules, admission policies)."""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from azure_edition_envtest.stack import operator_env, simulator_timing_args, start_operator, start_simulator
from azure_edition_simulator.client import SimulatorControl
from tests.e2e.conftest import without_admission_policies
from tests.e2e.operator_stack import vm_name

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = ("crds/azureeditionvms.azureedition.io.yaml", "crds/tenantpolicies.azureedition.io.yaml",
             "deploy/admission/policies.yaml")  # fmt: skip


def git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    assert result.returncode == 0, (
        f"git {' '.join(args)}: {result.stderr} (the upgrade test needs the git history)"
    )
    return result.stdout.strip()


def previous_version_commit() -> str:
    """The commit before the last one that changed pyproject.toml's version line."""
    bump = git("log", "-1", "--format=%H", "-G", r"^version = ", "--", "pyproject.toml")
    assert bump, "pyproject.toml's version was never changed: there is no previous version"
    return git("rev-parse", f"{bump}^")


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> Path:
    """The previous version's CRDs and admission policies, as files."""
    out = tmp_path_factory.mktemp("previous")
    archive = out / "previous.tar"
    git("archive", "--format=tar", "-o", str(archive), previous_version_commit(), *MANIFESTS)
    with tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    return out


def apply(kubectl, root: Path) -> None:
    for manifest in MANIFESTS:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(root / manifest))
    for crd in MANIFESTS[:2]:
        kubectl("wait", "--for=condition=Established", f"crd/{Path(crd).stem}", "--timeout=60s")


def ready(kubectl, namespace: str, name: str) -> dict:
    obj = json.loads(kubectl("get", "aevm", name, "-n", namespace, "-o", "json").stdout)
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {})


def test_current_manifests_over_the_previous_keep_live_objects_ready_without_azure_writes(
    kubectl, kubeconfig, namespace, previous, tmp_path
):
    apply(kubectl, previous)
    sim, sim_env = start_simulator(tmp_path / "armsim", *simulator_timing_args(0.1))
    control = SimulatorControl.from_env(sim_env)
    policy = {
        "apiVersion": "azureedition.io/v1alpha1",
        "kind": "TenantPolicy",
        "metadata": {"name": f"upgrade-{namespace}"},
        "spec": {"namespaces": [namespace], "subscriptionIds": [sim_env["AZURE_SUBSCRIPTION_ID"]],
                 "resourceGroups": ["*"], "subnetIdPrefixes": [f"/subscriptions/{sim_env['AZURE_SUBSCRIPTION_ID']}/"]},
    }  # fmt: skip
    kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))
    docs = list(yaml.safe_load_all((REPO / "deploy" / "samples" / "hotpatch.yaml").read_text()))
    docs[1]["spec"]["checkInterval"] = "5s"
    env = operator_env(kubeconfig, sim_env)
    operator = start_operator(tmp_path / "before.log", env, "--namespace", namespace)
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))
        kubectl(
            "wait", "--for=condition=Ready", "aevm/hotpatch", "-n", namespace, "--timeout=90s", timeout=120
        )
        operator.stop()  # a Recreate rollout: the old pod stops before the new manifests' pod starts
        seq = control.last_seq()
        apply(kubectl, REPO)
        operator = start_operator(tmp_path / "after.log", env, "--namespace", namespace)
        deadline = time.monotonic() + 60
        while not [r for r in control.requests(since=seq) if r["path"].startswith("/subscriptions/")]:
            assert time.monotonic() < deadline, "the restarted operator never looked at Azure"
            time.sleep(0.5)
        name = vm_name(json.loads(kubectl("get", "aevm", "hotpatch", "-n", namespace, "-o", "json").stdout))
        vm_gets = lambda: [r for r in control.requests(since=seq)  # noqa: E731
                           if r["method"] == "GET" and r["path"].endswith(f"/virtualMachines/{name}")]  # fmt: skip
        # the resumed pass, then two whole check rounds (a third has started reading)
        deadline = time.monotonic() + 30
        while len(vm_gets()) < 4:
            assert time.monotonic() < deadline, "no check rounds after the restart"
            time.sleep(0.3)
        assert operator.alive(), operator.tail()
        assert ready(kubectl, namespace, "hotpatch").get("status") == "True"
        arm = [r for r in control.requests(since=seq) if r["path"].startswith("/subscriptions/")]
        writes = [r for r in arm if r["method"] != "GET"]  # (a token request is no Azure write)
        assert writes == [], writes
        # The stored object passes the current CRD and admission rules as it is (a no-op update).
        stored = json.loads(kubectl("get", "aevm", "hotpatch", "-n", namespace, "-o", "json").stdout)
        kubectl("replace", "--dry-run=server", "-f", "-", input=json.dumps(stored))
    finally:
        operator.stop()
        sim.stop()
        # No operator is left to release the finalizer; the namespace fixture would wait for it.
        kubectl("patch", "aevm", "hotpatch", "-n", namespace, "--type=merge", "-p",
                '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
        kubectl("delete", "tenantpolicy", policy["metadata"]["name"], "--ignore-not-found", check=False)
        apply(kubectl, REPO)  # the session's other tests expect the current CRDs
        without_admission_policies(kubectl)  # and no cluster-wide tenancy policy
