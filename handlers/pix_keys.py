"""/baas/pix/keys: create, list, confirm with the verification code, resend the code, delete a key,
look a key up in DICT."""

from __future__ import annotations

from baas_sandbox.domain.model import PixKeyRequest
from baas_sandbox.http.context import current_sandbox
from baas_sandbox.http.tracking import current_tracking_id
from baas_sandbox.services import pix_keys


async def create_pix_key(body: dict, token_info: dict):
    request = await pix_keys.create_key_request(
        current_sandbox(), token_info["tenant"],
        account_key=body["account_key"], key_type=body["pix_key_type"], key_value=body.get("pix_key"),
        cid=current_tracking_id(),
    )
    return key_request_body(request), 201


async def list_pix_keys(account_key: str, token_info: dict, pix_key_status: str | None = None):
    requests = await pix_keys.account_keys(current_sandbox(), token_info["tenant"], account_key, pix_key_status)
    return {
        "account_key": account_key,
        "pix_keys": [pix_key_body(r) | {"pix_key_request_key": r.request_key} for r in requests],
    }, 200


async def validate_twofa(pix_key_request_key: str, body: dict, token_info: dict):
    request = await pix_keys.validate_code(
        current_sandbox(), token_info["tenant"], pix_key_request_key, body["verification_code"],
        cid=current_tracking_id())
    return key_request_body(request), 200


async def resend_twofa(pix_key_request_key: str, token_info: dict, body: dict | None = None):
    request = await pix_keys.resend_code(current_sandbox(), token_info["tenant"], pix_key_request_key,
                                   cid=current_tracking_id())
    return key_request_body(request), 200


async def delete_pix_key(pix_key: str, token_info: dict):
    deletion = await pix_keys.delete_key(current_sandbox(), token_info["tenant"], pix_key, cid=current_tracking_id())
    request = deletion.request
    return {
        "account_key": request.account.account_key,
        "created_at": deletion.at,
        "pix_key": pix_key_body(request),
        "pix_key_request_key": deletion.deletion_key,
        "request_data": {},
        "request_failure_reason": None,
        "request_status": "approved",
        "request_type": "deletion",
        "requester_key": token_info["tenant"].requester_key,
        "updated_at": deletion.at,
    }, 200


async def lookup_pix_key(pix_key: str, account_key: str, token_info: dict):
    return await pix_keys.lookup_key(current_sandbox(), token_info["tenant"], pix_key, account_key), 200


def pix_key_body(request: PixKeyRequest) -> dict:
    return {
        "account_key": request.account.account_key,
        "created_at": request.created_at,
        "pix_key": request.key_value,
        "pix_key_status": str(request.key_status),
        "pix_key_type": str(request.key_type),
        "updated_at": request.key_updated_at,
    }


def key_request_body(request: PixKeyRequest) -> dict:
    account = request.account
    return {
        "account_key": account.account_key,
        "created_at": request.created_at,
        "pix_key": pix_key_body(request),
        "pix_key_request_key": request.request_key,
        "request_data": {
            "account_created_at": account.created_at,
            "account_digit": account.account_digit,
            "account_number": account.account_number,
            "account_type": account.account_type,
            "branch_number": account.branch_number,
            "key": request.key_value,
            "owner_document_number": account.owner_document_number,
            "owner_name": account.owner_name,
            "owner_person_type": str(account.owner_person_type),
            "trading_name": account.trading_name,
        },
        "request_failure_reason": request.failure_reason,
        "request_status": str(request.status),
        "request_type": "inclusion",
        "requester_key": request.requester_key,
        "updated_at": request.updated_at,
    }
