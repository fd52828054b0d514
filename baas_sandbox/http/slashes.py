"""No redirect for a trailing slash: ``/baas/pix/keys/`` is a path no operation serves (404).

Starlette's router answers such a path with a 307 to the path without the slash, a status no
spec documents, and a client that follows it re-sends its POST. No documented path ends with a
slash; only Swagger UI's pages and the admin API's index (``/__admin/``, the front door) do.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from baas_sandbox.http.problems import Api, sandbox_problem

SWAGGER_UI_SUFFIX = "/ui/"
#: The admin API's index: its spec's ``/`` under the base path.
ADMIN_INDEX = "/__admin/"


class NoTrailingSlash:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or path in ("/", ADMIN_INDEX) or not path.endswith("/")
                or path.endswith(SWAGGER_UI_SUFFIX)):
            await self.app(scope, receive, send)
            return
        response = sandbox_problem(Api.of(path), 404, f"no operation at {scope['method']} {path}")
        payload = response.body.encode()
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
