"""The simulator's test CA: CertificateSpec's JSON form and the certificates it issues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from azure_edition_operator.checks.smb_certificate import observe_certificate
from azure_edition_simulator.certs import (
    CertificateAuthority,
    CertificateSpec,
    default_authority,
    issue_certificate,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NAME = "fs01.contoso.com"


def spec(**changes: object) -> CertificateSpec:
    return CertificateSpec.from_dict({"commonName": NAME, "validDays": 90, **changes}, now=NOW)


@pytest.mark.parametrize(
    ("data", "not_before", "not_after"),
    [
        pytest.param(
            {"validDays": 90}, NOW - timedelta(hours=1), NOW + timedelta(days=90, hours=-1), id="validDays"
        ),
        pytest.param(
            {"expiresInDays": 10}, NOW - timedelta(hours=1), NOW + timedelta(days=10), id="expiresInDays"
        ),
        pytest.param(
            {"expiresInDays": -3}, NOW - timedelta(days=93), NOW - timedelta(days=3), id="already-expired"
        ),
        pytest.param(
            {"notBefore": "2026-01-01T00:00:00Z", "notAfter": "2027-01-01T00:00:00+00:00"},
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
            id="explicit-dates",
        ),
        pytest.param(
            {"notBefore": "2026-12-01T00:00:00Z", "validDays": 30},
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2026, 12, 31, tzinfo=UTC),
            id="not-yet-valid",
        ),
    ],
)
def test_from_dict_dates(data, not_before, not_after):
    parsed = CertificateSpec.from_dict({"commonName": NAME, **data}, now=NOW)
    assert (parsed.not_before, parsed.not_after) == (not_before, not_after)


def test_from_dict_defaults_and_round_trip():
    parsed = spec()
    assert parsed.dns_names == (NAME,)
    assert (parsed.server_auth_eku, parsed.key_type, parsed.signature_hash) == (True, "ec-p256", "sha256")
    full = spec(dnsNames=["a.contoso.com", "b.contoso.com"], serverAuthEku=False, keyType="rsa-1024")
    assert full.to_dict() == {
        "commonName": NAME,
        "dnsNames": ["a.contoso.com", "b.contoso.com"],
        "notBefore": "2026-11-26T11:00:00Z",
        "notAfter": "2027-02-24T11:00:00Z",
        "serverAuthEku": False,
        "keyType": "rsa-1024",
        "signatureHash": "sha256",
    }
    assert CertificateSpec.from_dict(full.to_dict()) == full


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param({"validDays": 90}, "commonName is required", id="no-name"),
        pytest.param({"commonName": NAME}, "exactly one of", id="no-end"),
        pytest.param(
            {"commonName": NAME, "validDays": 9, "expiresInDays": 9}, "exactly one of", id="two-ends"
        ),
        pytest.param(
            {"commonName": NAME, "validDays": 9, "colour": "red"}, "unknown certificate spec keys: colour"
        ),
        pytest.param({"commonName": NAME, "notAfter": "2027-01-01T00:00:00"}, "needs a timezone", id="naive"),
        pytest.param({"commonName": NAME, "notAfter": "next tuesday"}, "not ISO 8601", id="not-iso"),
        pytest.param({"commonName": NAME, "validDays": "90"}, "validDays must be a number", id="days-str"),
        pytest.param({"commonName": NAME, "validDays": 0}, "must be after notBefore", id="zero-days"),
        pytest.param({"commonName": NAME, "validDays": 9, "keyType": "rsa-512"}, "keyType 'rsa-512'"),
        pytest.param({"commonName": NAME, "validDays": 9, "signatureHash": "md5"}, "signatureHash 'md5'"),
        pytest.param({"commonName": NAME, "validDays": 9, "dnsNames": "a.b"}, "dnsNames must be a list"),
        pytest.param({"commonName": NAME, "validDays": 9, "serverAuthEku": "yes"}, "serverAuthEku must be"),
    ],
)
def test_from_dict_rejects_bad_input_with_a_clear_message(data, error):
    with pytest.raises(ValueError, match=error):
        CertificateSpec.from_dict(data, now=NOW)


@pytest.mark.parametrize(
    ("key_type", "key_class", "key_size"),
    [
        ("ec-p256", ec.EllipticCurvePublicKey, 256),
        ("ec-p384", ec.EllipticCurvePublicKey, 384),
        ("rsa-1024", rsa.RSAPublicKey, 1024),
        ("rsa-2048", rsa.RSAPublicKey, 2048),
        ("rsa-3072", rsa.RSAPublicKey, 3072),
    ],
)
def test_issued_key_types(key_type, key_class, key_size):
    issued = issue_certificate(spec(keyType=key_type))
    certificate = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    key = serialization.load_pem_private_key(issued.key_pem.encode(), password=None)
    assert isinstance(certificate.public_key(), key_class)
    assert certificate.public_key().key_size == key_size
    assert key.public_key() == certificate.public_key()


@pytest.mark.parametrize("signature_hash", ["sha256", "sha384", "sha1"])
def test_issued_signature_hash_and_chain(signature_hash):
    authority = CertificateAuthority()
    issued = issue_certificate(spec(signatureHash=signature_hash), authority=authority)
    certificate = x509.load_pem_x509_certificate(issued.cert_pem.encode())
    issuing, root = x509.load_pem_x509_certificates(issued.chain_pem.encode())

    assert certificate.signature_hash_algorithm.name == signature_hash
    # The issuing CA's key really signed this TBSCertificate with that hash (SHA-1 included).
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha1": hashes.SHA1()}[signature_hash]
    issuing.public_key().verify(certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(algorithm))
    assert certificate.issuer == issuing.subject and issuing.issuer == root.subject == root.issuer
    root.public_key().verify(issuing.signature, issuing.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    assert (issuing, root) == (authority.issuing_certificate, authority.root_certificate)


def test_issued_certificate_fields_match_the_spec():
    requested = spec(dnsNames=[NAME, "*.branch.contoso.com"], serverAuthEku=False)
    issued = issue_certificate(requested)
    certificate = x509.load_pem_x509_certificate(issued.cert_pem.encode())

    assert issued.thumbprint == certificate.fingerprint(hashes.SHA1()).hex().upper()
    assert len(issued.thumbprint) == 40 and issued.thumbprint.isupper()
    assert issued.subject == f"CN={NAME}"
    assert issued.not_after == certificate.not_valid_after_utc == requested.not_after
    assert issued.fullchain_pem == issued.cert_pem + issued.chain_pem
    assert issued.spec == requested
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]  # the realistic "wrong template" mistake
    observation = observe_certificate(certificate)
    assert observation.dns_names == (NAME, "*.branch.contoso.com")
    assert observation.has_server_auth_eku is False


def test_no_dns_names_means_no_san_extension():
    certificate = x509.load_pem_x509_certificate(issue_certificate(spec(dnsNames=[])).cert_pem.encode())
    with pytest.raises(x509.ExtensionNotFound):
        certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert observe_certificate(certificate).dns_names == ()


def test_default_authority_is_shared_and_authorities_are_distinct():
    assert default_authority() is default_authority()
    assert CertificateAuthority().root_certificate.subject != CertificateAuthority().root_certificate.subject
