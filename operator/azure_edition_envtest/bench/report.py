"""Results as JSON and as Markdown (pure, except ``machine()`` and ``git()`` which read the system).

The Markdown is what bench/README.md quotes; each scenario's ``lines_*`` are also what the harness
prints as the scenario finishes.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .procfs import mem_total_bytes

TARGETS = {
    "burst1000ReadySeconds": 120.0,
    "burstToFloorRatio": 2.5,  # issue #23 (2 in #15, 3 in #8)
    "writesPerResourceAtCreate": 3.0,  # issue #23: the finalizer, the sealed state, the status that says Ready
    "operatorCpuMsPerVm": 25.0,  # issue #23: operator CPU per created VM in a burst
    "steadyCpuMsPerObjectPerInterval": 4.0,  # issue #23
    "idleRssMiB": 120.0,  # issue #15
    "latencyP95Seconds": 2.0,
    "steadyKubeWritesPerResourcePerHour": 0.0,
    "steadyArmReadsPerVmPerInterval": 1.0,
    "rssMiBWith1000": 250.0,  # issue #15 (was "300 MB" in #8)
}


# --------------------------------------------------------------------------- environment


def machine(kubernetes_version: str | None) -> dict[str, Any]:
    """Cores, memory, CPU model, Python, Kubernetes and the libraries that shape the figures."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def pkg(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "cores": _cores(),
        "memoryGiB": round(mem_total_bytes(Path("/proc/meminfo").read_text()) / 2**30, 1),
        "cpuModel": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kubernetes": kubernetes_version,
        "packages": {
            name: pkg(name)
            for name in (
                "kopf",
                "aiohttp",
                "azure-core",
                "azure-mgmt-compute",
                "kubernetes_asyncio",
                "pydantic",
            )
        },
    }


def _cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 0


