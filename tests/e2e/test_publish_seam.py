"""The one status writer (``publish.publish``) against a real API server, no operator: it writes only
what changed, writes nothing when nothing did, and the daemon's guarded write is refused once the object
moved on (seconds, after the session's control plane)."""

from __future__ import annotations

import json

import pytest

from azure_edition_operator.kube import Conflict, Kube
from azure_edition_operator.publish import publish
from tests.conftest import SAMPLES


def read(kubectl, namespace: str) -> dict:
    return json.loads(kubectl("get", "aevm", "plain-core", "-n", namespace, "-o", "json").stdout)


async def test_publish_writes_changes_only_and_a_raced_guarded_write_is_refused(
    crd, kubeconfig, kubectl, namespace, monkeypatch
):
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES / "plain-core.yaml"))
    kube = await Kube.connect()
    try:
        body = read(kubectl, namespace)
        new = {"phase": "Pending", "observedGeneration": 1, "vm": {"vmId": "a", "powerState": "running"}}
        assert await publish(kube, body, {}, new) == new
        written = read(kubectl, namespace)
        assert written["status"] == new
        version = written["metadata"]["resourceVersion"]
        assert await publish(kube, written, new, dict(new)) == {}  # nothing changed: no request
        assert read(kubectl, namespace)["metadata"]["resourceVersion"] == version
        newer = {**new, "vm": {"vmId": "a", "powerState": "stopped"}}
        assert await publish(kube, written, new, newer, resource_version=version) == {
            "vm": {"powerState": "stopped"}
        }
        with pytest.raises(Conflict):  # ``version`` is stale now: the daemon's round must not overwrite
            await publish(kube, written, newer, {**newer, "phase": "Ready"}, resource_version=version)
        assert read(kubectl, namespace)["status"] == newer
    finally:
        await kube.close()
