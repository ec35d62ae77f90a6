"""The benchmark harness's pure parts: /proc parsing, statistics, counter deltas, manifests, report.

The harness itself runs in `make bench QUICK=1`; these keep its arithmetic honest without a cluster.
"""

from __future__ import annotations

import os

import pytest

from azure_edition_envtest.bench import measure, procfs, report
from azure_edition_envtest.bench.__main__ import FULL, QUICK, missing_numbers
from azure_edition_envtest.bench.fleet import FleetSpec, floor_status, vm_manifest
from azure_edition_envtest.bench.harness import ARM_METHOD_OF, summarize_collapsed
from azure_edition_envtest.bench.kubeclient import changed_paths, is_ready
from azure_edition_envtest.bench.scenarios import _peak_in_window, azure_minimum_seconds, fleet_spec
from azure_edition_operator.api.v1alpha1 import AzureEditionVMSpec

# ----------------------------------------------------------------------------- /proc


def report_doc(results: dict) -> dict:
    """A results document as the bench writes it, around ``results`` (for report.markdown)."""
    return {
        "date": "2026-01-01", "git": {"sha": "abc1234", "dirty": False}, "mode": "full", "durationSeconds": 1.0,
        "machine": {"cores": 2, "memoryGiB": 24.0, "cpuModel": "x", "python": "3.11", "kubernetes": "v1",
                    "packages": {}},
        "loadAverage": {"start": 0.1, "end": 0.2}, "results": results, "targets": report.targets(results),
    }  # fmt: skip


def test_cpu_ticks_survive_a_process_name_with_spaces_and_parentheses() -> None:
    stat = "1234 (python (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 3 4 20 0 5 0 999 1000 2000"
    assert procfs.cpu_ticks_of_stat(stat) == 325


def test_status_kib_and_missing_key() -> None:
    status = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n"
    assert procfs.kib_of_status(status, "VmRSS") == 102400
    assert procfs.kib_of_status(status, "VmHWM") == 204800
    with pytest.raises(KeyError):
        procfs.kib_of_status(status, "VmSwap")


def test_machine_ticks_count_iowait_as_idle() -> None:
    busy, total = procfs.machine_ticks("cpu  100 5 50 800 45 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8\n")
    assert (busy, total) == (155, 1000)


def test_this_process_can_be_sampled() -> None:
    sample = procfs.sample_process(os.getpid())
    assert sample is not None
    assert sample.cpu_seconds > 0
    assert sample.peak_rss_bytes >= sample.rss_bytes > 1_000_000


def test_a_gone_process_samples_as_none() -> None:
    assert procfs.sample_process(2**22 + 12345) is None


# ----------------------------------------------------------------------------- statistics


def test_percentiles_interpolate_like_numpy() -> None:
    assert measure.percentile([4, 1, 3, 2], 50) == 2.5
    assert measure.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert measure.percentile([7], 95) == 7
    assert measure.percentile([], 50) is None


def test_summary_of_nothing_has_no_numbers() -> None:
    assert measure.summary([]) == {"n": 0, "min": None, "p50": None, "p95": None, "max": None}
    assert measure.summary([1.0, 3.0])["p50"] == 2.0


def test_per_hour_extrapolates_per_resource() -> None:
    assert measure.per_hour(10, 5, 60) == 120.0
    assert measure.per_hour(0, 500, 50) == 0.0
    assert measure.per_hour(3, 0, 60) is None


def test_peak_in_window_counts_the_busiest_minute() -> None:
    times = [0, 1, 2, 59, 61, 62, 120]
    assert _peak_in_window(times, 60.0) == 4  # e.g. 2, 59, 61, 62 (at most 60 s apart)
    assert _peak_in_window([], 60.0) == 0


def test_azure_minimum_follows_azure_core_polling() -> None:
    assert azure_minimum_seconds(0, 1) == 0
    assert azure_minimum_seconds(20, 1) == 20
    assert azure_minimum_seconds(3, 2) == 4  # polled at once, then every Retry-After


# ----------------------------------------------------------------------------- counters

