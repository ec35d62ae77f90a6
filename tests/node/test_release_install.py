"""What a release ships, installed on the one-node cluster: `make release`'s install.yaml (rendered by
hack/release/release.py's own function) and, separately, the Helm chart; with each a sample
AzureEditionVM reaches Ready against the ARM simulator, and each is removed after.

The image is the one the suite has loaded (by its local tag: the node cannot pull, and a release
names a registry's digest). What the lab needs on top is taken from deploy/overlays/node-e2e, so it
is stated once: `support.lab_settings` (hostNetwork, loopback listeners, the simulator's endpoints
and CA, workload identity's projected token). install.yaml gets them as a kustomize overlay, the
chart through its hostNetwork, probeHost, ports and extra* values (docs/install.md#the-one-node-test-cluster).

This module runs after test_node_e2e.py (file order: that one tests a fresh cluster) and first
removes what it installed; it leaves the cluster empty.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SAMPLES
from tests.node.conftest import OPERATOR_IMAGE, VERSION
from tests.node.support import (
    NAMESPACE,
    chart_values,
    doc_blocks,
    install_overlay,
    lab_settings,
    simulator_ca,
    wrapper_kustomization,
)
from tests.node.target import DEFAULT_OVERLAY, Target
from tests.node.test_node_e2e import SAMPLES_NS, SAMPLES_POLICY, quotas_counted, rendered, wait_until

pytestmark = pytest.mark.node

SAMPLE = "hotpatch"  # no SMB over QUIC: Ready needs no certificate mapping in the simulated guest
RELEASE = "azure-edition-operator"


def _release_module():
    spec = importlib.util.spec_from_file_location("release", REPO / "hack" / "release" / "release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def remove_node_e2e_install(node: Target) -> None:
    """test_node_e2e.py's install (its wrapper kustomization in the target's workdir), removed as
    docs/install.md#uninstalling says: the VMs while the operator runs, then the rest."""
    if not (node.workdir / "kustomization.yaml").exists():
        return
    node.kubectl("delete", "aevm", "--all", "-A", "--timeout=120s", check=False, timeout=140)
    node.kubectl(
        "delete", "clusterrolebinding", "e2e-prometheus-metrics-reader", "--ignore-not-found", check=False
    )
    node.kubectl("delete", "-k", str(node.workdir), "--ignore-not-found", "--wait=false", check=False)
    node.kubectl("delete", "namespace", SAMPLES_NS, NAMESPACE, "branch-a", "--ignore-not-found", "--timeout=120s",
                 check=False, timeout=140)  # fmt: skip


@pytest.fixture(scope="module")
def lab(node: Target, tmp_path_factory) -> dict:
    """The node-e2e overlay rendered with this run's values: the simulator's Deployment and the lab
    settings for the operator. The cluster emptied first."""
    remove_node_e2e_install(node)
    work = tmp_path_factory.mktemp("release-lab")
    issuer = json.loads(node.kubectl("get", "--raw", "/.well-known/openid-configuration").stdout)["issuer"]
    (work / "kustomization.yaml").write_text(
        wrapper_kustomization(work, node.overlay, node.pod_apiserver(), issuer)
    )
    docs = rendered(work)
    ca_cert, ca_key = simulator_ca()
    (work / "ca.pem").write_bytes(ca_cert)
    (work / "ca-key.pem").write_bytes(ca_key)
    return {
        "work": work,
        "settings": lab_settings(docs, rendered(REPO / "deploy" / "base")),
        "armsim": [d for d in docs if d["metadata"]["name"] == "azure-edition-armsim"],
    }


def start_simulator(node: Target, lab: dict) -> None:
    work = lab["work"]
    for kind in (["secret", "generic"], ["configmap"]):
        files = [f"--from-file={work / 'ca.pem'}", f"--from-file={work / 'ca-key.pem'}"] if kind[0] == "secret" \
            else [f"--from-file=ca.crt={work / 'ca.pem'}"]  # fmt: skip
        manifest = node.kubectl("-n", NAMESPACE, "create", *kind, "azure-edition-armsim-ca", *files,
                                "--dry-run=client", "-o", "yaml").stdout  # fmt: skip
        node.kubectl("apply", "-f", "-", input=manifest)
    node.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(lab["armsim"]))


