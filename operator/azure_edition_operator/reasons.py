"""The vocabulary: every ``VMProvisioned`` reason the operator can emit, and every Azure code it knows.

One fact, one place. The code (``azure.errors.classify``, ``reconciler``, ``conditions``), the
reference (``hack/docgen.py`` → docs/reference.md), the Argo CD and Flux health checks and the
alerts (tests/deploy/test_status_agreement.py runs them on every reason here) and the metrics'
``reason`` label values (``metric_reason``) all follow this module, so none of them can name a
reason the others lack. Each reason is classified once: who fixes it (``Kind``: time and the
operator → ``Reconciling``; a person → ``Stalled``) and, for capability conditions, how bad it is
(``Severity``: a warning keeps ``Ready=True``, an outage does not).

Azure codes are classified as Azure behaves, not by HTTP status alone:

* **transient** codes clear with time (RBAC propagation, a resource group or subnet created by
  another GitOps tool a moment later, a provider registration in progress, a busy resource, 5xx,
  429). They are retried with back-off and shown as the condition reason with Azure's code.
* **user** codes need a person (a parameter, a SKU, an image, quota, an ownership conflict). The
  condition says what to change; they are still retried slowly (``USER_RETRY_SECONDS``) so a
  raised quota or a granted role heals without an edit.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Kind(enum.StrEnum):
    OK = "ok"  # VMProvisioned=True
    PROGRESS = "progress"  # an operation runs; time fixes it
    TRANSIENT = "transient"  # Azure said "later"; retried with back-off
    USER = "user"  # a person must act; retried slowly


# How often a user-fixable failure is tried again without any edit (a quota raised, a role granted).
USER_RETRY_SECONDS = 900.0
# Transient back-off: from Azure's Retry-After (or BASE) doubling per attempt up to CAP.
TRANSIENT_BASE_SECONDS = 5.0
TRANSIENT_CAP_SECONDS = 300.0
# Capacity problems clear on the scale of minutes.
ALLOCATION_RETRY_SECONDS = 300.0


@dataclass(frozen=True)
class Reason:
    """A ``VMProvisioned`` reason: what it means and what to do (docs/reference.md shows both)."""

    name: str
    kind: Kind
    meaning: str
    action: str


@dataclass(frozen=True)
class AzureCode:
    """An Azure error code: transient or not, where it is documented, what to tell the user."""

    code: str
    transient: bool
    source: str
    hint: str = ""
    reason: str = ""  # the VMProvisioned reason; default: the code itself

    @property
    def reason_name(self) -> str:
        return self.reason or self.code


_RBAC = (
    "grant the operator's Azure identity Virtual Machine Contributor and Network Contributor on the "
    "resource group, and Microsoft.Network/virtualNetworks/subnets/join/action on the subnets"
)
_SUBNETS = "spec.azure.subnetId (and spec.extendedNetwork.extendedSubnetId)"
_ARM = "learn.microsoft.com/azure/azure-resource-manager/troubleshooting/common-deployment-errors"
_RETRY = "learn.microsoft.com/azure/architecture/best-practices/retry-service-specific"
_CAPZ = "cluster-api-provider-azure azure/services/async, azure/errors.go"
_ASO = "Azure Service Operator v2 internal/genericarmclient error classification"


def _codes(*entries: AzureCode) -> dict[str, AzureCode]:
    return {e.code: e for e in entries}


AZURE_CODES: Mapping[str, AzureCode] = _codes(
    # ---- transient: time (or another tool) fixes them -------------------------------------------
    AzureCode("AuthorizationFailed", True, f"{_ASO}; role assignments take up to 10 min to propagate",
              f"the operator is not (yet) allowed to do this: {_RBAC}; retried, a granted role heals it"),
    AzureCode("LinkedAuthorizationFailed", True, f"{_ASO}; role propagation on the linked subnet",
              f"the operator may not (yet) use a linked resource (usually the subnet): {_RBAC}"),
    AzureCode("ResourceGroupNotFound", True, f"{_ASO}; under GitOps the group is often created moments later",
              "the resource group does not exist (yet): create it or fix spec.azure.resourceGroup "
              "(the operator does not create resource groups)"),
    AzureCode("InvalidResourceReference", True, f"{_ASO}; a subnet applied by another tool appears later",
              f"a referenced resource does not exist (yet) or is in another region: check {_SUBNETS}"),
    AzureCode("MissingSubscriptionRegistration", True, f"{_ARM}; registration takes minutes",
              "register the Microsoft.Compute and Microsoft.Network resource providers in the subscription"),
    AzureCode("ReferencedResourceNotProvisioned", True, f"{_CAPZ}; a dependency is still provisioning",
              "a resource this one depends on is still being provisioned"),
    AzureCode("RetryableError", True, _RETRY, "Azure asks to try again"),
    AzureCode("Conflict", True, f"{_RETRY}; 409 while another operation runs",
              "another operation on the resource is in progress"),
    AzureCode("AnotherOperationInProgress", True, _ARM, "another operation on the resource is in progress"),
    AzureCode("OperationPreempted", True, _ARM, "Azure preempted the operation"),
    AzureCode("ResourceBeingDeleted", True, _ARM, "the resource is being deleted; it is created again afterwards"),
    AzureCode("NicInUse", True, _ARM, "the NIC is still attached to a VM that is being deleted"),
    AzureCode("PublicIPAddressCannotBeDeleted", True, _ARM, "the public IP is still attached to a NIC"),
    AzureCode("InternalServerError", True, _RETRY, "an Azure server error"),
    AzureCode("InternalExecutionError", True, _RETRY, "an Azure server error"),
    AzureCode("InternalOperationError", True, _RETRY, "an Azure server error"),
    AzureCode("ServerTimeout", True, _RETRY, "Azure timed out"),
    AzureCode("GatewayTimeout", True, _RETRY, "Azure timed out"),
    AzureCode("ServiceUnavailable", True, _RETRY, "Azure is unavailable"),
    AzureCode("RequestTimeout", True, _RETRY, "the request timed out"),
    AzureCode("TooManyRequests", True, f"{_RETRY}; 429 with Retry-After",
              "Azure is throttling the operator's requests", reason="Throttled"),
    AzureCode("AllocationFailed", True, _ARM,
              "Azure has no capacity for this VM size here right now; choose another spec.azure.vmSize or wait"),
    AzureCode("ZonalAllocationFailed", True, _ARM, "no capacity in the zone right now", reason="AllocationFailed"),
    AzureCode("OverconstrainedAllocationRequest", True, _ARM, "no capacity for these constraints right now",
              reason="AllocationFailed"),
    AzureCode("OverconstrainedZonalAllocationRequest", True, _ARM, "no capacity for these constraints right now",
              reason="AllocationFailed"),
    AzureCode("ResourceNotFound", True, "ours: only reaches classify for a resource being created or polled",
              "the resource is not visible yet (eventual consistency)"),
    # ---- user: a person must change something ---------------------------------------------------
    AzureCode("InvalidParameter", False, _ARM, "Azure refused a VM parameter; change the spec field it concerns"),
    AzureCode("BadRequest", False, _ARM, "Azure refused the request; change the spec field it concerns",
              reason="InvalidParameter"),
    AzureCode("InvalidRequestContent", False, _ARM,
              "Azure could not read the request; this is an operator bug, please report it", reason="Failed"),
    AzureCode("SkuNotAvailable", False, _ARM,
              "the VM size is not offered in this region for this subscription: choose another spec.azure.vmSize "
              "(az vm list-skus --location <region>)"),
    AzureCode("QuotaExceeded", False, _ARM,
              "the subscription's vCPU quota would be exceeded: request a quota increase, free capacity, or "
              "choose a smaller spec.azure.vmSize"),
    AzureCode("OperationNotAllowedQuota", False, _ARM, "quota would be exceeded", reason="QuotaExceeded"),
    AzureCode("SubscriptionQuotaExceeded", False, _ARM, "quota would be exceeded", reason="QuotaExceeded"),
    AzureCode("PlatformImageNotFound", False, _ARM,
              "the Marketplace image is not available here: unpin or change spec.image.version"),
    AzureCode("ImageNotFound", False, _ARM, "the image does not exist: unpin or change spec.image",
              reason="PlatformImageNotFound"),
    AzureCode("InvalidSubnetReference", False, _ARM, f"the subnet is invalid: check {_SUBNETS}",
              reason="InvalidParameter"),
    AzureCode("OperationNotAllowed", False, _ARM, "Azure does not allow this operation on the VM now"),
    AzureCode("PropertyChangeNotAllowed", False, _ARM,
              "that property cannot change after creation: revert it, or create a new AzureEditionVM",
              reason="InvalidParameter"),
    AzureCode("RequestDisallowedByPolicy", False, _ARM,
              "an Azure Policy assignment denies the request: ask the policy owner, or change the spec"),
    AzureCode("SubscriptionNotFound", False, _ARM,
              "the subscription does not exist or the operator cannot see it: check spec.azure.subscriptionId"),
    AzureCode("LocationNotAvailableForResourceType", False, _ARM,
              "the region cannot host this resource: change spec.azure.location", reason="InvalidParameter"),
    AzureCode("NoRegisteredProviderFound", False, _ARM,
              "the region or subscription cannot serve this API version: change spec.azure.location"),
    AzureCode("AuthenticationFailed", False, "azure-identity", "Azure rejected the operator's credential: "
              "check its Azure identity settings", reason="AuthenticationFailed"),
    AzureCode("InvalidAuthenticationToken", False, _ARM, "Azure rejected the operator's token: check its Azure identity settings",
              reason="AuthenticationFailed"),
    AzureCode("InvalidAuthenticationTokenTenant", False, _ARM,
              "the operator's identity belongs to another tenant than the subscription: check AZURE_TENANT_ID",
              reason="AuthenticationFailed"),
    AzureCode("CredentialUnavailable", False, "azure-identity",
              "no Azure credential is configured: see the operator's Azure identity settings",
              reason="AuthenticationFailed"),
    AzureCode("OwnershipConflict", False, "ours: the owner tags name another object or cluster (or none)", ""),
)  # fmt: skip

# Azure refuses a delete this way when the operator may not (or no longer) see anything there: with
# nothing ever created, the finalizer is released (nothing of ours can exist).
REFUSED_ON_DELETE = frozenset({"AuthorizationFailed", "LinkedAuthorizationFailed", "SubscriptionNotFound"})

# Codes whose first ``error.details`` entry says what actually went wrong.
WRAPPER_CODES = frozenset({"DeploymentFailed", "ResourceDeploymentFailure", "MultipleErrorsOccurred"})

# ----------------------------------------------------------------------------- VMProvisioned reasons

SUCCEEDED = "Succeeded"
CREATING = "Creating"
UPDATING = "Updating"
DELETING = "Deleting"
THROTTLED = "Throttled"
RETRYING = "Retrying"  # a transient failure without a code of the table (no answer, an unknown 5xx)
FAILED = "Failed"  # a user-fixable failure without a code of the table
VM_NOT_FOUND = "VMNotFound"
VM_STOPPED = "VMStopped"
NOT_PERMITTED = "NotPermitted"
OWNERSHIP_CONFLICT = "OwnershipConflict"
ADMIN_CREDENTIALS_MISSING = "AdminCredentialsMissing"
ADMIN_CREDENTIALS_INVALID = "AdminCredentialsInvalid"
INVALID_SPEC = "InvalidSpec"
QUOTA_EXCEEDED = "QuotaExceeded"
PREREQUISITES_NOT_MET = "PrerequisitesNotMet"  # refused before any PUT: ExtendedNetworkReady says which
IMAGE_NOT_OFFERED = "ImageNotOfferedInRegion"  # refused before the first PUT: the region lacks the image
NIC_MISSING = "NetworkInterfaceMissing"  # the VM lacks a NIC it needs (detached or deleted outside)
OBSERVE_ONLY = "ObserveOnly"  # managementPolicy Observe: a write was needed and not made

_FIXED: tuple[Reason, ...] = (
    Reason(SUCCEEDED, Kind.OK, "Azure reports the VM provisioned (`provisioningState: Succeeded`).", "Nothing."),
    Reason(CREATING, Kind.PROGRESS, "A create of the VM or one of its resources runs in Azure; the message "
           "says which and since when.", "Wait; the operator polls the operation without blocking."),
    Reason(UPDATING, Kind.PROGRESS, "An update of the VM or one of its resources (size, tags, NIC, a repair "
           "of a Failed VM) runs in Azure.", "Wait."),
    Reason(DELETING, Kind.PROGRESS, "A delete runs in Azure (deletion, or a resource left over from it).",
           "Wait."),
    Reason(RETRYING, Kind.TRANSIENT, "A transient failure without a known Azure code (no answer, an unknown "
           "5xx or 409); retried with back-off.", "Wait; if it persists the message carries Azure's answer."),
    Reason(FAILED, Kind.USER, "Azure refused the request with a code the operator does not know, or an "
           "operation ended Failed; the message carries Azure's code. Retried every 15 minutes.",
           "Act on the message."),
    Reason(VM_NOT_FOUND, Kind.USER, "The VM was deleted outside the operator and `spec.azure.onMissing: Report` "
           "asks only to report it.", "Delete the AzureEditionVM, or set `onMissing: Recreate`."),
    Reason(VM_STOPPED, Kind.USER, "Azure reports the VM stopped or deallocated (`status.vm.powerState`): "
           "someone stopped it outside the operator, which does not start a VM on its own.",
           "Start the VM in Azure (`az vm start`); the next resync reports it Ready without an edit."),
    Reason(NOT_PERMITTED, Kind.USER, "No TenantPolicy selects the namespace, or one that does not allow its "
           "subscription, resource group or subnet, or two name different credentials (the message names the "
           "policy and rule). No Azure call was made.", "Ask a cluster administrator to change the "
           "TenantPolicy (docs/security.md), or target what it allows. The operator looks again every minute."),
    Reason(OWNERSHIP_CONFLICT, Kind.USER, "An Azure resource the spec names (`spec.azure.vmName`, or the name "
           "the operator derives) exists but does not belong to this AzureEditionVM: its owner tags name another "
           "object, this namespace/name on another cluster (`azureedition.io_cluster`; the message names it), "
           "or no owner at all.", "A VM made outside the operator: set `spec.azure.adopt: true`. Another "
           "object's or cluster's resource is never taken: rename the AzureEditionVM, or release it there first."),
    Reason(ADMIN_CREDENTIALS_MISSING, Kind.USER, "The Secret named by `spec.adminCredentialsSecretRef` does "
           "not exist, lacks `username` or `password`, or the operator may not read it (RBAC).",
           "Create the Secret in the AzureEditionVM's namespace with both keys. The operator retries every "
           "few seconds."),
    Reason(ADMIN_CREDENTIALS_INVALID, Kind.USER, "The admin Secret's `username` or `password` is not UTF-8 "
           "text or breaks Azure's rules (password 12-123 characters with 3 of 4 character classes, not a "
           "well-known value; username at most 20 characters, not reserved). The message names the rule, "
           "never the value.", "Fix the Secret; the operator retries every few seconds."),
    Reason(PREREQUISITES_NOT_MET, Kind.USER, "A requested capability cannot work with this spec, and the "
           "operator refused before creating or changing anything in Azure: `ExtendedNetworkReady` names "
           "what is missing (a VM size without nested virtualization, an unusable extended subnet). Looked at "
           "again every minute, from facts read from Azure at most hourly.", "Change what "
           "`ExtendedNetworkReady`'s reason and message say; the next look (within a minute of a spec edit) "
           "creates the VM."),
    Reason(IMAGE_NOT_OFFERED, Kind.USER, "The resolved Azure Edition image is not offered in "
           "`spec.azure.location` (Azure's `virtualMachineImages` list of the region lacks its SKU), so the "
           "operator refused before creating anything; the message names the regions that offer it. Looked at "
           "again every 15 minutes, from a list read at most hourly.", "Change `spec.azure.location` to a "
           "region the message names, or pin an image the region offers (`spec.image`)."),
    Reason(NIC_MISSING, Kind.USER, "The VM has no network interface attached, or not the one the spec needs "
           "(the primary NIC, or with `ExtendedNetwork` the extended NIC): it was detached or deleted outside "
           "the operator. A NIC can only be attached to a deallocated VM, which the operator does not do on "
           "its own; the message names the NIC.", "Deallocate the VM, attach the NIC the message names, and "
           "start it (`az vm nic add`), or delete the AzureEditionVM and create it again."),
    Reason(OBSERVE_ONLY, Kind.USER, "`spec.managementPolicy: Observe`: Azure differs from the spec in a way "
           "that needs a write, and the operator only observes; nothing was written (the message says what "
           "would have been).", "Change Azure or the spec until they agree, or set `managementPolicy: Full` to "
           "let the operator correct it."),
    Reason(INVALID_SPEC, Kind.USER, "The operator could not read the spec (an object stored before the CRD's "
           "current validation).", "Fix the field the message names; re-apply the CRD from this release."),
)  # fmt: skip


def _from_codes() -> dict[str, Reason]:
    out: dict[str, Reason] = {}
    for entry in AZURE_CODES.values():
        name = entry.reason_name
        if name in out or name in {r.name for r in _FIXED}:
            continue
        kind = Kind.TRANSIENT if entry.transient else Kind.USER
        then = (
            "Retried with back-off; Azure's Retry-After is honoured."
            if entry.transient
            else ("Retried every 15 minutes without an edit, so a fix outside Kubernetes heals it.")
        )
        out[name] = Reason(name, kind, f"Azure answered `{name}`: {entry.hint}.", then)
    return out


VM_PROVISIONED: Mapping[str, Reason] = {r.name: r for r in (*_FIXED, *_from_codes().values())}
"""Every VMProvisioned reason, the only ones the operator emits."""


def kind_of(reason: str) -> Kind | None:
    entry = VM_PROVISIONED.get(reason)
    return entry.kind if entry else None


# Ready repeats these VMProvisioned reasons as they are: they name what the user must provide.
READY_PASS_THROUGH = frozenset(
    {ADMIN_CREDENTIALS_MISSING, ADMIN_CREDENTIALS_INVALID, NOT_PERMITTED, VM_STOPPED, NIC_MISSING}
)
# VMProvisioned reasons that make Ready=False/ProvisioningFailed (a person must act).
USER_REASONS = frozenset(r.name for r in VM_PROVISIONED.values() if r.kind is Kind.USER) - READY_PASS_THROUGH
# Ready reasons (conditions.assess); Argo CD and Flux read Reconciling/Stalled, not these.
READY_REASONS = ("Ready", "Provisioning", "ProvisioningFailed", "Degraded", "ImageUnresolved",
                 *sorted(READY_PASS_THROUGH))  # fmt: skip


# ----------------------------------------------------------------------------- capability reasons
#
# "Ready means serving now": a capability condition that is False is either a *warning* (the VM still
# serves; Ready stays True, the condition carries the reason, plus a Warning Event and the metric) or
# an *outage* (Ready=False). Each reason is classified once here; Ready, Reconciling/Stalled, the Argo
# CD and Flux checks, the alerts and docs/reference.md all follow this table (tests/deploy prove it).


class Severity(enum.StrEnum):
    OK = "ok"  # the condition is True
    WARNING = "warning"  # False, but the VM serves: Ready stays True; alerts warn
    OUTAGE = "outage"  # False, and what the capability promises is not served: Ready=False; alerts page


@dataclass(frozen=True)
class CapabilityReason:
    """A reason of a capability condition: how bad (severity), who fixes it (kind), what to do."""

    condition: str  # the condition type, e.g. "HotpatchHealthy"
    name: str
    severity: Severity
    kind: Kind  # OK; PROGRESS: the operator repairs it itself; USER: a person must act
    meaning: str
    action: str
    before_put: bool = False  # checked at reconcile, before anything is created (PrerequisitesNotMet)

    @property
    def ok(self) -> bool:
        return self.severity is Severity.OK


HOTPATCH_HEALTHY = "HotpatchHealthy"
SMB_CERTIFICATE_VALID = "SMBOverQUICCertificateValid"
EXTENDED_NETWORK_READY = "ExtendedNetworkReady"
NESTED_VIRTUALIZATION_UNSUPPORTED = "NestedVirtualizationUnsupported"
EXTENDED_SUBNET_IS_PRIMARY = "ExtendedSubnetIsPrimary"
EXTENDED_SUBNET_IN_OTHER_NETWORK = "ExtendedSubnetInOtherNetwork"
EXTENDED_SUBNET_DELEGATED = "ExtendedSubnetDelegated"
EXTENDED_SUBNET_IS_GATEWAY_SUBNET = "ExtendedSubnetIsGatewaySubnet"
GATEWAY_SUBNET_MISSING = "GatewaySubnetMissing"
GATEWAY_MISSING = "GatewayMissing"
GATEWAY_NOT_CONNECTED = "GatewayNotConnected"
IP_FORWARDING_DISABLED = "IPForwardingDisabled"
HYPER_V_ROLE_MISSING = "HyperVRoleMissing"
APPLIANCE_NOT_RUNNING = "ApplianceNotRunning"


HOTPATCH_ENABLED = "HotpatchEnabled"
HOTPATCH_NOT_ENABLED = "HotpatchNotEnabled"
REBOOT_PENDING = "RebootPending"
UPDATES_AVAILABLE = "UpdatesAvailable"
HOTPATCH_SUPPORT_ENDING = "HotpatchSupportEnding"
PATCH_INSTALLATION_FAILED = "PatchInstallationFailed"
ASSESSMENT_FAILED = "AssessmentFailed"

CERTIFICATE_VALID = "CertificateValid"
CERTIFICATE_EXPIRING_SOON = "CertificateExpiringSoon"
CERTIFICATE_EXPIRED = "CertificateExpired"
CERTIFICATE_INVALID = "CertificateInvalid"
CERTIFICATE_UNTRUSTED = "CertificateUntrusted"
ENDPOINT_UNREACHABLE = "EndpointUnreachable"
SMB_OVER_QUIC_DISABLED = "SMBOverQUICDisabled"

_W, _O, _OK = Severity.WARNING, Severity.OUTAGE, Severity.OK
_H, _S, _X = HOTPATCH_HEALTHY, SMB_CERTIFICATE_VALID, EXTENDED_NETWORK_READY
_GUIDE = 'Microsoft\'s guide "Extend your on-premises subnets into Azure using extended network for Azure"'


CAPABILITY: tuple[CapabilityReason, ...] = (
    CapabilityReason(_H, HOTPATCH_ENABLED, _OK, Kind.OK,
        "Enrolled (`patchMode: AutomaticByPlatform`, `enableHotpatching: true`); the message names the "
        "current month type and the next baseline (reboot) month.",
        "Nothing. Plan reboots for baseline months (January, April, July, October)."),
    CapabilityReason(_H, HOTPATCH_NOT_ENABLED, _O, Kind.PROGRESS,
        "The VM's patch settings differ from Hotpatch onboarding (changed outside the operator): security "
        "updates would need reboots again. An outage (Ready=False) until the operator has restored them.",
        "The operator restores them; if it keeps coming back, find who changes them (Azure Policy, scripts)."),
    CapabilityReason(_H, PATCH_INSTALLATION_FAILED, _O, Kind.USER,
        "The last patch installation failed or completed with warnings: the VM misses security updates. "
        "An outage (Ready=False).",
        "Check the VM's Windows Update log; retry the installation (Azure Update Manager / installPatches)."),
    CapabilityReason(_H, REBOOT_PENDING, _W, Kind.USER,
        "The guest waits for a reboot to finish patching (a baseline month, or a non-hotpatchable update). "
        "A warning: the VM serves, Ready stays True.",
        "Reboot the VM in a maintenance window (alert AzureEditionHotpatchRebootPending)."),
    CapabilityReason(_H, UPDATES_AVAILABLE, _W, Kind.USER,
        "The last patch assessment found critical or security updates not yet installed. A warning: the "
        "VM serves, Ready stays True; the platform installs them in its next patch window.",
        "Nothing urgent; to install now, run an installation (Azure Update Manager / installPatches) "
        "(alert AzureEditionHotpatchUpdatesAvailable)."),
    CapabilityReason(_H, HOTPATCH_SUPPORT_ENDING, _W, Kind.USER,
        "Hotpatch support for the VM's image ends within six months, or has ended (the catalog's date per "
        "image, with its source: Windows Server 2022 Azure Edition, October 2027). A warning: the VM serves, "
        "Ready stays True; the message names the image to move to.",
        "Plan the move: the image cannot change in place, so create a new AzureEditionVM on the image the "
        "message names (e.g. `spec.image.windowsServerVersion: \"2025\"`) and move the workload."),
    CapabilityReason(_H, ASSESSMENT_FAILED, _W, Kind.USER,
        "The last patch assessment failed: the patch state is unknown. A warning: the VM serves, Ready "
        "stays True.",
        "Check that the VM agent runs and the VM reaches Windows Update."),
    CapabilityReason(_S, CERTIFICATE_VALID, _OK, Kind.OK,
        "The endpoint serves a valid certificate for the server name.", "Nothing."),
    CapabilityReason(_S, CERTIFICATE_EXPIRING_SOON, _W, Kind.USER,
        "The certificate expires within `spec.smbOverQuic.expiryWarningDays`. A warning: clients still "
        "connect, Ready stays True.",
        "Renew it and update the SMB server certificate mapping (`New-SmbServerCertificateMapping`) "
        "to the new thumbprint."),
    CapabilityReason(_S, CERTIFICATE_EXPIRED, _O, Kind.USER,
        "The certificate has expired: SMB over QUIC clients refuse to connect. An outage (Ready=False).",
        "Renew it now and update the certificate mapping."),
    CapabilityReason(_S, CERTIFICATE_UNTRUSTED, _O, Kind.USER,
        "The certificate's chain does not lead to a root in the trust bundle (`AEO_SMB_TRUST_BUNDLE`, "
        "else the system roots): SMB over QUIC clients refuse it, e.g. a self-signed certificate. An "
        "outage (Ready=False).",
        "Issue the certificate from a CA the clients trust and update the certificate mapping; if "
        "your clients trust a private CA, give its root to the operator as `AEO_SMB_TRUST_BUNDLE`."),
    CapabilityReason(_S, CERTIFICATE_INVALID, _O, Kind.USER,
        "The certificate does not meet SMB over QUIC's requirements: no DNS SAN for the server name, "
        "no Server Authentication EKU, a weak key or signature, or not yet valid. An outage (Ready=False).",
        "Issue a certificate that meets them (the message lists what is wrong) and map it."),
    CapabilityReason(_S, ENDPOINT_UNREACHABLE, _O, Kind.USER,
        "No QUIC handshake on UDP `spec.smbOverQuic.port` (nothing listens, a firewall/NSG drops it, "
        "or the handshake fails). An outage (Ready=False).",
        "Check the VM runs, the NSG allows UDP 443, and SMB over QUIC is configured in the guest "
        "(a certificate mapped with `New-SmbServerCertificateMapping`)."),
    CapabilityReason(_S, SMB_OVER_QUIC_DISABLED, _O, Kind.PROGRESS,
        "The in-guest check found SMB over QUIC disabled (`EnableSMBQUIC` false). An outage (Ready=False) "
        "until the operator has enabled it again.",
        "The operator enables it again (`Set-SmbServerConfiguration -EnableSMBQUIC $true`); if it keeps "
        "coming back, find who disables it (alert AzureEditionSMBOverQUICDisabled)."),
    CapabilityReason(_X, EXTENDED_NETWORK_READY, _OK, Kind.OK, "Every prerequisite of " + _GUIDE + " that the "
                     "operator can see holds: a VM size with nested virtualization, a usable extended subnet in "
                     "the primary subnet's virtual network, a gateway with a Connected connection, IP forwarding "
                     "on the extended NIC, and in the guest the Hyper-V role with the appliance running.",
                     "Nothing."),
    CapabilityReason(_X, NESTED_VIRTUALIZATION_UNSUPPORTED, _O, Kind.USER, "`spec.azure.vmSize` belongs to a family "
                     "without nested virtualization (read from Azure's Resource SKUs for the region); the "
                     "extended-network appliance runs as a nested VM. Refused before any PUT.",
                     "Choose one of the sizes the message lists (same region, offered to the subscription).",
                     before_put=True),
    CapabilityReason(_X, EXTENDED_SUBNET_IS_PRIMARY, _O, Kind.USER, "`spec.extendedNetwork.extendedSubnetId` is "
                     "`spec.azure.subnetId`: the appliance needs two subnets. Refused before any PUT.",
                     "Point extendedSubnetId at the subnet with the on-premises CIDR.", before_put=True),
    CapabilityReason(_X, EXTENDED_SUBNET_IN_OTHER_NETWORK, _O, Kind.USER, "The extended subnet lives in another "
                     "virtual network than the primary subnet; a VM's NICs must share one. Refused before any PUT.",
                     "Use a subnet of the primary subnet's virtual network.", before_put=True),
    CapabilityReason(_X, EXTENDED_SUBNET_DELEGATED, _O, Kind.USER, "The extended subnet is delegated to a service "
                     "(Azure reports `delegations`), so it cannot hold the VM's NIC. Refused before any PUT.",
                     "Remove the delegation, or choose a subnet without one.", before_put=True),
    CapabilityReason(_X, EXTENDED_SUBNET_IS_GATEWAY_SUBNET, _O, Kind.USER, "The extended subnet is the virtual "
                     "network's `GatewaySubnet`, reserved for the gateway. Refused before any PUT.",
                     "Use another subnet; the gateway keeps GatewaySubnet.", before_put=True),
    CapabilityReason(_X, GATEWAY_SUBNET_MISSING, _O, Kind.USER, "The virtual network has no `GatewaySubnet`, so "
                     "it can have no VPN or ExpressRoute gateway to on-premises. The operator never creates one.",
                     "Add a GatewaySubnet and a gateway (" + _GUIDE + ")."),
    CapabilityReason(_X, GATEWAY_MISSING, _O, Kind.USER, "The virtual network's `GatewaySubnet` holds no virtual "
                     "network gateway. The operator never creates one.",
                     "Create a site-to-site VPN or ExpressRoute gateway in the virtual network."),
    CapabilityReason(_X, GATEWAY_NOT_CONNECTED, _O, Kind.USER, "The gateway has no connection whose "
                     "`connectionStatus` is `Connected` (the message lists each connection and its status).",
                     "Check the on-premises VPN device or ExpressRoute circuit and the connection's shared key."),
    CapabilityReason(_X, IP_FORWARDING_DISABLED, _O, Kind.USER, "`enableIPForwarding` is off on the extended NIC: "
                     "Azure drops the traffic the appliance forwards for on-premises addresses.",
                     "Enable it: `az network nic update -g <rg> -n <vm>-nic-ext --ip-forwarding true`."),
    CapabilityReason(_X, HYPER_V_ROLE_MISSING, _O, Kind.USER, "The in-guest check found the Hyper-V role not "
                     "installed; the appliance runs as a nested VM.",
                     "`Install-WindowsFeature -Name Hyper-V -IncludeManagementTools -Restart` in the guest."),
    CapabilityReason(_X, APPLIANCE_NOT_RUNNING, _O, Kind.USER, "The in-guest check found the extended-network "
                     "appliance not installed or not running (the message gives its state).",
                     "Deploy or start it with Windows Admin Center's Extended Network tool (" + _GUIDE + ")."),
)  # fmt: skip

CAPABILITY_REASONS: Mapping[str, Mapping[str, CapabilityReason]] = {
    kind: {r.name: r for r in CAPABILITY if r.condition == kind}
    for kind in dict.fromkeys(r.condition for r in CAPABILITY)
}
"""condition type → reason → its classification: every capability reason the operator emits."""


EXTENDED_NETWORK: Mapping[str, CapabilityReason] = CAPABILITY_REASONS[EXTENDED_NETWORK_READY]
"""Every ExtendedNetworkReady reason (docs/reference.md and troubleshooting.md are generated from it)."""


def capability_reason(condition_type: str, reason: str) -> CapabilityReason | None:
    return CAPABILITY_REASONS.get(condition_type, {}).get(reason)


def severity_of(condition_type: str, reason: str) -> Severity:
    """An unknown reason of a False capability condition counts as an outage (never hide trouble)."""
    entry = capability_reason(condition_type, reason)
    return entry.severity if entry else Severity.OUTAGE


# ----------------------------------------------------------------------------- ImageResolved reasons

IMAGE_RESOLVED = "ImageResolved"
UNSUPPORTED_CAPABILITIES = "UnsupportedCapabilities"
IMAGE_REASONS: Mapping[str, Kind] = {IMAGE_RESOLVED: Kind.OK, UNSUPPORTED_CAPABILITIES: Kind.USER}

# ----------------------------------------------------------------------------- HotpatchRollout reasons
# The baseline rollout (rollout.py): only on VMs with spec.hotpatch.maintenanceWindow. Not a capability
# condition: it never changes Ready (a VM whose own installation failed is Degraded by HotpatchHealthy's
# PatchInstallationFailed, from Azure's instance view).

HOTPATCH_ROLLOUT = "HotpatchRollout"
RING_WAITING = "RingWaiting"
PATCHES_INSTALLING = "PatchesInstalling"
PATCHES_INSTALLED = "PatchesInstalled"
ROLLOUT_STOPPED = "RolloutStopped"
RING_NOT_CONFIGURED = "RingNotConfigured"

# ----------------------------------------------------------------------------- kstatus: Reconciling / Stalled
#
# sigs.k8s.io/cli-utils kstatus: Reconciling=True while the operator works toward the spec (time fixes
# it), Stalled=True when progress needs a human; both False once settled. Their True reason is the
# reason of the condition behind it (``Creating``, ``QuotaExceeded``, ``CertificateExpired``, ...).

RECONCILING = "Reconciling"
STALLED = "Stalled"
IDLE = "Idle"  # Reconciling=False: nothing runs (settled, or stalled)
NOT_STALLED = "NotStalled"  # Stalled=False: nothing waits for a person
WAITING_FOR_CHECKS = "Provisioning"  # Reconciling=True: VM there, first capability check pending

# ----------------------------------------------------------------------------- Synced: the management policy
# Crossplane's Synced condition: present only while spec.managementPolicy is not Full (absent under Full,
# so objects that never set it are never rewritten). A paused object is neither reconciling nor stalled.

SYNCED = "Synced"
RECONCILE_PAUSED = "ReconcilePaused"
PAUSED_MESSAGE = (
    "paused: no Azure call is made for this object until spec.managementPolicy is set back to "
    "Full or Observe; the rest of status is as last read"
)
OBSERVE_MESSAGE = "observe only: the operator reads and checks Azure and writes nothing there"

# Warnings with an Event of their own (once per certificate and stage: publish.status_events).
ANNOUNCED_ELSEWHERE = frozenset({CERTIFICATE_EXPIRING_SOON})


def metric_reason(reason: str) -> str:
    """A ``reason`` label value: a vocabulary reason, or ``Other`` (labels must be a closed set)."""
    known = reason in VM_PROVISIONED or reason in IMAGE_REASONS
    return reason if known or any(reason in r for r in CAPABILITY_REASONS.values()) else "Other"


# ----------------------------------------------------------------------------- every condition's reasons
# What each condition reason means and what to do, for every condition type: docs/reference.md
# (hack/docgen.py checks it against the reasons the code emits, both ways) and `kubectl aevm why`
# read this table.


@dataclass(frozen=True)
class ConditionReason:
    """A condition reason: the status it comes with, what it means, what to do."""

    status: str  # "True" | "False"
    meaning: str
    action: str


CONDITION_SUMMARY: Mapping[str, str] = {
    "Ready": 'The summary, "serving now": True when the VM is provisioned and no requested capability has an '
    "outage; a capability *warning* keeps it True and is named in its message. `kubectl wait "
    "--for=condition=Ready`, kstatus (Flux) and the Argo CD health check read it with `Reconciling`/`Stalled`.",
    "ImageResolved": "An Azure Edition image carries every requested capability under the image pins.",
    "VMProvisioned": "The VM, its NIC(s), public IP and OS disk exist in Azure as the spec says.",
    "HotpatchHealthy": "Only with the `Hotpatch` capability: the VM is enrolled in Hotpatch and patching is healthy.",
    "SMBOverQUICCertificateValid": "Only with the `SMBOverQUIC` capability: the SMB over QUIC endpoint "
    "answers with a certificate that is valid for `spec.smbOverQuic.serverName` and not close to expiry.",
    "ExtendedNetworkReady": "Only with the `ExtendedNetwork` capability: every prerequisite of Extended Network "
    "for Azure the operator can see holds (VM size, subnets, gateway and connection, IP forwarding, Hyper-V and "
    "the appliance in the guest). Each False reason stops the feature: `Ready` is False (`Degraded`), or "
    "`ProvisioningFailed` for the reasons checked before anything is created.",
    HOTPATCH_ROLLOUT: "Only with `spec.hotpatch.maintenanceWindow`: where the VM stands in its namespace's "
    "baseline rollout (installPatches inside the window, ring by ring; `status.maintenance` has the ring, phase "
    "and the rollout's maxPatchPublishDate). Never changes `Ready`.",
    "Synced": "Only while `spec.managementPolicy` is not `Full`: False, and says that the operator does not "
    "act on Azure for this object (`ReconcilePaused`: no Azure call at all; `ObserveOnly`: reads and checks, "
    "no write). Absent under `Full`.",
    "Reconciling": "kstatus: True while the operator works toward the spec and time (or the operator itself) "
    "fixes what is missing; its reason is the reason of the condition behind it (`Creating`, `Throttled`, "
    "`HotpatchNotEnabled`, `Provisioning` while the first capability check is due, ...). False once settled.",
    "Stalled": "kstatus: True when progress needs a person; its reason is the reason of the condition behind "
    "it (`QuotaExceeded`, `UnsupportedCapabilities`, `CertificateExpired`, ...). Never True together with "
    "`Reconciling`, so `kubectl wait`, Flux (`wait: true`) and kstatus-based tools end on a permanent "
    "failure instead of waiting forever.",
}

CONDITION_REASONS: Mapping[str, Mapping[str, ConditionReason]] = {
    "Ready": {
        "Ready": ConditionReason(
            "True",
            "VM provisioned and no requested capability has an outage. Capability warnings (a certificate "
            "inside its warning window, a pending reboot, updates found, a failed assessment) keep Ready True "
            "and are listed in the message.",
            "Nothing; act on a warning the message names in your own time (its alert warns, never pages).",
        ),
        "Provisioning": ConditionReason(
            "False",
            "The image is resolved and the VM is being created or updated, or Azure asked the operator "
            "to come back later (throttling, a busy resource).",
            "Wait. The `VMProvisioned` condition says what Azure is doing.",
        ),
        "ProvisioningFailed": ConditionReason(
            "False",
            "Azure refused the VM in a way retrying cannot fix (quota, SKU not available, invalid parameter).",
            "Read the message (it carries Azure's error code and the fix), change the spec or the "
            "subscription (quota), and the operator retries on the next change.",
        ),
        "Degraded": ConditionReason(
            "False",
            "The VM runs, but a capability condition (`HotpatchHealthy`, `SMBOverQUICCertificateValid`) is False "
            "with an *outage* reason (see the severity table below).",
            "The message lists each failing condition with its reason; see that reason below.",
        ),
        "ImageUnresolved": ConditionReason(
            "False",
            "No Azure Edition image carries every requested capability with the given pins.",
            "See `ImageResolved`.",
        ),
        "AdminCredentialsMissing": ConditionReason(
            "False",
            "Repeated from `VMProvisioned`: the admin Secret is missing or incomplete.",
            "See `VMProvisioned` / `AdminCredentialsMissing`.",
        ),
        "AdminCredentialsInvalid": ConditionReason(
            "False",
            "Repeated from `VMProvisioned`: the admin Secret's values break Azure's rules.",
            "See `VMProvisioned` / `AdminCredentialsInvalid`.",
        ),
        "NotPermitted": ConditionReason(
            "False",
            "Repeated from `VMProvisioned`: no TenantPolicy allows this namespace that target.",
            "See `VMProvisioned` / `NotPermitted`.",
        ),
        "VMStopped": ConditionReason(
            "False",
            "Repeated from `VMProvisioned`: the VM is stopped or deallocated (phase `Degraded`).",
            "See `VMProvisioned` / `VMStopped`.",
        ),
        NIC_MISSING: ConditionReason(
            "False",
            "Repeated from `VMProvisioned`: the VM lacks a network interface it needs (phase `Degraded`).",
            "See `VMProvisioned` / `NetworkInterfaceMissing`.",
        ),
    },
    "ImageResolved": {
        "ImageResolved": ConditionReason(
            "True",
            "An image was chosen; the message says which and why (newest version that fits, Core first).",
            "Nothing.",
        ),
        "UnsupportedCapabilities": ConditionReason(
            "False",
            "The pins (`spec.image`) exclude every image that carries the requested capabilities, or the "
            "capabilities changed and the VM's existing image cannot carry the new one.",
            "Remove the pin or the capability the message names, or create a new AzureEditionVM "
            "(a VM cannot change its image in place).",
        ),
    },
    # From VM_PROVISIONED above.
    "VMProvisioned": {
        r.name: ConditionReason("True" if r.kind is Kind.OK else "False", r.meaning, r.action)
        for r in VM_PROVISIONED.values()
    },
    # From CAPABILITY_REASONS above: meaning, action and severity live there.
    **{
        kind: {r.name: ConditionReason("True" if r.severity is Severity.OK else "False", r.meaning, r.action)
               for r in table.values()}
        for kind, table in CAPABILITY_REASONS.items()
    },
    HOTPATCH_ROLLOUT: {
        RING_WAITING: ConditionReason(
            "True", "The VM's ring waits: for a baseline month, for the previous ring to be Ready again and soak, "
            "or for the VM's own window (the message says which and when it next opens).", "Nothing."),
        PATCHES_INSTALLING: ConditionReason(
            "True", "installPatches runs on the VM (rebootSetting IfRequired, maximumDuration ending with the "
            "window), or it has ended and the VM is rebooting.", "Nothing; the VM may reboot inside its window."),
        PATCHES_INSTALLED: ConditionReason(
            "True", "This month's baseline is installed and the VM was running with its agent Ready after it.",
            "Nothing."),
        ROLLOUT_STOPPED: ConditionReason(
            "False", "A ring failed (installPatches ended Failed, or a VM was not Ready within 30 minutes after "
            "it): later rings of this namespace install nothing until a person acts (alert "
            "AzureEditionHotpatchRolloutStopped). The message names the ring and the VMs.",
            "Look at the failed VMs (`HotpatchHealthy`, the VM's Windows Update log); then delete this namespace's "
            "key from the rollout state ConfigMap in the operator's namespace to start the rollout again."),
        RING_NOT_CONFIGURED: ConditionReason(
            "False", "The label azureedition.io/ring names a ring the rollout configuration does not list: "
            "the VM takes part in no rollout (the platform alone patches it).",
            "Set the label to one of the configured rings, or remove it (the last ring)."),
    },
    SYNCED: {
        RECONCILE_PAUSED: ConditionReason("False", "`spec.managementPolicy: Paused`: the operator makes no Azure "
                                          "call for this object (no pass, no check, no assessment); the rest of "
                                          "status is as last read.", "Set `spec.managementPolicy` back to `Full` "
                                          "(or `Observe`) when the maintenance is over."),
        OBSERVE_ONLY: ConditionReason("False", "`spec.managementPolicy: Observe`: the operator reads and checks, "
                                      "and writes nothing to Azure (no create, no correction, no delete, no Run "
                                      "Command that changes the guest); the message lists what differs.",
                                      "Set `spec.managementPolicy: Full` to let the operator manage the VM."),
    },
    # kstatus: True repeats the reason of the condition behind it (documented there); these are the False ones.
    "Reconciling": {
        IDLE: ConditionReason("False", "Nothing is in progress: settled (`Ready=True`) or stalled (see `Stalled`).", "Nothing."),
        RECONCILE_PAUSED: ConditionReason("False", "`spec.managementPolicy: Paused`: nothing runs, and nothing "
                                          "waits for a person either.", "See `Synced`."),
    },
    "Stalled": {
        NOT_STALLED: ConditionReason("False", "Nothing waits for a person.", "Nothing."),
    },
}  # fmt: skip

# Condition types whose good state is False (kstatus): only their True reasons would be trouble.
NEGATIVE_POLARITY = frozenset({RECONCILING, STALLED})


def explain(condition_type: str, reason: str) -> ConditionReason | None:
    """The documented meaning and fix of ``reason`` on ``condition_type``, or None if undocumented."""
    return CONDITION_REASONS.get(condition_type, {}).get(reason)
