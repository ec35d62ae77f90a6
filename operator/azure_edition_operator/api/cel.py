"""CEL rules for the CRD, generated from the image catalog so admission and ``images.resolve`` agree.

Each rule is a ``x-kubernetes-validations`` entry. The per-capability rules give a message that
names the capability and what to change; a combined "one image carries them all" rule is added
only when the catalog makes it necessary (the per-capability rules do not already imply it).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..images import (
    CATALOG,
    SMB_ALTERNATIVE_PORT_VERSIONS,
    SMB_CLIENT_ACCESS_VERSIONS,
    Capability,
    CatalogRow,
    Experience,
    ImagePins,
    UnsupportedCapabilitiesError,
    WindowsServerVersion,
    resolve,
)

Rule = dict[str, Any]


def _quote(values: Iterable[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _requested(capability: Capability) -> str:
    return f"(has(self.capabilities) && '{capability}' in self.capabilities)"


def _pins_match(row: CatalogRow) -> str:
    """CEL: the object's spec.image pins allow this row (unpinned fields allow anything)."""
    small = "" if row.small_disk else "!"
    return (
        f"(!has(self.image) || !has(self.image.windowsServerVersion)"
        f" || self.image.windowsServerVersion == '{row.version}')"
        f" && (!has(self.image) || !has(self.image.experience) || self.image.experience == '{row.experience}')"
        f" && {small}(has(self.image) && has(self.image.smallDisk) && self.image.smallDisk)"
    )


# The user's pins as one string, "<version>/<experience>/<disk>" with "*" for "not pinned", so a
# rule can compare it against a generated list instead of repeating the catalog as boolean algebra.
PIN_KEY = (
    "(has(self.image) && has(self.image.windowsServerVersion) ? self.image.windowsServerVersion : '*')"
    " + '/' + (has(self.image) && has(self.image.experience) ? self.image.experience : '*')"
    " + '/' + (has(self.image) && has(self.image.smallDisk) && self.image.smallDisk ? 'small' : 'full')"
)


def pin_key(pins: ImagePins) -> str:
    """The Python twin of ``PIN_KEY``."""
    return f"{pins.windows_server_version or '*'}/{pins.experience or '*'}/{'small' if pins.small_disk else 'full'}"


def _where_available(capability: Capability, catalog: Iterable[CatalogRow]) -> str:
    shapes = sorted({(r.version, r.experience) for r in catalog if r.carries(capability)})
    return "; ".join(f"{v} {e}" for v, e in shapes) or "no image"


def forbidding_pins(capability: Capability, catalog: Iterable[CatalogRow] = CATALOG) -> list[str]:
    """Pin keys under which no image can carry ``capability``."""
    catalog = tuple(catalog)
    return [
        pin_key(p) for p in all_pins() if not any(p.matches(r) and r.carries(capability) for r in catalog)
    ]


def capability_rule(capability: Capability, catalog: Iterable[CatalogRow] = CATALOG) -> Rule | None:
    """If ``capability`` is requested, the pins must allow an image that carries it (None: always true)."""
    catalog = tuple(catalog)
    forbidden = forbidding_pins(capability, catalog)
    if not forbidden:
        return None
    return {
        "rule": f"!{_requested(capability)} || !(({PIN_KEY}) in {_quote(forbidden)})",
        "message": (
            f"{capability} is requested but no image allowed by spec.image carries it; {capability} is "
            f"available on Windows Server {_where_available(capability, catalog)}. Change or remove the "
            f"spec.image pins, or remove {capability} from spec.capabilities"
        ),
    }


def combination_rule(catalog: Iterable[CatalogRow] = CATALOG) -> Rule:
    """Some single image matching the pins carries every requested capability."""
    parts = []
    for row in catalog:
        caps = [c for c in Capability if row.carries(c)]
        carried = f"self.capabilities.all(c, c in {_quote(caps)})"
        parts.append(f"(({_pins_match(row)}) && (!has(self.capabilities) || {carried}))")
    return {
        "rule": " || ".join(parts),
        "message": (
            "no single Azure Edition image matching spec.image carries every capability in "
            "spec.capabilities; relax the spec.image pins or request fewer capabilities"
        ),
    }


REQUIRED_WHEN: tuple[tuple[Capability, str, str], ...] = (
    (Capability.SMB_OVER_QUIC, "smbOverQuic",
     "spec.smbOverQuic.serverName is required when SMBOverQUIC is requested: set it to the DNS name "
     "SMB clients connect to"),
    (Capability.EXTENDED_NETWORK, "extendedNetwork",
     "spec.extendedNetwork.extendedSubnetId is required when ExtendedNetwork is requested: set it to "
     "the ARM ID of the subnet stretched from on-premises"),
)  # fmt: skip


