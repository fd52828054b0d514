"""Pix key claim use cases: claim a key held at another institution (portability or ownership),
confirm it with the code sent to the key, answer a claim another institution makes on one of the
caller's keys, list an account's claims; the other side simulated (the provider's ``/mock``
operations) or done by time (the resolution and conclusion windows, due work on the namespace's
clock). The rules are the domain's (``domain/claims.py``); every step is one store operation."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable

from baas_sandbox.domain import errors, events
from baas_sandbox.domain.claims import (
    CONCLUSION_PERIOD,
    RESOLUTION_PERIOD,
    Claim,
    ClaimRole,
    ClaimStatus,
    ClaimType,
    Counterpart,
    Reason,
    Response,
    check_received_type,
    claim_type_for,
)
from baas_sandbox.domain.documents import check_pix_key, key_type_of
from baas_sandbox.domain.model import (
    OWN_ISPB,
    Account,
    PersonType,
    PixKeyType,
    Tenant,
    VerificationCode,
    check_account_accepts_keys,
    timestamp,
)
from baas_sandbox.services.sandbox import Sandbox

#: The due work of claims (``services/due_work.py``).
RESOLUTION_DEADLINE = "claim-resolution-deadline"
CONCLUSION_DEADLINE = "claim-conclusion-deadline"
END_CLAIM_VALIDATION = "end-claim-validation-window"

#: The institution that claims a sandbox key in the simulation (``/mock/.../receive``).
SIMULATED_CLAIMER_BANK = {"bank_name": "BANCO DO BRASIL S.A.", "bank_code": 1, "ispb": "00000000"}


# -- as claimant ------------------------------------------------------------------------------------------


async def create_claim(sandbox: Sandbox, tenant: Tenant, account_key: str, key_type: str, key_value: str,
                 cid: str | None = None, *, claim_key: str | None = None, code: str | None = None) -> Claim:
    """Claim a key DICT holds at another institution for one of the caller's accounts."""
    kind = PixKeyType(key_type)
    if kind is PixKeyType.RANDOM:
        raise errors.ClaimTypeInconsistent(pix_key=key_value, reason="a random key cannot be claimed")
    check_pix_key(kind, key_value)
    account = await sandbox.store.account(account_key)
    if account is None:
        raise errors.AccountNotFound(account_key=account_key)
    check_account_accepts_keys(account, tenant)
    holder = await sandbox.store.key_holder(key_value)
    if holder is not None:  # at the sandbox's own institution: nothing to claim from another one
        if holder.status.unfinished:
            raise errors.KeyCreationNotFinished(pix_key=key_value)
        raise errors.KeyAlreadyExists(pix_key=key_value)
    entry = await sandbox.store.dict_entry(key_value)
    if entry is None:
        raise errors.ClaimKeyNotFound(pix_key=key_value)
    if entry.pix_key_type is not kind:
        raise errors.InvalidPixKey(key_value, f"is held as a {entry.pix_key_type} key, not {kind}",
                                   f"está registrada como chave {entry.pix_key_type}, não {kind}")
    claim_type = claim_type_for(kind, key_value, entry.owner_document_number, account.owner_document_number)
    now = sandbox.clock()
    at = timestamp(now)
    needs_code = kind.needs_verification
    claim = Claim(
        claim_key=claim_key or sandbox.ids(), dict_claim_id=sandbox.ids(), role=ClaimRole.CLAIMANT,
        claim_type=claim_type,
        status=ClaimStatus.PENDING_CLAIMER_VALIDATION if needs_code else ClaimStatus.PENDING,
        account=account, requester_key=tenant.requester_key, key_type=kind, key_value=key_value,
        key_created_at=at, claimant=Counterpart.own(account), donator_ispb=entry.ispb,
        created_at=at, updated_at=at, resolution_due=now + RESOLUTION_PERIOD,
        conclusion_due=now + CONCLUSION_PERIOD, key_request_key=sandbox.ids(), cid=cid,
        code=_new_code(sandbox, kind, key_value, now, code) if needs_code else None,
        validation_due=(now + dt.timedelta(seconds=sandbox.settings.validation_window)
                        if needs_code and code is None else None),
    )
    await sandbox.store.add_claim(claim, now)  # atomic: one open claim per key, the key still there, the limit
    await _opened(sandbox, claim)
    return claim


