"""The five scenarios of issue #8. Each returns a JSON-able dict of figures.

Every scenario gets its own namespace, its own ARM simulator (fresh world, counters and buckets)
and its own operator process watching only that namespace; the control plane is shared, and a
scenario's objects are purged (finalizers dropped, deleted) once its operator has stopped.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure_edition_operator.api.v1alpha1 import FINALIZER
from azure_edition_operator.azure.settings import AzureSettings
from azure_edition_operator.config import OperatorConfig

from ..controlplane import ControlPlane
from .fleet import (
    BENCH_SUBNET,
    BENCH_VNET,
    FleetSpec,
    floor_status,
    secret_manifest,
    vm_manifest,
    vm_name,
)
from .harness import (
    ARM_METHOD_OF,
    Operator,
    Processes,
    Profiler,
    Simulator,
    processes,
    start_operator,
    start_simulator,
    summarize_collapsed,
)
from .kubeclient import FleetWatch, Kube, KubeError, gather_limited, vms_path
from .measure import (
    apiserver_request_totals,
    arm_operations,
    arm_reads,
    arm_writes,
    per_hour,
    per_resource,
    summary,
    write_requests,
)
from .procfs import Window, sample_process

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-branch-a"
LOCATION = "westeurope"
SUBNET_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/"
    f"virtualNetworks/{BENCH_VNET}/subnets/{BENCH_SUBNET}"
)
CREATE_CONCURRENCY = 64
KUBE_RESOURCES = ("azureeditionvms", "events")
# ARM's subscription read bucket (per principal): 250 at once, then 25 per second.
ARM_READ_BURST, ARM_READS_PER_SECOND = 250, 25.0


@dataclass
class Bench:
    """What every scenario shares: the control plane, a client, where logs and profiles go."""

    control_plane: ControlPlane
    kube: Kube
    work: Path
    profile_dir: Path | None
    settle_seconds: float = 5.0
    operator_env: dict[str, str] = field(default_factory=dict)

    def pids(self, **more: int) -> dict[str, int]:
        return {**more, **self.control_plane.pids, "harness": os.getpid()}


def fleet_spec(capabilities: Sequence[str] = ("Hotpatch",), check_interval: str = "10m") -> FleetSpec:
    return FleetSpec(SUBSCRIPTION, RESOURCE_GROUP, LOCATION, SUBNET_ID, tuple(capabilities), check_interval)


async def prepare_namespace(kube: Kube, namespace: str) -> None:
    """The scenario's namespace and its Secret; both may be there from the ``--baseline`` run (the
    scenario's objects are purged after each run, the namespace stays)."""
    for create in (
        lambda: kube.create_namespace(namespace),
        lambda: kube.create(f"/api/v1/namespaces/{namespace}/secrets", secret_manifest(namespace)),
    ):
        try:
            await create()
        except KubeError as err:
            if err.status != 409:
                raise


async def create_fleet(kube: Kube, namespace: str, names: Sequence[str], fleet: FleetSpec) -> None:
    await gather_limited(
        [lambda n=n: kube.create(vms_path(namespace), vm_manifest(n, namespace, fleet)) for n in names],
        CREATE_CONCURRENCY,
    )


async def api_totals(kube: Kube) -> dict[Any, float]:
    return apiserver_request_totals(await kube.text("/metrics"))


async def arm_counters(simulator: Simulator) -> dict[str, Any]:
    return await asyncio.to_thread(simulator.control.counters)


def arm_figures(before: dict[str, Any], after: dict[str, Any], resources: int) -> dict[str, Any]:
    operations = arm_operations(before, after)
    reads, writes = arm_reads(operations, ARM_METHOD_OF), arm_writes(operations, ARM_METHOD_OF)
    return {
        "operations": operations,
        "perResource": per_resource(operations, resources),
        "reads": reads,
        "writes": writes,
        "readsPerResource": round(reads / resources, 2) if resources else None,
        "writesPerResource": round(writes / resources, 2) if resources else None,
        "throttled": sum(v["throttled"] for v in operations.values()),
    }


