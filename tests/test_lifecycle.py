"""A key's life after its creation, through HTTP: listed by status, deleted, looked up in DICT (with
DICT's anti-scan limit), keys held at other institutions, a fixed verification code, alphanumeric
CNPJs."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from baas_sandbox.domain import errors
from baas_sandbox.domain.documents import is_valid_cnpj
from tests.helpers import (
    run,
    NATURAL_ACCOUNT,
    NATURAL_CPF,
    ORG_A,
    ORG_B,
    ORG_B_ACCOUNT,
    ORG_B_CPF,
    SEED_ACCOUNT,
    SEED_CNPJ,
    create_key,
    key_status,
    latest_code,
    listed_keys,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
ALNUM_ACCOUNT = "8e3f5a71-6c2b-4d9e-a1f0-2b3c4d5e6f09"  # PADARIA AURORA LTDA, CNPJ AB1CD2EF000170
ALNUM_CNPJ = "AB1CD2EF000170"
FIXTURE_EMAIL = "financeiro@padaria-aurora.com.br"  # active at start (key_requests.yaml)
LUCAS_ACCOUNT = "4d2e6f80-3b1c-4d5e-8f70-1a2b3c4d5e08"
OTHER_BANK_PHONE = "+5521998765432"  # dict_entries.yaml
OTHER_BANK_EMAIL = "joana.martins@example.com"
LUCAS_CPF = "71234567857"  # a fixture owner's CPF, held at another bank
E2E = re.compile(r"^E32402502\d{12}[A-Za-z0-9]{11}$")


def active_key(client, account: str, key_type: str, value: str | None = None, headers=ORG_A) -> dict:
    answer = create_key(client, account, key_type, value, headers=headers)
    assert answer.status_code == 201, answer.text
    request_key = answer.json()["pix_key_request_key"]
    if key_type in ("email", "phone_number"):
        code = latest_code(client, request_key)
        validated = client.patch(f"/baas/pix/keys/{request_key}/twofa_validation",
                                 json={"verification_code": code}, headers=headers)
        assert validated.status_code == 200, validated.text
    wait_until(lambda: key_status(client, account, request_key, headers) == "active")
    return next(k for k in listed_keys(client, account, headers) if k["pix_key_request_key"] == request_key)


def lookup(client, key: str, account: str = SEED_ACCOUNT, headers=ORG_A):
    return client.get(f"/baas/pix/keys/{key}", params={"account_key": account}, headers=headers)


def freeze(client) -> None:
    assert client.put("/__admin/clock", json={"frozen": True}).status_code == 200


def advance(client, seconds: float) -> None:
    assert client.post("/__admin/clock/advance", json={"seconds": seconds}).status_code == 200


# -- the list, by status ---------------------------------------------------------------------------------


def test_the_list_filters_by_the_key_status(client):
    active = active_key(client, NATURAL_ACCOUNT, "cpf", NATURAL_CPF)
    pending = create_key(client, NATURAL_ACCOUNT, "email", "maria@example.com").json()
    assert client.delete(f"/baas/pix/keys/{NATURAL_CPF}", headers=ORG_A).status_code == 200
    again = active_key(client, NATURAL_ACCOUNT, "cpf", NATURAL_CPF)  # registered again: two entries

    def listed(status=None):
        params = {"account_key": NATURAL_ACCOUNT} | ({"pix_key_status": status} if status else {})
        answer = client.get("/baas/pix/keys", params=params, headers=ORG_A)
        assert answer.status_code == 200, answer.text
        return [(k["pix_key_request_key"], k["pix_key_status"]) for k in answer.json()["pix_keys"]]

    assert listed("active") == [(again["pix_key_request_key"], "active")]
    assert listed("pending_confirmation") == [(pending["pix_key_request_key"], "pending_confirmation")]
    assert listed("inactive") == [(active["pix_key_request_key"], "inactive")]
    # without a status: active or being created, as before
    assert sorted(listed()) == sorted([(pending["pix_key_request_key"], "pending_confirmation"),
                                       (again["pix_key_request_key"], "active")])


def test_a_rejected_request_is_not_listed_inactive(client):
    from tests.helpers import REJECTED_ACCOUNT, REJECTED_CPF

    request_key = create_key(client, REJECTED_ACCOUNT, "cpf", REJECTED_CPF).json()["pix_key_request_key"]
    wait_until(lambda: not listed_keys(client, REJECTED_ACCOUNT))
    answer = client.get("/baas/pix/keys", params={"account_key": REJECTED_ACCOUNT, "pix_key_status": "inactive"},
                        headers=ORG_A)
    assert answer.json()["pix_keys"] == [], request_key


@pytest.mark.parametrize("status", ["inactivated", "ACTIVE", ""])
def test_a_status_outside_the_vocabulary_is_refused(client, status):
    answer = client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT, "pix_key_status": status},
                        headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (400, "SBX000400"), answer.text


def test_the_list_by_status_keeps_the_accounts_rules(client):
    answer = client.get("/baas/pix/keys", params={"account_key": ORG_B_ACCOUNT, "pix_key_status": "active"},
                        headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (403, "PIX000054")


# -- deletion ---------------------------------------------------------------------------------------------


def test_deleting_an_active_key_answers_the_deletion_request(client):
    answer = client.delete(f"/baas/pix/keys/{FIXTURE_EMAIL}", headers=ORG_A | {"tracking_id": "trk-del"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["request_type"] == "deletion" and body["request_status"] == "approved"
    assert body["request_data"] == {} and body["request_failure_reason"] is None
    assert body["pix_key"]["pix_key"] == FIXTURE_EMAIL and body["pix_key"]["pix_key_status"] == "inactive"
    assert body["account_key"] == ALNUM_ACCOUNT
    assert body["pix_key_request_key"] != "0d2878c9-b978-4d3c-86be-bd7d5cd8c09f"  # its own request
    assert answer.headers["tracking_id"] == "trk-del"
    events = [e for e in client.get("/__admin/events").json()["events"] if e["event_type"] == "pix_key_deleted"]
    assert len(events) == 1 and events[0]["cid"] == "trk-del"
    assert events[0]["data"] | {"deleted_at": None} == {
        "pix_key_request_key": "0d2878c9-b978-4d3c-86be-bd7d5cd8c09f",
        "deletion_request_key": body["pix_key_request_key"], "account_key": ALNUM_ACCOUNT,
        "pix_key": FIXTURE_EMAIL, "pix_key_type": "email", "pix_key_status": "inactive",
        "reason": "user_requested", "deleted_at": None}
    assert client.get("/__admin/webhooks").json()["webhooks"] == []  # no webhook for a deletion
    # gone: not listed, not found, not deletable twice
    assert FIXTURE_EMAIL not in [k["pix_key"] for k in listed_keys(client, ALNUM_ACCOUNT)]
    assert lookup(client, FIXTURE_EMAIL).json() == {"exists": False, "pix_key": FIXTURE_EMAIL}
    again = client.delete(f"/baas/pix/keys/{FIXTURE_EMAIL}", headers=ORG_A)
    assert (again.status_code, again.json()["code"]) == (404, "PIX000083")


def test_a_deleted_key_can_be_registered_again_by_anyone(client):
    active_key(client, NATURAL_ACCOUNT, "email", "shared@example.com")
    taken = create_key(client, ORG_B_ACCOUNT, "email", "shared@example.com", headers=ORG_B)
    assert taken.json()["code"] == "PIX000065"
    assert client.delete("/baas/pix/keys/shared@example.com", headers=ORG_A).status_code == 200
    active_key(client, ORG_B_ACCOUNT, "email", "shared@example.com", headers=ORG_B)  # another tenant now
    assert lookup(client, "shared@example.com").json()["name"] == "CARLOS PEREIRA"


def test_a_deletion_frees_the_keys_place_in_the_accounts_limit(client):
    keys = [active_key(client, NATURAL_ACCOUNT, "random_key") for _ in range(5)]
    assert create_key(client, NATURAL_ACCOUNT, "random_key").json()["code"] == "PIX000014"
    assert client.delete(f"/baas/pix/keys/{keys[0]['pix_key']}", headers=ORG_A).status_code == 200
    assert create_key(client, NATURAL_ACCOUNT, "random_key").status_code == 201


@pytest.mark.parametrize("encode", [False, True], ids=["raw", "url-encoded"])
@pytest.mark.parametrize(("key_type", "value"), [("email", "ana+pix@example.com"), ("phone_number", "+5511987654321")])
def test_email_and_phone_keys_in_the_path_raw_or_url_encoded(client, encode, key_type, value):
    active_key(client, NATURAL_ACCOUNT, key_type, value)
    path = quote(value, safe="") if encode else value
    found = lookup(client, path, NATURAL_ACCOUNT)
    assert found.status_code == 200 and found.json()["exists"] is True and found.json()["pix_key"] == value
    deleted = client.delete(f"/baas/pix/keys/{path}", headers=ORG_A)
    assert deleted.status_code == 200 and deleted.json()["pix_key"]["pix_key"] == value


def test_deleting_another_tenants_key_is_refused(client):
    active_key(client, ORG_B_ACCOUNT, "cpf", ORG_B_CPF, headers=ORG_B)
    answer = client.delete(f"/baas/pix/keys/{ORG_B_CPF}", headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (403, "PIX000080")
    assert lookup(client, ORG_B_CPF).json()["exists"] is True  # still there


@pytest.mark.parametrize("key_type,value", [("email", "waiting@example.com"), ("cpf", NATURAL_CPF)])
def test_a_key_whose_inclusion_is_unfinished_cannot_be_deleted(client_with, key_type, value):
    with client_with(activation_delay=60) as client:  # pending_validation / pending until DICT decides
        assert create_key(client, NATURAL_ACCOUNT, key_type, value).status_code == 201
        answer = client.delete(f"/baas/pix/keys/{value}", headers=ORG_A)
        assert (answer.status_code, answer.json()["code"]) == (400, "PIX000074")


@pytest.mark.parametrize("value", ["nobody@example.com", OTHER_BANK_PHONE, LUCAS_CPF, "+5511912345678"])
def test_a_key_not_active_at_the_sandbox_is_not_found(client, value):
    """Never registered, held at another bank, or waiting for its code ("+5511912345678", a fixture):
    a pending key answers PIX000074, the others PIX000083."""
    answer = client.delete(f"/baas/pix/keys/{quote(value)}", headers=ORG_A)
    expected = (400, "PIX000074") if value == "+5511912345678" else (404, "PIX000083")
    assert (answer.status_code, answer.json()["code"]) == expected


def test_a_key_locked_by_an_unfinished_claim_cannot_be_deleted(client):
    """The extension point for claims: a key with a ``claim_lock`` answers PIX000072."""
    store = client.sandbox.store

    def lock(request):
        request.claim_lock = "a-claim"
        return request

    run(store.change_key(FIXTURE_EMAIL, lock))
    answer = client.delete(f"/baas/pix/keys/{FIXTURE_EMAIL}", headers=ORG_A)
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000072")


def test_deletion_and_creation_of_one_key_are_atomic(client):
    """Deleting a key while others ask for it: each creation sees the key held (PIX000065) or free
    (201), never both at once: at most one request holds the key after each round."""
    store = client.sandbox.store
    for round_ in range(20):
        value = f"race{round_}@example.com"
        active_key(client, NATURAL_ACCOUNT, "email", value)
        answers = []
        barrier = threading.Barrier(4)

        def delete():
            barrier.wait()
            answers.append(client.delete(f"/baas/pix/keys/{value}", headers=ORG_A).status_code)

        def create(headers=ORG_B, account=ORG_B_ACCOUNT):
            barrier.wait()
            answers.append(create_key(client, account, "email", value, headers=headers).status_code)

        threads = [threading.Thread(target=delete)] + [threading.Thread(target=create) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers).count(200) == 1
        assert answers.count(201) <= 1  # one creation won, or none came after the deletion
        holders = [r for r in run(store.key_requests(ORG_B_ACCOUNT)) + run(store.key_requests(NATURAL_ACCOUNT))
                   if r.key_value == value and r.claims_key]
        assert len(holders) == answers.count(201)
        if holders:  # clear ORG_B's place for the next round (its limit is 5)
            run(store.change_key_request(holders[0].request_key, lambda r: r.reject("test cleanup", client.sandbox.clock())))


# -- lookup -----------------------------------------------------------------------------------------------


def test_a_lookup_finds_a_key_of_the_sandbox(client):
    active_key(client, NATURAL_ACCOUNT, "cpf", NATURAL_CPF)
    answer = lookup(client, NATURAL_CPF, SEED_ACCOUNT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert E2E.match(body.pop("end_to_end_id"))
    assert body == {
        "exists": True, "pix_key": NATURAL_CPF, "pix_key_type": "cpf", "name": "MARIA SOUZA",
        "masked_document_number": "***.635.002-**", "owner_person_type": "natural",
        "financial_institution": "QI SCD S.A.", "ispb": "32402502", "bank_code": 329, "account_branch": "0001",
        "account_number": "4815162", "account_digit": "3", "account_type": "checking_account", "valid": True}


def test_a_lookup_finds_a_key_held_at_another_bank(client):
    body = lookup(client, OTHER_BANK_EMAIL).json()
    assert body["exists"] is True and body["name"] == "JOANA MARTINS" and body["ispb"] == "60701190"
    assert body["account_type"] == "savings_account" and body["bank_code"] == 341
    assert len(body["end_to_end_id"]) == 32


def test_the_end_to_end_id_carries_the_namespaces_time(client):
    assert client.put("/__admin/clock", json={"now": "2031-05-06T07:08:09", "frozen": True}).status_code == 200
    assert lookup(client, OTHER_BANK_PHONE).json()["end_to_end_id"].startswith("E32402502203105060708")


@pytest.mark.parametrize("value", ["nobody@example.com", "+5511987654321", NATURAL_CPF,
                                   "8d6f0f7e-0000-4000-8000-000000000000"])
def test_a_key_not_registered_does_not_exist(client, value):
    assert lookup(client, quote(value)).json() == {"exists": False, "pix_key": value}


def test_a_key_being_created_does_not_exist_yet(client_with):
    with client_with(activation_delay=60) as client:
        create_key(client, NATURAL_ACCOUNT, "cpf", NATURAL_CPF)
        assert lookup(client, NATURAL_CPF).json() == {"exists": False, "pix_key": NATURAL_CPF}


def test_a_cnpj_is_shown_whole_a_cpf_masked(client):
    active_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
    assert lookup(client, SEED_CNPJ).json()["masked_document_number"] == "09.080.702/0001-05"
    assert lookup(client, ALNUM_CNPJ).json()["masked_document_number"] == "AB.1CD.2EF/0001-70"


def test_the_paying_account_is_required_and_must_be_the_callers(client):
    missing = client.get(f"/baas/pix/keys/{OTHER_BANK_PHONE}", headers=ORG_A)
    assert (missing.status_code, missing.json()["code"]) == (400, "SBX000400")
    unknown = lookup(client, OTHER_BANK_PHONE, "00000000-0000-4000-8000-000000000000")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "PIX000026")
    other = lookup(client, OTHER_BANK_PHONE, ORG_B_ACCOUNT)
    assert (other.status_code, other.json()["code"]) == (403, "PIX000054")
    assert client.get(f"/baas/pix/keys/{OTHER_BANK_PHONE}", params={"account_key": SEED_ACCOUNT}).status_code == 401


@pytest.mark.parametrize("value", ["81563500220", "09080702000100", "+5500987654321", "Ana@example.com",
                                   "ab1cd2ef000170"])
def test_a_malformed_key_is_a_bad_request(client, value):
    for answer in (lookup(client, quote(value)), client.delete(f"/baas/pix/keys/{quote(value)}", headers=ORG_A)):
        assert (answer.status_code, answer.json()["code"]) == (400, "SBX000400"), answer.text


# -- the anti-scan bucket ---------------------------------------------------------------------------------


def bucket(client, account: str) -> dict | None:
    buckets = client.get("/__admin/rate-limits").json()["buckets"]
    return next((b for b in buckets if b["account_key"] == account), None)


def test_keys_not_found_empty_a_natural_persons_bucket_in_five_lookups(client):
    freeze(client)
    for _ in range(5):
        assert lookup(client, "nobody@example.com", NATURAL_ACCOUNT).status_code == 200
    assert bucket(client, NATURAL_ACCOUNT) | {"account_key": None} == {
        "account_key": None, "policy": "ENTRIES_READ_USER_ANTISCAN", "person_type": "natural", "capacity": 100,
        "tokens": 0, "refill_per_minute": 2, "cost_found": 1, "cost_not_found": 20}
    refused = lookup(client, OTHER_BANK_PHONE, NATURAL_ACCOUNT)  # even a key that exists
    assert (refused.status_code, refused.json()["code"]) == (429, "PIX000079")
    assert refused.json()["title"] == "Rate limit reached"
    assert refused.headers["Retry-After"] == "30"  # 2 tokens a minute: one in 30 s
    advance(client, 29)
    assert lookup(client, OTHER_BANK_PHONE, NATURAL_ACCOUNT).headers["Retry-After"] == "1"
    advance(client, 1)
    assert lookup(client, OTHER_BANK_PHONE, NATURAL_ACCOUNT).json()["exists"] is True  # the token it had
    assert lookup(client, OTHER_BANK_PHONE, NATURAL_ACCOUNT).status_code == 429
    assert bucket(client, SEED_ACCOUNT) is None  # another account's bucket is untouched


def test_a_key_found_costs_one_token(client):
    freeze(client)
    for _ in range(100):
        assert lookup(client, OTHER_BANK_PHONE, NATURAL_ACCOUNT).status_code == 200
    assert lookup(client, OTHER_BANK_PHONE, NATURAL_ACCOUNT).status_code == 429


def test_a_legal_persons_bucket_holds_a_thousand_tokens(client):
    freeze(client)
    for _ in range(50):  # 1,000 tokens
        assert lookup(client, "nobody@example.com", SEED_ACCOUNT).status_code == 200
    assert bucket(client, SEED_ACCOUNT)["capacity"] == 1000
    assert lookup(client, "nobody@example.com", SEED_ACCOUNT).status_code == 429


def test_a_key_not_found_is_charged_in_full_below_zero(client):
    """A refusal must not tell that a key is unregistered: with one token left, a key not found is
    answered and takes the bucket to -19; the next lookup waits for 20 tokens (600 s)."""
    freeze(client)
    for _ in range(99):
        lookup(client, OTHER_BANK_PHONE, NATURAL_ACCOUNT)
    assert lookup(client, "nobody@example.com", NATURAL_ACCOUNT).json()["exists"] is False
    assert bucket(client, NATURAL_ACCOUNT)["tokens"] == -19
    assert lookup(client, OTHER_BANK_PHONE, NATURAL_ACCOUNT).headers["Retry-After"] == "600"


def test_refill_is_capped_and_a_reset_refills(client):
    freeze(client)
    for _ in range(5):
        lookup(client, "nobody@example.com", NATURAL_ACCOUNT)
    advance(client, 24 * 3600)
    assert bucket(client, NATURAL_ACCOUNT)["tokens"] == 100
    for _ in range(5):
        lookup(client, "nobody@example.com", NATURAL_ACCOUNT)
    assert client.post("/__admin/reset").status_code == 200
    assert client.get("/__admin/rate-limits").json() == {"buckets": []}
    assert lookup(client, "nobody@example.com", NATURAL_ACCOUNT).status_code == 200


def test_buckets_are_per_namespace(client):
    freeze(client)
    for _ in range(5):
        lookup(client, "nobody@example.com", NATURAL_ACCOUNT)
    other = client.get(f"/baas/pix/keys/{OTHER_BANK_PHONE}", params={"account_key": NATURAL_ACCOUNT},
                       headers=ORG_A | {"X-Sandbox-Namespace": "other"})
    assert other.status_code == 200
    assert client.get("/__admin/rate-limits", headers={"X-Sandbox-Namespace": "other"}).json()["buckets"][0][
        "tokens"] > 98


def test_concurrent_lookups_spend_each_token_once(client):
    freeze(client)
    statuses = []

    def look():
        for _ in range(10):
            statuses.append(lookup(client, OTHER_BANK_PHONE, NATURAL_ACCOUNT).status_code)

    threads = [threading.Thread(target=look) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 100 and statuses.count(429) == 20


# -- keys held at other institutions ------------------------------------------------------------------------

ENTRY = {"pix_key": "rafael.costa@example.com", "pix_key_type": "email", "owner_name": "RAFAEL COSTA",
         "owner_document_number": "91318609151", "owner_person_type": "natural", "ispb": "00000000",
         "bank_name": "BANCO DO BRASIL S.A.", "bank_code": 1, "branch_number": "1234", "account_number": "99887766",
         "account_digit": "5", "account_type": "checking"}


def test_the_shipped_entries_are_listed(client):
    entries = client.get("/__admin/dict/entries").json()["dict_entries"]
    assert {e["pix_key"]: e["owner_name"] for e in entries} == {
        OTHER_BANK_PHONE: "FERNANDA OLIVEIRA", OTHER_BANK_EMAIL: "JOANA MARTINS", LUCAS_CPF: "LUCAS DIAS",
        "contato@vovolucia.com.br": "VOVO LUCIA CONVENIENCIA LTDA"}


@pytest.mark.parametrize(("account", "key_type", "value"), [
    (NATURAL_ACCOUNT, "email", OTHER_BANK_EMAIL),
    (NATURAL_ACCOUNT, "phone_number", OTHER_BANK_PHONE),
    (LUCAS_ACCOUNT, "cpf", LUCAS_CPF),  # his own CPF, held at another bank
])
def test_a_key_held_at_another_bank_cannot_be_created_here(client, account, key_type, value):
    answer = create_key(client, account, key_type, value)
    assert (answer.status_code, answer.json()["code"]) == (400, "PIX000065")


def test_an_entry_added_is_found_and_taken(client):
    created = client.post("/__admin/dict/entries", json=ENTRY)
    assert created.status_code == 201, created.text
    assert created.json() == ENTRY | {"created_at": created.json()["created_at"]}
    assert lookup(client, ENTRY["pix_key"]).json()["name"] == "RAFAEL COSTA"
    assert create_key(client, NATURAL_ACCOUNT, "email", ENTRY["pix_key"]).json()["code"] == "PIX000065"
    assert ENTRY["pix_key"] in [e["pix_key"] for e in client.get("/__admin/dict/entries").json()["dict_entries"]]
    assert client.post("/__admin/reset").status_code == 200
    assert lookup(client, ENTRY["pix_key"]).json()["exists"] is False  # until the reset


def test_an_entry_is_refused_for_a_key_held(client):
    assert client.post("/__admin/dict/entries", json=ENTRY | {"pix_key": OTHER_BANK_EMAIL}).status_code == 409
    create_key(client, NATURAL_ACCOUNT, "email", "pending@example.com")  # being created: held
    answer = client.post("/__admin/dict/entries", json=ENTRY | {"pix_key": "pending@example.com"})
    assert (answer.status_code, answer.json()["code"]) == (409, "SBX000409")


@pytest.mark.parametrize("change", [
    {"pix_key": "Rafael@example.com"},
    {"pix_key_type": "cpf", "pix_key": "81563500221"},  # not the owner's document
    {"pix_key_type": "cnpj", "pix_key": "91318609151"},
    {"owner_document_number": "91318609150"},
    {"ispb": "32402502"},  # the sandbox's own institution
    {"pix_key_type": "random_key", "pix_key": "not-a-uuid"},
    {"ispb": "123"},
    {"unknown": 1},
])
def test_a_bad_entry_is_refused(client, change):
    answer = client.post("/__admin/dict/entries", json=ENTRY | change)
    assert (answer.status_code, answer.json()["code"]) == (400, "SBX000400"), answer.text


def test_a_broken_dict_entries_fixture_stops_the_start_with_file_and_line(tmp_path):
    import shutil

    from baas_sandbox.app import create_app
    from baas_sandbox.services.sandbox import Settings

    fixtures = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", fixtures)
    text = (fixtures / "dict_entries.yaml").read_text()
    text = text.replace('owner_document_number: "65260181573"', 'owner_document_number: "65260181570"')
    text = text.replace("pix_key: joana.martins@example.com\n    pix_key_type: email",  # a fixture request's
                        "pix_key: \"+5511912345678\"\n    pix_key_type: phone_number")
    text += "\n  - {pix_key: \"71234567857\", pix_key_type: cpf, owner_name: X, " \
            "owner_document_number: \"71234567857\", owner_person_type: natural, ispb: \"60701190\", " \
            "bank_name: B, account_number: \"1\"}\n"
    (fixtures / "dict_entries.yaml").write_text(text)
    with pytest.raises(Exception) as raised:
        create_app(Settings(fixtures_dir=fixtures))
    problems = [str(p) for p in raised.value.problems]
    assert any(re.search(r"dict_entries\.yaml:\d+: dict_entries\[0\]\.owner_document_number: 65260181570", p)
               for p in problems), problems
    assert any(re.search(r"dict_entries\.yaml:\d+: dict_entries\[1\]\.pix_key: .*key_requests", p)
               for p in problems), problems
    assert any(re.search(r"dict_entries\.yaml:\d+: dict_entries\[4\]\.pix_key: held by another DICT entry", p)
               for p in problems), problems


def test_a_broken_active_key_fixture_is_reported(tmp_path):
    import shutil

    from baas_sandbox.app import create_app
    from baas_sandbox.services.sandbox import Settings

    fixtures = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", fixtures)
    text = (fixtures / "key_requests.yaml").read_text()
    text = text.replace("    request_status: approved\n", "    request_status: approved\n    verification_code: \"123456\"\n", 1)
    (fixtures / "key_requests.yaml").write_text(text)
    with pytest.raises(Exception) as raised:
        create_app(Settings(fixtures_dir=fixtures))
    assert any("key_requests[1].verification_code: an active key" in str(p) for p in raised.value.problems)


# -- a fixed verification code ------------------------------------------------------------------------------


def test_a_fixed_verification_code_is_every_code(client_with):
    with client_with(fixed_verification_code="329329") as client:
        request_key = create_key(client, NATURAL_ACCOUNT, "email", "maria@example.com").json()["pix_key_request_key"]
        assert latest_code(client, request_key) == "329329"
        assert client.patch(f"/baas/pix/keys/{request_key}/resend_twofa", json={}, headers=ORG_A).status_code == 200
        assert latest_code(client, request_key) == "329329"
        assert client.patch(f"/baas/pix/keys/{request_key}/twofa_validation", json={"verification_code": "329329"},
                            headers=ORG_A).status_code == 200
        assert latest_code(client, "f6209b7e-82da-44a8-9cfa-6ad0a689adb2") == "329329"  # the fixture's too


@pytest.mark.parametrize("value", ["32932", "3293290", "abcdef", "３２９３２９", ""])
def test_the_fixed_code_option_takes_six_digits(value, capsys):
    from baas_sandbox import cli

    with pytest.raises(SystemExit) as raised:
        cli.parse(["serve", "--fixed-verification-code", value])
    assert raised.value.code == 2 and "6 digits" in capsys.readouterr().err
    assert cli.parse(["serve", "--fixed-verification-code", "329329"]).fixed_verification_code == "329329"


# -- alphanumeric CNPJs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("number,valid", [
    ("12ABC34501DE35", True),  # the Receita Federal's published example (12.ABC.345/01DE-35)
    ("AB1CD2EF000170", True),
    ("09080702000105", True),
    ("12ABC34501DE36", False),
    ("12abc34501de35", False),  # lower case is not the CNPJ's form
    ("12ABC34501DEA5", False),  # check digits are digits
    ("12.ABC.345/01DE-35", False),
])
def test_alphanumeric_cnpj_check_digits(number, valid):
    assert is_valid_cnpj(number) is valid


def test_an_account_and_its_key_with_an_alphanumeric_cnpj(client):
    account = client.post("/__admin/accounts", json={
        "owner_name": "EMPRESA NOVA LTDA", "owner_document_number": "12ABC34501DE35", "owner_person_type": "legal",
        "status": "open", "tenant": "org-a"})
    assert account.status_code == 201, account.text
    answer = create_key(client, account.json()["account_key"], "cnpj", "12ABC34501DE35")
    assert answer.status_code == 201, answer.text
    bad = client.post("/__admin/accounts", json={
        "owner_name": "X", "owner_document_number": "12ABC34501DE36", "owner_person_type": "legal",
        "status": "open", "tenant": "org-a"})
    assert bad.status_code == 400
    wrong = create_key(client, ALNUM_ACCOUNT, "cnpj", "12ABC34501DE35")
    assert wrong.json()["code"] == "PIX000020"


def test_the_fixture_account_with_an_alphanumeric_cnpj_has_its_keys(client):
    listed = {k["pix_key"]: k["pix_key_status"] for k in listed_keys(client, ALNUM_ACCOUNT)}
    # its CNPJ is claimed by another bank (fixtures/claims.yaml): locked until the claim ends
    assert listed == {FIXTURE_EMAIL: "active", ALNUM_CNPJ: "pending_claim_request_confirmation"}


# -- hostile input ------------------------------------------------------------------------------------------

HOSTILE = ["..%2F..%2Fetc%2Fpasswd", "..", "%2E%2E", "%00", "%20", "a" * 10_000, "é@example.com",
           "%F0%9F%98%80", "ana%40example.com%0A", "81563500221%0A", "<script>", "'%20OR%201=1",
           "%2B5511987654321%00", "%FF%FE", "null", "-1", "1e400", "\\u0000", "%25", "ana@example.com?x=1"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_keys_never_crash(client, value):
    for answer in (client.get(f"/baas/pix/keys/{value}", params={"account_key": SEED_ACCOUNT}, headers=ORG_A),
                   client.get(f"/baas/pix/keys/{value}", headers=ORG_A),
                   client.get(f"/baas/pix/keys/{value}", params={"account_key": "../x"}, headers=ORG_A),
                   client.delete(f"/baas/pix/keys/{value}", headers=ORG_A)):
        assert answer.status_code < 500, (value, answer.status_code, answer.text)
        assert answer.headers["content-type"].startswith("application/json")
        answer.json()


def test_hostile_list_statuses_never_crash(client):
    for status in ["é", "a" * 10_000, "%00", "active%0A", "active&pix_key_status=inactive"]:
        answer = client.get(f"/baas/pix/keys?account_key={SEED_ACCOUNT}&pix_key_status={status}", headers=ORG_A)
        assert answer.status_code in (200, 400), answer.text


def test_the_deletion_routes_do_not_clash_with_the_twofa_routes(client):
    request_key = "f6209b7e-82da-44a8-9cfa-6ad0a689adb2"  # fixture: waiting for its code
    resent = client.patch(f"/baas/pix/keys/{request_key}/resend_twofa", json={}, headers=ORG_A)
    assert resent.status_code == 200
    # a request key is no Pix key: a lookup of it is a random key not registered
    assert lookup(client, request_key).json() == {"exists": False, "pix_key": request_key}
    assert client.patch(f"/baas/pix/keys/{FIXTURE_EMAIL}", headers=ORG_A).status_code == 405
    assert client.delete(f"/baas/pix/keys/{request_key}/twofa_validation", headers=ORG_A).status_code == 405


def test_the_claim_lock_status_is_in_the_vocabulary(client):
    answer = client.get("/baas/pix/keys", params={"account_key": ALNUM_ACCOUNT,
                                                  "pix_key_status": "pending_claim_request_confirmation"},
                        headers=ORG_A)
    assert [k["pix_key"] for k in answer.json()["pix_keys"]] == [ALNUM_CNPJ]


def test_the_claim_error_has_its_code():
    assert errors.KeyClaimNotFinished(pix_key="x").code == "PIX000072"
