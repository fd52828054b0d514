"""Every error in the error body of the API it belongs to, never a generic problem+json.

``/banking-auth`` answers ``{code, message[, details]}``; ``/baas`` answers
``{title, description, translation, code[, extra_fields]}``; ``/__admin`` answers
``{code, message[, details]}``. Business errors (``DomainError``) carry their own code; what
happens before a handler runs (validation, authentication, routing) gets the sandbox's ``SBX``
codes, or the platform's EBAA0004/EBAA0005 where the banking authentication API has them.
"""

from __future__ import annotations

import json
import logging
import re
from enum import Enum

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from baas_sandbox.domain.errors import BaasError, BankingAuthError, DomainError, InvalidPixKey
from baas_sandbox.http.violations import RequestInvalid, Violation

logger = logging.getLogger("baas_sandbox")

HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


class Api(Enum):
    BANKING_AUTH = "/banking-auth"
    BAAS = "/baas"
    ADMIN = "/__admin"

    @classmethod
    def of(cls, path: str) -> "Api":
        for api in (cls.BANKING_AUTH, cls.BAAS):
            if path == api.value or path.startswith(api.value + "/"):
                return api
        return cls.ADMIN


# Sandbox problems: status -> (code, title, English text, Portuguese text)
_SANDBOX_PROBLEMS = {
    400: ("SBX000400", "Bad Request", "Invalid request", "Requisição inválida"),
    401: ("SBX000401", "Unauthorized", "Unauthorized", "Não autorizado"),
    403: ("SBX000403", "Forbidden", "Forbidden", "Proibido"),
    404: ("SBX000404", "Not Found", "Not Found", "Não encontrado"),
    405: ("SBX000405", "Method Not Allowed", "Method Not Allowed", "Método não permitido"),
    415: ("SBX000415", "Unsupported Media Type", "Unsupported Media Type", "Tipo de mídia não suportado"),
    500: ("SBX000500", "Internal Server Error", "Internal sandbox error", "Erro interno do sandbox"),
}

_PORTUGUESE_DETAILS = {
    "No authorization token provided": "Nenhum token de autorização foi fornecido",
    "Invalid authorization header": "Cabeçalho de autorização inválido",
    "Provided token is not valid": "O token fornecido não é válido",
}


def json_response(status: int, body: dict) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False),
    )


def sandbox_problem(api: Api, status: int, details: str, violations: list[Violation] = ()) -> ConnexionResponse:
    code, title, text, text_pt = _SANDBOX_PROBLEMS.get(status, _SANDBOX_PROBLEMS[500])
    if api is Api.BAAS:
        body = {
            "title": title,
            "description": f"{text}: {details}" if details else text,
            "translation": f"{text_pt}: {_PORTUGUESE_DETAILS.get(details, details)}" if details else text_pt,
            "code": code,
        }
        if violations:
            body["extra_fields"] = {"violations": [v.as_dict() for v in violations]}
        return json_response(status, body)
    body = {"code": code, "message": title}
    if details:
        body["details"] = details
    return json_response(status, body)


def invalid_request(api: Api, violations: list[Violation]) -> ConnexionResponse:
    details = "; ".join(f"{v.field}: {v.message}" for v in violations)
    if api is Api.BANKING_AUTH:
        missing = [v.field.removeprefix("header ") for v in violations if v.missing]
        if missing:
            body = {"code": "EBAA0005", "message": f"Invalid payload. Required fields: [{', '.join(missing)}]"}
            others = [v for v in violations if not v.missing]
            if others:
                body["details"] = "; ".join(f"{v.field}: {v.message}" for v in others)
            return json_response(400, body)
        return json_response(400, {"code": "EBAA0004", "message": "Invalid payload", "details": details})
    return sandbox_problem(api, 400, details, violations)


def domain_error(api: Api, error: DomainError) -> ConnexionResponse:
    if isinstance(error, BaasError):
        if error.two_factor_shape:
            body: dict = {
                "title": error.title,
                "description": {"description": error.render_description(),
                                "translation": error.render_translation()},
                "translation": {},
                "extra_fields": {},
                "code": error.code,
            }
        else:
            body = {
                "title": error.title,
                "description": error.render_description(),
                "translation": error.render_translation(),
                "code": error.code,
            }
            if isinstance(error, InvalidPixKey):
                body["extra_fields"] = {"violations": error.violations}
        return json_response(error.status, body)
    assert isinstance(error, BankingAuthError)
    return json_response(error.status, {"code": error.code, "message": error.render_message()})


# -- connexion error handlers ---------------------------------------------------------------------


def on_domain_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, DomainError)
    return domain_error(Api.of(request.url.path), exc)


def on_problem(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, ProblemException)
    api = Api.of(request.url.path)
    if isinstance(exc, RequestInvalid):
        return invalid_request(api, exc.violations)
    if exc.status >= 500:
        logger.error("%s %s: %s", request.method, request.url.path, exc.detail)
    if exc.status == 400:
        return invalid_request(api, [Violation("(request)", str(exc.detail))])
    return sandbox_problem(api, exc.status, str(exc.detail or ""))


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
        response = sandbox_problem(api, exc.status_code, details)
        response.headers = headers
        return response


def on_crash(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """A bug: logged with its traceback, answered without one."""
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return sandbox_problem(Api.of(request.url.path), 500, "see the sandbox's log")
