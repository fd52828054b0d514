"""connexion's error handlers: every error in the error body of the API it belongs to
(``http/problems.py``), never a generic problem+json."""

from __future__ import annotations

import json
import logging
import re

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from baas_sandbox.adapters.repository import StoreUnavailable
from baas_sandbox.domain.errors import DomainError
from baas_sandbox.http import store_faults
from baas_sandbox.http.body_limit import BodyTooLarge, too_large
from baas_sandbox.http.problems import (
    Answer,
    Api,
    Violation,
    domain_error,
    invalid_request,
    sandbox_problem,
)
from baas_sandbox.http.violations import RequestInvalid

logger = logging.getLogger("baas_sandbox")

HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


def json_response(status: int, body: dict) -> ConnexionResponse:
    """A handler's JSON answer built by hand (the admin API's), encoded as the error bodies are."""
    return _response(Answer(status, json.dumps(body, ensure_ascii=False)))


def _response(answer: Answer) -> ConnexionResponse:
    response = ConnexionResponse(status_code=answer.status_code, mimetype="application/json",
                                 content_type="application/json", body=answer.body)
    if answer.headers:
        response.headers = dict(answer.headers)
    return response


# -- connexion error handlers ---------------------------------------------------------------------


def on_domain_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, DomainError)
    return _response(domain_error(Api.of(request.url.path), exc))


def on_problem(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, ProblemException)
    api = Api.of(request.url.path)
    if isinstance(exc, RequestInvalid):
        return _response(invalid_request(api, exc.violations))
    if exc.status >= 500:
        logger.error("%s %s: %s", request.method, request.url.path, exc.detail)
    if exc.status == 400:
        return _response(invalid_request(api, [Violation("(request)", str(exc.detail))]))
    return _response(sandbox_problem(api, exc.status, str(exc.detail or "")))


class RouteTable:
    """The methods each documented path allows, for the ``Allow`` header of a 405.

    connexion gives every (path, method) its own route, so the router's own 405 only knows the
    methods of the first route it matched; the spec knows them all.
    """

    def __init__(self, specs: list[tuple[str, dict]]) -> None:
        self._routes: list[tuple[re.Pattern, list[str]]] = []
        for base_path, spec in specs:
            for path, item in spec.get("paths", {}).items():
                methods = sorted(m.upper() for m in item if m in HTTP_METHODS)
                if "GET" in methods:
                    methods.append("HEAD")  # served for every GET route
                pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(base_path + path))
                self._routes.append((re.compile(pattern + "$"), methods))

    def allowed(self, path: str) -> list[str] | None:
        for pattern, methods in self._routes:
            if pattern.match(path):
                return methods
        return None

    def on_http_exception(self, request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, HTTPException)
        api = Api.of(request.url.path)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            details = f"no operation at {request.method} {request.url.path}"
        elif exc.status_code == 405:
            details = f"{request.method} is not allowed on {request.url.path}"
            allowed = self.allowed(request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        else:
            details = str(exc.detail or "")
        response = _response(sandbox_problem(api, exc.status_code, details))
        response.headers = headers
        return response


def on_body_too_large(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """A chunked body passed the limit while it was read: 413, and the connection closed rather
    than the rest of the body read."""
    assert isinstance(exc, BodyTooLarge)
    response = _response(too_large(Api.of(request.url.path), exc.limit))
    response.headers = {"Connection": "close"}
    return response


def on_store_unavailable(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """The shared store did not answer: 503 SBX000503, try again (``http/store_faults.py``)."""
    assert isinstance(exc, StoreUnavailable)
    store_faults.log(request.scope, exc)
    return _response(store_faults.unavailable(Api.of(request.url.path)))


def on_crash(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """A bug: logged with its traceback, answered without one."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(sandbox_problem(Api.of(request.url.path), 500, "see the sandbox's log"))
