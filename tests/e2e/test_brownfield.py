"""Brownfield, end to end (issue #24 "Done when"): the VMs users already have, and a cluster rebuilt from
Git. A real kube-apiserver (the session's, or private ones for the rebuild), the operator as a process,
the ARM simulator over HTTPS with Azure's timing shrunk (operator_stack's module fixtures), and VMs made outside the
operator by the simulator's ``outside-vms`` (as the portal, Terraform or Bicep leave them).

(a) the same manifests re-applied to a fresh control plane against the same Azure: every object Ready
    again, zero VM PUTs, the VM ids unchanged;
(b) three outside VMs imported with ``kubectl aevm import``, observed (zero Azure writes over several
    check intervals while their checks run), then switched to ``managementPolicy: Full`` with at most
    one write per Azure resource;
(c) a paused object makes zero Azure calls, and its status says it is paused;
(d) deleting an observed object leaves every Azure resource in place.

Azure calls are counted with the simulator's own request log (``SimulatorControl.requests``): outside
VMs never enter it, so what it holds is the operator's (the import's reads are taken before counting).
A write is any PUT, PATCH or DELETE, or a POST that can change the VM (``installPatches``, or a Run
Command that changed the guest: the guest's state is compared before and after).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from azure_edition_envtest.controlplane import ControlPlane
from azure_edition_envtest.stack import Process, operator_env, start_operator
from azure_edition_simulator.client import SimulatorControl
from tests.conftest import SAMPLES
from tests.e2e.operator_stack import arm, condition, control, get, simulator  # noqa: F401 (its stack)

CHECK_INTERVAL = "5s"
CHECK_SECONDS = 5.0
REPO = Path(__file__).resolve().parents[2]
CRDS = (
    REPO / "crds" / "azureeditionvms.azureedition.io.yaml",
    REPO / "crds" / "tenantpolicies.azureedition.io.yaml",
)
PLUGIN = Path(sys.executable).parent / "kubectl-aevm"
# POSTs that only read: an assessment, and a Run Command (its effect on the guest is checked separately).
READ_ONLY_POSTS = ("/assessPatches", "/runCommand")


# ----------------------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def sim_env(simulator) -> dict[str, str]:
    return simulator[1]


def cluster_id() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def operator_for(
    log: Path, kubeconfig: Path, sim_env: dict[str, str], namespace: str, cluster: str
) -> Iterator[Process]:
    """An operator of the test's own, for ``namespace`` only, with cluster id ``cluster``."""
    proc = start_operator(
        log, operator_env(kubeconfig, sim_env, AEO_CLUSTER_ID=cluster), "--namespace", namespace
    )
    try:
        yield proc
    finally:
        proc.stop()
        print(proc.tail(60))


def tenant_policy(kubectl, namespace: str, subscription: str) -> None:
    """Let ``namespace`` use the simulator's subscription (needed where the admission policies are
    installed, harmless where they are not)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS[1]))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/tenantpolicies.azureedition.io",
        "--timeout=60s",
        timeout=90,
    )
    policy = {
        "apiVersion": "azureedition.io/v1alpha1",
        "kind": "TenantPolicy",
        "metadata": {"name": namespace},
        "spec": {"namespaces": [namespace], "subscriptionIds": [subscription], "resourceGroups": ["*"],
                 "subnetIdPrefixes": [f"/subscriptions/{subscription}/"]},
    }  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(policy))


@pytest.fixture
def tenant(crd, kubectl, namespace, sim_env) -> Iterator[str]:
    tenant_policy(kubectl, namespace, sim_env["AZURE_SUBSCRIPTION_ID"])
    yield namespace
    kubectl("delete", "tenantpolicy", namespace, "--ignore-not-found", check=False)


@pytest.fixture
def resource_group(control) -> str:
    """A resource group of the test's own: its requests are told apart by path."""
    name = f"rg-brown-{uuid.uuid4().hex[:6]}"
    control.add_resource_group(name)
    return name


# ----------------------------------------------------------------------------- reading Azure's log


