"""The Azure management SDKs' model modules, imported when first used, not when the operator starts.

Why: ``azure.mgmt.network`` costs 39 MiB and ``azure.mgmt.compute`` 21 MiB of resident memory (each
imports every operation group and model of its API version), and an operator that has no object yet
needs neither (bench/README.md: idle RSS). The first object pays the import once (1.4 s of CPU), in a worker
thread (``imported``) so the event loop keeps serving the other objects meanwhile.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any


class LazyModule:
    """Stands for module ``name``; the first attribute read imports it (later reads are a lookup)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


_CLIENTS = ("azure.mgmt.compute.aio", "azure.mgmt.network.aio")  # their models come with them
_imported = threading.Event()


async def imported() -> None:
    """Both SDKs are imported (off the event loop); call before building their clients. Callers that
    come while the import runs wait in their own worker thread on Python's import lock."""
    if not _imported.is_set():
        await asyncio.to_thread(_import_clients)


def _import_clients() -> None:
    for name in _CLIENTS:
        importlib.import_module(name)
    _imported.set()


if TYPE_CHECKING:
    from azure.mgmt.compute import models as compute
    from azure.mgmt.network import models as network
else:
    compute = LazyModule("azure.mgmt.compute.models")
    network = LazyModule("azure.mgmt.network.models")
