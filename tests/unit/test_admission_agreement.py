"""Property test: the CRD (OpenAPI schema + CEL) and the pydantic model agree on every generated spec.

The CRD side is what kube-apiserver does at admission: structural-schema validation (types,
patterns, lengths, enums, required), then defaulting, then the ``x-kubernetes-validations`` CEL
rules, evaluated by a real CEL interpreter (cel-python) with Kubernetes' ``lowerAscii`` added. The
pydantic side is what the operator does. Hypothesis generates specs around every edge the admission
rules care about (tags, subnet subscriptions, non-ASCII ARM IDs, IP addresses as serverName, strict
types), so a rule in one place and not the other fails here with the spec that shows it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import celpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from azure_edition_operator.api import v1alpha1 as api
from azure_edition_operator.api.crdgen import crd, policy_crd

Schema = dict[str, Any]
ENV = celpy.Environment()


def _lower_ascii(value: celpy.celtypes.StringType) -> celpy.celtypes.StringType:
    """Kubernetes' CEL strings extension: lowercase ASCII letters only."""
    return celpy.celtypes.StringType(re.sub(r"[A-Z]", lambda m: m.group().lower(), str(value)))


FUNCTIONS = {"lowerAscii": _lower_ascii}
_PROGRAMS: dict[str, Any] = {}


def _program(rule: str) -> Any:
    if rule not in _PROGRAMS:
        _PROGRAMS[rule] = ENV.program(ENV.compile(rule), functions=FUNCTIONS)
    return _PROGRAMS[rule]


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def schema_errors(node: Schema, value: Any, path: str = "") -> list[str]:
    """Structural-schema validation as the API server does it (the subset our CRDs use)."""
    kind = node.get("type")
    if kind and not _TYPES[kind](value):
        return [f"{path}: not {kind}"]
    errors: list[str] = []
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{path}: not in enum")
    if isinstance(value, str):
        if len(value) > node.get("maxLength", 1 << 30) or len(value) < node.get("minLength", 0):
            errors.append(f"{path}: length")
        if "pattern" in node and not re.search(node["pattern"], value):
            errors.append(f"{path}: pattern")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and not node.get("minimum", -(1 << 62)) <= value <= node.get("maximum", 1 << 62):
        errors.append(f"{path}: range")
    if isinstance(value, list):
        if len(value) > node.get("maxItems", 1 << 30) or len(value) < node.get("minItems", 0):
            errors.append(f"{path}: items")
        if node.get("x-kubernetes-list-type") == "set" and len(set(map(repr, value))) != len(value):
            errors.append(f"{path}: duplicate in set")
        for i, item in enumerate(value):
            errors += schema_errors(node.get("items", {}), item, f"{path}[{i}]")
    if isinstance(value, dict):
        if len(value) > node.get("maxProperties", 1 << 30) or len(value) < node.get("minProperties", 0):
            errors.append(f"{path}: properties")
        errors += [f"{path}.{r}: required" for r in node.get("required", []) if r not in value]
        props = node.get("properties")
        for key, item in value.items():
            if props is not None:
                if key not in props:  # the API server prunes unknown fields; pydantic forbids them
                    errors.append(f"{path}.{key}: unknown")
                else:
                    errors += schema_errors(props[key], item, f"{path}.{key}")
            elif "additionalProperties" in node:
                errors += schema_errors(node["additionalProperties"], item, f"{path}.{key}")
    return errors


def defaulted(node: Schema, value: Any) -> Any:
    """Apply the schema's defaults, as the API server does before CEL runs."""
    if isinstance(value, dict) and "properties" in node:
        out = dict(value)
        for key, sub in node["properties"].items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = defaulted(sub, out[key])
        return out
    return value


def cel_errors(node: Schema, value: Any, path: str = "") -> list[str]:
    errors = []
    for rule in node.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"]:  # transition rules: not evaluated on create
            continue
        if not _program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)}):
            errors.append(f"{path}: {rule['message']}")
    if isinstance(value, dict):
        props = node.get("properties")
        for key, item in value.items():
            sub = props.get(key) if props is not None else node.get("additionalProperties")
            if sub:
                errors += cel_errors(sub, item, f"{path}.{key}")
    if isinstance(value, list):
        for i, item in enumerate(value):
            errors += cel_errors(node.get("items", {}), item, f"{path}[{i}]")
    return errors


