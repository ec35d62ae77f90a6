"""Placement end to end: a VM in a region without its image is refused before anything is created,
with the regions that have it; in the subnet's region the VM is created, on the commonest size."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.e2e.operator_stack import (  # noqa: F401 (module fixtures)
    arm,
    condition,
    control,
    get,
    operator,
    operator_proc,
    sample_docs,
    simulator,
    vm_name,
    wait_for,
)

pytestmark = pytest.mark.e2e


def test_image_not_in_region_is_refused_before_any_put(operator, kubectl, namespace, arm):
    secret, vm = sample_docs("plain-core")  # nothing pinned: Windows Server 2025 Core
    vm["spec"]["azure"]["location"] = "qatarcentral"  # the simulator does not offer 2025 Azure Edition there
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([secret, vm]))

    def refused():
        obj = get(kubectl, namespace, "plain-core")
        c = condition(obj, "VMProvisioned")
        return obj if c and c["reason"] == "ImageNotOfferedInRegion" else None

    obj = wait_for(refused, what="ImageNotOfferedInRegion")
    message = condition(obj, "VMProvisioned")["message"]
    assert "2025-datacenter-azure-edition-core is not offered in qatarcentral" in message
    assert "westeurope" in message  # a region that has it
    assert condition(obj, "Ready")["status"] == "False"
    compute, _ = arm
    assert all(
        v.name != vm_name(obj) for v in compute.virtual_machines.list(vm["spec"]["azure"]["resourceGroup"])
    )
    events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    assert [e["reason"] for e in events].count("ImageNotOfferedInRegion") == 1

    # a VM cannot move regions (spec.azure.location is immutable): the fix is a new object, in the subnet's
    # region, here on the commonest size (which the simulator refused before its size catalogue had it)
    vm["metadata"]["name"] = "plain-core-2"
    vm["spec"]["azure"].update(location="westeurope", vmSize="Standard_D2s_v5")
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(vm))
    kubectl(
        "wait", "--for=condition=Ready", "aevm/plain-core-2", "-n", namespace, "--timeout=90s", timeout=120
    )
    made = compute.virtual_machines.get(vm["spec"]["azure"]["resourceGroup"],
                                        vm_name(get(kubectl, namespace, "plain-core-2")))  # fmt: skip
    assert made.hardware_profile.vm_size == "Standard_D2s_v5"
    assert made.storage_profile.image_reference.sku == "2025-datacenter-azure-edition-core"
