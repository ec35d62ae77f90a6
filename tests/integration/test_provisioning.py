"""Provisioning with the real aio SDKs (azure-identity, azure-mgmt-compute/network) against the ARM simulator.

Every claim about ARM traffic is checked in the simulator's own request log, not in our code's view
of it: which writes a create, a steady state, a change and a delete send; that Retry-After is
honoured; that a create interrupted between PUT and completion is resumed, not repeated; and that
Azure's validation errors arrive as the operator's two error kinds with Azure's code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import models as compute_models

from azure_edition_operator import reasons as vocab
from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec, DeletionPolicy
from azure_edition_operator.azure import specs
from azure_edition_operator.azure.clients import AzureClients, build_credential
from azure_edition_operator.azure.driver import OperationState
from azure_edition_operator.azure.errors import (
    AzurePermanentError,
    AzureRetryableError,
    from_exception,
)
from azure_edition_operator.azure.provision import DeletionOutcome, ObservedVM, delete_vm, ensure_vm
from azure_edition_operator.azure.settings import AzureSettings, CredentialMode
from azure_edition_operator.images import ImageReference, resolve
from azure_edition_simulator import Simulator

pytestmark = pytest.mark.integration

LOGIN = specs.AdminCredentials("azureadmin", "Sup3r-Secret-Passw0rd")
OWNER = specs.Owner("branch-a", "branch-fs-01", "11111111-1111-4111-8111-111111111111")
Request = tuple[str, str, int]  # (method, simulator operation name, status)


# ----------------------------------------------------------------------------- fixtures


@dataclass
class World:
    """The simulator, reset for one test, and what the test needs to talk to it."""

    sim: Simulator
    env: dict[str, str]

    @property
    def control(self) -> Any:
        return self.sim.control

    def settings(self, **overrides: Any) -> AzureSettings:
        base = AzureSettings(
            arm_endpoint=self.sim.endpoint,
            arm_scope=self.sim.credential_scope,
            authority_host=self.sim.authority_host,
            ca_bundle=str(self.sim.ca_path),
            credential_mode=CredentialMode.CLIENT_SECRET,
            polling_interval=0.1,
            request_timeout=10.0,
            max_retries=3,
            max_retry_after=5.0,
            operation_timeout=60.0,
            tenant_id=self.env["AZURE_TENANT_ID"],
            client_id=self.env["AZURE_CLIENT_ID"],
            client_secret=self.env["AZURE_CLIENT_SECRET"],
        )
        return base.model_copy(update=overrides)

    def spec(self, **overrides: Any) -> AzureEditionVMSpec:
        azure = {
            "subscriptionId": self.sim.subscription_id,
            "resourceGroup": self.env["ARMSIM_RESOURCE_GROUP"],
            "location": self.env["ARMSIM_LOCATION"],
            "subnetId": self.env["ARMSIM_SUBNET_ID"],
            "tags": {"costCenter": "42"},
        }
        azure.update(overrides.pop("azure", {}))
        raw = {
            "capabilities": ["Hotpatch"],
            "azure": azure,
            "adminCredentialsSecretRef": {"name": "admin"},
            "hotpatch": {"rebootSetting": "IfRequired"},
            **overrides,
        }
        return AzureEditionVMSpec.model_validate(raw)

    def full_spec(self) -> AzureEditionVMSpec:
        return self.spec(
            capabilities=["Hotpatch", "ExtendedNetwork"],
            azure={"publicIP": True},
            extendedNetwork={"extendedSubnetId": self.env["ARMSIM_EXTENDED_SUBNET_ID"]},
        )

    def mark(self) -> int:
        return self.control.last_seq()

    def arm_requests(self, since: int) -> list[Request]:
        """ARM requests the simulator answered after ``since`` (identity traffic left out)."""
        return [
            (e["method"], e["operation"], e["status"])
            for e in self.control.requests(since)
            if not e["operation"].startswith("Identity_")
        ]

    def writes(self, since: int) -> list[tuple[str, str]]:
        return [(m, op) for m, op, _ in self.arm_requests(since) if m != "GET"]


@pytest.fixture
def world(sim: Simulator) -> World:
    """The conftest's freshly reset simulator, with operations that stay in flight for a moment."""
    sim.control.set_provisioning_seconds(0.3)  # LROs are polled at least once while InProgress
    return World(sim, sim.env())


@dataclass
class Seen:
    """What the operator's request hook reported (method, operation, status), and each attempt's seconds."""

    calls: list[tuple[str, str, int | None]] = field(default_factory=list)
    seconds: list[float | None] = field(default_factory=list)

    def __call__(self, method: str, operation: str, status: int | None, seconds: float | None = None) -> None:
        self.calls.append((method, operation, status))
        self.seconds.append(seconds)


def azure_clients(world: World, seen: Seen | None = None, **overrides: Any) -> AzureClients:
    settings = world.settings(**overrides)
    credential = build_credential(settings)
    return AzureClients(settings, credential, seen, owns_credential=True)


@pytest.fixture
async def clients(world: World) -> AsyncIterator[AzureClients]:
    async with azure_clients(world, Seen()) as c:
        yield c


def identity_for(world: World, spec: AzureEditionVMSpec, owner: specs.Owner = OWNER) -> specs.VMIdentity:
    return specs.vm_identity(owner, spec.azure)


async def ensure(
    clients: AzureClients, world: World, spec: AzureEditionVMSpec, owner: specs.Owner = OWNER, **kw: Any
) -> ObservedVM:
    image = kw.pop("image", None) or resolve(spec.capabilities)
    kw.setdefault("wait", True)
    return await ensure_vm(clients, identity_for(world, spec, owner), spec, image, LOGIN, **kw)


