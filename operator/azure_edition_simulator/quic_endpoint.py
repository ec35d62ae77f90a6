"""A simulated VM's SMB over QUIC listener: real QUIC and TLS 1.3 (aioquic), ALPN `smb`.

It completes the handshake and presents the certificate (leaf and issuer chain), which is all the
operator's probe reads; it does not speak SMB. Streams a client opens are ended at once, and the
connection stays up until the client closes it or idles out.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import QuicConfiguration

from .certs import IssuedCertificate

SMB_ALPN = "smb"

log = logging.getLogger(__name__)


class SmbQuicEndpoint:
    """One QUIC listener on (host, port) serving `certificate` to clients that offer ALPN `smb`.

    `port=0` lets the OS choose; `port` reports the bound one after `start()`. Runs on the
    caller's event loop (the simulator is aiohttp-based).
    """

    def __init__(self, host: str, port: int, certificate: IssuedCertificate) -> None:
        self._host = host
        self._requested_port = port
        self._bound_port: int | None = None
        self._certificate = certificate
        self._configuration = QuicConfiguration(is_client=False, alpn_protocols=[SMB_ALPN])
        _load_certificate(self._configuration, certificate)
        self._server: QuicServer | None = None
        self._transport: asyncio.DatagramTransport | None = None
        # Client access control (clientaccess.py): whether to ask clients for a certificate, and the verdict
        # on the one presented (None: nobody is asked). Read at each handshake, so a change applies at once.
        self.requires_client_certificate: Callable[[], bool] = lambda: False
        self.judge_client: Callable[[Any], tuple[bool, str]] = lambda _cert: (True, "")

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The bound UDP port once started; the requested one before."""
        return self._bound_port if self._bound_port is not None else self._requested_port

    @property
    def certificate(self) -> IssuedCertificate:
        return self._certificate

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Bind the UDP socket and start answering handshakes."""
        if self._server is not None:
            raise RuntimeError(f"SMB over QUIC endpoint {self._host}:{self.port} is already running")
        loop = asyncio.get_running_loop()
        # What aioquic.asyncio.serve() does, minus throwing the transport away: its sockname is the
        # only public way to learn the port the OS picked for port=0 (serve() returns the
        # QuicServer, which keeps the transport in a private attribute).
        transport, server = await loop.create_datagram_endpoint(
            lambda: QuicServer(
                configuration=self._configuration,
                create_protocol=lambda *a, **k: _SmbServerProtocol(*a, endpoint=self, **k),
                stream_handler=_end_stream,
            ),
            local_addr=(self._host, self._requested_port),
        )
        self._transport, self._server = transport, server
        self._bound_port = transport.get_extra_info("sockname")[1]
        log.debug("SMB over QUIC endpoint listening on %s:%s", self._host, self._bound_port)

    async def stop(self) -> None:
        """Close open connections (CONNECTION_CLOSE to each client) and release the port."""
        server, self._server, self._transport = self._server, None, None
        if server is not None:
            server.close()
            # Let the transport's close run so the port is free when stop() returns.
            await asyncio.sleep(0)

    def set_certificate(self, certificate: IssuedCertificate) -> None:
        """Serve `certificate` from the next handshake on; open connections keep the old one.

        The QuicServer hands the same configuration to every new connection, so updating it in
        place is enough: renewal on a real server behaves the same way.
        """
        _load_certificate(self._configuration, certificate)
        self._certificate = certificate

    async def __aenter__(self) -> SmbQuicEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


class _SmbServerProtocol(QuicConnectionProtocol):
    """One client connection: asks for a client certificate when the guest requires one, and closes the
    connection right after the handshake when the guest's access lists refuse the certificate presented.

    aioquic has no public switch for requesting a client certificate on the server side; its TLS context's
    ``_request_client_certificate`` (set once the connection creates the context, before the ClientHello is
    handled) is the one place, and ``_peer_certificate`` holds what the client sent (as in the probe)."""

    def __init__(self, quic: Any, *args: Any, endpoint: SmbQuicEndpoint, **kwargs: Any) -> None:
        super().__init__(quic, *args, **kwargs)
        self._endpoint = endpoint
        initialize = quic._initialize

        def initialize_and_ask(peer_cid: bytes) -> None:
            initialize(peer_cid)
            quic.tls._request_client_certificate = endpoint.requires_client_certificate()

        quic._initialize = initialize_and_ask

    def quic_event_received(self, event: Any) -> None:
        from aioquic.quic import events
        from aioquic.quic.packet import QuicErrorCode

        if isinstance(event, events.HandshakeCompleted) and self._quic.tls._request_client_certificate:
            admitted, why = self._endpoint.judge_client(self._quic.tls._peer_certificate)
            if not admitted:
                log.debug("SMB over QUIC client refused: %s", why)
                self._quic.close(error_code=QuicErrorCode.CONNECTION_REFUSED, reason_phrase=why)
                self.transmit()
                return
        super().quic_event_received(event)


def _end_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Politely end each stream a client opens (FIN on our side): this endpoint speaks no SMB."""
    if writer.can_write_eof():
        writer.write_eof()


def _load_certificate(configuration: QuicConfiguration, certificate: IssuedCertificate) -> None:
    """Load leaf, chain and key through QuicConfiguration.load_cert_chain, aioquic's public API.

    It reads files only, so the PEM goes through a private temporary directory that is removed
    at once.
    """
    with tempfile.TemporaryDirectory(prefix="smb-quic-cert-") as directory:
        cert_file, key_file = Path(directory, "fullchain.pem"), Path(directory, "key.pem")
        cert_file.write_text(certificate.fullchain_pem)
        key_file.touch(mode=0o600)
        key_file.write_text(certificate.key_pem)
        configuration.load_cert_chain(cert_file, key_file)
