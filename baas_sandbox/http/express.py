"""The express lane: the product operations' everyday requests, answered in one step.

Every request crosses ~20 ASGI layers in the full pipeline (``baas_sandbox.app``); profiling under
load (``python -m bench``) found no single hotspot, only that spread. The lane is the pipeline's
steps for the common case, fused into one callable and compiled once per operation from the spec:
route -> authenticate -> validate the request -> the handler -> validate the response -> answer
(with ``tracking_id`` and a journal entry).

It never decides anything the full pipeline would decide differently, because it decides only the
clear cases and hands everything else over, unread body included:

- requests the lane does not serve: other paths or methods, the admin API, a ``Prefer`` or
  ``X-Sandbox-Scenario`` header, an ``Origin`` (CORS), an active scenario, repeated headers or
  query parameters, another Content-Type than ``application/json``, a body without a
  ``Content-Length`` (chunked) or over the body limit (``http/body_limit.py``);
- requests it cannot accept: no valid bearer token, a body that is not JSON, a parameter or body
  that its validator does not accept. The full pipeline then gives the 400/401 with every
  violation, in the API's own format.

Its validators (jsonschema-rs, compiled from the same JSON Schema) only ever *accept*: what they
refuse goes to the full pipeline's validators, which have the last word and word the errors, so a
difference between the two engines can cost speed, never change an answer (the test suite holds the
lane's accepts to the Python validators' verdicts). What the handler returns or raises is shaped by
the same functions the full pipeline uses (``errors.domain_error``, the same JSON encoding and
headers), and ``tests/test_express.py`` replays the same requests with the lane on and off and
compares the answers byte for byte.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jsonschema_rs
from starlette.types import ASGIApp, Receive, Scope, Send

from baas_sandbox.adapters.repository import StoreUnavailable
from baas_sandbox.defaults import DEFAULT_MAX_BODY_SIZE
from baas_sandbox.domain.errors import DomainError
from baas_sandbox.http import context, json_body, namespace, store_faults, tracking
from baas_sandbox.http.bodies import replaying
from baas_sandbox.http.journal import Redaction, recorded
from baas_sandbox.http.problems import Api, domain_error, sandbox_problem
from baas_sandbox.ids import new_id
from baas_sandbox.security import tenant_from_token
from baas_sandbox.services.namespaces import InvalidNamespace, Namespaces, TooManyNamespaces
from baas_sandbox.services.sandbox import Sandbox
from baas_sandbox.spec import Operation, to_json_schema

logger = logging.getLogger("baas_sandbox")

NAMESPACE_HEADER = namespace.HEADER.encode()
#: Headers whose presence means another part of the pipeline has a say: the lane steps aside.
HANDED_OVER_HEADERS = frozenset({b"prefer", b"x-sandbox-scenario", b"origin"})
PARAMETER_LOCATIONS = ("path", "query", "header")
_HTTP_METHODS = ("get", "put", "post", "patch", "delete")


class NotExpress(Exception):
    """An operation the lane cannot serve exactly as the full pipeline does; it stays there."""


def _accepts(schema: dict | None) -> Callable[[Any], bool]:
    """A fast yes/no of ``schema`` (OpenAPI 3.0) for an instance; formats are not checked: the
    specs' formats (``uuid``, ``password``) are not Draft 4 formats, which the Python validators
    check, so neither engine checks them."""
    if schema is None:
        return lambda _instance: True
    try:
        return jsonschema_rs.Draft4Validator(to_json_schema(schema), validate_formats=False).is_valid
    except (ValueError, jsonschema_rs.ValidationError) as exc:  # a pattern the engine cannot compile
        raise NotExpress(f"schema not compiled by jsonschema-rs: {exc}") from None


@dataclass(frozen=True)
class Parameter:
    location: str  # path, query or header
    name: str  # as in the spec; header names are matched lower-case
    argument: str | None  # the handler's keyword, or None when the handler does not take it
    required: bool
    accepts: Callable[[Any], bool]


@dataclass
class ExpressOperation:
    """One spec operation, compiled for the lane."""

    operation_id: str
    method: str
    path: str
    api: Api
    handler: Callable[..., Awaitable[Any]]
    parameters: tuple[Parameter, ...]
    body_accepts: Callable[[Any], bool] | None  # None: the operation takes no body
    body_required: bool
    secured: bool
    #: status -> (the body schema, OpenAPI 3.0), when responses are validated
    responses: dict[int, dict]
    response_accepts: dict[int, Callable[[Any], bool]]
    redaction: Redaction  # what the journal keeps of its requests
    pattern: re.Pattern | None  # for templated paths

    @classmethod
    def compile(cls, path: str, method: str, operation: dict, path_item: dict, handler: Callable,
                handler_arguments: frozenset[str], redaction: Redaction, validate_responses: bool,
                default_security: list | None = None, bearer_scheme: str | None = None) -> "ExpressOperation":
        """``bearer_scheme``: the name of the spec's bearer scheme checked by ``tenant_from_token``."""
        security = operation.get("security", default_security) or []
        if len(security) > 1 or any(list(requirement) != [bearer_scheme] for requirement in security):
            raise NotExpress(f"security {security!r}")
        parameters = []
        for spec in [*path_item.get("parameters", []), *operation.get("parameters", [])]:
            schema = spec.get("schema", {})
            if spec["in"] not in PARAMETER_LOCATIONS or schema.get("type") != "string":
                # Other types are coerced from text by connexion first: not repeated here.
                raise NotExpress(f"parameter {spec['name']} ({spec['in']}, {schema.get('type')})")
            header = spec["in"] == "header"
            # connexion hands handlers their path and query parameters (those they name), not headers.
            argument = spec["name"] if not header and spec["name"] in handler_arguments else None
            parameters.append(Parameter(spec["in"], spec["name"].lower() if header else spec["name"], argument,
                                        bool(spec.get("required")), _accepts(schema)))
        body = operation.get("requestBody")
        body_accepts = None
        if body is not None:
            if set(body.get("content", {})) != {"application/json"}:
                raise NotExpress("a request body other than JSON")
            body_accepts = _accepts(body["content"]["application/json"].get("schema"))
        responses, response_accepts = {}, {}
        for status, response in operation.get("responses", {}).items():
            if str(status).startswith("2") and not response.get("content"):
                raise NotExpress(f"a {status} response without a body")  # the lane writes JSON bodies only
            if set(response.get("content", {})) - {"application/json"}:
                raise NotExpress(f"a {status} response other than JSON")  # the lane writes JSON only
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if str(status).isdigit() and schema is not None and validate_responses:
                responses[int(status)] = schema
                response_accepts[int(status)] = _accepts(schema)
        templated = "{" in path
        pattern = None
        if templated:
            # matched whole (fullmatch): "$" would also match before a final newline
            pattern = re.compile(re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))
        return cls(operation["operationId"], method.upper(), path, Api.of(path), handler, tuple(parameters),
                   body_accepts, bool(body and body.get("required")), bool(security),
                   responses, response_accepts, redaction, pattern)


