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
from tests.e2e.conftest import ADMISSION_POLICIES, without_admission_policies

REPO = Path(__file__).resolve().parents[2]
POLICY_CRD = REPO / "crds" / "tenantpolicies.azureedition.io.yaml"
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
    kubectl("apply", "-f", str(ADMISSION_POLICIES))
    yield t
    without_admission_policies(kubectl)
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
        kubectl("apply", "-f", str(ADMISSION_POLICIES))


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


# ----------------------------------------------------------------------------- state no tenant can steer


class TokenListener:
    """An HTTPS server the operator would trust (the simulator's own certificate, on another port): it
    counts every request and keeps the Authorization headers it was sent."""

    def __init__(self, state_dir: Path) -> None:
        import http.server
        import ssl
        import threading

        from azure_edition_simulator import tls

        seen: list[tuple[str, str]] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Authorization", "")))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "InProgress"}')

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(state_dir / tls.SERVER_CERT_FILE, state_dir / tls.SERVER_KEY_FILE)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.origin = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def forged_token(request_url: str, polling_url: str) -> str:
    """A continuation token in azure-core's format (base64 JSON, version 1) naming URLs of our choice."""
    state = {"request": {"method": "PUT", "url": request_url, "headers": {"x-ms-client-request-id": str(uuid.uuid4())}},
             "response": {"status_code": 201, "content": base64.b64encode(b"{}").decode(),
                          "headers": {"azure-asyncoperation": polling_url, "location": polling_url}},
             "context": {"deserialized_data": None}}  # fmt: skip
    return base64.b64encode(json.dumps({"version": 1, "data": state}).encode()).decode()


def forged_state(
    vm_name: str, token: str, image: dict[str, str] | None = None, vm_id: str | None = None
) -> str:
    """The driver's state as a tenant would write it: the unsealed JSON the operator once accepted."""
    record = {"kind": "virtualMachines", "name": vm_name, "verb": "put", "token": token,
              "started": "2026-01-01T00:00:00Z", "action": "created"}  # fmt: skip
    return json.dumps({"operation": record, "vm_id": vm_id, "image": image})


@pytest.fixture(scope="module")
def tenant_editor(world, kubectl) -> str:
    """A user who may edit AzureEditionVMs (and create Secrets) in tenant A's namespace, nothing else."""
    user, a = f"tenant-a-editor-{uuid.uuid4().hex[:6]}", world["ns_a"]
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "editor", "namespace": a},
            "rules": [{"apiGroups": ["azureedition.io"], "resources": ["azureeditionvms"],
                       "verbs": ["get", "list", "watch", "create", "update", "patch"]},
                      {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get"]}]}  # fmt: skip
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "editor", "namespace": a},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "editor"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}  # fmt: skip
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all([role, binding]))
    assert (
        kubectl(
            "auth", "can-i", "patch", "azureeditionvms", "-n", a, f"--as={user}", check=False
        ).stdout.strip()
        == "yes"
    )
    assert (
        kubectl(
            "auth", "can-i", "get", "secrets", "-n", world["ops"], f"--as={user}", check=False
        ).stdout.strip()
        == "no"
    )
    return user


def ready_at_generation(kubectl, namespace: str, name: str, forged: str = "", timeout: float = 90) -> dict:
    """Ready for the current spec, and the pass's own sealed state written in place of ``forged`` (kopf
    patches the annotation just after the status write)."""
    deadline = time.monotonic() + timeout
    while True:
        obj = json.loads(kubectl("get", "aevm", name, "-n", namespace, "-o", "json").stdout)
        ready = next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {})
        state = obj["metadata"].get("annotations", {}).get("kopf.azureedition.io/azure-state", "")
        if (
            ready.get("status") == "True"
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
            and state.startswith("v1.")
            and state != forged
        ):
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"{namespace}/{name} not Ready at its generation: {obj.get('status')}")
        time.sleep(0.5)


