"""Pix key use cases: ask for a key, confirm it with its code, resend the code, list the keys,
delete a key, look a key up in DICT (with DICT's anti-scan limit)."""

from __future__ import annotations

import datetime as dt
import secrets
import string
from dataclasses import dataclass

from baas_sandbox.domain import antiscan, errors, events
from baas_sandbox.domain.documents import check_pix_key, key_type_of
from baas_sandbox.domain.model import (
    OWN_BANK_CODE,
    OWN_BANK_NAME,
    OWN_ISPB,
    Account,
    DictEntry,
    KeyStatus,
    PersonType,
    PixKeyRequest,
    PixKeyType,
    Rejection,
    RequestStatus,
    Tenant,
    VerificationCode,
    check_account_accepts_keys,
    check_key_belongs_to_owner,
    dict_decision,
    timestamp,
)
from baas_sandbox.services.sandbox import Sandbox

#: The due work of key requests (``services/due_work.py``): DICT's decision on a pending request,
#: and the end of an email or phone request's validation window.
DECIDE = "decide-key-request"
END_VALIDATION_WINDOW = "end-validation-window"


async def create_key_request(sandbox: Sandbox, tenant: Tenant, account_key: str, key_type: str,
                       key_value: str | None, cid: str | None = None) -> PixKeyRequest:
    request = await _add_key_request(sandbox, tenant, account_key, PixKeyType(key_type), key_value, cid,
                               validation_window=sandbox.settings.validation_window)
    await sandbox.publish(events.KeyRequestCreated(
        tenant=tenant.name, cid=cid, pix_key_request_key=request.request_key, account_key=account_key,
        pix_key_type=str(request.key_type), pix_key=request.key_value, request_status=str(request.status),
        requester_key=request.requester_key, created_at=request.created_at,
    ))
    if request.code is not None:
        await sandbox.publish(_code_sent(request))
        if request.validation_due is not None:
            await sandbox.schedule_at(request.validation_due, END_VALIDATION_WINDOW, request.request_key)
    else:
        await _schedule_decision(sandbox, request.request_key)
    return request


async def seed_waiting_request(sandbox: Sandbox, entry: dict) -> PixKeyRequest:
    """A fixture key request (``key_requests.yaml``): part of the starting state, like the fixture
    accounts, so no event is published. The same rules as a client's request apply (the key, the
    account, the limit). One waiting for its code has its code in the outbox, as sent, and no
    validation window; a reset stores it again, its code sent again with a new expiry (--code-ttl):
    the documented twofa examples work on it on a freshly reset sandbox. One with
    ``request_status: approved`` is an active key (the documented deletion works on it)."""
    account = await sandbox.store.account(entry["account_key"])
    tenant = sandbox.store.tenant(account.tenant) if account is not None else None
    if tenant is None:
        raise errors.AccountNotFound(account_key=entry["account_key"])
    kind = PixKeyType(entry["pix_key_type"])
    if entry.get("request_status") == "approved":
        value = entry["pix_key"]
        request = await _add_key_request(sandbox, tenant, entry["account_key"], kind,
                                   None if kind is PixKeyType.RANDOM else value, None,
                                   request_key=entry["pix_key_request_key"], validation_window=None)
        now = sandbox.clock()

        def activate(stored: PixKeyRequest) -> PixKeyRequest:
            stored.code = None
            stored.approve(value, now)
            return stored

        return await sandbox.store.change_key_request(request.request_key, activate)
    request = await _add_key_request(sandbox, tenant, entry["account_key"], kind,
                               entry["pix_key"], None, request_key=entry["pix_key_request_key"],
                               code=entry["verification_code"], validation_window=None)
    await sandbox.record_outbox(_code_sent(request))
    return request


