"""The admin API's guard: it answers this machine's names only, nothing cross-site changes it, and
off loopback it wants a token.

``/__admin`` resets the sandbox, creates accounts and shows the verification codes "sent": it has
no tenant token, so without this guard anything that can make a request to it controls it. Three
ways in, each closed here, in the admin API's own error format (``http/problems.py``):

- **DNS rebinding** (a page on ``evil.example`` whose name is re-pointed at 127.0.0.1 is, for the
  browser, same-origin with the sandbox): the ``Host`` header still names ``evil.example``. Only
  the names the sandbox is served under are answered (``Settings.allowed_hosts``); others get
  421 ``SBX000421``.
- **Cross-site requests** (CSRF): a page anywhere can make a browser send a "simple" POST (a form,
  or ``fetch`` with ``text/plain``) without a CORS preflight, so CORS alone never sees it. A
  state-changing admin request whose ``Origin`` is neither an allowed CORS origin nor the
  sandbox's own (same origin as its ``Host``: Swagger UI) is refused 403 ``SBX000403``, and so is
  a body that is not ``application/json`` (415 ``SBX000415``), which a browser can only send after
  a preflight. A bodiless ``curl -X POST .../__admin/reset`` (no ``Origin``, no body) still works.
- **The network** (``--host 0.0.0.0``): with an admin token set, every admin request but Swagger UI's
  page, the spec it loads and the console's page and files (a browser navigation cannot carry a token; they hold no state) needs
  ``Authorization: Bearer <token>``, compared in constant time; otherwise 401 ``SBX000401``. The
  token is never echoed, logged or journaled.

Product operations are not guarded here: they need a tenant's bearer token, which a browser never
attaches by itself (README, "Running it on a network").
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from baas_sandbox.http.problems import Api, sandbox_problem

ADMIN_PREFIX = "/__admin"
#: Methods that change nothing (RFC 9110, 9.2.1): a cross-site GET cannot read the answer (CORS).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: What a browser loads by navigation (Swagger UI's page, its files, the spec it shows): no token
#: can be attached to those requests, and they hold nothing of the sandbox's state.
PUBLIC_PATHS = re.compile(r"^/__admin/(ui(/.*)?|openapi\.json|console(/console\.(js|css))?)$")
JSON = "application/json"


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def host_name(host: str) -> str:
    """The name of a ``Host`` header, without port or IPv6 brackets, lower case: ``[::1]:8080`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and ":" not in name:  # not a bare IPv6 address
        host = name
    return host.removesuffix(".")  # "localhost." is "localhost"


class AdminGuard:
    """ASGI middleware in front of the admin API (see the module's docstring)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str], origin_regex: str,
                 admin_token: str | None = None) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed_hosts = frozenset(h.strip().strip("[]").lower().removesuffix(".") for h in allowed_hosts)
        self.origins = re.compile(origin_regex)
        self._token = admin_token.encode() if admin_token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_admin_path(scope["path"]):
            refusal = self.refusal(scope)
            if refusal is not None:
                await _answer(send, *refusal)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        """(status, details, extra headers) of the refusal, or None when the request may pass."""
        headers = _headers(scope)
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.any_host and host_name(host) not in self.allowed_hosts:
            return 421, (f"this sandbox does not answer to the host {host_name(host)!r} (allowed: "
                         f"{', '.join(sorted(self.allowed_hosts))}; start it with --allowed-hosts to add one)"
                         if host else "a Host header is required"), []
        method = scope["method"]
        if self._token is not None and not self._is_public(scope["path"], method, headers):
            problem = self._token_problem(headers.get(b"authorization"))
            if problem is not None:
                return 401, problem, [(b"www-authenticate", b'Bearer realm="baas-sandbox admin"')]
        if method in SAFE_METHODS:
            return None
        origin = headers.get(b"origin")
        if origin is not None and not self._origin_allowed(origin.decode("latin-1"), host):
            return 403, (f"a request from the origin {origin.decode('latin-1')!r} cannot change the sandbox "
                         "(allowed: the sandbox's own pages and --cors-origin-regex)"), []
        content_type = headers.get(b"content-type")
        if content_type is not None:
            media_type = content_type.decode("latin-1").partition(";")[0].strip().lower()
            if media_type != JSON:
                return 415, f"Expected '{JSON}', got '{media_type}'", []
        elif _has_body(headers):
            return 415, f"Expected '{JSON}', got a body without Content-Type", []
        return None

    def _is_public(self, path: str, method: str, headers: dict[bytes, bytes]) -> bool:
        if method == "OPTIONS" and b"access-control-request-method" in headers:
            return True  # a CORS preflight: browsers never send credentials with one
        return method in ("GET", "HEAD") and PUBLIC_PATHS.match(path) is not None

    def _token_problem(self, authorization: bytes | None) -> str | None:
        if not authorization:
            return "No authorization token provided"
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return "Invalid authorization header"
        assert self._token is not None
        if not hmac.compare_digest(token.strip(), self._token):  # constant time: no guessing byte by byte
            return "Provided token is not valid"
        return None

    def _origin_allowed(self, origin: str, host: str) -> bool:
        if self.origins.fullmatch(origin):  # as the CORS middleware matches it
            return True
        # The sandbox's own pages (Swagger UI), whatever name it is reached by: the Host was checked above.
        try:
            return bool(host) and urlsplit(origin).netloc.lower() == host.strip().lower()
        except ValueError:
            return False


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by (lower-case) name; the first of repeated ones."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)
    return found


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length", b"0").strip()
    return b"transfer-encoding" in headers or length not in (b"", b"0")


async def _answer(send: Send, status: int, details: str, extra: list[tuple[bytes, bytes]]) -> None:
    payload = sandbox_problem(Api.ADMIN, status, details).body.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", JSON.encode()), (b"content-length", str(len(payload)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": payload})
