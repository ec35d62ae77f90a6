"""The processes a scenario needs and the readings it takes: ARM simulator, operator, py-spy.

Every child runs in its own process group with a parent-death signal, and ``Processes`` stops
them all (in reverse order) however the scenario ends, Ctrl-C and SIGTERM included; a SIGKILLed
harness takes them down through the parent-death signal.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure_edition_simulator.client import SimulatorControl
from azure_edition_simulator.server import IDENTITY_ROUTES, ROUTES

from .. import stack
from ..stack import Process, operator_env
from .fleet import BENCH_SUBNET, BENCH_SUBNET_PREFIX, BENCH_VNET

# Operation name → HTTP method, to tell ARM reads (which Azure's read bucket counts) from writes.
ARM_METHOD_OF: dict[str, str] = {
    **{route.operation: route.method for route in ROUTES},
    **{name: method for method, _pattern, name in IDENTITY_ROUTES},
}


@dataclass
class Processes:
    """The children of one scenario, stopped together (last started, first stopped)."""

    running: list[Process] = field(default_factory=list)

    def add(self, process: Process) -> Process:
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        while self.running:
            process = self.running.pop()
            with contextlib.suppress(Exception):
                process.stop(grace=10)


@contextlib.contextmanager
def processes() -> Iterator[Processes]:
    group = Processes()
    try:
        yield group
    finally:
        group.stop_all()


@dataclass
class Simulator:
    process: Process
    env: dict[str, str]
    control: SimulatorControl
    subnet_id: str

    @property
    def pid(self) -> int:
        return self.process.popen.pid


def start_simulator(
    group: Processes,
    work: Path,
    *,
    provisioning_seconds: float,
    retry_after: int,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
    subnet_prefix: str = BENCH_SUBNET_PREFIX,
) -> Simulator:
    """The ARM simulator without a state dir (nothing persisted: world.json would be rewritten on
    every change, costing CPU the operator would be blamed for), plus a subnet for the fleet
    (a /21 unless ``subnet_prefix`` says otherwise)."""
    args = [
        "--provisioning-seconds",
        str(provisioning_seconds),
        "--retry-after",
        str(retry_after),
        *extra_args,
    ]
    process, env = stack.start_simulator(work, *args, quic_port=0, persist=False, timeout=timeout)
    group.add(process)
    control = SimulatorControl.from_env(env)
    subnet_id = control.add_subnet(
        BENCH_VNET, BENCH_SUBNET, subnet_prefix, resource_group=env["ARMSIM_RESOURCE_GROUP"]
    )
    return Simulator(process, env, control, subnet_id)


@dataclass
class Operator:
    process: Process
    metrics_address: str

    @property
    def pid(self) -> int:
        return self.process.popen.pid


def start_operator(
    group: Processes, work: Path, kubeconfig: Path, simulator: Simulator, namespace: str, **overrides: str
) -> Operator:
    """``python -m azure_edition_operator`` watching only ``namespace``; returns once /metrics answers
    (the startup handler has run: clients built, metrics served)."""
    env = operator_env(kubeconfig, simulator.env, AEO_NAMESPACES=namespace, **overrides)
    process = group.add(stack.start_operator(work / "operator.log", env, timeout=60, wait_metrics=True))
    return Operator(process, env["AEO_METRICS_ADDRESS"])


class Profiler:
    """``py-spy record`` attached to a pid, writing raw collapsed stacks (when py-spy is installed)."""

    def __init__(self, group: Processes, pid: int, output: Path, rate: int = 50) -> None:
        binary = shutil.which("py-spy") or (str(_venv_py_spy()) if _venv_py_spy().exists() else None)
        self.available = binary is not None
        self.output = output
        self._process: Process | None = None
        if binary is None:
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(output),
            "--nonblocking",
        ]
        self._process = group.add(Process.spawn("py-spy", args, output.with_suffix(".log"), os.environ))

    def stop(self) -> Path | None:
        """SIGINT makes py-spy write its file; returns it (None without py-spy or output)."""
        process = self._process
        if process is None:
            return None
        if process.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=30)
        process.stop()
        return self.output if self.output.exists() else None


def _venv_py_spy() -> Path:
    return Path(sys.executable).parent / "py-spy"


def summarize_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Inclusive and self sample shares per function from py-spy's raw (collapsed) output."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count

    def share(table: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda kv: kv[1], reverse=True)[:top]
        return [(frame, round(100 * n / total, 1)) for frame, n in ranked]

    return {"samples": total, "inclusivePercent": share(inclusive), "selfPercent": share(own)}
