"""The operator end to end: real kube-apiserver, real Azure SDKs against the ARM simulator over HTTPS,
real QUIC. Each test gets a namespace; the simulator and the operator run once per module."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient

from azure_edition_envtest.stack import (
    Process,
    operator_env,
    simulator_timing_args,
    start_operator,
    start_simulator,
)
from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec
from azure_edition_operator.azure.specs import Owner, vm_identity, vm_name_for
from azure_edition_simulator.client import SimulatorControl
from tests.conftest import SAMPLES

RG = "rg-branch-a"
OWN_OPERATOR_PREFIX = "e2e-test-operator-killed"
E2E_TIME_SCALE = 0.1


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, dict[str, str]]]:
    # Azure's timing (durations, Retry-After 10-35 s or absent) shrunk for CI: VM create 3-6 s.
    proc, env = start_simulator(tmp_path_factory.mktemp("armsim"), *simulator_timing_args(E2E_TIME_SCALE))
    yield proc, env
    proc.stop()


@pytest.fixture(scope="module")
def control(simulator) -> SimulatorControl:
    return SimulatorControl.from_env(simulator[1])


@pytest.fixture(scope="module")
def arm(simulator):
    """Real (sync) SDK clients against the simulator, to look at Azure the way a user would."""
    env = simulator[1]
    common = {"connection_verify": env["ARMSIM_CA_CERT"]}
    credential = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
                                        authority=env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True,
                                        **common)  # fmt: skip
    kwargs = {"base_url": env["AZURE_RESOURCE_MANAGER_ENDPOINT"],
              "credential_scopes": [env["AZURE_RESOURCE_MANAGER_SCOPE"]], **common}  # fmt: skip
    sub = env["AZURE_SUBSCRIPTION_ID"]
    return ComputeManagementClient(credential, sub, **kwargs), NetworkManagementClient(
        credential, sub, **kwargs
    )


def exists(call: Callable[[], object]) -> bool:
    try:
        call()
    except ResourceNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def operator_proc(crd, kubeconfig: Path, simulator, tmp_path_factory) -> Iterator[Process]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    # Every namespace except those of tests that run an operator instance of their own.
    proc = start_operator(
        log, operator_env(kubeconfig, simulator[1]), "--namespace", f"!{OWN_OPERATOR_PREFIX}*"
    )
    yield proc
    proc.stop()
    print(proc.tail(80))


@pytest.fixture
def operator(operator_proc: Process) -> Process:
    assert operator_proc.alive(), operator_proc.tail()
    return operator_proc


def sample_docs(name: str) -> list[dict]:
    return list(yaml.safe_load_all((SAMPLES / f"{name}.yaml").read_text()))


def get(kubectl, namespace: str, name: str) -> dict:
    return json.loads(kubectl("get", "aevm", name, "-n", namespace, "-o", "json").stdout)


def wait_for(
    predicate: Callable[[], object], timeout: float = 60, every: float = 0.5, what: str = ""
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(every)


def condition(obj: dict, type_: str) -> dict | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def vm_name(obj: dict) -> str:
    return vm_name_for(Owner(obj["metadata"]["namespace"], obj["metadata"]["name"], obj["metadata"]["uid"]))


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


@contextlib.contextmanager
def own_operator(log: Path, kubeconfig: Path, simulator, namespace: str) -> Iterator[Process]:
    """An operator of the test's own, for ``namespace`` only (the module's operator leaves it alone)."""
    assert namespace.startswith(OWN_OPERATOR_PREFIX)
    proc = start_operator(log, operator_env(kubeconfig, simulator[1]), "--namespace", namespace)
    try:
        yield proc
    finally:
        proc.stop()


def apply_hotpatch_ready(kubectl, namespace: str, check_interval: str) -> None:
    docs = sample_docs("hotpatch")
    docs[1]["spec"]["checkInterval"] = check_interval
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))
    kubectl("wait", "--for=condition=Ready", "aevm/hotpatch", "-n", namespace, "--timeout=60s", timeout=90)


def test_operator_killed_during_provisioning_ends_with_one_vm(
    crd, kubeconfig, kubectl, namespace, simulator, control, tmp_path
):
    """An operator of its own (the shared one skips this namespace): slow provisioning, SIGKILL, restart."""
    control.set_provisioning_seconds(6)
    try:
        with own_operator(tmp_path / "op1.log", kubeconfig, simulator, namespace) as first:
            kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "plain-core.yaml"))
            name = vm_name(get(kubectl, namespace, "plain-core"))
            vm = wait_for(lambda: next((v for v in control.vms() if v["name"] == name), None),
                          what="the VM PUT")  # fmt: skip
            assert vm["provisioningState"] == "Creating"
            first.kill()
        with own_operator(tmp_path / "op2.log", kubeconfig, simulator, namespace):
            kubectl("wait", "--for=condition=Ready", "aevm/plain-core", "-n", namespace, "--timeout=90s",
                    timeout=120)  # fmt: skip
    finally:
        control.set_provisioning_seconds(1)
    vms = [v for v in control.vms() if v["name"] == name]
    assert len(vms) == 1 and vms[0]["provisioningState"] == "Succeeded"
    puts = control.accepted_vm_puts(name)
    assert len(puts) == 1  # the restarted operator waited for the in-flight create instead of re-sending it


def test_steady_state_writes_nothing(operator, kubectl, namespace, control):
    seq = control.last_seq()
    apply_hotpatch_ready(kubectl, namespace, check_interval="5s")
    name = vm_name(get(kubectl, namespace, "hotpatch"))
    ready_seq = control.last_seq()
    # Settled once the first check round after Ready has finished (a second one has started reading).
    wait_for(lambda: len(vm_calls(control, name, ready_seq)) >= 2, timeout=15, what="the first check round")
    before = get(kubectl, namespace, "hotpatch")
    seq, started = control.last_seq(), time.monotonic()
    wait_for(lambda: len(vm_calls(control, name, seq)) >= 4, timeout=30, what="three whole check rounds")
    after = get(kubectl, namespace, "hotpatch")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    calls = [r for r in control.requests(since=seq) if name in r.get("path", "")]
    assert [r for r in calls if r["method"] in ("PUT", "PATCH", "POST", "DELETE")] == []
    assert [r for r in calls if r["method"] == "GET"] == vm_calls(control, name, seq), "one VM read per round"
    assert time.monotonic() - started >= 3 * 5 * 0.9, "about one read per interval (jittered ±10%), not more"


def test_operator_killed_after_ready_restarts_without_writing(
    crd, kubeconfig, kubectl, namespace, simulator, control, tmp_path
):
    """Issue #15/#16: status after an operator restart equals status before it, byte for byte, and the
    restart writes nothing to Kubernetes (no status, no annotation) and nothing to Azure."""
    assert namespace.startswith(OWN_OPERATOR_PREFIX)
    with own_operator(tmp_path / "op1.log", kubeconfig, simulator, namespace) as first:
        apply_hotpatch_ready(kubectl, namespace, check_interval="5s")
        name = vm_name(get(kubectl, namespace, "hotpatch"))
        ready_seq = control.last_seq()
        # one check round after Ready (a second has started reading): it must not have changed anything either
        wait_for(lambda: len(vm_calls(control, name, ready_seq)) >= 2, timeout=15, what="a check round")
        before = get(kubectl, namespace, "hotpatch")
        first.kill()
    seq = control.last_seq()
    with own_operator(tmp_path / "op2.log", kubeconfig, simulator, namespace) as second:
        # the resumed pass, then two whole check rounds (a third has started reading)
        wait_for(
            lambda: len(vm_calls(control, name, seq)) >= 4, timeout=30, what="the resumed pass and two rounds"
        )
        assert second.alive(), second.tail()
        after = get(kubectl, namespace, "hotpatch")
    assert after["status"] == before["status"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], "nothing written"
    calls = [r for r in control.requests(since=seq) if name in r.get("path", "")]
    assert [r for r in calls if r["method"] != "GET"] == []
    assert calls, "the restarted operator did look at Azure"


def test_operator_killed_then_resumed_reads_each_azure_resource_once(
    crd, kubeconfig, kubectl, namespace, simulator, control, tmp_path
):
    """Issue #15 (ARM reads per VM): a resume pass reads each of the object's Azure resources once; the
    capability check folded into it uses the pass's own read of the VM (with its instance view)."""
    assert namespace.startswith(OWN_OPERATOR_PREFIX)
    with own_operator(tmp_path / "op1.log", kubeconfig, simulator, namespace) as first:
        apply_hotpatch_ready(kubectl, namespace, check_interval="10m")  # no check round in this test
        first.kill()
    name = vm_name(get(kubectl, namespace, "hotpatch"))
    seq = control.last_seq()
    log = tmp_path / "op2.log"
    with own_operator(log, kubeconfig, simulator, namespace) as second:
        wait_for(lambda: "reconciled: Ready" in log.read_text(), what="the resume pass, finished")
        assert second.alive(), second.tail()
    gets = Counter(
        r["path"]
        for r in control.requests(since=seq)
        if r["method"] == "GET" and r["status"] < 400 and name in r["path"]
    )
    assert any(path.endswith(f"/virtualMachines/{name}") for path in gets), gets
    assert set(gets.values()) == {1}, gets


