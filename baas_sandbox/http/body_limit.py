"""A bound on request bodies, enforced while reading and before authentication.

Without it a body was read whole before anything else looked at the request, even one without a
token: 100 MB in took ~900 MB of memory. ``LimitBody`` sits in the full pipeline before connexion's
routing and security:

- a ``Content-Length`` over the limit is refused at once (413), the body never read; the answer
  says ``Connection: close``, so the server closes the connection instead of reading the rest;
- a body without a length (chunked) is counted as it is read: the read that passes the limit raises
  ``BodyTooLarge``, answered 413 by the error handler (``http/errors.py``), also closing.

The express lane (``http/express.py``) only reads bodies whose ``Content-Length`` is within the
limit and hands every other one to the full pipeline: one place decides.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baas_sandbox.http.problems import Answer, Api, sandbox_problem


class BodyTooLarge(Exception):
    """The request body passed ``limit`` bytes while it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over {limit} bytes")
        self.limit = limit


def too_large(api: Api, limit: int) -> Answer:
    """The 413 answer, in the API's own error format."""
    return sandbox_problem(api, 413, f"the body is over {limit} bytes", details_pt=f"o corpo passa de {limit} bytes")


def declared_length(headers) -> int | None:
    """The request's ``Content-Length`` (``headers``: ASGI pairs), or None when it has none.

    An unreadable value counts as over any limit (servers refuse it before the app anyway)."""
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 1 << 62
    return None


class LimitBody:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope["headers"])
        if length is not None and length > self.limit:
            answer = too_large(Api.of(scope["path"]), self.limit)
            payload = answer.body.encode()
            await send({"type": "http.response.start", "status": 413, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": payload})
            return
        if length is None:
            receive = self._counting(receive)
        await self.app(scope, receive, send)

    def _counting(self, receive: Receive) -> Receive:
        read = 0
        limit = self.limit

        async def counting_receive() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    raise BodyTooLarge(limit)
            return message

        return counting_receive
