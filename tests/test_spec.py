"""The contract itself: both specs valid, and every example valid against its schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from baas_sandbox.spec import (
    ADMIN_SPEC,
    PRODUCT_SPEC,
    SPEC_DIR,
    load_checked,
    resolve_refs,
)

SPECS = {name: load_checked(SPEC_DIR / name) for name in (PRODUCT_SPEC, ADMIN_SPEC)}
METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


@pytest.mark.parametrize("name", SPECS)
def test_spec_is_valid_openapi(name):
    validate(SPECS[name])
    assert SPECS[name]["openapi"] == "3.0.3"


def examples(spec: dict) -> Iterator[tuple[str, dict, object]]:
    """(where, schema, example) for every example of every media type, parameter and schema."""

    def media(where: str, content: dict) -> Iterator:
        for media_type, item in content.items():
            for name, example in item.get("examples", {}).items():
                yield f"{where} {media_type} example {name}", item["schema"], example["value"]
            if "example" in item:
                yield f"{where} {media_type} example", item["schema"], item["example"]

    def operations(paths: dict, prefix: str = "") -> Iterator:
        for path, path_item in paths.items():
            for method, operation in path_item.items():
                if method not in METHODS:
                    continue
                where = f"{prefix}{method.upper()} {path}"
                for param in operation.get("parameters", []) + path_item.get("parameters", []):
                    if "example" in param:
                        yield f"{where} parameter {param['name']}", param["schema"], param["example"]
                if "requestBody" in operation:
                    yield from media(f"{where} request", operation["requestBody"]["content"])
                for status, response in operation.get("responses", {}).items():
                    yield from media(f"{where} {status}", response.get("content", {}))
                for name, callback in operation.get("callbacks", {}).items():
                    yield from operations(callback, prefix=f"{where} callback {name}: ")

    def schema_examples(node: object, where: str) -> Iterator:
        if isinstance(node, dict):
            if "example" in node and ("type" in node or "$ref" in node or "oneOf" in node):
                yield f"{where} (schema example)", node, node["example"]
            for key, value in node.items():
                yield from schema_examples(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from schema_examples(value, f"{where}/{index}")

    yield from operations(spec["paths"])
    yield from schema_examples(spec["components"].get("schemas", {}), "#/components/schemas")


# Discriminator mappings name components by reference: give each schema the spec's components.
CASES = [(f"{name}: {where}", schema | {"components": spec["components"]}, example)
         for name, spec in SPECS.items()
         for where, schema, example in examples(resolve_refs(spec))]


def test_there_are_examples_to_check():
    assert len(CASES) > 80


@pytest.mark.parametrize("where,schema,example", CASES, ids=[c[0] for c in CASES])
def test_every_example_validates_against_its_schema(where, schema, example):
    errors = [e.message for e in OAS30Validator(schema).iter_errors(example)]
    assert not errors, f"{where}: {errors}"


def test_every_operation_documents_its_errors():
    """Every product operation can be refused by authentication (unless it needs none: the front
    door) and by validation (unless it takes no input)."""
    for path, path_item in SPECS[PRODUCT_SPEC]["paths"].items():
        for method, operation in path_item.items():
            if method in METHODS:
                if operation.get("security") != []:
                    assert "401" in operation["responses"], f"{method} {path}"
                if operation.get("parameters") or "requestBody" in operation:
                    assert "400" in operation["responses"], f"{method} {path}"
                if "requestBody" in operation:
                    assert "415" in operation["responses"], f"{method} {path}"


def test_every_seed_error_code_is_documented():
    text = (SPEC_DIR / PRODUCT_SPEC).read_text()
    seed_codes = ["EBAA0002", "EBAA0003", "EBAA0004", "EBAA0005", "EBAA0007", "EBAA0009", "EBAA0010",
                  "EBAA0011", "EBAA0012", "EBAA0014", "EBAA0018", "EPIX0005", "PIX000002", "PIX000008",
                  "PIX000014", "PIX000020", "PIX000026", "PIX000027", "PIX000054", "PIX000065",
                  "PIX000074", "PIX000075", "PIX000076", "QIT000005", "2FA000403", "2FA000410"]
    missing = [code for code in seed_codes if f"code: {code}" not in text]
    assert not missing
