"""Extended Network's prerequisites end to end: real kube-apiserver, the operator as a process, real SDKs
against the ARM simulator over HTTPS. Every ExtendedNetworkReady reason reaches status, with Ready and the
phase it implies; the simulator's control API plays the network administrator and the guest."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml

from azure_edition_envtest.stack import Process, operator_env, start_operator
from tests.conftest import SAMPLES
from tests.e2e.operator_stack import RG, condition, control, get, simulator, vm_name, wait_for  # noqa: F401

SAMPLE = "extended-network"
CONNECTION = "cn-branch-a-onprem"


@pytest.fixture(scope="module")
def xnet_operator(crd, kubeconfig, simulator, tmp_path_factory) -> Iterator[Process]:
    """An operator that asks the guest every couple of seconds (the default is every 6 hours)."""
    env = operator_env(kubeconfig, simulator[1], AEO_IN_GUEST_INTERVAL="2", AEO_IN_GUEST_MIN_INTERVAL="1")
    proc = start_operator(tmp_path_factory.mktemp("op") / "operator.log", env)
    yield proc
    proc.stop()
    print(proc.tail(60))


def apply(kubectl, namespace: str, name: str, **changes) -> None:
    docs = list(yaml.safe_load_all((SAMPLES / f"{SAMPLE}.yaml").read_text()))
    docs[1]["metadata"]["name"] = name
    spec = docs[1]["spec"]
    spec["checkInterval"] = "5s"
    spec["azure"].update(changes.pop("azure", {}))
    spec.update(changes)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def xnet(kubectl, namespace: str, name: str) -> dict:
    return condition(get(kubectl, namespace, name), "ExtendedNetworkReady") or {}


def wait_reason(kubectl, namespace: str, name: str, reason: str, timeout: float = 60) -> dict:
    wait_for(lambda: xnet(kubectl, namespace, name).get("reason") == reason, timeout=timeout,
             what=f"ExtendedNetworkReady {reason} (have {xnet(kubectl, namespace, name)})")  # fmt: skip
    return get(kubectl, namespace, name)


def ready(obj: dict) -> tuple[str, str, str]:
    c = condition(obj, "Ready") or {}
    return c.get("status", ""), c.get("reason", ""), obj["status"].get("phase", "")


def events(kubectl, namespace: str, reason: str) -> list[dict]:
    items = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e for e in items if e.get("reason") == reason]


def subnet(env: dict, vnet: str, name: str) -> str:
    return env["ARMSIM_SUBNET_ID"].replace("vnet-branch-a/subnets/servers", f"{vnet}/subnets/{name}")


def test_a_size_without_nesting_is_refused_before_any_put_then_heals_on_a_fixed_spec(
    xnet_operator, kubectl, namespace, control, simulator
):  # fmt: skip
    apply(kubectl, namespace, "xnet-b2s", azure={"vmSize": "Standard_B2s"})
    obj = wait_reason(kubectl, namespace, "xnet-b2s", "NestedVirtualizationUnsupported")
    assert condition(obj, "VMProvisioned")["reason"] == "PrerequisitesNotMet"
    assert ready(obj) == ("False", "ProvisioningFailed", "Failed")
    assert "Standard_D2as_v5" in xnet(kubectl, namespace, "xnet-b2s")["message"]
    assert not [v for v in control.vms() if v["name"] == vm_name(obj)]  # nothing was created
    assert not [r for r in control.requests() if r["method"] == "PUT" and vm_name(obj) in r["path"]]
    wait_for(lambda: events(kubectl, namespace, "NestedVirtualizationUnsupported"), what="Warning Event")

    # The fix: a size that nests. kopf holds a failed create's next attempt until its delay (a minute).
    apply(kubectl, namespace, "xnet-b2s", azure={"vmSize": "Standard_D2as_v5"})
    kubectl("wait", "--for=condition=Ready", "aevm/xnet-b2s", "-n", namespace, "--timeout=180s", timeout=210)
    healed = get(kubectl, namespace, "xnet-b2s")
    assert xnet(kubectl, namespace, "xnet-b2s")["reason"] == "ExtendedNetworkReady"
    assert condition(healed, "VMProvisioned")["reason"] == "Succeeded"


def test_unusable_extended_subnets_are_refused_before_any_put(
    xnet_operator, kubectl, namespace, control, simulator
):  # fmt: skip
    env = simulator[1]
    cases = {
        "xnet-primary": ("ExtendedSubnetIsPrimary", env["ARMSIM_SUBNET_ID"]),
        "xnet-othernet": ("ExtendedSubnetInOtherNetwork", control.add_subnet("vnet-e2e-other", "extended")),
        "xnet-gwsubnet": ("ExtendedSubnetIsGatewaySubnet", subnet(env, "vnet-branch-a", "GatewaySubnet")),
        "xnet-delegated": ("ExtendedSubnetDelegated",
                           control.delegate_subnet("vnet-branch-a", f"deleg-{namespace[-12:]}", "Microsoft.Web/serverFarms")),
    }  # fmt: skip
    for name, (_, ext) in cases.items():
        apply(kubectl, namespace, name, extendedNetwork={"extendedSubnetId": ext})
    for name, (reason, _) in cases.items():
        obj = wait_reason(kubectl, namespace, name, reason)
        assert ready(obj) == ("False", "ProvisioningFailed", "Failed"), name
        assert not [v for v in control.vms() if v["name"] == vm_name(obj)], name


def test_outages_after_provisioning_make_ready_false_and_heal(
    xnet_operator, kubectl, namespace, control, simulator
):  # fmt: skip
    apply(kubectl, namespace, "xnet-ok")
    kubectl("wait", "--for=condition=Ready", "aevm/xnet-ok", "-n", namespace, "--timeout=90s", timeout=120)
    vm = vm_name(get(kubectl, namespace, "xnet-ok"))

    def outage(reason: str) -> None:
        obj = wait_reason(kubectl, namespace, "xnet-ok", reason)
        assert ready(obj)[0] == "False" and ready(obj)[1:] == ("Degraded", "Degraded"), ready(obj)

    def healed() -> None:
        kubectl("wait", "--for=condition=Ready", "aevm/xnet-ok", "-n", namespace, "--timeout=60s", timeout=90)

    control.set_connection_status(RG, CONNECTION, "NotConnected")
    outage("GatewayNotConnected")
    control.set_connection_status(RG, CONNECTION, "Connected")
    healed()
    control.set_nic_ip_forwarding(RG, f"{vm}-nic-ext", False)
    outage("IPForwardingDisabled")
    control.set_nic_ip_forwarding(RG, f"{vm}-nic-ext", True)
    healed()
    control.set_guest(RG, vm, extendedNetworkAppliance="Off")
    outage("ApplianceNotRunning")
    control.set_guest(RG, vm, hypervRole=False)
    outage("HyperVRoleMissing")
    control.set_guest(RG, vm, hypervRole=True, extendedNetworkAppliance="Running")
    healed()
    assert events(kubectl, namespace, "Degraded")  # each outage announced on Ready's transition


def test_a_network_without_gateway_subnet_or_gateway_is_reported(
    xnet_operator, kubectl, namespace, control
):  # fmt: skip
    tag = namespace[-10:]
    b = (control.add_subnet(f"vnet-b-{tag}", "servers"), control.add_subnet(f"vnet-b-{tag}", "extended"))
    c = (control.add_subnet(f"vnet-c-{tag}", "servers"), control.add_subnet(f"vnet-c-{tag}", "extended"))
    control.add_subnet(f"vnet-c-{tag}", "GatewaySubnet")
    apply(
        kubectl,
        namespace,
        "xnet-nogwsubnet",
        azure={"subnetId": b[0]},
        extendedNetwork={"extendedSubnetId": b[1]},
    )
    apply(
        kubectl, namespace, "xnet-nogw", azure={"subnetId": c[0]}, extendedNetwork={"extendedSubnetId": c[1]}
    )
    for name, reason in (("xnet-nogwsubnet", "GatewaySubnetMissing"), ("xnet-nogw", "GatewayMissing")):
        obj = wait_reason(kubectl, namespace, name, reason, timeout=90)
        assert ready(obj)[:2] == ("False", "Degraded") and condition(obj, "VMProvisioned")["status"] == "True"
    assert not control.gateways()[1:]  # reported, never created: only the seeded gateway exists
