"""Azure settings from the environment, and the request-naming used for metrics."""

from __future__ import annotations

import pytest

from azure_edition_operator.azure.clients import operation_of
from azure_edition_operator.azure.settings import AzureSettings, CredentialMode, SettingsError


def test_defaults_are_the_public_cloud() -> None:
    s = AzureSettings.from_env({})
    assert s.base_url == "https://management.azure.com"
    assert s.credential_scopes == ["https://management.azure.com/.default"]
    assert s.credential_mode is CredentialMode.DEFAULT
    assert s.ca_bundle is None
    assert s.authority_host is None


@pytest.mark.parametrize(
    ("endpoint", "scope"),
    [
        ("https://management.chinacloudapi.cn/", "https://management.chinacloudapi.cn/.default"),
        ("https://management.usgovcloudapi.net", "https://management.usgovcloudapi.net/.default"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443/.default"),
    ],
)
def test_sovereign_clouds_get_their_own_scope(endpoint: str, scope: str) -> None:
    s = AzureSettings.from_env({"AZURE_RESOURCE_MANAGER_ENDPOINT": endpoint})
    assert s.credential_scopes == [scope]
    assert not s.base_url.endswith("/")


def test_explicit_scope_wins() -> None:
    s = AzureSettings.from_env(
        {
            "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://127.0.0.1:9443",
            "AZURE_RESOURCE_MANAGER_SCOPE": "https://management.core.windows.net/.default",
        }
    )
    assert s.credential_scopes == ["https://management.core.windows.net/.default"]


def test_everything_from_env(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = AzureSettings.from_env(
        {
            "AZURE_RESOURCE_MANAGER_ENDPOINT": "https://127.0.0.1:9443",
            "AZURE_AUTHORITY_HOST": "https://127.0.0.1:9443",
            "AZURE_CA_BUNDLE": str(ca),
            "AZURE_CREDENTIAL_MODE": "workload-identity",
            "AZURE_POLLING_INTERVAL": "0.5",
            "AZURE_REQUEST_TIMEOUT": "10",
            "AZURE_MAX_RETRIES": "5",
            "AZURE_MAX_RETRY_AFTER": "3",
            "AZURE_OPERATION_TIMEOUT": "120",
        }
    )
    assert s.ca_bundle == ca
    assert s.authority_host == "https://127.0.0.1:9443"
    assert s.credential_mode is CredentialMode.WORKLOAD_IDENTITY
    assert (s.polling_interval, s.request_timeout, s.max_retries, s.max_retry_after, s.operation_timeout) == (
        0.5,
        10.0,
        5,
        3.0,
        120.0,
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        (
            {"AZURE_RESOURCE_MANAGER_ENDPOINT": "http://management.azure.com"},
            "AZURE_RESOURCE_MANAGER_ENDPOINT",
        ),
        ({"AZURE_AUTHORITY_HOST": "login.microsoftonline.com"}, "AZURE_AUTHORITY_HOST"),
        ({"AZURE_CA_BUNDLE": "/nonexistent/ca.pem"}, "AZURE_CA_BUNDLE"),
        ({"AZURE_CREDENTIAL_MODE": "magic"}, "client-secret"),
        ({"AZURE_POLLING_INTERVAL": "soon"}, "AZURE_POLLING_INTERVAL"),
        ({"AZURE_POLLING_INTERVAL": "0"}, "AZURE_POLLING_INTERVAL"),
        ({"AZURE_MAX_RETRIES": "-1"}, "AZURE_MAX_RETRIES"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        AzureSettings.from_env(env)


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
         "Microsoft.Compute/virtualMachines"),
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/assessPatches",
         "Microsoft.Compute/virtualMachines/assessPatches"),
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/runCommands/c1",
         "Microsoft.Compute/virtualMachines/runCommands"),
        ("/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/abc",
         "Microsoft.Compute/locations/operations"),
        ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic1",
         "Microsoft.Network/networkInterfaces"),
        ("/subscriptions/s/resourceGroups/rg", "resourceGroups"),
        ("/subscriptions/s", "subscriptions"),
        ("/", "other"),
    ],
)  # fmt: skip
def test_operation_names_drop_resource_names(path: str, operation: str) -> None:
    assert operation_of(path) == operation
