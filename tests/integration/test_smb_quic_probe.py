"""Real QUIC on loopback: simulated SMB over QUIC endpoints (aioquic) probed by the operator's probe.

Each case starts `SmbQuicEndpoint`s on 127.0.0.x with certificates from the simulator's test CA,
probes them with `probe_smb_quic` and evaluates the observation, end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicErrorCode
from aioquic.tls import AlertDescription
from cryptography import x509

from azure_edition_operator.checks.smb_certificate import (
    CertificateObservation,
    CertificateReason,
    CertificateState,
    EndpointUnreachable,
    evaluate_certificate,
)
from azure_edition_operator.checks.smb_probe import probe_smb_quic
from azure_edition_simulator.certs import (
    CertificateAuthority,
    CertificateSpec,
    IssuedCertificate,
    default_authority,
    issue_certificate,
)
from azure_edition_simulator.quic_endpoint import SmbQuicEndpoint

pytestmark = pytest.mark.integration

SERVER = "fs01.contoso.com"
PROBE_TIMEOUT = 1.0
WARN_DAYS = 30
# Whole seconds: certificates carry no fractions, so days_remaining comes out exact.
NOW = datetime.now(UTC).replace(microsecond=0)
MAPPING_HINT = (
    "update the SMB server certificate mapping (New-SmbServerCertificateMapping) to the new thumbprint"
)

StartEndpoint = Callable[[IssuedCertificate, str], Awaitable[SmbQuicEndpoint]]


def issue(
    *,
    expires_in: timedelta = timedelta(days=90),
    dns_names: tuple[str, ...] = (SERVER,),
    **changes: object,
) -> IssuedCertificate:
    not_after = NOW + expires_in
    spec = CertificateSpec(
        common_name=SERVER,
        dns_names=dns_names,
        not_before=min(NOW, not_after) - timedelta(days=90),
        not_after=not_after,
        **changes,
    )
    return issue_certificate(spec)


@pytest.fixture
async def start_endpoint() -> AsyncIterator[StartEndpoint]:
    """Start endpoints on chosen loopback addresses (OS-picked ports); stop them all afterwards."""
    endpoints: list[SmbQuicEndpoint] = []

    async def start(certificate: IssuedCertificate, host: str, port: int = 0) -> SmbQuicEndpoint:
        endpoint = SmbQuicEndpoint(host, port, certificate)
        await endpoint.start()
        endpoints.append(endpoint)
        return endpoint

    yield start
    for endpoint in endpoints:
        await endpoint.stop()


# The test PKI's root is the trust bundle, as the simulator's guest CA is in e2e and the demo.
ROOTS = (x509.load_pem_x509_certificate(default_authority().root_pem.encode()),)


async def probe(endpoint: SmbQuicEndpoint, server_name: str = SERVER):
    return await probe_smb_quic(endpoint.host, endpoint.port, server_name, timeout=PROBE_TIMEOUT, roots=ROOTS)


@pytest.mark.parametrize(
    ("host", "certificate_args", "state", "days", "message_parts", "facts"),
    [
        pytest.param(
            "127.0.0.5",
            {},
            CertificateState.VALID,
            90,
            [f"certificate for {SERVER} is valid until"],
            {"key_type": "EC", "key_size": 256, "signature_hash": "sha256"},
            id="valid-90-days",
        ),
        pytest.param(
            "127.0.0.6",
            {"expires_in": timedelta(days=10)},
            CertificateState.EXPIRING_SOON,
            10,
            [
                f"certificate for {SERVER} expires {(NOW + timedelta(days=10)).date()} (10 days); "
                f"renew it and {MAPPING_HINT}"
            ],
            {},
            id="expiring-in-10-days",
        ),
        pytest.param(
            "127.0.0.7",
            {"expires_in": -timedelta(days=3)},
            CertificateState.EXPIRED,
            -3,
            [f"expired {(NOW - timedelta(days=3)).date()} (3 days ago)", MAPPING_HINT],
            {},
            id="expired",
        ),
        pytest.param(
            "127.0.0.8",
            {"dns_names": ("fs02.contoso.com",)},
            CertificateState.INVALID,
            90,
            [f"no DNS SAN matches {SERVER} (DNS SANs: fs02.contoso.com)"],
            {"dns_names": ("fs02.contoso.com",)},
            id="wrong-name",
        ),
        pytest.param(
            "127.0.0.9",
            {"server_auth_eku": False},
            CertificateState.INVALID,
            90,
            ["no Server Authentication EKU (1.3.6.1.5.5.7.3.1)"],
            {"has_server_auth_eku": False},
            id="no-server-auth-eku",
        ),
        pytest.param(
            "127.0.0.10",
            {"key_type": "rsa-1024"},
            CertificateState.INVALID,
            90,
            ["weak key: RSA 1024 bits (need ECDSA P-256+ or RSA 2048+)"],
            {"key_type": "RSA", "key_size": 1024},
            id="rsa-1024",
        ),
        pytest.param(
            "127.0.0.11",
            {"signature_hash": "sha1"},
            CertificateState.INVALID,
            90,
            ["weak signature hash: signed with sha1"],
            {"signature_hash": "sha1"},
            id="sha1-signature",
        ),
        pytest.param(
            "127.0.0.12",
            {"dns_names": ("*.contoso.com",), "key_type": "ec-p384", "signature_hash": "sha384"},
            CertificateState.VALID,
            90,
            ["valid until"],
            {"key_type": "EC", "key_size": 384, "signature_hash": "sha384", "dns_names": ("*.contoso.com",)},
            id="wildcard-p384-sha384",
        ),
        pytest.param(
            "127.0.0.13",
            {"key_type": "rsa-2048"},
            CertificateState.VALID,
            90,
            ["valid until"],
            {"key_type": "RSA", "key_size": 2048},
            id="rsa-2048",
        ),
        pytest.param(
            "127.0.0.14",
            {"expires_in": -timedelta(days=3), "dns_names": ("old.contoso.com",)},
            CertificateState.INVALID,
            -3,
            ["no DNS SAN matches", "it also expired"],
            {"dns_names": ("old.contoso.com",)},
            id="expired-and-wrong-name",
        ),
    ],
)
async def test_probe_reads_certificate_and_evaluation_explains_it(
    start_endpoint, host, certificate_args, state, days, message_parts, facts
):
    certificate = issue(**certificate_args)
    endpoint = await start_endpoint(certificate, host)
    assert endpoint.port != 0

    observation = await probe(endpoint)

    assert isinstance(observation, CertificateObservation), observation
    leaf = x509.load_pem_x509_certificate(certificate.cert_pem.encode())
    authority = default_authority()
    assert observation.thumbprint == certificate.thumbprint
    assert observation.subject == f"CN={SERVER}" == certificate.subject
    assert observation.issuer == authority.issuing_certificate.subject.rfc4514_string()
    assert observation.chain_subjects == (
        authority.issuing_certificate.subject.rfc4514_string(),
        authority.root_certificate.subject.rfc4514_string(),
    )
    assert observation.not_after == certificate.not_after == leaf.not_valid_after_utc
    assert observation.not_before == leaf.not_valid_before_utc
    assert int(observation.serial, 16) == leaf.serial_number
    expected_facts = {
        "dns_names": (SERVER,),
        "has_server_auth_eku": True,
        "key_type": "EC",
        "key_size": 256,
        "signature_hash": "sha256",
    } | facts
    for field, value in expected_facts.items():
        assert getattr(observation, field) == value, field

    verdict = evaluate_certificate(observation, SERVER, WARN_DAYS, NOW)
    assert verdict.state is state, verdict.message
    assert verdict.days_remaining == days
    for part in message_parts:
        assert part in verdict.message


async def test_a_certificate_from_an_untrusted_ca_is_untrusted_not_valid(start_endpoint):
    """A sound, unexpired certificate whose chain leads to a root clients don't trust: an outage."""
    foreign = CertificateAuthority(name="Not Trusted By Clients")
    spec = CertificateSpec(common_name=SERVER, dns_names=(SERVER,), not_before=NOW - timedelta(days=1),
                           not_after=NOW + timedelta(days=200))  # fmt: skip
    endpoint = await start_endpoint(issue_certificate(spec, authority=foreign), "127.0.0.21")
    for roots in (ROOTS, None):  # the test PKI's root; the system roots (no AEO_SMB_TRUST_BUNDLE here)
        observation = await probe_smb_quic(
            endpoint.host, endpoint.port, SERVER, timeout=PROBE_TIMEOUT, roots=roots
        )
        assert isinstance(observation, CertificateObservation) and observation.trust_problem, observation
        verdict = evaluate_certificate(observation, SERVER, WARN_DAYS, NOW)
        assert verdict.state is CertificateState.UNTRUSTED and verdict.reason == "CertificateUntrusted"
        assert not verdict.condition_status and "not trusted" in verdict.message
    trusted = await probe(await start_endpoint(issue(), "127.0.0.22"))
    assert isinstance(trusted, CertificateObservation) and trusted.trust_problem is None


