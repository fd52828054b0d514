"""The OpenAPI documents in ``spec/``: found, checked at start-up, and read by the engine.

The spec is the single source of truth: the router, the validators, the ``Prefer`` examples and
the fixture schema all come from it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from baas_sandbox.defaults import SPEC_DIR

PRODUCT_SPEC = "openapi.yaml"
ADMIN_SPEC = "admin.yaml"
#: Where the admin API is served.
ADMIN_BASE_PATH = "/__admin"


# libyaml's loader when PyYAML was built with it: the specs are parsed at every start.
YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecError(Exception):
    """A spec file is missing or invalid; the message is the validator's."""


def load_checked(path: Path) -> dict:
    """Read a spec and check it with openapi-spec-validator (a copy: callers may annotate it)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read: {exc}") from None
    return copy.deepcopy(_load_checked(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _load_checked(path: Path, _mtime_ns: int, _size: int) -> dict:
    """Cached per file version: a process that builds several apps (the tests) checks once."""
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.load(text, Loader=YamlLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot be read: {exc}") from None
    checked = _CheckedSpecs(SPEC_CACHE_DIR)
    if not checked.known(text):
        # Imported here: openapi-spec-validator takes ~0.4 s to import, most of a start-up.
        from openapi_spec_validator import validate
        from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

        try:
            validate(document)
        except OpenAPIValidationError as exc:
            location = "/".join(str(part) for part in exc.absolute_path) or "(root)"
            raise SpecError(f"{path}: invalid OpenAPI document at {location}: {exc.message}") from None
        checked.remember(text)
    return document


#: Where the fingerprints of the documents openapi-spec-validator found valid are kept.
SPEC_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "baas-sandbox" / "valid-specs"


class _CheckedSpecs:
    """The documents already found valid, by fingerprint: the same document checked by the same
    validator version gets the same verdict, so a start-up needs the validator (its import and its
    run: ~0.5 s, most of a start-up) only after a spec changes. An invalid document is never
    remembered; a cache that cannot be read or written only means the check runs again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def known(self, text: str) -> bool:
        return (self.directory / self._fingerprint(text)).exists()

    def remember(self, text: str) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / self._fingerprint(text)).touch()
        except OSError:
            pass

    @staticmethod
    def _fingerprint(text: str) -> str:
        """The document's text (a document is what its text says) and the installed validator: its
        package file and when it was written, which an upgrade changes (importlib.metadata's
        version() would take ~40 ms to find, a tenth of a start-up)."""
        spec = importlib.util.find_spec("openapi_spec_validator")
        origin = spec.origin if spec is not None and spec.origin else "?"
        try:
            written = os.stat(origin).st_mtime_ns
        except OSError:
            written = 0
        return hashlib.sha256(f"{origin} {written}\n{text}".encode()).hexdigest()


