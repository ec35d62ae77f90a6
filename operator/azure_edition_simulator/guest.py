"""The Windows guest inside each simulated VM: SMB over QUIC, certificate mappings and patch state.

What the guest model answers:

* ``instanceView.patchStatus`` (``availablePatchSummary``, ``lastPatchInstallationSummary``,
  ``configurationStatuses``), ``assessPatches`` and ``installPatches`` results — shapes per the published
  examples ``VirtualMachine_Get_InstanceView.json``, ``VirtualMachine_AssessPatches.json`` and
  ``VirtualMachine_InstallPatches.json``.
* Run Command scripts, recognised by a marker comment (see :data:`SCRIPT_MARKER`).
* The SMB over QUIC listener's certificate (a real X.509 certificate issued by :mod:`.certs`).

Patch classifications follow the installPatches API (``Critical``, ``Security``, ``UpdateRollUp``,
``FeaturePack``, ``ServicePack``, ``Definition``, ``Tools``, ``Updates``); results spell them as Windows
Update does ("Security Updates", "Update Rollups", ...).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import uuid
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from . import altports, certstore, clientaccess
from .world import utc_now_iso, utc_now_z

SCRIPT_MARKER = re.compile(r"#\s*azureedition\.io/script:\s*([A-Za-z0-9_.-]+)")
SCRIPT_SMB_QUIC_STATUS = "smb-quic-status"
SCRIPT_SMB_QUIC_ENABLE = "smb-quic-enable"
SCRIPT_EXTENDED_NETWORK_STATUS = "extended-network-status"
# Extended Network's Azure-side appliance, as the guest reports it (Get-VM's State, or NotInstalled).
APPLIANCE_STATES = ("Running", "Off", "Saved", "Paused", "Starting", "NotInstalled")

CLASSIFICATION_NAMES = {
    "Critical": "Critical Updates",
    "Security": "Security Updates",
    "UpdateRollUp": "Update Rollups",
    "FeaturePack": "Feature Packs",
    "ServicePack": "Service Packs",
    "Definition": "Definition Updates",
    "Tools": "Tools",
    "Updates": "Updates",
}
_CRITICAL_AND_SECURITY = {"Critical Updates", "Security Updates"}
REBOOT_NEVER = "NeverReboots"
REBOOT_CAN_REQUEST = "CanRequestReboot"
REBOOT_ALWAYS = "AlwaysRequiresReboot"


def new_guest(defaults: dict[str, Any]) -> dict[str, Any]:
    """The guest of a freshly created VM."""
    guest: dict[str, Any] = {
        "enableSmbQuic": bool(defaults.get("enableSmbQuic", True)),
        "mappings": [],
        "certStore": [],  # LocalMachine\My, with keys: certstore.py
        "patches": [],
        "rebootPending": bool(defaults.get("rebootPending", False)),
        "assessment": None,
        "installation": None,
        "nextAssessmentFailure": None,
        # Each new VM's first installPatches fails with this (a bad ring with no race against the rollout).
        "nextInstallationFailure": defaults.get("nextInstallationFailure"),
        "nextRunCommandStdErr": None,
        # Extended Network: the Hyper-V role and the appliance. A prepared VM by default, as an
        # administrator following Microsoft's guide leaves it; tests take either away.
        "hypervRole": bool(defaults.get("hypervRole", True)),
        "extendedNetworkAppliance": str(defaults.get("extendedNetworkAppliance", "Running")),
        "monthKind": str(defaults.get("monthKind", "Hotpatch")),
    }
    if "availablePatches" in defaults:
        guest["patches"] = patches_from(defaults["availablePatches"], hotpatch=False)
    return guest


# --- certificates -----------------------------------------------------------------------------------------


def describe_certificate(cert_pem: str) -> dict[str, Any]:
    """Thumbprint (SHA-1, upper-case hex, as Windows shows it), validity, subject, issuer, DNS SANs."""
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        dns_names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    return {
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),
        "notBefore": cert.not_valid_before_utc.isoformat(),
        "notAfter": cert.not_valid_after_utc.isoformat(),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "dnsNames": list(dns_names),
    }


def issue_mapping(server_name: str, spec_json: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Issue a real certificate for ``spec_json`` and return (stored mapping, IssuedCertificate)."""
    from . import certs  # written by another engineer; imported late so the ARM side works without it

    spec_json = dict(spec_json)
    spec_json.setdefault("commonName", server_name)
    spec_json.setdefault("dnsNames", [server_name])
    spec = certs.CertificateSpec.from_dict(spec_json)
    issued = certs.issue_certificate(spec)
    mapping = {
        "name": server_name,
        **describe_certificate(issued.cert_pem),
        "spec": spec.to_dict(),
        "certPem": issued.cert_pem,
        "keyPem": issued.key_pem,
        "chainPem": issued.chain_pem,
    }
    return mapping, issued


