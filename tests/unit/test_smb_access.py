"""SMB over QUIC client access control: the plan against what the guest reports (pure), and admission
(CEL on the CRD, its pydantic twin and image resolution agree: only Windows Server 2025 images run it)."""

from __future__ import annotations

import celpy
import pytest
from pydantic import ValidationError

from azure_edition_operator.api import cel
from azure_edition_operator.api.v1alpha1 import ClientCertificateMatch, SmbClientAccessSpec
from azure_edition_operator.checks.smb_access import desired_entries, plan_access
from azure_edition_operator.checks.smb_guest import AccessEntry, CertificateMapping, GuestState
from azure_edition_operator.images import (
    SMB_CLIENT_ACCESS_VERSIONS,
    Capability,
    UnsupportedCapabilitiesError,
    resolve,
)
from tests.unit.test_cel_agreement import COMBINATIONS, combination_id, spec_for

NAME = "fs01.contoso.com"
A, B = "A" * 64, "B" * 64
ISSUER = "CN=Contoso Issuing CA"


def spec(**kw) -> SmbClientAccessSpec:
    return SmbClientAccessSpec.model_validate(kw)


def guest(require: bool, audit: bool, *entries: tuple[str, str, str]) -> GuestState:
    mapping = CertificateMapping(NAME, "T", None, require, tuple(AccessEntry(*e) for e in entries))
    return GuestState(True, (mapping,), (), audit)


def test_first_apply_grants_blocks_and_switches():
    want = spec(allow=[{"issuer": ISSUER}, {"sha256": A.lower()}], block=[{"sha256": B}], audit=True)
    plan = plan_access(want, guest(False, False), NAME)
    assert plan.require and plan.audit
    assert set(plan.grant) == {("ISSUER", ISSUER, "Allow"), ("SHA256", A, "Allow")}
    assert plan.block == (("SHA256", B, "Deny"),) and plan.revoke == ()
    params = plan.parameters(NAME)
    assert params["Require"] == "true" and '"identifier": "' + B + '"' in params["Block"]


def test_matching_guest_needs_nothing_and_no_mapping_means_wait():
    want = spec(allow=[{"issuer": ISSUER}], block=[{"sha256": B}])
    assert (
        plan_access(
            want, guest(True, False, ("ISSUER", ISSUER, "Allow"), ("SHA256", B.lower(), "Deny")), NAME
        )
        is None
    )
    assert plan_access(want, GuestState(True, (), ()), NAME) is None


def test_drift_is_revoked_and_reapplied():
    want = spec(allow=[{"sha256": A}])
    # someone allowed B by hand, turned the requirement off, and flipped A to Deny
    plan = plan_access(want, guest(False, True, ("SHA256", B, "Allow"), ("SHA256", A, "Deny")), NAME)
    assert set(plan.revoke) == {("SHA256", B, "Allow"), ("SHA256", A, "Deny")}
    assert plan.grant == (("SHA256", A, "Allow"),) and plan.require and not plan.audit
    assert any("RequireClientAuthentication False -> True" in d for d in plan.drift)


def test_block_wins_over_allow_for_the_same_certificate():
    assert desired_entries(spec(allow=[{"sha256": A}], block=[{"sha256": A}])) == {("SHA256", A, "Deny")}


def test_a_match_needs_exactly_one_identifier():
    with pytest.raises(ValidationError):
        ClientCertificateMatch.model_validate({})
    with pytest.raises(ValidationError):
        ClientCertificateMatch.model_validate({"sha256": A, "issuer": ISSUER})
    with pytest.raises(ValidationError):
        ClientCertificateMatch.model_validate({"sha256": "xyz"})


RULE = cel.CLIENT_ACCESS.rule()
PROGRAM = celpy.Environment().program(celpy.Environment().compile(RULE["rule"]))


def resolver_picks_client_access_image(pins, caps) -> bool:
    try:
        image = resolve(caps, pins)
    except UnsupportedCapabilitiesError:
        return False
    return image.windows_server_version in SMB_CLIENT_ACCESS_VERSIONS


@pytest.mark.parametrize(("pins", "caps"), [c for c in COMBINATIONS if Capability.SMB_OVER_QUIC in c[1]],
                         ids=combination_id)  # fmt: skip
def test_cel_twin_and_resolver_agree_on_client_access(pins, caps):
    obj = {**spec_for(pins, caps), "smbOverQuic": {"serverName": NAME, "clientAccess": {}}}
    admitted = bool(PROGRAM.evaluate({"self": celpy.json_to_cel(obj)}))
    assert admitted == cel.CLIENT_ACCESS.allowed(pins, caps)
    if admitted:  # whatever image resolution picks for an admitted object runs client access control
        assert resolver_picks_client_access_image(pins, caps)
    without = {**spec_for(pins, caps), "smbOverQuic": {"serverName": NAME}}
    assert PROGRAM.evaluate({"self": celpy.json_to_cel(without)})


def test_client_access_is_refused_where_only_2022_fits():
    from azure_edition_operator.images import ImagePins, WindowsServerVersion

    assert not cel.CLIENT_ACCESS.allowed(ImagePins(WindowsServerVersion.WS2022), {Capability.SMB_OVER_QUIC})
    assert not cel.CLIENT_ACCESS.allowed(ImagePins(), {Capability.SMB_OVER_QUIC, Capability.EXTENDED_NETWORK})
    assert cel.CLIENT_ACCESS.allowed(ImagePins(), {Capability.SMB_OVER_QUIC})
    assert "2025" in RULE["message"] and "spec.smbOverQuic.clientAccess" in RULE["message"]
