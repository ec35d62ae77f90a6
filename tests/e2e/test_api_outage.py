"""A Kubernetes API outage, as the operator sees one: its connections to the real kube-apiserver cut and
refused for 15 s (a TCP relay between them that the test takes down), while a VM is being created.
Objects are Ready again within a few seconds of the API returning, not after kopf's one-minute retry."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from pathlib import Path

import yaml

from azure_edition_envtest.stack import free_port, operator_env, start_operator
from tests.e2e.operator_stack import (  # noqa: F401
    condition,
    control,
    get,
    sample_docs,
    simulator,
    wait_for,
)

OUTAGE_SECONDS = 15.0
BACK_WITHIN_SECONDS = 12.0
"""The controller's Kubernetes back-off is capped at 5 s (kube_retry_cap); a pass and a status write,
and kopf's watch reconnecting, fit in the rest. kopf's default retry would take 60 s."""


class Relay:
    """A TCP relay on loopback to the API server; ``down()`` cuts every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def test_objects_are_ready_soon_after_a_kubernetes_api_outage(
    crd,
    kubeconfig: Path,
    kubectl,
    namespace,
    simulator,
    control,
    tmp_path,
):
    config = kubeconfig.read_text()
    host, port = re.search(r"server: https://([\d.]+):(\d+)", config).groups()
    relay = Relay((host, int(port)))
    relay.up()
    relayed = tmp_path / "kubeconfig"
    relayed.write_text(config.replace(f"https://{host}:{port}", f"https://{host}:{relay.port}"))
    env = operator_env(relayed, simulator[1], AEO_PROGRESS_REPORT_AFTER="1")
    control.set_provisioning_seconds(6)
    operator = start_operator(tmp_path / "operator.log", env, "--namespace", namespace)
    try:
        kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(sample_docs("plain-core")))
        wait_for(lambda: (condition(get(kubectl, namespace, "plain-core"), "VMProvisioned") or {}).get("reason")
                 == "Creating", what="the create in flight, reported")  # fmt: skip
        relay.down()  # the operator's status writes, annotations and watch all fail from here
        time.sleep(OUTAGE_SECONDS)  # the outage itself
        relay.up()
        back = time.monotonic()
        wait_for(lambda: (condition(get(kubectl, namespace, "plain-core"), "Ready") or {}).get("status") == "True",
                 timeout=60, every=0.2, what="Ready after the outage")  # fmt: skip
        took = time.monotonic() - back
        print(f"\nReady {took:.1f} s after the API returned (outage {OUTAGE_SECONDS:.0f} s)")
        assert took <= BACK_WITHIN_SECONDS, operator.tail(40)
        assert operator.alive(), operator.tail()
    finally:
        control.set_provisioning_seconds(1)
        operator.stop()
        relay.down()
