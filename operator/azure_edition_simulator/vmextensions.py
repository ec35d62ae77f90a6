"""VM extensions (``virtualMachines/{vm}/extensions``), and what the Key Vault VM extension does in the guest.

ARM: PUT (a long-running operation), GET (``$expand=instanceView``), list, DELETE; the VM's instance view
lists each extension's ``instanceView`` (``extensions[]``), as on Azure.

``Microsoft.Azure.KeyVault``/``KeyVaultForWindows`` (learn.microsoft.com/azure/virtual-machines/extensions/
key-vault-windows): every ``secretsManagementSettings.pollingIntervalInS`` seconds (× the simulator's
time scale) it fetches each ``observedCertificates`` URL (``<vault URL>/secrets/<name>``: the newest
version) with the VM's system-assigned managed identity and installs a version it does not have into the
guest's ``LocalMachine\\My`` (``certificateStoreLocation``/``certificateStoreName``) with its private key.
Its status says what happened: a VM without a managed identity, or an identity without a role on the
vault, is an error naming both (403 from Key Vault), and the extension keeps polling, so a role granted
later heals it at the next poll.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from . import certstore, keyvault
from .world import World, key, utc_now_iso

EXTENSION_TYPE = "Microsoft.Compute/virtualMachines/extensions"
KEY_VAULT_PUBLISHER = "Microsoft.Azure.KeyVault"
KEY_VAULT_WINDOWS = "KeyVaultForWindows"
DEFAULT_POLLING_SECONDS = 3600  # the extension's documented default


def system_identity(world: World, sub: str, vm: dict[str, Any], existing: dict[str, Any] | None) -> None:
    """A system-assigned identity gets its principal (kept across updates; gone when the type drops it)."""
    identity = vm.get("identity")
    if not identity or "SystemAssigned" not in str(identity.get("type", "")):
        if identity is not None:
            identity.pop("principalId", None)
            identity.pop("tenantId", None)
        return
    kept = ((existing or {}).get("identity") or {}).get("principalId")
    identity.setdefault("principalId", kept or str(uuid.uuid4()))
    identity.setdefault("tenantId", world.subscription(sub)["tenantId"])


def extension_id(vm: dict[str, Any], name: str) -> str:
    return f"{vm['id']}/extensions/{name}"


def put(world: World, vm: dict[str, Any], name: str, body: dict[str, Any], location: str) -> dict[str, Any]:
    """Store the extension as PUT leaves it (provisioning until its operation completes)."""
    props = copy.deepcopy(body.get("properties") or {})
    props.pop("protectedSettings", None)  # never returned
    props.pop("instanceView", None)
    props["provisioningState"] = "Creating"
    doc = {"name": name, "id": extension_id(vm, name), "type": EXTENSION_TYPE, "location": location,
           "tags": body.get("tags") or {}, "properties": props}  # fmt: skip
    old = world.extensions.get(key(doc["id"]))
    doc["_state"] = (old or {}).get("_state") or {"nextPoll": 0.0, "status": None}
    doc["_state"]["nextPoll"] = 0.0  # new settings: poll at once
    world.extensions[key(doc["id"])] = doc
    return doc


def complete(world: World, resource_id: str) -> None:
    doc = world.extensions.get(key(resource_id))
    if doc is not None:
        doc["properties"]["provisioningState"] = "Succeeded"


def render(doc: dict[str, Any], expand: str = "") -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in doc.items() if not k.startswith("_")}
    if "instanceview" in expand.lower():
        out["properties"]["instanceView"] = instance_view(doc)
    return out


def of_vm(world: World, vm: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = key(vm["id"]) + "/extensions/"
    return [doc for k, doc in sorted(world.extensions.items()) if k.startswith(prefix)]


def remove_vm(world: World, vm: dict[str, Any]) -> None:
    for doc in of_vm(world, vm):
        del world.extensions[key(doc["id"])]


def instance_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The extension's ``instanceView``: its handler status, and what its last poll said."""
    props = doc["properties"]
    status = doc.get("_state", {}).get("status") or {
        "code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
        "message": "Extension enabled.",
    }  # fmt: skip
    return {"name": doc["name"], "type": f"{props.get('publisher', '')}.{props.get('type', '')}",
            "typeHandlerVersion": props.get("typeHandlerVersion", ""), "statuses": [status]}  # fmt: skip


