"""The ``/metrics`` endpoint: HTTPS, and only for a bearer token the API server lets ``get /metrics``
(``metrics_auth``), as controller-runtime's secure metrics serve it. Plain HTTP for everyone is an
explicit opt-in for local development (``AEO_METRICS_SECURE=false``).

The serving certificate is ``tls.crt``/``tls.key`` in ``AEO_METRICS_CERT_DIR`` (a ``kubernetes.io/tls``
Secret or a cert-manager Certificate mounted there; re-read when the files change, so a renewal needs
no restart), or else a self-signed one made at start (scrapers then skip verification, as the
Prometheus Operator's ``insecureSkipVerify`` does for kubebuilder's default).

It runs in the operator's event loop (aiohttp, which kopf and kubernetes_asyncio already use).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from . import metrics
from .config import OperatorConfig
from .kube import without_env_lookups
from .metrics_auth import METRICS_PATH, Gate, ReviewFailed, Verdict

log = logging.getLogger(__name__)

CERT_FILE, KEY_FILE = "tls.crt", "tls.key"
CERT_RELOAD_SECONDS = 30.0
"""How often the mounted certificate files are looked at (a Secret update reaches the pod in about a minute)."""
SELF_SIGNED_DAYS = 365
REVIEW_TIMEOUT = 10.0


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; an empty host is every interface) → (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def certificate_hosts(bind_host: str, hostname: str) -> list[str]:
    """The names a self-signed certificate carries: loopback, this host, and the address bound."""
    hosts = ["localhost", "127.0.0.1", "::1", hostname]
    if bind_host not in ("0.0.0.0", "::", ""):
        hosts.append(bind_host)
    return list(dict.fromkeys(h for h in hosts if h))


def self_signed(hosts: Iterable[str], now: dt.datetime, days: int = SELF_SIGNED_DAYS) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): an EC P-256 server certificate for ``hosts`` (DNS names or IPs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    hosts = list(hosts)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"azure-edition-operator metrics ({hosts[0]})")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(pem), key_pem


def _server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _load_self_signed(context: ssl.SSLContext, hosts: list[str]) -> None:
    """ssl loads a certificate only from files: written to a private directory, loaded, removed."""
    cert, key = self_signed(hosts, dt.datetime.now(dt.UTC))
    with tempfile.TemporaryDirectory(prefix="aeo-metrics-") as tmp:
        cert_path, key_path = Path(tmp) / CERT_FILE, Path(tmp) / KEY_FILE
        cert_path.write_bytes(cert)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        context.load_cert_chain(cert_path, key_path)


def _stamp(directory: Path) -> tuple[tuple[int, int, int], ...]:
    """What changes when a mounted Secret is updated (kubelet swaps a symlink: new inode and mtime)."""
    stats = (os.stat(directory / CERT_FILE), os.stat(directory / KEY_FILE))
    return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)


class KubeReviews:
    """TokenReviews and SubjectAccessReviews through kubernetes_asyncio (the operator's own identity,
    which deploy/base/rbac.yaml lets create both)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._authn = client.AuthenticationV1Api(api)
        self._authz = client.AuthorizationV1Api(api)

    async def token(self, body: dict[str, Any]) -> Mapping[str, Any]:
        return await self._create(self._authn.create_token_review, body)

    async def access(self, body: dict[str, Any]) -> Mapping[str, Any]:
        return await self._create(self._authz.create_subject_access_review, body)

    @staticmethod
    async def _create(create: Any, body: dict[str, Any]) -> Mapping[str, Any]:
        try:
            response = await create(body, _preload_content=False, _request_timeout=REVIEW_TIMEOUT)
            return json.loads(await response.read())
        except ApiException as err:
            raise ReviewFailed(f"{body['kind']}: HTTP {err.status} {err.reason}") from None
        except (OSError, TimeoutError, ValueError) as err:
            raise ReviewFailed(f"{body['kind']}: {err}") from None

    async def close(self) -> None:
        await self._api.close()


@dataclass
class MetricsServer:
    runner: web.AppRunner
    reviews: KubeReviews | None
    watcher: asyncio.Task[None] | None

    async def close(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watcher
        await self.runner.cleanup()
        if self.reviews is not None:
            await self.reviews.close()


def _page(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encoder(REGISTRY), headers={"Content-Type": content_type})


def application(gate: Gate | None) -> web.Application:
    """``GET /metrics``; with a gate, only for a token the API server lets read it (401/403 otherwise)."""

    async def serve(request: web.Request) -> web.Response:
        if gate is not None:
            verdict = await gate.check(request.headers.get("Authorization"), time.monotonic())
            if verdict is not Verdict.OK:
                if verdict is Verdict.UNAVAILABLE:
                    log.warning("/metrics refused: the API server could not review the scraper's token")
                return web.Response(status=int(verdict), text=f"{verdict.name.lower()}\n")
        return _page(request)

    app = web.Application()
    app.router.add_get(METRICS_PATH, serve)
    return app


async def watch_certificate(
    context: ssl.SSLContext, directory: Path, interval: float = CERT_RELOAD_SECONDS
) -> None:
    """Reload the mounted certificate when its files change; a bad new pair keeps the old one.
    New connections get the new certificate (ssl reads the context's chain at each handshake)."""
    stamp = _stamp(directory)
    while True:
        await asyncio.sleep(interval)
        try:
            now = _stamp(directory)
            if now != stamp:
                stamp = now  # a broken pair is reported once, not every round
                context.load_cert_chain(directory / CERT_FILE, directory / KEY_FILE)
                log.info("metrics serving certificate reloaded from %s", directory)
        except (OSError, ssl.SSLError) as err:
            log.warning("metrics serving certificate in %s not reloaded: %s", directory, err)


async def start(config: OperatorConfig) -> MetricsServer | None:
    """Serve /metrics as configured (None for an empty address). Call after kube config is loaded
    (``Kube.connect``): the reviews use the same cluster and identity."""
    if not config.metrics_address:
        return None
    host, port = split_address(config.metrics_address)
    metrics.set_build_info()
    context: ssl.SSLContext | None = None
    reviews: KubeReviews | None = None
    watcher: asyncio.Task[None] | None = None
    gate: Gate | None = None
    if config.metrics_secure:
        context = _server_context()
        if config.metrics_cert_dir:
            directory = Path(config.metrics_cert_dir)
            context.load_cert_chain(directory / CERT_FILE, directory / KEY_FILE)
            watcher = asyncio.create_task(watch_certificate(context, directory))
        else:
            _load_self_signed(context, certificate_hosts(host, socket.gethostname()))
        reviews = KubeReviews(without_env_lookups(client.ApiClient()))  # one review per scrape
        gate = Gate(reviews.token, reviews.access)
    else:
        log.warning(
            "/metrics is plain HTTP without authentication (AEO_METRICS_SECURE=false): local use only"
        )
    runner = web.AppRunner(application(gate), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=context).start()
    return MetricsServer(runner, reviews, watcher)
