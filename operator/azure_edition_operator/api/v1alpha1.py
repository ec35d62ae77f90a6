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

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ..images import Capability, Experience, WindowsServerVersion
from . import cel

GROUP = "azureedition.io"
VERSION = "v1alpha1"
KIND = "AzureEditionVM"
PLURAL = "azureeditionvms"
SINGULAR = "azureeditionvm"
SHORT_NAMES = ["aevm"]
CATEGORIES = ["azure"]
FINALIZER = f"{GROUP}/finalizer"

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
RESOURCE_GROUP = r"[-A-Za-z0-9_.()]{0,89}[-A-Za-z0-9_()]"
ARM_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,78}[A-Za-z0-9_])?"
SUBNET_ID_PATTERN = (
    rf"^(?i)/subscriptions/{GUID}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft\.Network"
    rf"/virtualNetworks/{ARM_NAME}/subnets/{ARM_NAME}$"
)
SUBSCRIPTION_ID_PATTERN = rf"^{GUID}$"
DNS_NAME_PATTERN = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
IMAGE_VERSION_PATTERN = r"^(latest|[0-9]+\.[0-9]+\.[0-9]+)$"


def parse_duration(text: str) -> timedelta:
    """Parse a Kubernetes-style duration ("90s", "10m", "1h30m") into a timedelta."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or match is None:
        raise ValueError(f"invalid duration {text!r}: use e.g. 90s, 10m, 1h or 1h30m")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
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
    small_disk: bool = Field(False, description="Use the -smalldisk image variant (30 GiB OS disk).")
    version: str = Field(
        "latest",
        max_length=32,
        pattern=IMAGE_VERSION_PATTERN,
        description="Marketplace image version: 'latest' or a version such as 20348.2402.240405.",
    )


class AzureSpec(ApiModel):
    """Where and how the VM lives in Azure."""

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
    vm_size: str = Field(
        "Standard_D2as_v5",
        max_length=64,
        pattern=r"^[A-Za-z0-9_]+$",
        description="VM size; can be changed in place (the VM is resized).",
    )
    subnet_id: str = Field(
        max_length=512,
        pattern=SUBNET_ID_PATTERN,
        description="ARM resource ID of the subnet for the primary NIC.",
    )
    public_ip: bool = Field(
        False, alias="publicIP", description="Create a Standard static public IP on the primary NIC."
    )
    tags: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict,
        max_length=40,
        description="Azure tags for every resource the operator creates (its own tags are added).",
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


class HotpatchSpec(ApiModel):
    """Hotpatch settings (used when Hotpatch is requested)."""

    reboot_setting: RebootSetting = Field(
        RebootSetting.IF_REQUIRED,
        description="Reboot behaviour of platform-orchestrated patching: IfRequired, Never or Always.",
    )


class SmbOverQuicSpec(ApiModel):
    """SMB over QUIC: the name clients use, and when to warn about the certificate."""

    server_name: str = Field(
        max_length=253,
        pattern=DNS_NAME_PATTERN,
        description="DNS name SMB clients connect to; the certificate must carry it as a DNS SAN (SNI).",
    )
    port: int = Field(443, ge=1, le=65535, description="UDP port of the SMB over QUIC listener.")
    expiry_warning_days: int = Field(
        30,
        ge=1,
        le=365,
        description="Warn (condition and Event) this many days before the certificate expires.",
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

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": cel.spec_rules()})

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
        max_length=16,
        pattern=DURATION_PATTERN,
        description="How often Hotpatch status and the SMB certificate are checked, e.g. 90s, 10m, 1h.",
        json_schema_extra={"x-kubernetes-validations": [
            {"rule": "duration(self) >= duration('5s') && duration(self) <= duration('24h')",
             "message": "checkInterval must be between 5s and 24h, e.g. 10m"}]},
    )  # fmt: skip
    deletion_policy: DeletionPolicy = Field(
        DeletionPolicy.DELETE,
        description="On delete: Delete removes the Azure resources; Orphan leaves them, untagged.",
    )

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


class Condition(ApiModel):
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


class CertificateState(enum.StrEnum):
    VALID = "Valid"
    EXPIRING_SOON = "ExpiringSoon"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    UNREACHABLE = "Unreachable"
    DISABLED = "Disabled"


class CertificateSource(enum.StrEnum):
    PROBE = "Probe"
    IN_GUEST = "InGuest"


class SmbOverQuicStatus(ApiModel):
    """The SMB over QUIC endpoint and the certificate it serves."""

    server_name: str | None = Field(None, description="Name probed (SNI).")
    state: CertificateState | None = Field(
        None, description="Valid, ExpiringSoon, Expired, Invalid, Unreachable, Disabled."
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
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, ImageResolved, VMProvisioned and one per requested capability.",
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
