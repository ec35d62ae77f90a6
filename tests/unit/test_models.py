"""Model round-trips (sample YAML → model → dict) and field validation."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from pydantic import ValidationError

from azure_edition_operator.api.v1alpha1 import AzureEditionVM, AzureEditionVMSpec, parse_duration
from tests.conftest import SAMPLES

SAMPLE_FILES = sorted(SAMPLES.glob("*.yaml"))
SUB = "00000000-0000-0000-0000-000000000000"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"


def _vm_docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "AzureEditionVM"]


def _strip_defaults(model_dump: dict, original: dict) -> dict:
    """Keep only the keys the sample set, recursively (defaults are added by the model)."""
    if not isinstance(original, dict):
        return model_dump
    return {k: _strip_defaults(model_dump[k], v) for k, v in original.items()}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_sample_round_trips(path):
    for doc in _vm_docs(path):
        vm = AzureEditionVM.model_validate(doc)
        dumped = vm.to_wire()
        assert _strip_defaults(dumped, doc) == doc
        assert AzureEditionVM.model_validate(dumped) == vm


def test_there_is_a_sample_per_capability_mix():
    mixes = {frozenset(d["spec"]["capabilities"]) for p in SAMPLE_FILES for d in _vm_docs(p)}
    assert {frozenset(), frozenset({"Hotpatch"}), frozenset({"SMBOverQUIC"}), frozenset({"ExtendedNetwork"}),
            frozenset({"Hotpatch", "SMBOverQUIC", "ExtendedNetwork"})} <= mixes  # fmt: skip


def _spec(**overrides):
    base = {"azure": {"subscriptionId": SUB, "resourceGroup": "rg", "location": "westeurope", "subnetId": SUBNET},
            "adminCredentialsSecretRef": {"name": "admin"}}  # fmt: skip
    base.update(overrides)
    return base


def test_defaults():
    spec = AzureEditionVMSpec.model_validate(_spec())
    assert spec.capabilities == [] and spec.check_interval == "10m" and spec.check_interval_seconds == 600
    assert spec.deletion_policy == "Delete" and spec.azure.vm_size == "Standard_D2as_v5"
    assert spec.azure.public_ip is False


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"capabilities": ["Teleport"]}, "capabilities"),
        ({"capabilities": ["Hotpatch", "Hotpatch"]}, "must not repeat"),
        ({"checkInterval": "10 minutes"}, "checkInterval"),
        ({"checkInterval": "1s"}, "between 5s and 24h"),
        (
            {
                "azure": {
                    "subscriptionId": "not-a-guid",
                    "resourceGroup": "rg",
                    "location": "westeurope",
                    "subnetId": SUBNET,
                }
            },
            "subscriptionId",
        ),
        (
            {
                "azure": {
                    "subscriptionId": SUB,
                    "resourceGroup": "rg",
                    "location": "westeurope",
                    "subnetId": "/subscriptions/x/subnets/y",
                }
            },
            "subnetId",
        ),
        ({"image": {"windowsServerVersion": "2019"}}, "windowsServerVersion"),
        ({"image": {"experience": "Nano"}}, "experience"),
        ({"smbOverQuic": {"serverName": "Not A Name"}}, "serverName"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_bad_specs_are_refused(overrides, needle):
    with pytest.raises(ValidationError) as err:
        AzureEditionVMSpec.model_validate(_spec(**overrides))
    assert needle in str(err.value)


def test_arm_ids_are_case_insensitive_like_arm():
    spec = AzureEditionVMSpec.model_validate(
        _spec(
            azure={
                "subscriptionId": SUB,
                "resourceGroup": "rg",
                "location": "westeurope",
                "subnetId": SUBNET.replace("resourceGroups", "resourcegroups"),
            }
        )
    )
    assert "resourcegroups" in spec.azure.subnet_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2h0m5s", timedelta(hours=2, seconds=5)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "m", "1d", "-5m", "5m1h"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
