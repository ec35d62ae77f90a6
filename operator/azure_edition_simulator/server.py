"""The HTTPS server: ARM front door, identity endpoints, control API, persistence and QUIC endpoints.

Request pipeline for ARM paths (the order ARM applies): route → injected fault → bearer token (401)
→ ``api-version`` → subscription → ARM subscription/principal throttle (429) → resource group → provider
handler (which applies Compute's per-VM throttles and validation) → response headers → request log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import re
import secrets
import shlex
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from . import (
    apiversions,
    compute,
    errors,
    extension_api,
    gateways,
    guest,
    loopback,
    lro,
    network,
    nsg,
    others,
    outside,
    throttle,
    vmextensions,
)
from .context import Reply, RequestContext
from .faults import FaultInjector, RequestLog
from .identity import WORKLOAD_ISSUER_PATH, IdentityPlatform, TokenError
from .timing import Timing
from .tls import CA_KEY_FILE, TlsMaterial, ensure_tls_material
from .world import (
    DEFAULT_CLIENT_ID,
    DEFAULT_LOCATION,
    DEFAULT_RESOURCE_GROUP,
    DEFAULT_SUBNETS,
    DEFAULT_SUBSCRIPTION_ID,
    DEFAULT_TENANT_ID,
    DEFAULT_VNET,
    LEGACY_BLOCK,
    Settings,
    World,
    key,
    normalize_location,
)

log = logging.getLogger("azure_edition_simulator")

CONTROL_PREFIX = "/_simulator"
WORLD_FILE = "world.json"
IDENTITY_FILE = "identity.json"
FEDERATED_TOKEN_FILE = "federated-token"


@dataclass
class SimulatorConfig:
    """Everything the simulator can be started with (CLI flags map 1:1)."""

    host: str = "127.0.0.1"
    port: int = 0
    state_dir: Path | None = None
    env_file: Path | None = None
    provisioning_seconds: float = 0.5
    retry_after_seconds: int = 1
    throttling: throttle.ThrottleConfig = field(default_factory=throttle.ThrottleConfig)
    quic_port: int = 443
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID
    tenant_id: str = DEFAULT_TENANT_ID
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str | None = None
    location: str = DEFAULT_LOCATION
    token_lifetime_seconds: int = 3600
    tls_hosts: tuple[str, ...] = ()  # extra DNS names / IPs for the serving certificate
    profile: str = "instant"  # timing profile (timing.py): "instant" or "azure"
    time_scale: float = 1.0  # multiplies every azure-profile duration and Retry-After
    seed: int | None = None  # the same seed and requests give the same choices
    consistency_rate: float | None = None  # None: others.DEFAULT_AZURE_RATE in the azure profile, else 0
    policy: bool = True  # False (--no-policy): no Azure Policy model
    guest_certificates_from_ca: bool = False  # guests' certificates below the simulator's own CA
    # Workload identity: (issuer, subject) pairs the default app trusts, and the CAs to fetch the
    # issuers' OIDC discovery and JWKS with (identity.py checks assertions against them).
    federated_credentials: tuple[tuple[str, str], ...] = ()
    oidc_ca_files: tuple[Path, ...] = ()
    # The control API answers loopback clients, and others only with this token (Authorization: Bearer):
    # it mints tokens and shows the client secret, so a pod next to the simulator must not use it.
    control_token: str | None = None


CONTROL_FORBIDDEN = (
    "the simulator's control API answers loopback clients only, or requests with the control token "
    "(--control-token, sent as 'Authorization: Bearer <token>'; ARMSIM_CONTROL_TOKEN for SimulatorControl)"
)


def control_allowed(remote: str | None, authorization: str | None, token: str | None) -> bool:
    """May this request use the control API: a loopback TCP peer (this machine, or ``kubectl
    port-forward`` into the simulator's pod), or any peer presenting the configured token."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        address = None
    if address is not None and (getattr(address, "ipv4_mapped", None) or address).is_loopback:
        return True
    expected = f"Bearer {token}".encode()
    return bool(token) and secrets.compare_digest((authorization or "").encode(), expected)


# --- routing -------------------------------------------------------------------------------------------

Handler = Callable[..., Reply]
_S = r"/subscriptions/(?P<sub>[^/]+)"
_R = _S + r"/resourceGroups/(?P<rg>[^/]+)"
_C = _R + r"/providers/Microsoft\.Compute"
_N = _R + r"/providers/Microsoft\.Network"
_VM = _C + r"/virtualMachines/(?P<vm>[^/]+)"
_IMG = (
    _S + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/publishers/(?P<pub>[^/]+)"
    r"/artifacttypes/vmimage/offers/(?P<offer>[^/]+)/skus"
)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Handler
    resource_type: str
    rg_scoped: bool
    provider: str


def _r(method: str, pattern: str, operation: str, handler: Handler, resource_type: str) -> Route:
    provider = next(
        (p for p in ("Microsoft.Compute", "Microsoft.Network") if p.replace(".", r"\.") in pattern),
        "Microsoft.Resources",
    )
    return Route(
        method,
        re.compile(pattern + r"/?$", re.IGNORECASE),
        operation,
        handler,
        resource_type,
        "(?P<rg>" in pattern,
        provider,
    )


def _rg_get(ctx: RequestContext, sub: str, rg: str) -> Reply:
    return Reply(200, dict(ctx.world.resource_group(sub, rg)))


_VMS = "virtualMachines"
ROUTES: tuple[Route, ...] = (
    _r("GET", _S + r"/resourceGroups/(?P<rg>[^/]+)", "ResourceGroups_Get", _rg_get, "resourceGroups"),
    _r(
        "GET",
        _C + r"/virtualMachines",
        "VirtualMachines_List",
        lambda c, sub, rg: compute.list_vms(c, sub, rg),
        _VMS,
    ),
    _r(
        "GET",
        _S + r"/providers/Microsoft\.Compute/virtualMachines",
        "VirtualMachines_ListAll",
        lambda c, sub: compute.list_vms(c, sub, None),
        _VMS,
    ),
    _r("GET", _VM, "VirtualMachines_Get", compute.get_vm, _VMS),
    _r("PUT", _VM, "VirtualMachines_CreateOrUpdate", compute.put_vm, _VMS),
    _r("PATCH", _VM, "VirtualMachines_Update", compute.patch_vm, _VMS),
    _r("DELETE", _VM, "VirtualMachines_Delete", compute.delete_vm, _VMS),
    _r("GET", _VM + r"/instanceView", "VirtualMachines_InstanceView", compute.get_instance_view, _VMS),
    _r("POST", _VM + r"/assessPatches", "VirtualMachines_AssessPatches", compute.assess_patches, _VMS),
    _r("POST", _VM + r"/installPatches", "VirtualMachines_InstallPatches", compute.install_patches, _VMS),
    _r("POST", _VM + r"/runCommand", "VirtualMachines_RunCommand", compute.run_command, _VMS),
    _r(
        "GET",
        _VM + r"/runCommands",
        "VirtualMachineRunCommands_ListByVirtualMachine",
        compute.list_run_commands,
        "virtualMachines/runCommands",
    ),
    _r(
        "GET",
        _VM + r"/runCommands/(?P<rc>[^/]+)",
        "VirtualMachineRunCommands_GetByVirtualMachine",
        compute.get_run_command,
        "virtualMachines/runCommands",
    ),
    _r(
        "PUT",
        _VM + r"/runCommands/(?P<rc>[^/]+)",
        "VirtualMachineRunCommands_CreateOrUpdate",
        compute.put_run_command,
        "virtualMachines/runCommands",
    ),
    _r(
        "DELETE",
        _VM + r"/runCommands/(?P<rc>[^/]+)",
        "VirtualMachineRunCommands_Delete",
        compute.delete_run_command,
        "virtualMachines/runCommands",
    ),
    _r(
        "GET",
        _VM + r"/extensions",
        "VirtualMachineExtensions_List",
        extension_api.list_extensions,
        "virtualMachines/extensions",
    ),
    _r(
        "GET",
        _VM + r"/extensions/(?P<ext>[^/]+)",
        "VirtualMachineExtensions_Get",
        extension_api.get_extension,
        "virtualMachines/extensions",
    ),
    _r(
        "PUT",
        _VM + r"/extensions/(?P<ext>[^/]+)",
        "VirtualMachineExtensions_CreateOrUpdate",
        extension_api.put_extension,
        "virtualMachines/extensions",
    ),
    _r(
        "DELETE",
        _VM + r"/extensions/(?P<ext>[^/]+)",
        "VirtualMachineExtensions_Delete",
        extension_api.delete_extension,
        "virtualMachines/extensions",
    ),
    _r("GET", _C + r"/disks", "Disks_ListByResourceGroup", compute.list_disks, "disks"),
    _r("GET", _C + r"/disks/(?P<disk>[^/]+)", "Disks_Get", compute.get_disk, "disks"),
    _r("PATCH", _C + r"/disks/(?P<disk>[^/]+)", "Disks_Update", compute.patch_disk, "disks"),
    _r("DELETE", _C + r"/disks/(?P<disk>[^/]+)", "Disks_Delete", compute.delete_disk, "disks"),
    _r(
        "GET",
        _S + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)",
        "Compute_GetOperation",
        lambda c, sub, loc, op: lro.get_status(c, sub, op),
        "locations/operations",
    ),
    _r(
        "GET",
        _S + r"/providers/Microsoft\.Compute/skus",
        "ResourceSkus_List",
        compute.list_resource_skus,
        "skus",
    ),
    _r("GET", _IMG, "VirtualMachineImages_ListSkus", compute.list_image_skus, "locations/publishers"),
    _r(
        "GET",
        _IMG + r"/(?P<sku>[^/]+)/versions",
        "VirtualMachineImages_List",
        compute.list_image_versions,
        "locations/publishers",
    ),
    _r(
        "GET",
        _IMG + r"/(?P<sku>[^/]+)/versions/(?P<version>[^/]+)",
        "VirtualMachineImages_Get",
        compute.get_image_version,
        "locations/publishers",
    ),
    _r("GET", _N + r"/networkInterfaces", "NetworkInterfaces_List", network.list_nics, "networkInterfaces"),
    _r(
        "GET",
        _N + r"/networkInterfaces/(?P<nic>[^/]+)",
        "NetworkInterfaces_Get",
        network.get_nic,
        "networkInterfaces",
    ),
    _r(
        "PUT",
        _N + r"/networkInterfaces/(?P<nic>[^/]+)",
        "NetworkInterfaces_CreateOrUpdate",
        network.put_nic,
        "networkInterfaces",
    ),
    _r(
        "DELETE",
        _N + r"/networkInterfaces/(?P<nic>[^/]+)",
        "NetworkInterfaces_Delete",
        network.delete_nic,
        "networkInterfaces",
    ),
    _r(
        "GET",
        _N + r"/publicIPAddresses",
        "PublicIPAddresses_List",
        network.list_public_ips,
        "publicIPAddresses",
    ),
    _r(
        "GET",
        _N + r"/publicIPAddresses/(?P<pip>[^/]+)",
        "PublicIPAddresses_Get",
        network.get_public_ip,
        "publicIPAddresses",
    ),
    _r(
        "PUT",
        _N + r"/publicIPAddresses/(?P<pip>[^/]+)",
        "PublicIPAddresses_CreateOrUpdate",
        network.put_public_ip,
        "publicIPAddresses",
    ),
    _r(
        "DELETE",
        _N + r"/publicIPAddresses/(?P<pip>[^/]+)",
        "PublicIPAddresses_Delete",
        network.delete_public_ip,
        "publicIPAddresses",
    ),
    _r(
        "GET",
        _N + r"/networkSecurityGroups/(?P<nsg>[^/]+)",
        "NetworkSecurityGroups_Get",
        nsg.get_nsg,
        "networkSecurityGroups",
    ),
    _r(
        "PUT",
        _N + r"/networkSecurityGroups/(?P<nsg>[^/]+)",
        "NetworkSecurityGroups_CreateOrUpdate",
        nsg.put_nsg,
        "networkSecurityGroups",
    ),
    _r(
        "DELETE",
        _N + r"/networkSecurityGroups/(?P<nsg>[^/]+)",
        "NetworkSecurityGroups_Delete",
        nsg.delete_nsg,
        "networkSecurityGroups",
    ),
    _r(
        "GET",
        _N + r"/virtualNetworks/(?P<vnet>[^/]+)/subnets/(?P<subnet>[^/]+)",
        "Subnets_Get",
        network.get_subnet,
        "virtualNetworks/subnets",
    ),
    _r(
        "GET",
        _N + r"/virtualNetworkGateways",
        "VirtualNetworkGateways_List",
        gateways.list_gateways,
        "virtualNetworkGateways",
    ),
    _r(
        "GET",
        _N + r"/virtualNetworkGateways/(?P<gateway>[^/]+)",
        "VirtualNetworkGateways_Get",
        gateways.get_gateway,
        "virtualNetworkGateways",
    ),
    _r(
        "GET",
        _N + r"/connections",
        "VirtualNetworkGatewayConnections_List",
        gateways.list_connections,
        "connections",
    ),
    _r(
        "GET",
        _N + r"/connections/(?P<connection>[^/]+)",
        "VirtualNetworkGatewayConnections_Get",
        gateways.get_connection,
        "connections",
    ),
    _r(
        "GET",
        _S + r"/providers/Microsoft\.Network/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)",
        "Network_GetOperation",
        lambda c, sub, loc, op: lro.get_status(c, sub, op),
        "locations/operations",
    ),
    _r(
        "GET",
        _S + r"/providers/Microsoft\.Network/locations/(?P<loc>[^/]+)/operationResults/(?P<op>[^/]+)",
        "Network_GetOperationResult",
        lambda c, sub, loc, op: lro.get_result(c, sub, op),
        "locations/operationResults",
    ),
)

