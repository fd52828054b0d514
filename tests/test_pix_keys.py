"""Pix keys API (/baas/pix/keys): seed flows, formats, DICT rules, verification codes, tracking_id.

Every test talks HTTP to the real app (response validation on). Asynchronous decisions are
awaited with ``wait_until``; error bodies are checked by status and ``code``, and where the
contract's own example fits the scenario, against that example verbatim.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    CLOSED_ACCOUNT,
    NATURAL_ACCOUNT,
    NATURAL_CPF,
    ORG_A,
    ORG_A_REQUESTER,
    ORG_B,
    ORG_B_ACCOUNT,
    PERSON_MISSING_ACCOUNT,
    PERSON_MISSING_KEY,
    REJECTED_ACCOUNT,
    REJECTED_CPF,
    SEED_ACCOUNT,
    SEED_CNPJ,
    create_key,
    key_status,
    latest_code,
    listed_keys,
    wait_until,
    webhooks_for,
)

SPEC = yaml.safe_load((Path(__file__).resolve().parents[1] / "spec" / "openapi.yaml").read_text("utf-8"))
EXAMPLES = {name: example["value"] for name, example in SPEC["components"]["examples"].items()}
SEED_CNPJ_201 = SPEC["paths"]["/baas/pix/keys"]["post"]["responses"]["201"]["content"][
    "application/json"]["examples"]["cnpj"]["value"]

SEED_EMAIL = "vovo.lucia@gmail.com.br"
SEED_PHONE = "+5511987654321"
SEED_BAD_CPF = "03882617038"  # the seed's CPF example: wrong check digits
OTHER_VALID_CPF = "52998224725"  # valid check digits, nobody's document in the fixtures
OTHER_VALID_CNPJ = "11222333000181"  # valid check digits, nobody's document in the fixtures

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
WEBHOOK_FIELDS = {"pix_key", "account_key", "webhook_type", "pix_key_status", "pix_key_request_key",
                  "pix_key_request_type", "pix_key_request_status"}


# -- small helpers --------------------------------------------------------------------------------


def expect_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


def two_factor_body(title: str, code: str, description: str, translation: str) -> dict:
    """The 2FA error shape: description is an object, translation and extra_fields are empty."""
    return {
        "title": title,
        "description": {"description": description, "translation": translation},
        "translation": {},
        "extra_fields": {},
        "code": code,
    }


def created(response) -> str:
    assert response.status_code == 201, response.text
    return response.json()["pix_key_request_key"]


def confirm(client, request_key: str, code: str, headers=ORG_A):
    return client.patch(f"/baas/pix/keys/{request_key}/twofa_validation",
                        json={"verification_code": code}, headers=headers)


def resend(client, request_key: str, headers=ORG_A, **body):
    return client.patch(f"/baas/pix/keys/{request_key}/resend_twofa", headers=headers, **body)


def outbox(client, request_key: str) -> list[dict]:
    response = client.get("/__admin/outbox", params={"pix_key_request_key": request_key})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def decided_webhook(client, request_key: str) -> dict:
    hooks = wait_until(lambda: webhooks_for(client, request_key))
    assert len(hooks) == 1, hooks
    return hooks[0]


def key_set_tree(value):
    """The key sets of a JSON value at every level (values themselves ignored)."""
    if isinstance(value, dict):
        return {k: key_set_tree(v) for k, v in value.items()}
    return None


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


def confirmed_email(client, account=SEED_ACCOUNT, email=SEED_EMAIL) -> tuple[str, str]:
    """An email request whose code was accepted: (request key, accepted code)."""
    request_key = created(create_key(client, account, "email", email))
    code = latest_code(client, request_key)
    response = confirm(client, request_key, code)
    assert response.status_code == 200, response.text
    return request_key, code


# -- 1. seed flows --------------------------------------------------------------------------------


def test_seed_cnpj_request_answers_the_seed_shape_and_values(client):
    response = create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)

    assert response.status_code == 201, response.text
    body = response.json()
    assert key_set_tree(body) == key_set_tree(SEED_CNPJ_201)
    assert body["request_status"] == "pending"
    assert body["request_type"] == "inclusion"
    assert body["request_failure_reason"] is None
    assert body["requester_key"] == ORG_A_REQUESTER
    assert body["account_key"] == SEED_ACCOUNT
    assert UUID_RE.match(body["pix_key_request_key"])
    assert body["pix_key"] | {"created_at": None, "updated_at": None} == {
        "account_key": SEED_ACCOUNT, "pix_key": SEED_CNPJ, "pix_key_status": "pending_confirmation",
        "pix_key_type": "cnpj", "created_at": None, "updated_at": None,
    }
    assert body["request_data"] == {
        "account_created_at": "2022-09-02T22:44:36", "account_digit": "2", "account_number": "2359934",
        "account_type": "checking", "branch_number": "0001", "key": SEED_CNPJ,
        "owner_document_number": SEED_CNPJ, "owner_name": "VOVO LUCIA CONVENIENCIA LTDA",
        "owner_person_type": "legal", "trading_name": "VOVO LUCIA",
    }
    for stamp in (body["created_at"], body["updated_at"], body["pix_key"]["created_at"],
                  body["pix_key"]["updated_at"]):
        assert TIMESTAMP.match(stamp), stamp


def test_seed_cnpj_key_turns_active_in_the_list(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ))

    wait_until(lambda: key_status(client, SEED_ACCOUNT, request_key) == "active")
    [listed] = listed_keys(client, SEED_ACCOUNT)
    assert listed["pix_key"] == SEED_CNPJ
    assert listed["pix_key_type"] == "cnpj"
    assert listed["account_key"] == SEED_ACCOUNT


def test_seed_cnpj_key_inclusion_webhook_has_exactly_the_seed_fields(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ))

    assert decided_webhook(client, request_key) == {
        "pix_key": SEED_CNPJ,
        "account_key": SEED_ACCOUNT,
        "webhook_type": "key_inclusion",
        "pix_key_status": "active",
        "pix_key_request_key": request_key,
        "pix_key_request_type": "inclusion",
        "pix_key_request_status": "approved",
    }


def test_seed_random_key_request_has_no_key_value_yet(client):
    response = create_key(client, SEED_ACCOUNT, "random_key")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["request_status"] == "pending"
    assert body["pix_key"]["pix_key"] is None
    assert body["pix_key"]["pix_key_type"] == "random_key"
    assert body["request_data"]["key"] is None


def test_seed_random_key_gets_a_uuid_listed_and_sent_in_the_webhook(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "random_key"))

    wait_until(lambda: key_status(client, SEED_ACCOUNT, request_key) == "active")
    [listed] = listed_keys(client, SEED_ACCOUNT)
    assert UUID_RE.match(listed["pix_key"] or ""), listed
    hook = decided_webhook(client, request_key)
    assert set(hook) == WEBHOOK_FIELDS
    assert hook["pix_key"] == listed["pix_key"]
    assert hook["pix_key_request_status"] == "approved"
    assert hook["pix_key_status"] == "active"


@pytest.mark.parametrize(("key_type", "value", "channel"), [
    ("email", SEED_EMAIL, "email"),
    ("phone_number", SEED_PHONE, "sms"),
])
def test_seed_email_and_phone_requests_wait_for_a_code_sent_to_the_key(client, key_type, value, channel):
    response = create_key(client, SEED_ACCOUNT, key_type, value)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["request_status"] == "pending_validation"
    assert body["pix_key"]["pix_key_status"] == "pending_confirmation"
    [message] = outbox(client, body["pix_key_request_key"])
    assert message["channel"] == channel
    assert message["destination"] == value
    assert re.fullmatch(r"[0-9]{6}", message["verification_code"])
    assert dt.datetime.fromisoformat(message["expires_at"]) > dt.datetime.fromisoformat(message["sent_at"])


@pytest.mark.parametrize(("key_type", "value"), [("email", SEED_EMAIL), ("phone_number", SEED_PHONE)])
def test_seed_email_and_phone_keys_turn_active_after_the_code(client, key_type, value):
    request_key = created(create_key(client, SEED_ACCOUNT, key_type, value))

    response = confirm(client, request_key, latest_code(client, request_key))

    assert response.status_code == 200, response.text
    assert response.json()["request_status"] == "pending"
    assert response.json()["pix_key_request_key"] == request_key
    wait_until(lambda: key_status(client, SEED_ACCOUNT, request_key) == "active")
    hook = decided_webhook(client, request_key)
    assert (hook["pix_key"], hook["pix_key_request_status"]) == (value, "approved")


def test_email_key_is_not_decided_before_its_code_is_accepted(client):
    freeze(client)
    request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))

    advance(client, 60)  # many activation delays: a CPF/CNPJ/random request would be decided by now

    assert key_status(client, SEED_ACCOUNT, request_key) == "pending_confirmation"
    assert webhooks_for(client, request_key) == []


def test_seed_cpf_example_is_refused_for_its_check_digits(client):
    body = expect_error(create_key(client, SEED_ACCOUNT, "cpf", SEED_BAD_CPF), 400, "SBX000400")

    assert body["description"] == f"pix_key: {SEED_BAD_CPF} is not a valid CPF (11 digits with valid check digits)"
    assert body["extra_fields"]["violations"] == [
        {"field": "pix_key", "message": f"{SEED_BAD_CPF} is not a valid CPF (11 digits with valid check digits)"},
    ]


# -- 2. formats -----------------------------------------------------------------------------------

LONG_EMAIL = "a" * 68 + "@gmail.com"  # 78 characters


@pytest.mark.parametrize(("body", "field", "problem"), [
    pytest.param({"pix_key_type": "cpf", "pix_key": "81563500222"}, "pix_key", "is not a valid CPF",
                 id="cpf-check-digits"),
    pytest.param({"pix_key_type": "cnpj", "pix_key": "09080702000106"}, "pix_key", "is not a valid CNPJ",
                 id="cnpj-check-digits"),
    pytest.param({"pix_key_type": "cpf", "pix_key": "8156350022"}, "pix_key", "does not match",
                 id="cpf-10-digits"),
    pytest.param({"pix_key_type": "email", "pix_key": "Vovo.Lucia@gmail.com.br"}, "pix_key", "does not match",
                 id="email-upper-case"),
    pytest.param({"pix_key_type": "email", "pix_key": LONG_EMAIL}, "pix_key", "is too long",
                 id="email-78-chars"),
    pytest.param({"pix_key_type": "email", "pix_key": "vovo.lucia.gmail.com.br"}, "pix_key", "does not match",
                 id="email-without-at"),
    pytest.param({"pix_key_type": "phone_number", "pix_key": "11987654321"}, "pix_key", "does not match",
                 id="phone-without-plus55"),
    pytest.param({"pix_key_type": "phone_number", "pix_key": "+5500987654321"}, "pix_key", "does not match",
                 id="phone-area-code-00"),
    pytest.param({"pix_key_type": "phone_number", "pix_key": "+5520987654321"}, "pix_key",
                 "is not a valid phone key", id="phone-area-code-20"),
    pytest.param({"pix_key_type": "random_key", "pix_key": "c232142c-ddbf-41d6-a54f-3b90c28b97dc"}, "pix_key",
                 "is expected to be empty", id="random-with-value"),
    pytest.param({"pix_key_type": "iban", "pix_key": "x"}, "pix_key_type", "is not one of",
                 id="unknown-type"),
    pytest.param({"pix_key_type": "cnpj", "pix_key": SEED_CNPJ, "nickname": "loja"}, "nickname",
                 "is not allowed here", id="extra-field"),
])
def test_badly_formed_key_is_refused_naming_the_problem(client, body, field, problem):
    response = client.post("/baas/pix/keys", json={"account_key": SEED_ACCOUNT} | body, headers=ORG_A)

    error = expect_error(response, 400, "SBX000400")
    assert field in error["description"] and problem in error["description"], error
    assert error["title"] == "Bad Request"
    assert [v["field"] for v in error["extra_fields"]["violations"]] == [field]
    assert problem in error["extra_fields"]["violations"][0]["message"]
    assert listed_keys(client, SEED_ACCOUNT) == []


@pytest.mark.parametrize(("body", "problem"), [
    pytest.param({"pix_key_type": "random_key"}, "is required", id="missing"),
    pytest.param({"account_key": "6d30a0b1", "pix_key_type": "random_key"}, "does not match", id="not-uuid"),
])
def test_account_key_must_be_a_uuid(client, body, problem):
    error = expect_error(client.post("/baas/pix/keys", json=body, headers=ORG_A), 400, "SBX000400")

    assert error["description"].startswith("Invalid request: account_key: ")
    assert problem in error["description"]
    assert error["extra_fields"]["violations"][0]["field"] == "account_key"


def test_body_that_is_not_json_is_refused(client):
    response = client.post("/baas/pix/keys", content=b'{"account_key": ',
                           headers=ORG_A | {"Content-Type": "application/json"})

    error = expect_error(response, 400, "SBX000400")
    assert "is not valid JSON" in error["description"]
    assert error["extra_fields"]["violations"][0]["field"] == "(body)"


def test_request_without_token_is_unauthorized(client):
    response = client.post("/baas/pix/keys", json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})

    expect_error(response, 401, "SBX000401")


# -- 3. rules -------------------------------------------------------------------------------------


def test_unknown_account_is_not_found(client):
    unknown = str(uuid.uuid4())

    error = expect_error(create_key(client, unknown, "random_key"), 404, "PIX000026")

    assert unknown in error["description"]


def test_closed_account_does_not_take_keys(client):
    error = expect_error(create_key(client, CLOSED_ACCOUNT, "random_key"), 400, "PIX000002")

    assert error == EXAMPLES["PIX000002"]


def test_other_tenants_account_is_forbidden(client):
    error = expect_error(create_key(client, ORG_B_ACCOUNT, "random_key"), 403, "PIX000054")

    assert ORG_A_REQUESTER in error["description"] and ORG_B_ACCOUNT in error["description"]
    assert error == EXAMPLES["PIX000054"]


def test_account_whose_owner_is_missing_does_not_take_keys(client):
    error = expect_error(create_key(client, PERSON_MISSING_ACCOUNT, "random_key"), 400, "PIX000027")

    assert PERSON_MISSING_KEY in error["description"]
    assert error == EXAMPLES["PIX000027"]


@pytest.mark.parametrize(("account", "key_type", "value", "owner_document"), [
    pytest.param(SEED_ACCOUNT, "cpf", NATURAL_CPF, SEED_CNPJ, id="cpf-on-legal-account"),
    pytest.param(NATURAL_ACCOUNT, "cpf", OTHER_VALID_CPF, NATURAL_CPF, id="other-cpf-on-natural-account"),
    pytest.param(SEED_ACCOUNT, "cnpj", OTHER_VALID_CNPJ, SEED_CNPJ, id="other-cnpj-on-legal-account"),
    pytest.param(NATURAL_ACCOUNT, "cnpj", SEED_CNPJ, NATURAL_CPF, id="cnpj-on-natural-account"),
])
def test_document_key_must_be_the_owners_document(client, account, key_type, value, owner_document):
    error = expect_error(create_key(client, account, key_type, value), 422, "PIX000020")

    assert value in error["description"] and owner_document in error["description"]
    assert listed_keys(client, account) == []


def test_owners_cpf_key_on_natural_account_turns_active(client):
    request_key = created(create_key(client, NATURAL_ACCOUNT, "cpf", NATURAL_CPF))

    wait_until(lambda: key_status(client, NATURAL_ACCOUNT, request_key) == "active")


def test_same_key_while_first_request_is_pending_is_refused(client):
    created(create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ))

    error = expect_error(create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ), 400, "PIX000074")

    assert error == EXAMPLES["PIX000074"]


@pytest.mark.parametrize(("account", "headers"), [
    pytest.param(NATURAL_ACCOUNT, ORG_A, id="same-account"),
    pytest.param(SEED_ACCOUNT, ORG_A, id="other-account"),
    pytest.param(ORG_B_ACCOUNT, ORG_B, id="other-tenant"),
])
def test_same_key_while_first_request_awaits_its_code_is_refused(client, account, headers):
    created(create_key(client, NATURAL_ACCOUNT, "email", "maria.souza@example.com"))

    error = expect_error(create_key(client, account, "email", "maria.souza@example.com", headers=headers),
                         400, "PIX000074")

    assert "maria.souza@example.com" in error["description"]


def test_same_key_after_it_is_active_already_exists(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ))
    wait_until(lambda: key_status(client, SEED_ACCOUNT, request_key) == "active")

    error = expect_error(create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ), 400, "PIX000065")

    assert error == EXAMPLES["PIX000065"]


def test_active_key_of_one_tenant_already_exists_for_the_other(client):
    request_key, _ = confirmed_email(client)
    wait_until(lambda: key_status(client, SEED_ACCOUNT, request_key) == "active")

    error = expect_error(create_key(client, ORG_B_ACCOUNT, "email", SEED_EMAIL, headers=ORG_B), 400, "PIX000065")

    assert error["description"] == f"Pix key: {SEED_EMAIL} already exists."
    assert error["translation"] == f"A chave pix: {SEED_EMAIL} já existe."


def test_natural_account_takes_five_active_keys_then_refuses_the_sixth(client):
    keys = [created(create_key(client, NATURAL_ACCOUNT, "random_key")) for _ in range(5)]
    wait_until(lambda: [key["pix_key_status"] for key in listed_keys(client, NATURAL_ACCOUNT)] == ["active"] * 5)

    error = expect_error(create_key(client, NATURAL_ACCOUNT, "cpf", NATURAL_CPF), 400, "PIX000014")

    assert error["description"] == f"A conta {NATURAL_ACCOUNT} já atingiu o número máximo de chaves pix."
    assert len(keys) == 5


def test_unfinished_requests_count_in_the_limit(client_with):
    with client_with(activation_delay=60) as client:
        for _ in range(5):
            created(create_key(client, NATURAL_ACCOUNT, "random_key"))
        statuses = [key["pix_key_status"] for key in listed_keys(client, NATURAL_ACCOUNT)]

        response = create_key(client, NATURAL_ACCOUNT, "random_key")

    assert statuses == ["pending_confirmation"] * 5
    expect_error(response, 400, "PIX000014")


def test_requests_awaiting_their_code_count_in_the_limit(client):
    for n in range(5):
        created(create_key(client, NATURAL_ACCOUNT, "email", f"maria{n}@example.com"))

    expect_error(create_key(client, NATURAL_ACCOUNT, "random_key"), 400, "PIX000014")


def test_legal_account_takes_twenty_keys_then_refuses_the_next(client):
    for _ in range(20):
        created(create_key(client, SEED_ACCOUNT, "random_key"))

    error = expect_error(create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ), 400, "PIX000014")

    assert error == EXAMPLES["PIX000014"]
    assert len(listed_keys(client, SEED_ACCOUNT)) == 20


def test_limit_is_per_account(client):
    for _ in range(5):
        created(create_key(client, NATURAL_ACCOUNT, "random_key"))

    created(create_key(client, SEED_ACCOUNT, "random_key"))


def test_list_of_unknown_account_is_not_found(client):
    unknown = str(uuid.uuid4())

    response = client.get("/baas/pix/keys", params={"account_key": unknown}, headers=ORG_A)

    assert unknown in expect_error(response, 404, "PIX000026")["description"]


def test_list_of_other_tenants_account_is_forbidden(client):
    response = client.get("/baas/pix/keys", params={"account_key": ORG_B_ACCOUNT}, headers=ORG_A)

    assert expect_error(response, 403, "PIX000054") == EXAMPLES["PIX000054"]


def test_list_shows_only_the_accounts_own_keys(client):
    seed_request = created(create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ))
    natural_request = created(create_key(client, NATURAL_ACCOUNT, "cpf", NATURAL_CPF))
    created(create_key(client, ORG_B_ACCOUNT, "cpf", "02269499905", headers=ORG_B))

    response = client.get("/baas/pix/keys", params={"account_key": NATURAL_ACCOUNT}, headers=ORG_A)

    assert response.status_code == 200, response.text
    assert response.json()["account_key"] == NATURAL_ACCOUNT
    assert [k["pix_key_request_key"] for k in response.json()["pix_keys"]] == [natural_request]
    assert [k["pix_key_request_key"] for k in listed_keys(client, SEED_ACCOUNT)] == [seed_request]


# -- 4. sandbox DICT rule -------------------------------------------------------------------------


def test_account_of_document_beginning_with_3_is_rejected_by_dict(client):
    request_key = created(create_key(client, REJECTED_ACCOUNT, "cpf", REJECTED_CPF))

    assert decided_webhook(client, request_key) == {
        "pix_key": REJECTED_CPF,
        "account_key": REJECTED_ACCOUNT,
        "webhook_type": "key_inclusion",
        "pix_key_status": "inactive",
        "pix_key_request_key": request_key,
        "pix_key_request_type": "inclusion",
        "pix_key_request_status": "rejected",
    }


@pytest.mark.parametrize(("owner_cpf", "decision", "key_status_after"), [
    pytest.param("11144477735", "rejected", "inactive", id="first-digit-1"),
    pytest.param("51234567830", "rejected", "inactive", id="first-digit-5"),
    pytest.param("92345678976", "approved", "active", id="first-digit-9"),
    pytest.param("01234567890", "approved", "active", id="first-digit-0"),
])
def test_dict_decision_follows_the_owners_first_digit(client, owner_cpf, decision, key_status_after):
    account = client.post("/__admin/accounts", json={
        "owner_name": "TESTE DICT", "owner_document_number": owner_cpf, "owner_person_type": "natural",
        "status": "open", "tenant": "org-a"})
    assert account.status_code == 201, account.text
    request_key = created(create_key(client, account.json()["account_key"], "cpf", owner_cpf))

    hook = decided_webhook(client, request_key)

    assert (hook["pix_key_request_status"], hook["pix_key_status"]) == (decision, key_status_after)


def test_rejected_key_is_not_in_the_list(client):
    request_key = created(create_key(client, REJECTED_ACCOUNT, "cpf", REJECTED_CPF))
    assert key_status(client, REJECTED_ACCOUNT, request_key) == "pending_confirmation"

    decided_webhook(client, request_key)

    assert listed_keys(client, REJECTED_ACCOUNT) == []


def test_rejected_key_does_not_count_in_the_limit(client_with):
    with client_with(activation_delay=0.5) as client:
        first = created(create_key(client, REJECTED_ACCOUNT, "cpf", REJECTED_CPF))
        decided_webhook(client, first)

        responses = [create_key(client, REJECTED_ACCOUNT, "random_key") for _ in range(6)]

    assert [r.status_code for r in responses[:5]] == [201] * 5, [r.text for r in responses]
    expect_error(responses[5], 400, "PIX000014")  # the five are still pending: the limit holds


def test_rejected_key_value_can_be_asked_again(client):
    first = created(create_key(client, REJECTED_ACCOUNT, "cpf", REJECTED_CPF))
    decided_webhook(client, first)

    second = created(create_key(client, REJECTED_ACCOUNT, "cpf", REJECTED_CPF))

    assert second != first
    assert decided_webhook(client, second)["pix_key_request_status"] == "rejected"


# -- 5. verification codes ------------------------------------------------------------------------


def test_wrong_code_is_refused(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))

    response = confirm(client, request_key, wrong_code(latest_code(client, request_key)))

    assert expect_error(response, 400, "2FA000400") == two_factor_body(
        "Bad Request", "2FA000400", "Invalid Code.", "Código de verificação inválido.")


def test_right_code_still_works_after_a_wrong_one(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))
    code = latest_code(client, request_key)
    expect_error(confirm(client, request_key, wrong_code(code)), 400, "2FA000400")

    assert confirm(client, request_key, code).status_code == 200


def test_accepted_code_replayed_is_already_verified(client):
    request_key, code = confirmed_email(client)

    response = confirm(client, request_key, code)

    assert expect_error(response, 403, "2FA000403") == two_factor_body(
        "Forbidden", "2FA000403", "Code already verified.", "Este código já foi utilizado.")


def test_other_code_after_acceptance_is_not_pending_validation(client):
    request_key, code = confirmed_email(client)

    error = expect_error(confirm(client, request_key, wrong_code(code)), 400, "PIX000076")

    assert error["description"] == f"Key request {request_key}, is not pending validation."


@pytest.mark.parametrize("body", [pytest.param({"json": {}}, id="empty-object"), pytest.param({}, id="no-body")])
def test_resend_issues_a_new_code(client, body):
    request_key = created(create_key(client, SEED_ACCOUNT, "phone_number", SEED_PHONE))

    response = resend(client, request_key, **body)

    assert response.status_code == 200, response.text
    assert response.json()["request_status"] == "pending_validation"
    assert response.json()["pix_key_request_key"] == request_key
    messages = outbox(client, request_key)
    assert len(messages) == 2
    assert (messages[1]["channel"], messages[1]["destination"]) == ("sms", SEED_PHONE)
    assert re.fullmatch(r"[0-9]{6}", messages[1]["verification_code"])


def test_resent_code_replaces_the_old_one(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))
    old = latest_code(client, request_key)
    assert resend(client, request_key, json={}).status_code == 200
    new = latest_code(client, request_key)
    if new == old:  # one chance in a million: ask again
        assert resend(client, request_key, json={}).status_code == 200
        new = latest_code(client, request_key)

    expect_error(confirm(client, request_key, old), 400, "2FA000400")
    response = confirm(client, request_key, new)

    assert response.status_code == 200, response.text
    assert response.json()["request_status"] == "pending"
    wait_until(lambda: key_status(client, SEED_ACCOUNT, request_key) == "active")


def test_resend_after_acceptance_is_not_pending_validation(client):
    request_key, _ = confirmed_email(client)

    error = expect_error(resend(client, request_key, json={}), 400, "PIX000076")

    assert request_key in error["description"]
    assert len(outbox(client, request_key)) == 1


@pytest.mark.parametrize(("account", "key_type", "value", "operation"), [
    pytest.param(NATURAL_ACCOUNT, "cpf", NATURAL_CPF, "twofa_validation", id="cpf-twofa_validation"),
    pytest.param(NATURAL_ACCOUNT, "cpf", NATURAL_CPF, "resend_twofa", id="cpf-resend_twofa"),
    pytest.param(SEED_ACCOUNT, "cnpj", SEED_CNPJ, "twofa_validation", id="cnpj-twofa_validation"),
    pytest.param(SEED_ACCOUNT, "cnpj", SEED_CNPJ, "resend_twofa", id="cnpj-resend_twofa"),
    pytest.param(SEED_ACCOUNT, "random_key", None, "twofa_validation", id="random-twofa_validation"),
    pytest.param(SEED_ACCOUNT, "random_key", None, "resend_twofa", id="random-resend_twofa"),
])
def test_code_operations_on_requests_without_two_steps_are_refused(client_with, account, key_type, value,
                                                                   operation):
    with client_with(activation_delay=60) as client:  # the request stays pending: no race
        request_key = created(create_key(client, account, key_type, value))

        response = client.patch(f"/baas/pix/keys/{request_key}/{operation}",
                                json={"verification_code": "123456"}, headers=ORG_A)

    assert expect_error(response, 400, "PIX000075") == EXAMPLES["PIX000075"]


@pytest.mark.parametrize("operation", ["twofa_validation", "resend_twofa"])
def test_code_operations_on_a_rejected_random_key_request_are_refused(client, operation):
    """A rejected random key never gets a value: it still has no two-step validation (not a 500)."""
    request_key = created(create_key(client, REJECTED_ACCOUNT, "random_key"))
    wait_until(lambda: webhooks_for(client, request_key))

    response = client.patch(f"/baas/pix/keys/{request_key}/{operation}",
                            json={"verification_code": "123456"}, headers=ORG_A)

    assert expect_error(response, 400, "PIX000075") == EXAMPLES["PIX000075"]


@pytest.mark.parametrize("operation", ["twofa_validation", "resend_twofa"])
def test_code_operations_on_other_tenants_request_are_forbidden(client, operation):
    request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))
    code = latest_code(client, request_key)

    response = client.patch(f"/baas/pix/keys/{request_key}/{operation}",
                            json={"verification_code": code}, headers=ORG_B)

    assert expect_error(response, 403, "QIT000005") == EXAMPLES["QIT000005"]
    assert len(outbox(client, request_key)) == 1
    assert key_status(client, SEED_ACCOUNT, request_key) == "pending_confirmation"
    assert confirm(client, request_key, code).status_code == 200  # the request is untouched


@pytest.mark.parametrize("operation", ["twofa_validation", "resend_twofa"])
def test_code_operations_on_unknown_request_are_not_found(client, operation):
    unknown = str(uuid.uuid4())

    response = client.patch(f"/baas/pix/keys/{unknown}/{operation}",
                            json={"verification_code": "123456"}, headers=ORG_A)

    error = expect_error(response, 404, "PIX000008")
    assert error["description"] == f"Pix Key Request not found for key: {unknown}."


@pytest.mark.parametrize("body", [
    pytest.param({"verification_code": "12345"}, id="5-digits"),
    pytest.param({"verification_code": "1234567"}, id="7-digits"),
    pytest.param({"verification_code": "12a456"}, id="letters"),
    pytest.param({}, id="missing"),
])
def test_verification_code_must_be_six_digits(client, body):
    request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))

    response = client.patch(f"/baas/pix/keys/{request_key}/twofa_validation", json=body, headers=ORG_A)

    error = expect_error(response, 400, "SBX000400")
    assert [v["field"] for v in error["extra_fields"]["violations"]] == ["verification_code"]


def test_expired_code_is_gone_and_a_resent_code_works(client_with):
    with client_with(code_ttl=0.2) as client:
        freeze(client)
        request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))
        code = latest_code(client, request_key)
        advance(client, 0.2)  # --code-ttl: the code expires at that moment

        expired = confirm(client, request_key, code)
        resent = resend(client, request_key, json={})
        accepted = confirm(client, request_key, latest_code(client, request_key))

    assert expect_error(expired, 410, "2FA000410") == two_factor_body(
        "Gone", "2FA000410", "Expired Code.", "Código de verificação expirado.")
    assert resent.status_code == 200, resent.text
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["request_status"] == "pending"


def data_events(client, event_type: str, request_key: str) -> list[dict]:
    response = client.get("/__admin/events", params={"type": event_type})
    assert response.status_code == 200, response.text
    return [e["data"] for e in response.json()["events"] if e["data"]["pix_key_request_key"] == request_key]


def test_the_fifth_wrong_code_rejects_the_request_and_frees_its_key(client):
    """Red team, reproduction 6: 603,411 wrong codes, then the right one, were accepted."""
    request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))
    code = latest_code(client, request_key)
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 6)]

    first_four = [confirm(client, request_key, guess) for guess in wrong[:4]]
    fifth = confirm(client, request_key, wrong[4])
    right_code_after = confirm(client, request_key, code)

    for response in first_four:
        expect_error(response, 400, "2FA000400")
    assert expect_error(fifth, 429, "2FA000429") == two_factor_body(
        "Too Many Requests", "2FA000429", "Too many wrong codes: the key request was rejected.",
        "Códigos de verificação inválidos demais: o pedido de criação foi rejeitado.")
    assert request_key in expect_error(right_code_after, 400, "PIX000076")["description"]
    hook = decided_webhook(client, request_key)
    assert (hook["pix_key_request_status"], hook["pix_key_status"]) == ("rejected", "inactive")
    [rejected] = data_events(client, "pix_key_request_rejected", request_key)
    assert rejected["reason"] == "too_many_attempts"
    assert rejected["request_failure_reason"] == "Too many wrong verification codes (5)"
    failures = data_events(client, "two_step_validation_failed", request_key)
    assert [(f["reason"], f["error_code"]) for f in failures] == [("wrong_code", "2FA000400")] * 4 + [
        ("too_many_attempts", "2FA000429")]
    assert key_status(client, SEED_ACCOUNT, request_key) is None  # not listed: no key
    again = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))  # the key is free
    assert confirm(client, again, latest_code(client, again)).status_code == 200


def test_wrong_codes_are_counted_per_request_not_per_code(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))
    for _ in range(4):
        expect_error(confirm(client, request_key, wrong_code(latest_code(client, request_key))), 400, "2FA000400")
    assert resend(client, request_key, json={}).status_code == 200

    response = confirm(client, request_key, wrong_code(latest_code(client, request_key)))

    expect_error(response, 429, "2FA000429")


def test_resend_twofa_is_limited_to_three_per_request(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "phone_number", SEED_PHONE))

    resends = [resend(client, request_key, json={}) for _ in range(3)]
    fourth = resend(client, request_key, json={})

    assert [r.status_code for r in resends] == [200, 200, 200]
    assert expect_error(fourth, 429, "2FA000429") == two_factor_body(
        "Too Many Requests", "2FA000429", "Too many codes sent for this key request.",
        "Códigos de verificação enviados demais para este pedido de criação.")
    assert len(outbox(client, request_key)) == 4  # the first code and three resends: no fifth message
    accepted = confirm(client, request_key, latest_code(client, request_key))  # the last code still works
    assert accepted.status_code == 200, accepted.text


def test_a_request_never_validated_expires_and_frees_the_key_for_its_owner(client_with):
    """Red team, reproduction 7: another tenant registered the victim's email and never confirmed it;
    the owner got PIX000074 for ever."""
    victim = "victim@example.com"
    with client_with(validation_window=1.0) as client:
        freeze(client)
        squatted = created(create_key(client, ORG_B_ACCOUNT, "email", victim, headers=ORG_B))
        squatters_code = latest_code(client, squatted)
        expect_error(create_key(client, SEED_ACCOUNT, "email", victim), 400, "PIX000074")
        advance(client, 0.999)
        expect_error(create_key(client, SEED_ACCOUNT, "email", victim), 400, "PIX000074")  # not yet

        advance(client, 0.001)  # the window closes
        hook = decided_webhook(client, squatted)
        owners = create_key(client, SEED_ACCOUNT, "email", victim)
        late_code = confirm(client, squatted, squatters_code, headers=ORG_B)
        [rejected] = data_events(client, "pix_key_request_rejected", squatted)

    assert (hook["pix_key_request_status"], hook["pix_key_status"]) == ("rejected", "inactive")
    assert rejected["reason"] == "validation_window_expired"
    assert rejected["request_failure_reason"] == (
        "Verification code not accepted within the validation window (1 s)")
    assert owners.status_code == 201, owners.text
    expect_error(late_code, 400, "PIX000076")


def test_a_request_validated_in_time_does_not_expire(client_with):
    with client_with(validation_window=1.0, activation_delay=0.05) as client:
        freeze(client)
        request_key, _ = confirmed_email(client)
        moved = advance(client, 3600)  # past the decision and the window's end: both jobs ran
        assert moved["jobs_run"] == 2 and client.get("/__admin/clock").json()["frozen"]
        hooks = webhooks_for(client, request_key)
        status = key_status(client, SEED_ACCOUNT, request_key)

    assert [h["pix_key_request_status"] for h in hooks] == ["approved"]
    assert status == "active"


def freeze(client) -> None:
    """The namespace's time stops: what is due happens when the test advances it."""
    assert client.put("/__admin/clock", json={"frozen": True}).status_code == 200


