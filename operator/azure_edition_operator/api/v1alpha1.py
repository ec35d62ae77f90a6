"""AzureEditionVM v1alpha1 (group azureedition.io): spec and status as pydantic models.

These models are the single source of the CRD (``api.crdgen``): each field's description
becomes ``kubectl explain`` text, and ``x-kubernetes-validations`` attached here become CEL rules
the API server enforces at ``kubectl apply``.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from ..images import Capability, Experience, ImagePins, WindowsServerVersion
from . import cel

GROUP = "azureedition.io"
VERSION = "v1alpha1"
KIND = "AzureEditionVM"
PLURAL = "azureeditionvms"
SINGULAR = "azureeditionvm"
SHORT_NAMES = ["aevm"]
CATEGORIES = ["azure"]
FINALIZER = f"{GROUP}/finalizer"


def _ascii_ci(word: str) -> str:
    """``word`` matched case-insensitively by ASCII classes only.

    Why not ``(?i)``: Go's RE2 (the API server), Rust's regex (pydantic) and Python all fold case
    over Unicode, so ``(?i)subscriptions`` also matches ``ſubſcriptions`` (U+017F) and ``K`` matches
    the Kelvin sign: a non-ASCII ARM ID would be admitted and fail later in Azure.
    """
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
RESOURCE_GROUP = r"[-A-Za-z0-9_.()]{0,89}[-A-Za-z0-9_()]"
ARM_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,78}[A-Za-z0-9_])?"
SUBNET_ID_PATTERN = (
    rf"^/{_ascii_ci('subscriptions')}/{GUID}/{_ascii_ci('resourceGroups')}/{RESOURCE_GROUP}"
    rf"/{_ascii_ci('providers')}/{_ascii_ci('Microsoft.Network')}"
    rf"/{_ascii_ci('virtualNetworks')}/{ARM_NAME}/{_ascii_ci('subnets')}/{ARM_NAME}$"
)
SUBSCRIPTION_ID_PATTERN = rf"^{GUID}$"
DNS_NAME_PATTERN = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

# Azure's tag limits (learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations):
# 50 tags per resource, names up to 512 and values up to 256 characters, names without < > % & \ ? /.
# The operator adds its own three tags (azure.specs.OUR_TAG_KEYS), so a user may set 47.
AZURE_MAX_TAGS = 50
OPERATOR_TAG_COUNT = 3
MAX_USER_TAGS = AZURE_MAX_TAGS - OPERATOR_TAG_COUNT
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
TAG_NAME_FORBIDDEN = "<>%&\\?/"
TAG_NAME_PATTERN = r"^[^<>%&\\?/]+$"
RESERVED_TAG_PREFIX = "azureedition.io_"
# The owner tag's value is "<namespace>/<name>" and must fit Azure's tag value limit; the CRD cannot
# see the namespace, so the ValidatingAdmissionPolicy (deploy/admission) checks this and
# ``owner_ref_problem`` is its Python twin.
MAX_OWNER_REF = MAX_TAG_VALUE
# Annotation tokens the operator copies into status and Events (azureedition.io/assess-patches).
ASSESS_ANNOTATION = f"{GROUP}/assess-patches"
# The Warning Event the operator posts when it gives up on an assess token (kubectl aevm assess reads it).
ASSESS_FAILED_EVENT = "PatchAssessmentFailed"
MAX_ANNOTATION_TOKEN = 63
ANNOTATION_TOKEN_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"


TagName = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_TAG_NAME, pattern=TAG_NAME_PATTERN),
]


def subnet_in_subscription(subnet_id: str, subscription_id: str) -> bool:
    """The Python twin of ``cel.subnet_rule``: the subnet's subscription segment is ``subscription_id``."""
    parts = subnet_id.split("/")
    return len(parts) > 2 and parts[2].lower() == subscription_id.lower()


def owner_ref_problem(namespace: str, name: str) -> str | None:
    """Why ``namespace/name`` cannot be the owner tag's value, or None."""
    ref = f"{namespace}/{name}"
    if len(ref) > MAX_OWNER_REF:
        return (
            f"namespace/name is {len(ref)} characters but becomes the Azure tag {RESERVED_TAG_PREFIX}owner, "
            f"whose value may be at most {MAX_OWNER_REF}: use a shorter name"
        )
    return None


def annotation_token_problem(token: str) -> str | None:
    """Why an ``azureedition.io/assess-patches`` token is refused, or None."""
    if not re.fullmatch(ANNOTATION_TOKEN_PATTERN, token):
        return (
            f"{ASSESS_ANNOTATION} must be 1-{MAX_ANNOTATION_TOKEN} characters of letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit (e.g. a date: 2026-11-28)"
        )
    return None


def assess_event_message(token: str, text: str) -> str:
    """An assess Event's message: it starts with the token, so a waiting client finds its answer."""
    return f"assessment {token}: {text}"


# The one duration grammar: the CRD's pattern, and what parse_duration reads.
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
IMAGE_VERSION_PATTERN = r"^(latest|[0-9]+\.[0-9]+\.[0-9]+)$"
VM_NAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,62}[A-Za-z0-9_])?$"
"""An Azure VM resource name: 1-64 characters, no leading ``_`` and no trailing ``.`` or ``-`` (ARM's
naming rules for ``Microsoft.Compute/virtualMachines``)."""