async def test_set_certificate_swaps_what_the_next_handshake_serves(start_endpoint):
    expiring = issue(expires_in=timedelta(days=5))
    endpoint = await start_endpoint(expiring, "127.0.0.20")
    before = await probe(endpoint)
    assert isinstance(before, CertificateObservation) and before.thumbprint == expiring.thumbprint
    assert evaluate_certificate(before, SERVER, WARN_DAYS, NOW).state is CertificateState.EXPIRING_SOON

    renewed = issue(expires_in=timedelta(days=365))
    endpoint.set_certificate(renewed)
    after = await probe(endpoint)

    assert isinstance(after, CertificateObservation)
    assert after.thumbprint == renewed.thumbprint != expiring.thumbprint
    assert endpoint.certificate is renewed
    verdict = evaluate_certificate(after, SERVER, WARN_DAYS, NOW)
    assert (verdict.state, verdict.days_remaining) == (CertificateState.VALID, 365)


async def test_endpoints_on_different_loopback_addresses_share_a_port(start_endpoint):
    """Like VMs that all listen on UDP 443: one port, one address and one certificate each."""
    first = await start_endpoint(issue(), "127.0.0.21")
    second = await start_endpoint(issue(dns_names=("fs02.contoso.com",)), "127.0.0.22", first.port)

    seen_first, seen_second = await asyncio.gather(probe(first), probe(second, "fs02.contoso.com"))

    assert isinstance(seen_first, CertificateObservation) and isinstance(seen_second, CertificateObservation)
    assert seen_first.thumbprint == first.certificate.thumbprint
    assert seen_second.thumbprint == second.certificate.thumbprint
    assert seen_second.dns_names == ("fs02.contoso.com",)


