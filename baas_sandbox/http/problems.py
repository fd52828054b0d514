"""The error bodies of each API, as data: what the pipeline answers when it, not a handler, decides.

``/banking-auth`` answers ``{code, message[, details]}``; ``/baas`` answers
``{title, description, translation, code[, extra_fields]}``; ``/__admin`` answers
``{code, message[, details]}``. Business errors (``DomainError``) carry their own code; what
happens before a handler runs (validation, authentication, routing) gets the sandbox's ``SBX``
codes, or the platform's EBAA0004/EBAA0005 where the banking authentication API has them.

No web framework here: the express lane and connexion's error handlers (``http/errors.py``) both
render these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum

from starlette.types import Send

from baas_sandbox.domain.errors import (
    BaasError,
    BankingAuthError,
    DomainError,
    InvalidPixKey,
)


@dataclass(frozen=True)
class Violation:
    """One way a request breaks the spec."""

    field: str  # "key", "provider_data.client_id", "header account_token", "(body)"
    message: str
    missing: bool = False  # a required field or parameter is absent
    #: The API's own error for a rule of the schema (its ``x-sandbox-code``), when it has one.
    code: str | None = None

    def as_dict(self) -> dict:
        return {"field": self.field, "message": self.message}


class Api(Enum):
    BANKING_AUTH = "/banking-auth"
    BAAS = "/baas"
    ADMIN = "/__admin"

    @classmethod
    def of(cls, path: str) -> "Api":
        for api in (cls.BANKING_AUTH, cls.BAAS):
            if path == api.value or path.startswith(api.value + "/"):
                return api
        if path.startswith(MOCK_PREFIX + "/"):  # the provider's sandbox simulations: the Pix key API's
            return cls.BAAS
        return cls.ADMIN


#: The provider's sandbox simulations (``/mock/pix_keys/...``), answered like the Pix key API.
MOCK_PREFIX = "/mock"


# Sandbox problems: status -> (code, title, English text, Portuguese text)
_SANDBOX_PROBLEMS = {
    400: ("SBX000400", "Bad Request", "Invalid request", "Requisição inválida"),
    401: ("SBX000401", "Unauthorized", "Unauthorized", "Não autorizado"),
    403: ("SBX000403", "Forbidden", "Forbidden", "Proibido"),
    404: ("SBX000404", "Not Found", "Not Found", "Não encontrado"),
    405: ("SBX000405", "Method Not Allowed", "Method Not Allowed", "Método não permitido"),
    413: ("SBX000413", "Content Too Large", "Request body too large", "Corpo da requisição grande demais"),
    415: ("SBX000415", "Unsupported Media Type", "Unsupported Media Type", "Tipo de mídia não suportado"),
    421: ("SBX000421", "Misdirected Request", "Misdirected Request", "Requisição mal direcionada"),
    429: ("SBX000429", "Too Many Requests", "Namespace limit reached", "Limite de namespaces atingido"),
    503: ("SBX000503", "Service Unavailable", "Service unavailable", "Serviço indisponível"),
    500: ("SBX000500", "Internal Server Error", "Internal sandbox error", "Erro interno do sandbox"),
}

_PORTUGUESE_DETAILS = {
    "No authorization token provided": "Nenhum token de autorização foi fornecido",
    "Invalid authorization header": "Cabeçalho de autorização inválido",
    "Provided token is not valid": "O token fornecido não é válido",
}


@dataclass
class Answer:
    """A JSON answer of the pipeline's own (an error): its status and body text."""

    status_code: int
    body: str
    #: Headers that go with it (``Retry-After`` of a rate limit).
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        """``headers`` as ASGI sends them."""
        return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers.items()]


async def send_answer(send: Send, answer: Answer) -> None:
    """``answer`` sent whole over ASGI, by a layer that answers before (or instead of) the app."""
    payload = answer.body.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               *answer.asgi_headers]
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def json_answer(status: int, body: dict) -> Answer:
    return Answer(status, json.dumps(body, ensure_ascii=False))


def sandbox_problem(api: Api, status: int, details: str, violations: list[Violation] = (),
                    details_pt: str | None = None) -> Answer:
    """``details_pt``: the Portuguese of ``details`` where the known translations lack it."""
    code, title, text, text_pt = _SANDBOX_PROBLEMS.get(status, _SANDBOX_PROBLEMS[500])
    if api is Api.BAAS:
        details_pt = details_pt or _PORTUGUESE_DETAILS.get(details, details)
        body = {
            "title": title,
            "description": f"{text}: {details}" if details else text,
            "translation": f"{text_pt}: {details_pt}" if details else text_pt,
            "code": code,
        }
        if violations:
            body["extra_fields"] = {"violations": [v.as_dict() for v in violations]}
        return json_answer(status, body)
    body = {"code": code, "message": title}
    if details:
        body["details"] = details
    return json_answer(status, body)


def invalid_request(api: Api, violations: list[Violation]) -> Answer:
    # A rule with its own error (a supported pair) answers it when nothing else is wrong; otherwise
    # the other violations say what is (a provider out of the enum also breaks the pairs).
    plain = [v for v in violations if v.code is None]
    if not plain and api is Api.BANKING_AUTH:
        return json_answer(400, {"code": violations[0].code, "message": violations[0].message})
    violations = plain or violations
    details = "; ".join(f"{v.field}: {v.message}" for v in violations)
    if api is Api.BANKING_AUTH:
        missing = [v.field.removeprefix("header ") for v in violations if v.missing]
        if missing:
            body = {"code": "EBAA0005", "message": f"Invalid payload. Required fields: [{', '.join(missing)}]"}
            others = [v for v in violations if not v.missing]
            if others:
                body["details"] = "; ".join(f"{v.field}: {v.message}" for v in others)
            return json_answer(400, body)
        return json_answer(400, {"code": "EBAA0004", "message": "Invalid payload", "details": details})
    return sandbox_problem(api, 400, details, violations)


def domain_error(api: Api, error: DomainError) -> Answer:
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
        answer = json_answer(error.status, body)
        answer.headers = error.headers()
        return answer
    assert isinstance(error, BankingAuthError)
    return json_answer(error.status, {"code": error.code, "message": error.render_message()})
