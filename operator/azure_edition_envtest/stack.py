"""The one way to start the local stack's processes, shared by the tests, the demo and the benchmarks.

The control plane is ``controlplane.ControlPlane.start`` (which also owns ``free_ports``); this module
starts the two other processes, the ARM simulator and the operator, each in its own process group with
its log file and a parent-death signal, and stops them however the caller exits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from azure_edition_simulator.client import load_env_file

from .controlplane import _die_with_parent_if_main_thread, free_ports


def free_port() -> int:
    """One free loopback port (``free_ports`` when several must differ)."""
    return free_ports(1)[0]


@dataclass
class Process:
    """A child process in its own process group, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def spawn(cls, name: str, args: Sequence[str], log: Path, env: Mapping[str, str]) -> Process:
        """Start a child in its own process group that the kernel kills if this process dies."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_die_with_parent_if_main_thread(),
            )
        return cls(name, popen, log)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0, sig: int = signal.SIGTERM) -> int:
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
            except ProcessLookupError:
                pass
        return int(self.popen.returncode if self.popen.returncode is not None else -1)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup runs."""
        self.stop(grace=5, sig=signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        return (
            "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
        )


def start_simulator(
    work_dir: Path, *extra_args: str, quic_port: int = 443, persist: bool = True, timeout: float = 30.0
) -> tuple[Process, dict[str, str]]:
    """``python -m azure_edition_simulator``; returns the process and the client env it wrote.

    ``work_dir`` holds its env file and log; with ``persist`` it is also the state dir (CA, world.json).
    Without it nothing is written per change (the benchmarks: no CPU spent the operator would be blamed for).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    env_file = work_dir / "armsim.env"
    env_file.unlink(missing_ok=True)
    state = ["--state-dir", str(work_dir)] if persist else []
    args = [sys.executable, "-m", "azure_edition_simulator", "--port", "0", "--quic-port", str(quic_port),
            *state, "--env-file", str(env_file), *extra_args]  # fmt: skip
    proc = Process.spawn("armsim", args, work_dir / "armsim.log", os.environ)
    deadline = time.monotonic() + timeout
    while not env_file.exists():
        if not proc.alive() or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"ARM simulator did not start:\n{proc.tail()}")
        time.sleep(0.05)
    return proc, load_env_file(env_file)


def simulator_timing_args(time_scale: float, *, consistency_rate: float | None = None) -> list[str]:
    """Simulator flags for Azure's timing profile, shrunk by ``time_scale`` (demo, e2e, benchmarks)."""
    args = ["--profile", "azure", "--time-scale", f"{time_scale:g}"]
    if consistency_rate is not None:
        args += ["--consistency-rate", f"{consistency_rate:g}"]
    return args


def operator_env(kubeconfig: Path, simulator_env: Mapping[str, str], **overrides: str) -> dict[str, str]:
    """The operator's environment: the cluster, the simulator's Azure endpoints, ports on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AEO_"))}
    health, metrics = free_ports(2)
    env.update(simulator_env)
    env.update({
        "KUBECONFIG": str(kubeconfig),
        "AZURE_CREDENTIAL_MODE": "client-secret",
        "AZURE_CA_BUNDLE": simulator_env.get("ARMSIM_CA_CERT", ""),
        # Tenancy (issue 14): e2e, demo and bench run one tenant with the simulator's one principal;
        # tests/e2e/test_tenancy.py turns this off and uses TenantPolicies.
        "AEO_SINGLE_TENANT": "true",
        # A process outside the cluster has no namespace of its own: its state key Secret lives in
        # `default`, which every API server has (tests/e2e/test_tenancy.py names a namespace of its own).
        "AEO_CREDENTIALS_NAMESPACE": "default",
        # SMB over QUIC trust (issue 14): the simulator's guest certificates come from its own CA.
        "AEO_SMB_TRUST_BUNDLE": simulator_env.get("ARMSIM_GUEST_CA_CERT", ""),
        "AEO_HEALTH_ADDRESS": f"127.0.0.1:{health}",
        "AEO_METRICS_ADDRESS": f"127.0.0.1:{metrics}",
        # Local development: /metrics as plain HTTP on loopback (tests/deploy/test_secure_metrics.py
        # covers the HTTPS endpoint with its token reviews).
        "AEO_METRICS_SECURE": "false",
    })  # fmt: skip
    env.update(overrides)
    return env


def wait_for_port(address: str, proc: Process, what: str, timeout: float) -> None:
    """Return once ``host:port`` accepts a connection; stop ``proc`` and raise if it dies or time runs out."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            if not proc.alive() or time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(f"{what} did not start:\n{proc.tail()}") from None
            time.sleep(0.05)


def start_operator(
    log: Path, env: Mapping[str, str], *args: str, timeout: float = 30.0, wait_metrics: bool = False
) -> Process:
    """``python -m azure_edition_operator``; returns once its liveness endpoint answers (and, with
    ``wait_metrics``, /metrics too: the startup handler has run, clients built)."""
    proc = Process.spawn("operator", [sys.executable, "-m", "azure_edition_operator", *args], log, env)
    proc.extra = {"health": env["AEO_HEALTH_ADDRESS"], "metrics": env["AEO_METRICS_ADDRESS"]}
    wait_for_port(env["AEO_HEALTH_ADDRESS"], proc, "operator", timeout)
    if wait_metrics:
        wait_for_port(env["AEO_METRICS_ADDRESS"], proc, "operator /metrics", timeout)
    return proc
