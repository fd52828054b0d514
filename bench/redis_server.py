"""A redis-server of the bench's own, for the Redis store's rows: on a free loopback port, nothing
written to disk, flushed between runs, stopped when the bench ends (Ctrl-C and failures included).

Its own server, not one that may be running on the machine: the figures are for a Redis that holds
nothing else and that nobody else loads; and FLUSHALL, which the bench needs between runs, must
never reach somebody's data.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import free_port, stop_group

def executable() -> str | None:
    """Debian's ``redis-server`` (package redis-server), or None: the bench then skips the Redis rows."""
    return shutil.which("redis-server")


@dataclass
class RedisServer:
    """``redis-server`` on a free loopback port: no RDB snapshot, no AOF, its working directory a
    temporary one (nothing is written anywhere else)."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 10.0) -> None:
        path = executable()
        if path is None:
            raise SystemExit("bench: redis-server is not installed")
        workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
        self.log = workdir / "redis.log"
        self.process = subprocess.Popen(
            [path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--daemonize", "no", "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=workdir,
            start_new_session=True)  # its own process group: stopped by us, in order, not by a stray Ctrl-C
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"bench: redis-server exited with {self.process.returncode}; see {self.log}")
            try:
                self.client().ping()
                return
            except Exception as error:  # noqa: BLE001 - redis-py's ConnectionError, BusyLoadingError
                if time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"bench: redis-server did not answer within {timeout} s: {error}") from error
            time.sleep(0.02)

    def client(self):
        """A synchronous redis-py client (the bench is not asynchronous; the sandbox's is its own)."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30, decode_responses=True)

    def flush(self) -> None:
        """Nothing left of the previous run (keys, Lua scripts, command counts)."""
        client = self.client()
        client.flushall(asynchronous=False)
        client.script_flush()
        client.config_resetstat()

    def used_memory(self) -> int:
        """``used_memory`` of ``INFO memory``: the bytes Redis's allocator holds for it."""
        return int(self.client().info("memory")["used_memory"])

    def command_calls(self) -> dict[str, int]:
        """Calls per command since the last flush (``INFO commandstats``): round trips, when a
        script's inner calls are told apart (Redis 7 counts them too)."""
        return {name.removeprefix("cmdstat_"): stats["calls"]
                for name, stats in self.client().info("commandstats").items()}

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM: redis-server shuts down at once (no save point is configured, so nothing is saved).
        stop_group(self.process, signal.SIGTERM)

    def __enter__(self) -> "RedisServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