def write_kinds(watch: FleetWatch, resources: int) -> dict[str, float]:
    """Per resource, how often each kind of write happened (most frequent first)."""
    ranked = sorted(watch.write_kinds.items(), key=lambda kv: kv[1], reverse=True)
    return {what: round(count / resources, 2) for what, count in ranked} if resources else {}


def kube_figures(
    watch_writes: int, requests: dict[str, int], resources: int, *, until_ready: int | None = None
) -> dict[str, Any]:
    """Writes seen on the watch (changes that reached etcd) and write requests the API server served."""
    vm_requests = sum(v for k, v in requests.items() if " azureeditionvms" in k and not k.startswith("POST "))
    events = sum(v for k, v in requests.items() if k.endswith(" events"))
    out: dict[str, Any] = {
        "watchedWrites": watch_writes,
        "watchedWritesPerResource": round(watch_writes / resources, 2) if resources else None,
        "writeRequests": requests,
        "vmWriteRequestsPerResource": round(vm_requests / resources, 2) if resources else None,
        "eventsPerResource": round(events / resources, 2) if resources else None,
    }
    if until_ready is not None:
        out["watchedWritesUntilReadyPerResource"] = round(until_ready / resources, 2) if resources else None
    return out


def azure_minimum_seconds(provisioning: float, retry_after: float) -> float:
    """What Azure alone makes one create wait. azure-core polls an LRO once at once, then every
    Retry-After; the simulator finishes network operations at once and the VM after ``provisioning``."""
    if provisioning <= 0:
        return 0.0
    return math.ceil(provisioning / retry_after) * retry_after if retry_after > 0 else provisioning


def start_profiler(bench: Bench, group: Processes, operator: Operator, label: str) -> Profiler | None:
    if bench.profile_dir is None:
        return None
    profiler = Profiler(group, operator.pid, bench.profile_dir / f"{label}.collapsed.txt")
    if not profiler.available:
        print("    (py-spy not installed: no profile)", flush=True)
        return None
    return profiler


def stop_profiler(profiler: Profiler | None) -> dict[str, Any] | None:
    if profiler is None:
        return None
    output = profiler.stop()
    if output is None:
        return {"error": "py-spy wrote nothing (see its log)"}
    return {"file": str(output), **summarize_collapsed(output)}


# --------------------------------------------------------------------------- 1. burst