METRICS = """# HELP apiserver_request_total Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="azureedition.io",resource="azureeditionvms",scope="resource",subresource="",verb="POST",version="v1alpha1"} 10
apiserver_request_total{code="200",component="apiserver",dry_run="",group="azureedition.io",resource="azureeditionvms",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="azureedition.io",resource="azureeditionvms",scope="resource",subresource="",verb="GET",version="v1alpha1"} 99
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="events",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_duration_seconds_bucket{le="0.1",resource="events",verb="POST"} 3
"""


def test_apiserver_write_requests_are_deltas_of_write_verbs() -> None:
    before = measure.apiserver_request_totals(METRICS)
    after = measure.apiserver_request_totals(
        METRICS.replace("} 7\n", "} 12\n").replace(
            "} 3\napiserver_request_duration", "} 5\napiserver_request_duration"
        )
    )
    assert before[("PATCH", "azureeditionvms", "status", "200")] == 7
    writes = measure.write_requests(before, after, ["azureeditionvms", "events"])
    assert writes == {"PATCH azureeditionvms/status": 5, "POST events": 2}  # GETs never count


def test_arm_operations_delta_and_read_write_split() -> None:
    before = {"operations": {"VirtualMachines_Get": {"count": 2, "throttled": 0, "statuses": {"200": 2}}}}
    after = {
        "operations": {
            "VirtualMachines_Get": {"count": 7, "throttled": 1, "statuses": {"200": 5, "404": 1, "429": 1}},
            "VirtualMachines_CreateOrUpdate": {"count": 2, "throttled": 0, "statuses": {"201": 2}},
            "Identity_Token": {"count": 1, "throttled": 0, "statuses": {"200": 1}},
        }
    }
    ops = measure.arm_operations(before, after)
    assert ops["VirtualMachines_Get"] == {
        "count": 5,
        "throttled": 1,
        "status200": 3,
        "status404": 1,
        "status429": 1,
    }
    assert measure.arm_reads(ops, ARM_METHOD_OF) == 5
    assert measure.arm_writes(ops, ARM_METHOD_OF) == 2  # the token request is neither
    assert measure.per_resource(ops, 2)["VirtualMachines_CreateOrUpdate"] == 1.0


def test_every_simulator_route_has_a_method() -> None:
    assert ARM_METHOD_OF["VirtualMachines_Get"] == "GET"
    assert ARM_METHOD_OF["NetworkInterfaces_CreateOrUpdate"] == "PUT"
    assert ARM_METHOD_OF["Identity_Token"] == "POST"


# ----------------------------------------------------------------------------- watch helpers


def test_changed_paths_name_what_a_write_changed() -> None:
    old = {
        "metadata": {"resourceVersion": "1", "annotations": {"a": "1"}},
        "status": {"phase": "Provisioning"},
    }
    new = {"metadata": {"resourceVersion": "2", "annotations": {"a": "1", "b": "2"}, "finalizers": ["f"]},
           "status": {"phase": "Ready"}}  # fmt: skip
    assert changed_paths(old, new) == ["metadata.annotations.b", "metadata.finalizers", "status.phase"]
    assert changed_paths(old, old) == []


