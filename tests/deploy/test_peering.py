"""The peering overlay with the real operator: two replicas, one active, failover.

Runs two operator processes on this machine exactly as the overlay's pods would: the overlay's
container command (random `--priority`), its ConfigMap's AEO_PEERING, POD_ID per replica, and the
ServiceAccount's token plus the overlay's peering RBAC. No AzureEditionVM exists, so Azure is never
called; what is under test is kopf peering through our manifests.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from azure_edition_envtest.controlplane import free_ports
from azure_edition_envtest.stack import Process
from tests.deploy.support import DEPLOY, config_data, find, kustomize, operator_container
from tests.e2e.conftest import wait_established

pytestmark = pytest.mark.e2e

PEERING = DEPLOY / "overlays" / "peering"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture
def peering_installed(kubectl, operator_rbac) -> Iterator[list[dict]]:
    """kopf's CRDs, the overlay's ClusterKopfPeering and peering RBAC; the RBAC is removed afterwards
    (the base's least privilege is what the other tests expect)."""
    objects = kustomize(PEERING)
    kubectl("apply", "-k", str(DEPLOY / "kopf-peering"))
    wait_established(kubectl, "clusterkopfpeerings.kopf.dev")
    extra = [
        find(objects, "ClusterRole", "azure-edition-operator-peering"),
        find(objects, "ClusterRoleBinding", "azure-edition-operator-peering"),
    ]
    peering = find(objects, "ClusterKopfPeering")
    kubectl("delete", "clusterkopfpeering", peering["metadata"]["name"], "--ignore-not-found")
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all([*extra, peering]))
    yield objects
    kubectl("delete", "clusterrolebinding", "azure-edition-operator-peering", "--ignore-not-found")
    kubectl("delete", "clusterrole", "azure-edition-operator-peering", "--ignore-not-found")


def start_replica(objects: list[dict], name: str, kubeconfig: Path, log: Path) -> Process:
    container = operator_container(objects)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AEO_", "AZURE_"))}
    env.update(config_data(objects))
    health, metrics = free_ports(2)
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",  # `python` = this venv's
            "KUBECONFIG": str(kubeconfig),
            "POD_ID": name,
            "AEO_HEALTH_ADDRESS": f"127.0.0.1:{health}",
            "AEO_METRICS_ADDRESS": f"127.0.0.1:{metrics}",
            "AEO_LOG_FORMAT": "text",
        }
    )
    # The pod's command, with Kubernetes' `$$` escape resolved as the kubelet would.
    command = [part.replace("$$", "$") for part in container["command"]]
    return Process.spawn(name, command, log, env)


def stop(process: Process) -> None:
    process.stop(grace=20)


def is_active(log: str) -> bool:
    """kopf starts a peering replica paused and logs each change: "Resuming operations after the
    pause" when it may work, "Pausing operations in favour of ..." when a higher priority appears."""
    return log.rfind("Resuming operations after the pause") > log.rfind("Pausing operations in favour of")


def peers(kubectl, name: str) -> dict[str, dict]:
    obj = json.loads(kubectl("get", "clusterkopfpeering", name, "-o", "json").stdout)
    return obj.get("status") or {}


def test_two_replicas_one_active_and_failover(kubectl, peering_installed, operator_kubeconfig, tmp_path):
    objects = peering_installed
    name = find(objects, "ClusterKopfPeering")["metadata"]["name"]
    logs = {replica: tmp_path / f"{replica}.log" for replica in ("replica-a", "replica-b")}
    processes: dict[str, Process] = {}
    try:
        # Staggered, as a rolling update starts them.
        processes["replica-a"] = start_replica(objects, "replica-a", operator_kubeconfig, logs["replica-a"])
        wait_until(lambda: "replica-a" in peers(kubectl, name), "replica-a's keep-alive")
        processes["replica-b"] = start_replica(objects, "replica-b", operator_kubeconfig, logs["replica-b"])
        wait_until(lambda: set(peers(kubectl, name)) == {"replica-a", "replica-b"}, "both keep-alives")

        priorities = {replica: info["priority"] for replica, info in peers(kubectl, name).items()}
        assert priorities["replica-a"] != priorities["replica-b"], "each replica draws its own priority"
        active = max(priorities, key=priorities.get)
        standby = min(priorities, key=priorities.get)
        wait_until(lambda: is_active(logs[active].read_text()), f"{active} to work")
        time.sleep(3)  # several keep-alive rounds: the standby has seen the active replica
        assert not is_active(logs[standby].read_text()), logs[standby].read_text()

        # Failover: the active replica stops; it removes its keep-alive and the standby resumes.
        stop(processes[active])
        wait_until(lambda: active not in peers(kubectl, name), f"{active} to leave the peering")
        wait_until(lambda: is_active(logs[standby].read_text()), f"{standby} to take over")
        for log in logs.values():
            assert "forbidden" not in log.read_text().lower(), log.read_text()
    finally:
        for process in processes.values():
            stop(process)
