"""Realistic JSON values generated from an OpenAPI 3.0 schema, for ``Prefer: dynamic=true``.

Prism's convention: a client that sends ``Prefer: dynamic=true`` wants a body made up from the
response schema rather than the spec's fixed example, to exercise its parsing on varied data.
A made-up body is only useful if it is (a) valid, since the client is entitled to trust the
contract, and (b) plausible, since a person reads it in logs and UIs. So every value is
checked with the same validator the test-suite uses, and strings are taken from ``faker``
(Brazilian locale, the platform's market) whenever the property name says what they mean and
the schema allows it; ``rstr`` generates strings for the patterns nothing else fits.

Values are a pure function of the seed (and of the day, for timestamps): a test, or a client
that reports a bug, can replay the exact body it got.
"""

from __future__ import annotations

import base64
import math
import random
import re
import string
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import TYPE_CHECKING, Any, ClassVar

import rstr
from openapi_schema_validator import OAS30Validator, oas30_format_checker

if TYPE_CHECKING:
    from faker import Faker

__all__ = ["BodyGenerator"]

# Generating is cheap and validating is exact, so a value that misses is simply drawn again;
# the bound turns an unsatisfiable schema into an error instead of a loop.
MAX_ATTEMPTS = 40
# Null is valid for a nullable field, but a body full of nulls teaches a client nothing.
NULL_CHANCE = 0.1
# Optional properties are usually there, so clients see them, but not always, so clients cope.
OPTIONAL_CHANCE = 0.8
# Past this depth (recursive schemas) only what is required is generated, so generation ends.
MAX_DEPTH = 8
# How far back a "recent" timestamp may be.
RECENT = timedelta(days=30)
# The platform's timestamp: UTC to the second, without an offset.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"
# Extra repetitions allowed for ``*``, ``+`` and ``{n,}``: rstr's own limit (100) makes long,
# unreadable strings that overflow any ``maxLength``.
OPEN_REPEAT_LIMIT = 8
# Used when a number has no bounds: realistic amounts and counts, not 2**63.
DEFAULT_SPAN = 1000

Maker = Callable[["BodyGenerator", dict], str]

_thread_local = threading.local()


class _Xeger(rstr.Rstr):
    """rstr's regex-driven generator, kept short and independent of the hash seed.

    Two of its choices are overridden (rstr is pinned below 4, where these hooks are stable):
    open-ended repeats are bounded by ``OPEN_REPEAT_LIMIT``, and a negated character class
    picks from a sorted alphabet, since rstr picks from a ``set`` whose order changes with
    ``PYTHONHASHSEED`` and so would break "same seed, same value" across processes.
    """

    def __init__(self, source: random.Random) -> None:
        nonword = set(string.printable) - set(string.ascii_letters + string.digits + "_")
        unambiguous = set(string.ascii_letters + string.digits) - set("0O1lI")
        super().__init__(source, nonword="".join(sorted(nonword)),
                         unambiguous="".join(sorted(unambiguous)))

    def _handle_repeat(self, start_range: int, end_range: int, value: Any) -> str:
        return super()._handle_repeat(start_range, min(end_range, start_range + OPEN_REPEAT_LIMIT),
                                      value)

    def _handle_in(self, value: Any) -> Any:
        candidates = list(chain(*(self._handle_state(item) for item in value)))
        if candidates[0] is False:
            candidates = sorted(set(string.printable).difference(candidates[1:]))
        return self._random.choice(candidates)


# --- realistic strings -------------------------------------------------------------------------
# Each maker proposes a value; the schema (pattern, length, format) has the last word, so a
# maker that does not fit a given schema is merely skipped.

def _uuid(gen: BodyGenerator, _schema: dict) -> str:
    return str(uuid.UUID(int=gen.random.getrandbits(128), version=4))


def _timestamp(gen: BodyGenerator, _schema: dict) -> str:
    return gen.recent().strftime(TIMESTAMP_FORMAT)


def _date_time(gen: BodyGenerator, _schema: dict) -> str:
    return gen.recent().strftime(TIMESTAMP_FORMAT) + "Z"


def _date(gen: BodyGenerator, _schema: dict) -> str:
    return gen.recent().date().isoformat()


def _email(gen: BodyGenerator, _schema: dict) -> str:
    return gen.faker.free_email().lower()


