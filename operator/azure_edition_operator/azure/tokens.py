"""Which continuation tokens the operator may resume: a pure check before the SDK sees one.

azure-core's continuation token is base64 JSON holding the initial request (method, URL) and the
response headers that name the polling URLs (``azure-asyncoperation``, ``operation-location``,
``location``). Resuming a token makes the SDK send GETs with the ARM bearer token to those URLs, so a
token that names any other host, or another resource, would hand that token out or read what this
object does not own. The driver's state is authenticated (``sealing``); this check holds even if it were
not: the request must be the recorded resource on the configured ARM endpoint, and every polling URL an
operation of the same subscription on the same endpoint (docs/security.md, "Operator state").
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

MAX_TOKEN_CHARS = 48 * 1024
POLLING_HEADERS = frozenset({"azure-asyncoperation", "operation-location", "location"})
METHODS = frozenset({"PUT", "PATCH", "DELETE"})
TOKEN_VERSION = 1  # azure-core's _CONTINUATION_TOKEN_VERSION

_SEGMENT = r"[A-Za-z0-9_.()-]+"
_OPERATION_PATH = re.compile(
    rf"/subscriptions/(?P<sub>{_SEGMENT})(?:/resourceGroups/{_SEGMENT})?"
    rf"/providers/Microsoft\.(?:Compute|Network)/locations/{_SEGMENT}"
    rf"/(?:operations|operationResults|operationStatuses)/{_SEGMENT}",
    re.IGNORECASE,
)


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port or (443 if parts.scheme == "https" else None)
    except ValueError:  # a port out of range or not a number
        return -1


def _url_problem(url: Any, endpoint: SplitResult, what: str) -> tuple[str | None, str]:
    """(problem, path): the URL must be plain https on the ARM endpoint, its path plain (the query
    does not change where the request goes)."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        return f"{what} is not a URL", ""
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in url):
        return f"{what} has control characters, spaces or backslashes", ""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return f"{what} is not https", ""
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return f"{what} carries user information", ""
    if (parts.hostname or "") != (endpoint.hostname or "") or _port(parts) != _port(endpoint):
        return f"{what} is not on the ARM endpoint {endpoint.netloc}", ""
    if parts.fragment:
        return f"{what} has a fragment", ""
    path = unquote(parts.path)
    if "%" in path or "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
        return f"{what} has an encoded or relative path", ""
    return None, path


def decode(token: str) -> dict[str, Any]:
    """The token's ``data`` as azure-core would read it, strictly (ValueError for anything else)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise ValueError("the token is too long")
    try:
        raw = base64.b64decode(token, validate=True)
        parsed = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"the token is not base64 JSON ({type(err).__name__})") from None
    if not isinstance(parsed, dict) or parsed.get("version") != TOKEN_VERSION:
        raise ValueError("the token is not an azure-core continuation token of version 1")
    data = parsed.get("data")
    if not isinstance(data, dict):
        raise ValueError("the token has no data")
    return data


def problem(token: str, *, endpoint: str, resource_id: str, subscription_id: str) -> str | None:
    """Why ``token`` must not be resumed for the resource ``resource_id``, or None when it may.

    ``endpoint`` is the configured ARM endpoint (``AzureSettings.base_url``)."""
    try:
        data = decode(token)
    except ValueError as err:
        return str(err)
    arm = urlsplit(endpoint)
    request = data.get("request")
    if not isinstance(request, Mapping):
        return "the token names no request"
    if str(request.get("method", "")).upper() not in METHODS:
        return "the token's request is not a PUT, PATCH or DELETE"
    bad, path = _url_problem(request.get("url"), arm, "the request URL")
    if bad:
        return bad
    if path.rstrip("/").lower() != resource_id.rstrip("/").lower():
        return "the request URL is not this object's resource"
    response = data.get("response")
    headers = response.get("headers") if isinstance(response, Mapping) else None
    if not isinstance(headers, Mapping):
        return "the token has no response headers"
    for name, value in headers.items():
        if str(name).lower() not in POLLING_HEADERS:
            continue
        bad, path = _url_problem(value, arm, f"the {str(name).lower()} URL")
        if bad:
            return bad
        match = _OPERATION_PATH.fullmatch(path)
        if match is None and path.rstrip("/").lower() != resource_id.rstrip("/").lower():
            return f"the {str(name).lower()} URL is not an Azure operation or this resource"
        if match is not None and match["sub"].lower() != subscription_id.lower():
            return f"the {str(name).lower()} URL is an operation of another subscription"
    return None
