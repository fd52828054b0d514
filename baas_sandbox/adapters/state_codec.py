"""A namespace's stored state as plain JSON data and back: what a snapshot (``GET|PUT
/__admin/state``) and the state file hold, for every store to share (the in-memory one, a future
Redis one).

``encode_*`` turn domain objects into JSON-ready dicts; ``decode_*`` turn dicts that were already
checked (``services/snapshots.py``: the schema and the domain's rules) back into domain objects.
No secret is encoded: a credential is its metadata only (its sealed key stays behind).
"""

from __future__ import annotations

import datetime as dt

from baas_sandbox.clock import ClockSetting
from baas_sandbox.domain.antiscan import TokenBucket
from baas_sandbox.domain.due_work import DueJob
from baas_sandbox.domain.model import (
    Account,
    AccountStatus,
    Credential,
    DictEntry,
    KeyStatus,
    PersonType,
    PixKeyRequest,
    PixKeyType,
    RequestStatus,
    VerificationCode,
)

#: The fields of an outbox message kept in a snapshot (the admin API's ``OutboxMessage``).
OUTBOX_FIELDS = ("message_id", "pix_key_request_key", "channel", "destination", "verification_code",
                 "sent_at", "expires_at")


def encode_instant(moment: dt.datetime) -> str:
    """A moment to the microsecond, UTC (``2026-12-02T10:00:00.123456Z``): due times and code
    expiries are compared to the namespace's clock, so they keep what a timestamp rounds away."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decode_instant(text: str) -> dt.datetime:
    """The moment of ``encode_instant``'s text (``ValueError`` when it is not one)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def _optional_instant(moment: dt.datetime | None) -> str | None:
    return None if moment is None else encode_instant(moment)


def encode_clock(setting: ClockSetting) -> dict:
    return {"offset_seconds": setting.offset_seconds, "frozen_at": _optional_instant(setting.frozen_at)}


def decode_clock(data: dict) -> ClockSetting:
    frozen = data.get("frozen_at")
    return ClockSetting(float(data.get("offset_seconds", 0.0)), None if frozen is None else decode_instant(frozen))


def encode_account(account: Account) -> dict:
    return account.as_dict()


def decode_account(data: dict) -> Account:
    return Account(
        account_key=data["account_key"], tenant=data["tenant"], owner_name=data["owner_name"],
        owner_document_number=data["owner_document_number"],
        owner_person_type=PersonType(data["owner_person_type"]), owner_person_key=data["owner_person_key"],
        owner_person_registered=data["owner_person_registered"], trading_name=data.get("trading_name"),
        status=AccountStatus(data["status"]), branch_number=data["branch_number"],
        account_number=data["account_number"], account_digit=data["account_digit"],
        account_type=data["account_type"], created_at=data["created_at"],
    )


def encode_key_request(request: PixKeyRequest) -> dict:
    code = request.code
    return {
        "pix_key_request_key": request.request_key,
        "account_key": request.account.account_key,
        "requester_key": request.requester_key,
        "pix_key_type": str(request.key_type),
        "pix_key": request.key_value,
        "request_status": str(request.status),
        "pix_key_status": str(request.key_status),
        "created_at": request.created_at,
        "updated_at": request.updated_at,
        "key_updated_at": request.key_updated_at,
        "request_failure_reason": request.failure_reason,
        "verification_code": None if code is None else {
            "code": code.code, "channel": code.channel, "destination": code.destination,
            "sent_at": encode_instant(code.sent_at), "expires_at": encode_instant(code.expires_at),
        },
        "accepted_code": request.accepted_code,
        "cid": request.cid,
        "history": list(request.history),
        "wrong_codes": request.wrong_codes,
        "codes_resent": request.codes_resent,
        "validation_due": _optional_instant(request.validation_due),
        "claim_lock": request.claim_lock,
    }


