"""Pure helpers for the one-node e2e (tests/node): the wrapper kustomization, the test CA and the
Prometheus configuration that does what the Prometheus Operator does with deploy/monitoring's
ServiceMonitor."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

OVERLAY = Path(__file__).resolve().parents[2] / "deploy" / "overlays" / "node-e2e"
NAMESPACE = "azure-edition-system"
OPERATOR_METRICS = "127.0.0.1:19090"
OPERATOR_HEALTH = "127.0.0.1:18080"
ARMSIM_ORIGIN = "https://127.0.0.1:18443"


OPERATOR_SUBJECT = f"system:serviceaccount:{NAMESPACE}:azure-edition-operator"


def wrapper_kustomization(into: Path, apiserver_port: int, issuer: str) -> str:
    """The test overlay plus the per-run values: the API server's loopback address for the pods, and
    the simulator's federated credential for this cluster's service-account issuer."""
    federated = ["--federated-credential", issuer, OPERATOR_SUBJECT]
    args_patch = [
        {"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": a} for a in federated
    ]
    return yaml.safe_dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(OVERLAY, into)],
            "configMapGenerator": [
                {
                    "name": "azure-edition-operator-config",
                    "behavior": "merge",
                    "literals": [
                        "KUBERNETES_SERVICE_HOST=127.0.0.1",
                        f"KUBERNETES_SERVICE_PORT={apiserver_port}",
                    ],
                }
            ],
            "patches": [
                {
                    "target": {"kind": "Deployment", "name": "azure-edition-armsim"},
                    "patch": yaml.safe_dump(args_patch),
                }
            ],
        },
        sort_keys=False,
    )


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


def scrape_config(service_monitor: dict, pod: dict, *, address: str) -> dict:
    """One Prometheus scrape job for the ServiceMonitor's first endpoint and one live operator pod,
    with the target labels the Prometheus Operator gives it (namespace, pod, container, service,
    endpoint, job) and the endpoint's honorLabels and path.

    Static, from the pod kubectl returns: Debian's prometheus is built without Kubernetes service
    discovery. With hostNetwork the pod IP is the machine's interface address while the operator
    listens on loopback, so `address` is the target.
    """
    spec = service_monitor["spec"]
    endpoint = spec["endpoints"][0]
    selector = spec["selector"]["matchLabels"]
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in selector.items() if k != "app.kubernetes.io/component"), labels
    service = "azure-edition-operator-metrics"
    return {
        "job_name": f"serviceMonitor/{service_monitor['metadata']['namespace']}/{service_monitor['metadata']['name']}/0",
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "metrics_path": endpoint.get("path", "/metrics"),
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


def prometheus_config(job: dict, rules: Path) -> str:
    return yaml.safe_dump(
        {"global": {"evaluation_interval": "2s"}, "rule_files": [str(rules)], "scrape_configs": [job]},
        sort_keys=False,
    )
