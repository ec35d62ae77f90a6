"""The CLI simulator in a subprocess: its env file is all a client needs, and its state dir survives restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from cryptography import x509

from azure_edition_operator.checks.smb_probe import probe_smb_quic
from azure_edition_simulator import ControlError, SimulatorControl
from azure_edition_simulator.certs import default_authority

from .conftest import RESOURCE_GROUP, SimulatorProcess, start_simulator_process

pytestmark = pytest.mark.integration

ENV_NAMES = {
    "AZURE_RESOURCE_MANAGER_ENDPOINT",
    "AZURE_RESOURCE_MANAGER_SCOPE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_SUBSCRIPTION_ID",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "ARMSIM_CA_CERT",
    "ARMSIM_GUEST_CA_CERT",
    "ARMSIM_CONTROL_URL",
    "ARMSIM_QUIC_PORT",
    "ARMSIM_LOOPBACK_BLOCK",
    "ARMSIM_LOCATION",
    "ARMSIM_RESOURCE_GROUP",
    "ARMSIM_SUBNET_ID",
    "ARMSIM_EXTENDED_SUBNET_ID",
    "ARMSIM_STATE_DIR",
    "ARMSIM_PROFILE",
    "ARMSIM_TIME_SCALE",
}

# A client that knows nothing but the environment: DefaultAzureCredential, sync and aio SDK clients,
# TLS trust from SSL_CERT_FILE / REQUESTS_CA_BUNDLE (no connection_verify anywhere).
CLIENT_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from azure.identity import DefaultAzureCredential
    from azure.identity.aio import DefaultAzureCredential as AioCredential
    from azure.mgmt.compute import ComputeManagementClient, models as cm
    from azure.mgmt.compute.aio import ComputeManagementClient as AioCompute
    from azure.mgmt.network import NetworkManagementClient, models as nm

    env = os.environ
    kwargs = dict(base_url=env["AZURE_RESOURCE_MANAGER_ENDPOINT"],
                  credential_scopes=[env["AZURE_RESOURCE_MANAGER_SCOPE"]], polling_interval=0.01)
    credential = DefaultAzureCredential(disable_instance_discovery=True)
    network = NetworkManagementClient(credential, env["AZURE_SUBSCRIPTION_ID"], **kwargs)
    compute = ComputeManagementClient(credential, env["AZURE_SUBSCRIPTION_ID"], **kwargs)
    rg, location = env["ARMSIM_RESOURCE_GROUP"], env["ARMSIM_LOCATION"]
    nic = network.network_interfaces.begin_create_or_update(rg, "nic-cli", nm.NetworkInterface(
        location=location, ip_configurations=[nm.NetworkInterfaceIPConfiguration(
            name="ipconfig1", subnet=nm.Subnet(id=env["ARMSIM_SUBNET_ID"]))])).result()
    vm = compute.virtual_machines.begin_create_or_update(rg, "vm-cli", cm.VirtualMachine(
        location=location,
        hardware_profile=cm.HardwareProfile(vm_size="Standard_D2as_v5"),
        storage_profile=cm.StorageProfile(image_reference=cm.ImageReference(
            publisher="MicrosoftWindowsServer", offer="WindowsServer",
            sku="2025-datacenter-azure-edition-core", version="latest")),
        os_profile=cm.OSProfile(computer_name="vm-cli", admin_username="azureuser", admin_password="Pw-0123456789!",
            windows_configuration=cm.WindowsConfiguration(patch_settings=cm.PatchSettings(
                patch_mode="AutomaticByPlatform", enable_hotpatching=True))),
        network_profile=cm.NetworkProfile(network_interfaces=[cm.NetworkInterfaceReference(id=nic.id)]),
    )).result()

    async def aio():
        async with AioCredential(disable_instance_discovery=True) as credential:
            async with AioCompute(credential, env["AZURE_SUBSCRIPTION_ID"], **kwargs) as client:
                return (await client.virtual_machines.get(rg, "vm-cli")).provisioning_state

    json.dump({"vmId": vm.vm_id, "state": vm.provisioning_state, "aio": asyncio.run(aio())}, sys.stdout)
    """
)


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_client(env: dict[str, str]) -> dict[str, str]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "ARMSIM_"))}
    child_env.update(env)
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_env_file_names_everything_a_client_needs(simulator_process: SimulatorProcess) -> None:
    env = simulator_process.env
    assert set(env) == ENV_NAMES
    endpoint = env["AZURE_RESOURCE_MANAGER_ENDPOINT"]
    assert endpoint.startswith("https://127.0.0.1:")
    assert env["AZURE_AUTHORITY_HOST"] == endpoint
    assert env["AZURE_RESOURCE_MANAGER_SCOPE"] == f"{endpoint}/.default"
    assert env["ARMSIM_CONTROL_URL"] == f"{endpoint}/_simulator"
    for name in ("SSL_CERT_FILE", "ARMSIM_CA_CERT", "AZURE_FEDERATED_TOKEN_FILE"):
        assert Path(env[name]).is_file(), name
    assert Path(env["ARMSIM_CA_CERT"]).read_text() in Path(env["SSL_CERT_FILE"]).read_text()
    info = SimulatorControl.from_env(env).info()
    assert info["quicPort"] == int(env["ARMSIM_QUIC_PORT"])
    # Plain HTTPS with the simulator CA: the server certificate is valid for 127.0.0.1.
    assert (
        requests.get(f"{endpoint}/_simulator/info", verify=env["ARMSIM_CA_CERT"], timeout=10).status_code
        == 200
    )


