"""Pix key claims through HTTP: as claimant (portability, ownership, the claimer's code, the other
institution's answers simulated, the windows on the namespace's clock) and as donor (a claim
received, confirmed, cancelled under DICT's rules, completed), the list, webhooks, data events and
hostile input. Every rule and every error code of the claim operations."""

from __future__ import annotations

import pytest

from tests.helpers import (
    CLOSED_ACCOUNT,
    NATURAL_ACCOUNT,
    NATURAL_CPF,
    ORG_A,
    ORG_B,
    ORG_B_ACCOUNT,
    PERSON_MISSING_ACCOUNT,
    SEED_ACCOUNT,
    create_key,
    key_status,
    latest_code,
    listed_keys,
    wait_until,
)

LUCAS = "4d2e6f80-3b1c-4d5e-8f70-1a2b3c4d5e08"  # fixtures: his CPF at Nubank, claims C1 and C2
PADARIA = "8e3f5a71-6c2b-4d9e-a1f0-2b3c4d5e6f09"  # donor of D1 (its CNPJ key)
BRUNA = "2b4c6d8e-0f1a-4b3c-9d5e-7f8091a2b3c4"  # donor of D2 (email, ownership) and D3 (CPF, confirmed)
C1 = "0f3b6c2a-1d4e-4f5a-8b6c-7d8e9f0a1b2c"  # claimant, ownership of +5521998765432, waiting for 482915
C1_CODE = "482915"
C2 = "5e7a9c1b-3d5f-4a7b-9c1d-2e4f6a8b0c1d"  # claimant, portability of 71234567857, pending
D1 = "8a2c4e6f-1b3d-4f5a-9c7e-0d2f4a6b8c0e"  # donator, portability of AB1CD2EF000170, pending_confirmation
D2 = "b3d5f7a9-2c4e-4a6b-8d0f-1e3a5c7e9b2d"  # donator, ownership of bruna.rocha@example.com
D3 = "e4f6a8b0-3d5f-4b7c-9e1a-2f4b6d8f0a3c"  # donator, portability of 84729135628, confirmed
UNKNOWN = "00000000-0000-4000-8000-000000000000"
FIXTURE_EMAIL = "financeiro@padaria-aurora.com.br"  # PADARIA's active email key
WEEK = 7 * 24 * 3600


def claim(client, account, value, key_type, headers=ORG_A):
    return client.post("/baas/pix/key_claim_request",
                       json={"account_key": account, "pix_key": value, "pix_key_type": key_type}, headers=headers)


def claim_code(client, claim_key) -> str:
    messages = client.get("/__admin/outbox", params={"claim_request_key": claim_key}).json()["messages"]
    assert messages, f"no code was sent for claim {claim_key}"
    return messages[-1]["verification_code"]


def twofa(client, claim_key, code, headers=ORG_A):
    return client.patch(f"/baas/pix/key_claim_request/{claim_key}/twofa_validation",
                        json={"verification_code": code}, headers=headers)


def act(client, claim_key, action, body=None, headers=ORG_A):
    return client.patch(f"/baas/pix/key_claim_request/{claim_key}/{action}", json=body or {}, headers=headers)


def respond(client, claim_key, action, headers=ORG_A):
    return client.patch(f"/mock/pix_keys/key_claim_simulation/{claim_key}/receive_response/{action}", json={},
                        headers=headers)


def complete(client, claim_key, headers=ORG_A):
    return client.patch(f"/mock/pix_keys/key_claim_simulation/{claim_key}/complete", json={}, headers=headers)


def receive(client, value, key_type, claim_type=None, headers=ORG_A):
    body = {"pix_key": value, "pix_key_type": key_type}
    if claim_type:
        body["claim_request_type"] = claim_type
    return client.post("/mock/pix_keys/key_claim_simulation/receive", json=body, headers=headers)


