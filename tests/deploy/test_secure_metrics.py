"""/metrics over HTTPS with Kubernetes authentication and authorization, scraped by a real Prometheus.

The operator runs as a process exactly as deploy/base configures its pod (the ConfigMap's settings,
the ServiceAccount's token and RBAC), on the plain control plane: no AzureEditionVM exists, so Azure
is never called. Debian's Prometheus scrapes it three ways, with `authorization.credentials_file` as
the Prometheus Operator's ServiceMonitor does with a ServiceAccount token: with a token bound to
ClusterRole azure-edition-operator-metrics-reader (scraped), with none (401) and with a token whose
user lacks that binding (403). Its TLS is verified against the certificate the operator serves.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from azure_edition_envtest.bench.measure import apiserver_request_totals
from azure_edition_envtest.controlplane import free_ports
from azure_edition_envtest.stack import Process, wait_for_port
from tests.deploy.support import DEPLOY, config_data, find, kustomize, require_tool

pytestmark = pytest.mark.e2e

READER = "azure-edition-operator-metrics-reader"


def wait_until(condition: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture
def operator(operator_kubeconfig: Path, tmp_path: Path) -> Iterator[tuple[str, Process]]:
    """The operator with deploy/base's settings (secure /metrics, a self-signed certificate) and token."""
    objects = kustomize(DEPLOY / "base")
    settings = config_data(objects)
    assert settings["AEO_METRICS_SECURE"] == "true"
    assert find(objects, "ClusterRole", READER)["rules"] == [
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AEO_", "AZURE_"))}
    env.update(settings)
    health, metrics = free_ports(2)
    env.update({
        "KUBECONFIG": str(operator_kubeconfig),
        "AEO_HEALTH_ADDRESS": f"127.0.0.1:{health}",
        "AEO_METRICS_ADDRESS": f"127.0.0.1:{metrics}",
        "AEO_LOG_FORMAT": "text",
        "AEO_NAMESPACES": "aeo-secure-metrics-none",  # nothing to reconcile: only /metrics is under test
    })  # fmt: skip
    process = Process.spawn(
        "operator", [sys.executable, "-m", "azure_edition_operator"], tmp_path / "op.log", env
    )
    try:
        wait_for_port(env["AEO_METRICS_ADDRESS"], process, "operator /metrics", 60)
        yield env["AEO_METRICS_ADDRESS"], process
    finally:
        process.stop(grace=20)


@pytest.fixture
def scrapers(kubectl, namespace: str) -> Iterator[dict[str, str]]:
    """Two ServiceAccounts' tokens: `prometheus` bound to the metrics-reader ClusterRole, `stranger` not."""
    binding = f"{namespace}-metrics-reader"
    kubectl("create", "serviceaccount", "prometheus", "-n", namespace)
    kubectl("create", "serviceaccount", "stranger", "-n", namespace)
    kubectl("create", "clusterrolebinding", binding, f"--clusterrole={READER}",
            f"--serviceaccount={namespace}:prometheus")  # fmt: skip
    try:
        yield {
            sa: kubectl("create", "token", sa, "-n", namespace, "--duration=1h").stdout.strip()
            for sa in ("prometheus", "stranger")
        }
    finally:
        kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")


def get(url: str, context: ssl.SSLContext, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), context=context, timeout=15
        ) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def scrape_job(name: str, address: str, ca_file: Path, token_file: Path | None) -> dict:
    job: dict = {
        "job_name": name,
        "scheme": "https",
        "metrics_path": "/metrics",
        "scrape_interval": "1s",
        "scrape_timeout": "900ms",
        "tls_config": {"ca_file": str(ca_file)},
        "static_configs": [{"targets": [address]}],
    }
    if token_file is not None:
        job["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
    return job


def targets(base: str) -> dict[str, dict]:
    with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as response:
        active = json.loads(response.read())["data"]["activeTargets"]
    return {t["labels"]["job"]: t for t in active}


def reviews(kubectl) -> dict[str, float]:
    """TokenReviews and SubjectAccessReviews the API server has answered (its own counter)."""
    totals = apiserver_request_totals(kubectl("get", "--raw", "/metrics", timeout=60).stdout)
    wanted = {"tokenreviews": 0.0, "subjectaccessreviews": 0.0}
    for (verb, resource, _sub, _code), value in totals.items():
        if verb == "POST" and resource in wanted:
            wanted[resource] += value
    return wanted


def test_prometheus_scrapes_with_a_token_and_is_refused_without_one(operator, scrapers, tmp_path, kubectl):
    address, process = operator
    before = reviews(kubectl)
    host, _, port = address.rpartition(":")
    served = ssl.get_server_certificate((host, int(port)))
    ca_file = tmp_path / "served.crt"
    ca_file.write_text(served)
    verified = ssl.create_default_context(cafile=str(ca_file))  # the certificate names 127.0.0.1

    # The endpoint itself: HTTPS only, a token needed, and the right one.
    url = f"https://{address}/metrics"
    assert get(url, verified)[0] == 401
    assert get(url, verified, "not-a-token")[0] == 401
    assert get(url, verified, scrapers["stranger"])[0] == 403
    status, page = get(url, verified, scrapers["prometheus"])
    assert status == 200 and "azureedition_build_info{" in page
    with pytest.raises(OSError):  # no plain HTTP beside it
        urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read()

    prometheus = require_tool("prometheus", "run `make node-tools` (Debian's prometheus package)")
    tokens = {}
    for sa, token in scrapers.items():
        tokens[sa] = tmp_path / f"{sa}.token"
        tokens[sa].write_text(token)
    jobs = [
        scrape_job("with-token", address, ca_file, tokens["prometheus"]),
        scrape_job("no-token", address, ca_file, None),
        scrape_job("without-rbac", address, ca_file, tokens["stranger"]),
    ]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": jobs}))
    (prom_port,) = free_ports(1)
    base = f"http://127.0.0.1:{prom_port}"
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path}/data",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:

        def scraped() -> dict[str, dict] | None:
            try:
                found = targets(base)
            except OSError:
                return None
            done = len(found) == 3 and all(t.get("lastScrape", "").startswith("20") for t in found.values())
            return found if done and found["with-token"]["health"] == "up" else None

        found = wait_until(scraped, "three scrapes", 90)
        assert found["with-token"]["health"] == "up", found["with-token"]
        assert found["no-token"]["health"] == "down"
        assert "401" in found["no-token"]["lastError"], found["no-token"]
        assert found["without-rbac"]["health"] == "down"
        assert "403" in found["without-rbac"]["lastError"], found["without-rbac"]
        query = urllib.parse.urlencode({"query": "azureedition_build_info"})
        with urllib.request.urlopen(f"{base}/api/v1/query?{query}", timeout=5) as response:
            series = json.loads(response.read())["data"]["result"]
        assert {s["metric"]["job"] for s in series} == {"with-token"}, series
        # The decisions are cached: a scrape a second for 10 s more asks the API server about each token
        # once (the direct requests above included), and a refusal again only after its shorter TTL.
        time.sleep(10)
        query = urllib.parse.urlencode({"query": 'count_over_time(up{job="with-token"}[1m])'})
        with urllib.request.urlopen(f"{base}/api/v1/query?{query}", timeout=5) as response:
            scrapes = float(json.loads(response.read())["data"]["result"][0]["value"][1])
        asked = {k: v - before[k] for k, v in reviews(kubectl).items()}
        assert scrapes >= 10, scrapes
        assert asked["tokenreviews"] <= 3, asked  # not-a-token, stranger, prometheus: once each
        assert 2 <= asked["subjectaccessreviews"] <= 6, asked  # stranger's refusal expires every 10 s
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert process.alive()
    text = (tmp_path / "op.log").read_text()
    assert "could not review" not in text, text
