"""CPU time and memory of processes and of the machine, read from /proc (no psutil needed).

The parsers are pure (text in, numbers out); ``ProcessMeter`` and ``MachineMeter`` only read files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks_of_stat(stat_text: str) -> int:
    """utime + stime (clock ticks, all threads) from /proc/<pid>/stat; the name may contain spaces."""
    fields = stat_text.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def kib_of_status(status_text: str, key: str) -> int:
    """A ``kB`` line of /proc/<pid>/status, e.g. VmRSS or VmHWM (the peak resident set)."""
    for line in status_text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise KeyError(key)


def machine_ticks(proc_stat_text: str) -> tuple[int, int]:
    """(busy, total) clock ticks over all CPUs from the first line of /proc/stat."""
    fields = proc_stat_text.splitlines()[0].split()
    assert fields[0] == "cpu"
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def mem_total_bytes(meminfo_text: str) -> int:
    return kib_of_status(meminfo_text, "MemTotal") * 1024


@dataclass(frozen=True)
class ProcessSample:
    """One reading of a process: CPU seconds so far, current and peak resident set (bytes)."""

    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int


def sample_process(pid: int) -> ProcessSample | None:
    """The process's numbers, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        return ProcessSample(
            cpu_seconds=cpu_ticks_of_stat(stat) / CLOCK_TICKS,
            rss_bytes=kib_of_status(status, "VmRSS") * 1024,
            peak_rss_bytes=kib_of_status(status, "VmHWM") * 1024,
        )
    except (OSError, KeyError, IndexError, ValueError):
        return None


def sample_machine() -> tuple[int, int]:
    return machine_ticks(Path("/proc/stat").read_text())


@dataclass
class Window:
    """CPU used by named processes (and the machine) between ``start()`` and ``stop()``."""

    pids: dict[str, int]
    started: dict[str, ProcessSample | None] | None = None
    machine_started: tuple[int, int] | None = None

    def start(self) -> Window:
        self.started = {name: sample_process(pid) for name, pid in self.pids.items()}
        self.machine_started = sample_machine()
        return self

    def stop(self, wall_seconds: float) -> dict[str, object]:
        """CPU seconds, CPU % of one core, RSS and peak RSS per process; machine busy % of all cores."""
        assert self.started is not None and self.machine_started is not None
        out: dict[str, object] = {}
        for name, pid in self.pids.items():
            before, after = self.started.get(name), sample_process(pid)
            if before is None or after is None:
                continue
            cpu = after.cpu_seconds - before.cpu_seconds
            out[name] = {
                "cpuSeconds": round(cpu, 2),
                "cpuPercent": round(100 * cpu / wall_seconds, 1) if wall_seconds > 0 else None,
                "rssMiB": round(after.rss_bytes / 2**20, 1),
                "peakRssMiB": round(after.peak_rss_bytes / 2**20, 1),
            }
        busy0, total0 = self.machine_started
        busy1, total1 = sample_machine()
        if total1 > total0:
            out["machineBusyPercent"] = round(100 * (busy1 - busy0) / (total1 - total0), 1)
        return out