async def validate_code(sandbox: Sandbox, tenant: Tenant, claim_key: str, code: str, cid: str | None = None) -> Claim:
    now = sandbox.clock()
    return await _change(sandbox, tenant, claim_key, lambda claim: claim.validate_claimer_code(code, now), now,
                   counted=(errors.WrongCode, errors.ClaimTooManyWrongCodes), cid=cid)


async def simulate_response(sandbox: Sandbox, tenant: Tenant, claim_key: str, action: str, cid: str | None = None) -> Claim:
    """The donor institution answers the caller's claim (the provider's ``receive_response``)."""
    now = sandbox.clock()
    return await _change(sandbox, tenant, claim_key, lambda claim: claim.receive_response(Response(action), now), now,
                   cid=cid)


# -- as donor -----------------------------------------------------------------------------------------------


async def receive_claim(sandbox: Sandbox, tenant: Tenant, key_value: str, key_type: str, claim_type: str | None = None,
                  cid: str | None = None, *, claim_key: str | None = None, at: dt.datetime | None = None) -> Claim:
    """Another institution claims an active key of one of the caller's accounts (the provider's
    ``/mock/pix_keys/key_claim_simulation/receive``): a portability by the same person by default,
    or an ownership claim by someone else (phone and email keys)."""
    kind = PixKeyType(key_type)
    check_pix_key(kind, key_value) if kind is not PixKeyType.RANDOM else key_type_of(key_value)
    holder = await sandbox.store.key_holder(key_value)
    if holder is None:
        raise errors.KeyNotFound(pix_key=key_value)
    if holder.tenant != tenant.name:
        raise errors.NotEnoughPermission(pix_key=key_value)
    if holder.key_type is not kind:
        raise errors.InvalidPixKey(key_value, f"is a {holder.key_type} key, not {kind}",
                                   f"é uma chave {holder.key_type}, não {kind}")
    wanted = ClaimType(claim_type or ClaimType.PORTABILITY)
    check_received_type(kind, key_value, wanted)
    account = holder.account
    now = at or sandbox.clock()
    stamp = timestamp(now)
    claim = Claim(
        claim_key=claim_key or sandbox.ids(), dict_claim_id=sandbox.ids(), role=ClaimRole.DONATOR,
        claim_type=wanted, status=ClaimStatus.PENDING_CONFIRMATION, account=account,
        requester_key=tenant.requester_key, key_type=kind, key_value=key_value,
        key_created_at=holder.created_at, claimant=_simulated_claimant(sandbox, account, wanted, now),
        donator_ispb=OWN_ISPB, created_at=stamp, updated_at=stamp, resolution_due=now + RESOLUTION_PERIOD,
        conclusion_due=now + CONCLUSION_PERIOD, key_request_key=holder.request_key, cid=cid,
    )
    await sandbox.store.add_claim(claim, now)  # atomic: the key active in the account, no open claim, then locked
    await _opened(sandbox, claim)
    return claim


async def confirm(sandbox: Sandbox, tenant: Tenant, claim_key: str, reason: str, cid: str | None = None) -> Claim:
    now = sandbox.clock()
    return await _change(sandbox, tenant, claim_key, lambda claim: claim.confirm(Reason(reason), now), now, cid=cid)


async def cancel(sandbox: Sandbox, tenant: Tenant, claim_key: str, reason: str, code: str | None = None,
           cid: str | None = None) -> Claim:
    now = sandbox.clock()

    def cancel_it(claim: Claim) -> None:
        claim.cancel(claim.role, Reason(reason), code, now)

    return await _change(sandbox, tenant, claim_key, cancel_it, now,
                   counted=(errors.WrongCode, errors.ClaimTooManyWrongCodes), cid=cid)


async def ask_donator_validation(sandbox: Sandbox, tenant: Tenant, claim_key: str, cid: str | None = None) -> Claim:
    """The donor asks for the code it needs to cancel an ownership claim (sent to the key)."""
    now = sandbox.clock()

    def ask(claim: Claim) -> None:
        claim.ask_donator_validation(_new_code(sandbox, claim.key_type, claim.key_value, now), now)

    claim = await _change(sandbox, tenant, claim_key, ask, now, cid=cid)
    await _record_code(sandbox, claim)
    return claim


async def complete(sandbox: Sandbox, tenant: Tenant, claim_key: str, cid: str | None = None) -> Claim:
    """The claimer completes a confirmed claim (the provider's ``.../complete``): the key leaves."""
    now = sandbox.clock()
    return await _change(sandbox, tenant, claim_key, lambda claim: claim.complete(now), now, cid=cid)


