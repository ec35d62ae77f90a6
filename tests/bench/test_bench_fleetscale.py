"""The fleet-size scenarios' pure parts (issue #15): scaled clocks, request attribution per shard, VM PUTs
per object, per-object-per-interval figures, the report's rows and targets, and the plan's flags."""

from __future__ import annotations

from azure_edition_envtest.bench import fleetscale, report
from azure_edition_envtest.bench.__main__ import QUICK, missing_numbers, parse_args, plan_from
from azure_edition_envtest.bench.fleet import subnet_prefix_for, vm_spec
from azure_edition_envtest.bench.scenarios import fleet_spec
from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec, parse_duration

from .test_bench_units import _burst, report_doc

VM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"
NIC = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/"


def test_scaled_clocks_compress_the_check_interval_and_the_operators_own_clocks() -> None:
    check, env = fleetscale.scaled_clocks(0.1)
    assert check == "60s" and parse_duration(check).total_seconds() == 60
    assert env["AEO_RESYNC_INTERVAL"] == "360" and env["AEO_IN_GUEST_MIN_INTERVAL"] == "60"
    assert env["AZURE_POLLING_INTERVAL"] == "1.5" and env["AEO_PROGRESS_REPORT_AFTER"] == "1"
    assert fleetscale.scaled_clocks(0.0001)[0] == "5s", "never below the CRD's minimum"


def test_the_scaled_interval_is_a_valid_spec() -> None:
    spec = vm_spec(fleet_spec(check_interval=fleetscale.scaled_clocks(0.05)[0]))
    assert AzureEditionVMSpec.model_validate(spec).check_interval == "30s"


def test_api_requests_count_every_verb() -> None:
    before = {("GET", "azureeditionvms", "", "200"): 10.0, ("WATCH", "events", "", "200"): 1.0}
    after = {
        ("GET", "azureeditionvms", "", "200"): 25.0,
        ("WATCH", "events", "", "200"): 1.0,
        ("PATCH", "azureeditionvms", "status", "200"): 3.0,
    }
    assert fleetscale.api_requests(before, after) == {"GET azureeditionvms": 15, "PATCH azureeditionvms": 3}


def test_vm_puts_per_object_count_puts_of_known_vms_only() -> None:
    log = [
        {"method": "PUT", "path": VM + "ns-a-1?api-version=2024-07-01"},
        {"method": "GET", "path": VM + "ns-a-1"},
        {"method": "PUT", "path": VM + "ns-b-1"},
        {"method": "PUT", "path": VM + "ns-b-1"},
        {"method": "PUT", "path": NIC + "ns-a-1-nic"},
        {"method": "PUT", "path": VM + "stranger"},
    ]
    assert fleetscale.vm_puts_per_object(log, ["ns-a-1", "ns-b-1", "ns-c-1"]) == {
        "ns-a-1": 1,
        "ns-b-1": 2,
        "ns-c-1": 0,
    }


def test_requests_are_attributed_to_the_shard_whose_vm_they_name() -> None:
    log = [
        {"method": "PUT", "path": VM + "vm-a"},
        {"method": "GET", "path": NIC + "vm-a-nic"},
        {"method": "GET", "path": NIC + "vm-b-nic-ext?api-version=1"},
        {"method": "GET", "path": "/subscriptions/s/providers/Microsoft.Compute/locations/x/operations/1"},
        {"method": "POST", "path": "/tenant/oauth2/v2.0/token"},
    ]
    assert fleetscale.requests_by_shard(log, {"vm-a": "a", "vm-b": "b"}) == {
        "a": 2,
        "b": 1,
        "unattributed": 2,
    }


def test_created_vms_are_read_from_the_operators_log() -> None:
    log = (
        "INFO azure_edition_operator.azure.driver: created networkInterfaces/x-nic\n"
        "INFO azure_edition_operator.azure.driver: created virtualMachines/shard-a0-vm-0001-1a2b3c4d\n"
        "INFO azure_edition_operator.azure.driver: put of virtualMachines/other finished\n"
    )
    assert fleetscale.created_vms(log) == {"shard-a0-vm-0001-1a2b3c4d"}


def test_split_evenly() -> None:
    assert fleetscale.split_evenly(10, 4) == [3, 3, 2, 2]
    assert sum(fleetscale.split_evenly(400, 4)) == 400


