"""Network security groups through the real SDK: create, read, the NIC's reference, rules Azure refuses,
and a group in use that cannot be deleted."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import models as nm

from azure_edition_simulator import Simulator

from .conftest import LOCATION, RESOURCE_GROUP, Clients, subnet_id

pytestmark = pytest.mark.integration


def udp_rule(name: str, port: str, priority: int, access: str = "Allow") -> nm.SecurityRule:
    return nm.SecurityRule(
        name=name, protocol="Udp", direction="Inbound", access=access, priority=priority,
        source_address_prefix="*", source_port_range="*", destination_address_prefix="*",
        destination_port_range=port,
    )  # fmt: skip


def group(*rules: nm.SecurityRule) -> nm.NetworkSecurityGroup:
    return nm.NetworkSecurityGroup(location=LOCATION, tags={"managed-by": "test"}, security_rules=list(rules))


def test_a_group_is_created_read_and_referenced_by_a_nic(sim: Simulator, clients: Clients) -> None:
    made = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, "nsg-fs01", group(udp_rule("smb-quic-alt", "8443", 1000))
    ).result()
    assert made.provisioning_state == "Succeeded"
    assert [(r.name, r.protocol, r.destination_port_range, r.priority) for r in made.security_rules] == [
        ("smb-quic-alt", "Udp", "8443", 1000)
    ]
    assert "DenyAllInBound" in {r.name for r in made.default_security_rules}
    config = nm.NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=nm.Subnet(id=subnet_id(sim)))
    nic = clients.network.network_interfaces.begin_create_or_update(
        RESOURCE_GROUP, "nic-fs01",
        nm.NetworkInterface(location=LOCATION, ip_configurations=[config],
                            network_security_group=nm.NetworkSecurityGroup(id=made.id)),
    ).result()  # fmt: skip
    assert nic.network_security_group.id == made.id
    got = clients.network.network_security_groups.get(RESOURCE_GROUP, "nsg-fs01")
    assert [n.id for n in got.network_interfaces] == [nic.id]
    assert got.tags == {"managed-by": "test"}

    with pytest.raises(HttpResponseError) as err:
        clients.network.network_security_groups.begin_delete(RESOURCE_GROUP, "nsg-fs01").result()
    assert err.value.error.code == "InUseNetworkSecurityGroupCannotBeDeleted"

    nic.network_security_group = None
    clients.network.network_interfaces.begin_create_or_update(RESOURCE_GROUP, "nic-fs01", nic).result()
    clients.network.network_security_groups.begin_delete(RESOURCE_GROUP, "nsg-fs01").result()
    with pytest.raises(ResourceNotFoundError):
        clients.network.network_security_groups.get(RESOURCE_GROUP, "nsg-fs01")
    assert clients.network.network_interfaces.get(RESOURCE_GROUP, "nic-fs01").network_security_group is None


def test_a_nic_naming_a_missing_group_is_refused(sim: Simulator, clients: Clients) -> None:
    missing = (f"/subscriptions/{sim.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers/"
               "Microsoft.Network/networkSecurityGroups/nope")  # fmt: skip
    config = nm.NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=nm.Subnet(id=subnet_id(sim)))
    with pytest.raises(HttpResponseError) as err:
        clients.network.network_interfaces.begin_create_or_update(
            RESOURCE_GROUP, "nic-x",
            nm.NetworkInterface(location=LOCATION, ip_configurations=[config],
                                network_security_group=nm.NetworkSecurityGroup(id=missing)),
        ).result()  # fmt: skip
    assert err.value.error.code == "InvalidResourceReference"


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ((udp_rule("a", "8443", 99),), "SecurityRuleInvalidPriority"),
        ((udp_rule("a", "8443", 1000), udp_rule("b", "9443", 1000)), "SecurityRulesInvalidPriorityConflict"),
    ],
)
def test_rules_azure_refuses_are_refused(sim: Simulator, clients: Clients, rules: tuple, code: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        clients.network.network_security_groups.begin_create_or_update(
            RESOURCE_GROUP, "nsg-bad", group(*rules)
        ).result()
    assert err.value.error.code == code


def test_the_operators_group_round_trips_through_the_sdk(sim: Simulator, clients: Clients) -> None:
    """What nsg_specs builds is accepted as sent, reads back as unchanged (no second PUT), and the NIC
    update it builds attaches it."""
    from azure_edition_operator.azure import nsg_specs, specs
    from tests.unit.test_azure_specs import OWNER, make_spec

    spec = make_spec(
        capabilities=["SMBOverQUIC"],
        azure={"subscriptionId": sim.subscription_id, "resourceGroup": RESOURCE_GROUP, "location": LOCATION,
               "subnetId": subnet_id(sim)},
        smbOverQuic={"serverName": "fs01.branch-a.contoso.com", "alternativePort": 8443},
    )  # fmt: skip
    identity = specs.vm_identity(OWNER, spec.azure)
    tags, ports = specs.desired_tags(spec, OWNER), nsg_specs.smb_ports(spec)
    assert ports is not None
    name = nsg_specs.nsg_name(identity)
    made = clients.network.network_security_groups.begin_create_or_update(
        RESOURCE_GROUP, name, nsg_specs.nsg_parameters(identity, tags, ports)
    ).result()
    assert specs.same_id(made.id, nsg_specs.nsg_id(identity))
    observed = clients.network.network_security_groups.get(RESOURCE_GROUP, name)
    assert nsg_specs.nsg_update(observed, tags, ports) is None
    assert nsg_specs.nsg_update(observed, tags, nsg_specs.SmbPorts(443, 9443)) is not None

    nic = clients.network.network_interfaces.begin_create_or_update(
        RESOURCE_GROUP, identity.nic_name, specs.nic_parameters(identity, subnet_id(sim), tags)
    ).result()
    update = nsg_specs.nic_nsg_update(nic, made.id, nsg_specs.nsg_id(identity))
    assert update is not None
    attached = clients.network.network_interfaces.begin_create_or_update(
        RESOURCE_GROUP, identity.nic_name, update
    ).result()
    assert nsg_specs.nic_nsg_update(attached, made.id, made.id) is None
    got = clients.network.network_security_groups.get(RESOURCE_GROUP, name)
    assert [n.id for n in got.network_interfaces] == [attached.id]
