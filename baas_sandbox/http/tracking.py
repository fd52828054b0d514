"""``tracking_id``: echoed on every product response, or generated (UUID) when the request has none."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baas_sandbox.ids import new_id

HEADER = "tracking_id"
PRODUCT_PREFIXES = ("/banking-auth", "/baas", "/mock/")

_current: ContextVar[str | None] = ContextVar("tracking_id", default=None)


def current_tracking_id() -> str | None:
    """The ``tracking_id`` of the request being handled: the ``cid`` of what it causes."""
    return _current.get()


class TrackingId:
    """Idempotent, so it can be mounted twice: outermost, for the error responses produced before
    a handler runs, and inside response validation, so handler responses are checked with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PRODUCT_PREFIXES):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        tracking_id = state.get("tracking_id") or Headers(scope=scope).get(HEADER) or new_id()
        state["tracking_id"] = tracking_id
        _current.set(tracking_id)

        async def send_with_tracking(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = tracking_id
            await send(message)

        await self.app(scope, receive, send_with_tracking)
