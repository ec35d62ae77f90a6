"""SMB over QUIC certificate rotation from a kubernetes.io/tls Secret, end to end: real API server,
operator process, ARM simulator (Azure's timing scaled like the rest of e2e) and real QUIC.

A renewal written into the Secret (what cert-manager does) reaches the guest's store through a managed
Run Command's protected parameters, is mapped, the replaced mapping is removed, clients get the new
certificate within one check interval plus the two Run Commands, and Ready never goes False. No key
material appears in the operator's log (DEBUG), Events, status or metrics."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from azure_edition_envtest.stack import Process, operator_env, start_operator
from tests.e2e.operator_stack import (  # noqa: F401
    E2E_TIME_SCALE,
    RG,
    condition,
    control,
    get,
    simulator,
    vm_name,
    wait_for,
)
from tests.e2e.test_checks import apply_sample, events, vm_reads

SERVER = "fs02.branch-a.contoso.com"
SECRET = "fs02-tls"
CHECK_SECONDS = 5.0
# Two managed Run Commands (import, map) at Azure's 20-60 s each, scaled, plus polling and one interval.
ROTATION_BUDGET_SECONDS = CHECK_SECONDS + 2 * 60 * E2E_TIME_SCALE + 15
# Key Vault: the extension's polling interval (scaled by the simulator) plus one check interval, plus the
# two Run Commands (read the store, map) and polling.
POLL_SECONDS = 60
KEY_VAULT_BUDGET_SECONDS = POLL_SECONDS * E2E_TIME_SCALE + CHECK_SECONDS + 2 * 60 * E2E_TIME_SCALE + 15


@pytest.fixture(scope="module")
def debug_operator(crd, kubeconfig, simulator, tmp_path_factory) -> Iterator[Process]:
    """An operator logging at DEBUG (the secrets test reads every line)."""
    # The in-guest look every 10 s (production: 6 h) so drift in the guest is seen within the test.
    env = operator_env(kubeconfig, simulator[1], AEO_IN_GUEST_MIN_INTERVAL="1", AEO_IN_GUEST_INTERVAL="10",
                       AEO_LOG_LEVEL="DEBUG")  # fmt: skip
    proc = start_operator(tmp_path_factory.mktemp("op") / "operator.log", env)
    yield proc
    proc.stop()


def issue(control, days: int) -> dict:
    """A certificate for SERVER from the simulator's guest CA (the operator's trust bundle), as an ACME or
    internal issuer would hand cert-manager."""
    return control.issue_certificate({"commonName": SERVER, "expiresInDays": days})


def put_secret(kubectl, namespace: str, issued: dict, tmp: Path) -> None:
    crt, key = tmp / "tls.crt", tmp / "tls.key"
    crt.write_text(issued["certPem"] + issued["chainPem"])
    key.write_text(issued["keyPem"])
    manifest = kubectl("create", "secret", "tls", SECRET, "-n", namespace, f"--cert={crt}", f"--key={key}",
                       "--dry-run=client", "-o", "yaml").stdout  # fmt: skip
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    key.unlink()


class ReadyWatch:
    """Samples the object's Ready condition in the background; remembers every status it saw."""

    def __init__(self, kubectl, namespace: str) -> None:
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(kubectl, namespace), daemon=True)
        self._thread.start()

    def _run(self, kubectl, namespace: str) -> None:
        while not self._stop.is_set():
            ready = condition(get(kubectl, namespace, "smb-over-quic"), "Ready") or {}
            self.seen.append(str(ready.get("status")))
            self._stop.wait(0.3)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.seen


