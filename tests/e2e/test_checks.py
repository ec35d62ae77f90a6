"""Continuous checks end to end: certificate expiry warnings, SMB over QUIC kept enabled, Hotpatch
state and drift, on-demand assessment. Real QUIC, real SDKs, real API server."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from azure_edition_envtest.stack import Process, operator_env, start_operator
from tests.conftest import SAMPLES
from tests.e2e.operator_stack import (  # noqa: F401
    RG,
    arm,
    condition,
    control,
    get,
    simulator,
    vm_calls,
    vm_name,
    wait_for,
)

INTERVAL = "5s"


@pytest.fixture(scope="module")
def checking_operator(crd, kubeconfig, simulator, tmp_path_factory) -> Iterator[Process]:
    """An operator that may ask the guest as soon as the probe fails (tests can't wait 10 minutes)."""
    env = operator_env(kubeconfig, simulator[1], AEO_IN_GUEST_MIN_INTERVAL="1")
    proc = start_operator(tmp_path_factory.mktemp("op") / "operator.log", env)
    yield proc
    proc.stop()


def vm_reads(sim, name: str, since: int) -> list[dict]:
    """A VM's own GETs (one per check round) since ``since``."""
    return [r for r in vm_calls(sim, name, since) if r["method"] == "GET" and r["path"].endswith(name)]


def apply_sample(kubectl, namespace: str, sample: str, **spec) -> dict:
    docs = list(yaml.safe_load_all((SAMPLES / f"{sample}.yaml").read_text()))
    docs[1]["spec"].update(checkInterval=INTERVAL, **spec)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))
    return docs[1]


def events(kubectl, namespace: str, reason: str) -> list[dict]:
    items = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e for e in items if e.get("reason") == reason]