def test_a_client_configured_only_by_the_env_file_creates_a_vm(simulator_process: SimulatorProcess) -> None:
    result = _run_client(simulator_process.env)
    assert result["state"] == "Succeeded"
    assert result["aio"] == "Succeeded"


def test_restart_with_the_same_state_dir_keeps_world_identity_and_ca(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = _free_tcp_port()
    first = start_simulator_process(
        state, "--port", str(port), "--provisioning-seconds", "0", "--retry-after", "0"
    )
    try:
        env_before = first.env
        created = _run_client(env_before)
        SimulatorControl.from_env(env_before).set_guest(RESOURCE_GROUP, "vm-cli", rebootPending=True)
        ca_before = Path(env_before["ARMSIM_CA_CERT"]).read_bytes()
    finally:
        assert first.stop() == 0
    second = start_simulator_process(state, "--port", str(port))
    try:
        env_after = second.env
        assert env_after["AZURE_CLIENT_SECRET"] == env_before["AZURE_CLIENT_SECRET"]
        assert Path(env_after["ARMSIM_CA_CERT"]).read_bytes() == ca_before
        control = SimulatorControl.from_env(env_after)
        vms = {vm["name"]: vm for vm in control.vms()}
        assert vms["vm-cli"]["provisioningState"] == "Succeeded"
        assert vms["vm-cli"]["guest"]["rebootPending"] is True
        token = requests.post(
            f"{env_after['AZURE_AUTHORITY_HOST']}/{env_after['AZURE_TENANT_ID']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": env_after["AZURE_CLIENT_ID"],
                "client_secret": env_after["AZURE_CLIENT_SECRET"],
                "scope": env_after["AZURE_RESOURCE_MANAGER_SCOPE"],
            },
            verify=env_after["ARMSIM_CA_CERT"],
            timeout=10,
        ).json()["access_token"]
        vm = requests.get(
            f"{env_after['AZURE_RESOURCE_MANAGER_ENDPOINT']}/subscriptions/{env_after['AZURE_SUBSCRIPTION_ID']}"
            f"/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/vm-cli",
            params={"api-version": "2026-04-01"},
            headers={"Authorization": f"Bearer {token}"},
            verify=env_after["ARMSIM_CA_CERT"],
            timeout=10,
        ).json()
        assert vm["properties"]["vmId"] == created["vmId"]
    finally:
        assert second.stop() == 0


