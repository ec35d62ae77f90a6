"""The operator killed, restarted and sharded, end to end (the module's stack: ``operator_stack``): one VM
per object, no status rewrite and one read per Azure resource after a restart, shards that leave each
other alone."""

from __future__ import annotations

import time
from collections import Counter

import yaml

from azure_edition_envtest.stack import operator_env, start_operator
from tests.conftest import SAMPLES
from tests.e2e.operator_stack import (  # noqa: F401 (its stack: the module fixtures)
    OWN_OPERATOR_PREFIX,
    apply_hotpatch_ready,
    arm,
    control,
    get,
    operator,
    operator_proc,
    own_operator,
    sample_docs,
    simulator,
    vm_calls,
    vm_name,
    wait_for,
)


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
