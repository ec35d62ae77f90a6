"""Read an SMB over QUIC server's certificate with a QUIC handshake (ALPN `smb`, SNI = server name).

The server sends its certificate in its first flight, before any SMB or client authentication,
so no SMB session and no credentials are involved. The handshake itself does not verify the
chain (the point is to read expired, misnamed or otherwise wrong certificates and say what is
wrong); the chain is then verified against the trust bundle (``smb_certificate.verify_chain``), so
"Valid" means what SMB clients see.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode
from aioquic.tls import AlertDescription
from cryptography import x509

from .smb_certificate import (
    CertificateObservation,
    EndpointUnreachable,
    load_trust_bundle,
    observe_certificate,
)

SMB_ALPN = "smb"
# After a handshake, how long to wait for the connection to close politely before dropping it.
_CLOSE_GRACE_SECONDS = 1.0

ProbeResult = CertificateObservation | EndpointUnreachable
_TRUST: tuple[x509.Certificate, ...] | None = None


def trust_roots(path: str | None = None) -> tuple[x509.Certificate, ...]:
    """The process's trust bundle, read once: the startup handler gives the setting smb_trust_bundle's
    ``path`` (empty: the system roots)."""
    global _TRUST
    if _TRUST is None or path is not None:
        _TRUST = load_trust_bundle(path or "")
    return _TRUST


# The timeout is a parameter (not left to the caller's asyncio.timeout) because it also sets QUIC's
# idle timeout and goes into the error text.
async def probe_smb_quic(
    host: str,
    port: int,
    server_name: str,
    timeout: float = 5.0,  # noqa: ASYNC109
    roots: tuple[x509.Certificate, ...] | None = None,
) -> ProbeResult:
    """Handshake with `host:port` and return the server certificate's facts, or why it could not.

    Name resolution and the handshake are each bounded by `timeout`; after a handshake, closing
    politely adds at most one second. A closed port is reported at once: the UDP socket is
    connected, so the ICMP port-unreachable comes back as an error instead of leaving the
    handshake to time out. A server that refuses the handshake (TLS alert, e.g. no ALPN `smb`)
    is reported after QUIC's draining period (three probe timeouts, about 0.6 s on a new path).
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except TimeoutError:
        return EndpointUnreachable(host, port, f"resolving {host} took longer than {timeout:g} s")
    except OSError as exc:
        return EndpointUnreachable(host, port, f"cannot resolve {host}: {exc}")
    family, _, _, _, address = addresses[0]

    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=[SMB_ALPN],
        server_name=server_name,  # SNI; aioquic sends it for DNS names only, as TLS requires
        verify_mode=ssl.CERT_NONE,  # read any certificate; evaluation judges it
        idle_timeout=timeout,
    )
    connection = QuicConnection(configuration=configuration)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(address)
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _ProbeProtocol(connection, port), sock=sock
        )
    except OSError as exc:
        sock.close()
        return EndpointUnreachable(host, port, f"cannot send to {host}:{port}: {exc}")

    handshake_completed = False
    try:
        protocol.connect(address)
        silence = (
            f"no QUIC handshake within {timeout:g} s (no answer on UDP {port}: host down, "
            "port filtered, or the server drops the handshake)"
        )
        try:
            async with asyncio.timeout(timeout):
                await protocol.handshake_done
        except TimeoutError:
            return EndpointUnreachable(host, port, silence)
        except _HandshakeFailed as exc:
            # aioquic's own idle timer can fire before ours on a loaded machine: the same silence.
            return EndpointUnreachable(host, port, silence if "Idle timeout" in str(exc) else str(exc))
        handshake_completed = True
        leaf, chain = _peer_certificates(connection)
        try:
            return observe_certificate(leaf, chain, trust_roots() if roots is None else roots, server_name)
        except ValueError as exc:  # e.g. a malformed extension, parsed lazily by cryptography
            return EndpointUnreachable(host, port, f"the server's certificate cannot be parsed: {exc}")
    finally:
        await _close(protocol, transport, polite=handshake_completed)


async def _close(protocol: QuicConnectionProtocol, transport: asyncio.BaseTransport, polite: bool) -> None:
    """Send CONNECTION_CLOSE; after a real handshake also give the server a moment to see it.

    Without a handshake there is no peer state worth the wait (the answer was silence, an ICMP
    error or the server's own close), so the probe returns at once.
    """
    protocol.close()
    if polite:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_GRACE_SECONDS):
                await protocol.wait_closed()
    transport.close()


class _HandshakeFailed(Exception):
    """The handshake ended without success; the message is for the user."""


class _ProbeProtocol(QuicConnectionProtocol):
    """Turns the connection's first decisive event into `handshake_done` (result or error)."""

    def __init__(self, quic: QuicConnection, port: int) -> None:
        super().__init__(quic)
        self._port = port
        self.handshake_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            self._settle(None)
        elif isinstance(event, events.ConnectionTerminated):
            self._settle(_HandshakeFailed(_describe_termination(event)))
        super().quic_event_received(event)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors on the connected socket (port unreachable, host unreachable, ...)."""
        if isinstance(exc, ConnectionRefusedError):
            self._settle(
                _HandshakeFailed(
                    f"connection refused (ICMP port unreachable): nothing listens on UDP {self._port}"
                )
            )
        else:
            self._settle(_HandshakeFailed(f"network error: {exc}"))

    def _settle(self, error: Exception | None) -> None:
        if self.handshake_done.done():
            return
        if error is None:
            self.handshake_done.set_result(None)
        else:
            self.handshake_done.set_exception(error)


def _describe_termination(event: events.ConnectionTerminated) -> str:
    code = event.error_code
    reason = f": {event.reason_phrase}" if event.reason_phrase else ""
    if QuicErrorCode.CRYPTO_ERROR <= code < QuicErrorCode.CRYPTO_ERROR + 0x100:
        alert = code - QuicErrorCode.CRYPTO_ERROR
        try:
            name = AlertDescription(alert).name
        except ValueError:
            name = "unknown"
        hint = (
            f" (the server does not accept ALPN {SMB_ALPN!r}: not an SMB over QUIC server)"
            if alert == AlertDescription.no_application_protocol
            else ""
        )
        return f"TLS handshake failed with alert {name} ({alert}){reason}{hint}"
    try:
        name = QuicErrorCode(code).name
    except ValueError:
        name = f"0x{code:x}"
    return f"QUIC connection closed during the handshake with {name}{reason}"


def _peer_certificates(connection: QuicConnection) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The server's leaf certificate and the chain it sent, after a completed handshake.

    aioquic 1.7 has no public accessor for the peer certificate (aiortc/aioquic#357: "we don't
    expose an API for this"), so this reads the TLS context's private fields, which
    `tls.Context._set_peer_certificate` fills from the Certificate message. Kept to this one
    function so an aioquic upgrade has one place to fix; the integration tests catch a change.
    """
    tls_context = connection.tls
    leaf = tls_context._peer_certificate
    if leaf is None:  # only possible for a resumed session, which the probe never offers
        raise RuntimeError("handshake completed without a server certificate")
    return leaf, list(tls_context._peer_certificate_chain)
