"""Pix key use cases: ask for a key, confirm it with its code, resend the code, list the keys."""

from __future__ import annotations

import datetime as dt
import secrets

from baas_sandbox.domain import errors, events
from baas_sandbox.domain.documents import check_pix_key
from baas_sandbox.domain.model import (
    KeyStatus,
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


def create_key_request(sandbox: Sandbox, tenant: Tenant, account_key: str, key_type: str,
                       key_value: str | None, cid: str | None = None) -> PixKeyRequest:
    request = _add_key_request(sandbox, tenant, account_key, PixKeyType(key_type), key_value, cid,
                               validation_window=sandbox.settings.validation_window)
    sandbox.publish(events.KeyRequestCreated(
        tenant=tenant.name, cid=cid, pix_key_request_key=request.request_key, account_key=account_key,
        pix_key_type=str(request.key_type), pix_key=request.key_value, request_status=str(request.status),
        requester_key=request.requester_key, created_at=request.created_at,
    ))
    if request.code is not None:
        sandbox.publish(_code_sent(request))
        if request.validation_due is not None:
            sandbox.schedule_at(request.validation_due, END_VALIDATION_WINDOW, request.request_key)
    else:
        _schedule_decision(sandbox, request.request_key)
    return request


def seed_waiting_request(sandbox: Sandbox, entry: dict) -> PixKeyRequest:
    """A fixture key request waiting for its code (``key_requests.yaml``): part of the starting
    state, like the fixture accounts, so no event is published; its code is in the outbox, as
    sent. The same rules as a client's request apply (the key, the account, the limit). It has no
    validation window; a reset stores it again, its code sent again with a new expiry (--code-ttl):
    the documented twofa examples work on it on a freshly reset sandbox."""
    account = sandbox.store.account(entry["account_key"])
    tenant = sandbox.store.tenant(account.tenant) if account is not None else None
    if tenant is None:
        raise errors.AccountNotFound(account_key=entry["account_key"])
    request = _add_key_request(sandbox, tenant, entry["account_key"], PixKeyType(entry["pix_key_type"]),
                               entry["pix_key"], None, request_key=entry["pix_key_request_key"],
                               code=entry["verification_code"], validation_window=None)
    sandbox.record_outbox(_code_sent(request))
    return request


def _add_key_request(sandbox: Sandbox, tenant: Tenant, account_key: str, kind: PixKeyType, key_value: str | None,
                     cid: str | None, *, validation_window: float | None, request_key: str | None = None,
                     code: str | None = None) -> PixKeyRequest:
    """A new request, checked and stored: its id and code new unless given (the fixtures'), its
    validation window in seconds (None: none)."""
    check_pix_key(kind, key_value)
    account = sandbox.store.account(account_key)
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
    sandbox.store.add_key_request(request)  # atomic: one owner, one unfinished request, the limit
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


def validate_code(sandbox: Sandbox, tenant: Tenant, request_key: str, code: str,
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
        request, counted = sandbox.store.change_key_request(request_key, accept)
        if counted is not None:
            raise counted
    except tuple(CODE_FAILURES) as failure:
        sandbox.publish(events.TwoStepValidationFailed(
            tenant=tenant.name, cid=cid, pix_key_request_key=request_key, reason=CODE_FAILURES[type(failure)],
            error_code=failure.code, failed_at=timestamp(now),
        ))
        if isinstance(failure, errors.TooManyWrongCodes):
            sandbox.publish(_decided(request, Rejection.TOO_MANY_ATTEMPTS))
        raise
    sandbox.publish(events.TwoStepValidationSucceeded(
        tenant=tenant.name, cid=cid, pix_key_request_key=request_key, validated_at=timestamp(now)))
    _schedule_decision(sandbox, request_key)
    return request


def resend_code(sandbox: Sandbox, tenant: Tenant, request_key: str, cid: str | None = None) -> PixKeyRequest:
    now = sandbox.clock()

    def replace(request: PixKeyRequest) -> PixKeyRequest:
        request.check_owner(tenant)
        # Checked before a code is made: a request without two-step validation has no destination.
        request.check_can_resend()
        request.replace_code(_new_code(sandbox, request.key_type, request.key_value, now), now)
        return request

    request = sandbox.store.change_key_request(request_key, replace)
    sandbox.publish(_code_sent(request, cid))
    return request


def account_keys(sandbox: Sandbox, tenant: Tenant, account_key: str) -> list[PixKeyRequest]:
    """The account's keys that are active or being created (rejected requests leave no key)."""
    account = sandbox.store.account(account_key)
    if account is None:
        raise errors.AccountNotFound(account_key=account_key)
    if account.tenant != tenant.name:
        raise errors.InvalidPermission(person_key=tenant.requester_key, account_key=account_key)
    return [request for request in sandbox.store.key_requests(account_key) if request.claims_key]


def decide(sandbox: Sandbox, request_key: str) -> None:
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
        decided = sandbox.store.change_key_request(request_key, settle)
    except errors.KeyRequestNotFound:  # the sandbox was reset meanwhile
        return
    if decided is not None:
        approved = decided.status is RequestStatus.APPROVED
        sandbox.publish(_decided(decided, None if approved else Rejection.DICT))


def expire_validation(sandbox: Sandbox, request_key: str) -> None:
    """A request still waiting for its code when its validation window closes is rejected, and its
    key freed: a key registered and never confirmed (by mistake, or by someone else) does not block
    its owner for ever."""
    now = sandbox.clock()
    window = sandbox.settings.validation_window

    def expire(request: PixKeyRequest) -> tuple[PixKeyRequest, bool]:
        return request, request.expire_validation(window, now)

    try:
        request, expired = sandbox.store.change_key_request(request_key, expire)
    except errors.KeyRequestNotFound:  # the sandbox was reset meanwhile
        return
    if expired:
        sandbox.publish(_decided(request, Rejection.VALIDATION_WINDOW_EXPIRED))


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


def _schedule_decision(sandbox: Sandbox, request_key: str) -> None:
    sandbox.schedule(sandbox.settings.activation_delay, DECIDE, request_key)


def _new_code(sandbox: Sandbox, kind: PixKeyType, destination: str | None, now: dt.datetime,
              code: str | None = None) -> VerificationCode:
    assert destination is not None
    return VerificationCode(
        code=code or f"{secrets.randbelow(1_000_000):06d}",
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
