"""Extended Network's prerequisites decided by pure functions: sizes from Resource SKUs, subnets, gateway and
connection, the extended NIC, the guest; the condition, its place in Ready, and the vocabulary's agreement
with the reference and troubleshooting pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from azure_edition_operator import extended_network as xn
from azure_edition_operator import reasons as vocab
from azure_edition_operator.azure.extended import PrerequisitesNotMet
from azure_edition_operator.conditions import ConditionType
from azure_edition_operator.images import Capability
from azure_edition_operator.reconciler import PREREQUISITES_RETRY, reconcile_pass
from azure_edition_operator.status import Observation, compute_status, condition, conditions_of
from azure_edition_simulator import skus as sim_skus

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
SUB = "00000000-0000-0000-0000-000000000000"
VNET = f"/subscriptions/{SUB}/resourceGroups/rg-branch-a/providers/Microsoft.Network/virtualNetworks/vnet-branch-a"
PRIMARY = f"{VNET}/subnets/servers"
EXTENDED = f"{VNET}/subnets/extended"
GW_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-branch-a/providers/Microsoft.Network/virtualNetworkGateways/vgw"
)


def catalogue(location: str = "westeurope", restricted: tuple[str, ...] = ()) -> dict[str, xn.Size]:
    """Resource SKUs - List as the simulator (from Learn's size pages) answers it."""
    wire = [sim_skus.resource_sku(s, location, s.name in restricted) for s in sim_skus.CATALOGUE]
    return xn.sizes_in(wire, location)


# ----------------------------------------------------------------------------- sizes


def test_the_family_table_agrees_with_every_size_the_simulator_knows():
    sizes = catalogue()
    for size in sim_skus.CATALOGUE:
        assert sizes[size.name.lower()].nested_virtualization is size.nested_virtualization, size.name


def test_a_size_without_nesting_is_refused_with_sizes_that_would_do():
    problem = xn.check_size("Standard_B2s", "westeurope", catalogue())
    assert problem is not None and problem.reason == vocab.NESTED_VIRTUALIZATION_UNSUPPORTED
    would = problem.message.split("would do: ", 1)[1].split(", ")
    first = sim_skus.find(would[0])  # 2 vCPUs and 4 GiB like B2s: the closest first
    nesting_two = [s for s in sim_skus.CATALOGUE if s.vcpus == 2 and s.nested_virtualization]
    assert first.vcpus == 2 and abs(first.memory_gb - 4) == min(abs(s.memory_gb - 4) for s in nesting_two)
    assert all(sim_skus.find(n).nested_virtualization for n in would)
    assert "Standard_B2s" not in would and "Standard_DS1_v2" not in would


def test_restricted_sizes_are_not_suggested():
    problem = xn.check_size("standard_b2s", "westeurope", catalogue(restricted=("Standard_D2as_v5",)))
    assert problem is not None and "Standard_D2as_v5" not in problem.message


def test_a_nesting_size_or_one_azure_does_not_offer_is_no_problem_of_ours():
    assert xn.check_size("Standard_D2as_v5", "westeurope", catalogue()) is None
    assert xn.check_size("Standard_Nope_v9", "westeurope", catalogue()) is None  # Azure's own refusal says it


def test_sizes_of_another_region_are_not_read():
    assert (
        xn.sizes_in([sim_skus.resource_sku(sim_skus.CATALOGUE[0], "northeurope", False)], "westeurope") == {}
    )


def test_no_size_would_do_says_so():
    sizes = {k: v for k, v in catalogue().items() if not v.nested_virtualization}
    problem = xn.check_size("Standard_B2s", "westeurope", sizes)
    assert problem is not None and "none offered" in problem.message


# ----------------------------------------------------------------------------- subnets


@pytest.mark.parametrize(
    ("extended", "reason"),
    [
        (PRIMARY.upper(), vocab.EXTENDED_SUBNET_IS_PRIMARY),
        (PRIMARY.replace("vnet-branch-a", "vnet-other").replace("servers", "extended"),
         vocab.EXTENDED_SUBNET_IN_OTHER_NETWORK),
        (f"{VNET}/subnets/GatewaySubnet", vocab.EXTENDED_SUBNET_IS_GATEWAY_SUBNET),
        (EXTENDED, None),
    ],
)  # fmt: skip
def test_subnet_ids(extended: str, reason: str | None):
    problem = xn.check_subnet_ids(PRIMARY, extended)
    assert (problem.reason if problem else None) == reason


def test_a_delegated_subnet_names_the_service():
    delegated = {"name": "extended", "properties": {"delegations": [
        {"name": "d0", "properties": {"serviceName": "Microsoft.Web/serverFarms"}}]}}  # fmt: skip
    problem = xn.check_extended_subnet(delegated)
    assert problem is not None and problem.reason == vocab.EXTENDED_SUBNET_DELEGATED
    assert "Microsoft.Web/serverFarms" in problem.message
    assert xn.check_extended_subnet({"name": "extended", "properties": {"delegations": []}}) is None
    assert xn.check_extended_subnet(None) is None


def test_before_put_reports_size_and_subnet_together_size_first():
    problems = xn.check_before_put(PRIMARY, PRIMARY, "Standard_B2s", "westeurope", catalogue(), None)
    assert [p.reason for p in problems] == [
        vocab.NESTED_VIRTUALIZATION_UNSUPPORTED,
        vocab.EXTENDED_SUBNET_IS_PRIMARY,
    ]


def test_gateway_subnet_id_is_in_the_primary_subnets_network():
    assert xn.gateway_subnet_id(PRIMARY) == f"{VNET}/subnets/GatewaySubnet"
    assert xn.vnet_of(PRIMARY) == VNET.lower()


# ----------------------------------------------------------------------------- gateway and connection


def gw_subnet(*ids: str) -> dict[str, Any]:
    return {"name": "GatewaySubnet", "properties": {"ipConfigurations": [{"id": i} for i in ids]}}


def connection(name: str, status: str, gateway: str = GW_ID) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {"virtualNetworkGateway1": {"id": gateway}, "connectionStatus": status},
    }


