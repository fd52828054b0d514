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
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (a server's forked workers), from each process's parent in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found += sorted(frontier)
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Others:
    """CPU used by everything but the servers ``pids`` (with the processes they forked: a server's
    workers) and our finished children (wrk), in cores. A server on Redis is given the redis-server's
    pid too: the store's work is the server's."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids

    def _servers_cpu(self) -> float:
        return sum(_process_cpu(pid) for pid in self._all)

    def __enter__(self) -> "Others":
        self._all = [*self.pids, *(child for pid in self.pids for child in descendants(pid))]
        self._start = (time.perf_counter(), _busy_total(), self._servers_cpu(), _children_cpu())
        return self

    def __exit__(self, *exc) -> None:
        wall, busy, server, children = self._start
        elapsed = time.perf_counter() - wall
        others = (_busy_total() - busy) - (self._servers_cpu() - server) - (_children_cpu() - children)
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