# ----------------------------------------------------------------------------- create and steady state


async def test_create_sends_exactly_the_expected_calls(world: World, clients: AzureClients) -> None:
    spec = world.spec(azure={"publicIP": True})
    ident = identity_for(world, spec)
    since = world.mark()

    vm = await ensure(clients, world, spec)

    assert vm.provisioning_state == "Succeeded"
    assert world.writes(since) == [
        ("PUT", "PublicIPAddresses_CreateOrUpdate"),
        ("PUT", "NetworkInterfaces_CreateOrUpdate"),
        ("PUT", "VirtualMachines_CreateOrUpdate"),
    ]
    requests = world.arm_requests(since)
    # Before anything is written, the operator looks: each resource is read once (404).
    assert requests[0] == ("GET", "VirtualMachines_Get", 404)
    assert ("GET", "PublicIPAddresses_Get", 404) in requests
    assert ("GET", "NetworkInterfaces_Get", 404) in requests
    assert all(status < 400 for _, op, status in requests if not op.endswith("_Get")), requests
    # What Azure reports, read back into the observation.
    assert vm.name == ident.vm_name and vm.resource_id.lower() == ident.vm_id.lower()
    assert vm.vm_id and vm.private_ip_address and vm.public_ip_address
    assert vm.vm_size == "Standard_D2as_v5"
    assert vm.patch.patch_mode == "AutomaticByPlatform" and vm.patch.enable_hotpatching
    assert vm.patch.reboot_setting == "IfRequired"
    assert vm.tags[specs.OWNER_TAG] == OWNER.ref and vm.tags[specs.CLUSTER_TAG] == OWNER.cluster
    assert specs.OWNER_UID_TAG not in vm.tags and vm.tags["costCenter"] == "42"
    assert vm.image["sku"] == resolve(spec.capabilities).sku and vm.image["exactVersion"]
    assert vm.drift == ()
    assert vm.actions == (
        f"created publicIPAddresses/{ident.public_ip_name}",
        f"created networkInterfaces/{ident.nic_name}",
        f"created virtualMachines/{ident.vm_name}",
    )
    assert vm.to_status() == {
        "resourceId": vm.resource_id,
        "vmId": vm.vm_id,
        "provisioningState": "Succeeded",
        "privateIPAddress": vm.private_ip_address,
        "publicIPAddress": vm.public_ip_address,
    }
    # The SDK actually sent what the spec builders produced.
    sdk_vm = await clients.compute(ident.subscription_id).virtual_machines.get(
        ident.resource_group, ident.vm_name
    )
    assert sdk_vm.properties.storage_profile.os_disk.delete_option == "Delete"
    assert [r.properties.delete_option for r in sdk_vm.properties.network_profile.network_interfaces] == [
        "Delete"
    ]
    assert sdk_vm.properties.os_profile.computer_name == ident.computer_name


async def test_request_hook_sees_every_attempt(world: World) -> None:
    seen = Seen()
    spec = world.spec()
    since = world.mark()
    async with azure_clients(world, seen) as clients:
        await ensure(clients, world, spec)
    simulator_view = [(m, s) for m, _, s in world.arm_requests(since)]
    assert [(m, s) for m, _, s in seen.calls] == simulator_view
    assert ("PUT", "Microsoft.Compute/virtualMachines", 201) in seen.calls
    assert ("PUT", "Microsoft.Network/networkInterfaces", 201) in seen.calls
    # Each attempt is timed from sending to its answer (azureedition_azure_request_duration_seconds).
    assert len(seen.seconds) == len(seen.calls)
    assert all(s is not None and 0 < s < 30 for s in seen.seconds), seen.seconds


async def test_request_durations_reach_the_histogram(world: World) -> None:
    """The operator's hook (metrics.record_azure_request) through the real SDK pipeline: one observation
    per attempt, by resource type, method and status."""
    from prometheus_client import REGISTRY

    from azure_edition_operator import metrics

    def count(resource_type: str, method: str, code: str) -> float:
        labels = {"resource_type": resource_type, "method": method, "code": code}
        return REGISTRY.get_sample_value("azureedition_azure_request_duration_seconds_count", labels) or 0.0

    before = count("Microsoft.Compute/virtualMachines", "PUT", "201")
    seen = Seen()

    def both(method: str, operation: str, status: int | None, seconds: float | None = None) -> None:
        seen(method, operation, status, seconds)
        metrics.record_azure_request(method, operation, status, seconds)

    async with azure_clients(world, both) as clients:
        await ensure(clients, world, world.spec())
    puts = seen.calls.count(("PUT", "Microsoft.Compute/virtualMachines", 201))
    assert puts >= 1
    assert count("Microsoft.Compute/virtualMachines", "PUT", "201") - before == puts


async def test_steady_state_makes_no_writes(world: World, clients: AzureClients) -> None:
    spec = world.spec(azure={"publicIP": True})
    first = await ensure(clients, world, spec)
    since = world.mark()

    again = await ensure(clients, world, spec)

    assert world.writes(since) == []
    assert sorted(world.arm_requests(since)) == [
        ("GET", "NetworkInterfaces_Get", 200),
        ("GET", "PublicIPAddresses_Get", 200),
        ("GET", "VirtualMachines_Get", 200),
    ]
    assert again.actions == ()
    assert (again.vm_id, again.private_ip_address, again.public_ip_address) == (
        first.vm_id,
        first.private_ip_address,
        first.public_ip_address,
    )