def parse_duration(text: str) -> timedelta:
    """Parse a Kubernetes-style duration ("90s", "10m", "1h30m") into a timedelta."""
    match = re.fullmatch(DURATION_PATTERN, text)
    if not text or match is None:
        raise ValueError(f"invalid duration {text!r}: use e.g. 90s, 10m, 1h or 1h30m")
    hours, minutes, seconds = (int(g[:-1]) if g else 0 for g in match.groups())  # g is e.g. "10m"
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


class ApiModel(BaseModel):
    """Base: camelCase on the wire, unknown fields refused, enums kept as values."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=False
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _immutable(what: str, hint: str) -> dict[str, Any]:
    return {"rule": "self == oldSelf", "message": f"{what} is immutable: {hint}"}


# ----------------------------------------------------------------------------- spec


class RebootSetting(enum.StrEnum):
    IF_REQUIRED = "IfRequired"
    NEVER = "Never"
    ALWAYS = "Always"


class DeletionPolicy(enum.StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class ManagementPolicy(enum.StrEnum):
    """How far the operator may act on Azure for one object (Crossplane's ``managementPolicies``, Azure
    Service Operator's ``reconcile-policy``)."""

    FULL = "Full"  # create, correct drift, recreate, delete: the default
    OBSERVE = "Observe"  # reads and checks only: no Azure write, no guest change, no delete
    PAUSED = "Paused"  # no Azure call at all while it holds


class OnMissing(enum.StrEnum):
    """What to do about a VM deleted outside the operator."""

    RECREATE = "Recreate"
    REPORT = "Report"


class ImageSpec(ApiModel):
    """Optional pins on the Azure Edition image; resolution fills in whatever is not pinned."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _immutable("spec.image", "a VM's image cannot change in place; create a new AzureEditionVM")
            ]
        }
    )

    windows_server_version: WindowsServerVersion | None = Field(
        None, description="Windows Server release to use (2022 or 2025). Default: the newest that fits."
    )
    experience: Experience | None = Field(
        None, description="Core or DesktopExperience. Default: Core unless only Desktop Experience fits."
    )
    small_disk: StrictBool = Field(False, description="Use the -smalldisk image variant (30 GiB OS disk).")
    version: str = Field(
        "latest",
        max_length=32,
        pattern=IMAGE_VERSION_PATTERN,
        description="Marketplace image version: 'latest' or a version such as 20348.2402.240405.",
    )


class AzureSpec(ApiModel):
    """Where and how the VM lives in Azure."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.publicIPDnsLabel) || (has(self.publicIP) && self.publicIP)",
                    "message": "spec.azure.publicIPDnsLabel names the public IP: set spec.azure.publicIP: true",
                },
                {
                    "rule": "has(self.vmName) == has(oldSelf.vmName)",
                    "message": "spec.azure.vmName is immutable: it cannot be added or removed after creation",
                },
            ]
        }
    )

    subscription_id: str = Field(
        max_length=36,
        pattern=SUBSCRIPTION_ID_PATTERN,
        description="Azure subscription ID (a GUID). Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            _immutable("spec.azure.subscriptionId", "create a new AzureEditionVM to move subscriptions")]},
    )  # fmt: skip
    resource_group: str = Field(
        max_length=90,
        pattern=f"^{RESOURCE_GROUP}$",
        description="Resource group that holds the VM, its NICs, public IP and OS disk. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            _immutable("spec.azure.resourceGroup", "create a new AzureEditionVM to move resource groups")]},
    )  # fmt: skip
    location: str = Field(
        max_length=40,
        pattern=r"^[a-z0-9]+$",
        description="Azure region, e.g. westeurope. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            _immutable("spec.azure.location", "a VM cannot move regions; create a new AzureEditionVM")]},
    )  # fmt: skip
    vm_name: str | None = Field(
        None,
        max_length=64,
        pattern=VM_NAME_PATTERN,
        description="Name of the VM in Azure. Default: a name derived from the object's namespace and name. "
        "Set it to manage a VM that already exists (its NICs, public IP and disk are discovered from it); "
        "a VM without this operator's owner tags is taken only with spec.azure.adopt: true. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [
            _immutable("spec.azure.vmName", "create a new AzureEditionVM to manage another VM")]},
    )  # fmt: skip
    adopt: StrictBool = Field(
        False,
        description="Take an existing VM that carries no owner tag of this operator (created in the portal, "
        "by Terraform or Bicep) under management, with its NICs and public IP. A VM owned by another "
        "AzureEditionVM, or by another cluster, is never taken.",
    )
    vm_size: str = Field(
        "Standard_D2as_v5",
        max_length=64,
        pattern=r"^[A-Za-z0-9_]+$",
        description="VM size; can be changed in place (Azure restarts a running VM to resize it; an adopted VM "
        "too, under managementPolicy Full).",
    )
    subnet_id: str = Field(
        max_length=512,
        pattern=SUBNET_ID_PATTERN,
        description="ARM resource ID of the subnet for the primary NIC.",
    )
    public_ip: StrictBool = Field(
        False, alias="publicIP", description="Create a Standard static public IP on the primary NIC."
    )
    public_ip_dns_label: str | None = Field(
        None,
        alias="publicIPDnsLabel",
        pattern=r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$",
        description="DNS name label of the public IP (dnsSettings.domainNameLabel): Azure then resolves "
        "<label>.<location>.cloudapp.azure.com to it, a name SMB clients can use or a CNAME can point at.",
    )

    @model_validator(mode="after")
    def _label_needs_public_ip(self) -> AzureSpec:
        if self.public_ip_dns_label is not None and not self.public_ip:
            raise ValueError("spec.azure.publicIPDnsLabel names the public IP: set spec.azure.publicIP: true")
        return self

    tags: dict[TagName, Annotated[StrictStr, Field(max_length=MAX_TAG_VALUE)]] = Field(
        default_factory=dict,
        max_length=MAX_USER_TAGS,
        description=(
            f"Azure tags for every resource the operator creates (its own {OPERATOR_TAG_COUNT} tags are "
            f"added, so at most {MAX_USER_TAGS}): names 1-{MAX_TAG_NAME} characters without "
            f"{' '.join(TAG_NAME_FORBIDDEN)}, values up to {MAX_TAG_VALUE}."
        ),
        json_schema_extra={"x-kubernetes-validations": cel.tag_rules()},
    )
    on_missing: OnMissing = Field(
        OnMissing.RECREATE,
        description="A VM deleted outside the operator: Recreate it from the recorded image (a Warning "
        "Event VMRecreated), or only Report it (VMProvisioned=False, reason VMNotFound).",
    )


