"""/__admin: reset, accounts, outbox, webhooks."""

from __future__ import annotations

import time

import pytest

from tests.helpers import (
    NATURAL_ACCOUNT,
    ORG_A,
    SEED_ACCOUNT,
    SEED_CNPJ,
    create_key,
    key_status,
    listed_keys,
    wait_until,
)

NEW_ACCOUNT = {"owner_name": "Maria Souza", "owner_document_number": "64354276232",
               "owner_person_type": "natural", "status": "open", "tenant": "org-a"}


def test_reset_returns_to_the_fixtures(client):
    request_key = create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ).json()["pix_key_request_key"]
    wait_until(lambda: key_status(client, SEED_ACCOUNT, request_key) == "active")
    added = client.post("/__admin/accounts", json=NEW_ACCOUNT).json()["account_key"]

    response = client.post("/__admin/reset")
    assert response.status_code == 200
    assert response.json() == {"message": "Sandbox reset to fixtures", "tenants": 2, "accounts": 9}
    assert listed_keys(client, SEED_ACCOUNT) == []
    assert client.get("/__admin/webhooks").json() == {"webhooks": []}
    assert added not in {a["account_key"] for a in client.get("/__admin/accounts").json()["accounts"]}
    # the key is free again
    assert create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ).status_code == 201


def test_reset_cancels_pending_decisions(client_with):
    with client_with(activation_delay=0.3) as client:
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        client.post("/__admin/reset")
        time.sleep(0.5)
        assert client.get("/__admin/webhooks").json() == {"webhooks": []}


def test_create_account_generates_what_is_left_out(client):
    response = client.post("/__admin/accounts", json=NEW_ACCOUNT)
    assert response.status_code == 201, response.text
    account = response.json()
    assert account["owner_person_type"] == "natural" and account["tenant"] == "org-a"
    assert account["branch_number"] == "0001" and account["account_type"] == "checking"
    assert account["trading_name"] is None and account["owner_person_registered"] is True
    # and it is usable at once
    created = create_key(client, account["account_key"], "cpf", "64354276232")
    assert created.status_code == 201, created.text
    assert created.json()["request_data"]["owner_name"] == "Maria Souza"


def test_create_account_with_every_field(client):
    fields = NEW_ACCOUNT | {"account_key": "0b9e5a4c-1111-4222-8333-444455556666", "trading_name": "MS",
                            "branch_number": "0042", "account_number": "12345", "account_digit": "X",
                            "account_type": "payment", "owner_person_registered": False}
    response = client.post("/__admin/accounts", json=fields)
    assert response.status_code == 201
    assert {k: response.json()[k] for k in fields} == fields


def test_create_legal_account(client):
    response = client.post("/__admin/accounts", json=NEW_ACCOUNT | {
        "owner_document_number": "11222333000181", "owner_person_type": "legal", "tenant": "org-b"})
    assert response.status_code == 201
    assert response.json()["tenant"] == "org-b"


@pytest.mark.parametrize("change,field", [
    ({"owner_document_number": "12345678900"}, "owner_document_number"),           # bad CPF digits
    ({"owner_document_number": "09080702000105"}, "owner_document_number"),        # a CNPJ for a person
    ({"owner_person_type": "legal"}, "owner_document_number"),                     # a CPF for a company
    ({"tenant": "org-z"}, "tenant"),
    ({"status": "frozen"}, "status"),
    ({"owner_name": ""}, "owner_name"),
    ({"unexpected": 1}, "unexpected"),
])
def test_invalid_account_is_refused_with_a_clear_message(client, change, field):
    response = client.post("/__admin/accounts", json=NEW_ACCOUNT | change)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "SBX000400"
    assert body["details"].startswith(field)


def test_missing_account_fields_are_all_named(client):
    response = client.post("/__admin/accounts", json={"owner_name": "X"})
    assert response.status_code == 400
    for field in ("owner_document_number", "owner_person_type", "status", "tenant"):
        assert f"{field}: is required" in response.json()["details"]


def test_account_key_taken_is_a_conflict(client):
    response = client.post("/__admin/accounts", json=NEW_ACCOUNT | {"account_key": SEED_ACCOUNT})
    assert response.status_code == 409
    assert response.json()["code"] == "SBX000409"
    # nothing stored was touched
    seed = [a for a in client.get("/__admin/accounts").json()["accounts"] if a["account_key"] == SEED_ACCOUNT]
    assert seed[0]["owner_name"] == "VOVO LUCIA CONVENIENCIA LTDA"


def test_list_accounts_by_tenant(client):
    org_b = client.get("/__admin/accounts", params={"tenant": "org-b"}).json()["accounts"]
    assert [a["tenant"] for a in org_b] == ["org-b"]
    assert len(client.get("/__admin/accounts").json()["accounts"]) == 9


FIXTURE_REQUEST = "f6209b7e-82da-44a8-9cfa-6ad0a689adb2"


def test_outbox_lists_codes_with_their_expiry(client):
    request_key = create_key(client, NATURAL_ACCOUNT, "email", "maria@example.com").json()["pix_key_request_key"]
    client.patch(f"/baas/pix/keys/{request_key}/resend_twofa", json={}, headers=ORG_A)
    messages = [m for m in client.get("/__admin/outbox").json()["messages"]
                if m["pix_key_request_key"] is not None]  # not the fixture claim's code (claims.yaml)
    # after the code of the fixture's waiting request (key_requests.yaml), sent at start
    assert [m["pix_key_request_key"] for m in messages] == [FIXTURE_REQUEST, request_key, request_key]
    messages = messages[1:]
    assert all(m["channel"] == "email" and m["destination"] == "maria@example.com" for m in messages)
    assert all(m["expires_at"] > m["sent_at"] for m in messages)
    filtered = client.get("/__admin/outbox", params={"pix_key_request_key": "nope"}).json()
    assert filtered == {"messages": []}