def git(repo: Path) -> dict[str, Any]:
    def run(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
        return result.stdout.rstrip("\n")

    changed = [line[3:] for line in run("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {
        "sha": run("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(changed),
        "changedFiles": changed,
    }


# --------------------------------------------------------------------------- targets


def short_sha(repo: Path, rev: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", rev], capture_output=True, text=True
    )
    return result.stdout.strip() or rev


def steady_cpu_ms_per_object_interval(steady: Mapping[str, Any]) -> float | None:
    """Operator CPU over the measured window, per object and check interval."""
    cpu = (steady.get("processes", {}).get("operator") or {}).get("cpuSeconds")
    intervals = (steady.get("measuredSeconds") or 0) / (steady.get("intervalSeconds") or 1)
    if cpu is None or not intervals or not steady.get("n"):
        return None
    return round(1000 * cpu / steady["n"] / intervals, 2)


def before_after_rows(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[list[str]]:
    """One row per target figure measured in either run: before, after, the target, met after."""
    by_name = {c["name"]: c for c in before}
    rows = []
    for check in after:
        old = by_name.get(check["name"], {})
        met = {True: "yes", False: "**no**", None: "—"}[check["met"]]
        rows.append(
            [check["name"], _f(old.get("measured"), 2), _f(check["measured"], 2), check["target"], met]
        )
    return rows


def _check(name: str, measured: float | None, target: float, *, at_most: bool = True) -> dict[str, Any]:
    met = None if measured is None else (measured <= target if at_most else measured >= target)
    return {
        "name": name,
        "target": f"≤ {target:g}" if at_most else f"≥ {target:g}",
        "measured": measured,
        "met": met,
    }


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's first targets, each with the figure that decides it (None when not measured)."""
    checks: list[dict[str, Any]] = []
    bursts = {b["n"]: b for b in results.get("burst", [])}
    floors = {f["n"]: f for f in results.get("floor", [])}
    largest = max(bursts) if bursts else None
    candidates = [bursts[largest]] if largest is not None else []
    candidates += [v for v in results.get("burstVariants", []) if v["n"] == largest]
    for b in candidates:
        label = f"burst N={largest}" + (f" ({b['variant']})" if b.get("variant") else "")
        checks.append(_check(f"{label}: all Ready (s)", b["readySeconds"], TARGETS["burst1000ReadySeconds"]))
        ratio = burst_floor_ratio(b, floors.get(largest))
        checks.append(_check(f"{label} / floor", ratio, TARGETS["burstToFloorRatio"]))
        rss = (b["processes"].get("operator") or {}).get("peakRssMiB")
        checks.append(_check(f"{label}: operator peak RSS (MiB)", rss, round(TARGETS["rssMiBWith1000"], 1)))
        writes = b["kube"].get("watchedWritesUntilReadyPerResource")
        checks.append(
            _check(f"{label}: Kubernetes writes / resource", writes, TARGETS["writesPerResourceAtCreate"])
        )
        checks.append(
            _check(f"{label}: operator idle RSS (MiB)", b.get("operatorIdleRssMiB"), TARGETS["idleRssMiB"])
        )
        checks.append(
            _check(
                f"{label}: operator CPU ms / VM",
                b.get("operatorCpuMsPerResource"),
                TARGETS["operatorCpuMsPerVm"],
            )
        )
    realistic = results.get("realistic")
    if realistic:
        checks.append(
            _check(
                f"realistic N={realistic['n']}: all Ready (s) within slowest create + 30 s (scaled)",
                realistic["readySeconds"],
                realistic.get("budgetSeconds") or 0.0,
            )
        )
    for lat in results.get("latency", []):
        if lat["provisioningSeconds"] == 0:
            checks.append(
                _check(
                    f"latency {lat['label']}: p95 (s)", lat["seconds"]["p95"], TARGETS["latencyP95Seconds"]
                )
            )
    steady = results.get("steady")
    if steady:
        checks.append(
            _check(
                "steady: Kubernetes writes / resource / hour",
                steady["kubeWritesPerResourcePerHour"],
                TARGETS["steadyKubeWritesPerResourcePerHour"],
            )
        )
        checks.append(
            _check(
                "steady: ARM reads / VM / interval",
                steady["armReadsPerVmPerInterval"],
                TARGETS["steadyArmReadsPerVmPerInterval"],
            )
        )
        checks.append(
            _check(
                "steady: operator CPU ms / object / interval",
                steady_cpu_ms_per_object_interval(steady),
                TARGETS["steadyCpuMsPerObjectPerInterval"],
            )
        )
    sc = results.get("scale")
    if sc:
        label = f"scale N={sc['n']}"
        checks.append(
            _check(f"{label}: ARM reads / VM / interval", sc["steady"].get("armReadsPerVmPerInterval"), 1.0)
        )
        checks.append(
            _check(
                f"{label}: Kubernetes writes / object / hour",
                sc["steady"]["kubeWritesPerResourcePerHour"],
                0.0,
            )
        )
        checks.append(
            _check(
                f"{label}: Kubernetes writes / object after a restart",
                sc["restart"]["kube"]["watchedWritesPerResource"],
                1.0,
            )
        )
    sh = results.get("shards")
    if sh:
        checks.append(
            {
                "name": f"shards N={sh['n']}: every object exactly one VM PUT",
                "target": "yes",
                "measured": sh["vmPutsPerObject"] == {"1": sh["n"]},
                "met": sh["vmPutsPerObject"] == {"1": sh["n"]},
            }
        )
    for label, ro in (
        ("TLS Secret", results.get("rotation")),
        ("Key Vault", results.get("rotationKeyVault")),
    ):
        if ro and ro["renewalToServedSeconds"]["max"] is not None:
            checks.append(
                _check(
                    f"rotation from a {label}: renewal -> new certificate served (s, slowest)",
                    ro["renewalToServedSeconds"]["max"],
                    ro["budgetSeconds"],
                )
            )
    throttled = results.get("throttled")
    if throttled:
        checks.append(
            {
                "name": "throttled: all Ready",
                "target": "yes",
                "measured": throttled["allReady"],
                "met": bool(throttled["allReady"]),
            }
        )
        checks.append(
            _check(
                "throttled: reads accepted in any minute",
                throttled["readsAcceptedPeakPerMinute"],
                throttled["bucketAllowsPerMinute"],
            )
        )
        checks.append(
            _check(
                "throttled: reads attempted in any minute (≤ 1.2 × bucket)",
                throttled["readsAttemptedPeakPerMinute"],
                round(1.2 * throttled["bucketAllowsPerMinute"], 1),
            )
        )
    return checks


def burst_floor_ratio(burst: Mapping[str, Any], floor: Mapping[str, Any] | None) -> float | None:
    if floor is None or not burst.get("readySeconds") or not floor.get("readySeconds"):
        return None
    return round(burst["readySeconds"] / floor["readySeconds"], 1)


# --------------------------------------------------------------------------- text


def _f(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _proc(entry: Mapping[str, Any], name: str, key: str) -> Any:
    return (entry.get("processes", {}).get(name) or {}).get(key)


def lines_burst(b: Mapping[str, Any], floor: Mapping[str, Any] | None = None) -> list[str]:
    kube, arm = b["kube"], b["arm"]
    ready = _f(b["readySeconds"], 1, " s") if b["allReady"] else f"TIMEOUT ({b['readyCount']}/{b['n']} Ready)"
    label = f"burst N={b['n']}" + (f" [{b['variant']}: {b['operatorEnv']}]" if b.get("variant") else "")
    out = [
        f"{label}: all Ready in {ready} (creates took {_f(b['createSeconds'], 1, ' s')}; "
        f"per object p50 {_f(b['readyAfter']['p50'], 1, ' s')}, p95 {_f(b['readyAfter']['p95'], 1, ' s')}; "
        f"VMProvisioned p50 {_f(b['vmProvisionedAfter']['p50'], 1, ' s')}, p95 {_f(b['vmProvisionedAfter']['p95'], 1, ' s')})",
        f"  operator: {_f(_proc(b, 'operator', 'cpuSeconds'), 1, ' CPU s')} "
        f"({_f(b['operatorCpuMsPerResource'], 1, ' ms/resource')}), peak RSS {_f(_proc(b, 'operator', 'peakRssMiB'), 0, ' MiB')}; "
        f"ARM simulator {_f(_proc(b, 'armsim', 'cpuSeconds'), 1, ' CPU s')}; kube-apiserver "
        f"{_f(_proc(b, 'kube-apiserver', 'cpuSeconds'), 1, ' CPU s')}; etcd {_f(_proc(b, 'etcd', 'cpuSeconds'), 1, ' CPU s')}; "
        f"machine busy {_f(b['processes'].get('machineBusyPercent'), 0, '%')}",
        f"  Kubernetes writes/resource: {_f(kube['watchedWritesUntilReadyPerResource'], 2)} until Ready, "
        f"{_f(kube['watchedWritesPerResource'], 2)} incl. settle (watch); write requests/resource "
        f"{_f(kube['vmWriteRequestsPerResource'], 2)} + {_f(kube['eventsPerResource'], 2)} Events",
        f"  ARM requests/resource: {_f(arm['readsPerResource'], 2)} reads, {_f(arm['writesPerResource'], 2)} writes: "
        + ", ".join(f"{k} {v:g}" for k, v in arm["perResource"].items()),
    ]
    out += lines_write_kinds(kube)
    if floor is not None:
        out.append(
            f"  floor: {_f(floor['readySeconds'], 2, ' s')} → ratio {_f(burst_floor_ratio(b, floor), 1)}"
        )
    return out


def lines_realistic(r: Mapping[str, Any]) -> list[str]:
    azure = r.get("azure") or {}
    lag = azure.get("readyAfterVmDoneSeconds") or {}
    return [
        f"  Azure timing x{r['timeScale']:g}: slowest NIC+VM create {_f(azure.get('slowestPathSeconds'), 1, ' s')}, "
        f"budget (slowest + 30 s scaled) {_f(r.get('budgetSeconds'), 1, ' s')}; Ready after Azure finished the VM: "
        f"p50 {_f(lag.get('p50'), 2, ' s')}, p95 {_f(lag.get('p95'), 2, ' s')}, max {_f(lag.get('max'), 2, ' s')}"
    ]


def lines_write_kinds(kube: Mapping[str, Any], top: int = 6) -> list[str]:
    kinds = kube.get("writeKindsPerResource") or {}
    if not kinds:
        return []
    shown = "; ".join(f"{v:g}× {k}" for k, v in list(kinds.items())[:top])
    return [f"  what the writes changed (per resource): {shown}"]


def lines_floor(f: Mapping[str, Any]) -> list[str]:
    ready = _f(f["readySeconds"], 2, " s") if f["allReady"] else "TIMEOUT"
    return [
        f"floor N={f['n']}: all Ready in {ready} (create + finalizer + one status write per object, aiohttp); "
        f"harness {_f(_proc(f, 'harness', 'cpuSeconds'), 1, ' CPU s')}, kube-apiserver "
        f"{_f(_proc(f, 'kube-apiserver', 'cpuSeconds'), 1, ' CPU s')}, etcd {_f(_proc(f, 'etcd', 'cpuSeconds'), 1, ' CPU s')}"
    ]


def lines_latency(lat: Mapping[str, Any]) -> list[str]:
    s = lat["seconds"]
    return [
        f"latency {lat['label']} (caps {lat['capabilities']}, provisioning {lat['provisioningSeconds']:g} s, "
        f"Retry-After {lat['retryAfterSeconds']} s): p50 {_f(s['p50'], 2, ' s')}, p95 {_f(s['p95'], 2, ' s')}, "
        f"max {_f(s['max'], 2, ' s')} over {s['n']} (failures {lat['failures']}); Azure alone ≥ "
        f"{lat['azureMinimumSeconds']:g} s → operator adds p50 {_f(lat['operatorAddsP50'], 2, ' s')}; "
        f"VMProvisioned (create handler done) p50 {_f(lat['vmProvisionedSeconds']['p50'], 2, ' s')}, "
        f"p95 {_f(lat['vmProvisionedSeconds']['p95'], 2, ' s')}"
    ]


def lines_steady(st: Mapping[str, Any]) -> list[str]:
    return [
        f"steady N={st['n']}, checkInterval {st['intervalSeconds']} s, {st['intervals']} intervals "
        f"({_f(st['measuredSeconds'], 0, ' s')}): Kubernetes writes {_f(st['kubeWritesPerResourcePerHour'], 2)}"
        f"/resource/h (write requests {_f(st['kubeWriteRequestsPerResourcePerHour'], 2)}/resource/h); "
        f"ARM reads {_f(st['armReadsPerVmPerInterval'], 2)}/VM/interval; operator CPU "
        f"{_f(_proc(st, 'operator', 'cpuPercent'), 1, '%')}, RSS {_f(_proc(st, 'operator', 'rssMiB'), 0, ' MiB')}",
        "  ARM requests/VM over the window: "
        + ", ".join(f"{k} {v:g}" for k, v in st["arm"]["perResource"].items()),
        *lines_write_kinds(st["kube"]),
    ]


def lines_throttled(t: Mapping[str, Any]) -> list[str]:
    ready = _f(t["readySeconds"], 1, " s") if t["allReady"] else f"TIMEOUT ({t['readyCount']}/{t['n']} Ready)"
    return [
        f"throttled N={t['n']}, subscription reads {t['bucket']['capacity']}/{t['bucket']['refillPerMinute']} per min: "
        f"all Ready in {ready} (the bucket alone needs ≥ {_f(t['budgetMinimumSeconds'], 0, ' s')}); "
        f"{t['throttled429']} × 429 of {t['reads']} reads ({_f(100 * (t['throttledShareOfReads'] or 0), 0, '%')}); "
        f"reads attempted peak {t['readsAttemptedPeakPerMinute']}/min, accepted peak "
        f"{t['readsAcceptedPeakPerMinute']}/min (bucket allows {t['bucketAllowsPerMinute']}); "
        f"Kubernetes writes {_f(t.get('kubeWritesPerResource'), 2)}/resource",
        *lines_write_kinds({"writeKindsPerResource": t.get("kubeWriteKindsPerResource")}),
    ]


def scale_rows(sc: Mapping[str, Any]) -> list[list[str]]:
    """The scale scenario as (figure, value) rows: steady state, then the restart."""
    st, re = sc["steady"], sc["restart"]
    op = st["processes"].get("operator") or {}
    return [
        ["all Ready after create (s)", _f(sc["readySeconds"], 0) if sc["allReady"] else f"timeout ({sc['readyCount']} Ready)"],
        ["Kubernetes writes / object from create to the steady window", _f(sc["create"]["kube"]["watchedWritesPerResource"], 2)],
        [f"steady ({st['intervals']} intervals, {_f(st['measuredSeconds'], 0)} s): operator RSS / peak (MiB)",
         f"{_f(op.get('rssMiB'), 0)} / {_f(op.get('peakRssMiB'), 0)}"],
        ["steady: operator CPU % of one core", _f(op.get("cpuPercent"), 1)],
        ["steady: operator CPU ms / object / interval", _f(1000 * (st.get("operatorCpuSecondsPerObjectPerInterval") or 0), 2)],
        ["steady: ARM reads / VM / interval", _f(st.get("armReadsPerVmPerInterval"), 3)],
        ["steady: ARM requests / VM over the window", ", ".join(f"`{k}` {v:g}" for k, v in st["arm"]["perResource"].items())],
        ["with one `VirtualMachines_ListAll?statusOnly=true` per interval: reads / VM / interval",
         f"{_f(st.get('listAllReadsPerVmPerInterval'), 6)} (operator uses it: {'yes' if sc['listAllUsedByOperator'] else 'no'})"],
        ["steady: kube-apiserver requests / s (all verbs)", _f(st.get("apiRequestsPerSecond"), 2)],
        ["steady: Kubernetes writes / object / hour", _f(st["kubeWritesPerResourcePerHour"], 3)],
        ["restart: operator RSS at start (MiB)", _f(re.get("operatorStartRssMiB"), 0)],
        ["restart: read Azure once per object after (s)", _f(re.get("readAzureOncePerObjectAfterSeconds"), 1)],
        [f"restart ({_f(re['measuredSeconds'], 0)} s): Kubernetes writes / object", _f(re["kube"]["watchedWritesPerResource"], 3)],
        ["restart: ARM reads / object", _f(re["arm"]["readsPerResource"], 2)],
        ["restart: operator CPU (s) / peak RSS (MiB)",
         f"{_f(_proc(re, 'operator', 'cpuSeconds'), 1)} / {_f(_proc(re, 'operator', 'peakRssMiB'), 0)}"],
    ]  # fmt: skip


def lines_scale(sc: Mapping[str, Any]) -> list[str]:
    head = f"scale N={sc['n']}, checkInterval {sc['checkInterval']} (10m × {sc['timeScale']:g}):"
    return [head, *(f"  {k}: {v}" for k, v in scale_rows(sc))]


def shard_rows(sh: Mapping[str, Any]) -> list[list[Any]]:
    """One row per shard: namespaces, objects, VMs it created (its own / the other's), ARM requests, CPU, RSS."""
    return [
        [
            s,
            ", ".join(e["namespaces"]),
            e["objects"],
            e["createdVms"],
            e["createdOthersVms"],
            e["armRequests"],
            _f((e.get("process") or {}).get("cpuSeconds"), 1),
            _f((e.get("process") or {}).get("peakRssMiB"), 0),
        ]
        for s, e in sh["shards"].items()
    ]


SHARD_HEADER = (
    "shard", "namespaces", "objects", "VMs it created", "VMs of the other shard it created",
    "ARM requests (by resource name)", "CPU (s)", "peak RSS (MiB)",
)  # fmt: skip


def lines_shards(sh: Mapping[str, Any]) -> list[str]:
    ready = _f(sh["readySeconds"], 1, " s") if sh["allReady"] else "TIMEOUT"
    puts = ", ".join(f"{k} PUT(s): {v} objects" for k, v in sh["vmPutsPerObject"].items())
    return [
        f"shards N={sh['n']}: all Ready in {ready}; VM PUTs per object: {puts}; "
        f"ARM requests {sh['armRequestsByShard']}; live peers per namespace {sh.get('peersPerNamespace')}",
        *(f"  shard {row[0]}: " + ", ".join(f"{h} {v}" for h, v in zip(SHARD_HEADER[1:], row[1:], strict=True))
          for row in shard_rows(sh)),
    ]  # fmt: skip


# --------------------------------------------------------------------------- Markdown


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
    ]


def markdown(doc: Mapping[str, Any]) -> str:
    m, r = doc["machine"], doc["results"]
    out = [
        f"# Benchmark {doc['date']} ({doc['git']['sha']}{', uncommitted changes' if doc['git']['dirty'] else ''}; "
        f"{doc['mode']} run, {_f(doc['durationSeconds'], 0, ' s')})",
        "",
        *_table(
            ["machine", ""],
            [
                ["cores", m["cores"]],
                ["memory", f"{m['memoryGiB']} GiB"],
                ["CPU", m["cpuModel"] or "—"],
                ["Python", m["python"]],
                [
                    "load average (1 min) before / after",
                    f"{doc.get('loadAverage', {}).get('start')} / {doc.get('loadAverage', {}).get('end')}",
                ],
                ["Kubernetes", m["kubernetes"] or "—"],
                [
                    "kopf / aiohttp / azure-core",
                    f"{m['packages'].get('kopf')} / {m['packages'].get('aiohttp')} / "
                    f"{m['packages'].get('azure-core')}",
                ],
            ],
        ),
        "",
    ]
    floors = {f["n"]: f for f in r.get("floor", [])}
    if r.get("burst"):
        out += [
            "## Burst and floor (Azure latency 0: provisioning 0 s, Retry-After 1 s; capabilities [Hotpatch])",
            "",
        ]
        rows = []
        for b in [*r["burst"], *r.get("burstVariants", [])]:
            f = floors.get(b["n"])
            rows.append(
                [
                    f"{b['n']} ({b['variant']})" if b.get("variant") else b["n"],
                    _f(b["readySeconds"], 1) if b["allReady"] else f"timeout ({b['readyCount']} Ready)",
                    _f(f["readySeconds"], 2) if f else "—",
                    _f(burst_floor_ratio(b, f), 1),
                    _f(_proc(b, "operator", "cpuSeconds"), 1),
                    _f(b["operatorCpuMsPerResource"], 1),
                    _f(_proc(b, "operator", "peakRssMiB"), 0),
                    _f(b["processes"].get("machineBusyPercent"), 0),
                    _f(b["kube"]["watchedWritesUntilReadyPerResource"], 2),
                    _f(b["kube"]["vmWriteRequestsPerResource"], 2),
                    _f(b["kube"]["eventsPerResource"], 2),
                    _f(b["arm"]["readsPerResource"], 2),
                    _f(b["arm"]["writesPerResource"], 2),
                ]
            )
        out += _table(
            [
                "N",
                "all Ready (s)",
                "floor (s)",
                "ratio",
                "operator CPU (s)",
                "CPU ms/resource",
                "peak RSS (MiB)",
                "machine busy %",
                "writes/res (watch)",
                "write requests/res",
                "Events/res",
                "ARM reads/res",
                "ARM writes/res",
            ],
            rows,
        )
        last = r["burst"][-1]
        kinds = last["kube"].get("writeKindsPerResource") or {}
        out += [
            "",
            f"ARM requests per resource at N={last['n']}: "
            + ", ".join(f"`{k}` {v:g}" for k, v in last["arm"]["perResource"].items()),
            "",
            f"What each Kubernetes write changed at N={last['n']} (per resource): "
            + "; ".join(f"{v:g}× `{k}`" for k, v in kinds.items()),
            "",
        ]
        for b in r.get("burstVariants", []):
            out += [f"Variant `{b['variant']}`: operator environment {b['operatorEnv']}.", ""]
    if r.get("latency"):
        out += ["## Latency (one resource, apply → Ready)", ""]
        out += _table(
            [
                "variant",
                "capabilities",
                "provisioning (s)",
                "Retry-After (s)",
                "reps",
                "p50 (s)",
                "p95 (s)",
                "max (s)",
                "Azure alone (s)",
                "operator adds p50 (s)",
                "VMProvisioned p50 (s)",
            ],
            [
                [
                    lat["label"],
                    ", ".join(lat["capabilities"]) or "[]",
                    _f(lat["provisioningSeconds"], 0),
                    lat["retryAfterSeconds"],
                    lat["seconds"]["n"],
                    _f(lat["seconds"]["p50"], 2),
                    _f(lat["seconds"]["p95"], 2),
                    _f(lat["seconds"]["max"], 2),
                    _f(lat["azureMinimumSeconds"], 0),
                    _f(lat["operatorAddsP50"], 2),
                    _f((lat.get("vmProvisionedSeconds") or {}).get("p50"), 2),
                ]
                for lat in r["latency"]
            ],
        )
        out.append("")
    st = r.get("steady")
    if st:
        out += [
            f"## Steady state (N={st['n']}, checkInterval {st['intervalSeconds']} s, "
            f"{st['intervals']} intervals = {_f(st['measuredSeconds'], 0)} s)",
            "",
        ]
        out += _table(
            [
                "Kubernetes writes/res/h",
                "write requests/res/h",
                "ARM reads/VM/interval",
                "operator CPU %",
                "operator RSS (MiB)",
                "ARM simulator CPU %",
                "machine busy %",
            ],
            [
                [
                    _f(st["kubeWritesPerResourcePerHour"], 2),
                    _f(st["kubeWriteRequestsPerResourcePerHour"], 2),
                    _f(st["armReadsPerVmPerInterval"], 2),
                    _f(_proc(st, "operator", "cpuPercent"), 1),
                    _f(_proc(st, "operator", "rssMiB"), 0),
                    _f(_proc(st, "armsim", "cpuPercent"), 1),
                    _f(st["processes"].get("machineBusyPercent"), 0),
                ]
            ],
        )
        out.append("")
    t = r.get("throttled")
    if t:
        out += [
            f"## Throttled Azure (N={t['n']}, subscription reads {t['bucket']['capacity']} + "
            f"{t['bucket']['refillPerMinute']}/min, a tenth of ARM's)",
            "",
        ]
        out += _table(
            [
                "all Ready",
                "time (s)",
                "bucket alone needs (s)",
                "429s",
                "reads",
                "429 share",
                "attempted peak/min",
                "accepted peak/min",
                "bucket allows/min",
                "Kubernetes writes/res",
            ],
            [
                [
                    _f(t["allReady"]),
                    _f(t["readySeconds"], 1),
                    _f(t["budgetMinimumSeconds"], 0),
                    t["throttled429"],
                    t["reads"],
                    _f(t["throttledShareOfReads"], 2),
                    t["readsAttemptedPeakPerMinute"],
                    t["readsAcceptedPeakPerMinute"],
                    t["bucketAllowsPerMinute"],
                    _f(t.get("kubeWritesPerResource"), 2),
                ]
            ],
        )
        out.append("")
    sh = r.get("shards")
    if sh:
        out += [f"## Shards (two operators over N={sh['n']}, one simulator)", "", *lines_shards(sh)[:1], ""]
        out += [*_table(SHARD_HEADER, shard_rows(sh)), ""]
    sc = r.get("scale")
    if sc:
        out += [
            f"## Scale (N={sc['n']}, checkInterval 10m × {sc['timeScale']:g} = {sc['checkInterval']})",
            "",
        ]
        out += [*_table(["figure", "value"], scale_rows(sc)), ""]
    checks = doc.get("targets") or []
    if checks:
        out += ["## Targets", ""]
        out += _table(
            ["target", "wanted", "measured", "met"],
            [
                [
                    c["name"],
                    c["target"],
                    _f(c["measured"], 2),
                    {True: "yes", False: "**no**", None: "—"}[c["met"]],
                ]
                for c in checks
            ],
        )
        out.append("")
    base = doc.get("baseline")
    if base:
        out += [
            f"## Before ({base['git']['sha']}) and after ({doc['git']['sha']}), same machine, same run",
            "",
            "Every scenario above ran first with the operator of the earlier revision (its package on the "
            "operator process's PYTHONPATH; harness, simulator and control plane unchanged), then with "
            "this checkout's. The sections above are the after run; the before run's figures are in the "
            "JSON under `baseline`.",
            "",
        ]
        out += _table(
            ["figure", "before", "after", "target", "met after"], before_after_rows(base["targets"], checks)
        )
        out.append("")
    return "\n".join(out)


def python_version() -> str:
    return sys.version.split()[0]