def issued_from_mapping(mapping: dict[str, Any]) -> Any:
    """Rebuild the IssuedCertificate of a stored mapping (after a restart)."""
    from . import certs

    return certs.IssuedCertificate(
        cert_pem=mapping["certPem"],
        key_pem=mapping["keyPem"],
        chain_pem=mapping["chainPem"],
        thumbprint=mapping["thumbprint"],
        not_after=dt.datetime.fromisoformat(mapping["notAfter"]),
        subject=mapping["subject"],
    )


def public_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
    """A mapping without key material, for the control API and Run Command output."""
    return {k: v for k, v in mapping.items() if k not in ("certPem", "keyPem", "chainPem")}


# --- patches ----------------------------------------------------------------------------------------------


def _kb(seed: int) -> str:
    return str(5030000 + seed)


MONTH_KINDS = ("Hotpatch", "Baseline")
"""The month a guest's Windows Update offers patches for: in a hotpatch month a Hotpatch VM's critical and
security updates are hotpatches (``NeverReboots``); in a baseline month (planned, or an unplanned one
Microsoft announces) they are the cumulative update (``AlwaysRequiresReboot``), as on every non-Hotpatch VM
(``CanRequestReboot``). Default Hotpatch; tests set it through the control API (``monthKind``)."""


def patches_from(spec: Any, *, hotpatch: bool, month: str = "Hotpatch") -> list[dict[str, Any]]:
    """Patches from ``{"Security": 2, "Definition": 1, ...}`` or from an explicit list of patch dicts, as
    Windows Update offers them in a ``month`` of ``MONTH_KINDS``."""
    if isinstance(spec, list):
        out = []
        for index, item in enumerate(spec):
            patch = _patch(index, item.get("classification", "Security"), hotpatch, month)
            patch.update({k: v for k, v in item.items() if k != "classification"})
            out.append(patch)
        return out
    patches: list[dict[str, Any]] = []
    for classification, count in dict(spec).items():
        if classification not in CLASSIFICATION_NAMES:
            raise ValueError(
                f"unknown classification {classification!r}; known: {sorted(CLASSIFICATION_NAMES)}"
            )
        for _ in range(int(count)):
            patches.append(_patch(len(patches), classification, hotpatch, month))
    return patches


def _patch(index: int, classification: str, hotpatch: bool, month: str = "Hotpatch") -> dict[str, Any]:
    name = CLASSIFICATION_NAMES.get(classification, classification)
    kb = _kb(index)
    if classification in ("Critical", "Security") and hotpatch and month == "Baseline":
        reboot = REBOOT_ALWAYS
        title = f"{dt.date.today():%Y-%m} Cumulative Update, Hotpatch baseline (KB{kb})"
    elif classification in ("Critical", "Security"):
        reboot = REBOOT_NEVER if hotpatch else REBOOT_CAN_REQUEST
        title = f"{dt.date.today():%Y-%m} {'Hotpatch' if hotpatch else 'Cumulative Update'} (KB{kb})"
    elif classification == "Definition":
        reboot = REBOOT_NEVER
        title = f"Security Intelligence Update for Microsoft Defender Antivirus - KB{kb}"
    else:
        reboot = REBOOT_CAN_REQUEST
        title = f"{name} - KB{kb}"
    return {
        "patchId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"kb{kb}-{classification}")),
        "name": title,
        "version": "",
        "kbId": kb,
        "classifications": [name],
        "rebootBehavior": reboot,
        "publishedDate": utc_now_z(),
    }


def _counts(patches: list[dict[str, Any]]) -> tuple[int, int]:
    critical = sum(1 for p in patches if set(p["classifications"]) & _CRITICAL_AND_SECURITY)
    return critical, len(patches) - critical