@dataclass
class ExpressCounts:
    """How many requests the lane answered and handed over (the tests check that it is used)."""

    answered: int = 0
    handed_over: int = 0


class _HandOver(Exception):
    """The full pipeline answers this request."""


class ExpressLane:
    """ASGI middleware, outermost: answers what it can, hands the rest to ``app`` (the full pipeline)."""

    def __init__(self, app: ASGIApp, namespaces: Namespaces, operations: list[ExpressOperation],
                 cors_vary: bool, counts: ExpressCounts | None = None,
                 max_body_size: int = DEFAULT_MAX_BODY_SIZE) -> None:
        self.app, self.namespaces, self.max_body_size = app, namespaces, max_body_size
        self.counts = counts if counts is not None else ExpressCounts()
        self._static: dict[tuple[str, str], ExpressOperation] = {}
        self._templated: dict[str, list[ExpressOperation]] = {}
        for operation in operations:
            if operation.pattern is None:
                self._static[(operation.method, operation.path)] = operation
            else:
                self._templated.setdefault(operation.method, []).append(operation)
        self._vary = [(b"vary", b"Origin")] if cors_vary else []

    def _route(self, method: str, path: str) -> tuple[ExpressOperation, dict[str, str]] | None:
        operation = self._static.get((method, path))
        if operation is not None:
            return operation, {}
        for operation in self._templated.get(method, ()):
            match = operation.pattern.fullmatch(path)  # type: ignore[union-attr]
            if match:
                return operation, match.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        routed = self._route(scope["method"], scope["path"])
        if routed is None:
            await self.app(scope, receive, send)
            return
        try:  # the namespace as the full pipeline finds it (http/namespace.py), which answers a refusal
            headers = _headers(scope)
            sandbox = await self.namespaces.get(namespace.requested(scope, headers.get(NAMESPACE_HEADER)))
        except (_HandOver, InvalidNamespace, TooManyNamespaces):
            await self.app(scope, receive, send)
            return
        if sandbox.scenarios.may_apply:
            await self.app(scope, receive, send)
            return
        await sandbox.settle()
        operation, path_params = routed
        body: bytes | None = None  # read: to be replayed if handed over
        sandbox_token = context._current.set(sandbox)  # the tokens, and what the handler uses
        try:
            # Authenticated before the body is read: without a valid token, the full pipeline answers
            # 401 and the body is never read.
            token_info = _token_info(headers) if operation.secured else None
            # A body over the limit, or one without a length, whatever the operation (a GET may carry
            # one too): the full pipeline's body limit decides, in one place.
            length = headers.get(b"content-length")
            if b"transfer-encoding" in headers or (
                    length is not None and (not length.isdigit() or int(length) > self.max_body_size)):
                raise _HandOver
            if operation.body_accepts is not None:
                if headers.get(b"content-type", b"").strip() != b"application/json" or length is None:
                    raise _HandOver
                body = await _read_body(receive)
            await self._answer(sandbox, operation, scope, headers, path_params, body or b"", token_info, send)
        except _HandOver:
            self.counts.handed_over += 1
            await self.app(scope, replaying(body, receive) if body is not None else receive, send)
        finally:
            context._current.reset(sandbox_token)

    async def _answer(self, sandbox: Sandbox, operation: ExpressOperation, scope: Scope, headers: dict[bytes, bytes],
                      path_params: dict[str, str], raw_body: bytes, token_info: dict | None, send: Send) -> None:
        started, wall = time.perf_counter(), time.time()
        arguments = self._arguments(operation, scope, headers, path_params)
        parsed = _parsed_body(operation, raw_body)
        if parsed is not _NO_BODY:
            arguments["body"] = parsed

        given = headers.get(b"tracking_id")
        tracking_id = given.decode("latin-1") if given else new_id()  # an empty one counts as none
        tracking_token = tracking._current.set(tracking_id)
        try:
            if token_info is not None:
                arguments["token_info"] = token_info
            self.counts.answered += 1  # from here on, the lane answers whatever happens
            status, payload, extra_headers = await self._run(operation, scope, arguments)
        finally:
            tracking._current.reset(tracking_token)

        try:
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"tracking_id", tracking_id.encode("latin-1")),
                *extra_headers,
                *self._vary,
            ]})
            await send({"type": "http.response.body", "body": payload})
        finally:  # recorded even when the client went away meanwhile, as the full pipeline does
            sandbox.record_request(recorded(
                scope, operation.operation_id, operation.redaction, status, started, wall, tracking_id,
                None, raw_body, payload, parsed_body=None if parsed is _NO_BODY else parsed))

    def _arguments(self, operation: ExpressOperation, scope: Scope, headers: dict[bytes, bytes],
                   path_params: dict[str, str]) -> dict[str, Any]:
        query: dict[str, str] | None = None
        arguments: dict[str, Any] = {}
        for parameter in operation.parameters:
            if parameter.location == "path":
                value = path_params.get(parameter.name)
            elif parameter.location == "query":
                if query is None:
                    query = _query(scope)
                value = query.get(parameter.name)
            else:
                raw = headers.get(parameter.name.encode("latin-1"))
                value = raw.decode("latin-1") if raw is not None else None
            if value is None:
                if parameter.required:
                    raise _HandOver
                continue
            if not parameter.accepts(value):
                raise _HandOver
            if parameter.argument is not None:
                arguments[parameter.argument] = value
        return arguments

    async def _run(self, operation: ExpressOperation, scope: Scope,
                   arguments: dict) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The handler's answer, or its error in the API's format, as (status, JSON bytes, more
        headers: an error's own, such as a rate limit's ``Retry-After``)."""
        try:
            body, status = await operation.handler(**arguments)
        except DomainError as error:
            response = domain_error(operation.api, error)
            return response.status_code, response.body.encode(), response.asgi_headers
        except StoreUnavailable as error:
            store_faults.log(scope, error)
            response = store_faults.unavailable(operation.api)
            return response.status_code, response.body.encode(), response.asgi_headers
        except Exception as error:  # a bug: logged with its traceback, answered without one
            logger.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=error)
            response = sandbox_problem(operation.api, 500, "see the sandbox's log")
            return response.status_code, response.body.encode(), []
        if operation.responses and status in operation.responses:
            problem = _response_problem(operation, status, body)
            if problem is not None:
                logger.error("%s %s: %s", scope["method"], scope["path"], problem)
                response = sandbox_problem(operation.api, 500, problem)
                return response.status_code, response.body.encode(), []
        # connexion's own encoding of a handler's answer: json.dumps' defaults and a newline.
        return status, (json.dumps(body) + "\n").encode(), []


# -- the steps ------------------------------------------------------------------------------------------


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request headers by lower-case name (ASGI servers lower-case them)."""
    raw = scope["headers"]
    headers = dict(raw)
    if len(headers) != len(raw) or not HANDED_OVER_HEADERS.isdisjoint(headers):
        raise _HandOver  # a repeated header: which one counts is the full pipeline's call
    return headers


