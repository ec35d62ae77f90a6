"""The CRD's CEL rules and the resolver agree on every versions × experiences × smallDisk × capability set.

The rules are evaluated by a real CEL interpreter (cel-python) on objects shaped as the API server
would see them after defaulting; the e2e suite repeats a sample of this against kube-apiserver.
"""

from __future__ import annotations

import celpy
import pytest

from azure_edition_operator.api import cel
from azure_edition_operator.api.crdgen import crd
from azure_edition_operator.images import (
    CATALOG,
    Capability,
    ImagePins,
    UnsupportedCapabilitiesError,
    resolve,
)

ENV = celpy.Environment()


def _spec_rules() -> list[dict]:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]["x-kubernetes-validations"]


def _image_rules() -> list[dict]:
    return [r for r in _spec_rules() if "self.image" in r["rule"]]


PROGRAMS = [(r, ENV.program(ENV.compile(r["rule"]))) for r in _image_rules()]


def spec_for(pins: ImagePins, caps: frozenset[Capability]) -> dict:
    spec: dict = {"capabilities": [str(c) for c in sorted(caps)]}
    image: dict = {"smallDisk": pins.small_disk, "version": "latest"}
    if pins.windows_server_version:
        image["windowsServerVersion"] = str(pins.windows_server_version)
    if pins.experience:
        image["experience"] = str(pins.experience)
    if pins.windows_server_version or pins.experience or pins.small_disk:
        spec["image"] = image
    return spec


def cel_admits(spec: dict) -> tuple[bool, list[str]]:
    failures = [r["message"] for r, prog in PROGRAMS if not prog.evaluate({"self": celpy.json_to_cel(spec)})]
    return not failures, failures


def resolver_admits(pins: ImagePins, caps: frozenset[Capability]) -> bool:
    try:
        resolve(caps, pins)
    except UnsupportedCapabilitiesError:
        return False
    return True


COMBINATIONS = [(p, c) for p in cel.all_pins() for c in cel.all_capability_sets()]


def combination_id(value: object) -> str:
    """A set's members sorted: a frozenset's str() follows the hash seed, and parallel workers
    (pytest-xdist) must collect the same test ids."""
    if isinstance(value, frozenset):
        return "{" + ",".join(sorted(str(c) for c in value)) + "}"
    return str(value)


@pytest.mark.parametrize(("pins", "caps"), COMBINATIONS, ids=combination_id)
def test_cel_and_resolver_agree(pins, caps):
    admitted, failures = cel_admits(spec_for(pins, caps))
    assert admitted == resolver_admits(pins, caps), failures
    for message in failures:  # a refusal names a requested capability and what to change
        assert any(str(c) in message for c in caps)
        assert "spec.image" in message


def test_there_are_refusals_to_agree_on():
    assert any(not resolver_admits(p, c) for p, c in COMBINATIONS)
    assert len(COMBINATIONS) == 3 * 3 * 2 * 8


def test_combination_rule_is_added_when_per_capability_rules_are_not_enough():
    """A catalog where Hotpatch and ExtendedNetwork exist, but never on the same image."""
    from dataclasses import replace

    from azure_edition_operator.images import Support

    split = tuple(
        replace(r, support={**r.support, Capability.HOTPATCH: Support.UNSUPPORTED}) if r.sku.startswith("2022")
        else r
        for r in CATALOG
    )  # fmt: skip
    assert not cel.combination_rule_needed(CATALOG)
    assert cel.combination_rule_needed(split)
    rules = cel.spec_rules(split)
    programs = [ENV.program(ENV.compile(r["rule"])) for r in rules if "self.image" in r["rule"]]
    for pins, caps in COMBINATIONS:
        spec = celpy.json_to_cel(spec_for(pins, caps))
        admitted = all(p.evaluate({"self": spec}) for p in programs)
        try:
            resolve(caps, pins, split)
            resolvable = True
        except UnsupportedCapabilitiesError:
            resolvable = False
        assert admitted == resolvable, (pins, caps)


def test_pin_key_twin_matches_cel_expression():
    program = ENV.program(ENV.compile(cel.PIN_KEY))
    for pins in cel.all_pins():
        spec = spec_for(pins, frozenset())
        assert str(program.evaluate({"self": celpy.json_to_cel(spec)})) == cel.pin_key(pins)


def test_root_rule_refuses_capability_the_running_image_cannot_carry():
    rule = cel.root_rules()[0]
    program = ENV.program(ENV.compile(rule["rule"]))

    def admits(sku: str, caps: list[str]) -> bool:
        obj = {"spec": {"capabilities": caps}, "status": {"image": {"sku": sku}}}
        return bool(program.evaluate({"self": celpy.json_to_cel(obj)}))

    assert admits("2025-datacenter-azure-edition-core", ["Hotpatch", "SMBOverQUIC"])
    assert not admits("2025-datacenter-azure-edition-core", ["ExtendedNetwork"])
    assert not admits("2022-datacenter-azure-edition", ["Hotpatch"])
    assert admits("2022-datacenter-azure-edition", ["SMBOverQUIC", "ExtendedNetwork"])
    assert admits("some-future-sku", ["ExtendedNetwork"])  # unknown to this catalog: the operator decides
    no_status = {"spec": {"capabilities": ["ExtendedNetwork"]}}
    assert program.evaluate({"self": celpy.json_to_cel(no_status)})