def resolve_refs(document: dict) -> dict:
    """A copy of ``document`` with every local ``$ref`` replaced by what it points to."""

    def lookup(ref: str) -> Any:
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                if ref in seen:  # a recursive schema: leave the reference in place
                    return node
                return walk(lookup(ref), seen + (ref,))
            return {key: walk(value, seen) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        return node

    return walk(copy.deepcopy(document), ())


def to_json_schema(schema: Any) -> Any:
    """Turn an OpenAPI 3.0 schema (``nullable``) into plain JSON Schema."""
    if isinstance(schema, list):
        return [to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: to_json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")


@dataclass(frozen=True)
class DocumentedResponse:
    status: int
    schema: dict | None
    examples: dict[str, Any]


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str  # the spec's template, with the API's base path
    responses: dict[int, DocumentedResponse]
    #: Request body fields marked ``format: password``: never echoed, logged or journaled.
    secret_fields: frozenset[str] = frozenset()
    #: The documented query parameters (the journal keeps their values, masks any other's).
    query_names: frozenset[str] = frozenset()
    #: The documented request body fields, nested: name -> ``SECRET``, ``PLAIN`` or the fields of an
    #: object (the journal of an operation with a secret keeps only the documented plain fields).
    body_fields: dict = field(default_factory=dict)


class Contract:
    """What the specs promise, per operation: statuses, their examples and schemas."""

    def __init__(self, *specs: tuple[str, dict]) -> None:
        """``specs``: (base path, resolved document) pairs."""
        self.operations: dict[str, Operation] = {}
        self._components: dict[str, dict] = {}
        for base_path, spec in specs:
            for path, item in spec.get("paths", {}).items():
                for method in HTTP_METHODS:
                    if method in item and "operationId" in item[method]:
                        operation = _operation(base_path + path, method, item[method], item.get("parameters", []))
                        self.operations[operation.operation_id] = operation
                        self._components[operation.operation_id] = spec.get("components", {})

    def operation(self, operation_id: str) -> Operation | None:
        return self.operations.get(operation_id)

    def find(self, method: str, path: str) -> Operation | None:
        """The operation documented at ``method`` and ``path`` (the spec's template)."""
        for operation in self.operations.values():
            if operation.method == method.lower() and operation.path == path:
                return operation
        return None

    def choose(self, operation_id: str, code: int | None, example: str | None) -> tuple[int, Any]:
        """The (status, example body) asked for; ``LookupError`` saying why when there is none."""
        responses = self.operations[operation_id].responses
        documented = ", ".join(str(status) for status in sorted(responses))
        if code is not None and code not in responses:
            raise LookupError(f"status {code} is not documented for {operation_id} (documented: {documented})")
        candidates = [responses[code]] if code is not None else list(responses.values())
        for response in candidates:
            if example is None and response.examples:
                return response.status, next(iter(response.examples.values()))
            if example is not None and example in response.examples:
                return response.status, response.examples[example]
        if example is not None:
            raise LookupError(f"no example named {example!r} for {operation_id}"
                              + (f" status {code}" if code is not None else ""))
        raise LookupError(f"status {code} of {operation_id} has no example to answer with")

    def schema_for(self, operation_id: str, status: int) -> dict | None:
        """The JSON body schema of a documented response, rooted so that its references resolve."""
        response = self.operations[operation_id].responses.get(status)
        if response is None or response.schema is None:
            return None
        return response.schema | {"components": self._components[operation_id]}

    def body_problems(self, operation_id: str, status: int, body: Any) -> list[str]:
        """Why ``body`` is not a valid answer of ``status`` for the operation (empty: it is)."""
        from openapi_schema_validator import OAS30Validator

        schema = self.schema_for(operation_id, status)
        if schema is None:
            return [] if body is None else [f"status {status} of {operation_id} has no JSON body"]
        return [f"{'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                for e in OAS30Validator(schema).iter_errors(body)]


def _operation(path: str, method: str, operation: dict, path_parameters: list = ()) -> Operation:
    responses = {}
    for status, response in operation.get("responses", {}).items():
        if not str(status).isdigit():
            continue
        media = response.get("content", {}).get("application/json")
        examples = {name: example["value"] for name, example in (media or {}).get("examples", {}).items()
                    if "value" in example}
        responses[int(status)] = DocumentedResponse(int(status), media.get("schema") if media else None, examples)
    body_schema = (operation.get("requestBody", {}).get("content", {})
                   .get("application/json", {}).get("schema", {}))
    query_names = frozenset(p["name"] for p in [*path_parameters, *operation.get("parameters", [])]
                            if isinstance(p, dict) and p.get("in") == "query")
    return Operation(operation["operationId"], method, path, responses, frozenset(_secret_fields(body_schema)),
                     query_names, _body_fields(body_schema))


SECRET, PLAIN = "secret", "plain"


def _body_fields(schema: dict) -> dict:
    """The fields ``schema`` documents (``Operation.body_fields``), its ``oneOf`` branches merged."""
    fields: dict = {}
    for branch in [schema, *schema.get("oneOf", []), *schema.get("anyOf", []), *schema.get("allOf", [])]:
        for name, prop in branch.get("properties", {}).items():
            if prop.get("format") == "password":
                fields[name] = SECRET
            elif "properties" in prop or any(k in prop for k in ("oneOf", "anyOf", "allOf")):
                nested = fields.get(name)
                fields[name] = (nested if isinstance(nested, dict) else {}) | _body_fields(prop)
            else:
                fields.setdefault(name, PLAIN)
    return fields


def _secret_fields(schema: dict, prefix: str = "") -> set[str]:
    fields = set()
    for name, prop in schema.get("properties", {}).items():
        if prop.get("format") == "password":
            fields.add(prefix + name)
        fields |= _secret_fields(prop, f"{prefix}{name}.")
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []) + schema.get("allOf", []):
        fields |= _secret_fields(branch, prefix)
    return fields