async def burst(
    bench: Bench,
    n: int,
    *,
    ready_within: float,
    variant: str = "",
    operator_env: dict[str, str] | None = None,
    simulator_args: Sequence[str] = (),
    prefix: str = "burst",
) -> dict[str, Any]:
    """N AzureEditionVMs created at once → all Ready; CPU, RSS, Kubernetes writes, ARM requests.

    ``variant`` names a run with extra operator environment (``operator_env``), e.g. a setting
    whose effect the report shows next to the default. ``simulator_args`` (e.g. the Azure timing
    profile, see ``realistic``) replace zero latency.
    """
    namespace = f"{prefix}-{n}" + (f"-{variant}" if variant else "")
    names = [vm_name(i) for i in range(n)]
    work = bench.work / namespace
    with processes() as group:
        simulator = start_simulator(
            group,
            work,
            provisioning_seconds=0,
            retry_after=1,
            extra_args=["--no-throttling", *simulator_args],
        )
        await prepare_namespace(bench.kube, namespace)
        operator = start_operator(
            group,
            work,
            bench.control_plane.kubeconfig,
            simulator,
            namespace,
            **{**bench.operator_env, **(operator_env or {})},
        )
        watch = await FleetWatch(bench.kube, namespace).start()
        try:
            idle = sample_process(operator.pid)
            api_before, arm_before = await api_totals(bench.kube), await arm_counters(simulator)
            window = Window(bench.pids(operator=operator.pid, armsim=simulator.pid)).start()
            profiler = start_profiler(bench, group, operator, f"burst-{n}")
            started = time.monotonic()
            await create_fleet(bench.kube, namespace, names, fleet_spec())
            created = time.monotonic()
            all_ready = await watch.wait_ready(names, ready_within)
            finished = time.monotonic()
            processes_cpu = window.stop(finished - started)
            profile = stop_profiler(profiler)
            until_ready = watch.total_writes()
            wall_offset = time.time() - time.monotonic()  # the simulator's operations are in wall-clock time
            await asyncio.sleep(bench.settle_seconds)
            api_after, arm_after = await api_totals(bench.kube), await arm_counters(simulator)
            ready_times = [t.ready_at - started for t in watch.objects.values() if t.ready_at is not None]
            provisioned_times = [
                t.true_at["VMProvisioned"] - started
                for t in watch.objects.values()
                if "VMProvisioned" in t.true_at
            ]
            operator_cpu = processes_cpu.get("operator", {})
            result = {
                "n": n,
                "variant": variant,
                "operatorEnv": operator_env or {},
                "allReady": all_ready,
                "readyCount": watch.ready_count(names),
                "readySeconds": round(finished - started, 2) if all_ready else None,
                "timeoutSeconds": None if all_ready else ready_within,
                "createSeconds": round(created - started, 2),
                "readyAfter": summary(ready_times),
                "vmProvisionedAfter": summary(provisioned_times),
                "processes": processes_cpu,
                "operatorIdleRssMiB": round(idle.rss_bytes / 2**20, 1) if idle else None,
                "operatorCpuMsPerResource": round(1000 * operator_cpu["cpuSeconds"] / n, 1)
                if operator_cpu
                else None,
                "kube": kube_figures(
                    watch.total_writes(),
                    write_requests(api_before, api_after, KUBE_RESOURCES),
                    n,
                    until_ready=until_ready,
                ),
                "arm": arm_figures(arm_before, arm_after, n),
            }
            result["kube"]["writeKindsPerResource"] = write_kinds(watch, n)
            reads = result["arm"]["readsPerResource"] or 0
            result["arm"]["realArmReadBudgetSeconds"] = round(
                max(0.0, reads * n - ARM_READ_BURST) / ARM_READS_PER_SECOND, 1
            )
            if profile is not None:
                result["profile"] = profile
            if simulator_args:
                operations = await asyncio.to_thread(simulator.control.operations)
                result["azure"] = azure_paths(watch, names, namespace, operations, started, wall_offset)
            ready_names = [name for name in names if watch.objects.get(name) and watch.objects[name].ready_at]
            if ready_names:  # the floor writes the operator's own status, byte for byte
                sample = await bench.kube.call("GET", vms_path(namespace, ready_names[0]))
                result["statusTemplate"] = sample.get("status")
            return result
        finally:
            await watch.stop()
            group.stop_all()
            await bench.kube.purge_vms(namespace)


def azure_paths(
    watch: FleetWatch,
    names: Sequence[str],
    namespace: str,
    operations: Sequence[dict[str, Any]],
    started: float,
    wall_offset: float,
) -> dict[str, Any]:
    """Per object, what Azure alone took (its NIC create, then its VM create: they cannot overlap) and
    how long after Azure finished the VM the object was Ready (the operator's queue; ideally ~0).
    ``started`` is the scenario's monotonic start, ``wall_offset`` wall clock minus monotonic."""
    creates: dict[str, dict[str, float]] = {}
    for op in operations:
        kind = op.get("kind")
        resource = str(op.get("resourceId") or "").rsplit("/", 1)[-1]
        if kind not in ("vm.create", "network.put") or not resource.startswith(f"{namespace}-"):
            continue
        obj = resource[len(namespace) + 1 :].removesuffix("-nic").rsplit("-", 1)[0]
        entry = creates.setdefault(obj, {})
        entry[kind] = max(entry.get(kind, 0.0), float(op["due"]) - float(op["startEpoch"]))
        if kind == "vm.create":
            entry["vmDoneAfter"] = float(op["due"]) - wall_offset - started
    paths = [e.get("network.put", 0.0) + e.get("vm.create", 0.0) for e in creates.values()]
    lags = []
    for name in names:
        tracked, entry = watch.objects.get(name), creates.get(name) or {}
        if tracked is not None and tracked.ready_at is not None and "vmDoneAfter" in entry:
            lags.append(tracked.ready_at - started - entry["vmDoneAfter"])
    return {
        "objectsWithCreates": len(creates),
        "slowestPathSeconds": round(max(paths), 2) if paths else None,
        "pathSeconds": summary(paths),
        "readyAfterVmDoneSeconds": summary(lags),
    }


