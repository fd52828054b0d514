"""The two servers under test, started as the user would start them, and what is measured of them."""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
SPEC = ROOT / "spec" / "openapi.yaml"
VENV_BIN = ROOT / ".venv" / "bin"
PRISM_VERSION = "5.14.2"
PRISM = BENCH_DIR / "node_modules" / ".bin" / "prism"

#: Where the sandbox's code is imported from: this tree, or another checkout (``--sandbox-root``, to
#: measure a version before a change with the same bench and the same .venv).
SANDBOX_ROOT = ROOT

#: The first request of every start-up measurement: a real product answer, not a health probe.
PROBE_PATH = "/baas/pix/keys?account_key=6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8"
PROBE_HEADERS = {"Authorization": "Bearer org-a-token"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_prism() -> None:
    """Prism from the npm registry, pinned by bench/package.json and package-lock.json."""
    if PRISM.exists():
        return
    print(f"bench: installing @stoplight/prism-cli@{PRISM_VERSION} into bench/node_modules", file=sys.stderr)
    subprocess.run(["npm", "install", "--prefix", str(BENCH_DIR), "--no-audit", "--no-fund"], check=True)


def ensure_wrk() -> str:
    """wrk from Debian's package, installed when missing (the bench runs as root on a Debian machine)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: installing wrk (apt-get)", file=sys.stderr)
    apt = ["apt-get", "install", "-y", "-qq", "wrk"]
    if os.geteuid() != 0:
        apt = ["sudo", *apt]
    if subprocess.run(apt).returncode != 0:  # an old or missing package list: update once, retry
        subprocess.run([*apt[:-4], "update", "-qq"], check=True)
        subprocess.run(apt, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is not installed and could not be installed")
    return found


def byte_compile() -> None:
    """The sandbox's sources byte-compiled, as ``make serve`` leaves them (and pip, an installed
    package): start-ups are measured without compiling them each time, which happens where
    PYTHONDONTWRITEBYTECODE is set (this project's machines)."""
    subprocess.run([str(VENV_BIN / "python"), "-m", "compileall", "-q", "baas_sandbox", "handlers"],
                   cwd=SANDBOX_ROOT, stdout=subprocess.DEVNULL, check=True)


def answer(port: int, path: str = PROBE_PATH, timeout: float = 1.0) -> int:
    """One GET; the status, or an OSError while nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=PROBE_HEADERS)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def stop_group(process: subprocess.Popen, first: int) -> None:
    """Signal ``first`` to the process group ``process`` leads (started in a session of its own),
    then SIGKILL if it has not ended within 10 s."""
    os.killpg(process.pid, first)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class Server:
    """A server process on a free loopback port."""

    name: str
    command: list[str]
    port: int
    env: dict = field(default_factory=dict)
    cwd: Path = ROOT
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    startup_s: float | None = None
    log: Path | None = None

    def start(self, timeout: float = 60.0) -> float:
        """Start it and wait for its first answer; the seconds that took (the start-up time)."""
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{self.name}-{self.port}.log"
        env = {**os.environ, **self.env}
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(self.command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                        env=env, cwd=self.cwd, start_new_session=True)
        deadline = self.started_at + timeout
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"bench: {self.name} exited with {self.process.returncode} before answering; "
                                 f"see {self.log}:\n{self.log.read_text(errors='replace')[-2000:]}")
            try:
                status = answer(self.port, timeout=max(0.1, deadline - time.perf_counter()))
            except OSError:
                if time.perf_counter() > deadline:
                    self.stop()
                    raise SystemExit(f"bench: {self.name} did not answer within {timeout} s; see {self.log}")
                time.sleep(0.002)
                continue
            self.startup_s = time.perf_counter() - self.started_at
            if status != 200:  # the first answer must be the real one, not an error
                self.stop()
                raise SystemExit(f"bench: {self.name} first answered {status} to GET {PROBE_PATH}; see {self.log}")
            return self.startup_s

    def rss_bytes(self) -> int:
        """VmRSS of the server process, from /proc/<pid>/status."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # Its own session: the signal reaches the whole process group (npm shims, node) and nothing else.
        stop_group(self.process, signal.SIGINT)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


#: The serve options of every sandbox run: issue #6's targets hold with request *and* response
#: validation on (request validation is always on).
SERVE_OPTIONS = ["--log-level", "warning", "--validate-responses"]

def sandbox(port: int | None = None) -> Server:
    """The README's serve command."""
    port = port or free_port()
    return Server("sandbox", [str(VENV_BIN / "baas-sandbox"), "serve", "--port", str(port), *SERVE_OPTIONS],
                  port, **sandbox_code())


#: ``BAAS_SANDBOX_MASTER_KEY`` of every process the bench starts on a Redis store (a shared store
#: requires one, the same in every process sharing it). A fixed test key: the bench's Redis holds
#: only the bench's data, and goes with it.
MASTER_KEY = base64.b64encode(b"baas-sandbox bench master key 32").decode()


def redis_sandbox(url: str, workers: int = 1, port: int | None = None) -> Server:
    """The README's serve command on a Redis store (``--store URL --workers N``): N forked processes
    sharing the port, their state in Redis."""
    port = port or free_port()
    code = sandbox_code()
    env = {**code.pop("env", {}), "BAAS_SANDBOX_MASTER_KEY": MASTER_KEY}
    return Server(f"redis-{workers}w", [str(VENV_BIN / "baas-sandbox"), "serve", "--port", str(port), *SERVE_OPTIONS,
                                        "--store", url, "--workers", str(workers)], port, env=env, **code)


def filled_sandbox(keys: int, port: int | None = None) -> Server:
    """The same command through ``bench.launch``: the store holds ``keys`` Pix keys before it serves."""
    port = port or free_port()
    launcher = [str(VENV_BIN / "python"), "-m", "bench.launch", "--keys", str(keys)]
    return Server("sandbox" if not keys else f"sandbox-{keys}-keys",
                  [*launcher, "serve", "--port", str(port), *SERVE_OPTIONS], port, **sandbox_code())


def sandbox_code() -> dict:
    if SANDBOX_ROOT == ROOT:
        return {}
    # The other tree first (it is the working directory of ``-m``), then this one for ``bench``.
    return {"cwd": SANDBOX_ROOT, "env": {"PYTHONPATH": f"{SANDBOX_ROOT}:{ROOT}"}}


def floor(port: int | None = None) -> Server:
    """A minimal uvicorn app (``bench.floor``): what wrk can drive at least."""
    port = port or free_port()
    return Server("floor", [str(VENV_BIN / "python"), "-m", "bench.floor", "--port", str(port)], port)


def prism(port: int | None = None) -> Server:
    """Prism's mock of the same document, logging warnings and errors only (as the sandbox does)."""
    port = port or free_port()
    return Server("prism", [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), "-v", "warn", str(SPEC)], port)


def versions() -> dict[str, str]:
    def out(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            return "?"

    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    wrk = out(["wrk", "-v"]).splitlines()
    return {
        "nproc": out(["nproc"]),
        "cpu": model,
        "memory": out(["sh", "-c", "free -h | awk '/^Mem:/ {print $2}'"]),
        "python": out([str(VENV_BIN / "python"), "-c", "import sys; print(sys.version.split()[0])"]),
        "node": out(["node", "--version"]),
        "prism": out([str(PRISM), "--version"]),
        "wrk": wrk[0].split(" [")[0] if wrk else "?",
        "kernel": os.uname().release,
    }
