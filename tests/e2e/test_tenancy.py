"""Two tenants, one cluster (issue 14): tenant A cannot target tenant B's subscription, resource group
or subnet — refused at admission by the ValidatingAdmissionPolicy reading TenantPolicies, and with
that policy's binding removed, refused by the operator (NotPermitted) before any Azure call — and
each tenant's VMs are made with its own credential only (the simulator's request log names the
principal of every request).

Real kube-apiserver (VAP evaluated by it), real Azure SDKs against the ARM simulator, the operator as
a process with single-tenant mode off.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from azure_edition_envtest.stack import Process, operator_env, start_operator, start_simulator
from azure_edition_operator.api import admission
from azure_edition_simulator.client import SimulatorControl

REPO = Path(__file__).resolve().parents[2]
POLICY_CRD = REPO / "crds" / "tenantpolicies.azureedition.io.yaml"
ADMISSION = REPO / "deploy" / "admission" / "policies.yaml"
SUB_B = "bbbbbbbb-0000-4000-8000-00000000000b"
LOCATION = "westeurope"
PASSWORD = f"Tenancy-{uuid.uuid4().hex[:12]}-Pw!"  # unique, so a leak anywhere is found by grep


def _finalize(kubectl, namespace: str, runs_controllers: bool) -> None:
    # The module's operator has stopped by now (it depends on `world`): nobody would release the
    # finalizers, so waiting for the deletes would only time out. Remove them instead.
    kubectl("delete", "azureeditionvms", "--all", "-n", namespace, "--wait=false", check=False)
    for obj in kubectl("get", "azureeditionvms", "-n", namespace, "-o", "name", check=False).stdout.split():
        kubectl(
            "patch",
            obj,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )
    kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)
    if not runs_controllers:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}, "spec": {}}
        kubectl("replace", "--raw", f"/api/v1/namespaces/{namespace}/finalize", "-f", "-",
                input=json.dumps(body), check=False)  # fmt: skip


@pytest.fixture(scope="module")
def simulator(tmp_path_factory) -> Iterator[tuple[Process, dict[str, str]]]:
    proc, env = start_simulator(tmp_path_factory.mktemp("armsim"), "--provisioning-seconds", "1")
    yield proc, env
    proc.stop()


@pytest.fixture(scope="module")
def world(simulator, cluster, crd, kubectl) -> Iterator[dict]:
    """Two tenants: namespaces, principals, subscriptions, resource groups, subnets, TenantPolicies."""
    env = simulator[1]
    control = SimulatorControl.from_env(env)
    sub_a = env["AZURE_SUBSCRIPTION_ID"]
    suffix = uuid.uuid4().hex[:6]
    t = {
        "control": control, "env": env, "sub_a": sub_a, "sub_b": SUB_B,
        "ns_a": f"e2e-tenant-a-{suffix}", "ns_b": f"e2e-tenant-b-{suffix}", "ops": f"e2e-tenancy-ops-{suffix}",
        "principal_a": str(uuid.uuid4()), "principal_b": str(uuid.uuid4()), "operator_principal": env["AZURE_CLIENT_ID"],
    }  # fmt: skip
    control.add_subscription(SUB_B)
    control.add_resource_group("rg-a", LOCATION, subscription_id=sub_a)
    control.add_resource_group("rg-b", LOCATION, subscription_id=SUB_B)
    t["subnet_a"] = control.add_subnet("vnet-a", "servers", "10.10.0.0/24", "rg-net-a", LOCATION, sub_a)
    t["subnet_b"] = control.add_subnet("vnet-b", "servers", "10.20.0.0/24", "rg-net-b", LOCATION, SUB_B)
    # B's network also reaches into A's subscription (a shared hub): a subnet A may not use.
    t["subnet_b_in_a"] = control.add_subnet("vnet-b", "servers", "10.30.0.0/24", "rg-net-b", LOCATION, sub_a)
    for ns in (t["ns_a"], t["ns_b"], t["ops"]):
        kubectl("create", "namespace", ns)
    for who in ("a", "b"):
        secret = f"secret-{uuid.uuid4().hex}"
        t[f"client_secret_{who}"] = secret
        control.add_principal(
            clientId=t[f"principal_{who}"], clientSecret=secret, displayName=f"tenant-{who}"
        )
        data = {"tenantId": env["AZURE_TENANT_ID"], "clientId": t[f"principal_{who}"], "clientSecret": secret}
        kubectl("create", "secret", "generic", f"tenant-{who}", "-n", t["ops"],
                *[f"--from-literal={k}={v}" for k, v in data.items()])  # fmt: skip
    kubectl("apply", "--server-side", "-f", str(POLICY_CRD))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd/tenantpolicies.azureedition.io",
        "--timeout=60s",
        timeout=90,
    )

    def prefix(subnet_id: str) -> str:
        return subnet_id.rsplit("/subnets/", 1)[0] + "/"

    policies = [
        {"name": f"tenant-a-{suffix}", "ns": t["ns_a"], "subs": [sub_a], "rgs": ["rg-a"],
         "prefixes": [prefix(t["subnet_a"])], "secret": "tenant-a"},
        {"name": f"tenant-b-{suffix}", "ns": t["ns_b"], "subs": [SUB_B], "rgs": ["rg-b"],
         "prefixes": [prefix(t["subnet_b"]), prefix(t["subnet_b_in_a"])], "secret": "tenant-b"},
    ]  # fmt: skip
    for p in policies:
        doc = {"apiVersion": "azureedition.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": p["name"]},
               "spec": {"namespaces": [p["ns"]], "subscriptionIds": p["subs"], "resourceGroups": p["rgs"],
                        "subnetIdPrefixes": p["prefixes"], "credential": {"clientSecret": {"secretName": p["secret"]}}}}  # fmt: skip
        kubectl("apply", "-f", "-", input=json.dumps(doc))
    t["policy_a"], t["policy_b"] = policies[0]["name"], policies[1]["name"]
    kubectl("apply", "-f", str(ADMISSION))
    yield t
    kubectl("delete", "-f", str(ADMISSION), "--ignore-not-found", check=False)
    for p in policies:
        kubectl("delete", "tenantpolicy", p["name"], "--ignore-not-found", check=False)
    for ns in (t["ns_a"], t["ns_b"], t["ops"]):
        _finalize(kubectl, ns, cluster.runs_controllers)


@pytest.fixture(scope="module")
def operator(world, kubeconfig, simulator, tmp_path_factory) -> Iterator[Process]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    env = operator_env(
        kubeconfig,
        simulator[1],
        AEO_SINGLE_TENANT="false",
        AEO_CREDENTIALS_NAMESPACE=world["ops"],
        AEO_LOG_LEVEL="DEBUG",
    )
    proc = start_operator(log, env, "--namespace", world["ns_a"], "--namespace", world["ns_b"])
    yield proc
    proc.stop()
    print(proc.tail(60))


def vm(name: str, sub: str, rg: str, subnet: str) -> list[dict]:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-admin"},
              "data": {"username": base64.b64encode(b"azureadmin").decode(),
                       "password": base64.b64encode(PASSWORD.encode()).decode()}}  # fmt: skip
    obj = {"apiVersion": "azureedition.io/v1alpha1", "kind": "AzureEditionVM", "metadata": {"name": name},
           "spec": {"capabilities": [], "adminCredentialsSecretRef": {"name": f"{name}-admin"}, "checkInterval": "1m",
                    "azure": {"subscriptionId": sub, "resourceGroup": rg, "location": LOCATION, "subnetId": subnet}}}  # fmt: skip
    return [secret, obj]


def apply(kubectl, namespace: str, docs: list[dict], check: bool = True):
    return kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs), check=check)


def refused_by_admission(kubectl, namespace: str, docs: list[dict], timeout: float = 30) -> str:
    """Server-side dry run until the VAP answers (its type checking settles after creation)."""
    deadline = time.monotonic() + timeout
    while True:
        result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs),
                         check=False)  # fmt: skip
        if result.returncode != 0:
            return result.stderr
        if time.monotonic() > deadline:
            raise AssertionError(f"admitted: {result.stdout}")
        time.sleep(0.5)


def condition(kubectl, namespace: str, name: str, type_: str) -> dict | None:
    obj = json.loads(kubectl("get", "aevm", name, "-n", namespace, "-o", "json").stdout)
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def wait_condition(kubectl, namespace: str, name: str, type_: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = condition(kubectl, namespace, name, type_)
        if found and found.get("reason") not in (None, "Creating", "Provisioning"):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{namespace}/{name}: no settled {type_} condition: {found}")
        time.sleep(0.5)


def test_tenant_a_cannot_target_b_at_admission(world, kubectl):
    a, sub_a = world["ns_a"], world["sub_a"]
    cases = {
        "subscription": vm("x-sub", SUB_B, "rg-b", world["subnet_b"]),
        "resource group": vm("x-rg", sub_a, "rg-b", world["subnet_a"]),
        "subnet": vm("x-subnet", sub_a, "rg-a", world["subnet_b_in_a"]),
    }
    for what, docs in cases.items():
        message = refused_by_admission(kubectl, a, docs)
        assert f"TenantPolicy {world['policy_a']} does not allow namespace {a} to use {what}" in message, (
            message
        )
    # B is refused A's targets the same way (the policies are symmetric, not an accident of order).
    message = refused_by_admission(kubectl, world["ns_b"], vm("y-vm", sub_a, "rg-a", world["subnet_a"]))
    assert f"TenantPolicy {world['policy_b']}" in message


def test_without_the_admission_binding_the_operator_refuses_before_any_azure_call(world, kubectl, operator):
    control, a = world["control"], world["ns_a"]
    kubectl("delete", "validatingadmissionpolicybinding", admission.TENANCY)
    try:
        since = control.last_seq()
        deadline = time.monotonic() + 30
        while apply(kubectl, a, vm("sneaky", SUB_B, "rg-b", world["subnet_b"]), check=False).returncode != 0:
            assert time.monotonic() < deadline, "the binding's removal never took effect"
            time.sleep(0.5)
        found = wait_condition(kubectl, a, "sneaky", "VMProvisioned")
        assert found["status"] == "False" and found["reason"] == "NotPermitted", found
        assert (
            f"TenantPolicy {world['policy_a']} does not allow namespace {a} to use subscription"
            in found["message"]
        )
        touched = [r for r in control.requests(since) if SUB_B in r["path"].lower()]
        assert touched == [], touched
        # A refused object holds no metric series (any namespace can make one: nothing may pile up).
        assert 'name="sneaky"' not in scrape(operator)
        kubectl("delete", "aevm", "sneaky", "-n", a, "--timeout=30s", timeout=60)
        assert 'name="sneaky"' not in scrape(operator)
    finally:
        kubectl("apply", "-f", str(ADMISSION))


def scrape(operator) -> str:
    with urllib.request.urlopen(f"http://{operator.extra['metrics']}/metrics", timeout=10) as response:
        return response.read().decode()


def test_each_tenant_uses_only_its_own_credential(world, kubectl, operator):
    control = world["control"]
    since = control.last_seq()
    apply(kubectl, world["ns_a"], vm("vm-a", world["sub_a"], "rg-a", world["subnet_a"]))
    apply(kubectl, world["ns_b"], vm("vm-b", SUB_B, "rg-b", world["subnet_b"]))
    for ns, name in ((world["ns_a"], "vm-a"), (world["ns_b"], "vm-b")):
        found = wait_condition(kubectl, ns, name, "VMProvisioned", timeout=90)
        assert found["status"] == "True", found
    arm = [r for r in control.requests(since) if r["path"].lower().startswith("/subscriptions/")]
    by_sub: dict[str, set[str]] = {}
    for r in arm:
        by_sub.setdefault(r["path"].split("/")[2].lower(), set()).add(r["clientId"])
    assert by_sub.get(world["sub_a"].lower()) == {world["principal_a"]}, by_sub
    assert by_sub.get(SUB_B.lower()) == {world["principal_b"]}, by_sub
    assert world["operator_principal"] not in {r["clientId"] for r in arm}


def test_no_secret_leaves_at_debug(world, kubectl, operator):
    """A lifecycle at DEBUG (create, Ready-path, an invalid password, delete), then grep everything the
    operator emits: its log, Events, status, metrics. Neither admin passwords nor tenant client secrets
    (nor their base64) may appear."""
    a = world["ns_a"]
    weak = vm("weak", world["sub_a"], "rg-a", world["subnet_a"])
    weak[0]["data"]["password"] = base64.b64encode(b"\xff\xfe-not-utf8-" + PASSWORD.encode()).decode()
    apply(kubectl, a, weak)
    found = wait_condition(kubectl, a, "weak", "VMProvisioned")
    assert (found["status"], found["reason"]) == ("False", "AdminCredentialsInvalid"), found
    assert "not UTF-8" in found["message"]
    kubectl("delete", "aevm", "vm-a", "-n", a, "--timeout=60s", timeout=90)
    secrets = [PASSWORD, world["client_secret_a"], world["client_secret_b"]]
    needles = secrets + [base64.b64encode(s.encode()).decode() for s in secrets]
    with urllib.request.urlopen(f"http://{operator.extra['metrics']}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    emitted = {
        "operator log": operator.log.read_text(errors="replace"),
        "events": kubectl("get", "events", "-A", "-o", "json").stdout,
        "status": kubectl("get", "aevm", "-A", "-o", "json").stdout,
        "metrics": metrics,
    }
    assert "DEBUG" in emitted["operator log"]  # the level really was DEBUG
    assert "client-secret:tenant-a" in metrics  # the credential is named, not its secret
    for where, text in emitted.items():
        for needle in needles:
            assert needle not in text, f"a secret leaked into the {where}"


def test_input_kube_apiserver_refuses(world, kubectl):
    """The CRD's input rules and the input VAP, as kube-apiserver evaluates them (not only cel-python)."""
    a, sub_a = world["ns_a"], world["sub_a"]

    def with_spec(name: str, **azure: object) -> list[dict]:
        docs = vm(name, sub_a, "rg-a", world["subnet_a"])
        docs[1]["spec"]["azure"].update(azure)
        return docs

    long_name = "n" * (256 - len(a))  # namespace/name is 257 characters
    long_vm = vm(long_name, sub_a, "rg-a", world["subnet_a"])[1]
    long_vm["spec"]["adminCredentialsSecretRef"] = {"name": "admin"}
    annotated = with_spec("annotated")
    annotated[1]["metadata"]["annotations"] = {"azureedition.io/assess-patches": "not a token"}
    cases = {
        "tag names must not contain": with_spec("bad-tag", tags={"a/b": "v"}),
        "at most 47": with_spec("many-tags", tags={f"k{i}": "v" for i in range(48)}),
        "a NIC cannot join a subnet of another subscription": with_spec(
            "other-sub-subnet", subnetId=world["subnet_b"]
        ),
        "use a shorter name": [long_vm],
        "azureedition.io/assess-patches must be": annotated,
    }
    for fragment, docs in cases.items():
        result = kubectl(
            "apply", "--dry-run=server", "-n", a, "-f", "-", input=yaml.safe_dump_all(docs), check=False
        )
        assert result.returncode != 0 and fragment in result.stderr, (fragment, result.stderr)
    sibling = {"apiVersion": "azureedition.io/v1alpha1", "kind": "TenantPolicy", "metadata": {"name": "no-slash"},
               "spec": {"namespaces": [a], "subscriptionIds": [sub_a], "resourceGroups": ["*"],
                        "subnetIdPrefixes": [world["subnet_a"].rsplit("/subnets/", 1)[0]]}}  # fmt: skip
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(sibling), check=False)
    assert result.returncode != 0 and "end each prefix with '/'" in result.stderr, result.stderr