async def test_power_state_costs_no_extra_call(world: World, clients: AzureClients) -> None:
    spec = world.spec()
    await ensure(clients, world, spec)
    since = world.mark()
    vm = await ensure(clients, world, spec, instance_view=True)
    assert vm.power_state == "running"
    assert world.arm_requests(since).count(("GET", "VirtualMachines_Get", 200)) == 1
    assert len(world.arm_requests(since)) == 2  # the VM (with its instance view) and the NIC


async def test_extended_network_gets_a_second_nic(world: World, clients: AzureClients) -> None:
    spec = world.full_spec()
    ident = identity_for(world, spec)
    since = world.mark()
    vm = await ensure(clients, world, spec)
    assert sorted(world.writes(since)) == sorted(
        [
            ("PUT", "PublicIPAddresses_CreateOrUpdate"),
            ("PUT", "NetworkInterfaces_CreateOrUpdate"),
            ("PUT", "NetworkInterfaces_CreateOrUpdate"),
            ("PUT", "VirtualMachines_CreateOrUpdate"),
        ]
    )
    assert vm.extended_private_ip_address and vm.extended_private_ip_address != vm.private_ip_address
    sdk_vm = await clients.compute(ident.subscription_id).virtual_machines.get(
        ident.resource_group, ident.vm_name
    )
    refs = {r.id.lower(): r.properties.primary for r in sdk_vm.properties.network_profile.network_interfaces}
    assert refs == {ident.nic_id.lower(): True, ident.extended_nic_id.lower(): False}


@pytest.mark.parametrize("mode", list(CredentialMode))
async def test_every_credential_mode_reaches_arm(
    world: World, monkeypatch: pytest.MonkeyPatch, mode: CredentialMode
) -> None:
    """default (DefaultAzureCredential), workload identity and client secret, all from the environment."""
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST"):
        monkeypatch.setenv(name, world.env[name])
    if mode is CredentialMode.CLIENT_SECRET:
        monkeypatch.setenv("AZURE_CLIENT_SECRET", world.env["AZURE_CLIENT_SECRET"])
    else:  # default must then find the workload identity (the in-cluster path) by itself
        monkeypatch.delenv("AZURE_CLIENT_SECRET", raising=False)
    settings = world.settings(credential_mode=mode)
    since = world.mark()
    async with AzureClients.from_settings(settings) as clients:
        vm = await ensure(clients, world, world.spec())
    assert vm.provisioning_state == "Succeeded"
    assert ("POST", "Identity_Token", 200) in [
        (e["method"], e["operation"], e["status"]) for e in world.control.requests(since)
    ]


# ----------------------------------------------------------------------------- changes


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"azure": {"vmSize": "Standard_D4as_v5"}}, lambda vm: vm.vm_size == "Standard_D4as_v5"),
        ({"hotpatch": {"rebootSetting": "Never"}}, lambda vm: vm.patch.reboot_setting == "Never"),
        ({"hotpatch": {"rebootSetting": "Always"}}, lambda vm: vm.patch.reboot_setting == "Always"),
    ],
    ids=["vmSize", "rebootSetting-Never", "rebootSetting-Always"],
)
async def test_an_owned_field_change_is_exactly_one_patch(
    world: World, clients: AzureClients, change: dict[str, Any], check: Any
) -> None:
    spec = world.spec(azure={"publicIP": True})
    await ensure(clients, world, spec)
    since = world.mark()

    changed = world.spec(**{**change, "azure": {"publicIP": True, **change.get("azure", {})}})
    vm = await ensure(clients, world, changed)

    assert world.writes(since) == [("PATCH", "VirtualMachines_Update")]
    assert check(vm)
    assert len(vm.actions) == 1 and vm.actions[0].startswith("updated virtualMachines/")
    since = world.mark()
    await ensure(clients, world, changed)
    assert world.writes(since) == [], "once applied, the change must not be sent again"


async def test_tag_change_is_one_write_per_resource(world: World, clients: AzureClients) -> None:
    spec = world.spec(azure={"publicIP": True})
    await ensure(clients, world, spec)
    since = world.mark()

    retagged = world.spec(azure={"publicIP": True, "tags": {"costCenter": "43", "env": "prod"}})
    vm = await ensure(clients, world, retagged)

    # The VM gets exactly one PATCH; its NIC and public IP carry the same tags (one PUT each).
    assert sorted(world.writes(since)) == [
        ("PATCH", "VirtualMachines_Update"),
        ("PUT", "NetworkInterfaces_CreateOrUpdate"),
        ("PUT", "PublicIPAddresses_CreateOrUpdate"),
    ]
    assert vm.tags["costCenter"] == "43" and vm.tags["env"] == "prod"
    assert vm.tags[specs.OWNER_TAG] == OWNER.ref
    since = world.mark()
    await ensure(clients, world, retagged)
    assert world.writes(since) == []


async def test_public_ip_can_be_added_and_removed(world: World, clients: AzureClients) -> None:
    spec = world.spec()
    ident = identity_for(world, spec)
    plain = await ensure(clients, world, spec)
    assert plain.public_ip_address is None

    since = world.mark()
    with_pip = await ensure(clients, world, world.spec(azure={"publicIP": True}))
    assert world.writes(since) == [
        ("PUT", "PublicIPAddresses_CreateOrUpdate"),
        ("PUT", "NetworkInterfaces_CreateOrUpdate"),
    ]
    assert with_pip.public_ip_address and with_pip.private_ip_address == plain.private_ip_address

    since = world.mark()
    without = await ensure(clients, world, spec)
    assert world.writes(since) == [
        ("PUT", "NetworkInterfaces_CreateOrUpdate"),
        ("DELETE", "PublicIPAddresses_Delete"),
    ]
    assert without.public_ip_address is None and without.private_ip_address == plain.private_ip_address
    with pytest.raises(ResourceNotFoundError):
        await clients.network(ident.subscription_id).public_ip_addresses.get(
            ident.resource_group, ident.public_ip_name
        )
    since = world.mark()
    await ensure(clients, world, spec)
    assert world.writes(since) == []


