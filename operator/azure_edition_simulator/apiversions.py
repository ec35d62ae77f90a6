"""Which ``api-version`` each provider and resource type answers, and ARM's refusals of the others.

Why: ARM routes by (provider, resource type, api-version); an unknown version of a well-formed date gets
``400 NoRegisteredProviderFound`` listing the supported ones, a malformed one ``400
InvalidApiVersionParameter``, a missing one ``400 MissingApiVersionParameter``. Versions: the folders of
azure-rest-api-specs (specification/compute: ComputeRP, DiskRP, Skus; specification/network;
specification/resources) for the years the simulator's published examples come from, plus every version
the pinned SDKs (azure-mgmt-compute 39, azure-mgmt-network 33) know (their ``api_versions_list``). Operation
status URLs carry the version of the request that started the operation, so a provider's
``locations/operations`` accepts every version of that provider.
"""

from __future__ import annotations

import re

from . import errors

API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")

_CRP = (
    "2015-06-15 2016-03-30 2016-04-30-preview 2017-03-30 2017-12-01 2018-04-01 2018-06-01 2018-10-01 "
    "2019-03-01 2019-07-01 2019-12-01 2020-06-01 2020-12-01 2021-03-01 2021-04-01 2021-07-01 2021-11-01 "
    "2022-03-01 2022-08-01 2022-11-01 2023-03-01 2023-07-01 2023-09-01 2024-03-01 2024-07-01 2024-11-01 "
    "2025-04-01 2025-11-01 2026-03-01 2026-04-01"
)
_DISK = (
    "2016-04-30-preview 2017-03-30 2018-04-01 2018-06-01 2018-09-30 2019-03-01 2019-07-01 2019-11-01 "
    "2020-05-01 2020-06-30 2020-09-30 2020-12-01 2021-04-01 2021-08-01 2021-12-01 2022-03-02 2022-07-02 "
    "2023-01-02 2023-04-02 2023-10-02 2024-03-02 2025-01-02 2026-03-02"
)
_SKUS = "2017-03-30 2017-09-01 2019-04-01 2021-07-01"
_NRP = (
    "2015-06-15 2016-03-30 2016-06-01 2016-09-01 2016-12-01 2017-03-01 2017-06-01 2017-09-01 2017-11-01 "
    "2018-01-01 2018-04-01 2018-06-01 2018-08-01 2018-10-01 2018-12-01 2019-02-01 2019-04-01 2019-06-01 "
    "2019-08-01 2019-09-01 2019-11-01 2019-12-01 2020-03-01 2020-04-01 2020-05-01 2020-06-01 2020-07-01 "
    "2020-08-01 2020-11-01 2021-02-01 2021-03-01 2021-05-01 2021-08-01 2022-01-01 2022-05-01 2022-07-01 "
    "2022-09-01 2022-11-01 2023-02-01 2023-04-01 2023-05-01 2023-06-01 2023-09-01 2023-11-01 2024-01-01 "
    "2024-03-01 2024-05-01 2024-07-01 2024-10-01 2025-01-01 2025-03-01 2025-05-01 2025-07-01 2025-09-01 "
    "2026-01-01 2026-03-01"
)
_RESOURCES = (
    "2014-04-01 2015-01-01 2015-11-01 2016-02-01 2016-07-01 2016-09-01 2017-05-10 2018-02-01 2018-05-01 "
    "2019-03-01 2019-05-01 2019-07-01 2019-08-01 2019-10-01 2020-06-01 2020-10-01 2021-01-01 2021-04-01 "
    "2022-09-01 2023-07-01 2024-03-01 2024-07-01 2024-11-01 2025-03-01 2025-04-01"
)


def _set(*lists: str) -> tuple[str, ...]:
    return tuple(sorted({v for text in lists for v in text.split()}))


CRP, DISKS, SKUS, NRP, RESOURCES = _set(_CRP), _set(_DISK), _set(_SKUS), _set(_NRP), _set(_RESOURCES)

# (provider, resource type as the routes name it) → supported versions
SUPPORTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("Microsoft.Resources", "resourceGroups"): RESOURCES,
    ("Microsoft.Compute", "virtualMachines"): CRP,
    ("Microsoft.Compute", "virtualMachines/runCommands"): CRP,
    ("Microsoft.Compute", "virtualMachines/extensions"): CRP,
    ("Microsoft.Compute", "locations/publishers"): CRP,
    ("Microsoft.Compute", "disks"): DISKS,
    ("Microsoft.Compute", "skus"): SKUS,
    ("Microsoft.Compute", "locations/operations"): _set(_CRP, _DISK),
    ("Microsoft.Network", "networkInterfaces"): NRP,
    ("Microsoft.Network", "publicIPAddresses"): NRP,
    ("Microsoft.Network", "networkSecurityGroups"): NRP,
    ("Microsoft.Network", "virtualNetworks/subnets"): NRP,
    ("Microsoft.Network", "virtualNetworkGateways"): NRP,
    ("Microsoft.Network", "connections"): NRP,
    ("Microsoft.Network", "locations/operations"): NRP,
    ("Microsoft.Network", "locations/operationResults"): NRP,
}


def check(api_version: str | None, provider: str, resource_type: str, location: str = "global") -> None:
    """Raise ARM's error for a missing, malformed or unsupported api-version of this type."""
    if not api_version:
        raise errors.missing_api_version()
    supported = SUPPORTED.get((provider, resource_type))
    if not API_VERSION_RE.match(api_version):
        listed = ", ".join(reversed(supported or CRP))
        raise errors.ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{api_version}' is invalid. The supported versions are '{listed}'.",
        )
    if supported is not None and api_version not in supported:
        raise errors.invalid_api_version(
            api_version, resource_type, ",".join(reversed(supported)), location=location
        )
