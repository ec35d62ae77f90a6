"""The NSG the operator puts on the primary NIC for an alternative SMB over QUIC port, through the real SDK
against the simulator: created before the NIC refers to it, untouched in steady state, corrected when edited,
detached and deleted when the port goes, and deleted with the VM."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec, DeletionPolicy
from azure_edition_operator.azure import nsg_specs
from azure_edition_operator.azure.clients import AzureClients
from azure_edition_operator.azure.provision import DeletionOutcome, delete_vm

from .test_provisioning import World, clients, ensure, identity_for, world  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def smb_spec(on: World, **smb: Any) -> AzureEditionVMSpec:
    return on.spec(
        capabilities=["SMBOverQUIC"], hotpatch=None, azure={"publicIP": True},
        smbOverQuic={"serverName": "fs01.branch-a.contoso.com", **smb},
    )  # fmt: skip


async def test_the_alternative_port_brings_and_takes_its_nsg(world: World, clients: AzureClients) -> None:  # noqa: F811
    plain = smb_spec(world)
    ident = identity_for(world, plain)
    net = clients.network(ident.subscription_id)
    rg, name = ident.resource_group, nsg_specs.nsg_name(ident)
    await ensure(clients, world, plain)

    since = world.mark()
    await ensure(clients, world, smb_spec(world, alternativePort=8443))
    assert world.writes(since) == [
        ("PUT", "NetworkSecurityGroups_CreateOrUpdate"),
        ("PUT", "NetworkInterfaces_CreateOrUpdate"),
    ]
    group = await net.network_security_groups.get(rg, name)
    rules = {r.name: r.properties.destination_port_range for r in group.properties.security_rules}
    assert rules == {nsg_specs.QUIC_RULE: "443", nsg_specs.ALTERNATIVE_RULE: "8443"}
    nic = await net.network_interfaces.get(rg, ident.nic_name)
    assert nic.properties.network_security_group.id.lower() == group.id.lower()

    since = world.mark()
    await ensure(clients, world, smb_spec(world, alternativePort=8443))
    assert world.writes(since) == [], "steady state: nothing is PUT"

    since = world.mark()
    await ensure(clients, world, smb_spec(world, alternativePort=9443))
    assert world.writes(since) == [("PUT", "NetworkSecurityGroups_CreateOrUpdate")]

    since = world.mark()
    await ensure(clients, world, plain)
    assert world.writes(since) == [
        ("PUT", "NetworkInterfaces_CreateOrUpdate"),
        ("DELETE", "NetworkSecurityGroups_Delete"),
    ]
    with pytest.raises(ResourceNotFoundError):
        await net.network_security_groups.get(rg, name)
    nic = await net.network_interfaces.get(rg, ident.nic_name)
    assert nic.properties.network_security_group is None


async def test_the_nsg_goes_with_the_vm(world: World, clients: AzureClients) -> None:  # noqa: F811
    spec = smb_spec(world, alternativePort=8443)
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    report = await delete_vm(clients, ident, DeletionPolicy.DELETE, wait=True)
    assert nsg_specs.nsg_name(ident) in report.of(DeletionOutcome.DELETED)
    with pytest.raises(ResourceNotFoundError):
        await clients.network(ident.subscription_id).network_security_groups.get(
            ident.resource_group, nsg_specs.nsg_name(ident)
        )


async def test_the_nsg_goes_with_the_vm_at_azures_pace(world: World, clients: AzureClients) -> None:  # noqa: F811
    """With Azure's durations a deleted NIC stays (Deleting) a while, and Azure refuses to delete a group a
    NIC still refers to: the group is deleted only once the NIC is gone, without an error on the way."""
    world.control.set_timing("azure", time_scale=0.02, seed=7)
    spec = smb_spec(world, alternativePort=8443)
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    since = world.mark()
    report = await delete_vm(clients, ident, DeletionPolicy.DELETE, wait=True)
    assert nsg_specs.nsg_name(ident) in report.of(DeletionOutcome.DELETED)
    refused = [r for r in world.arm_requests(since) if r[1] == "NetworkSecurityGroups_Delete" and r[2] >= 400]
    assert refused == []
    with pytest.raises(ResourceNotFoundError):
        await clients.network(ident.subscription_id).network_security_groups.get(
            ident.resource_group, nsg_specs.nsg_name(ident)
        )


async def test_orphan_leaves_the_nsg_without_our_tags(world: World, clients: AzureClients) -> None:  # noqa: F811
    spec = smb_spec(world, alternativePort=8443)
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    report = await delete_vm(clients, ident, DeletionPolicy.ORPHAN, wait=True)
    assert nsg_specs.nsg_name(ident) in report.of(DeletionOutcome.UNTAGGED)
    group = await clients.network(ident.subscription_id).network_security_groups.get(
        ident.resource_group, nsg_specs.nsg_name(ident)
    )
    assert group.tags == {"costCenter": "42"}
    assert {r.name for r in group.properties.security_rules} == set(nsg_specs.OUR_RULES)  # the rules stay
