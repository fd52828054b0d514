"""How ``baas-sandbox serve`` runs: its socket bound first (``listen``), then uvicorn on it (``run``)
with the options chosen by measurement (``uvicorn_options``, ``python -m bench``) and the bounds a
served sandbox keeps (``--header-timeout``, ``--max-connections``).

The socket is bound before uvicorn starts so that a port in use or out of reach is one clear line
and exit status 2 (not a banner, then uvicorn's error), and so that ``--port 0`` can say which
port it took: the banner is printed once the server answers, with the real address.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from http import HTTPStatus

import uvicorn

from baas_sandbox.defaults import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS
from baas_sandbox.ids import new_id

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

    def __init__(self, config: uvicorn.Config, url: str, notes: list[str], announce: bool = True) -> None:
        super().__init__(config)
        self.url, self.notes, self.announce = url, notes, announce

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started and self.announce:
            print("\n".join([BANNER.format(url=self.url), *self.notes]), file=sys.stderr, flush=True)


def run(app, sock: socket.socket, *, log_level: str, graceful_shutdown: float, notes: list[str] = (),
        header_timeout: float = DEFAULT_HEADER_TIMEOUT, max_connections: int = DEFAULT_MAX_CONNECTIONS,
        announce: bool = True) -> None:
    """Serve ``app`` on ``sock`` until interrupted; ``notes`` are printed after the banner (warnings)."""
    # The access log is written at INFO: above that level uvicorn would format each line for nothing.
    access_log = log_level in ("trace", "debug", "info")
    # Open event streams never end by themselves: bound the wait for them when stopping.
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log,
                            timeout_graceful_shutdown=graceful_shutdown,
                            **uvicorn_options(header_timeout=header_timeout, max_connections=max_connections))
    _AnnouncingServer(config, url_of(sock), list(notes), announce).run(sockets=[sock])


def run_workers(workers: int, serve_one: Callable[[int], None]) -> int:
    """``serve_one(index)`` in ``workers`` forked processes sharing the bound socket (the kernel spreads
    the connections), until a signal stops them: SIGINT and SIGTERM are passed on to every worker,
    and a worker that dies is not replaced (its requests' state is in the shared store; the others
    go on serving). The worst exit status of the workers.

    Forked after the app is built (its fixtures checked once) and before any event loop runs: each
    worker makes its own loop, its own store client and its own namespaces on first use."""
    children: list[int] = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker: serve, then leave without running the parent's clean-up
            status = 0
            try:
                serve_one(index)
            except BaseException:  # noqa: BLE001 - reported, and the status says it failed
                logging.getLogger("baas_sandbox").exception("worker %d failed", index)
                status = 1
            finally:
                sys.stderr.flush()
                os._exit(status)
        children.append(pid)

    def pass_on(signum, _frame) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGINT, pass_on)
    signal.signal(signal.SIGTERM, pass_on)
    worst = 0
    for child in children:
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        worst = max(worst, os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 0)
    return worst


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


class WithoutQueryString(logging.Filter):
    """uvicorn's access log line without the query string: a token or a secret sent as a query
    parameter must not land in a log. (uvicorn logs ``client, method, path?query, version, status``.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def hide_query_strings(logger: logging.Logger | None = None) -> None:
    """Install ``WithoutQueryString`` on uvicorn's access log, once."""
    logger = logger or logging.getLogger("uvicorn.access")
    if not any(isinstance(f, WithoutQueryString) for f in logger.filters):
        logger.addFilter(WithoutQueryString())


#: The largest request head (request line and headers) read; past it, a 400 and the connection closed.
MAX_HEAD_SIZE = 64 * 1024


def _head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    return len(url) + sum(len(name) + len(value) + 4 for name, value in headers)


def _json_answer(status: int, answer, product: bool) -> bytes:
    """A whole HTTP/1.1 response closing the connection, for what the protocol answers itself
    (``product``: with the ``tracking_id`` every product answer has; the request's is unread)."""
    payload = answer.body.encode()
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode(), b"content-type: application/json",
            b"content-length: " + str(len(payload)).encode(), b"connection: close"]
    if product:
        head.append(b"tracking_id: " + new_id().encode())
    return b"\r\n".join(head) + b"\r\n\r\n" + payload


