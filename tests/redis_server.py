"""A real redis-server for the tests of the Redis store (Debian's ``redis-server``).

``BAAS_SANDBOX_TEST_REDIS`` (``redis://127.0.0.1:P/0``, which ``.ci/run`` exports for the server it
starts) is used when set; otherwise the session starts its own server on a free loopback port, in
a temporary folder, without persistence, and stops it at the end. Without ``redis-server`` the
tests that need it skip, saying why; in CI (``CI=true``) they fail instead: a missing server must
not pass for green.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from baas_sandbox.fuzz import stop

URL_VARIABLE = "BAAS_SANDBOX_TEST_REDIS"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """The path of ``redis-server``; skips (fails in CI) when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "the Redis store's tests need redis-server: apt-get install -y redis-server"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    return binary


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on a loopback port, which a test may stop and start again
    (on the same port: a restart as a client sees it)."""

    def __init__(self, port: int | None = None) -> None:
        self.binary = redis_server_binary()
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._folder = tempfile.TemporaryDirectory(prefix="sbx-redis-")
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", self._folder.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop(process)

    def pause(self) -> None:
        """The server hung: its socket accepts, nothing answers (SIGSTOP)."""
        assert self._process is not None
        self._process.send_signal(19)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(18)

    def close(self) -> None:
        self.stop()
        self._folder.cleanup()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis for the whole session: ``BAAS_SANDBOX_TEST_REDIS``, or a server of our own."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield url
        return
    with redis_server() as server:
        yield server.url