async def test_patch_settings_changed_behind_our_back_are_restored(
    world: World, clients: AzureClients
) -> None:
    spec = world.spec()
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    world.control.set_patch_settings(ident.resource_group, ident.vm_name, {"patchMode": "AutomaticByOS"})
    since = world.mark()
    vm = await ensure(clients, world, spec)
    assert world.writes(since) == [("PATCH", "VirtualMachines_Update")]
    assert (vm.patch.patch_mode, vm.patch.enable_hotpatching) == ("AutomaticByPlatform", True)


async def test_image_drift_is_reported_not_fixed(world: World, clients: AzureClients) -> None:
    spec = world.spec()
    await ensure(clients, world, spec)
    other = dataclasses.replace(resolve(spec.capabilities), sku="2022-datacenter-azure-edition-core")
    since = world.mark()
    vm = await ensure(clients, world, spec, image=other)
    assert world.writes(since) == []
    assert len(vm.drift) == 1 and "cannot change its image in place" in vm.drift[0]


# ----------------------------------------------------------------------------- throttling and transient failures


async def test_throttling_retry_after_is_honoured(world: World, clients: AzureClients) -> None:
    world.control.inject_fault(
        method="GET", path_regex="/virtualMachines/", status=429, headers={"Retry-After": "2"}, times=1
    )
    since = world.mark()
    started = time.monotonic()
    vm = await ensure(clients, world, world.spec())
    elapsed = time.monotonic() - started
    assert vm.provisioning_state == "Succeeded"
    assert elapsed >= 2.0
    vm_gets = [s for m, op, s in world.arm_requests(since) if op == "VirtualMachines_Get"]
    assert vm_gets[:2] == [429, 404]


async def test_long_throttling_is_handed_back_to_kopf(world: World, clients: AzureClients) -> None:
    world.control.inject_fault(
        method="GET", path_regex="/virtualMachines/", status=429, headers={"Retry-After": "120"}, times=None
    )
    since = world.mark()
    started = time.monotonic()
    with pytest.raises(AzureRetryableError) as caught:
        await ensure(clients, world, world.spec())
    assert time.monotonic() - started < 5.0, "a long Retry-After must not be slept in-process"
    error = caught.value
    assert (error.code, error.status, error.retry_after, error.reason) == (
        "TooManyRequests",
        429,
        120.0,
        vocab.THROTTLED,
    )
    assert world.arm_requests(since) == [("GET", "VirtualMachines_Get", 429)]


async def test_simulated_arm_throttle_is_paced(world: World, clients: AzureClients) -> None:
    # The simulator's own token bucket (not an injected fault): two reads, then one a second. The client
    # paces on x-ms-ratelimit-remaining-subscription-reads (azure/pacing.py) instead of spending the
    # bucket on 429s: only a read sent before it had heard the remaining count can be refused (and is
    # retried: the injected-429 tests above show that path).
    world.control.configure_throttling(subscriptionReads={"capacity": 2, "refillPerMinute": 60})
    since = world.mark()
    vm = await ensure(clients, world, world.spec())
    assert vm.provisioning_state == "Succeeded"
    reads = [s for m, _, s in world.arm_requests(since) if m == "GET"]
    assert len(reads) > 2, "the bucket must have been the limit"
    assert reads.count(429) <= 1, reads


async def test_server_errors_are_retried(world: World, clients: AzureClients) -> None:
    world.control.inject_fault(method="PUT", path_regex="/virtualMachines/", status=500, times=2)
    since = world.mark()
    vm = await ensure(clients, world, world.spec())
    assert vm.provisioning_state == "Succeeded"
    puts = [s for m, op, s in world.arm_requests(since) if op == "VirtualMachines_CreateOrUpdate"]
    assert puts == [500, 500, 201]
    assert len(world.control.vms()) == 1


async def test_persistent_server_errors_become_retryable(world: World, clients: AzureClients) -> None:
    world.control.inject_fault(method="GET", path_regex="/virtualMachines/", status=503, times=None)
    since = world.mark()
    with pytest.raises(AzureRetryableError) as caught:
        await ensure(clients, world, world.spec())
    assert caught.value.code == "ServiceUnavailable"
    attempts = world.arm_requests(since)
    assert attempts == [("GET", "VirtualMachines_Get", 503)] * (1 + clients.settings.max_retries)


async def test_dropped_connection_is_retried(world: World, clients: AzureClients) -> None:
    world.control.inject_fault(method="GET", path_regex="/networkInterfaces/", drop=True, times=1)
    vm = await ensure(clients, world, world.spec())
    assert vm.provisioning_state == "Succeeded"
    assert vm.private_ip_address


async def test_failed_lro_is_mapped_and_repaired(world: World, clients: AzureClients) -> None:
    world.control.fail_operation(
        "VirtualMachines_CreateOrUpdate", code="InternalExecutionError", message="An internal error occurred."
    )
    spec = world.spec()
    with pytest.raises(AzureRetryableError) as caught:
        await ensure(clients, world, spec)
    assert caught.value.code == "InternalExecutionError"
    assert "An internal error occurred." in caught.value.message
    assert world.control.vms()[0]["provisioningState"] == "Failed"

    since = world.mark()
    vm = await ensure(clients, world, spec)
    assert vm.provisioning_state == "Succeeded"
    assert world.writes(since) == [("PUT", "VirtualMachines_CreateOrUpdate")]
    assert vm.actions == (f"updated virtualMachines/{identity_for(world, spec).vm_name}",)


