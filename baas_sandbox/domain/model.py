"""The domain model: tenants, accounts, provider credentials and Pix key requests.

Pure objects: no HTTP, no storage, no clock of their own (times are passed in), so every rule can
be read and tested in one place. A ``PixKeyRequest`` owns its lifecycle::

    pending_validation --(code accepted)--> pending --(DICT decision)--> approved | rejected

CPF, CNPJ and random keys start in ``pending``; email and phone keys in ``pending_validation``,
which also ends in ``rejected`` after too many wrong codes or when the validation window closes.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import math
import sys
from dataclasses import dataclass, field
from enum import StrEnum

from baas_sandbox.domain import errors

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"


def timestamp(moment: dt.datetime) -> str:
    """The platform's timestamp: UTC, to the second, without offset."""
    # The last second formatted is kept: a request formats several times of the same second, and
    # strftime costs ten times the comparison (performance). One tuple, replaced whole: thread-safe.
    global _last_timestamp
    try:
        second = math.floor(moment.timestamp())
    except (OverflowError, OSError, ValueError):  # a naive time the platform cannot place
        return moment.astimezone(dt.timezone.utc).strftime(TIMESTAMP_FORMAT)
    last_second, text = _last_timestamp
    if second == last_second:
        return text
    text = moment.astimezone(dt.timezone.utc).strftime(TIMESTAMP_FORMAT)
    _last_timestamp = (second, text)
    return text


_last_timestamp: tuple[int | None, str] = (None, "")


class PersonType(StrEnum):
    NATURAL = "natural"
    LEGAL = "legal"


#: DICT's limits of keys per account, by the owner's person type.
KEY_LIMITS = {PersonType.NATURAL: 5, PersonType.LEGAL: 20}


class AccountStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Tenant:
    """A client organisation of the platform, identified by its sandbox bearer token."""

    name: str
    token: str
    requester_key: str  # the person acting for the tenant, as the platform names it
    providers: frozenset[str]  # the providers whose API configuration the tenant has

    def __deepcopy__(self, memo: dict) -> "Tenant":
        return self  # immutable: a copy would be equal and cost time and memory


@dataclass(frozen=True)
class Account:
    account_key: str
    tenant: str
    owner_name: str
    owner_document_number: str
    owner_person_type: PersonType
    owner_person_key: str
    owner_person_registered: bool
    trading_name: str | None
    status: AccountStatus
    branch_number: str
    account_number: str
    account_digit: str
    account_type: str
    created_at: str

    @property
    def key_limit(self) -> int:
        return KEY_LIMITS[self.owner_person_type]

    def __deepcopy__(self, memo: dict) -> "Account":
        # Immutable (frozen, every field a str, bool or enum): the store's copies of key requests
        # share their account instead of each holding its own (memory per stored key, copy time).
        return self

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {
            "owner_person_type": str(self.owner_person_type),
            "status": str(self.status),
        }


# -- provider credentials -------------------------------------------------------------------------

#: Which providers serve which integration type (any other pair answers EBAA0007).
SUPPORTED_PROVIDERS: dict[str, frozenset[str]] = {
    "PIX": frozenset({"BTG", "CELCOIN", "JDPI"}),
    "BAAS": frozenset({"BTG", "CELCOIN"}),
    "PAY2ALL": frozenset({"PAY2ALL"}),
}


def check_supported(integration_type: str, provider: str) -> None:
    if provider not in SUPPORTED_PROVIDERS.get(integration_type, frozenset()):
        raise errors.UnsupportedTypeProvider(type=integration_type, provider=provider)


@dataclass(frozen=True)
class Credential:
    """A provider credential as stored: the key only in sealed (encrypted) form; ``None`` for a
    credential restored from a snapshot, which carries no key (nothing reads a stored key back)."""

    tenant: str
    provider: str
    integration_type: str
    sealed_key: bytes | None
    proxy_value: str
    provider_data: dict
    saved_at: str


# -- Pix keys -------------------------------------------------------------------------------------


class PixKeyType(StrEnum):
    CPF = "cpf"
    CNPJ = "cnpj"
    EMAIL = "email"
    PHONE = "phone_number"
    RANDOM = "random_key"

    @property
    def needs_verification(self) -> bool:
        """Email and phone keys are confirmed with a code sent to them."""
        return self in (PixKeyType.EMAIL, PixKeyType.PHONE)

    @property
    def is_document(self) -> bool:
        return self in (PixKeyType.CPF, PixKeyType.CNPJ)


#: Wrong codes a request takes: the last one rejects it (a six-digit code cannot be tried through).
MAX_WRONG_CODES = 5
#: Codes a request can have resent (after the first one): each resend is an email or an SMS.
MAX_RESENDS = 3


class Rejection(StrEnum):
    """Why a key request was rejected, as data events name it."""

    DICT = "dict_rejected"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    VALIDATION_WINDOW_EXPIRED = "validation_window_expired"