def sample_ready(node: Target) -> None:
    """Apply the sample (and its admin Secret) in the tenant namespace; wait for Ready."""
    for deployment in ("azure-edition-armsim", "azure-edition-operator"):
        node.kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{deployment}", "--timeout=240s",
                     timeout=260)  # fmt: skip
    quotas_counted(node, SAMPLES_NS)
    node.kubectl("apply", "-n", SAMPLES_NS, "-f", str(SAMPLES / f"{SAMPLE}.yaml"))

    def ready():
        aevm = node.json("get", "aevm", SAMPLE, "-n", SAMPLES_NS)
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in aevm.get("status", {}).get("conditions", [])
        )

    try:
        wait_until(f"{SAMPLE} Ready", ready, 240, 2)
    except AssertionError:
        print(node.kubectl("get", "aevm", "-n", SAMPLES_NS, "-o", "yaml", check=False).stdout[-3000:])
        print(
            node.kubectl(
                "-n", NAMESPACE, "logs", "deployment/azure-edition-operator", "--tail=40", check=False
            ).stdout
        )
        raise


def remove(node: Target, uninstall) -> None:
    """The sample first (its finalizer needs the operator), then the install, the simulator and the
    namespaces; the CRDs last (Helm keeps them on uninstall)."""
    node.kubectl("delete", "aevm", "--all", "-n", SAMPLES_NS, "--timeout=120s", check=False, timeout=140)
    uninstall()
    node.kubectl("delete", "namespace", SAMPLES_NS, NAMESPACE, "--ignore-not-found", "--timeout=120s",
                 check=False, timeout=140)  # fmt: skip
    node.kubectl("delete", "-f", str(REPO / "crds"), "--ignore-not-found", check=False)


def test_the_release_install_yaml_installs_and_a_sample_reaches_ready(node: Target, lab):
    release = _release_module()
    work: Path = lab["work"] / "install-yaml"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    repository, tag = OPERATOR_IMAGE.rsplit(":", 1)
    install = release.render_install(REPO / "bin" / "kubectl", work, VERSION, repository, tag, tag=True)
    assert install.startswith(f"# azure-edition-operator {VERSION}:")
    (work / "install.yaml").write_text(install)
    (work / "kustomization.yaml").write_text(install_overlay("install.yaml", lab["settings"]))
    try:
        # As docs/install.md says: the install, then a tenant namespace onboarded with its TenantPolicy.
        node.kubectl("apply", "--server-side", "-k", str(work))
        start_simulator(node, lab)
        node.kubectl("apply", "-k", str(DEFAULT_OVERLAY / "e2e-samples"))
        node.kubectl(
            "wait", "--for=condition=Established", "crd/tenantpolicies.azureedition.io", "--timeout=60s"
        )
        node.kubectl("apply", "-f", "-", input=yaml.safe_dump(SAMPLES_POLICY))
        pod = node.json("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=operator")["items"]
        assert [p["spec"]["containers"][0]["image"] for p in pod] == [OPERATOR_IMAGE]
        sample_ready(node)
    finally:
        remove(node, lambda: node.kubectl("delete", "-k", str(work), "--ignore-not-found", "--wait=false",
                                          check=False))  # fmt: skip