def test_a_renewed_tls_secret_is_served_without_ready_going_false(
    debug_operator, kubectl, namespace, control, simulator, tmp_path
):  # fmt: skip
    first = issue(control, 90)
    put_secret(kubectl, namespace, first, tmp_path)
    apply_sample(kubectl, namespace, "smb-over-quic",
                 smbOverQuic={"serverName": SERVER, "certificate": {"secretRef": {"name": SECRET}}})  # fmt: skip
    obj = wait_for(
        lambda: (o := get(kubectl, namespace, "smb-over-quic")).get("status", {}).get("smbOverQuic", {}).get(
            "thumbprint") == first["thumbprint"] and (condition(o, "Ready") or {}).get("status") == "True" and o,
        timeout=120, what="the Secret's first certificate served and Ready",
    )  # fmt: skip
    name = vm_name(obj)
    smb = obj["status"]["smbOverQuic"]
    assert smb["certificateSource"] == f"Secret/{SECRET}" and smb["lastRotated"], smb

    watch = ReadyWatch(kubectl, namespace)
    second = issue(control, 180)
    renewed_at = time.monotonic()
    put_secret(kubectl, namespace, second, tmp_path)
    wait_for(
        lambda: get(kubectl, namespace, "smb-over-quic")["status"]["smbOverQuic"].get("thumbprint")
        == second["thumbprint"],
        timeout=ROTATION_BUDGET_SECONDS + 30, every=0.2, what="the renewed certificate served",
    )  # fmt: skip
    seconds = time.monotonic() - renewed_at
    after = control.last_seq()  # one more whole round: Ready must stay True after the rotation too
    wait_for(
        lambda: len(vm_reads(control, name, after)) >= 2, timeout=3 * CHECK_SECONDS, what="one more round"
    )
    seen = watch.stop()
    print(f"\nrenewal to new certificate served: {seconds:.1f} s (budget {ROTATION_BUDGET_SECONDS:.0f} s)")
    assert seconds <= ROTATION_BUDGET_SECONDS
    assert seen and set(seen) == {"True"}, seen
    guest = control.guest(RG, name)
    assert [(m["name"], m["thumbprint"]) for m in guest["mappings"]] == [(SERVER, second["thumbprint"])]
    rotated = events(kubectl, namespace, "SMBOverQUICCertificateRotated")
    assert any(
        second["thumbprint"] in e["message"] and first["thumbprint"] in e["message"] for e in rotated
    ), rotated

    # no key material anywhere the operator speaks
    said = "\n".join([
        Path(debug_operator.log).read_text(),
        kubectl("get", "events", "-n", namespace, "-o", "json").stdout,
        json.dumps(get(kubectl, namespace, "smb-over-quic")["status"]),
        urllib.request.urlopen(f"http://{debug_operator.extra['metrics']}/metrics", timeout=5).read().decode(),
    ])  # fmt: skip
    for issued in (first, second):
        body = "".join(issued["keyPem"].splitlines()[1:-1])
        for i in range(0, len(body) - 32, 32):
            assert body[i : i + 32] not in said
    assert "PRIVATE KEY" not in said
    assert re.search(r"MII[A-Za-z0-9+/]{100,}", said) is None  # no PFX or other DER blob, base64