async def test_failed_lro_with_unknown_code_is_permanent(world: World, clients: AzureClients) -> None:
    world.control.fail_operation(
        "VirtualMachines_CreateOrUpdate", code="OSProvisioningClientError", message="OS provisioning failed."
    )
    with pytest.raises(AzurePermanentError) as caught:
        await ensure(clients, world, world.spec())
    assert caught.value.code == "OSProvisioningClientError"
    assert "OS provisioning failed." in caught.value.message


# ----------------------------------------------------------------------------- restart in the middle of a create


async def test_create_interrupted_after_put_is_resumed_not_repeated(world: World) -> None:
    world.control.set_provisioning_seconds(3.0)
    spec = world.spec(azure={"publicIP": True})
    since = world.mark()

    first = azure_clients(world)
    task = asyncio.create_task(ensure(first, world, spec))

    for _ in range(300):
        if ("PUT", "VirtualMachines_CreateOrUpdate", 201) in await asyncio.to_thread(
            world.arm_requests, since
        ):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the VM PUT was never accepted")
    task.cancel()  # the operator process dies: its poller and clients are gone
    with pytest.raises(asyncio.CancelledError):
        await task
    await first.close()
    assert [vm["provisioningState"] for vm in world.control.vms()] == ["Creating"]

    resumed_from = world.mark()
    async with azure_clients(world) as fresh:
        vm = await ensure(fresh, world, spec)

    assert vm.provisioning_state == "Succeeded"
    assert world.writes(resumed_from) == [], (
        "the restarted operator waits for the create; it never re-sends it"
    )
    assert vm.actions == ()
    gets = [r for r in world.arm_requests(resumed_from) if r[1] == "VirtualMachines_Get"]
    assert len(gets) >= 2  # found Creating, then polled until Succeeded
    all_puts = [r for r in world.arm_requests(since) if r[:2] == ("PUT", "VirtualMachines_CreateOrUpdate")]
    assert len(all_puts) == 1
    assert len(world.control.vms()) == 1


# ----------------------------------------------------------------------------- delete


async def assert_gone(clients: AzureClients, ident: specs.VMIdentity) -> None:
    cmp, net = clients.compute(ident.subscription_id), clients.network(ident.subscription_id)
    rg = ident.resource_group
    for get in (
        cmp.virtual_machines.get(rg, ident.vm_name),
        cmp.disks.get(rg, ident.os_disk_name),
        net.network_interfaces.get(rg, ident.nic_name),
        net.network_interfaces.get(rg, ident.extended_nic_name),
        net.public_ip_addresses.get(rg, ident.public_ip_name),
    ):
        with pytest.raises(ResourceNotFoundError):
            await get


async def test_delete_leaves_nothing(world: World, clients: AzureClients) -> None:
    spec = world.full_spec()
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    since = world.mark()

    report = await delete_vm(clients, ident, DeletionPolicy.DELETE, wait=True)

    writes = world.writes(since)
    assert writes, (report, world.arm_requests(since))
    assert writes[0] == ("DELETE", "VirtualMachines_Delete"), "the VM goes first: it holds the NICs"
    assert ("DELETE", "PublicIPAddresses_Delete") in writes
    assert report.of(DeletionOutcome.DELETED)[0] == ident.vm_name
    assert report.skipped == []
    await assert_gone(clients, ident)
    assert world.control.vms() == []

    since = world.mark()
    again = await delete_vm(clients, ident, DeletionPolicy.DELETE, wait=True)
    assert world.writes(since) == [], "deleting what is gone is a no-op"
    assert {o for _, _, o, _ in again.outcomes} == {DeletionOutcome.ABSENT}


async def test_delete_of_a_vm_that_never_existed(world: World, clients: AzureClients) -> None:
    ident = identity_for(world, world.spec())
    since = world.mark()
    report = await delete_vm(clients, ident, DeletionPolicy.DELETE, wait=True)
    assert world.writes(since) == []
    assert len(report.of(DeletionOutcome.ABSENT)) == 6  # VM, disk, two NICs, public IP, NSG


async def test_orphan_keeps_everything_and_removes_our_tags(world: World, clients: AzureClients) -> None:
    spec = world.full_spec()
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    since = world.mark()

    report = await delete_vm(clients, ident, DeletionPolicy.ORPHAN, wait=True)

    assert not [w for w in world.writes(since) if w[0] == "DELETE"]
    assert report.skipped == []
    cmp, net = clients.compute(ident.subscription_id), clients.network(ident.subscription_id)
    rg = ident.resource_group
    vm = await cmp.virtual_machines.get(rg, ident.vm_name)
    resources = [
        vm,
        await net.network_interfaces.get(rg, ident.nic_name),
        await net.network_interfaces.get(rg, ident.extended_nic_name),
        await net.public_ip_addresses.get(rg, ident.public_ip_name),
    ]
    for resource in resources:
        assert resource.tags == {"costCenter": "42"}, resource.name
    assert vm.properties.provisioning_state == "Succeeded"
    await cmp.disks.get(rg, ident.os_disk_name)  # still there

    since = world.mark()
    await delete_vm(clients, ident, DeletionPolicy.ORPHAN, wait=True)
    assert world.writes(since) == []


# ----------------------------------------------------------------------------- ownership