def test_the_helm_chart_installs_and_a_sample_reaches_ready(node: Target, lab):
    values = lab["work"] / "values.yaml"
    values.write_text(yaml.safe_dump(chart_values(OPERATOR_IMAGE, lab["settings"], SAMPLES_POLICY)))
    helm = [str(REPO / "bin" / "helm"), "--kubeconfig", node.kubeconfig, "--namespace", NAMESPACE]

    def run_helm(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([*helm, *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"helm {' '.join(args)}: {result.stderr}"
        return result

    try:
        # The namespaces first: the chart creates neither (the release namespace with PodSecurity
        # `privileged` enforced: hostNetwork, lab only).
        for ns, labels in ((NAMESPACE, ["pod-security.kubernetes.io/enforce=privileged"]), (SAMPLES_NS, [])):
            node.kubectl("create", "namespace", ns)
            if labels:
                node.kubectl("label", "namespace", ns, *labels)
        start_simulator(node, lab)
        run_helm("upgrade", "--install", RELEASE, str(REPO / "charts" / "azure-edition-operator"),
                 "--values", str(values), "--wait", "--timeout", "4m")  # fmt: skip
        policy = node.json("get", "tenantpolicy", SAMPLES_POLICY["metadata"]["name"])
        assert policy["spec"]["namespaces"] == [SAMPLES_NS]
        sample_ready(node)
    finally:
        remove(node, lambda: subprocess.run([*helm, "uninstall", RELEASE, "--wait", "--timeout", "2m"],
                                            capture_output=True, timeout=150))  # fmt: skip


def test_install_md_release_walkthrough_word_for_word(node: Target, lab):
    """docs/install.md's install.yaml path, its `release-walkthrough` blocks run as written in one
    shell: apply install.yaml, wait for the rollout, create and onboard branch-a (tenants/branch-a
    is the doc's kustomization, its remote base pointed at this checkout, with the TenantPolicy of
    deploy/tenant-namespace-with-policy, which the doc says to copy), apply a sample, wait for Ready.
    The lab's part comes first and is not the doc's: the release namespace with PodSecurity
    `privileged`, the simulator, and install.yaml with the lab overlay (docs/install.md#the-one-node-test-cluster).
    Dropped: `--watch`, which never returns."""
    text = (REPO / "docs" / "install.md").read_text()
    commands = [c for c in doc_blocks(text, "release-walkthrough") if "--watch" not in c]
    assert commands[0] == "kubectl apply --server-side -f install.yaml", commands
    assert commands[-1].startswith("kubectl -n branch-a wait --for=condition=Ready aevm/hotpatch"), commands
    work: Path = lab["work"] / "walkthrough"
    shutil.rmtree(work, ignore_errors=True)
    (work / "render").mkdir(parents=True)
    repository, tag = OPERATOR_IMAGE.rsplit(":", 1)
    release = _release_module()
    install = release.render_install(
        REPO / "bin" / "kubectl", work / "render", VERSION, repository, tag, tag=True
    )
    (work / "render" / "install.yaml").write_text(install)
    (work / "render" / "kustomization.yaml").write_text(install_overlay("install.yaml", lab["settings"]))
    header = "".join(line + "\n" for line in install.splitlines() if line.startswith("#"))
    (work / "install.yaml").write_text(header + node.kubectl("kustomize", str(work / "render")).stdout)
    tenant = work / "tenants" / "branch-a"
    tenant.mkdir(parents=True)
    kustomization = re.search(r"```yaml\n(# tenants/branch-a/kustomization.yaml\n.*?)```", text, re.S).group(
        1
    )
    base = os.path.relpath(REPO / "deploy" / "tenant-namespace", tenant)
    (tenant / "kustomization.yaml").write_text(
        re.sub(r"https://\S+/deploy/tenant-namespace\?ref=\S+", base, kustomization)
    )
    shutil.copy(REPO / "deploy" / "tenant-namespace-with-policy" / "tenantpolicy.yaml", tenant)
    (work / "deploy").symlink_to(REPO / "deploy")
    env = {
        **os.environ,
        "KUBECONFIG": node.kubeconfig,
        "PATH": f"{Path(node.kubectl_bin).parent}:{os.environ['PATH']}",
    }
    try:
        node.kubectl("create", "namespace", NAMESPACE)
        node.kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=privileged")
        start_simulator(node, lab)
        result = subprocess.run(["bash", "-c", "\n".join(["set -euo pipefail", *commands])], cwd=work, env=env,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert result.returncode == 0, f"{result.stdout}{result.stderr}"
        assert "condition met" in result.stdout, result.stdout
    finally:
        node.kubectl("delete", "aevm", "--all", "-n", "branch-a", "--timeout=120s", check=False, timeout=140)
        node.kubectl(
            "delete", "-f", str(work / "install.yaml"), "--ignore-not-found", "--wait=false", check=False
        )
        node.kubectl("delete", "namespace", "branch-a", NAMESPACE, "--ignore-not-found", "--timeout=120s",
                     check=False, timeout=140)  # fmt: skip