def test_key_vault_renewal_is_served_and_a_missing_role_is_named_then_heals(
    debug_operator, kubectl, namespace, control, simulator
):  # fmt: skip
    """Key Vault source: the VM's identity first lacks the role (condition names role + vault, then heals
    when granted); a renewal in Key Vault is served within the extension's polling interval plus one
    check interval (plus the two Run Commands), the old mapping goes, and Ready never goes False."""
    from azure.identity import ClientSecretCredential
    from azure.keyvault.certificates import CertificateClient, CertificatePolicy

    env = simulator[1]
    vault = control.key_vault(f"kv-{namespace[-6:]}", create=True)
    credential = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
                                        authority=env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True,
                                        connection_verify=env["ARMSIM_CA_CERT"])  # fmt: skip
    certificates = CertificateClient(vault["vaultUrl"], credential, verify_challenge_resource=False,
                                     connection_verify=env["ARMSIM_CA_CERT"])  # fmt: skip
    certificates.begin_create_certificate(
        "fs02-smb", CertificatePolicy(issuer_name="Self", subject=f"CN={SERVER}", san_dns_names=[SERVER])
    ).result()
    secret_url = f"{vault['vaultUrl']}/secrets/fs02-smb"
    apply_sample(kubectl, namespace, "smb-over-quic", smbOverQuic={
        "serverName": SERVER,
        "certificate": {"keyVault": {"secretUrl": secret_url, "pollingIntervalSeconds": POLL_SECONDS}},
    })  # fmt: skip

    def smb_message() -> str:
        return (condition(get(kubectl, namespace, "smb-over-quic"), "SMBOverQUICCertificateValid") or {}).get(
            "message", "")  # fmt: skip

    message = wait_for(lambda: "Key Vault Secrets User" in (m := smb_message()) and m, timeout=180,
                       what="the missing role named in the SMB condition")  # fmt: skip
    assert vault["vaultUrl"].split("://")[1] in message
    principal = re.search(r"principal ([0-9a-f-]{36})", message).group(1)
    assert events(kubectl, namespace, "SMBOverQUICCertificateNotRotated")

    control.grant_key_vault_role(vault["name"], principal)
    first = control.key_vault(vault["name"])["certificates"]["fs02-smb"][-1]["thumbprint"]
    wait_for(
        lambda: (o := get(kubectl, namespace, "smb-over-quic"))["status"].get("smbOverQuic", {}).get("thumbprint")
        == first and (condition(o, "Ready") or {}).get("status") == "True",
        timeout=120, what="healed: the Key Vault certificate served and Ready",
    )  # fmt: skip
    assert "Key Vault Secrets User" not in smb_message()

    watch = ReadyWatch(kubectl, namespace)
    renewed_at = time.monotonic()
    renewed = control.renew_key_vault_certificate(vault["name"], "fs02-smb")["thumbprint"]
    wait_for(
        lambda: get(kubectl, namespace, "smb-over-quic")["status"]["smbOverQuic"].get("thumbprint") == renewed,
        timeout=KEY_VAULT_BUDGET_SECONDS + 30, every=0.2, what="the renewed Key Vault certificate served",
    )  # fmt: skip
    seconds = time.monotonic() - renewed_at
    name = vm_name(get(kubectl, namespace, "smb-over-quic"))
    after = control.last_seq()  # one more whole round: Ready must stay True after the renewal too
    wait_for(
        lambda: len(vm_reads(control, name, after)) >= 2, timeout=3 * CHECK_SECONDS, what="one more round"
    )
    seen = watch.stop()
    print(
        f"\nKey Vault renewal to new certificate served: {seconds:.1f} s (budget {KEY_VAULT_BUDGET_SECONDS:.0f} s)"
    )
    assert seconds <= KEY_VAULT_BUDGET_SECONDS
    assert seen and set(seen) == {"True"}, seen
    assert [(m["name"], m["thumbprint"]) for m in control.guest(RG, name)["mappings"]] == [(SERVER, renewed)]