def decode_key_request(data: dict, accounts: dict[str, Account]) -> PixKeyRequest:
    code = data.get("verification_code")
    due = data.get("validation_due")
    return PixKeyRequest(
        request_key=data["pix_key_request_key"],
        account=accounts[data["account_key"]],
        requester_key=data["requester_key"],
        key_type=PixKeyType(data["pix_key_type"]),
        key_value=data.get("pix_key"),
        status=RequestStatus(data["request_status"]),
        key_status=KeyStatus(data["pix_key_status"]),
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        key_updated_at=data["key_updated_at"],
        failure_reason=data.get("request_failure_reason"),
        code=None if code is None else VerificationCode(
            code=code["code"], channel=code["channel"], destination=code["destination"],
            sent_at=decode_instant(code["sent_at"]), expires_at=decode_instant(code["expires_at"])),
        accepted_code=data.get("accepted_code"),
        cid=data.get("cid"),
        history=list(data.get("history", [])),
        wrong_codes=data.get("wrong_codes", 0),
        codes_resent=data.get("codes_resent", 0),
        validation_due=None if due is None else decode_instant(due),
        claim_lock=data.get("claim_lock"),
    )


def encode_credential(credential: Credential) -> dict:
    """Its metadata only: never the key, sealed or not, nor ``provider_data`` (which a partner may
    fill with its own secrets, and which nothing reads back)."""
    return {"tenant": credential.tenant, "provider": credential.provider, "type": credential.integration_type,
            "proxy_value": credential.proxy_value, "saved_at": credential.saved_at}


def decode_credential(data: dict) -> Credential:
    """A credential restored from a snapshot: its slot, proxy value and time, without a key."""
    return Credential(tenant=data["tenant"], provider=data["provider"], integration_type=data["type"],
                      sealed_key=None, proxy_value=data["proxy_value"], provider_data={},
                      saved_at=data["saved_at"])


def encode_outbox_message(message: dict) -> dict:
    encoded = {name: message[name] for name in OUTBOX_FIELDS}
    if message.get("claim_request_key") is not None:  # a claim's code
        encoded["claim_request_key"] = message["claim_request_key"]
    return encoded


decode_outbox_message = encode_outbox_message  # the same fields, copied: nothing else is kept


def encode_due_job(job: DueJob) -> dict:
    return {"due_at": encode_instant(job.due_at), "kind": job.kind, "subject": job.subject}


def decode_due_job(data: dict) -> DueJob:
    return DueJob(decode_instant(data["due_at"]), data["kind"], data["subject"])


def encode_dict_entry(entry: DictEntry) -> dict:
    return entry.as_dict()


def decode_dict_entry(data: dict) -> DictEntry:
    return DictEntry(
        pix_key=data["pix_key"], pix_key_type=PixKeyType(data["pix_key_type"]), owner_name=data["owner_name"],
        owner_document_number=data["owner_document_number"], owner_person_type=PersonType(data["owner_person_type"]),
        ispb=data["ispb"], bank_name=data["bank_name"], bank_code=data.get("bank_code"),
        branch_number=data["branch_number"], account_number=data["account_number"],
        account_digit=data["account_digit"], account_type=data["account_type"], created_at=data["created_at"])


def encode_bucket(bucket: TokenBucket) -> dict:
    return {"account_key": bucket.account_key, "person_type": str(bucket.person_type), "capacity": bucket.capacity,
            "tokens": bucket.tokens, "updated_at": encode_instant(bucket.updated_at)}


def decode_bucket(data: dict) -> TokenBucket:
    return TokenBucket(account_key=data["account_key"], person_type=PersonType(data["person_type"]),
                       capacity=data["capacity"], tokens=float(data["tokens"]),
                       updated_at=decode_instant(data["updated_at"]))


def _encode_code(code) -> dict | None:
    return None if code is None else {
        "code": code.code, "channel": code.channel, "destination": code.destination,
        "sent_at": encode_instant(code.sent_at), "expires_at": encode_instant(code.expires_at)}


def _decode_code(data: dict | None):
    return None if data is None else VerificationCode(
        code=data["code"], channel=data["channel"], destination=data["destination"],
        sent_at=decode_instant(data["sent_at"]), expires_at=decode_instant(data["expires_at"]))