def _password(gen: BodyGenerator, schema: dict) -> str:
    low, high = _length_bounds(schema)
    length = max(low, min(high if high is not None else 24, 24))
    return gen.faker.password(length=length) if length >= 4 else gen.xeger("[A-Za-z0-9]") * length


def _uri(gen: BodyGenerator, _schema: dict) -> str:
    return gen.faker.url()


def _byte(gen: BodyGenerator, _schema: dict) -> str:
    return base64.b64encode(gen.random.randbytes(12)).decode("ascii")


def _company(gen: BodyGenerator, _schema: dict) -> str:
    name = gen.faker.company()
    return name if " " in name else f"{name} {gen.faker.company_suffix()}"


def _person_or_company(gen: BodyGenerator, schema: dict) -> str:
    return gen.faker.name() if gen.random.random() < 0.75 else _company(gen, schema)


def _sentence(gen: BodyGenerator, _schema: dict) -> str:
    return gen.faker.sentence(nb_words=gen.random.randint(3, 8))


def _document(gen: BodyGenerator, _schema: dict) -> str:
    """A CPF or CNPJ with valid check digits, digits only, as the platform stores them."""
    formatted = gen.faker.cpf() if gen.random.random() < 0.6 else gen.faker.cnpj()
    return re.sub(r"\D", "", formatted)


def _digits(count: int) -> Maker:
    return lambda gen, _schema: "".join(gen.random.choice(string.digits) for _ in range(count))


FORMAT_MAKERS: dict[str, Maker] = {
    "uuid": _uuid,
    "date-time": _date_time,
    "date": _date,
    "email": _email,
    "password": _password,
    "uri": _uri,
    "url": _uri,
    "byte": _byte,
}

# (regex searched in the property name, maker): first match wins.
NAME_RULES: tuple[tuple[re.Pattern[str], Maker], ...] = tuple(
    (re.compile(regex), maker) for regex, maker in (
        (r"e_?mail", _email),
        (r"^trading_name$|company", _company),
        (r"(^|_)name$", _person_or_company),
        (r"_at$", _timestamp),
        (r"(^|_)(key|uuid)$", _uuid),
        (r"document_number$|^(cpf|cnpj)$", _document),
        (r"^(message|description|title|details|translation)$|_reason$", _sentence),
        (r"branch_number$", _digits(4)),
        (r"account_number$", _digits(8)),
        (r"account_digit$", _digits(1)),
    )
)

# (regex searched in the schema's pattern, maker): patterns that are recognisably well-known.
PATTERN_RULES: tuple[tuple[re.Pattern[str], Maker], ...] = tuple(
    (re.compile(regex), maker) for regex, maker in (
        (r"T\\d\{2\}:\\d\{2\}", _timestamp),
        (r"\{8\}-.*\{12\}", _uuid),
        (r"@", _email),
    )
)


def _length_bounds(schema: dict) -> tuple[int, int | None]:
    return schema.get("minLength", 0), schema.get("maxLength")


# --- schema plumbing ---------------------------------------------------------------------------

_LOWER_BOUNDS = {"minimum", "minLength", "minItems", "minProperties"}
_UPPER_BOUNDS = {"maximum", "maxLength", "maxItems", "maxProperties"}


def merge_all_of(schemas: list[dict]) -> dict:
    """One schema that requires what all of ``schemas`` require, as far as generation needs.

    Generation needs a single shape to fill; the result is only a guide: the value is validated
    against the original ``allOf``, so a merge that is looser than the real intersection (two
    ``oneOf``, say) costs a retry, never an invalid body.
    """
    merged: dict = {}
    for schema in schemas:
        if "allOf" in schema:
            rest = {key: value for key, value in schema.items() if key != "allOf"}
            schema = merge_all_of([rest, *schema["allOf"]])
        for key, value in schema.items():
            merged[key] = _merge_keyword(key, merged[key], value) if key in merged else value
    return merged


def _merge_keyword(key: str, old: Any, new: Any) -> Any:
    if key == "properties":
        return {**old, **{name: merge_all_of([old[name], sub]) if name in old else sub
                          for name, sub in new.items()}}
    if key == "required":
        return list(dict.fromkeys([*old, *new]))
    if key in _LOWER_BOUNDS:
        return max(old, new)
    if key in _UPPER_BOUNDS:
        return min(old, new)
    if key == "enum":
        return [item for item in old if item in new]
    if key == "nullable":
        return old and new
    if key in ("items", "additionalProperties") and isinstance(old, dict) and isinstance(new, dict):
        return merge_all_of([old, new])
    if key == "additionalProperties":
        return old if old is False else new
    if key in ("oneOf", "anyOf", "type"):
        return old
    return new