def test_declared_client_access_is_applied_edited_drift_corrected_and_enforced(
    debug_operator, kubectl, namespace, control
):  # fmt: skip
    import asyncio

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    from tests.integration.test_simulator_client_access import client_certificate, verdict

    allowed, blocked = client_certificate("laptop-1"), client_certificate("laptop-2")

    def sha(issued) -> str:
        return (
            x509.load_pem_x509_certificate(issued.cert_pem.encode())
            .fingerprint(hashes.SHA256())
            .hex()
            .upper()
        )

    apply_sample(kubectl, namespace, "smb-over-quic", smbOverQuic={
        "serverName": SERVER, "clientAccess": {"allow": [{"sha256": sha(allowed)}]},
    })  # fmt: skip
    obj = wait_for(lambda: (condition(o := get(kubectl, namespace, "smb-over-quic"), "VMProvisioned") or {}).get(
        "status") == "True" and o, timeout=120, what="provisioned")  # fmt: skip
    name, host = vm_name(obj), obj["status"]["vm"]["publicIPAddress"]
    assert obj["status"]["image"]["windowsServerVersion"] == "2025"
    control.set_certificate(
        RG, name, SERVER, {"expiresInDays": 90}
    )  # an administrator's mapping (watch only)

    def entries() -> set[tuple[str, str]]:
        access = (control.guest(RG, name).get("clientAccess") or {}).get(SERVER) or {}
        return (
            {(e["identifier"], e["action"]) for e in access.get("entries", [])}
            if access.get("require")
            else set()
        )

    wait_for(lambda: entries() == {(sha(allowed), "Allow")}, timeout=60, what="client access applied")
    wait_for(
        lambda: events(kubectl, namespace, "SMBOverQUICClientAccessApplied"),
        timeout=30,
        what="the SMBOverQUICClientAccessApplied Event",
    )
    assert asyncio.run(verdict(host, 443, allowed)) == "admitted"

    # the list edited in the spec: block laptop-2
    kubectl(
        "patch",
        "aevm",
        "smb-over-quic",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps(
            {
                "spec": {
                    "smbOverQuic": {
                        "clientAccess": {
                            "allow": [{"sha256": sha(allowed)}],
                            "block": [{"sha256": sha(blocked)}],
                        }
                    }
                }
            }
        ),
    )
    wait_for(lambda: entries() == {(sha(allowed), "Allow"), (sha(blocked), "Deny")}, timeout=60,
             what="the edited list applied")  # fmt: skip
    assert asyncio.run(verdict(host, 443, blocked)).startswith("refused")

    # drift in the guest: someone revokes the block and switches the requirement off
    control.set_guest(RG, name, clientAccess={SERVER: {"require": False, "entries": []}})
    assert asyncio.run(verdict(host, 443, blocked)) == "admitted"
    wait_for(lambda: entries() == {(sha(allowed), "Allow"), (sha(blocked), "Deny")}, timeout=60,
             what="drift corrected")  # fmt: skip
    wait_for(
        lambda: events(kubectl, namespace, "SMBOverQUICClientAccessCorrected"),
        timeout=30,
        what="the SMBOverQUICClientAccessCorrected Event",
    )
    assert asyncio.run(verdict(host, 443, blocked)).startswith("refused")
    assert asyncio.run(verdict(host, 443, allowed)) == "admitted"


def test_an_alternative_port_is_opened_in_azure_and_the_guest_and_answers(
    debug_operator, kubectl, namespace, control
):  # fmt: skip
    """spec.smbOverQuic.alternativePort: the operator's NSG on the NIC, the port in the guest (drift put
    back), a real QUIC handshake on it, and status.smbOverQuic.ports naming both ports."""
    import asyncio

    from tests.integration.test_simulator_alternative_port import free_udp_port
    from tests.integration.test_simulator_client_access import verdict

    alt = free_udp_port()
    apply_sample(
        kubectl, namespace, "smb-over-quic", smbOverQuic={"serverName": SERVER, "alternativePort": alt}
    )
    obj = wait_for(lambda: (condition(o := get(kubectl, namespace, "smb-over-quic"), "VMProvisioned") or {}).get(
        "status") == "True" and o, timeout=120, what="provisioned")  # fmt: skip
    name, host = vm_name(obj), obj["status"]["vm"]["publicIPAddress"]
    assert obj["status"]["image"]["windowsServerVersion"] == "2025"
    control.set_certificate(RG, name, SERVER, {"expiresInDays": 90})

    def guest_ports() -> list[int]:
        return [p["port"] for p in control.guest(RG, name).get("alternativePorts") or []]

    wait_for(lambda: guest_ports() == [alt], timeout=60, what="the alternative port set in the guest")
    wait_for(lambda: events(kubectl, namespace, "SMBOverQUICAlternativePortApplied"), timeout=30,
             what="the SMBOverQUICAlternativePortApplied Event")  # fmt: skip
    wait_for(lambda: (get(kubectl, namespace, "smb-over-quic")["status"].get("smbOverQuic") or {}).get("ports")
             == [443, alt], timeout=60, what="status.smbOverQuic.ports")  # fmt: skip
    assert asyncio.run(verdict(host, alt, None)) == "admitted"  # a real handshake through the NSG rule

    control.set_guest(RG, name, alternativePorts=[])  # drift in the guest
    wait_for(lambda: guest_ports() == [alt], timeout=60, what="the alternative port put back")
    wait_for(lambda: events(kubectl, namespace, "SMBOverQUICAlternativePortCorrected"), timeout=30,
             what="the SMBOverQUICAlternativePortCorrected Event")  # fmt: skip
