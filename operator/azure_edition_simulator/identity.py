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
(signature, expiry, audience, tenant of the subscription). Federated assertions are JWTs signed by the
simulator's *workload issuer* (``{origin}/_simulator/workload-identity``), standing in for a Kubernetes
service-account issuer; a principal trusts an (issuer, subject) pair through a federated credential.
Errors use Entra's ``AADSTS`` codes and wording.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
import uuid
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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IdentityPlatform:
        principals = [Principal.from_dict(p) for p in data["principals"]]
        return cls(
            data["tenantId"],
            {p.client_id: p for p in principals},
            SigningKey.from_dict(data["tokenKey"]),
            SigningKey.from_dict(data["workloadKey"]),
            int(data.get("tokenLifetimeSeconds", 3600)),
        )

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
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenError(
                400, "invalid_request", 50027, f"JWT token is invalid or malformed. ({exc})"
            ) from exc
        issuer = unverified.get("iss", "")
        if issuer != self.workload_issuer:
            raise TokenError(
                400,
                "invalid_client",
                700211,
                f"No matching federated identity record found for presented assertion issuer '{issuer}'. "
                "Please check your federated identity credential Subject, Audience and Issuer against the "
                "presented assertion.",
            )
        try:
            claims = jwt.decode(
                assertion,
                self.workload_key.private_key.public_key(),
                algorithms=["RS256"],
                audience=TOKEN_EXCHANGE_AUDIENCE,
                leeway=5,
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError(
                400, "invalid_client", 700024, "Client assertion is not within its valid time range."
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError(
                400,
                "invalid_client",
                700212,
                f"No matching federated identity record found for presented assertion audience "
                f"'{unverified.get('aud')}'.",
            ) from exc
        except jwt.PyJWTError as exc:
            raise TokenError(
                401,
                "invalid_client",
                5002738,
                f"Invalid JWT token. The token signature is not valid. ({exc})",
            ) from exc
        subject = claims.get("sub", "")
        for credential in principal.federated_credentials:
            if (credential.issuer or self.workload_issuer) == issuer and credential.subject == subject:
                return
        raise TokenError(
            400,
            "invalid_client",
            70021,
            f"No matching federated identity record found for presented assertion. Assertion Issuer: "
            f"'{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{TOKEN_EXCHANGE_AUDIENCE}'.",
        )

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