def _infer_type(schema: dict) -> str:
    """The type a schema without ``type`` most plausibly describes, from its other keywords."""
    if schema.keys() & {"properties", "required", "additionalProperties", "minProperties",
                        "maxProperties"}:
        return "object"
    if schema.keys() & {"items", "minItems", "maxItems", "uniqueItems"}:
        return "array"
    if schema.keys() & {"minimum", "maximum", "multipleOf", "exclusiveMinimum",
                        "exclusiveMaximum"}:
        return "number"
    return "string"


def _strip_discriminators(node: Any) -> Any:
    """``node`` without ``discriminator``: its mapping names components the caller did not give.

    The discriminator is a hint in OAS 3.0: without it, ``oneOf`` still demands exactly one
    matching branch, which the branches' own ``enum`` on the property settles.
    """
    if isinstance(node, dict):
        return {key: _strip_discriminators(value) for key, value in node.items()
                if key != "discriminator"}
    if isinstance(node, list):
        return [_strip_discriminators(item) for item in node]
    return node


def _mentions(node: Any, keyword: str) -> bool:
    if isinstance(node, dict):
        return keyword in node or any(_mentions(value, keyword) for value in node.values())
    if isinstance(node, list):
        return any(_mentions(item, keyword) for item in node)
    return False


# --- the generator -----------------------------------------------------------------------------

