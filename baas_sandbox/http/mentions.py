"""Injected answers speak of the request: a ``Prefer`` or scenario answer names the request's values.

A documented example is written for one request: PIX000014's says "A conta 6d30a0b1-… já atingiu
o número máximo de chaves pix". Injected into a request for another account, it would name an
account the client never sent, and a screen that shows the message would show the wrong one. So
before an example is answered, the values the request carries (``MENTIONED``) replace the
example's:

- a field of that name (``account_key``, ``pix_key``, …) holding text takes the request's value;
- a message whose code the domain knows (``domain/errors.py``: "A conta {account_key} …") is read
  back with that message's template, which says which part of the text names which value, and
  written again with the request's values in place of the example's (the other parts kept).

The caller keeps the example as it is when the result does not fit the response schema.
"""

from __future__ import annotations

import copy
import functools
import re
import string
from typing import Any
from urllib.parse import parse_qsl

from baas_sandbox.domain import errors
from baas_sandbox.http import json_body
from baas_sandbox.spec import Contract

#: The request values an answer may name (the seed documents' placeholders), and the key's type,
#: which goes with its value (an injected 201 must not call an email key "cnpj").
MENTIONED = ("account_key", "pix_key", "pix_key_type", "pix_key_request_key", "claim_request_key", "provider",
             "type")


def request_values(path_params: dict, query_string: bytes, body: bytes) -> dict[str, str]:
    """The ``MENTIONED`` values a request carries: its JSON body's, its query's, its path's."""
    values: dict[str, str] = {}
    try:
        parsed = json_body.parse(body) if body else None
    except json_body.InvalidJson:
        parsed = None
    sources = [parsed if isinstance(parsed, dict) else {},
               dict(parse_qsl(query_string.decode("latin-1"))), path_params]
    for source in sources:
        for name in MENTIONED:
            value = source.get(name)
            if isinstance(value, str) and value:
                values[name] = value
    return values


def example_for_request(contract: Contract, operation_id: str, status: int, example: Any, scope: dict,
                        body: bytes) -> Any:
    """``example``, answered to the request of ``scope`` (``body``: its body): naming the request's
    values where that still fits the response schema, as it is otherwise."""
    values = request_values(scope.get("path_params") or {}, scope.get("query_string", b""), body)
    spoken = speaking_of(example, values)
    if spoken == example or contract.body_problems(operation_id, status, spoken):
        return example
    return spoken


def speaking_of(example: Any, values: dict[str, str]) -> Any:
    """A copy of ``example`` that names ``values`` where it named the example's own."""
    if not values:
        return example
    return _rewrite(copy.deepcopy(example), values)


def _rewrite(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    for name, value in node.items():
        if name in values and isinstance(value, str):
            node[name] = values[name]
        else:
            node[name] = _rewrite(value, values)
    for field, template in _TEMPLATES.get(node.get("code"), {}).items():
        if isinstance(node.get(field), str):
            node[field] = _rerender(template, node[field], values)
    return node


def _rerender(template: str, text: str, values: dict[str, str]) -> str:
    """``text`` written from ``template`` again, with ``values`` for the fields they name."""
    pattern, names = _pattern(template)
    match = pattern.fullmatch(text)
    if match is None:  # not this template's text (edited by hand in the spec): left as it is
        return text
    found = match.groupdict()
    return template.format(**{name: values.get(name, found[name]) if name in MENTIONED else found[name]
                              for name in names})


@functools.lru_cache(maxsize=None)
def _pattern(template: str) -> tuple[re.Pattern, tuple[str, ...]]:
    parts, names = [], []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(f"(?P={name})" if name in names else f"(?P<{name}>.*?)")
            if name not in names:
                names.append(name)
    return re.compile("".join(parts), re.DOTALL), tuple(names)


def _domain_templates() -> dict[str, dict[str, str]]:
    """code -> {field of the error body: its template}, from every error class of the domain."""
    templates: dict[str, dict[str, str]] = {}
    for code, cls in errors.error_classes().items():
        if issubclass(cls, errors.BaasError) and not cls.two_factor_shape and cls.description:
            templates[code] = {"description": cls.description, "translation": cls.translation or cls.description}
        elif issubclass(cls, errors.BankingAuthError) and cls.message:
            templates[code] = {"message": cls.message}
    return templates


_TEMPLATES = _domain_templates()