async def _add_key_request(sandbox: Sandbox, tenant: Tenant, account_key: str, kind: PixKeyType, key_value: str | None,
                     cid: str | None, *, validation_window: float | None, request_key: str | None = None,
                     code: str | None = None) -> PixKeyRequest:
    """A new request, checked and stored: its id and code new unless given (the fixtures'), its
    validation window in seconds (None: none)."""
    check_pix_key(kind, key_value)
    account = await sandbox.store.account(account_key)
    if account is None:
        raise errors.AccountNotFound(account_key=account_key)
    check_account_accepts_keys(account, tenant)
    if kind is PixKeyType.RANDOM:
        key_value = None
    else:
        assert key_value is not None
        check_key_belongs_to_owner(kind, key_value, account)

    now = sandbox.clock()
    at = timestamp(now)  # one string for the three equal times (memory per stored key)
    request = PixKeyRequest(
        request_key=request_key or sandbox.ids(),
        account=account,
        requester_key=tenant.requester_key,
        key_type=kind,
        key_value=key_value,
        status=RequestStatus.PENDING_VALIDATION if kind.needs_verification else RequestStatus.PENDING,
        key_status=KeyStatus.PENDING_CONFIRMATION,
        created_at=at,
        updated_at=at,
        key_updated_at=at,
        code=_new_code(sandbox, kind, key_value, now, code) if kind.needs_verification else None,
        cid=cid,
        validation_due=(now + dt.timedelta(seconds=validation_window)
                        if kind.needs_verification and validation_window is not None else None),
    )
    await sandbox.store.add_key_request(request)  # atomic: one owner, one unfinished request, the limit
    return request


#: The verification failures that are the code's (a data event each), and how events name them.
CODE_FAILURES = {
    errors.WrongCode: "wrong_code",
    errors.CodeExpired: "expired_code",
    errors.CodeAlreadyVerified: "code_already_verified",
    errors.TooManyWrongCodes: "too_many_attempts",
}

#: Refusals that change the request (the wrong code is counted; the last one rejects the request):
#: the change is stored, then the refusal answered, where any other refusal leaves it untouched.
COUNTED = (errors.WrongCode, errors.TooManyWrongCodes)


async def validate_code(sandbox: Sandbox, tenant: Tenant, request_key: str, code: str,
                  cid: str | None = None) -> PixKeyRequest:
    now = sandbox.clock()

    def accept(request: PixKeyRequest) -> tuple[PixKeyRequest, errors.BaasError | None]:
        request.check_owner(tenant)
        try:
            request.validate_code(code, now)
        except COUNTED as counted:
            return request, counted
        return request, None

    try:
        request, counted = await sandbox.store.change_key_request(request_key, accept)
        if counted is not None:
            raise counted
    except tuple(CODE_FAILURES) as failure:
        await sandbox.publish(events.TwoStepValidationFailed(
            tenant=tenant.name, cid=cid, pix_key_request_key=request_key, reason=CODE_FAILURES[type(failure)],
            error_code=failure.code, failed_at=timestamp(now),
        ))
        if isinstance(failure, errors.TooManyWrongCodes):
            await sandbox.publish(_decided(request, Rejection.TOO_MANY_ATTEMPTS))
        raise
    await sandbox.publish(events.TwoStepValidationSucceeded(
        tenant=tenant.name, cid=cid, pix_key_request_key=request_key, validated_at=timestamp(now)))
    await _schedule_decision(sandbox, request_key)
    return request


async def resend_code(sandbox: Sandbox, tenant: Tenant, request_key: str, cid: str | None = None) -> PixKeyRequest:
    now = sandbox.clock()

    def replace(request: PixKeyRequest) -> PixKeyRequest:
        request.check_owner(tenant)
        # Checked before a code is made: a request without two-step validation has no destination.
        request.check_can_resend()
        request.replace_code(_new_code(sandbox, request.key_type, request.key_value, now), now)
        return request

    request = await sandbox.store.change_key_request(request_key, replace)
    await sandbox.publish(_code_sent(request, cid))
    return request


async def account_keys(sandbox: Sandbox, tenant: Tenant, account_key: str,
                 status: str | None = None) -> list[PixKeyRequest]:
    """The account's keys: of one status (``pending_confirmation``, ``active``, ``inactive``: the
    deleted ones, ``pending_claim_request_confirmation``: claimed by another institution), or
    without one those active, claimed or being created. Rejected requests leave no key."""
    await _callers_account(sandbox, tenant, account_key)
    requests = await sandbox.store.key_requests(account_key)
    if status is None:
        return [request for request in requests if request.listed and request.claims_key]
    wanted = KeyStatus(status)
    return [request for request in requests if request.listed and request.key_status is wanted]


async def _callers_account(sandbox: Sandbox, tenant: Tenant, account_key: str) -> Account:
    account = await sandbox.store.account(account_key)
    if account is None:
        raise errors.AccountNotFound(account_key=account_key)
    if account.tenant != tenant.name:
        raise errors.InvalidPermission(person_key=tenant.requester_key, account_key=account_key)
    return account


