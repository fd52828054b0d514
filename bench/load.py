"""Load with wrk: a fixed number of connections, each sending its next request when the last is answered."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"


@dataclass
class Result:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    status_errors: int  # answers >= 400: must stay 0 (every request of every workload is valid)
    socket_errors: int
    others: float = 0.0  # cores used meanwhile by other processes than the server and wrk
    store_calls: dict[str, int] | None = None  # a Redis store's command counts during the measured run

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def wrk(port: int, script: str, connections: int, duration: float, args: list[str] = (),
        threads: int = 1, namespaces: int = 0) -> Result:
    """``threads``: one wrk thread drives these loads with room to spare (it sends tens of thousands of
    requests per second on this machine), and leaves the other core to the server under test.
    ``namespaces``: spread the requests over that many namespaces (``bench/lua/namespaces.lua``)."""
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s", "--timeout", "10s",
               "-s", str(LUA_DIR / script), f"http://127.0.0.1:{port}", *(["--", *args] if args else [])]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "BENCH_LUA_DIR": str(LUA_DIR),
                                                                   **({"BENCH_NAMESPACES": str(namespaces)} if namespaces else {})})
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            raw = json.loads(line.removeprefix("BENCH_RESULT "))
            return Result(
                requests=raw["requests"],
                duration_s=raw["duration_us"] / 1e6,
                p50_ms=raw["p50_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                mean_ms=raw["mean_us"] / 1000,
                max_ms=raw["max_us"] / 1000,
                status_errors=raw["status_errors"],
                socket_errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
            )
    raise SystemExit(f"bench: wrk gave no result ({done.returncode}):\n{done.stdout}\n{done.stderr}")
