"""``Prefer: code=502, example=EBAA0002`` — any documented response, on purpose, on one request.

``dynamic=true`` answers a body generated from the response schema (faker) instead of an example.

Prism's convention, so teams moving from Prism keep their habits. It runs after authentication
and request validation (a bad request still gets its 400) and before response validation, so an
answer produced this way is always one the contract allows: it can only name statuses and examples
that the operation documents.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from baas_sandbox.http.bodies import buffered
from baas_sandbox.http.dynamic import BodyGenerator
from baas_sandbox.http.mentions import example_for_request
from baas_sandbox.http.problems import Api, Violation, sandbox_problem
from baas_sandbox.spec import Contract

ROUTING_CONTEXT = "connexion_routing"


def _first_success(statuses) -> int | None:
    return min((status for status in statuses if 200 <= status < 300), default=None)


def parse_prefer(value: str) -> dict[str, str]:
    """``code=502, example=EBAA0002`` -> {"code": "502", "example": "EBAA0002"} (RFC 7240 tokens)."""
    preferences = {}
    for token in value.replace(";", ",").split(","):
        name, _, setting = token.strip().partition("=")
        if name:
            preferences[name.strip().lower()] = setting.strip().strip('"')
    return preferences


class PreferredResponse:
    def __init__(self, app: ASGIApp, contract: Contract, seed: int | None = None) -> None:
        self.app, self.contract = app, contract
        self.generator = BodyGenerator(seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefer = Headers(scope=scope).get("prefer") if scope["type"] == "http" else None
        operation_id = scope.get("extensions", {}).get(ROUTING_CONTEXT, {}).get("operation_id")
        wanted = parse_prefer(prefer) if prefer and operation_id else {}
        dynamic = wanted.get("dynamic", "").lower() == "true"
        if ("code" not in wanted and "example" not in wanted and not dynamic) or Api.of(scope["path"]) is Api.ADMIN:
            await self.app(scope, receive, send)
            return
        api = Api.of(scope["path"])
        try:
            code = int(wanted["code"]) if "code" in wanted else None
            if dynamic:
                status, body = self._generated(operation_id, code)
            else:
                status, body = self.contract.choose(operation_id, code, wanted.get("example"))
                request_body, receive = await buffered(receive)
                body = example_for_request(self.contract, operation_id, status, body, scope, request_body)
        except (ValueError, LookupError) as exc:
            reason = str(exc) if isinstance(exc, LookupError) else f"code={wanted['code']!r} is not a status"
            response = sandbox_problem(api, 400, f"Prefer header: {reason}", [Violation("header Prefer", reason)])
            status, payload = response.status_code, response.body
        else:
            payload = json.dumps(body, ensure_ascii=False)
        encoded = payload.encode() if isinstance(payload, str) else payload
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(encoded)).encode())],
        })
        await send({"type": "http.response.body", "body": encoded})

    def _generated(self, operation_id: str, code: int | None) -> tuple[int, object]:
        """``dynamic=true``: a body made from the response schema (the first 2xx without ``code``)."""
        statuses = self.contract.operations[operation_id].responses
        status = code if code is not None else _first_success(statuses)
        if status not in statuses:
            raise LookupError(f"status {code} is not documented for {operation_id}")
        schema = self.contract.schema_for(operation_id, status)
        if schema is None:
            raise LookupError(f"status {status} of {operation_id} has no body to generate")
        return status, self.generator.generate(schema)
