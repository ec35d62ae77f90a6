"""Which continuation tokens may be resumed (azure/tokens.py): a table of hostile inputs.

Resuming a token makes the SDK send GETs with the ARM bearer token to the URLs it names, so only the
recorded resource on the configured ARM endpoint, and operations of the same subscription there, pass.
The tokens are built in azure-core's format (base64 JSON, version 1); tests/integration checks that a
token the SDK itself made against the simulator passes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from azure.core.polling._utils import _decode_continuation_token

from azure_edition_operator.azure import tokens

ARM = "https://management.azure.com"
SUB = "11111111-1111-4111-8111-111111111111"
OTHER_SUB = "22222222-2222-4222-8222-222222222222"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.Compute/virtualMachines/vm1"
OP = f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/0a1b2c"
NET_OP = f"/subscriptions/{SUB}/providers/Microsoft.Network/locations/westeurope/operationResults/9f8e"


def token(
    url: str = f"{ARM}{VM}?api-version=2024-07-01",
    headers: dict[str, Any] | None = None,
    method: str = "PUT",
    version: Any = 1,
) -> str:
    headers = {"azure-asyncoperation": f"{ARM}{OP}?api-version=2024-07-01"} if headers is None else headers
    state = {
        "request": {"method": method, "url": url, "headers": {}},
        "response": {"status_code": 201, "headers": {"content-type": "application/json", **headers},
                     "content": base64.b64encode(b"{}").decode()},
        "context": {"deserialized_data": None},
    }  # fmt: skip
    raw = json.dumps({"version": version, "data": state}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def problem(value: str, endpoint: str = ARM) -> str | None:
    return tokens.problem(value, endpoint=endpoint, resource_id=VM, subscription_id=SUB)


def test_the_builder_makes_what_azure_core_reads() -> None:
    assert _decode_continuation_token(token())["request"]["url"].startswith(ARM)


@pytest.mark.parametrize(
    "good",
    [
        token(),
        token(
            headers={
                "Azure-AsyncOperation": f"{ARM}{OP}",
                "Location": f"{ARM}{OP}?monitor=true&api-version=1",
            }
        ),
        token(method="DELETE", headers={"location": f"{ARM}{NET_OP}"}),
        token(url=f"{ARM}{VM.upper()}"),  # ARM paths are case-insensitive
        token(headers={}),  # body polling: the request URL itself
        token(headers={"location": f"{ARM}{VM}"}),  # a Location that is the resource
        token(url=f"{ARM}:443{VM}"),
    ],
)
def test_tokens_for_this_resource_on_the_arm_endpoint_pass(good: str) -> None:
    assert problem(good) is None


EVIL = "https://attacker.example"


@pytest.mark.parametrize(
    ("why", "bad", "says"),
    [
        ("polling URL on a foreign host", token(headers={"azure-asyncoperation": f"{EVIL}{OP}"}), "ARM endpoint"),
        ("Location on a foreign host", token(headers={"Location": f"{EVIL}{OP}"}), "ARM endpoint"),
        ("operation-location on a foreign host", token(headers={"operation-location": f"{EVIL}/x"}), "ARM endpoint"),
        ("request on a foreign host", token(url=f"{EVIL}{VM}"), "ARM endpoint"),
        ("a host that only starts like ARM's", token(url=f"https://management.azure.com.evil.example{VM}"), "ARM endpoint"),
        ("user information before the host", token(url=f"https://management.azure.com@evil.example{VM}"), "user information"),
        ("another port on the ARM host", token(headers={"location": f"{ARM}:8443{OP}"}), "ARM endpoint"),
        ("a port that is not a number", token(url=f"{ARM}:x{VM}"), "ARM endpoint"),
        ("plain http", token(url=f"http://management.azure.com{VM}"), "not https"),
        ("another scheme", token(headers={"location": f"file://{OP}"}), "not https"),
        ("a relative polling URL", token(headers={"location": OP}), "not https"),
        ("another tenant's VM: a real ARM path", token(
            url=f"{ARM}/subscriptions/{OTHER_SUB}/resourceGroups/rg-b/providers/Microsoft.Compute/virtualMachines/vm-b"),
         "not this object's resource"),
        ("another resource of the same subscription", token(url=f"{ARM}{VM}2"), "not this object's resource"),
        ("an operation of another subscription", token(
            headers={"azure-asyncoperation": f"{ARM}{OP.replace(SUB, OTHER_SUB)}"}), "another subscription"),
        ("a polling URL that is another resource", token(
            headers={"location": f"{ARM}/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.KeyVault/vaults/v"}),
         "not an Azure operation"),
        ("a path climbing out", token(url=f"{ARM}/subscriptions/{SUB}/x/../resourceGroups/rg-a/providers/"
                                            "Microsoft.Compute/virtualMachines/vm1"), "relative path"),
        ("an encoded path", token(url=f"{ARM}{VM.replace('/vm1', '/%2e%2e/vm1')}"), "relative path"),
        ("a double-encoded path", token(url=f"{ARM}{VM}%252f"), "encoded"),
        ("a backslash", token(url=f"{ARM}\\@evil.example{VM}"), "backslashes"),
        ("a control character", token(url=f"{ARM}{VM}\r\nHost: evil"), "control characters"),
        ("a fragment", token(url=f"{ARM}{VM}#frag"), "fragment"),
        ("not a URL", token(headers={"location": 5}), "not a URL"),
        ("a GET request", token(method="GET"), "not a PUT"),
        ("another token version", token(version=2), "version 1"),
        ("no request", base64.b64encode(b'{"version":1,"data":{"response":{"headers":{}}}}').decode(), "no request"),
        ("no headers", base64.b64encode(json.dumps({"version": 1, "data": {"request": {
            "method": "PUT", "url": f"{ARM}{VM}"}, "response": {}}}).encode()).decode(), "no response headers"),
        ("not base64", "not base64 !!", "not base64"),
        ("base64 with junk azure-core would skip", token()[:8] + "*" + token()[8:], "not base64"),
        ("not JSON", base64.b64encode(b"\x80\x04pickle").decode(), "not base64 JSON"),
        ("JSON but a list", base64.b64encode(b"[1]").decode(), "version 1"),
        ("deep nesting", base64.b64encode(b"[" * 20_000).decode(), "not base64 JSON"),
        ("oversized", "A" * (tokens.MAX_TOKEN_CHARS + 4), "too long"),
    ],
)  # fmt: skip
def test_hostile_tokens_are_refused_with_a_reason(why: str, bad: str, says: str) -> None:
    found = problem(bad)
    assert found is not None and says in found, (why, found)


def test_the_endpoint_is_the_configured_one_not_azure_by_default() -> None:
    """A sovereign cloud or the simulator: the same token is foreign to any other endpoint."""
    local = "https://127.0.0.1:8443"
    assert problem(token(), endpoint=local) is not None
    here = token(url=f"{local}{VM}", headers={"location": f"{local}{OP}"})
    assert problem(here, endpoint=local) is None
    assert problem(token(url=f"https://localhost:8443{VM}", headers={}), endpoint=local) is not None