def advance(client, seconds: float) -> dict:
    answer = client.post("/__admin/clock/advance", json={"seconds": seconds})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_verification_codes_are_masked_in_the_request_journal(client):
    request_key = created(create_key(client, SEED_ACCOUNT, "email", SEED_EMAIL))
    code = latest_code(client, request_key)
    expect_error(confirm(client, request_key, wrong_code(code)), 400, "2FA000400")
    expect_error(confirm(client, request_key, "12a456"), 400, "SBX000400")
    assert confirm(client, request_key, code).status_code == 200

    entries = client.get("/__admin/requests", params={"operation_id": "validate-pix-key-twofa"}).json()["requests"]

    assert [e["request_body"] for e in entries] == [{"verification_code": "****"}] * 3
    text = str(entries)
    assert code not in text and wrong_code(code) not in text and "12a456" not in text


# -- 6. tracking_id -------------------------------------------------------------------------------


def test_tracking_id_is_echoed_or_generated(client):
    echoed = client.post(
        "/baas/pix/keys", json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"},
        headers=ORG_A | {"tracking_id": "1dd-dd84-cniidk-ioumjskd-87690"})
    generated = client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)

    assert echoed.status_code == 201, echoed.text
    assert echoed.headers["tracking_id"] == "1dd-dd84-cniidk-ioumjskd-87690"
    assert generated.status_code == 200
    assert uuid.UUID(generated.headers["tracking_id"])