async def realistic(bench: Bench, n: int, *, time_scale: float, ready_within: float) -> dict[str, Any]:
    """The burst with Azure's timing (simulator ``--profile azure``: VM create 30-60 s, NIC 2-10 s,
    Retry-After 10-35 s or none), every duration multiplied by ``time_scale``. Target: all Ready within
    the slowest create + 30 s (scaled): the operator is never the queue."""
    args = [
        "--profile",
        "azure",
        "--time-scale",
        f"{time_scale:g}",
        "--seed",
        "15",
        "--consistency-rate",
        "0",
    ]
    # The operator's own clocks compressed alike: its poll when Azure sends no Retry-After and when it
    # starts showing progress in status (their defaults, from the settings models).
    poll = AzureSettings.model_fields["polling_interval"].default
    progress = OperatorConfig.model_fields["progress_report_after"].default
    env = {
        "AZURE_POLLING_INTERVAL": f"{poll * time_scale:g}",
        "AEO_PROGRESS_REPORT_AFTER": f"{progress * time_scale:g}",
    }
    result = await burst(
        bench, n, ready_within=ready_within, simulator_args=args, prefix="realistic", operator_env=env
    )
    result["timeScale"] = time_scale
    slowest = (result.get("azure") or {}).get("slowestPathSeconds")
    result["budgetSeconds"] = round(slowest + 30 * time_scale, 2) if slowest is not None else None
    return result


# --------------------------------------------------------------------------- 2. floor


async def floor(
    bench: Bench, n: int, status_template: dict[str, Any] | None, *, ready_within: float
) -> dict[str, Any]:
    """The same creates plus the least a correct operator must write (the finalizer, one Ready
    status), by this process's aiohttp client, as concurrently as the API server takes it."""
    namespace = f"floor-{n}"
    names = [vm_name(i) for i in range(n)]
    fleet = fleet_spec()
    status = floor_status(status_template)
    await prepare_namespace(bench.kube, namespace)
    watch = await FleetWatch(bench.kube, namespace).start()
    kube = bench.kube
    try:
        api_before = await api_totals(kube)
        window = Window(bench.pids()).start()
        started = time.monotonic()

        async def one(name: str) -> None:
            await kube.create(vms_path(namespace), vm_manifest(name, namespace, fleet))
            await kube.merge_patch(vms_path(namespace, name), {"metadata": {"finalizers": [FINALIZER]}})
            await kube.merge_patch(vms_path(namespace, name, "status"), {"status": status})

        await gather_limited([lambda n=n: one(n) for n in names], CREATE_CONCURRENCY)
        all_ready = await watch.wait_ready(names, ready_within)
        finished = time.monotonic()
        processes_cpu = window.stop(finished - started)
        await asyncio.sleep(min(bench.settle_seconds, 2.0))
        api_after = await api_totals(kube)
        ready_times = [t.ready_at - started for t in watch.objects.values() if t.ready_at is not None]
        return {
            "n": n,
            "allReady": all_ready,
            "readySeconds": round(finished - started, 2) if all_ready else None,
            "readyAfter": summary(ready_times),
            "processes": processes_cpu,
            "kube": {
                **kube_figures(
                    watch.total_writes(), write_requests(api_before, api_after, KUBE_RESOURCES), n
                ),
                "writeKindsPerResource": write_kinds(watch, n),
            },
            "statusFromOperator": status_template is not None,
        }
    finally:
        await watch.stop()
        await kube.purge_vms(namespace)


# --------------------------------------------------------------------------- 3. latency


