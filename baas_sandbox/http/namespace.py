"""``X-Sandbox-Namespace``: which namespace a request works in.

The header, on any operation; on the admin API also the ``namespace`` query parameter, since a
browser's ``EventSource`` cannot send headers and the streams are per namespace (the header wins
when both are given). Without either, the namespace is ``default``. An invalid name is answered
400 as any invalid parameter is (SBX000400; the credentials API's EBAA0004), a namespace past the
limit 429 SBX000429, in the API's own error format; nothing else is affected.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from baas_sandbox.adapters.repository import StoreUnavailable
from baas_sandbox.http import context, store_faults
from baas_sandbox.http.problems import Api, Answer, Violation, invalid_request, sandbox_problem, send_answer
from baas_sandbox.http.scope import SANDBOX
from baas_sandbox.services.namespaces import DEFAULT, InvalidNamespace, Namespaces, TooManyNamespaces, check_name
from baas_sandbox.services.sandbox import Sandbox

HEADER = "x-sandbox-namespace"
_HEADER = HEADER.encode()
QUERY = "namespace"


def requested(scope: Scope, header: bytes | None = None) -> str:
    """The namespace a request names (``header``: its ``X-Sandbox-Namespace``, when already found);
    ``InvalidNamespace`` when the name is not one."""
    if header is None:
        header = next((value for name, value in scope.get("headers", ()) if name == _HEADER), None)
    if header is not None:
        return check_name(header.decode("latin-1"))
    if Api.of(scope["path"]) is Api.ADMIN and b"namespace=" in scope.get("query_string", b""):
        values = [v for k, v in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
                  if k == QUERY]
        if values:
            return check_name(values[-1])
    return DEFAULT


def refusal(scope: Scope, error: InvalidNamespace | TooManyNamespaces) -> Answer:
    """The answer to a request whose namespace cannot be used, in its API's format."""
    api = Api.of(scope["path"])
    if isinstance(error, InvalidNamespace):  # answered as the API answers any invalid parameter
        where = f"header {HEADER}" if any(n == _HEADER for n, _ in scope.get("headers", ())) else f"query {QUERY}"
        return invalid_request(api, [Violation(where, str(error))])
    return sandbox_problem(api, 429, str(error))


def bind(scope: Scope, sandbox: Sandbox) -> None:
    scope.setdefault("state", {})[SANDBOX] = sandbox


class BindNamespace:
    """ASGI middleware: the request's namespace (made on first use) becomes the current sandbox,
    after what is due in it has run."""

    def __init__(self, app: ASGIApp, namespaces: Namespaces) -> None:
        self.app, self.namespaces = app, namespaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no WebSocket route: nothing to bind
            await self.app(scope, receive, send)
            return
        try:
            sandbox = await self.namespaces.get(requested(scope))
            await sandbox.settle()
        except (InvalidNamespace, TooManyNamespaces) as error:
            await send_answer(send, refusal(scope, error))
            return
        except StoreUnavailable as error:  # here, outside connexion's error handlers (http/store_faults.py)
            store_faults.log(scope, error)
            await send_answer(send, store_faults.unavailable(Api.of(scope["path"])))
            return
        bind(scope, sandbox)
        token = context._current.set(sandbox)
        namespaces_token = context._namespaces.set(self.namespaces)
        try:
            await self.app(scope, receive, send)
        finally:
            context._namespaces.reset(namespaces_token)
            context._current.reset(token)


def existing(scope: Scope, namespaces: Namespaces) -> Sandbox | None:
    """The namespace a request named, if it exists (for what answered before the binding)."""
    try:
        return namespaces.existing(requested(scope))
    except InvalidNamespace:
        return None
