"""Snapshots: a namespace's state as one JSON document (``GET|PUT /__admin/state``), and every
namespace's in a state file (``baas-sandbox serve --state-file``).

A snapshot holds what makes a namespace answer the same: accounts, key requests (every field:
status, codes, wrong-code counts, validation window), credentials' metadata, the outbox, the clock
setting, the due jobs, the active scenarios, the webhook subscriptions, the keys DICT holds at
other institutions and the anti-scan buckets. It holds no secret: not a
provider key (not even sealed), not a subscription's signing secret. History (events, recorded
webhooks, deliveries, the journal, scenario counts) is left out.

An import is checked whole before anything changes: against the spec's ``NamespaceState`` schema,
then against the domain's rules (the tenants are the fixtures'; check digits; references between the
document's parts; one owner per key; the per-account limit; unique ids). Every problem is reported
with its JSON pointer; a document with one is refused and the namespace is left as it was.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft4Validator, ValidationError

from baas_sandbox.adapters import state_codec as codec
from baas_sandbox.adapters.webhooks import Subscription
from baas_sandbox.domain import errors
from baas_sandbox.domain.antiscan import CAPACITY
from baas_sandbox.domain.documents import check_pix_key, is_valid_cnpj, is_valid_cpf
from baas_sandbox.domain.model import (
    KEY_LIMITS,
    SUPPORTED_PROVIDERS,
    KeyStatus,
    PersonType,
    PixKeyType,
    RequestStatus,
    check_key_belongs_to_owner,
)
from baas_sandbox.scenarios.library import UnknownScenario
from baas_sandbox.services.sandbox import Sandbox

#: The ``format`` of a namespace's snapshot, and of a state file (``{format, namespaces}``).
FORMAT = "baas-sandbox.namespace-state/1"
FILE_FORMAT = "baas-sandbox.state-file/1"
#: Problems reported at most (a 10,000-account document with a mistake in each is not answered
#: with 10,000 lines); the details say how many there were.
MAX_PROBLEMS = 100
#: The longest value a problem's message quotes.
QUOTE_LIMIT = 80

#: Each request status and the key statuses it goes with (an approved key may have been deleted).
KEY_STATUSES_OF = {
    RequestStatus.PENDING_VALIDATION: (KeyStatus.PENDING_CONFIRMATION,),
    RequestStatus.PENDING: (KeyStatus.PENDING_CONFIRMATION,),
    RequestStatus.APPROVED: (KeyStatus.ACTIVE, KeyStatus.INACTIVE, KeyStatus.PENDING_CLAIM),
    RequestStatus.REJECTED: (KeyStatus.INACTIVE,),
}


@dataclass(frozen=True)
class Problem:
    pointer: str  # RFC 6901, into the document (``/key_requests/3/pix_key``)
    message: str

    def as_dict(self) -> dict:
        return {"pointer": self.pointer, "message": self.message}

    def __str__(self) -> str:
        return f"{self.pointer or '(document)'}: {self.message}"


class InvalidState(ValueError):
    """A snapshot or state file that cannot be imported; ``problems``: every reason, with its pointer."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(summary(problems))


def summary(problems: list[Problem]) -> str:
    """One line: how many problems, and the first."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{len(problems)} problem{'s' if len(problems) != 1 else ''}: {problems[0]}{more}"


def pointer(*parts: Any) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "…"


# -- export -----------------------------------------------------------------------------------------


async def export_state(sandbox: Sandbox) -> dict:
    """The namespace's snapshot (the ``NamespaceState`` of spec/admin.yaml)."""
    stored = await sandbox.store.export()
    return {
        "format": FORMAT,
        **stored,
        "active_scenarios": list(sandbox.scenarios.active),
        # Without their secrets: a snapshot is data to copy around, not a keystore.
        "webhook_subscriptions": [{"id": s.id, "url": s.url, "events": list(s.events), "created_at": s.created_at}
                                  for s in sandbox.webhooks.subscriptions()],
    }


async def export_all(sandboxes: Iterable[Sandbox]) -> dict:
    """A state file's document: every namespace's snapshot, by name."""
    return {"format": FILE_FORMAT,
            "namespaces": {s.name: await export_state(s) for s in sorted(sandboxes, key=lambda s: s.name)}}


