"""Fixture files: the tenants and accounts the sandbox starts with (and returns to on reset).

A malformed fixture stops start-up with the file, the line and the field, because a QA engineer
editing YAML needs to know where, not a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from baas_sandbox.adapters.yamlfile import FileProblem, YamlDocument
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


class FixtureError(FileProblem):
    """A fixture file is malformed; the message names the file, the line and the field."""


@dataclass(frozen=True)
class Fixtures:
    tenants: list[Tenant]
    accounts: list[Account]
    #: Webhook subscriptions to set up at start (``webhooks.yaml``, optional).
    subscriptions: list[dict] = field(default_factory=list)


#: Builds an account from a fixture entry; raises ``InvalidAccountField`` for a bad field.
AccountBuilder = Callable[[dict, Callable[[str], Tenant | None]], Account]


class InvalidAccountField(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


#: Says why a subscription cannot be accepted: (field, problem), or None.
SubscriptionCheck = Callable[[dict], tuple[str, str] | None]


def load_fixtures(directory: Path, account_schema: dict, build_account: AccountBuilder,
                  check_subscription: SubscriptionCheck = lambda _entry: None) -> Fixtures:
    """Read ``tenants.yaml``, ``accounts.yaml`` and the optional ``webhooks.yaml`` from ``directory``."""
    tenants_doc = YamlDocument(directory / "tenants.yaml", FixtureError)
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

    accounts_doc = YamlDocument(directory / "accounts.yaml", FixtureError)
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
    return Fixtures(tenants=list(tenants.values()), accounts=accounts,
                    subscriptions=load_subscriptions(directory / "webhooks.yaml", check_subscription))


SUBSCRIPTION_SCHEMA = {
    "type": "object",
    "required": ["url", "events"],
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "pattern": "^https?://[^\\s/]+"},
        "events": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "secret": {"type": "string", "minLength": 8},
    },
}


def load_subscriptions(path: Path, check: SubscriptionCheck) -> list[dict]:
    """``webhooks.yaml``: a team's whole webhook setup in one file (optional)."""
    if not path.exists():
        return []
    document = YamlDocument(path, FixtureError)
    document.check({"type": "object", "required": ["subscriptions"], "additionalProperties": False,
                    "properties": {"subscriptions": {"type": "array", "items": SUBSCRIPTION_SCHEMA}}})
    for index, entry in enumerate(document.data["subscriptions"]):
        problem = check(entry)
        if problem is not None:
            raise document.fail(("subscriptions", index, problem[0]), problem[1])
    return document.data["subscriptions"]


def _with_required(schema: dict, *names: str) -> dict:
    return schema | {"required": [*schema.get("required", []), *names]}


