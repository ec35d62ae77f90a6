"""The CRD on a real kube-apiserver: samples accepted, bad objects refused with our messages,
printer columns and `kubectl explain`, and CEL/resolver agreement checked by the API server itself."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from azure_edition_operator.api import cel
from azure_edition_operator.images import UnsupportedCapabilitiesError, resolve
from tests.conftest import SAMPLES
from tests.unit.test_cel_agreement import spec_for

SUB = "00000000-0000-0000-0000-000000000000"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/rg-branch-a/providers/Microsoft.Network/virtualNetworks/vnet-branch-a/subnets/servers"
SAMPLE_FILES = sorted(SAMPLES.glob("*.yaml"))


def base_vm(name: str = "vm", **spec_overrides) -> dict:
    spec = {
        "capabilities": [],
        "azure": {
            "subscriptionId": SUB,
            "resourceGroup": "rg-branch-a",
            "location": "westeurope",
            "subnetId": SUBNET,
        },
        "adminCredentialsSecretRef": {"name": "admin"},
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "azureedition.io/v1alpha1",
        "kind": "AzureEditionVM",
        "metadata": {"name": name},
        "spec": spec,
    }


def apply(kubectl, namespace: str, obj: dict, *extra: str, check: bool = False):
    return kubectl("apply", "-n", namespace, "-f", "-", *extra, input=yaml.safe_dump(obj), check=check)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_samples_are_accepted_by_dry_run_and_create(crd, kubectl, namespace, path):
    kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))
    kubectl("create", "-n", namespace, "-f", str(path))
    names = [
        d["metadata"]["name"] for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "AzureEditionVM"
    ]
    for name in names:
        got = json.loads(kubectl("get", "aevm", name, "-n", namespace, "-o", "json").stdout)
        assert (
            got["spec"]["checkInterval"] == "1m" and got["spec"]["deletionPolicy"] == "Delete"
        )  # defaults applied


HOTPATCH_ON_2025 = {"windowsServerVersion": "2025"}
BAD_OBJECTS = [
    ("unknown-capability", {"capabilities": ["Teleport"]}, 'Unsupported value: "Teleport"'),
    ("smb-without-servername", {"capabilities": ["SMBOverQUIC"]},
     "spec.smbOverQuic.serverName is required when SMBOverQUIC is requested"),
    ("extnet-without-subnet", {"capabilities": ["ExtendedNetwork"]},
     "spec.extendedNetwork.extendedSubnetId is required when ExtendedNetwork is requested"),
    ("extnet-pinned-2025", {"capabilities": ["ExtendedNetwork"], "image": HOTPATCH_ON_2025,
                            "extendedNetwork": {"extendedSubnetId": SUBNET}},
     "ExtendedNetwork is requested but no image allowed by spec.image carries it"),
    ("unknown-version", {"image": {"windowsServerVersion": "2019"}}, 'Unsupported value: "2019"'),
    ("unknown-experience", {"image": {"experience": "Nano"}}, 'Unsupported value: "Nano"'),
    ("bad-subscription", {"azure": {"subscriptionId": "not-a-guid", "resourceGroup": "rg", "location": "westeurope",
                                    "subnetId": SUBNET}}, "spec.azure.subscriptionId"),
    ("bad-subnet-id", {"azure": {"subscriptionId": SUB, "resourceGroup": "rg", "location": "westeurope",
                                 "subnetId": "/subscriptions/x/subnets/y"}}, "spec.azure.subnetId"),
    ("bad-interval", {"checkInterval": "2s"}, "checkInterval must be between 5s and 24h"),
    ("interval-words", {"checkInterval": "ten minutes"}, "spec.checkInterval"),
    ("bad-port", {"capabilities": ["SMBOverQUIC"], "smbOverQuic": {"serverName": "fs.contoso.com", "port": 70000}},
     "spec.smbOverQuic.port"),
    ("bad-servername", {"capabilities": ["SMBOverQUIC"], "smbOverQuic": {"serverName": "Not A DNS Name"}},
     "spec.smbOverQuic.serverName"),
    ("bad-deletion-policy", {"deletionPolicy": "Shred"}, 'Unsupported value: "Shred"'),
    ("duplicate-capability", {"capabilities": ["Hotpatch", "Hotpatch"]}, "Duplicate value"),
    ("no-secret-ref", {"adminCredentialsSecretRef": None}, "adminCredentialsSecretRef"),
    ("two-certificate-sources", {"capabilities": ["SMBOverQUIC"], "smbOverQuic": {"serverName": "fs.contoso.com",
        "certificate": {"secretRef": {"name": "tls"}, "keyVault": {"secretUrl": "https://kv.vault.azure.net/secrets/c"}}}},
     "spec.smbOverQuic.certificate needs exactly one source: secretRef or keyVault"),
    ("no-certificate-source", {"capabilities": ["SMBOverQUIC"], "smbOverQuic": {"serverName": "fs.contoso.com",
                                                                               "certificate": {}}},
     "spec.smbOverQuic.certificate needs exactly one source: secretRef or keyVault"),
    ("dns-label-without-public-ip", {"azure": {"subscriptionId": SUB, "resourceGroup": "rg", "location": "westeurope",
                                               "subnetId": SUBNET, "publicIPDnsLabel": "fs01"}},
     "spec.azure.publicIPDnsLabel names the public IP: set spec.azure.publicIP: true"),
    ("key-vault-url-with-version", {"capabilities": ["SMBOverQUIC"], "smbOverQuic": {"serverName": "fs.contoso.com",
        "certificate": {"keyVault": {"secretUrl": "https://kv.vault.azure.net/secrets/c/0123abcd"}}}},
     "spec.smbOverQuic.certificate.keyVault.secretUrl"),
    ("alternative-port-on-2022", {"capabilities": ["SMBOverQUIC"], "image": {"windowsServerVersion": "2022"},
                                  "smbOverQuic": {"serverName": "fs.contoso.com", "alternativePort": 8443}},
     "spec.smbOverQuic.alternativePort needs SMB alternative ports, which only Windows Server 2025"),
    ("alternative-port-out-of-range", {"capabilities": ["SMBOverQUIC"],
                                       "smbOverQuic": {"serverName": "fs.contoso.com", "alternativePort": 0}},
     "spec.smbOverQuic.alternativePort"),
    ("window-too-long", {"hotpatch": {"maintenanceWindow": {"daysOfWeek": ["Saturday"], "startTime": "02:00",
                                                            "duration": "4h"}}},
     "maintenanceWindow.duration must be between 30m and 3h55m"),
    ("window-start-not-hh-mm", {"hotpatch": {"maintenanceWindow": {"daysOfWeek": ["Saturday"], "startTime": "2am"}}},
     "spec.hotpatch.maintenanceWindow.startTime"),
    ("window-unknown-day", {"hotpatch": {"maintenanceWindow": {"daysOfWeek": ["Samstag"], "startTime": "02:00"}}},
     'Unsupported value: "Samstag"'),
    ("window-repeated-day", {"hotpatch": {"maintenanceWindow": {"daysOfWeek": ["Sunday", "Sunday"],
                                                                "startTime": "02:00"}}}, "Duplicate value"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "overrides", "message"), BAD_OBJECTS, ids=[b[0] for b in BAD_OBJECTS])
def test_bad_objects_are_refused_with_our_message(crd, kubectl, namespace, name, overrides, message):
    obj = base_vm(name, **overrides)
    if overrides.get("adminCredentialsSecretRef", "") is None:
        del obj["spec"]["adminCredentialsSecretRef"]
    result = apply(kubectl, namespace, obj)
    assert result.returncode != 0, f"{name} was accepted"
    assert message in result.stderr, result.stderr


IMMUTABLE_CHANGES = [
    ("location", lambda s: s["azure"].update(location="northeurope"), "spec.azure.location is immutable"),
    ("subscription", lambda s: s["azure"].update(subscriptionId="11111111-1111-1111-1111-111111111111"),
     "spec.azure.subscriptionId is immutable"),
    ("resource-group", lambda s: s["azure"].update(resourceGroup="rg-other"), "spec.azure.resourceGroup is immutable"),
    ("image", lambda s: s["image"].update(experience="DesktopExperience"), "spec.image is immutable"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "change", "message"), IMMUTABLE_CHANGES, ids=[c[0] for c in IMMUTABLE_CHANGES]
)
def test_immutable_fields_cannot_change_after_creation(crd, kubectl, namespace, what, change, message):
    obj = base_vm(f"immutable-{what}", image={"windowsServerVersion": "2022", "experience": "Core"})
    apply(kubectl, namespace, obj, check=True)
    changed = copy.deepcopy(obj)
    change(changed["spec"])
    result = apply(kubectl, namespace, changed)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    # and a mutable field still changes
    obj["spec"]["azure"]["vmSize"] = "Standard_D4as_v5"
    apply(kubectl, namespace, obj, check=True)


def _set_status(kubectl, namespace, name, status):
    patch = json.dumps({"status": status})
    kubectl("patch", "aevm", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", patch)


def test_capability_the_running_image_cannot_carry_is_refused(crd, kubectl, namespace):
    obj = base_vm("runs-2025", capabilities=["Hotpatch"])
    apply(kubectl, namespace, obj, check=True)
    image = resolve({"Hotpatch"})
    _set_status(kubectl, namespace, "runs-2025", {"image": {
        "publisher": image.publisher, "offer": image.offer, "sku": image.sku, "version": "latest",
        "windowsServerVersion": "2025", "experience": "Core"}})  # fmt: skip
    obj["spec"]["capabilities"] = ["Hotpatch", "ExtendedNetwork"]
    obj["spec"]["extendedNetwork"] = {"extendedSubnetId": SUBNET}
    result = apply(kubectl, namespace, obj)
    assert result.returncode != 0
    assert "image 2025-datacenter-azure-edition-core (status.image.sku) cannot carry" in result.stderr, (
        result.stderr
    )
    obj["spec"]["image"] = {"windowsServerVersion": "2022"}
    del obj["spec"]["extendedNetwork"]
    obj["spec"]["capabilities"] = ["Hotpatch"]
    result = apply(kubectl, namespace, obj)
    assert result.returncode != 0 and "spec.image must match the image the VM already runs" in result.stderr


def test_cel_agrees_with_resolver_on_the_real_api_server(crd, kubectl, namespace):
    """All pins x capability sets in one server-side dry run: refused exactly when resolve() fails."""
    items, expected = [], {}
    for i, (pins, caps) in enumerate((p, c) for p in cel.all_pins() for c in cel.all_capability_sets()):
        spec = spec_for(pins, caps)
        if "SMBOverQUIC" in caps:
            spec["smbOverQuic"] = {"serverName": "fs.contoso.com"}
        if "ExtendedNetwork" in caps:
            spec["extendedNetwork"] = {"extendedSubnetId": SUBNET}
        obj = base_vm(f"combo-{i}", **spec)
        items.append(obj)
        try:
            resolve(caps, pins)
            expected[f"combo-{i}"] = True
        except UnsupportedCapabilitiesError:
            expected[f"combo-{i}"] = False
    doc = {"apiVersion": "v1", "kind": "List", "items": items}
    result = kubectl("create", "--dry-run=server", "-n", namespace, "-f", "-", "-o", "name",
                     input=yaml.safe_dump(doc), check=False, timeout=120)  # fmt: skip
    accepted = {line.rsplit("/", 1)[-1] for line in result.stdout.split()}
    refused = {n for n in expected if f'"{n}" is invalid' in result.stderr}
    assert accepted | refused == set(expected), (len(accepted), len(refused))
    assert {n for n, ok in expected.items() if ok} == accepted
    assert refused and all(not expected[n] for n in refused)


def test_printer_columns_and_explain(crd, kubectl, namespace):
    apply(kubectl, namespace, base_vm("columns"), check=True)
    _set_status(kubectl, namespace, "columns", {
        "phase": "Ready", "image": {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                                    "sku": "2025-datacenter-azure-edition-core", "version": "latest",
                                    "windowsServerVersion": "2025", "experience": "Core"},
        "smbOverQuic": {"daysRemaining": 211},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "all good",
                        "lastTransitionTime": "2026-11-26T12:00:00Z"}]})  # fmt: skip
    table = kubectl("get", "aevm", "-n", namespace).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "READY", "PHASE", "SKU", "HOTPATCH", "CERT-DAYS", "AGE"]
    row = table.splitlines()[1].split()
    assert row[:4] == ["columns", "True", "Ready", "2025-datacenter-azure-edition-core"] and "211" in row
    wide = kubectl("get", "aevm", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["REASON", "MESSAGE"] and wide[1].rstrip().endswith("all good")
    explain = kubectl("explain", "azureeditionvm.spec.smbOverQuic").stdout
    assert "DNS name SMB clients connect to" in explain and "expiryWarningDays" in explain
    assert "aevm" in kubectl("api-resources", "--api-group=azureedition.io").stdout
    assert "columns" in kubectl("get", "azure", "-n", namespace).stdout  # the category