class BodyGenerator:
    """Makes values valid against OpenAPI 3.0 schemas; one instance is one reproducible stream.

    ``seed`` fixes every random choice (faker's and rstr's draw from the same source), so the
    same seed replays the same values. Timestamps are "recent" relative to ``now`` (default:
    the start of the current UTC day, so that a seed replays the same body all day long).
    """

    def __init__(self, seed: int | None = None, *, now: datetime | None = None) -> None:
        self.random = random.Random(seed)
        self._xeger = _Xeger(self.random)
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self._now = now if now is not None else midnight
        self._components: dict | None = None
        self._validators: dict[int, tuple[dict, OAS30Validator]] = {}

    def generate(self, schema: dict, components: dict | None = None) -> Any:
        """A value valid against `schema` (OpenAPI 3.0 schema, local $refs already inlined).

        ``components`` (or a ``components`` key in ``schema`` itself, as when the schema is
        used as a validation root) resolves the ``#/components/...`` references that inlining
        leaves: discriminator mappings and recursive schemas. Without them, discriminators are
        dropped (the ``oneOf`` still holds). Raises ``ValueError`` naming the schema path when
        no valid value is found.
        """
        self._components = components if components is not None else schema.get("components")
        self._validators = {}
        if self._components is None and _mentions(schema, "discriminator"):
            schema = _strip_discriminators(schema)
        return self._value(schema, "#", None, 0)

    # Helpers shared with the makers.

    @property
    def faker(self) -> Faker:
        """This thread's Faker, drawing from this generator's random source.

        Building a Faker costs about a millisecond (it loads every provider), more than a
        whole body; sharing one per thread and lending it our ``random`` keeps a generator
        per request cheap while faker's choices stay a function of the seed.
        """
        faker = getattr(_thread_local, "faker", None)
        if faker is None:
            # Imported here, at the first dynamic body: importing faker costs ~50 ms of every
            # start-up otherwise, for a feature most runs never use (performance: start-up time).
            from faker import Faker

            faker = _thread_local.faker = Faker("pt_BR")  # pt_BR's gaps fall back to en_US
        faker.random = self.random
        return faker

    def recent(self) -> datetime:
        """A UTC time within ``RECENT`` before the anchor, to the second."""
        return self._now - timedelta(seconds=self.random.randint(0, int(RECENT.total_seconds())))

    def xeger(self, pattern: str) -> str:
        """A string matching ``pattern``."""
        return self._xeger.xeger(pattern)

    # Validation.

    def _is_valid(self, schema: dict, value: Any) -> bool:
        return self._validator(schema).is_valid(value)

    def _validator(self, schema: dict) -> OAS30Validator:
        """Validators are cached per ``generate`` call: schemas nest, and each level is checked."""
        cached = self._validators.get(id(schema))
        if cached is None or cached[0] is not schema:
            root = schema
            if self._components is not None and "components" not in schema:
                root = schema | {"components": self._components}
            cached = (schema, OAS30Validator(root, format_checker=oas30_format_checker))
            self._validators[id(schema)] = cached
        return cached[1]

    # Dispatch.

    def _value(self, schema: Any, path: str, name: str | None, depth: int) -> Any:
        """A value for ``schema``, drawn again until it validates, within ``MAX_ATTEMPTS``."""
        if not isinstance(schema, dict):
            raise ValueError(f"{path}: not a schema: {schema!r}")
        for _ in range(MAX_ATTEMPTS):
            value = self._candidate(schema, path, name, depth)
            if self._is_valid(schema, value):
                return value
        raise ValueError(f"{path}: no valid value found in {MAX_ATTEMPTS} attempts")

    def _candidate(self, schema: dict, path: str, name: str | None, depth: int) -> Any:
        if "$ref" in schema:
            return self._value(self._resolve(schema["$ref"], path), path, name, depth + 1)
        if "allOf" in schema:
            return self._value(merge_all_of([schema]), f"{path}/allOf", name, depth)
        if "oneOf" in schema or "anyOf" in schema:
            return self._branch(schema, path, name, depth)
        enum = schema.get("enum")
        nullable = schema.get("nullable") and (enum is None or None in enum)
        if nullable and self.random.random() < NULL_CHANCE:
            return None
        if enum is not None:
            if not enum:
                raise ValueError(f"{path}: empty enum")
            return self.random.choice(enum)
        kind = schema.get("type") or _infer_type(schema)
        if isinstance(kind, list):
            kind = self.random.choice(kind)
        maker = self._TYPE_MAKERS.get(kind)
        if maker is None:
            raise ValueError(f"{path}: unknown type {kind!r}")
        return maker(self, schema, path, name, depth)

    def _resolve(self, ref: str, path: str) -> dict:
        if not ref.startswith("#/components/") or self._components is None:
            raise ValueError(f"{path}: cannot resolve $ref {ref!r} without the components")
        node: Any = {"components": self._components}
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _branch(self, schema: dict, path: str, name: str | None, depth: int) -> Any:
        """A value from one ``oneOf``/``anyOf`` branch, merged with the schema's own keywords.

        The caller validates against the whole schema, so a value matching two ``oneOf``
        branches is drawn again, from a branch picked anew.
        """
        keyword = "oneOf" if "oneOf" in schema else "anyOf"
        rest = {key: value for key, value in schema.items()
                if key not in (keyword, "discriminator", "components")}
        branches = list(enumerate(schema[keyword]))
        self.random.shuffle(branches)
        for index, branch in branches:
            merged = merge_all_of([rest, branch]) if rest else branch
            try:
                return self._value(merged, f"{path}/{keyword}/{index}", name, depth)
            except ValueError:
                continue
        raise ValueError(f"{path}: no branch of {keyword} yields a valid value")

    # Types.

    def _object(self, schema: dict, path: str, _name: str | None, depth: int) -> dict:
        properties: dict = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        names = self._property_names(schema, path, depth)
        value = {}
        for key in names:
            sub = properties.get(key, extra if isinstance(extra, dict) else {})
            value[key] = self._value(sub, f"{path}/properties/{key}", key, depth + 1)
        return value

    def _property_names(self, schema: dict, path: str, depth: int) -> list[str]:
        """Required names always, optional ones mostly, within min/maxProperties."""
        properties: dict = schema.get("properties", {})
        required: list[str] = list(dict.fromkeys(schema.get("required", [])))
        low, high = schema.get("minProperties", 0), schema.get("maxProperties")
        if high is not None and (len(required) > high or low > high):
            raise ValueError(f"{path}: more properties required than maxProperties {high}")
        optional = [key for key in properties if key not in required]
        chosen = [key for key in optional
                  if depth < MAX_DEPTH and self.random.random() < OPTIONAL_CHANCE]
        if high is not None:
            chosen = chosen[:high - len(required)]
        missing = [key for key in optional if key not in chosen]
        while len(required) + len(chosen) < low and missing:
            chosen.append(missing.pop(0))
        names = required + chosen
        if len(names) < low:
            if schema.get("additionalProperties", True) is False:
                raise ValueError(f"{path}: minProperties {low} needs undeclared properties")
            names += self._extra_names(low - len(names), set(names))
        return names

    def _extra_names(self, count: int, taken: set[str]) -> list[str]:
        names: list[str] = []
        while len(names) < count:
            word = f"{self.faker.word()}_{len(taken) + len(names)}"
            if word not in taken:
                names.append(word)
        return names

    def _array(self, schema: dict, path: str, name: str | None, depth: int) -> list:
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        if high is not None and low > high:
            raise ValueError(f"{path}: minItems {low} > maxItems {high}")
        start = max(low, 1 if high is None else min(1, high))
        end = max(start + 2, 3) if high is None else min(high, max(start + 2, 3))
        count = start if depth >= MAX_DEPTH else self.random.randint(start, end)
        items = schema.get("items", {})
        values: list = []
        for _ in range(count * MAX_ATTEMPTS):
            if len(values) == count:
                break
            item = self._value(items, f"{path}/items", name, depth + 1)
            if not schema.get("uniqueItems") or item not in values:
                values.append(item)
        return values

    def _string(self, schema: dict, path: str, name: str | None, _depth: int) -> str:
        low, high = _length_bounds(schema)
        if high is not None and low > high:
            raise ValueError(f"{path}: minLength {low} > maxLength {high}")
        candidate = ""
        for candidate in self._string_candidates(schema, name):
            if self._is_valid(schema, candidate):
                return candidate
        return candidate

    def _string_candidates(self, schema: dict, name: str | None) -> Iterator[str]:
        """Most realistic first: format, property name, known pattern, then any match."""
        pattern = schema.get("pattern")
        if schema.get("format") in FORMAT_MAKERS:
            yield FORMAT_MAKERS[schema["format"]](self, schema)
        for regex, maker in NAME_RULES:
            if name is not None and regex.search(name):
                yield maker(self, schema)
                break
        for regex, maker in PATTERN_RULES:
            if pattern is not None and regex.search(pattern):
                yield maker(self, schema)
                break
        if pattern is not None:
            yield self.xeger(pattern)
        yield self._text(schema)

    def _text(self, schema: dict) -> str:
        """Words fitted to the length bounds: readable filler for an unconstrained string."""
        low, high = _length_bounds(schema)
        text = self.faker.word()
        while len(text) < low:
            text += " " + self.faker.word()
        if high is not None:
            text = text[:high].rstrip().ljust(low, "x")
        return text

    def _number(self, schema: dict, path: str, _name: str | None, _depth: int) -> float:
        low, high = self._numeric_bounds(schema, path, integer=False)
        step = schema.get("multipleOf")
        if step:
            return round(self._multiple(step, low, high, path), 10) * 1.0
        value = round(self.random.uniform(low, high), 2)
        return value if low <= value <= high else self.random.uniform(low, high)

    def _integer(self, schema: dict, path: str, _name: str | None, _depth: int) -> int:
        low, high = self._numeric_bounds(schema, path, integer=True)
        step = schema.get("multipleOf")
        if step:
            return int(self._multiple(step, low, high, path))
        return self.random.randint(int(low), int(high))

    def _multiple(self, step: float, low: float, high: float, path: str) -> float:
        first, last = math.ceil(low / step), math.floor(high / step)
        if first > last:
            raise ValueError(f"{path}: no multiple of {step} between {low} and {high}")
        return self.random.randint(first, last) * step

    def _numeric_bounds(self, schema: dict, path: str, *, integer: bool) -> tuple[float, float]:
        """Inclusive bounds; OAS 3.0's boolean exclusive bounds are turned into inclusive ones."""
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is None:
            low = (high - DEFAULT_SPAN) if high is not None and high < 0 else min(0, high or 0)
        if high is None:
            high = low + DEFAULT_SPAN
        nudge = 1 if integer else (high - low) / 1000 or 1e-9
        if schema.get("exclusiveMinimum") and "minimum" in schema:
            low += nudge if not integer or low == math.floor(low) else 0
        if schema.get("exclusiveMaximum") and "maximum" in schema:
            high -= nudge if not integer or high == math.ceil(high) else 0
        if integer:
            low, high = math.ceil(low), math.floor(high)
        if low > high:
            raise ValueError(f"{path}: minimum {low} > maximum {high}")
        return low, high

    def _boolean(self, _schema: dict, _path: str, _name: str | None, _depth: int) -> bool:
        return self.random.random() < 0.5

    _TYPE_MAKERS: ClassVar[dict[str, Callable[..., Any]]] = {
        "object": _object,
        "array": _array,
        "string": _string,
        "number": _number,
        "integer": _integer,
        "boolean": _boolean,
    }