def assess(guest: dict[str, Any]) -> dict[str, Any]:
    """Run an assessment; store its summary; return the AssessPatches result body."""
    activity = str(uuid.uuid4())
    now = utc_now_z()
    failure = guest.get("nextAssessmentFailure")
    guest["nextAssessmentFailure"] = None
    patches = [] if failure else guest["patches"]
    critical, other = _counts(patches)
    error = _error(failure)
    status = "Failed" if failure else "Succeeded"
    guest["assessment"] = {
        "status": status,
        "assessmentActivityId": activity,
        "rebootPending": guest["rebootPending"],
        "criticalAndSecurityPatchCount": critical,
        "otherPatchCount": other,
        "startTime": now,
        "lastModifiedTime": now,
        "error": error,
    }
    return {
        "status": status,
        "assessmentActivityId": activity,
        "rebootPending": guest["rebootPending"],
        "criticalAndSecurityPatchCount": critical,
        "otherPatchCount": other,
        "startDateTime": now,
        "availablePatches": [
            {
                **{
                    k: p[k]
                    for k in ("patchId", "name", "version", "kbId", "classifications", "rebootBehavior")
                },
                "activityId": activity,
                "publishedDate": p["publishedDate"],
                "lastModifiedDateTime": now,
                "assessmentState": "Available",
            }
            for p in patches
        ],
        "error": error,
    }


def _error(failure: dict[str, Any] | None) -> dict[str, Any] | None:
    if not failure:
        return None
    return {
        "code": failure.get("code", "PatchOperationFailed"),
        "message": failure.get("message", "The patch operation failed in the guest."),
        "details": [],
    }


def _instant(value: Any) -> dt.datetime | None:
    """An ISO 8601 date-time as ARM sends it (``Z`` or an offset), aware; None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _selected(patch: dict[str, Any], windows: dict[str, Any]) -> bool | None:
    """True = install, False = not selected, None = excluded by KB."""
    kb = patch["kbId"]
    if kb in (windows.get("kbNumbersToExclude") or []):
        return None
    if windows.get("excludeKbsRequiringReboot") and patch["rebootBehavior"] != REBOOT_NEVER:
        return None
    cutoff = _instant(windows.get("maxPatchPublishDate"))
    published = _instant(patch.get("publishedDate"))
    if cutoff is not None and published is not None and published > cutoff:
        return (
            False  # "patches published on or before this date" (the REST spec): a later one is not selected
        )
    if kb in (windows.get("kbNumbersToInclude") or []):
        return True
    wanted = {CLASSIFICATION_NAMES.get(c, c) for c in (windows.get("classificationsToInclude") or [])}
    return bool(set(patch["classifications"]) & wanted)


def start_installation(guest: dict[str, Any]) -> str:
    """An installPatches accepted: ``lastPatchInstallationSummary`` shows it InProgress under its activity id
    (the id its result carries when it ends)."""
    activity = str(uuid.uuid4())
    base = copy.deepcopy(guest.get("installation") or _blank_summary("installation"))
    now = utc_now_z()
    base.update({"status": "InProgress", "installationActivityId": activity, "startTime": now,
                 "lastModifiedTime": now, "error": None})  # fmt: skip
    guest["installation"] = base
    return activity


def install(guest: dict[str, Any], request: dict[str, Any], activity: str | None = None) -> dict[str, Any]:
    """Install patches per an installPatches request; store the summary; return the result body."""
    activity = activity or str(uuid.uuid4())
    now = utc_now_z()
    windows = request.get("windowsParameters") or {}
    reboot_setting = request.get("rebootSetting", "IfRequired")
    failure = guest.get("nextInstallationFailure")
    guest["nextInstallationFailure"] = None
    chosen, not_selected, excluded = [], [], []
    for patch in guest["patches"]:
        verdict = _selected(patch, windows)
        (chosen if verdict else excluded if verdict is None else not_selected).append(patch)
    installed = [] if failure else chosen
    failed = chosen if failure else []
    needs_reboot = any(p["rebootBehavior"] != REBOOT_NEVER for p in installed) or guest["rebootPending"]
    if reboot_setting == "Always" or (needs_reboot and reboot_setting == "IfRequired"):
        reboot_status = "Completed"
        guest["rebootPending"] = False
    elif needs_reboot:
        reboot_status = "Required"
        guest["rebootPending"] = True
    else:
        reboot_status = "NotNeeded"
    guest["patches"] = [p for p in guest["patches"] if p not in installed]
    status = "Failed" if failure else "Succeeded"
    error = _error(failure)
    summary = {
        "status": status,
        "installationActivityId": activity,
        "maintenanceWindowExceeded": False,
        "notSelectedPatchCount": len(not_selected),
        "excludedPatchCount": len(excluded),
        "pendingPatchCount": 0,
        "installedPatchCount": len(installed),
        "failedPatchCount": len(failed),
        "startTime": now,
        "lastModifiedTime": now,
        "error": error,
    }
    guest["installation"] = summary
    states = [(p, "Installed") for p in installed] + [(p, "Failed") for p in failed]
    states += [(p, "NotSelected") for p in not_selected] + [(p, "Excluded") for p in excluded]
    return {
        "status": status,
        "installationActivityId": activity,
        "rebootStatus": reboot_status,
        "maintenanceWindowExceeded": False,
        "excludedPatchCount": len(excluded),
        "notSelectedPatchCount": len(not_selected),
        "pendingPatchCount": 0,
        "installedPatchCount": len(installed),
        "failedPatchCount": len(failed),
        "startDateTime": now,
        "patches": [
            {
                **{k: p[k] for k in ("patchId", "name", "version", "kbId", "classifications")},
                "installationState": state,
            }
            for p, state in states
        ],
        "error": error,
    }


def refresh_assessment(guest: dict[str, Any]) -> None:
    """After an installation the platform re-assesses: the available-patch summary reflects what is left."""
    if guest.get("assessment") is None:
        return
    critical, other = _counts(guest["patches"])
    now = utc_now_z()
    guest["assessment"].update(
        {
            "status": "Succeeded",
            "assessmentActivityId": str(uuid.uuid4()),
            "rebootPending": guest["rebootPending"],
            "criticalAndSecurityPatchCount": critical,
            "otherPatchCount": other,
            "startTime": now,
            "lastModifiedTime": now,
            "error": None,
        }
    )


def patch_status(guest: dict[str, Any], patch_settings: dict[str, Any]) -> dict[str, Any]:
    """``instanceView.patchStatus`` for the VM's guest and its current patch settings."""
    now = utc_now_iso()
    status: dict[str, Any] = {}
    if guest.get("assessment"):
        status["availablePatchSummary"] = copy.deepcopy(guest["assessment"])
    if guest.get("installation"):
        status["lastPatchInstallationSummary"] = copy.deepcopy(guest["installation"])
    patch_mode = patch_settings.get("patchMode", "AutomaticByOS")
    assessment_mode = patch_settings.get("assessmentMode", "ImageDefault")
    status["configurationStatuses"] = [
        {
            "code": "PatchModeConfigurationState/Ready",
            "level": "Info",
            "displayStatus": "Status_PatchModeConfigurationState_Ready",
            "message": f"patchMode={patch_mode}",
            "time": now,
        },
        {
            "code": "AssessmentModeConfigurationState/Ready",
            "level": "Info",
            "displayStatus": "Status_AssessmentModeConfigurationState_Ready",
            "message": f"assessmentMode={assessment_mode}",
            "time": now,
        },
    ]
    return status


