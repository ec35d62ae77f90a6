"""The operator as its users run it: the image, as a pod from deploy/, on a real cluster.

The cluster is a target (tests/node/target.py): by default the one-node cluster of `make node-up`
(kubelet + containerd v2 on the local control plane), which `make e2e-node` starts, tests and stops;
or any kubeconfig with the command that loads images onto it (`make e2e-kind`,
`make e2e-node-kubeconfig`). The images come from `make image image-armsim`.
The tests run in order and share one install (module-scoped fixtures): each builds on the last.
"""

from __future__ import annotations

import copy
import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SAMPLES
from tests.node.conftest import OPERATOR_IMAGE, ROLLOUT_IMAGE
from tests.node.support import (
    NAMESPACE,
    container_port,
    prometheus_config,
    scrape_config,
    simulator_ca,
    wrapper_kustomization,
)
from tests.node.target import PODMAN, Target

pytestmark = pytest.mark.node

SAMPLES_NS = "e2e-samples"
SAMPLES_POLICY = {
    "apiVersion": "azureedition.io/v1alpha1",
    "kind": "TenantPolicy",
    "metadata": {"name": "node-e2e-samples"},
    "spec": {
        "namespaces": [SAMPLES_NS],
        "subscriptionIds": ["00000000-0000-0000-0000-000000000000"],
        "resourceGroups": ["rg-branch-a"],
        "subnetIdPrefixes": [
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-branch-a/"
        ],
    },
}
READY_TIMEOUT = 300.0


def operator_pod(node: Target) -> dict:
    pods = node.json("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=operator")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1, [p["metadata"]["name"] for p in pods]
    return live[0]


