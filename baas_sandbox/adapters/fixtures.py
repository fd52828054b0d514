"""Fixture files: the tenants and accounts the sandbox starts with (and returns to on reset).

A malformed fixture stops start-up with the file, the line and the field, because a QA engineer
editing YAML needs to know where, not a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from baas_sandbox.domain.model import Account, Tenant

PROVIDERS = ["BTG", "CELCOIN", "JDPI", "PAY2ALL"]

TENANTS_SCHEMA = {
    "type": "object",
    "required": ["tenants"],
    "additionalProperties": False,
    "properties": {
        "tenants": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "token", "requester_key"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "token": {"type": "string", "pattern": r"^[A-Za-z0-9._~+/-]+=*$"},
                    "requester_key": {
                        "type": "string",
                        "pattern": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                    },
                    "providers": {
                        "type": "array",
                        "items": {"enum": PROVIDERS},
                        "uniqueItems": True,
                    },
                },
            },
        }
    },
}


class FixtureError(Exception):
    """A fixture file is malformed; the message names the file, the line and the field."""

    def __init__(self, path: Path, line: int | None, field: str, problem: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


@dataclass(frozen=True)
class Fixtures:
    tenants: list[Tenant]
    accounts: list[Account]


class _Document:
    """A parsed YAML file that remembers the line of every value, by its path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except OSError as exc:
            raise FixtureError(path, None, "", f"cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise FixtureError(path, mark.line + 1 if mark else None, "",
                               f"is not valid YAML ({getattr(exc, 'problem', exc)})") from None
        self.lines: dict[tuple, int] = {}
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, path: tuple) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                self._index(value_node, path + (key_node.value,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._index(item, path + (index,))

    def line_of(self, path: tuple) -> int | None:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path)

    def fail(self, path: tuple, problem: str) -> FixtureError:
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        return FixtureError(self.path, self.line_of(path), field, problem)

    def check(self, schema: dict) -> None:
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft7Validator(schema).iter_errors(self.data)
        )
        if error is not None:
            raise self.fail(tuple(error.absolute_path), error.message)


#: Builds an account from a fixture entry; raises ``InvalidAccountField`` for a bad field.
AccountBuilder = Callable[[dict, Callable[[str], Tenant | None]], Account]


class InvalidAccountField(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def load_fixtures(directory: Path, account_schema: dict, build_account: AccountBuilder) -> Fixtures:
    """Read ``tenants.yaml`` and ``accounts.yaml`` from ``directory``."""
    tenants_doc = _Document(directory / "tenants.yaml")
    tenants_doc.check(TENANTS_SCHEMA)
    tenants: dict[str, Tenant] = {}
    tokens: set[str] = set()
    for index, entry in enumerate(tenants_doc.data["tenants"]):
        if entry["name"] in tenants:
            raise tenants_doc.fail(("tenants", index, "name"), f"tenant {entry['name']!r} is defined twice")
        if entry["token"] in tokens:
            raise tenants_doc.fail(("tenants", index, "token"), "token is used by another tenant")
        tokens.add(entry["token"])
        tenants[entry["name"]] = Tenant(
            name=entry["name"],
            token=entry["token"],
            requester_key=entry["requester_key"],
            providers=frozenset(entry.get("providers", PROVIDERS)),
        )

    accounts_doc = _Document(directory / "accounts.yaml")
    accounts_doc.check({
        "type": "object",
        "required": ["accounts"],
        "additionalProperties": False,
        "properties": {"accounts": {"type": "array", "items": _with_required(account_schema, "account_key")}},
    })
    accounts: list[Account] = []
    seen: set[str] = set()
    for index, entry in enumerate(accounts_doc.data["accounts"]):
        if entry["account_key"] in seen:
            raise accounts_doc.fail(("accounts", index, "account_key"), "account_key is used by another account")
        seen.add(entry["account_key"])
        try:
            accounts.append(build_account(entry, tenants.get))
        except InvalidAccountField as exc:
            raise accounts_doc.fail(("accounts", index, exc.field), exc.problem) from None
    return Fixtures(tenants=list(tenants.values()), accounts=accounts)


def _with_required(schema: dict, *names: str) -> dict:
    return schema | {"required": [*schema.get("required", []), *names]}