# --- run command ----------------------------------------------------------------------------------------


def script_name(script_lines: list[str]) -> str | None:
    """The ``# azureedition.io/script: <name>`` marker of a script, if any."""
    match = SCRIPT_MARKER.search("\n".join(script_lines))
    return match.group(1) if match else None


def run_script(
    guest: dict[str, Any], script_lines: list[str], parameters: dict[str, str] | None = None
) -> tuple[str, str]:
    """Execute a script the way the simulated Windows guest would; returns (stdout, stderr).

    ``parameters``: a managed Run Command's parameters and protected parameters, by name (a script that
    stops with an error raises ``certstore.ScriptFailed``)."""
    stderr = guest.get("nextRunCommandStdErr") or ""
    guest["nextRunCommandStdErr"] = None
    name = script_name(script_lines)
    if name == certstore.SCRIPT_SMB_CERT_IMPORT:
        return json.dumps(certstore.import_pfx(guest, parameters or {})), stderr
    if name == certstore.SCRIPT_SMB_CERT_MAP:
        certstore.map_certificate(guest, parameters or {})
        name = SCRIPT_SMB_QUIC_STATUS  # it prints the state it leaves, as the status script does
    if name == clientaccess.SCRIPT_SMB_CLIENT_ACCESS:
        clientaccess.apply(guest, parameters or {})
        name = SCRIPT_SMB_QUIC_STATUS
    if name == altports.SCRIPT_SMB_ALTERNATIVE_PORT:
        altports.apply(guest, parameters or {})
        name = SCRIPT_SMB_QUIC_STATUS
    if name == SCRIPT_SMB_QUIC_STATUS:
        payload = {
            "enableSmbQuic": guest["enableSmbQuic"],
            "mappings": [
                {
                    "name": m["name"],
                    "thumbprint": m["thumbprint"],
                    "notAfter": m["notAfter"],
                    "notBefore": m["notBefore"],
                    "subject": m["subject"],
                    "issuer": m["issuer"],
                    "dnsNames": m["dnsNames"],
                    **clientaccess.mapping_fields(guest, m["name"]),
                }
                for m in guest["mappings"]
            ],
            "store": certstore.public_store(guest),
            "auditClientAccess": bool(guest.get("auditClientAccess", False)),
            "alternativePorts": altports.public_ports(guest),
        }
        return json.dumps(payload), stderr
    if name == SCRIPT_EXTENDED_NETWORK_STATUS:
        hyperv = bool(guest.get("hypervRole", True))
        # Without the role there is no Get-VM, hence no appliance to report.
        state = str(guest.get("extendedNetworkAppliance", "Running")) if hyperv else "NotInstalled"
        return json.dumps({"hypervRole": "Installed" if hyperv else "Available", "appliance": state}), stderr
    if name == SCRIPT_SMB_QUIC_ENABLE:
        guest["enableSmbQuic"] = True
        return json.dumps({"enableSmbQuic": True}), stderr
    return "", stderr


