"""evaluate_certificate: every state, every Invalid reason, the date boundaries, wildcard SANs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from azure_edition_operator.checks.smb_certificate import (
    CertificateObservation,
    CertificateReason,
    CertificateState,
    EndpointUnreachable,
    dns_name_matches,
    evaluate_certificate,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SERVER = "fs01.contoso.com"
WARN = 30
THUMBPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"
MAPPING_HINT = (
    "update the SMB server certificate mapping (New-SmbServerCertificateMapping) to the new thumbprint"
)


def cert(**changes: object) -> CertificateObservation:
    """A certificate that satisfies every rule, 100 days from expiry; `changes` break one thing."""
    good = CertificateObservation(
        subject=f"CN={SERVER}",
        issuer="CN=Contoso Issuing CA",
        not_before=NOW - timedelta(days=265),
        not_after=NOW + timedelta(days=100),
        dns_names=(SERVER,),
        has_server_auth_eku=True,
        key_type="EC",
        key_size=256,
        signature_hash="sha256",
        thumbprint=THUMBPRINT,
        serial="0A1B",
    )
    return dataclasses.replace(good, **changes)


UNREACHABLE = EndpointUnreachable("10.0.0.4", 443, "no QUIC handshake within 5 s")


@pytest.mark.parametrize(
    ("observation", "smb_enabled", "state", "reason", "days", "message_parts"),
    [
        pytest.param(
            cert(),
            None,
            CertificateState.VALID,
            CertificateReason.VALID,
            100,
            [f"certificate for {SERVER} is valid until 2027-03-06 (100 days)", THUMBPRINT],
            id="valid",
        ),
        pytest.param(
            cert(),
            True,
            CertificateState.VALID,
            CertificateReason.VALID,
            100,
            ["valid until 2027-03-06"],
            id="valid-and-known-enabled",
        ),
        pytest.param(
            cert(not_after=NOW + timedelta(days=10)),
            None,
            CertificateState.EXPIRING_SOON,
            CertificateReason.EXPIRING_SOON,
            10,
            [f"certificate for {SERVER} expires 2026-12-06 (10 days); renew it and {MAPPING_HINT}"],
            id="expiring-soon",
        ),
        pytest.param(
            cert(not_after=NOW - timedelta(days=3)),
            None,
            CertificateState.EXPIRED,
            CertificateReason.EXPIRED,
            -3,
            [f"certificate for {SERVER} expired 2026-11-23 (3 days ago)", f"Renew it and {MAPPING_HINT}"],
            id="expired",
        ),
        pytest.param(
            cert(dns_names=("other.contoso.com",)),
            None,
            CertificateState.INVALID,
            CertificateReason.INVALID,
            100,
            [f"no DNS SAN matches {SERVER} (DNS SANs: other.contoso.com)", MAPPING_HINT],
            id="invalid",
        ),
        pytest.param(
            UNREACHABLE,
            None,
            CertificateState.UNREACHABLE,
            CertificateReason.UNREACHABLE,
            None,
            ["10.0.0.4:443", "no QUIC handshake within 5 s", "UDP 443", "EnableSMBQUIC"],
            id="unreachable",
        ),
        pytest.param(
            EndpointUnreachable("fd00::4", 8443, "connection refused"),
            True,
            CertificateState.UNREACHABLE,
            CertificateReason.UNREACHABLE,
            None,
            ["[fd00::4]:8443", "UDP 8443"],
            id="unreachable-ipv6-though-enabled",
        ),
        pytest.param(
            cert(),
            False,
            CertificateState.DISABLED,
            CertificateReason.DISABLED,
            100,
            ["Set-SmbServerConfiguration -EnableSMBQUIC $true", "remove SMBOverQUIC from spec.capabilities"],
            id="disabled",
        ),
    ],
)
def test_every_state(observation, smb_enabled, state, reason, days, message_parts):
    verdict = evaluate_certificate(observation, SERVER, WARN, NOW, smb_enabled=smb_enabled)
    assert (verdict.state, verdict.reason, verdict.days_remaining) == (state, reason, days)
    for part in message_parts:
        assert part in verdict.message
    assert verdict.condition_status is (state is CertificateState.VALID)
    assert verdict.certificate == (observation if isinstance(observation, CertificateObservation) else None)


@pytest.mark.parametrize(
    ("observation", "problem"),
    [
        pytest.param(cert(dns_names=("fs02.contoso.com", "*.fabrikam.com")), "no DNS SAN matches", id="name"),
        pytest.param(cert(dns_names=()), f"no DNS SAN matches {SERVER} (DNS SANs: none)", id="no-san"),
        pytest.param(
            cert(subject=f"CN={SERVER}", dns_names=("www.contoso.com",)),
            "no DNS SAN matches",  # the subject CN is never a fallback (RFC 6125 section 6.4.4)
            id="cn-only",
        ),
        pytest.param(
            cert(has_server_auth_eku=False), "no Server Authentication EKU (1.3.6.1.5.5.7.3.1)", id="eku"
        ),
        pytest.param(
            cert(key_type="RSA", key_size=1024),
            "weak key: RSA 1024 bits (need ECDSA P-256+ or RSA 2048+)",
            id="rsa-1024",
        ),
        pytest.param(cert(key_type="RSA", key_size=2047), "weak key: RSA 2047 bits", id="rsa-2047"),
        pytest.param(cert(key_type="EC", key_size=224), "weak key: EC 224 bits", id="ec-p224"),
        pytest.param(cert(key_type="Ed25519", key_size=256), "unsupported key type Ed25519", id="ed25519"),
        pytest.param(
            cert(signature_hash="sha1"),
            "weak signature hash: signed with sha1 (need SHA-256 or stronger)",
            id="sha1",
        ),
        pytest.param(cert(signature_hash="md5"), "signed with md5", id="md5"),
        pytest.param(
            cert(signature_hash=None), "signed with an algorithm without a separate hash", id="no-hash"
        ),
        pytest.param(
            cert(not_before=NOW + timedelta(hours=1)),
            "not valid before 2026-11-26T13:00:00Z (notBefore is in the future)",
            id="not-yet-valid",
        ),
    ],
)
def test_each_invalid_reason_is_named(observation, problem):
    verdict = evaluate_certificate(observation, SERVER, WARN, NOW)
    assert verdict.state is CertificateState.INVALID
    assert verdict.reason is CertificateReason.INVALID
    assert len(verdict.problems) == 1 and problem in verdict.problems[0]
    assert problem in verdict.message
    assert f"(thumbprint {THUMBPRINT}) is invalid" in verdict.message


@pytest.mark.parametrize(
    "observation",
    [
        pytest.param(cert(key_type="RSA", key_size=2048), id="rsa-2048"),
        pytest.param(cert(key_type="RSA", key_size=3072), id="rsa-3072"),
        pytest.param(cert(key_type="EC", key_size=384), id="ec-p384"),
        pytest.param(cert(signature_hash="sha384"), id="sha384"),
        pytest.param(cert(signature_hash="sha512"), id="sha512"),
        pytest.param(cert(not_before=NOW), id="valid-from-this-instant"),
        pytest.param(cert(dns_names=("*.contoso.com",)), id="wildcard-san"),
        pytest.param(cert(dns_names=("smb.contoso.com", "FS01.CONTOSO.COM.")), id="second-san-case-dot"),
    ],
)
def test_acceptable_certificates_are_valid(observation):
    verdict = evaluate_certificate(observation, SERVER, WARN, NOW)
    assert verdict.state is CertificateState.VALID, verdict.message
    assert verdict.problems == ()


def test_all_invalid_reasons_are_listed_together():
    verdict = evaluate_certificate(
        cert(
            dns_names=("old.contoso.com",),
            has_server_auth_eku=False,
            key_type="RSA",
            key_size=1024,
            signature_hash="sha1",
        ),
        SERVER,
        WARN,
        NOW,
    )
    assert verdict.state is CertificateState.INVALID
    assert len(verdict.problems) == 4
    for part in ("no DNS SAN matches", "no Server Authentication EKU", "RSA 1024 bits", "signed with sha1"):
        assert part in verdict.message


@pytest.mark.parametrize(
    ("observation", "smb_enabled", "state", "message_part"),
    [
        pytest.param(
            UNREACHABLE, False, CertificateState.DISABLED, "EnableSMBQUIC is false", id="disabled>unreach"
        ),
        pytest.param(
            cert(dns_names=("x.contoso.com",), not_after=NOW - timedelta(days=5)),
            None,
            CertificateState.INVALID,
            "; it also expired 2026-11-21",
            id="invalid>expired",
        ),
        pytest.param(
            cert(has_server_auth_eku=False, not_after=NOW + timedelta(days=2)),
            None,
            CertificateState.INVALID,
            "no Server Authentication EKU",
            id="invalid>expiring",
        ),
        pytest.param(
            cert(dns_names=(), not_after=NOW - timedelta(days=5)),
            False,
            CertificateState.DISABLED,
            "EnableSMBQUIC is false",
            id="disabled>invalid",
        ),
    ],
)
def test_precedence(observation, smb_enabled, state, message_part):
    verdict = evaluate_certificate(observation, SERVER, WARN, NOW, smb_enabled=smb_enabled)
    assert verdict.state is state
    assert message_part in verdict.message


@pytest.mark.parametrize(
    ("not_after", "warning_days", "state", "days"),
    [
        pytest.param(
            NOW + timedelta(days=30), 30, CertificateState.EXPIRING_SOON, 30, id="exactly-at-warning"
        ),
        pytest.param(
            NOW + timedelta(days=30, seconds=1), 30, CertificateState.VALID, 30, id="1s-before-warning"
        ),
        pytest.param(NOW + timedelta(days=29, hours=23), 30, CertificateState.EXPIRING_SOON, 29, id="inside"),
        pytest.param(NOW + timedelta(seconds=1), 30, CertificateState.EXPIRING_SOON, 0, id="last-second"),
        pytest.param(NOW, 30, CertificateState.EXPIRING_SOON, 0, id="at-expiry-instant"),
        pytest.param(NOW - timedelta(seconds=1), 30, CertificateState.EXPIRED, -1, id="1s-after-expiry"),
        pytest.param(NOW - timedelta(days=400), 30, CertificateState.EXPIRED, -400, id="long-expired"),
        pytest.param(NOW + timedelta(seconds=1), 0, CertificateState.VALID, 0, id="no-warning-window"),
        pytest.param(NOW, 0, CertificateState.EXPIRING_SOON, 0, id="no-warning-at-instant"),
    ],
)
def test_expiry_boundaries(not_after, warning_days, state, days):
    verdict = evaluate_certificate(
        cert(not_after=not_after, not_before=NOW - timedelta(days=500)), SERVER, warning_days, NOW
    )
    assert (verdict.state, verdict.days_remaining) == (state, days)


@pytest.mark.parametrize(
    ("not_after", "text"),
    [
        pytest.param(NOW - timedelta(seconds=1), "(less than a day ago)", id="seconds"),
        pytest.param(NOW - timedelta(days=1, hours=2), "(1 day ago)", id="one-day"),
        pytest.param(NOW - timedelta(days=400), "(400 days ago)", id="many-days"),
    ],
)
def test_expired_message_counts_days_since_expiry(not_after, text):
    verdict = evaluate_certificate(
        cert(not_after=not_after, not_before=NOW - timedelta(days=900)), SERVER, 30, NOW
    )
    assert verdict.state is CertificateState.EXPIRED
    assert text in verdict.message


def test_expiring_soon_message_uses_singular_day():
    verdict = evaluate_certificate(cert(not_after=NOW + timedelta(days=1, hours=3)), SERVER, 30, NOW)
    assert "expires 2026-11-27 (1 day);" in verdict.message


def test_days_remaining_is_reported_for_invalid_certificates_too():
    verdict = evaluate_certificate(
        cert(dns_names=(), not_after=NOW + timedelta(days=7, hours=5)), SERVER, 30, NOW
    )
    assert verdict.days_remaining == 7


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("*.contoso.com", "fs01.contoso.com", True),
        ("*.CONTOSO.com", "Fs01.Contoso.Com", True),
        ("*.contoso.com.", "fs01.contoso.com", True),
        ("*.contoso.com", "contoso.com", False),  # exactly one label
        ("*.contoso.com", "a.fs01.contoso.com", False),  # not several labels
        ("*.contoso.com", "fs01.fabrikam.com", False),
        ("fs*.contoso.com", "fs01.contoso.com", False),  # partial wildcard not honoured
        ("*01.contoso.com", "fs01.contoso.com", False),
        ("fs01.*.com", "fs01.contoso.com", False),  # wildcard only in the left-most label
        ("*.*.com", "fs01.contoso.com", False),
        ("*", "fs01", False),
        ("fs01", "fs01", True),  # single-label names match exactly
        ("fs01.contoso.com", "fs01.contoso.com", True),
        ("FS01.CONTOSO.COM", "fs01.contoso.com.", True),
        ("fs01.contoso.com", "fs01.contoso.co", False),
        ("fs01.contoso.com", "*.contoso.com", False),  # a wildcard server name is not a name
        ("xn--bcher-kva.example", "bücher.example", True),  # U-label server name, A-label SAN
        ("", "fs01.contoso.com", False),
        ("fs01..com", "fs01..com", False),
    ],
)
def test_dns_name_matching(pattern, name, matches):
    assert dns_name_matches(pattern, name) is matches


@pytest.mark.parametrize(
    ("sans", "state"),
    [
        (("*.contoso.com",), CertificateState.VALID),
        (("*.branch.contoso.com",), CertificateState.INVALID),
        (("contoso.com", "*.fabrikam.com"), CertificateState.INVALID),
        (("*.fabrikam.com", "*.contoso.com"), CertificateState.VALID),
    ],
)
def test_wildcard_sans_in_evaluation(sans, state):
    assert evaluate_certificate(cert(dns_names=sans), SERVER, WARN, NOW).state is state


def test_rejects_naive_now_and_negative_warning():
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_certificate(cert(), SERVER, WARN, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="must not be negative"):
        evaluate_certificate(cert(), SERVER, -1, NOW)


def test_untrusted_is_an_outage_after_invalid_and_expired_but_before_the_warning_window():
    untrusted = "its chain does not lead to a trusted root"
    verdict = evaluate_certificate(cert(trust_problem=untrusted), SERVER, 30, NOW)
    assert (verdict.state, verdict.reason) == (CertificateState.UNTRUSTED, "CertificateUntrusted")
    assert not verdict.condition_status and untrusted in verdict.message
    soon = cert(trust_problem=untrusted, not_after=NOW + timedelta(days=3))
    assert evaluate_certificate(soon, SERVER, 30, NOW).state is CertificateState.UNTRUSTED
    expired = cert(trust_problem=untrusted, not_after=NOW - timedelta(days=3))
    assert evaluate_certificate(expired, SERVER, 30, NOW).state is CertificateState.EXPIRED
    misnamed = cert(trust_problem=untrusted, dns_names=("other.contoso.com",))
    assert evaluate_certificate(misnamed, SERVER, 30, NOW).state is CertificateState.INVALID
