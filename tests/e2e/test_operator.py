"""The operator end to end: real kube-apiserver, real Azure SDKs against the ARM simulator over HTTPS,
real QUIC. Each test gets a namespace; the simulator and the operator run once per module
(``operator_stack``). Restarts, kills and shards are in ``test_operator_restarts``."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec
from azure_edition_operator.azure.specs import Owner, vm_identity
from tests.conftest import SAMPLES
from tests.e2e.operator_stack import (  # noqa: F401 (its stack: the module fixtures)
    RG,
    arm,
    condition,
    control,
    exists,
    get,
    operator,
    operator_proc,
    sample_docs,
    simulator,
    vm_calls,
    vm_name,
    wait_for,
)


def test_sample_reaches_ready_with_status_and_azure_matching(operator, kubectl, namespace, arm):
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "hotpatch.yaml"))
    kubectl("wait", "--for=condition=Ready", "aevm/hotpatch", "-n", namespace, "--timeout=60s", timeout=90)
    obj = get(kubectl, namespace, "hotpatch")
    status = obj["status"]
    assert status["phase"] == "Ready" and status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["image"]["sku"] == "2025-datacenter-azure-edition-core"
    assert status["vm"]["vmId"] and status["vm"]["resourceId"].endswith(vm_name(obj))
    assert status["vm"]["privateIPAddress"].startswith("127.")
    assert "azureedition.io/finalizer" in obj["metadata"]["finalizers"]
    assert not any(k.startswith("kopf") for k in status), "kopf progress must live in annotations"
    vm = arm[0].virtual_machines.get(RG, vm_name(obj)).as_dict()
    props = vm["properties"]
    assert props["storageProfile"]["imageReference"]["sku"] == "2025-datacenter-azure-edition-core"
    patch = props["osProfile"]["windowsConfiguration"]["patchSettings"]
    assert patch["patchMode"] == "AutomaticByPlatform" and patch["enableHotpatching"] is True
    assert patch["automaticByPlatformSettings"]["bypassPlatformSafetyChecksOnUserSchedule"] is False
    meta = obj["metadata"]
    assert vm["tags"]["azureedition.io_owner"] == f"{meta['namespace']}/{meta['name']}"
    assert "azureedition.io_cluster" in vm["tags"] and "azureedition.io_owner-uid" not in vm["tags"]
    assert vm["tags"]["managed-by"] == "azure-edition-operator"
    assert "password" not in json.dumps(status).lower()


def test_vm_size_change_reaches_azure(operator, kubectl, namespace, arm):
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "plain-core.yaml"))
    kubectl("wait", "--for=condition=Ready", "aevm/plain-core", "-n", namespace, "--timeout=60s", timeout=90)
    kubectl("patch", "aevm", "plain-core", "-n", namespace, "--type=merge", "-p",
            json.dumps({"spec": {"azure": {"vmSize": "Standard_D4as_v5", "tags": {"env": "test"}}}}))  # fmt: skip
    obj = wait_for(lambda: (o := get(kubectl, namespace, "plain-core"))["status"].get("observedGeneration") == 2
                   and condition(o, "Ready")["status"] == "True" and o, what="generation 2 Ready")  # fmt: skip
    vm = arm[0].virtual_machines.get(RG, vm_name(obj))
    assert vm.hardware_profile.vm_size == "Standard_D4as_v5"
    assert vm.tags["env"] == "test"


@pytest.mark.parametrize("policy", ["Delete", "Orphan"])
def test_delete_policies(operator, kubectl, namespace, arm, policy):
    compute, network = arm
    docs = sample_docs("smb-over-quic")  # has a public IP: VM, NIC, public IP and OS disk to clean up
    docs[1]["spec"]["deletionPolicy"] = policy
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))
    wait_for(
        lambda: (
            (condition(get(kubectl, namespace, "smb-over-quic"), "VMProvisioned") or {}).get("status")
            == "True"
        ),
        what="VMProvisioned",
    )
    obj = get(kubectl, namespace, "smb-over-quic")
    assert condition(obj, "VMProvisioned")["status"] == "True", obj["status"]
    ids = vm_identity(
        Owner(namespace, "smb-over-quic", obj["metadata"]["uid"]),
        AzureEditionVMSpec.model_validate(docs[1]["spec"]).azure,
    )
    resources = {
        "vm": lambda: compute.virtual_machines.get(RG, ids.vm_name),
        "disk": lambda: compute.disks.get(RG, ids.os_disk_name),
        "nic": lambda: network.network_interfaces.get(RG, ids.nic_name),
        "pip": lambda: network.public_ip_addresses.get(RG, ids.public_ip_name),
    }
    assert all(exists(get_) for get_ in resources.values())
    kubectl("delete", "aevm", "smb-over-quic", "-n", namespace, "--timeout=90s", timeout=120)
    if policy == "Delete":
        assert [kind for kind, get_ in resources.items() if exists(get_)] == []
    else:
        for kind, get_ in resources.items():
            tags = get_().tags or {}
            assert not {"azureedition.io_cluster", "azureedition.io_owner", "managed-by"} & set(tags), (
                kind,
                tags,
            )
            if kind != "disk":  # an OS disk created with the VM carries no tags of its own
                assert tags.get("costCenter") == "42", (kind, tags)  # the user's own tags stay


def test_missing_secret_is_reported_then_recovers(operator, kubectl, namespace):
    secret, vm = sample_docs("plain-core")
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(vm))
    obj = wait_for(
        lambda: (o := get(kubectl, namespace, "plain-core")) and condition(o, "Ready") and o, what="status"
    )
    ready = condition(obj, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "AdminCredentialsMissing"
    assert "plain-core-admin" in ready["message"]
    generation = obj["metadata"]["generation"]
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(secret))
    kubectl("wait", "--for=condition=Ready", "aevm/plain-core", "-n", namespace, "--timeout=60s", timeout=90)
    assert get(kubectl, namespace, "plain-core")["metadata"]["generation"] == generation  # resource untouched
    events = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    assert "Demo-Only-Passw0rd" not in events
    missing = [e for e in json.loads(events)["items"] if e["reason"] == "AdminCredentialsMissing"]
    assert len(missing) == 1, missing  # once, not once per retry


# ----------------------------------------------------------------------------- what the loop guarantees

CHECK_SECONDS = 5.0
"""spec.checkInterval of the tests below; the module's operator resyncs hourly (the default), so what they
see within one interval was seen by the check round, not by a resync."""
WITHIN_ONE_INTERVAL = CHECK_SECONDS * 1.1 + 5  # the jittered interval, then a pass and a status write


def apply_plain_checked(kubectl, namespace: str, **azure) -> dict:
    secret, vm = sample_docs("plain-core")
    vm["spec"]["checkInterval"] = f"{CHECK_SECONDS:g}s"
    vm["spec"]["azure"].update(azure)
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([secret, vm]))
    kubectl("wait", "--for=condition=Ready", "aevm/plain-core", "-n", namespace, "--timeout=90s", timeout=120)
    return get(kubectl, namespace, "plain-core")


def events(kubectl, namespace: str, reason: str) -> list[dict]:
    items = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e for e in items if e["reason"] == reason]


def reason_of(kubectl, namespace: str, type_: str) -> str | None:
    return (condition(get(kubectl, namespace, "plain-core"), type_) or {}).get("reason")


def set_policy(kubectl, namespace: str, policy: str) -> None:
    kubectl("patch", "aevm", "plain-core", "-n", namespace, "--type=merge",
            "-p", json.dumps({"spec": {"managementPolicy": policy}}))  # fmt: skip


def test_a_plain_vm_is_read_every_check_interval(operator, kubectl, namespace, control, arm):
    """No capabilities and no resync due: a VM stopped, left without its NIC, then deleted outside the
    operator shows in Ready within one checkInterval each time, naming the real cause."""
    obj = apply_plain_checked(kubectl, namespace, onMissing="Report")
    name = vm_name(obj)
    control.out_of_band("stop", RG, name)
    wait_for(lambda: reason_of(kubectl, namespace, "Ready") == "VMStopped", timeout=WITHIN_ONE_INTERVAL,
             every=0.3, what="Ready=False VMStopped within one check interval")  # fmt: skip
    stopped = get(kubectl, namespace, "plain-core")
    assert stopped["status"]["vm"]["powerState"] == "deallocated" and stopped["status"]["phase"] == "Degraded"
    control.out_of_band("start", RG, name)
    wait_for(lambda: reason_of(kubectl, namespace, "Ready") == "Ready", timeout=WITHIN_ONE_INTERVAL, every=0.3,
             what="Ready again within one check interval")  # fmt: skip
    nic = arm[0].virtual_machines.get(RG, name).network_profile.network_interfaces[0].id
    control.out_of_band("remove-nic", RG, name, nic_id=nic)
    wait_for(lambda: reason_of(kubectl, namespace, "Ready") == "NetworkInterfaceMissing",
             timeout=WITHIN_ONE_INTERVAL, every=0.3, what="NetworkInterfaceMissing")  # fmt: skip
    ready = condition(get(kubectl, namespace, "plain-core"), "Ready")
    assert ready["status"] == "False" and nic.rsplit("/", 1)[1] in ready["message"], ready
    control.out_of_band("delete", RG, name)
    wait_for(lambda: reason_of(kubectl, namespace, "VMProvisioned") == "VMNotFound",
             timeout=WITHIN_ONE_INTERVAL, every=0.3, what="VMNotFound within one check interval")  # fmt: skip
    assert condition(get(kubectl, namespace, "plain-core"), "Ready")["status"] == "False"


def test_a_resize_outside_is_corrected_within_one_interval_and_announced_once(
    operator, kubectl, namespace, control, arm
):
    obj = apply_plain_checked(kubectl, namespace)
    name = vm_name(obj)
    seq = control.last_seq()
    control.out_of_band("resize", RG, name, size="Standard_D4as_v5")
    wait_for(lambda: arm[0].virtual_machines.get(RG, name).hardware_profile.vm_size == "Standard_D2as_v5",
             timeout=WITHIN_ONE_INTERVAL + 5, what="the size restored")  # fmt: skip
    (announced,) = wait_for(
        lambda: events(kubectl, namespace, "DriftCorrected"), what="a DriftCorrected Event"
    )
    assert "vmSize Standard_D4as_v5" in announced["message"] and announced["type"] == "Warning"
    assert len(vm_calls(control, name, seq, writes=True)) == 1  # one correction
    wait_for(lambda: len(vm_calls(control, name, seq)) >= 4, timeout=3 * CHECK_SECONDS,
             what="two more check rounds")  # fmt: skip
    assert len(events(kubectl, namespace, "DriftCorrected")) == 1
    assert vm_calls(control, name, seq, writes=True)[1:] == []


def test_paused_makes_no_azure_call_and_its_delete_leaves_azure(operator, kubectl, namespace, control):
    obj = apply_plain_checked(kubectl, namespace)
    name = vm_name(obj)
    set_policy(kubectl, namespace, "Paused")
    wait_for(lambda: reason_of(kubectl, namespace, "Synced") == "ReconcilePaused", what="Synced=False paused")
    paused = get(kubectl, namespace, "plain-core")
    assert (
        condition(paused, "Synced")["status"] == "False"
        and "no Azure call" in condition(paused, "Synced")["message"]
    )
    assert (condition(paused, "Reconciling")["status"], condition(paused, "Stalled")["status"]) == (
        "False",
        "False",
    )
    assert condition(paused, "Ready")["status"] == "True"  # as last read
    seq = control.last_seq()
    control.out_of_band("stop", RG, name)  # paused: not even looked at
    time.sleep(2 * CHECK_SECONDS * 1.1)  # the window that must stay silent: two check intervals
    assert vm_calls(control, name, seq) == []
    assert (
        get(kubectl, namespace, "plain-core")["metadata"]["resourceVersion"]
        == paused["metadata"]["resourceVersion"]
    )
    kubectl("delete", "aevm", "plain-core", "-n", namespace, "--timeout=30s", timeout=60)
    assert events(kubectl, namespace, "AzureLeftAsIs")[0]["type"] == "Normal"
    assert [v for v in control.vms() if v["name"] == name], "the VM is still there"
    assert vm_calls(control, name, seq) == []


def test_observe_reads_checks_and_writes_nothing(operator, kubectl, namespace, control, arm):
    obj = apply_plain_checked(kubectl, namespace)
    name = vm_name(obj)
    set_policy(kubectl, namespace, "Observe")
    wait_for(
        lambda: reason_of(kubectl, namespace, "Synced") == "ObserveOnly", what="Synced=False ObserveOnly"
    )
    seq = control.last_seq()
    control.out_of_band("resize", RG, name, size="Standard_D4as_v5")
    wait_for(lambda: "vmSize Standard_D4as_v5" in condition(get(kubectl, namespace, "plain-core"), "Synced")["message"],
             timeout=WITHIN_ONE_INTERVAL, what="the drift reported in Synced, not corrected")  # fmt: skip
    assert condition(get(kubectl, namespace, "plain-core"), "Synced")["reason"] == "ObserveOnly"
    assert vm_calls(control, name, seq, writes=True) == []
    assert arm[0].virtual_machines.get(RG, name).hardware_profile.vm_size == "Standard_D4as_v5"
    kubectl("delete", "aevm", "plain-core", "-n", namespace, "--timeout=30s", timeout=60)
    assert events(kubectl, namespace, "AzureLeftAsIs")
    assert [v for v in control.vms() if v["name"] == name] and vm_calls(control, name, seq, writes=True) == []
