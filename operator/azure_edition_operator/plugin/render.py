"""What `kubectl aevm` shows, as pure functions of the object (a dict as the API server returns it).

Decide here, act in ``main``: every view, the reason chain, the assess verdict and the error
messages are computed from plain data and a clock, so they are unit-tested without a cluster.
Conditions are rendered generically (whatever types status carries, in the operator's order), so
conditions and reasons added to the operator show up without a change here; their explanations
come from ``reasons.CONDITION_REASONS``, the one table docs/reference.md is generated from.

Imports stay light (no kopf, no Azure SDKs) so the plugin starts fast.
"""

from __future__ import annotations

import re
import secrets
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from .. import reasons as vocab
from ..api.v1alpha1 import (
    ASSESS_ANNOTATION,
    KIND,
    CertificateState,
    annotation_token_problem,
    assess_event_message,
)
from ..checks.hotpatch import last_baseline_month, next_baseline_month
from ..conditions import parse_timestamp

# Exit codes (docs/kubectl-plugin.md): scripts can tell "try later" from "fix something".
EXIT_OK = 0
EXIT_FAILED = 1  # assess: the assessment failed, or the operator refused it
EXIT_USAGE = 2  # argparse's own
EXIT_TIMEOUT = 3  # assess: no result within --timeout
EXIT_NOT_FOUND = 4  # the object, its namespace or the CRD does not exist
EXIT_FORBIDDEN = 5  # the API server refused who you are (401) or what you asked (403)
EXIT_UNREACHABLE = 6  # no kubeconfig, or the API server does not answer

READY = "Ready"

ASSESS_FAILED_STATES = frozenset({"Failed"})


class PluginError(Exception):
    """A problem the user must act on: the message says what to do, ``code`` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# ----------------------------------------------------------------------------- small helpers


def age(since: datetime | None, now: datetime) -> str:
    """kubectl's compact age: 45s, 12m, 5h, 3d (``-`` when unknown)."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    if width <= 1 or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def _yes_no(value: object) -> str:
    return "yes" if value is True else "no" if value is False else "-"