async def test_a_vm_owned_by_another_object_is_never_touched(world: World, clients: AzureClients) -> None:
    spec = world.spec(azure={"publicIP": True})
    await ensure(clients, world, spec)
    taken = identity_for(world, spec).vm_name
    intruder = specs.Owner("branch-a", "branch-fs-02", "22222222-2222-4222-8222-222222222222")
    since = world.mark()

    with pytest.raises(AzurePermanentError) as caught:  # another object naming the first one's VM
        await ensure(clients, world, world.spec(azure={"vmName": taken, "adopt": True}), owner=intruder)
    assert (caught.value.code, caught.value.reason) == ("OwnershipConflict", vocab.OWNERSHIP_CONFLICT)
    assert "AzureEditionVM branch-a/branch-fs-01 on cluster 'default'" in caught.value.message

    report = await delete_vm(clients, identity_for(world, world.spec(azure={"vmName": taken}), intruder),
                             DeletionPolicy.DELETE, wait=True)  # fmt: skip
    assert world.writes(since) == []
    assert taken in report.skipped
    assert len(world.control.vms()) == 1


async def test_the_same_manifest_on_a_rebuilt_cluster_takes_its_vm_with_reads_only(
    world: World, clients: AzureClients
) -> None:
    """A cluster rebuilt from Git: the same namespace/name and cluster id, a new uid, no operator state
    (the sealed annotation and the vmId memory were the old object's). The VM is found as its own:
    GETs only, no PUT of the VM, no OwnershipConflict, the same vmId."""
    spec = world.full_spec()
    first = await ensure(clients, world, spec)
    rebuilt = dataclasses.replace(OWNER, uid="33333333-3333-4333-8333-333333333333")
    since = world.mark()

    again = await ensure(clients, world, spec, owner=rebuilt, state=OperationState())

    assert world.writes(since) == []
    assert {m for m, _, _ in world.arm_requests(since)} == {"GET"}
    assert again.vm_id == first.vm_id and again.actions == ()
    assert again.extended_private_ip_address == first.extended_private_ip_address


async def test_another_clusters_object_of_the_same_name_is_refused_naming_that_cluster(
    world: World, clients: AzureClients
) -> None:
    spec = world.spec()
    await ensure(clients, world, spec)
    west = dataclasses.replace(OWNER, cluster="west")
    since = world.mark()

    with pytest.raises(AzurePermanentError) as caught:
        await ensure(clients, world, spec, owner=west, state=OperationState())

    assert caught.value.reason == vocab.OWNERSHIP_CONFLICT
    assert "AzureEditionVM branch-a/branch-fs-01 on cluster 'default'" in caught.value.message
    assert "runs as cluster 'west'" in caught.value.message
    assert world.writes(since) == []


async def test_an_earlier_versions_uid_tags_are_recognised_and_retagged_once(
    world: World, clients: AzureClients
) -> None:
    """Resources tagged by uid (no cluster tag) are this object's by namespace/name: each is re-tagged
    once (cluster tag added, uid tag dropped), in the VM's case in the same PATCH as a resize."""
    spec = world.spec(azure={"publicIP": True})
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    legacy = {specs.OWNER_UID_TAG: "the-uid-of-an-earlier-object", specs.OWNER_TAG: OWNER.ref,
              specs.MANAGED_BY_TAG: specs.MANAGED_BY_VALUE, "costCenter": "42"}  # fmt: skip
    cmp, net = clients.compute(ident.subscription_id), clients.network(ident.subscription_id)
    rg = ident.resource_group
    await (await cmp.virtual_machines.begin_update(rg, ident.vm_name, compute_models.VirtualMachineUpdate(tags=legacy))).result()  # fmt: skip
    for ops, name in (
        (net.network_interfaces, ident.nic_name),
        (net.public_ip_addresses, ident.public_ip_name),
    ):
        tagged = specs.with_tags(await ops.get(rg, name), legacy)
        await (await ops.begin_create_or_update(rg, name, tagged)).result()
    since = world.mark()

    bigger = world.spec(azure={"publicIP": True, "vmSize": "Standard_D4as_v5"})
    vm = await ensure(clients, world, bigger, state=OperationState())

    assert sorted(world.writes(since)) == [
        ("PATCH", "VirtualMachines_Update"),  # the resize and the new tags in one write
        ("PUT", "NetworkInterfaces_CreateOrUpdate"),
        ("PUT", "PublicIPAddresses_CreateOrUpdate"),
    ]
    assert vm.vm_size == "Standard_D4as_v5"
    for tags in (vm.tags, (await net.network_interfaces.get(rg, ident.nic_name)).tags,
                 (await net.public_ip_addresses.get(rg, ident.public_ip_name)).tags):  # fmt: skip
        assert tags == specs.desired_tags(spec, OWNER)
    since = world.mark()
    await ensure(clients, world, bigger)
    assert world.writes(since) == [], "re-tagged once"


async def test_delete_never_removes_a_disk_without_our_owner_tag(world: World, clients: AzureClients) -> None:
    """A disk named like our OS disk but without our owner tag is left alone (and reported): here the VM
    was switched to keep its disk (deleteOption Detach) and deleted outside; the disk is untagged."""
    spec = world.spec()
    ident = identity_for(world, spec)
    await ensure(clients, world, spec)
    cmp = clients.compute(ident.subscription_id)
    rg = ident.resource_group
    keep_disk = compute_models.VirtualMachineUpdate(
        storage_profile=compute_models.StorageProfile(os_disk=compute_models.OSDisk(
            create_option="FromImage", delete_option="Detach")))  # fmt: skip
    await (await cmp.virtual_machines.begin_update(rg, ident.vm_name, keep_disk)).result()
    world.control.out_of_band("delete", rg, ident.vm_name)
    stray = await cmp.disks.get(rg, ident.os_disk_name)
    assert not (stray.tags or {}) and not stray.managed_by
    since = world.mark()

    report = await delete_vm(clients, ident, DeletionPolicy.DELETE, wait=True)

    assert ("DELETE", "Disks_Delete") not in world.writes(since)
    assert ident.os_disk_name in report.skipped
    await cmp.disks.get(rg, ident.os_disk_name)  # still there