# -- both ---------------------------------------------------------------------------------------------------


async def account_claims(sandbox: Sandbox, tenant: Tenant, account_key: str, status: str | None,
                   page: int, size: int) -> tuple[list[Claim], int | None]:
    """The account's claims in both roles, oldest first, a page of them and the next page's number:
    of one status, or without one the unfinished ones."""
    account = await sandbox.store.account(account_key)
    if account is None:
        raise errors.AccountNotFound(account_key=account_key)
    if account.tenant != tenant.name:
        raise errors.InvalidPermission(person_key=tenant.requester_key, account_key=account_key)
    claims = await sandbox.store.claims(account_key)
    if status is None:
        claims = [claim for claim in claims if claim.status.unfinished]
    else:
        claims = [claim for claim in claims if claim.status is ClaimStatus(status)]
    start = (page - 1) * size
    shown = claims[start:start + size]
    return shown, page + 1 if start + size < len(claims) else None


async def resolution_deadline(sandbox: Sandbox, claim_key: str) -> None:
    await _by_time(sandbox, claim_key, lambda claim, now: claim.resolution_deadline(now))


async def conclusion_deadline(sandbox: Sandbox, claim_key: str) -> None:
    await _by_time(sandbox, claim_key, lambda claim, now: claim.conclusion_deadline(now))


async def expire_validation(sandbox: Sandbox, claim_key: str) -> None:
    window = sandbox.settings.validation_window
    await _by_time(sandbox, claim_key, lambda claim, now: claim.expire_validation(window, now))


async def seed_claim(sandbox: Sandbox, entry: dict) -> Claim:
    """A fixture claim (``claims.yaml``): part of the starting state (no event, no webhook), made by
    the same rules as a client's, then brought to its status: a claimant's claim waiting for its
    code (the code given, in the outbox) or ``pending``; a donor's claim ``pending_confirmation`` or
    ``confirmed``."""
    account = await sandbox.store.account(entry["account_key"])
    tenant = sandbox.store.tenant(account.tenant) if account is not None else None
    if account is None or tenant is None:
        raise errors.AccountNotFound(account_key=entry["account_key"])
    with sandbox.quiet():
        if entry["role"] == "claimant":
            claim = await create_claim(sandbox, tenant, account.account_key, entry["pix_key_type"], entry["pix_key"],
                                 claim_key=entry["claim_request_key"], code=entry.get("verification_code"))
            if entry["claim_request_status"] == "pending" and claim.code is not None:
                claim = await validate_code(sandbox, tenant, claim.claim_key, claim.code.code)
        else:
            claim = await receive_claim(sandbox, tenant, entry["pix_key"], entry["pix_key_type"],
                                  entry.get("claim_request_type"), claim_key=entry["claim_request_key"])
            if entry["claim_request_status"] == "confirmed":
                claim = await confirm(sandbox, tenant, claim.claim_key, "client_request")
    if claim.status != entry["claim_request_status"]:
        raise errors.ClaimActionNotAllowedInStatus(claim_request_key=claim.claim_key, status=str(claim.status))
    return claim


# -- the steps ------------------------------------------------------------------------------------------------


async def _change(sandbox: Sandbox, tenant: Tenant, claim_key: str, change: Callable[[Claim], None], now: dt.datetime,
            counted: tuple[type[errors.BaasError], ...] = (), cid: str | None = None) -> Claim:
    """One step of the store on the caller's claim; its new status announced. A refusal in ``counted``
    (a wrong code) keeps the change it made (the count, a failure) and is then raised."""

    def step(claim: Claim) -> tuple[Claim, ClaimStatus, errors.BaasError | None]:
        claim.check_owner(tenant)
        before = claim.status
        try:
            change(claim)
        except counted as refusal:
            return claim, before, refusal
        return claim, before, None

    claim, before, refusal = await sandbox.store.change_claim(claim_key, step, now)
    if claim.status is not before:
        await sandbox.publish(_status_event(claim, cid))
        await _schedule_windows(sandbox, claim)
    if refusal is not None:
        raise refusal
    return claim


async def _by_time(sandbox: Sandbox, claim_key: str, change: Callable[[Claim, dt.datetime], bool]) -> None:
    now = sandbox.clock()

    def step(claim: Claim) -> tuple[Claim, bool]:
        return claim, change(claim, now)

    try:
        claim, changed = await sandbox.store.change_claim(claim_key, step, now)
    except errors.ClaimNotFound:  # the sandbox was reset meanwhile
        return
    if changed:
        await sandbox.publish(_status_event(claim, claim.cid))
        await _schedule_windows(sandbox, claim)