def claims_of(client, account, headers=ORG_A, **params):
    answer = client.get(f"/baas/pix/key_claim_request/account/{account}", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def status_of(client, account, claim_key, **params) -> str | None:
    for listed in claims_of(client, account, page_size=100, **params)["data"]:
        if listed["claim_request_key"] == claim_key:
            return listed["claim_status"]
    return None


def claim_webhooks(client, claim_key) -> list[dict]:
    return [w["body"] for w in client.get("/__admin/webhooks").json()["webhooks"]
            if w["webhook_type"] == "claim_request" and w["body"]["claim_request_key"] == claim_key]


def claim_events(client, claim_key) -> list[dict]:
    return [e["data"] for e in client.get("/__admin/events", params={"type": "pix_key_claim_status_changed"}).json()[
        "events"] if e["data"]["claim_request_key"] == claim_key]


def freeze(client):
    """Freeze the namespace's clock just after a reset: the fixture claims' windows start then."""
    assert client.post("/__admin/reset").status_code == 200
    assert client.put("/__admin/clock", json={"frozen": True}).status_code == 200


def advance(client, seconds):
    assert client.post("/__admin/clock/advance", json={"seconds": seconds}).status_code == 200


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def add_entry(client, value, key_type, document, person_type="natural", name="SOMEONE ELSE"):
    answer = client.post("/__admin/dict/entries", json={
        "pix_key": value, "pix_key_type": key_type, "owner_name": name, "owner_document_number": document,
        "owner_person_type": person_type, "ispb": "60746948", "bank_name": "BANCO BRADESCO S.A.",
        "branch_number": "0452", "account_number": "1234567", "account_digit": "8", "account_type": "checking"})
    assert answer.status_code == 201, answer.text


def lookup(client, value, account=SEED_ACCOUNT):
    return client.get(f"/baas/pix/keys/{value}", params={"account_key": account}, headers=ORG_A).json()


def dict_keys(client) -> set[str]:
    return {entry["pix_key"] for entry in client.get("/__admin/dict/entries").json()["dict_entries"]}


# -- as claimant: the type, and what cannot be claimed ----------------------------------------------------


def test_the_same_persons_key_at_another_bank_is_a_portability(client):
    answer = claim(client, SEED_ACCOUNT, "contato@vovolucia.com.br", "email")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["claim_request_type"] == "portability"
    assert body["client_role"] == "claimant"
    assert body["claim_request_status"] == "pending_claimer_validation"  # email: the code first
    assert body["donator_ispb"] == "00000000"
    assert body["claimant"]["document_number"] == "09080702000105"
    assert body["claimant_bank_code"] == "329"
    assert body["pix_key"]["pix_key_status"] == "pending_confirmation"
    assert (body["cancelled_by"], body["confirmation_reason"], body["request_failure_reason"]) == (None, None, None)


def test_the_windows_are_seven_and_fourteen_days(client):
    import datetime as dt

    body = claim(client, SEED_ACCOUNT, "joana.martins@example.com", "email").json()
    created = dt.datetime.fromisoformat(body["created_at"])
    assert dt.datetime.fromisoformat(body["max_resolution_date"]) - created == dt.timedelta(days=7)
    assert dt.datetime.fromisoformat(body["max_conclusion_date"]) - created == dt.timedelta(days=14)


def test_another_persons_email_or_phone_is_an_ownership_claim(client):
    assert claim(client, SEED_ACCOUNT, "joana.martins@example.com", "email").json()["claim_request_type"] == "ownership"
    add_entry(client, "+5531988887777", "phone_number", "65260181573")
    assert claim(client, NATURAL_ACCOUNT, "+5531988887777", "phone_number").json()["claim_request_type"] == "ownership"


def test_a_cpf_portability_goes_to_dict_without_a_code(client):
    add_entry(client, NATURAL_CPF, "cpf", NATURAL_CPF, name="MARIA SOUZA")
    body = claim(client, NATURAL_ACCOUNT, NATURAL_CPF, "cpf").json()
    assert (body["claim_request_type"], body["claim_request_status"]) == ("portability", "pending")
    assert client.get("/__admin/outbox", params={"claim_request_key": body["claim_request_key"]}).json()[
        "messages"] == []


@pytest.mark.parametrize("value,key_type,code", [
    ("71234567857", "cpf", "DCT000001"),  # another person's CPF (LUCAS DIAS's, at Nubank)
    ("c232142c-ddbf-41d6-a54f-3b90c28b97dc", "random_key", "DCT000001"),  # a random key: never
    ("ana.nobody@example.com", "email", "DCT000002"),  # nobody holds it: register it instead
    (FIXTURE_EMAIL, "email", "PIX000065"),  # held at the sandbox (another account of the tenant)
])
def test_keys_that_cannot_be_claimed(client, value, key_type, code):
    answer = claim(client, SEED_ACCOUNT, value, key_type)
    assert (answer.status_code, answer.json()["code"]) == (400, code), answer.text


def test_a_key_of_the_callers_own_account_cannot_be_claimed(client):
    answer = claim(client, PADARIA, FIXTURE_EMAIL, "email")
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000065")


def test_a_key_being_created_at_the_sandbox_cannot_be_claimed(client_with):
    with client_with(activation_delay=60) as client:
        assert create_key(client, SEED_ACCOUNT, "email", "new@example.com").status_code == 201
        answer = claim(client, NATURAL_ACCOUNT, "new@example.com", "email")
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000074")


def test_a_key_with_an_unfinished_claim_cannot_be_claimed_again(client):
    answer = claim(client, SEED_ACCOUNT, "+5521998765432", "phone_number")  # claimed by C1
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000072")


@pytest.mark.parametrize("account,status,code", [
    (UNKNOWN, 404, "PIX000026"), (ORG_B_ACCOUNT, 403, "PIX000054"),
    (CLOSED_ACCOUNT, 400, "PIX000002"), (PERSON_MISSING_ACCOUNT, 400, "PIX000027"),
])
def test_the_claimants_account_rules(client, account, status, code):
    answer = claim(client, account, "joana.martins@example.com", "email")
    assert (answer.status_code, answer.json()["code"]) == (status, code)


@pytest.mark.parametrize("value,key_type", [
    ("+5521998765432", "email"), ("12345678900", "cpf"), ("joana.martins@example.com", "phone_number"),
])
def test_a_key_that_does_not_fit_its_type_is_a_bad_request(client, value, key_type):
    answer = claim(client, SEED_ACCOUNT, value, key_type)
    assert (answer.status_code, answer.json()["code"]) == (400, "SBX000400")


def test_an_unfinished_claim_takes_a_place_in_the_accounts_limit(client):
    for _ in range(4):
        assert create_key(client, NATURAL_ACCOUNT, "random_key").status_code == 201
    assert claim(client, NATURAL_ACCOUNT, "joana.martins@example.com", "email").status_code == 201
    answer = create_key(client, NATURAL_ACCOUNT, "random_key")
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000014")
    full = claim(client, NATURAL_ACCOUNT, "+5521998765432", "phone_number")
    assert full.json()["code"] in ("PIX000072", "PIX000014")
    add_entry(client, "+5531988887777", "phone_number", "65260181573")
    answer = claim(client, NATURAL_ACCOUNT, "+5531988887777", "phone_number")
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000014")


# -- the claimer's code -----------------------------------------------------------------------------------


def test_the_claimers_code_sends_the_claim_to_dict(client):
    answer = twofa(client, C1, C1_CODE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["claim_request_status"] == "pending"
    assert [w["claim_request_status"] for w in claim_webhooks(client, C1)] == ["pending"]
    assert [(e["previous_status"], e["claim_request_status"]) for e in claim_events(client, C1)] == [
        ("pending_claimer_validation", "pending")]


def test_a_new_claims_code_is_in_the_outbox(client):
    key = claim(client, SEED_ACCOUNT, "joana.martins@example.com", "email").json()["claim_request_key"]
    message = client.get("/__admin/outbox", params={"claim_request_key": key}).json()["messages"][-1]
    assert (message["channel"], message["destination"], message["pix_key_request_key"]) == (
        "email", "joana.martins@example.com", None)
    assert twofa(client, key, message["verification_code"]).json()["claim_request_status"] == "pending"


def test_a_wrong_claim_code(client):
    answer = twofa(client, C1, wrong(C1_CODE))
    assert (answer.status_code, answer.json()["code"]) == (400, "2FA000400")


def test_the_fifth_wrong_claim_code_fails_the_claim_and_frees_the_key(client):
    for _ in range(4):
        assert twofa(client, C1, wrong(C1_CODE)).json()["code"] == "2FA000400"
    answer = twofa(client, C1, wrong(C1_CODE))
    assert (answer.status_code, answer.json()["code"]) == (429, "2FA000429")
    assert status_of(client, LUCAS, C1, claim_status="failed") == "failed"
    assert claim_webhooks(client, C1)[-1]["claim_request_status"] == "failed"
    assert twofa(client, C1, C1_CODE).json()["code"] == "PIX000046"  # it is over
    assert claim(client, SEED_ACCOUNT, "+5521998765432", "phone_number").status_code == 201  # the key is free


def test_an_expired_claim_code(client):
    freeze(client)
    advance(client, 601)  # --code-ttl 600
    answer = twofa(client, C1, C1_CODE)
    assert (answer.status_code, answer.json()["code"]) == (410, "2FA000410")


def test_the_accepted_claim_code_again(client):
    assert twofa(client, C1, C1_CODE).status_code == 200
    answer = twofa(client, C1, C1_CODE)
    assert (answer.status_code, answer.json()["code"]) == (403, "2FA000403")


def test_a_claim_not_waiting_for_its_code(client):
    answer = twofa(client, C2, "123456")
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000046")


def test_the_claimers_code_on_a_claim_of_which_one_is_the_donor(client):
    answer = twofa(client, D1, "123456")
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000035")


def test_the_fixed_verification_code_applies_to_claims(client_with):
    with client_with(fixed_verification_code="329329") as client:
        key = claim(client, SEED_ACCOUNT, "joana.martins@example.com", "email").json()["claim_request_key"]
        assert claim_code(client, key) == "329329"
        assert twofa(client, C1, "329329").status_code == 200  # the fixture claim's code too
        assert act(client, D2, "pending_donator_validation").status_code == 200
        assert claim_code(client, D2) == "329329"


def test_a_claim_not_validated_in_the_validation_window_fails(client):
    freeze(client)
    key = claim(client, SEED_ACCOUNT, "joana.martins@example.com", "email").json()["claim_request_key"]
    advance(client, 3600)  # --validation-window
    assert status_of(client, SEED_ACCOUNT, key, claim_status="failed") == "failed"
    assert claim(client, NATURAL_ACCOUNT, "joana.martins@example.com", "email").status_code == 201


def test_claim_codes_are_masked_in_the_journal(client):
    twofa(client, C1, C1_CODE)
    act(client, D2, "pending_donator_validation")
    act(client, D2, "cancelled", {"cancellation_reason": "fraud", "verification_code": claim_code(client, D2)})
    entries = client.get("/__admin/requests").json()["requests"]
    bodies = [e["request_body"] for e in entries if e["request_body"] and "verification_code" in e["request_body"]]
    assert len(bodies) == 2 and all(body["verification_code"] == "****" for body in bodies)


# -- the other institution's answer, simulated ---------------------------------------------------------------


def test_a_confirmed_claim_concluded_makes_the_key_the_accounts(client):
    assert respond(client, C2, "confirmed").status_code == 204
    assert status_of(client, LUCAS, C2) == "confirmed"
    assert "71234567857" in dict_keys(client)
    assert respond(client, C2, "concluded").status_code == 204
    assert status_of(client, LUCAS, C2, claim_status="concluded") == "concluded"
    assert "71234567857" not in dict_keys(client)  # the other bank's entry is gone
    keys = {k["pix_key"]: k["pix_key_status"] for k in listed_keys(client, LUCAS)}
    assert keys["71234567857"] == "active"
    assert lookup(client, "71234567857")["financial_institution"] == "QI SCD S.A."
    assert [w["claim_request_status"] for w in claim_webhooks(client, C2)] == ["confirmed", "concluded"]
    assert all(w["role"] == "claimant" for w in claim_webhooks(client, C2))
    # the key is the account's: deletable, and no longer claimable
    assert client.delete("/baas/pix/keys/71234567857", headers=ORG_A).status_code == 200


@pytest.mark.parametrize("action,status", [("cancelled", "cancelled"), ("failed", "failed")])
def test_the_other_institution_cancels_or_the_claim_fails(client, action, status):
    assert respond(client, C2, action).status_code == 204
    assert status_of(client, LUCAS, C2, claim_status=status) == status
    assert "71234567857" in dict_keys(client)  # the key stays where it was
    assert claim(client, LUCAS, "71234567857", "cpf").status_code == 201  # and can be claimed again


@pytest.mark.parametrize("claim_key,action", [
    (C2, "concluded"),  # pending: not confirmed yet
    (C1, "confirmed"),  # waiting for the claimer's code: not at DICT yet
])
def test_the_other_institution_out_of_turn(client, claim_key, action):
    answer = respond(client, claim_key, action)
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000046")


def test_the_other_institutions_answer_to_a_claim_on_ones_key(client):
    answer = respond(client, D1, "confirmed")
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000035")


# -- the windows, on the namespace's clock ------------------------------------------------------------------


def test_a_portability_not_confirmed_in_seven_days_is_cancelled(client):
    freeze(client)
    advance(client, WEEK - 5)
    assert status_of(client, LUCAS, C2) == "pending"
    advance(client, 5)
    listed = claims_of(client, LUCAS, claim_status="cancelled")["data"]
    assert [(c["claim_request_key"], c["cancelled_by"], c["cancellation_reason"]) for c in listed] == [
        (C2, "donator", "default_operation")]
    assert claim_webhooks(client, C2)[-1]["claim_request_status"] == "cancelled"


def test_an_ownership_claim_unanswered_is_confirmed_then_concluded(client):
    freeze(client)
    assert twofa(client, C1, C1_CODE).status_code == 200
    advance(client, WEEK)
    listed = claims_of(client, LUCAS, claim_status="confirmed")["data"]
    assert [(c["claim_request_key"], c["confirmation_reason"]) for c in listed] == [(C1, "default_operation")]
    advance(client, WEEK)
    assert status_of(client, LUCAS, C1, claim_status="concluded") == "concluded"
    assert {k["pix_key"]: k["pix_key_status"] for k in listed_keys(client, LUCAS)}["+5521998765432"] == "active"
    assert "+5521998765432" not in dict_keys(client)


def test_the_donors_windows(client):
    """Unanswered: D1 (portability) is cancelled, D2 (ownership) confirmed; then D2 and D3 (confirmed)
    are concluded at the conclusion date and their keys leave the account."""
    freeze(client)
    advance(client, WEEK)
    assert status_of(client, PADARIA, D1, claim_status="cancelled") == "cancelled"
    assert {k["pix_key"]: k["pix_key_status"] for k in listed_keys(client, PADARIA)}["AB1CD2EF000170"] == "active"
    assert status_of(client, BRUNA, D2) == "confirmed"
    advance(client, WEEK)
    assert status_of(client, BRUNA, D2, claim_status="concluded") == "concluded"
    assert status_of(client, BRUNA, D3, claim_status="concluded") == "concluded"
    assert listed_keys(client, BRUNA) == []
    assert lookup(client, "bruna.rocha@example.com")["financial_institution"] == "BANCO DO BRASIL S.A."


# -- as donor -----------------------------------------------------------------------------------------------


def test_a_received_claim_locks_the_key_and_sends_the_webhook(client):
    answer = receive(client, FIXTURE_EMAIL, "email")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["client_role"], body["claim_request_status"], body["claim_request_type"]) == (
        "donator", "pending_confirmation", "portability")
    assert body["donator_ispb"] == "32402502"
    assert body["claimant"]["document_number"] == "AB1CD2EF000170"  # the same person, at another bank
    key = body["claim_request_key"]
    [webhook] = claim_webhooks(client, key)
    assert (webhook["role"], webhook["claim_request_status"], webhook["webhook_type"]) == (
        "donator", "pending_confirmation", "claim_request")
    statuses = {k["pix_key"]: k["pix_key_status"] for k in listed_keys(client, PADARIA)}
    assert statuses[FIXTURE_EMAIL] == "pending_claim_request_confirmation"
    locked = client.get("/baas/pix/keys", params={"account_key": PADARIA,
                                                  "pix_key_status": "pending_claim_request_confirmation"},
                        headers=ORG_A).json()["pix_keys"]
    assert {k["pix_key"] for k in locked} == {FIXTURE_EMAIL, "AB1CD2EF000170"}
    deleted = client.delete(f"/baas/pix/keys/{FIXTURE_EMAIL}", headers=ORG_A)
    assert (deleted.status_code, deleted.json()["code"]) == (400, "PIX000072")
    again = receive(client, FIXTURE_EMAIL, "email")
    assert (again.status_code, again.json()["code"]) == (400, "PIX000072")
    assert lookup(client, FIXTURE_EMAIL)["exists"] is True  # still in DICT, here


def test_an_ownership_claim_received_is_by_someone_else(client):
    body = receive(client, FIXTURE_EMAIL, "email", "ownership").json()
    assert body["claim_request_type"] == "ownership"
    assert body["claimant"]["document_number"] != "AB1CD2EF000170"


@pytest.mark.parametrize("value,key_type,claim_type,status,code", [
    ("ana.nobody@example.com", "email", None, 404, "PIX000083"),  # not at the sandbox
    ("+5521998765432", "phone_number", None, 404, "PIX000083"),  # held at another bank
    ("AB1CD2EF000170", "cnpj", None, 400, "PIX000072"),  # claimed already (D1)
    (FIXTURE_EMAIL, "phone_number", None, 400, "SBX000400"),  # not of that type
])
def test_received_claims_refused(client, value, key_type, claim_type, status, code):
    answer = receive(client, value, key_type, claim_type)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text


def test_a_received_claim_of_the_wrong_type(client):
    random_key = create_key(client, SEED_ACCOUNT, "random_key").json()["pix_key_request_key"]
    value = wait_until(lambda: next((k["pix_key"] for k in listed_keys(client, SEED_ACCOUNT)
                                     if k["pix_key_request_key"] == random_key and k["pix_key_status"] == "active"),
                                    None))
    answer = receive(client, value, "random_key")
    assert (answer.status_code, answer.json()["code"]) == (400, "DCT000001")
    cnpj = create_key(client, SEED_ACCOUNT, "cnpj", "09080702000105").json()["pix_key_request_key"]
    wait_until(lambda: key_status(client, SEED_ACCOUNT, cnpj) == "active")
    answer = receive(client, "09080702000105", "cnpj", "ownership")
    assert (answer.status_code, answer.json()["code"]) == (400, "DCT000001")


def test_a_received_claim_on_a_key_being_created_or_of_another_tenant(client_with):
    with client_with(activation_delay=60) as client:
        assert create_key(client, SEED_ACCOUNT, "email", "new@example.com").status_code == 201
        answer = receive(client, "new@example.com", "email")
        assert (answer.status_code, answer.json()["code"]) == (400, "PIX000074")
        answer = receive(client, FIXTURE_EMAIL, "email", headers=ORG_B)
        assert (answer.status_code, answer.json()["code"]) == (403, "PIX000080")


def test_the_donor_confirms_and_the_claimer_completes(client):
    answer = act(client, D1, "confirmed", {"confirmation_reason": "client_request"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["claim_request_status"], answer.json()["confirmation_reason"]) == ("confirmed", "client_request")
    again = act(client, D1, "confirmed")
    assert (again.status_code, again.json()["code"]) == (400, "PIX000046")
    assert complete(client, D1).status_code == 204
    assert "AB1CD2EF000170" not in {k["pix_key"] for k in listed_keys(client, PADARIA)}
    gone = client.get("/baas/pix/keys", params={"account_key": PADARIA, "pix_key_status": "inactive"},
                      headers=ORG_A).json()["pix_keys"]
    assert "AB1CD2EF000170" in {k["pix_key"] for k in gone}
    assert lookup(client, "AB1CD2EF000170")["financial_institution"] == "BANCO DO BRASIL S.A."
    assert [w["claim_request_status"] for w in claim_webhooks(client, D1)] == ["confirmed", "concluded"]
    # at another bank now: it cannot be registered here, and its owner could claim it back
    assert create_key(client, PADARIA, "cnpj", "AB1CD2EF000170").json()["code"] == "PIX000065"
    assert claim(client, PADARIA, "AB1CD2EF000170", "cnpj").json()["claim_request_type"] == "portability"


def test_a_donors_action_on_ones_own_claim(client):
    for answer in (act(client, C2, "confirmed"), act(client, C2, "pending_donator_validation"), complete(client, C2)):
        assert (answer.status_code, answer.json()["code"]) == (400, "PIX000036")


def test_completion_needs_a_confirmed_claim(client):
    answer = complete(client, D1)
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000046")


def test_the_donor_of_a_portability_cancels_it(client):
    answer = act(client, D1, "cancelled", {"cancellation_reason": "client_request"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["claim_request_status"], body["cancelled_by"], body["cancellation_reason"]) == (
        "cancelled", "donator", "client_request")
    assert body["pix_key"]["pix_key_status"] == "active"
    assert client.delete("/baas/pix/keys/AB1CD2EF000170", headers=ORG_A).status_code == 200  # unlocked


def test_the_claimant_cancels_its_claim(client):
    body = act(client, C2, "cancelled", {"cancellation_reason": "client_request"}).json()
    assert (body["claim_request_status"], body["cancelled_by"]) == ("cancelled", "claimant")
    answer = act(client, C2, "cancelled", {"cancellation_reason": "fraud"})
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000046")


def test_the_donor_of_an_ownership_claim_cancels_it_for_fraud_with_its_code(client):
    answer = act(client, D2, "cancelled", {"cancellation_reason": "client_request"})
    assert (answer.status_code, answer.json()["code"]) == (400, "DCT000003")  # DICT: the claimer's reason
    answer = act(client, D2, "cancelled", {"cancellation_reason": "fraud"})
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000046")  # validation first
    asked = act(client, D2, "pending_donator_validation")
    assert asked.status_code == 200 and asked.json()["claim_request_status"] == "pending_donator_validation"
    answer = act(client, D2, "cancelled", {"cancellation_reason": "fraud"})
    assert (answer.status_code, answer.json()["code"]) == (400, "DCT000004")
    code = claim_code(client, D2)
    answer = act(client, D2, "cancelled", {"cancellation_reason": "fraud", "verification_code": wrong(code)})
    assert (answer.status_code, answer.json()["code"]) == (400, "2FA000400")
    answer = act(client, D2, "cancelled", {"cancellation_reason": "fraud", "verification_code": code})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["claim_request_status"], answer.json()["cancellation_reason"]) == ("cancelled", "fraud")
    assert {k["pix_key"]: k["pix_key_status"] for k in listed_keys(client, BRUNA)}["bruna.rocha@example.com"] == "active"


def test_the_donors_fifth_wrong_code_ends_its_validation(client):
    act(client, D2, "pending_donator_validation")
    code = claim_code(client, D2)
    for _ in range(4):
        act(client, D2, "cancelled", {"cancellation_reason": "fraud", "verification_code": wrong(code)})
    answer = act(client, D2, "cancelled", {"cancellation_reason": "fraud", "verification_code": wrong(code)})
    assert (answer.status_code, answer.json()["code"]) == (429, "2FA000429")
    assert status_of(client, BRUNA, D2) == "pending_confirmation"
    answer = act(client, D2, "pending_donator_validation")
    assert (answer.status_code, answer.json()["code"]) == (429, "2FA000429")
    assert act(client, D2, "confirmed").status_code == 200  # confirming is still possible


def test_the_donors_code_is_resent_three_times_at_most(client):
    assert act(client, D2, "pending_donator_validation").status_code == 200
    codes = [claim_code(client, D2)]
    for _ in range(3):
        assert act(client, D2, "pending_donator_validation").status_code == 200
        codes.append(claim_code(client, D2))
    answer = act(client, D2, "pending_donator_validation")
    assert (answer.status_code, answer.json()["code"]) == (429, "2FA000429")
    answer = act(client, D2, "cancelled", {"cancellation_reason": "fraud", "verification_code": codes[-1]})
    assert answer.status_code == 200, answer.text


def test_the_donors_code_expires(client):
    freeze(client)
    act(client, D2, "pending_donator_validation")
    advance(client, 601)
    answer = act(client, D2, "cancelled", {"cancellation_reason": "fraud", "verification_code": claim_code(client, D2)})
    assert (answer.status_code, answer.json()["code"]) == (410, "2FA000410")


def test_donor_validation_is_for_ownership_claims(client):
    answer = act(client, D1, "pending_donator_validation")
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000046")


def test_a_confirmed_claim_can_still_be_cancelled_by_its_donor(client):
    answer = act(client, D3, "cancelled", {"cancellation_reason": "fraud"})
    assert answer.status_code == 200
    assert answer.json()["pix_key"]["pix_key_status"] == "active"


# -- the list ---------------------------------------------------------------------------------------------


def test_the_list_shows_both_roles_unfinished_by_default(client):
    received = receive(client, FIXTURE_EMAIL, "email").json()["claim_request_key"]
    listed = claims_of(client, PADARIA)
    assert [(c["claim_request_key"], c["claim_flow_type"]) for c in listed["data"]] == [
        (D1, "donator"), (received, "donator")]
    assert listed["pagination"] == {"current_page": 1, "next_page": None, "rows_per_page": 10}
    mine = claim(client, PADARIA, "joana.martins@example.com", "email").json()["claim_request_key"]
    assert [c["claim_flow_type"] for c in claims_of(client, PADARIA)["data"]] == ["donator", "donator", "claimant"]
    act(client, D1, "cancelled", {"cancellation_reason": "client_request"})
    assert [c["claim_request_key"] for c in claims_of(client, PADARIA)["data"]] == [received, mine]
    assert [c["claim_request_key"] for c in claims_of(client, PADARIA, claim_status="cancelled")["data"]] == [D1]
    item = claims_of(client, PADARIA, claim_status="cancelled")["data"][0]
    assert item["limit_resolve_date"] == item["max_resolution_date"]
    assert (item["claim_type"], item["pix_key_type"], item["donator_ispb"]) == ("portability", "cnpj", "32402502")


def test_the_list_is_paginated(client):
    first = claims_of(client, LUCAS, page_size=1)
    assert [c["claim_request_key"] for c in first["data"]] == [C1]
    assert first["pagination"] == {"current_page": 1, "next_page": 2, "rows_per_page": 1}
    second = claims_of(client, LUCAS, page_size=1, page_number=2)
    assert [c["claim_request_key"] for c in second["data"]] == [C2]
    assert second["pagination"]["next_page"] is None
    assert claims_of(client, LUCAS, page_number=5)["data"] == []


@pytest.mark.parametrize("account,params,status,code", [
    (UNKNOWN, {}, 404, "PIX000026"),
    (ORG_B_ACCOUNT, {}, 403, "PIX000054"),
    (LUCAS, {"page_size": 0}, 400, "SBX000400"),
    (LUCAS, {"page_size": 101}, 400, "SBX000400"),
    (LUCAS, {"claim_status": "opened"}, 400, "SBX000400"),
    ("not-a-uuid", {}, 400, "SBX000400"),
])
def test_the_list_refuses(client, account, params, status, code):
    answer = client.get(f"/baas/pix/key_claim_request/account/{account}", params=params, headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (status, code)


# -- who, and hostile input -----------------------------------------------------------------------------------


CLAIM_OPERATIONS = [
    ("PATCH", "/baas/pix/key_claim_request/{}/twofa_validation", {"verification_code": "123456"}),
    ("PATCH", "/baas/pix/key_claim_request/{}/confirmed", {}),
    ("PATCH", "/baas/pix/key_claim_request/{}/cancelled", {"cancellation_reason": "client_request"}),
    ("PATCH", "/baas/pix/key_claim_request/{}/pending_donator_validation", {}),
    ("PATCH", "/mock/pix_keys/key_claim_simulation/{}/receive_response/confirmed", {}),
    ("PATCH", "/mock/pix_keys/key_claim_simulation/{}/complete", {}),
]


@pytest.mark.parametrize("method,path,body", CLAIM_OPERATIONS)
def test_an_unknown_claim(client, method, path, body):
    answer = client.request(method, path.format(UNKNOWN), json=body, headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (404, "PIX000034")


@pytest.mark.parametrize("method,path,body", CLAIM_OPERATIONS)
def test_another_tenants_claim(client, method, path, body):
    for claim_key in (C1, D2):
        answer = client.request(method, path.format(claim_key), json=body, headers=ORG_B)
        assert (answer.status_code, answer.json()["code"]) == (403, "QIT000005")
    assert status_of(client, LUCAS, C1) == "pending_claimer_validation"  # nothing changed


@pytest.mark.parametrize("method,path,body", CLAIM_OPERATIONS)
@pytest.mark.parametrize("odd", ["not-a-uuid", "%00", "..%2F..", "0f3b6c2a-1d4e-4f5a-8b6c-7d8e9f0a1b2c%20",
                                 "' OR 1=1 --", "a" * 300])
def test_odd_claim_keys_are_bad_requests(client, method, path, body, odd):
    answer = client.request(method, path.format(odd), json=body, headers=ORG_A)
    assert answer.status_code in (400, 404), answer.text
    assert answer.json()["code"] in ("SBX000400", "SBX000404")


@pytest.mark.parametrize("body", [
    {"verification_code": 123456}, {"verification_code": "12345"}, {"verification_code": None}, {}, [],
])
def test_hostile_twofa_bodies(client, body):
    answer = client.patch(f"/baas/pix/key_claim_request/{C1}/twofa_validation", json=body, headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (400, "SBX000400"), answer.text


@pytest.mark.parametrize("body", [
    {"cancellation_reason": "account_closure"}, {"cancellation_reason": None}, {},
    {"cancellation_reason": "fraud", "verification_code": "abcdef"}, {"confirmation_reason": "client_request"},
])
def test_hostile_cancellations(client, body):
    answer = act(client, D1, "cancelled", body)
    assert (answer.status_code, answer.json()["code"]) == (400, "SBX000400")


@pytest.mark.parametrize("body", [
    {"pix_key": "x", "pix_key_type": "email"}, {"pix_key": FIXTURE_EMAIL}, {"pix_key_type": "email"},
    {"pix_key": FIXTURE_EMAIL, "pix_key_type": "email", "claim_request_type": "theft"},
    {"pix_key": "\u0000", "pix_key_type": "cpf"}, {"pix_key": FIXTURE_EMAIL.upper(), "pix_key_type": "email"},
])
def test_hostile_received_claims(client, body):
    answer = client.post("/mock/pix_keys/key_claim_simulation/receive", json=body, headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (400, "SBX000400")


@pytest.mark.parametrize("body", [
    {"account_key": SEED_ACCOUNT, "pix_key": "joana.martins@example.com"},
    {"account_key": SEED_ACCOUNT, "pix_key": "joana.martins@example.com", "pix_key_type": "iban"},
    {"account_key": "x", "pix_key": "joana.martins@example.com", "pix_key_type": "email"},
    {"account_key": SEED_ACCOUNT, "pix_key": "Joana.Martins@example.com", "pix_key_type": "email"},
    {"account_key": SEED_ACCOUNT, "pix_key": "+55219987654320000", "pix_key_type": "phone_number"},
])
def test_hostile_claims(client, body):
    answer = client.post("/baas/pix/key_claim_request", json=body, headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (400, "SBX000400")


def test_an_unknown_simulated_action(client):
    answer = client.patch(f"/mock/pix_keys/key_claim_simulation/{C2}/receive_response/exploded", json={},
                          headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (400, "SBX000400")


@pytest.mark.parametrize("method,path", [
    ("POST", "/mock/pix_keys/key_claim_simulation/receive"),
    ("PATCH", f"/mock/pix_keys/key_claim_simulation/{C2}/complete"),
    ("GET", f"/baas/pix/key_claim_request/account/{LUCAS}"),
])
def test_the_simulations_need_the_tenant_token(client, method, path):
    answer = client.request(method, path, json={})
    assert (answer.status_code, answer.json()["code"]) == (401, "SBX000401")
    assert set(answer.json()) >= {"title", "description", "translation", "code"}  # the Pix key API's body


# -- webhooks and events --------------------------------------------------------------------------------------


def test_claim_request_is_a_subscribable_webhook(client):
    answer = client.post("/__admin/webhooks/subscriptions",
                         json={"url": "http://127.0.0.1:9/hooks", "events": ["claim_request"]})
    assert answer.status_code == 201, answer.text
    receive(client, FIXTURE_EMAIL, "email")
    deliveries = client.get("/__admin/webhooks/deliveries").json()["deliveries"]
    assert any(d["event_type"] == "claim_request" for d in deliveries), deliveries


def test_every_change_is_a_data_event(client):
    key = receive(client, FIXTURE_EMAIL, "email").json()["claim_request_key"]
    act(client, key, "confirmed")
    complete(client, key)
    assert [(e["previous_status"], e["claim_request_status"], e["role"]) for e in claim_events(client, key)] == [
        (None, "pending_confirmation", "donator"), ("pending_confirmation", "confirmed", "donator"),
        ("confirmed", "concluded", "donator")]


def test_fixture_claims_publish_nothing(client):
    assert client.post("/__admin/reset").status_code == 200
    assert client.get("/__admin/webhooks").json()["webhooks"] == []
    assert client.get("/__admin/events", params={"type": "pix_key_claim_status_changed"}).json()["events"] == []
    assert claim_code(client, C1) == C1_CODE


# -- snapshots ------------------------------------------------------------------------------------------------


def test_a_snapshot_carries_the_claims_their_codes_and_windows(client):
    key = receive(client, FIXTURE_EMAIL, "email", "ownership").json()["claim_request_key"]
    assert act(client, key, "pending_donator_validation").status_code == 200
    code = claim_code(client, key)
    state = client.get("/__admin/state").json()
    assert {c["claim_request_key"] for c in state["claims"]} == {C1, C2, D1, D2, D3, key}
    assert {j["kind"] for j in state["due_jobs"]} >= {"claim-resolution-deadline", "claim-conclusion-deadline"}
    headers = {"X-Sandbox-Namespace": "restored"}
    put = client.put("/__admin/state", json=state, headers=headers)
    assert put.status_code == 200, put.text
    assert client.get("/__admin/state", headers=headers).json()["claims"] == state["claims"]
    # the restored namespace goes on where the snapshot was taken: codes, locks, windows
    answer = client.patch(f"/baas/pix/key_claim_request/{key}/cancelled", headers=ORG_A | headers,
                          json={"cancellation_reason": "fraud", "verification_code": code})
    assert answer.status_code == 200, answer.text
    assert client.patch(f"/baas/pix/key_claim_request/{C1}/twofa_validation", headers=ORG_A | headers,
                        json={"verification_code": C1_CODE}).status_code == 200
    locked = client.delete("/baas/pix/keys/AB1CD2EF000170", headers=ORG_A | headers)
    assert (locked.status_code, locked.json()["code"]) == (400, "PIX000072")


def test_a_snapshot_with_a_broken_claim_is_refused(client):
    state = client.get("/__admin/state").json()
    state["claims"][0]["account_key"] = UNKNOWN
    state["claims"][1]["pix_key"] = state["claims"][0]["pix_key"]  # two unfinished claims on one key
    answer = client.put("/__admin/state", json=state)
    assert answer.status_code == 400, answer.text
    assert "/claims/0/account_key" in answer.text and "/claims/1/pix_key" in answer.text
