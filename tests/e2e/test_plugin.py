"""`kubectl aevm` against a real kube-apiserver, run the way users run it: `kubectl aevm ...`, with
kubectl finding the installed console script on PATH.

status and why read a status the test writes through the status subresource (what the operator
would have written, checked by the CRD's schema); assess runs against the real operator and the
ARM simulator (real SDKs over HTTPS), which answers the annotation.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from azure_edition_envtest.stack import Process, operator_env, start_operator
from azure_edition_operator import reasons as vocab
from azure_edition_operator.plugin import main as plugin_main
from azure_edition_operator.plugin import render
from tests import plugin_samples as samples
from tests.conftest import SAMPLES
from tests.e2e.operator_stack import condition, control, get, simulator, vm_name  # noqa: F401

PLUGIN = Path(sys.executable).parent / "kubectl-aevm"
# The namespace fixture names namespaces after the test: the assess tests' operator watches only theirs,
# so the statuses the other tests write by hand are never reconciled.
ASSESS_NAMESPACES = "e2e-test-assess*"


@pytest.fixture(scope="module")
def aevm(cluster):
    """Run `kubectl aevm ARGS` (kubectl's plugin lookup on PATH) with KUBECONFIG set to the session's cluster."""
    if not os.access(PLUGIN, os.X_OK):
        pytest.fail(f"{PLUGIN} is not installed: run `make venv` (pyproject.toml [project.scripts])")

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        full = {**os.environ, "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "KUBECONFIG": str(cluster.kubeconfig), "COLUMNS": "160", **(env or {})}  # fmt: skip
        return subprocess.run(
            [str(cluster.kubectl_binary), "aevm", *args],
            capture_output=True,
            text=True,
            env=full,
            timeout=timeout,
        )

    return run


def create_with_status(kubectl, namespace: str, status: dict, name: str = "branch-fs-01") -> None:
    """The object as a user applies it, then its status as the operator would write it."""
    body = samples.obj(name=name, namespace=namespace)
    del body["metadata"]["generation"], body["metadata"]["uid"]
    kubectl("apply", "-f", "-", input=json.dumps(body))
    kubectl("patch", "aevm", name, "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}))  # fmt: skip


def test_status_shows_conditions_certificate_calendar_and_ids(crd, kubectl, namespace, aevm):
    status = samples.degraded_status()
    # Conditions other parts of the operator add show up as they are, without a change in the plugin.
    status["conditions"] += [samples.cond("Stalled", "False", "NotStalled", "nothing needs a person"),
                             samples.cond("ExtendedNetworkReady", "False", "GatewayNotConnected", "connect it")]  # fmt: skip
    create_with_status(kubectl, namespace, status)

    shown = aevm("status", "branch-fs-01", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    for needle in (f"AzureEditionVM {namespace}/branch-fs-01", "Degraded (generation 1, status observed 1)",
                   "! HotpatchHealthy", "CertificateExpiringSoon", "! ExtendedNetworkReady", "GatewayNotConnected",
                   "subject:    CN=fs01.branch-a.contoso.com", "trust:      trusted", "last baseline:",
                   "reboot pending:  yes", samples.VM_ID, "subnets/extended"):  # fmt: skip
        assert needle in out, needle

    as_json = aevm("status", "branch-fs-01", "-n", namespace, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    view = json.loads(as_json.stdout)
    assert [c["type"] for c in view["conditions"]] == [c["type"] for c in status["conditions"]]
    assert {c["type"] for c in view["conditions"] if not c["ok"]} == {
        "Ready", "HotpatchHealthy", "SMBOverQUICCertificateValid", "ExtendedNetworkReady"}  # fmt: skip
    assert view["certificate"]["notAfter"] == "2026-12-09T12:00:00Z"
    assert (
        view["hotpatch"]["nextBaselineMonth"] == "2027-01"
        and view["azure"]["status.vm.resourceId"] == samples.VM_ID
    )


def test_what_the_plugin_prints_cannot_drive_the_readers_terminal(crd, kubectl, namespace, aevm):
    """Whoever can write status (or a guest certificate, or Azure's messages) chooses these strings: ANSI
    and OSC 52 escapes, a carriage return, a bidi override. Each reaches the terminal escaped."""
    hostile = "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07\x1b[2J\rReady: True \u202egnp.exe"
    status = samples.degraded_status()
    status["smbOverQuic"]["subject"] = "CN=fs01" + hostile
    status["conditions"][0]["message"] = hostile
    create_with_status(kubectl, namespace, status)
    for command in ("status", "why"):
        shown = aevm(command, "branch-fs-01", "-n", namespace)
        assert shown.returncode == 0, shown.stderr
        assert not {"\x1b", "\x07", "\r", "\u202e"} & set(shown.stdout), repr(shown.stdout)
        assert "\\x1b]52;c;" in shown.stdout, command
        as_json = aevm(command, "branch-fs-01", "-n", namespace, "-o", "json")
        assert not {"\x1b", "\x07", "\r", "\u202e"} & set(as_json.stdout), command


def test_why_walks_the_reasons_with_their_documented_fixes(crd, kubectl, namespace, aevm):
    create_with_status(kubectl, namespace, samples.failed_status())
    shown = aevm("why", "branch-fs-01", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert text.startswith(f"{namespace}/branch-fs-01 is not Ready (ProvisioningFailed):")
    assert "└─ VMProvisioned=False QuotaExceeded" in text
    assert " ".join(vocab.VM_PROVISIONED["QuotaExceeded"].meaning.split()) in text
    assert " ".join(vocab.CONDITION_REASONS["Ready"]["ProvisioningFailed"].action.split()) in text

    kubectl("patch", "aevm", "branch-fs-01", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": samples.ready_status()}))  # fmt: skip
    as_json = aevm("why", "branch-fs-01", "-n", namespace, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "name": "branch-fs-01",
        "namespace": namespace,
        "ready": True,
        "behind": None,
        "findings": [],
    }


def test_namespace_comes_from_the_flag_else_the_context(crd, kubectl, namespace, aevm, cluster, tmp_path):
    create_with_status(kubectl, namespace, samples.ready_status())
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    current = config["current-context"]
    context = next(c for c in config["contexts"] if c["name"] == current)
    config["contexts"].append({"name": "tenant", "context": {**context["context"], "namespace": namespace}})
    with_ns = tmp_path / "tenant.kubeconfig"
    with_ns.write_text(yaml.safe_dump({**config, "current-context": "tenant"}))
    without_ns = tmp_path / "plain.kubeconfig"
    without_ns.write_text(yaml.safe_dump(config))

    assert (
        aevm("why", "branch-fs-01", env={"KUBECONFIG": str(with_ns)}).returncode == 0
    )  # $KUBECONFIG's context
    assert (
        aevm(
            "why", "branch-fs-01", "--kubeconfig", str(with_ns), env={"KUBECONFIG": "/nonexistent"}
        ).returncode
        == 0
    )
    assert aevm("why", "branch-fs-01", "--kubeconfig", str(without_ns), "--context", "tenant").returncode == 0
    elsewhere = aevm(
        "why", "branch-fs-01", "--kubeconfig", str(without_ns)
    )  # context without namespace: default
    assert elsewhere.returncode == render.EXIT_NOT_FOUND and "namespace 'default'" in elsewhere.stderr
    flag_wins = aevm("-n", "kube-system", "why", "branch-fs-01", env={"KUBECONFIG": str(with_ns)})
    assert flag_wins.returncode == render.EXIT_NOT_FOUND and "namespace 'kube-system'" in flag_wins.stderr


def test_errors_say_what_to_do(crd, kubectl, namespace, aevm, cluster, tmp_path):
    missing = aevm("status", "no-such-vm", "-n", namespace)
    assert missing.returncode == render.EXIT_NOT_FOUND
    assert (
        f"'no-such-vm' not found in namespace '{namespace}'" in missing.stderr
        and "kubectl get aevm" in missing.stderr
    )

    async def get_unserved_kind() -> None:  # the real API server's answer when a CRD is not installed
        client = await plugin_main.connect(str(cluster.kubeconfig), None, namespace)
        client.plural = "nosuchkinds"
        try:
            await client.get("anything")
        finally:
            await client.api.close()

    with pytest.raises(render.PluginError) as crd_missing:
        asyncio.run(get_unserved_kind())
    assert (
        crd_missing.value.code == render.EXIT_NOT_FOUND
        and "CRD is not installed" in crd_missing.value.message
    )

    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for item in config["clusters"]:
        item["cluster"]["server"] = "https://127.0.0.1:1"
    unreachable = tmp_path / "unreachable.kubeconfig"
    unreachable.write_text(yaml.safe_dump(config))
    down = aevm("status", "x", "--kubeconfig", str(unreachable))
    assert down.returncode == render.EXIT_UNREACHABLE and "cannot reach the API server" in down.stderr


def test_no_permission_names_the_verb_to_ask_for(crd, kubectl, namespace, aevm, cluster, tmp_path):
    create_with_status(kubectl, namespace, samples.ready_status())
    kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "reader", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "reader"
    reader = tmp_path / "reader.kubeconfig"
    reader.write_text(yaml.safe_dump(config))

    refused = aevm("status", "branch-fs-01", "-n", namespace, "--kubeconfig", str(reader))
    assert refused.returncode == render.EXIT_FORBIDDEN, refused.stderr
    assert f"system:serviceaccount:{namespace}:reader" in refused.stderr
    assert "allows `get` on azureeditionvms (apiGroups: [azureedition.io])" in refused.stderr

    kubectl(
        "create",
        "role",
        "aevm-reader",
        "-n",
        namespace,
        "--verb=get",
        "--resource=azureeditionvms.azureedition.io",
    )
    kubectl("create", "rolebinding", "aevm-reader", "-n", namespace, "--role=aevm-reader",
            f"--serviceaccount={namespace}:reader")  # fmt: skip
    allowed = aevm("why", "branch-fs-01", "-n", namespace, "--kubeconfig", str(reader))
    assert allowed.returncode == 0, allowed.stderr
    no_patch = aevm("assess", "branch-fs-01", "-n", namespace, "--kubeconfig", str(reader))
    assert (
        no_patch.returncode == render.EXIT_FORBIDDEN
        and "allows `patch` on azureeditionvms" in no_patch.stderr
    )


# ----------------------------------------------------------------------------- assess, with the real operator


@pytest.fixture(scope="module")
def assess_operator(crd, kubeconfig, simulator, tmp_path_factory) -> Iterator[Process]:
    proc = start_operator(tmp_path_factory.mktemp("op") / "operator.log", operator_env(kubeconfig, simulator[1]),
                          "--namespace", ASSESS_NAMESPACES)  # fmt: skip
    yield proc
    proc.stop()
    print(proc.tail(60))


@pytest.fixture
def hotpatch_vm(assess_operator, kubectl, namespace) -> str:
    assert namespace.startswith(ASSESS_NAMESPACES.rstrip("*")), namespace
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "hotpatch.yaml"))
    kubectl("wait", "--for=condition=Ready", "aevm/hotpatch", "-n", namespace, "--timeout=90s", timeout=120)
    return vm_name(get(kubectl, namespace, "hotpatch"))


def test_assess_sets_a_fresh_token_and_prints_the_result(kubectl, namespace, aevm, hotpatch_vm):
    first = aevm("assess", "hotpatch", "-n", namespace, "--timeout", "90s")
    assert first.returncode == 0, first.stdout + first.stderr
    token = first.stdout.split("assessment ", 1)[1].split(";")[0]
    assert (
        f"assessment {token}: Succeeded" in first.stdout
        and "critical/security patches missing:" in first.stdout
    )
    obj = get(kubectl, namespace, "hotpatch")
    assert obj["metadata"]["annotations"]["azureedition.io/assess-patches"] == token
    assert obj["status"]["hotpatch"]["lastAssessToken"] == token

    again = aevm("assess", "hotpatch", "-n", namespace, "-o", "json", "--timeout", "90s")
    assert again.returncode == 0, again.stdout + again.stderr
    result = json.loads(again.stdout)
    assert (
        result["token"] != token
        and result["done"]
        and result["hotpatch"]["lastAssessToken"] == result["token"]
    )


def test_assess_reports_the_operator_giving_up(kubectl, namespace, aevm, control, hotpatch_vm):
    fault = control.inject_fault(method="POST", path_regex=rf"/virtualMachines/{hotpatch_vm}/assessPatches$",
                                 status=409, code="OperationNotAllowed", times=None,
                                 message="Operation 'assessPatches' is not allowed on VM since the VM is stopped")  # fmt: skip
    try:
        failed = aevm("assess", "hotpatch", "-n", namespace, "--timeout", "90s")
    finally:
        control.remove_fault(fault)
    assert failed.returncode == render.EXIT_FAILED, failed.stdout + failed.stderr
    assert "the operator gave up on assessment" in failed.stderr and "OperationNotAllowed" in failed.stderr


def test_assess_times_out_saying_what_the_operator_waits_for(assess_operator, kubectl, namespace, aevm):
    _secret, vm = yaml.safe_load_all((SAMPLES / "hotpatch.yaml").read_text())
    kubectl(
        "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(vm)
    )  # no admin Secret: never provisioned
    kubectl("wait", "--for=jsonpath={.status.conditions[0].type}=Ready", "aevm/hotpatch", "-n", namespace,
            "--timeout=60s", timeout=90)  # fmt: skip
    waited = aevm("assess", "hotpatch", "-n", namespace, "--timeout", "3s")
    assert waited.returncode == render.EXIT_TIMEOUT, waited.stdout + waited.stderr
    assert "the VM is not provisioned (AdminCredentialsMissing)" in waited.stderr
    assert (
        condition(get(kubectl, namespace, "hotpatch"), "VMProvisioned")["reason"] == "AdminCredentialsMissing"
    )
