"""Pacing on ARM's ``x-ms-ratelimit-remaining-subscription-reads|writes`` before a 429 arrives (bench/README.md).

ARM meters each subscription and principal with token buckets and reports what is left on every
response. A fleet that only reacts to 429s spends most of its budget being refused (measured: 81% of
reads answered 429 under a tenth of ARM's read budget). ``Pacer`` keeps a local estimate of the bucket:
the last reported remaining count, plus what it has learnt the bucket refills per second, minus the
requests in flight; a request waits while that estimate is at or below a reserve. Pure (the clock is
passed in), so it is unit-tested; ``PacingGate`` in ``clients`` is the thin async shell.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

READS_HEADERS = (
    "x-ms-ratelimit-remaining-subscription-reads",
    "x-ms-ratelimit-remaining-subscription-global-reads",
)
WRITES_HEADERS = (
    "x-ms-ratelimit-remaining-subscription-writes",
    "x-ms-ratelimit-remaining-subscription-global-writes",
)


def remaining_of(headers: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    """The smallest remaining count among ``names`` (ARM may send a regional and a global one)."""
    values = []
    for name in names:
        raw = headers.get(name)
        if raw is not None and raw.strip().isdigit():
            values.append(int(raw.strip()))
    return min(values) if values else None


@dataclass
class Pacer:
    """A local mirror of one ARM bucket, corrected by every reported remaining count."""

    initial_rate: float = 1.0  # tokens/s assumed until a refill has been measured
    min_rate: float = 0.1  # never assume slower: a bucket drained by others must not stall us for long
    max_wait: float = 10.0  # one request at least this often: its answer corrects the estimate
    window: float = 5.0  # seconds over which the refill rate is measured
    remaining: float | None = None  # last reported
    at: float = 0.0  # when it was reported
    in_flight: int = 0  # let through, not yet answered
    rate: float | None = None  # measured refill per second
    peak: float = 0.0  # the most ever reported: about the bucket's capacity
    _window_at: float | None = None
    _window_remaining: float = 0.0
    _window_accepted: int = 0

    @property
    def reserve(self) -> float:
        """Tokens left unspent: room for other clients of the same principal and for estimation error."""
        return max(2.0, 0.1 * self.peak)

    def tokens(self, now: float) -> float | None:
        if self.remaining is None:
            return None
        rate = self.rate if self.rate is not None else self.initial_rate
        refilled = min(self.peak, self.remaining + rate * max(0.0, now - self.at))
        return refilled - self.in_flight

    def delay(self, now: float) -> float:
        """Seconds to wait before sending one more request; 0 means send now (then call ``sending``)."""
        tokens = self.tokens(now)
        if tokens is None or tokens > self.reserve:
            return 0.0
        rate = self.rate if self.rate is not None else self.initial_rate
        return min(self.max_wait, (self.reserve + 1.0 - tokens) / max(rate, self.min_rate))

    def sending(self) -> None:
        self.in_flight += 1

    def answered(self, remaining: int | None, now: float, *, accepted: bool) -> None:
        """A response arrived (``accepted``: not a 429), with the remaining count ARM reported, if any."""
        self.in_flight = max(0, self.in_flight - 1)
        if remaining is None:
            return
        self.peak = max(self.peak, float(remaining))
        self._learn(float(remaining), now, accepted)
        self.remaining, self.at = float(remaining), now

    def _learn(self, remaining: float, now: float, accepted: bool) -> None:
        """Refill = (change in remaining + requests the bucket accepted) / time, over ``window`` seconds;
        only while the bucket is below its peak (a full bucket hides its refill)."""
        full = 0.9 * self.peak
        if self._window_at is None or remaining >= full or self._window_remaining >= full:
            self._window_at, self._window_remaining, self._window_accepted = now, remaining, 0
            return
        if accepted:
            self._window_accepted += 1
        elapsed = now - self._window_at
        if elapsed < self.window:
            return
        sample = max(0.0, (remaining - self._window_remaining + self._window_accepted) / elapsed)
        self.rate = sample if self.rate is None else 0.5 * self.rate + 0.5 * sample
        self._window_at, self._window_remaining, self._window_accepted = now, remaining, 0
