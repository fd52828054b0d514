"""A real webhook receiver on loopback, whose answers a test scripts attempt by attempt."""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    raw: bytes
    status: int

    @property
    def body(self) -> dict:
        return json.loads(self.raw)


class Receiver:
    """``answers``: the status of each attempt in turn (``"hang"``: never answer); then 200."""

    def __init__(self, answers: list[int | str] | None = None) -> None:
        self.answers = list(answers or [])
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    answer = receiver.answers.pop(0) if receiver.answers else 200
                if answer == "hang":
                    receiver._release.wait(30)
                    return
                receiver.received.append(Received(time.monotonic(), dict(self.headers), raw, int(answer)))
                self.send_response(int(answer))
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> "Receiver":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]


class BlackHole:
    """A receiver that accepts connections and never answers (a hung service, a firewall that
    swallows). ``open_connections()``: those the sandbox still holds, seen from this side.

    ``trickle``: instead of silence, answer one byte of a valid response every ``trickle`` seconds,
    so that no single read ever times out (a receiver that never finishes)."""

    RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n" + b"." * 1_000_000

    def __init__(self, trickle: float | None = None) -> None:
        self.trickle = trickle
        self.accepted = 0
        self._server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._server.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._open: dict[socket.socket, int] = {}  # connection -> bytes of RESPONSE sent
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hooks"

    def open_connections(self) -> int:
        return len(self._open)

    def _run(self) -> None:
        self._selector.register(self._server, selectors.EVENT_READ)
        next_byte = time.monotonic()
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.02):
                if key.fileobj is self._server:
                    connection, _ = self._server.accept()
                    connection.setblocking(False)
                    self._selector.register(connection, selectors.EVENT_READ)
                    self._open[connection] = 0
                    self.accepted += 1
                    continue
                connection = key.fileobj
                try:
                    data = connection.recv(65536)
                except OSError:
                    data = b""
                if not data:  # the sandbox closed it
                    self._selector.unregister(connection)
                    connection.close()
                    self._open.pop(connection, None)
            if self.trickle is not None and time.monotonic() >= next_byte:
                next_byte = time.monotonic() + self.trickle
                for connection, sent in list(self._open.items()):
                    try:
                        connection.send(self.RESPONSE[sent:sent + 1])
                        self._open[connection] = sent + 1
                    except OSError:
                        pass

    def __enter__(self) -> "BlackHole":
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for connection in list(self._open):
            connection.close()
        self._server.close()