def _query(scope: Scope) -> dict[str, str]:
    """The query string as starlette reads it (latin-1, blank values kept), one value per name."""
    text = scope["query_string"].decode("latin-1")
    if "%" in text or "+" in text or ";" in text:
        pairs = parse_qsl(text, keep_blank_values=True)
    else:  # nothing to decode: what parse_qsl would find, without its general machinery
        pairs = [tuple(part.split("=", 1)) if "=" in part else (part, "") for part in text.split("&") if part]
    query = dict(pairs)
    if len(query) != len(pairs):
        raise _HandOver
    return query


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: the full pipeline sees it too
            raise _HandOver
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


_NO_BODY = object()


def _parsed_body(operation: ExpressOperation, raw: bytes) -> Any:
    if operation.body_accepts is None:
        return _NO_BODY
    if not raw:
        raise _HandOver  # required: the full pipeline lists the missing fields; optional: its default
    try:
        body = json_body.parse(raw)  # as the full pipeline's body validator reads it
    except json_body.InvalidJson:  # the full pipeline words the reason
        raise _HandOver from None
    if not operation.body_accepts(body):
        raise _HandOver
    return body


def _token_info(headers: dict[bytes, bytes]) -> dict:
    """connexion's bearer check: ``<type> <token>``, the type case-insensitive, the token known."""
    parts = headers.get(b"authorization", b"").decode("latin-1").split(maxsplit=1)
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise _HandOver
    token_info = tenant_from_token(parts[1])
    if token_info is None:
        raise _HandOver
    return token_info


