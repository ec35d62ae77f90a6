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
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import REPO, find, kustomize, require_tool, run

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
    podman = require_tool("podman", "run `make node-tools` (kind needs a provider to start)")
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


def test_the_kind_overlay_renders_with_the_loaded_image_never_pulled() -> None:
    objects = kustomize(KIND_DIR / "overlay")
    deployment = find(objects, "Deployment", "azure-edition-operator")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    image = re.search(r"^KIND_IMAGE \?= (\S+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    assert container["image"] == image
    assert container["imagePullPolicy"] == "Never"
    crd = find(objects, "CustomResourceDefinition", CRD_NAME)
    assert crd["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"


def test_e2e_kind_runs_the_in_cluster_suite_against_the_kind_kubeconfig() -> None:
    plan = run("make", "--no-print-directory", "-n", "-C", str(REPO), "e2e-kind").stdout
    command = next(line for line in plan.splitlines() if "pytest" in line)
    assert "KUBECONFIG=.kind/kubeconfig" in command
    assert "AZURE_EDITION_E2E_OVERLAY=hack/kind/overlay" in command
    assert command.rstrip().endswith("tests/node")


def test_readme_has_one_command_for_the_kind_path() -> None:
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^make (image )?kind-up kind-load e2e-kind ", readme, re.M)