def test_state_a_tenant_writes_steers_nothing(world, kubectl, operator, tenant_editor, tmp_path):
    """A tenant who may only edit their own AzureEditionVM writes the operator's state annotation: a
    continuation token whose polling URL is a host of theirs, then one naming another tenant's VM on the
    real ARM endpoint, a forged image, garbage and oversized values. No request leaves for the tenant's
    host (with or without the ARM token), nothing outside the object's own resources is touched, the
    VM runs the catalog's image, and the object reconciles every time."""
    from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec
    from azure_edition_operator.azure.specs import Owner, vm_identity

    control, a, env = world["control"], world["ns_a"], world["env"]
    listener = TokenListener(Path(env["ARMSIM_STATE_DIR"]))
    arm = env["AZURE_RESOURCE_MANAGER_ENDPOINT"].rstrip("/")
    as_tenant = f"--as={tenant_editor}"
    try:
        docs = vm("forged", world["sub_a"], "rg-a", world["subnet_a"])
        spec = AzureEditionVMSpec.model_validate(docs[1]["spec"])
        identity = vm_identity(Owner(a, "forged", "unknown"), spec.azure)
        path = identity.vm_id
        evil_image = {"publisher": "EvilPublisher", "offer": "EvilOffer", "sku": "2022-datacenter-azure-edition",
                      "version": "latest"}  # fmt: skip
        docs[1]["metadata"]["annotations"] = {
            "kopf.azureedition.io/azure-state": forged_state(
                identity.vm_name,
                forged_token(f"{listener.origin}{path}", f"{listener.origin}/steal"),
                evil_image,
            )
        }
        since = control.last_seq()
        kubectl("apply", "-n", a, as_tenant, "-f", "-", input=yaml.safe_dump_all(docs))
        try:
            obj = ready_at_generation(
                kubectl,
                a,
                "forged",
                forged=docs[1]["metadata"]["annotations"]["kopf.azureedition.io/azure-state"],
            )
        finally:  # the first thing to know when it fails: did the ARM token leave?
            bearer = [auth[:12] for _, auth in listener.seen if auth]
            assert listener.seen == [], (
                f"{len(listener.seen)} requests to the tenant's host, Authorization {bearer}"
            )
        image = obj["status"]["image"]  # reported from Azure's storageProfile.imageReference
        assert (image["publisher"], image["offer"]) == ("MicrosoftWindowsServer", "WindowsServer"), image
        puts = control.accepted_vm_puts(identity.vm_name, since)
        assert len(puts) == 1, puts

        # The real ARM endpoint, another tenant's VM (and its operation), after the VM exists.
        other = f"/subscriptions/{SUB_B}/resourceGroups/rg-b/providers/Microsoft.Compute/virtualMachines/vm-b"
        other_op = f"/subscriptions/{SUB_B}/providers/Microsoft.Compute/locations/{LOCATION}/operations/x"
        forgeries = {
            "another tenant's VM on ARM": forged_state(
                identity.vm_name,
                forged_token(f"{arm}{other}", f"{arm}{other_op}"),
                evil_image,
                "forged-vm-id",
            ),
            "the tenant's host again": forged_state(
                identity.vm_name, forged_token(f"{listener.origin}{path}", f"{listener.origin}/steal")
            ),
            "garbage": "\x1b]52;c;" + "A" * 200_000,
            "deep nesting": "[" * 100_000,
            "a forged seal": "v1.AAAA."
            + forged_state(identity.vm_name, forged_token(f"{arm}{other}", f"{arm}{other}")),
        }
        for n, (what, value) in enumerate(forgeries.items()):
            since = control.last_seq()
            patch = {"metadata": {"annotations": {"kopf.azureedition.io/azure-state": value}},
                     "spec": {"azure": {"tags": {"round": str(n)}}}}  # a spec edit: a pass runs now  # fmt: skip
            patch_file = tmp_path / f"patch-{n}.json"  # a 200 KB value is over the argv limit of one argument
            patch_file.write_text(json.dumps(patch))
            kubectl(
                "patch", "aevm", "forged", "-n", a, as_tenant, "--type=merge", "--patch-file", str(patch_file)
            )
            ready_at_generation(kubectl, a, "forged", forged=value)
            touched = [r["path"] for r in control.requests(since) if SUB_B in r["path"].lower()]
            assert touched == [], (what, touched)
            assert listener.seen == [], (what, listener.seen)
            assert control.accepted_vm_puts(identity.vm_name, since) == [], what  # a tag edit is a PATCH
    finally:
        listener.close()