class RequestStatus(StrEnum):
    PENDING_VALIDATION = "pending_validation"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"

    @property
    def unfinished(self) -> bool:
        return self in (RequestStatus.PENDING_VALIDATION, RequestStatus.PENDING)


class KeyStatus(StrEnum):
    """The one vocabulary of a key's status: the list and its filter, the deletion, webhooks and
    data events. The provider writes both ``inactive`` (deletion) and ``inactivated`` (list filter):
    the sandbox says ``inactive`` everywhere (README, "Deviations from the docs")."""

    PENDING_CONFIRMATION = "pending_confirmation"
    ACTIVE = "active"
    INACTIVE = "inactive"
    #: Active, with an unfinished claim of another institution on it (locked: not deletable).
    PENDING_CLAIM = "pending_claim_request_confirmation"


@dataclass
class VerificationCode:
    """A one-time code sent to an email or phone key, valid until ``expires_at``."""

    code: str
    channel: str  # "email" or "sms"
    destination: str
    sent_at: dt.datetime
    expires_at: dt.datetime

    def expired(self, now: dt.datetime) -> bool:
        return now >= self.expires_at


@dataclass(slots=True)  # slots: a million stored requests take ~150 bytes less each than with a __dict__
class PixKeyRequest:
    """A request to include a Pix key in DICT, and the key it creates."""

    request_key: str
    account: Account
    requester_key: str
    key_type: PixKeyType
    key_value: str | None  # None for a random key until it is approved
    status: RequestStatus
    key_status: KeyStatus
    created_at: str
    updated_at: str
    key_updated_at: str
    failure_reason: str | None = None
    code: VerificationCode | None = None
    #: The code that was accepted, so that replaying it answers "already verified".
    accepted_code: str | None = None
    #: The tracking_id of the request that created it: what follows is correlated with it.
    cid: str | None = None
    history: list[str] = field(default_factory=list)
    #: Wrong codes submitted, and codes resent, over the request's life (not per code).
    wrong_codes: int = 0
    codes_resent: int = 0
    #: When a request still in ``pending_validation`` expires (None once it has left that state).
    validation_due: dt.datetime | None = None
    #: The unfinished claim (its key) that locks this key: it cannot be deleted meanwhile (DICT's
    #: EntryLockedByClaim). Set and cleared by claims (domain/claims.py); None: not locked.
    claim_lock: str | None = None

    @property
    def tenant(self) -> str:
        return self.account.tenant

    @property
    def claims_key(self) -> bool:
        """Whether the request holds its key value and a place in the account's limit: a key being
        created or active; not a rejected request's, nor a deleted key's."""
        return self.key_status is not KeyStatus.INACTIVE

    @property
    def listed(self) -> bool:
        """Whether the account's list shows it: a rejected request leaves no key; a deleted key is
        listed ``inactive``."""
        return self.status is not RequestStatus.REJECTED

    def __deepcopy__(self, memo: dict) -> "PixKeyRequest":
        """What ``copy.deepcopy`` would make, about ten times faster (the store copies a request on every
        read and change): every field is immutable but ``history`` and ``code``, which are copied."""
        clone = object.__new__(PixKeyRequest)
        for name in _REQUEST_FIELDS:
            setattr(clone, name, getattr(self, name))
        clone.history = list(self.history)
        if self.code is not None:
            clone.code = copy.copy(self.code)
        return clone

    def check_owner(self, tenant: Tenant) -> None:
        if tenant.name != self.tenant:
            raise errors.NotOwnerOfItem()

    def validate_code(self, submitted: str, now: dt.datetime) -> None:
        """Accept the current code once; the request then waits for the DICT decision."""
        if not self.key_type.needs_verification:
            raise errors.NoTwoStepValidation()
        if self.accepted_code is not None and submitted == self.accepted_code:
            raise errors.CodeAlreadyVerified()
        if self.status is not RequestStatus.PENDING_VALIDATION or self.code is None:
            raise errors.NotPendingValidation(pix_key_request_key=self.request_key)
        if submitted != self.code.code:
            # Counted even though it raises: the service keeps the change (see ``COUNTED``).
            self.wrong_codes += 1
            if self.wrong_codes >= MAX_WRONG_CODES:
                self.code = None
                self.reject(f"Too many wrong verification codes ({MAX_WRONG_CODES})", now)
                raise errors.TooManyWrongCodes()
            raise errors.WrongCode()
        if self.code.expired(now):
            raise errors.CodeExpired()
        self.accepted_code, self.code, self.validation_due = self.code.code, None, None
        self._move_to(RequestStatus.PENDING, now)

    def check_can_resend(self) -> None:
        if not self.key_type.needs_verification:
            raise errors.NoTwoStepValidation()
        if self.status is not RequestStatus.PENDING_VALIDATION:
            raise errors.NotPendingValidation(pix_key_request_key=self.request_key)

    def replace_code(self, code: VerificationCode, now: dt.datetime) -> None:
        """A new code replaces the previous one, which stops working; ``MAX_RESENDS`` at most."""
        self.check_can_resend()
        if self.codes_resent >= MAX_RESENDS:
            raise errors.TooManyResends()
        self.codes_resent += 1
        self.code = code
        self.updated_at = timestamp(now)

    def expire_validation(self, window: float, now: dt.datetime) -> bool:
        """Reject a request whose code was not accepted in time, freeing its key; False when it is
        no longer waiting for its code, or not yet due."""
        if self.status is not RequestStatus.PENDING_VALIDATION or self.validation_due is None:
            return False
        if now < self.validation_due:
            return False
        self.code = None
        self.reject(f"Verification code not accepted within the validation window ({window:g} s)", now)
        return True

    def approve(self, key_value: str, now: dt.datetime) -> None:
        self.key_value = key_value
        self.key_status = KeyStatus.ACTIVE
        self._move_to(RequestStatus.APPROVED, now)
        self.key_updated_at = self.updated_at  # the same moment: one string, not two equal ones

    def delete(self, now: dt.datetime) -> None:
        """The key leaves DICT: inactive, its value and its place in the account's limit freed."""
        if self.status.unfinished:
            raise errors.KeyCreationNotFinished(pix_key=self.key_value or "")
        if self.claim_lock is not None:
            raise errors.KeyClaimNotFinished(pix_key=self.key_value or "")
        if self.key_status is not KeyStatus.ACTIVE:
            raise errors.KeyNotFound(pix_key=self.key_value or "")
        self.key_status = KeyStatus.INACTIVE
        self.key_updated_at = timestamp(now)
        self.history.append(sys.intern(f"{KeyStatus.ACTIVE}->{KeyStatus.INACTIVE}"))

    def reject(self, reason: str, now: dt.datetime) -> None:
        self.key_status = KeyStatus.INACTIVE
        self.failure_reason, self.validation_due = reason, None
        self._move_to(RequestStatus.REJECTED, now)
        self.key_updated_at = self.updated_at

    def _move_to(self, status: RequestStatus, now: dt.datetime) -> None:
        # Interned: a handful of distinct transitions, shared by every stored request.
        self.history.append(sys.intern(f"{self.status}->{status}"))
        self.status = status
        self.updated_at = timestamp(now)


