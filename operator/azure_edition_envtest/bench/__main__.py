"""``python -m azure_edition_envtest.bench [--quick]``: run the benchmarks, print, write the results.

Full run (``make bench``): bursts of 100, 500 and 1000 with their floors, latency (30 repetitions
at zero Azure latency, 10 with a realistic provisioning time), steady state with 500 resources
over 10 check intervals, and a tenth of ARM's read budget with 100 resources; writes
``bench/results/<date>-<short-sha>.json`` and ``.md``. ``--quick`` (``make bench QUICK=1``)
runs the same scenarios small (N=50, a few repetitions) in about two minutes, writes to a
temporary directory unless ``--out`` is given, and exits non-zero only if a scenario failed to
produce its numbers. Timings are never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..controlplane import ControlPlane, repo_root, wait_established
from . import fleetscale, report, rotation, scenarios
from .kubeclient import Kube

REPO = repo_root() or Path.cwd()
CRD = REPO / "crds" / "azureeditionvms.azureedition.io.yaml"


@dataclass(frozen=True)
class Plan:
    """Sizes, repetitions and timeouts of one run."""

    mode: str
    burst_sizes: tuple[int, ...]
    latency_reps: int
    realistic_reps: int
    realistic_provisioning_seconds: float
    steady_n: int
    steady_interval_seconds: int
    steady_intervals: int
    throttled_n: int
    throttled_divisor: int = 10
    steady_settle_intervals: int = 2
    realistic_n: int = 1000
    realistic_time_scale: float = 0.1
    scale_n: int = 10000
    scale_time_scale: float = 0.25  # 10,000 objects: a check every 150 s (about 0.8 core at 12 ms)
    scale_intervals: int = 6
    shards_n: int = 400
    reuse_variant: bool = True
    rotation_reps: int = 5
    rotation_sources: tuple[str, ...] = ("secret", "keyvault")
    rotation_time_scale: float = 0.05  # the check interval 10 min -> 30 s; Run Command 20-60 s -> 1-3 s
    scenarios: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {"latency", "burst", "floor", "steady", "throttled", "realistic", "rotation"}
        )
    )

    def burst_timeout(self, n: int) -> float:
        return max(120.0, 0.6 * n)


FULL = Plan("full", (100, 500, 1000), 30, 10, 20.0, 500, 5, 10, 100)
QUICK = Plan(
    "quick", (50,), 3, 1, 2.0, 50, 5, 2, 10, steady_settle_intervals=1, reuse_variant=False,
    realistic_n=20, realistic_time_scale=0.05, rotation_reps=2, rotation_time_scale=0.02,
    rotation_sources=("secret",),
)  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m azure_edition_envtest.bench", description=__doc__.splitlines()[0]
    )
    p.add_argument("--quick", action="store_true", help="N=50, few repetitions, ~2 minutes (for CI)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory (default: bench/results, or a temporary one with --quick)",
    )
    p.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios: latency,burst,floor,realistic,steady,throttled,rotation,scale,shards",
    )
    p.add_argument("--sizes", default="", help="burst sizes, e.g. 100,500 (default 100,500,1000; quick 50)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="record the operator with py-spy during bursts and steady state (perturbs the figures)",
    )
    p.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the operator (repeatable), e.g. AZURE_CA_BUNDLE= to trust via SSL_CERT_FILE",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="also run the fleet-size scenarios (issue #15): scale (10,000 objects) and shards; ~1.5 h (scale alone: 89 min on 2 cores)",
    )
    p.add_argument("--scale-n", type=int, default=0, help="objects in the scale scenario (default 10000)")
    p.add_argument(
        "--scale-time-scale", type=float, default=0.0, help="every clock of the scale scenario × this (0.25)"
    )
    p.add_argument("--shards-n", type=int, default=0, help="objects in the shards scenario (default 400)")
    p.add_argument(
        "--no-reuse", action="store_true", help="skip the burst variant with AZURE_CA_BUNDLE unset"
    )
    p.add_argument("--keep-work", action="store_true", help="keep logs (operator, simulator, control plane)")
    p.add_argument(
        "--baseline",
        default="",
        metavar="REV",
        help="run every scenario first with the operator of git revision REV (before), then with this "
        "checkout's (after), on the same control plane: one results file with both and their targets",
    )
    p.add_argument(
        "--throttled-n", type=int, default=0, help="objects in the throttled scenario (default 100; quick 10)"
    )
    p.add_argument(
        "--realistic-n",
        type=int,
        default=0,
        help="objects in the realistic-timing scenario (default 1000; quick 20)",
    )
    p.add_argument(
        "--realistic-scale",
        type=float,
        default=0.0,
        help="time scale of the realistic scenario (0.1; quick 0.05)",
    )
    p.add_argument(
        "--rotation-sources",
        default="",
        help="certificate sources of the rotation scenario: secret,keyvault (default both; quick secret)",
    )
    return p.parse_args(argv)


def plan_from(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    if args.sizes:
        changes["burst_sizes"] = tuple(int(s) for s in args.sizes.split(",") if s)
    if args.throttled_n:
        changes["throttled_n"] = args.throttled_n
    if args.realistic_n:
        changes["realistic_n"] = args.realistic_n
    if args.realistic_scale:
        changes["realistic_time_scale"] = args.realistic_scale
    if args.scale:
        changes["scenarios"] = plan.scenarios | {"scale", "shards"}
    for name in ("scale_n", "scale_time_scale", "shards_n"):
        if getattr(args, name):
            changes[name] = getattr(args, name)
    if args.rotation_sources:
        changes["rotation_sources"] = tuple(x.strip() for x in args.rotation_sources.split(",") if x.strip())
    if args.no_reuse:
        changes["reuse_variant"] = False
    if args.only:
        changes["scenarios"] = frozenset(s.strip() for s in args.only.split(",") if s.strip())
    if changes:
        from dataclasses import replace

        plan = replace(plan, **changes)
    return plan


def say(lines: Sequence[str]) -> None:
    print("\n".join(lines), flush=True)


async def run(
    plan: Plan, cp: ControlPlane, work: Path, profile_dir: Path | None, operator_env: dict[str, str]
) -> dict[str, Any]:
    """Every scenario of the plan in turn; a failing scenario is recorded and the others still run."""
    results: dict[str, Any] = {"burst": [], "floor": [], "latency": []}
    errors: list[str] = []
    async with Kube(cp.server, cp.pki_dir) as kube:
        bench = scenarios.Bench(cp, kube, work, profile_dir, operator_env=operator_env)
        kubernetes = (await kube.call("GET", "/version")).get("gitVersion")

        async def attempt(label: str, step: Callable[[], Awaitable[Any]]) -> Any:
            print(f"\n==> {label}", flush=True)
            started = time.monotonic()
            try:
                outcome = await step()
            except Exception as error:  # recorded; the run goes on
                errors.append(f"{label}: {error!r}")
                print(f"    FAILED: {error!r}\n{traceback.format_exc()}", flush=True)
                return None
            print(f"    ({time.monotonic() - started:.0f} s)", flush=True)
            return outcome

        if "latency" in plan.scenarios:
            variants = [
                ("plain-zero", (), plan.latency_reps, 0.0),
                ("hotpatch-zero", ("Hotpatch",), plan.latency_reps, 0.0),
                (
                    "hotpatch-realistic",
                    ("Hotpatch",),
                    plan.realistic_reps,
                    plan.realistic_provisioning_seconds,
                ),
            ]
            for label, caps, reps, provisioning in variants:
                lat = await attempt(
                    f"latency {label}",
                    lambda c=caps, r=reps, p=provisioning, lb=label: scenarios.latency(
                        bench,
                        lb,
                        reps=r,
                        provisioning_seconds=p,
                        retry_after=1,
                        capabilities=c,
                        ready_within=60 + 3 * p,
                    ),
                )
                if lat is not None:
                    results["latency"].append(lat)
                    say(report.lines_latency(lat))
        for n in plan.burst_sizes:
            template = None
            if "burst" in plan.scenarios:
                b = await attempt(
                    f"burst N={n}", lambda n=n: scenarios.burst(bench, n, ready_within=plan.burst_timeout(n))
                )
                if b is not None:
                    template = b.pop("statusTemplate", None)
                    results["burst"].append(b)
                    say(report.lines_burst(b))
            if "floor" in plan.scenarios:
                f = await attempt(
                    f"floor N={n}", lambda n=n, t=template: scenarios.floor(bench, n, t, ready_within=120)
                )
                if f is not None:
                    results["floor"].append(f)
                    say(report.lines_floor(f) + report.lines_write_kinds(f["kube"]))
                    matching = [b for b in results["burst"] if b["n"] == n]
                    if matching:
                        ratio = report.burst_floor_ratio(matching[0], f)
                        print(f"  burst/floor N={n}: {report._f(ratio, 1)}", flush=True)
        if "burst" in plan.scenarios and plan.reuse_variant and plan.burst_sizes:
            # The same burst with the CA trusted through SSL_CERT_FILE instead of AZURE_CA_BUNDLE:
            # azure-core then keeps its connections (see bench/README.md, "connection reuse").
            n = max(plan.burst_sizes)
            variant = await attempt(
                f"burst N={n}, AZURE_CA_BUNDLE unset",
                lambda: scenarios.burst(
                    bench,
                    n,
                    ready_within=plan.burst_timeout(n),
                    variant="reuse",
                    operator_env={"AZURE_CA_BUNDLE": ""},
                ),
            )
            if variant is not None:
                variant.pop("statusTemplate", None)
                results.setdefault("burstVariants", []).append(variant)
                say(report.lines_burst(variant))
        if "realistic" in plan.scenarios:
            n, scale = plan.realistic_n, plan.realistic_time_scale
            re = await attempt(
                f"realistic Azure timing N={n}, time scale {scale:g}",
                lambda: scenarios.realistic(
                    bench, n, time_scale=scale, ready_within=plan.burst_timeout(n) + 90 * scale
                ),
            )
            if re is not None:
                re.pop("statusTemplate", None)
                results["realistic"] = re
                say(report.lines_burst(re) + report.lines_realistic(re))
        if "steady" in plan.scenarios:
            st = await attempt(
                f"steady state N={plan.steady_n}",
                lambda: scenarios.steady(
                    bench,
                    plan.steady_n,
                    interval_seconds=plan.steady_interval_seconds,
                    intervals=plan.steady_intervals,
                    settle_intervals=plan.steady_settle_intervals,
                    ready_within=plan.burst_timeout(plan.steady_n),
                ),
            )
            if st is not None:
                results["steady"] = st
                say(report.lines_steady(st))
        if "throttled" in plan.scenarios:
            th = await attempt(
                f"throttled Azure N={plan.throttled_n}",
                lambda: scenarios.throttled(
                    bench, plan.throttled_n, divisor=plan.throttled_divisor, ready_within=900
                ),
            )
            if th is not None:
                results["throttled"] = th
                say(report.lines_throttled(th))
        if "rotation" in plan.scenarios:
            for source in plan.rotation_sources:
                ro = await attempt(
                    f"SMB over QUIC rotation from {source}, time scale {plan.rotation_time_scale:g}",
                    lambda source=source: rotation.rotation(
                        kube, cp.kubeconfig, work / f"rotation-{source}", reps=plan.rotation_reps,
                        time_scale=plan.rotation_time_scale, fleet=scenarios.fleet_spec(()),
                        operator_env=operator_env, source=source,
                    ),
                )  # fmt: skip
                if ro is not None:
                    results["rotation" if source == "secret" else "rotationKeyVault"] = ro
                    say(rotation.lines(ro))
        if "shards" in plan.scenarios:
            sh = await attempt(
                f"shards: two operators over N={plan.shards_n}",
                lambda: fleetscale.shards(
                    bench, plan.shards_n, ready_within=plan.burst_timeout(plan.shards_n)
                ),
            )
            if sh is not None:
                results["shards"] = sh
                say(report.lines_shards(sh))
        if "scale" in plan.scenarios:
            sc = await attempt(
                f"scale N={plan.scale_n}, time scale {plan.scale_time_scale:g}",
                lambda: fleetscale.scale(
                    bench,
                    plan.scale_n,
                    time_scale=plan.scale_time_scale,
                    intervals=plan.scale_intervals,
                    ready_within=max(900.0, 1.2 * plan.scale_n),
                ),
            )
            if sc is not None:
                results["scale"] = sc
                say(report.lines_scale(sc))
    return {"kubernetes": kubernetes, "results": results, "errors": errors}


def missing_numbers(plan: Plan, results: dict[str, Any]) -> list[str]:
    """What a run should have produced and did not (the quick run's only assertion)."""
    missing = []
    if "burst" in plan.scenarios:
        for n in plan.burst_sizes:
            if not any(b["n"] == n and b["readySeconds"] is not None for b in results["burst"]):
                missing.append(f"burst N={n}")
    if "floor" in plan.scenarios:
        for n in plan.burst_sizes:
            if not any(f["n"] == n and f["readySeconds"] is not None for f in results["floor"]):
                missing.append(f"floor N={n}")
    if "latency" in plan.scenarios and (
        len(results["latency"]) < 3 or any(lat["seconds"]["p50"] is None for lat in results["latency"])
    ):
        missing.append("latency")
    steady = results.get("steady")
    if "steady" in plan.scenarios and (steady is None or steady["armReadsPerVmPerInterval"] is None):
        missing.append("steady")
    realistic = results.get("realistic")
    if "realistic" in plan.scenarios and (realistic is None or realistic.get("readySeconds") is None):
        missing.append("realistic")
    if "rotation" in plan.scenarios and not (
        (results.get("rotation") or {}).get("renewalToServedSeconds") or {}
    ).get("p50"):
        missing.append("rotation")
    if "shards" in plan.scenarios and not (results.get("shards") or {}).get("readySeconds"):
        missing.append("shards")
    if "scale" in plan.scenarios and not (results.get("scale") or {}).get("steady", {}).get(
        "armReadsPerVmPerInterval"
    ):
        missing.append("scale")
    throttled = results.get("throttled")
    if "throttled" in plan.scenarios and (throttled is None or not throttled["reads"]):
        missing.append("throttled")  # not finishing in time is a missed target, shown in the table
    return missing


def install_crd(cp: ControlPlane) -> None:
    def kubectl(*args: str, check: bool = True) -> str:
        return subprocess.run(
            [str(cp.kubectl), f"--kubeconfig={cp.kubeconfig}", *args],
            check=check,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    kubectl("apply", "--server-side", "-f", str(CRD))
    wait_established(lambda *a: kubectl(*a, check=False), "azureeditionvms.azureedition.io")


def baseline_source(rev: str, into: Path) -> Path:
    """The operator package as it was at ``rev`` (``git archive``), for the operator process's
    ``PYTHONPATH``: it shadows the installed one, while the harness, the simulator and the control
    plane stay this checkout's, so before and after differ only in the operator."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "operator/azure_edition_operator"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "operator"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_from(args)
    started = time.monotonic()
    load_at_start = os.getloadavg()
    today = dt.date.today().isoformat()
    git = report.git(REPO)
    out_dir: Path = args.out or (
        Path(tempfile.mkdtemp(prefix="aeo-bench-quick-")) if args.quick else REPO / "bench" / "results"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{today}-{git['sha']}"
    work = Path(tempfile.mkdtemp(prefix="aeo-bench-"))
    profile_dir = out_dir / f"{stem}-profiles" if args.profile else None
    operator_env = dict(item.split("=", 1) for item in args.operator_env)
    print(f"benchmark ({plan.mode}): logs in {work}", flush=True)
    outcome: dict[str, Any] = {"kubernetes": None, "results": {}, "errors": ["did not run"]}
    before: dict[str, Any] | None = None
    try:
        with ControlPlane.start(work_dir=work / "cluster") as cp:
            install_crd(cp)
            if args.baseline:
                source = baseline_source(args.baseline, work / "baseline")
                print(f"\n=== before: the operator of {args.baseline} ({source})", flush=True)
                env = {**operator_env, "PYTHONPATH": str(source)}
                before = asyncio.run(run(plan, cp, work / "before", profile_dir, env))
                print("\n=== after: this checkout's operator", flush=True)
            outcome = asyncio.run(run(plan, cp, work, profile_dir, operator_env))
    finally:
        if not outcome["results"]:
            print(f"benchmark interrupted; logs kept in {work}", file=sys.stderr)
    doc: dict[str, Any] = {
        "schema": 1,
        "date": today,
        "mode": plan.mode,
        "git": git,
        "machine": report.machine(outcome["kubernetes"]),
        "plan": {k: (sorted(v) if isinstance(v, frozenset) else v) for k, v in plan.__dict__.items()},
        "operatorEnv": operator_env,
        "results": outcome["results"],
        "errors": outcome["errors"],
        "durationSeconds": round(time.monotonic() - started, 1),
        # Other work on the machine skews every figure: the 1-minute load before and after the run.
        "loadAverage": {"start": round(load_at_start[0], 2), "end": round(os.getloadavg()[0], 2)},
    }
    doc["targets"] = report.targets(doc["results"])
    if before is not None:
        doc["baseline"] = {
            "git": {"rev": args.baseline, "sha": report.short_sha(REPO, args.baseline)},
            "results": before["results"],
            "errors": before["errors"],
            "targets": report.targets(before["results"]),
        }
        doc["errors"] = [*doc["errors"], *(f"before: {e}" for e in before["errors"])]
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    md_path.write_text(report.markdown(doc) + "\n")
    print("\n" + report.markdown(doc), flush=True)
    print(f"results: {json_path}\n         {md_path}", flush=True)
    missing = missing_numbers(plan, doc["results"])
    failed = bool(doc["errors"] or missing)
    if failed:
        print(
            f"benchmark incomplete: {'; '.join(doc['errors'] + [f'no numbers: {m}' for m in missing])}",
            file=sys.stderr,
        )
    if failed or args.keep_work:
        print(f"logs kept in {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
