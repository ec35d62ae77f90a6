"""A small synchronous client for the simulator's control API (``/_simulator/...``), for tests and scripts.

Standard library only (urllib + ssl), trusting the simulator CA. Every method maps to one endpoint;
errors raise :class:`ControlError` with the HTTP status and the JSON body.
"""

from __future__ import annotations

import json
import os
import shlex
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ControlError(Exception):
    """A control API call failed."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"control API answered {status}: {body}")
        self.status = status
        self.body = body


def load_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse the ``KEY=value`` env file the simulator writes (shell-quoted values)."""
    env: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        parts = shlex.split(value)
        env[name.strip()] = parts[0] if parts else ""
    return env


class SimulatorControl:
    """Drive the simulator: faults, throttles, world, guests, request log."""

    def __init__(
        self,
        control_url: str,
        ca_path: str | os.PathLike[str],
        timeout: float = 30.0,
        token: str | None = None,
    ):
        self.base = control_url.rstrip("/")
        self._ssl = ssl.create_default_context(cafile=str(ca_path))
        self.timeout = timeout
        self.token = token  # needed from a non-loopback address (the simulator's --control-token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SimulatorControl:
        """From ``ARMSIM_CONTROL_URL``, ``ARMSIM_CA_CERT`` and ``ARMSIM_CONTROL_TOKEN`` (the env file's names)."""
        env = os.environ if env is None else env
        return cls(
            env["ARMSIM_CONTROL_URL"], env["ARMSIM_CA_CERT"], token=env.get("ARMSIM_CONTROL_TOKEN") or None
        )

    # --- transport ---------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None) -> Any:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, context=self._ssl, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ControlError(exc.code, parsed) from None
        return json.loads(raw) if raw else None

    @staticmethod
    def _vm_path(resource_group: str, vm: str) -> str:
        return f"/vms/{urllib.parse.quote(resource_group)}/{urllib.parse.quote(vm)}"

    # --- inspection --------------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Endpoint, identity, CA path, QUIC port, settings and throttling."""
        return self._call("GET", "/info")

    def env(self) -> dict[str, str]:
        """The env-file variables."""
        return self._call("GET", "/env")

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Request log entries after sequence number ``since``."""
        return self._call("GET", "/requests", query={"since": str(since)})["requests"]

    def accepted_vm_puts(self, name: str, since: int = 0) -> list[dict[str, Any]]:
        """The PUTs of VM ``name`` that Azure took (not refused, e.g. by a transient eventual-consistency
        429 the caller rightly sent again): how many times the VM was actually written."""
        return [
            r
            for r in self.requests(since)
            if r["method"] == "PUT" and r["path"].endswith(f"/virtualMachines/{name}") and r["status"] < 400
        ]

    def last_seq(self) -> int:
        """Sequence number of the latest logged request (use with ``requests(since=...)``)."""
        return int(self._call("GET", "/requests", query={"since": str(2**62)})["seq"])

    def counters(self) -> dict[str, Any]:
        """Per-operation counts, statuses and 429s."""
        return self._call("GET", "/counters")

    def count(self, operation: str, status: int | None = None) -> int:
        """How often ``operation`` was answered (optionally with ``status``)."""
        entry = self.counters()["operations"].get(operation)
        if entry is None:
            return 0
        return int(entry["count"] if status is None else entry["statuses"].get(str(status), 0))

    def throttled_count(self, operation: str | None = None) -> int:
        """429s for one operation, or in total."""
        counters = self.counters()
        if operation is None:
            return int(counters["throttledTotal"])
        return int(counters["operations"].get(operation, {}).get("throttled", 0))

    def reset_counters(self) -> None:
        """Clear counters and the request log."""
        self._call("POST", "/counters/reset")

    def operations(self) -> list[dict[str, Any]]:
        """All long-running operations the simulator has recorded."""
        return self._call("GET", "/operations")["operations"]

    def quic(self) -> dict[str, Any]:
        """The QUIC port and the running SMB-over-QUIC endpoints."""
        return self._call("GET", "/quic")

    def vms(self) -> list[dict[str, Any]]:
        """Every VM with its address, QUIC endpoint and guest."""
        return self._call("GET", "/vms")["value"]

    # --- world ---------------------------------------------------------------------------------------------

    def reset_world(self) -> None:
        """Back to the seeded world; also clears faults, throttle buckets, counters and the log."""
        self._call("POST", "/reset")

    def set_provisioning_seconds(self, seconds: float) -> None:
        self._call("PUT", "/settings", {"provisioningSeconds": seconds})

    def set_retry_after(self, seconds: int) -> None:
        """``Retry-After`` sent on LRO responses and polls."""
        self._call("PUT", "/settings", {"retryAfterSeconds": seconds})

    def set_timing(self, profile: str, time_scale: float = 1.0, seed: int | None = None) -> dict[str, Any]:
        """Timing profile ``"azure"`` (real durations, Retry-After 10-35 s or absent, scaled by
        ``time_scale``) or ``"instant"`` (provisioning seconds / retry-after as set). A ``seed`` reseeds
        the random choices."""
        body: dict[str, Any] = {"profile": profile, "timeScale": time_scale}
        if seed is not None:
            body["seed"] = seed
        return self._call("PUT", "/settings", body)

    def set_consistency_rate(self, rate: float, *, not_found: bool | None = None) -> None:
        """Probability of a transient eventual-consistency answer (429 RetryableError with a
        ReferencedResourceNotProvisioned detail) on writes that reference another resource; 0: off.
        ``not_found=True`` also lets a VM PUT get Network's 404 NotFound for its (existing) NIC at that
        rate (off by default: today's operator treats it as permanent)."""
        body: dict[str, Any] = {"consistencyRate": rate}
        if not_found is not None:
            body["consistencyNotFound"] = not_found
        self._call("PUT", "/settings", body)

    def expire_operations(self, after_seconds: float | None) -> None:
        """Operation status URLs (Azure-AsyncOperation and Location) answer 404 once the operation is
        older than this (None: never)."""
        self._call("PUT", "/settings", {"operationExpirySeconds": after_seconds})

    def set_policy(self, tags: dict[str, str] | None, system_assigned_identity: bool) -> None:
        """The Azure Policy model: tags appended to, and a system-assigned identity given to, every VM PUT."""
        self._call(
            "PUT",
            "/settings",
            {"policy": {"tags": tags or {}, "systemAssignedIdentity": system_assigned_identity}},
        )

    def delay_authorization(self, client_id: str, scope: str, seconds: float) -> None:
        """``403 AuthorizationFailed`` for that principal on that scope (an ARM id prefix) for the next
        ``seconds`` (role assignment propagation)."""
        self._call(
            "POST", "/authorization-delays", {"clientId": client_id, "scope": scope, "seconds": seconds}
        )

    def out_of_band(self, action: str, resource_group: str, vm: str, **args: Any) -> dict[str, Any]:
        """A change made by someone else: ``delete``, ``resize`` (size=), ``remove-nic`` (nic_id=),
        ``set-tags`` (tags= replaces the VM's tags), ``stop`` (deallocate: bool = True), ``start``."""
        return self._call("POST", f"/vms/{resource_group}/{vm}/out-of-band", {"action": action, **args})

    def set_token_lifetime(self, seconds: int) -> None:
        self._call("PUT", "/settings", {"tokenLifetimeSeconds": seconds})

    def add_subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._call("POST", "/subscriptions", {"subscriptionId": subscription_id})

    def add_resource_group(
        self,
        name: str,
        location: str | None = None,
        subscription_id: str | None = None,
        ready_after_seconds: float = 0,
    ) -> dict[str, Any]:
        """Add a resource group; ARM answers ``404 ResourceGroupNotFound`` for it until
        ``ready_after_seconds`` have passed (a group still being created)."""
        body: dict[str, Any] = {"name": name, "readyAfterSeconds": ready_after_seconds}
        if location:
            body["location"] = location
        if subscription_id:
            body["subscriptionId"] = subscription_id
        return self._call("POST", "/resource-groups", body)

    def add_subnet(
        self,
        virtual_network: str,
        name: str,
        address_prefix: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        subscription_id: str | None = None,
    ) -> str:
        """Register a subnet (creating its resource group if needed); returns the subnet id.

        Without ``address_prefix`` the simulator picks a free /24 of its own loopback block, so the
        guests' SMB over QUIC endpoints cannot collide with another simulator's.
        """
        body: dict[str, Any] = {"virtualNetwork": virtual_network, "name": name}
        for field_name, value in (
            ("addressPrefix", address_prefix),
            ("resourceGroup", resource_group),
            ("location", location),
            ("subscriptionId", subscription_id),
        ):
            if value:
                body[field_name] = value
        return str(self._call("POST", "/subnets", body)["id"])

    def delegate_subnet(self, virtual_network: str, name: str, service: str, address_prefix: str | None = None,
                        resource_group: str | None = None) -> str:  # fmt: skip
        """Register a subnet delegated to ``service`` (e.g. ``Microsoft.Web/serverFarms``); returns its id."""
        body: dict[str, Any] = {"virtualNetwork": virtual_network, "name": name, "delegations": [service]}
        for field_name, value in (("addressPrefix", address_prefix), ("resourceGroup", resource_group)):
            if value:
                body[field_name] = value
        return str(self._call("POST", "/subnets", body)["id"])

    # --- Extended Network: gateways, connections, NICs ------------------------------------------------------

    def gateways(self) -> list[dict[str, Any]]:
        return self._call("GET", "/virtual-network-gateways")["value"]

    def add_gateway(self, virtual_network: str, name: str, resource_group: str | None = None,
                    gateway_type: str = "Vpn") -> dict[str, Any]:  # fmt: skip
        """A virtual network gateway in ``virtual_network``'s GatewaySubnet (which must exist)."""
        body: dict[str, Any] = {"virtualNetwork": virtual_network, "name": name, "gatewayType": gateway_type}
        if resource_group:
            body["resourceGroup"] = resource_group
        return self._call("POST", "/virtual-network-gateways", body)

    def remove_gateway(self, resource_group: str, name: str) -> None:
        """Delete a gateway and its connections."""
        self._call("DELETE", f"/virtual-network-gateways/{resource_group}/{name}")

    def connections(self) -> list[dict[str, Any]]:
        return self._call("GET", "/connections")["value"]

    def add_connection(self, name: str, gateway: str, status: str = "Connected",
                       resource_group: str | None = None) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {"name": name, "gateway": gateway, "connectionStatus": status}
        if resource_group:
            body["resourceGroup"] = resource_group
        return self._call("POST", "/connections", body)

    def set_connection_status(self, resource_group: str, name: str, status: str) -> dict[str, Any]:
        """Connected, NotConnected, Connecting or Unknown (a tunnel that drops, or comes back)."""
        return self._call("PATCH", f"/connections/{resource_group}/{name}", {"connectionStatus": status})

    def remove_connection(self, resource_group: str, name: str) -> None:
        self._call("DELETE", f"/connections/{resource_group}/{name}")

    def set_nic_ip_forwarding(self, resource_group: str, nic: str, enabled: bool) -> dict[str, Any]:
        """Turn a NIC's enableIPForwarding on or off behind the operator's back."""
        return self._call("PATCH", f"/nics/{resource_group}/{nic}", {"enableIPForwarding": enabled})

    def restrict_sku(self, location: str, vm_size: str) -> list[str]:
        """Make ``vm_size`` unavailable in ``location`` (VM PUT: 409 SkuNotAvailable; Resource SKUs lists
        the restriction)."""
        return self._call("POST", "/sku-restrictions", {"location": location, "vmSize": vm_size})["value"]

    # --- faults and throttling ---------------------------------------------------------------------------

    def inject_fault(
        self,
        *,
        method: str = "*",
        path_regex: str = ".*",
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        latency_seconds: float = 0.0,
        drop: bool = False,
        times: int | None = 1,
        operation: str | None = None,
        details: list[dict[str, Any]] | None = None,
        additional_info: list[dict[str, Any]] | None = None,
    ) -> str:
        """Add a fault; returns its id. ``times=None`` keeps it until removed. ``details`` and
        ``additional_info`` become ARM's ``error.details`` and ``error.additionalInfo``."""
        body: dict[str, Any] = {
            "method": method,
            "pathRegex": path_regex,
            "latencySeconds": latency_seconds,
            "drop": drop,
            "times": times,
        }
        for field_name, value in (
            ("status", status),
            ("code", code),
            ("message", message),
            ("operation", operation),
            ("details", details),
            ("additionalInfo", additional_info),
        ):
            if value is not None:
                body[field_name] = value
        if headers:
            body["headers"] = dict(headers)
        return str(self._call("POST", "/faults", body)["id"])

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")["faults"]

    def remove_fault(self, fault_id: str) -> None:
        self._call("DELETE", f"/faults/{fault_id}")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def fail_operation(
        self,
        operation: str,
        code: str = "InternalExecutionError",
        message: str | None = None,
        times: int | None = 1,
        http_status: int | None = None,
    ) -> None:
        """Make the next ``times`` LROs of ``operation`` end in ``Failed`` with ``code``."""
        body: dict[str, Any] = {"operation": operation, "code": code, "times": times}
        if message:
            body["message"] = message
        if http_status:
            body["httpStatus"] = http_status
        self._call("POST", "/operation-failures", body)

    def clear_operation_failures(self) -> None:
        self._call("DELETE", "/operation-failures")

    def configure_throttling(
        self, enabled: bool | None = None, **buckets: Mapping[str, float]
    ) -> dict[str, Any]:
        """Turn throttling on/off and/or change buckets, e.g. ``vmUpdate={"capacity": 2, "refillPerMinute": 60}``.

        Buckets: subscriptionReads, subscriptionWrites, vmGet, vmUpdate, vmGuestPatch.
        """
        body: dict[str, Any] = {"buckets": {k: dict(v) for k, v in buckets.items()}}
        if enabled is not None:
            body["enabled"] = enabled
        return self._call("PUT", "/throttling", body)

    def refill_buckets(self) -> None:
        self._call("POST", "/throttling/refill")

    def throttling(self) -> dict[str, Any]:
        return self._call("GET", "/throttling")

    # --- guests ----------------------------------------------------------------------------------------------

    def vm_document(self, resource_group: str, vm: str) -> dict[str, Any]:
        """The VM as ARM's GET returns it (tags, vmId, patch settings), without entering the request log:
        a test counting the operator's calls can look at Azure as often as it likes."""
        return self._call("GET", self._vm_path(resource_group, vm))

    def create_outside_vm(self, name: str, sku: str, **fields: Any) -> dict[str, Any]:
        """A VM made outside the operator, as the portal, Terraform or Bicep leave it (:mod:`.outside`):
        ``hotpatch``, ``patchSettings``, ``publicIp``, ``tags``, ``resourceGroup``, ``vmSize``, ``version``,
        ``subnetId``, ``nicName``, ... (camelCase, as the control API takes them). Returns the VM as GET does."""
        return self._call("POST", "/outside-vms", {"name": name, "sku": sku, **fields})

    def guest(self, resource_group: str, vm: str) -> dict[str, Any]:
        return self._call("GET", self._vm_path(resource_group, vm) + "/guest")

    def set_guest(self, resource_group: str, vm: str, **fields: Any) -> dict[str, Any]:
        """Change the guest: enableSmbQuic, rebootPending, availablePatches, nextAssessmentFailure,
        nextInstallationFailure, nextRunCommandStdErr, assessment, installation, hypervRole (bool),
        extendedNetworkAppliance (Running, Off, Saved, Paused, Starting, NotInstalled), monthKind (Hotpatch or
        Baseline: what a Hotpatch VM's critical/security patches cost, NeverReboots or AlwaysRequiresReboot)."""
        return self._call("PATCH", self._vm_path(resource_group, vm) + "/guest", fields)

    def set_certificate(
        self, resource_group: str, vm: str, server_name: str, spec: Any = None
    ) -> dict[str, Any]:
        """Issue a real certificate (``CertificateSpec`` or its camelCase dict) and map it to ``server_name``."""
        if spec is None:
            body: dict[str, Any] = {}
        elif isinstance(spec, Mapping):
            body = dict(spec)
        else:
            body = spec.to_dict()
        path = self._vm_path(resource_group, vm) + "/guest/certificates/" + urllib.parse.quote(server_name)
        return self._call("PUT", path, body)

    def issue_certificate(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """A certificate from the guests' CA, mapped nowhere: ``certPem``, ``keyPem``, ``chainPem``, ``thumbprint``."""
        return self._call("POST", "/certificate-authority/issue", dict(spec))

    def key_vault(self, name: str, create: bool = False) -> dict[str, Any]:
        """A vault of the simulated Key Vault (``create``: make it); ``vaultUrl`` is its data-plane URL."""
        return self._call("PUT" if create else "GET", f"/keyvaults/{urllib.parse.quote(name)}")

    def grant_key_vault_role(
        self, vault: str, principal_id: str, role: str = "Key Vault Secrets User"
    ) -> dict[str, Any]:
        return self._call("POST", f"/keyvaults/{urllib.parse.quote(vault)}/role-assignments",
                          {"principalId": principal_id, "role": role})  # fmt: skip

    def revoke_key_vault_roles(self, vault: str, principal_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/keyvaults/{urllib.parse.quote(vault)}/role-assignments/{principal_id}")

    def renew_key_vault_certificate(self, vault: str, name: str) -> dict[str, Any]:
        """The AutoRenew lifetime action firing now: a new version (``version``, ``thumbprint``)."""
        return self._call(
            "POST", f"/keyvaults/{urllib.parse.quote(vault)}/certificates/{urllib.parse.quote(name)}/renew"
        )

    def remove_certificate(self, resource_group: str, vm: str, server_name: str) -> None:
        path = self._vm_path(resource_group, vm) + "/guest/certificates/" + urllib.parse.quote(server_name)
        self._call("DELETE", path)

    def set_patch_settings(
        self, resource_group: str, vm: str, patch_settings: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Replace osProfile.windowsConfiguration.patchSettings without an ARM call (behind the operator's back)."""
        return self._call("PUT", self._vm_path(resource_group, vm) + "/patch-settings", dict(patch_settings))

    def set_guest_defaults(self, **defaults: Any) -> dict[str, Any]:
        """Guest of new VMs: enableSmbQuic, rebootPending, availablePatches, certificate (spec + serverName)."""
        return self._call("PUT", "/guest-defaults", defaults)

    # --- identity ----------------------------------------------------------------------------------------

    def mint_federated_token(
        self, subject: str | None = None, audience: str | None = None, lifetime_seconds: int | None = None
    ) -> str:
        body: dict[str, Any] = {}
        if subject:
            body["subject"] = subject
        if audience:
            body["audience"] = audience
        if lifetime_seconds is not None:
            body["lifetimeSeconds"] = lifetime_seconds
        return str(self._call("POST", "/identity/federated-tokens", body)["token"])

    def add_federated_credential(
        self,
        issuer: str,
        subject: str,
        *,
        audiences: list[str] | None = None,
        issuer_ca_pem: str | None = None,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """Trust a cluster's service-account tokens (issuer, subject) for an app (default: the default app)."""
        body: dict[str, Any] = {"issuer": issuer, "subject": subject}
        if audiences:
            body["audiences"] = audiences
        if issuer_ca_pem:
            body["issuerCaPem"] = issuer_ca_pem
        if client_id:
            body["clientId"] = client_id
        return self._call("POST", "/identity/federated-credentials", body)

    def add_principal(self, **fields: Any) -> dict[str, Any]:
        """Register an app: clientId, clientSecret, federatedCredentials=[{issuer, subject, audiences}]."""
        return self._call("POST", "/identity/principals", fields)