_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(PixKeyRequest))


@dataclass(frozen=True)
class DictEntry:
    """A key DICT holds for another institution (fixtures/dict_entries.yaml, the admin API): a
    lookup finds it, and nobody can register it at the sandbox's institution."""

    pix_key: str
    pix_key_type: PixKeyType
    owner_name: str
    owner_document_number: str
    owner_person_type: PersonType
    ispb: str
    bank_name: str
    bank_code: int | None
    branch_number: str
    account_number: str
    account_digit: str
    account_type: str
    created_at: str

    def __deepcopy__(self, memo: dict) -> "DictEntry":
        return self

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {
            "pix_key_type": str(self.pix_key_type),
            "owner_person_type": str(self.owner_person_type),
        }


#: The sandbox's own institution, as DICT and a lookup name it (the provider's: QI SCD S.A.).
OWN_ISPB = "32402502"
OWN_BANK_NAME = "QI SCD S.A."
OWN_BANK_CODE = 329


def dict_decision(account: Account) -> str | None:
    """The sandbox rule of the provider's own sandbox: ``None`` approves, a reason rejects.

    The account owner's document decides: a first digit of 1-5 is rejected; 0 and 6-9 approved.
    """
    if account.owner_document_number[:1] in "12345":
        return (
            "Rejected by DICT (sandbox rule: the account owner's document "
            f"{account.owner_document_number} begins with 1-5)"
        )
    return None


def check_key_belongs_to_owner(key_type: PixKeyType, key_value: str, account: Account) -> None:
    """A CPF or CNPJ key must be the account owner's own document."""
    if key_type.is_document and key_value != account.owner_document_number:
        raise errors.KeyNotOwnersDocument(
            pix_key=key_value,
            document_kind="CPF" if account.owner_person_type is PersonType.NATURAL else "CNPJ",
            document_number=account.owner_document_number,
        )


def check_account_accepts_keys(account: Account, tenant: Tenant) -> None:
    """The checks on the account, in the order the platform answers them."""
    if account.tenant != tenant.name:
        raise errors.InvalidPermission(person_key=tenant.requester_key, account_key=account.account_key)
    if account.status is not AccountStatus.OPEN:
        raise errors.AccountNotOpen(account_key=account.account_key)
    if not account.owner_person_registered:
        raise errors.PersonNotFound(person_key=account.owner_person_key)
