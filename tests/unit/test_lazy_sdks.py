"""The Azure management SDKs are imported by the first object, not at start (issue #15: idle RSS)."""

from __future__ import annotations

import subprocess
import sys

from azure_edition_operator.azure.sdk import LazyModule


def test_an_operator_without_objects_has_not_imported_the_management_sdks() -> None:
    probe = (
        "import asyncio, sys\n"
        "import azure_edition_operator.__main__, azure_edition_operator.handlers\n"
        "from azure_edition_operator.azure import sdk\n"
        "def mgmt(): return sorted(m for m in sys.modules if m.startswith(('azure.mgmt.compute', 'azure.mgmt.network')))\n"
        "print(len(mgmt()))\n"
        "asyncio.run(sdk.imported())\n"
        "print(all(n in sys.modules for n in ('azure.mgmt.compute.aio', 'azure.mgmt.network.aio')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "True"]


def test_a_lazy_module_imports_on_the_first_attribute_read() -> None:
    json = LazyModule("json")
    assert json._module is None
    assert json.dumps([1]) == "[1]"
    assert json._module is sys.modules["json"]
