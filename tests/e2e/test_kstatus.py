"""kstatus and "a warning is not an outage" end to end: real kube-apiserver, real SDKs against the ARM
simulator, real QUIC. A permanent failure ends `kubectl wait` (Stalled=True, Reconciling=False) instead
of leaving it to its timeout; a warning keeps Ready=True with a Warning Event; an outage does not."""

from __future__ import annotations

import json

import yaml

from tests.e2e.operator_stack import (  # noqa: F401  (fixtures)
    RG,
    condition,
    control,
    get,
    sample_docs,
    simulator,
    wait_for,
)
from tests.e2e.test_checks import (  # noqa: F401  (fixtures)
    INTERVAL,
    checking_operator,
    events,
    hotpatch_vm,
    metric,
)

LOCATION = "westeurope"
RESTRICTED_SIZE = "Standard_D4s_v5"  # made unavailable in this module's simulator only


def kstatus_of(obj: dict) -> dict[str, tuple[str, str]]:
    generation = obj["metadata"]["generation"]
    out = {}
    for type_ in ("Ready", "Reconciling", "Stalled"):
        found = condition(obj, type_)
        assert found is not None, f"{type_} missing: {obj['status'].get('conditions')}"
        assert found["observedGeneration"] == generation, found
        out[type_] = (found["status"], found["reason"])
    return out


def test_a_permanent_failure_ends_kubectl_wait(checking_operator, kubectl, namespace, control):
    control.restrict_sku(LOCATION, RESTRICTED_SIZE)
    secret, vm = sample_docs("plain-core")
    available_size = vm["spec"]["azure"]["vmSize"]
    assert available_size != RESTRICTED_SIZE
    vm["spec"]["azure"]["vmSize"] = RESTRICTED_SIZE
    vm["spec"]["checkInterval"] = INTERVAL
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([secret, vm]))

    # What a GitOps tool waiting on kstatus does: it ends, and says why.
    stalled = kubectl("wait", "--for=condition=Stalled", "aevm/plain-core", "-n", namespace, "--timeout=60s",
                      timeout=90, check=False)  # fmt: skip
    obj = get(kubectl, namespace, "plain-core")
    assert stalled.returncode == 0, json.dumps(obj["status"].get("conditions"))
    assert kstatus_of(obj) == {
        "Ready": ("False", "ProvisioningFailed"),
        "Reconciling": ("False", "Idle"),
        "Stalled": ("True", "SkuNotAvailable"),
    }
    assert RESTRICTED_SIZE in condition(obj, "Stalled")["message"]
    assert obj["status"]["phase"] == "Failed"

    assert metric(checking_operator, "azureedition_stalled", namespace=namespace, name="plain-core",
                  reason="SkuNotAvailable") == 1  # fmt: skip
    assert metric(checking_operator, "azureedition_ready", namespace=namespace, name="plain-core") == 0

    # The person fixes the spec: the edit is handled at once, not after the 15-minute retry of the error.
    patch = {"spec": {"azure": {"vmSize": available_size}}}
    kubectl("patch", "aevm/plain-core", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    ready = kubectl("wait", "--for=condition=Ready", "aevm/plain-core", "-n", namespace, "--timeout=120s",
                    timeout=150, check=False)  # fmt: skip
    obj = get(kubectl, namespace, "plain-core")
    assert ready.returncode == 0, json.dumps(obj["status"].get("conditions"))
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2
    assert kstatus_of(obj)["Stalled"] == ("False", "NotStalled")


def hotpatch_reason(kubectl, namespace) -> str:
    return (condition(get(kubectl, namespace, "hotpatch"), "HotpatchHealthy") or {}).get("reason", "")


def test_a_warning_keeps_ready_an_outage_does_not(
    checking_operator, kubectl, namespace, control, hotpatch_vm
):
    # Warning: a reboot is pending. Ready stays True and says so; a Warning Event; the metric.
    control.set_guest(RG, hotpatch_vm, rebootPending=True, assessment={"rebootPending": True})
    wait_for(lambda: hotpatch_reason(kubectl, namespace) == "RebootPending", what="RebootPending")
    obj = get(kubectl, namespace, "hotpatch")
    assert kstatus_of(obj) == {
        "Ready": ("True", "Ready"),
        "Reconciling": ("False", "Idle"),
        "Stalled": ("False", "NotStalled"),
    }
    assert "RebootPending" in condition(obj, "Ready")["message"] and obj["status"]["phase"] == "Ready"
    assert condition(obj, "HotpatchHealthy")["status"] == "False"
    warned = wait_for(lambda: events(kubectl, namespace, "RebootPending"), what="RebootPending Event")
    assert [e["type"] for e in warned] == ["Warning"]
    labels = {"namespace": namespace, "name": "hotpatch"}
    assert metric(checking_operator, "azureedition_hotpatch_state", reason="RebootPending", **labels) == 1
    assert metric(checking_operator, "azureedition_ready", **labels) == 1
    kubectl("wait", "--for=condition=Ready", "aevm/hotpatch", "-n", namespace, "--timeout=5s", timeout=30)

    # Warning: the assessment found critical/security updates.
    control.set_guest(RG, hotpatch_vm, rebootPending=False,
                      assessment={"rebootPending": False, "criticalAndSecurityPatchCount": 2})  # fmt: skip
    wait_for(lambda: hotpatch_reason(kubectl, namespace) == "UpdatesAvailable", what="UpdatesAvailable")
    assert condition(get(kubectl, namespace, "hotpatch"), "Ready")["status"] == "True"
    assert wait_for(lambda: events(kubectl, namespace, "UpdatesAvailable"), what="UpdatesAvailable Event")
    assert len(events(kubectl, namespace, "RebootPending")) == 1  # once per transition, not per check round

    # Outage: patches failed. Ready=False, Stalled=True (a person must look), and `kubectl wait` ends.
    control.set_guest(
        RG, hotpatch_vm, installation={"status": "Failed", "failedPatchCount": 2, "installedPatchCount": 1}
    )
    kubectl("wait", "--for=condition=Stalled", "aevm/hotpatch", "-n", namespace, "--timeout=60s", timeout=90)
    obj = get(kubectl, namespace, "hotpatch")
    assert kstatus_of(obj) == {
        "Ready": ("False", "Degraded"),
        "Reconciling": ("False", "Idle"),
        "Stalled": ("True", "PatchInstallationFailed"),
    }
    assert metric(checking_operator, "azureedition_stalled", reason="PatchInstallationFailed", **labels) == 1