async def latency(
    bench: Bench,
    label: str,
    *,
    reps: int,
    provisioning_seconds: float,
    retry_after: int,
    capabilities: Sequence[str],
    ready_within: float,
) -> dict[str, Any]:
    """One resource at a time, apply → Ready, ``reps`` times against one running operator."""
    namespace = f"latency-{label}"
    work = bench.work / namespace
    fleet = fleet_spec(capabilities)
    with processes() as group:
        simulator = start_simulator(
            group,
            work,
            provisioning_seconds=provisioning_seconds,
            retry_after=retry_after,
            extra_args=["--no-throttling"],
        )
        await prepare_namespace(bench.kube, namespace)
        start_operator(
            group, work, bench.control_plane.kubeconfig, simulator, namespace, **bench.operator_env
        )
        watch = await FleetWatch(bench.kube, namespace).start()
        samples: list[float] = []
        provisioned: list[float] = []  # apply → VMProvisioned=True (the create handler's status write)
        failures = 0
        try:
            await asyncio.sleep(1.0)  # let kopf finish its initial listing before the first sample
            for i in range(reps):
                name = f"lat-{i:03d}"
                started = time.monotonic()
                await bench.kube.create(vms_path(namespace), vm_manifest(name, namespace, fleet))
                if await watch.wait_ready([name], ready_within):
                    tracked = watch.objects[name]
                    assert tracked.ready_at is not None
                    samples.append(tracked.ready_at - started)
                    provisioned.append(tracked.true_at.get("VMProvisioned", tracked.ready_at) - started)
                else:
                    failures += 1
                await asyncio.sleep(0.2)
        finally:
            await watch.stop()
            group.stop_all()
            await bench.kube.purge_vms(namespace)
    stats = summary(samples)
    azure = azure_minimum_seconds(provisioning_seconds, retry_after)
    return {
        "label": label,
        "capabilities": list(capabilities),
        "provisioningSeconds": provisioning_seconds,
        "retryAfterSeconds": retry_after,
        "reps": reps,
        "failures": failures,
        "seconds": stats,
        "vmProvisionedSeconds": summary(provisioned),
        "azureMinimumSeconds": azure,
        "operatorAddsP50": round(stats["p50"] - azure, 3) if stats["p50"] is not None else None,
        "operatorAddsP95": round(stats["p95"] - azure, 3) if stats["p95"] is not None else None,
        "samples": [round(s, 3) for s in samples],
    }


# --------------------------------------------------------------------------- 4. steady state


async def steady(
    bench: Bench,
    n: int,
    *,
    interval_seconds: int,
    intervals: int,
    ready_within: float,
    settle_intervals: int = 2,
) -> dict[str, Any]:
    """N Ready resources checked every ``interval_seconds``: writes, ARM reads, CPU and RSS over
    ``intervals`` intervals once the fleet has settled."""
    namespace = f"steady-{n}"
    names = [vm_name(i) for i in range(n)]
    work = bench.work / namespace
    with processes() as group:
        simulator = start_simulator(
            group, work, provisioning_seconds=0, retry_after=1, extra_args=["--no-throttling"]
        )
        await prepare_namespace(bench.kube, namespace)
        operator = start_operator(
            group, work, bench.control_plane.kubeconfig, simulator, namespace, **bench.operator_env
        )
        watch = await FleetWatch(bench.kube, namespace).start()
        try:
            started = time.monotonic()
            await create_fleet(
                bench.kube, namespace, names, fleet_spec(check_interval=f"{interval_seconds}s")
            )
            all_ready = await watch.wait_ready(names, ready_within)
            ready_seconds = time.monotonic() - started
            await asyncio.sleep(settle_intervals * interval_seconds)  # every daemon past its first rounds
            writes_before = watch.total_writes()
            watch.write_kinds.clear()
            api_before, arm_before = await api_totals(bench.kube), await arm_counters(simulator)
            window = Window(bench.pids(operator=operator.pid, armsim=simulator.pid)).start()
            profiler = start_profiler(bench, group, operator, f"steady-{n}")
            measured_from = time.monotonic()
            await asyncio.sleep(intervals * interval_seconds)
            seconds = time.monotonic() - measured_from
            processes_cpu = window.stop(seconds)
            profile = stop_profiler(profiler)
            api_after, arm_after = await api_totals(bench.kube), await arm_counters(simulator)
            watched = watch.total_writes() - writes_before
            requests = write_requests(api_before, api_after, KUBE_RESOURCES)
            vm_requests = sum(v for k, v in requests.items() if " azureeditionvms" in k)
            arm = arm_figures(arm_before, arm_after, n)
            rounds = seconds / interval_seconds
            result = {
                "n": n,
                "allReady": all_ready,
                "readySeconds": round(ready_seconds, 2),
                "intervalSeconds": interval_seconds,
                "intervals": intervals,
                "measuredSeconds": round(seconds, 2),
                "kubeWritesPerResourcePerHour": per_hour(watched, n, seconds),
                "kubeWriteRequestsPerResourcePerHour": per_hour(vm_requests, n, seconds),
                "kube": {
                    **kube_figures(watched, requests, n),
                    "writeKindsPerResource": write_kinds(watch, n),
                },
                "armReadsPerVmPerInterval": round(arm["reads"] / n / rounds, 3) if rounds else None,
                "arm": arm,
                "processes": processes_cpu,
            }
            if profile is not None:
                result["profile"] = profile
            return result
        finally:
            await watch.stop()
            group.stop_all()
            await bench.kube.purge_vms(namespace)