def required_when_rules() -> list[Rule]:
    return [
        {"rule": f"!{_requested(cap)} || has(self.{field})", "message": message}
        for cap, field, message in REQUIRED_WHEN
    ]


def all_pins() -> list[ImagePins]:
    """Every way a user can fill spec.image (unpinned included)."""
    versions: list[WindowsServerVersion | None] = [None, *WindowsServerVersion]
    experiences: list[Experience | None] = [None, *Experience]
    return [ImagePins(v, e, s) for v, e, s in itertools.product(versions, experiences, (False, True))]


def all_capability_sets() -> list[frozenset[Capability]]:
    caps = list(Capability)
    return [frozenset(s) for n in range(len(caps) + 1) for s in itertools.combinations(caps, n)]


def _per_capability_allows(
    pins: ImagePins, caps: frozenset[Capability], catalog: tuple[CatalogRow, ...]
) -> bool:
    return all(any(pins.matches(r) and r.carries(c) for r in catalog) for c in caps)


def _resolvable(pins: ImagePins, caps: frozenset[Capability], catalog: tuple[CatalogRow, ...]) -> bool:
    try:
        resolve(caps, pins, catalog)
    except UnsupportedCapabilitiesError:
        return False
    return True


def combination_rule_needed(catalog: Iterable[CatalogRow] = CATALOG) -> bool:
    """True when per-capability rules would admit something the resolver cannot resolve."""
    catalog = tuple(catalog)
    return any(
        _per_capability_allows(p, caps, catalog) and not _resolvable(p, caps, catalog)
        for p in all_pins()
        for caps in all_capability_sets()
    )


@functools.cache
def refusal(capability: Capability) -> tuple[frozenset[str], str] | None:
    """(forbidding pin keys, message) of ``capability_rule`` for the built-in catalog, computed once."""
    rule = capability_rule(capability)
    return None if rule is None else (frozenset(forbidding_pins(capability)), rule["message"])


@dataclass(frozen=True)
class VersionGated:
    """A ``spec.smbOverQuic`` setting only some Windows Server versions run (from the catalog): its CEL rule
    and Python twin refuse it unless an image that runs it fits the pins and the capabilities, and its
    root rule refuses it for a VM that already runs another version (``status.image``)."""

    field: str  # under spec.smbOverQuic
    versions: frozenset[WindowsServerVersion]
    needs: str  # what the guest must run, for the message

    def rows(self, catalog: Iterable[CatalogRow] = CATALOG) -> list[CatalogRow]:
        """The images that run it."""
        return [r for r in catalog if r.version in self.versions and r.carries(Capability.SMB_OVER_QUIC)]

    def _versions(self) -> str:
        return " or ".join(sorted(self.versions))

    def message(self) -> str:
        return (
            f"spec.smbOverQuic.{self.field} needs {self.needs}, which only Windows Server {self._versions()} "
            "images run, and no such image allowed by spec.image carries every capability in spec.capabilities: "
            f"pin spec.image.windowsServerVersion to {self._versions()} (or unpin it), or remove {self.field}"
        )

    def rule(self, catalog: Iterable[CatalogRow] = CATALOG) -> Rule:
        fits = (
            " || ".join(
                f"(({_pins_match(r)}) && (!has(self.capabilities) || "
                f"self.capabilities.all(c, c in {_quote(c for c in Capability if r.carries(c))})))"
                for r in self.rows(catalog)
            )
            or "false"
        )
        return {
            "rule": f"!has(self.smbOverQuic) || !has(self.smbOverQuic.{self.field}) || ({fits})",
            "message": self.message(),
        }

    def allowed(self, pins: ImagePins, capabilities: Iterable[Capability],
                catalog: Iterable[CatalogRow] = CATALOG) -> bool:  # fmt: skip
        """The Python twin of ``rule``."""
        return any(pins.matches(r) and r.carries_all(capabilities) for r in self.rows(catalog))

    def root_rule(self, has_image: str) -> Rule:
        return {
            "rule": (
                f"!({has_image}) || !has(self.spec.smbOverQuic) || !has(self.spec.smbOverQuic.{self.field})"
                f" || self.status.image.windowsServerVersion in {_quote(sorted(self.versions))}"
            ),
            "messageExpression": (
                f"'spec.smbOverQuic.{self.field} needs Windows Server {self._versions()}"
                " but the VM runs Windows Server ' + self.status.image.windowsServerVersion + "
                f"' (status.image), and a VM cannot change its image in place: remove {self.field}, or "
                "create a new AzureEditionVM'"
            ),
            "fieldPath": f".spec.smbOverQuic.{self.field}",
        }