def metric(proc: Process, metric_name: str, **labels: str) -> float | None:
    text = urllib.request.urlopen(f"http://{proc.extra['metrics']}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(metric_name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def smb_vm(checking_operator, kubectl, namespace, control):
    apply_sample(kubectl, namespace, "smb-over-quic")
    obj = wait_for(
        lambda: (
            (condition(o := get(kubectl, namespace, "smb-over-quic"), "VMProvisioned") or {}).get("status")
            == "True"
            and o
        )
    )
    name = vm_name(obj)
    control.set_certificate(RG, name, "fs02.branch-a.contoso.com", {"expiresInDays": 90})
    ready = kubectl(
        "wait", "--for=condition=Ready", "aevm/smb-over-quic", "-n", namespace, "--timeout=60s", timeout=90,
        check=False,
    )  # fmt: skip
    assert ready.returncode == 0, json.dumps(get(kubectl, namespace, "smb-over-quic")["status"]["conditions"])
    return name


def cert_condition(kubectl, namespace):
    return condition(get(kubectl, namespace, "smb-over-quic"), "SMBOverQUICCertificateValid")


def test_expiring_certificate_warns_once_then_recovers(
    checking_operator,
    kubectl,
    namespace,
    control,
    smb_vm,
):
    control.set_certificate(RG, smb_vm, "fs02.branch-a.contoso.com", {"expiresInDays": 10})
    wait_for(
        lambda: cert_condition(kubectl, namespace)["reason"] == "CertificateExpiringSoon", what="ExpiringSoon"
    )
    obj = get(kubectl, namespace, "smb-over-quic")
    assert obj["status"]["smbOverQuic"]["daysRemaining"] in (9, 10)
    assert obj["status"]["phase"] == "Ready"  # a warning is not an outage: Ready stays True
    assert (
        condition(obj, "Ready")["status"] == "True"
        and "CertificateExpiringSoon" in condition(obj, "Ready")["message"]
    )
    days = metric(
        checking_operator,
        "azureedition_certificate_days_remaining",
        namespace=namespace,
        name="smb-over-quic",
    )
    assert days is not None and 9 <= days <= 10

    seq = control.last_seq()
    wait_for(lambda: len(vm_reads(control, smb_vm, seq)) >= 3, timeout=20, what="two more whole check rounds")
    # still exactly one warning
    assert len(events(kubectl, namespace, "CertificateExpiringSoon")) == 1
    control.set_certificate(RG, smb_vm, "fs02.branch-a.contoso.com", {"expiresInDays": 200})
    wait_for(lambda: cert_condition(kubectl, namespace)["reason"] == "CertificateValid", what="Valid again")
    kubectl(
        "wait", "--for=condition=Ready", "aevm/smb-over-quic", "-n", namespace, "--timeout=30s", timeout=60
    )


def test_disabled_smb_over_quic_is_re_enabled(checking_operator, kubectl, namespace, control, smb_vm):
    control.set_guest(RG, smb_vm, enableSmbQuic=False)
    wait_for(lambda: events(kubectl, namespace, "SMBOverQUICReEnabled"), timeout=60, what="re-enable Event")
    assert control.guest(RG, smb_vm)["enableSmbQuic"] is True
    wait_for(lambda: cert_condition(kubectl, namespace)["reason"] == "CertificateValid", what="Valid again")


@pytest.fixture
def hotpatch_vm(checking_operator, kubectl, namespace):
    apply_sample(kubectl, namespace, "hotpatch")
    kubectl("wait", "--for=condition=Ready", "aevm/hotpatch", "-n", namespace, "--timeout=60s", timeout=90)
    return vm_name(get(kubectl, namespace, "hotpatch"))


def hotpatch_condition(kubectl, namespace):
    return condition(get(kubectl, namespace, "hotpatch"), "HotpatchHealthy")


def test_patch_settings_changed_behind_our_back_are_restored(kubectl, namespace, control, arm, hotpatch_vm):
    control.set_patch_settings(RG, hotpatch_vm, {"patchMode": "AutomaticByOS", "enableHotpatching": False,
                                                  "assessmentMode": "ImageDefault"})  # fmt: skip
    wait_for(lambda: events(kubectl, namespace, "HotpatchSettingsRestored"), timeout=60, what="restore Event")
    settings = arm[0].virtual_machines.get(RG, hotpatch_vm).os_profile.windows_configuration.patch_settings
    assert settings.patch_mode == "AutomaticByPlatform" and settings.enable_hotpatching is True
    wait_for(
        lambda: hotpatch_condition(kubectl, namespace)["reason"] == "HotpatchEnabled", what="healthy again"
    )


def hotpatch_reason(kubectl, namespace) -> str:
    return (condition(get(kubectl, namespace, "hotpatch"), "HotpatchHealthy") or {}).get("reason", "")


def test_reboot_pending_and_failed_installation(kubectl, namespace, control, hotpatch_vm):
    # The instance view reports what the guest's last assessment/installation said.
    control.set_guest(RG, hotpatch_vm, rebootPending=True, assessment={"rebootPending": True})
    wait_for(lambda: hotpatch_reason(kubectl, namespace) == "RebootPending", what="RebootPending")
    assert get(kubectl, namespace, "hotpatch")["status"]["hotpatch"]["rebootPending"] is True
    control.set_guest(
        RG, hotpatch_vm, installation={"status": "Failed", "failedPatchCount": 2, "installedPatchCount": 1}
    )
    wait_for(
        lambda: hotpatch_reason(kubectl, namespace) == "PatchInstallationFailed", what="failed installation"
    )
    obj = get(kubectl, namespace, "hotpatch")
    assert obj["status"]["hotpatch"]["failedPatchCount"] == 2 and obj["status"]["phase"] == "Degraded"


def test_assess_annotation_runs_exactly_one_assessment(kubectl, namespace, control, hotpatch_vm):
    seq = control.last_seq()
    kubectl("annotate", "aevm", "hotpatch", "-n", namespace, "azureedition.io/assess-patches=run-1")
    wait_for(
        lambda: get(kubectl, namespace, "hotpatch")["status"]["hotpatch"].get("lastAssessToken") == "run-1",
        what="token in status",
    )
    answered = control.last_seq()
    wait_for(
        lambda: len(vm_reads(control, hotpatch_vm, answered)) >= 2, timeout=15, what="a whole check round"
    )
    # a check round later: still exactly one
    posts = [
        r
        for r in control.requests(since=seq)
        if r["method"] == "POST" and re.search(rf"/virtualMachines/{hotpatch_vm}/assessPatches$", r["path"])
    ]
    assert len(posts) == 1
    assert events(kubectl, namespace, "PatchAssessmentCompleted")
    # The answered token is the operator's annotation; status only reports it: a forged one is corrected
    # by the next check round, and nothing is assessed again.
    answered = get(kubectl, namespace, "hotpatch")["metadata"]["annotations"]["kopf.azureedition.io/assessed"]
    assert answered.startswith("v1.") and answered.endswith(".run-1")  # sealed (sealing.py)
    kubectl("patch", "aevm", "hotpatch", "-n", namespace, "--subresource=status", "--type=merge",
            "-p", '{"status": {"hotpatch": {"lastAssessToken": "forged"}}}')  # fmt: skip
    wait_for(
        lambda: get(kubectl, namespace, "hotpatch")["status"]["hotpatch"].get("lastAssessToken") == "run-1",
        what="token corrected from the annotation",
    )
    assert [
        r
        for r in control.requests(since=seq)
        if r["method"] == "POST" and r["path"].endswith("/assessPatches")
    ] == posts


def test_a_forged_assess_answer_does_not_suppress_the_assessment(kubectl, namespace, control, hotpatch_vm):
    """Whoever edits the object can write the operator's annotation: an answer the operator did not seal
    reads as none, so the request is answered with a real assessment, and the forged text never reaches
    status."""
    seq = control.last_seq()
    kubectl("annotate", "--overwrite", "aevm", "hotpatch", "-n", namespace,
            "kopf.azureedition.io/assessed=run-forged")  # fmt: skip
    kubectl("annotate", "--overwrite", "aevm", "hotpatch", "-n", namespace,
            "azureedition.io/assess-patches=run-forged")  # fmt: skip
    wait_for(
        lambda: (
            get(kubectl, namespace, "hotpatch")["status"]["hotpatch"].get("lastAssessToken") == "run-forged"
        ),
        what="the forged token answered by an assessment",
    )
    posts = [
        r
        for r in control.requests(since=seq)
        if r["method"] == "POST" and re.search(rf"/virtualMachines/{hotpatch_vm}/assessPatches$", r["path"])
    ]
    assert len(posts) == 1, posts
    answered = get(kubectl, namespace, "hotpatch")["metadata"]["annotations"]["kopf.azureedition.io/assessed"]
    assert answered.startswith("v1.") and answered.endswith(".run-forged")


def test_fleet_steady_state_is_counted(checking_operator, kubectl, namespace, control):
    """N resources, several intervals: at most one ARM read per VM per interval, no Kubernetes writes."""
    docs = list(yaml.safe_load_all((SAMPLES / "hotpatch.yaml").read_text()))
    fleet = 5
    for i in range(fleet):
        docs[1]["metadata"]["name"] = f"fleet-{i}"
        docs[1]["spec"]["checkInterval"] = INTERVAL
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))
    for i in range(fleet):
        kubectl(
            "wait", "--for=condition=Ready", f"aevm/fleet-{i}", "-n", namespace, "--timeout=90s", timeout=120
        )
    names = {vm_name(get(kubectl, namespace, f"fleet-{i}")) for i in range(fleet)}
    ready = control.last_seq()
    # settled once each VM's first check round after Ready has finished (a second one has started reading)
    wait_for(
        lambda: all(len(vm_reads(control, n, ready)) >= 2 for n in names), timeout=20, what="one round each"
    )
    items = json.loads(kubectl("get", "aevm", "-n", namespace, "-o", "json").stdout)["items"]
    versions = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in items}
    seq, started = control.last_seq(), time.monotonic()
    intervals = 4
    wait_for(lambda: time.monotonic() - started >= intervals * 5 and all(
        len(vm_reads(control, n, seq)) >= intervals for n in names), timeout=intervals * 5 * 1.1 + 10,
        what="four intervals and four whole rounds of each VM")  # fmt: skip
    calls = [
        r for r in control.requests(since=seq) if any(f"/virtualMachines/{n}" in r["path"] for n in names)
    ]
    assert [r for r in calls if r["method"] != "GET"] == []
    per_vm = len([r for r in calls if r["method"] == "GET"]) / fleet
    assert 0 < per_vm <= intervals * 1.1 + 1, per_vm  # one read per interval, ±10% jitter
    items = json.loads(kubectl("get", "aevm", "-n", namespace, "-o", "json").stdout)["items"]
    assert {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in items} == versions