class SecretReference(ApiModel):
    """A Secret in the resource's namespace."""

    name: str = Field(
        max_length=253,
        pattern=DNS_NAME_PATTERN,
        description="Name of a Secret in the same namespace with keys 'username' and 'password'.",
    )


class Weekday(enum.StrEnum):
    MONDAY = "Monday"
    TUESDAY = "Tuesday"
    WEDNESDAY = "Wednesday"
    THURSDAY = "Thursday"
    FRIDAY = "Friday"
    SATURDAY = "Saturday"
    SUNDAY = "Sunday"


# The window's bounds: Update Manager's maintenance window, 30 minutes to 3 h 55 min (maintenance.py's
# MIN_INSTALL/MAX_INSTALL say why; a test keeps the two equal).
WINDOW_MIN = "30m"
WINDOW_MAX = "3h55m"
START_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
TIME_ZONE_PATTERN = r"^[A-Za-z][-A-Za-z0-9_+]*(/[-A-Za-z0-9_+]+){0,2}$"
RING_LABEL = f"{GROUP}/ring"
"""The label naming a VM's ring in its namespace's baseline rollout (rings and soak: the operator's
rollout ConfigMap). A tenant may relabel its own VM: at worst it moves that VM to another ring of its own
namespace's rollout, whose state is per namespace."""


class MaintenanceWindowSpec(ApiModel):
    """A weekly window in a time zone: in a baseline month the operator installs the month's patches
    (installPatches, rebootSetting IfRequired) inside it, ring by ring (label azureedition.io/ring)."""

    days_of_week: list[Weekday] = Field(
        min_length=1,
        max_length=7,
        description="Days the window opens on (local days in timeZone), e.g. [Saturday].",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    start_time: str = Field(
        pattern=START_TIME_PATTERN,
        description="Local wall-clock time the window opens, HH:MM (24 h), e.g. 02:00. A start inside a "
        "spring-forward gap opens that much later (02:30 becomes 03:30).",
    )
    time_zone: str = Field(
        "UTC",
        max_length=64,
        pattern=TIME_ZONE_PATTERN,
        description="IANA time zone of startTime and daysOfWeek, e.g. Europe/Berlin.",
    )
    duration: str = Field(
        WINDOW_MAX,
        min_length=2,
        max_length=16,
        pattern=DURATION_PATTERN,
        description=f"How long the window stays open, {WINDOW_MIN} to {WINDOW_MAX} (Update Manager's bounds); "
        "installPatches' maximumDuration ends with it.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": f"duration(self) >= duration('{WINDOW_MIN}') && duration(self) <= duration('{WINDOW_MAX}')",
             "message": f"maintenanceWindow.duration must be between {WINDOW_MIN} and {WINDOW_MAX}, e.g. 3h"}]},
    )  # fmt: skip

    @field_validator("days_of_week")
    @classmethod
    def _days_are_a_set(cls, value: list[Weekday]) -> list[Weekday]:
        if len(set(value)) != len(value):
            raise ValueError("daysOfWeek must not repeat")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timeZone {value!r} is not an IANA time zone, e.g. Europe/Berlin") from None
        return value

    @field_validator("duration")
    @classmethod
    def _bounded(cls, value: str) -> str:
        if not parse_duration(WINDOW_MIN) <= parse_duration(value) <= parse_duration(WINDOW_MAX):
            raise ValueError(
                f"maintenanceWindow.duration must be between {WINDOW_MIN} and {WINDOW_MAX}, e.g. 3h"
            )
        return value