@dataclass(frozen=True)
class Deletion:
    """A key deleted: the request that had created it, and the deletion request's own key."""

    request: PixKeyRequest
    deletion_key: str
    at: str


async def delete_key(sandbox: Sandbox, tenant: Tenant, key_value: str, cid: str | None = None) -> Deletion:
    """Delete an active key of one of the caller's accounts (DICT reason USER_REQUESTED): it is
    inactive at once, its value free for anyone and its place in the account's limit freed, in one
    step of the store. No webhook: the provider documents none for a deletion."""
    key_type_of(key_value)  # a value that is no key is a bad request, not an unknown key
    now = sandbox.clock()

    def delete(request: PixKeyRequest) -> PixKeyRequest:
        if request.tenant != tenant.name:
            raise errors.NotEnoughPermission(pix_key=key_value)
        request.delete(now)
        return request

    request = await sandbox.store.change_key(key_value, delete)
    deletion = Deletion(request, sandbox.ids(), request.key_updated_at)
    await sandbox.publish(events.KeyDeleted(
        tenant=tenant.name, cid=cid, pix_key_request_key=request.request_key,
        deletion_request_key=deletion.deletion_key, account_key=request.account.account_key,
        pix_key=key_value, pix_key_type=str(request.key_type), deleted_at=deletion.at))
    return deletion


#: The 11 characters that end an end-to-end id.
_E2E_ALPHABET = string.ascii_letters + string.digits


def end_to_end_id(now: dt.datetime) -> str:
    """A Pix end-to-end id: E, the payer's institution's ISPB, yyyyMMddHHmm (UTC) and 11
    alphanumerics (32 characters)."""
    return ("E" + OWN_ISPB + now.astimezone(dt.timezone.utc).strftime("%Y%m%d%H%M")
            + "".join(secrets.choice(_E2E_ALPHABET) for _ in range(11)))


async def lookup_key(sandbox: Sandbox, tenant: Tenant, key_value: str, account_key: str) -> dict:
    """DICT's answer about a key, for a payment from ``account_key`` (one of the caller's): where
    the key's account is, or ``exists: false``. Spends the paying account's anti-scan tokens (1 for
    a key found, 20 for one not found), in one step of the store; an empty bucket answers
    ``PIX000079`` (429) and nothing about the key."""
    payer = await _callers_account(sandbox, tenant, account_key)
    key_type_of(key_value)
    now = sandbox.clock()
    holder = await sandbox.store.key_holder(key_value)
    found: dict | None = None
    if holder is not None and holder.key_status in (KeyStatus.ACTIVE, KeyStatus.PENDING_CLAIM):
        found = _own_entry(holder)
    else:
        entry = await sandbox.store.dict_entry(key_value)
        if entry is not None:
            found = _other_institution(entry)
    cost = antiscan.COST_FOUND if found is not None else antiscan.COST_NOT_FOUND
    await sandbox.store.spend_tokens(
        payer.account_key,
        lambda: antiscan.TokenBucket.full(payer.account_key, payer.owner_person_type, now),
        lambda bucket: bucket.spend(cost, now))
    if found is None:
        return {"exists": False, "pix_key": key_value}
    return {"exists": True, "pix_key": key_value, "end_to_end_id": end_to_end_id(now), **found}


#: The sandbox's account types as a lookup names them.
LOOKUP_ACCOUNT_TYPES = {"checking": "checking_account", "savings": "savings_account", "payment": "payment_account"}


def _own_entry(request: PixKeyRequest) -> dict:
    account = request.account
    return _lookup_fields(account.owner_name, account.owner_document_number, account.owner_person_type,
                          str(request.key_type), OWN_ISPB, OWN_BANK_NAME, OWN_BANK_CODE, account.branch_number,
                          account.account_number, account.account_digit, account.account_type)


def _other_institution(entry: DictEntry) -> dict:
    return _lookup_fields(entry.owner_name, entry.owner_document_number, entry.owner_person_type,
                          str(entry.pix_key_type), entry.ispb, entry.bank_name, entry.bank_code,
                          entry.branch_number, entry.account_number, entry.account_digit, entry.account_type)


