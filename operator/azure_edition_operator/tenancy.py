"""Who may target what: is this namespace allowed this subscription, resource group and subnets, and
with which credential. Pure functions over ``TenantPolicy`` objects; ``credentials`` acts on them.

The rules (also in docs/security.md, and enforced at admission by ``api.admission``):
* a policy selects a namespace by name (``spec.namespaces``) or by labels (``spec.namespaceSelector``);
* every policy that selects the namespace must allow the target: policies only ever narrow;
* a namespace no policy selects may target nothing, unless the operator runs ``--single-tenant``
  (then it uses the operator's own identity, as before tenancy existed);
* the credential is the one the selecting policies name; two different ones is a refusal, never a
  guess; none named means the operator's own identity.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from . import reasons as vocab
from .api.v1alpha1 import ANY_RESOURCE_GROUP, AzureEditionVMSpec, TenantCredential, TenantPolicy

log = logging.getLogger(__name__)

REASON = vocab.NOT_PERMITTED


class NotPermitted(Exception):
    """The namespace may not target what the spec asks; the message names the policy and the rule."""


@dataclass(frozen=True)
class Permit:
    """What a namespace may use for one object: the credential (None: the operator's own)."""

    credential: TenantCredential | None
    policies: tuple[str, ...]

    @property
    def credential_name(self) -> str:
        """For logs and metrics: names the credential, never a secret."""
        return self.credential.key if self.credential else "operator"


def parse_policies(items: Iterable[Mapping[str, Any]]) -> list[TenantPolicy]:
    """TenantPolicy objects from the API; one the CRD should have refused is skipped (and logged)."""
    policies = []
    for item in items:
        try:
            policies.append(
                TenantPolicy.model_validate({k: item[k] for k in ("metadata", "spec") if k in item})
            )
        except ValidationError as err:
            log.error(
                "TenantPolicy %s is invalid and ignored: %s", (item.get("metadata") or {}).get("name"), err
            )
    return policies


def selects(policy: TenantPolicy, namespace: str, labels: Mapping[str, str]) -> bool:
    spec = policy.spec
    if spec.namespaces and namespace in spec.namespaces:
        return True
    selector = spec.namespace_selector
    return selector is not None and all(labels.get(k) == v for k, v in selector.match_labels.items())


def _refusal(policy: str, namespace: str, what: str, value: str) -> str:
    return (
        f"TenantPolicy {policy} does not allow namespace {namespace} to use {what} {value} "
        f"({REASON}): ask a cluster administrator, or use a target the policy lists"
    )


def _subnets(spec: AzureEditionVMSpec) -> list[str]:
    subnets = [spec.azure.subnet_id]
    if spec.extended_network is not None:
        subnets.append(spec.extended_network.extended_subnet_id)
    return subnets


def refusal(policy: TenantPolicy, namespace: str, spec: AzureEditionVMSpec) -> str | None:
    """Why ``policy`` does not allow ``spec`` for ``namespace``, or None (same order as admission)."""
    name = policy.metadata.name or "?"
    azure = spec.azure
    if azure.subscription_id.lower() not in {s.lower() for s in policy.spec.subscription_ids}:
        return _refusal(name, namespace, "subscription", azure.subscription_id)
    groups = {g.lower() for g in policy.spec.resource_groups}
    if ANY_RESOURCE_GROUP not in groups and azure.resource_group.lower() not in groups:
        return _refusal(name, namespace, "resource group", azure.resource_group)
    prefixes = [p.lower() for p in policy.spec.subnet_id_prefixes]  # each ends in '/' (the CRD says so)
    for subnet in _subnets(spec):
        if not any((subnet.lower() + "/").startswith(p) for p in prefixes):  # '.../subnets/s/' admits s
            return _refusal(name, namespace, "subnet", subnet)
    return None


def decide(
    policies: Iterable[TenantPolicy],
    namespace: str,
    labels: Mapping[str, str],
    spec: AzureEditionVMSpec,
    single_tenant: bool = False,
) -> Permit:
    """The permit for one object, or ``NotPermitted`` naming the policy and the rule."""
    selecting = [p for p in policies if selects(p, namespace, labels)]
    if not selecting:
        if single_tenant:
            return Permit(None, ())
        raise NotPermitted(
            f"no TenantPolicy selects namespace {namespace} ({REASON}): a cluster administrator must "
            "create one that allows this subscription, resource group and subnet"
        )
    for policy in sorted(selecting, key=lambda p: p.metadata.name or ""):
        why = refusal(policy, namespace, spec)
        if why:
            raise NotPermitted(why)
    credentials = {p.spec.credential.key: p.spec.credential for p in selecting if p.spec.credential}
    names = tuple(sorted(p.metadata.name or "?" for p in selecting))
    if len(credentials) > 1:
        raise NotPermitted(
            f"TenantPolicies {', '.join(names)} name different credentials for namespace {namespace} "
            f"({', '.join(sorted(credentials))}) ({REASON}): a cluster administrator must make them agree"
        )
    return Permit(next(iter(credentials.values()), None), names)