class HotpatchSpec(ApiModel):
    """Hotpatch settings (used when Hotpatch is requested)."""

    reboot_setting: RebootSetting = Field(
        RebootSetting.IF_REQUIRED,
        description="Reboot behaviour of platform-orchestrated patching: IfRequired, Never or Always.",
    )
    maintenance_window: MaintenanceWindowSpec | None = Field(
        None,
        description="When the baseline months' patches (and their reboot) are installed: the operator calls "
        "installPatches inside this window, ring by ring. Without it the platform alone installs, whenever "
        "its safe-deployment wave reaches the VM.",
    )


class TlsSecretReference(ApiModel):
    """A ``kubernetes.io/tls`` Secret in the resource's namespace (as cert-manager writes it)."""

    name: str = Field(
        max_length=253,
        pattern=DNS_NAME_PATTERN,
        description="Name of a Secret in the same namespace with keys 'tls.crt' (leaf first, then its chain) "
        "and 'tls.key'.",
    )


class KeyVaultCertificateSpec(ApiModel):
    """A Key Vault certificate, delivered into the guest by the Key Vault VM extension."""

    secret_url: str = Field(
        max_length=2048,
        pattern=r"^https://[^/\s]+/secrets/[0-9A-Za-z-]{1,127}/?$",
        description="The certificate's secret URL without a version (https://<vault>.vault.azure.net/secrets/"
        "<name>): the extension's observedCertificates entry, which follows the newest version.",
    )
    polling_interval_seconds: StrictInt = Field(
        3600,
        ge=1,
        le=86400,
        description="How often the Key Vault extension looks for a new version (seconds).",
    )


class SmbCertificateSourceSpec(ApiModel):
    """Where the SMB over QUIC certificate comes from (exactly one source): the operator gets it into the
    guest's LocalMachine\\My store and maps it for serverName whenever a newer valid one is there."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.secretRef) != has(self.keyVault)",
                    "message": "spec.smbOverQuic.certificate needs exactly one source: secretRef or keyVault",
                }
            ]
        }
    )

    secret_ref: TlsSecretReference | None = Field(
        None,
        description="A kubernetes.io/tls Secret; pushed into the guest with a managed Run Command's protected "
        "parameters when it changes.",
    )
    key_vault: KeyVaultCertificateSpec | None = Field(
        None,
        description="A Key Vault certificate: the VM gets a system-assigned managed identity and the "
        "KeyVaultForWindows extension; the identity needs a role that reads secrets on the vault.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> SmbCertificateSourceSpec:
        if (self.secret_ref is None) == (self.key_vault is None):
            raise ValueError("spec.smbOverQuic.certificate needs exactly one source: secretRef or keyVault")
        return self


class ClientCertificateMatch(ApiModel):
    """A client certificate, by its SHA-256 hash or by its issuer (exactly one)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.sha256) != has(self.issuer)",
                    "message": "give exactly one of sha256 or issuer",
                }
            ]
        }
    )

    sha256: str | None = Field(
        None, pattern=r"^[0-9A-Fa-f]{64}$", description="SHA-256 hash of the client certificate, hex."
    )
    issuer: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="Issuer name, as Windows shows it (e.g. CN=Contoso CA).",
    )

    @model_validator(mode="after")
    def _one(self) -> ClientCertificateMatch:
        if (self.sha256 is None) == (self.issuer is None):
            raise ValueError("give exactly one of sha256 or issuer")
        return self


class SmbClientAccessSpec(ApiModel):
    """SMB over QUIC client access control (Windows Server 2025): which client certificates may connect."""

    require_client_certificate: bool = Field(
        True, description="Clients must present a certificate (RequireClientAuthentication on the mapping)."
    )
    allow: list[ClientCertificateMatch] = Field(
        default_factory=list, max_length=256, description="Grant-SmbClientAccessToServer entries."
    )
    block: list[ClientCertificateMatch] = Field(
        default_factory=list,
        max_length=256,
        description="Block-SmbClientAccessToServer entries (win over allow).",
    )
    audit: bool = Field(False, description="Audit client access (AuditClientCertificateAccess).")


class SmbOverQuicSpec(ApiModel):
    """SMB over QUIC: the name clients use, and when to warn about the certificate."""

    server_name: str = Field(
        max_length=253,
        pattern=DNS_NAME_PATTERN,
        description="DNS name SMB clients connect to; the certificate must carry it as a DNS SAN (SNI).",
        json_schema_extra={"x-kubernetes-validations": cel.server_name_rules()},
    )

    @field_validator("server_name")
    @classmethod
    def _not_an_ip(cls, value: str) -> str:
        if re.fullmatch(r"[0-9.]+", value):
            raise ValueError(cel.SERVER_NAME_IP_MESSAGE)
        return value

    port: StrictInt = Field(443, ge=1, le=65535, description="UDP port of the SMB over QUIC listener.")
    alternative_port: StrictInt | None = Field(
        None,
        ge=1,
        le=65535,
        description="An additional UDP port SMB over QUIC also listens on (New-SmbServerAlternativePort), "
        "opened by an inbound rule in the network security group the operator puts on the VM's NIC; Windows "
        "Server 2025 images only.",
    )
    expiry_warning_days: StrictInt = Field(
        30,
        ge=1,
        le=365,
        description="Warn (condition and Event) this many days before the certificate expires.",
    )
    client_access: SmbClientAccessSpec | None = Field(
        None,
        description="Client access control, applied in the guest and corrected on drift; Windows Server 2025 "
        "images only.",
    )
    certificate: SmbCertificateSourceSpec | None = Field(
        None,
        description="Certificate source to rotate from; without it the operator only watches the certificate "
        "and warns before it expires.",
    )


