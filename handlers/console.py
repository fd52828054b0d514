"""``GET /__admin/console`` and its two files; ``GET /__admin/tenants`` and ``GET /__admin/key-requests``.

The console is a page and a script of the sandbox's own (``baas_sandbox/console/``, shipped in the
package): no build step, no CDN, it works offline. It adds no back door: everything it shows or
does is a documented call of the admin API (with its SSE streams) or of the product API, made with
the tenant's token that ``GET /__admin/tenants`` gives (the fixtures' tokens, which the README
already prints). ``GET /__admin/key-requests`` lists a namespace's key requests with their status,
rejected ones included, which the product API's list (keys only) does not show.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.responses import Response

from baas_sandbox.http.context import current_sandbox

#: The page cannot be framed, and loads nothing but its own script and style and this API.
HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _file(name: str) -> bytes:
    return resources.files("baas_sandbox.console").joinpath(name).read_bytes()


def _served(name: str, media_type: str) -> Response:
    return Response(_file(name), media_type=media_type, headers=HEADERS)


async def console_page():
    return _served("index.html", "text/html; charset=utf-8")


async def console_script():
    return _served("console.js", "text/javascript; charset=utf-8")


async def console_style():
    return _served("console.css", "text/css; charset=utf-8")


async def list_tenants():
    store = current_sandbox().store
    accounts = await store.accounts()
    return {"tenants": [{"name": t.name, "token": t.token, "requester_key": t.requester_key,
                         "providers": sorted(t.providers),
                         "accounts": sum(1 for a in accounts if a.tenant == t.name)}
                        for t in store.tenants()]}, 200


async def list_key_requests(account_key: str | None = None, tenant: str | None = None):
    from baas_sandbox.handlers.pix_keys import key_request_body

    store = current_sandbox().store
    accounts = [a for a in await store.accounts(tenant) if account_key is None or a.account_key == account_key]
    requests = []
    for account in accounts:
        for request in await store.key_requests(account.account_key):
            requests.append(key_request_body(request) | {"tenant": account.tenant,
                                                          "claim_lock": getattr(request, "claim_lock", None)})
    requests.sort(key=lambda r: r["created_at"], reverse=True)
    return {"key_requests": requests}, 200
