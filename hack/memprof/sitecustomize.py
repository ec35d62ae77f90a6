"""Where a Python process's memory is, by allocation site: tracemalloc snapshots every 20 s.

Only with ``MEMPROF_DIR`` set; put this directory first on the process's ``PYTHONPATH`` (Python imports
``sitecustomize`` at start), e.g. for the operator under the bench (bench/README.md, "Where the peak
goes")::

    python -m azure_edition_envtest.bench --only burst --sizes 200 --no-reuse \
        --operator-env PYTHONPATH=hack/memprof --operator-env MEMPROF_DIR=/tmp/memprof

Writes ``<pid>-last.txt`` (the latest snapshot) and ``<pid>-max.txt`` (the one with the most traced
memory): totals, then bytes by package and by source line. Tracing roughly doubles memory and slows the
process several-fold: read the shares, not the absolute figures.
"""

import os
import threading
import time
import tracemalloc

OUT = os.environ.get("MEMPROF_DIR")


def _rss_mib() -> int:
    with open("/proc/self/status") as status:
        return next((int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS")), 0)


def _package(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/")[-1].split("/")[0]
    if "azure_edition_operator/" in path:
        return "azure_edition_operator/" + path.split("azure_edition_operator/")[-1].split("/")[0]
    return "stdlib:" + path.rsplit("/", 1)[-1]


def _dump(tag: str) -> None:
    snapshot = tracemalloc.take_snapshot()
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"rss={_rss_mib()} MiB traced={current / 2**20:.1f} MiB traced_peak={peak / 2**20:.1f} MiB"]
    by_package: dict[str, int] = {}
    for stat in snapshot.statistics("filename"):
        key = _package(stat.traceback[0].filename)
        by_package[key] = by_package.get(key, 0) + stat.size
    lines.append("-- by package (allocation site)")
    lines += [
        f"{size / 2**20:8.1f} MiB  {key}"
        for key, size in sorted(by_package.items(), key=lambda kv: -kv[1])[:25]
    ]
    lines.append("-- by line (MiB, blocks, site)")
    lines += [
        f"{s.size / 2**20:8.2f} {s.count:8d}  {s.traceback[0]}" for s in snapshot.statistics("lineno")[:40]
    ]
    with open(os.path.join(OUT or ".", f"{os.getpid()}-{tag}.txt"), "w") as out:
        out.write("\n".join(lines) + "\n")


def _loop() -> None:
    most = 0
    while True:
        time.sleep(20)
        current, _ = tracemalloc.get_traced_memory()
        _dump("last")
        if current > most:
            most = current
            _dump("max")


if OUT:
    os.makedirs(OUT, exist_ok=True)
    tracemalloc.start(1)
    threading.Thread(target=_loop, daemon=True, name="memprof").start()
