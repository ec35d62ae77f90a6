"""Operator state kept on a tenant's object, authenticated with a key only the operator holds.

The driver's memory (the operation in flight with its continuation token, the vmId, the image of the
VM) and the last assess token answered live in annotations under kopf's prefix: no extra object, no
extra write. Whoever may edit the AzureEditionVM may edit those annotations too, so each value is sealed
with an HMAC-SHA256 over the object's uid, the annotation's purpose and the payload, keyed by a Secret
in the operator's own namespace (``OperatorConfig.state_key_secret``), which tenants can neither read
nor write. A value that fails verification is treated as absent: the operator then learns what it
needs from Azure (a GET), which is what it does after losing the annotation anyway
(docs/security.md, "Operator state").

The uid binds a value to one object: a tenant cannot copy a sealed value from one of their objects to
another. The purpose binds it to one annotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "v1"
KEY_BYTES = 32
MAX_SEALED_CHARS = 64 * 1024
"""A sealed value longer than this is refused unread (the driver's state is a few KiB: the continuation
token carries the initial response body)."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _mac(key: bytes, uid: str, purpose: str, payload: str) -> str:
    message = b"\0".join((SCHEME.encode(), uid.encode(), purpose.encode(), payload.encode()))
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def seal(key: bytes, uid: str, purpose: str, payload: str) -> str:
    """``v1.<mac>.<payload>``: the payload stays readable (``kubectl get -o yaml`` shows what the
    operator remembers), only its authenticity is added."""
    return f"{SCHEME}.{_mac(key, uid, purpose, payload)}.{payload}"


def unseal(key: bytes, uid: str, purpose: str, value: str | None) -> str | None:
    """The payload when ``value`` was sealed by this key for this object and purpose, else None."""
    if not value or len(value) > MAX_SEALED_CHARS:
        return None
    scheme, _, rest = value.partition(".")
    mac, _, payload = rest.partition(".")
    if scheme != SCHEME or not mac:
        return None
    if not hmac.compare_digest(mac.encode(), _mac(key, uid, purpose, payload).encode()):
        return None
    return payload
