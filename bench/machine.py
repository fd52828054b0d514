"""How busy the machine is apart from the benchmark: a 2-core machine shared with a test run is no
place to measure, so each cell waits for the machine to be quiet, and says how much CPU others took."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _busy_total() -> float:
    """CPU-seconds spent busy by the whole machine since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK


def _process_cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Others:
    """CPU used by everything but the server ``pid`` and our finished children (wrk), in cores."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> "Others":
        self._start = (time.perf_counter(), _busy_total(), _process_cpu(self.pid), _children_cpu())
        return self

    def __exit__(self, *exc) -> None:
        wall, busy, server, children = self._start
        elapsed = time.perf_counter() - wall
        others = (_busy_total() - busy) - (_process_cpu(self.pid) - server) - (_children_cpu() - children)
        self.cores = max(0.0, others / elapsed) if elapsed > 0 else 0.0


def wait_until_quiet(limit: float = 0.15, patience: float = 120.0, log=print) -> float:
    """Wait (up to ``patience`` s) until the machine uses less than ``limit`` cores; the last reading."""
    deadline = time.monotonic() + patience
    told = False
    while True:
        before, wall = _busy_total(), time.perf_counter()
        time.sleep(0.5)
        cores = (_busy_total() - before) / (time.perf_counter() - wall)
        if cores < limit or time.monotonic() > deadline:
            return cores
        if not told:
            log(f"machine busy ({cores:.2f} cores used by other processes): waiting up to {patience:.0f} s")
            told = True