def test_sigterm_stops_the_simulator_cleanly(simulator_process: SimulatorProcess) -> None:
    simulator_process.process.send_signal(signal.SIGTERM)
    assert simulator_process.process.wait(timeout=15) == 0


def test_cli_flags_reach_the_running_simulator(tmp_path: Path) -> None:
    proc = start_simulator_process(
        tmp_path / "state",
        "--provisioning-seconds",
        "2.5",
        "--retry-after",
        "3",
        "--throttle-vm-update",
        "5/30",
        "--no-throttling",
        "--tls-san",
        "azure-edition-armsim.azure-edition-system.svc",
    )
    try:
        info = SimulatorControl.from_env(proc.env).info()
        server_cert = x509.load_pem_x509_certificate((proc.state_dir / "server.pem").read_bytes())
        names = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "azure-edition-armsim.azure-edition-system.svc" in names.get_values_for_type(x509.DNSName)
        assert (proc.state_dir / "ca.crt").read_bytes() == Path(proc.env["ARMSIM_CA_CERT"]).read_bytes()
        assert info["settings"]["provisioningSeconds"] == 2.5
        assert info["settings"]["retryAfterSeconds"] == 3
        assert info["throttling"]["enabled"] is False
        assert info["throttling"]["buckets"]["vmUpdate"] == {"capacity": 5.0, "refillPerSecond": 0.5}
    finally:
        assert proc.stop() == 0


def test_cli_azure_profile_flags(tmp_path: Path) -> None:
    proc = start_simulator_process(
        tmp_path / "azure", "--profile", "azure", "--time-scale", "0.5", "--seed", "3", "--no-policy"
    )
    try:
        env = proc.env
        assert env["ARMSIM_PROFILE"] == "azure" and env["ARMSIM_TIME_SCALE"] == "0.5"
        assert env["AZURE_POLLING_INTERVAL"] == "7.5"  # the client's fallback poll period, scaled too
        control = SimulatorControl.from_env(env)
        settings = control.set_timing("azure", 0.5)  # returns the settings; seed kept
        assert settings["seed"] == 3 and settings["consistencyRate"] == 0.02
        assert settings["policy"]["enabled"] is False
        with pytest.raises(ControlError):
            control.set_policy({"a": "b"}, False)
    finally:
        assert proc.stop() == 0


def test_guest_certificates_from_ca_chain_to_the_simulators_own_ca(tmp_path: Path) -> None:
    """With --guest-certificates-from-ca (deploy/components/simulator-demo) one trust bundle, the CA
    an administrator gave the simulator, verifies ARM's TLS and the guests' SMB over QUIC certificates."""
    proc = start_simulator_process(tmp_path / "state", "--guest-certificates-from-ca")
    try:
        control = SimulatorControl.from_env(proc.env)
        ca = x509.load_pem_x509_certificate(Path(proc.env["ARMSIM_CA_CERT"]).read_bytes())
        assert (
            Path(proc.env["ARMSIM_GUEST_CA_CERT"]).read_bytes()
            == Path(proc.env["ARMSIM_CA_CERT"]).read_bytes()
        )
        _run_client(proc.env)
        control.set_certificate(RESOURCE_GROUP, "vm-cli", "fs.example.test", {"validDays": 30})
        quic = next(vm["quic"] for vm in control.vms() if vm["name"] == "vm-cli")
        served = asyncio.run(probe_smb_quic(quic["host"], quic["port"], "fs.example.test", roots=(ca,)))
        assert served.trust_problem is None, served.trust_problem
        stranger = x509.load_pem_x509_certificate(default_authority().root_pem.encode())
        refused = asyncio.run(
            probe_smb_quic(quic["host"], quic["port"], "fs.example.test", roots=(stranger,))
        )
        assert refused.trust_problem is not None
    finally:
        assert proc.stop() == 0
