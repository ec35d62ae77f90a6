"""spec.smbOverQuic.alternativePort is admitted only where a Windows Server 2025 image can run it: the CEL
rule, its Python twin and image resolution agree, and a VM already on 2022 cannot be given one."""

from __future__ import annotations

import celpy
import pytest
from pydantic import ValidationError

from azure_edition_operator.api import cel
from azure_edition_operator.api.v1alpha1 import SmbOverQuicSpec
from azure_edition_operator.images import (
    SMB_ALTERNATIVE_PORT_VERSIONS,
    Capability,
    ImagePins,
    UnsupportedCapabilitiesError,
    WindowsServerVersion,
    resolve,
)
from tests.unit.test_cel_agreement import COMBINATIONS, combination_id, spec_for

NAME = "fs01.branch-a.contoso.com"
RULE = cel.ALTERNATIVE_PORT.rule()
ENV = celpy.Environment()
PROGRAM = ENV.program(ENV.compile(RULE["rule"]))


def evaluate(program: celpy.Runner, obj: dict) -> bool:
    return bool(program.evaluate({"self": celpy.json_to_cel(obj)}))


@pytest.mark.parametrize(("pins", "caps"), [c for c in COMBINATIONS if Capability.SMB_OVER_QUIC in c[1]],
                         ids=combination_id)  # fmt: skip
def test_cel_twin_and_resolver_agree_on_the_alternative_port(pins, caps):
    obj = {**spec_for(pins, caps), "smbOverQuic": {"serverName": NAME, "alternativePort": 8443}}
    admitted = evaluate(PROGRAM, obj)
    assert admitted == cel.ALTERNATIVE_PORT.allowed(pins, caps)
    if admitted:  # whatever image resolution then picks runs alternative ports
        try:
            image = resolve(caps, pins)
        except UnsupportedCapabilitiesError:
            pytest.fail(f"admitted but unresolvable: {pins} {caps}")
        assert image.windows_server_version in SMB_ALTERNATIVE_PORT_VERSIONS
    assert evaluate(PROGRAM, {**spec_for(pins, caps), "smbOverQuic": {"serverName": NAME}})


def test_only_2025_admits_it():
    assert not cel.ALTERNATIVE_PORT.allowed(
        ImagePins(WindowsServerVersion.WS2022), {Capability.SMB_OVER_QUIC}
    )
    assert not cel.ALTERNATIVE_PORT.allowed(
        ImagePins(), {Capability.SMB_OVER_QUIC, Capability.EXTENDED_NETWORK}
    )
    assert cel.ALTERNATIVE_PORT.allowed(ImagePins(), {Capability.SMB_OVER_QUIC})
    assert "2025" in RULE["message"] and "spec.smbOverQuic.alternativePort" in RULE["message"]
    assert RULE in cel.spec_rules()


def test_the_port_is_a_udp_port():
    assert (
        SmbOverQuicSpec.model_validate({"serverName": NAME, "alternativePort": 8443}).alternative_port == 8443
    )
    assert SmbOverQuicSpec.model_validate({"serverName": NAME}).alternative_port is None
    for bad in (0, 65536, "8443"):
        with pytest.raises(ValidationError):
            SmbOverQuicSpec.model_validate({"serverName": NAME, "alternativePort": bad})


def test_a_vm_already_on_2022_cannot_be_given_one():
    rule = next(r for r in cel.root_rules() if r["fieldPath"] == ".spec.smbOverQuic.alternativePort")
    program = ENV.program(ENV.compile(rule["rule"]))

    def admits(version: str, smb: dict) -> bool:
        return evaluate(
            program, {"spec": {"smbOverQuic": smb}, "status": {"image": {"windowsServerVersion": version}}}
        )

    with_port = {"serverName": NAME, "alternativePort": 8443}
    assert not admits("2022", with_port)
    assert admits("2025", with_port)
    assert admits("2022", {"serverName": NAME})
    assert evaluate(program, {"spec": {"smbOverQuic": with_port}})  # no image yet: resolution decides
