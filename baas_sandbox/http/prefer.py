"""``Prefer: code=502, example=EBAA0002`` — any documented response, on purpose, on one request.

Prism's convention, so teams moving from Prism keep their habits. It runs after authentication
and request validation (a bad request still gets its 400) and before response validation, so an
answer produced this way is always one the contract allows: it can only name statuses and examples
that the operation documents.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from baas_sandbox.http.errors import Api, sandbox_problem
from baas_sandbox.http.violations import Violation

ROUTING_CONTEXT = "connexion_routing"


class ExampleCatalogue:
    """The examples of each operation's responses: operationId -> status -> name -> body."""

    def __init__(self, *resolved_specs: dict) -> None:
        self.operations: dict[str, dict[int, dict[str, object]]] = {}
        for spec in resolved_specs:
            for path_item in spec.get("paths", {}).values():
                for operation in path_item.values():
                    if isinstance(operation, dict) and "operationId" in operation:
                        self.operations[operation["operationId"]] = self._examples(operation)

    @staticmethod
    def _examples(operation: dict) -> dict[int, dict[str, object]]:
        by_status: dict[int, dict[str, object]] = {}
        for status, response in operation.get("responses", {}).items():
            if not str(status).isdigit():
                continue
            media = response.get("content", {}).get("application/json", {})
            examples = {name: example["value"] for name, example in media.get("examples", {}).items()
                        if "value" in example}
            by_status[int(status)] = examples
        return by_status

    def choose(self, operation_id: str, code: int | None, example: str | None) -> tuple[int, object]:
        """The (status, body) asked for; ``LookupError`` explaining why when there is none."""
        statuses = self.operations.get(operation_id, {})
        documented = ", ".join(str(s) for s in sorted(statuses))
        if code is not None and code not in statuses:
            raise LookupError(f"status {code} is not documented for {operation_id} (documented: {documented})")
        candidates = {code: statuses[code]} if code is not None else statuses
        for status, examples in candidates.items():
            if example is None and examples:
                return status, next(iter(examples.values()))
            if example is not None and example in examples:
                return status, examples[example]
        if example is not None:
            raise LookupError(f"no example named {example!r} for {operation_id}"
                              + (f" status {code}" if code is not None else ""))
        raise LookupError(f"status {code} of {operation_id} has no example to answer with")


def parse_prefer(value: str) -> dict[str, str]:
    """``code=502, example=EBAA0002`` -> {"code": "502", "example": "EBAA0002"} (RFC 7240 tokens)."""
    preferences = {}
    for token in value.replace(";", ",").split(","):
        name, _, setting = token.strip().partition("=")
        if name:
            preferences[name.strip().lower()] = setting.strip().strip('"')
    return preferences


class PreferredResponse:
    def __init__(self, app: ASGIApp, catalogue: ExampleCatalogue) -> None:
        self.app, self.catalogue = app, catalogue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefer = Headers(scope=scope).get("prefer") if scope["type"] == "http" else None
        operation_id = scope.get("extensions", {}).get(ROUTING_CONTEXT, {}).get("operation_id")
        wanted = parse_prefer(prefer) if prefer and operation_id else {}
        if "code" not in wanted and "example" not in wanted:
            await self.app(scope, receive, send)
            return
        api = Api.of(scope["path"])
        try:
            code = int(wanted["code"]) if "code" in wanted else None
            status, body = self.catalogue.choose(operation_id, code, wanted.get("example"))
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