def encode_claim(claim) -> dict:
    """A claim (``domain/claims.py``), every field: its codes, counts and windows."""
    person = claim.claimant
    return {
        "claim_request_key": claim.claim_key, "dict_claim_id": claim.dict_claim_id, "role": str(claim.role),
        "claim_request_type": str(claim.claim_type), "claim_request_status": str(claim.status),
        "account_key": claim.account.account_key, "requester_key": claim.requester_key,
        "pix_key_type": str(claim.key_type), "pix_key": claim.key_value, "key_created_at": claim.key_created_at,
        "claimant": {
            "name": person.name, "document_number": person.document_number, "person_type": str(person.person_type),
            "claimant_key": person.claimant_key, "account_opened_at": person.account_opened_at,
            "account_branch": person.account_branch, "account_number": person.account_number,
            "account_digit": person.account_digit, "account_type": person.account_type,
            "bank_name": person.bank_name, "bank_code": person.bank_code, "ispb": person.ispb},
        "donator_ispb": claim.donator_ispb, "created_at": claim.created_at, "updated_at": claim.updated_at,
        "resolution_due": encode_instant(claim.resolution_due), "conclusion_due": encode_instant(claim.conclusion_due),
        "key_request_key": claim.key_request_key,
        "cancelled_by": None if claim.cancelled_by is None else str(claim.cancelled_by),
        "cancellation_reason": None if claim.cancellation_reason is None else str(claim.cancellation_reason),
        "confirmation_reason": None if claim.confirmation_reason is None else str(claim.confirmation_reason),
        "request_failure_reason": claim.failure_reason, "verification_code": _encode_code(claim.code),
        "accepted_code": claim.accepted_code, "wrong_codes": claim.wrong_codes, "codes_resent": claim.codes_resent,
        "validation_due": _optional_instant(claim.validation_due), "cid": claim.cid,
        "previous_status": None if claim.previous_status is None else str(claim.previous_status),
    }


def decode_claim(data: dict, accounts: dict[str, Account]):
    from baas_sandbox.domain.claims import Claim, ClaimRole, ClaimStatus, ClaimType, Counterpart, Reason

    person = data["claimant"]
    due = data.get("validation_due")
    return Claim(
        claim_key=data["claim_request_key"], dict_claim_id=data["dict_claim_id"], role=ClaimRole(data["role"]),
        claim_type=ClaimType(data["claim_request_type"]), status=ClaimStatus(data["claim_request_status"]),
        account=accounts[data["account_key"]], requester_key=data["requester_key"],
        key_type=PixKeyType(data["pix_key_type"]), key_value=data["pix_key"], key_created_at=data["key_created_at"],
        claimant=Counterpart(
            name=person["name"], document_number=person["document_number"],
            person_type=PersonType(person["person_type"]), claimant_key=person["claimant_key"],
            account_opened_at=person["account_opened_at"], account_branch=person["account_branch"],
            account_number=person["account_number"], account_digit=person["account_digit"],
            account_type=person["account_type"], bank_name=person["bank_name"], bank_code=person["bank_code"],
            ispb=person["ispb"]),
        donator_ispb=data["donator_ispb"], created_at=data["created_at"], updated_at=data["updated_at"],
        resolution_due=decode_instant(data["resolution_due"]), conclusion_due=decode_instant(data["conclusion_due"]),
        key_request_key=data["key_request_key"],
        cancelled_by=None if data.get("cancelled_by") is None else ClaimRole(data["cancelled_by"]),
        cancellation_reason=None if data.get("cancellation_reason") is None else Reason(data["cancellation_reason"]),
        confirmation_reason=None if data.get("confirmation_reason") is None else Reason(data["confirmation_reason"]),
        failure_reason=data.get("request_failure_reason"), code=_decode_code(data.get("verification_code")),
        accepted_code=data.get("accepted_code"), wrong_codes=data.get("wrong_codes", 0),
        codes_resent=data.get("codes_resent", 0), validation_due=None if due is None else decode_instant(due),
        cid=data.get("cid"),
        previous_status=None if data.get("previous_status") is None else ClaimStatus(data["previous_status"]),
    )
