"""Request bodies as JSON, bounded: the one parser of the express lane and the full pipeline.

Python's ``json.loads`` accepts what RFC 8259 leaves open or forbids, and some of it crashed the
sandbox further on: a 5,000-digit integer (Python's int-digit limit raises a bare ``ValueError``), a
lone surrogate escape (``"\\ud800"``: a ``str`` that cannot be encoded, so the vault failed), nesting
1,000 deep (a ``RecursionError`` from the parser or the validators), ``NaN``/``Infinity`` (not JSON,
and echoed back as invalid JSON). Here every such body is refused with a reason, before any handler
or validator sees it:

- the text must be UTF-8 (RFC 8259, 8.1: whatever ``charset`` the Content-Type names), without a BOM;
- nesting at most ``MAX_DEPTH`` arrays/objects; a number at most ``MAX_NUMBER_LENGTH`` characters,
  finite; no ``NaN``/``Infinity``; no duplicate name in an object (which one counts differs between
  parsers); no lone surrogate in a string or a name;
- the rest is ``json.loads``'s own strictness (trailing data, invalid escapes, control characters).

Cheap on the everyday path: the checks that need a walk of the parsed body run only when a quick
byte count says they might fail (more brackets than ``MAX_DEPTH``, a ``\\uD8..`` escape).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Deepest nesting of arrays and objects accepted; the specs' bodies are 2 deep.
MAX_DEPTH = 32
#: Longest number literal accepted, in characters; ids and amounts are far shorter.
MAX_NUMBER_LENGTH = 64

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class InvalidJson(ValueError):
    """The body is not JSON this sandbox accepts; ``reason`` says why, without quoting the body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(raw: bytes) -> Any:
    """The JSON value of ``raw``, or ``InvalidJson`` saying why it is refused."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJson(f"is not UTF-8 (byte {exc.start})") from None
    try:
        value = _DECODER.decode(text)
    except InvalidJson:
        raise
    except RecursionError:
        raise InvalidJson(f"is nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"is not valid JSON: {exc.msg.removesuffix(' at')} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # anything else the decoder refuses: said without the value
        raise InvalidJson(f"is not valid JSON ({type(exc).__name__})") from None
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    if deep or surrogates:
        _check(value, deep, surrogates)
    return value


def _integer(literal: str) -> int:
    if len(literal) > MAX_NUMBER_LENGTH:
        raise InvalidJson(f"has a number longer than {MAX_NUMBER_LENGTH} characters")
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_LENGTH:
        raise InvalidJson(f"has a number longer than {MAX_NUMBER_LENGTH} characters")
    number = float(literal)
    if not math.isfinite(number):
        raise InvalidJson("has a number out of range")
    return number


def _constant(literal: str) -> Any:
    raise InvalidJson(f"has {literal}, which is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise InvalidJson("has a name twice in one object")
    return obj


#: Made once: ``json.loads`` with hooks builds a decoder per call (it cost more than the parse).
_DECODER = json.JSONDecoder(parse_int=_integer, parse_float=_float, parse_constant=_constant, object_pairs_hook=_object)


def _check(value: Any, depth_matters: bool, strings_matter: bool) -> None:
    """Depth and lone surrogates, without recursion (the body may be deep)."""
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, (dict, list)):
            if depth_matters and depth > MAX_DEPTH:
                raise InvalidJson(f"is nested deeper than {MAX_DEPTH} levels")
            if isinstance(node, dict):
                for name, item in node.items():
                    if strings_matter:
                        _encodable(name)
                    pending.append((item, depth + 1))
            else:
                pending.extend((item, depth + 1) for item in node)
        elif strings_matter and isinstance(node, str):
            _encodable(node)


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJson("has a lone surrogate (\\ud800-\\udfff) in a string") from None
