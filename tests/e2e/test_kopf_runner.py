"""Smoke test: the handlers in-process under kopf.testing.KopfRunner (real API server, simulator)."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from kopf.testing import KopfRunner

from azure_edition_envtest.stack import free_port, operator_env, start_simulator
from tests.conftest import SAMPLES


def test_handlers_run_in_process_to_ready(crd, kubeconfig, kubectl, namespace, tmp_path, monkeypatch):
    proc, sim_env = start_simulator(tmp_path / "armsim", "--provisioning-seconds", "1", "--retry-after", "1")
    try:
        for key, value in operator_env(kubeconfig, sim_env).items():
            monkeypatch.setenv(key, value)
        # kopf logs in through kubernetes_asyncio (as in the image), whose default kubeconfig path is
        # fixed at import.
        import kubernetes_asyncio.config.kube_config

        monkeypatch.setattr(
            kubernetes_asyncio.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig)
        )
        # The settings come from the environment (single_tenant as in stack.operator_env): the startup
        # handler reads them when no memo was given, as under `kopf run -m`.
        monkeypatch.setenv("AEO_METRICS_ADDRESS", f"127.0.0.1:{free_port()}")
        args = ["run", "--standalone", "--namespace", namespace, "-m", "azure_edition_operator.handlers"]
        with KopfRunner(args, timeout=120) as runner:
            kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "plain-core.yaml"))
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                obj = json.loads(kubectl("get", "aevm", "plain-core", "-n", namespace, "-o", "json").stdout)
                provisioned = next((c for c in obj.get("status", {}).get("conditions", [])
                                    if c["type"] == "VMProvisioned"), {})  # fmt: skip
                if provisioned.get("status") == "True":
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"VMProvisioned never True: {yaml.safe_dump(obj.get('status'))}")
            kubectl("delete", "aevm", "plain-core", "-n", namespace, "--timeout=60s", timeout=90)
        assert runner.exit_code == 0, runner.output
        assert runner.exception is None
        assert "reconcile" in runner.output
    finally:
        proc.stop()
