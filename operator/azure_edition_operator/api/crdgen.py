"""Generate the AzureEditionVM CRD from the pydantic models.

pydantic writes JSON Schema (draft 2020-12); Kubernetes wants a *structural* OpenAPI v3 schema.
``to_structural`` bridges the two: it inlines ``$ref``, drops ``title`` and pydantic's
``anyOf [X, null]`` for optional fields, removes ``additionalProperties: false`` (the API
server prunes unknown fields instead) and keeps our ``x-kubernetes-*`` extensions.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from . import v1alpha1 as api

Schema = dict[str, Any]

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "SKU", "type": "string", "jsonPath": ".status.image.sku"},
    {"name": "Hotpatch", "type": "string",
     "jsonPath": '.status.conditions[?(@.type=="HotpatchHealthy")].reason'},
    {"name": "Cert-Days", "type": "integer", "jsonPath": ".status.smbOverQuic.daysRemaining"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Reason", "type": "string", "priority": 1,
     "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
    {"name": "Message", "type": "string", "priority": 1,
     "jsonPath": '.status.conditions[?(@.type=="Ready")].message'},
]  # fmt: skip

# propertyNames (pydantic's map-key constraints) is not allowed in a structural schema: a map whose
# keys matter carries the same rule as CEL (e.g. ``cel.tag_rules``), proven equal by the agreement test.
_DROP_KEYS = {"title", "$defs", "propertyNames"}


def _resolve_ref(ref: str, defs: Schema) -> Schema:
    prefix = "#/$defs/"
    if not ref.startswith(prefix):
        raise ValueError(f"unsupported $ref {ref}")
    return defs[ref[len(prefix) :]]


def _strip_null(options: list[Schema]) -> list[Schema]:
    return [o for o in options if o.get("type") != "null"]


def to_structural(node: Any, defs: Schema) -> Any:
    """Turn one pydantic JSON Schema node into a structural OpenAPI v3 node."""
    if isinstance(node, list):
        return [to_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:  # the referenced schema, with the referring node's keys (description...) on top
        target = copy.deepcopy(_resolve_ref(node.pop("$ref"), defs))
        target.update(node)
        node = target
    for combinator in ("anyOf", "oneOf"):
        if combinator in node:
            options = _strip_null(node.pop(combinator))
            if len(options) != 1:
                raise ValueError(f"cannot express {combinator} with {len(options)} branches structurally")
            merged = copy.deepcopy(options[0])
            merged.update(node)
            return to_structural(merged, defs)
    if "patternProperties" in node:  # a map with constrained keys: values as additionalProperties
        (values,) = node.pop("patternProperties").values()
        node["additionalProperties"] = values
    if node.get("default", 0) is None:
        del node["default"]
    if "properties" in node and node.get("additionalProperties") is False:
        del node["additionalProperties"]
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties":
            out[key] = {name: to_structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_structural(value, defs)
        else:
            out[key] = copy.deepcopy(value)
    if out.get("format") == "date-time" and "type" not in out:
        out["type"] = "string"
    return out


def openapi_schema(model: type[api.ApiModel] = api.AzureEditionVM) -> Schema:
    """The structural schema of ``model`` (AzureEditionVM or TenantPolicy)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema = to_structural(raw, defs)
    props = schema["properties"]
    props["metadata"] = {"type": "object"}
    props["apiVersion"] = {"type": "string", "description": props["apiVersion"]["description"]}
    props["kind"] = {"type": "string", "description": props["kind"]["description"]}
    schema["required"] = ["spec"]
    return schema


# Deleting the CRD deletes every AzureEditionVM (and, through the finalizer, every Azure VM), so
# GitOps tools must never do it on their own: Argo CD neither prunes it (a path or overlay change
# that drops it) nor deletes it with its Application; Flux's kustomize-controller does not prune it.
# Removing the CRD stays a deliberate `kubectl delete crd` (docs/install.md#uninstalling).
PRUNE_PROTECTION = {
    "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
    "kustomize.toolkit.fluxcd.io/prune": "disabled",
}


def crd() -> Schema:
    """The whole CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "azure-edition-operator"},
            "annotations": dict(PRUNE_PROTECTION),
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": api.SHORT_NAMES,
                "categories": api.CATEGORIES,
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


POLICY_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Namespaces", "type": "string", "jsonPath": ".spec.namespaces"},
    {"name": "Subscriptions", "type": "string", "jsonPath": ".spec.subscriptionIds"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def policy_crd() -> Schema:
    """The cluster-scoped TenantPolicy CRD (no status: the policy is input only)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.POLICY_PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "azure-edition-operator"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Cluster",
            "names": {
                "kind": api.POLICY_KIND,
                "listKind": f"{api.POLICY_KIND}List",
                "plural": api.POLICY_PLURAL,
                "singular": api.POLICY_SINGULAR,
                "shortNames": api.POLICY_SHORT_NAMES,
                "categories": api.CATEGORIES,
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": POLICY_PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema(api.TenantPolicy)},
                }
            ],
        },
    }


HEADER = "# Generated by `make crds` from operator/azure_edition_operator/api/v1alpha1.py. Do not edit.\n"

CRDS = {"AzureEditionVM": crd, api.POLICY_KIND: policy_crd}


def render(kind: str = "AzureEditionVM") -> str:
    return HEADER + yaml.safe_dump(CRDS[kind](), sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="file to write (default: stdout)")
    parser.add_argument("--kind", choices=sorted(CRDS), default="AzureEditionVM", help="which CRD")
    args = parser.parse_args(argv)
    text = render(args.kind)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