def test_gateway_ids_come_from_the_gateway_subnets_ip_configurations():
    nic_cfg = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n/ipConfigurations/c"
    assert xn.gateway_ids(gw_subnet(f"{GW_ID}/ipConfigurations/default", nic_cfg)) == [GW_ID]
    assert xn.gateway_ids(None) == [] and xn.gateway_ids(gw_subnet()) == []


def test_gateway_chain():
    gw = {"id": GW_ID, "name": "vgw"}
    assert xn.check_gateway("v", None, None, []).reason == vocab.GATEWAY_SUBNET_MISSING
    assert xn.check_gateway("v", gw_subnet(), None, []).reason == vocab.GATEWAY_MISSING
    assert xn.check_gateway("v", gw_subnet(), gw, []).reason == vocab.GATEWAY_NOT_CONNECTED
    down = xn.check_gateway(
        "v", gw_subnet(), gw, [connection("a", "NotConnected"), connection("b", "Connecting")]
    )
    assert down.reason == vocab.GATEWAY_NOT_CONNECTED and "a: NotConnected, b: Connecting" in down.message
    other = connection("c", "Connected", gateway=GW_ID.replace("vgw", "elsewhere"))
    assert xn.check_gateway("v", gw_subnet(), gw, [other]).reason == vocab.GATEWAY_NOT_CONNECTED
    assert (
        xn.check_gateway(
            "v", gw_subnet(), gw, [connection("a", "NotConnected"), connection("b", "Connected")]
        )
        is None
    )


# ----------------------------------------------------------------------------- NIC and guest


def test_ip_forwarding():
    assert (
        xn.check_nic({"name": "n", "properties": {"enableIPForwarding": False}}).reason
        == vocab.IP_FORWARDING_DISABLED
    )
    assert xn.check_nic({"name": "n", "properties": {}}).reason == vocab.IP_FORWARDING_DISABLED
    assert xn.check_nic({"name": "n", "properties": {"enableIPForwarding": True}}) is None
    assert xn.check_nic(None) is None


def test_guest_output_parsed_and_judged():
    assert xn.check_guest(xn.parse_guest('{"hypervRole":"Installed","appliance":"Running"}')) is None
    missing = xn.check_guest(xn.parse_guest('{"hypervRole":"Available","appliance":"NotInstalled"}'))
    assert missing.reason == vocab.HYPER_V_ROLE_MISSING
    off = xn.check_guest(xn.parse_guest('{"hypervRole":"Installed","appliance":"Off"}'))
    assert off.reason == vocab.APPLIANCE_NOT_RUNNING and "Off" in off.message
    assert xn.check_guest(None) is None
    for bad in ("", "oops", "[]", '{"appliance":"Running"}'):
        with pytest.raises(xn.GuestNetworkOutputError):
            xn.parse_guest(bad)


def test_the_script_carries_its_marker():
    assert xn.STATUS_SCRIPT[0] == "# azureedition.io/script: extended-network-status"


# ----------------------------------------------------------------------------- condition, Ready, vocabulary


def test_condition_first_problem_is_the_reason_all_are_in_the_message():
    a, b = xn.Problem("GatewayNotConnected", "one"), xn.Problem("ApplianceNotRunning", "two")
    c = xn.extended_network_condition([None, a, None, b], note="in-guest check failing 1x")
    assert (c.type, str(c.status), c.reason) == ("ExtendedNetworkReady", "False", "GatewayNotConnected")
    assert c.message == "one; two (in-guest check failing 1x)"
    ok = xn.extended_network_condition([None, None])
    assert ok.is_true and ok.reason == vocab.EXTENDED_NETWORK_READY


def _status(*capability_conditions: Any, prerequisites_met: bool = False, old: dict | None = None) -> dict:
    obs = Observation(
        1, frozenset({Capability.EXTENDED_NETWORK}), vm={"resourceId": "x"},
        vm_condition=condition(ConditionType.VM_PROVISIONED, True, "Succeeded"),
        image_condition=condition(ConditionType.IMAGE_RESOLVED, True, "ImageResolved"),
        capability_conditions=capability_conditions, prerequisites_met=prerequisites_met,
    )  # fmt: skip
    return compute_status(old or {}, obs, NOW)


