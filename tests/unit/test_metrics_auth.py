"""Who may read /metrics: the review bodies, reading the answers, the cache, and the order of questions."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from typing import Any

import pytest
from cryptography import x509

from azure_edition_operator.config import OperatorConfig
from azure_edition_operator.metrics_auth import (
    ALLOWED_TTL,
    AUTHENTICATED_TTL,
    DENIED_TTL,
    Gate,
    ReviewFailed,
    TTLCache,
    User,
    Verdict,
    access_review,
    allowed,
    bearer_token,
    reviewed_user,
    token_key,
    token_review,
)
from azure_edition_operator.metrics_server import certificate_hosts, self_signed, split_address

SA = "system:serviceaccount:monitoring:prometheus"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer abc", "abc"),
        ("  Bearer   abc  ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer a b", None),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


def test_token_review_body_and_answer():
    assert token_review("t") == {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "t"},
    }  # fmt: skip
    answer = {"status": {"authenticated": True, "user": {
        "username": SA, "uid": "u-1", "groups": ["system:serviceaccounts", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/pod-name": ["prometheus-0"]}}}}  # fmt: skip
    user = reviewed_user(answer)
    assert user == User(SA, "u-1", ("system:serviceaccounts", "system:authenticated"),
                        (("authentication.kubernetes.io/pod-name", ("prometheus-0",)),))  # fmt: skip


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"authenticated": False, "error": "invalid bearer token"},
        {"authenticated": True, "user": {}},
        {"authenticated": "true", "user": {"username": SA}},  # only a real boolean counts
    ],
)
def test_an_unauthenticated_review_names_no_user(status):
    assert reviewed_user({"status": status}) is None


def test_access_review_asks_for_get_on_the_metrics_url_with_everything_the_user_carries():
    user = User(SA, "u-1", ("g1", "g2"), (("k", ("v",)),))
    assert access_review(user) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": SA, "groups": ["g1", "g2"], "uid": "u-1", "extra": {"k": ["v"]},
                 "nonResourceAttributes": {"path": "/metrics", "verb": "get"}},
    }  # fmt: skip
    assert "uid" not in access_review(User(SA))["spec"] and "extra" not in access_review(User(SA))["spec"]


@pytest.mark.parametrize(
    ("status", "ok"),
    [({"allowed": True}, True), ({"allowed": False}, False), ({}, False),
     ({"allowed": True, "denied": True}, False), ({"allowed": "yes"}, False)],
)  # fmt: skip
def test_allowed(status, ok):
    assert allowed({"status": status}) is ok


def test_cache_expires_and_stays_bounded():
    cache: TTLCache[str, int] = TTLCache(size=2)
    cache.put("a", 1, ttl=10, now=0)
    assert cache.get("a", now=9.9) == (True, 1)
    assert cache.get("a", now=10) == (False, None)
    cache.put("x", 0, ttl=0, now=0)  # no TTL: not kept
    assert cache.get("x", now=0) == (False, None)
    for i, key in enumerate("bcd"):
        cache.put(key, i, ttl=100, now=0)
    assert len(cache) == 2 and cache.get("b", 1) == (False, None) and cache.get("d", 1) == (True, 2)


def test_token_key_is_not_the_token():
    assert token_key("secret-token") != "secret-token" and len(token_key("secret-token")) == 64


class FakeApiServer:
    """Answers reviews as the API server would for a fixed set of tokens and RBAC grants; counts calls."""

    def __init__(self, tokens: dict[str, str], readers: set[str]) -> None:
        self.tokens, self.readers, self.calls = tokens, readers, {"token": 0, "access": 0}
        self.down = False

    async def token(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls["token"] += 1
        if self.down:
            raise ReviewFailed("unreachable")
        user = self.tokens.get(body["spec"]["token"])
        return {
            "status": {"authenticated": True, "user": {"username": user}}
            if user
            else {"authenticated": False}
        }

    async def access(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls["access"] += 1
        if self.down:
            raise ReviewFailed("unreachable")
        spec = body["spec"]
        ok = spec["user"] in self.readers and spec["nonResourceAttributes"] == {
            "path": "/metrics",
            "verb": "get",
        }
        return {"status": {"allowed": ok}}


async def test_gate_verdicts_and_caching():
    api = FakeApiServer({"good": SA, "other": "system:serviceaccount:x:y"}, {SA})
    gate = Gate(api.token, api.access)
    assert await gate.check(None, 0) is Verdict.UNAUTHENTICATED
    assert api.calls == {"token": 0, "access": 0}  # no token: nothing asked
    assert await gate.check("Bearer bogus", 0) is Verdict.UNAUTHENTICATED
    assert await gate.check("Bearer other", 0) is Verdict.FORBIDDEN
    assert await gate.check("Bearer good", 0) is Verdict.OK
    assert api.calls == {"token": 3, "access": 2}
    # A scrape every few seconds within the TTLs costs no review.
    for t in (1, 5, DENIED_TTL - 1):
        assert await gate.check("Bearer good", t) is Verdict.OK
        assert await gate.check("Bearer other", t) is Verdict.FORBIDDEN
    assert api.calls == {"token": 3, "access": 2}
    # A refusal is asked again sooner than a grant: access just granted takes effect within DENIED_TTL.
    api.readers.add("system:serviceaccount:x:y")
    assert await gate.check("Bearer other", DENIED_TTL) is Verdict.OK
    assert api.calls == {"token": 3, "access": 3}
    # A grant revoked takes effect after ALLOWED_TTL; the token is reviewed again after AUTHENTICATED_TTL.
    api.readers.discard(SA)
    later = max(ALLOWED_TTL, AUTHENTICATED_TTL)
    assert await gate.check("Bearer good", later) is Verdict.FORBIDDEN


async def test_gate_when_the_api_server_cannot_answer():
    api = FakeApiServer({"good": SA}, {SA})
    gate = Gate(api.token, api.access)
    api.down = True
    assert await gate.check("Bearer good", 0) is Verdict.UNAVAILABLE
    api.down = False
    assert await gate.check("Bearer good", 1) is Verdict.OK  # a failure is not cached


def test_split_address():
    assert split_address("0.0.0.0:9090") == ("0.0.0.0", 9090)
    assert split_address(":9090") == ("0.0.0.0", 9090)
    assert split_address("[::1]:8443") == ("::1", 8443)
    assert split_address("127.0.0.1:19090") == ("127.0.0.1", 19090)


def test_self_signed_certificate_names_the_hosts_and_serves_tls(tmp_path):
    hosts = certificate_hosts("10.0.0.7", "operator-pod")
    assert hosts == ["localhost", "127.0.0.1", "::1", "operator-pod", "10.0.0.7"]
    assert certificate_hosts("0.0.0.0", "localhost") == ["localhost", "127.0.0.1", "::1"]
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    cert_pem, key_pem = self_signed(hosts, now, days=30)
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "operator-pod"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "10.0.0.7")
    ]
    assert cert.not_valid_after_utc == now + dt.timedelta(days=30)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    (tmp_path / "c").write_bytes(cert_pem)
    (tmp_path / "k").write_bytes(key_pem)
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tmp_path / "c", tmp_path / "k")


def test_secure_by_default_and_plain_http_only_when_asked(monkeypatch):
    for name in ("AEO_METRICS_SECURE", "AEO_METRICS_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert OperatorConfig().metrics_secure is True and OperatorConfig().metrics_cert_dir == ""
    monkeypatch.setenv("AEO_METRICS_SECURE", "false")
    assert OperatorConfig().metrics_secure is False


async def test_a_renewed_certificate_is_served_without_a_restart(tmp_path):
    """AEO_METRICS_CERT_DIR as a Secret mount: new files are served to the next connection; a broken
    pair keeps the last good one. A real TLS server on loopback, read back by a real handshake."""
    import asyncio

    from azure_edition_operator.metrics_server import CERT_FILE, KEY_FILE, watch_certificate

    def write(cert: bytes, key: bytes) -> None:
        (tmp_path / "new.crt").write_bytes(cert)
        (tmp_path / "new.key").write_bytes(key)
        (tmp_path / "new.key").replace(tmp_path / KEY_FILE)
        (tmp_path / "new.crt").replace(tmp_path / CERT_FILE)

    now = dt.datetime.now(dt.UTC)
    first, second = (
        self_signed(["first.test", "127.0.0.1"], now),
        self_signed(["second.test", "127.0.0.1"], now),
    )
    write(*first)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / CERT_FILE, tmp_path / KEY_FILE)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]

    async def served() -> str:
        pem = await asyncio.to_thread(ssl.get_server_certificate, ("127.0.0.1", port), timeout=5)
        cert = x509.load_pem_x509_certificate(pem.encode())
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )[0]

    watcher = asyncio.create_task(watch_certificate(context, tmp_path, interval=0.05))
    try:
        assert await served() == "first.test"
        await asyncio.sleep(0.02)
        write(*second)
        for _ in range(100):
            if await served() == "second.test":
                break
            await asyncio.sleep(0.05)
        assert await served() == "second.test"
        write(b"not a certificate", b"nor a key")
        await asyncio.sleep(0.3)
        assert await served() == "second.test"  # the last good pair stays
    finally:
        watcher.cancel()
        server.close()
        await server.wait_closed()