CLIENT_ACCESS = VersionGated(
    "clientAccess", SMB_CLIENT_ACCESS_VERSIONS, "SMB over QUIC client access control"
)
ALTERNATIVE_PORT = VersionGated("alternativePort", SMB_ALTERNATIVE_PORT_VERSIONS, "SMB alternative ports")
VERSION_GATED = (CLIENT_ACCESS, ALTERNATIVE_PORT)


def spec_rules(catalog: Iterable[CatalogRow] = CATALOG) -> list[Rule]:
    """All rules placed on ``spec``."""
    catalog = tuple(catalog)
    rules = required_when_rules() + [r for c in Capability if (r := capability_rule(c, catalog))]
    rules.extend(gated.rule(catalog) for gated in VERSION_GATED)
    if combination_rule_needed(catalog):
        rules.append(combination_rule(catalog))
    return rules


def root_rules(catalog: Iterable[CatalogRow] = CATALOG) -> list[Rule]:
    """Rules on the whole object: the spec must stay compatible with the image the VM already runs.

    ``status.image`` is written by the operator once the image is resolved; a later spec change that
    would need another image (a new capability, a new pin) is refused, because Azure cannot change a
    VM's image in place and we never replace a VM silently.
    """
    table = (
        "{" + ", ".join(f"'{r.sku}': {_quote(c for c in Capability if r.carries(c))}" for r in catalog) + "}"
    )
    has_image = "has(self.status) && has(self.status.image)"
    return [
        {
            "rule": (
                f"!({has_image}) || !(self.status.image.sku in {table})"
                f" || !has(self.spec.capabilities)"
                f" || self.spec.capabilities.all(c, c in {table}[self.status.image.sku])"
            ),
            "messageExpression": (
                "'spec.capabilities asks for a capability that image ' + self.status.image.sku + "
                "' (status.image.sku) cannot carry, and a VM cannot change its image in place: "
                "remove the capability, or create a new AzureEditionVM for it'"
            ),
            "fieldPath": ".spec.capabilities",
        },
        {
            "rule": (
                f"!({has_image}) || !has(self.spec.image)"
                " || ((!has(self.spec.image.windowsServerVersion)"
                " || self.spec.image.windowsServerVersion == self.status.image.windowsServerVersion)"
                " && (!has(self.spec.image.experience)"
                " || self.spec.image.experience == self.status.image.experience))"
            ),
            "message": (
                "spec.image must match the image the VM already runs (status.image): a VM cannot change "
                "its image in place; create a new AzureEditionVM for another image"
            ),
            "fieldPath": ".spec.image",
        },
        *(gated.root_rule(has_image) for gated in VERSION_GATED),
    ]


# ----------------------------------------------------------------------------- input rules (docs/security.md)
# Each rule refuses at admission what Azure would refuse later; the pydantic model carries the same
# rule as a Python twin (api.v1alpha1), and tests/unit/test_admission_agreement.py proves they agree.

SUBNET_SUBSCRIPTION_MESSAGE = (
    "{field} must be in spec.azure.subscriptionId: a NIC cannot join a subnet of another subscription"
)
SERVER_NAME_IP_MESSAGE = (
    "spec.smbOverQuic.serverName must be a DNS name, not an IP address: SMB over QUIC clients match "
    "the name against the certificate's DNS SAN"
)


def tag_rules() -> list[Rule]:
    """On ``spec.azure.tags``: Azure's tag-name rules (a structural schema cannot constrain map keys)."""
    return [
        {
            "rule": "self.all(k, k.size() >= 1 && k.size() <= 512)",
            "message": "spec.azure.tags: tag names must be 1-512 characters (Azure's limit)",
        },
        {
            "rule": "self.all(k, !k.matches('[<>%&\\\\\\\\?/]'))",
            "message": "spec.azure.tags: tag names must not contain any of < > % & \\ ? / (Azure refuses them)",
        },
    ]


def _subnet_rule(path: str, field: str) -> Rule:
    return {
        "rule": f"{path}.lowerAscii().startsWith('/subscriptions/' + self.azure.subscriptionId.lowerAscii() + '/')",
        "message": SUBNET_SUBSCRIPTION_MESSAGE.format(field=field),
    }


def input_rules() -> list[Rule]:
    """Cross-field rules on ``spec``: subnets in the VM's subscription."""
    extended = _subnet_rule("self.extendedNetwork.extendedSubnetId", "spec.extendedNetwork.extendedSubnetId")
    extended["rule"] = f"!has(self.extendedNetwork) || {extended['rule']}"
    return [_subnet_rule("self.azure.subnetId", "spec.azure.subnetId"), extended]


def server_name_rules() -> list[Rule]:
    return [{"rule": "!self.matches('^[0-9.]+$')", "message": SERVER_NAME_IP_MESSAGE}]
