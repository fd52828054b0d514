"""Fixture files: the tenants and accounts the sandbox starts with (and returns to on reset).

A malformed fixture stops start-up with the file, the line and the field, because a QA engineer
editing YAML needs to know where, not a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from baas_sandbox.adapters.yamlfile import FileProblem, YamlDocument
from baas_sandbox.domain.documents import check_pix_key
from baas_sandbox.domain.errors import InvalidPixKey
from baas_sandbox.domain.documents import UUID_PATTERN as RANDOM_KEY_PATTERN
from baas_sandbox.domain.model import Account, DictEntry, PixKeyType, Tenant

PROVIDERS = ["BTG", "CELCOIN", "JDPI", "PAY2ALL"]
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

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
                    "requester_key": {"type": "string", "pattern": UUID_PATTERN},
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
    #: Key requests at start (``key_requests.yaml``, optional): email and phone requests waiting
    #: for their code, and active keys (``request_status: approved``).
    key_requests: list[dict] = field(default_factory=list)
    #: Keys DICT holds for other institutions (``dict_entries.yaml``, optional).
    dict_entries: list[DictEntry] = field(default_factory=list)
    #: Claims at start (``claims.yaml``, optional), in both roles.
    claims: list[dict] = field(default_factory=list)


#: Builds an account from a fixture entry; raises ``InvalidAccountField`` for a bad field.
AccountBuilder = Callable[[dict, Callable[[str], Tenant | None]], Account]


class InvalidAccountField(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


#: Says why a subscription cannot be accepted: (field, problem), or None.
SubscriptionCheck = Callable[[dict], tuple[str, str] | None]


#: Builds a DICT entry from a fixture entry; raises ``InvalidAccountField`` for a bad field.
DictEntryBuilder = Callable[[dict], DictEntry]


def load_fixtures(directory: Path, account_schema: dict, build_account: AccountBuilder,
                  check_subscription: SubscriptionCheck = lambda _entry: None,
                  dict_entry_schema: dict | None = None,
                  build_dict_entry: DictEntryBuilder | None = None) -> Fixtures:
    """Read ``tenants.yaml``, ``accounts.yaml`` and the optional ``webhooks.yaml`` from ``directory``.

    Every problem of every file is found before one ``FixtureError`` reports them all: an entry
    that breaks the schema is reported and left out of the checks that need its fields; a file
    that cannot be read, or whose shape is wrong, is reported and the other files are still read.
    """
    problems: list[FileProblem] = []
    tenants = _load_tenants(directory / "tenants.yaml", problems)
    accounts = _load_accounts(directory / "accounts.yaml", account_schema, build_account, tenants, problems)
    subscriptions = _collect(problems, load_subscriptions, directory / "webhooks.yaml", check_subscription) or []
    key_requests = _load_key_requests(directory / "key_requests.yaml", {a.account_key for a in accounts}, problems)
    dict_entries = []
    if dict_entry_schema is not None and build_dict_entry is not None:
        dict_entries = _load_dict_entries(directory / "dict_entries.yaml", dict_entry_schema, build_dict_entry,
                                          {entry["pix_key"] for entry in key_requests}, problems)
    claims = _load_claims(directory / "claims.yaml", {a.account_key for a in accounts}, problems)
    if problems:
        files = list(dict.fromkeys(problem.path for problem in problems))
        problems.sort(key=lambda problem: (files.index(problem.path), problem.line or 0))  # stable: as found
        raise FixtureError.several(problems)
    return Fixtures(tenants=list(tenants.values()), accounts=accounts, subscriptions=subscriptions,
                    key_requests=key_requests, dict_entries=dict_entries, claims=claims)


def _collect(problems: list[FileProblem], load: Callable, *args):
    """``load(*args)``, its problems added to ``problems`` (then None) rather than raised."""
    try:
        return load(*args)
    except FileProblem as exc:
        problems.extend(exc.problems)
        return None


def _checked_entries(document: YamlDocument, schema: dict, key: str,
                     problems: list[FileProblem]) -> list[tuple[int, dict]]:
    """The entries of ``document[key]`` that ``schema`` (of the whole file) accepts, with their
    index; every violation goes to ``problems``. None at all when the file's shape is wrong."""
    violations = document.violations(schema)
    problems.extend(document.fail(path, message) for path, message in violations)
    if any(len(path) < 2 for path, _ in violations):  # the file itself, or its list, is wrong
        return []
    broken = {path[1] for path, _ in violations}
    return [(index, entry) for index, entry in enumerate(document.data[key]) if index not in broken]


