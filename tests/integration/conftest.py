"""Fixtures that run the ARM simulator (in-process or as a subprocess) and build real SDK clients for it.

Nothing here is autouse: other integration tests in this directory are unaffected unless they ask for
a fixture. The in-process simulator is session-wide; ``sim`` resets its world, faults, throttle buckets,
counters and knobs before each test so tests stay independent and fast (provisioning 0 s, Retry-After 0).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.identity import ClientSecretCredential, WorkloadIdentityCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as cm
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network import models as nm

from azure_edition_envtest.stack import Process, start_simulator
from azure_edition_simulator import Simulator, SimulatorControl, load_env_file
from azure_edition_simulator.throttle import ThrottleConfig

RESOURCE_GROUP = "rg-branch-a"
LOCATION = "westeurope"
HOTPATCH_SKU = "2022-datacenter-azure-edition-core"
ADMIN_PASSWORD = "Sim-Passw0rd!2026"
# LRO poll period: azure-core uses it whenever Retry-After is 0, which these tests configure.
POLLING_INTERVAL = 0.01


@pytest.fixture(scope="session")
def simulator_session() -> Iterator[Simulator]:
    """One in-process simulator for the whole session (random HTTPS and QUIC ports)."""
    with Simulator.start(provisioning_seconds=0, retry_after_seconds=0, quic_port=0) as simulator:
        yield simulator


@pytest.fixture
def sim(simulator_session: Simulator) -> Simulator:
    """The session simulator, reset to its seeded world with fast, predictable knobs."""
    control = simulator_session.control
    control.reset_world()
    defaults = {name: spec.to_dict() for name, spec in ThrottleConfig().buckets.items()}
    control.configure_throttling(enabled=True, **defaults)
    control.set_timing("instant")
    control.set_consistency_rate(0, not_found=False)
    control.expire_operations(None)
    control.set_policy(None, False)
    control.set_provisioning_seconds(0)
    control.set_retry_after(0)
    control.set_token_lifetime(3600)
    control.set_guest_defaults(enableSmbQuic=True)
    return simulator_session


@pytest.fixture
def control(sim: Simulator) -> SimulatorControl:
    return sim.control


def client_kwargs(sim: Simulator, **overrides: Any) -> dict[str, Any]:
    """The exact keyword arguments the real SDK clients need to talk to the simulator."""
    kwargs: dict[str, Any] = {
        "base_url": sim.endpoint,
        "credential_scopes": [sim.credential_scope],
        "connection_verify": str(sim.ca_path),
        "polling_interval": POLLING_INTERVAL,
        "retry_backoff_factor": 0.01,
    }
    kwargs.update(overrides)
    return kwargs


def secret_credential(sim: Simulator) -> ClientSecretCredential:
    return ClientSecretCredential(
        sim.tenant_id,
        sim.client_id,
        sim.client_secret,
        authority=sim.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(sim.ca_path),
    )


def workload_credential(sim: Simulator, token_file: Path | None = None) -> WorkloadIdentityCredential:
    return WorkloadIdentityCredential(
        tenant_id=sim.tenant_id,
        client_id=sim.client_id,
        token_file_path=str(token_file or sim.federated_token_file),
        authority=sim.authority_host,
        connection_verify=str(sim.ca_path),
    )


@dataclass
class Clients:
    """Real SDK clients bound to the simulator."""

    compute: ComputeManagementClient
    network: NetworkManagementClient


@pytest.fixture
def make_clients(sim: Simulator) -> Iterator[Callable[..., Clients]]:
    """Factory: ``make_clients(credential=None, **client_kwargs)`` (default: client secret)."""
    made: list[Any] = []

    def make(credential: Any = None, **overrides: Any) -> Clients:
        credential = credential or secret_credential(sim)
        kwargs = client_kwargs(sim, **overrides)
        clients = Clients(
            ComputeManagementClient(credential, sim.subscription_id, **kwargs),
            NetworkManagementClient(credential, sim.subscription_id, **kwargs),
        )
        made.extend([clients.compute, clients.network])
        return clients

    yield make
    for client in made:
        client.close()


@pytest.fixture
def clients(make_clients: Callable[..., Clients]) -> Clients:
    return make_clients()


@pytest.fixture
def strict(make_clients: Callable[..., Clients]) -> Clients:
    """Clients that never retry, so 429/5xx/dropped connections surface to the test."""
    return make_clients(retry_total=0)


# --- builders ------------------------------------------------------------------------------------------


def subnet_id(sim: Simulator, name: str = "servers") -> str:
    return (
        f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/"
        f"virtualNetworks/vnet-branch-a/subnets/{name}"
    )


def hotpatch_settings(**overrides: Any) -> cm.PatchSettings:
    """Hotpatch onboarding (docs/capabilities.md)."""
    platform = cm.WindowsVMGuestPatchAutomaticByPlatformSettings(
        reboot_setting=overrides.pop("reboot_setting", "IfRequired"),
        bypass_platform_safety_checks_on_user_schedule=overrides.pop("bypass", False),
    )
    values: dict[str, Any] = {
        "patch_mode": "AutomaticByPlatform",
        "enable_hotpatching": True,
        "assessment_mode": "AutomaticByPlatform",
        "automatic_by_platform_settings": platform,
    }
    values.update(overrides)
    return cm.PatchSettings(**values)


def vm_model(
    nic_ids: list[str],
    *,
    sku: str = HOTPATCH_SKU,
    patch_settings: cm.PatchSettings | None = None,
    provision_vm_agent: bool = True,
    os_disk_delete: str = "Delete",
    tags: dict[str, str] | None = None,
    location: str = LOCATION,
) -> cm.VirtualMachine:
    return cm.VirtualMachine(
        location=location,
        tags=tags or {"costCenter": "42"},
        hardware_profile=cm.HardwareProfile(vm_size="Standard_D2as_v5"),
        storage_profile=cm.StorageProfile(
            image_reference=cm.ImageReference(
                publisher="MicrosoftWindowsServer", offer="WindowsServer", sku=sku, version="latest"
            ),
            os_disk=cm.OSDisk(
                create_option="FromImage",
                delete_option=os_disk_delete,
                managed_disk=cm.ManagedDiskParameters(storage_account_type="Premium_LRS"),
            ),
        ),
        os_profile=cm.OSProfile(
            computer_name="branch-fs-01",
            admin_username="azureuser",
            admin_password=ADMIN_PASSWORD,
            windows_configuration=cm.WindowsConfiguration(
                provision_vm_agent=provision_vm_agent,
                enable_automatic_updates=True,
                patch_settings=patch_settings if patch_settings is not None else hotpatch_settings(),
            ),
        ),
        network_profile=cm.NetworkProfile(
            network_interfaces=[
                cm.NetworkInterfaceReference(id=nic_id, primary=index == 0)
                for index, nic_id in enumerate(nic_ids)
            ]
        ),
    )


class Arm:
    """Helpers that create simulated resources through the real SDKs."""

    def __init__(self, sim: Simulator, clients: Clients):
        self.sim = sim
        self.clients = clients

    def public_ip(self, name: str = "pip-fs01") -> nm.PublicIPAddress:
        model = nm.PublicIPAddress(
            location=LOCATION,
            sku=nm.PublicIPAddressSku(name="Standard"),
            public_ip_allocation_method="Static",
        )
        return self.clients.network.public_ip_addresses.begin_create_or_update(
            RESOURCE_GROUP, name, model
        ).result()

    def nic(
        self, name: str = "nic-fs01", *, public_ip_id: str | None = None, subnet: str | None = None
    ) -> nm.NetworkInterface:
        config = nm.NetworkInterfaceIPConfiguration(
            name="ipconfig1",
            subnet=nm.Subnet(id=subnet or subnet_id(self.sim)),
            public_ip_address=nm.PublicIPAddress(id=public_ip_id) if public_ip_id else None,
        )
        model = nm.NetworkInterface(location=LOCATION, ip_configurations=[config])
        return self.clients.network.network_interfaces.begin_create_or_update(
            RESOURCE_GROUP, name, model
        ).result()

    def vm(
        self, name: str = "branch-fs-01", *, public_ip: bool = True, **model_kwargs: Any
    ) -> cm.VirtualMachine:
        pip = self.public_ip(f"{name}-pip") if public_ip else None
        nic = self.nic(f"{name}-nic", public_ip_id=pip.id if pip else None)
        model = vm_model([nic.id], **model_kwargs)
        return self.clients.compute.virtual_machines.begin_create_or_update(
            RESOURCE_GROUP, name, model
        ).result()


@pytest.fixture
def arm(sim: Simulator, clients: Clients) -> Arm:
    return Arm(sim, clients)


# --- the simulator as a subprocess ------------------------------------------------------------------------


@dataclass
class SimulatorProcess:
    """The simulator CLI as a process (``stack.start_simulator``), with its state dir."""

    proc: Process
    state_dir: Path

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.proc.popen

    @property
    def env_file(self) -> Path:
        return self.state_dir / "armsim.env"

    @property
    def log_file(self) -> Path:
        return self.proc.log

    @property
    def env(self) -> dict[str, str]:
        return load_env_file(self.env_file)

    def stop(self) -> int:
        return self.proc.stop(grace=15)


def start_simulator_process(state_dir: Path, *extra_args: str, timeout: float = 30.0) -> SimulatorProcess:
    """``python -m azure_edition_simulator`` with a state dir; returns once its env file exists."""
    proc, _env = start_simulator(state_dir, *extra_args, quic_port=0, timeout=timeout)
    return SimulatorProcess(proc, state_dir)


@pytest.fixture
def simulator_process(tmp_path: Path) -> Iterator[SimulatorProcess]:
    """The CLI simulator in a subprocess with a state dir; stopped (SIGTERM) at teardown."""
    proc = start_simulator_process(tmp_path / "state", "--provisioning-seconds", "0", "--retry-after", "0")
    try:
        yield proc
    finally:
        proc.stop()