async def _busy(scope, receive, send) -> None:
    """uvicorn's answer past ``limit_concurrency`` (plain text there), in the API's own format."""
    from baas_sandbox.http.problems import Api, sandbox_problem
    from baas_sandbox.http.tracking import PRODUCT_PREFIXES

    answer = sandbox_problem(Api.of(scope["path"]), 503, "too many open connections: try again shortly",
                             details_pt="muitas conexões abertas: tente de novo em instantes")
    payload = answer.body.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               (b"connection", b"close"), (b"retry-after", b"1")]
    if scope["path"].startswith(PRODUCT_PREFIXES):
        given = dict(scope["headers"]).get(b"tracking_id")
        headers.append((b"tracking_id", given or new_id().encode()))
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def http_protocol(header_timeout: float = DEFAULT_HEADER_TIMEOUT):
    """uvicorn's httptools protocol, writing each response in one write (``_HeadHoldingTransport``),
    with a time limit on reading a request's headers and its own answers in the API's format;
    uvicorn's h11 protocol where httptools is missing.

    This is the one place that reaches into uvicorn's protocol (its parser callbacks and
    ``_start_asgi_task``): uvicorn has no public hook for these, and pins nothing about them, so
    ``tests/test_hostile.py`` checks each through a socket.
    """
    if not _installed("httptools"):
        return "h11"
    from uvicorn.protocols.http.flow_control import service_unavailable
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsOneWriteProtocol(HttpToolsProtocol):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._header_timer: asyncio.TimerHandle | None = None
            #: ``loop.time()`` when the connection began waiting for a request's head; None while
            #: a request is being served (or its head is read).
            self._awaiting_since: float | None = None
            self._head_bytes = 0  # read so far of the awaited head
            self._read = 0  # the size of the read being parsed
            hide_query_strings(self.access_logger)

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(_HeadHoldingTransport(transport))  # type: ignore[arg-type]
            self._await_head()
            self._header_timer = self.loop.call_later(header_timeout, self._check_head_time)

        def connection_lost(self, exc) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._read = len(data)
            super().data_received(data)
            if self._awaiting_since is not None:  # the head is still incomplete: all of this was head
                self._head_bytes += self._read
                if self._head_bytes > MAX_HEAD_SIZE and not self.transport.is_closing():
                    self.send_400_response("request head too large")  # httptools buffers header values unbounded

        def on_headers_complete(self) -> None:
            # A head that came whole within one read is measured here, only when it may be too large.
            if self._head_bytes + self._read > MAX_HEAD_SIZE and _head_size(self.url, self.headers) > MAX_HEAD_SIZE:
                raise ValueError("request head too large")  # the parser's error: send_400_response
            self._awaiting_since = None
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            self.transport.flush()  # type: ignore[attr-defined]  # a head whose body is never written
            next_is_read = bool(self.pipeline)  # a pipelined request: its head is in
            super().on_response_complete()
            if not next_is_read:
                self._await_head()

        # -- the header-read timeout: a slow or silent client does not hold a connection forever.
        # One timer per connection, re-armed when it fires, rather than one per request (the cost
        # showed in the express lane's benchmark).

        def _await_head(self) -> None:
            self._awaiting_since = self.loop.time()
            self._head_bytes = 0

        def _check_head_time(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            since = self._awaiting_since
            now = self.loop.time()
            if since is not None and now - since >= header_timeout:
                self.transport.close()
                return
            due = (since + header_timeout) if since is not None else (now + header_timeout)
            self._header_timer = self.loop.call_at(due, self._check_head_time)

        # -- answers of the protocol itself, in the API's format rather than uvicorn's plain text --

        def send_400_response(self, msg: str) -> None:
            """A request the parser refuses (a URL or head over its limits, bad syntax)."""
            from baas_sandbox.http.problems import Api, Violation, invalid_request

            path = self.url.split(b"?", 1)[0].decode("latin-1") if getattr(self, "url", None) else ""
            answer = invalid_request(Api.of(path), [Violation("(request)", (
                f"is not an HTTP request this server reads (a URL over ~64 KB, a request head over "
                f"{MAX_HEAD_SIZE // 1024} KiB, or bad syntax)"))])
            self._awaiting_since = None
            self.transport.write(_json_answer(400, answer, Api.of(path) is not Api.ADMIN))
            self.transport.close()

        def _start_asgi_task(self, cycle, app) -> None:
            super()._start_asgi_task(cycle, _busy if app is service_unavailable else app)

    return HttpToolsOneWriteProtocol


def uvicorn_options(header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                    max_connections: int = DEFAULT_MAX_CONNECTIONS) -> dict:
    """Options for ``uvicorn.run``; only the bounds (``limit_concurrency``, the header-read timeout)
    change what a client sees, and only past them.

    - ``http``: httptools, the C HTTP parser, each response written at once (``http_protocol``); the
      pure-Python h11 parser only where httptools is missing.
    - ``loop``: uvloop; asyncio's own loop only where it is missing (uvloop has no Windows build).
    - ``limit_concurrency``: ``max_connections``; past it, connections or requests at once, a request
      is answered 503 (``_busy``) and its connection closed: a flood of clients cannot exhaust the
      process's file descriptors or memory.

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
        "http": http_protocol(header_timeout),
        # uvicorn answers 503 once it *has* limit_concurrency connections (the new one counted):
        # one more, so that max_connections connections are served at once, as documented.
        "limit_concurrency": max_connections + 1,
        # X-Forwarded-For only rewrites the client address of uvicorn's access log (the sandbox
        # reads no client address), at a cost on every request.
        "proxy_headers": False,
        "loop": "uvloop" if _installed("uvloop") else "asyncio",
    }


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