def _load_tenants(path: Path, problems: list[FileProblem]) -> dict[str, Tenant]:
    tenants: dict[str, Tenant] = {}
    document = _collect(problems, YamlDocument, path, FixtureError)
    if document is None:
        return tenants
    tokens: set[str] = set()
    for index, entry in _checked_entries(document, TENANTS_SCHEMA, "tenants", problems):
        if entry["name"] in tenants:
            problems.append(document.fail(("tenants", index, "name"), f"tenant {entry['name']!r} is defined twice"))
            continue
        if entry["token"] in tokens:
            problems.append(document.fail(("tenants", index, "token"), "token is used by another tenant"))
            continue
        tokens.add(entry["token"])
        tenants[entry["name"]] = Tenant(
            name=entry["name"],
            token=entry["token"],
            requester_key=entry["requester_key"],
            providers=frozenset(entry.get("providers", PROVIDERS)),
        )
    return tenants


def _load_accounts(path: Path, account_schema: dict, build_account: AccountBuilder, tenants: dict[str, Tenant],
                   problems: list[FileProblem]) -> list[Account]:
    accounts: list[Account] = []
    document = _collect(problems, YamlDocument, path, FixtureError)
    if document is None:
        return accounts
    schema = {
        "type": "object",
        "required": ["accounts"],
        "additionalProperties": False,
        "properties": {"accounts": {"type": "array", "items": _with_required(account_schema, "account_key")}},
    }
    entries = _checked_entries(document, schema, "accounts", problems)
    seen: set[str] = set()
    taken: set[int] = set()  # second uses of a key, among every entry (a broken one holds its key too)
    listed = document.data.get("accounts") if isinstance(document.data, dict) else None
    for index, entry in enumerate(listed if isinstance(listed, list) else []):  # a wrong shape: reported above
        key = entry.get("account_key") if isinstance(entry, dict) else None
        if isinstance(key, str) and key in seen:
            problems.append(document.fail(("accounts", index, "account_key"), "account_key is used by another account"))
            taken.add(index)
        elif isinstance(key, str):
            seen.add(key)
    for index, entry in entries:
        if index in taken:
            continue
        try:
            accounts.append(build_account(entry, tenants.get))
        except InvalidAccountField as exc:
            problems.append(document.fail(("accounts", index, exc.field), exc.problem))
    return accounts


KEY_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["pix_key_request_key", "account_key", "pix_key_type", "pix_key"],
    "additionalProperties": False,
    "properties": {
        "pix_key_request_key": {"type": "string", "pattern": UUID_PATTERN},
        "account_key": {"type": "string", "pattern": UUID_PATTERN},
        "pix_key_type": {"enum": [str(kind) for kind in PixKeyType]},
        "pix_key": {"type": "string"},
        # pending_validation (the default): waits for its code; approved: an active key
        "request_status": {"enum": ["pending_validation", "approved"]},
        "verification_code": {"type": "string", "pattern": "^[0-9]{6}$"},
    },
}


def _load_key_requests(path: Path, account_keys: set[str], problems: list[FileProblem]) -> list[dict]:
    """``key_requests.yaml`` (optional): requests waiting for their code, so that a documented
    ``twofa_validation`` works on a fresh sandbox. The rules of a client's request apply when the
    sandbox stores them (at start and on reset); the key and the account are checked here."""
    if not path.exists():
        return []
    document = _collect(problems, YamlDocument, path, FixtureError)
    if document is None:
        return []
    schema = {"type": "object", "required": ["key_requests"], "additionalProperties": False,
              "properties": {"key_requests": {"type": "array", "items": KEY_REQUEST_SCHEMA}}}
    entries = []
    seen: set[str] = set()
    values: set[str] = set()
    for index, entry in _checked_entries(document, schema, "key_requests", problems):
        where = ("key_requests", index)
        kind = PixKeyType(entry["pix_key_type"])
        active = entry.get("request_status") == "approved"
        if active and "verification_code" in entry:
            problems.append(document.fail(where + ("verification_code",), "an active key (approved) has no code"))
            continue
        if not active and (not kind.needs_verification or "verification_code" not in entry):
            problems.append(document.fail(where + ("pix_key_type" if not kind.needs_verification
                                                   else "verification_code",),
                                          "a request waiting for its code is an email or phone key with its "
                                          "verification_code (or say request_status: approved)"))
            continue
        try:
            if kind is PixKeyType.RANDOM:
                if not RANDOM_KEY_PATTERN.fullmatch(entry["pix_key"]):
                    raise InvalidPixKey(entry["pix_key"], "is not a random key (a lower-case UUID)", "")
            else:
                check_pix_key(kind, entry["pix_key"])
        except InvalidPixKey as exc:
            problems.append(document.fail(where + ("pix_key",), str(exc)))
            continue
        if entry["account_key"] not in account_keys:
            problems.append(document.fail(where + ("account_key",), "no such account in accounts.yaml"))
        elif entry["pix_key_request_key"] in seen:
            problems.append(document.fail(where + ("pix_key_request_key",), "used by another key request"))
        elif entry["pix_key"] in values:
            problems.append(document.fail(where + ("pix_key",), "held by another key request"))
        else:
            seen.add(entry["pix_key_request_key"])
            values.add(entry["pix_key"])
            entries.append(entry)
    return entries


