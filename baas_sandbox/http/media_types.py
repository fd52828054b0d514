"""Media types are case-insensitive (RFC 9110, 8.3.1): ``APPLICATION/JSON`` is JSON.

connexion matches the request's media type against the spec's case-sensitively: such a body
skipped validation and reached the handler unparsed (a 500). The media type of the request's
``Content-Type`` is lower-cased before connexion sees it; its parameters are left as sent.

A body without a media type (no ``Content-Type``, or a blank one) is ``application/octet-stream``,
as RFC 9110 (8.3) allows a recipient to assume: an operation that takes JSON answers it 415.
connexion validated such a body as JSON but handed the handler raw bytes (a 500).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

#: What a body without a media type is taken to be.
UNTYPED = b"application/octet-stream"


class LowerCaseMediaType:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            typed = False
            for index, (name, value) in enumerate(headers):
                if name == b"content-type":
                    media_type, separator, parameters = value.partition(b";")
                    if not media_type.strip():
                        headers = [*headers[:index], *headers[index + 1:]]
                        scope = {**scope, "headers": headers}
                    elif media_type != media_type.lower():
                        scope = {**scope, "headers": [*headers[:index], (name, media_type.lower() + separator + parameters),
                                                      *headers[index + 1:]]}
                        typed = True
                    else:
                        typed = True
                    break
            if not typed and _has_body(headers):
                scope = {**scope, "headers": [*headers, (b"content-type", UNTYPED)]}
        await self.app(scope, receive, send)


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if (name == b"content-length" and value.strip() not in (b"", b"0")) or name == b"transfer-encoding":
            return True
    return False
