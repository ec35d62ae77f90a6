"""docs/: the API reference is generated from the code and current, links and anchors resolve, and
everything the docs promise to cover (reasons, alerts, metrics, settings, commands) is there."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from azure_edition_envtest.controlplane import free_ports
from tests.deploy.support import DEPLOY, REPO, find, kustomize, load_docgen
from tests.deploy.test_monitoring import EXPOSED, GAUGES, HISTOGRAMS, rule_expressions
from tests.e2e.conftest import without_admission_policies

DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
DOCGEN = load_docgen()


def test_reference_is_generated_from_the_current_models():
    expected = DOCGEN.render_reference()
    assert (DOCS / "reference.md").read_text() == expected, (
        "docs/reference.md is stale: run `make deploy-generate`"
    )


def test_reference_documents_every_field_of_the_crd():
    text = (DOCS / "reference.md").read_text()
    schema = DOCGEN.CRD_SOURCE.read_text()
    crd = yaml.safe_load(schema)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    for top in ("spec", "status"):
        for name in crd[top]["properties"]:
            assert f"`{top}.{name}`" in text


def test_an_unexplained_reason_fails_generation(monkeypatch):
    reasons = {kind: dict(table) for kind, table in DOCGEN.REASONS.items()}
    del reasons["HotpatchHealthy"]["RebootPending"]
    monkeypatch.setattr(DOCGEN, "REASONS", reasons)
    with pytest.raises(DOCGEN.GenerationError, match="RebootPending"):
        DOCGEN.check_reasons()


def test_a_reason_the_code_no_longer_has_fails_generation(monkeypatch):
    reasons = {kind: dict(table) for kind, table in DOCGEN.REASONS.items()}
    reasons["Ready"]["NoSuchReasonAnywhere"] = DOCGEN.Reason("False", "x", "y")
    monkeypatch.setattr(DOCGEN, "REASONS", reasons)
    with pytest.raises(DOCGEN.GenerationError, match="NoSuchReasonAnywhere"):
        DOCGEN.check_reasons()


# ------------------------------------------------------------------------------------------------
# Links and anchors
# ------------------------------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: broken link {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: no heading for #{anchor} in {resolved.name}"


def test_alert_runbook_anchors_exist():
    troubleshooting = anchors(DOCS / "troubleshooting.md")
    rules = yaml.safe_load(
        (DEPLOY / "monitoring" / "rules" / "azure-edition-operator.rules.yaml").read_text()
    )
    for group in rules["groups"]:
        for rule in (r for r in group["rules"] if "alert" in r):  # recording rules have no runbook
            for anchor in re.findall(
                r"docs/troubleshooting\.md#([\w-]+)", rule["annotations"]["description"]
            ):
                assert anchor in troubleshooting, f"{rule['alert']}: no #{anchor} in troubleshooting.md"


# ------------------------------------------------------------------------------------------------
# Coverage of what the docs promise
# ------------------------------------------------------------------------------------------------


def test_troubleshooting_covers_every_failure_reason():
    headings = anchors(DOCS / "troubleshooting.md")
    for kind, reasons in DOCGEN.REASONS.items():
        assert slug(kind) in headings, kind
        if kind in DOCGEN.NEGATIVE_POLARITY:  # False is the good state; True repeats another reason
            continue
        for name, reason in reasons.items():
            if reason.status == "False":
                assert slug(name) in headings, f"troubleshooting.md has no section for {kind}/{name}"


def test_monitoring_page_lists_every_metric_and_alert():
    text = (DOCS / "monitoring.md").read_text()
    for metric in GAUGES | HISTOGRAMS | {m for m in EXPOSED if m.endswith("_total")}:
        assert f"`{metric}`" in text, metric
    for alert in rule_expressions():
        assert f"`{alert}`" in text, alert


def test_install_page_lists_every_setting():
    text = (DOCS / "install.md").read_text()
    for line in (DEPLOY / "base" / "config.env").read_text().splitlines():
        key = line.partition("=")[0]
        if key and key != "PYTHONDONTWRITEBYTECODE":  # an image detail, not a setting
            assert f"`{key}`" in text, key


def test_readme_says_no_image_is_published_and_how_it_is_built():
    text = (DOCS / "README.md").read_text()
    assert "publishes no container image" in text
    assert "`make image`" in text and "`make e2e-node`" in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_kustomize_commands_name_real_kustomizations(page):
    for directory in re.findall(r"kubectl (?:apply|delete) -k (deploy/[\w/.-]+)", page.read_text()):
        assert (REPO / directory / "kustomization.yaml").is_file(), f"{page.name}: {directory}"


def test_monitoring_threshold_patch_example_applies(tmp_path):
    """The JSON patch shown in monitoring.md changes the reboot alert's `for`, as it says."""
    text = (DOCS / "monitoring.md").read_text()
    block = re.search(r"```yaml\n(patches:\n.*?)```", text, re.S).group(1)
    overlay = yaml.safe_load(block)
    overlay["resources"] = [os.path.relpath(DEPLOY / "monitoring", tmp_path)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    rule = find(kustomize(tmp_path), "PrometheusRule")
    patched = rule["spec"]["groups"][1]["rules"][0]
    assert (patched["alert"], patched["for"]) == ("AzureEditionHotpatchRebootPending", "72h")


# ------------------------------------------------------------------------------------------------
# The local walkthrough in install.md, run for real
# ------------------------------------------------------------------------------------------------


def walkthrough_commands() -> list[str]:
    """The walkthrough's commands, continuation lines joined and comments dropped."""
    text = (DOCS / "install.md").read_text()
    block = re.search(
        r"<!-- walkthrough:begin -->\n```sh\n(.*?)```\n<!-- walkthrough:end -->", text, re.S
    ).group(1)
    commands, current = [], ""
    for line in block.splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = re.sub(r"\s+#\s.*$", "", line).rstrip()
        current += line.removesuffix("\\") + (" " if line.endswith("\\") else "")
        if not line.endswith("\\") and current.strip():
            commands.append(current.strip())
            current = ""
    return commands


def test_walkthrough_is_parsed():
    commands = walkthrough_commands()
    assert commands[0] == "make cluster-up"
    assert any(c.startswith("make sa-kubeconfig") for c in commands)
    assert commands[-2].startswith("bin/kubectl -n branch-a wait --for=condition=Ready")


def stop_pid_file(path: Path) -> None:
    """End a process the walkthrough started (by the pid it recorded) and wait until it is gone."""
    if not path.exists() or not path.read_text().strip():
        return
    pid = int(path.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.e2e
def test_walkthrough_installs_with_kustomize_and_a_sample_reaches_ready(cluster, kubectl, tmp_path):
    """A newcomer's path, command for command, in one shell: `kubectl apply -k` of the
    simulator-demo overlay, a ServiceAccount token, the ARM simulator, the operator with only the
    ServiceAccount's permissions, and a sample that reaches Ready. The session's control plane
    stands in for `make cluster-up`; its directory for `.cluster/`."""
    if cluster.local is None:
        pytest.skip("applies the simulator-demo overlay for real; only on the throwaway local control plane")
    cluster_dir = tmp_path / "cluster"
    cluster_dir.mkdir()
    (cluster_dir / "kubeconfig").write_text(Path(cluster.kubeconfig).read_text())
    health, metrics = free_ports(2)
    script = ["set -euo pipefail"]
    for command in walkthrough_commands():
        if command.startswith(("make cluster-up", "export KUBECONFIG=")):
            continue  # the session's control plane is already up
        command = command.replace("$PWD/.cluster/", f"{cluster_dir}/").replace(".cluster/", f"{cluster_dir}/")
        command = command.replace("127.0.0.1:18080", f"127.0.0.1:{health}")
        script.append(command.replace("127.0.0.1:19090", f"127.0.0.1:{metrics}"))
    env = {**os.environ, "KUBECONFIG": str(cluster_dir / "kubeconfig"), "CLUSTER_DIR": str(cluster_dir)}
    try:
        result = subprocess.run(
            ["bash", "-c", "\n".join(script)], cwd=REPO, env=env, capture_output=True, text=True, timeout=280
        )
        operator_log = (
            (cluster_dir / "operator.log").read_text() if (cluster_dir / "operator.log").exists() else ""
        )
        assert result.returncode == 0, f"{result.stdout}{result.stderr}\n--- operator log ---\n{operator_log}"
        assert re.search(r"^hotpatch\s+True\s+Ready\s", result.stdout, re.M), result.stdout
        assert "forbidden" not in operator_log.lower(), operator_log  # the ServiceAccount's RBAC sufficed
    finally:
        stop_pid_file(cluster_dir / "operator.pid")
        stop_pid_file(cluster_dir / "armsim.pid")
        without_admission_policies(kubectl)  # the overlay's, cluster-wide