def fingerprint(sandboxes: Iterable[Sandbox]) -> tuple:
    """Changes whenever a snapshot of ``sandboxes`` would (cheaply: no export)."""
    return tuple(sorted(
        (s.name, s.store.revision, tuple(s.scenarios.active),
         tuple((x.id, x.url, tuple(x.events)) for x in s.webhooks.subscriptions()))
        for s in sandboxes))


# -- checking ---------------------------------------------------------------------------------------

_validators: dict[int, tuple[dict, Draft4Validator, Callable[[Any], bool] | None]] = {}


def _validators_of(schema: dict) -> tuple[Draft4Validator, Callable[[Any], bool] | None]:
    """jsonschema's validator (which words every error) and, when it compiles the schema, a fast one
    (jsonschema-rs, ~20 times faster) that only says whether a document is valid."""
    cached = _validators.get(id(schema))
    if cached is None or cached[0] is not schema:
        try:
            import jsonschema_rs

            fast = jsonschema_rs.Draft4Validator(schema, validate_formats=False).is_valid
        except (ImportError, ValueError):  # the engine missing, or a pattern it cannot compile
            fast = None
        cached = (schema, Draft4Validator(schema), fast)
        _validators[id(schema)] = cached  # the schema is held: its id stays its own
    return cached[1], cached[2]


def schema_problems(schema: dict, document: Any, base: str = "") -> list[Problem]:
    found: list[Problem] = []
    validator, fast = _validators_of(schema)
    if fast is not None and fast(document):
        return found
    errors_ = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors_:
        found.extend(_describe(error, base))
    return found


