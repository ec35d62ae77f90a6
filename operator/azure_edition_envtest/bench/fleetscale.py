"""Issue #15's fleet-size scenarios: ``scale`` (steady state and a restart at 10,000 objects, time
compressed) and ``shards`` (two operator processes, each with its own namespace set and peering,
over one fleet). The pure parts come first and are unit-tested in tests/bench/.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from azure_edition_operator.azure.specs import Owner, vm_name_for

from .fleet import subnet_prefix_for, vm_name
from .harness import processes, start_operator, start_simulator
from .kubeclient import FleetWatch, gather_limited
from .measure import RequestKey, per_hour, write_requests
from .procfs import Window, sample_process
from .scenarios import (
    KUBE_RESOURCES,
    Bench,
    api_totals,
    arm_counters,
    arm_figures,
    create_fleet,
    fleet_spec,
    kube_figures,
    prepare_namespace,
    write_kinds,
)

CHECK_INTERVAL_SECONDS = 600  # the fleet's checkInterval at real scale (10m)
PEERING_CRDS = Path(__file__).resolve().parents[3] / "deploy" / "kopf-peering" / "peering-crds.yaml"
_CREATED_VM = re.compile(r"created virtualMachines/(\S+)")


# --------------------------------------------------------------------------- pure


def scaled_clocks(time_scale: float) -> tuple[str, dict[str, str]]:
    """The fleet's checkInterval and the operator's own clocks (resync 1 h, in-guest 6 h / 10 min, the
    poll without Retry-After 15 s, progress after 10 s), all multiplied by ``time_scale``."""
    check = f"{max(5, round(CHECK_INTERVAL_SECONDS * time_scale))}s"  # the CRD allows 5s to 24h
    env = {
        "AEO_RESYNC_INTERVAL": f"{3600 * time_scale:g}",
        "AEO_IN_GUEST_INTERVAL": f"{21600 * time_scale:g}",
        "AEO_IN_GUEST_MIN_INTERVAL": f"{600 * time_scale:g}",
        "AZURE_POLLING_INTERVAL": f"{15 * time_scale:g}",
        "AEO_PROGRESS_REPORT_AFTER": f"{10 * time_scale:g}",
    }
    return check, env


def api_requests(before: Mapping[RequestKey, float], after: Mapping[RequestKey, float]) -> dict[str, int]:
    """Every kube-apiserver request between two scrapes (reads and watches too, the control plane's own
    included), as ``"VERB resource": count``."""
    out: dict[str, int] = {}
    for key, value in after.items():
        delta = round(value - before.get(key, 0.0))
        if delta > 0:
            name = f"{key[0]} {key[1]}"
            out[name] = out.get(name, 0) + delta
    return dict(sorted(out.items()))


def vm_puts_per_object(requests: Iterable[Mapping[str, Any]], vms: Iterable[str]) -> dict[str, int]:
    """VM PUTs (creates and updates) per Azure VM name, from the simulator's request log."""
    counts = dict.fromkeys(vms, 0)
    for r in requests:
        if r.get("method") != "PUT" or "/virtualMachines/" not in r.get("path", ""):
            continue
        name = r["path"].split("?", 1)[0].rsplit("/virtualMachines/", 1)[1]
        if name in counts:
            counts[name] += 1
    return counts


def requests_by_shard(
    requests: Iterable[Mapping[str, Any]], shard_of_vm: Mapping[str, str]
) -> dict[str, int]:
    """ARM requests per shard, told by the VM, NIC or disk they name (the Azure names start with the VM's);
    requests that name none (LRO polls, tokens, catalog reads) count as ``unattributed``."""
    out: dict[str, int] = {}
    for r in requests:
        segments = r.get("path", "").split("?", 1)[0].split("/")
        shard = next(
            (s for s in (shard_of_vm.get(_vm_of(seg)) for seg in segments) if s is not None), "unattributed"
        )
        out[shard] = out.get(shard, 0) + 1
    return dict(sorted(out.items()))


def _vm_of(segment: str) -> str:
    for suffix in ("-nic-ext", "-nic", "-pip", "-osdisk"):
        if segment.endswith(suffix):
            return segment[: -len(suffix)]
    return segment


