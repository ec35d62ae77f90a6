"""The Azure management SDKs' model modules, imported when first used, not when the operator starts.

Why: ``azure.mgmt.network`` costs 39 MiB and ``azure.mgmt.compute`` 21 MiB of resident memory (each
imports every operation group and model of its API version), and an operator that has no object yet
needs neither (issue #15: idle RSS). The first object pays the import once (about a second of CPU).
"""

from __future__ import annotations

import importlib
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


if TYPE_CHECKING:
    from azure.mgmt.compute import models as compute
    from azure.mgmt.network import models as network
else:
    compute = LazyModule("azure.mgmt.compute.models")
    network = LazyModule("azure.mgmt.network.models")
