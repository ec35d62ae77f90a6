"""The simulated Azure world: subscriptions, resource groups, subnets, resources, operations and guests.

State is plain JSON-able dicts (ARM documents as Azure returns them, plus a few internal maps), so it
persists to ``<state-dir>/world.json`` with no translation. Lookups are case-insensitive on resource
ids, as in ARM. Nothing here speaks HTTP; :mod:`compute` and :mod:`network` implement the operations
and :mod:`server` maps requests onto them.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import random
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import errors, loopback
from .timing import Timing

DEFAULT_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_TENANT_ID = "10000000-0000-4000-8000-000000000001"
DEFAULT_CLIENT_ID = "20000000-0000-4000-8000-000000000002"
DEFAULT_LOCATION = "westeurope"
DEFAULT_RESOURCE_GROUP = "rg-branch-a"
DEFAULT_VNET = "vnet-branch-a"
DEFAULT_GATEWAY = "vgw-branch-a"  # a VPN gateway in DEFAULT_VNET's GatewaySubnet
DEFAULT_CONNECTION = "cn-branch-a-onprem"  # its site-to-site connection, Connected
GATEWAY_SUBNET_INDEX = 3  # the GatewaySubnet's /24 of the loopback block
DEFAULT_SUBNETS = {"servers": 1, "extended": 2}  # name → the /24 of the simulator's loopback block
LEGACY_BLOCK = "127.0.0.0/16"  # worlds persisted before each simulator had a block of its own

REGIONS = (
    "eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "northcentralus", "southcentralus",
    "westcentralus", "canadacentral", "canadaeast", "brazilsouth", "mexicocentral", "northeurope",
    "westeurope", "uksouth", "ukwest", "francecentral", "germanywestcentral", "norwayeast", "swedencentral",
    "switzerlandnorth", "polandcentral", "italynorth", "spaincentral", "eastasia", "southeastasia",
    "japaneast", "japanwest", "koreacentral", "australiaeast", "australiasoutheast", "centralindia",
    "southindia", "uaenorth", "southafricanorth", "qatarcentral", "israelcentral", "newzealandnorth",
)  # fmt: skip

TERMINAL_STATES = ("Succeeded", "Failed", "Canceled")


def normalize_location(location: str) -> str:
    """ARM stores locations lower-case without spaces ("West US" → "westus")."""
    return location.replace(" ", "").lower()


def check_location(location: str | None, resource_type: str) -> str:
    """A valid region, normalized, or ARM's location errors."""
    if not location:
        raise errors.location_required()
    normalized = normalize_location(location)
    if normalized not in REGIONS:
        raise errors.location_not_available(location, resource_type, list(REGIONS))
    return normalized


def check_location_unchanged(existing: dict[str, Any] | None, location: str, rg: str) -> None:
    """A tracked resource cannot move; ARM's InvalidResourceLocation."""
    if existing is not None and existing["location"] != location:
        raise errors.ArmError(
            409,
            "InvalidResourceLocation",
            f"The resource '{existing['name']}' already exists in location '{existing['location']}' in resource "
            f"group '{rg}'. A resource with the same name cannot be created in location '{location}'. Please "
            "select a new resource name.",
        )


def utc_now_iso(epoch: float | None = None) -> str:
    """ARM's timestamp style: ISO 8601 with an explicit +00:00 offset."""
    import datetime as dt

    moment = dt.datetime.fromtimestamp(time.time() if epoch is None else epoch, dt.UTC)
    return moment.isoformat()


def utc_now_z(epoch: float | None = None) -> str:
    """The ``...Z`` style the patch APIs use."""
    return utc_now_iso(epoch).replace("+00:00", "Z")


def key(resource_id: str) -> str:
    """Case-insensitive key of a resource id."""
    return resource_id.rstrip("/").lower()