def crd_errors(schema: Schema, value: Any) -> list[str]:
    errors = schema_errors(schema, value)
    if errors:  # CEL runs on a schema-valid object (its types are what the rules assume)
        return errors
    return cel_errors(schema, defaulted(schema, value))


SPEC_SCHEMA = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
POLICY_SCHEMA = policy_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def pydantic_errors(model: type[api.ApiModel], value: Any) -> str | None:
    try:
        model.model_validate(value)
    except ValidationError as err:
        return str(err)
    return None


# ----------------------------------------------------------------------------- strategies

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
OTHER_SUB = "11111111-2222-3333-4444-555555555555"
tricky_chars = st.sampled_from(list("aZ09-_.()<>%&\\?/ ſKéß\u00a0:\x7f"))
names = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    st.text(tricky_chars, min_size=0, max_size=12),
    st.text(st.sampled_from("ab"), min_size=500, max_size=520),
)


@st.composite
def subnet_ids(draw: st.DrawFn) -> str:
    sub = draw(st.sampled_from([SUB, SUB.upper(), OTHER_SUB]))
    word = draw(st.sampled_from(["subscriptions", "SUBSCRIPTIONS", "ſubscriptions", "subscriptionſ"]))
    rg = draw(st.sampled_from(["rg-a", "rg-ä", "RG_(x)", "rg.", "rg" + "x" * 95]))
    vnet = draw(st.sampled_from(["vnet", "vnet-K", "v_", "-v"]))
    subnet = draw(st.sampled_from(["servers", "extended", "sérvers"]))
    providers = draw(st.sampled_from(["providers/Microsoft.Network", "providers/microsoft.network"]))
    return f"/{word}/{sub}/resourceGroups/{rg}/{providers}/virtualNetworks/{vnet}/subnets/{subnet}"


server_names = st.one_of(
    st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?(\.[a-z0-9]{1,6}){0,3}", fullmatch=True),
    st.sampled_from(["10.0.0.4", "1.2.3", "Fs01.contoso.com", "fs01..x", "-a.b", "a" * 64 + ".com", "fs ä"]),
)
loose_bools = st.one_of(st.booleans(), st.sampled_from(["true", 1, 0, None]))
loose_ints = st.one_of(st.integers(-2, 70000), st.sampled_from(["443", 443.0, True]))
tags = st.dictionaries(
    names, st.one_of(st.text(max_size=8), st.text(min_size=250, max_size=260), st.just(3)), max_size=4
) | st.dictionaries(st.from_regex(r"k[0-9]{1,3}", fullmatch=True), st.just("v"), min_size=45, max_size=50)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(_ABSENT), strategy)


_ABSENT = object()


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    azure = {
        "subscriptionId": draw(st.sampled_from([SUB, SUB.upper(), "not-a-guid"])),
        "resourceGroup": "rg-branch-a",
        "location": "westeurope",
        "subnetId": draw(subnet_ids()),
        "publicIP": draw(_maybe(loose_bools)),
        "tags": draw(_maybe(tags)),
    }
    spec: dict[str, Any] = {
        "capabilities": draw(
            st.lists(st.sampled_from(["Hotpatch", "SMBOverQUIC", "ExtendedNetwork"]), max_size=3, unique=True)
        ),
        "azure": azure,
        "adminCredentialsSecretRef": {"name": "admin"},
        "image": draw(_maybe(st.fixed_dictionaries({"smallDisk": loose_bools}))),
        "smbOverQuic": draw(_maybe(st.fixed_dictionaries({"serverName": server_names, "port": loose_ints}))),
        "extendedNetwork": draw(_maybe(st.fixed_dictionaries({"extendedSubnetId": subnet_ids()}))),
        "checkInterval": draw(_maybe(st.sampled_from(["10m", "1s", "25h", "1h30m", "", "10"]))),
    }

    def prune(d: dict[str, Any]) -> dict[str, Any]:
        return {k: (prune(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not _ABSENT}

    return prune(spec)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_crd_and_pydantic_agree_on_vm_specs(spec):
    crd_says = crd_errors(SPEC_SCHEMA, spec)
    py_says = pydantic_errors(api.AzureEditionVMSpec, spec)
    assert (not crd_says) == (py_says is None), f"CRD: {crd_says}\npydantic: {py_says}"


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "namespaces": draw(_maybe(st.lists(st.sampled_from(["team-a", "Team-A", "a" * 64, ""]), max_size=2))),
        "namespaceSelector": draw(
            _maybe(
                st.fixed_dictionaries(
                    {
                        "matchLabels": st.dictionaries(
                            st.sampled_from(["t", "x"]), st.sampled_from(["a", "b" * 64]), max_size=2
                        )
                    }
                )
            )
        ),
        "subscriptionIds": draw(st.lists(st.sampled_from([SUB, "nope"]), max_size=2)),
        "resourceGroups": draw(st.lists(st.sampled_from(["rg-a", "*", "**", "rg-ä"]), max_size=2)),
        "subnetIdPrefixes": draw(
            st.lists(
                st.sampled_from(
                    [
                        f"/subscriptions/{SUB}/",
                        f"/ſubscriptions/{SUB}/",
                        "/x",
                        f"/subscriptions/{SUB}/resourceGroups/rg",
                    ]
                ),
                max_size=2,
            )
        ),
        "credential": draw(
            _maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "workloadIdentity": st.fixed_dictionaries(
                            {"clientId": st.just(SUB), "tenantId": st.sampled_from([SUB, "t"])}
                        ),
                        "clientSecret": st.fixed_dictionaries(
                            {"secretName": st.sampled_from(["tenant-a", "Tenant"])}
                        ),
                    },
                )
            )
        ),
    }
    return {k: v for k, v in spec.items() if v is not _ABSENT}