async def test_an_orphaned_vm_is_not_adopted_silently(world: World, clients: AzureClients) -> None:
    spec = world.spec()
    await ensure(clients, world, spec)
    await delete_vm(clients, identity_for(world, spec), DeletionPolicy.ORPHAN, wait=True)
    since = world.mark()
    with pytest.raises(AzurePermanentError) as caught:
        await ensure(clients, world, spec)
    assert "set spec.azure.adopt: true" in caught.value.message
    assert world.writes(since) == []

    adopted = world.spec(azure={"adopt": True})  # said explicitly: the orphan and its NIC are taken back
    vm = await ensure(clients, world, adopted)
    assert sorted(world.writes(since)) == [
        ("PATCH", "VirtualMachines_Update"),
        ("PUT", "NetworkInterfaces_CreateOrUpdate"),
    ]
    assert vm.tags == specs.desired_tags(adopted, OWNER)
    since = world.mark()
    await ensure(clients, world, spec)  # ours again, adopt or not
    assert world.writes(since) == []


# ----------------------------------------------------------------------------- Azure's validation rules


async def test_hotpatch_on_an_image_without_hotpatch_is_refused(world: World, clients: AzureClients) -> None:
    spec = world.spec()
    no_hotpatch = dataclasses.replace(resolve(spec.capabilities), sku="2022-datacenter-azure-edition")
    with pytest.raises(AzurePermanentError) as caught:
        await ensure(clients, world, spec, image=no_hotpatch)
    assert caught.value.code == "InvalidParameter"
    assert "2022-datacenter-azure-edition" in caught.value.message
    assert world.control.vms() == []


async def test_unknown_image_is_refused(world: World, clients: AzureClients) -> None:
    spec = world.spec(capabilities=[])
    image = ImageReference(
        sku="2019-datacenter-azure-edition",
        version="latest",
        windows_server_version=resolve([]).windows_server_version,
        experience=resolve([]).experience,
        reason="test",
    )
    with pytest.raises(AzurePermanentError) as caught:
        await ensure(clients, world, spec, image=image)
    assert caught.value.code == "PlatformImageNotFound"
    assert "spec.image" in caught.value.message


async def test_unknown_subnet_is_retried_with_its_code(world: World, clients: AzureClients) -> None:
    """Under GitOps the subnet may be applied a moment later: transient, shown with Azure's code."""
    missing = world.env["ARMSIM_SUBNET_ID"].rsplit("/", 1)[0] + "/does-not-exist"
    spec = world.spec(azure={"subnetId": missing})
    with pytest.raises(AzureRetryableError) as caught:
        await ensure(clients, world, spec)
    assert caught.value.code == caught.value.reason == "InvalidResourceReference"
    assert "spec.azure.subnetId" in caught.value.message and "does-not-exist" in caught.value.message


async def test_unknown_resource_group_is_retried_with_its_code(world: World, clients: AzureClients) -> None:
    spec = world.spec(azure={"resourceGroup": "rg-nowhere"})
    since = world.mark()
    with pytest.raises(AzureRetryableError) as caught:
        await ensure(clients, world, spec)
    assert caught.value.code == caught.value.reason == "ResourceGroupNotFound"
    assert world.writes(since) == []


def _bypass_true(vm: Any) -> None:
    vm.properties.os_profile.windows_configuration.patch_settings.automatic_by_platform_settings.bypass_platform_safety_checks_on_user_schedule = True


def _hotpatch_without_platform_mode(vm: Any) -> None:
    settings = vm.properties.os_profile.windows_configuration.patch_settings
    settings.patch_mode = "AutomaticByOS"
    settings.assessment_mode = "ImageDefault"
    settings.automatic_by_platform_settings = None


@pytest.mark.parametrize(
    ("override", "target"),
    [
        (_bypass_true, "bypassPlatformSafetyChecksOnUserSchedule"),
        (_hotpatch_without_platform_mode, "patchMode"),
    ],
    ids=["bypass-platform-safety-checks", "enableHotpatching-without-AutomaticByPlatform"],
)
async def test_invalid_patch_settings_are_refused(
    world: World, clients: AzureClients, override: Any, target: str
) -> None:
    spec = world.spec()
    ident = identity_for(world, spec)
    body = specs.vm_parameters(ident, spec, resolve(spec.capabilities), LOGIN)
    override(body)
    vms = clients.compute(ident.subscription_id).virtual_machines
    with pytest.raises(HttpResponseError) as raw:
        await vms.begin_create_or_update(ident.resource_group, ident.vm_name, body)
    error = from_exception(raw.value)
    assert isinstance(error, AzurePermanentError)
    assert error.code == "InvalidParameter" and error.status == 400
    assert raw.value.error is not None and raw.value.error.target == target
    assert error.azure_message in error.message


# ----------------------------------------------------------------------------- the async driver against ARM


