"""Applying scenario rules to live requests: after authentication and validation, before the handler.

The rule is chosen from the active scenarios, or from the one named by ``X-Sandbox-Scenario``.
Its effects apply in order: latency, then an answer (a documented example or an inline body) or
the handler's own, then a network fault on the way out.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baas_sandbox.domain.errors import DomainError
from baas_sandbox.http import faults
from baas_sandbox.http.bodies import buffered
from baas_sandbox.http.context import current_sandbox
from baas_sandbox.http.mentions import example_for_request
from baas_sandbox.http.problems import Api, Violation, domain_error, sandbox_problem, send_answer
from baas_sandbox.http.scope import APPLIED, ROUTING_CONTEXT
from baas_sandbox.scenarios.model import RequestView, Rule
from baas_sandbox.spec import Contract

HEADER = "x-sandbox-scenario"


class ApplyScenarios:
    """The namespace's scenarios (its switches and counts) decide; the library is the process's."""

    def __init__(self, app: ASGIApp, contract: Contract) -> None:
        self.app, self.contract = app, contract

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation_id = scope.get("extensions", {}).get(ROUTING_CONTEXT, {}).get("operation_id")
        if scope["type"] != "http" or operation_id is None or Api.of(scope["path"]) is Api.ADMIN:
            await self.app(scope, receive, send)
            return
        library = current_sandbox().scenarios
        only = Headers(scope=scope).get(HEADER)
        if only is not None and not library.known(only):
            reason = f"unknown scenario {only!r}"
            response = sandbox_problem(Api.of(scope["path"]), 400, f"X-Sandbox-Scenario: {reason}",
                                       [Violation(f"header {HEADER}", reason)])
            await send_answer(send, response)
            return
        if only is None and not library.active:
            await self.app(scope, receive, send)
            return

        body, receive = await buffered(receive)
        choice = await library.choose(_view(scope, operation_id, body), only=only)
        if choice is None:
            await self.app(scope, receive, send)
            return
        rule = choice.rule
        scope.setdefault("state", {})[APPLIED] = {"scenario": choice.scenario.name, "rule": rule.name}
        if rule.latency is not None:
            await asyncio.sleep(library.sample_latency(choice))
        if rule.fault is not None and rule.fault.kind in ("reset", "close"):
            await faults.drop(scope, rule.fault)
            return
        if rule.respond is None and rule.fault is None:
            await self.app(scope, receive, send)  # latency only
            return
        status, headers, payload = (self._answer(operation_id, rule, scope, body) if rule.respond is not None
                                    else await _capture(self.app, scope, receive))
        if rule.fault is not None:
            await faults.send_damaged(scope, rule.fault, status, headers, payload)
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _answer(self, operation_id: str, rule: Rule, scope: Scope,
                request_body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        respond = rule.respond
        assert respond is not None
        if respond.inline:  # written for this scenario: answered as written
            body = respond.body
        else:
            example = self.contract.choose(operation_id, respond.status, respond.example)[1]
            body = example_for_request(self.contract, operation_id, respond.status, example, scope, request_body)
        payload = json.dumps(body, ensure_ascii=False).encode()
        return respond.status, [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())], payload


def _view(scope: Scope, operation_id: str, body: bytes) -> RequestView:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    return RequestView(
        operation_id=operation_id,
        method=scope["method"],
        headers={name: value for name, value in Headers(scope=scope).items()},
        query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
        path_params={k: str(v) for k, v in scope.get("path_params", {}).items()},
        body=parsed,
    )


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[int, list, bytes]:
    """Run the handler and keep its answer, to damage it on the way out."""
    status, headers, chunks = 500, [], []

    async def keep(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, keep)
    except DomainError as error:  # a business error is an answer too: it can be damaged like any other
        response = domain_error(Api.of(scope["path"]), error)
        return response.status_code, [(b"content-type", b"application/json")], response.body.encode()
    return status, headers, b"".join(chunks)
