"""How long Azure takes, and what it says about when to look again: the ``instant`` and ``azure`` profiles.

Why: an operator tuned to one-second operations and ``Retry-After: 1`` polls too eagerly and times out too
early on real Azure. The ``azure`` profile draws each operation's duration from the ranges real Azure
shows (issue #11; VM create 30–60 s, update 5–15 s, delete 15–30 s, NIC and public IP 2–10 s, Run Command
20–60 s, assessPatches 30–120 s) and answers ``Retry-After`` of 10–35 s, or none at all on the responses
where real Azure often omits it (many VM update and NIC PUTs, some polls), so a client falls back to its
own polling interval. ``time_scale`` shrinks every duration and Retry-After proportionally (e.g. 0.05 in
CI; Retry-After stays whole seconds, rounded). Choices come from one ``random.Random(seed)``: the same seed and the same requests give the same
durations and headers. ``instant`` is the simulator's historical behaviour: ``provisioning_seconds`` for
Compute operations, network operations done at once, ``Retry-After: retry_after_seconds`` everywhere.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

PROFILES = ("instant", "azure")

# (low, high) seconds on real Azure, per operation kind (the kinds of world.new_operation).
AZURE_DURATIONS: dict[str, tuple[float, float]] = {
    "vm.create": (30, 60),
    "vm.update": (5, 15),
    "vm.delete": (15, 30),
    "network.put": (2, 10),
    "network.delete": (2, 10),
    "vm.runCommand": (20, 60),
    "runCommand.put": (20, 60),
    "runCommand.delete": (2, 10),
    "vm.assessPatches": (30, 120),
    "vm.installPatches": (60, 300),
    "vm.reboot": (60, 180),  # a reboot that installPatches (rebootSetting IfRequired/Always) performs
    "disk.delete": (2, 10),
    "disk.update": (1, 5),
}
# Instant profile: these finish at once; every other kind takes ``provisioning_seconds``.
INSTANT_ZERO = ("network.put", "network.delete", "runCommand.delete", "disk.delete", "disk.update")

RETRY_AFTER_RANGE = (10, 35)
# Probability that real Azure sends no Retry-After at all, per kind of response ("poll": a running poll).
OMIT_RETRY_AFTER: dict[str, float] = {"vm.update": 0.5, "network.put": 0.5, "poll": 0.25}


@dataclass
class Timing:
    """The active profile and its random source (one per simulator; reseeded by :meth:`configure`)."""

    profile: str = "instant"
    time_scale: float = 1.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.configure(self.profile, self.time_scale, self.seed)

    def configure(self, profile: str, time_scale: float = 1.0, seed: int | None = None) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile {profile!r}: use one of {', '.join(PROFILES)}")
        if not time_scale > 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        self.profile, self.time_scale, self.seed = profile, float(time_scale), seed
        self.rng = random.Random(seed)

    @property
    def realistic(self) -> bool:
        return self.profile == "azure"

    def duration(self, kind: str, provisioning_seconds: float) -> float:
        """Seconds until an operation of ``kind`` finishes."""
        if not self.realistic:
            return 0.0 if kind in INSTANT_ZERO else provisioning_seconds
        low, high = AZURE_DURATIONS.get(kind, (1, 5))
        return self.rng.uniform(low, high) * self.time_scale

    def retry_after(self, kind: str, retry_after_seconds: int) -> str | None:
        """The Retry-After header value for a response about an operation of ``kind`` (None: omit it)."""
        if not self.realistic:
            return str(retry_after_seconds)
        if self.rng.random() < OMIT_RETRY_AFTER.get(kind, 0.0):
            return None
        seconds = self.rng.randint(*RETRY_AFTER_RANGE) * self.time_scale
        return format_seconds(seconds)

    def scaled(self, seconds: float) -> float:
        """A real-Azure wall-clock duration in this profile's time (instant: unchanged)."""
        return seconds * self.time_scale if self.realistic else seconds

    def to_dict(self) -> dict[str, object]:
        return {"profile": self.profile, "timeScale": self.time_scale, "seed": self.seed}


def format_seconds(seconds: float) -> str:
    """Whole seconds, as Azure sends them and RFC 9110 requires (the generated Network SDK parses the
    header with ``int()``). A scaled value under half a second becomes ``0``, which azure-core reads as
    "use your polling interval" (the env file scales that, see server.write_env_file)."""
    return str(round(seconds))