def _lookup_fields(name: str, document: str, person_type: PersonType, key_type: str, ispb: str, bank_name: str,
                   bank_code: int | None, branch: str, number: str, digit: str, account_type: str) -> dict:
    return {
        "pix_key_type": key_type,
        "name": name,
        "masked_document_number": masked_document(document, person_type),
        "owner_person_type": str(person_type),
        "financial_institution": bank_name,
        "ispb": ispb,
        "bank_code": bank_code,
        "account_branch": branch,
        "account_number": number,
        "account_digit": digit,
        "account_type": LOOKUP_ACCOUNT_TYPES.get(account_type, account_type),
        "valid": True,
    }


def masked_document(document: str, person_type: PersonType) -> str:
    """A CPF shows its middle six digits only (``***.635.002-**``), as Pix apps show a payee; a
    CNPJ, public, is shown whole, formatted (``09.080.702/0001-05``)."""
    if person_type is PersonType.NATURAL:
        return f"***.{document[3:6]}.{document[6:9]}-**"
    return f"{document[:2]}.{document[2:5]}.{document[5:8]}/{document[8:12]}-{document[12:]}"


async def rate_limits(sandbox: Sandbox) -> list[dict]:
    now = sandbox.clock()
    return [bucket.as_dict(now) for bucket in await sandbox.store.buckets()]


async def decide(sandbox: Sandbox, request_key: str) -> None:
    """DICT's answer to a pending request, announced by the ``key_inclusion`` webhook."""
    now = sandbox.clock()

    def settle(request: PixKeyRequest) -> PixKeyRequest | None:
        if request.status is not RequestStatus.PENDING:
            return None
        reason = dict_decision(request.account)
        if reason is None:
            request.approve(request.key_value or sandbox.ids(), now)
        else:
            request.reject(reason, now)
        return request

    try:
        decided = await sandbox.store.change_key_request(request_key, settle)
    except errors.KeyRequestNotFound:  # the sandbox was reset meanwhile
        return
    if decided is not None:
        approved = decided.status is RequestStatus.APPROVED
        await sandbox.publish(_decided(decided, None if approved else Rejection.DICT))


async def expire_validation(sandbox: Sandbox, request_key: str) -> None:
    """A request still waiting for its code when its validation window closes is rejected, and its
    key freed: a key registered and never confirmed (by mistake, or by someone else) does not block
    its owner for ever."""
    now = sandbox.clock()
    window = sandbox.settings.validation_window

    def expire(request: PixKeyRequest) -> tuple[PixKeyRequest, bool]:
        return request, request.expire_validation(window, now)

    try:
        request, expired = await sandbox.store.change_key_request(request_key, expire)
    except errors.KeyRequestNotFound:  # the sandbox was reset meanwhile
        return
    if expired:
        await sandbox.publish(_decided(request, Rejection.VALIDATION_WINDOW_EXPIRED))


def _decided(request: PixKeyRequest, rejection: Rejection | None) -> events.KeyRequestDecided:
    return events.KeyRequestDecided(
        tenant=request.tenant,
        cid=request.cid,
        pix_key=request.key_value,
        pix_key_type=str(request.key_type),
        account_key=request.account.account_key,
        pix_key_status=str(request.key_status),
        pix_key_request_key=request.request_key,
        pix_key_request_status=str(request.status),
        request_failure_reason=request.failure_reason,
        decided_at=request.updated_at,
        rejection=None if rejection is None else str(rejection),
    )


async def _schedule_decision(sandbox: Sandbox, request_key: str) -> None:
    await sandbox.schedule(sandbox.settings.activation_delay, DECIDE, request_key)


def _new_code(sandbox: Sandbox, kind: PixKeyType, destination: str | None, now: dt.datetime,
              code: str | None = None) -> VerificationCode:
    assert destination is not None
    return VerificationCode(
        # --fixed-verification-code: every code that value (the provider's sandbox: 329329)
        code=sandbox.settings.fixed_verification_code or code or f"{secrets.randbelow(1_000_000):06d}",
        channel="email" if kind is PixKeyType.EMAIL else "sms",
        destination=destination,
        sent_at=now,
        expires_at=now + dt.timedelta(seconds=sandbox.settings.code_ttl),
    )


def _code_sent(request: PixKeyRequest, cid: str | None = None) -> events.VerificationCodeSent:
    code = request.code
    assert code is not None
    return events.VerificationCodeSent(
        tenant=request.tenant,
        cid=cid or request.cid,
        pix_key_request_key=request.request_key,
        channel=code.channel,
        destination=code.destination,
        verification_code=code.code,
        sent_at=timestamp(code.sent_at),
        expires_at=timestamp(code.expires_at),
    )
