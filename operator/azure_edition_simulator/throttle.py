"""Token buckets, as ARM and Compute describe them (request-limits-and-throttling, compute-throttling-limits).

ARM: per subscription *and* principal, reads (GET) burst 250 refilled 25/s, writes burst 200 refilled
10/s; every response carries ``x-ms-ratelimit-remaining-subscription-reads|writes``.
Compute, per VM: low-cost GETs (GET VM, instanceView) refilled 12/min, "Update VM" (PUT/PATCH on an
existing VM, Run Command) refilled 4/min with 12 tokens, guest-patch operations (assessPatches,
installPatches) refilled 2/min with 6 tokens; responses carry ``x-ms-ratelimit-remaining-resource``.
The low-cost-GET bucket size (36 = 3 minutes of refill, like the other two) is an assumption.
All numbers are configurable; the clock is injectable so the arithmetic is testable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

SUBSCRIPTION_READS = "subscriptionReads"
SUBSCRIPTION_WRITES = "subscriptionWrites"
VM_GET = "vmGet"
VM_UPDATE = "vmUpdate"
VM_GUEST_PATCH = "vmGuestPatch"

# The policy names reported in x-ms-ratelimit-remaining-resource and 429 details.
COMPUTE_POLICY_NAMES = {
    VM_GET: "Microsoft.Compute/GetVM",
    VM_UPDATE: "Microsoft.Compute/UpdateVM",
    VM_GUEST_PATCH: "Microsoft.Compute/VMGuestPatchOperations",
}


@dataclass(frozen=True)
class BucketSpec:
    """Capacity and refill rate of one bucket."""

    capacity: float
    refill_per_second: float

    def to_dict(self) -> dict[str, float]:
        return {"capacity": self.capacity, "refillPerSecond": self.refill_per_second}

    @classmethod
    def from_dict(cls, data: dict[str, Any], default: BucketSpec) -> BucketSpec:
        capacity = float(data.get("capacity", default.capacity))
        if "refillPerMinute" in data:
            refill = float(data["refillPerMinute"]) / 60.0
        else:
            refill = float(data.get("refillPerSecond", default.refill_per_second))
        return cls(capacity=capacity, refill_per_second=refill)


def _default_buckets() -> dict[str, BucketSpec]:
    return {
        SUBSCRIPTION_READS: BucketSpec(250, 25),
        SUBSCRIPTION_WRITES: BucketSpec(200, 10),
        VM_GET: BucketSpec(36, 12 / 60),
        VM_UPDATE: BucketSpec(12, 4 / 60),
        VM_GUEST_PATCH: BucketSpec(6, 2 / 60),
    }


@dataclass(frozen=True)
class ThrottleConfig:
    """Whether throttling is on and the bucket specs."""

    enabled: bool = True
    buckets: dict[str, BucketSpec] = field(default_factory=_default_buckets)

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "buckets": {k: v.to_dict() for k, v in self.buckets.items()}}

    def merged(self, patch: dict[str, Any]) -> ThrottleConfig:
        """A copy with the given JSON fields changed (unknown bucket names are rejected)."""
        buckets = dict(self.buckets)
        for name, spec in (patch.get("buckets") or {}).items():
            if name not in buckets:
                raise ValueError(f"unknown bucket {name!r}; known: {sorted(buckets)}")
            buckets[name] = BucketSpec.from_dict(spec, buckets[name])
        enabled = bool(patch["enabled"]) if "enabled" in patch else self.enabled
        return replace(self, enabled=enabled, buckets=buckets)


@dataclass
class Bucket:
    """A token bucket filled to capacity when first used."""

    spec: BucketSpec
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.spec.capacity, self.tokens + elapsed * self.spec.refill_per_second)
        self.updated = now

    def seconds_until_token(self) -> float:
        if self.tokens >= 1:
            return 0.0
        if self.spec.refill_per_second <= 0:
            return 3600.0
        return (1 - self.tokens) / self.spec.refill_per_second


@dataclass(frozen=True)
class Decision:
    """Outcome of taking a token: allowed, tokens left, and for a refusal the seconds to wait."""

    allowed: bool
    remaining: int
    retry_after: int
    bucket: str
    capacity: int


class Throttler:
    """All buckets of the simulator, keyed by (bucket kind, scope key)."""

    def __init__(self, config: ThrottleConfig | None = None, clock: Callable[[], float] = time.monotonic):
        self.config = config or ThrottleConfig()
        self._clock = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self.throttled_total = 0

    def configure(self, config: ThrottleConfig) -> None:
        """Apply new specs; existing buckets keep their tokens, capped to the new capacity."""
        self.config = config
        for (kind, _), bucket in self._buckets.items():
            bucket.spec = config.buckets[kind]
            bucket.tokens = min(bucket.tokens, bucket.spec.capacity)

    def reset(self) -> None:
        """Forget all buckets (they start full again)."""
        self._buckets.clear()

    def take(self, kind: str, key: str) -> Decision:
        """Consume one token from the bucket ``kind`` for ``key`` (or refuse)."""
        spec = self.config.buckets[kind]
        now = self._clock()
        bucket = self._buckets.get((kind, key))
        if bucket is None:
            bucket = Bucket(spec=spec, tokens=spec.capacity, updated=now)
            self._buckets[(kind, key)] = bucket
        bucket.refill(now)
        if not self.config.enabled:
            return Decision(True, int(bucket.tokens), 0, kind, int(spec.capacity))
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return Decision(True, int(bucket.tokens), 0, kind, int(spec.capacity))
        self.throttled_total += 1
        wait = max(1, math.ceil(bucket.seconds_until_token()))
        return Decision(False, 0, wait, kind, int(spec.capacity))

    def snapshot(self) -> dict[str, Any]:
        """Current token counts, for the control API."""
        now = self._clock()
        out: dict[str, Any] = {}
        for (kind, key), bucket in self._buckets.items():
            bucket.refill(now)
            out.setdefault(kind, {})[key] = round(bucket.tokens, 3)
        return {"config": self.config.to_dict(), "tokens": out, "throttledTotal": self.throttled_total}


def config_from_dict(data: dict[str, Any]) -> ThrottleConfig:
    """A config from control-API JSON, starting from the defaults."""
    return ThrottleConfig().merged(data)


__all__ = [
    "COMPUTE_POLICY_NAMES",
    "SUBSCRIPTION_READS",
    "SUBSCRIPTION_WRITES",
    "VM_GET",
    "VM_GUEST_PATCH",
    "VM_UPDATE",
    "BucketSpec",
    "Decision",
    "ThrottleConfig",
    "Throttler",
    "config_from_dict",
]
