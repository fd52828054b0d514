"""Reading a scenario file, and refusing it unless every rule fits the contract.

A rule can only name operations the spec has, statuses those operations document, examples the
spec holds, and inline bodies that validate against the response schema: an injected answer is
always one the contract allows. A refusal names the file, the line and the reason.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from baas_sandbox.adapters.yamlfile import FileProblem, YamlDocument
from baas_sandbox.scenarios.model import (
    MISSING,
    Budget,
    Condition,
    Fault,
    Latency,
    Match,
    Respond,
    Rule,
    Scenario,
)
from baas_sandbox.spec import Contract

NAME = r"^[a-z0-9][a-z0-9_-]*$"
_CONDITION = {
    "oneOf": [
        {"type": ["string", "number", "boolean", "null"]},
        {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
         "properties": {"equals": {}, "one_of": {"type": "array", "minItems": 1},
                        "regex": {"type": "string"}, "present": {"type": "boolean"},
                        "absent": {"type": "boolean"}}},
    ]
}
_CONDITIONS = {"type": "object", "propertyNames": {"type": "string"}, "additionalProperties": _CONDITION}
_MS = {"type": "number", "minimum": 0, "maximum": 600_000}  # at most 10 minutes
FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["rules"],
    "additionalProperties": False,
    "properties": {
        "description": {"type": "string"},
        "rules": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "anyOf": [{"required": ["respond"]}, {"required": ["latency"]}, {"required": ["fault"]}],
                "properties": {
                    "name": {"type": "string", "pattern": NAME},
                    "match": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "operation": {"oneOf": [{"type": "string"},
                                                    {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
                            "method": {"type": "string"},
                            "path": {"type": "string"},
                            "headers": _CONDITIONS,
                            "query": _CONDITIONS,
                            "path_params": _CONDITIONS,
                            "body": _CONDITIONS,
                        },
                        "dependentRequired": {"method": ["path"], "path": ["method"]},
                    },
                    "budget": {
                        "type": "object",
                        "maxProperties": 1,
                        "additionalProperties": False,
                        "properties": {
                            "always": {"const": True},
                            "first": {"type": "integer", "minimum": 1},
                            "every": {"type": "integer", "minimum": 1},
                            "probability": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                    },
                    "respond": {
                        "type": "object",
                        "required": ["status"],
                        "additionalProperties": False,
                        "properties": {"status": {"type": "integer"}, "example": {"type": "string"}, "body": {}},
                        "not": {"required": ["example", "body"]},
                    },
                    "latency": {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 1,
                        "additionalProperties": False,
                        "properties": {
                            "fixed_ms": _MS,
                            "uniform_ms": {"type": "array", "items": _MS, "minItems": 2, "maxItems": 2},
                            "lognormal": {"type": "object", "required": ["median_ms", "sigma"],
                                          "additionalProperties": False,
                                          "properties": {"median_ms": _MS,
                                                         "sigma": {"type": "number", "minimum": 0,
                                                                   "maximum": 3}}},
                        },
                    },
                    "fault": {
                        "oneOf": [
                            {"enum": ["reset", "close", "truncate", "drip"]},
                            {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
                             "properties": {
                                 "truncate": {"type": "object", "additionalProperties": False,
                                              "properties": {"fraction": {"type": "number", "exclusiveMinimum": 0,
                                                                          "exclusiveMaximum": 1}}},
                                 "drip": {"type": "object", "additionalProperties": False,
                                          "required": ["duration_ms"],
                                          "properties": {"duration_ms": _MS,
                                                         "chunks": {"type": "integer", "minimum": 1}}},
                             }},
                        ]
                    },
                },
            },
        },
    },
}


class ScenarioError(FileProblem):
    """A scenario file that cannot be loaded: file, line and reason."""


def load_scenario(path: Path, contract: Contract, product_operations: frozenset[str]) -> Scenario:
    """The scenario in ``path``, checked against the contract; ``ScenarioError`` otherwise."""
    if not re.match(NAME, path.stem):
        raise ScenarioError(path, None, "", f"the file name must match {NAME} (it is the scenario's name)")
    document = YamlDocument(path, ScenarioError)
    _refuse_non_finite(document, document.data, ())
    document.check(FILE_SCHEMA)
    rules = [_rule(document, index, entry, contract, product_operations)
             for index, entry in enumerate(document.data["rules"])]
    names = [rule.name for rule in rules]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise document.fail(("rules", index, "name"), f"rule name {name!r} is used twice")
    return Scenario(path.stem, document.data.get("description", ""), rules, str(path))


def _refuse_non_finite(document: YamlDocument, node: Any, path: tuple) -> None:
    """YAML's .inf and .nan are numbers to JSON Schema, and would hang or break a request."""
    if isinstance(node, float) and not math.isfinite(node):
        raise document.fail(path, f"{node} is not a finite number")
    if isinstance(node, dict):
        for key, value in node.items():
            _refuse_non_finite(document, value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _refuse_non_finite(document, value, path + (index,))


def _rule(document: YamlDocument, index: int, entry: dict, contract: Contract,
          product_operations: frozenset[str]) -> Rule:
    where = ("rules", index)
    match_spec = entry.get("match", {})
    operations = _operations(document, where + ("match",), match_spec, contract, product_operations)
    conditions = tuple(
        _condition(document, where + ("match", source, name), source.removesuffix("_params"), name, test)
        for source in ("headers", "query", "path_params", "body")
        for name, test in match_spec.get(source, {}).items()
    )
    respond = None
    if "respond" in entry:
        respond = _respond(document, where + ("respond",), entry["respond"], operations or product_operations,
                           contract)
    return Rule(
        name=entry.get("name", f"rule-{index + 1}"),
        match=Match(frozenset(operations), conditions),
        budget=_budget(entry.get("budget", {})),
        respond=respond,
        latency=_latency(entry["latency"]) if "latency" in entry else None,
        fault=_fault(entry["fault"]) if "fault" in entry else None,
        line=document.line_of(where),
    )


def _operations(document: YamlDocument, where: tuple, match: dict, contract: Contract,
                product_operations: frozenset[str]) -> set[str]:
    if "method" in match:
        operation = contract.find(match["method"], match["path"])
        if operation is None or operation.operation_id not in product_operations:
            raise document.fail(where + ("path",),
                                f"no operation at {match['method'].upper()} {match['path']} in spec/openapi.yaml")
        return {operation.operation_id}
    named = match.get("operation", [])
    named = [named] if isinstance(named, str) else named
    for position, operation_id in enumerate(named):
        if operation_id not in product_operations:
            location = where + ("operation",) + ((position,) if isinstance(match["operation"], list) else ())
            raise document.fail(location, f"unknown operationId {operation_id!r} (known: "
                                          f"{', '.join(sorted(product_operations))})")
    return set(named)


def _condition(document: YamlDocument, where: tuple, source: str, name: str, test: Any) -> Condition:
    if not isinstance(test, dict):
        test = {"equals": test}
    (kind, value), = test.items()
    if source != "body" and kind in ("equals", "one_of"):
        # Headers, query and path values arrive as text: `X-Attempt: 2` means "2".
        value = [_text(v) for v in value] if kind == "one_of" else _text(value)
    if kind == "regex":
        try:
            return Condition(source, name, regex=re.compile(value))
        except re.error as exc:
            raise document.fail(where + ("regex",), f"invalid regular expression: {exc}") from None
    if kind == "equals":
        return Condition(source, name, equals=value)
    if kind == "one_of":
        return Condition(source, name, one_of=tuple(value))
    present = value if kind == "present" else not value
    return Condition(source, name, equals=MISSING, present=present)


def _respond(document: YamlDocument, where: tuple, respond: dict, operations: set[str] | frozenset[str],
             contract: Contract) -> Respond:
    """Check the answer against every operation the rule can match (an example is found per request)."""
    status = respond["status"]
    for operation_id in sorted(operations):
        if status not in contract.operations[operation_id].responses:
            documented = ", ".join(map(str, sorted(contract.operations[operation_id].responses)))
            raise document.fail(where + ("status",),
                                f"status {status} is not documented for {operation_id} (documented: {documented})")
        if "body" in respond:
            problems = contract.body_problems(operation_id, status, respond["body"])
            if problems:
                raise document.fail(where + ("body",), f"does not fit {operation_id} {status}: {problems[0]}")
            continue
        try:
            contract.choose(operation_id, status, respond.get("example"))
        except LookupError as exc:
            raise document.fail(where + ("example" if "example" in respond else "status",), str(exc)) from None
    return Respond(status, respond.get("body"), respond.get("example"), "body" in respond)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _budget(budget: dict) -> Budget:
    return Budget(first=budget.get("first"), every=budget.get("every"), probability=budget.get("probability"))


def _latency(latency: dict) -> Latency:
    if "fixed_ms" in latency:
        return Latency(fixed_ms=latency["fixed_ms"])
    if "uniform_ms" in latency:
        low, high = sorted(latency["uniform_ms"])
        return Latency(uniform_ms=(low, high))
    return Latency(median_ms=latency["lognormal"]["median_ms"], sigma=latency["lognormal"]["sigma"])


def _fault(fault: str | dict) -> Fault:
    if isinstance(fault, str):
        return Fault(kind=fault)
    (kind, settings), = fault.items()
    if kind == "truncate":
        return Fault(kind, fraction=settings.get("fraction", 0.5))
    return Fault(kind, duration_ms=settings["duration_ms"], chunks=int(settings.get("chunks", 10)))
