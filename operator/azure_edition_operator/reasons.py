"""The vocabulary: every ``VMProvisioned`` reason the operator can emit, and every Azure code it knows.

One fact, one place. The code (``azure.errors.classify``, ``reconciler``, ``conditions``), the
reference (``hack/docgen.py`` → docs/reference.md), the Argo CD health check's reason lists
(tested against ``READY_DEGRADED_REASONS``) and the metrics' ``reason`` label values
(``metric_reason``) all read this module, so none of them can name a reason the others lack.

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
    AzureCode("OwnershipConflict", False, "ours: the owner-uid tag names another object (or none)", ""),
)  # fmt: skip

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
    Reason(OWNERSHIP_CONFLICT, Kind.USER, "An Azure resource with the name the operator would use exists but "
           "does not belong to this AzureEditionVM (its owner tag names another owner, or none).",
           "Rename the AzureEditionVM, or delete/adopt the stray Azure resource deliberately."),
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
    {ADMIN_CREDENTIALS_MISSING, ADMIN_CREDENTIALS_INVALID, NOT_PERMITTED, VM_STOPPED}
)
# VMProvisioned reasons that make Ready=False/ProvisioningFailed (a person must act).
USER_REASONS = frozenset(r.name for r in VM_PROVISIONED.values() if r.kind is Kind.USER) - READY_PASS_THROUGH
# Ready reasons; Argo CD's health.lua maps READY_DEGRADED_REASONS to Degraded (tested).
READY_REASONS = ("Ready", "Provisioning", "ProvisioningFailed", "Degraded", "ImageUnresolved",
                 *sorted(READY_PASS_THROUGH))  # fmt: skip
READY_DEGRADED_REASONS = frozenset({"ProvisioningFailed", "Degraded", "ImageUnresolved", *READY_PASS_THROUGH})


def metric_reason(reason: str) -> str:
    """A ``reason`` label value: a vocabulary reason, or ``Other`` (labels must be a closed set)."""
    return reason if reason in VM_PROVISIONED else "Other"


# ----------------------------------------------------------------------------- ExtendedNetworkReady reasons


@dataclass(frozen=True)
class CapabilityReason:
    """A reason of a capability condition: its status, whether it is an outage, what it means, the fix."""

    name: str
    ok: bool
    outage: bool  # False with outage: the capability does not work (Ready=False); else a warning
    meaning: str
    action: str
    before_put: bool = False  # checked at reconcile, before anything is created (PrerequisitesNotMet)


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

_GUIDE = 'Microsoft\'s guide "Extend your on-premises subnets into Azure using extended network for Azure"'

EXTENDED_NETWORK: Mapping[str, CapabilityReason] = {r.name: r for r in (
    CapabilityReason(EXTENDED_NETWORK_READY, True, False, "Every prerequisite of " + _GUIDE + " that the "
                     "operator can see holds: a VM size with nested virtualization, a usable extended subnet in "
                     "the primary subnet's virtual network, a gateway with a Connected connection, IP forwarding "
                     "on the extended NIC, and in the guest the Hyper-V role with the appliance running.",
                     "Nothing."),
    CapabilityReason(NESTED_VIRTUALIZATION_UNSUPPORTED, False, True, "`spec.azure.vmSize` belongs to a family "
                     "without nested virtualization (read from Azure's Resource SKUs for the region); the "
                     "extended-network appliance runs as a nested VM. Refused before any PUT.",
                     "Choose one of the sizes the message lists (same region, offered to the subscription).",
                     before_put=True),
    CapabilityReason(EXTENDED_SUBNET_IS_PRIMARY, False, True, "`spec.extendedNetwork.extendedSubnetId` is "
                     "`spec.azure.subnetId`: the appliance needs two subnets. Refused before any PUT.",
                     "Point extendedSubnetId at the subnet with the on-premises CIDR.", before_put=True),
    CapabilityReason(EXTENDED_SUBNET_IN_OTHER_NETWORK, False, True, "The extended subnet lives in another "
                     "virtual network than the primary subnet; a VM's NICs must share one. Refused before any PUT.",
                     "Use a subnet of the primary subnet's virtual network.", before_put=True),
    CapabilityReason(EXTENDED_SUBNET_DELEGATED, False, True, "The extended subnet is delegated to a service "
                     "(Azure reports `delegations`), so it cannot hold the VM's NIC. Refused before any PUT.",
                     "Remove the delegation, or choose a subnet without one.", before_put=True),
    CapabilityReason(EXTENDED_SUBNET_IS_GATEWAY_SUBNET, False, True, "The extended subnet is the virtual "
                     "network's `GatewaySubnet`, reserved for the gateway. Refused before any PUT.",
                     "Use another subnet; the gateway keeps GatewaySubnet.", before_put=True),
    CapabilityReason(GATEWAY_SUBNET_MISSING, False, True, "The virtual network has no `GatewaySubnet`, so "
                     "it can have no VPN or ExpressRoute gateway to on-premises. The operator never creates one.",
                     "Add a GatewaySubnet and a gateway (" + _GUIDE + ")."),
    CapabilityReason(GATEWAY_MISSING, False, True, "The virtual network's `GatewaySubnet` holds no virtual "
                     "network gateway. The operator never creates one.",
                     "Create a site-to-site VPN or ExpressRoute gateway in the virtual network."),
    CapabilityReason(GATEWAY_NOT_CONNECTED, False, True, "The gateway has no connection whose "
                     "`connectionStatus` is `Connected` (the message lists each connection and its status).",
                     "Check the on-premises VPN device or ExpressRoute circuit and the connection's shared key."),
    CapabilityReason(IP_FORWARDING_DISABLED, False, True, "`enableIPForwarding` is off on the extended NIC: "
                     "Azure drops the traffic the appliance forwards for on-premises addresses.",
                     "Enable it: `az network nic update -g <rg> -n <vm>-nic-ext --ip-forwarding true`."),
    CapabilityReason(HYPER_V_ROLE_MISSING, False, True, "The in-guest check found the Hyper-V role not "
                     "installed; the appliance runs as a nested VM.",
                     "`Install-WindowsFeature -Name Hyper-V -IncludeManagementTools -Restart` in the guest."),
    CapabilityReason(APPLIANCE_NOT_RUNNING, False, True, "The in-guest check found the extended-network "
                     "appliance not installed or not running (the message gives its state).",
                     "Deploy or start it with Windows Admin Center's Extended Network tool (" + _GUIDE + ")."),
)}  # fmt: skip
"""Every ExtendedNetworkReady reason (docs/reference.md and troubleshooting.md are generated from it)."""
