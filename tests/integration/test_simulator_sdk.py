"""The real Azure SDKs against the ARM simulator over HTTPS: tokens, LROs, resources, guest patching, Run Command."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import jwt
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.compute import models as cm

from azure_edition_simulator import Simulator, SimulatorControl

from .conftest import (
    LOCATION,
    RESOURCE_GROUP,
    Arm,
    Clients,
    client_kwargs,
    secret_credential,
    subnet_id,
    vm_model,
    workload_credential,
)

pytestmark = pytest.mark.integration


# --- identity --------------------------------------------------------------------------------------------


def test_client_secret_credential_gets_a_signed_token_for_the_arm_scope(sim: Simulator) -> None:
    token = secret_credential(sim).get_token(sim.credential_scope)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["aud"] == sim.endpoint
    assert claims["tid"] == sim.tenant_id
    assert claims["appid"] == sim.client_id
    assert token.expires_on > time.time() + 3000


def test_workload_identity_credential_exchanges_the_federated_token_file(sim: Simulator) -> None:
    token = workload_credential(sim).get_token(sim.credential_scope)
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["appid"] == sim.client_id
    assert sim.control.count("Identity_Token", 200) == 1


def test_wrong_client_secret_is_refused_with_entra_error(sim: Simulator) -> None:
    credential = ClientSecretCredential(
        sim.tenant_id,
        sim.client_id,
        "not-the-secret",
        authority=sim.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(sim.ca_path),
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(sim.credential_scope)


def test_federated_token_with_untrusted_subject_is_refused(sim: Simulator, tmp_path: Any) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(sim.control.mint_federated_token(subject="system:serviceaccount:other:intruder"))
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):
        workload_credential(sim, token_file).get_token(sim.credential_scope)


def test_default_azure_credential_works_from_the_env_file_with_instance_discovery_disabled(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    token = DefaultAzureCredential(disable_instance_discovery=True).get_token(sim.credential_scope)
    assert jwt.decode(token.token, options={"verify_signature": False})["appid"] == sim.client_id


def test_every_identity_endpoint_msal_uses_is_served(sim: Simulator) -> None:
    base = f"{sim.endpoint}/{sim.tenant_id}"
    config = requests.get(
        f"{base}/v2.0/.well-known/openid-configuration", verify=sim.ca_path, timeout=10
    ).json()
    assert config["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    keys = requests.get(config["jwks_uri"], verify=sim.ca_path, timeout=10).json()["keys"]
    token = secret_credential(sim).get_token(sim.credential_scope).token
    signing_key = jwt.PyJWKSet.from_dict({"keys": keys})[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], audience=sim.endpoint)
    assert claims["iss"] == config["issuer"]


# --- 401 -------------------------------------------------------------------------------------------------


def _raw_get(sim: Simulator, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(
        f"{sim.endpoint}{path}",
        params={"api-version": "2026-04-01"},
        headers=headers,
        verify=sim.ca_path,
        timeout=10,
    )


def _vm_list_path(sim: Simulator) -> str:
    return f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines"


def test_request_without_token_gets_401_with_arm_envelope_and_challenge(sim: Simulator) -> None:
    response = _raw_get(sim, _vm_list_path(sim))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer authorization_uri=")
    assert 'error="invalid_token"' in challenge


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda sim: "not-a-jwt", "InvalidAuthenticationToken"),
        (lambda sim: _forged_token(sim), "InvalidAuthenticationToken"),
        (
            lambda sim: _token_for(sim, "https://vault.azure.net/.default"),
            "InvalidAuthenticationTokenAudience",
        ),
    ],
)
def test_invalid_tokens_are_refused_with_arm_codes(sim: Simulator, make_token: Any, code: str) -> None:
    response = _raw_get(sim, _vm_list_path(sim), {"Authorization": f"Bearer {make_token(sim)}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code


def _forged_token(sim: Simulator) -> str:
    real = jwt.decode(
        secret_credential(sim).get_token(sim.credential_scope).token, options={"verify_signature": False}
    )
    return jwt.encode(real, "a-guessed-secret-that-is-long-enough-for-hs256", algorithm="HS256")


def _token_for(sim: Simulator, scope: str) -> str:
    """A genuine token of the simulated directory, for another resource than ARM."""
    response = requests.post(
        f"{sim.endpoint}/{sim.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "scope": scope,
        },
        verify=sim.ca_path,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_expired_token_is_refused_and_the_sdk_surfaces_it(sim: Simulator, make_clients: Any) -> None:
    sim.control.set_token_lifetime(1)
    credential = secret_credential(sim)
    token = credential.get_token(sim.credential_scope).token
    time.sleep(2.5)  # lifetime 1 s plus the simulator's 1 s clock-skew leeway
    response = _raw_get(sim, _vm_list_path(sim), {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ExpiredAuthenticationToken"


def test_sdk_client_with_a_token_for_another_resource_gets_arm_audience_error(
    sim: Simulator, make_clients: Any
) -> None:
    clients = make_clients(credential_scopes=["https://graph.microsoft.com/.default"], retry_total=0)
    with pytest.raises(ClientAuthenticationError) as refused:
        clients.compute.virtual_machines.get(RESOURCE_GROUP, "anything")
    assert refused.value.status_code == 401
    assert refused.value.error.code == "InvalidAuthenticationTokenAudience"


def test_unknown_resource_scope_is_refused_by_the_directory(sim: Simulator) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
        secret_credential(sim).get_token("api://no-such-app/.default")


# --- resources and LROs ------------------------------------------------------------------------------------


def test_create_public_ip_nic_and_hotpatch_vm_through_lro_pollers(
    sim: Simulator, clients: Clients, arm: Arm
) -> None:
    pip = arm.public_ip()
    assert pip.provisioning_state == "Succeeded"
    octet = sim.loopback_block.split(".")[1]  # the simulator's own block (loopback.py)
    assert pip.ip_address and pip.ip_address.startswith(f"127.{octet}.100.")
    nic = arm.nic(public_ip_id=pip.id)
    assert nic.ip_configurations[0].private_ip_address == f"127.{octet}.1.4"
    poller = clients.compute.virtual_machines.begin_create_or_update(
        RESOURCE_GROUP, "branch-fs-01", vm_model([nic.id])
    )
    vm = poller.result()
    assert vm.provisioning_state == "Succeeded"
    assert vm.vm_id
    assert vm.os_profile.windows_configuration.patch_settings.enable_hotpatching is True
    assert vm.storage_profile.image_reference.exact_version
    # The admin password is accepted but never returned.
    assert "adminPassword" not in json.dumps(vm.as_dict())
    log = sim.control.requests()
    create = next(e for e in log if e["operation"] == "VirtualMachines_CreateOrUpdate")
    assert create["status"] == 201
    assert any(e["operation"] == "Compute_GetOperation" for e in log)
    nic_after = clients.network.network_interfaces.get(RESOURCE_GROUP, "nic-fs01")
    assert nic_after.virtual_machine.id.lower() == vm.id.lower()
    assert nic_after.mac_address


def test_vm_is_creating_until_the_simulated_duration_passes(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    sim.control.set_provisioning_seconds(1.0)
    nic = arm.nic()
    poller = clients.compute.virtual_machines.begin_create_or_update(
        RESOURCE_GROUP, "slow", vm_model([nic.id])
    )
    assert clients.compute.virtual_machines.get(RESOURCE_GROUP, "slow").provisioning_state == "Creating"
    assert poller.result().provisioning_state == "Succeeded"


def test_put_on_existing_vm_is_an_update_answering_200(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    model = vm_model([vm.network_profile.network_interfaces[0].id], tags={"costCenter": "43"})
    updated = clients.compute.virtual_machines.begin_create_or_update(RESOURCE_GROUP, vm.name, model).result()
    assert updated.tags == {"costCenter": "43"}
    assert updated.vm_id == vm.vm_id
    statuses = [
        e["status"] for e in sim.control.requests() if e["operation"] == "VirtualMachines_CreateOrUpdate"
    ]
    assert statuses == [201, 200]


def test_patch_vm_changes_patch_settings(arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    update = cm.VirtualMachineUpdate(
        os_profile=cm.OSProfile(
            windows_configuration=cm.WindowsConfiguration(
                patch_settings=cm.PatchSettings(
                    automatic_by_platform_settings=cm.WindowsVMGuestPatchAutomaticByPlatformSettings(
                        reboot_setting="Never"
                    )
                )
            )
        )
    )
    updated = clients.compute.virtual_machines.begin_update(RESOURCE_GROUP, vm.name, update).result()
    settings = updated.os_profile.windows_configuration.patch_settings
    assert settings.automatic_by_platform_settings.reboot_setting == "Never"
    assert settings.enable_hotpatching is True


def test_missing_resources_are_404_with_arm_codes(sim: Simulator, clients: Clients) -> None:
    with pytest.raises(ResourceNotFoundError) as missing_vm:
        clients.compute.virtual_machines.get(RESOURCE_GROUP, "nope")
    assert missing_vm.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as missing_rg:
        clients.network.network_interfaces.get("rg-does-not-exist", "nic")
    assert missing_rg.value.error.code == "ResourceGroupNotFound"


def test_missing_api_version_is_refused(sim: Simulator) -> None:
    token = secret_credential(sim).get_token(sim.credential_scope).token
    response = requests.get(
        f"{sim.endpoint}{_vm_list_path(sim)}",
        headers={"Authorization": f"Bearer {token}"},
        verify=sim.ca_path,
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_list_vms_in_resource_group(arm: Arm, clients: Clients) -> None:
    arm.vm("vm-a")
    arm.vm("vm-b", public_ip=False)
    names = sorted(vm.name for vm in clients.compute.virtual_machines.list(RESOURCE_GROUP))
    assert names == ["vm-a", "vm-b"]


def test_instance_view_and_expand_report_patch_status(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    view = clients.compute.virtual_machines.instance_view(RESOURCE_GROUP, vm.name)
    # assessmentMode AutomaticByPlatform: the platform assessed the VM when it was provisioned.
    assert view.patch_status.available_patch_summary.status == "Succeeded"
    assert [s.code for s in view.statuses] == ["ProvisioningState/succeeded", "PowerState/running"]
    assert view.os_name.startswith("Windows Server 2022 Datacenter: Azure Edition")
    expanded = clients.compute.virtual_machines.get(RESOURCE_GROUP, vm.name, expand="instanceView")
    assert (
        expanded.instance_view.patch_status.configuration_statuses[0].code
        == "PatchModeConfigurationState/Ready"
    )


# --- delete ordering and disks ---------------------------------------------------------------------------


def test_nic_in_use_cannot_be_deleted_until_its_vm_is_gone(arm: Arm, clients: Clients) -> None:
    vm = arm.vm(public_ip=False)
    nic_name = vm.network_profile.network_interfaces[0].id.rsplit("/", 1)[-1]
    with pytest.raises(HttpResponseError) as in_use:
        clients.network.network_interfaces.begin_delete(RESOURCE_GROUP, nic_name).result()
    assert in_use.value.error.code == "NicInUse"
    assert in_use.value.status_code == 400
    clients.compute.virtual_machines.begin_delete(RESOURCE_GROUP, vm.name).result()
    clients.network.network_interfaces.begin_delete(RESOURCE_GROUP, nic_name).result()
    with pytest.raises(ResourceNotFoundError):
        clients.network.network_interfaces.get(RESOURCE_GROUP, nic_name)


def test_nic_delete_is_refused_while_the_vm_deletion_is_still_running(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    vm = arm.vm(public_ip=False)
    sim.control.set_provisioning_seconds(1.0)
    poller = clients.compute.virtual_machines.begin_delete(RESOURCE_GROUP, vm.name)
    assert clients.compute.virtual_machines.get(RESOURCE_GROUP, vm.name).provisioning_state == "Deleting"
    nic_name = vm.network_profile.network_interfaces[0].id.rsplit("/", 1)[-1]
    with pytest.raises(HttpResponseError) as in_use:
        clients.network.network_interfaces.begin_delete(RESOURCE_GROUP, nic_name).result()
    assert in_use.value.error.code == "NicInUse"
    poller.result()
    clients.network.network_interfaces.begin_delete(RESOURCE_GROUP, nic_name).result()


def test_public_ip_in_use_cannot_be_deleted(arm: Arm, clients: Clients) -> None:
    pip = arm.public_ip()
    arm.nic(public_ip_id=pip.id)
    with pytest.raises(HttpResponseError) as in_use:
        clients.network.public_ip_addresses.begin_delete(RESOURCE_GROUP, pip.name).result()
    assert in_use.value.error.code == "PublicIPAddressCannotBeDeleted"


@pytest.mark.parametrize(("delete_option", "disk_survives"), [("Delete", False), ("Detach", True)])
def test_os_disk_follows_its_delete_option(
    arm: Arm, clients: Clients, delete_option: str, disk_survives: bool
) -> None:
    vm = arm.vm(os_disk_delete=delete_option)
    disk_name = vm.storage_profile.os_disk.name
    disk = clients.compute.disks.get(RESOURCE_GROUP, disk_name)
    assert disk.managed_by.lower() == vm.id.lower()
    assert disk.disk_state == "Attached"
    with pytest.raises(HttpResponseError) as attached:
        clients.compute.disks.begin_delete(RESOURCE_GROUP, disk_name).result()
    assert attached.value.error.code == "OperationNotAllowed"
    clients.compute.virtual_machines.begin_delete(RESOURCE_GROUP, vm.name).result()
    if disk_survives:
        assert clients.compute.disks.get(RESOURCE_GROUP, disk_name).disk_state == "Unattached"
        clients.compute.disks.begin_delete(RESOURCE_GROUP, disk_name).result()
    with pytest.raises(ResourceNotFoundError):
        clients.compute.disks.get(RESOURCE_GROUP, disk_name)


def test_compute_writes_resource_group_upper_case_in_generated_ids(arm: Arm) -> None:
    vm = arm.vm()
    assert f"/resourceGroups/{RESOURCE_GROUP.upper()}/" in vm.storage_profile.os_disk.managed_disk.id
    assert vm.storage_profile.os_disk.managed_disk.id.lower().endswith(
        vm.storage_profile.os_disk.name.lower()
    )


def test_operations_on_a_vm_being_deleted_are_refused(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    sim.control.set_provisioning_seconds(1.0)
    poller = clients.compute.virtual_machines.begin_delete(RESOURCE_GROUP, vm.name)
    with pytest.raises(HttpResponseError) as refused:
        clients.compute.virtual_machines.begin_assess_patches(RESOURCE_GROUP, vm.name).result()
    assert refused.value.error.code == "OperationNotAllowed"
    assert refused.value.status_code == 409
    poller.result()


# --- guest patching ------------------------------------------------------------------------------------------


def test_assess_patches_reports_the_guest(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    sim.control.set_guest(
        RESOURCE_GROUP, vm.name, availablePatches={"Security": 2, "Definition": 1}, rebootPending=True
    )
    result = clients.compute.virtual_machines.begin_assess_patches(RESOURCE_GROUP, vm.name).result()
    assert result.status == "Succeeded"
    assert result.critical_and_security_patch_count == 2
    assert result.other_patch_count == 1
    assert result.reboot_pending is True
    assert len(result.available_patches) == 3
    assess = next(e for e in sim.control.requests() if e["operation"] == "VirtualMachines_AssessPatches")
    assert assess["status"] == 202
    summary = clients.compute.virtual_machines.instance_view(
        RESOURCE_GROUP, vm.name
    ).patch_status.available_patch_summary
    assert summary.critical_and_security_patch_count == 2
    assert summary.assessment_activity_id == result.assessment_activity_id


def test_install_patches_installs_selected_classifications(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    vm = arm.vm()
    sim.control.set_guest(RESOURCE_GROUP, vm.name, availablePatches={"Security": 2, "Updates": 1})
    request = cm.VirtualMachineInstallPatchesParameters(
        maximum_duration="PT4H",
        reboot_setting="IfRequired",
        windows_parameters=cm.WindowsParameters(classifications_to_include=["Critical", "Security"]),
    )
    result = clients.compute.virtual_machines.begin_install_patches(RESOURCE_GROUP, vm.name, request).result()
    assert result.status == "Succeeded"
    assert (result.installed_patch_count, result.not_selected_patch_count, result.failed_patch_count) == (
        2,
        1,
        0,
    )
    assert result.reboot_status == "NotNeeded"  # hotpatches never reboot
    status = clients.compute.virtual_machines.instance_view(RESOURCE_GROUP, vm.name).patch_status
    assert status.last_patch_installation_summary.installed_patch_count == 2
    assert status.available_patch_summary.critical_and_security_patch_count == 0
    assert status.available_patch_summary.other_patch_count == 1


def test_install_patches_honours_max_patch_publish_date_and_a_baseline_reboots(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    """One patch set per rollout: a patch published after ``maxPatchPublishDate`` is not selected; a baseline
    month's security update needs a reboot, which ``IfRequired`` performs."""
    vm = arm.vm()
    sim.control.set_guest(RESOURCE_GROUP, vm.name, monthKind="Baseline", availablePatches=[
        {"classification": "Security", "kbId": "5040001", "publishedDate": "2027-01-12T18:00:00Z"},
        {"classification": "Security", "kbId": "5040002", "publishedDate": "2027-01-20T18:00:00Z"},
    ])  # fmt: skip
    request = cm.VirtualMachineInstallPatchesParameters(
        maximum_duration="PT3H",
        reboot_setting="IfRequired",
        windows_parameters=cm.WindowsParameters(
            classifications_to_include=["Security"],
            max_patch_publish_date=dt.datetime(2027, 1, 16, 1, 0, tzinfo=dt.UTC),
        ),
    )
    result = clients.compute.virtual_machines.begin_install_patches(RESOURCE_GROUP, vm.name, request).result()
    states = {p.kb_id: p.installation_state for p in result.patches}
    assert states == {"5040001": "Installed", "5040002": "NotSelected"}
    assert result.reboot_status == "Completed"  # AlwaysRequiresReboot in a baseline month, IfRequired reboots


