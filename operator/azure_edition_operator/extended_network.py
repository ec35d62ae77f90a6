"""Extended Network for Azure's prerequisites, decided from what Azure and the guest report (pure).

Microsoft's guide ("Extend your on-premises subnets into Azure using extended network for Azure") asks
for a VM that can run nested virtualization (the appliance is a nested VM), attached to the primary and
the extended subnet of one virtual network; a site-to-site VPN or ExpressRoute gateway connecting that
network to on-premises; and, in the guest, the Hyper-V role and the appliance running. Each function
below takes ARM's wire shapes (``as_dict()`` of the SDK models) or the guest script's output and returns
``None`` (fine) or a ``Problem`` whose reason lives in ``reasons.EXTENDED_NETWORK``.

Nested virtualization: Azure's Resource SKUs publish no capability for it (their ``capabilities`` name
``HyperVGenerations``, ``vCPUs``, ``MaxNetworkInterfaces``, ... but nothing about nesting); Microsoft
documents it per series on the size pages. So the decision reads each SKU's ``family`` from Resource SKUs
and looks it up in ``NESTED_VIRTUALIZATION_FAMILIES`` (from those pages), and the sizes it suggests come
from the same Resource SKUs answer: offered in the region, not restricted, with a nesting family.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import reasons as vocab
from .conditions import Condition, ConditionType
from .status import condition

GATEWAY_SUBNET = "GatewaySubnet"

# Families whose Microsoft Learn size page (virtual-machines/sizes/...) says "Nested Virtualization:
# Supported". B, Av2, Dv2/DSv2 and the other families say "Not Supported" or say nothing.
NESTED_VIRTUALIZATION_FAMILIES = frozenset(f.lower() for f in (
    "standardDv3Family", "standardDSv3Family", "standardEv3Family", "standardESv3Family",
    "standardDv4Family", "standardDSv4Family", "standardDDv4Family", "standardDDSv4Family",
    "standardDAv4Family", "standardDASv4Family", "standardEv4Family", "standardESv4Family",
    "standardEDv4Family", "standardEDSv4Family", "standardEAv4Family", "standardEASv4Family",
    "standardDv5Family", "standardDSv5Family", "standardDDv5Family", "standardDDSv5Family",
    "standardDAv5Family", "standardDASv5Family", "standardDADSv5Family", "standardEv5Family",
    "standardESv5Family", "standardEDv5Family", "standardEDSv5Family", "standardEAv5Family",
    "standardEASv5Family", "standardEADSv5Family", "standardFSv2Family",
    "standardDSv6Family", "standardDASv6Family", "standardDADSv6Family", "standardDDSv6Family",
    "standardDLSv6Family", "standardESv6Family", "standardEASv6Family",
))  # fmt: skip

MAX_SUGGESTED_SIZES = 6


@dataclass(frozen=True)
class Problem:
    """One unmet prerequisite: a reason of ``reasons.EXTENDED_NETWORK`` and what to change."""

    reason: str
    message: str


# ----------------------------------------------------------------------------- VM size (Resource SKUs)


@dataclass(frozen=True)
class Size:
    """A VM size as Resource SKUs describes it in one region."""

    name: str
    family: str
    vcpus: float
    memory_gb: float
    restricted: bool

    @property
    def nested_virtualization(self) -> bool:
        return self.family.lower() in NESTED_VIRTUALIZATION_FAMILIES


def _number(caps: Mapping[str, str], name: str) -> float:
    try:
        return float(caps.get(name, "0"))
    except ValueError:
        return 0.0


def sizes_in(skus: Iterable[Mapping[str, Any]], location: str) -> dict[str, Size]:
    """The ``virtualMachines`` SKUs of Resource SKUs - List offered in ``location``, by lower-case name."""
    where = location.lower().replace(" ", "")
    out: dict[str, Size] = {}
    for sku in skus:
        locations = [str(loc).lower().replace(" ", "") for loc in sku.get("locations") or []]
        if sku.get("resourceType") != "virtualMachines" or where not in locations or not sku.get("name"):
            continue
        caps = {str(c.get("name")): str(c.get("value")) for c in sku.get("capabilities") or []}
        restricted = any(
            r.get("type") == "Location"
            and where in [str(v).lower().replace(" ", "") for v in r.get("values") or []]
            for r in sku.get("restrictions") or []
        )
        out[str(sku["name"]).lower()] = Size(
            str(sku["name"]), str(sku.get("family") or ""), _number(caps, "vCPUs"), _number(caps, "MemoryGB"),
            restricted,
        )  # fmt: skip
    return out


def suggested_sizes(sizes: Mapping[str, Size], like: Size | None) -> list[str]:
    """Sizes that would do (nesting, not restricted), the closest in vCPUs and memory first."""
    fits = [s for s in sizes.values() if s.nested_virtualization and not s.restricted]
    if like is not None:
        fits.sort(key=lambda s: (abs(s.vcpus - like.vcpus), abs(s.memory_gb - like.memory_gb), s.name))
    else:
        fits.sort(key=lambda s: (s.vcpus, s.memory_gb, s.name))
    return [s.name for s in fits[:MAX_SUGGESTED_SIZES]]


def check_size(vm_size: str, location: str, sizes: Mapping[str, Size]) -> Problem | None:
    """A size Azure offers here without nested virtualization; ``None`` also for a size Azure does not
    offer (Azure's own refusal, SkuNotAvailable or InvalidParameter, says that better)."""
    size = sizes.get(vm_size.lower())
    if size is None or size.nested_virtualization:
        return None
    would = suggested_sizes(sizes, size)
    listed = ", ".join(would) if would else "none offered to this subscription here"
    return Problem(
        vocab.NESTED_VIRTUALIZATION_UNSUPPORTED,
        f"spec.azure.vmSize {size.name} ({size.family}) has no nested virtualization, which the "
        f"extended-network appliance needs; sizes in {location} that would do: {listed}",
    )


# ----------------------------------------------------------------------------- subnets


def _parts(resource_id: str) -> list[str]:
    return [p for p in resource_id.strip("/").split("/")]


def vnet_of(subnet_id: str) -> str:
    """The virtual network's id of a subnet id (everything before ``/subnets/``), lower case."""
    head, _, _ = subnet_id.lower().partition("/subnets/")
    return head


def subnet_name(subnet_id: str) -> str:
    return _parts(subnet_id)[-1] if subnet_id else ""


def gateway_subnet_id(subnet_id: str) -> str:
    """The id the virtual network's GatewaySubnet has (same subscription, group and network)."""
    head, sep, _ = subnet_id.partition("/subnets/")
    return f"{head}{sep or '/subnets/'}{GATEWAY_SUBNET}"


def check_subnet_ids(primary_id: str, extended_id: str) -> Problem | None:
    """What the ids alone say (no Azure call)."""
    if primary_id.lower().rstrip("/") == extended_id.lower().rstrip("/"):
        return Problem(vocab.EXTENDED_SUBNET_IS_PRIMARY,
                       f"spec.extendedNetwork.extendedSubnetId is spec.azure.subnetId ({subnet_name(primary_id)}); "
                       "set it to the subnet that has the on-premises subnet's CIDR")  # fmt: skip
    if vnet_of(primary_id) != vnet_of(extended_id):
        return Problem(vocab.EXTENDED_SUBNET_IN_OTHER_NETWORK,
                       f"the extended subnet {subnet_name(extended_id)} is in virtual network "
                       f"{_parts(vnet_of(extended_id))[-1]}, the primary subnet in {_parts(vnet_of(primary_id))[-1]}; "
                       "a VM's NICs share one virtual network: use a subnet of the primary subnet's")  # fmt: skip
    if subnet_name(extended_id).lower() == GATEWAY_SUBNET.lower():
        return Problem(vocab.EXTENDED_SUBNET_IS_GATEWAY_SUBNET,
                       "the extended subnet is the virtual network's GatewaySubnet, which only the gateway may use; "
                       "choose the subnet with the on-premises CIDR")  # fmt: skip
    return None


def check_extended_subnet(subnet: Mapping[str, Any] | None) -> Problem | None:
    """What Azure's GET of the extended subnet says (``None`` when absent: the NIC's PUT reports it)."""
    if subnet is None:
        return None
    delegations = (subnet.get("properties") or {}).get("delegations") or []
    services = [str((d.get("properties") or {}).get("serviceName") or d.get("name")) for d in delegations]
    if services:
        return Problem(vocab.EXTENDED_SUBNET_DELEGATED,
                       f"the extended subnet {subnet.get('name')} is delegated to {', '.join(services)}; remove the "
                       "delegation or choose a subnet without one")  # fmt: skip
    return None


def check_before_put(
    primary_id: str, extended_id: str, vm_size: str, location: str, sizes: Mapping[str, Size],
    extended_subnet: Mapping[str, Any] | None,
) -> list[Problem]:  # fmt: skip
    """Everything that refuses a create or change before any PUT, in the order a person fixes them."""
    found = [check_size(vm_size, location, sizes), check_subnet_ids(primary_id, extended_id)]
    if found[1] is None:
        found.append(check_extended_subnet(extended_subnet))
    return [p for p in found if p is not None]


# ----------------------------------------------------------------------------- gateway and connection


def gateway_ids(gateway_subnet: Mapping[str, Any] | None) -> list[str]:
    """The gateways in a GatewaySubnet, from its ``ipConfigurations`` (Azure lists the gateway's there)."""
    configs = ((gateway_subnet or {}).get("properties") or {}).get("ipConfigurations") or []
    ids = []
    for cfg in configs:
        rid = str(cfg.get("id") or "")
        head, sep, _ = rid.partition("/ipConfigurations/")
        if (
            sep
            and "/virtualnetworkgateways/" in head.lower()
            and head.lower() not in (i.lower() for i in ids)
        ):
            ids.append(head)
    return ids


def check_gateway(
    vnet_name: str, gateway_subnet: Mapping[str, Any] | None, gateway: Mapping[str, Any] | None,
    connections: Sequence[Mapping[str, Any]],
) -> Problem | None:  # fmt: skip
    """GatewaySubnet → a gateway in it → one of its connections Connected."""
    if gateway_subnet is None:
        return Problem(vocab.GATEWAY_SUBNET_MISSING,
                       f"virtual network {vnet_name} has no GatewaySubnet, so no VPN or ExpressRoute gateway can "
                       "connect it to on-premises; add one (the operator never creates it)")  # fmt: skip
    if gateway is None:
        return Problem(vocab.GATEWAY_MISSING,
                       f"the GatewaySubnet of {vnet_name} holds no virtual network gateway; create a site-to-site "
                       "VPN or ExpressRoute gateway there (the operator never creates it)")  # fmt: skip
    mine = [c for c in connections
            if str(((c.get("properties") or {}).get("virtualNetworkGateway1") or {}).get("id") or "").lower()
            == str(gateway.get("id") or "").lower()]  # fmt: skip
    if any((c.get("properties") or {}).get("connectionStatus") == "Connected" for c in mine):
        return None
    listed = ", ".join(f"{c.get('name')}: {(c.get('properties') or {}).get('connectionStatus') or 'Unknown'}"
                       for c in mine) or "none"  # fmt: skip
    return Problem(vocab.GATEWAY_NOT_CONNECTED,
                   f"gateway {gateway.get('name')} has no Connected connection to on-premises (connections: "
                   f"{listed}); check the on-premises device and the connection")  # fmt: skip


# ----------------------------------------------------------------------------- extended NIC


def check_nic(nic: Mapping[str, Any] | None) -> Problem | None:
    if nic is None:
        return None  # not there (yet): VMProvisioned reports the NIC
    if (nic.get("properties") or {}).get("enableIPForwarding"):
        return None
    return Problem(vocab.IP_FORWARDING_DISABLED,
                   f"IP forwarding is off on the extended NIC {nic.get('name')}: Azure drops what the appliance "
                   f"forwards; enable it (az network nic update -n {nic.get('name')} --ip-forwarding true)")  # fmt: skip


# ----------------------------------------------------------------------------- in the guest (Run Command)

STATUS_SCRIPT = r"""# azureedition.io/script: extended-network-status
$ErrorActionPreference = 'Stop'
$role = Get-WindowsFeature -Name Hyper-V
$state = 'NotInstalled'
if ($role.Installed) {
  $vm = Get-VM | Where-Object { $_.Name -like '*Extended*Network*' } | Select-Object -First 1
  if ($vm) { $state = [string]$vm.State }
}
[pscustomobject]@{ hypervRole = [string]$role.InstallState; appliance = $state } | ConvertTo-Json -Compress
""".splitlines()


@dataclass(frozen=True)
class GuestNetwork:
    """What the guest says: the Hyper-V role's install state and the appliance's (nested VM's) state."""

    hyperv_role: str
    appliance: str

    @property
    def hyperv_installed(self) -> bool:
        return self.hyperv_role == "Installed"


class GuestNetworkOutputError(ValueError):
    """The script printed something else than its JSON."""


def parse_guest(stdout: str) -> GuestNetwork:
    try:
        data = json.loads(stdout.strip() or "null")
    except json.JSONDecodeError as err:
        raise GuestNetworkOutputError(f"extended-network check printed no JSON: {stdout[:200]!r}") from err
    if not isinstance(data, dict) or "hypervRole" not in data:
        raise GuestNetworkOutputError(f"extended-network check printed unexpected output: {stdout[:200]!r}")
    return GuestNetwork(str(data["hypervRole"]), str(data.get("appliance") or "NotInstalled"))


def check_guest(guest: GuestNetwork | None) -> Problem | None:
    if guest is None:
        return None  # not looked yet (or the look failed: the message says so)
    if not guest.hyperv_installed:
        return Problem(vocab.HYPER_V_ROLE_MISSING,
                       f"the Hyper-V role is {guest.hyperv_role} in the guest, not Installed; install it "
                       "(Install-WindowsFeature -Name Hyper-V -IncludeManagementTools -Restart)")  # fmt: skip
    if guest.appliance != "Running":
        return Problem(vocab.APPLIANCE_NOT_RUNNING,
                       f"the extended-network appliance is {guest.appliance} in the guest; deploy or start it "
                       "with Windows Admin Center's Extended Network tool")  # fmt: skip
    return None


# ----------------------------------------------------------------------------- the condition


def extended_network_condition(problems: Iterable[Problem | None], note: str = "") -> Condition:
    """ExtendedNetworkReady: the first problem's reason (the order is the order a person fixes them in), every
    problem in the message; True when there is none. ``note`` adds e.g. a failing in-guest check."""
    found = [p for p in problems if p is not None]
    suffix = f" ({note})" if note else ""
    if not found:
        return condition(ConditionType.EXTENDED_NETWORK_READY, True, vocab.EXTENDED_NETWORK_READY,
                         "the VM size nests, the extended subnet is usable, the gateway is connected, IP forwarding "
                         "is on and the appliance runs" + suffix)  # fmt: skip
    return condition(ConditionType.EXTENDED_NETWORK_READY, False, found[0].reason,
                     "; ".join(p.message for p in found) + suffix)  # fmt: skip