IDENTITY_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "GET",
        re.compile(r"^/(?P<tenant>[^/_][^/]*)/v2\.0/\.well-known/openid-configuration$"),
        "Identity_OpenIdConfiguration",
    ),
    (
        "GET",
        re.compile(r"^/(?P<tenant>[^/_][^/]*)/\.well-known/openid-configuration$"),
        "Identity_OpenIdConfiguration",
    ),
    ("POST", re.compile(r"^/(?P<tenant>[^/_][^/]*)/oauth2/v2\.0/token$"), "Identity_Token"),
    ("POST", re.compile(r"^/(?P<tenant>[^/_][^/]*)/oauth2/token$"), "Identity_Token"),
    ("GET", re.compile(r"^/(?P<tenant>[^/_][^/]*)/discovery/v2\.0/keys$"), "Identity_Keys"),
    ("GET", re.compile(r"^/common/discovery/instance$"), "Identity_InstanceDiscovery"),
)


def match_route(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, path params, path-known) for an ARM request."""
    known = False
    for route in ROUTES:
        m = route.pattern.match(path)
        if m:
            known = True
            if route.method == method:
                return route, m.groupdict(), True
    return None, {}, known


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _is_loopback(address: str | None) -> bool:
    return bool(address) and str(address).startswith("127.")


# --- QUIC endpoints --------------------------------------------------------------------------------------


class QuicEndpoints:
    """One real SMB-over-QUIC endpoint per VM whose guest has SMB over QUIC on and a certificate mapped."""

    def __init__(self, port: int):
        self.port = port
        self.running: dict[str, tuple[str, str, Any]] = {}  # vm key → (host, thumbprint, endpoint)
        # (vm key, alternative port) → (host, thumbprint, endpoint): altports.py decides which are served
        self.alternates: dict[tuple[str, int], tuple[str, str, Any]] = {}
        self.issued: dict[str, Any] = {}  # thumbprint → IssuedCertificate
        self.last_error: str | None = None
        self.wakeup = asyncio.Event()

    def desired(self, world: World) -> dict[str, tuple[str, dict[str, Any]]]:
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for vm_key, vm in world.vms.items():
            g = world.guests.get(vm_key)
            if g is None or not g["enableSmbQuic"] or not g["mappings"]:
                continue
            if compute.power_state(world, vm) != "running":
                continue
            address = compute.vm_address(world, vm)
            if _is_loopback(address):
                out[vm_key] = (str(address), g["mappings"][0])
        return out

    def _guard(self, endpoint: Any, world: World, vm_key: str, server_name: str) -> None:
        """Point the endpoint at the guest's client access control for the name it serves."""
        from . import clientaccess

        def guest_now() -> dict[str, Any]:
            return world.guests.get(vm_key) or {}

        endpoint.requires_client_certificate = lambda: bool(
            (guest_now().get("clientAccess") or {}).get(server_name.lower(), {}).get("require")
        )
        endpoint.judge_client = lambda cert: clientaccess.admits(guest_now(), server_name, cert)

    def _certificate(self, mapping: dict[str, Any]) -> Any:
        issued = self.issued.get(mapping["thumbprint"])
        if issued is None:
            issued = guest.issued_from_mapping(mapping)
            self.issued[mapping["thumbprint"]] = issued
        return issued

    async def reconcile(self, world: World) -> None:
        desired = self.desired(world)
        try:
            for vm_key in list(self.running):
                host, thumbprint, endpoint = self.running[vm_key]
                want = desired.get(vm_key)
                if want is None or want[0] != host:
                    await endpoint.stop()
                    del self.running[vm_key]
                elif want[1]["thumbprint"] != thumbprint:
                    endpoint.set_certificate(self._certificate(want[1]))
                    self.running[vm_key] = (host, want[1]["thumbprint"], endpoint)
                if want is not None and want[0] == host:
                    self._guard(endpoint, world, vm_key, want[1]["name"])
            if any(vm_key not in self.running for vm_key in desired):
                from .quic_endpoint import SmbQuicEndpoint  # written by another engineer

                for vm_key, (host, mapping) in desired.items():
                    if vm_key in self.running:
                        continue
                    endpoint = SmbQuicEndpoint(host, self.port, self._certificate(mapping))
                    self._guard(endpoint, world, vm_key, mapping["name"])
                    await endpoint.start()
                    self.running[vm_key] = (host, mapping["thumbprint"], endpoint)
            await self._reconcile_alternates(world, desired)
            self.last_error = None
        except Exception as exc:  # reported through the control API; the ARM side keeps working
            self.last_error = repr(exc)
            log.warning("QUIC endpoint reconciliation failed: %r", exc)

    async def _reconcile_alternates(
        self, world: World, desired: dict[str, tuple[str, dict[str, Any]]]
    ) -> None:
        """One more endpoint per alternative QUIC port the guest listens on and the NSG admits."""
        from . import altports

        want: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
        for vm_key, (host, mapping) in desired.items():
            for port in altports.reachable(world, world.vms[vm_key], world.guests[vm_key]):
                want[(vm_key, port)] = (host, mapping)
        for slot in list(self.alternates):
            host, thumbprint, endpoint = self.alternates[slot]
            if slot not in want or want[slot][0] != host:
                await endpoint.stop()
                del self.alternates[slot]
            elif want[slot][1]["thumbprint"] != thumbprint:
                endpoint.set_certificate(self._certificate(want[slot][1]))
                self.alternates[slot] = (host, want[slot][1]["thumbprint"], endpoint)
        for slot, (host, mapping) in want.items():
            if slot not in self.alternates:
                from .quic_endpoint import SmbQuicEndpoint

                endpoint = SmbQuicEndpoint(host, slot[1], self._certificate(mapping))
                await endpoint.start()
                self.alternates[slot] = (host, mapping["thumbprint"], endpoint)
            self._guard(self.alternates[slot][2], world, slot[0], mapping["name"])

    async def stop_all(self) -> None:
        for _, _, endpoint in [*self.running.values(), *self.alternates.values()]:
            with contextlib.suppress(Exception):
                await endpoint.stop()
        self.running.clear()
        self.alternates.clear()

    def describe(self, world: World) -> dict[str, Any]:
        endpoints = []
        for vm_key, (host, thumbprint, endpoint) in self.running.items():
            vm = world.vms.get(vm_key)
            endpoints.append(
                {
                    "vmId": vm["id"] if vm else vm_key,
                    "host": host,
                    "port": getattr(endpoint, "port", self.port),
                    "thumbprint": thumbprint,
                }
            )
        alternates = [
            {"vmId": (world.vms.get(vm_key) or {}).get("id", vm_key), "host": host, "port": port,
             "thumbprint": thumbprint}
            for (vm_key, port), (host, thumbprint, _) in sorted(self.alternates.items())
        ]  # fmt: skip
        return {
            "port": self.port,
            "endpoints": endpoints,
            "alternates": alternates,
            "lastError": self.last_error,
        }


