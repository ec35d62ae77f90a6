"""Pure arithmetic on what the benchmarks observe: percentiles, counter deltas, rates.

Everything here takes plain data (numbers, Prometheus text, the simulator's counters JSON) and
returns plain data, so it is unit-tested without a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY", "CREATE", "UPDATE"})
REQUEST_TOTAL = "apiserver_request_total"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary(values: Sequence[float], digits: int = 3) -> dict[str, float | int | None]:
    """n, min, p50, p95, max of a sample (seconds or counts)."""

    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(values),
        "min": rounded(min(values)) if values else None,
        "p50": rounded(percentile(values, 50)),
        "p95": rounded(percentile(values, 95)),
        "max": rounded(max(values)) if values else None,
    }


# --------------------------------------------------------------------------- kube-apiserver /metrics


RequestKey = tuple[str, str, str, str]  # (verb, resource, subresource, code)


def apiserver_request_totals(metrics_text: str) -> dict[RequestKey, float]:
    """``apiserver_request_total`` by (verb, resource, subresource, code), other labels summed.

    Only the matching lines are parsed: the full /metrics page is several MB of histograms.
    """
    lines = [line for line in metrics_text.splitlines() if line.startswith(REQUEST_TOTAL + "{")]
    totals: dict[RequestKey, float] = {}
    for family in text_string_to_metric_families("\n".join(lines) + "\n"):
        for sample in family.samples:
            if sample.name != REQUEST_TOTAL:
                continue
            labels = sample.labels
            key = (
                labels.get("verb", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
                labels.get("code", ""),
            )
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def write_requests(
    before: Mapping[RequestKey, float], after: Mapping[RequestKey, float], resources: Iterable[str]
) -> dict[str, int]:
    """Write requests made between two scrapes, as ``"VERB resource[/subresource]": count`` (any code)."""
    wanted = set(resources)
    out: dict[str, int] = {}
    for key, value in after.items():
        verb, resource, subresource, _code = key
        if verb not in WRITE_VERBS or resource not in wanted:
            continue
        delta = round(value - before.get(key, 0.0))
        if delta <= 0:
            continue
        name = f"{verb} {resource}" + (f"/{subresource}" if subresource else "")
        out[name] = out.get(name, 0) + delta
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- ARM simulator counters


def arm_operations(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per operation: requests, 429s and status counts between two ``/counters`` snapshots."""
    out: dict[str, dict[str, int]] = {}
    old_ops = before.get("operations", {})
    for name, entry in after.get("operations", {}).items():
        old = old_ops.get(name, {"count": 0, "throttled": 0, "statuses": {}})
        count = int(entry["count"]) - int(old["count"])
        if count <= 0:
            continue
        statuses = {
            code: int(n) - int(old["statuses"].get(code, 0))
            for code, n in entry["statuses"].items()
            if int(n) - int(old["statuses"].get(code, 0)) > 0
        }
        out[name] = {
            "count": count,
            "throttled": int(entry["throttled"]) - int(old["throttled"]),
            **{f"status{code}": n for code, n in sorted(statuses.items())},
        }
    return dict(sorted(out.items()))


def per_resource(counts: Mapping[str, Mapping[str, int] | int], resources: int) -> dict[str, float]:
    """Counts divided by the number of resources (for ``arm_operations`` entries: their ``count``)."""
    if resources <= 0:
        return {}
    return {
        name: round((value["count"] if isinstance(value, Mapping) else value) / resources, 2)
        for name, value in counts.items()
    }


def arm_reads(operations: Mapping[str, Mapping[str, int]], method_of: Mapping[str, str]) -> int:
    """ARM read requests (GETs, LRO polls included: Azure's read bucket counts them) in ``arm_operations``."""
    return sum(
        int(v["count"])
        for name, v in operations.items()
        if method_of.get(name) == "GET" and not name.startswith("Identity_")
    )


def arm_writes(operations: Mapping[str, Mapping[str, int]], method_of: Mapping[str, str]) -> int:
    """ARM write requests (PUT, PATCH, POST, DELETE) in ``arm_operations``; identity calls excluded."""
    return sum(
        int(v["count"])
        for name, v in operations.items()
        if method_of.get(name, "GET") != "GET" and not name.startswith("Identity_")
    )


def per_hour(count: float, resources: int, seconds: float) -> float | None:
    """``count`` events over ``seconds`` for ``resources`` objects, as events per resource per hour."""
    if resources <= 0 or seconds <= 0:
        return None
    return round(count / resources * 3600.0 / seconds, 3)