def free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


async def assert_unreachable_fast(
    host: str, port: int, error_part: str, max_seconds: float, probe_timeout: float = PROBE_TIMEOUT
) -> EndpointUnreachable:
    started = time.monotonic()
    result = await probe_smb_quic(host, port, SERVER, timeout=probe_timeout, roots=ROOTS)
    elapsed = time.monotonic() - started

    assert isinstance(result, EndpointUnreachable), result
    assert (result.host, result.port) == (host, port)
    assert error_part in result.error
    assert elapsed < max_seconds, f"took {elapsed:.2f} s"
    verdict = evaluate_certificate(result, SERVER, WARN_DAYS, NOW)
    assert (verdict.state, verdict.reason) == (CertificateState.UNREACHABLE, CertificateReason.UNREACHABLE)
    assert verdict.days_remaining is None
    assert f"{host}:{port}" in verdict.message and error_part in verdict.message
    return result


async def test_closed_port_is_refused_at_once():
    host = "127.0.0.30"
    port = free_udp_port(host)
    # ICMP port unreachable comes back on the connected socket: no waiting for the timeout.
    await assert_unreachable_fast(host, port, "connection refused (ICMP port unreachable)", max_seconds=0.5)


async def test_stopped_endpoint_is_unreachable(start_endpoint):
    endpoint = await start_endpoint(issue(), "127.0.0.31")
    assert isinstance(await probe(endpoint), CertificateObservation)
    await endpoint.stop()
    await assert_unreachable_fast(endpoint.host, endpoint.port, "connection refused", max_seconds=0.5)


