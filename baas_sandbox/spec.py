"""The OpenAPI documents in ``spec/``: found, checked at start-up, and read by the engine.

The spec is the single source of truth: the router, the validators, the ``Prefer`` examples and
the fixture schema all come from it.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = PROJECT_ROOT / "spec"
PRODUCT_SPEC = "openapi.yaml"
ADMIN_SPEC = "admin.yaml"


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
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=YamlLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot be read: {exc}") from None
    try:
        validate(document)
    except OpenAPIValidationError as exc:
        location = "/".join(str(part) for part in exc.absolute_path) or "(root)"
        raise SpecError(f"{path}: invalid OpenAPI document at {location}: {exc.message}") from None
    return document


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