def calls_in(control: SimulatorControl, since: int, resource_group: str) -> list[dict[str, Any]]:
    """The ARM requests about ``resource_group`` since sequence number ``since``."""
    needle = f"/resourcegroups/{resource_group.lower()}/"
    return [r for r in control.requests(since) if needle in r["path"].lower()]


def writes_in(calls: list[dict[str, Any]]) -> list[str]:
    """The calls that are (or may be) writes, as "METHOD path status" lines for a readable failure."""
    writes = []
    for r in calls:
        read_only_post = r["method"] == "POST" and r["path"].endswith(READ_ONLY_POSTS)
        if r["method"] in ("PUT", "PATCH", "DELETE") or (r["method"] == "POST" and not read_only_post):
            writes.append(f"{r['method']} {r['path']} {r['status']}")
    return writes


def guest_state(control: SimulatorControl, resource_group: str, vm: str) -> dict[str, Any]:
    """What a Run Command could change in the guest (SMB over QUIC, mappings, the certificate store)."""
    guest = control.guest(resource_group, vm)
    return {k: v for k, v in guest.items() if k not in ("lastAssessment", "patches", "assessedAt")}


# ----------------------------------------------------------------------------- Kubernetes


def conditions_text(obj: dict[str, Any]) -> str:
    return "; ".join(f"{c['type']}={c['status']} {c['reason']}: {c.get('message', '')}"
                     for c in obj.get("status", {}).get("conditions", []))  # fmt: skip


def wait_for_all(
    kubectl,
    namespace: str,
    names: list[str],
    done: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 90,
) -> dict[str, dict[str, Any]]:
    """Every object satisfying ``done``; on timeout, or as soon as one is Stalled (waiting for a person:
    no use waiting longer), fail with each object's conditions (the reason)."""
    deadline = time.monotonic() + timeout
    while True:
        objs = {n: get(kubectl, namespace, n) for n in names}
        if all(done(o) for o in objs.values()):
            return objs
        stalled = any(
            (condition(o, "Stalled") or {}).get("status") == "True" for o in objs.values() if not done(o)
        )
        if stalled or time.monotonic() > deadline:
            pending = {n: conditions_text(o) or "no status" for n, o in objs.items() if not done(o)}
            why = "an object is Stalled" if stalled else "timed out"
            raise AssertionError(f"{why} waiting for {what}: {json.dumps(pending, indent=1)}")
        time.sleep(0.5)


def observed(obj: dict[str, Any]) -> bool:
    """The operator looked at the object and reported (for this generation)."""
    status = obj.get("status") or {}
    return (
        bool(status.get("conditions")) and status.get("observedGeneration") == obj["metadata"]["generation"]
    )


def synced(reason: str | None, status: str = "False") -> Callable[[dict[str, Any]], bool]:
    """The Synced condition has ``status`` (and ``reason``, when one is given)."""

    def check(obj: dict[str, Any]) -> bool:
        found = condition(obj, "Synced") or {}
        return found.get("status") == status and (reason is None or found.get("reason") == reason)

    return check


def ready(obj: dict[str, Any]) -> bool:
    return (condition(obj, "Ready") or {}).get("status") == "True" and observed(obj)


def admin_secret(kubectl, namespace: str, name: str) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
              "stringData": {"username": "azureadmin", "password": "Brown-Field-Passw0rd!"}}  # fmt: skip
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(secret))


def observe_manifest(name: str, namespace: str, sim_env: dict[str, str], resource_group: str, vm: str,
                     policy: str = "Observe", **spec: Any) -> dict[str, Any]:  # fmt: skip
    """An AzureEditionVM for an existing VM, as a user writes it (what import would print)."""
    sub = sim_env["AZURE_SUBSCRIPTION_ID"]
    return {
        "apiVersion": "azureedition.io/v1alpha1",
        "kind": "AzureEditionVM",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "managementPolicy": policy,
            "capabilities": spec.pop("capabilities", []),
            "image": spec.pop("image", {"windowsServerVersion": "2022", "experience": "DesktopExperience"}),
            "azure": {"subscriptionId": sub, "resourceGroup": resource_group, "location": "westeurope",
                      "vmName": vm, "adopt": True, "subnetId": sim_env["ARMSIM_SUBNET_ID"]},
            "adminCredentialsSecretRef": {"name": f"{name}-admin"},
            "checkInterval": CHECK_INTERVAL,
            **spec,
        },
    }  # fmt: skip