async def test_silent_port_times_out_within_the_probe_timeout():
    """A socket that swallows datagrams: what a firewall that drops UDP looks like."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as black_hole:
        black_hole.bind(("127.0.0.32", 0))
        port = black_hole.getsockname()[1]
        started = time.monotonic()
        await assert_unreachable_fast("127.0.0.32", port, "no QUIC handshake within 1 s", max_seconds=2.0)
        assert time.monotonic() - started >= PROBE_TIMEOUT * 0.9


class _RecordingClient(QuicConnectionProtocol):
    """Keeps how the server ended the connection."""

    terminated: events.ConnectionTerminated | None = None

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.ConnectionTerminated):
            self.terminated = event
        super().quic_event_received(event)


async def test_client_offering_only_h3_is_refused(start_endpoint):
    endpoint = await start_endpoint(issue(), "127.0.0.33")
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=["h3"], server_name=SERVER, verify_mode=ssl.CERT_NONE
    )
    clients: list[_RecordingClient] = []

    def create_protocol(*args: object, **kwargs: object) -> _RecordingClient:
        clients.append(_RecordingClient(*args, **kwargs))
        return clients[-1]

    with pytest.raises(ConnectionError):
        async with (
            asyncio.timeout(5),
            connect(
                endpoint.host, endpoint.port, configuration=configuration, create_protocol=create_protocol
            ),
        ):
            pass

    terminated = clients[0].terminated
    assert terminated is not None
    assert terminated.error_code == QuicErrorCode.CRYPTO_ERROR + AlertDescription.no_application_protocol
    # The same endpoint still serves clients that offer "smb".
    assert isinstance(await probe(endpoint), CertificateObservation)


def h3_configuration(certificate: IssuedCertificate) -> QuicConfiguration:
    """A server configuration that offers only ALPN h3 (HTTP/3), through aioquic's public API."""
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    with tempfile.TemporaryDirectory() as directory:
        cert_file, key_file = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_file.write_text(certificate.fullchain_pem)
        key_file.write_text(certificate.key_pem)
        configuration.load_cert_chain(cert_file, key_file)
    return configuration


@contextlib.asynccontextmanager
async def h3_only_server(host: str, certificate: IssuedCertificate) -> AsyncIterator[int]:
    """A QUIC server that is not an SMB server, through aioquic's plain serve()."""
    port = free_udp_port(host)
    server = await serve(host, port, configuration=h3_configuration(certificate))
    try:
        yield port
    finally:
        server.close()


async def test_probe_of_a_non_smb_quic_server_reports_the_alpn_refusal():
    # aioquic reports the server's CONNECTION_CLOSE after the draining period (RFC 9000 section
    # 10.2: three probe timeouts, 0.6 s before any RTT sample), so this probe gets more time.
    async with h3_only_server("127.0.0.34", issue()) as port:
        result = await assert_unreachable_fast(
            "127.0.0.34",
            port,
            "TLS handshake failed with alert no_application_protocol (120)",
            max_seconds=1.5,
            probe_timeout=3.0,
        )
    assert "not an SMB over QUIC server" in result.error


async def test_port_reports_requested_port_before_start_and_bound_port_after():
    endpoint = SmbQuicEndpoint("127.0.0.35", 0, issue())
    assert endpoint.port == 0 and not endpoint.running
    async with endpoint:
        assert endpoint.running and endpoint.port > 0
        with pytest.raises(RuntimeError, match="already running"):
            await endpoint.start()
    assert not endpoint.running