# --------------------------------------------------------------------------- 5. throttled Azure


async def throttled(bench: Bench, n: int, *, divisor: int, ready_within: float) -> dict[str, Any]:
    """The subscription read bucket shrunk ``divisor`` times: the operator must back off and finish."""
    capacity, per_minute = ARM_READ_BURST // divisor, int(ARM_READS_PER_SECOND * 60) // divisor
    namespace = f"throttled-{n}"
    names = [vm_name(i) for i in range(n)]
    work = bench.work / namespace
    with processes() as group:
        simulator = start_simulator(
            group,
            work,
            provisioning_seconds=0,
            retry_after=1,
            extra_args=["--throttle-subscription-reads", f"{capacity}/{per_minute}"],
        )
        await prepare_namespace(bench.kube, namespace)
        operator = start_operator(
            group, work, bench.control_plane.kubeconfig, simulator, namespace, **bench.operator_env
        )
        watch = await FleetWatch(bench.kube, namespace).start()
        try:
            arm_before = await arm_counters(simulator)
            seq_before = await asyncio.to_thread(simulator.control.last_seq)
            window = Window(bench.pids(operator=operator.pid, armsim=simulator.pid)).start()
            started = time.monotonic()
            await create_fleet(bench.kube, namespace, names, fleet_spec())
            all_ready = await watch.wait_ready(names, ready_within)
            finished = time.monotonic()
            processes_cpu = window.stop(finished - started)
            arm_after = await arm_counters(simulator)
            log = await asyncio.to_thread(simulator.control.requests, seq_before)
            arm = arm_figures(arm_before, arm_after, n)
            reads = [e for e in log if e["method"] == "GET" and not e["operation"].startswith("Identity_")]
            per_minute_peak = _peak_in_window([e["time"] for e in reads], 60.0)
            accepted_peak = _peak_in_window([e["time"] for e in reads if e["status"] != 429], 60.0)
            seconds = finished - started
            return {
                "n": n,
                "bucket": {"capacity": capacity, "refillPerMinute": per_minute},
                "allReady": all_ready,
                "readyCount": watch.ready_count(names),
                "readySeconds": round(seconds, 2) if all_ready else None,
                "throttled429": arm["throttled"],
                "reads": arm["reads"],
                "throttledShareOfReads": round(arm["throttled"] / arm["reads"], 3) if arm["reads"] else None,
                "readsAttemptedPeakPerMinute": per_minute_peak,
                "readsAcceptedPeakPerMinute": accepted_peak,
                "bucketAllowsPerMinute": capacity + per_minute,
                "budgetMinimumSeconds": round(
                    max(0.0, arm["reads"] - arm["throttled"] - capacity) / (per_minute / 60.0), 1
                ),
                "arm": arm,
                "kubeWritesPerResource": round(watch.total_writes() / n, 2),
                "kubeWriteKindsPerResource": write_kinds(watch, n),
                "processes": processes_cpu,
                "requestLogComplete": bool(log) and log[0]["seq"] == seq_before + 1,
            }
        finally:
            await watch.stop()
            group.stop_all()
            await bench.kube.purge_vms(namespace)


def _peak_in_window(times: Sequence[float], width: float) -> int:
    """Most events inside any ``width``-second window (two pointers over sorted times)."""
    ordered = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(ordered):
        while t - ordered[left] > width:
            left += 1
        best = max(best, right - left + 1)
    return best
