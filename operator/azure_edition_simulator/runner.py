"""Run the simulator in-process for tests: ``async with Simulator.start(...) as sim`` (or plain ``with``).

The server gets its own thread and event loop, so the *synchronous* SDK clients and the control client
can be called from a test — even from an ``async def`` test — without blocking the server.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any

from . import throttle
from .client import SimulatorControl
from .server import SimulatorConfig, SimulatorServer


class Simulator:
    """A running simulator (started by :meth:`start`)."""

    def __init__(self, server: SimulatorServer):
        self._server = server
        assert server.tls is not None
        self.endpoint: str = server.origin
        self.authority_host: str = server.origin
        self.ca_path: Path = server.tls.ca_cert
        self.ca_bundle_path: Path = server.tls.ca_bundle
        self.control_url: str = server.control_url
        self.tenant_id: str = server.identity.tenant_id
        self.client_id: str = server.config.client_id
        principal = server.identity.principals[server.config.client_id]
        self.client_secret: str = principal.client_secret or ""
        self.subscription_id: str = server.config.subscription_id
        self.federated_token_file: Path = server.federated_token_path
        self.quic_port: int = server.quic.port
        self.loopback_block: str = server.block.cidr
        self.state_dir: Path = Path(str(server.state_dir))
        self.control = SimulatorControl(self.control_url, self.ca_path, token=server.config.control_token)

    @property
    def credential_scope(self) -> str:
        return f"{self.endpoint}/.default"

    def env(self) -> dict[str, str]:
        return self.control.env()

    def write_env_file(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        self._server.write_env_file(path)
        return path

    @staticmethod
    def start(
        *,
        port: int = 0,
        state_dir: str | os.PathLike[str] | None = None,
        env_file: str | os.PathLike[str] | None = None,
        provisioning_seconds: float = 0.5,
        retry_after_seconds: int = 1,
        throttling: throttle.ThrottleConfig | None = None,
        quic_port: int = 0,
        **config: Any,
    ) -> SimulatorHandle:
        """Start a simulator on 127.0.0.1 (random HTTPS port; random QUIC port unless given)."""
        cfg = SimulatorConfig(
            port=port,
            state_dir=Path(state_dir) if state_dir else None,
            env_file=Path(env_file) if env_file else None,
            provisioning_seconds=provisioning_seconds,
            retry_after_seconds=retry_after_seconds,
            throttling=throttling or throttle.ThrottleConfig(),
            quic_port=quic_port,
            **config,
        )
        return SimulatorHandle(cfg)


class SimulatorHandle:
    """Context manager (sync and async) that runs a :class:`Simulator` in a background thread."""

    def __init__(self, config: SimulatorConfig):
        self.config = config
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started: Future[SimulatorServer] = Future()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Simulator:
        if self.config.state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="armsim-")
        self._thread = threading.Thread(target=self._run, name="armsim", daemon=True)
        self._thread.start()
        server = self._started.result(timeout=60)
        return Simulator(server)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._tmp is not None:
            self._tmp.cleanup()

    async def __aenter__(self) -> Simulator:
        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.__exit__, exc_type, exc, tb)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tmp = Path(self._tmp.name) if self._tmp is not None else None
        server = SimulatorServer(self.config, tmp_dir=tmp)
        try:
            await server.start()
        except BaseException as exc:
            self._started.set_exception(exc)
            raise
        self._started.set_result(server)
        try:
            await self._stop.wait()
        finally:
            await server.stop()
