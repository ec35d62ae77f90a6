"""Just enough of the Microsoft identity platform for ``azure-identity`` to obtain ARM tokens.

Endpoints (served by :mod:`azure_edition_simulator.server`, all on the simulator's HTTPS origin, which is
also the *authority host*):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` — MSAL's tenant discovery (ClientSecretCredential).
* ``POST /{tenant}/oauth2/v2.0/token`` — client-credentials grant with ``client_secret`` or with a
  ``client_assertion`` (a federated JWT, as WorkloadIdentityCredential sends from its token file).
* ``GET /{tenant}/discovery/v2.0/keys`` — the signing keys of the access tokens.
* ``GET /common/discovery/instance`` — instance discovery, for clients that point MSAL's
  ``instance_discovery`` at the simulator.

Access tokens are RS256 JWTs signed by the simulator; ARM requests are validated against them
(signature, expiry, audience, tenant of the subscription).

Federated assertions (workload identity) are checked as Entra checks them: a principal trusts an
(issuer, subject, audience) triple through a *federated credential*; the assertion's signature is
verified with the keys the issuer publishes through OIDC discovery (``{iss}/.well-known/
openid-configuration`` → ``jwks_uri``), fetched over HTTPS and trusted through ``oidc_ca_pems`` (a
real cluster's kube-apiserver: its CA). A credential whose issuer is ``None`` trusts the simulator's
own *workload issuer* (``{origin}/_simulator/workload-identity``, for runs without a cluster), whose
keys the simulator holds itself. Errors use Entra's ``AADSTS`` codes and wording.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import ArmError

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
DEFAULT_SERVICE_ACCOUNT_SUBJECT = "system:serviceaccount:azure-edition-system:azure-edition-operator"
WORKLOAD_ISSUER_PATH = "/_simulator/workload-identity"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Audiences real ARM accepts besides its own origin.
WELL_KNOWN_ARM_AUDIENCES = (
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
)
# Other resources the directory issues tokens for (ARM refuses them: InvalidAuthenticationTokenAudience).
OTHER_RESOURCES = ("https://graph.microsoft.com", "https://vault.azure.net", "https://storage.azure.com")
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}
# Clock-skew allowance when ARM checks exp/nbf (client and simulator share a clock on loopback).
TOKEN_LEEWAY_SECONDS = 1
# Signature algorithms of Kubernetes service-account issuers (RSA or ECDSA keys) and of ours.
ASSERTION_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
# How long an issuer's JWKS is reused before it is fetched again (an unknown kid refetches at once).
JWKS_CACHE_SECONDS = 300.0
OIDC_FETCH_TIMEOUT_SECONDS = 5.0


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    """An RSA key with a key id, publishable as a JWK."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(
            kid=secrets.token_hex(8),
            private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> SigningKey:
        key = serialization.load_pem_private_key(data["pem"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("signing key is not RSA")
        return cls(kid=data["kid"], private_key=key)

    def to_dict(self) -> dict[str, str]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {"kid": self.kid, "pem": pem.decode()}

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )


@dataclass
class FederatedCredential:
    """Trust of (issuer, subject) for a principal; ``issuer=None`` means the simulator's workload issuer."""

    subject: str
    issuer: str | None = None
    audiences: list[str] = field(default_factory=lambda: [TOKEN_EXCHANGE_AUDIENCE])

    def to_dict(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "subject": self.subject, "audiences": list(self.audiences)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FederatedCredential:
        return cls(
            subject=data["subject"],
            issuer=data.get("issuer"),
            audiences=list(data.get("audiences") or [TOKEN_EXCHANGE_AUDIENCE]),
        )


@dataclass
class Principal:
    """An app registration / service principal."""

    client_id: str
    client_secret: str | None
    object_id: str
    display_name: str
    federated_credentials: list[FederatedCredential] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "objectId": self.object_id,
            "displayName": self.display_name,
            "federatedCredentials": [fc.to_dict() for fc in self.federated_credentials],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Principal:
        return cls(
            client_id=data["clientId"],
            client_secret=data.get("clientSecret"),
            object_id=data.get("objectId") or str(uuid.uuid4()),
            display_name=data.get("displayName") or "simulated-app",
            federated_credentials=[
                FederatedCredential.from_dict(f) for f in data.get("federatedCredentials", [])
            ],
        )


@dataclass
class CallerIdentity:
    """Who made an ARM request (from a validated access token)."""

    tenant_id: str
    object_id: str
    client_id: str


class TokenError(Exception):
    """An OAuth error response from the token endpoint."""

    def __init__(self, status: int, error: str, aadsts: int, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def body(self) -> dict[str, Any]:
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        timestamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.aadsts}: {self.description}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            "error_codes": [self.aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.aadsts}",
        }


class OidcFetchError(Exception):
    """An issuer's discovery document or JWKS could not be fetched or made no sense."""


def _https_json(url: str, context: ssl.SSLContext) -> dict[str, Any]:
    if not url.startswith("https://"):
        raise OidcFetchError(f"'{url}' is not an https URL")
    # kube-apiserver serves the JWKS only as application/jwk-set+json (406 for application/json).
    request = urllib.request.Request(url, headers={"Accept": "application/json, application/jwk-set+json"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=OIDC_FETCH_TIMEOUT_SECONDS) as response:
            data = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise OidcFetchError(f"GET {url} failed: {exc}") from exc
    if not isinstance(data, dict):
        raise OidcFetchError(f"GET {url} did not return a JSON object")
    return data


def fetch_issuer_jwks(issuer: str, context: ssl.SSLContext) -> dict[str, Any]:
    """OIDC discovery as Entra does it: the document must name the same issuer; then its jwks_uri."""
    discovery = _https_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration", context)
    if discovery.get("issuer") != issuer:
        raise OidcFetchError(f"discovery document names issuer '{discovery.get('issuer')}', not '{issuer}'")
    jwks_uri = discovery.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise OidcFetchError("discovery document has no jwks_uri")
    jwks = _https_json(jwks_uri, context)
    if not isinstance(jwks.get("keys"), list):
        raise OidcFetchError(f"{jwks_uri} has no 'keys'")
    return jwks


class OidcKeyCache:
    """Issuers' signing keys, fetched through discovery and kept for a while (thread-safe)."""

    def __init__(
        self,
        fetch: Callable[[str, ssl.SSLContext], dict[str, Any]] = fetch_issuer_jwks,
        ttl_seconds: float = JWKS_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self.fetches = 0

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def signing_key(self, issuer: str, kid: str | None, context: ssl.SSLContext) -> Any:
        """The public key for ``kid`` (refetching once if it is unknown: keys rotate)."""
        for refresh in (False, True):
            jwks = self._jwks(issuer, context, refresh=refresh)
            key = select_jwk(jwks, kid)
            if key is not None:
                return key
        raise jwt.InvalidSignatureError(f"issuer '{issuer}' publishes no key with kid '{kid}'")

    def _jwks(self, issuer: str, context: ssl.SSLContext, *, refresh: bool) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            cached = self._entries.get(issuer)
        if cached and not refresh and now - cached[0] < self._ttl:
            return cached[1]
        jwks = self._fetch(issuer, context)
        self.fetches += 1
        with self._lock:
            self._entries[issuer] = (now, jwks)
        return jwks


def select_jwk(jwks: dict[str, Any], kid: str | None) -> Any:
    """The public key of the JWK with this kid (or the only one when the token names none)."""
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)]
    candidates = [k for k in keys if k.get("kid") == kid] if kid else keys[:1] if len(keys) == 1 else []
    if not candidates:
        return None
    return jwt.PyJWK.from_dict(candidates[0]).key


class IdentityPlatform:
    """Tenant, principals and keys; issues and validates tokens."""

    def __init__(
        self,
        tenant_id: str,
        principals: dict[str, Principal],
        token_key: SigningKey,
        workload_key: SigningKey,
        token_lifetime_seconds: int = 3600,
    ):
        self.tenant_id = tenant_id
        self.principals = principals
        self.token_key = token_key
        self.workload_key = workload_key
        self.token_lifetime_seconds = token_lifetime_seconds
        self.origin = ""  # set by the server once the port is known
        # CA certificates (PEM) trusted when fetching issuers' discovery documents and JWKS.
        self.oidc_ca_pems: list[str] = []
        self.oidc_keys = OidcKeyCache()

    def trust_oidc_ca(self, pem: str) -> None:
        """Trust this CA (PEM) for issuers' discovery and JWKS fetches (e.g. a kube-apiserver's CA)."""
        pem = pem.strip() + "\n"
        try:  # refuse garbage now, not at the first token request
            ssl.create_default_context(cadata=pem)
        except ssl.SSLError as exc:
            raise ValueError(f"not a PEM CA certificate: {exc}") from exc
        if pem not in self.oidc_ca_pems:
            self.oidc_ca_pems.append(pem)
            self.oidc_keys.clear()

    def add_federated_credential(self, client_id: str, credential: FederatedCredential) -> Principal:
        """Trust (issuer, subject, audiences) for an app; a repeat of an existing one changes nothing."""
        principal = self.principals.get(client_id)
        if principal is None:
            raise KeyError(client_id)
        if credential not in principal.federated_credentials:
            principal.federated_credentials.append(credential)
        return principal

    def configure_federation(self, data: dict[str, Any], default_client_id: str) -> dict[str, Any]:
        """The control API's ``POST identity/federated-credentials`` body → the app it trusts now.

        ``{clientId?, issuer, subject, audiences?, issuerCaPem?}``: ``issuer`` is the cluster's
        service-account issuer URL (its discovery and JWKS are fetched from there), ``issuerCaPem``
        the CA to fetch them with.
        """
        issuer, subject = data.get("issuer"), data.get("subject")
        if not isinstance(issuer, str) or not issuer.startswith("https://"):
            raise ValueError("'issuer' must be the issuer's https URL")
        if not isinstance(subject, str) or not subject:
            raise ValueError("'subject' is required, e.g. system:serviceaccount:NAMESPACE:NAME")
        if data.get("issuerCaPem"):
            self.trust_oidc_ca(str(data["issuerCaPem"]))
        credential = FederatedCredential.from_dict(
            {"issuer": issuer, "subject": subject, "audiences": data.get("audiences")}
        )
        client_id = str(data.get("clientId") or default_client_id)
        try:
            return self.add_federated_credential(client_id, credential).to_dict()
        except KeyError:
            raise ValueError(f"no app with clientId '{client_id}'") from None

    def _oidc_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.oidc_ca_pems:
            context.load_verify_locations(cadata="".join(self.oidc_ca_pems))
        return context

    # --- construction / persistence -------------------------------------------------------------

    @classmethod
    def create(cls, tenant_id: str, client_id: str, client_secret: str | None = None) -> IdentityPlatform:
        principal = Principal(
            client_id=client_id,
            client_secret=client_secret or secrets.token_urlsafe(24),
            object_id=str(uuid.uuid4()),
            display_name="azure-edition-operator",
            federated_credentials=[FederatedCredential(subject=DEFAULT_SERVICE_ACCOUNT_SUBJECT)],
        )
        return cls(tenant_id, {client_id: principal}, SigningKey.generate(), SigningKey.generate())

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "principals": [p.to_dict() for p in self.principals.values()],
            "tokenKey": self.token_key.to_dict(),
            "workloadKey": self.workload_key.to_dict(),
            "tokenLifetimeSeconds": self.token_lifetime_seconds,
            "oidcCaPems": list(self.oidc_ca_pems),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IdentityPlatform:
        principals = [Principal.from_dict(p) for p in data["principals"]]
        platform = cls(
            data["tenantId"],
            {p.client_id: p for p in principals},
            SigningKey.from_dict(data["tokenKey"]),
            SigningKey.from_dict(data["workloadKey"]),
            int(data.get("tokenLifetimeSeconds", 3600)),
        )
        platform.oidc_ca_pems = list(data.get("oidcCaPems", []))
        return platform

    # --- well-known documents ---------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"{self.origin}/{self.tenant_id}/v2.0"

    @property
    def workload_issuer(self) -> str:
        return f"{self.origin}{WORKLOAD_ISSUER_PATH}"

    def openid_configuration(self, tenant: str, origin: str | None = None) -> dict[str, Any]:
        """The tenant's OIDC metadata; endpoints on the origin the client used (loopback or a Service name)."""
        origin = origin or self.origin
        base = f"{origin}/{tenant}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.origin}/{self.tenant_id}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{origin}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "simulator.local",
            "cloud_graph_host_name": "graph.simulator.local",
            "msgraph_host": "graph.simulator.local",
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.token_key.jwk()]}

    def workload_jwks(self) -> dict[str, Any]:
        return {"keys": [self.workload_key.jwk()]}

    def instance_discovery(self, authorization_endpoint: str, origin: str | None = None) -> dict[str, Any]:
        tenant = authorization_endpoint.rstrip("/").split("/")[-4] if authorization_endpoint else "common"
        return {
            "tenant_discovery_endpoint": f"{origin or self.origin}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [],
        }

    # --- tokens -------------------------------------------------------------------------------------

    def allowed_audiences(self, arm_origin: str) -> tuple[str, ...]:
        """ARM's audiences: the origin the client used, the simulator's own, and ARM's well-known ones."""
        origins = dict.fromkeys((arm_origin, self.origin))
        return (*(o + suffix for o in origins for suffix in ("", "/")), *WELL_KNOWN_ARM_AUDIENCES)

    def mint_federated_token(
        self,
        subject: str = DEFAULT_SERVICE_ACCOUNT_SUBJECT,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        lifetime_seconds: int = 30 * 24 * 3600,
    ) -> str:
        """A service-account-like JWT from the workload issuer (what a token file contains)."""
        now = int(time.time())
        return self.workload_key.sign(
            {
                "iss": self.workload_issuer,
                "sub": subject,
                "aud": [audience],
                "iat": now,
                "nbf": now,
                "exp": now + lifetime_seconds,
                "jti": str(uuid.uuid4()),
            }
        )

    def issue_token(self, tenant: str, form: dict[str, str], arm_origin: str) -> dict[str, Any]:
        """Handle a token request; raises TokenError with Entra's codes."""
        if tenant.lower() not in (self.tenant_id.lower(), "organizations", "common"):
            raise TokenError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
            )
        grant_type = form.get("grant_type", "")
        if grant_type != "client_credentials":
            raise TokenError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id = form.get("client_id", "")
        principal = self.principals.get(client_id)
        if principal is None:
            raise TokenError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
            )
        resource = self._resource_from_scope(form.get("scope", ""), arm_origin)
        if form.get("client_assertion"):
            self._check_assertion(principal, form)
        elif form.get("client_secret") is not None:
            if not principal.client_secret or not secrets.compare_digest(
                form["client_secret"], principal.client_secret
            ):
                raise TokenError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                    f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
                )
        else:
            raise TokenError(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' "
                "grant type.",
            )
        now = int(time.time())
        lifetime = self.token_lifetime_seconds
        token = self.token_key.sign(
            {
                "aud": resource,
                "iss": self.issuer,
                "iat": now,
                "nbf": now,
                "exp": now + lifetime,
                "tid": self.tenant_id,
                "oid": principal.object_id,
                "sub": principal.object_id,
                "azp": principal.client_id,
                "appid": principal.client_id,
                "idtyp": "app",
                "ver": "2.0",
                "uti": secrets.token_urlsafe(16),
            }
        )
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    def _resource_from_scope(self, scope: str, arm_origin: str) -> str:
        scopes = [s for s in scope.split() if s not in _RESERVED_SCOPES]
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise TokenError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                "scope value with /.default suffixed to the resource identifier (application ID URI).",
            )
        resource = scopes[0][: -len("/.default")]
        if resource not in (*self.allowed_audiences(arm_origin), *OTHER_RESOURCES):
            raise TokenError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {self.tenant_id}. "
                "This can happen if the application has not been installed by the administrator of the tenant "
                "or consented to by any user in the tenant. You might have sent your authentication request "
                "to the wrong tenant.",
            )
        return resource

    def _check_assertion(self, principal: Principal, form: dict[str, str]) -> None:
        """Entra's federated-credential checks, in its order: issuer, signature, lifetime, audience, subject."""
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise TokenError(
                400,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed: client_assertion_type must be "
                f"'{CLIENT_ASSERTION_TYPE}'.",
            )
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenError(
                400, "invalid_request", 50027, f"JWT token is invalid or malformed. ({exc})"
            ) from exc
        issuer = str(unverified.get("iss", ""))
        trusted = [c for c in principal.federated_credentials if (c.issuer or self.workload_issuer) == issuer]
        if not trusted:
            raise TokenError(
                400,
                "invalid_client",
                700211,
                f"No matching federated identity record found for presented assertion issuer '{issuer}'. "
                "Please check your federated identity credential Subject, Audience and Issuer against the "
                "presented assertion.",
            )
        try:
            key = self._assertion_key(issuer, header.get("kid"))
        except OidcFetchError as exc:
            raise TokenError(
                400, "invalid_request", 90061, f"Request to External OIDC endpoint failed. ({exc})"
            ) from exc
        except jwt.PyJWTError as exc:
            raise TokenError(
                401, "invalid_client", 700027, f"Client assertion failed signature validation. ({exc})"
            ) from exc
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=ASSERTION_ALGORITHMS,
                options={"verify_aud": False, "require": ["exp", "iss", "sub"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError as exc:
            expiry = dt.datetime.fromtimestamp(int(unverified.get("exp", 0)), dt.UTC)
            raise TokenError(
                400,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range. Current time: "
                f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%S.%fZ}, expiry time of assertion "
                f"{expiry:%Y-%m-%dT%H:%M:%S.%fZ}.",
            ) from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError(
                400, "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenError(
                401, "invalid_client", 700027, f"Client assertion failed signature validation. ({exc})"
            ) from exc
        except jwt.PyJWTError as exc:
            raise TokenError(
                400, "invalid_request", 50027, f"JWT token is invalid or malformed. ({exc})"
            ) from exc
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else list(audiences)
        trusted = [c for c in trusted if set(audiences) & set(c.audiences)]
        if not trusted:
            raise TokenError(
                400,
                "invalid_client",
                700212,
                f"No matching federated identity record found for presented assertion audience "
                f"'{', '.join(audiences)}'. Please note that the matching is done using a case-sensitive "
                "comparison. Please check your federated identity credential Subject, Audience and Issuer "
                "against the presented assertion.",
            )
        subject = str(claims.get("sub", ""))
        if any(c.subject == subject for c in trusted):
            return
        raise TokenError(
            400,
            "invalid_client",
            70021,
            f"No matching federated identity record found for presented assertion. Assertion Issuer: "
            f"'{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{', '.join(audiences)}'.",
        )

    def _assertion_key(self, issuer: str, kid: str | None) -> Any:
        """The issuer's public key: ours for the built-in workload issuer, else from its OIDC discovery."""
        if issuer == self.workload_issuer:
            if kid not in (None, self.workload_key.kid):
                raise jwt.InvalidSignatureError(f"issuer '{issuer}' publishes no key with kid '{kid}'")
            return self.workload_key.private_key.public_key()
        return self.oidc_keys.signing_key(issuer, kid, self._oidc_context())

    def authenticate(self, authorization: str | None, arm_origin: str) -> CallerIdentity:
        """Validate an ARM request's bearer token, raising ARM's 401 errors."""
        if not authorization:
            raise self._unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                "The authentication failed because of missing 'Authorization' header.",
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise self._unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                "The authentication failed because of invalid 'Authorization' header.",
            )
        token = token.strip()
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise self._unauthorized(
                "InvalidAuthenticationToken", "The access token is invalid.", "The access token is invalid."
            ) from None
        try:
            claims = jwt.decode(
                token,
                self.token_key.private_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False},
                leeway=TOKEN_LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            expiry = dt.datetime.fromtimestamp(int(unverified.get("exp", 0)), dt.UTC)
            now = dt.datetime.now(dt.UTC)
            raise self._unauthorized(
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{expiry:%m/%d/%Y %I:%M:%S %p}' is earlier than current UTC "
                f"time '{now:%m/%d/%Y %I:%M:%S %p}'.",
                "The access token expiry UTC time is earlier than current UTC time.",
            ) from None
        except jwt.PyJWTError:
            raise self._unauthorized(
                "InvalidAuthenticationToken", "The access token is invalid.", "The access token is invalid."
            ) from None
        audience = claims.get("aud")
        allowed = self.allowed_audiences(arm_origin)
        if audience not in allowed:
            raise self._unauthorized(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{audience}'. It should "
                f"exactly match with one of the allowed audiences '{','.join(allowed)}'.",
                "The access token has been obtained for wrong audience or resource.",
            )
        if claims.get("iss") != self.issuer:
            raise self._unauthorized(
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{claims.get('iss')}'. It must match the tenant "
                f"'{self.issuer}' associated with this subscription. Please use the authority (URL) "
                f"'{self.origin}/{self.tenant_id}' to get the token.",
                "The access token is from the wrong issuer.",
            )
        return CallerIdentity(
            tenant_id=str(claims.get("tid")),
            object_id=str(claims.get("oid")),
            client_id=str(claims.get("appid")),
        )

    def _unauthorized(self, code: str, message: str, description: str) -> ArmError:
        challenge = (
            f'Bearer authorization_uri="{self.origin}/{self.tenant_id}", error="invalid_token", '
            f'error_description="{description}"'
        )
        return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})
