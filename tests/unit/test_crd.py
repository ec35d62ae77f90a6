"""The checked-in CRD equals the generated one and is a valid structural schema."""

from __future__ import annotations

import yaml

from azure_edition_operator.api import crdgen
from tests.conftest import CRD_PATH

FORBIDDEN_KEYS = {"$ref", "$defs", "title", "anyOf", "oneOf", "allOf", "not", "nullable", "definitions"}


def _walk(node, path="$"):
    yield path, node
    if isinstance(node, dict):
        for key in ("properties",):
            for name, sub in node.get(key, {}).items():
                yield from _walk(sub, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from _walk(node[key], f"{path}[{key}]")


def _schema():
    return crdgen.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_checked_in_crd_is_up_to_date():
    assert CRD_PATH.read_text() == crdgen.render(), "crds/ is stale: run `make crds` and commit the result"


def test_schema_is_structural():
    for path, node in _walk(_schema()):
        assert not (FORBIDDEN_KEYS & set(node)), f"{path} has {FORBIDDEN_KEYS & set(node)}"
        assert "type" in node, f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("type") == "object" and path != "$.metadata":
            assert (
                "properties" in node
                or "additionalProperties" in node
                or node.get("x-kubernetes-preserve-unknown-fields")
            ), path


def test_every_field_has_a_description_for_kubectl_explain():
    for path, node in _walk(_schema()):
        if path.count(".") >= 2 and "[" not in path.rsplit(".", 1)[-1]:
            assert node.get("description"), f"{path} has no description"


def test_crd_names_columns_and_subresource():
    crd = yaml.safe_load(CRD_PATH.read_text())
    assert crd["metadata"]["name"] == "azureeditionvms.azureedition.io"
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["aevm"] and names["categories"] == ["azure"]
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = {c["name"]: c.get("priority", 0) for c in version["additionalPrinterColumns"]}
    assert columns == {"Ready": 0, "Phase": 0, "SKU": 0, "Hotpatch": 0, "Cert-Days": 0, "Age": 0,
                       "Reason": 1, "Message": 1}  # fmt: skip


def test_immutable_fields_have_transition_rules():
    spec = _schema()["properties"]["spec"]
    azure = spec["properties"]["azure"]["properties"]
    for field in ("subscriptionId", "resourceGroup", "location"):
        rules = azure[field]["x-kubernetes-validations"]
        assert rules[0]["rule"] == "self == oldSelf" and "immutable" in rules[0]["message"]
    assert spec["properties"]["image"]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"


def test_required_when_rules_present():
    rules = [r["rule"] for r in _schema()["properties"]["spec"]["x-kubernetes-validations"]]
    assert any("has(self.smbOverQuic)" in r for r in rules)
    assert any("has(self.extendedNetwork)" in r for r in rules)


def test_conditions_are_a_list_map_keyed_by_type():
    conditions = _schema()["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


def test_to_structural_flattens_optional_refs():
    defs = {"A": {"type": "object", "title": "A", "properties": {"x": {"type": "string", "title": "X"}},
                  "additionalProperties": False}}  # fmt: skip
    node = {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "null"}], "default": None, "description": "d"}
    assert crdgen.to_structural(node, defs) == {
        "type": "object", "properties": {"x": {"type": "string"}}, "description": "d"
    }  # fmt: skip


def _sync_options(annotations: dict[str, str]) -> dict[str, str]:
    """Argo CD's comma-separated ``Key=value`` list (white space trimmed, as Argo CD reads it)."""
    raw = annotations.get("argocd.argoproj.io/sync-options", "")
    pairs = (item.strip().partition("=") for item in raw.split(",") if item.strip())
    return {key: value for key, _, value in pairs}


def test_crd_is_never_pruned_or_deleted_by_gitops_tools():
    """Deleting the CRD deletes every AzureEditionVM: Argo CD and Flux must leave it alone."""
    for found in (
        crdgen.crd()["metadata"]["annotations"],
        yaml.safe_load(CRD_PATH.read_text())["metadata"]["annotations"],
    ):
        options = _sync_options(found)
        assert options["Prune"] == "false"
        assert options["Delete"] == "false"
        assert found["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