def _ready(status: dict) -> tuple[str, str]:
    ready = next(c for c in conditions_of(status) if c.type == "Ready")
    return str(ready.status), ready.reason


@pytest.mark.parametrize("reason", [r.name for r in vocab.EXTENDED_NETWORK.values() if not r.ok])
def test_every_false_reason_is_an_outage_ready_false(reason: str):
    assert vocab.EXTENDED_NETWORK[reason].severity is vocab.Severity.OUTAGE
    status = _status(condition(ConditionType.EXTENDED_NETWORK_READY, False, reason, "m"))
    assert _ready(status) == ("False", "Degraded") and status["phase"] == "Degraded"


def test_ready_waits_for_the_first_extended_network_check_then_is_true():
    assert _ready(_status()) == ("False", "Provisioning")
    assert _ready(_status(xn.extended_network_condition([]))) == ("True", "Ready")


def test_a_pass_whose_prerequisites_hold_drops_a_stale_before_put_verdict_only():
    refused = _status(
        condition(ConditionType.EXTENDED_NETWORK_READY, False, vocab.NESTED_VIRTUALIZATION_UNSUPPORTED)
    )
    healed = _status(prerequisites_met=True, old=refused)
    assert "ExtendedNetworkReady" not in {c.type for c in conditions_of(healed)}
    assert _ready(healed) == ("False", "Provisioning")  # until the next check round looks
    down = _status(condition(ConditionType.EXTENDED_NETWORK_READY, False, vocab.GATEWAY_NOT_CONNECTED))
    kept = _status(prerequisites_met=True, old=down)
    assert _ready(kept) == ("False", "Degraded")


async def test_reconcile_refuses_before_put_with_the_condition_and_an_event():
    spec = {
        "capabilities": ["ExtendedNetwork"],
        "azure": {"subscriptionId": SUB, "resourceGroup": "rg-branch-a", "location": "westeurope",
                  "vmSize": "Standard_B2s", "subnetId": PRIMARY},
        "extendedNetwork": {"extendedSubnetId": EXTENDED},
        "adminCredentialsSecretRef": {"name": "admin"},
    }  # fmt: skip
    verdict = xn.extended_network_condition([xn.check_size("Standard_B2s", "westeurope", catalogue())])

    async def ensure(*_: Any) -> Any:
        raise PrerequisitesNotMet(verdict)

    async def creds() -> Any:
        raise AssertionError("nothing is created")

    outcome = await reconcile_pass(spec, 2, ensure, creds, 10.0, now=NOW)
    assert outcome.retry_after == PREREQUISITES_RETRY and outcome.permanent is None
    status = compute_status({}, outcome.observation, NOW)
    by_type = {c.type: c for c in conditions_of(status)}
    assert by_type["VMProvisioned"].reason == vocab.PREREQUISITES_NOT_MET
    assert by_type["ExtendedNetworkReady"].reason == vocab.NESTED_VIRTUALIZATION_UNSUPPORTED
    assert _ready(status) == ("False", "ProvisioningFailed") and status["phase"] == "Failed"
    assert "Standard_D2as_v5" in by_type["Ready"].message
    assert outcome.events[0][:2] == ("Warning", vocab.NESTED_VIRTUALIZATION_UNSUPPORTED)


def test_reference_and_troubleshooting_list_exactly_the_vocabulary():
    reference = (REPO / "docs" / "reference.md").read_text()
    section = reference.split("### ExtendedNetworkReady", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `(\w+)` \|", section, re.M)) == set(vocab.EXTENDED_NETWORK)
    trouble = (REPO / "docs" / "troubleshooting.md").read_text().split("## ExtendedNetworkReady", 1)[1]
    headings = set(re.findall(r"^### (\w+)", trouble, re.M))
    assert headings == {r.name for r in vocab.EXTENDED_NETWORK.values() if not r.ok}


def test_reason_names_are_valid_and_distinct_from_other_vocabularies():
    pattern = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    assert all(pattern.match(r) for r in vocab.EXTENDED_NETWORK)
    assert not set(vocab.EXTENDED_NETWORK) & set(vocab.VM_PROVISIONED)
    assert vocab.PREREQUISITES_NOT_MET in vocab.USER_REASONS  # Ready=False, ProvisioningFailed


def test_the_guest_is_asked_routinely_sooner_while_it_reports_a_problem_and_backs_off_on_failures():
    from azure_edition_operator.checks.runner import GuestLook

    look = GuestLook()
    assert look.wait(21600, 600, troubled=False) == 21600
    assert look.wait(21600, 600, troubled=True) == 600  # a fix is seen within the minimum interval
    look.failures = 3
    assert look.wait(21600, 600, troubled=False) == 4800
    look.failures = 10
    assert look.wait(21600, 600, troubled=True) == 21600
    assert look.note(21600, 600).startswith("in-guest check failing 10x, next try in 360 min")