def created_vms(log_text: str) -> set[str]:
    """The Azure VMs an operator's log says it created."""
    return set(_CREATED_VM.findall(log_text))


def split_evenly(n: int, parts: int) -> list[int]:
    """``n`` objects over ``parts`` namespaces, the first ones one larger."""
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def scale_figures(
    n: int, rounds: float, seconds: float, operator_cpu: float, arm_reads: int, requests: Mapping[str, int]
) -> dict[str, Any]:
    """Per object and per interval: operator CPU and ARM reads; API-server requests per second."""
    if n <= 0 or rounds <= 0 or seconds <= 0:
        return {}
    return {
        "operatorCpuSecondsPerObjectPerInterval": round(operator_cpu / n / rounds, 5),
        "armReadsPerVmPerInterval": round(arm_reads / n / rounds, 3),
        "apiRequestsPerSecond": round(sum(requests.values()) / seconds, 2),
        # One subscription-wide listing (VirtualMachines_ListAll with statusOnly=true: every VM with its
        # instance view) per interval would read each VM's power state for 1/n of a request.
        "listAllReadsPerVmPerInterval": round(1 / n, 6),
    }


# --------------------------------------------------------------------------- scale


async def scale(
    bench: Bench, n: int, *, time_scale: float, intervals: int, ready_within: float
) -> dict[str, Any]:
    """N Ready objects with checkInterval 10m, every clock × ``time_scale``: operator RSS, CPU and ARM
    reads per object per interval, API-server requests, writes in steady state; then the operator is
    restarted and the writes of its resume passes are counted (target ≤ 1 per object)."""
    namespace = f"scale-{n}"
    names = [vm_name(i) for i in range(n)]
    work = bench.work / namespace
    check, clocks = scaled_clocks(time_scale)
    interval = float(check.removesuffix("s"))
    env = {**bench.operator_env, **clocks}
    with processes() as group:
        simulator = start_simulator(
            group, work, provisioning_seconds=0, retry_after=1, extra_args=["--no-throttling"],
            subnet_prefix=subnet_prefix_for(n),
        )  # fmt: skip
        await prepare_namespace(bench.kube, namespace)
        operator = start_operator(group, work, bench.control_plane.kubeconfig, simulator, namespace, **env)
        watch = await FleetWatch(bench.kube, namespace).start()
        try:
            started = time.monotonic()
            create_window = Window(bench.pids(operator=operator.pid, armsim=simulator.pid)).start()
            await create_fleet(bench.kube, namespace, names, fleet_spec(check_interval=check))
            all_ready = await watch.wait_ready(names, ready_within)
            ready_seconds = time.monotonic() - started
            create = create_window.stop(ready_seconds)
            print(f"    {watch.ready_count(names)}/{n} Ready in {ready_seconds:.0f} s", flush=True)
            await asyncio.sleep(interval)  # every daemon past its first round
            writes_before = watch.total_writes()
            create_kinds = write_kinds(watch, n)
            watch.write_kinds.clear()
            api_before, arm_before = await api_totals(bench.kube), await arm_counters(simulator)
            window = Window(bench.pids(operator=operator.pid, armsim=simulator.pid)).start()
            measured_from = time.monotonic()
            await asyncio.sleep(intervals * interval)
            seconds = time.monotonic() - measured_from
            steady_cpu = window.stop(seconds)
            api_after, arm_after = await api_totals(bench.kube), await arm_counters(simulator)
            arm = arm_figures(arm_before, arm_after, n)
            watched = watch.total_writes() - writes_before
            steady_kinds = write_kinds(watch, n)
            requests = api_requests(api_before, api_after)
            operator_cpu = (steady_cpu.get("operator") or {}).get("cpuSeconds", 0.0)
            steady = {
                "measuredSeconds": round(seconds, 1),
                "intervals": intervals,
                "kubeWritesPerResourcePerHour": per_hour(watched, n, seconds),
                "kubeWriteKindsPerResource": steady_kinds,
                "apiRequestsByVerb": requests,
                "arm": arm,
                "processes": steady_cpu,
                **scale_figures(n, seconds / interval, seconds, operator_cpu, arm["reads"], requests),
            }
            print(f"    steady: {steady['armReadsPerVmPerInterval']} ARM reads/VM/interval", flush=True)
            restart = await _restart(bench, group, operator, simulator, watch, namespace, env, interval, n)
            return {
                "n": n,
                "timeScale": time_scale,
                "checkInterval": check,
                "operatorEnv": clocks,
                "allReady": all_ready,
                "readyCount": watch.ready_count(names),
                "readySeconds": round(ready_seconds, 1),
                "create": {  # until the steady window: create, Ready and the first checks
                    "processes": create,
                    "kube": {
                        "watchedWritesPerResource": round(writes_before / n, 2),
                        "writeKindsPerResource": create_kinds,
                    },
                },
                "steady": steady,
                "restart": restart,
                "listAllUsedByOperator": "VirtualMachines_ListAll" in arm["operations"],
            }
        finally:
            await watch.stop()
            group.stop_all()
            await bench.kube.purge_vms(namespace)