@settings(max_examples=300, deadline=None)
@given(policies())
def test_crd_and_pydantic_agree_on_tenant_policies(spec):
    crd_says = crd_errors(POLICY_SCHEMA, spec)
    py_says = pydantic_errors(api.TenantPolicySpec, spec)
    assert (not crd_says) == (py_says is None), f"CRD: {crd_says}\npydantic: {py_says}"


# ----------------------------------------------------------------------------- named edges


def _spec(**azure: Any) -> dict[str, Any]:
    base = {"subscriptionId": SUB, "resourceGroup": "rg", "location": "westeurope",
            "subnetId": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"}  # fmt: skip
    return {"azure": {**base, **azure}, "adminCredentialsSecretRef": {"name": "admin"}}


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (_spec(tags={f"k{i}": "v" for i in range(48)}), "properties"),
        (_spec(tags={"a/b": "v"}), "< > % & \\ ? /"),
        (_spec(tags={"k" * 513: "v"}), "1-512"),
        (_spec(tags={"k": "v" * 257}), "length"),
        (
            _spec(
                subnetId=f"/subscriptions/{OTHER_SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
            ),
            "another subscription",
        ),
        (
            _spec(
                subnetId=f"/ſubscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
            ),
            "pattern",
        ),
        (_spec(publicIP="true"), "not boolean"),
        (
            {**_spec(), "capabilities": ["SMBOverQUIC"], "smbOverQuic": {"serverName": "10.0.0.4"}},
            "not an IP",
        ),
    ],
)
def test_each_refusal_is_made_by_both_with_a_clear_message(spec, fragment):
    crd_says = crd_errors(SPEC_SCHEMA, spec)
    assert any(fragment in e for e in crd_says), crd_says
    assert pydantic_errors(api.AzureEditionVMSpec, spec) is not None


def test_a_tenant_policy_prefix_without_its_slash_is_refused_by_both_with_the_same_message():
    spec = {"namespaces": ["a"], "subscriptionIds": [SUB], "resourceGroups": ["*"],
            "subnetIdPrefixes": [f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"]}  # fmt: skip
    assert any(api.PREFIX_END_MESSAGE in e for e in crd_errors(POLICY_SCHEMA, spec))
    assert api.PREFIX_END_MESSAGE in (pydantic_errors(api.TenantPolicySpec, spec) or "")
    spec["subnetIdPrefixes"][0] += "/"
    assert not crd_errors(POLICY_SCHEMA, spec) and pydantic_errors(api.TenantPolicySpec, spec) is None


def test_subnet_in_subscription_ignores_case_only():
    sid = f"/SUBSCRIPTIONS/{SUB.upper()}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
    assert not crd_errors(SPEC_SCHEMA, _spec(subnetId=sid))
    assert pydantic_errors(api.AzureEditionVMSpec, _spec(subnetId=sid)) is None


def test_owner_ref_and_annotation_token_twins():
    assert api.owner_ref_problem("a" * 63, "b" * 192) is None
    assert "256" in (api.owner_ref_problem("a" * 63, "b" * 193) or "")
    assert api.annotation_token_problem("2026-11-28") is None
    for bad in ("", "x" * 64, "a b", "-a", "ä"):
        assert api.annotation_token_problem(bad), bad
