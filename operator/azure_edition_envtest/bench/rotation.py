"""The rotation scenario: SMB over QUIC certificates renewed in their source, measured end to end.

One VM with ``spec.smbOverQuic.certificate.secretRef`` against the simulator on Azure's timing (managed
Run Command 20-60 s, Retry-After as Azure sends it) with every clock, the check interval included,
multiplied by ``time_scale``. Each repetition writes a renewed certificate into the TLS Secret (what
cert-manager does) and measures the seconds until ``status.smbOverQuic.thumbprint`` (read by the
operator's QUIC probe, i.e. what clients get) names it, and the ARM requests the rotation cost. Target:
one check interval plus the two Run Commands (import, map), scaled.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from pathlib import Path
from typing import Any

from azure_edition_operator.azure.settings import AzureSettings

from .fleet import secret_manifest, vm_spec
from .harness import processes, start_operator, start_simulator
from .kubeclient import GROUP, VERSION, Kube, vms_path
from .measure import summary

SERVER = "fs01.bench.contoso.com"
TLS_SECRET = "bench-smb-tls"
PRODUCTION_CHECK_SECONDS = 600  # spec.checkInterval's default
RUN_COMMAND_SLOWEST_SECONDS = 60  # the simulator's Azure profile: runCommand.put 20-60 s
KEY_VAULT_POLLING_SECONDS = 3600  # the Key Vault extension's default pollingIntervalInS
KEY_VAULT_CERTIFICATE = "fs01-smb"
# ARM requests a rotation makes (the rest of the window is the routine VM GET of each check round).
ROTATION_OPERATIONS = ("VirtualMachineRunCommands_", "VirtualMachines_RunCommand", "Compute_GetOperation")


def tls_secret(namespace: str, issued: dict[str, Any]) -> dict[str, Any]:
    pem = {"tls.crt": issued["certPem"] + issued["chainPem"], "tls.key": issued["keyPem"]}
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": TLS_SECRET, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in pem.items()},
    }  # fmt: skip


async def served(kube: Kube, namespace: str, name: str) -> str | None:
    obj = await kube.call("GET", vms_path(namespace, name))
    return ((obj.get("status") or {}).get("smbOverQuic") or {}).get("thumbprint")


async def wait_served(kube: Kube, namespace: str, name: str, thumbprint: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await served(kube, namespace, name) == thumbprint:
            return True
        await asyncio.sleep(0.1)
    return False


async def rotation(
    kube: Kube,
    kubeconfig: Path,
    work: Path,
    *,
    reps: int,
    time_scale: float,
    fleet: Any,
    operator_env: dict[str, str] | None = None,
    source: str = "secret",
) -> dict[str, Any]:
    """``reps`` renewals of one VM's certificate source (``secret``: a TLS Secret rewritten; ``keyvault``:
    the Key Vault certificate's AutoRenew action firing); seconds to served and ARM requests per rotation."""
    namespace, name = f"rotation-{source}", "smb-rotation"
    check_seconds = max(5.0, PRODUCTION_CHECK_SECONDS * time_scale)  # checkInterval's floor is 5 s
    budget = check_seconds + 2 * RUN_COMMAND_SLOWEST_SECONDS * time_scale
    if source == "keyvault":  # the extension polls at its production default, scaled like the rest
        budget += KEY_VAULT_POLLING_SECONDS * time_scale
    args = [
        "--profile",
        "azure",
        "--time-scale",
        f"{time_scale:g}",
        "--seed",
        "26",
        "--consistency-rate",
        "0",
    ]
    poll = AzureSettings.model_fields["polling_interval"].default
    samples: list[float] = []
    calls: list[int] = []
    writes: list[int] = []
    failures = 0
    with processes() as group:
        simulator = start_simulator(group, work, provisioning_seconds=0, retry_after=0, extra_args=args)
        quic_port = int(simulator.env["ARMSIM_QUIC_PORT"])
        await kube.create_namespace(namespace)
        await kube.create(f"/api/v1/namespaces/{namespace}/secrets", secret_manifest(namespace))
        issued = await asyncio.to_thread(
            simulator.control.issue_certificate, {"commonName": SERVER, "expiresInDays": 90}
        )
        await kube.create(f"/api/v1/namespaces/{namespace}/secrets", tls_secret(namespace, issued))
        start_operator(group, work, kubeconfig, simulator, namespace, **{
            **(operator_env or {}), "AEO_IN_GUEST_MIN_INTERVAL": "1", "AZURE_POLLING_INTERVAL": f"{poll * time_scale:g}",
        })  # fmt: skip
        spec = vm_spec(fleet)
        vault = None
        if source == "keyvault":
            vault, _ = await asyncio.to_thread(_key_vault, simulator)
            certificate: dict[str, Any] = {"keyVault": {
                "secretUrl": f"{vault['vaultUrl']}/secrets/{KEY_VAULT_CERTIFICATE}",
                "pollingIntervalSeconds": KEY_VAULT_POLLING_SECONDS,
            }}  # fmt: skip
            issued = {"thumbprint": vault["certificates"][KEY_VAULT_CERTIFICATE][-1]["thumbprint"]}
        else:
            certificate = {"secretRef": {"name": TLS_SECRET}}
        spec.update({
            "capabilities": ["SMBOverQUIC"], "checkInterval": f"{check_seconds:.0f}s",
            "smbOverQuic": {"serverName": SERVER, "port": quic_port, "certificate": certificate},
        })  # fmt: skip
        spec["azure"]["publicIP"] = True
        spec.pop("hotpatch", None)
        await kube.create(vms_path(namespace), {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "AzureEditionVM",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec,
        })  # fmt: skip
        first_ready = time.monotonic()
        if vault is not None:  # grant the VM's identity the role the condition names (what an admin does)
            await _grant_named_role(kube, simulator, vault["name"], namespace, name, 300 + budget)
        if not await wait_served(kube, namespace, name, issued["thumbprint"], 300 + budget):
            raise RuntimeError("the Secret's first certificate was never served")
        first_seconds = time.monotonic() - first_ready
        for _ in range(reps):
            if vault is None:
                renewed = await asyncio.to_thread(
                    simulator.control.issue_certificate, {"commonName": SERVER, "expiresInDays": 90}
                )
            mark = await asyncio.to_thread(simulator.control.last_seq)
            started = time.monotonic()
            if vault is not None:
                renewed = await asyncio.to_thread(
                    simulator.control.renew_key_vault_certificate, vault["name"], KEY_VAULT_CERTIFICATE
                )
            else:
                await kube.call("PUT", f"/api/v1/namespaces/{namespace}/secrets/{TLS_SECRET}",
                                tls_secret(namespace, renewed))  # fmt: skip
            if await wait_served(kube, namespace, name, renewed["thumbprint"], budget * 3):
                samples.append(time.monotonic() - started)
                requests = await asyncio.to_thread(simulator.control.requests, mark)
                rotation_requests = [r for r in requests if r["operation"].startswith(ROTATION_OPERATIONS)]
                calls.append(len(rotation_requests))
                writes.append(sum(1 for r in rotation_requests if r["method"] != "GET"))
            else:
                failures += 1
        group.stop_all()
    await kube.purge_vms(namespace)
    return {
        "source": source,
        "timeScale": time_scale,
        "checkIntervalSeconds": check_seconds,
        "budgetSeconds": round(budget, 2),
        "reps": reps,
        "failures": failures,
        "firstMappingSeconds": round(first_seconds, 2),
        "renewalToServedSeconds": summary(samples),
        "samples": [round(s, 2) for s in samples],
        "armRequestsPerRotation": summary([float(c) for c in calls]),
        "armWritesPerRotation": summary([float(w) for w in writes]),
    }