async def _restart(
    bench: Bench, group: Any, operator: Any, simulator: Any, watch: FleetWatch, namespace: str,
    env: Mapping[str, str], interval: float, n: int,
) -> dict[str, Any]:  # fmt: skip
    """Stop the operator, start a new one, count what its resume passes write: over two check intervals,
    or until it has read Azure once per object, whichever is later."""
    operator.process.stop(grace=10)
    writes_before = watch.total_writes()
    watch.write_kinds.clear()
    api_before, arm_before = await api_totals(bench.kube), await arm_counters(simulator)
    started = time.monotonic()
    second = start_operator(
        group,
        bench.work / f"{namespace}-restart",
        bench.control_plane.kubeconfig,
        simulator,
        namespace,
        **env,
    )
    window = Window(bench.pids(operator=second.pid)).start()
    idle = sample_process(second.pid)
    read_all_after = None
    deadline = started + max(2 * interval, 600.0)
    while time.monotonic() < deadline:
        await asyncio.sleep(2.0)
        reads = arm_figures(arm_before, await arm_counters(simulator), n)["reads"]
        if read_all_after is None and reads >= n:
            read_all_after = time.monotonic() - started
        if read_all_after is not None and time.monotonic() - started >= 2 * interval:
            break
    seconds = time.monotonic() - started
    processes_cpu = window.stop(seconds)
    await asyncio.sleep(bench.settle_seconds)
    api_after, arm_after = await api_totals(bench.kube), await arm_counters(simulator)
    return {
        "measuredSeconds": round(seconds, 1),
        "readAzureOncePerObjectAfterSeconds": None if read_all_after is None else round(read_all_after, 1),
        "operatorStartRssMiB": round(idle.rss_bytes / 2**20, 1) if idle else None,
        "kube": {
            **kube_figures(
                watch.total_writes() - writes_before,
                write_requests(api_before, api_after, KUBE_RESOURCES),
                n,
            ),
            "writeKindsPerResource": write_kinds(watch, n),
        },
        "arm": arm_figures(arm_before, arm_after, n),
        "processes": processes_cpu,
    }


# --------------------------------------------------------------------------- shards


def _kubectl(bench: Bench, *args: str, stdin: str | None = None) -> None:
    cp = bench.control_plane
    subprocess.run(
        [str(cp.kubectl), f"--kubeconfig={cp.kubeconfig}", *args],
        check=True, capture_output=True, text=True, timeout=120, input=stdin,
    )  # fmt: skip