class ExtendedNetworkSpec(ApiModel):
    """Extended Network for Azure: a second NIC on the stretched subnet."""

    extended_subnet_id: str = Field(
        max_length=512,
        pattern=SUBNET_ID_PATTERN,
        description="ARM resource ID of the subnet stretched from on-premises (second NIC).",
    )


class AzureEditionVMSpec(ApiModel):
    """Desired state: the capabilities wanted, and where the VM runs."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": cel.spec_rules() + cel.input_rules()}
    )

    capabilities: list[Capability] = Field(
        default_factory=list,
        max_length=len(Capability),
        description="Azure Edition capabilities to enable (a set): Hotpatch, SMBOverQUIC, ExtendedNetwork.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    image: ImageSpec | None = Field(None, description="Optional image pins; immutable once set.")
    azure: AzureSpec = Field(description="Azure placement and sizing.")
    admin_credentials_secret_ref: SecretReference = Field(
        description="Secret holding the local administrator's username and password."
    )
    hotpatch: HotpatchSpec | None = Field(None, description="Hotpatch settings.")
    smb_over_quic: SmbOverQuicSpec | None = Field(
        None, description="SMB over QUIC settings; required when SMBOverQUIC is requested."
    )
    extended_network: ExtendedNetworkSpec | None = Field(
        None, description="Extended Network settings; required when ExtendedNetwork is requested."
    )
    check_interval: str = Field(
        "10m",
        min_length=2,  # the pattern allows "", which CEL's duration() cannot read: refused by the schema
        max_length=16,
        pattern=DURATION_PATTERN,
        description="How often Hotpatch status and the SMB certificate are checked, e.g. 90s, 10m, 1h.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "duration(self) >= duration('5s') && duration(self) <= duration('24h')",
             "message": "checkInterval must be between 5s and 24h, e.g. 10m"}]},
    )  # fmt: skip
    deletion_policy: DeletionPolicy = Field(
        DeletionPolicy.DELETE,
        description="On delete: Delete removes the Azure resources; Orphan leaves them, untagged. Applies "
        "only under managementPolicy Full: an observed or paused object's delete leaves Azure as it is.",
    )
    management_policy: ManagementPolicy = Field(
        ManagementPolicy.FULL,
        description="Full: the operator creates, corrects and deletes. Observe: it reads Azure and runs the "
        "checks but never writes to Azure, changes the guest or deletes (the first step of a migration; "
        "differences from the spec are reported). Paused: no Azure call at all while it holds (said in "
        "status), e.g. during maintenance.",
    )

    def image_pins(self) -> ImagePins:
        """What ``spec.image`` pins: the bounds of image resolution, and of a recorded image reused."""
        image = self.image or ImageSpec()
        return ImagePins(image.windows_server_version, image.experience, image.small_disk, image.version)

    @field_validator("capabilities")
    @classmethod
    def _capabilities_are_a_set(cls, value: list[Capability]) -> list[Capability]:
        if len(set(value)) != len(value):
            raise ValueError("capabilities must not repeat")
        return value

    @field_validator("check_interval")
    @classmethod
    def _interval_parses(cls, value: str) -> str:
        interval = parse_duration(value)
        if not timedelta(seconds=5) <= interval <= timedelta(hours=24):
            raise ValueError("checkInterval must be between 5s and 24h, e.g. 10m")
        return value

    @model_validator(mode="after")
    def _cel_twins(self) -> AzureEditionVMSpec:
        """The CRD's cross-field CEL rules (``cel.spec_rules``), same decisions and messages."""
        requested = set(self.capabilities)
        for capability, field, message in cel.REQUIRED_WHEN:
            if capability in requested and getattr(self, to_snake(field)) is None:
                raise ValueError(message)
        image = self.image or ImageSpec()
        pins = ImagePins(image.windows_server_version, image.experience, image.small_disk)
        for capability in self.capabilities:
            refusal = cel.refusal(capability)
            if refusal is not None and cel.pin_key(pins) in refusal[0]:
                raise ValueError(refusal[1])
        for gated in cel.VERSION_GATED:
            value = getattr(self.smb_over_quic, to_snake(gated.field), None) if self.smb_over_quic else None
            if value is not None and not gated.allowed(pins, self.capabilities):
                raise ValueError(gated.message())
        return self

    @model_validator(mode="after")
    def _subnets_in_subscription(self) -> AzureEditionVMSpec:
        subscription = self.azure.subscription_id
        if not subnet_in_subscription(self.azure.subnet_id, subscription):
            raise ValueError(cel.SUBNET_SUBSCRIPTION_MESSAGE.format(field="spec.azure.subnetId"))
        extended = self.extended_network
        if extended is not None and not subnet_in_subscription(extended.extended_subnet_id, subscription):
            field = "spec.extendedNetwork.extendedSubnetId"
            raise ValueError(cel.SUBNET_SUBSCRIPTION_MESSAGE.format(field=field))
        return self

    @property
    def check_interval_seconds(self) -> float:
        return parse_duration(self.check_interval).total_seconds()