def test_scale_figures_are_per_object_and_interval() -> None:
    figures = fleetscale.scale_figures(1000, 6.0, 360.0, 120.0, 6600, {"GET": 700, "PATCH": 20})
    assert figures["operatorCpuSecondsPerObjectPerInterval"] == 0.02
    assert figures["armReadsPerVmPerInterval"] == 1.1
    assert figures["apiRequestsPerSecond"] == 2.0
    assert figures["listAllReadsPerVmPerInterval"] == 0.001
    assert fleetscale.scale_figures(0, 6.0, 360.0, 1.0, 1, {}) == {}


def _scale(restart_writes: float) -> dict:
    steady = {
        "intervals": 6,
        "measuredSeconds": 360.0,
        "kubeWritesPerResourcePerHour": 0.0,
        "arm": {"perResource": {"VirtualMachines_Get": 1.1}},
        "processes": {"operator": {"rssMiB": 300.0, "peakRssMiB": 320.0, "cpuPercent": 40.0}},
        **fleetscale.scale_figures(1000, 6.0, 360.0, 120.0, 6600, {"GET": 720}),
    }
    return {
        "n": 1000, "timeScale": 0.1, "checkInterval": "60s", "allReady": True, "readyCount": 1000,
        "readySeconds": 100.0, "create": {"kube": {"watchedWritesPerResource": 3.0}}, "steady": steady,
        "restart": {"measuredSeconds": 120.0, "readAzureOncePerObjectAfterSeconds": 30.0, "operatorStartRssMiB": 170.0,
                    "kube": {"watchedWritesPerResource": restart_writes}, "arm": {"readsPerResource": 2.0},
                    "processes": {"operator": {"cpuSeconds": 20.0, "peakRssMiB": 280.0}}},
        "listAllUsedByOperator": False,
    }  # fmt: skip


def _shards(puts: dict[str, int]) -> dict:
    shard = {"namespaces": ["shard-a0"], "objects": 2, "createdVms": 2, "createdOthersVms": 0, "armRequests": 20,
             "process": {"cpuSeconds": 1.5, "peakRssMiB": 200.0}}  # fmt: skip
    return {
        "n": 4, "allReady": True, "readySeconds": 5.0, "vmPutsPerObject": puts,
        "armRequestsByShard": {"a": 20, "b": 20}, "shards": {"a": shard, "b": {**shard, "namespaces": ["shard-b0"]}},
    }  # fmt: skip


def test_scale_and_shards_in_targets_and_markdown() -> None:
    results = {"burst": [], "floor": [], "latency": [], "scale": _scale(0.0), "shards": _shards({"1": 4})}
    checks = {c["name"]: c for c in report.targets(results)}
    assert checks["scale N=1000: ARM reads / VM / interval"]["met"] is False
    assert checks["scale N=1000: Kubernetes writes / object / hour"]["met"] is True
    assert checks["scale N=1000: Kubernetes writes / object after a restart"]["met"] is True
    assert checks["shards N=4: every object exactly one VM PUT"]["met"] is True
    twice = report.targets({**results, "shards": _shards({"1": 3, "2": 1})})
    assert any(c["name"].startswith("shards") and c["met"] is False for c in twice)
    text = report.markdown(report_doc(results))
    assert "| steady: operator CPU ms / object / interval | 20.00 |" in text
    assert "| a | shard-a0 | 2 | 2 | 0 | 20 | 1.5 | 200 |" in text
    assert "0.001000 (operator uses it: no)" in text
    assert report.lines_scale(_scale(1.0))[0].startswith("scale N=1000, checkInterval 60s")


def test_scale_runs_only_when_asked_and_is_missing_without_numbers() -> None:
    assert "scale" not in plan_from(parse_args(["--quick"])).scenarios
    assert "scale" not in plan_from(parse_args([])).scenarios
    plan = plan_from(parse_args(["--scale", "--scale-n", "2000"]))
    assert {"scale", "shards"} <= plan.scenarios and plan.scale_n == 2000
    only = plan_from(parse_args(["--only", "scale", "--scale-time-scale", "0.05"]))
    assert only.scenarios == {"scale"} and only.scale_time_scale == 0.05
    results = {"burst": [_burst(50, 1.0, 100.0)], "floor": [], "latency": []}
    assert missing_numbers(only, results) == ["scale"]
    assert "shards" not in missing_numbers(QUICK, results)


def test_the_subnet_grows_with_the_fleet_only_past_a_21() -> None:
    assert subnet_prefix_for(50) == subnet_prefix_for(2043) == "127.1.0.0/21"
    assert subnet_prefix_for(2044) == "127.1.0.0/20"
    assert subnet_prefix_for(10000) == "127.1.0.0/18"
