"""The objects a benchmark creates (pure): a Secret and N AzureEditionVMs like deploy/samples/hotpatch.yaml.

SMBOverQUIC stays out: it needs a certificate mapped in each guest through the simulator's
control API before it can be Ready, which would measure the harness, not the operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .kubeclient import GROUP, VERSION

SECRET_NAME = "bench-admin"
BENCH_VNET = "vnet-branch-a"
BENCH_SUBNET = "bench"
# A /21 holds 2043 NICs (Azure reserves .1-.3); the seeded /24 subnets would run out at 251.
BENCH_SUBNET_PREFIX = "127.1.0.0/21"


def subnet_prefix_for(n: int) -> str:
    """The /21 up to 2043 NICs, else the smallest prefix that holds ``n`` (the simulator scans the whole
    subnet for a free address per NIC, so no larger than needed)."""
    bits = 11
    while (1 << bits) - 5 < n:
        bits += 1
    return f"127.1.0.0/{32 - bits}"


@dataclass(frozen=True)
class FleetSpec:
    """Where and how the VMs are placed; ``capabilities`` is [] or ["Hotpatch"]."""

    subscription_id: str
    resource_group: str
    location: str
    subnet_id: str
    capabilities: Sequence[str] = ("Hotpatch",)
    check_interval: str = "10m"


def secret_manifest(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME, "namespace": namespace},
        "type": "Opaque",
        "stringData": {"username": "azureadmin", "password": "Bench-Only-Passw0rd!"},
    }


def vm_name(index: int) -> str:
    return f"vm-{index:04d}"


def vm_spec(fleet: FleetSpec) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "capabilities": list(fleet.capabilities),
        "azure": {
            "subscriptionId": fleet.subscription_id,
            "resourceGroup": fleet.resource_group,
            "location": fleet.location,
            "vmSize": "Standard_D2as_v5",
            "subnetId": fleet.subnet_id,
        },
        "adminCredentialsSecretRef": {"name": SECRET_NAME},
        "checkInterval": fleet.check_interval,
    }
    if "Hotpatch" in fleet.capabilities:
        spec["hotpatch"] = {"rebootSetting": "IfRequired"}
    return spec


def vm_manifest(name: str, namespace: str, fleet: FleetSpec) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AzureEditionVM",
        "metadata": {"name": name, "namespace": namespace},
        "spec": vm_spec(fleet),
    }


def floor_status(template: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    """The status the floor writes in one request: the operator's own final status when we have one.

    The same bytes keep the comparison fair (etcd cost grows with object size); without a template,
    a status with the same shape (conditions, image, vm) stands in.
    """
    if template:
        status = dict(template)
        status["observedGeneration"] = generation
        return status
    stamp = "2026-01-01T00:00:00Z"
    conditions = [
        {
            "type": t,
            "status": "True",
            "reason": r,
            "message": m,
            "lastTransitionTime": stamp,
            "observedGeneration": generation,
        }
        for t, r, m in (
            ("Ready", "Ready", "VM provisioned and every capability healthy"),
            ("ImageResolved", "ImageResolved", "2022-datacenter-azure-edition-hotpatch: newest Core image"),
            ("VMProvisioned", "Succeeded", "the VM is provisioned"),
            ("HotpatchHealthy", "HotpatchEnabled", "Hotpatch is enabled and the last assessment succeeded"),
        )
    ]
    return {
        "phase": "Ready",
        "observedGeneration": generation,
        "conditions": conditions,
        "image": {
            "publisher": "MicrosoftWindowsServer",
            "offer": "WindowsServer",
            "sku": "2022-datacenter-azure-edition-hotpatch",
            "version": "latest",
            "windowsServerVersion": "2022",
            "experience": "Core",
        },
        "vm": {
            "resourceId": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/z",
            "vmId": "00000000-0000-0000-0000-000000000000",
            "provisioningState": "Succeeded",
            "powerState": "running",
            "privateIPAddress": "127.1.0.4",
        },
        "hotpatch": {"enabled": True, "patchMode": "AutomaticByPlatform"},
    }
