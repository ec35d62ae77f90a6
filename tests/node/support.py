"""Pure helpers for the one-node e2e (tests/node): the wrapper kustomization, the test CA and the
Prometheus configuration that does what the Prometheus Operator does with deploy/monitoring's
ServiceMonitor."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAMESPACE = "azure-edition-system"


OPERATOR_SUBJECT = f"system:serviceaccount:{NAMESPACE}:azure-edition-operator"


def wrapper_kustomization(
    into: Path, overlay: Path, pod_apiserver: tuple[str, int] | None, issuer: str
) -> str:
    """The test overlay plus the per-run values: the simulator's federated credential for this
    cluster's service-account issuer and, when the target says the in-cluster Service does not work
    (the one-node cluster has no Service network), the API server's address for the pods."""
    federated = ["--federated-credential", issuer, OPERATOR_SUBJECT]
    args_patch = [
        {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": a} for a in federated
    ]
    kustomization: dict = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(overlay, into)],
    }
    if pod_apiserver:
        host, port = pod_apiserver
        kustomization["configMapGenerator"] = [
            {
                "name": "azure-edition-operator-config",
                "behavior": "merge",
                "literals": [f"KUBERNETES_SERVICE_HOST={host}", f"KUBERNETES_SERVICE_PORT={port}"],
            }
        ]
    kustomization["patches"] = [
        {
            "target": {"kind": "Deployment", "name": "azure-edition-armsim"},
            "patch": yaml.safe_dump(args_patch),
        }
    ]
    return yaml.safe_dump(kustomization, sort_keys=False)


def container_port(pod_spec: dict, name: str) -> int:
    """The first container's port called `name` (the overlay decides the numbers; the test asks)."""
    return next(p["containerPort"] for p in pod_spec["containers"][0]["ports"] if p["name"] == name)