def _is_key_vault(doc: dict[str, Any]) -> bool:
    props = doc["properties"]
    return props.get("publisher") == KEY_VAULT_PUBLISHER and props.get("type") == KEY_VAULT_WINDOWS


def poll(world: World, now: float, time_scale: float, running: dict[str, bool]) -> bool:
    """Run each Key Vault extension whose polling interval has passed; True when a guest store changed."""
    changed = False
    for ext_key, doc in list(world.extensions.items()):
        if not _is_key_vault(doc) or doc["properties"].get("provisioningState") != "Succeeded":
            continue
        state = doc["_state"]
        if now < state["nextPoll"]:
            continue
        vm_key = ext_key.rsplit("/extensions/", 1)[0]
        vm, guest = world.vms.get(vm_key), world.guests.get(vm_key)
        if vm is None or guest is None or not running.get(vm_key, False):
            continue
        management = (doc["properties"].get("settings") or {}).get("secretsManagementSettings") or {}
        interval = float(management.get("pollingIntervalInS") or DEFAULT_POLLING_SECONDS)
        state["nextPoll"] = now + interval * time_scale
        status, installed = _fetch(world, vm, guest, management)
        state["status"] = {**status, "time": utc_now_iso()}
        changed = changed or installed
    return changed


def _fetch(
    world: World, vm: dict[str, Any], guest: dict[str, Any], management: dict[str, Any]
) -> tuple[dict, bool]:
    principal = ((vm.get("identity") or {}).get("principalId")) if "SystemAssigned" in str(
        (vm.get("identity") or {}).get("type", "")) else None  # fmt: skip
    installed, retrieved = False, []
    for observed in management.get("observedCertificates") or []:
        url = observed.get("url") if isinstance(observed, dict) else str(observed)
        vault, name = _vault_and_name(world, str(url or ""))
        if vault is None or name is None:
            return _error(f"observed certificate {url}: no such Key Vault secret"), installed
        if principal is None:
            return _error(
                f"Failed to download certificate {url}: the VM has no system-assigned managed identity "
                "to authenticate to Key Vault with"
            ), installed
        if not keyvault.can_read(vault, principal):
            return _error(
                f"Failed to download certificate {url}: 403 Forbidden from Key Vault {vault['name']}: the "
                f"identity {principal} has no role assignment granting "
                f"'Microsoft.KeyVault/vaults/secrets/getSecret/action' (e.g. {keyvault.SECRETS_USER}) on the vault"
            ), installed
        entry = vault["certificates"].get(name)
        if entry is None:
            return _error(f"Failed to download certificate {url}: 404 SecretNotFound"), installed
        version = keyvault.latest(entry)
        thumbprint = keyvault.thumbprint_of(version)
        if not any(e["thumbprint"] == thumbprint for e in certstore.store_of(guest)):
            from .guest import describe_certificate

            certstore.add_to_store(guest, {
                **describe_certificate(version["certPem"]), "certPem": version["certPem"],
                "keyPem": version["keyPem"], "chainPem": version["chainPem"],
            })  # fmt: skip
            installed = True
        retrieved.append(thumbprint)
    return {
        "code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded",
        "message": f"Successfully retrieved {len(retrieved)} certificate(s): {', '.join(retrieved)}",
    }, installed  # fmt: skip


def _error(message: str) -> dict[str, Any]:
    return {"code": "ProvisioningState/failed", "level": "Error", "displayStatus": "Provisioning failed",
            "message": message}  # fmt: skip


def _vault_and_name(world: World, url: str) -> tuple[dict[str, Any] | None, str | None]:
    for vault in world.key_vaults.values():
        base = vault.get("url")
        if base and url.lower().startswith(base.lower() + "/secrets/"):
            rest = url[len(base) + len("/secrets/") :].strip("/").split("/")
            return vault, rest[0] or None
    return None, None
