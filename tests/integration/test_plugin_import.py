"""`kubectl aevm import` against the ARM simulator: the real SDKs list VMs made outside the operator
(the simulator's ``outside-vms``), and the printed manifests say what ARM says about them. The CRD's
own verdict on them (kubectl apply --dry-run=server) is tests/e2e/test_brownfield.py's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from azure_edition_operator.api.v1alpha1 import AzureEditionVM
from azure_edition_simulator import Simulator

from .conftest import RESOURCE_GROUP, subnet_id

pytestmark = pytest.mark.integration


def azure_env(sim: Simulator) -> dict[str, str]:
    """What the operator's AzureSettings read, pointed at the simulator (client-secret credential)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AEO_"))}
    sim_env = sim.env()
    env.update({
        "AZURE_RESOURCE_MANAGER_ENDPOINT": sim_env["AZURE_RESOURCE_MANAGER_ENDPOINT"],
        "AZURE_RESOURCE_MANAGER_SCOPE": sim_env["AZURE_RESOURCE_MANAGER_SCOPE"],
        "AZURE_AUTHORITY_HOST": sim_env["AZURE_AUTHORITY_HOST"],
        "AZURE_CA_BUNDLE": str(sim.ca_path),
        "AZURE_CREDENTIAL_MODE": "client-secret",
        "AZURE_TENANT_ID": sim.tenant_id,
        "AZURE_CLIENT_ID": sim.client_id,
        "AZURE_CLIENT_SECRET": sim.client_secret,
        "AZURE_SUBSCRIPTION_ID": sim.subscription_id,
    })  # fmt: skip
    return env


def run_import(
    sim: Simulator, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "azure_edition_operator.plugin", "import", *args],
        capture_output=True,
        text=True,
        env=env or azure_env(sim),
        timeout=120,
    )


def test_import_prints_a_manifest_per_azure_edition_vm(sim: Simulator) -> None:
    control = sim.control
    control.create_outside_vm("FS01", "2022-datacenter-azure-edition-core", hotpatch=True, tags={"site": "a"})
    control.create_outside_vm("fs02", "2025-datacenter-azure-edition-smalldisk", publicIp=True)
    control.create_outside_vm("classic", "2022-datacenter-g2")  # not Azure Edition
    control.create_outside_vm(
        "owned",
        "2022-datacenter-azure-edition",
        tags={"azureedition.io_owner": "ns/x", "azureedition.io_cluster": "c1"},
    )
    control.add_resource_group("rg-elsewhere")
    control.create_outside_vm("fs03", "2022-datacenter-azure-edition", resourceGroup="rg-elsewhere")
    seq = control.last_seq()

    result = run_import(sim, "-g", RESOURCE_GROUP, "-n", "branch-a")
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert set(by_name) == {"fs01", "fs02"}  # one resource group; neither the classic VM nor the owned one
    for doc in docs:
        AzureEditionVM.model_validate(doc)  # the CRD's Python twin
        assert doc["metadata"]["namespace"] == "branch-a"
        assert doc["spec"]["managementPolicy"] == "Observe" and doc["spec"]["azure"]["adopt"] is True
    fs01 = by_name["fs01"]["spec"]
    assert fs01["capabilities"] == ["Hotpatch"] and fs01["azure"]["vmName"] == "FS01"
    assert fs01["image"] == {"windowsServerVersion": "2022", "experience": "Core"}
    assert fs01["azure"]["subnetId"].lower() == subnet_id(sim).lower() and fs01["azure"]["tags"] == {
        "site": "a"
    }
    fs02 = by_name["fs02"]["spec"]
    assert fs02["capabilities"] == [] and fs02["azure"]["publicIP"] is True
    assert fs02["image"] == {
        "windowsServerVersion": "2025",
        "experience": "DesktopExperience",
        "smallDisk": True,
    }
    assert "skipped" in result.stdout and "AzureEditionVM ns/x on cluster 'c1'" in result.stdout
    assert "1 other VM(s)" in result.stdout and "SMBOverQUIC and ExtendedNetwork" in result.stdout
    # It only read: list, then the NICs and the public IP.
    methods = {r["method"] for r in control.requests(since=seq) if r["path"].startswith("/subscriptions/")}
    assert methods == {"GET"}

    whole = run_import(sim, "--management-policy", "Full", "--admin-secret", "fleet-admin")
    docs = [d for d in yaml.safe_load_all(whole.stdout) if d]
    assert {d["metadata"]["name"] for d in docs} == {"fs01", "fs02", "fs03"}
    assert all(d["spec"]["managementPolicy"] == "Full" for d in docs)
    assert {d["spec"]["adminCredentialsSecretRef"]["name"] for d in docs} == {"fleet-admin"}
    assert all("namespace" not in d["metadata"] for d in docs)


def test_import_failures_name_the_fix_and_exit_codes(sim: Simulator) -> None:
    missing_rg = run_import(sim, "-g", "rg-nowhere")
    assert missing_rg.returncode == 4, missing_rg.stderr
    assert "rg-nowhere" in missing_rg.stderr and "not found" in missing_rg.stderr
    env = azure_env(sim) | {"AZURE_CLIENT_SECRET": "wrong"}
    denied = run_import(sim, env=env)
    assert denied.returncode == 5 and "cannot sign in to Azure" in denied.stderr, denied.stderr
    no_sub = azure_env(sim)
    del no_sub["AZURE_SUBSCRIPTION_ID"]
    usage = run_import(sim, env=no_sub)
    assert usage.returncode == 2 and "--subscription" in usage.stderr
