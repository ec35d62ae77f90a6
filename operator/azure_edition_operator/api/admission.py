"""ValidatingAdmissionPolicies (built into kube-apiserver, no webhook) for what the CRD cannot see.

Two policies, generated here so their limits and messages come from ``v1alpha1`` (one fact, one
place) and written to ``deploy/admission/`` by ``make crds``:

* ``azureedition.io-input``: rules that need metadata the CRD's CEL cannot reach — the owner tag
  ``<namespace>/<name>`` must fit Azure's 256-character tag value, and the
  ``azureedition.io/assess-patches`` token (copied into status and an Event) must be short and plain.
* ``azureedition.io-tenancy``: reads every ``TenantPolicy`` as a parameter. For each policy that
  selects the object's namespace, the subscription, resource group and subnets must be allowed by
  it (policies only narrow). With no TenantPolicy at all, every create is refused
  (``parameterNotFoundAction: Deny``). A namespace that no policy selects is refused by the operator
  (``NotPermitted``), not here: a VAP is evaluated per parameter and cannot say "no parameter
  selected this namespace".

Both skip objects being deleted and updates that leave spec and annotations alone, so the operator's
finalizer removal is never blocked by a policy that changed after the VM was created.
"""

from __future__ import annotations

from typing import Any

import yaml

from . import v1alpha1 as api

TENANCY = f"{api.GROUP}-tenancy"
INPUT = f"{api.GROUP}-input"

# Written with the API server's defaults (scope, matchPolicy, selectors), so a re-apply is "unchanged".
_MATCH = {
    "matchPolicy": "Equivalent",
    "namespaceSelector": {},
    "objectSelector": {},
    "resourceRules": [{
        "apiGroups": [api.GROUP], "apiVersions": [api.VERSION],
        "operations": ["CREATE", "UPDATE"], "resources": [api.PLURAL], "scope": "*",
    }],
}  # fmt: skip

_NOT_DELETING = {"name": "not-being-deleted", "expression": "!has(object.metadata.deletionTimestamp)"}


def _changed(*paths: str) -> dict[str, str]:
    diff = " || ".join(f"{p.replace('X', 'object')} != {p.replace('X', 'oldObject')}" for p in paths)
    return {"name": "created-or-changed", "expression": f"request.operation == 'CREATE' || {diff}"}


def _name_expression() -> str:
    # generateName gets 5 random characters appended by the API server.
    return "(object.metadata.name != '' ? object.metadata.name : object.metadata.generateName + 'xxxxx')"


def input_policy() -> dict[str, Any]:
    token = api.ASSESS_ANNOTATION
    annotations = "object.metadata.annotations"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": INPUT},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": _MATCH,
            "matchConditions": [_NOT_DELETING],
            "validations": [
                {
                    "expression": (
                        f"(object.metadata.namespace + '/' + {_name_expression()}).size()"
                        f" <= {api.MAX_OWNER_REF}"
                    ),
                    "messageExpression": (
                        "'namespace/name is ' + string((object.metadata.namespace + '/' + "
                        f"{_name_expression()}).size()) + ' characters but becomes the Azure tag "
                        f"{api.RESERVED_TAG_PREFIX}owner, whose value may be at most {api.MAX_OWNER_REF}: "
                        "use a shorter name'"
                    ),
                    "reason": "Invalid",
                },
                {
                    "expression": (
                        f"!has({annotations}) || !('{token}' in {annotations})"
                        f" || {annotations}['{token}'].matches('{api.ANNOTATION_TOKEN_PATTERN}')"
                    ),
                    "message": api.annotation_token_problem("") or "",
                    "reason": "Invalid",
                },
            ],
        },
    }


def _selects() -> str:
    labels = "namespaceObject.metadata.labels"
    return (
        "(has(params.spec.namespaces) && object.metadata.namespace in params.spec.namespaces)"
        " || (has(params.spec.namespaceSelector)"
        " && params.spec.namespaceSelector.matchLabels.all(k,"
        f" has({labels}) && k in {labels} && {labels}[k] == params.spec.namespaceSelector.matchLabels[k]))"
    )


def _refusal(what: str, value: str) -> str:
    return (
        f"'TenantPolicy ' + params.metadata.name + ' does not allow namespace ' + object.metadata.namespace"
        f" + ' to use {what} ' + {value} + ' (NotPermitted): ask a cluster administrator, or use a target"
        " the policy lists'"
    )


def _prefix_ok(path: str) -> str:
    return f"params.spec.subnetIdPrefixes.exists(p, ({path}.lowerAscii() + '/').startsWith(p.lowerAscii()))"


def tenancy_policy() -> dict[str, Any]:
    azure = "object.spec.azure"
    extended = "object.spec.extendedNetwork.extendedSubnetId"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": TENANCY},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": f"{api.GROUP}/{api.VERSION}", "kind": api.POLICY_KIND},
            "matchConstraints": _MATCH,
            "matchConditions": [_NOT_DELETING, _changed("X.spec")],
            "variables": [{"name": "selects", "expression": _selects()}],
            "validations": [
                {
                    "expression": (
                        "!variables.selects || params.spec.subscriptionIds.exists(s,"
                        f" s.lowerAscii() == {azure}.subscriptionId.lowerAscii())"
                    ),
                    "messageExpression": _refusal("subscription", f"{azure}.subscriptionId"),
                    "reason": "Forbidden",
                },
                {
                    "expression": (
                        "!variables.selects || params.spec.resourceGroups.exists(g,"
                        f" g == '{api.ANY_RESOURCE_GROUP}' || g.lowerAscii() == {azure}.resourceGroup.lowerAscii())"
                    ),
                    "messageExpression": _refusal("resource group", f"{azure}.resourceGroup"),
                    "reason": "Forbidden",
                },
                {
                    "expression": f"!variables.selects || {_prefix_ok(f'{azure}.subnetId')}",
                    "messageExpression": _refusal("subnet", f"{azure}.subnetId"),
                    "reason": "Forbidden",
                },
                {
                    "expression": (
                        f"!variables.selects || !has(object.spec.extendedNetwork) || {_prefix_ok(extended)}"
                    ),
                    "messageExpression": _refusal("subnet", extended),
                    "reason": "Forbidden",
                },
            ],
        },
    }


def binding(policy: str, params: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"policyName": policy, "validationActions": ["Deny"]}
    if params:  # every TenantPolicy; none at all means nothing is allowed
        spec["paramRef"] = {"selector": {}, "parameterNotFoundAction": "Deny"}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy},
        "spec": spec,
    }


HEADER = "# Generated by `make deploy-generate` from operator/azure_edition_operator/api/admission.py. Do not edit.\n"


def documents() -> list[dict[str, Any]]:
    return [input_policy(), binding(INPUT, False), tenancy_policy(), binding(TENANCY, True)]


def render() -> str:
    return HEADER + "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in documents())
