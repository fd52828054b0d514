"""Request validation that reports every violation as data, not the first one as a string.

connexion stops at the first schema error and words it for developers; partner teams need every
problem at once (EBAA0005 lists *all* missing fields) and in the API's own error body. These
validators plug into connexion's ``validator_map`` and raise ``RequestInvalid`` carrying the
violations; the error layer renders them per API.
"""

from __future__ import annotations

from typing import Any

from connexion.exceptions import BadRequestProblem
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, ValidationError

from baas_sandbox.domain import errors
from baas_sandbox.http import json_body
from baas_sandbox.http.problems import Violation


class RequestInvalid(BadRequestProblem):
    """The request breaks the spec; ``violations`` says every way it does."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        super().__init__(detail="; ".join(f"{v.field}: {v.message}" for v in violations))


def body_violations(schema: dict, body: Any) -> list[Violation]:
    """Every violation of ``schema`` by ``body``; a discriminated ``oneOf`` checks only its branch."""
    return BodySchema.of(schema).violations(body)


class BodySchema:
    """A body schema with its validators made once: building a jsonschema validator costs more than
    most validations, and connexion built one per request. Validators keep no state between calls."""

    _cache: dict[int, tuple[dict, "BodySchema"]] = {}
    CACHE_SIZE = 256  # schemas of the specs' operations; any others are compiled per call

    def __init__(self, schema: dict) -> None:
        self.schema = schema
        self.discriminator = schema.get("discriminator", {}).get("propertyName")
        self.choices: dict[str, dict] = {}
        self.fallback: dict | None = None
        if self.discriminator and "oneOf" in schema:
            for branch in schema["oneOf"]:
                for value in branch.get("properties", {}).get(self.discriminator, {}).get("enum", []):
                    self.choices[value] = branch
            self.fallback = {
                "type": "object",
                "required": [self.discriminator],
                "properties": {self.discriminator: {"type": "string", "enum": sorted(self.choices)}},
            }
        else:
            self.discriminator = None
        # id(branch schema) -> validator; the schemas are held by self.schema and self.fallback
        self._validators = {id(branch): _request_validator(branch)
                            for branch in [schema, *self.choices.values(), *([self.fallback] if self.fallback else [])]}

    @classmethod
    def of(cls, schema: dict) -> "BodySchema":
        cached = cls._cache.get(id(schema))
        if cached is not None and cached[0] is schema:
            return cached[1]
        compiled = cls(schema)
        if len(cls._cache) < cls.CACHE_SIZE:
            cls._cache[id(schema)] = (schema, compiled)  # the schema is held, so its id is not reused
        return compiled

    def branch(self, body: Any) -> dict:
        """The ``oneOf`` branch that ``body``'s discriminator names, or a schema naming the choices."""
        if self.discriminator is None:
            return self.schema
        chosen = body.get(self.discriminator) if isinstance(body, dict) else None
        if isinstance(chosen, str) and chosen in self.choices:
            return self.choices[chosen]
        assert self.fallback is not None
        return self.fallback

    def violations(self, body: Any) -> list[Violation]:
        validator = self._validators[id(self.branch(body))]
        violations: dict[Violation, None] = {}  # ordered, without repeats
        quoted: set[str] = set()  # fields whose value a message quoted already: quoted once
        for error in sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path]):
            violations.update(dict.fromkeys(_describe(error, quoted)))
        return list(violations)


def _request_validator(schema: dict):
    return Draft4RequestValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def _discriminated_branch(schema: dict, body: Any) -> dict:
    """The ``oneOf`` branch that ``body``'s discriminator names, or a schema naming the choices."""
    return BodySchema.of(schema).branch(body)


#: The longest bad value an error message quotes; past it, cut (with "…"): a 1 MB email answered
#: with the whole value, in every field of the error body, made a 3 MB answer.
QUOTE_LIMIT = 80


def _cut(text: str) -> str:
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "…"


def _quoting_cut(message: str, instance: Any, again: bool = False) -> str:
    """``message`` (jsonschema's, which quotes the value whole) with the value cut to ``QUOTE_LIMIT``,
    or, ``again`` (another message quoted it already), named instead of quoted."""
    quoted = repr(instance)
    if quoted not in message or (len(quoted) <= QUOTE_LIMIT and not again):
        return message
    if again:
        return message.replace(quoted, "the value", 1)
    short = repr(_cut(instance)) if isinstance(instance, str) else _cut(quoted)
    return message.replace(quoted, short)


