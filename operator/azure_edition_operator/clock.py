"""The rollout's clock: wall-clock time, or for tests a clock that starts at a chosen instant and runs
faster (``OperatorConfig.clock_start``/``clock_speed``, both off by default).

Why a clock of its own: a maintenance window opens at a local time on a weekday of a baseline month, and a
soak lasts hours; an end-to-end test cannot wait for Saturday 02:00 in January. With the simulator's
``--time-scale s`` Azure's operations take ``s`` of their real time, so a clock at speed ``1/s`` keeps the
window, the soak and Azure's durations in the same proportions as in production.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Clock:
    start: dt.datetime | None = None
    speed: float = 1.0
    _origin: float = field(default_factory=time.monotonic)
    _wall: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def now(self) -> dt.datetime:
        """The current instant (aware, UTC, whole seconds)."""
        if self.start is None and self.speed == 1.0:
            return dt.datetime.now(dt.UTC).replace(microsecond=0)
        base = self.start if self.start is not None else self._wall
        if base.tzinfo is None:
            base = base.replace(tzinfo=dt.UTC)
        elapsed = dt.timedelta(seconds=(time.monotonic() - self._origin) * self.speed)
        return (base + elapsed).astimezone(dt.UTC).replace(microsecond=0)

    def real_seconds(self, span: dt.timedelta) -> float:
        """How long ``span`` of this clock's time lasts in real seconds."""
        return span.total_seconds() / self.speed
