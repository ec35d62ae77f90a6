"""The e2e stack of the operator's own test modules, and what other modules borrow from it (import the
fixtures by name: module scope, so each importing module runs its own): a simulator with Azure's timing
scaled, real SDK clients looking at it, the module's operator for every namespace except those of tests
that run an operator of their own (``OWN_OPERATOR_PREFIX``), and the helpers those tests share."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.network import NetworkManagementClient

from azure_edition_envtest.stack import (
    Process,
    operator_env,
    simulator_timing_args,
    start_operator,
    start_simulator,
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


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, dict[str, str]]]:
    # Azure's timing (durations, Retry-After 10-35 s or absent) shrunk for CI: VM create 3-6 s.
    proc, env = start_simulator(tmp_path_factory.mktemp("armsim"), *simulator_timing_args(E2E_TIME_SCALE))
    yield proc, env
    proc.stop()


@pytest.fixture(scope="module")
def control(simulator) -> SimulatorControl:
    return SimulatorControl.from_env(simulator[1])


@pytest.fixture(scope="module")
def arm(simulator):
    """Real (sync) SDK clients against the simulator, to look at Azure the way a user would."""
    env = simulator[1]
    common = {"connection_verify": env["ARMSIM_CA_CERT"]}
    credential = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
                                        authority=env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True,
                                        **common)  # fmt: skip
    kwargs = {"base_url": env["AZURE_RESOURCE_MANAGER_ENDPOINT"],
              "credential_scopes": [env["AZURE_RESOURCE_MANAGER_SCOPE"]], **common}  # fmt: skip
    sub = env["AZURE_SUBSCRIPTION_ID"]
    return ComputeManagementClient(credential, sub, **kwargs), NetworkManagementClient(
        credential, sub, **kwargs
    )


@pytest.fixture(scope="module")
def operator_proc(crd, kubeconfig: Path, simulator, tmp_path_factory) -> Iterator[Process]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    # Every namespace except those of tests that run an operator instance of their own.
    proc = start_operator(
        log, operator_env(kubeconfig, simulator[1]), "--namespace", f"!{OWN_OPERATOR_PREFIX}*"
    )
    yield proc
    proc.stop()
    print(proc.tail(80))


@pytest.fixture
def operator(operator_proc: Process) -> Process:
    assert operator_proc.alive(), operator_proc.tail()
    return operator_proc
