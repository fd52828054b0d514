"""Network faults on the real connection: reset, close without an answer, a cut body, a slow drip.

ASGI has no word for "drop the connection", so the sandbox reaches the server's transport: the
outermost middleware (``RememberConnection``) keeps uvicorn's request cycle, whose ``transport`` is
the socket's. Under another server, or in-process test clients, a fault raises
``ConnectionAbortedError`` instead, which such clients surface as a transport error too.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from http import HTTPStatus

from starlette.types import ASGIApp, Receive, Scope, Send

from baas_sandbox.scenarios.model import Fault

CONNECTION = "baas_sandbox.connection"


class RememberConnection:
    """Outermost middleware: remember the server's connection for the fault effects."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        remember(scope, send)
        await self.app(scope, receive, send)


def remember(scope: Scope, send: Send) -> None:
    """Keep the server's connection (uvicorn's cycle, whose ``send`` this is) in the scope: a layer
    that wraps ``send`` first must call this before it does."""
    cycle = getattr(send, "__self__", None)
    if scope["type"] == "http" and getattr(cycle, "transport", None) is not None:
        scope.setdefault("state", {})[CONNECTION] = cycle


def _connection(scope: Scope, fault: str):
    cycle = scope.get("state", {}).get(CONNECTION)
    if cycle is None:
        raise ConnectionAbortedError(f"network fault '{fault}' injected by a sandbox scenario")
    return cycle


async def _settle(cycle) -> None:
    """Wait until the server has seen the connection go, so it does not try to answer on it."""
    for _ in range(400):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.005)


async def drop(scope: Scope, fault: Fault) -> None:
    """``reset``: an RST, nothing sent. ``close``: an orderly close, nothing sent."""
    cycle = _connection(scope, fault.kind)
    transport = cycle.transport
    if fault.kind == "reset":
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: closing sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    await _settle(cycle)


async def send_damaged(scope: Scope, fault: Fault, status: int, headers: list[tuple[bytes, bytes]],
                       body: bytes) -> None:
    """``truncate``: the head announces the whole body, a part is sent, then the connection closes.
    ``drip``: the whole body, in ``chunks`` pieces spread over ``duration_ms``, then a close."""
    cycle = _connection(scope, fault.kind)
    transport = getattr(cycle.transport, "wrapped", cycle.transport)  # the socket's own: writes leave as made
    kept = [(name, value) for name, value in headers if name.lower() not in (b"content-length", b"connection")]
    tracking_id = scope.get("state", {}).get("tracking_id")
    if tracking_id and not any(name.lower() == b"tracking_id" for name, _ in kept):
        kept.append((b"tracking_id", tracking_id.encode()))
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    head += [name + b": " + value for name, value in kept]
    head += [b"content-length: " + str(len(body)).encode(), b"connection: close"]
    transport.write(b"\r\n".join(head) + b"\r\n\r\n")
    if fault.kind == "truncate":
        transport.write(body[: int(len(body) * fault.fraction)])
    else:
        size = max(1, -(-len(body) // fault.chunks))
        pieces = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
        for piece in pieces:
            await asyncio.sleep(fault.duration_ms / 1000 / len(pieces))
            if transport.is_closing():
                break
            transport.write(piece)
    transport.close()
    await _settle(cycle)