def _key_vault(simulator: Any) -> tuple[dict[str, Any], Any]:
    """A vault with an auto-renewing certificate for SERVER, made through azure-keyvault-certificates."""
    from azure.identity import ClientSecretCredential
    from azure.keyvault.certificates import CertificateClient, CertificatePolicy

    env, control = simulator.env, simulator.control
    vault = control.key_vault("kv-bench", create=True)
    credential = ClientSecretCredential(
        env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
        authority=env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True, connection_verify=env["ARMSIM_CA_CERT"],
    )  # fmt: skip
    certificates = CertificateClient(vault["vaultUrl"], credential, verify_challenge_resource=False,
                                     connection_verify=env["ARMSIM_CA_CERT"])  # fmt: skip
    policy = CertificatePolicy(issuer_name="Self", subject=f"CN={SERVER}", san_dns_names=[SERVER])
    certificates.begin_create_certificate(KEY_VAULT_CERTIFICATE, policy).result()
    return control.key_vault("kv-bench"), certificates


async def _grant_named_role(
    kube: Kube, simulator: Any, vault: str, namespace: str, name: str, within: float
) -> None:
    """Wait for the SMB condition to name the missing role and the VM's principal, then grant it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        obj = await kube.call("GET", vms_path(namespace, name))
        conditions = (obj.get("status") or {}).get("conditions") or []
        message = next(
            (c.get("message", "") for c in conditions if c["type"] == "SMBOverQUICCertificateValid"), ""
        )
        found = re.search(r"principal ([0-9a-f-]{36})", message)
        if found:
            await asyncio.to_thread(simulator.control.grant_key_vault_role, vault, found.group(1))
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the SMB condition never named the VM's identity")


def lines(result: dict[str, Any]) -> list[str]:
    seconds, calls = result["renewalToServedSeconds"], result["armRequestsPerRotation"]
    return [
        f"  rotation from {result['source']} (time scale {result['timeScale']:g}, check interval {result['checkIntervalSeconds']:g} s): "
        f"renewal -> served p50 {seconds['p50']} s, max {seconds.get('max')} s "
        f"(budget {result['budgetSeconds']} s), {result['failures']} failed of {result['reps']}",
        f"  ARM requests per rotation p50 {calls['p50']} (writes p50 {result['armWritesPerRotation']['p50']})",
    ]
