"""Pix key claims (DICT's portability and ownership claims), as a pure state machine.

A claim has one side in the sandbox: the **claimant** (a sandbox account claims a key DICT holds at
another institution) or the **donator** (another institution claims a key of a sandbox account).
The other side is simulated (the provider's ``/mock/pix_keys/key_claim_simulation`` operations) or
done by time (the resolution and conclusion windows). The statuses, by role::

    claimant: pending_claimer_validation --(code)--> pending --(donor confirms)--> confirmed
              --(concluded)--> concluded                      (or cancelled, failed)
    donator:  pending_confirmation [<-> pending_donator_validation] --(confirm)--> confirmed
              --(claimer completes)--> concluded              (or cancelled)

DICT's rules (bacen/pix-dict-api 1.8.0): OWNERSHIP for phone and email keys of another person;
PORTABILITY for a key of the same person at another institution (CPF, CNPJ, phone, email); a random
key allows neither. Who may confirm or cancel, and with which reason, follows DICT's tables (the
donor may cancel an ownership claim only for fraud, after its own two-step validation). On the
resolution deadline a portability still unconfirmed is cancelled by the donor (DEFAULT_OPERATION)
and an ownership claim unanswered is confirmed (DEFAULT_OPERATION); on the conclusion deadline a
confirmed claim is concluded.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from baas_sandbox.domain import errors
from baas_sandbox.domain.model import (
    MAX_RESENDS,
    MAX_WRONG_CODES,
    OWN_BANK_CODE,
    OWN_BANK_NAME,
    OWN_ISPB,
    Account,
    DictEntry,
    KeyStatus,
    PersonType,
    PixKeyRequest,
    PixKeyType,
    RequestStatus,
    Tenant,
    VerificationCode,
    timestamp,
)

#: The windows of the provider's example (and DICT's): resolution 7 days, conclusion 14 days.
RESOLUTION_PERIOD = dt.timedelta(days=7)
CONCLUSION_PERIOD = dt.timedelta(days=14)


class ClaimType(StrEnum):
    PORTABILITY = "portability"
    OWNERSHIP = "ownership"


class ClaimRole(StrEnum):
    CLAIMANT = "claimant"
    DONATOR = "donator"


class ClaimStatus(StrEnum):
    PENDING_CLAIMER_VALIDATION = "pending_claimer_validation"
    PENDING = "pending"
    PENDING_CONFIRMATION = "pending_confirmation"
    PENDING_DONATOR_VALIDATION = "pending_donator_validation"
    CONFIRMED = "confirmed"
    CONCLUDED = "concluded"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def unfinished(self) -> bool:
        return self not in (ClaimStatus.CONCLUDED, ClaimStatus.CANCELLED, ClaimStatus.FAILED)


class Reason(StrEnum):
    CLIENT_REQUEST = "client_request"
    FRAUD = "fraud"
    DEFAULT_OPERATION = "default_operation"


#: What the other bank answers to a claimant's claim (``receive_response/{action}``).
class Response(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    CONCLUDED = "concluded"


def claim_type_for(key_type: PixKeyType, key_value: str, holder_document: str, claimer_document: str,
                   ) -> ClaimType:
    """DICT's type of a claim: the same person's key -> portability; a phone or email key of
    another person -> ownership; anything else is inconsistent."""
    if key_type is PixKeyType.RANDOM:
        raise errors.ClaimTypeInconsistent(pix_key=key_value, reason="a random key cannot be claimed")
    if holder_document == claimer_document:
        return ClaimType.PORTABILITY
    if key_type.is_document:
        raise errors.ClaimTypeInconsistent(
            pix_key=key_value, reason="a CPF or CNPJ key is claimed only by its owner (portability)")
    return ClaimType.OWNERSHIP


def check_received_type(key_type: PixKeyType, key_value: str, claim_type: ClaimType) -> None:
    if key_type is PixKeyType.RANDOM:
        raise errors.ClaimTypeInconsistent(pix_key=key_value, reason="a random key cannot be claimed")
    if claim_type is ClaimType.OWNERSHIP and key_type.is_document:
        raise errors.ClaimTypeInconsistent(
            pix_key=key_value, reason="a CPF or CNPJ key is claimed only by its owner (portability)")


@dataclass(frozen=True)
class Counterpart:
    """The claimant's person and account, as the claim shows them (the sandbox's account when the
    sandbox is the claimant; the other bank's when it is the donor)."""

    name: str
    document_number: str
    person_type: PersonType
    claimant_key: str
    account_opened_at: str
    account_branch: str
    account_number: str
    account_digit: str
    account_type: str
    bank_name: str
    bank_code: int | None
    ispb: str

    def __deepcopy__(self, memo: dict) -> "Counterpart":
        return self

    @classmethod
    def own(cls, account: Account) -> "Counterpart":
        """An account of the sandbox's own institution as a claim shows it."""
        return cls(
            name=account.owner_name, document_number=account.owner_document_number,
            person_type=account.owner_person_type, claimant_key=account.owner_person_key,
            account_opened_at=account.created_at, account_branch=account.branch_number,
            account_number=account.account_number, account_digit=account.account_digit,
            account_type=account.account_type, bank_name=OWN_BANK_NAME, bank_code=OWN_BANK_CODE, ispb=OWN_ISPB)


