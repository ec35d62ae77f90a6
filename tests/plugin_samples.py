"""AzureEditionVM statuses as the operator writes them, for the kubectl plugin's tests.

The unit tests render them; the e2e tests write them through the status subresource of a real
API server (so the CRD's schema checks them) and run the plugin against them.
"""

from __future__ import annotations

import copy
from typing import Any

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg-branch-a"
VNET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet-branch-a"
VM_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/aevm-branch-fs-01-1a2b3c"
T0 = "2026-11-20T08:00:00Z"


def spec() -> dict[str, Any]:
    return {
        "capabilities": ["Hotpatch", "SMBOverQUIC", "ExtendedNetwork"],
        "azure": {
            "subscriptionId": SUB,
            "resourceGroup": RG,
            "location": "westeurope",
            "subnetId": f"{VNET}/subnets/servers",
            "publicIP": True,
        },
        "adminCredentialsSecretRef": {"name": "branch-fs-01-admin"},
        "smbOverQuic": {"serverName": "fs01.branch-a.contoso.com", "port": 443, "expiryWarningDays": 30},
        "extendedNetwork": {"extendedSubnetId": f"{VNET}/subnets/extended"},
    }


def cond(type_: str, status: str, reason: str, message: str = "", generation: int = 1) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": T0,
        "observedGeneration": generation,
    }


def degraded_status() -> dict[str, Any]:
    """Provisioned, Hotpatch waits for a reboot, the certificate expires in 10 days."""
    return {
        "observedGeneration": 1,
        "phase": "Degraded",
        "image": {
            "publisher": "MicrosoftWindowsServer",
            "offer": "WindowsServer",
            "sku": "2022-datacenter-azure-edition-core",
            "version": "latest",
            "windowsServerVersion": "2022",
            "experience": "Core",
        },
        "vm": {
            "resourceId": VM_ID,
            "vmId": "8d1c0a9e-1111-2222-3333-444455556666",
            "provisioningState": "Succeeded",
            "powerState": "running",
            "privateIPAddress": "10.0.0.4",
            "publicIPAddress": "20.1.2.3",
        },
        "hotpatch": {
            "enabled": True,
            "patchMode": "AutomaticByPlatform",
            "assessmentState": "Succeeded",
            "lastAssessmentTime": "2026-11-28T06:00:00Z",
            "criticalAndSecurityPatchCount": 2,
            "otherPatchCount": 1,
            "rebootPending": True,
            "cycleMonth": "Hotpatch",
            "nextBaselineMonth": "2027-01",
        },
        "smbOverQuic": {
            "serverName": "fs01.branch-a.contoso.com",
            "state": "ExpiringSoon",
            "notAfter": "2026-12-09T12:00:00Z",
            "daysRemaining": 10,
            "subject": "CN=fs01.branch-a.contoso.com",
            "issuer": "CN=Contoso Issuing CA 1",
            "thumbprint": "0123456789ABCDEF0123456789ABCDEF01234567",
            "dnsNames": ["fs01.branch-a.contoso.com"],
            "source": "Probe",
        },
        "conditions": [
            cond("Ready", "False", "Degraded",
                 "HotpatchHealthy: RebootPending: the guest waits for a reboot to finish patching; "
                 "SMBOverQUICCertificateValid: CertificateExpiringSoon: the certificate expires in 10 days"),
            cond("ImageResolved", "True", "ImageResolved", "2022-datacenter-azure-edition-core: newest that fits"),
            cond("VMProvisioned", "True", "Succeeded", "provisioned"),
            cond("HotpatchHealthy", "False", "RebootPending",
                 "the guest waits for a reboot to finish patching; reboot it in a maintenance window"),
            cond("SMBOverQUICCertificateValid", "False", "CertificateExpiringSoon",
                 "the certificate expires in 10 days (2026-12-09); renew it"),
        ],
    }  # fmt: skip


def ready_status() -> dict[str, Any]:
    status = degraded_status()
    status["phase"] = "Ready"
    status["hotpatch"]["rebootPending"] = False
    status["smbOverQuic"].update(state="Valid", notAfter="2027-06-01T00:00:00Z", daysRemaining=184)
    status["conditions"] = [
        cond("Ready", "True", "Ready", "VM provisioned and every capability healthy"),
        cond("ImageResolved", "True", "ImageResolved", "2022-datacenter-azure-edition-core"),
        cond("VMProvisioned", "True", "Succeeded", "provisioned"),
        cond("HotpatchHealthy", "True", "HotpatchEnabled", "Hotpatch enrolled"),
        cond("SMBOverQUICCertificateValid", "True", "CertificateValid", "valid for 184 days"),
    ]
    return status


def failed_status() -> dict[str, Any]:
    """Azure refused the VM: quota."""
    return {
        "observedGeneration": 1,
        "phase": "Failed",
        "conditions": [
            cond("Ready", "False", "ProvisioningFailed", "QuotaExceeded: Operation could not be completed"),
            cond("ImageResolved", "True", "ImageResolved", "2022-datacenter-azure-edition-core"),
            cond("VMProvisioned", "False", "QuotaExceeded",
                 "QuotaExceeded: Operation could not be completed as it results in exceeding approved "
                 "standardDASv5Family Cores quota"),
        ],
    }  # fmt: skip


def obj(
    status: dict[str, Any] | None = None, name: str = "branch-fs-01", namespace: str = "branch-a"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "azureedition.io/v1alpha1",
        "kind": "AzureEditionVM",
        "metadata": {"name": name, "namespace": namespace, "generation": 1, "uid": "u-1"},
        "spec": spec(),
    }
    if status is not None:
        body["status"] = copy.deepcopy(status)
    return body
