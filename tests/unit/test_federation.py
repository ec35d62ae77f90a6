"""The simulator's federated-credential checks (Entra's order and codes), with an issuer's JWKS in hand.

The real fetch (discovery + JWKS from a real kube-apiserver) is exercised by
tests/e2e/test_workload_identity.py; here the issuer's JWKS is given to the key cache directly, so
every branch of the decision is covered in milliseconds.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from azure_edition_simulator.__main__ import build_parser, config_from_args
from azure_edition_simulator.identity import (
    CLIENT_ASSERTION_TYPE,
    TOKEN_EXCHANGE_AUDIENCE,
    FederatedCredential,
    IdentityPlatform,
    OidcFetchError,
    OidcKeyCache,
    TokenError,
    select_jwk,
)

ISSUER = "https://127.0.0.1:6443"
SUBJECT = "system:serviceaccount:azure-edition-system:azure-edition-operator"
ORIGIN = "https://127.0.0.1:8443"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"


class Issuer:
    """A service-account issuer: an EC key (as kube-apiserver's sa.key here) and its JWKS."""

    def __init__(self, kid: str = "key-1"):
        self.kid = kid
        self.key = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [jwk | {"kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def token(self, **changes: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": SUBJECT,
            "aud": [TOKEN_EXCHANGE_AUDIENCE],
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        } | changes
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def fetched() -> list[str]:
    return []


@pytest.fixture
def platform(issuer: Issuer, fetched: list[str]) -> IdentityPlatform:
    identity = IdentityPlatform.create("tenant-1", CLIENT_ID)
    identity.origin = ORIGIN
    identity.add_federated_credential(CLIENT_ID, FederatedCredential(subject=SUBJECT, issuer=ISSUER))

    def fetch(url: str, _context: Any) -> dict[str, Any]:
        fetched.append(url)
        if url != ISSUER:
            raise OidcFetchError(f"GET {url}/.well-known/openid-configuration failed: connection refused")
        return issuer.jwks()

    identity.oidc_keys = OidcKeyCache(fetch=fetch)
    return identity


def exchange(platform: IdentityPlatform, assertion: str) -> dict[str, Any]:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "scope": f"{ORIGIN}/.default",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return platform.issue_token("tenant-1", form, ORIGIN)


def refusal(platform: IdentityPlatform, assertion: str) -> TokenError:
    with pytest.raises(TokenError) as failure:
        exchange(platform, assertion)
    return failure.value


def test_the_trusted_service_account_gets_an_access_token(platform, issuer, fetched):
    assert exchange(platform, issuer.token())["access_token"]
    assert fetched == [ISSUER]


def test_keys_are_cached_between_exchanges(platform, issuer, fetched):
    exchange(platform, issuer.token())
    exchange(platform, issuer.token())
    assert fetched == [ISSUER]


def test_an_unknown_kid_refetches_once_so_rotated_keys_are_picked_up(platform, issuer, fetched):
    exchange(platform, issuer.token())
    issuer.kid, issuer.key = "key-2", ec.generate_private_key(ec.SECP256R1())  # the cluster rotated
    assert exchange(platform, issuer.token())["access_token"]
    assert fetched == [ISSUER, ISSUER]


def test_another_service_account_is_refused_with_70021(platform, issuer):
    error = refusal(platform, issuer.token(sub="system:serviceaccount:default:intruder"))
    assert (error.aadsts, error.error, error.status) == (70021, "invalid_client", 400)
    assert "system:serviceaccount:default:intruder" in error.description


def test_an_untrusted_issuer_is_refused_with_700211_before_anything_is_fetched(platform, issuer, fetched):
    error = refusal(platform, issuer.token(iss="https://127.0.0.1:1"))
    assert error.aadsts == 700211
    assert fetched == []


def test_another_audience_is_refused_with_700212(platform, issuer):
    assert refusal(platform, issuer.token(aud=["api://SomethingElse"])).aadsts == 700212


def test_an_expired_assertion_is_refused_with_700024(platform, issuer):
    now = int(time.time())
    assert refusal(platform, issuer.token(iat=now - 1200, nbf=now - 1200, exp=now - 600)).aadsts == 700024


def test_a_not_yet_valid_assertion_is_refused_with_700024(platform, issuer):
    assert refusal(platform, issuer.token(nbf=int(time.time()) + 600)).aadsts == 700024


def test_a_forged_signature_is_refused_with_700027(platform, issuer):
    forger = Issuer(kid=issuer.kid)  # same kid, another key
    assert refusal(platform, forger.token()).aadsts == 700027


def test_an_unreachable_issuer_is_refused_with_90061(platform, issuer):
    other = "https://127.0.0.1:2"
    platform.add_federated_credential(CLIENT_ID, FederatedCredential(subject=SUBJECT, issuer=other))
    error = refusal(platform, issuer.token(iss=other))
    assert (error.aadsts, error.error) == (90061, "invalid_request")


def test_an_unsigned_assertion_is_refused(platform, issuer):
    unsigned = jwt.encode(
        jwt.decode(issuer.token(), options={"verify_signature": False}), None, algorithm="none"
    )
    assert refusal(platform, unsigned).aadsts in (700027, 50027)


def test_garbage_is_refused_as_malformed(platform):
    assert refusal(platform, "not-a-jwt").aadsts == 50027


def test_select_jwk_picks_by_kid_or_the_only_key(issuer):
    jwks = issuer.jwks()
    assert select_jwk(jwks, issuer.kid) is not None
    assert select_jwk(jwks, None) is not None
    assert select_jwk(jwks, "other") is None
    assert select_jwk({"keys": jwks["keys"] * 2}, None) is None


def test_configure_federation_validates_the_control_api_body(platform):
    with pytest.raises(ValueError, match="issuer"):
        platform.configure_federation({"issuer": "http://plain", "subject": SUBJECT}, CLIENT_ID)
    with pytest.raises(ValueError, match="subject"):
        platform.configure_federation({"issuer": ISSUER}, CLIENT_ID)
    with pytest.raises(ValueError, match="clientId"):
        platform.configure_federation({"issuer": ISSUER, "subject": SUBJECT, "clientId": "nobody"}, CLIENT_ID)
    with pytest.raises(ValueError):
        platform.configure_federation(
            {"issuer": ISSUER, "subject": SUBJECT, "issuerCaPem": "garbage"}, CLIENT_ID
        )
    before = len(platform.principals[CLIENT_ID].federated_credentials)
    platform.configure_federation({"issuer": ISSUER, "subject": SUBJECT}, CLIENT_ID)  # already there
    assert len(platform.principals[CLIENT_ID].federated_credentials) == before


def test_federation_survives_a_restart_of_a_persistent_simulator(platform):
    platform.trust_oidc_ca(_a_ca_pem())
    restored = IdentityPlatform.from_dict(platform.to_dict())
    assert restored.oidc_ca_pems == platform.oidc_ca_pems
    assert (
        FederatedCredential(subject=SUBJECT, issuer=ISSUER)
        in restored.principals[CLIENT_ID].federated_credentials
    )


def test_cli_flags_configure_federation(tmp_path):
    args = build_parser().parse_args(
        ["--federated-credential", ISSUER, SUBJECT, "--oidc-ca-file", str(tmp_path / "ca.crt")]
    )
    config = config_from_args(args)
    assert config.federated_credentials == ((ISSUER, SUBJECT),)
    assert config.oidc_ca_files == (tmp_path / "ca.crt",)


def _a_ca_pem() -> str:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()