def test_ready_means_the_ready_condition_is_true() -> None:
    assert is_ready({"status": floor_status(None)})
    assert not is_ready({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    assert not is_ready({})


# ----------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("capabilities", [(), ("Hotpatch",)])
def test_fleet_manifests_are_valid_specs(capabilities: tuple[str, ...]) -> None:
    manifest = vm_manifest("vm-0001", "ns", fleet_spec(capabilities, check_interval="5s"))
    spec = AzureEditionVMSpec.model_validate(manifest["spec"])
    assert [str(c) for c in spec.capabilities] == list(capabilities)
    assert spec.check_interval_seconds == 5


def test_floor_writes_the_operators_status_when_it_has_one() -> None:
    template = {"phase": "Ready", "observedGeneration": 3, "conditions": []}
    assert floor_status(template, generation=1) == {
        "phase": "Ready",
        "observedGeneration": 1,
        "conditions": [],
    }
    assert isinstance(FleetSpec("s", "rg", "l", "subnet").capabilities, tuple)


# ----------------------------------------------------------------------------- report


def test_collapsed_stacks_summarise_inclusive_and_self(tmp_path) -> None:
    path = tmp_path / "p.collapsed.txt"
    path.write_text("main;a;b 3\nmain;a 1\nmain;c 4\n")
    summary = summarize_collapsed(path)
    assert summary["samples"] == 8
    assert dict(summary["inclusivePercent"])["main"] == 100.0
    assert dict(summary["inclusivePercent"])["a"] == 50.0
    assert dict(summary["selfPercent"])["c"] == 50.0


def _burst(n: int, seconds: float | None, rss: float) -> dict:
    return {
        "n": n, "allReady": seconds is not None, "readyCount": n, "readySeconds": seconds, "createSeconds": 1.0,
        "readyAfter": measure.summary([1.0]), "vmProvisionedAfter": measure.summary([0.5]),
        "processes": {"operator": {"cpuSeconds": 10.0, "peakRssMiB": rss}, "machineBusyPercent": 90.0},
        "operatorCpuMsPerResource": 10.0,
        "kube": {"watchedWritesUntilReadyPerResource": 4.0, "watchedWritesPerResource": 4.0,
                 "vmWriteRequestsPerResource": 4.0, "eventsPerResource": 2.0,
                 "writeKindsPerResource": {"status": 1.0}},
        "arm": {"readsPerResource": 7.0, "writesPerResource": 2.0, "perResource": {"VirtualMachines_Get": 3.0}},
    }  # fmt: skip


def test_targets_and_markdown() -> None:
    results = {
        "burst": [_burst(1000, 150.0, 250.0)],
        "floor": [{"n": 1000, "allReady": True, "readySeconds": 10.0}],
        "latency": [],
    }
    checks = {c["name"]: c for c in report.targets(results)}
    assert checks["burst N=1000: all Ready (s)"]["met"] is False
    assert checks["burst N=1000 / floor"]["measured"] == 15.0
    assert checks["burst N=1000: operator peak RSS (MiB)"]["met"] is True
    text = report.markdown(report_doc(results))
    assert "| 1000 | 150.0 | 10.00 | 15.0 |" in text
    assert "**no**" in text


def test_plans_and_the_quick_runs_only_assertion() -> None:
    assert QUICK.burst_sizes == (50,)
    assert FULL.burst_sizes == (100, 500, 1000)
    results = {"burst": [_burst(50, None, 100.0)], "floor": [], "latency": []}
    missing = missing_numbers(QUICK, results)
    assert "burst N=50" in missing and "floor N=50" in missing and "steady" in missing
    results["throttled"] = {"allReady": False, "reads": 120}  # too slow is a missed target, not missing
    assert "throttled" not in missing_numbers(QUICK, results)


def test_before_and_after_share_one_table_with_the_targets() -> None:
    before = {
        "burst": [_burst(1000, 80.0, 370.0)],
        "floor": [{"n": 1000, "allReady": True, "readySeconds": 10.0}],
    }
    after = {
        "burst": [_burst(1000, 20.0, 200.0)],
        "floor": [{"n": 1000, "allReady": True, "readySeconds": 10.0}],
    }
    after["burst"][0]["operatorCpuMsPerResource"] = 30.0
    doc = report_doc(after)
    doc["targets"] = report.targets(after)
    doc["baseline"] = {"git": {"rev": "v0.1.0", "sha": "a534ce4"}, "targets": report.targets(before)}
    text = report.markdown(doc)
    assert "## Before (a534ce4) and after" in text
    assert "| burst N=1000 / floor | 8.00 | 2.00 | ≤ 2.5 | yes |" in text
    assert "| burst N=1000: operator CPU ms / VM | 10.00 | 30.00 | ≤ 25 | **no** |" in text


def test_steady_cpu_is_per_object_and_interval() -> None:
    steady = {
        "n": 500,
        "intervalSeconds": 5,
        "measuredSeconds": 50.0,
        "processes": {"operator": {"cpuSeconds": 10.0}},
    }
    assert report.steady_cpu_ms_per_object_interval(steady) == 2.0  # 10 s / 500 objects / 10 intervals
    assert report.steady_cpu_ms_per_object_interval({**steady, "processes": {}}) is None