def simulator_ca() -> tuple[bytes, bytes]:
    """(cert PEM, key PEM): an EC P-256 CA for the simulator, as the component's openssl recipe makes."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "armsim-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))  # outlives the guests' certificates
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(pem), key_pem


def scrape_config(service_monitor: dict, pod: dict, *, address: str, token_file: Path | None = None) -> dict:
    """One Prometheus scrape job for the ServiceMonitor's first endpoint and one live operator pod,
    with the target labels the Prometheus Operator gives it (namespace, pod, container, service,
    endpoint, job) and the endpoint's honorLabels, path, scheme and TLS settings. ``token_file`` stands
    for the endpoint's ``bearerTokenFile`` (Prometheus' own ServiceAccount token in a pod).

    Static, from the pod kubectl returns: Debian's prometheus is built without Kubernetes service
    discovery. The operator listens on the pod's loopback (hostNetwork overlays), so `address` is
    where the cluster target makes the pod's metrics port reachable from here.
    """
    spec = service_monitor["spec"]
    endpoint = spec["endpoints"][0]
    selector = spec["selector"]["matchLabels"]
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in selector.items() if k != "app.kubernetes.io/component"), labels
    service = "azure-edition-operator-metrics"
    job: dict = {
        "job_name": f"serviceMonitor/{service_monitor['metadata']['namespace']}/{service_monitor['metadata']['name']}/0",
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "metrics_path": endpoint.get("path", "/metrics"),
        "scheme": endpoint.get("scheme", "http"),
        "scrape_interval": "2s",  # the shipped 30s, shortened so the test sees several scrapes
        "scrape_timeout": "1s",
        "static_configs": [
            {
                "targets": [address],
                "labels": {
                    "namespace": pod["metadata"]["namespace"],
                    "pod": pod["metadata"]["name"],
                    "container": pod["spec"]["containers"][0]["name"],
                    "service": service,
                    "endpoint": endpoint["port"],
                    "job": service,
                },
            }
        ],
    }
    tls = endpoint.get("tlsConfig") or {}
    if tls.get("insecureSkipVerify"):
        job["tls_config"] = {"insecure_skip_verify": True}
    if endpoint.get("bearerTokenFile") and token_file is not None:
        job["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
    return job


def prometheus_config(jobs: list[dict], rules: Path) -> str:
    return yaml.safe_dump(
        {"global": {"evaluation_interval": "2s"}, "rule_files": [str(rules)], "scrape_configs": jobs},
        sort_keys=False,
    )


# --------------------------------------------------------------------------------------------------
# The release's install.yaml and the Helm chart on the one-node cluster (test_release_install.py):
# what deploy/overlays/node-e2e adds to deploy/base, carried over to each as the lab-only settings.
# --------------------------------------------------------------------------------------------------


def _doc(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name))


def lab_settings(node_e2e: list[dict], base: list[dict]) -> dict:
    """What the node-e2e overlay (rendered, with the per-run values) sets on the operator's pod that
    deploy/base does not: its configuration values that differ (as container env: they win over the
    ConfigMap's envFrom), the volumes it adds (simulator CA, projected Entra token), the listener
    ports and the probe host. hostNetwork comes with them: these are what a node without a pod
    network needs, and the simulator; nothing else is carried over."""
    lab_config = _doc(node_e2e, "ConfigMap", "azure-edition-operator-config")["data"]
    base_config = _doc(base, "ConfigMap", "azure-edition-operator-config")["data"]
    lab_pod = _doc(node_e2e, "Deployment", "azure-edition-operator")["spec"]["template"]["spec"]
    base_pod = _doc(base, "Deployment", "azure-edition-operator")["spec"]["template"]["spec"]
    base_volumes = {v["name"] for v in base_pod["volumes"]}
    container = lab_pod["containers"][0]
    return {
        "env": [{"name": k, "value": v} for k, v in sorted(lab_config.items()) if base_config.get(k) != v],
        "volumes": [v for v in lab_pod["volumes"] if v["name"] not in base_volumes],
        "volumeMounts": [m for m in container["volumeMounts"] if m["name"] not in base_volumes],
        "ports": {p["name"]: p["containerPort"] for p in container["ports"]},
        "probeHost": container["readinessProbe"]["httpGet"]["host"],
    }


def install_overlay(install: str, lab: dict) -> str:
    """A kustomization over the release's install.yaml (the file `install`, relative) for the
    one-node cluster: the lab settings as JSON patches, the image never pulled (loaded), and the
    namespace's PodSecurity `enforce` level relaxed to `privileged` (hostNetwork)."""
    container = "/spec/template/spec/containers/0"
    ops = [
        {"op": "add", "path": "/spec/template/spec/hostNetwork", "value": True},
        {"op": "add", "path": "/spec/template/spec/dnsPolicy", "value": "Default"},
        {"op": "replace", "path": f"{container}/imagePullPolicy", "value": "Never"},
        *({"op": "add", "path": f"{container}/env/-", "value": e} for e in lab["env"]),
        *({"op": "add", "path": "/spec/template/spec/volumes/-", "value": v} for v in lab["volumes"]),
        *({"op": "add", "path": f"{container}/volumeMounts/-", "value": m} for m in lab["volumeMounts"]),
        {"op": "replace", "path": f"{container}/ports/0/containerPort", "value": lab["ports"]["health"]},
        {"op": "replace", "path": f"{container}/ports/1/containerPort", "value": lab["ports"]["metrics"]},
        *(
            {"op": "add", "path": f"{container}/{probe}/httpGet/host", "value": lab["probeHost"]}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        ),
    ]
    namespace = [
        {
            "op": "replace",
            "path": "/metadata/labels/pod-security.kubernetes.io~1enforce",
            "value": "privileged",
        }
    ]
    return yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [install],
            "patches": [
                {
                    "target": {"kind": "Deployment", "name": "azure-edition-operator"},
                    "patch": yaml.safe_dump(ops),
                },
                {"target": {"kind": "Namespace", "name": NAMESPACE}, "patch": yaml.safe_dump(namespace)},
            ],
        },
        sort_keys=False,
    )


def chart_values(image: str, lab: dict, tenant_policy: dict) -> dict:
    """Helm values for the one-node cluster: the loaded image (never pulled), workload identity with
    the lab's client and tenant, the tenant of `tenant_policy` onboarded by the chart, and the lab
    settings through the chart's hostNetwork, probeHost, ports and extra* values."""
    repository, tag = image.rsplit(":", 1)
    env = {e["name"]: e["value"] for e in lab["env"]}
    spec = tenant_policy["spec"]
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "credentials": {
            "mode": "workload-identity",
            "workloadIdentity": {"clientId": env["AZURE_CLIENT_ID"], "tenantId": env["AZURE_TENANT_ID"]},
        },
        "tenants": [{"name": tenant_policy["metadata"]["name"], **spec}],
        "hostNetwork": True,
        "probeHost": lab["probeHost"],
        "ports": lab["ports"],
        "extraEnv": lab["env"],
        "extraVolumes": lab["volumes"],
        "extraVolumeMounts": lab["volumeMounts"],
    }


def doc_blocks(text: str, marker: str) -> list[str]:
    """The commands of every ```sh block right after an HTML comment starting with `marker`, in
    order: continuation lines joined, comments dropped."""
    blocks = re.findall(rf"<!-- {re.escape(marker)}[^>]*-->\n```sh\n(.*?)```", text, re.S)
    commands, current = [], ""
    for line in "".join(blocks).splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = re.sub(r"\s+#\s.*$", "", line).rstrip()
        current += line.removesuffix("\\") + (" " if line.endswith("\\") else "")
        if not line.endswith("\\") and current.strip():
            commands.append(current.strip())
            current = ""
    return commands
