"""The stack each module of this directory runs once (module scope: a module of its own gets its own): a
simulator with Azure's timing scaled, real SDK clients looking at it, and the module's operator for every
namespace except those of tests that run an operator of their own (``helpers.OWN_OPERATOR_PREFIX``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
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
from azure_edition_simulator.client import SimulatorControl
from tests.e2e.lifecycle.helpers import E2E_TIME_SCALE, OWN_OPERATOR_PREFIX


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
