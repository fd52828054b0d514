"""Which ``Sandbox`` serves the current request.

connexion resolves handlers and the bearer function by import path, so they cannot be handed the
sandbox as an argument; an app binds its sandbox to each request with this context variable (a
process may run several apps, as the tests do).
"""

from __future__ import annotations

from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from baas_sandbox.services.sandbox import Sandbox

_current: ContextVar[Sandbox] = ContextVar("baas_sandbox")


def current_sandbox() -> Sandbox:
    return _current.get()


class BindSandbox:
    """ASGI middleware: make ``sandbox`` the current one for every request through ``app``."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app, self.sandbox = app, sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _current.set(self.sandbox)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
