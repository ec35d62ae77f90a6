"""The kind path, as far as a machine that cannot pull kind's node image can check it.

`make kind-up` / `kind-load` / `e2e-kind` need a container runtime with registry access (kind pulls
its node image). Here we check everything else, with kind itself: the pinned kind builds from the Go
module proxy (cached: a warm run costs milliseconds), kind loads and validates hack/kind/cluster.yaml,
the overlay renders, and `make e2e-kind` hands the in-cluster suite the kind kubeconfig.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import REPO, find, kustomize, require_tool, run
from tests.node import target
from tests.node.support import wrapper_kustomization

KIND_DIR = REPO / "hack" / "kind"
KIND_VERSION = re.search(r"^KIND_VERSION=(\S+)$", (KIND_DIR / "versions.env").read_text(), re.M).group(1)
CRD_NAME = "azureeditionvms.azureedition.io"


@pytest.fixture(scope="module")
def kind() -> Path:
    """bin/kind, built by hack/kind/build.sh on the first run and reused from the cache after."""
    result = run(str(KIND_DIR / "build.sh"), timeout=900)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def kind_validate(kind: Path, config: Path) -> str:
    """Run kind's own config loading and validation, stopping it before it creates anything.

    `kind create cluster` loads the config strictly, then validates it (all errors at once) and
    only then provisions nodes. An invalid --name makes validation fail for sure: with a valid
    config, that is the only error kind reports; nothing is created either way.
    """
    podman = require_tool("podman", "run `make kind-tools` (kind needs a provider to start)")
    env = os.environ | {
        "KIND_EXPERIMENTAL_PROVIDER": "podman",
        "PATH": f"{Path(podman).parent}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        [
            str(kind),
            "create",
            "cluster",
            "--name",
            "Not_A_Name",
            "--config",
            str(config),
            "--kubeconfig",
            os.devnull,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0, "kind went on to create a cluster"
    return result.stderr


def test_kind_builds_at_the_pinned_version_from_the_module_proxy(kind: Path) -> None:
    assert (REPO / "bin" / "kind").resolve() == kind.resolve()
    version = run(str(kind), "version").stdout
    assert version.startswith(f"kind {KIND_VERSION} "), version
    assert f"sigs.k8s.io/kind {KIND_VERSION}" in (KIND_DIR / "module" / "go.mod").read_text()


def test_kind_accepts_the_cluster_config(kind: Path) -> None:
    errors = kind_validate(kind, KIND_DIR / "cluster.yaml")
    assert "'Not_A_Name' is not a valid cluster name" in errors
    assert "decode" not in errors and errors.count("ERROR") == 1, errors


def test_kind_would_refuse_a_broken_config(kind: Path, tmp_path: Path) -> None:
    """The check above can fail: kind reads the config strictly."""
    config = yaml.safe_load((KIND_DIR / "cluster.yaml").read_text())
    config["nodes"][0]["rolez"] = config["nodes"][0].pop("role")
    broken = tmp_path / "cluster.yaml"
    broken.write_text(yaml.safe_dump(config))
    assert "field rolez not found" in kind_validate(kind, broken)


def test_the_kind_overlay_is_node_e2e_with_cluster_dns_for_the_simulator_and_public_discovery() -> None:
    objects = kustomize(KIND_DIR / "overlay")
    node_e2e = kustomize(REPO / "deploy" / "overlays" / "node-e2e")
    operator = find(objects, "Deployment", "azure-edition-operator")
    assert operator == find(node_e2e, "Deployment", "azure-edition-operator")
    container = operator["spec"]["template"]["spec"]["containers"][0]
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert container["image"] == f"localhost/azure-edition-operator:{version}"
    assert container["imagePullPolicy"] == "Never"
    armsim = find(objects, "Deployment", "azure-edition-armsim")["spec"]["template"]["spec"]
    assert armsim["hostNetwork"] is True and armsim["dnsPolicy"] == "ClusterFirstWithHostNet"
    binding = find(objects, "ClusterRoleBinding", "service-account-issuer-discovery-unauthenticated")
    assert binding["roleRef"]["name"] == "system:service-account-issuer-discovery"
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}
    ]
    crd = find(objects, "CustomResourceDefinition", CRD_NAME)
    assert crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"


def test_e2e_kind_runs_the_in_cluster_suite_against_the_kind_kubeconfig() -> None:
    plan = run("make", "--no-print-directory", "-n", "-C", str(REPO), "e2e-kind").stdout
    command = " ".join(plan.split("\\\n")).split("\n")
    command = next(line for line in command if "pytest" in line)
    assert "AZURE_EDITION_E2E_KUBECONFIG=.kind/kubeconfig" in command
    assert "AZURE_EDITION_E2E_OVERLAY=hack/kind/overlay" in command
    assert 'AZURE_EDITION_E2E_LOAD="env KIND_EXPERIMENTAL_PROVIDER=' in command
    assert "bin/kind load image-archive {archive} --name azure-edition" in command
    assert "tests/node" in command.split()


# tests/node's cluster targets (tests/node/target.py): the choice and the pure parts, without a cluster.


def test_the_suite_takes_a_kubeconfig_and_a_load_command_instead_of_the_one_node_cluster(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "no-node"
    empty.mkdir()
    with pytest.raises(LookupError, match="no one-node cluster"):
        target.from_env({}, empty, tmp_path)
    with pytest.raises(LookupError, match="AZURE_EDITION_E2E_LOAD"):
        target.from_env({"AZURE_EDITION_E2E_KUBECONFIG": "k"}, empty, tmp_path)
    with pytest.raises(ValueError, match=r"\{archive\}"):
        target.from_env(
            {"AZURE_EDITION_E2E_KUBECONFIG": "k", "AZURE_EDITION_E2E_LOAD": "kind load"}, empty, tmp_path
        )
    chosen = target.from_env(
        {
            "AZURE_EDITION_E2E_KUBECONFIG": str(tmp_path / "kubeconfig"),
            "AZURE_EDITION_E2E_LOAD": "bin/kind load image-archive {archive}",
            "AZURE_EDITION_E2E_OVERLAY": "hack/kind/overlay",
        },
        empty,
        tmp_path,
    )
    assert isinstance(chosen, target.KubeconfigTarget)
    assert chosen.kubeconfig == str(tmp_path / "kubeconfig") and chosen.workdir == tmp_path
    assert chosen.overlay == KIND_DIR / "overlay"
    assert chosen.pod_apiserver() is None  # kind: the in-cluster Service, as kubelet injects it


def test_the_load_command_names_the_archive() -> None:
    archive = Path("/tmp/with space/image.tar")
    assert target.load_command("env A=b bin/kind load image-archive {archive} --name x", archive) == [
        "env", "A=b", "bin/kind", "load", "image-archive", str(archive), "--name", "x",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        target.load_command("ctr images import -", archive)


def test_port_forward_output_and_server_urls_parse() -> None:
    assert target.forwarded_port("Forwarding from 127.0.0.1:40123 -> 18443\n") == 40123
    assert target.forwarded_port("Forwarding from [::1]:40123 -> 18443") is None
    assert target.forwarded_port("error: unable to forward") is None
    assert target.server_address("https://127.0.0.1:6443") == ("127.0.0.1", 6443)
    assert target.server_address("https://kubernetes.example") == ("kubernetes.example", 443)


def test_pods_get_the_api_server_address_only_when_the_target_asks(tmp_path: Path) -> None:
    overlay = REPO / "deploy" / "overlays" / "node-e2e"
    plain = yaml.safe_load(wrapper_kustomization(tmp_path, overlay, None, "https://issuer"))
    assert "configMapGenerator" not in plain
    assert plain["resources"] == [os.path.relpath(overlay, tmp_path)]
    assert "https://issuer" in plain["patches"][0]["patch"]
    pinned = yaml.safe_load(wrapper_kustomization(tmp_path, overlay, ("127.0.0.1", 6443), "https://issuer"))
    assert pinned["configMapGenerator"][0]["literals"] == [
        "KUBERNETES_SERVICE_HOST=127.0.0.1",
        "KUBERNETES_SERVICE_PORT=6443",
    ]


def test_readme_has_one_command_for_the_kind_path() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(re.findall(r"^make kind-up e2e-kind ", readme, re.M)) == 1