def _response_problem(operation: ExpressOperation, status: int, body: Any) -> str | None:
    """connexion's response validation: None when ``body`` is a valid answer, else its message."""
    if operation.response_accepts[status](body):
        return None
    # The fast engine refused it: the full pipeline's validator decides, and words the problem.
    from connexion.json_schema import Draft4ResponseValidator, format_error_with_path
    from jsonschema import Draft4Validator

    validator = Draft4ResponseValidator(operation.responses[status], format_checker=Draft4Validator.FORMAT_CHECKER)
    for error in validator.iter_errors(body):
        return f"Response body does not conform to specification. {error.message}{format_error_with_path(error)}"
    return None


def compile_operations(spec: dict, resolve: Callable[[str], Callable], contract_operations: dict[str, Operation],
                       validate_responses: bool) -> list[ExpressOperation]:
    """The lane's operations of a resolved product spec; those it cannot serve exactly are left out."""
    import inspect

    bearer_scheme = None
    for name, scheme in spec.get("components", {}).get("securitySchemes", {}).items():
        if (scheme.get("type"), str(scheme.get("scheme")).lower(), scheme.get("x-bearerInfoFunc")) == (
                "http", "bearer", f"{tenant_from_token.__module__}.{tenant_from_token.__name__}"):
            bearer_scheme = name
    operations = []
    for path, item in spec.get("paths", {}).items():
        for method in _HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            handler = resolve(operation["operationId"])
            arguments = frozenset(inspect.signature(handler).parameters)
            try:
                operations.append(ExpressOperation.compile(
                    path, method, operation, item, handler, arguments,
                    Redaction.of(contract_operations.get(operation["operationId"])), validate_responses,
                    spec.get("security"), bearer_scheme))
            except NotExpress as reason:
                logger.debug("express lane: %s %s stays in the full pipeline: %s", method.upper(), path, reason)
    return operations