def wait_until(what: str, check, timeout: float = READY_TIMEOUT, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def quotas_counted(node: Target, namespace: str | None = None) -> None:
    """A new ResourceQuota (deploy/tenant-namespace has one) refuses every create ("status unknown for
    quota") until kube-controller-manager has counted it: wait for its status before the first object
    (the node-e2e overlay leaves the tenant quota out: this lab never counts it, see its kustomization)."""
    scope = ["-n", namespace] if namespace else ["-A"]
    wait_until(
        "the ResourceQuotas counted",
        lambda: all(
            (q.get("status") or {}).get("hard") for q in node.json("get", "resourcequota", *scope)["items"]
        ),
        120,
    )


def podman_image_id(image: str) -> str:
    return subprocess.run([*PODMAN, "image", "inspect", "--format", "{{.Id}}", image],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip


@pytest.fixture(scope="module")
def control(node: Target):
    """Apply the test overlay (through a wrapper with the per-run values) and the simulator's CA;
    yield a client for the simulator's control API, reached as the target says."""
    work = node.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    issuer = json.loads(node.kubectl("get", "--raw", "/.well-known/openid-configuration").stdout)["issuer"]
    (work / "kustomization.yaml").write_text(
        wrapper_kustomization(work, node.overlay, node.pod_apiserver(), issuer)
    )
    ca_cert, ca_key = simulator_ca()
    (work / "ca.pem").write_bytes(ca_cert)
    (work / "ca-key.pem").write_bytes(ca_key)
    node.kubectl("apply", "-k", str(work))
    for kind in (["secret", "generic"], ["configmap"]):
        files = [f"--from-file={work / 'ca.pem'}", f"--from-file={work / 'ca-key.pem'}"] if kind[0] == "secret" \
            else [f"--from-file=ca.crt={work / 'ca.pem'}"]  # fmt: skip
        manifest = node.kubectl("-n", NAMESPACE, "create", *kind, "azure-edition-armsim-ca", *files,
                                "--dry-run=client", "-o", "yaml").stdout  # fmt: skip
        node.kubectl("apply", "-f", "-", input=manifest)
    # Tenancy as a platform team sets it up (docs/security.md): the samples' namespace may use the
    # simulator's subscription. A custom resource, so after `apply -k` has established its CRD.
    node.kubectl("wait", "--for=condition=Established", "crd/tenantpolicies.azureedition.io", "--timeout=60s")
    node.kubectl("apply", "-f", "-", input=yaml.safe_dump(SAMPLES_POLICY))
    for deployment in ("azure-edition-armsim", "azure-edition-operator"):
        node.kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{deployment}", "--timeout=240s",
                     timeout=260)  # fmt: skip
    quotas_counted(node)
    from azure_edition_simulator.client import SimulatorControl

    armsim = node.json("-n", NAMESPACE, "get", "deployment/azure-edition-armsim")["spec"]["template"]["spec"]
    with node.reach(NAMESPACE, "deployment/azure-edition-armsim", container_port(armsim, "https")) as address:
        yield SimulatorControl(f"https://{address}/_simulator", work / "ca.pem")


def rendered(overlay: Path) -> list[dict]:
    out = subprocess.run([str(REPO / "bin" / "kubectl"), "kustomize", str(overlay)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return list(yaml.safe_load_all(out))


def deployment_of(docs: list[dict], name: str) -> dict:
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


# ------------------------------------------------------------------------------------------------


def test_operator_pod_runs_the_image_with_the_shipped_security_context_and_rbac(node: Target, control):
    pod = operator_pod(node)
    status = pod["status"]["containerStatuses"][0]
    assert status["image"].endswith(OPERATOR_IMAGE.split("/", 1)[1]), status["image"]
    assert status["imageID"].endswith(podman_image_id(OPERATOR_IMAGE)), (status["imageID"], OPERATOR_IMAGE)
    shipped = deployment_of(rendered(REPO / "deploy" / "base"), "azure-edition-operator")["spec"]["template"][
        "spec"
    ]
    assert pod["spec"]["securityContext"] == shipped["securityContext"]
    assert pod["spec"]["containers"][0]["securityContext"] == shipped["containers"][0]["securityContext"]
    assert pod["spec"]["serviceAccountName"] == shipped["serviceAccountName"]
    # What the process really is, seen from inside: uid/gid 10001, root filesystem read-only.
    probe = (
        "import os\ntry:\n open('/opt/venv/x','w')\n print('writable')\n"
        "except OSError as e:\n print('ro', e.errno)\nprint(os.getuid(), os.getgid())"
    )
    out = node.kubectl("-n", NAMESPACE, "exec", pod["metadata"]["name"], "--", "python", "-c", probe).stdout
    assert out.split() == ["ro", "30", "10001", "10001"], out
    sa = f"system:serviceaccount:{NAMESPACE}:azure-edition-operator"
    for verb, resource, allowed in (
        ("patch", "azureeditionvms.azureedition.io", "yes"),
        ("patch", "azureeditionvms.azureedition.io/status", "yes"),
        ("delete", "azureeditionvms.azureedition.io", "no"),
        ("list", "secrets", "no"),
        ("create", "pods", "no"),
    ):
        result = node.kubectl("auth", "can-i", verb, resource, "--as", sa, "-A", check=False)
        assert result.stdout.strip() == allowed, (verb, resource, result.stdout, result.stderr)


def test_the_operator_authenticates_by_workload_identity_with_no_secret(node: Target, control):
    """The pod holds a projected token for Entra's audience and no client secret; the simulator's
    secret is random, so every ARM call the later tests see was authorised by a client assertion
    verified against this cluster's OIDC discovery and JWKS."""
    spec = operator_pod(node)["spec"]
    container = spec["containers"][0]
    assert not any("secretRef" in source for source in container.get("envFrom", [])), container["envFrom"]
    assert not any(e["name"] == "AZURE_CLIENT_SECRET" for e in container.get("env", []))
    tokens = [
        source["serviceAccountToken"]
        for volume in spec["volumes"]
        for source in volume.get("projected", {}).get("sources", [])
        if "serviceAccountToken" in source
    ]
    assert {
        "audience": "api://AzureADTokenExchange",
        "expirationSeconds": 3600,
        "path": "azure-identity-token",
    } in tokens
    assert (
        node.kubectl("-n", NAMESPACE, "get", "secret", "azure-edition-operator-azure", check=False).returncode
        != 0
    )
    config = node.json("-n", NAMESPACE, "get", "configmap", container["envFrom"][0]["configMapRef"]["name"])[
        "data"
    ]
    assert config["AZURE_CREDENTIAL_MODE"] == "workload-identity"


def test_probes_pass(node: Target, control):
    pod = operator_pod(node)
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True" and ready["ContainersReady"] == "True", ready
    status = pod["status"]["containerStatuses"][0]
    assert status["started"] and status["ready"] and status["restartCount"] == 0, status
    health = container_port(pod["spec"], "health")
    with (
        node.reach(NAMESPACE, f"pod/{pod['metadata']['name']}", health) as address,
        urllib.request.urlopen(f"http://{address}/healthz", timeout=5) as response,
    ):
        assert response.status == 200


def sample_objects() -> list[dict]:
    docs = [d for p in sorted(SAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    return [d for d in docs if d]


def ready_names(node: Target) -> set[str]:
    items = node.json("get", "aevm", "-n", SAMPLES_NS)["items"]
    return {
        i["metadata"]["name"]
        for i in items
        if any(
            c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", [])
        )
    }


def map_certificates(node: Target, control, names: set[str]) -> None:
    """Give each SMB over QUIC guest a certificate for its serverName as soon as its VM exists (as an
    administrator would, and as `make demo` does). Soon matters: the operator's first in-guest look
    happens once the VM is provisioned, and a mapping made after it is only seen at its next look
    (rate-limited to AEO_IN_GUEST_MIN_INTERVAL)."""
    from azure_edition_operator.azure.specs import Owner, vm_name_for

    docs = {d["metadata"]["name"]: d for d in sample_objects() if d["metadata"]["name"] in names}
    uids = {
        i["metadata"]["name"]: i["metadata"]["uid"]
        for i in node.json("get", "aevm", "-n", SAMPLES_NS)["items"]
    }
    vms = {vm_name_for(Owner(SAMPLES_NS, name, uids[name])): doc for name, doc in docs.items()}
    deadline = time.monotonic() + 120
    while vms and time.monotonic() < deadline:
        for vm in {v["name"] for v in control.vms()} & set(vms):
            doc = vms.pop(vm)
            server = doc["spec"]["smbOverQuic"]["serverName"]
            spec = {"commonName": server, "dnsNames": [server], "validDays": 211}
            control.set_certificate(doc["spec"]["azure"]["resourceGroup"], vm, server, spec)
        time.sleep(0.1)
    assert not vms, f"VMs never appeared in the simulator: {sorted(vms)}"


def test_the_samples_reach_ready(node: Target, control):
    node.kubectl(
        "apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {SAMPLES_NS}\n"
    )
    node.kubectl("apply", "-n", SAMPLES_NS, "-f", str(SAMPLES))  # one call: the files, not invalid/
    names = {d["metadata"]["name"] for d in sample_objects() if d["kind"] == "AzureEditionVM"}
    pending = {
        d["metadata"]["name"]
        for d in sample_objects()
        if d["kind"] == "AzureEditionVM" and "SMBOverQUIC" in d["spec"].get("capabilities", [])
    }

    map_certificates(node, control, pending)
    try:
        wait_until("the samples Ready", lambda: ready_names(node) >= names, interval=2)
    except AssertionError:
        print(node.kubectl("get", "aevm", "-n", SAMPLES_NS, "-o", "wide").stdout)
        print(node.kubectl("-n", NAMESPACE, "logs", "deployment/azure-edition-operator", "--tail=40").stdout)
        raise


def test_deleting_the_operator_pod_mid_create_yields_one_vm_per_object(node: Target, control):
    from azure_edition_operator.azure.specs import Owner, vm_name_for

    template = next(
        d for d in sample_objects() if d["kind"] == "AzureEditionVM" and d["metadata"]["name"] == "hotpatch"
    )
    names = [f"restart-{i}" for i in range(3)]
    objects = []
    for name in names:
        obj = copy.deepcopy(template)
        obj["metadata"] = {"name": name, "namespace": SAMPLES_NS}
        objects.append(obj)
    control.set_provisioning_seconds(8)  # long enough to kill the operator while the LROs run
    try:
        node.kubectl("apply", "-f", "-", input="\n---\n".join(yaml.safe_dump(o) for o in objects))
        uids = {n: node.json("get", "aevm", n, "-n", SAMPLES_NS)["metadata"]["uid"] for n in names}
        expected = {vm_name_for(Owner(SAMPLES_NS, n, uid)) for n, uid in uids.items()}
        wait_until("a VM create in flight", lambda: expected & {v["name"] for v in control.vms()}, 60, 0.2)
        old = operator_pod(node)["metadata"]["name"]
        node.kubectl("-n", NAMESPACE, "delete", "pod", old, "--wait=false")
        wait_until("a new operator pod", lambda: operator_pod(node)["metadata"]["name"] != old, 120)
        wait_until("the restarted objects Ready", lambda: ready_names(node) >= set(names), interval=2)
    finally:
        control.set_provisioning_seconds(2)
    vms = [v["name"] for v in control.vms()]
    for vm in expected:
        assert vms.count(vm) == 1, (vm, vms)
    owned = {vm_name_for(Owner(SAMPLES_NS, i["metadata"]["name"], i["metadata"]["uid"]))
             for i in node.json("get", "aevm", "-n", SAMPLES_NS)["items"]}  # fmt: skip
    assert sorted(vms) == sorted(owned), "exactly one VM per object, and no other"


def statuses(node: Target) -> dict[str, dict]:
    return {
        i["metadata"]["name"]: i.get("status", {})
        for i in node.json("get", "aevm", "-n", SAMPLES_NS)["items"]
    }


def _changed_fields(before: dict, after: dict, path: str = "") -> dict[str, tuple]:
    """Leaf paths whose values differ (conditions keyed by type), for a readable failure."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: dict[str, tuple] = {}
        for key in sorted(set(before) | set(after)):
            out |= _changed_fields(before.get(key), after.get(key), f"{path}.{key}")
        return out
    if (
        isinstance(before, list)
        and isinstance(after, list)
        and all(isinstance(c, dict) and "type" in c for c in (*before, *after))
    ):
        return _changed_fields({c["type"]: c for c in before}, {c["type"]: c for c in after}, path)
    return {} if before == after else {path: (before, after)}


def test_a_rollout_to_a_new_image_keeps_status_unchanged(node: Target, control):
    """Status after a rollout equals status before it; and ideally the rollout writes no status at all.

    Found by this test: on resume the new operator reconciles without the VM's instance view and
    drops status.powerState until the next periodic check restores it (two needless writes). That
    part is reported as an expected failure (xfail, with the diff) until the operator keeps it.
    """
    assert podman_image_id(ROLLOUT_IMAGE) != podman_image_id(OPERATOR_IMAGE), "the rollout image must differ"
    before = statuses(node)
    old = operator_pod(node)["metadata"]["name"]
    node.kubectl(
        "-n", NAMESPACE, "set", "image", "deployment/azure-edition-operator", f"operator={ROLLOUT_IMAGE}"
    )
    node.kubectl("-n", NAMESPACE, "rollout", "status", "deployment/azure-edition-operator", "--timeout=180s",
                 timeout=200)  # fmt: skip
    pod = operator_pod(node)
    assert pod["metadata"]["name"] != old
    assert pod["status"]["containerStatuses"][0]["imageID"].endswith(podman_image_id(ROLLOUT_IMAGE))
    # Watch status while the new operator resumes every object and runs its periodic checks.
    transient = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = statuses(node)
        transient.update({n: now[n] for n in before if now.get(n) != before[n] and n not in transient})
        time.sleep(1)
    try:
        wait_until("status back to what it was before the rollout", lambda: statuses(node) == before, 150, 3)
    except AssertionError:
        after = statuses(node)
        diff = {n: _changed_fields(before[n], after.get(n, {})) for n in before if after.get(n) != before[n]}
        raise AssertionError(
            f"status differs after the rollout: {json.dumps(diff, default=str)[:4000]}"
        ) from None
    if transient:
        changed = {
            n: sorted(
                set(before[n]) ^ set(transient[n])
                | {k for k in before[n] if before[n].get(k) != transient[n].get(k)}
            )
            for n in transient
        }
        pytest.xfail(f"status changed during the rollout, then came back (fields: {changed})")


def test_kubectl_logs_are_structured(node: Target, control):
    lines = node.kubectl("-n", NAMESPACE, "logs", operator_pod(node)["metadata"]["name"]).stdout.splitlines()
    assert lines, "the operator logged nothing"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(r, dict) for r in records)
    # kopf's JSON formatter (kopf.configure, AEO_LOG_FORMAT=json in deploy/base): every line has these,
    # and a line about one object names it, as kopf's own per-object lines do
    assert all({"timestamp", "severity", "message"} <= set(r) for r in records), records[:3]
    about_objects = [r for r in records if "object" in r]
    assert about_objects, "no per-object line: the object reference is lost"
    assert all({"namespace", "name"} <= set(r["object"]) for r in about_objects), about_objects[:3]


def prom_query(base: str, query: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


def test_prometheus_scrapes_the_pod_and_the_shipped_rules_group_by_the_vm_namespace(node: Target, control):
    prometheus = shutil.which("prometheus")
    assert prometheus, "Debian's prometheus package is missing: `make node-tools` installs it"
    service_monitor = yaml.safe_load((REPO / "deploy" / "monitoring" / "servicemonitor.yaml").read_text())
    rules = REPO / "deploy" / "monitoring" / "rules" / "azure-edition-operator.rules.yaml"
    from azure_edition_envtest.controlplane import free_ports

    (port,) = free_ports(1)
    base = f"http://127.0.0.1:{port}"
    pod = operator_pod(node)
    metrics = container_port(pod["spec"], "metrics")
    # Prometheus' ServiceAccount, bound to the reader role as docs/monitoring.md says; /metrics is HTTPS
    # and answers only a token the API server lets `get /metrics` (a second job without one is refused).
    node.kubectl("create", "serviceaccount", "prometheus", "-n", SAMPLES_NS)
    node.kubectl("create", "clusterrolebinding", "e2e-prometheus-metrics-reader",
                 "--clusterrole=azure-edition-operator-metrics-reader", f"--serviceaccount={SAMPLES_NS}:prometheus")  # fmt: skip
    token = node.kubectl("create", "token", "prometheus", "-n", SAMPLES_NS, "--duration=1h").stdout.strip()
    with (
        tempfile.TemporaryDirectory(prefix="aeo-prom-") as tmp,
        node.reach(NAMESPACE, f"pod/{pod['metadata']['name']}", metrics) as address,
    ):
        config = Path(tmp) / "prometheus.yml"
        token_file = Path(tmp) / "token"
        token_file.write_text(token)
        job = scrape_config(service_monitor, pod, address=address, token_file=token_file)
        assert job["scheme"] == "https" and job["authorization"]["credentials_file"] == str(token_file)
        anonymous = scrape_config(service_monitor, pod, address=address)  # the same endpoint, no token
        anonymous["job_name"] = anonymous["static_configs"][0]["labels"]["job"] = "no-token"
        config.write_text(prometheus_config([job, anonymous], rules))
        log = open(Path(tmp) / "prometheus.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            ready = wait_until(
                "azureedition_ready scraped",
                lambda: proc.poll() is None and _safe(lambda: prom_query(base, "azureedition_ready")),
                90,
            )
            # The series keep the AzureEditionVM's own namespace (honorLabels), never exported_namespace.
            assert {s["metric"]["namespace"] for s in ready} == {SAMPLES_NS}, ready
            assert not any("exported_namespace" in s["metric"] for s in ready), ready
            # The shipped rules evaluate against live series: all healthy, and their `by (namespace,
            # name)` grouping names the VMs' namespace.
            groups = wait_until("rules evaluated", lambda: _safe(lambda: _rules(base)), 60)
            bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
            assert not bad, bad
            grouped = prom_query(base, "min by (namespace, name) (azureedition_ready)")
            assert {s["metric"]["namespace"] for s in grouped} == {SAMPLES_NS}
            names = {s["metric"]["name"] for s in grouped}
            assert {"hotpatch", "restart-0"} <= names, names
            refused = wait_until(
                "the token-less job scraped", lambda: _safe(lambda: _target(base, "no-token")), 30
            )
            assert refused["health"] == "down" and "401" in refused["lastError"], refused
            # absent(azureedition_build_info) goes pending before the first scrape, then resolves.
            wait_until(
                "AzureEditionOperatorAbsent resolved",
                lambda: not _alerts(base, "AzureEditionOperatorAbsent"),
                30,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _target(base: str, job: str) -> dict | None:
    with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as response:
        active = json.loads(response.read())["data"]["activeTargets"]
    found = [t for t in active if t["labels"]["job"] == job and t.get("lastScrape", "").startswith("20")]
    return found[0] if found and found[0]["health"] != "unknown" else None


def _rules(base: str) -> list[dict] | None:
    with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as response:
        groups = json.loads(response.read())["data"]["groups"]
    evaluated = groups and all(g.get("lastEvaluation", "").startswith("20") for g in groups)
    return groups if evaluated else None


def _alerts(base: str, name: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/api/v1/alerts", timeout=5) as response:
        return [a for a in json.loads(response.read())["data"]["alerts"] if a["labels"]["alertname"] == name]


def _safe(fn):
    try:
        return fn()
    except OSError:
        return None
