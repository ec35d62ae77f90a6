"""Names and helpers the operator lifecycle tests share (their fixtures are in this directory's conftest)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml
from azure.core.exceptions import ResourceNotFoundError

from azure_edition_envtest.stack import (
    Process,
    operator_env,
    start_operator,
)
from azure_edition_operator.azure.specs import Owner, vm_name_for
from azure_edition_simulator.client import SimulatorControl
from tests.conftest import SAMPLES

RG = "rg-branch-a"
OWN_OPERATOR_PREFIX = "e2e-test-operator-killed"
E2E_TIME_SCALE = 0.1


def exists(call: Callable[[], object]) -> bool:
    try:
        call()
    except ResourceNotFoundError:
        return False
    return True


def sample_docs(name: str) -> list[dict]:
    return list(yaml.safe_load_all((SAMPLES / f"{name}.yaml").read_text()))


def get(kubectl, namespace: str, name: str) -> dict:
    return json.loads(kubectl("get", "aevm", name, "-n", namespace, "-o", "json").stdout)


def wait_for(
    predicate: Callable[[], object], timeout: float = 60, every: float = 0.5, what: str = ""
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(every)


def condition(obj: dict, type_: str) -> dict | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def vm_name(obj: dict) -> str:
    return vm_name_for(Owner(obj["metadata"]["namespace"], obj["metadata"]["name"], obj["metadata"]["uid"]))


@contextlib.contextmanager
def own_operator(log: Path, kubeconfig: Path, simulator, namespace: str) -> Iterator[Process]:
    """An operator of the test's own, for ``namespace`` only (the module's operator leaves it alone)."""
    assert namespace.startswith(OWN_OPERATOR_PREFIX)
    proc = start_operator(log, operator_env(kubeconfig, simulator[1]), "--namespace", namespace)
    try:
        yield proc
    finally:
        proc.stop()


def apply_hotpatch_ready(kubectl, namespace: str, check_interval: str) -> None:
    docs = sample_docs("hotpatch")
    docs[1]["spec"]["checkInterval"] = check_interval
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))
    kubectl("wait", "--for=condition=Ready", "aevm/hotpatch", "-n", namespace, "--timeout=60s", timeout=90)


def vm_calls(control: SimulatorControl, name: str, since: int, writes: bool = False) -> list[dict]:
    calls = [r for r in control.requests(since=since) if f"/virtualMachines/{name}" in r.get("path", "")]
    return [r for r in calls if r["method"] != "GET"] if writes else calls