def run_command_statuses(stdout: str, stderr: str) -> list[dict[str, Any]]:
    """The ``value[]`` of a RunCommand result: StdOut then StdErr, as Windows VMs report them."""
    return [
        {
            "code": "ComponentStatus/StdOut/succeeded",
            "level": "Info",
            "displayStatus": "Provisioning succeeded",
            "message": stdout,
        },
        {
            "code": "ComponentStatus/StdErr/succeeded",
            "level": "Info",
            "displayStatus": "Provisioning succeeded",
            "message": stderr,
        },
    ]


# --- control API --------------------------------------------------------------------------------------------

GUEST_FIELDS = (
    "enableSmbQuic",
    "rebootPending",
    "availablePatches",
    "nextAssessmentFailure",
    "nextInstallationFailure",
    "nextRunCommandStdErr",
    "hypervRole",
    "extendedNetworkAppliance",
    "assessment",
    "installation",
    "monthKind",
    "clientAccess",  # {serverName: {"require": bool, "entries": [{type, identifier, action}]}}: clientaccess.py
    "auditClientAccess",
    "alternativePorts",  # [{"transportType": "QUIC", "port": N, "enableInstances": "Default"}]: altports.py
)


def apply_guest_patch(guest: dict[str, Any], patch: dict[str, Any], *, hotpatch: bool) -> None:
    """Change the guest from the control API (behind the operator's back)."""
    unknown = set(patch) - set(GUEST_FIELDS)
    if unknown:
        raise ValueError(f"unknown guest fields {sorted(unknown)}; known: {list(GUEST_FIELDS)}")
    if "monthKind" in patch:  # before availablePatches: it decides what their security updates cost
        if patch["monthKind"] not in MONTH_KINDS:
            raise ValueError(f"monthKind must be one of {list(MONTH_KINDS)}")
        guest["monthKind"] = patch["monthKind"]
    month = guest.get("monthKind", "Hotpatch")
    for name, value in patch.items():
        if name == "monthKind":
            continue
        if name == "availablePatches":
            guest["patches"] = patches_from(value, hotpatch=hotpatch, month=month)
        elif name in ("enableSmbQuic", "rebootPending", "hypervRole"):
            guest[name] = bool(value)
        elif name == "extendedNetworkAppliance":
            if value not in APPLIANCE_STATES:
                raise ValueError(f"extendedNetworkAppliance must be one of {list(APPLIANCE_STATES)}")
            guest[name] = value
        elif name in ("assessment", "installation") and value is not None:
            base = copy.deepcopy(guest.get(name) or _blank_summary(name))
            base.update(value)
            guest[name] = base
        else:
            guest[name] = value


def _blank_summary(name: str) -> dict[str, Any]:
    now = utc_now_z()
    if name == "assessment":
        return {
            "status": "Succeeded",
            "assessmentActivityId": str(uuid.uuid4()),
            "rebootPending": False,
            "criticalAndSecurityPatchCount": 0,
            "otherPatchCount": 0,
            "startTime": now,
            "lastModifiedTime": now,
            "error": None,
        }
    return {
        "status": "Succeeded",
        "installationActivityId": str(uuid.uuid4()),
        "maintenanceWindowExceeded": False,
        "notSelectedPatchCount": 0,
        "excludedPatchCount": 0,
        "pendingPatchCount": 0,
        "installedPatchCount": 0,
        "failedPatchCount": 0,
        "startTime": now,
        "lastModifiedTime": now,
        "error": None,
    }


def public_guest(guest: dict[str, Any]) -> dict[str, Any]:
    """The guest for the control API (no private keys)."""
    out = {k: copy.deepcopy(v) for k, v in guest.items() if k not in ("mappings", "certStore")}
    out["mappings"] = [public_mapping(m) for m in guest["mappings"]]
    out["certStore"] = certstore.public_store(guest)
    return out