# ----------------------------------------------------------------------------- (b) import, observe, full


def import_env(cluster, sim_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AEO_"))}
    env.update(sim_env)
    env.update({
        "AZURE_CREDENTIAL_MODE": "client-secret",
        "AZURE_CA_BUNDLE": sim_env["ARMSIM_CA_CERT"],
        "KUBECONFIG": str(cluster.kubeconfig),
        "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    })  # fmt: skip
    return env


def vm_doc(control: SimulatorControl, resource_group: str, vm: str) -> dict[str, Any]:
    """The VM as ARM's GET returns it, read through the control API (never in the request log)."""
    return control.vm_document(resource_group, vm)


def test_outside_vms_are_imported_observed_without_writes_then_fully_managed(
    cluster, kubectl, tenant, sim_env, control, resource_group, tmp_path
):
    namespace = tenant
    made = {
        "FS-Core01": control.create_outside_vm("FS-Core01", "2022-datacenter-azure-edition-core", hotpatch=True,
                                               resourceGroup=resource_group, tags={"site": "branch-a"}),
        "fs-desk-25": control.create_outside_vm("fs-desk-25", "2025-datacenter-azure-edition-smalldisk",
                                                resourceGroup=resource_group, publicIp=True),
        "fs_hp_22": control.create_outside_vm("fs_hp_22", "2022-datacenter-azure-edition-hotpatch", hotpatch=True,
                                              resourceGroup=resource_group),
    }  # fmt: skip
    vm_ids = {name: vm["properties"]["vmId"] for name, vm in made.items()}
    tags_before = {name: vm["tags"] for name, vm in made.items()}

    # kubectl aevm import, through kubectl's plugin lookup, against the simulator.
    imported = subprocess.run(
        [str(cluster.kubectl_binary), "aevm", "import", "-g", resource_group, "-n", namespace],
        capture_output=True, text=True, env=import_env(cluster, sim_env), timeout=120,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    # The output as printed (comments and all) is valid for the CRD on the real API server.
    kubectl("apply", "--dry-run=server", "-f", "-", input=imported.stdout)
    docs = [d for d in yaml.safe_load_all(imported.stdout) if d]
    by_vm = {d["spec"]["azure"]["vmName"]: d for d in docs}
    assert set(by_vm) == set(made), imported.stdout
    assert by_vm["FS-Core01"]["spec"]["capabilities"] == ["Hotpatch"]
    assert (
        by_vm["fs-desk-25"]["spec"]["capabilities"] == [] and by_vm["fs-desk-25"]["spec"]["azure"]["publicIP"]
    )
    assert all(d["spec"]["managementPolicy"] == "Observe" and d["spec"]["azure"]["adopt"] for d in docs)
    names = [d["metadata"]["name"] for d in docs]
    for doc in docs:
        admin_secret(kubectl, namespace, doc["spec"]["adminCredentialsSecretRef"]["name"])
        doc["spec"]["checkInterval"] = CHECK_INTERVAL  # several check rounds within the test
    guests_before = {vm: guest_state(control, resource_group, vm) for vm in made}

    with operator_for(tmp_path / "operator.log", cluster.kubeconfig, sim_env, namespace, cluster_id()) as op:
        seq = control.last_seq()  # after the import's reads: from here on, every call is the operator's
        kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        wait_for_all(kubectl, namespace, names, observed, "the operator to observe each imported VM")
        time.sleep(3 * (CHECK_SECONDS + 0.5))  # three check intervals
        assert op.alive(), op.tail()
        calls = calls_in(control, seq, resource_group)
        assert writes_in(calls) == [], "managementPolicy Observe wrote to Azure"
        for vm in made:  # the checks ran: each VM was read, repeatedly
            reads = [
                r for r in calls if r["method"] == "GET" and r["path"].endswith(f"/virtualMachines/{vm}")
            ]
            assert len(reads) >= 2, (vm, [f"{r['method']} {r['path']}" for r in calls])
        assert {vm: guest_state(control, resource_group, vm) for vm in made} == guests_before
        assert {vm: vm_doc(control, resource_group, vm)["tags"] for vm in made} == tags_before, (
            "Observe tagged"
        )
        objs = wait_for_all(
            kubectl, namespace, names, synced("ObserveOnly"), "Synced=False ObserveOnly", timeout=10
        )
        for obj in objs.values():
            assert obj["status"]["vm"]["vmId"] == vm_ids[obj["spec"]["azure"]["vmName"]]

        # Full management: at most one write per Azure resource, nothing created, nothing deleted.
        seq = control.last_seq()
        vms_before = {v["id"].lower() for v in control.vms()}
        for name in names:
            kubectl("patch", "aevm", name, "-n", namespace, "--type=merge", "-p",
                    json.dumps({"spec": {"managementPolicy": "Full"}}))  # fmt: skip
        wait_for_all(
            kubectl,
            namespace,
            names,
            lambda o: ready(o) and condition(o, "Synced") is None,
            "Ready, Synced gone (Full)",
        )
        time.sleep(CHECK_SECONDS + 0.5)  # a check round after: it must not write again
        writes = writes_in(calls_in(control, seq, resource_group))
        assert not [w for w in writes if w.startswith("DELETE")], writes
        # A refused attempt is not a write: the azure profile answers a VM PATCH 429 RetryableError now
        # and then (eventual consistency of its NICs), and the operator retries the same PATCH.
        per_resource: dict[str, int] = {}
        for _method, path, status in (line.split(" ") for line in writes):
            if int(status) < 400:
                per_resource[path.lower()] = per_resource.get(path.lower(), 0) + 1
            else:
                assert int(status) in (409, 429), writes  # only Azure's "later" answers are refused
        assert all(n <= 1 for n in per_resource.values()), (per_resource, writes)
        assert {v["id"].lower() for v in control.vms()} == vms_before, "a VM was created or deleted"
        for vm in made:
            doc = vm_doc(control, resource_group, vm)
            assert doc["properties"]["vmId"] == vm_ids[vm], "the VM was recreated"
            assert doc["tags"].get("azureedition.io_owner", "").startswith(f"{namespace}/"), doc["tags"]
            assert doc["tags"].get("managed-by") == "azure-edition-operator", doc["tags"]
        assert (
            vm_doc(control, resource_group, "FS-Core01")["tags"].get("site") == "branch-a"
        )  # the user's tag stays


def test_imported_manifests_of_every_azure_edition_image_pass_the_api_server_as_printed(
    cluster, kubectl, tenant, sim_env, control, resource_group
):
    """Every Azure Edition image of the simulator's catalog, with and without Hotpatch, a public IP and
    tags or none: `kubectl aevm import`'s output, comments and all, passes the CRD's schema and CEL rules
    (and the admission policies, where installed) on the real API server, and creates the objects."""
    from azure_edition_simulator.images import CATALOG

    skus = [i.sku for i in CATALOG if "azure-edition" in i.sku]
    for index, image in enumerate(i for i in CATALOG if i.sku in skus):
        for hotpatch in {False, image.hotpatch_capable}:
            control.create_outside_vm(f"ae{index:02d}-{'hp' if hotpatch else 'plain'}", image.sku, hotpatch=hotpatch,
                                      resourceGroup=resource_group, publicIp=index % 2 == 0,
                                      tags={"site": f"branch-{index}"} if index % 3 else {})  # fmt: skip
    control.create_outside_vm("classic", "2022-datacenter-g2", resourceGroup=resource_group)
    imported = subprocess.run(
        [str(cluster.kubectl_binary), "aevm", "import", "-g", resource_group, "-n", tenant],
        capture_output=True, text=True, env=import_env(cluster, sim_env), timeout=120,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    docs = [d for d in yaml.safe_load_all(imported.stdout) if d]
    assert len(docs) == sum(2 if i.hotpatch_capable else 1 for i in CATALOG if i.sku in skus)
    assert "1 other VM(s)" in imported.stdout  # the classic image is counted, not imported
    hotpatch = {d["spec"]["azure"]["vmName"] for d in docs if d["spec"]["capabilities"] == ["Hotpatch"]}
    assert hotpatch == {
        d["spec"]["azure"]["vmName"] for d in docs if d["spec"]["azure"]["vmName"].endswith("-hp")
    }
    kubectl("apply", "--dry-run=server", "-f", "-", input=imported.stdout)
    kubectl("create", "-f", "-", input=imported.stdout)  # as created, no operator here to act on them
    stored = json.loads(kubectl("get", "aevm", "-n", tenant, "-o", "json").stdout)["items"]
    assert {o["spec"]["azure"]["vmName"] for o in stored} == {d["spec"]["azure"]["vmName"] for d in docs}


# ----------------------------------------------------------------------------- (c) paused


def test_a_paused_object_makes_no_azure_call_and_says_so(
    cluster, kubectl, tenant, sim_env, control, resource_group, tmp_path
):
    namespace = tenant
    control.create_outside_vm("fs-paused", "2022-datacenter-azure-edition-core", hotpatch=True,
                              resourceGroup=resource_group)  # fmt: skip
    before = vm_doc(control, resource_group, "fs-paused")
    manifest = observe_manifest("fs-paused", namespace, sim_env, resource_group, "fs-paused", policy="Paused",
                                capabilities=["Hotpatch"], image={"windowsServerVersion": "2022", "experience": "Core"})  # fmt: skip
    admin_secret(kubectl, namespace, "fs-paused-admin")
    with operator_for(tmp_path / "operator.log", cluster.kubeconfig, sim_env, namespace, cluster_id()) as op:
        seq = control.last_seq()
        kubectl("apply", "-f", "-", input=json.dumps(manifest))
        try:  # the status first (it comes without an Azure call), the calls are judged below in any case
            wait_for_all(kubectl, namespace, ["fs-paused"], synced("ReconcilePaused"), "Synced=False ReconcilePaused",
                         timeout=20)  # fmt: skip
            not_said: AssertionError | None = None
        except AssertionError as err:
            not_said = err
        time.sleep(2 * (CHECK_SECONDS + 0.5))  # two check intervals: nothing runs while paused
        assert op.alive(), op.tail()
        calls = calls_in(control, seq, resource_group)
    assert [f"{r['method']} {r['path']}" for r in calls] == [], "a paused object called Azure"
    if not_said is not None:
        raise not_said
    assert vm_doc(control, resource_group, "fs-paused") == before


# ----------------------------------------------------------------------------- (d) delete observed


def test_deleting_an_observed_object_leaves_every_azure_resource_in_place(
    cluster, kubectl, tenant, sim_env, control, resource_group, arm, tmp_path
):
    namespace = tenant
    made = control.create_outside_vm("fs-keep", "2025-datacenter-azure-edition", resourceGroup=resource_group,
                                     publicIp=True, tags={"costCenter": "42"})  # fmt: skip
    manifest = observe_manifest("fs-keep", namespace, sim_env, resource_group, "fs-keep",
                                image={"windowsServerVersion": "2025", "experience": "DesktopExperience"})  # fmt: skip
    manifest["spec"]["azure"]["publicIP"] = True
    admin_secret(kubectl, namespace, "fs-keep-admin")
    with operator_for(tmp_path / "operator.log", cluster.kubeconfig, sim_env, namespace, cluster_id()):
        seq = control.last_seq()
        kubectl("apply", "-f", "-", input=json.dumps(manifest))
        wait_for_all(kubectl, namespace, ["fs-keep"], observed, "the operator to observe the VM")
        kubectl("delete", "aevm", "fs-keep", "-n", namespace, "--timeout=60s", timeout=90)
        writes = writes_in(calls_in(control, seq, resource_group))
    assert writes == [], "deleting an observed object wrote to Azure"
    # Every resource is still there, as it was (read with the SDK, after the counted window).
    compute, network = arm
    vm = compute.virtual_machines.get(resource_group, "fs-keep")
    assert vm.vm_id == made["properties"]["vmId"] and vm.tags == made["tags"]
    nic_name = vm.network_profile.network_interfaces[0].id.rsplit("/", 1)[1]
    nic = network.network_interfaces.get(resource_group, nic_name)
    assert nic.virtual_machine.id.lower() == vm.id.lower() and nic.tags == made["tags"]
    pip_name = nic.ip_configurations[0].public_ip_address.id.rsplit("/", 1)[1]
    assert network.public_ip_addresses.get(resource_group, pip_name).ip_address
    disk = compute.disks.get(resource_group, vm.storage_profile.os_disk.name)
    assert disk.managed_by.lower() == vm.id.lower()


# ----------------------------------------------------------------------------- (a) rebuilt from Git


@contextlib.contextmanager
def private_cluster(
    work: Path,
) -> Iterator[tuple[ControlPlane, Callable[..., subprocess.CompletedProcess[str]]]]:
    """A fresh etcd + kube-apiserver (a cluster of its own, gone with the block), with the CRDs."""
    with ControlPlane.start(work_dir=work) as cp:

        def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 60):
            result = subprocess.run([str(cp.kubectl), f"--kubeconfig={cp.kubeconfig}", *args], input=input,
                                    capture_output=True, text=True, timeout=timeout)  # fmt: skip
            assert not check or result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
            return result

        for crd in CRDS:
            kubectl("apply", "--server-side", "-f", str(crd))
        for crd in CRDS:
            kubectl(
                "wait",
                "--for=condition=Established",
                f"crd/{crd.name.removesuffix('.yaml')}",
                "--timeout=60s",
            )
        yield cp, kubectl


def rebuild_manifests(namespace: str) -> str:
    """The manifests a team keeps in Git: two samples (Secret + AzureEditionVM each), short check interval."""
    docs = []
    for sample in ("hotpatch", "plain-core"):
        for doc in yaml.safe_load_all((SAMPLES / f"{sample}.yaml").read_text()):
            doc["metadata"]["namespace"] = namespace
            if doc["kind"] == "AzureEditionVM":
                doc["spec"]["checkInterval"] = CHECK_INTERVAL
            docs.append(doc)
    return yaml.safe_dump_all(docs)


@pytest.mark.timeout(600)
def test_a_cluster_rebuilt_from_git_finds_its_vms_without_writing(sim_env, control, tmp_path):
    namespace = f"e2e-rebuild-{uuid.uuid4().hex[:6]}"
    cluster = cluster_id()  # kept across the rebuild, as docs/install.md#cluster-id says
    names = ["hotpatch", "plain-core"]
    manifests = rebuild_manifests(namespace)

    with private_cluster(tmp_path / "cp-a") as (first, kubectl):
        kubectl("create", "namespace", namespace)
        kubectl("apply", "-f", "-", input=manifests)
        with operator_for(tmp_path / "a.log", first.kubeconfig, sim_env, namespace, cluster):
            before = wait_for_all(kubectl, namespace, names, ready, "Ready on the first cluster", timeout=150)
    ids = {n: (o["status"]["vm"]["resourceId"], o["status"]["vm"]["vmId"]) for n, o in before.items()}
    vm_names = [rid.rsplit("/", 1)[1] for rid, _ in ids.values()]
    # The first cluster is gone (etcd and all). The same manifests, from Git, on a new one.
    with private_cluster(tmp_path / "cp-b") as (second, kubectl):
        kubectl("create", "namespace", namespace)
        kubectl("apply", "-f", "-", input=manifests)
        seq = control.last_seq()
        with operator_for(tmp_path / "b.log", second.kubeconfig, sim_env, namespace, cluster) as op:
            after = wait_for_all(
                kubectl, namespace, names, ready, "Ready again on the rebuilt cluster", timeout=120
            )
            assert op.alive(), op.tail()
    for name in vm_names:
        assert control.accepted_vm_puts(name, since=seq) == [], f"the rebuilt cluster wrote VM {name}"
    for n, obj in after.items():
        assert (obj["status"]["vm"]["resourceId"], obj["status"]["vm"]["vmId"]) == ids[n], "a VM was replaced"
        rg = obj["spec"]["azure"]["resourceGroup"]
        doc = vm_doc(control, rg, ids[n][0].rsplit("/", 1)[1])
        assert doc["properties"]["vmId"] == ids[n][1]
        assert doc["tags"].get("azureedition.io_owner") == f"{namespace}/{n}"
        assert doc["tags"].get("azureedition.io_cluster") == cluster