async def test_non_blocking_create_records_and_resumes_from_the_state_alone(world: World) -> None:
    """A slow create: each pass returns at once; a new process resumes from the serialised state only."""
    from azure_edition_operator.azure.driver import InProgress, OperationState

    world.control.set_provisioning_seconds(3.0)
    spec = world.spec()
    ident = identity_for(world, spec)
    image = resolve(spec.capabilities)
    state = OperationState()
    since = world.mark()
    async with azure_clients(world) as first:
        for _ in range(20):  # public IP? no; NIC, then VM: each started and handed back
            try:
                await ensure_vm(first, ident, spec, image, LOGIN, state=state)
            except InProgress as progress:
                if progress.record.kind == "virtualMachines":
                    break
        else:
            pytest.fail("the VM create was never handed back in progress")
    saved = state.dumps()
    assert "virtualMachines" in saved and LOGIN.password not in saved
    async with azure_clients(world) as second:  # a restarted operator: only the annotation survives
        restored = OperationState.loads(saved)
        for _ in range(100):
            try:
                vm = await ensure_vm(second, ident, spec, image, LOGIN, state=restored)
                break
            except InProgress as progress:
                assert progress.record.kind == "virtualMachines"
                await asyncio.sleep(0.2)
        else:
            pytest.fail("never finished")
    assert vm.provisioning_state == "Succeeded"
    assert restored.operation is None and restored.vm_id == vm.vm_id
    puts = [r for r in world.arm_requests(since) if r[:2] == ("PUT", "VirtualMachines_CreateOrUpdate")]
    assert len(puts) == 1


async def test_a_token_the_sdk_made_passes_the_check_and_another_resource_does_not(world: World) -> None:
    """azure/tokens.py against the real thing: the continuation token azure-core made for a VM create on
    the simulator may be resumed for that VM, and for nothing else (another resource, another endpoint)."""
    from azure_edition_operator.azure import tokens
    from azure_edition_operator.azure.driver import InProgress, OperationState

    world.control.set_provisioning_seconds(3.0)
    spec = world.spec()
    ident = identity_for(world, spec)
    state = OperationState()
    async with azure_clients(world) as clients:
        endpoint = clients.settings.base_url
        for _ in range(20):
            try:
                await ensure_vm(clients, ident, spec, resolve(spec.capabilities), LOGIN, state=state)
            except InProgress as progress:
                if progress.record.kind == "virtualMachines":
                    break
        else:
            pytest.fail("the VM create was never handed back in progress")
    assert state.operation is not None
    token, sub = state.operation.token, ident.subscription_id
    assert tokens.problem(token, endpoint=endpoint, resource_id=ident.vm_id, subscription_id=sub) is None
    assert tokens.decode(token)["response"]["headers"], "the SDK's token names its polling URLs"
    assert tokens.problem(token, endpoint=endpoint, resource_id=ident.nic_id, subscription_id=sub) is not None
    elsewhere = "https://management.azure.com"
    assert tokens.problem(token, endpoint=elsewhere, resource_id=ident.vm_id, subscription_id=sub) is not None


async def test_a_garbage_operation_record_is_dropped_and_the_resource_read(
    world: World, clients: AzureClients
) -> None:
    from azure_edition_operator.azure.driver import OperationRecord, OperationState

    spec = world.spec()
    await ensure(clients, world, spec)
    ident = identity_for(world, spec)
    state = OperationState(OperationRecord("virtualMachines", ident.vm_name, "put", "not-a-token", "garbage"))
    since = world.mark()
    vm = await ensure(clients, world, spec, state=state)
    assert vm.provisioning_state == "Succeeded" and state.operation is None
    assert world.writes(since) == []


async def test_vm_deleted_outside_is_recreated_or_reported(world: World, clients: AzureClients) -> None:
    from azure_edition_operator.azure.driver import OperationState

    spec = world.spec()
    ident = identity_for(world, spec)
    state = OperationState()
    first = await ensure(clients, world, spec, state=state)
    assert state.vm_id == first.vm_id
    cmp = clients.compute(ident.subscription_id)
    await (await cmp.virtual_machines.begin_delete(ident.resource_group, ident.vm_name)).result()

    report = spec.model_copy(update={"azure": spec.azure.model_copy(update={"on_missing": "Report"})})
    with pytest.raises(AzurePermanentError) as caught:
        await ensure(clients, world, report, state=state)
    assert caught.value.reason == "VMNotFound"

    again = await ensure(clients, world, spec, state=state)
    assert again.vm_id != first.vm_id and state.vm_id == again.vm_id
    assert [e[1] for e in again.events] == ["VMRecreated"]


async def test_a_vm_deleted_outside_is_recreated_from_the_image_it_ran(
    world: World, clients: AzureClients
) -> None:
    """The catalog would now choose another image (here: a pin changed); the recreated VM runs the old one."""
    from azure_edition_operator.azure.driver import OperationState
    from azure_edition_operator.images import ImagePins, WindowsServerVersion

    spec = world.spec()
    ident = identity_for(world, spec)
    state = OperationState()
    first = await ensure(clients, world, spec, state=state)
    ran = first.image["sku"]
    assert state.image is not None and state.image["sku"] == ran
    cmp = clients.compute(ident.subscription_id)
    await (await cmp.virtual_machines.begin_delete(ident.resource_group, ident.vm_name)).result()

    other = resolve(spec.capabilities, ImagePins(windows_server_version=WindowsServerVersion("2022")))
    assert other.sku != ran, "the catalog must choose differently for this test to mean anything"
    since = world.mark()
    again = await ensure(clients, world, spec, state=OperationState.loads(state.dumps()), image=other)
    assert again.vm_id != first.vm_id
    assert again.image["sku"] == ran and again.image_ref is not None and again.image_ref.sku == ran
    assert ran in again.events[0][2]
    puts = [r for r in world.arm_requests(since) if r[:2] == ("PUT", "VirtualMachines_CreateOrUpdate")]
    assert len(puts) == 1