def _describe(error: ValidationError, quoted: set[str] | None = None) -> list[Violation]:
    """``quoted``: the fields whose value an earlier message quoted (updated)."""
    path = _cut(".".join(str(part) for part in error.absolute_path))
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        return [
            Violation(field=f"{path}.{name}" if path else name, message="is required", missing=True)
            for name in error.validator_value
            if name not in present
        ]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        return [
            Violation(field=f"{path}.{_cut(name)}" if path else _cut(name), message="is not allowed here")
            for name in error.instance
            if name not in allowed
        ]
    field = path or "(body)"
    code = error.schema.get("x-sandbox-code") if error.validator in ("anyOf", "oneOf") else None
    if code is not None:
        return [Violation(field=field, message=_coded_message(code, error), code=code)]
    # A secret (format: password) is never echoed back, not even in an error message.
    if error.schema.get("format") == "password":
        return [Violation(field=field, message=_without_value(error))]
    again = quoted is not None and field in quoted
    if quoted is not None:
        quoted.add(field)
    return [Violation(field=field, message=_quoting_cut(error.message, error.instance, again))]


def _coded_message(code: str, error: ValidationError) -> str:
    """A schema rule with its own error (``x-sandbox-code``) is worded as the domain words that error
    (domain/errors.py), filled from the body: the same message whichever layer refuses."""
    error_class = errors.error_classes().get(code)
    template = getattr(error_class, "message", "") or getattr(error_class, "description", "")
    if not template or not isinstance(error.instance, dict):
        return error.message
    return template.format(**{name: str(error.instance.get(name)) for name in errors.template_fields(template)})


def _without_value(error: ValidationError) -> str:
    rule, bound = error.validator, error.validator_value
    wording = {
        "minLength": f"must have at least {bound} characters",
        "maxLength": f"must have at most {bound} characters",
        "pattern": f"must match the pattern {bound}",
        "type": f"must be of type {bound}",
    }
    return wording.get(str(rule), f"fails the rule {rule}")


class BodyValidator(JSONRequestBodyValidator):
    """JSON request bodies, every violation reported."""

    def __init__(self, *args, required: bool = False, **kwargs) -> None:
        # connexion rejects a missing required body with a bare string; we report it as data.
        super().__init__(*args, required=False, **kwargs)
        self._body_required = required
        self._compiled = BodySchema(self._schema)  # validators made once (connexion: per request)

    async def _parse(self, stream, scope) -> Any:  # type: ignore[override]
        raw = b"".join([message async for message in stream])
        if not raw:
            return None
        try:
            return json_body.parse(raw)  # UTF-8 whatever the charset: RFC 8259, 8.1
        except json_body.InvalidJson as exc:
            raise RequestInvalid([Violation("(body)", exc.reason)]) from None

    def _validate(self, body: Any) -> None:
        if body is None:
            if self._body_required:
                raise RequestInvalid(_missing_body(self._schema))
            return
        violations = self._compiled.violations(body)
        if violations:
            raise RequestInvalid(violations)


def _missing_body(schema: dict) -> list[Violation]:
    """A missing body misses every required field; say which."""
    required = schema.get("required", [])
    if not required:
        return [Violation("(body)", "is required: send a JSON object", missing=True)]
    return [Violation(name, "is required", missing=True) for name in required]


_parameter_validators: dict[int, tuple[dict, Draft4Validator]] = {}


def _parameter_validator(param: dict) -> Draft4Validator:
    """The parameter's validator, made once per parameter of the spec (connexion: per request)."""
    cached = _parameter_validators.get(id(param))
    if cached is not None and cached[0] is param:
        return cached[1]
    validator = Draft4Validator(param.get("schema", param), format_checker=Draft4Validator.FORMAT_CHECKER)
    if len(_parameter_validators) < BodySchema.CACHE_SIZE * 4:
        _parameter_validators[id(param)] = (param, validator)  # the parameter is held: its id stays its own
    return validator


class ParametersValidator(ParameterValidator):
    """Query, path, header and cookie parameters, every violation reported."""

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):  # type: ignore[override]
        if value is None:
            return f"Missing {parameter_type} parameter" if param.get("required") else None
        try:
            _parameter_validator(param).validate(value)
        except ValidationError as exc:
            return _quoting_cut(exc.message, exc.instance)
        return None

    def validate_request(self, request):  # type: ignore[override]
        violations = []
        for location in ("query", "path", "header", "cookie"):
            check = getattr(self, f"validate_{location}_parameter")
            for param in self.parameters.get(location, []):
                problem = check(param, request)
                if problem:
                    missing = problem.startswith("Missing")
                    violations.append(Violation(
                        field=f"{location} {param['name']}",
                        message="is required" if missing else problem,
                        missing=missing,
                    ))
        if violations:
            raise RequestInvalid(violations)
        return None