@dataclass
class Claim:
    claim_key: str
    dict_claim_id: str
    role: ClaimRole
    claim_type: ClaimType
    status: ClaimStatus
    account: Account  # the sandbox's account: the claimant's, or the donor's
    requester_key: str
    key_type: PixKeyType
    key_value: str
    key_created_at: str
    claimant: Counterpart
    donator_ispb: str
    created_at: str
    updated_at: str
    resolution_due: dt.datetime
    conclusion_due: dt.datetime
    #: The key request the claim concerns: the donor's key, or (claimant) the one made at conclusion.
    key_request_key: str
    cancelled_by: ClaimRole | None = None
    cancellation_reason: Reason | None = None
    confirmation_reason: Reason | None = None
    failure_reason: str | None = None
    code: VerificationCode | None = None
    accepted_code: str | None = None
    wrong_codes: int = 0
    codes_resent: int = 0
    validation_due: dt.datetime | None = None
    cid: str | None = None
    #: The status before its last change (its data events say where it came from).
    previous_status: ClaimStatus | None = None

    @property
    def tenant(self) -> str:
        return self.account.tenant

    def __deepcopy__(self, memo: dict) -> "Claim":
        clone = copy.copy(self)
        if self.code is not None:
            clone.code = copy.copy(self.code)
        return clone

    # -- who and when ------------------------------------------------------------------------------

    def check_owner(self, tenant: Tenant) -> None:
        if tenant.name != self.tenant:
            raise errors.NotOwnerOfItem()

    def _claimant_only(self) -> None:
        if self.role is not ClaimRole.CLAIMANT:
            raise errors.ClaimActionNotAllowedForDonator(claim_request_key=self.claim_key)

    def _donator_only(self) -> None:
        if self.role is not ClaimRole.DONATOR:
            raise errors.ClaimActionNotAllowedForClaimer(claim_request_key=self.claim_key)

    def _require(self, *statuses: ClaimStatus) -> None:
        if self.status not in statuses:
            raise errors.ClaimActionNotAllowedInStatus(claim_request_key=self.claim_key, status=str(self.status))

    def _move_to(self, status: ClaimStatus, now: dt.datetime) -> None:
        self.previous_status = self.status
        self.status = status
        self.updated_at = timestamp(now)

    # -- the claimant's two-step validation -----------------------------------------------------------

    def validate_claimer_code(self, submitted: str, now: dt.datetime) -> None:
        self._claimant_only()
        if self.accepted_code is not None and submitted == self.accepted_code:
            raise errors.CodeAlreadyVerified()
        self._require(ClaimStatus.PENDING_CLAIMER_VALIDATION)
        assert self.code is not None
        if submitted != self.code.code:
            self.wrong_codes += 1
            if self.wrong_codes >= MAX_WRONG_CODES:
                self.code, self.validation_due = None, None
                self.failure_reason = f"Too many wrong verification codes ({MAX_WRONG_CODES})"
                self._move_to(ClaimStatus.FAILED, now)
                raise errors.ClaimTooManyWrongCodes()
            raise errors.WrongCode()
        if self.code.expired(now):
            raise errors.CodeExpired()
        self.accepted_code, self.code, self.validation_due = self.code.code, None, None
        self._move_to(ClaimStatus.PENDING, now)

    def expire_validation(self, window: float, now: dt.datetime) -> bool:
        """A claim whose claimer never confirmed the code fails when the validation window closes."""
        if self.status is not ClaimStatus.PENDING_CLAIMER_VALIDATION or self.validation_due is None:
            return False
        if now < self.validation_due:
            return False
        self.code, self.validation_due = None, None
        self.failure_reason = f"Verification code not accepted within the validation window ({window:g} s)"
        self._move_to(ClaimStatus.FAILED, now)
        return True

    # -- the donor's answers ----------------------------------------------------------------------------

    def confirm(self, reason: Reason, now: dt.datetime) -> None:
        """The donor gives the key up (DICT: USER_REQUESTED, from WAITING_RESOLUTION)."""
        self._donator_only()
        self._require(ClaimStatus.PENDING_CONFIRMATION, ClaimStatus.PENDING_DONATOR_VALIDATION)
        self.code = None
        self.confirmation_reason = reason
        self._move_to(ClaimStatus.CONFIRMED, now)

    def ask_donator_validation(self, code: VerificationCode, now: dt.datetime) -> None:
        """Before cancelling an ownership claim the donor confirms it holds the key: a code is sent
        to it. Asked again while waiting, a new code replaces the last one (3 resends at most)."""
        self._donator_only()
        if self.claim_type is not ClaimType.OWNERSHIP:
            raise errors.ClaimActionNotAllowedInStatus(claim_request_key=self.claim_key, status=str(self.status))
        self._require(ClaimStatus.PENDING_CONFIRMATION, ClaimStatus.PENDING_DONATOR_VALIDATION)
        if self.wrong_codes >= MAX_WRONG_CODES:
            raise errors.ClaimTooManyWrongCodes()
        if self.status is ClaimStatus.PENDING_DONATOR_VALIDATION:
            if self.codes_resent >= MAX_RESENDS:
                raise errors.ClaimTooManyResends()
            self.codes_resent += 1
            self.code = code
            self.updated_at = timestamp(now)
            return
        self.code = code
        self._move_to(ClaimStatus.PENDING_DONATOR_VALIDATION, now)

    def cancel(self, by: ClaimRole, reason: Reason, submitted_code: str | None, now: dt.datetime) -> None:
        """DICT's table of who may cancel, and why (cancel needs WAITING_RESOLUTION or CONFIRMED;
        before DICT, a claimer may drop its own claim)."""
        if by is ClaimRole.CLAIMANT:
            self._require(ClaimStatus.PENDING_CLAIMER_VALIDATION, ClaimStatus.PENDING, ClaimStatus.CONFIRMED)
        elif self.claim_type is ClaimType.PORTABILITY:
            self._require(ClaimStatus.PENDING_CONFIRMATION, ClaimStatus.CONFIRMED)
        else:  # the donor of an ownership claim: fraud only, after its own validation
            if reason is not Reason.FRAUD:
                raise errors.ClaimReasonNotAllowed(reason=str(reason), claim_type=str(self.claim_type),
                                                   role=str(by))
            self._require(ClaimStatus.PENDING_DONATOR_VALIDATION)
            if submitted_code is None:
                raise errors.VerificationCodeRequired()
            self._check_donator_code(submitted_code, now)
        self.code, self.validation_due = None, None
        self.cancelled_by, self.cancellation_reason = by, reason
        self._move_to(ClaimStatus.CANCELLED, now)

    def _check_donator_code(self, submitted: str, now: dt.datetime) -> None:
        assert self.code is not None
        if submitted != self.code.code:
            self.wrong_codes += 1
            if self.wrong_codes >= MAX_WRONG_CODES:
                # The donor's validation is over: the claim waits for its deadline (or a confirmation).
                self.code = None
                self._move_to(ClaimStatus.PENDING_CONFIRMATION, now)
                raise errors.ClaimTooManyWrongCodes()
            raise errors.WrongCode()
        if self.code.expired(now):
            raise errors.CodeExpired()

    # -- the other bank, simulated ------------------------------------------------------------------------

    def receive_response(self, response: Response, now: dt.datetime) -> None:
        """What the donor institution (or DICT) does with the sandbox's claim."""
        self._claimant_only()
        if response is Response.CONFIRMED:
            self._require(ClaimStatus.PENDING)
            self.confirmation_reason = Reason.CLIENT_REQUEST
            self._move_to(ClaimStatus.CONFIRMED, now)
        elif response is Response.CANCELLED:
            self._require(ClaimStatus.PENDING, ClaimStatus.CONFIRMED)
            self.cancelled_by, self.cancellation_reason = ClaimRole.DONATOR, Reason.CLIENT_REQUEST
            self._move_to(ClaimStatus.CANCELLED, now)
        elif response is Response.FAILED:
            self._require(ClaimStatus.PENDING, ClaimStatus.CONFIRMED)
            self.failure_reason = "The claim failed at DICT (simulated)"
            self._move_to(ClaimStatus.FAILED, now)
        else:
            self._require(ClaimStatus.CONFIRMED)
            self._move_to(ClaimStatus.CONCLUDED, now)

    def complete(self, now: dt.datetime) -> None:
        """The claimer completes a confirmed claim: the key leaves the donor's account."""
        self._donator_only()
        self._require(ClaimStatus.CONFIRMED)
        self._move_to(ClaimStatus.CONCLUDED, now)

    # -- time ------------------------------------------------------------------------------------------

    def resolution_deadline(self, now: dt.datetime) -> bool:
        """The resolution window closed: a portability not confirmed is cancelled by the donor, an
        ownership claim not answered is confirmed (both DEFAULT_OPERATION). False: nothing to do."""
        waiting = (ClaimStatus.PENDING, ClaimStatus.PENDING_CONFIRMATION, ClaimStatus.PENDING_DONATOR_VALIDATION)
        if self.status not in waiting or now < self.resolution_due:
            return False
        self.code = None
        if self.claim_type is ClaimType.PORTABILITY:
            self.cancelled_by, self.cancellation_reason = ClaimRole.DONATOR, Reason.DEFAULT_OPERATION
            self._move_to(ClaimStatus.CANCELLED, now)
        else:
            self.confirmation_reason = Reason.DEFAULT_OPERATION
            self._move_to(ClaimStatus.CONFIRMED, now)
        return True

    def conclusion_deadline(self, now: dt.datetime) -> bool:
        """The conclusion window closed: a confirmed claim is concluded (the claimer completes it)."""
        if self.status is not ClaimStatus.CONFIRMED or now < self.conclusion_due:
            return False
        self._move_to(ClaimStatus.CONCLUDED, now)
        return True

    # -- what a finished claim does to the keys (applied by the store in the same step) ------------------------

    def settle_donor_key(self, request: PixKeyRequest, now: dt.datetime) -> None:
        """The donor's key once the claim is over: active again (cancelled), or gone (concluded)."""
        request.claim_lock = None
        at = timestamp(now)
        if self.status is ClaimStatus.CONCLUDED:
            request.key_status = KeyStatus.INACTIVE
            request.history.append(f"{KeyStatus.PENDING_CLAIM}->{KeyStatus.INACTIVE}")
        else:
            request.key_status = KeyStatus.ACTIVE
        request.key_updated_at = at

    def lock_donor_key(self, request: PixKeyRequest, now: dt.datetime) -> None:
        if request.status.unfinished:
            raise errors.KeyCreationNotFinished(pix_key=self.key_value)
        if request.claim_lock is not None:
            raise errors.KeyClaimNotFinished(pix_key=self.key_value)
        if request.key_status is not KeyStatus.ACTIVE:
            raise errors.KeyNotFound(pix_key=self.key_value)
        request.claim_lock = self.claim_key
        request.key_status = KeyStatus.PENDING_CLAIM
        request.key_updated_at = timestamp(now)

    def claimed_key(self, now: dt.datetime) -> PixKeyRequest:
        """The claimant's key once the claim is concluded: active in its account."""
        at = timestamp(now)
        return PixKeyRequest(
            request_key=self.key_request_key, account=self.account, requester_key=self.requester_key,
            key_type=self.key_type, key_value=self.key_value, status=RequestStatus.APPROVED,
            key_status=KeyStatus.ACTIVE, created_at=at, updated_at=at, key_updated_at=at, cid=self.cid,
            history=[f"claim {self.claim_key} concluded"])

    def resulting_entry(self, now: dt.datetime) -> DictEntry:
        """The donor's key once claimed: held at the claimant's institution."""
        person = self.claimant
        return DictEntry(
            pix_key=self.key_value, pix_key_type=self.key_type, owner_name=person.name,
            owner_document_number=person.document_number, owner_person_type=person.person_type,
            ispb=person.ispb, bank_name=person.bank_name, bank_code=person.bank_code,
            branch_number=person.account_branch, account_number=person.account_number,
            account_digit=person.account_digit, account_type=person.account_type, created_at=timestamp(now))