CLAIM_SCHEMA = {
    "type": "object",
    "required": ["claim_request_key", "role", "account_key", "pix_key_type", "pix_key", "claim_request_status"],
    "additionalProperties": False,
    "properties": {
        "claim_request_key": {"type": "string", "pattern": UUID_PATTERN},
        # claimant: the account claims a key of dict_entries.yaml; donator: another bank claims an
        # active key of the account (key_requests.yaml)
        "role": {"enum": ["claimant", "donator"]},
        "account_key": {"type": "string", "pattern": UUID_PATTERN},
        "pix_key_type": {"enum": [str(kind) for kind in PixKeyType]},
        "pix_key": {"type": "string"},
        "claim_request_type": {"enum": ["portability", "ownership"]},  # donator only (default portability)
        "claim_request_status": {"enum": ["pending_claimer_validation", "pending", "pending_confirmation",
                                          "confirmed"]},
        "verification_code": {"type": "string", "pattern": "^[0-9]{6}$"},
    },
}


def _load_claims(path: Path, account_keys: set[str], problems: list[FileProblem]) -> list[dict]:
    """``claims.yaml`` (optional): claims at start, so that the documented claim operations work on
    a fresh sandbox. The rules of a client's claim apply when the sandbox stores them."""
    if not path.exists():
        return []
    document = _collect(problems, YamlDocument, path, FixtureError)
    if document is None:
        return []
    schema = {"type": "object", "required": ["claims"], "additionalProperties": False,
              "properties": {"claims": {"type": "array", "items": CLAIM_SCHEMA}}}
    entries = []
    seen: set[str] = set()
    for index, entry in _checked_entries(document, schema, "claims", problems):
        where = ("claims", index)
        if entry["account_key"] not in account_keys:
            problems.append(document.fail(where + ("account_key",), "no such account in accounts.yaml"))
        elif entry["claim_request_key"] in seen:
            problems.append(document.fail(where + ("claim_request_key",), "used by another claim"))
        else:
            seen.add(entry["claim_request_key"])
            entries.append(entry)
    return entries


def _load_dict_entries(path: Path, entry_schema: dict, build: DictEntryBuilder, sandbox_keys: set[str],
                       problems: list[FileProblem]) -> list[DictEntry]:
    """``dict_entries.yaml`` (optional): keys DICT holds for other institutions, each in the admin
    API's ``DictEntryRequest`` shape; one key once, and none of the sandbox's own fixture keys."""
    if not path.exists():
        return []
    document = _collect(problems, YamlDocument, path, FixtureError)
    if document is None:
        return []
    schema = {"type": "object", "required": ["dict_entries"], "additionalProperties": False,
              "properties": {"dict_entries": {"type": "array", "items": entry_schema}}}
    entries: list[DictEntry] = []
    seen: set[str] = set()
    for index, entry in _checked_entries(document, schema, "dict_entries", problems):
        where = ("dict_entries", index)
        try:
            built = build(entry)
        except InvalidAccountField as exc:
            problems.append(document.fail(where + (exc.field,), exc.problem))
            continue
        if built.pix_key in seen:
            problems.append(document.fail(where + ("pix_key",), "held by another DICT entry"))
        elif built.pix_key in sandbox_keys:
            problems.append(document.fail(where + ("pix_key",), "held by a key request of key_requests.yaml"))
        else:
            seen.add(built.pix_key)
            entries.append(built)
    return entries


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
    """``webhooks.yaml``: a team's whole webhook setup in one file (optional); every problem in one
    ``FixtureError``."""
    if not path.exists():
        return []
    document = YamlDocument(path, FixtureError)
    problems: list[FileProblem] = []
    schema = {"type": "object", "required": ["subscriptions"], "additionalProperties": False,
              "properties": {"subscriptions": {"type": "array", "items": SUBSCRIPTION_SCHEMA}}}
    for index, entry in _checked_entries(document, schema, "subscriptions", problems):
        problem = check(entry)
        if problem is not None:
            problems.append(document.fail(("subscriptions", index, problem[0]), problem[1]))
    if problems:
        raise FixtureError.several(problems)
    return document.data["subscriptions"]


def _with_required(schema: dict, *names: str) -> dict:
    return schema | {"required": [*schema.get("required", []), *names]}


