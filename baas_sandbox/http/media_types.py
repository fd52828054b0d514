"""Media types are case-insensitive (RFC 9110, 8.3.1): ``APPLICATION/JSON`` is JSON.

connexion matches the request's media type against the spec's case-sensitively: such a body
skipped validation and reached the handler unparsed (a 500). The media type of the request's
``Content-Type`` is lower-cased before connexion sees it; its parameters are left as sent.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class LowerCaseMediaType:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            for index, (name, value) in enumerate(headers):
                if name == b"content-type":
                    media_type, separator, parameters = value.partition(b";")
                    if media_type != media_type.lower():
                        scope = {**scope, "headers": [*headers[:index], (name, media_type.lower() + separator + parameters),
                                                      *headers[index + 1:]]}
                    break
        await self.app(scope, receive, send)