# --- the server ------------------------------------------------------------------------------------------


def consistency_rng(seed: int | None) -> random.Random:
    """Eventual consistency's own random choices: follow the seed (offset, so they are not the timing's)."""
    return random.Random(None if seed is None else seed + 1)


class SimulatorServer:
    """The simulator on the current event loop."""

    def __init__(self, config: SimulatorConfig, tmp_dir: Path | None = None):
        self.config = config
        self.state_dir = config.state_dir or tmp_dir
        if self.state_dir is None:
            raise ValueError("a state directory (or a temporary one) is required for the CA and token files")
        self.persistent = config.state_dir is not None
        self.settings = Settings(
            config.provisioning_seconds,
            config.retry_after_seconds,
            Timing(config.profile, config.time_scale, config.seed),
        )
        rate = config.consistency_rate
        if rate is None:
            rate = others.DEFAULT_AZURE_RATE if config.profile == "azure" else 0.0
        self.settings.consistency_rate = rate
        self.settings.consistency_rng = consistency_rng(config.seed)
        self.settings.policy_enabled = config.policy
        self.throttler = throttle.Throttler(config.throttling)
        self.faults = FaultInjector()
        self.requests = RequestLog()
        self.quic = QuicEndpoints(config.quic_port if config.quic_port else _free_udp_port(config.host))
        world = self._load_world()
        preferred = None if world.loopback_block == LEGACY_BLOCK else world.loopback_block
        # Held until stop(): another simulator's claim of this block then fails (see loopback.py).
        self.block, self._block_claim = loopback.claim_block(self.quic.port, preferred)
        if world.loopback_block != self.block.cidr:
            fresh = not (self.persistent and (self.state_dir / WORLD_FILE).is_file())
            world = self._seeded(self.block) if fresh else world.moved_to(self.block.cidr)
        self.world = world
        self.identity = self._load_identity()
        self.tls: TlsMaterial | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._generation = 0  # bumped when the world object is replaced (reset)
        self._vault_ports: dict[str, int] = {}  # Key Vault: each vault's own HTTPS port
        self._saved: tuple[int, int] = (-1, -1)
        self.port = 0

    # --- state -----------------------------------------------------------------------------------------

    def _load_world(self) -> World:
        assert self.state_dir is not None
        path = self.state_dir / WORLD_FILE
        if self.persistent and path.is_file():
            return World.load(path)
        return World()  # seeded once the loopback block is claimed

    def _seeded(self, block: loopback.Block) -> World:
        return World.seeded(
            self.config.subscription_id,
            self.config.tenant_id,
            self.config.location,
            loopback_block=block.cidr,
        )

    def _load_identity(self) -> IdentityPlatform:
        assert self.state_dir is not None
        path = self.state_dir / IDENTITY_FILE
        if self.persistent and path.is_file():
            identity = IdentityPlatform.from_dict(json.loads(path.read_text()))
        else:
            identity = IdentityPlatform.create(
                self.config.tenant_id, self.config.client_id, self.config.client_secret
            )
            identity.token_lifetime_seconds = self.config.token_lifetime_seconds
        for ca_file in self.config.oidc_ca_files:
            identity.trust_oidc_ca(Path(ca_file).read_text())
        for issuer, subject in self.config.federated_credentials:
            identity.configure_federation({"issuer": issuer, "subject": subject}, self.config.client_id)
        return identity

    def save(self, force: bool = False) -> None:
        """Persist the world (and identity) if it changed and a state dir was given."""
        if not self.persistent or self.state_dir is None:
            return
        if force or self.state_version != self._saved:
            self.world.save(self.state_dir / WORLD_FILE)
            path = self.state_dir / IDENTITY_FILE
            path.write_text(json.dumps(self.identity.to_dict(), indent=1))
            path.chmod(0o600)
            self._saved = self.state_version

    # --- lifecycle -------------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"https://{self.config.host}:{self.port}"

    @property
    def control_url(self) -> str:
        return self.origin + CONTROL_PREFIX

    async def start(self) -> None:
        assert self.state_dir is not None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        hosts = tuple(dict.fromkeys((self.config.host, "localhost", *self.config.tls_hosts)))
        self.tls = ensure_tls_material(self.state_dir, hosts=hosts)
        if self.config.guest_certificates_from_ca:
            self._issue_guest_certificates_below_own_ca()
        app = web.Application(client_max_size=8 * 1024**2)
        self._add_control_routes(app)
        app.router.add_route("*", "/keyvault/{vault}/{tail:.*}", self._keyvault)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.config.host, self.config.port, ssl_context=self.tls.server_context()
        )
        await site.start()
        server = site._server  # the bound socket tells us the real port when port=0
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        self.identity.origin = self.origin
        self.write_federated_token()
        if self.config.env_file:
            self.write_env_file(self.config.env_file)
        self.save(force=True)
        for vault in list(self.world.key_vaults):
            await self._vault_site(vault)
        self._tasks = [asyncio.create_task(self._ticker()), asyncio.create_task(self._quic_loop())]
        self.quic.wakeup.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.quic.stop_all()
        if self._runner is not None:
            await self._runner.cleanup()
        self.save(force=True)
        self._block_claim.close()

    async def _ticker(self) -> None:
        """Finish due operations even when nobody polls, persist, and wake the QUIC reconciler."""
        while True:
            await asyncio.sleep(0.05)
            self.advance()
            self.save()

    @property
    def state_version(self) -> tuple[int, int]:
        """Changes whenever the world changes (or is replaced)."""
        return (self._generation, self.world.revision)

    async def _quic_loop(self) -> None:
        last: tuple[int, int] = (-1, -1)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.quic.wakeup.wait(), timeout=0.5)
            self.quic.wakeup.clear()
            if self.state_version != last:
                last = self.state_version
                await self.quic.reconcile(self.world)

    def advance(self) -> None:
        """Complete every operation whose simulated duration has elapsed."""
        before = self.world.revision
        for op in self.world.due_operations(time.time()):
            if op["provider"] == "Microsoft.Compute":
                compute.complete(self.world, op)
            else:
                network.complete(self.world, op)
        if self.world.key_vaults:  # Key Vault's AutoRenew, by each policy's own trigger
            from . import keyvault

            if keyvault.renew_due(self.world.key_vaults, time.time()):
                self.world.touch()
        if self.world.extensions:  # the Key Vault extension's polling, in the guests of running VMs
            running = {
                k: compute.power_state(self.world, vm) == "running" for k, vm in self.world.vms.items()
            }
            if vmextensions.poll(self.world, time.time(), self.settings.timing.time_scale, running):
                self.world.touch()
        if self.world.revision != before:
            self.world.prune_operations()
            self.quic.wakeup.set()

    # --- files for clients -----------------------------------------------------------------------------

    @property
    def federated_token_path(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / FEDERATED_TOKEN_FILE

    def write_federated_token(self) -> None:
        path = self.federated_token_path
        path.write_text(self.identity.mint_federated_token())
        path.chmod(0o600)

    def _issue_guest_certificates_below_own_ca(self) -> None:
        """One CA for ARM's TLS and the guests' SMB over QUIC certificates: the CA an administrator gave
        the simulator (deploy/components/simulator-demo) is then the operator's SMB trust bundle too."""
        from cryptography import x509 as _x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        from . import certs

        assert self.tls is not None and self.state_dir is not None
        cert = _x509.load_pem_x509_certificate(self.tls.ca_cert.read_bytes())
        key = serialization.load_pem_private_key((self.state_dir / CA_KEY_FILE).read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        certs.use_default_authority(certs.CertificateAuthority(root=(cert, key)))
        (self.state_dir / "guest-ca.crt").write_bytes(self.tls.ca_cert.read_bytes())

    @property
    def guest_ca_path(self) -> Path:
        """The root CA of the guests' SMB over QUIC certificates, as PEM: an SMB trust bundle."""
        assert self.state_dir is not None
        path = self.state_dir / "guest-ca.crt"
        if not path.exists():
            from . import certs

            path.write_text(certs.default_authority().root_pem)
        return path

    def env(self) -> dict[str, str]:
        """What a client needs, as environment variables (see the package docstring)."""
        assert self.tls is not None
        sub = self.config.subscription_id
        principal = self.identity.principals[self.config.client_id]
        subnet_base = (
            f"/subscriptions/{sub}/resourceGroups/{DEFAULT_RESOURCE_GROUP}/providers/Microsoft.Network/"
            f"virtualNetworks/{DEFAULT_VNET}/subnets"
        )
        subnets = list(DEFAULT_SUBNETS)
        return {
            "AZURE_RESOURCE_MANAGER_ENDPOINT": self.origin,
            "AZURE_RESOURCE_MANAGER_SCOPE": f"{self.origin}/.default",
            "AZURE_AUTHORITY_HOST": self.origin,
            "AZURE_TENANT_ID": self.identity.tenant_id,
            "AZURE_CLIENT_ID": principal.client_id,
            "AZURE_CLIENT_SECRET": principal.client_secret or "",
            "AZURE_FEDERATED_TOKEN_FILE": str(self.federated_token_path),
            "AZURE_SUBSCRIPTION_ID": sub,
            "SSL_CERT_FILE": str(self.tls.ca_bundle),
            "REQUESTS_CA_BUNDLE": str(self.tls.ca_bundle),
            "ARMSIM_CA_CERT": str(self.tls.ca_cert),
            "ARMSIM_GUEST_CA_CERT": str(self.guest_ca_path),
            "ARMSIM_CONTROL_URL": self.control_url,
            "ARMSIM_QUIC_PORT": str(self.quic.port),
            "ARMSIM_LOOPBACK_BLOCK": self.block.cidr,
            "ARMSIM_PROFILE": self.settings.timing.profile,
            "ARMSIM_TIME_SCALE": f"{self.settings.timing.time_scale:g}",
            "ARMSIM_LOCATION": self.config.location,
            "ARMSIM_RESOURCE_GROUP": DEFAULT_RESOURCE_GROUP,
            "ARMSIM_SUBNET_ID": f"{subnet_base}/{subnets[0]}",
            "ARMSIM_EXTENDED_SUBNET_ID": f"{subnet_base}/{subnets[1]}",
            "ARMSIM_STATE_DIR": str(self.state_dir),
            **({"ARMSIM_CONTROL_TOKEN": self.config.control_token} if self.config.control_token else {}),
        }

    def write_env_file(self, path: Path) -> None:
        env = self.env()
        timing = self.settings.timing
        if timing.realistic and timing.time_scale != 1.0:
            # A scaled world scales its clients' fallback poll period too (azure-core's when Retry-After
            # is absent; the operator's default is 15 s): AZURE_POLLING_INTERVAL, which the operator reads.
            env["AZURE_POLLING_INTERVAL"] = f"{max(0.05, 15.0 * timing.time_scale):g}"
        lines = [f"{name}={shlex.quote(value)}" for name, value in env.items()]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o600)
        tmp.replace(path)

    # --- Key Vault's data plane -----------------------------------------------------------------------------

    async def _vault_site(self, name: str) -> str:
        """The vault's own HTTPS listener (Key Vault's ids are ``<vault URL>/certificates/<name>/<version>``,
        so a vault is an origin, not a path); its URL."""
        if name not in self._vault_ports:
            assert self._runner is not None and self.tls is not None
            site = web.TCPSite(self._runner, self.config.host, 0, ssl_context=self.tls.server_context())
            await site.start()
            server = site._server  # the bound socket tells the port
            assert server is not None
            self._vault_ports[name] = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        url = f"https://{self.config.host}:{self._vault_ports[name]}"
        self.world.key_vaults[name]["url"] = url  # where the Key Vault extension finds it
        return url

    def _vault_of(self, request: web.Request) -> str | None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if sockname else None
        return next((n for n, p in self._vault_ports.items() if p == port), None)

    async def _keyvault(self, request: web.Request, name: str) -> web.StreamResponse:
        """A vault's data plane: Key Vault certificates and their secrets (keyvault.py)."""
        from . import keyvault

        self.advance()
        origin = self.origin  # the authority clients get tokens from
        vault_url = f"https://{request.host}"
        try:
            oid = keyvault.caller(
                self.identity, request.headers.get("Authorization"), self.config.tenant_id, origin
            )
            vault = self.world.key_vaults.get(name)
            if vault is None:
                raise keyvault.VaultError(404, "VaultNotFound", f"The vault {name} does not exist.")
            raw = await request.read()
            body = json.loads(raw) if raw.strip() else {}
            admin = self.identity.principals[self.config.client_id].object_id
            parts = [p for p in request.path.split("/") if p]
            status, answer = keyvault.handle(
                vault, vault_url, request.method.upper(), parts, body, oid, admin
            )
        except keyvault.VaultError as err:
            return web.json_response(err.body(), status=err.status, headers=err.headers)
        if request.method.upper() != "GET":
            self.world.touch()
        return web.json_response(answer, status=status)

    # --- ARM and identity --------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if self._vault_ports and (vault := self._vault_of(request)) is not None:
            return await self._keyvault(request, vault)
        started = time.monotonic()
        self.advance()
        method, path = request.method.upper(), request.path
        # Answer on the origin the client used: 127.0.0.1:<port>, or a name listed with --tls-san.
        origin = f"https://{request.host}" if request.host else self.origin
        query = dict(parse_qsl(request.query_string, keep_blank_values=True))
        identity_route = next(
            (
                (name, m.groupdict())
                for verb, pattern, name in IDENTITY_ROUTES
                if verb == method and (m := pattern.match(path))
            ),
            None,
        )
        route, params, known = (None, {}, False) if identity_route else match_route(method, path)
        operation = identity_route[0] if identity_route else route.operation if route else "Unknown"
        fault = self.faults.take(method, path, operation)
        client_id: str | None = None
        extra: dict[str, str] = {}
        try:
            if fault is not None:
                if fault.latency_seconds:
                    await asyncio.sleep(fault.latency_seconds)
                if fault.drop:
                    self._record(
                        method, path, query, 0, operation, None, "ConnectionDropped", fault.id, started
                    )
                    return await self._drop(request)
                if fault.status is not None:
                    reply = Reply(fault.status, fault.error_body(), dict(fault.headers))
                    return self._finish(method, path, query, reply, operation, None, fault.id, started, {})
            if identity_route is not None:
                reply = await self._identity(request, identity_route[1], operation, origin)
                return self._finish(method, path, query, reply, operation, None, None, started, {})
            if route is None:
                raise errors.method_not_allowed(method, path) if known else errors.unknown_route(path)
            caller = self.identity.authenticate(request.headers.get("Authorization"), origin)
            client_id = caller.client_id
            others.check_authorization(
                self.settings, caller.client_id, caller.object_id, path, others.arm_action(path, method)
            )
            body = await self._body(request, method)
            api_version = query.get("api-version", "")
            apiversions.check(api_version, route.provider, route.resource_type)
            sub = params["sub"]
            self.world.subscription(sub)
            bucket = throttle.SUBSCRIPTION_READS if method == "GET" else throttle.SUBSCRIPTION_WRITES
            decision = self.throttler.take(bucket, f"{sub.lower()}:{caller.object_id}")
            header = "x-ms-ratelimit-remaining-subscription-" + ("reads" if method == "GET" else "writes")
            extra[header] = str(decision.remaining)
            # ARM's regional token buckets report a global count too (same bucket here).
            extra[header.replace("subscription-", "subscription-global-")] = str(decision.remaining)
            if route.operation == "Compute_GetOperation":  # CRP meters operation polls per subscription
                extra["x-ms-ratelimit-remaining-resource"] = others.meter(self.settings, "GetOperation", sub)
            if not decision.allowed:
                verb = "read" if method == "GET" else "write"
                raise errors.ArmError(
                    429,
                    "SubscriptionRequestsThrottled",
                    f"Number of '{verb}' requests for subscription '{sub}' actor '{caller.object_id}' exceeded. "
                    f"Please try again after '{decision.retry_after}' seconds after additional tokens are "
                    "available. Refer to https://aka.ms/arm-throttling",
                    headers={"Retry-After": str(decision.retry_after), header: "0"},
                )
            if route.rg_scoped:
                self.world.resource_group(sub, params["rg"])
            ctx = RequestContext(
                world=self.world,
                settings=self.settings,
                throttler=self.throttler,
                origin=origin,
                api_version=api_version,
                query=query,
                body=body,
                operation=operation,
            )
            try:
                reply = route.handler(ctx, *params.values())
            except errors.ArmError as exc:
                exc.headers = {**ctx.response_headers, **exc.headers}
                raise
            reply.headers = {**ctx.response_headers, **reply.headers}
            self.quic.wakeup.set()
            return self._finish(method, path, query, reply, operation, client_id, None, started, extra)
        except errors.ArmError as exc:
            reply = Reply(exc.status, exc.body(), exc.headers)
            return self._finish(method, path, query, reply, operation, client_id, None, started, extra)
        except TokenError as exc:
            return self._finish(
                method, path, query, Reply(exc.status, exc.body()), operation, None, None, started, {}
            )
        except Exception:  # a simulator bug must still look like an ARM 500, and be visible in the log
            log.exception("unhandled error in %s %s", method, path)
            reply = Reply(
                500, {"error": {"code": "InternalServerError", "message": "Simulator internal error."}}
            )
            return self._finish(method, path, query, reply, operation, client_id, None, started, extra)

    async def _body(self, request: web.Request, method: str) -> Any:
        if method not in ("PUT", "PATCH", "POST") or not request.can_read_body:
            return None
        raw = await request.read()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise errors.invalid_request_content(
                f"The request content was invalid and could not be deserialized: '{exc}'."
            ) from None

    async def _identity(
        self, request: web.Request, params: dict[str, str], operation: str, origin: str
    ) -> Reply:
        tenant = params.get("tenant", "common")
        if operation == "Identity_OpenIdConfiguration":
            if tenant.lower() not in (self.identity.tenant_id.lower(), "common", "organizations"):
                return Reply(
                    400,
                    {
                        "error": "invalid_tenant",
                        "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                    },
                )
            return Reply(200, self.identity.openid_configuration(tenant, origin))
        if operation == "Identity_Keys":
            return Reply(200, self.identity.jwks())
        if operation == "Identity_InstanceDiscovery":
            return Reply(
                200, self.identity.instance_discovery(request.query.get("authorization_endpoint", ""), origin)
            )
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        if form.get("client_assertion"):  # may fetch the issuer's JWKS: not on the event loop
            token = await asyncio.to_thread(self.identity.issue_token, tenant, form, origin)
            return Reply(200, token, {"Cache-Control": "no-store"})
        return Reply(200, self.identity.issue_token(tenant, form, origin), {"Cache-Control": "no-store"})

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError

    def _record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        status: int,
        operation: str,
        client_id: str | None,
        error_code: str | None,
        fault: str | None,
        started: float,
    ) -> None:
        self.requests.record(
            method=method,
            path=path,
            query=query,
            status=status,
            operation=operation,
            client_id=client_id,
            error_code=error_code,
            fault=fault,
            started=started,
        )

    def _finish(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        reply: Reply,
        operation: str,
        client_id: str | None,
        fault: str | None,
        started: float,
        extra: dict[str, str],
    ) -> web.Response:
        request_id = str(uuid.uuid4())
        headers = {
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": request_id,
            "x-ms-routing-request-id": f"{self.config.location.upper()}:{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}:{request_id}",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
            "X-Content-Type-Options": "nosniff",
            **extra,
            **reply.headers,
        }
        error_code = None
        if isinstance(reply.body, dict) and reply.status >= 400:
            err = reply.body.get("error")
            error_code = err.get("code") if isinstance(err, dict) else str(err)
        self._record(method, path, query, reply.status, operation, client_id, error_code, fault, started)
        return _json(reply.status, reply.body, headers)

    # --- control API -------------------------------------------------------------------------------------

    def _add_control_routes(self, app: web.Application) -> None:
        p = CONTROL_PREFIX
        routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
            ("GET", "/info", self._c_info),
            ("GET", "/env", self._c_env),
            ("POST", "/reset", self._c_reset),
            ("GET", "/requests", self._c_requests),
            ("DELETE", "/requests", self._c_counters_reset),
            ("GET", "/counters", self._c_counters),
            ("POST", "/counters/reset", self._c_counters_reset),
            ("GET", "/settings", self._c_settings),
            ("PUT", "/settings", self._c_settings),
            ("GET", "/throttling", self._c_throttling),
            ("PUT", "/throttling", self._c_throttling),
            ("POST", "/throttling/refill", self._c_throttling_refill),
            ("GET", "/faults", self._c_faults),
            ("POST", "/faults", self._c_faults),
            ("DELETE", "/faults", self._c_faults),
            ("DELETE", "/faults/{fault_id}", self._c_fault_delete),
            ("GET", "/operation-failures", self._c_operation_failures),
            ("POST", "/operation-failures", self._c_operation_failures),
            ("DELETE", "/operation-failures", self._c_operation_failures),
            ("GET", "/operations", self._c_operations),
            ("POST", "/subscriptions", self._c_subscriptions),
            ("GET", "/resource-groups", self._c_resource_groups),
            ("POST", "/resource-groups", self._c_resource_groups),
            ("GET", "/subnets", self._c_subnets),
            ("POST", "/subnets", self._c_subnets),
            ("POST", "/authorization-delays", self._c_authorization_delays),
            ("GET", "/virtual-network-gateways", self._c_gateways),
            ("POST", "/virtual-network-gateways", self._c_gateways),
            ("DELETE", "/virtual-network-gateways/{rg}/{name}", self._c_gateways),
            ("GET", "/connections", self._c_connections),
            ("POST", "/connections", self._c_connections),
            ("PATCH", "/connections/{rg}/{name}", self._c_connections),
            ("DELETE", "/connections/{rg}/{name}", self._c_connections),
            ("PATCH", "/nics/{rg}/{name}", self._c_nic),
            ("POST", "/vms/{rg}/{vm}/out-of-band", self._c_out_of_band),
            ("GET", "/sku-restrictions", self._c_sku_restrictions),
            ("POST", "/sku-restrictions", self._c_sku_restrictions),
            ("DELETE", "/sku-restrictions", self._c_sku_restrictions),
            ("GET", "/vms", self._c_vms),
            ("POST", "/outside-vms", self._c_outside_vm),
            ("GET", "/vms/{rg}/{vm}", self._c_vm),
            ("GET", "/vms/{rg}/{vm}/guest", self._c_guest),
            ("PATCH", "/vms/{rg}/{vm}/guest", self._c_guest),
            ("PUT", "/vms/{rg}/{vm}/guest/certificates/{server_name}", self._c_certificate),
            ("DELETE", "/vms/{rg}/{vm}/guest/certificates/{server_name}", self._c_certificate),
            ("PUT", "/vms/{rg}/{vm}/patch-settings", self._c_patch_settings),
            ("GET", "/guest-defaults", self._c_guest_defaults),
            ("PUT", "/guest-defaults", self._c_guest_defaults),
            ("POST", "/identity/federated-tokens", self._c_federated_token),
            ("GET", "/identity/principals", self._c_principals),
            ("POST", "/identity/principals", self._c_principals),
            ("POST", "/identity/federated-credentials", self._c_federated_credentials),
            ("GET", "/quic", self._c_quic),
            ("POST", "/certificate-authority/issue", self._c_issue_certificate),
            ("GET", "/keyvaults/{vault}", self._c_key_vault),
            ("PUT", "/keyvaults/{vault}", self._c_key_vault),
            ("POST", "/keyvaults/{vault}/role-assignments", self._c_key_vault_roles),
            ("DELETE", "/keyvaults/{vault}/role-assignments/{principal}", self._c_key_vault_roles),
            ("POST", "/keyvaults/{vault}/certificates/{name}/renew", self._c_key_vault_renew),
            ("GET", "/workload-identity/.well-known/openid-configuration", self._c_workload_discovery),
            ("GET", "/workload-identity/openid/v1/jwks", self._c_workload_jwks),
        ]
        for method, suffix, handler in routes:
            app.router.add_route(method, p + suffix, self._control(handler))

    def _control(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            public = request.path.startswith(
                WORKLOAD_ISSUER_PATH
            )  # an issuer's discovery and keys are public
            allowed = control_allowed(
                request.remote, request.headers.get("Authorization"), self.config.control_token
            )
            if not public and not allowed:
                return _json(403, {"error": {"code": "ControlForbidden", "message": CONTROL_FORBIDDEN}})
            self.advance()
            try:
                response = await handler(request)
            except (ValueError, KeyError, TypeError) as exc:
                return _json(400, {"error": {"code": "InvalidControlRequest", "message": str(exc)}})
            except errors.ArmError as exc:
                return _json(exc.status, exc.body())
            self.quic.wakeup.set()
            return response

        return wrapped

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    def info(self) -> dict[str, Any]:
        assert self.tls is not None
        return {
            "endpoint": self.origin,
            "authorityHost": self.origin,
            "tenantId": self.identity.tenant_id,
            "clientId": self.config.client_id,
            "subscriptionId": self.config.subscription_id,
            "caPath": str(self.tls.ca_cert),
            "caBundlePath": str(self.tls.ca_bundle),
            "federatedTokenFile": str(self.federated_token_path),
            "controlUrl": self.control_url,
            "quicPort": self.quic.port,
            "loopbackBlock": self.block.cidr,
            "stateDir": str(self.state_dir),
            "persistent": self.persistent,
            "settings": self.settings.to_dict()
            | {"tokenLifetimeSeconds": self.identity.token_lifetime_seconds},
            "throttling": self.throttler.config.to_dict(),
        }

    async def _c_info(self, request: web.Request) -> web.Response:
        return _json(200, self.info())

    async def _c_env(self, request: web.Request) -> web.Response:
        return _json(200, self.env())

    async def _c_reset(self, request: web.Request) -> web.Response:
        self.world = World.seeded(
            self.config.subscription_id, self.identity.tenant_id, self.config.location, self.block.cidr
        )
        self._generation += 1
        self.settings.authorization_delays.clear()
        self.faults.clear()
        self.throttler.reset()
        self.requests.reset()
        await self.quic.reconcile(self.world)
        return _json(200, {"reset": True})

    async def _c_requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return _json(200, {"requests": self.requests.since(since), "seq": self.requests.seq})

    async def _c_counters(self, request: web.Request) -> web.Response:
        return _json(200, self.requests.counters_dict())

    async def _c_counters_reset(self, request: web.Request) -> web.Response:
        self.requests.reset()
        return _json(200, {"reset": True})

    async def _c_settings(self, request: web.Request) -> web.Response:
        if request.method == "PUT":
            data = await self._json_body(request)
            if "provisioningSeconds" in data:
                self.settings.provisioning_seconds = max(0.0, float(data["provisioningSeconds"]))
            if "retryAfterSeconds" in data:
                self.settings.retry_after_seconds = max(0, int(data["retryAfterSeconds"]))
            if "tokenLifetimeSeconds" in data:
                self.identity.token_lifetime_seconds = max(1, int(data["tokenLifetimeSeconds"]))
            if "consistencyRate" in data:
                rate = float(data["consistencyRate"])
                if not 0 <= rate <= 1:
                    raise ValueError("consistencyRate is a probability (0..1)")
                self.settings.consistency_rate = rate
            if "consistencyNotFound" in data:
                self.settings.consistency_not_found = bool(data["consistencyNotFound"])
            if "operationExpirySeconds" in data:
                expiry = data["operationExpirySeconds"]
                self.settings.operation_expiry_seconds = None if expiry is None else float(expiry)
            if "policy" in data:
                policy = data["policy"]
                if not self.settings.policy_enabled and (
                    policy.get("tags") or policy.get("systemAssignedIdentity")
                ):
                    raise ValueError("the Azure Policy model is off (--no-policy)")
                self.settings.policy_tags = {str(k): str(v) for k, v in (policy.get("tags") or {}).items()}
                self.settings.policy_identity = bool(policy.get("systemAssignedIdentity", False))
            if "profile" in data or "timeScale" in data or "seed" in data:
                timing = self.settings.timing
                seed = data.get("seed", timing.seed)
                timing.configure(
                    str(data.get("profile", timing.profile)),
                    float(data.get("timeScale", timing.time_scale)),
                    None if seed is None else int(seed),
                )
                if "seed" in data:  # every random choice follows the seed, eventual consistency too
                    self.settings.consistency_rng = consistency_rng(None if seed is None else int(seed))
        return _json(
            200, self.settings.to_dict() | {"tokenLifetimeSeconds": self.identity.token_lifetime_seconds}
        )

    async def _c_throttling(self, request: web.Request) -> web.Response:
        if request.method == "PUT":
            self.throttler.configure(self.throttler.config.merged(await self._json_body(request)))
        return _json(200, self.throttler.snapshot())

    async def _c_throttling_refill(self, request: web.Request) -> web.Response:
        self.throttler.reset()
        return _json(200, self.throttler.snapshot())

    async def _c_faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            fault = self.faults.add(await self._json_body(request))
            return _json(201, fault.to_dict())
        if request.method == "DELETE":
            self.faults.clear()
        return _json(200, {"faults": [f.to_dict() for f in self.faults.faults]})

    async def _c_fault_delete(self, request: web.Request) -> web.Response:
        removed = self.faults.remove(request.match_info["fault_id"])
        return _json(200 if removed else 404, {"removed": removed})

    async def _c_operation_failures(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            data = await self._json_body(request)
            failure = {
                "operation": str(data["operation"]),
                "code": str(data.get("code", "InternalExecutionError")),
                "message": str(
                    data.get("message", "An internal execution error occurred. Please retry later.")
                ),
                "remaining": int(data.get("times", 1)) if data.get("times", 1) is not None else -1,
            }
            if "httpStatus" in data:
                failure["httpStatus"] = int(data["httpStatus"])
            self.world.operation_failures.append(failure)
        elif request.method == "DELETE":
            self.world.operation_failures.clear()
        return _json(200, {"operationFailures": self.world.operation_failures})

    async def _c_operations(self, request: web.Request) -> web.Response:
        return _json(200, {"operations": list(self.world.operations.values())})

    async def _c_subscriptions(self, request: web.Request) -> web.Response:
        data = await self._json_body(request)
        record = self.world.add_subscription(str(data["subscriptionId"]), self.identity.tenant_id)
        return _json(201, record)

    async def _c_resource_groups(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            data = await self._json_body(request)
            sub = str(data.get("subscriptionId", self.config.subscription_id))
            self.world.subscription(sub)
            record = self.world.add_resource_group(
                sub, str(data["name"]), str(data.get("location", self.config.location))
            )
            ready_after = float(data.get("readyAfterSeconds", 0))
            if ready_after > 0:  # ARM answers ResourceGroupNotFound while it is being created
                self.world.rg_ready_at[f"{sub}/{data['name']}".lower()] = time.time() + ready_after
            return _json(201, record)
        return _json(200, {"value": list(self.world.resource_groups.values())})

    async def _c_subnets(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            data = await self._json_body(request)
            sub = str(data.get("subscriptionId", self.config.subscription_id))
            rg = str(data.get("resourceGroup", DEFAULT_RESOURCE_GROUP))
            location = str(data.get("location", self.config.location))
            self.world.subscription(sub)
            if f"{sub}/{rg}".lower() not in self.world.resource_groups:
                self.world.add_resource_group(sub, rg, location)
            prefix = str(data.get("addressPrefix") or self.world.next_free_subnet_prefix())
            delegations = [str(d) for d in data.get("delegations") or []]
            record = self.world.add_subnet(
                sub, rg, str(data["virtualNetwork"]), str(data["name"]), prefix, location, delegations
            )
            return _json(201, record)
        return _json(200, {"value": list(self.world.subnets.values())})

    async def _c_gateways(self, request: web.Request) -> web.Response:
        """Virtual network gateways (Extended Network's prerequisite): add one to a VNet's GatewaySubnet, or remove."""
        sub = request.query.get("subscriptionId", self.config.subscription_id)
        if request.method == "POST":
            data = await self._json_body(request)
            sub = str(data.get("subscriptionId", sub))
            doc = gateways.add_gateway(
                self.world, sub, str(data.get("resourceGroup", DEFAULT_RESOURCE_GROUP)),
                str(data["virtualNetwork"]), str(data["name"]), str(data.get("location", self.config.location)),
                str(data.get("gatewayType", "Vpn")),
            )  # fmt: skip
            return _json(201, doc)
        if request.method == "DELETE":
            gone = gateways.remove(self.world, sub, request.match_info["rg"], "virtualNetworkGateways",
                                   request.match_info["name"])  # fmt: skip
            return _json(200 if gone else 404, {"deleted": gone})
        return _json(200, {"value": list(self.world.gateways.values())})

    async def _c_connections(self, request: web.Request) -> web.Response:
        """Gateway connections: add one (``connectionStatus`` Connected by default), change its status, remove."""
        sub = request.query.get("subscriptionId", self.config.subscription_id)
        if request.method == "POST":
            data = await self._json_body(request)
            doc = gateways.add_connection(
                self.world, str(data.get("subscriptionId", sub)), str(data.get("resourceGroup", DEFAULT_RESOURCE_GROUP)),
                str(data["name"]), str(data["gateway"]), str(data.get("connectionStatus", "Connected")),
                str(data.get("connectionType", "IPsec")),
            )  # fmt: skip
            return _json(201, doc)
        if request.method == "PATCH":
            data = await self._json_body(request)
            doc = gateways.set_connection_status(self.world, sub, request.match_info["rg"],
                                                 request.match_info["name"], str(data["connectionStatus"]))  # fmt: skip
            return _json(200, doc)
        if request.method == "DELETE":
            gone = gateways.remove(
                self.world, sub, request.match_info["rg"], "connections", request.match_info["name"]
            )
            return _json(200 if gone else 404, {"deleted": gone})
        return _json(200, {"value": list(self.world.connections.values())})

    async def _c_nic(self, request: web.Request) -> web.Response:
        """Change a NIC behind the operator's back (``enableIPForwarding``), as someone in the portal would."""
        sub = request.query.get("subscriptionId", self.config.subscription_id)
        data = await self._json_body(request)
        unknown = set(data) - {"enableIPForwarding"}
        if unknown:
            raise ValueError(f"unknown NIC fields {sorted(unknown)}; known: ['enableIPForwarding']")
        rg = self.world.resource_group(sub, request.match_info["rg"])["name"]
        nic_id = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/{request.match_info['name']}"
        nic = self.world.nics.get(key(nic_id))
        if nic is None:
            raise errors.resource_not_found(network.NIC_TYPE, request.match_info["name"], rg)
        nic["properties"]["enableIPForwarding"] = bool(data["enableIPForwarding"])
        nic["etag"] = f'W/"{uuid.uuid4()}"'
        self.world.touch()
        return _json(200, nic)

    async def _c_authorization_delays(self, request: web.Request) -> web.Response:
        """403 AuthorizationFailed for a principal on a scope for N seconds (role assignment propagation)."""
        data = await self._json_body(request)
        until = time.time() + float(data["seconds"])
        self.settings.authorization_delays.append((str(data["clientId"]), str(data["scope"]).lower(), until))
        return _json(201, {"clientId": data["clientId"], "scope": data["scope"], "until": until})

    async def _c_out_of_band(self, request: web.Request) -> web.Response:
        data = await self._json_body(request)
        vm = self._vm_from_request(request)
        args = {k: v for k, v in data.items() if k != "action"}
        others.out_of_band(self.world, vm, str(data["action"]), args)
        await self.quic.reconcile(self.world)
        gone = key(vm["id"]) not in self.world.vms
        return _json(200, {"deleted": True} if gone else compute.render_vm(self.world, vm))

    async def _c_sku_restrictions(self, request: web.Request) -> web.Response:
        """Restrict a VM size in a region for the subscription (Resource SKUs ``restrictions``)."""
        if request.method == "POST":
            data = await self._json_body(request)
            entry = f"{normalize_location(str(data['location']))}/{data['vmSize']}".lower()
            if entry not in self.world.sku_restrictions:
                self.world.sku_restrictions.append(entry)
                self.world.touch()
        elif request.method == "DELETE":
            self.world.sku_restrictions.clear()
            self.world.touch()
        return _json(200, {"value": list(self.world.sku_restrictions)})

    def _vm_from_request(self, request: web.Request) -> dict[str, Any]:
        sub = request.query.get("subscriptionId", self.config.subscription_id)
        return compute.find_vm(self.world, sub, request.match_info["rg"], request.match_info["vm"])

    async def _c_vms(self, request: web.Request) -> web.Response:
        out = []
        for vm_key, vm in sorted(self.world.vms.items()):
            g = self.world.guests.get(vm_key)
            running = self.quic.running.get(vm_key)
            out.append(
                {
                    "id": vm["id"],
                    "name": vm["name"],
                    "provisioningState": vm["properties"].get("provisioningState"),
                    "address": compute.vm_address(self.world, vm),
                    "quic": {"host": running[0], "port": self.quic.port, "thumbprint": running[1]}
                    if running
                    else None,
                    "guest": guest.public_guest(g) if g else None,
                }
            )
        return _json(200, {"value": out})

    async def _c_outside_vm(self, request: web.Request) -> web.Response:
        """A VM made by someone else (portal, Terraform, Bicep): :mod:`.outside`."""
        spec = outside.OutsideVM.from_json(await self._json_body(request))
        vm = outside.create(self.world, self.settings, self.origin, self.config.subscription_id, spec)
        await self.quic.reconcile(self.world)
        return _json(201, vm)

    async def _c_vm(self, request: web.Request) -> web.Response:
        """The VM as ARM's GET returns it, for a test to look at without entering the request log."""
        return _json(200, compute.render_vm(self.world, self._vm_from_request(request)))

    async def _c_guest(self, request: web.Request) -> web.Response:
        vm = self._vm_from_request(request)
        g = self.world.guests[key(vm["id"])]
        if request.method == "PATCH":
            guest.apply_guest_patch(g, await self._json_body(request), hotpatch=compute.hotpatch_enabled(vm))
            self.world.touch()
        return _json(200, guest.public_guest(g))

    async def _c_certificate(self, request: web.Request) -> web.Response:
        vm = self._vm_from_request(request)
        g = self.world.guests[key(vm["id"])]
        server_name = request.match_info["server_name"]
        remaining = [m for m in g["mappings"] if m["name"].lower() != server_name.lower()]
        if request.method == "DELETE":
            g["mappings"] = remaining
            self.world.touch()
            return _json(200, guest.public_guest(g))
        mapping, issued = guest.issue_mapping(server_name, await self._json_body(request))
        self.quic.issued[mapping["thumbprint"]] = issued
        g["mappings"] = [mapping, *remaining]
        guest.certstore.add_to_store(g, guest.certstore.entry_of(mapping))  # the mapped certificate is in My
        self.world.touch()
        await self.quic.reconcile(self.world)
        return _json(200, guest.public_mapping(mapping))

    async def _c_patch_settings(self, request: web.Request) -> web.Response:
        vm = self._vm_from_request(request)
        settings = await self._json_body(request)
        windows = vm["properties"].setdefault("osProfile", {}).setdefault("windowsConfiguration", {})
        windows["patchSettings"] = settings
        self.world.touch()
        return _json(200, compute.render_vm(self.world, vm))

    async def _c_guest_defaults(self, request: web.Request) -> web.Response:
        if request.method == "PUT":
            data = await self._json_body(request)
            unknown = set(data) - {"enableSmbQuic", "rebootPending", "availablePatches", "certificate", "hypervRole",
                                   "extendedNetworkAppliance", "monthKind", "nextInstallationFailure"}  # fmt: skip
            if unknown:
                raise ValueError(f"unknown guest default fields {sorted(unknown)}")
            self.world.guest_defaults = data
            self.world.touch()
        return _json(200, self.world.guest_defaults)

    async def _c_federated_token(self, request: web.Request) -> web.Response:
        data = await self._json_body(request)
        kwargs: dict[str, Any] = {}
        if "subject" in data:
            kwargs["subject"] = str(data["subject"])
        if "audience" in data:
            kwargs["audience"] = str(data["audience"])
        if "lifetimeSeconds" in data:
            kwargs["lifetime_seconds"] = int(data["lifetimeSeconds"])
        return _json(
            200,
            {"token": self.identity.mint_federated_token(**kwargs), "issuer": self.identity.workload_issuer},
        )

    async def _c_principals(self, request: web.Request) -> web.Response:
        from .identity import Principal

        if request.method == "POST":
            data = await self._json_body(request)
            data.setdefault("clientId", str(uuid.uuid4()))
            data.setdefault("clientSecret", secrets.token_urlsafe(24))
            principal = Principal.from_dict(data)
            self.identity.principals[principal.client_id] = principal
            self.world.touch()
            return _json(201, principal.to_dict())
        return _json(200, {"value": [p.to_dict() for p in self.identity.principals.values()]})

    async def _c_federated_credentials(self, request: web.Request) -> web.Response:
        data = await self._json_body(request)
        principal = self.identity.configure_federation(data, self.config.client_id)
        self.world.touch()
        return _json(200, principal)

    async def _c_issue_certificate(self, request: web.Request) -> web.Response:
        """Issue a certificate from the guests' CA without mapping it anywhere: what an issuer hands
        cert-manager (a TLS Secret) or Key Vault (an imported certificate). The key is in the answer."""
        from . import certs

        spec = certs.CertificateSpec.from_dict(await self._json_body(request))
        issued = certs.issue_certificate(spec)
        return _json(200, {"certPem": issued.cert_pem, "keyPem": issued.key_pem, "chainPem": issued.chain_pem,
                           "thumbprint": issued.thumbprint})  # fmt: skip

    def _vault(self, request: web.Request, create: bool = False) -> dict[str, Any]:
        from . import keyvault

        name = request.match_info["vault"].lower()
        if create and name not in self.world.key_vaults:
            self.world.key_vaults[name] = keyvault.new_vault(name)
            self.world.touch()
        if name not in self.world.key_vaults:
            raise KeyError(f"no vault {name}; create it with PUT /keyvaults/{name}")
        return self.world.key_vaults[name]

    async def _c_key_vault(self, request: web.Request) -> web.Response:
        """A vault (PUT creates it): its URL, role assignments, certificate versions (no keys)."""
        from . import keyvault

        vault = self._vault(request, create=request.method == "PUT")
        return _json(200, {**keyvault.public_vault(vault), "vaultUrl": await self._vault_site(vault["name"])})

    async def _c_key_vault_roles(self, request: web.Request) -> web.Response:
        """Grant (POST ``{principalId, role}``) or remove (DELETE) a role assignment on the vault."""
        from . import keyvault

        vault = self._vault(request)
        if request.method == "POST":
            data = await self._json_body(request)
            keyvault.grant(vault, str(data["principalId"]), str(data.get("role") or keyvault.SECRETS_USER))
        else:
            keyvault.revoke(vault, request.match_info["principal"])
        self.world.touch()
        return _json(200, keyvault.public_vault(vault))

    async def _c_key_vault_renew(self, request: web.Request) -> web.Response:
        """The certificate policy's AutoRenew lifetime action firing now: a new version."""
        from . import keyvault

        try:
            version = keyvault.renew(self._vault(request), request.match_info["name"])
        except keyvault.VaultError as err:
            return _json(err.status, err.body())
        self.world.touch()
        return _json(200, {"version": version["version"], "thumbprint": keyvault.thumbprint_of(version)})

    async def _c_quic(self, request: web.Request) -> web.Response:
        return _json(200, self.quic.describe(self.world))

    async def _c_workload_discovery(self, request: web.Request) -> web.Response:
        issuer = self.identity.workload_issuer
        return _json(
            200,
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}/openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            },
        )

    async def _c_workload_jwks(self, request: web.Request) -> web.Response:
        return _json(200, self.identity.workload_jwks())
