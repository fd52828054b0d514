"""/baas/pix/key_claim_request (claims, as claimant and as donor) and the provider's sandbox
simulations /mock/pix_keys/key_claim_simulation (the other institution's side)."""

from __future__ import annotations

from baas_sandbox.domain.claims import Claim, ClaimRole, ClaimStatus
from baas_sandbox.domain.model import KeyStatus, timestamp
from baas_sandbox.http.context import current_sandbox
from baas_sandbox.http.tracking import current_tracking_id
from baas_sandbox.services import claims


async def create_claim(body: dict, token_info: dict):
    claim = await claims.create_claim(current_sandbox(), token_info["tenant"], body["account_key"], body["pix_key_type"],
                                body["pix_key"], cid=current_tracking_id())
    return claim_body(claim), 201


async def validate_claim_twofa(claim_request_key: str, body: dict, token_info: dict):
    claim = await claims.validate_code(current_sandbox(), token_info["tenant"], claim_request_key,
                                 body["verification_code"], cid=current_tracking_id())
    return claim_body(claim), 200


async def confirm_claim(claim_request_key: str, token_info: dict, body: dict | None = None):
    reason = (body or {}).get("confirmation_reason", "client_request")
    claim = await claims.confirm(current_sandbox(), token_info["tenant"], claim_request_key, reason,
                           cid=current_tracking_id())
    return claim_body(claim), 200


async def cancel_claim(claim_request_key: str, body: dict, token_info: dict):
    claim = await claims.cancel(current_sandbox(), token_info["tenant"], claim_request_key, body["cancellation_reason"],
                          body.get("verification_code"), cid=current_tracking_id())
    return claim_body(claim), 200


async def ask_donator_validation(claim_request_key: str, token_info: dict, body: dict | None = None):
    claim = await claims.ask_donator_validation(current_sandbox(), token_info["tenant"], claim_request_key,
                                          cid=current_tracking_id())
    return claim_body(claim), 200


async def list_claims(account_key: str, token_info: dict, claim_status: str | None = None,
                      page_number: int = 1, page_size: int = 10):
    shown, next_page = await claims.account_claims(current_sandbox(), token_info["tenant"], account_key, claim_status,
                                             page_number, page_size)
    return {
        "data": [listed_claim(claim) for claim in shown],
        "pagination": {"current_page": page_number, "next_page": next_page, "rows_per_page": page_size},
    }, 200


async def simulate_received_claim(body: dict, token_info: dict):
    claim = await claims.receive_claim(current_sandbox(), token_info["tenant"], body["pix_key"], body["pix_key_type"],
                                 body.get("claim_request_type"), cid=current_tracking_id())
    return claim_body(claim), 201


async def simulate_claim_response(claim_request_key: str, claim_action: str, token_info: dict,
                                  body: dict | None = None):
    await claims.simulate_response(current_sandbox(), token_info["tenant"], claim_request_key, claim_action,
                             cid=current_tracking_id())
    return None, 204


async def simulate_claim_completion(claim_request_key: str, token_info: dict, body: dict | None = None):
    await claims.complete(current_sandbox(), token_info["tenant"], claim_request_key, cid=current_tracking_id())
    return None, 204


def key_status(claim: Claim) -> str:
    """The claimed key's status in the sandbox account, as the claim stands."""
    if claim.role is ClaimRole.CLAIMANT:
        if claim.status is ClaimStatus.CONCLUDED:
            return str(KeyStatus.ACTIVE)
        return str(KeyStatus.PENDING_CONFIRMATION if claim.status.unfinished else KeyStatus.INACTIVE)
    if claim.status.unfinished:
        return str(KeyStatus.PENDING_CLAIM)
    return str(KeyStatus.INACTIVE if claim.status is ClaimStatus.CONCLUDED else KeyStatus.ACTIVE)


def _text(value) -> str | None:
    return None if value is None else str(value)


def _date(moment) -> str:
    return timestamp(moment)


def claim_body(claim: Claim) -> dict:
    person = claim.claimant
    return {
        "account_key": claim.account.account_key,
        "cancellation_reason": _text(claim.cancellation_reason),
        "cancelled_by": _text(claim.cancelled_by),
        "claim_request_key": claim.claim_key,
        "claim_request_status": str(claim.status),
        "claim_request_type": str(claim.claim_type),
        "claimant": {
            "document_number": person.document_number,
            "claimant_key": person.claimant_key,
            "account_opened_at": person.account_opened_at,
            "account_branch": person.account_branch,
            "account_type": person.account_type,
            "account_number": person.account_number,
            "person_type": str(person.person_type),
            "account_digit": person.account_digit,
        },
        "claimant_bank_name": person.bank_name,
        "claimant_bank_code": None if person.bank_code is None else str(person.bank_code),
        "client_role": str(claim.role),
        "confirmation_reason": _text(claim.confirmation_reason),
        "created_at": claim.created_at,
        "donator": None,
        "donator_ispb": claim.donator_ispb,
        "external_key": None,
        "max_conclusion_date": _date(claim.conclusion_due),
        "max_resolution_date": _date(claim.resolution_due),
        "pix_key": {
            "account_key": claim.account.account_key,
            "created_at": claim.key_created_at,
            "pix_key": claim.key_value,
            "pix_key_status": key_status(claim),
            "pix_key_type": str(claim.key_type),
            "updated_at": claim.updated_at,
        },
        "request_failure_reason": claim.failure_reason,
        "requester_key": claim.requester_key,
        "updated_at": claim.updated_at,
    }


def listed_claim(claim: Claim) -> dict:
    """A claim as the provider's list shows it (its own field names)."""
    person = claim.claimant
    resolution, conclusion = _date(claim.resolution_due), _date(claim.conclusion_due)
    return {
        "account_key": claim.account.account_key,
        "cancellation_reason": _text(claim.cancellation_reason),
        "cancelled_by": _text(claim.cancelled_by),
        "claim_flow_type": str(claim.role),
        "claim_request_key": claim.claim_key,
        "claim_status": str(claim.status),
        "claim_type": str(claim.claim_type),
        "claimant_account_branch": person.account_branch,
        "claimant_account_number": person.account_number,
        "claimant_document_number": person.document_number,
        "claimant_person_type": str(person.person_type),
        "confirmation_reason": _text(claim.confirmation_reason),
        "created_at": claim.created_at,
        "donator_ispb": claim.donator_ispb,
        "limit_conclusion_date": conclusion,
        "limit_resolve_date": resolution,
        "max_conclusion_date": conclusion,
        "max_resolution_date": resolution,
        "pix_key": claim.key_value,
        "pix_key_claim_id": claim.dict_claim_id,
        "pix_key_type": str(claim.key_type),
        "requester_key": claim.requester_key,
        "updated_at": claim.updated_at,
    }