def _describe(error: ValidationError, base: str) -> list[Problem]:
    at = base + pointer(*error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        return [Problem(at + pointer(name), "is required")
                for name in error.validator_value if name not in error.instance]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        return [Problem(at + pointer(name), "is not allowed here") for name in error.instance if name not in allowed]
    message = error.message
    quoted = repr(error.instance)
    if len(quoted) > QUOTE_LIMIT and quoted in message:
        message = message.replace(quoted, _quote(error.instance))
    return [Problem(at, message)]


def problems(sandbox: Sandbox, document: Any, base: str = "") -> list[Problem]:
    """Every reason ``document`` cannot become ``sandbox``'s state (its tenants, scenarios and webhook
    rules), pointers prefixed with ``base``; empty when it can."""
    schema = sandbox.shared.state_schema
    assert schema is not None, "the app gives the namespaces the spec's NamespaceState schema"
    found = schema_problems(schema, document, base)
    # The rules are checked on the parts that fit the schema (a part that does not is reported
    # above once); when the document's own shape is wrong, there is nothing to check them on.
    if not isinstance(document, dict) or any(p.pointer.count("/") - base.count("/") <= 1 for p in found):
        return found
    broken = {p.pointer for p in found}
    found.extend(_Rules(sandbox, document, base, broken).check())
    return found


class _Rules:
    """The domain's rules over a document that fits the schema (part by part)."""

    def __init__(self, sandbox: Sandbox, document: dict, base: str, broken: set[str]) -> None:
        self.sandbox, self.doc, self.base = sandbox, document, base
        # (section, index) of every item with a schema problem inside it
        self._broken = {tuple(p[len(base):].split("/")[1:3]) for p in broken}
        self.found: list[Problem] = []

    def fits(self, section: str, index: int) -> bool:
        """Whether the item ``index`` of ``section`` fit the schema (nothing reported inside it)."""
        return (section, str(index)) not in self._broken

    def problem(self, message: str, *parts: Any) -> None:
        self.found.append(Problem(self.base + pointer(*parts), message))

    def check(self) -> list[Problem]:
        accounts = self._accounts()
        requests = self._key_requests(accounts)
        self._credentials()
        claims = self._claims(accounts, requests)
        self._outbox(requests, claims)
        self._due_jobs(requests | claims)
        self._scenarios()
        self._subscriptions()
        self._dict_entries(accounts)
        self._buckets(accounts)
        return self.found

    def _unique(self, seen: dict[Any, int], value: Any, section: str, index: int, field: str, what: str) -> bool:
        if value in seen:
            self.problem(f"{what} {_quote(value)} appears twice (first at {self.base}{pointer(section, seen[value])})",
                         section, index, field)
            return False
        seen[value] = index
        return True

    def _accounts(self) -> dict[str, dict | None]:
        """account_key -> the account (None: present but not fitting the schema: not checked further)."""
        accounts: dict[str, dict | None] = {}
        seen: dict[str, int] = {}
        tenant = self.sandbox.store.tenant
        for index, account in enumerate(self.doc["accounts"]):
            key = account.get("account_key") if isinstance(account, dict) else None
            if not self.fits("accounts", index):
                if isinstance(key, str):
                    accounts.setdefault(key, None)
                continue
            if not self._unique(seen, key, "accounts", index, "account_key", "account_key"):
                continue
            accounts[key] = account
            if tenant(account["tenant"]) is None:
                known = ", ".join(sorted(t.name for t in self.sandbox.fixtures.tenants)) or "none"
                self.problem(f"unknown tenant {_quote(account['tenant'])} (the tenants are the fixtures': {known})",
                             "accounts", index, "tenant")
            document = account["owner_document_number"]
            if account["owner_person_type"] == PersonType.NATURAL and not is_valid_cpf(document):
                self.problem(f"{document} is not a valid CPF (a natural person's document: 11 digits with valid "
                             "check digits)", "accounts", index, "owner_document_number")
            if account["owner_person_type"] == PersonType.LEGAL and not is_valid_cnpj(document):
                self.problem(f"{document} is not a valid CNPJ (a legal person's document: 14 digits with valid "
                             "check digits)", "accounts", index, "owner_document_number")
        return accounts

    def _key_requests(self, accounts: dict[str, dict | None]) -> set[str]:
        seen: dict[str, int] = {}
        self.held_keys = set()  # the key values the document's requests hold
        owners: dict[str, int] = {}  # key value -> index of the request that claims it
        in_use: dict[str, int] = {}  # account_key -> keys claimed
        known: set[str] = set()
        for index, request in enumerate(self.doc["key_requests"]):
            key = request.get("pix_key_request_key") if isinstance(request, dict) else None
            if isinstance(key, str):
                known.add(key)
            if not self.fits("key_requests", index):
                continue
            if not self._unique(seen, key, "key_requests", index, "pix_key_request_key", "pix_key_request_key"):
                continue
            account_key = request["account_key"]
            if account_key not in accounts:
                self.problem(f"no account {account_key} in the document's accounts", "key_requests", index,
                             "account_key")
            self._request_rules(index, request, accounts.get(account_key))
            if request["pix_key_status"] == KeyStatus.INACTIVE:
                continue  # a rejected request, or a deleted key, holds neither its key nor a place in the limit
            value = request["pix_key"]
            if value is not None and value in owners:
                self.problem(f"the key {_quote(value)} is claimed twice: a key has one owner (also claimed at "
                             f"{self.base}{pointer('key_requests', owners[value])})", "key_requests", index, "pix_key")
            elif value is not None:
                owners[value] = index
                self.held_keys.add(value)
            account = accounts.get(account_key)
            if account is not None:
                in_use[account_key] = in_use.get(account_key, 0) + 1
                limit = KEY_LIMITS[PersonType(account["owner_person_type"])]
                if in_use[account_key] == limit + 1:
                    self.problem(f"account {account_key} holds more than its {limit} keys (requests not rejected "
                                 "count)", "key_requests", index, "account_key")
        return known

    def _request_rules(self, index: int, request: dict, account: dict | None) -> None:
        at = ("key_requests", index)
        kind = PixKeyType(request["pix_key_type"])
        status = RequestStatus(request["request_status"])
        value = request["pix_key"]
        if kind is PixKeyType.RANDOM:
            if status is RequestStatus.APPROVED and value is None:
                self.problem("an approved random key request has its key value", *at, "pix_key")
            if status is not RequestStatus.APPROVED and value is not None:
                self.problem("a random key has no value until it is approved (null)", *at, "pix_key")
        else:
            try:
                check_pix_key(kind, value)
                if account is not None:
                    check_key_belongs_to_owner(kind, value, codec.decode_account(account))
            except errors.InvalidPixKey as invalid:
                self.problem(invalid.violations[0]["message"], *at, "pix_key")
            except errors.KeyNotOwnersDocument:
                self.problem(f"{value} is not the document of the account's owner "
                             f"({account['owner_document_number'] if account else '?'})", *at, "pix_key")
        if request["pix_key_status"] not in KEY_STATUSES_OF[status]:
            self.problem(f"a {status} request's key is {' or '.join(KEY_STATUSES_OF[status])}", *at, "pix_key_status")
        if (status is RequestStatus.REJECTED) != (request["request_failure_reason"] is not None):
            self.problem("a rejected request, and only a rejected one, has a request_failure_reason", *at,
                         "request_failure_reason")
        code = request["verification_code"]
        if status is RequestStatus.PENDING_VALIDATION and not kind.needs_verification:
            self.problem(f"a {kind} key request is never pending_validation (only email and phone keys wait "
                         "for a code)", *at, "request_status")
        if status is RequestStatus.PENDING_VALIDATION and kind.needs_verification and code is None:
            self.problem("a request pending_validation has its verification code", *at, "verification_code")
        if status is not RequestStatus.PENDING_VALIDATION and code is not None:
            self.problem("only a request pending_validation has a verification code (null)", *at, "verification_code")
        if code is not None:
            if code["channel"] != ("email" if kind is PixKeyType.EMAIL else "sms"):
                self.problem(f"a {kind} key's code is sent by {'email' if kind is PixKeyType.EMAIL else 'sms'}",
                             *at, "verification_code", "channel")
            if code["destination"] != value:
                self.problem("a code is sent to the key itself (its pix_key)", *at, "verification_code", "destination")
            for field in ("sent_at", "expires_at"):
                self._instant(code[field], *at, "verification_code", field)
        if request["accepted_code"] is not None and not kind.needs_verification:
            self.problem(f"a {kind} key request has no code to accept (null)", *at, "accepted_code")
        if request["validation_due"] is not None:
            if status is not RequestStatus.PENDING_VALIDATION:
                self.problem("only a request pending_validation has a validation_due (null)", *at, "validation_due")
            self._instant(request["validation_due"], *at, "validation_due")

    def _instant(self, text: str, *parts: Any) -> None:
        try:
            codec.decode_instant(text)
        except ValueError:
            self.problem(f"{_quote(text)} is not a time", *parts)

    def _credentials(self) -> None:
        seen: dict[tuple, int] = {}
        for index, credential in enumerate(self.doc["credentials"]):
            if not self.fits("credentials", index):
                continue
            slot = (credential["tenant"], credential["provider"], credential["type"])
            if slot in seen:
                self.problem(f"a second credential for tenant {_quote(slot[0])}, {slot[1]}, {slot[2]} (first at "
                             f"{self.base}{pointer('credentials', seen[slot])}): one per (tenant, provider, type)",
                             "credentials", index)
                continue
            seen[slot] = index
            if self.sandbox.store.tenant(credential["tenant"]) is None:
                self.problem(f"unknown tenant {_quote(credential['tenant'])}", "credentials", index, "tenant")
            if credential["provider"] not in SUPPORTED_PROVIDERS.get(credential["type"], ()):
                self.problem(f"{credential['provider']} does not serve the type {credential['type']}",
                             "credentials", index, "provider")

    def _claims(self, accounts: dict[str, dict | None], requests: set[str]) -> set[str]:
        """Claims: unique keys, their account in the document, a donor's key request in it, one
        unfinished claim per key."""
        seen: dict[str, int] = {}
        open_keys: dict[str, int] = {}
        found: set[str] = set()
        for index, claim in enumerate(self.doc.get("claims", [])):
            if not self.fits("claims", index):
                continue
            if not self._unique(seen, claim["claim_request_key"], "claims", index, "claim_request_key",
                                "claim_request_key"):
                continue
            found.add(claim["claim_request_key"])
            if claim["account_key"] not in accounts:
                self.problem(f"no account {claim['account_key']} in the document's accounts", "claims", index,
                             "account_key")
            if claim["role"] == "donator" and claim["key_request_key"] not in requests:
                self.problem(f"no key request {claim['key_request_key']} in the document's key_requests",
                             "claims", index, "key_request_key")
            if claim["claim_request_status"] not in ("concluded", "cancelled", "failed"):
                if claim["pix_key"] in open_keys:
                    self.problem(f"the key {_quote(claim['pix_key'])} has two unfinished claims", "claims", index,
                                 "pix_key")
                open_keys[claim["pix_key"]] = index
            for field in ("resolution_due", "conclusion_due"):
                self._instant(claim[field], "claims", index, field)
        return found

    def _outbox(self, requests: set[str], claims: set[str] = frozenset()) -> None:
        seen: dict[str, int] = {}
        for index, message in enumerate(self.doc["outbox"]):
            if not self.fits("outbox", index):
                continue
            self._unique(seen, message["message_id"], "outbox", index, "message_id", "message_id")
            if message.get("claim_request_key") is not None:
                if message["claim_request_key"] not in claims:
                    self.problem(f"no claim {message['claim_request_key']} in the document's claims",
                                 "outbox", index, "claim_request_key")
            elif message["pix_key_request_key"] not in requests:
                self.problem(f"no key request {message['pix_key_request_key']} in the document's key_requests",
                             "outbox", index, "pix_key_request_key")

    def _due_jobs(self, requests: set[str]) -> None:
        for index, job in enumerate(self.doc["due_jobs"]):
            if not self.fits("due_jobs", index):
                continue
            if job["subject"] not in requests:
                self.problem(f"no key request or claim {job['subject']} in the document's key_requests or claims",
                             "due_jobs", index, "subject")
            self._instant(job["due_at"], "due_jobs", index, "due_at")

    def _scenarios(self) -> None:
        for index, name in enumerate(self.doc["active_scenarios"]):
            if self.fits("active_scenarios", index) and not self.sandbox.scenarios.known(name):
                self.problem(f"unknown scenario {_quote(name)}", "active_scenarios", index)

    def _dict_entries(self, accounts: dict[str, dict | None]) -> None:
        seen: dict[str, int] = {}
        for index, entry in enumerate(self.doc.get("dict_entries", ())):
            if not self.fits("dict_entries", index):
                continue
            value = entry["pix_key"]
            if not self._unique(seen, value, "dict_entries", index, "pix_key", "the key"):
                continue
            try:
                check_pix_key(PixKeyType(entry["pix_key_type"]), value)
            except errors.InvalidPixKey as invalid:
                self.problem(invalid.violations[0]["message"], "dict_entries", index, "pix_key")
            if value in self.held_keys:
                self.problem(f"the key {_quote(value)} is held here too (by a key request): a key has one owner",
                             "dict_entries", index, "pix_key")

    def _buckets(self, accounts: dict[str, dict | None]) -> None:
        seen: dict[str, int] = {}
        for index, bucket in enumerate(self.doc.get("buckets", ())):
            if not self.fits("buckets", index):
                continue
            account_key = bucket["account_key"]
            if not self._unique(seen, account_key, "buckets", index, "account_key", "account_key"):
                continue
            account = accounts.get(account_key)
            if account_key not in accounts:
                self.problem(f"no account {account_key} in the document's accounts", "buckets", index, "account_key")
            elif account is not None and account["owner_person_type"] != bucket["person_type"]:
                self.problem(f"the account's owner is a {account['owner_person_type']} person", "buckets", index,
                             "person_type")
            expected = CAPACITY[PersonType(bucket["person_type"])]
            if bucket["capacity"] != expected:
                self.problem(f"a {bucket['person_type']} person's bucket holds {expected} tokens", "buckets", index,
                             "capacity")
            elif bucket["tokens"] > expected:
                self.problem(f"more tokens than the bucket holds ({expected})", "buckets", index, "tokens")
            self._instant(bucket["updated_at"], "buckets", index, "updated_at")

    def _subscriptions(self) -> None:
        seen: dict[str, int] = {}
        for index, entry in enumerate(self.doc["webhook_subscriptions"]):
            if not self.fits("webhook_subscriptions", index):
                continue
            if not self._unique(seen, entry["id"], "webhook_subscriptions", index, "id", "id"):
                continue
            refused = self.sandbox.subscription_problem(entry)
            if refused is not None:
                self.problem(refused[1], "webhook_subscriptions", index, refused[0])


# -- importing --------------------------------------------------------------------------------------


async def import_state(sandbox: Sandbox, document: Any) -> dict:
    """Replace ``sandbox``'s state with ``document``, or raise ``InvalidState`` (nothing changed);
    how much it now holds."""
    found = problems(sandbox, document)
    if found:
        raise InvalidState(found)
    await _apply(sandbox, document)
    return {"message": "State replaced", "accounts": len(document["accounts"]),
            "key_requests": len(document["key_requests"]), "credentials": len(document["credentials"]),
            "webhook_subscriptions": len(document["webhook_subscriptions"])}


async def _apply(sandbox: Sandbox, document: dict) -> None:
    """Everything that can fail is done before the first change."""
    active = sandbox.shared.scenarios.checked(document["active_scenarios"])  # UnknownScenario: nothing changed
    subscriptions = _subscriptions(sandbox, document["webhook_subscriptions"])
    sandbox.stop_timers()
    await sandbox.store.replace({name: document.get(name, []) for name in
                           ("clock", "accounts", "key_requests", "credentials", "outbox", "due_jobs",
                            "dict_entries", "buckets", "claims")})
    await sandbox.scenarios.activate(active, restart_counts=True)  # the counts start at zero
    sandbox.webhooks.reset(subscriptions)  # deliveries in flight are dropped: they were the old state's
    for stored in (await sandbox.store.subscriptions())[1]:
        await sandbox.store.remove_subscription(stored["id"])
    await sandbox.keep_subscriptions(subscriptions)
    await sandbox.wake()


def _subscriptions(sandbox: Sandbox, entries: list[dict]) -> list[Subscription]:
    """A subscription's secret: the one given in the document (a PUT may carry it); else the secret of
    the namespace's subscription with the same id and URL (a snapshot put back where it was taken),
    or with the same URL and events (a fixture subscription of ``webhooks.yaml``, whose secret is
    configuration: a restart with ``--state-file`` keeps it); else a new one (``GET
    /__admin/webhooks/subscriptions`` shows it)."""
    current = sandbox.webhooks.subscriptions()
    by_id = {s.id: s for s in current}
    by_target = {(s.url, tuple(s.events)): s for s in reversed(current)}  # the first of equals wins
    made = []
    for entry in entries:
        events = list(dict.fromkeys(entry["events"]))
        same = by_id.get(entry["id"])
        if same is None or same.url != entry["url"]:
            same = by_target.get((entry["url"], tuple(events)))
        secret = entry.get("secret") or (same.secret if same is not None else None)
        made.append(Subscription(id=entry["id"], url=entry["url"], events=events,
                                 secret=secret or "whsec_" + secrets.token_urlsafe(24),
                                 created_at=entry["created_at"]))
    return made


# -- a state file: every namespace ------------------------------------------------------------------


def file_problems(document: Any, max_namespaces: int) -> list[Problem]:
    """The state file's own shape (``{format, namespaces: {name: NamespaceState}}``)."""
    from baas_sandbox.services.namespaces import DEFAULT, NAME, NAME_RULE

    if not isinstance(document, dict):
        return [Problem("", "a state file is a JSON object {format, namespaces}")]
    found = []
    for name in document:
        if name not in ("format", "namespaces"):
            found.append(Problem(pointer(name), "is not allowed here"))
    if document.get("format") != FILE_FORMAT:
        found.append(Problem("/format", f"must be {FILE_FORMAT!r}, not {_quote(document.get('format'))}"))
    namespaces = document.get("namespaces")
    if not isinstance(namespaces, dict):
        found.append(Problem("/namespaces", "must be an object: namespace name -> its state"))
        return found
    for name in namespaces:
        if not NAME.fullmatch(name):
            found.append(Problem(pointer("namespaces", name), f"is not a valid namespace name ({NAME_RULE})"))
    held = len(set(namespaces) | {DEFAULT})  # the default namespace is always held
    if held > max_namespaces:
        found.append(Problem("/namespaces", f"makes {held} namespaces (the default one counted), more than "
                                            f"--max-namespaces ({max_namespaces})"))
    return found


async def load_all(namespaces, document: Any) -> list[str]:
    """Make every namespace of a state file's ``document`` (replacing any of the same name), or raise
    ``InvalidState`` with every problem of every namespace (none is made then); their names."""
    found = file_problems(document, namespaces.max_namespaces)
    if found:
        raise InvalidState(found)
    made: list[Sandbox] = []
    for name, state in document["namespaces"].items():
        sandbox = await namespaces.new_sandbox(name)
        made.append(sandbox)
        found.extend(problems(sandbox, state, pointer("namespaces", name)))
    if found:
        for sandbox in made:
            sandbox.close()
        raise InvalidState(found)
    for sandbox in made:
        try:
            await _apply(sandbox, document["namespaces"][sandbox.name])
        except UnknownScenario as exc:  # a scenario file removed since the check: nothing adopted yet
            raise InvalidState([Problem(pointer("namespaces", sandbox.name, "active_scenarios"), str(exc))]) from None
    for sandbox in made:
        namespaces.adopt(sandbox)
    return [s.name for s in made]
