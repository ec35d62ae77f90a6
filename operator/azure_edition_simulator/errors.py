"""ARM error envelopes with Azure's codes and, where a captured response was found, Azure's wording.

Every error the simulator returns is ``{"error": {"code", "message", ["target"], ["details"]}}`` — the
shape ``azure.core.exceptions.HttpResponseError`` parses into ``.error.code`` / ``.error.message``.
Messages marked "(wording: simulator)" in the comments could not be matched to a captured Azure
response; their *codes* follow Azure's conventions for the same class of error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ARM_NOT_FOUND_FIX = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


@dataclass
class ArmError(Exception):
    """An ARM error response: HTTP status plus the error envelope (and optional extra headers)."""

    status: int
    code: str
    message: str
    target: str | None = None
    details: list[dict[str, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    innererror: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.code}: {self.message}")

    def body(self) -> dict[str, Any]:
        """The JSON envelope ARM sends."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details is not None:
            error["details"] = self.details
        if self.innererror is not None:
            error["innererror"] = self.innererror
        return {"error": error}


def resource_not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    """404 for a missing resource, in ARM's wording."""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
        + ARM_NOT_FOUND_FIX,
    )


def resource_group_not_found(resource_group: str) -> ArmError:
    """404 for a missing resource group, in ARM's wording."""
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")


def subscription_not_found(subscription_id: str) -> ArmError:
    """404 for an unknown subscription, in ARM's wording."""
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")


def missing_api_version() -> ArmError:
    """400 when ``api-version`` is absent, in ARM's wording."""
    return ArmError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def invalid_api_version(
    api_version: str, resource_type: str, supported: str, location: str = "global"
) -> ArmError:
    """400 for an api-version the resource type does not know."""
    return ArmError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location '{location}' and API version '{api_version}' "
        f"for type '{resource_type}'. The supported api-versions are '{supported}'.",
    )


def invalid_parameter(message: str, target: str | None = None) -> ArmError:
    """400 InvalidParameter, Compute's code for a bad property value."""
    return ArmError(400, "InvalidParameter", message, target=target)


def missing_parameter(name: str) -> ArmError:
    """400 for a missing required property, in Compute's wording."""
    return ArmError(400, "InvalidParameter", f"Required parameter '{name}' is missing (null).", target=name)


def property_change_not_allowed(name: str) -> ArmError:
    """409 for a create-only property changed on update, in Compute's wording."""
    return ArmError(
        409, "PropertyChangeNotAllowed", f"Changing property '{name}' is not allowed.", target=name
    )


def platform_image_not_found(publisher: str, offer: str, sku: str, version: str) -> ArmError:
    """404 PlatformImageNotFound, in Compute's wording."""
    return ArmError(
        404,
        "PlatformImageNotFound",
        f"The platform image '{publisher}:{offer}:{sku}:{version}' is not available. Verify that all fields "
        "in the storage profile are correct. For more details about storage profile information, please "
        "refer to https://aka.ms/storageprofile",
        target="imageReference",
    )


def invalid_resource_reference(referenced_id: str, referencing_id: str) -> ArmError:
    """400 InvalidResourceReference from Network, in its wording (with the nested NotFound detail)."""
    return ArmError(
        400,
        "InvalidResourceReference",
        f"Resource {referenced_id} referenced by resource {referencing_id} was not found. Please make sure "
        "that the referenced resource exists, and that both resources are in the same region.",
        details=[{"code": "NotFound", "message": f"Resource {referenced_id} not found."}],
    )


def nic_in_use(nic_id: str, vm_id: str) -> ArmError:
    """400 NicInUse, in Network's wording."""
    return ArmError(
        400,
        "NicInUse",
        f"Network Interface {nic_id} is used by existing resource {vm_id}. In order to delete the network "
        "interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
    )


def public_ip_in_use_delete(pip_id: str, ip_config_id: str) -> ArmError:
    """400 when deleting a public IP still associated to a NIC, in Network's wording."""
    return ArmError(
        400,
        "PublicIPAddressCannotBeDeleted",
        f"Public IP address {pip_id} can not be deleted since it is still allocated to resource "
        f"{ip_config_id}. In order to delete the public IP, disassociate/detach the Public IP address from "
        "the resource.  To learn how to do this, see aka.ms/deletepublicip.",
    )


def public_ip_in_use_attach(pip_id: str, ip_config_id: str) -> ArmError:
    """400 when a public IP is already used by another ip configuration (wording: simulator)."""
    return ArmError(
        400,
        "PublicIPAddressInUse",
        f"Resource {pip_id} is already in use by {ip_config_id}.",
    )


def disk_attached(disk_name: str, vm_id: str) -> ArmError:
    """409 OperationNotAllowed for deleting an attached managed disk, in Compute's wording."""
    return ArmError(409, "OperationNotAllowed", f"Disk {disk_name} is attached to VM {vm_id}.")


def vm_marked_for_deletion(operation: str, vm_name: str) -> ArmError:
    """409 for operations on a VM whose deletion is in progress, in Compute's wording."""
    return ArmError(
        409,
        "OperationNotAllowed",
        f"Operation '{operation}' is not allowed on VM '{vm_name}' since the VM is marked for deletion. "
        "You can only retry the Delete operation (or wait for an ongoing one to complete).",
    )


def location_not_available(location: str, resource_type: str, available: list[str]) -> ArmError:
    """400 for an unknown region, in ARM's wording."""
    return ArmError(
        400,
        "LocationNotAvailableForResourceType",
        f"The provided location '{location}' is not available for resource type '{resource_type}'. "
        f"List of available regions for the resource type is '{','.join(available)}'.",
    )


def location_required() -> ArmError:
    """400 when a tracked resource has no location, in ARM's wording."""
    return ArmError(400, "LocationRequired", "The location property is required for this definition.")


def invalid_request_content(message: str) -> ArmError:
    """400 for a body that is not valid JSON or not an object, in ARM's wording."""
    return ArmError(400, "InvalidRequestContent", message)


def unknown_route(path: str) -> ArmError:
    """404 for a path no simulated provider serves."""
    return ArmError(
        404,
        "InvalidResourceType",
        f"The resource type could not be found for the request path '{path}'.",
    )


def method_not_allowed(method: str, path: str) -> ArmError:
    """405 for a known path with an unsupported verb."""
    return ArmError(
        405, "MethodNotAllowed", f"The requested resource does not support http method '{method}' ({path})."
    )