async def shards(
    bench: Bench, n: int, *, ready_within: float, namespaces_per_shard: int = 2
) -> dict[str, Any]:
    """Two operator processes over one fleet (one simulator, one subscription), each with its own
    namespace set and its own KopfPeering (docs/peering.md, "Sharding a fleet"): objects, ARM requests,
    CPU and RSS per shard, and VM PUTs per object (exactly one: no object acted on by both)."""
    shard_names = ("a", "b")
    namespaces = {s: [f"shard-{s}{i}" for i in range(namespaces_per_shard)] for s in shard_names}
    counts = split_evenly(n, len(shard_names) * namespaces_per_shard)
    per_namespace = dict(zip([ns for s in shard_names for ns in namespaces[s]], counts, strict=True))
    work = bench.work / f"shards-{n}"
    _kubectl(bench, "apply", "--server-side", "-f", str(PEERING_CRDS))
    _kubectl(bench, "wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev", "--timeout=60s")
    with processes() as group:
        simulator = start_simulator(
            group, work, provisioning_seconds=0, retry_after=1, extra_args=["--no-throttling"]
        )
        seq_before = await asyncio.to_thread(simulator.control.last_seq)
        operators = {}
        for s in shard_names:
            for ns in namespaces[s]:
                await prepare_namespace(bench.kube, ns)
                peering = {
                    "apiVersion": "kopf.dev/v1",
                    "kind": "KopfPeering",
                    "metadata": {"name": f"bench-shard-{s}", "namespace": ns},
                }
                await bench.kube.create(f"/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings", peering)
            operators[s] = start_operator(
                group, work / f"shard-{s}", bench.control_plane.kubeconfig, simulator,
                ",".join(namespaces[s]), AEO_PEERING=f"bench-shard-{s}", **bench.operator_env,
            )  # fmt: skip
        watches = {ns: await FleetWatch(bench.kube, ns).start() for ns in per_namespace}
        try:
            window = Window(bench.pids(**{f"shard-{s}": op.pid for s, op in operators.items()})).start()
            started = time.monotonic()
            await gather_limited(
                [
                    lambda ns=ns, k=k: create_fleet(
                        bench.kube, ns, [vm_name(i) for i in range(k)], fleet_spec()
                    )
                    for ns, k in per_namespace.items()
                ],
                len(per_namespace),
            )
            ready = [
                await watches[ns].wait_ready([vm_name(i) for i in range(k)], ready_within)
                for ns, k in per_namespace.items()
            ]
            seconds = time.monotonic() - started
            processes_cpu = window.stop(seconds)
            await asyncio.sleep(bench.settle_seconds)
            shard_of_vm: dict[str, str] = {}
            for s in shard_names:
                for ns in namespaces[s]:
                    for obj in (await bench.kube.list_vms(ns))["items"]:
                        meta = obj["metadata"]
                        shard_of_vm[vm_name_for(Owner(ns, meta["name"], meta["uid"]))] = s
            peers = {}  # kopf's keep-alives: each shard's peering object lists its one operator
            for ns in per_namespace:
                peering = await bench.kube.call("GET", f"/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings")
                peers[ns] = sum(len(p.get("status") or {}) for p in peering["items"])
            log = await asyncio.to_thread(simulator.control.requests, seq_before)
            puts = vm_puts_per_object(log, shard_of_vm)
            by_shard = requests_by_shard(log, shard_of_vm)
            result: dict[str, Any] = {
                "n": n,
                "allReady": all(ready),
                "readySeconds": round(seconds, 1) if all(ready) else None,
                "namespaces": namespaces,
                "requestLogComplete": bool(log) and log[0]["seq"] == seq_before + 1,
                "vmPutsPerObject": {str(k): v for k, v in sorted(_histogram(puts.values()).items())},
                "armRequestsByShard": by_shard,
                "peersPerNamespace": peers,
                "shards": {},
            }
            for s in operators:
                created = created_vms((work / f"shard-{s}" / "operator.log").read_text(errors="replace"))
                own = {vm for vm, owner in shard_of_vm.items() if owner == s}
                result["shards"][s] = {
                    "namespaces": namespaces[s],
                    "objects": len(own),
                    "createdVms": len(created & own),
                    "createdOthersVms": len(created - own),
                    "armRequests": by_shard.get(s, 0),
                    "process": processes_cpu.get(f"shard-{s}"),
                }
            return result
        finally:
            for w in watches.values():
                await w.stop()
            group.stop_all()
            for ns in per_namespace:
                await bench.kube.purge_vms(ns)


def _histogram(values: Iterable[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out