async def _opened(sandbox: Sandbox, claim: Claim) -> None:
    await sandbox.publish(_status_event(claim, claim.cid))
    if claim.code is not None:
        await _record_code(sandbox, claim)
        if claim.validation_due is not None:
            await sandbox.schedule_at(claim.validation_due, END_CLAIM_VALIDATION, claim.claim_key)
    await _schedule_windows(sandbox, claim)


async def _schedule_windows(sandbox: Sandbox, claim: Claim) -> None:
    """The deadline the claim waits for now: resolution while it waits for the donor, conclusion
    once confirmed (a job that finds nothing to do when it runs does nothing)."""
    if claim.status in (ClaimStatus.PENDING, ClaimStatus.PENDING_CONFIRMATION):
        await sandbox.schedule_at(claim.resolution_due, RESOLUTION_DEADLINE, claim.claim_key)
    elif claim.status is ClaimStatus.CONFIRMED:
        await sandbox.schedule_at(claim.conclusion_due, CONCLUSION_DEADLINE, claim.claim_key)


def _status_event(claim: Claim, cid: str | None) -> events.ClaimStatusChanged:
    person = claim.claimant
    return events.ClaimStatusChanged(
        tenant=claim.tenant, cid=cid, claim_request_key=claim.claim_key, account_key=claim.account.account_key,
        pix_key=claim.key_value, pix_key_type=str(claim.key_type), claim_request_type=str(claim.claim_type),
        role=str(claim.role), previous_status=None if claim.previous_status is None else str(claim.previous_status),
        claim_request_status=str(claim.status), claimant_person_type=str(person.person_type),
        claimant_document_number=person.document_number, claimant_account_branch=person.account_branch,
        claimant_account_number=person.account_number, claimant_account_digit=person.account_digit,
        cancelled_by=_text(claim.cancelled_by), cancellation_reason=_text(claim.cancellation_reason),
        confirmation_reason=_text(claim.confirmation_reason), request_failure_reason=claim.failure_reason,
        changed_at=claim.updated_at)


def _text(value) -> str | None:
    return None if value is None else str(value)


async def _record_code(sandbox: Sandbox, claim: Claim) -> None:
    """The code "sent" to the key (email or SMS): in the outbox, like a key request's."""
    code = claim.code
    assert code is not None
    await sandbox.record("outbox", {
        "message_id": sandbox.ids(),
        "pix_key_request_key": None,
        "claim_request_key": claim.claim_key,
        "channel": code.channel,
        "destination": code.destination,
        "verification_code": code.code,
        "sent_at": timestamp(code.sent_at),
        "expires_at": timestamp(code.expires_at),
    })


def _new_code(sandbox: Sandbox, kind: PixKeyType, destination: str, now: dt.datetime,
              code: str | None = None) -> VerificationCode:
    return VerificationCode(
        code=sandbox.settings.fixed_verification_code or code or f"{secrets.randbelow(1_000_000):06d}",
        channel="email" if kind is PixKeyType.EMAIL else "sms",
        destination=destination, sent_at=now, expires_at=now + dt.timedelta(seconds=sandbox.settings.code_ttl))


def _simulated_claimant(sandbox: Sandbox, account: Account, claim_type: ClaimType, now: dt.datetime) -> Counterpart:
    """The other institution's customer: the key's owner (portability) or another person (ownership)."""
    if claim_type is ClaimType.PORTABILITY:
        name, document, person_type = account.owner_name, account.owner_document_number, account.owner_person_type
    else:
        name, document, person_type = SIMULATED_OWNERSHIP_CLAIMANT
    # The same account every time (a test can name it); its person key new, like any claim's ids.
    return Counterpart(
        name=name, document_number=document, person_type=person_type, claimant_key=sandbox.ids(),
        account_opened_at=timestamp(now - dt.timedelta(days=30)), account_branch="1234",
        account_number="0456123", account_digit="7", account_type="checking", **SIMULATED_CLAIMER_BANK)


#: The other person of a simulated ownership claim (a valid CPF).
SIMULATED_OWNERSHIP_CLAIMANT = ("RAFAEL MENDES", "69471280303", PersonType.NATURAL)