_ID_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/(?P<ns>[^/]+)/(?P<rest>.+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedId:
    """The parts of an ARM resource id."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[-1]


def parse_id(resource_id: str) -> ParsedId | None:
    """Parse ``/subscriptions/../resourceGroups/../providers/NS/type/name[/type/name...]``."""
    match = _ID_RE.match(resource_id.rstrip("/"))
    if not match:
        return None
    parts = match.group("rest").split("/")
    if len(parts) % 2:
        return None
    return ParsedId(
        subscription=match.group("sub"),
        resource_group=match.group("rg"),
        namespace=match.group("ns"),
        types=tuple(parts[0::2]),
        names=tuple(parts[1::2]),
    )


def resource_id(sub: str, rg: str, namespace: str, rtype: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{rtype}/{name}"


def crp_reference(resource_id_: str) -> str:
    """Compute writes the resource group upper-case in ids it generates (disks, NIC→VM back-references).

    Real CRP does this; clients must compare ids case-insensitively, and the simulator keeps them honest.
    """
    parsed = parse_id(resource_id_)
    if parsed is None:
        return resource_id_
    return resource_id_.replace(
        f"/resourceGroups/{parsed.resource_group}/", f"/resourceGroups/{parsed.resource_group.upper()}/", 1
    )


@dataclass
class Settings:
    """Knobs that tests turn."""

    provisioning_seconds: float = 0.5
    retry_after_seconds: int = 1
    timing: Timing = field(default_factory=Timing)
    # Eventual consistency (others.py): probability of a transient "not provisioned yet" answer.
    consistency_rate: float = 0.0
    consistency_rng: random.Random = field(default_factory=random.Random)
    # Also answer a VM PUT whose (just created) NIC Compute cannot see yet with Network's 404 NotFound.
    consistency_not_found: bool = False
    operation_expiry_seconds: float | None = None  # operation URLs 404 once older than this
    # (client id, lower-case scope prefix, until epoch): 403 AuthorizationFailed until then
    authorization_delays: list[tuple[str, str, float]] = field(default_factory=list)
    policy_enabled: bool = True  # --no-policy: no Azure Policy model at all
    policy_tags: dict[str, str] = field(default_factory=dict)
    policy_identity: bool = False
    meters: dict[str, list[float]] = field(default_factory=dict)  # others.meter: call times per policy

    def duration(self, kind: str) -> float:
        """Seconds an operation of ``kind`` takes under the active timing profile."""
        return self.timing.duration(kind, self.provisioning_seconds)

    def retry_after(self, kind: str) -> dict[str, str]:
        """The Retry-After header (or none) for a response about an operation of ``kind``."""
        value = self.timing.retry_after(kind, self.retry_after_seconds)
        return {} if value is None else {"Retry-After": value}

    def to_dict(self) -> dict[str, Any]:
        return {
            "provisioningSeconds": self.provisioning_seconds,
            "retryAfterSeconds": self.retry_after_seconds,
            **self.timing.to_dict(),
            "consistencyRate": self.consistency_rate,
            "consistencyNotFound": self.consistency_not_found,
            "operationExpirySeconds": self.operation_expiry_seconds,
            "policy": {
                "enabled": self.policy_enabled,
                "tags": self.policy_tags,
                "systemAssignedIdentity": self.policy_identity,
            },
        }


@dataclass
class World:
    """All simulated state. Methods here are bookkeeping; behaviour lives in compute/network."""

    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    vms: dict[str, dict[str, Any]] = field(default_factory=dict)
    disks: dict[str, dict[str, Any]] = field(default_factory=dict)
    nics: dict[str, dict[str, Any]] = field(default_factory=dict)
    public_ips: dict[str, dict[str, Any]] = field(default_factory=dict)
    nsgs: dict[str, dict[str, Any]] = field(default_factory=dict)  # networkSecurityGroups: nsg.py
    gateways: dict[str, dict[str, Any]] = field(default_factory=dict)  # virtualNetworkGateways: gateways.py
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)  # connections: gateways.py
    run_commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A managed Run Command's protectedParameters until it runs: in memory only (never persisted, never
    # rendered), as ARM never returns them.
    protected_parameters: dict[str, dict[str, str]] = field(default_factory=dict)
    guests: dict[str, dict[str, Any]] = field(default_factory=dict)
    key_vaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # data plane: keyvault.py
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)  # VM extensions: vmextensions.py
    vm_internal: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    operation_failures: list[dict[str, Any]] = field(default_factory=list)
    guest_defaults: dict[str, Any] = field(default_factory=lambda: {"enableSmbQuic": True})
    sku_restrictions: list[str] = field(default_factory=list)
    rg_ready_at: dict[str, float] = field(
        default_factory=dict
    )  # resource groups still being created  # "location/size", lower case
    loopback_block: str = LEGACY_BLOCK  # guests' addresses (subnets, public IPs) live here: loopback.py
    revision: int = 0

    # --- seeding ----------------------------------------------------------------------------------------

    @classmethod
    def seeded(
        cls,
        subscription_id: str = DEFAULT_SUBSCRIPTION_ID,
        tenant_id: str = DEFAULT_TENANT_ID,
        location: str = DEFAULT_LOCATION,
        loopback_block: str = LEGACY_BLOCK,
    ) -> World:
        """A world with one subscription, one resource group and a VNet with two loopback subnets."""
        world = cls(loopback_block=loopback_block)
        world.add_subscription(subscription_id, tenant_id)
        world.add_resource_group(subscription_id, DEFAULT_RESOURCE_GROUP, location)
        for name, index in DEFAULT_SUBNETS.items():
            prefix = world.block.subnet(index)
            world.add_subnet(subscription_id, DEFAULT_RESOURCE_GROUP, DEFAULT_VNET, name, prefix, location)
        # Extended Network's prerequisites (Microsoft's guide): a GatewaySubnet, a VPN gateway in it and a
        # connection to on-premises that is up. Tests take them away through the control API.
        from . import gateways  # gateways imports this module: imported here, not at the top

        world.add_subnet(subscription_id, DEFAULT_RESOURCE_GROUP, DEFAULT_VNET, gateways.GATEWAY_SUBNET,
                         world.block.subnet(GATEWAY_SUBNET_INDEX), location)  # fmt: skip
        gateways.add_gateway(
            world, subscription_id, DEFAULT_RESOURCE_GROUP, DEFAULT_VNET, DEFAULT_GATEWAY, location
        )
        gateways.add_connection(
            world, subscription_id, DEFAULT_RESOURCE_GROUP, DEFAULT_CONNECTION, DEFAULT_GATEWAY
        )
        return world

    @property
    def block(self) -> loopback.Block:
        return loopback.Block.parse(self.loopback_block)

    def next_free_subnet_prefix(self) -> str:
        """A /24 of this world's block that no subnet uses yet (for subnets added without a prefix)."""
        used = {s["properties"]["addressPrefix"] for s in self.subnets.values()}
        for index in range(10, 100):
            if self.block.subnet(index) not in used:
                return self.block.subnet(index)
        raise ValueError(f"no free /24 left in {self.loopback_block}")

    def moved_to(self, block: str) -> World:
        """This world with every address of its block renumbered into ``block`` (its own was taken)."""
        old, new = self.block, loopback.Block.parse(block)
        text = json.dumps(self.to_dict()).replace(f'"127.{old.octet}.', f'"127.{new.octet}.')
        world = World.from_dict(json.loads(text))
        world.loopback_block = block
        return world

    def add_subscription(self, subscription_id: str, tenant_id: str) -> dict[str, Any]:
        record = {"subscriptionId": subscription_id, "tenantId": tenant_id}
        self.subscriptions[subscription_id.lower()] = record
        self.touch()
        return record

    def add_resource_group(self, subscription_id: str, name: str, location: str) -> dict[str, Any]:
        record = {
            "id": f"/subscriptions/{subscription_id}/resourceGroups/{name}",
            "name": name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": normalize_location(location),
            "properties": {"provisioningState": "Succeeded"},
        }
        self.resource_groups[f"{subscription_id}/{name}".lower()] = record
        self.touch()
        return record

    def add_subnet(
        self, subscription_id: str, resource_group: str, vnet: str, name: str, prefix: str, location: str,
        delegations: list[str] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        ipaddress.ip_network(prefix)  # validates
        subnet_id = (
            f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.Network/"
            f"virtualNetworks/{vnet}/subnets/{name}"
        )
        record = {
            "name": name,
            "id": subnet_id,
            "etag": f'W/"{uuid.uuid4()}"',
            "properties": {
                "provisioningState": "Succeeded",
                "addressPrefix": prefix,
                "privateEndpointNetworkPolicies": "Disabled",
                "privateLinkServiceNetworkPolicies": "Enabled",
            },
            "type": "Microsoft.Network/virtualNetworks/subnets",
            "location": normalize_location(location),
        }
        if delegations:  # Subnets_Get's shape: one entry per service the subnet is delegated to
            record["properties"]["delegations"] = [
                {
                    "name": f"delegation{index}",
                    "id": f"{subnet_id}/delegations/delegation{index}",
                    "etag": record["etag"],
                    "type": "Microsoft.Network/virtualNetworks/subnets/delegations",
                    "properties": {"serviceName": service, "provisioningState": "Succeeded", "actions": []},
                }
                for index, service in enumerate(delegations)
            ]
        self.subnets[key(subnet_id)] = record
        self.touch()
        return record

    # --- lookups ----------------------------------------------------------------------------------------

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        record = self.subscriptions.get(subscription_id.lower())
        if record is None:
            raise errors.subscription_not_found(subscription_id)
        return record

    def resource_group(self, subscription_id: str, name: str) -> dict[str, Any]:
        record = self.resource_groups.get(f"{subscription_id}/{name}".lower())
        if record is None or self.rg_ready_at.get(f"{subscription_id}/{name}".lower(), 0) > time.time():
            raise errors.resource_group_not_found(name)
        return record

    def sku_restricted(self, location: str, size: str) -> bool:
        """A size restricted for this subscription in ``location`` (Resource SKUs ``restrictions``)."""
        return f"{normalize_location(location)}/{size}".lower() in self.sku_restrictions

    def touch(self) -> None:
        self.revision += 1

    # --- operations -------------------------------------------------------------------------------------

    def new_operation(
        self,
        *,
        provider: str,
        subscription: str,
        location: str,
        kind: str,
        operation_name: str,
        resource_id: str,
        duration: float,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record a long-running operation that completes after ``duration`` seconds (wall clock)."""
        now = time.time()
        op = {
            "id": str(uuid.uuid4()),
            "provider": provider,
            "subscription": subscription,
            "location": location,
            "kind": kind,
            "operationName": operation_name,
            "resourceId": resource_id,
            "startEpoch": now,
            "due": now + max(0.0, duration),
            "status": "InProgress",
            "startTime": utc_now_iso(now),
            "endTime": None,
            "result": None,
            "error": None,
            "params": params or {},
            "injectedFailure": self._take_operation_failure(operation_name),
        }
        self.operations[op["id"]] = op
        self.touch()
        return op

    def _take_operation_failure(self, operation_name: str) -> dict[str, Any] | None:
        for failure in self.operation_failures:
            if failure["operation"].lower() == operation_name.lower() and failure["remaining"] != 0:
                if failure["remaining"] > 0:
                    failure["remaining"] -= 1
                error = {"code": failure["code"], "message": failure["message"]}
                if "httpStatus" in failure:
                    error["httpStatus"] = failure["httpStatus"]
                return error
        return None

    def due_operations(self, now: float) -> Iterator[dict[str, Any]]:
        for op in list(self.operations.values()):
            if op["status"] == "InProgress" and op["due"] <= now:
                yield op

    def prune_operations(self, keep: int = 1000) -> None:
        """Forget the oldest finished operations beyond ``keep`` (clients poll recent ones only)."""
        finished = [op for op in self.operations.values() if op["status"] != "InProgress"]
        for op in sorted(finished, key=lambda o: o["startEpoch"])[: max(0, len(finished) - keep)]:
            del self.operations[op["id"]]

    def finish_operation(
        self, op: dict[str, Any], status: str, *, result: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        op["status"] = status
        op["endTime"] = utc_now_iso()
        op["result"] = result
        op["error"] = error
        self.touch()

    # --- addresses --------------------------------------------------------------------------------------

    def allocate_private_ip(self, subnet_id: str) -> str:
        subnet = self.subnets[key(subnet_id)]
        network = ipaddress.ip_network(subnet["properties"]["addressPrefix"])
        used = {
            cfg["properties"].get("privateIPAddress", "").split("/")[0]
            for nic in self.nics.values()
            for cfg in nic["properties"].get("ipConfigurations", [])
            if key(cfg["properties"].get("subnet", {}).get("id", "")) == key(subnet_id)
        }
        hosts = list(network.hosts())
        # Azure reserves the first three host addresses of every subnet (x.x.x.1-3).
        for candidate in hosts[3:]:
            if str(candidate) not in used:
                return str(candidate)
        raise errors.ArmError(
            400,
            "SubnetIsFull",
            f"Subnet {subnet['name']} with address prefix {network} does not have enough capacity for 1 IP "
            "addresses.",
        )

    def allocate_public_ip(self) -> str:
        network = ipaddress.ip_network(self.block.public_ip_pool)
        used = {pip["properties"].get("ipAddress") for pip in self.public_ips.values()}
        for candidate in list(network.hosts())[3:]:
            if str(candidate) not in used:
                return str(candidate)
        raise errors.ArmError(409, "PublicIPCountLimitReached", "Cannot create more public IP addresses.")

    # --- persistence ------------------------------------------------------------------------------------

    _PERSISTED = (
        "subscriptions",
        "resource_groups",
        "subnets",
        "vms",
        "disks",
        "nics",
        "public_ips",
        "nsgs",
        "gateways",
        "connections",
        "run_commands",
        "guests",
        "key_vaults",
        "extensions",
        "vm_internal",
        "operations",
        "operation_failures",
        "guest_defaults",
        "sku_restrictions",
        "rg_ready_at",
        "loopback_block",
    )

    def to_dict(self) -> dict[str, Any]:
        return {name: copy.deepcopy(getattr(self, name)) for name in self._PERSISTED}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> World:
        world = cls()
        for name in cls._PERSISTED:
            if name in data:
                setattr(world, name, data[name])
        return world

    def save(self, path: Path) -> None:
        """Atomically write the world to ``path``."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        tmp.chmod(0o600)  # holds the guests' certificate keys
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> World:
        return cls.from_dict(json.loads(path.read_text()))