def _install_one_security_update(sim: Simulator, clients: Clients, vm: str, month: str) -> Any:
    """installPatches (IfRequired) of a month's one security update on a Hotpatch VM; its result."""
    sim.control.set_guest(RESOURCE_GROUP, vm, monthKind=month, availablePatches={"Security": 1})
    sim.control.set_provisioning_seconds(2)  # the instant profile: the installation, then a reboot, 2 s each
    request = cm.VirtualMachineInstallPatchesParameters(
        maximum_duration="PT1H",
        reboot_setting="IfRequired",
        windows_parameters=cm.WindowsParameters(classifications_to_include=["Security"]),
    )
    return clients.compute.virtual_machines.begin_install_patches(RESOURCE_GROUP, vm, request).result()


def test_a_reboot_by_install_patches_shows_in_the_instance_view(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    """The baseline rollout waits for a VM to be running with its agent Ready again after its reboot: the
    simulator shows the restart (starting, agent Not Ready) for the reboot's duration, then the VM back."""
    vm = arm.vm()
    assert _install_one_security_update(sim, clients, vm.name, "Baseline").reboot_status == "Completed"

    def power_and_agent() -> tuple[str, str]:
        view = clients.compute.virtual_machines.instance_view(RESOURCE_GROUP, vm.name)
        power = next(s.code for s in view.statuses if s.code.startswith("PowerState/"))
        return power, view.vm_agent.statuses[0].display_status

    assert power_and_agent() == ("PowerState/starting", "Not Ready")
    deadline = time.monotonic() + 10
    while power_and_agent() != ("PowerState/running", "Ready"):
        assert time.monotonic() < deadline, "the VM never came back from its reboot"
        time.sleep(0.2)


def test_a_hotpatch_install_does_not_reboot(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    assert _install_one_security_update(sim, clients, vm.name, "Hotpatch").reboot_status == "NotNeeded"
    view = clients.compute.virtual_machines.instance_view(RESOURCE_GROUP, vm.name)
    assert "PowerState/running" in [s.code for s in view.statuses]


def test_installation_failure_and_reboot_pending_are_reported(
    sim: Simulator, arm: Arm, clients: Clients
) -> None:
    vm = arm.vm()
    sim.control.set_guest(
        RESOURCE_GROUP,
        vm.name,
        availablePatches={"Security": 1},
        nextInstallationFailure={
            "code": "PatchInstallationFailed",
            "message": "KB5030000 failed: 0x800f0922",
        },
    )
    request = cm.VirtualMachineInstallPatchesParameters(
        maximum_duration="PT1H",
        reboot_setting="Never",
        windows_parameters=cm.WindowsParameters(classifications_to_include=["Security"]),
    )
    result = clients.compute.virtual_machines.begin_install_patches(RESOURCE_GROUP, vm.name, request).result()
    assert result.status == "Failed"
    assert result.failed_patch_count == 1
    assert result.error.code == "PatchInstallationFailed"
    summary = clients.compute.virtual_machines.instance_view(
        RESOURCE_GROUP, vm.name
    ).patch_status.last_patch_installation_summary
    assert summary.status == "Failed"


def test_patch_settings_changed_behind_the_operators_back(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    sim.control.set_patch_settings(
        RESOURCE_GROUP, vm.name, {"patchMode": "AutomaticByOS", "assessmentMode": "ImageDefault"}
    )
    settings = clients.compute.virtual_machines.get(
        RESOURCE_GROUP, vm.name
    ).os_profile.windows_configuration.patch_settings
    assert settings.patch_mode == "AutomaticByOS"
    assert settings.enable_hotpatching is None


# --- run command -------------------------------------------------------------------------------------------------


def _run(clients: Clients, vm: str, *lines: str) -> tuple[str, str]:
    request = cm.RunCommandInput(command_id="RunPowerShellScript", script=list(lines))
    result = clients.compute.virtual_machines.begin_run_command(RESOURCE_GROUP, vm, request).result()
    assert [s.code for s in result.value] == [
        "ComponentStatus/StdOut/succeeded",
        "ComponentStatus/StdErr/succeeded",
    ]
    return result.value[0].message, result.value[1].message


def test_run_command_status_and_enable_scripts(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    mapping = sim.control.set_certificate(
        RESOURCE_GROUP, vm.name, "fs01.branch-a.contoso.com", {"expiresInDays": 45}
    )
    sim.control.set_guest(RESOURCE_GROUP, vm.name, enableSmbQuic=False)
    stdout, stderr = _run(
        clients, vm.name, "# azureedition.io/script: smb-quic-status", "Get-SmbServerConfiguration"
    )
    status = json.loads(stdout)
    assert stderr == ""
    assert status["enableSmbQuic"] is False
    assert status["mappings"][0]["name"] == "fs01.branch-a.contoso.com"
    assert status["mappings"][0]["thumbprint"] == mapping["thumbprint"]
    assert status["mappings"][0]["notAfter"] == mapping["notAfter"]
    assert json.loads(_run(clients, vm.name, "# azureedition.io/script: smb-quic-enable")[0]) == {
        "enableSmbQuic": True
    }
    assert sim.control.guest(RESOURCE_GROUP, vm.name)["enableSmbQuic"] is True
    assert _run(clients, vm.name, "Write-Output 'hello'") == ("", "")


def test_run_command_reports_stderr_from_the_guest(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    sim.control.set_guest(RESOURCE_GROUP, vm.name, nextRunCommandStdErr="Access is denied.")
    assert _run(clients, vm.name, "# azureedition.io/script: smb-quic-status")[1] == "Access is denied."


def test_run_command_resource_executes_its_script(arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    command = cm.VirtualMachineRunCommand(
        location=LOCATION,
        source=cm.VirtualMachineRunCommandScriptSource(
            script="# azureedition.io/script: smb-quic-status\nexit 0"
        ),
    )
    created = clients.compute.virtual_machine_run_commands.begin_create_or_update(
        RESOURCE_GROUP, vm.name, "smb-status", command
    ).result()
    assert created.provisioning_state == "Succeeded"
    fetched = clients.compute.virtual_machine_run_commands.get_by_virtual_machine(
        RESOURCE_GROUP, vm.name, "smb-status", expand="instanceView"
    )
    assert fetched.instance_view.execution_state == "Succeeded"
    assert json.loads(fetched.instance_view.output)["enableSmbQuic"] is True


# --- the aio clients (what a kopf operator uses) ---------------------------------------------------------------


async def test_async_clients_create_a_vm(sim: Simulator) -> None:
    from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
    from azure.mgmt.compute.aio import ComputeManagementClient as AsyncCompute
    from azure.mgmt.network import models as nm
    from azure.mgmt.network.aio import NetworkManagementClient as AsyncNetwork

    kwargs = client_kwargs(sim)
    async with (
        AsyncClientSecretCredential(
            sim.tenant_id,
            sim.client_id,
            sim.client_secret,
            authority=sim.authority_host,
            disable_instance_discovery=True,
            connection_verify=str(sim.ca_path),
        ) as credential,
        AsyncNetwork(credential, sim.subscription_id, **kwargs) as network,
        AsyncCompute(credential, sim.subscription_id, **kwargs) as compute,
    ):
        nic_model = nm.NetworkInterface(
            location=LOCATION,
            ip_configurations=[
                nm.NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=nm.Subnet(id=subnet_id(sim)))
            ],
        )
        nic = await (
            await network.network_interfaces.begin_create_or_update(RESOURCE_GROUP, "nic-aio", nic_model)
        ).result()
        poller = await compute.virtual_machines.begin_create_or_update(
            RESOURCE_GROUP, "vm-aio", vm_model([nic.id])
        )
        vm = await poller.result()
        assert vm.provisioning_state == "Succeeded"
        view = await compute.virtual_machines.instance_view(RESOURCE_GROUP, "vm-aio")
        assert view.patch_status.available_patch_summary.status == "Succeeded"


async def test_async_default_credential_needs_no_instance_discovery_flag(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential

    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    async with AsyncDefaultAzureCredential(
        authority=sim.authority_host, connection_verify=str(sim.ca_path)
    ) as credential:
        token = await credential.get_token(sim.credential_scope)
    assert jwt.decode(token.token, options={"verify_signature": False})["appid"] == sim.client_id


def test_send_request_passthrough_reaches_resource_group(sim: Simulator, clients: Clients) -> None:
    response = clients.compute.send_request(
        HttpRequest(
            "GET",
            f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}?api-version=2021-04-01",
        )
    )
    assert response.status_code == 200
    assert response.json()["location"] == LOCATION
    assert "x-ms-ratelimit-remaining-subscription-reads" in response.headers


def test_control_client_from_env(sim: Simulator) -> None:
    control = SimulatorControl.from_env(sim.env())
    assert control.info()["endpoint"] == sim.endpoint


def test_assessment_failure_and_state_overrides(sim: Simulator, arm: Arm, clients: Clients) -> None:
    vm = arm.vm()
    sim.control.set_guest(
        RESOURCE_GROUP,
        vm.name,
        nextAssessmentFailure={"code": "WindowsUpdateUnreachable", "message": "0x8024402c"},
    )
    result = clients.compute.virtual_machines.begin_assess_patches(RESOURCE_GROUP, vm.name).result()
    assert result.status == "Failed"
    assert result.error.code == "WindowsUpdateUnreachable"
    view = clients.compute.virtual_machines.instance_view(RESOURCE_GROUP, vm.name)
    assert view.patch_status.available_patch_summary.status == "Failed"
    sim.control.set_guest(RESOURCE_GROUP, vm.name, assessment={"status": "InProgress"})
    view = clients.compute.virtual_machines.instance_view(RESOURCE_GROUP, vm.name)
    assert view.patch_status.available_patch_summary.status == "InProgress"


def test_guest_defaults_seed_new_vms_and_unknown_guest_fields_are_rejected(sim: Simulator, arm: Arm) -> None:
    from azure_edition_simulator import ControlError

    sim.control.set_guest_defaults(enableSmbQuic=False, availablePatches={"Security": 1}, rebootPending=True)
    vm = arm.vm()
    guest = sim.control.guest(RESOURCE_GROUP, vm.name)
    assert guest["enableSmbQuic"] is False
    assert guest["rebootPending"] is True
    assert guest["assessment"]["criticalAndSecurityPatchCount"] == 1
    with pytest.raises(ControlError) as refused:
        sim.control.set_guest(RESOURCE_GROUP, vm.name, noSuchField=True)
    assert refused.value.status == 400


def test_extended_network_vm_with_two_nics(sim: Simulator, arm: Arm, clients: Clients) -> None:
    primary = arm.nic("nic-servers")
    extended = arm.nic("nic-extended", subnet=subnet_id(sim, "extended"))
    octet = sim.loopback_block.split(".")[1]
    assert extended.ip_configurations[0].private_ip_address.startswith(f"127.{octet}.2.")
    vm = clients.compute.virtual_machines.begin_create_or_update(
        RESOURCE_GROUP, "branch-fs-02", vm_model([primary.id, extended.id])
    ).result()
    refs = {ref.id.rsplit("/", 1)[-1]: ref.primary for ref in vm.network_profile.network_interfaces}
    assert refs == {"nic-servers": True, "nic-extended": False}
    for name, is_primary in refs.items():
        nic = clients.network.network_interfaces.get(RESOURCE_GROUP, name)
        assert nic.virtual_machine.id.lower() == vm.id.lower()
        assert nic.primary is is_primary
    address = next(v["address"] for v in sim.control.vms() if v["name"] == "branch-fs-02")
    assert address == primary.ip_configurations[0].private_ip_address


def test_clients_may_address_the_simulator_by_another_name(sim: Simulator, make_clients: Any) -> None:
    """A Service-style name (here: localhost, a SAN of the serving certificate) works end to end."""
    other = sim.endpoint.replace("127.0.0.1", "localhost")
    credential = ClientSecretCredential(
        sim.tenant_id,
        sim.client_id,
        sim.client_secret,
        authority=other,
        disable_instance_discovery=True,
        connection_verify=str(sim.ca_path),
    )
    clients = make_clients(credential, base_url=other, credential_scopes=[f"{other}/.default"])
    pip = clients.network.public_ip_addresses.begin_create_or_update(
        RESOURCE_GROUP, "pip-by-name", {"location": LOCATION, "sku": {"name": "Standard"}}
    ).result()
    assert pip.ip_address
    polls = [e for e in sim.control.requests() if e["operation"] == "Network_GetOperation"]
    assert polls, "the Azure-AsyncOperation URL was followed on the name the client used"