def _section(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = mapping.get(key)
    return value if isinstance(value, Mapping) else {}


def conditions_of(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """status.conditions as written (the operator keeps them ordered); malformed entries skipped."""
    items = _section(obj, "status").get("conditions")
    if not isinstance(items, list):
        return []
    return [c for c in items if isinstance(c, Mapping) and isinstance(c.get("type"), str)]


def as_it_should_be(condition: Mapping[str, Any]) -> bool:
    """True for a positive condition that is True, or an abnormal-true one (Stalled...) that is not."""
    status = condition.get("status")
    if condition.get("type") in vocab.NEGATIVE_POLARITY:
        return status != "True"
    return status == "True"


def is_stale(condition: Mapping[str, Any], generation: int | None) -> bool:
    """The condition describes an older spec than the object's (the operator has not caught up)."""
    observed = condition.get("observedGeneration")
    return isinstance(observed, int) and isinstance(generation, int) and 0 < observed < generation


# ----------------------------------------------------------------------------- status


def certificate_trust(state: str | None) -> str:
    """What the state says about the chain: the operator judges trust after validity and expiry
    (precedence Disabled > Unreachable > Invalid > Expired > Untrusted > ExpiringSoon > Valid)."""
    if state in (CertificateState.VALID, CertificateState.EXPIRING_SOON):
        return "trusted (its chain leads to a root in the operator's trust bundle)"
    if state == CertificateState.UNTRUSTED:
        return "untrusted (its chain does not lead to a trusted root: SMB over QUIC clients refuse it)"
    if state is None:
        return "-"
    return f"not judged (the certificate is {state} first)"


def status_view(obj: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Everything `kubectl aevm status` shows, as data (``-o json`` prints exactly this)."""
    meta = _section(obj, "metadata")
    spec = _section(obj, "spec")
    status = _section(obj, "status")
    generation = meta.get("generation")
    conditions = [
        {
            "type": c["type"],
            "status": c.get("status", "Unknown"),
            "reason": c.get("reason", ""),
            "message": c.get("message", ""),
            "lastTransitionTime": c.get("lastTransitionTime"),
            "age": age(parse_timestamp(c.get("lastTransitionTime")), now),
            "ok": as_it_should_be(c),
            "stale": is_stale(c, generation),
        }
        for c in conditions_of(obj)
    ]
    view: dict[str, Any] = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "generation": generation,
        "observedGeneration": status.get("observedGeneration"),
        "phase": status.get("phase"),
        "capabilities": list(spec.get("capabilities") or []),
        "conditions": conditions,
        "image": dict(_section(status, "image")) or None,
        "vm": {k: v for k, v in _section(status, "vm").items() if k != "resourceId"} or None,
    }
    smb = _section(status, "smbOverQuic")
    smb_spec = _section(spec, "smbOverQuic")
    if smb or smb_spec:
        not_after = parse_timestamp(smb.get("notAfter"))
        view["certificate"] = {
            "serverName": smb.get("serverName") or smb_spec.get("serverName"),
            "port": smb_spec.get("port", 443),
            "state": smb.get("state"),
            "subject": smb.get("subject"),
            "issuer": smb.get("issuer"),
            "notAfter": smb.get("notAfter"),
            "daysRemaining": smb.get("daysRemaining"),
            "daysRemainingNow": (not_after - now).days if not_after else None,
            "trust": certificate_trust(smb.get("state")),
            "thumbprint": smb.get("thumbprint"),
            "dnsNames": smb.get("dnsNames"),
            "serverEnabled": smb.get("serverEnabled"),
            "source": smb.get("source"),
        }
    hotpatch = _section(status, "hotpatch")
    if hotpatch or "Hotpatch" in view["capabilities"]:
        today = now.date()
        view["hotpatch"] = {
            **hotpatch,
            "lastBaselineMonth": last_baseline_month(today),
            "nextBaselineMonth": hotpatch.get("nextBaselineMonth") or next_baseline_month(today),
        }
    view["azure"] = azure_ids(obj)
    return view


def azure_ids(obj: Mapping[str, Any]) -> dict[str, str]:
    """The Azure resource IDs the object names: the subnets it asks for and every ARM ID in status.

    Found by shape (a string starting ``/subscriptions/``), so IDs other parts of the operator add to
    status appear without a change here.
    """
    spec = _section(obj, "spec")
    found: dict[str, str] = {}
    azure = _section(spec, "azure")
    if azure.get("subscriptionId"):
        rg = azure.get("resourceGroup")
        found["resourceGroup"] = f"/subscriptions/{azure['subscriptionId']}/resourceGroups/{rg}"
    if azure.get("subnetId"):
        found["spec.azure.subnetId"] = azure["subnetId"]
    extended = _section(spec, "extendedNetwork").get("extendedSubnetId")
    if extended:
        found["spec.extendedNetwork.extendedSubnetId"] = extended

    def walk(value: object, path: str) -> None:
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(sub, f"{path}.{key}")
        elif isinstance(value, list) and path != "status.conditions":
            for index, sub in enumerate(value):
                walk(sub, f"{path}[{index}]")
        elif isinstance(value, str) and value.lower().startswith("/subscriptions/"):
            found[path] = value

    walk(_section(obj, "status"), "status")
    if _section(_section(obj, "status"), "vm").get("vmId"):
        found["status.vm.vmId"] = _section(obj, "status")["vm"]["vmId"]
    return found


def _kv(rows: Iterable[tuple[str, object]], indent: int = 2) -> list[str]:
    rows = [(k, v) for k, v in rows if v not in (None, "", [])]
    if not rows:
        return []
    width = max(len(k) for k, _ in rows) + 1
    return [f"{' ' * indent}{(k + ':').ljust(width)} {v}" for k, v in rows]


def render_conditions(conditions: list[Mapping[str, Any]], width: int) -> list[str]:
    if not conditions:
        return ["  (none yet: the operator has not written status; is it running?)"]
    type_w = max(len("TYPE"), *(len(c["type"]) for c in conditions))
    reason_w = max(len("REASON"), *(len(c["reason"]) for c in conditions))
    head = f"  {'TYPE'.ljust(type_w)}  STATUS   {'REASON'.ljust(reason_w)}  AGE   MESSAGE"
    lines = [head]
    for c in conditions:
        mark = " " if c["ok"] else "!"
        prefix = f"{mark} {c['type'].ljust(type_w)}  {c['status'].ljust(7)}  {c['reason'].ljust(reason_w)}  {c['age'].ljust(4)}  "
        message = c["message"] + (" [describes an older generation]" if c["stale"] else "")
        lines.append(prefix + shorten(message, width - len(prefix)))
    return lines


def render_status(view: Mapping[str, Any], width: int = 120) -> str:
    """One screen: header, conditions, certificate, Hotpatch calendar, Azure IDs."""
    generations = f"generation {view['generation']}, status observed {view['observedGeneration'] or '-'}"
    image = view.get("image") or {}
    vm = view.get("vm") or {}
    lines = [
        f"{KIND} {view['namespace']}/{view['name']}",
        *_kv([
            ("Phase", f"{view['phase'] or 'Pending'} ({generations})"),
            ("Capabilities", ", ".join(view["capabilities"]) or "none"),
            ("Image", image and f"{image.get('sku')} {image.get('version')} "
                               f"(Windows Server {image.get('windowsServerVersion')}, {image.get('experience')})"),
            ("VM", vm and ", ".join(f"{k} {v}" for k, v in vm.items() if k != "vmId")),
        ]),
        "",
        "Conditions (! = not as it should be; `kubectl aevm why` explains):",
        *render_conditions(view["conditions"], width),
    ]  # fmt: skip
    cert = view.get("certificate")
    if cert is not None:
        days = cert["daysRemainingNow"] if cert["daysRemainingNow"] is not None else cert["daysRemaining"]
        expiry = cert["notAfter"] and f"{cert['notAfter']} ({days} days left)"
        lines += [
            "",
            f"SMB over QUIC certificate ({cert['serverName']}:{cert['port']}):",
            *(
                _kv([
                    ("state", cert["state"]),
                    ("subject", cert["subject"]),
                    ("issuer", cert["issuer"]),
                    ("expires", expiry),
                    ("trust", cert["trust"]),
                    ("thumbprint", cert["thumbprint"]),
                    ("DNS names", ", ".join(cert["dnsNames"] or [])),
                    ("server", {True: "SMB over QUIC enabled", False: "SMB over QUIC DISABLED"}.get(cert["serverEnabled"])),
                    ("checked by", cert["source"]),
                ])
                or ["  not checked yet"]
            ),
        ]  # fmt: skip
    hot = view.get("hotpatch")
    if hot is not None:
        assessed = None
        if hot.get("assessmentState"):
            assessed = (
                f"{hot['assessmentState']} at {hot.get('lastAssessmentTime', '-')}: "
                f"{hot.get('criticalAndSecurityPatchCount', '-')} critical/security, "
                f"{hot.get('otherPatchCount', '-')} other missing"
                + (f" (token {hot['lastAssessToken']})" if hot.get("lastAssessToken") else "")
            )
        installed = None
        if hot.get("lastInstallationState"):
            installed = (
                f"{hot['lastInstallationState']} at {hot.get('lastInstallationTime', '-')}: "
                f"{hot.get('installedPatchCount', '-')} installed, {hot.get('failedPatchCount', '-')} failed"
            )
        lines += [
            "",
            "Hotpatch:",
            *_kv([
                ("enrolled", hot.get("enabled") is not None
                 and f"{_yes_no(hot.get('enabled'))} (patchMode {hot.get('patchMode', '-')})"),
                ("this month", hot.get("cycleMonth")),
                ("last baseline", hot["lastBaselineMonth"]),
                ("next baseline", f"{hot['nextBaselineMonth']} (a cumulative update and a reboot)"),
                ("reboot pending", _yes_no(hot.get("rebootPending"))),
                ("last assessment", assessed),
                ("last installation", installed),
            ]),
        ]  # fmt: skip
    lines += ["", "Azure:", *(_kv(view["azure"].items()) or ["  (nothing yet)"])]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- why


@dataclass(frozen=True)
class Finding:
    """One condition that is not as it should be, with what its reason's documentation says."""

    type: str
    status: str
    reason: str
    message: str
    meaning: str | None
    action: str | None
    stale: bool


def explain(condition_type: str, reason: str) -> vocab.ConditionReason | None:
    """The reason's documentation on its condition, else where another condition documents it: a
    summary condition (kstatus ``Reconciling``/``Stalled``) repeats the reason of the one behind it."""
    found = vocab.explain(condition_type, reason)
    if found is None:
        found = next((t[reason] for t in vocab.CONDITION_REASONS.values() if reason in t), None)
    return found


def why(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, list[Finding]]:
    """Ready (or None when status has none yet) and, Ready first, every condition not as it should be."""
    generation = _section(obj, "metadata").get("generation")
    conditions = conditions_of(obj)
    ready = next((c for c in conditions if c["type"] == READY), None)
    findings = []
    for c in sorted(conditions, key=lambda c: c["type"] != READY):  # stable: Ready first, then status order
        if as_it_should_be(c):
            continue
        doc = explain(c["type"], str(c.get("reason", "")))
        findings.append(
            Finding(
                type=c["type"],
                status=str(c.get("status", "Unknown")),
                reason=str(c.get("reason", "")),
                message=str(c.get("message", "")),
                meaning=doc.meaning if doc else None,
                action=doc.action if doc else None,
                stale=is_stale(c, generation),
            )
        )
    return ready, findings


def behind(obj: Mapping[str, Any]) -> str | None:
    """Why status may not describe the current spec yet, or None when it does."""
    generation = _section(obj, "metadata").get("generation")
    observed = _section(obj, "status").get("observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        return (
            f"status describes generation {observed}, the spec is at {generation}: the operator has not "
            "caught up with the last change yet (or is not running)"
        )
    return None


def why_view(obj: Mapping[str, Any]) -> dict[str, Any]:
    ready, findings = why(obj)
    meta = _section(obj, "metadata")
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "ready": None if ready is None else ready.get("status") == "True",
        "behind": behind(obj),
        "findings": [asdict(f) for f in findings],
    }


def _wrap(label: str, text: str, width: int, indent: str) -> list[str]:
    head = f"{indent}{label.ljust(9)}"
    return textwrap.wrap(
        " ".join(text.split()),
        width=max(width, 40),
        initial_indent=head,
        subsequent_indent=" " * len(head),
        break_on_hyphens=False,
    ) or [head.rstrip()]


def render_why(obj: Mapping[str, Any], width: int = 100) -> str:
    meta = _section(obj, "metadata")
    ref = f"{meta.get('namespace')}/{meta.get('name')}"
    ready, findings = why(obj)
    if ready is None:
        return (
            f"{ref} has no Ready condition yet: the operator has not written its status. Is the operator "
            "running and watching this namespace? (kubectl get pods -A -l app.kubernetes.io/name=azure-edition-operator)\n"
        )
    lag = [f"Note: {behind(obj)}.", ""] if behind(obj) else []
    if not findings:
        text = f"{ref} is Ready: {ready.get('message', '')}; every condition is as it should be.\n"
        return "\n".join(lag) + text
    is_ready = ready.get("status") == "True"
    lines = [f"{ref} is Ready, but:" if is_ready else f"{ref} is not Ready ({ready.get('reason', '')}):", ""]
    lines[1:1] = lag
    for f in findings:
        indent = "  " if f.type == READY else "  └─ "  # Ready leads; the others are behind it
        body = " " * len(indent)
        lines.append(f"{indent}{f.type}={f.status}  {f.reason or '(no reason)'}")
        if f.stale:
            lines.append(
                f"{body}(describes an older generation: the operator has not yet caught up with the spec)"
            )
        if f.message:
            lines += _wrap("message:", f.message, width, body)
        if f.meaning is not None and f.action is not None:
            lines += _wrap("means:", f.meaning, width, body)
            lines += _wrap("fix:", f.action, width, body)
        else:
            lines += _wrap(
                "fix:",
                "this reason is not in this plugin's reason table (a newer operator?): act on the message, "
                "and see docs/troubleshooting.md",
                width,
                body,
            )
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------- assess


def fresh_token(now: datetime, entropy: str | None = None) -> str:
    """A token the operator has never seen: the time (for people) and random hex (for uniqueness)."""
    token = f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{entropy or secrets.token_hex(3)}"
    problem = annotation_token_problem(token)
    if problem:  # only reachable with a bad ``entropy``: the pattern is the operator's
        raise ValueError(problem)
    return token


def assess_patch(token: str) -> dict[str, Any]:
    """The merge patch that asks the operator for one assessment."""
    return {"metadata": {"annotations": {ASSESS_ANNOTATION: token}}}


@dataclass(frozen=True)
class AssessOutcome:
    done: bool
    code: int
    text: str


def assess_outcome(obj: Mapping[str, Any], token: str, failures: Iterable[str] = ()) -> AssessOutcome:
    """Where an assessment asked for with ``token`` stands, from the object and the operator's
    ``PatchAssessmentFailed`` Event messages for this object."""
    hot = _section(_section(obj, "status"), "hotpatch")
    if hot.get("lastAssessToken") == token:
        state = hot.get("assessmentState", "unknown")
        text = (
            f"assessment {token}: {state} at {hot.get('lastAssessmentTime', '-')}\n"
            f"  critical/security patches missing: {hot.get('criticalAndSecurityPatchCount', '-')}\n"
            f"  other patches missing:             {hot.get('otherPatchCount', '-')}\n"
            f"  reboot pending:                    {_yes_no(hot.get('rebootPending'))}\n"
        )
        if state in ASSESS_FAILED_STATES:
            return AssessOutcome(True, EXIT_FAILED, text + "the assessment failed: check that the VM agent runs "
                                 "and the VM reaches Windows Update (docs/troubleshooting.md#assessmentfailed)\n")  # fmt: skip
        return AssessOutcome(True, EXIT_OK, text)
    prefix = assess_event_message(token, "")
    for message in failures:
        if message.startswith(prefix):
            return AssessOutcome(True, EXIT_FAILED, f"the operator gave up on {message}\n")
    return AssessOutcome(False, EXIT_TIMEOUT, waiting_hint(obj, token))


def waiting_hint(obj: Mapping[str, Any], token: str) -> str:
    """Why the operator may not have answered yet (shown on timeout)."""
    meta = _section(obj, "metadata")
    ref = f"{meta.get('namespace')}/{meta.get('name')}"
    conditions = {c["type"]: c for c in conditions_of(obj)}
    provisioned = conditions.get("VMProvisioned")
    if provisioned is None or provisioned.get("status") != "True":
        reason = provisioned.get("reason") if provisioned else "no status yet"
        return (
            f"no result for assessment {token} on {ref}: the VM is not provisioned ({reason}); the operator "
            "assesses once it is (`kubectl aevm why` says what it waits for). The annotation stays; wait again "
            "with a longer --timeout.\n"
        )
    return (
        f"no result for assessment {token} on {ref} yet: is the operator running, and does it watch this "
        "namespace? Azure's assessPatches can take minutes; retry with a longer --timeout.\n"
    )


# ----------------------------------------------------------------------------- API errors


def api_problem(
    status: int, body: object, *, namespace: str, name: str | None, verb: str, resource: str
) -> PluginError:
    """An API server refusal as what to do about it."""
    details = body if isinstance(body, Mapping) else {}
    message = str(details.get("message") or (body if isinstance(body, str) else "") or "")
    group = resource.split(".", 1)[1] if "." in resource else ""
    plural = resource.split(".", 1)[0]
    if status == 404:
        found = _section(details, "details")
        if name and found.get("name") == name:
            return PluginError(
                f"{KIND} {name!r} not found in namespace {namespace!r}: list them with "
                f"`kubectl get aevm -n {namespace}` (or -A); the namespace comes from -n, else your context",
                EXIT_NOT_FOUND,
            )
        if name is None or not found.get("name"):
            return PluginError(
                f"the API server does not serve {resource}: the {KIND} CRD is not installed in this cluster "
                "(install it: `kubectl apply -k deploy/crd`, docs/install.md), or you are on the wrong context",
                EXIT_NOT_FOUND,
            )
    if status == 403:
        return PluginError(
            f"the API server refused: {message or 'forbidden'}. Ask a cluster administrator for a Role in "
            f"namespace {namespace!r} that allows `{verb}` on {plural} (apiGroups: [{group}])",
            EXIT_FORBIDDEN,
        )
    if status == 401:
        return PluginError(
            "the API server did not accept your credentials (401 Unauthorized): log in again or refresh "
            "your kubeconfig's user",
            EXIT_FORBIDDEN,
        )
    return PluginError(f"the API server answered {status}: {message or body}", EXIT_FAILED)


# Kubernetes names: RFC 1123 subdomain (what the API server accepts for an AzureEditionVM's name).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def name_problem(name: str) -> str | None:
    if not _NAME.fullmatch(name):
        return f"{name!r} is not a valid object name (lower-case letters, digits, '-' and '.')"
    return None
