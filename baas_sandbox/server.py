"""How ``baas-sandbox serve`` runs: its socket bound first (``listen``), then uvicorn on it (``run``)
with the options chosen by measurement (``uvicorn_options``, ``python -m bench``).

The socket is bound before uvicorn starts so that a port in use or out of reach is one clear line
and exit status 2 (not a banner, then uvicorn's error), and so that ``--port 0`` can say which
port it took: the banner is printed once the server answers, with the real address.
"""

from __future__ import annotations

import errno
import importlib.util
import socket
import sys

import uvicorn

#: What ``serve`` prints once it answers (tools read the URL from it: ``--port 0``).
BANNER = "baas-sandbox: serving on {url}  (start page: /, Swagger UI: /ui/ and /__admin/ui/)"


class ListenError(Exception):
    """The address cannot be listened on; the message says why, in one line."""


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port), as uvicorn would bind it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ListenError(f"--host {host}: not an address of this machine ({exc})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart at once
        sock.bind(address)
        sock.listen(2048)  # uvicorn's backlog
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            reason = f"{where} is already in use (another sandbox?); choose another --port, or --port 0 for a free one"
        elif exc.errno == errno.EACCES:
            reason = f"{where}: permission denied (ports below 1024 need privileges); choose --port 1024 or above"
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = f"--host {host}: not an address of this machine"
        else:
            reason = f"{where}: {exc.strerror or exc}"
        raise ListenError(reason) from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, printing the banner once it answers (after the app's start-up)."""

    def __init__(self, config: uvicorn.Config, url: str, notes: list[str]) -> None:
        super().__init__(config)
        self.url, self.notes = url, notes

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            print("\n".join([BANNER.format(url=self.url), *self.notes]), file=sys.stderr, flush=True)


def run(app, sock: socket.socket, *, log_level: str, graceful_shutdown: float, notes: list[str] = ()) -> None:
    """Serve ``app`` on ``sock`` until interrupted; ``notes`` are printed after the banner (warnings)."""
    # The access log is written at INFO: above that level uvicorn would format each line for nothing.
    access_log = log_level in ("trace", "debug", "info")
    # Open event streams never end by themselves: bound the wait for them when stopping.
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log,
                            timeout_graceful_shutdown=graceful_shutdown, **uvicorn_options())
    _AnnouncingServer(config, url_of(sock), list(notes)).run(sockets=[sock])


class _HeadHoldingTransport:
    """A transport that sends a fixed-length response's head together with its body.

    uvicorn's httptools protocol writes a response's status line and headers, then its body: two
    socket writes, two TCP segments. Under load those writes were the largest single cost of the
    sandbox (py-spy: ~40% of its CPU in ``RequestResponseCycle.send``, the loopback delivery being
    charged to the sender). A head that announces a ``content-length`` is held until the next
    write, which uvicorn makes at once with the body, so both leave in one write. A head without a
    length (a chunked stream: the event streams) is sent at once, as is anything else; a completed
    response (uvicorn writes no body for HEAD or 304), a close or an abort first sends what is held. Nothing is reordered or changed, only joined.
    """

    __slots__ = ("wrapped", "_held")

    def __init__(self, transport) -> None:
        self.wrapped = transport
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n") and b"\r\ncontent-length: " in data:
            self._held = data
            return
        self.wrapped.write(data)

    def writelines(self, chunks) -> None:
        self.write(b"".join(chunks))

    def close(self) -> None:
        self.flush()
        self.wrapped.close()

    def write_eof(self) -> None:
        self.flush()
        self.wrapped.write_eof()

    def abort(self) -> None:
        self._held = None
        self.wrapped.abort()

    def flush(self) -> None:
        """Send what is held: the response is complete (a HEAD answer or a 304 has no body write)."""
        if self._held is not None:
            held, self._held = self._held, None
            self.wrapped.write(held)

    def __getattr__(self, name: str):
        return getattr(self.wrapped, name)


def http_protocol():
    """uvicorn's httptools protocol, writing each response in one write (``_HeadHoldingTransport``);
    uvicorn's h11 protocol where httptools is missing."""
    if not _installed("httptools"):
        return "h11"
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsOneWriteProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(_HeadHoldingTransport(transport))  # type: ignore[arg-type]

        def on_response_complete(self) -> None:
            self.transport.flush()  # type: ignore[attr-defined]  # a head whose body is never written
            super().on_response_complete()

    return HttpToolsOneWriteProtocol


def uvicorn_options() -> dict:
    """Options for ``uvicorn.run``; none of them changes what a client sees.

    - ``http``: httptools, the C HTTP parser, each response written at once (``http_protocol``); the
      pure-Python h11 parser only where httptools is missing.
    - ``loop``: uvloop; asyncio's own loop only where it is missing (uvloop has no Windows build).

    Both come with connexion's ``uvicorn`` extra (``uvicorn[standard]``), and are what uvicorn's
    ``auto`` picks when installed: naming them states the choice, measured on this project
    (bench/RESULTS.md), and keeps it if uvicorn's defaults change.

    Measured alternative, not chosen: asyncio's loop serves a saturated server more fairly (at 50
    connections p99 ~3-4x lower: 110 vs 365 ms on credentials) but answers ~20% fewer requests per
    second at 50 connections and has a worse tail at 1 connection (p99 ~20-30 ms vs ~2-6 ms). A
    local sandbox mostly serves a few clients at a time, so throughput and the low-concurrency tail
    win. To prefer the saturated tail, return ``"loop": "asyncio"``.
    """
    return {
        "http": http_protocol(),
        # X-Forwarded-For only rewrites the client address of uvicorn's access log (the sandbox
        # reads no client address), at a cost on every request.
        "proxy_headers": False,
        "loop": "uvloop" if _installed("uvloop") else "asyncio",
    }


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