# ----------------------------------------------------------------------------- status


class Phase(enum.StrEnum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    DELETING = "Deleting"


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


# The CRD schema of a condition only; the operator works with conditions.Condition.
class ConditionSchema(ApiModel):
    """A metav1.Condition."""

    type: str = Field(max_length=316, description="Condition type, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(max_length=1024, description="CamelCase reason for the last transition.")
    message: str = Field(
        "", max_length=32768, description="Human-readable detail: what is wrong and what to do."
    )
    last_transition_time: datetime = Field(description="When the status last changed.")
    observed_generation: int = Field(0, ge=0, description="metadata.generation this condition is about.")


class ImageStatus(ApiModel):
    """The image the operator resolved for this VM."""

    publisher: str = Field(description="Marketplace publisher.")
    offer: str = Field(description="Marketplace offer.")
    sku: str = Field(description="Marketplace SKU, e.g. 2022-datacenter-azure-edition-core.")
    version: str = Field(description="Image version ('latest' or pinned).")
    windows_server_version: WindowsServerVersion = Field(description="Windows Server release.")
    experience: Experience = Field(description="Core or DesktopExperience.")


class VMStatus(ApiModel):
    """What Azure reports about the VM."""

    resource_id: str | None = Field(None, description="ARM resource ID of the VM.")
    vm_id: str | None = Field(None, description="Azure's unique VM ID (properties.vmId).")
    provisioning_state: str | None = Field(None, description="ARM provisioningState.")
    power_state: str | None = Field(None, description="Power state from the instance view, e.g. running.")
    private_ip_address: str | None = Field(
        None, alias="privateIPAddress", description="Primary NIC private IP."
    )
    public_ip_address: str | None = Field(None, alias="publicIPAddress", description="Public IP, if any.")
    fqdn: str | None = Field(None, description="The public IP's DNS name, when it has a label.")


class CycleMonth(enum.StrEnum):
    HOTPATCH = "Hotpatch"
    BASELINE = "Baseline"


class HotpatchStatus(ApiModel):
    """Hotpatch enrolment and the guest's patch state (instanceView.patchStatus)."""

    enabled: bool | None = Field(None, description="patchSettings.enableHotpatching as Azure reports it.")
    patch_mode: str | None = Field(None, description="patchSettings.patchMode, e.g. AutomaticByPlatform.")
    assessment_state: str | None = Field(None, description="State of the last patch assessment.")
    last_assessment_time: datetime | None = Field(None, description="When the last assessment started.")
    critical_and_security_patch_count: int | None = Field(
        None, description="Missing critical/security patches."
    )
    other_patch_count: int | None = Field(None, description="Missing patches of other classifications.")
    reboot_pending: bool | None = Field(None, description="The guest waits for a reboot to finish patching.")
    last_installation_state: str | None = Field(None, description="State of the last patch installation.")
    last_installation_time: datetime | None = Field(None, description="When the last installation started.")
    installed_patch_count: int | None = Field(None, description="Patches installed by the last installation.")
    failed_patch_count: int | None = Field(None, description="Patches that failed in the last installation.")
    cycle_month: CycleMonth | None = Field(
        None, description="Whether this month is a Hotpatch or Baseline month."
    )
    next_baseline_month: str | None = Field(
        None, pattern=r"^[0-9]{4}-[0-9]{2}$", description="Next baseline (reboot) month, YYYY-MM."
    )
    last_assess_token: str | None = Field(
        None, description="Value of the azureedition.io/assess-patches annotation last acted on."
    )
    cycle_month_source: str | None = Field(
        None,
        description="Where cycleMonth comes from: Calendar (the Hotpatch calendar the operator holds as data), or "
        "AssessPatches (the last assessment found this month's security updates needing a reboot; the data wins).",
    )
    days_since_baseline: int | None = Field(
        None, description="Days since the last baseline's release (its Patch Tuesday), per the calendar."
    )
    hotpatches_pending: int | None = Field(
        None,
        description="Critical/security patches of the last assessment that install without a reboot "
        "(rebootBehavior NeverReboots); absent when the platform has assessed since the operator's assessment.",
    )
    reboot_updates_pending: int | None = Field(
        None,
        description="Patches of the last assessment that need or may request a reboot "
        "(CanRequestReboot, AlwaysRequiresReboot); absent as hotpatchesPending.",
    )
    pending_patch_count: int | None = Field(None, description="Patches the last installation left pending.")
    maintenance_window_exceeded: bool | None = Field(
        None, description="The last installation ran out of its maximum duration."
    )
    patch_mode_state: str | None = Field(
        None, description="configurationStatuses: the patch mode's state (Ready, Pending, Failed)."
    )
    assessment_mode_state: str | None = Field(
        None, description="configurationStatuses: the assessment mode's state (Ready, Pending, Failed)."
    )


class CertificateState(enum.StrEnum):
    VALID = "Valid"
    EXPIRING_SOON = "ExpiringSoon"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    UNREACHABLE = "Unreachable"
    DISABLED = "Disabled"
    UNTRUSTED = "Untrusted"


class CertificateSource(enum.StrEnum):
    PROBE = "Probe"
    IN_GUEST = "InGuest"


class SmbOverQuicStatus(ApiModel):
    """The SMB over QUIC endpoint and the certificate it serves."""

    server_name: str | None = Field(None, description="Name probed (SNI).")
    state: CertificateState | None = Field(
        None, description="Valid, ExpiringSoon, Expired, Invalid, Untrusted, Unreachable, Disabled."
    )
    not_after: datetime | None = Field(None, description="Certificate expiry.")
    days_remaining: int | None = Field(None, description="Whole days until notAfter (negative once expired).")
    subject: str | None = Field(None, description="Certificate subject.")
    issuer: str | None = Field(None, description="Certificate issuer.")
    thumbprint: str | None = Field(None, description="SHA-1 thumbprint, as Windows shows it.")
    dns_names: list[str] | None = Field(None, description="DNS subject alternative names.")
    server_enabled: bool | None = Field(
        None, description="EnableSMBQUIC on the server, from the in-guest check."
    )
    source: CertificateSource | None = Field(
        None, description="Probe (QUIC handshake) or InGuest (Run Command)."
    )
    certificate_source: str | None = Field(
        None,
        description="Where the mapped certificate comes from when the operator rotates it: Secret/<name> or "
        "KeyVault/<secretUrl>.",
    )
    last_rotated: datetime | None = Field(
        None, description="When the operator last mapped a new certificate (this operator process's memory)."
    )
    ports: list[int] | None = Field(
        None,
        description="UDP ports whose QUIC probe got a certificate: spec.smbOverQuic.port, then the alternative "
        "port (only with spec.smbOverQuic.alternativePort).",
    )


class RolloutPhase(enum.StrEnum):
    WAITING = "Waiting"
    INSTALLING = "Installing"
    INSTALLED = "Installed"
    FAILED = "Failed"
    NOT_IN_ROLLOUT = "NotInRollout"


class MaintenanceStatus(ApiModel):
    """Where this VM stands in the baseline rollout of its namespace (written by the rollout loop)."""

    ring: str | None = Field(None, description="The ring the VM belongs to (label azureedition.io/ring).")
    phase: RolloutPhase | None = Field(
        None,
        description="Waiting, Installing, Installed, Failed, or NotInRollout (its ring is not configured).",
    )
    month: str | None = Field(
        None, pattern=r"^[0-9]{4}-[0-9]{2}$", description="The baseline month, YYYY-MM."
    )
    max_patch_publish_date: datetime | None = Field(
        None, description="installPatches' maxPatchPublishDate: the same for every ring of the rollout."
    )
    next_window: datetime | None = Field(None, description="When the VM's maintenance window next opens.")


class AzureEditionVMStatus(ApiModel):
    """Observed state, written only by the operator."""

    observed_generation: int | None = Field(None, description="metadata.generation the status reflects.")
    phase: Phase | None = Field(
        None, description="Pending, Provisioning, Ready, Degraded, Failed or Deleting."
    )
    image: ImageStatus | None = Field(None, description="The resolved image.")
    vm: VMStatus | None = Field(None, description="The Azure VM.")
    hotpatch: HotpatchStatus | None = Field(None, description="Hotpatch state (when Hotpatch is requested).")
    smb_over_quic: SmbOverQuicStatus | None = Field(
        None, description="SMB over QUIC certificate (when SMBOverQUIC is requested)."
    )
    maintenance: MaintenanceStatus | None = Field(
        None,
        description="This VM in its namespace's baseline rollout (with spec.hotpatch.maintenanceWindow).",
    )
    conditions: list[ConditionSchema] = Field(
        default_factory=list,
        description="Ready, ImageResolved, VMProvisioned, one per requested capability, Reconciling and Stalled; "
        "HotpatchRollout with spec.hotpatch.maintenanceWindow.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class ObjectMeta(BaseModel):
    """The parts of metadata the models need; everything else passes through."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    namespace: str | None = None


class AzureEditionVM(ApiModel):
    """A Windows Server Azure Edition VM with the capabilities it should carry."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": cel.root_rules()})

    api_version: str = Field(f"{GROUP}/{VERSION}", description="azureedition.io/v1alpha1")
    kind: str = Field(KIND, description="AzureEditionVM")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")
    spec: AzureEditionVMSpec = Field(description="Desired state.")
    status: AzureEditionVMStatus | None = Field(None, description="Observed state, written by the operator.")


# ----------------------------------------------------------------------------- TenantPolicy (docs/security.md)
# Cluster-scoped on purpose: a namespaced policy would live where tenants can write it. Only
# cluster administrators write TenantPolicies; tenants can at most read them. Several policies may
# select one namespace: each of them must allow a target (policies only ever narrow), and a
# namespace no policy selects may target nothing (unless the operator runs --single-tenant).

POLICY_KIND = "TenantPolicy"
POLICY_PLURAL = "tenantpolicies"
POLICY_SINGULAR = "tenantpolicy"
POLICY_SHORT_NAMES = ["aetp"]
ANY_RESOURCE_GROUP = "*"
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
SUBNET_PREFIX_PATTERN = rf"^/{_ascii_ci('subscriptions')}/{GUID}/[\x21-\x7e]*$"


class NamespaceSelector(ApiModel):
    """Namespaces by label (matchLabels only: every label must be present with that value)."""

    match_labels: dict[StrictStr, Annotated[StrictStr, Field(max_length=63)]] = Field(
        min_length=1, max_length=16, description="Labels a namespace must carry, all of them."
    )


class TenantWorkloadIdentity(ApiModel):
    """An Entra application trusted for the operator's service account token (federated credential)."""

    client_id: str = Field(
        max_length=36, pattern=SUBSCRIPTION_ID_PATTERN, description="Application (client) ID."
    )
    tenant_id: str = Field(max_length=36, pattern=SUBSCRIPTION_ID_PATTERN, description="Entra tenant ID.")


class TenantClientSecret(ApiModel):
    """A service principal secret in a Secret of the operator's own namespace (tenants cannot read it)."""

    secret_name: str = Field(
        max_length=253,
        pattern=DNS_NAME_PATTERN,
        description="Secret in the operator's namespace with keys tenantId, clientId and clientSecret.",
    )


class TenantCredential(ApiModel):
    """The Azure identity used for this tenant's VMs instead of the operator's own: exactly one kind."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [{
            "rule": "has(self.workloadIdentity) != has(self.clientSecret)",
            "message": "credential: set exactly one of workloadIdentity or clientSecret"}]}
    )  # fmt: skip

    workload_identity: TenantWorkloadIdentity | None = Field(None, description="Workload identity.")
    client_secret: TenantClientSecret | None = Field(None, description="Service principal secret.")

    @model_validator(mode="after")
    def _exactly_one(self) -> TenantCredential:
        if (self.workload_identity is None) == (self.client_secret is None):
            raise ValueError("credential: set exactly one of workloadIdentity or clientSecret")
        return self

    @property
    def key(self) -> str:
        """Names the credential (metrics, logs, cache key); never contains a secret."""
        if self.workload_identity is not None:
            wi = self.workload_identity
            return f"workload-identity:{wi.tenant_id.lower()}/{wi.client_id.lower()}"
        assert self.client_secret is not None
        return f"client-secret:{self.client_secret.secret_name}"


PREFIX_END_MESSAGE = (
    "subnetIdPrefixes: end each prefix with '/' (.../virtualNetworks/vnet-a/), or vnet-a would also "
    "admit vnet-ab; a whole subnet ID with '/' appended admits that one subnet"
)


class TenantPolicySpec(ApiModel):
    """Which namespaces may place AzureEditionVMs where, and with which Azure identity."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [{
            "rule": "has(self.namespaces) || has(self.namespaceSelector)",
            "message": "select namespaces: set namespaces, namespaceSelector, or both"}, {
            "rule": "self.subnetIdPrefixes.all(p, p.endsWith('/'))", "message": PREFIX_END_MESSAGE}]}
    )  # fmt: skip

    namespaces: list[Annotated[StrictStr, Field(max_length=63, pattern=NAMESPACE_PATTERN)]] | None = Field(
        None, max_length=256, description="Namespaces this policy applies to, by name."
    )
    namespace_selector: NamespaceSelector | None = Field(
        None, description="Namespaces this policy applies to, by label (in addition to namespaces)."
    )
    subscription_ids: list[Annotated[StrictStr, Field(max_length=36, pattern=SUBSCRIPTION_ID_PATTERN)]] = (
        Field(min_length=1, max_length=64, description="Subscriptions the selected namespaces may use.")
    )
    resource_groups: list[Annotated[StrictStr, Field(max_length=90, pattern=rf"^({RESOURCE_GROUP}|\*)$")]] = Field(
        min_length=1, max_length=256,
        description="Resource groups (compared case-insensitively) they may use; '*' allows any.",
    )  # fmt: skip
    subnet_id_prefixes: list[Annotated[StrictStr, Field(max_length=512, pattern=SUBNET_PREFIX_PATTERN)]] = Field(
        min_length=1, max_length=256,
        description="ARM ID prefixes (case-insensitive) that spec.azure.subnetId and "
        "spec.extendedNetwork.extendedSubnetId must start with, e.g. "
        "/subscriptions/<id>/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-a/",
    )  # fmt: skip
    credential: TenantCredential | None = Field(
        None, description="Azure identity for these namespaces' VMs; default: the operator's own."
    )

    @model_validator(mode="after")
    def _selects_something(self) -> TenantPolicySpec:
        if self.namespaces is None and self.namespace_selector is None:
            raise ValueError("select namespaces: set namespaces, namespaceSelector, or both")
        return self

    @model_validator(mode="after")
    def _prefixes_end_a_path_segment(self) -> TenantPolicySpec:
        if not all(p.endswith("/") for p in self.subnet_id_prefixes):
            raise ValueError(PREFIX_END_MESSAGE)
        return self


class TenantPolicy(ApiModel):
    """Cluster-scoped: which namespaces may target which Azure subscriptions, resource groups and subnets."""

    api_version: str = Field(f"{GROUP}/{VERSION}", description="azureedition.io/v1alpha1")
    kind: str = Field(POLICY_KIND, description=POLICY_KIND)
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")
    spec: TenantPolicySpec = Field(description="What the selected namespaces may target.")