def test_operator_killed_in_one_shard_leaves_the_other_shard_alone(
    crd, kubeconfig, kubectl, namespace, second_namespace, simulator, control, tmp_path
):
    """Sharding (issue #15, docs/peering.md): two operators, each given its own namespace set, split the
    fleet: each object is reconciled by exactly one of them (one VM PUT each, only its own objects in
    each log), and when one shard is down the other does not take over its objects."""
    shard_a, shard_b = namespace, second_namespace
    assert shard_a.startswith(OWN_OPERATOR_PREFIX) and shard_b.startswith(OWN_OPERATOR_PREFIX)
    env = operator_env(kubeconfig, simulator[1])
    a = start_operator(tmp_path / "a.log", env, "--namespace", shard_a)
    b = start_operator(tmp_path / "b.log", operator_env(kubeconfig, simulator[1]), "--namespace", shard_b)
    try:
        for ns in (shard_a, shard_b):
            kubectl("apply", "-n", ns, "-f", str(SAMPLES / "plain-core.yaml"))
        for ns in (shard_a, shard_b):
            kubectl(
                "wait", "--for=condition=Ready", "aevm/plain-core", "-n", ns, "--timeout=90s", timeout=120
            )
        names = {ns: vm_name(get(kubectl, ns, "plain-core")) for ns in (shard_a, shard_b)}
        a.kill()
        docs = sample_docs("plain-core")
        docs[-1]["metadata"]["name"] = "after-shard-a-died"
        kubectl("apply", "-n", shard_a, "-f", "-", input=yaml.safe_dump_all(docs))
        time.sleep(8)
        orphan = get(kubectl, shard_a, "after-shard-a-died")
        assert b.alive(), b.tail()
    finally:
        a.stop()
        b.stop()
    assert "status" not in orphan and not orphan["metadata"].get("finalizers"), (
        "shard B left shard A's object alone"
    )
    for ns, name in names.items():
        puts = control.accepted_vm_puts(name)
        assert len(puts) == 1, (ns, puts)
    log_a, log_b = (tmp_path / "a.log").read_text(), (tmp_path / "b.log").read_text()
    assert names[shard_a] in log_a and names[shard_a] not in log_b
    assert names[shard_b] in log_b and names[shard_b] not in log_a


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


def vm_calls(control: SimulatorControl, name: str, since: int, writes: bool = False) -> list[dict]:
    calls = [r for r in control.requests(since=since) if f"/virtualMachines/{name}" in r.get("path", "")]
    return [r for r in calls if r["method"] != "GET"] if writes else calls


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
