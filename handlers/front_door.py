"""``GET /`` and ``GET /__admin/``: the front door, for a person (HTML) or a client (JSON).

Someone who opens the sandbox's address in a browser should not meet a JSON 404: the page says
what this is and links to everything there is to open. A client that asks for
``application/json`` gets the same links as data (``FrontDoor`` in both specs).
"""

from __future__ import annotations

import html

from connexion import request
from starlette.responses import HTMLResponse

from baas_sandbox import __version__

#: What a person can open, by the link's name: (path, what it is).
LINKS = {
    "console": ("/__admin/console", "the web console: accounts and keys live, verification codes, the clock, events, "
                "webhooks, scenarios, the request journal"),
    "product_api_ui": ("/ui/", "Swagger UI of the product APIs: credentials and Pix keys"),
    "product_api_spec": ("/openapi.json", "OpenAPI document of the product APIs (spec/openapi.yaml)"),
    "admin_api": ("/__admin/", "the sandbox control API's index (this page, under /__admin)"),
    "admin_api_ui": ("/__admin/ui/", "Swagger UI of the sandbox control API"),
    "admin_api_spec": ("/__admin/openapi.json", "OpenAPI document of the sandbox control API (spec/admin.yaml)"),
}

#: The README's main sections, each with the live address that goes with it.
GUIDE = [
    ("Authentication and tenants", "Bearer tokens org-a-token and org-b-token; the fixture accounts",
     "/__admin/accounts"),
    ("Walk-through", "the documents' own requests: a credential, CNPJ, random, email and phone keys", "/ui/"),
    ("The rules the sandbox applies", "check digits, 5/20 keys per account, one owner per key, DICT's decision",
     "/ui/"),
    ("Error codes and how to trigger them", "every documented error, produced on purpose; Prefer: code=, example=",
     "/ui/"),
    ("Error scenarios", "injected errors, latency and network faults from fixtures/scenarios/",
     "/__admin/scenarios"),
    ("Webhooks and data events", "signed deliveries with retries; the platform's events, live over SSE",
     "/__admin/webhooks/deliveries"),
    ("Verification codes", "the codes the sandbox \"sent\" by email or SMS", "/__admin/outbox"),
    ("Request journal", "the latest requests with their answers, secrets masked", "/__admin/requests"),
    ("Contract testing", "baas-sandbox fuzz: schemathesis over both specs", "/openapi.json"),
]


def index() -> dict:
    """The front door as data: the ``FrontDoor`` schema of both specs."""
    return {
        "name": "baas-sandbox",
        "version": __version__,
        "description": "A contract-first, stateful local sandbox of the Banking - Authentication and Pix key APIs.",
        "links": {name: {"href": href, "title": title} for name, (href, title) in LINKS.items()},
        "guide": [{"title": title, "summary": summary, "href": href} for title, summary, href in GUIDE],
    }


def wants_json(accept: str) -> bool:
    """JSON for a client that asks for it and not for HTML; a browser, curl (``*/*``) or no Accept:
    the page."""
    media_types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "application/json" in media_types and "text/html" not in media_types


def page(document: dict) -> str:
    esc = html.escape
    links = "\n".join(f'    <li><a href="{esc(link["href"])}">{esc(link["href"])}</a>: {esc(link["title"])}</li>'
                      for link in document["links"].values())
    guide = "\n".join(f'    <li><a href="{esc(entry["href"])}">{esc(entry["title"])}</a>: {esc(entry["summary"])}</li>'
                      for entry in document["guide"])
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>baas-sandbox</title>
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
           line-height: 1.5; color: #1b1b1b; }}
    code {{ background: #f2f2f2; padding: 0 .25em; }}
    a {{ color: #0645ad; }}
  </style>
</head>
<body>
  <main>
  <h1>baas-sandbox <small>{esc(document["version"])}</small></h1>
  <p>{esc(document["description"])} It keeps state (your keys are there when you list them), applies
  Brazil's DICT rules, and can produce every documented error on purpose.</p>
  <p>Product requests need <code>Authorization: Bearer org-a-token</code> (or <code>org-b-token</code>);
  the sandbox control API under <code>/__admin</code> needs no tenant token.
  The same index as JSON: <code>Accept: application/json</code>.</p>
  <p class="console">New here? Open <a href="/__admin/console">the console</a>: the namespace's accounts and keys moving
  live, the verification codes "sent", the clock, events, webhooks, scenarios and the request journal, in one page.</p>
  <h2>Open</h2>
  <ul>
{links}
  </ul>
  <h2>The guide (README), by section</h2>
  <ul>
{guide}
  </ul>
  </main>
</body>
</html>
"""


async def front_door():
    document = index()
    if wants_json(request.headers.get("accept", "")):
        return document, 200, {"Content-Type": "application/json"}  # one of the two documented
    return HTMLResponse(page(document))
