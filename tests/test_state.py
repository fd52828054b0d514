"""Snapshots: GET|PUT /__admin/state, and `serve --state-file` (loaded at start, saved at shutdown
and periodically)."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    NATURAL_ACCOUNT,
    NATURAL_CPF,
    ORG_A,
    SEED_ACCOUNT,
    SEED_CNPJ,
    create_key,
    key_status,
    listed_keys,
    wait_until,
)

PROVIDER_KEY = "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf-snapshot-secret"
WEBHOOK_SECRET = "whsec_snapshot_test_secret_never_exported"
COMMAND = [sys.executable, "-m", "baas_sandbox"]


def ns(name: str) -> dict:
    return {"X-Sandbox-Namespace": name}


def valid_cpf(seed: int, first: str = "7") -> str:
    """A valid CPF (check digits computed) beginning with ``first``: DICT approves 0 and 6-9."""
    base = [int(d) for d in f"{first}{seed:08d}"]
    for length in (9, 10):
        total = sum(d * w for d, w in zip(base, range(length + 1, 1, -1)))
        base.append((total * 10 % 11) % 10)
    return "".join(map(str, base))


def account_entry(index: int, **fields) -> dict:
    return {"account_key": f"00000000-0000-4000-8000-{index:012d}", "tenant": "org-a",
            "owner_name": f"PESSOA {index}", "owner_document_number": valid_cpf(index),
            "owner_person_type": "natural", "owner_person_key": f"11111111-0000-4000-8000-{index:012d}",
            "owner_person_registered": True, "trading_name": None, "status": "open", "branch_number": "0001",
            "account_number": "1234567", "account_digit": "1", "account_type": "checking",
            "created_at": "2026-01-01T00:00:00"} | fields


def make_state(client, namespace: str) -> dict:
    """A namespace with a bit of everything: a credential, an active CNPJ key, an email key waiting
    for its code (one wrong code sent), an admin-made account, a subscription, a frozen clock."""
    headers = ORG_A | ns(namespace)
    saved = client.post("/banking-auth/v1/credentials", headers=headers | {"account_token": "t"},
                        json={"key": PROVIDER_KEY, "provider": "BTG", "type": "PIX",
                              "provider_data": {"client_id": "cid"}})
    assert saved.status_code == 201, saved.text
    made = client.post("/__admin/accounts", headers=ns(namespace), json={
        "owner_name": "ANA NOVA", "owner_document_number": valid_cpf(42), "owner_person_type": "natural",
        "status": "open", "tenant": "org-a"})
    assert made.status_code == 201, made.text
    cnpj = create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ, headers=headers).json()
    wait_until(lambda: key_status(client, SEED_ACCOUNT, cnpj["pix_key_request_key"], headers) == "active")
    email = create_key(client, NATURAL_ACCOUNT, "email", "maria.snapshot@example.com", headers=headers).json()
    cpf = create_key(client, NATURAL_ACCOUNT, "cpf", NATURAL_CPF, headers=headers).json()
    wait_until(lambda: key_status(client, NATURAL_ACCOUNT, cpf["pix_key_request_key"], headers) == "active")
    subscribed = client.post("/__admin/webhooks/subscriptions", headers=ns(namespace),
                             json={"url": "http://127.0.0.1:9/hook", "events": ["key_inclusion"],
                                   "secret": WEBHOOK_SECRET})
    assert subscribed.status_code == 201, subscribed.text
    return {"account": made.json()["account_key"], "email": email["pix_key_request_key"],
            "cpf": cpf["pix_key_request_key"], "cnpj": cnpj["pix_key_request_key"]}


def state_of(client, namespace: str) -> dict:
    answer = client.get("/__admin/state", headers=ns(namespace))
    assert answer.status_code == 200, answer.text
    return answer.json()


def put_state(client, namespace: str, document) -> httpx.Response:
    return client.put("/__admin/state", headers=ns(namespace), json=document)


# -- export and import ------------------------------------------------------------------------------


def test_a_snapshot_put_into_another_namespace_answers_the_same(client):
    made = make_state(client, "source")
    snapshot = state_of(client, "source")
    assert snapshot["format"] == "baas-sandbox.namespace-state/1"

    answer = put_state(client, "copy", snapshot)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accounts"] == len(snapshot["accounts"])

    assert state_of(client, "copy") == snapshot
    for namespace in ("source", "copy"):
        assert made["account"] in {a["account_key"] for a in
                                   client.get("/__admin/accounts", headers=ns(namespace)).json()["accounts"]}
    assert (client.get("/__admin/accounts", headers=ns("copy")).json()
            == client.get("/__admin/accounts", headers=ns("source")).json())
    for account in (SEED_ACCOUNT, NATURAL_ACCOUNT, made["account"]):
        assert listed_keys(client, account, ORG_A | ns("copy")) == listed_keys(client, account, ORG_A | ns("source"))

    # The email request still waits for its code, and the code sent before the copy works there.
    code = client.get("/__admin/outbox", headers=ns("copy"),
                      params={"pix_key_request_key": made["email"]}).json()["messages"][-1]["verification_code"]
    validated = client.patch(f"/baas/pix/keys/{made['email']}/twofa_validation", headers=ORG_A | ns("copy"),
                             json={"verification_code": code})
    assert validated.status_code == 200, validated.text
    wait_until(lambda: key_status(client, NATURAL_ACCOUNT, made["email"], ORG_A | ns("copy")) == "active")
    # ... in the copy only: the source is its own namespace
    assert key_status(client, NATURAL_ACCOUNT, made["email"], ORG_A | ns("source")) == "pending_confirmation"


def test_a_snapshot_keeps_counts_codes_and_the_clock(client):
    headers = ORG_A | ns("counts")
    assert client.put("/__admin/clock", headers=ns("counts"), json={"frozen": True}).status_code == 200
    request = create_key(client, NATURAL_ACCOUNT, "phone_number", "+5511987654321", headers=headers).json()
    key = request["pix_key_request_key"]
    for _ in range(2):
        wrong = client.patch(f"/baas/pix/keys/{key}/twofa_validation", headers=headers,
                             json={"verification_code": "000000"})
        assert wrong.status_code in (400, 200)
    snapshot = state_of(client, "counts")
    entry = next(r for r in snapshot["key_requests"] if r["pix_key_request_key"] == key)
    assert entry["wrong_codes"] == 2 and entry["validation_due"] and entry["verification_code"]["channel"] == "sms"
    assert snapshot["clock"]["frozen_at"] is not None
    assert any(job["subject"] == key and job["kind"] == "end-validation-window" for job in snapshot["due_jobs"])

    random_key = create_key(client, SEED_ACCOUNT, "random_key", headers=headers).json()["pix_key_request_key"]
    snapshot = state_of(client, "counts")  # the clock frozen: its decision waits (a due job)
    assert any(job["subject"] == random_key and job["kind"] == "decide-key-request" for job in snapshot["due_jobs"])

    assert put_state(client, "counts-copy", snapshot).status_code == 200
    copy_headers = ORG_A | ns("counts-copy")
    assert client.get("/__admin/clock", headers=ns("counts-copy")).json()["frozen"] is True
    assert key_status(client, SEED_ACCOUNT, random_key, copy_headers) == "pending_confirmation"
    assert client.put("/__admin/clock", headers=ns("counts-copy"), json={"frozen": False}).status_code == 200
    wait_until(lambda: key_status(client, SEED_ACCOUNT, random_key, copy_headers) == "active")
    assert key_status(client, SEED_ACCOUNT, random_key, headers) == "pending_confirmation"  # the source's frozen
    # Three more wrong codes reject it: the two before were carried over.
    answers = [client.patch(f"/baas/pix/keys/{key}/twofa_validation", headers=copy_headers,
                            json={"verification_code": "000000"}).status_code for _ in range(3)]
    assert answers == [400, 400, 429]


def test_no_secret_is_in_a_snapshot(client):
    make_state(client, "secrets")
    text = client.get("/__admin/state", headers=ns("secrets")).text
    assert PROVIDER_KEY not in text
    assert WEBHOOK_SECRET not in text
    assert "whsec_" not in text and "secret" not in text
    snapshot = json.loads(text)
    assert set(snapshot["credentials"][0]) == {"tenant", "provider", "type", "proxy_value", "saved_at"}


def test_an_imported_credential_has_no_key_and_is_replaced_by_the_next_save(client):
    make_state(client, "cred-src")
    assert put_state(client, "cred-dst", state_of(client, "cred-src")).status_code == 200
    again = client.post("/banking-auth/v1/credentials", headers=ORG_A | ns("cred-dst") | {"account_token": "t"},
                        json={"key": "another", "provider": "BTG", "type": "PIX"})
    assert again.status_code == 201
    events = client.get("/__admin/events", headers=ns("cred-dst"), params={"type": "credential_replaced"})
    assert len(events.json()["events"]) == 1


def test_a_subscriptions_secret_is_kept_in_place_given_on_put_or_new(client):
    make_state(client, "hooks")
    snapshot = state_of(client, "hooks")

    def secrets_of(namespace: str) -> list[str]:
        return [s["secret"] for s in
                client.get("/__admin/webhooks/subscriptions", headers=ns(namespace)).json()["subscriptions"]]

    assert put_state(client, "hooks", snapshot).status_code == 200  # put back where it was taken
    assert secrets_of("hooks") == [WEBHOOK_SECRET]
    assert put_state(client, "hooks-new", snapshot).status_code == 200  # elsewhere: a new secret
    assert secrets_of("hooks-new") != [WEBHOOK_SECRET] and secrets_of("hooks-new")[0].startswith("whsec_")
    # the same URL and events there (a webhooks.yaml subscription, say): its secret stays
    assert client.post("/__admin/webhooks/subscriptions", headers=ns("hooks-there"),
                       json={"url": "http://127.0.0.1:9/hook", "events": ["key_inclusion"],
                             "secret": "whsec_configured_there"}).status_code == 201
    assert put_state(client, "hooks-there", snapshot).status_code == 200
    assert secrets_of("hooks-there") == ["whsec_configured_there"]
    given = copy.deepcopy(snapshot)
    given["webhook_subscriptions"][0]["secret"] = "whsec_given"
    assert put_state(client, "hooks-given", given).status_code == 200
    assert secrets_of("hooks-given") == ["whsec_given"]


# -- refusals ---------------------------------------------------------------------------------------


def test_an_invalid_document_is_refused_with_every_problem_and_nothing_changes(client):
    make_state(client, "bad")
    before = state_of(client, "bad")
    broken = copy.deepcopy(before)
    broken["accounts"][0]["tenant"] = "org-z"
    broken["accounts"][1]["owner_document_number"] = "12345678900"
    broken["accounts"][2]["status"] = 5
    broken["accounts"].append(copy.deepcopy(broken["accounts"][3]))  # the same account_key twice
    request = broken["key_requests"][0]
    request["account_key"] = "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"
    twin = copy.deepcopy(next(r for r in broken["key_requests"] if r["pix_key_type"] == "cnpj"))
    twin["pix_key_request_key"] = "aaaaaaaa-0000-4000-8000-000000000001"
    broken["key_requests"].append(twin)  # the same key claimed twice
    broken["due_jobs"].append({"due_at": "2026-12-02T10:00:00Z", "kind": "decide-key-request",
                               "subject": "bbbbbbbb-0000-4000-8000-000000000002"})
    broken["credentials"][0]["key"] = "smuggled"

    answer = put_state(client, "bad", broken)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "SBX000400" and body["message"] == "Invalid request"
    assert "nothing was changed" in body["details"]
    pointers = {p["pointer"] for p in body["problems"]}
    last = len(broken["key_requests"]) - 1
    assert {"/accounts/0/tenant", "/accounts/1/owner_document_number", "/accounts/2/status",
            f"/accounts/{len(broken['accounts']) - 1}/account_key", "/key_requests/0/account_key",
            f"/key_requests/{last}/pix_key", f"/due_jobs/{len(broken['due_jobs']) - 1}/subject",
            "/credentials/0/key"} <= pointers, body["problems"]
    assert state_of(client, "bad") == before


def test_the_per_account_limit_and_statuses_that_do_not_fit_are_refused(client):
    snapshot = state_of(client, "limits")
    base = {"requester_key": "r", "pix_key_status": "active", "created_at": "2026-01-01T00:00:00",
            "updated_at": "2026-01-01T00:00:00", "key_updated_at": "2026-01-01T00:00:00",
            "request_failure_reason": None, "verification_code": None, "accepted_code": None, "cid": None,
            "history": [], "wrong_codes": 0, "codes_resent": 0, "validation_due": None,
            "account_key": NATURAL_ACCOUNT, "pix_key_type": "random_key", "request_status": "approved"}
    snapshot["key_requests"] = [base | {"pix_key_request_key": f"cccccccc-0000-4000-8000-{i:012d}",
                                        "pix_key": f"dddddddd-0000-4000-8000-{i:012d}"} for i in range(6)]
    snapshot["key_requests"][1]["request_status"] = "pending"  # a pending request's key is not active yet
    snapshot["key_requests"][1]["pix_key"] = None
    snapshot["key_requests"][2]["request_status"] = "pending_validation"
    snapshot["key_requests"][2]["pix_key_status"] = "pending_confirmation"
    snapshot["outbox"] = []
    answer = put_state(client, "limits", snapshot)
    assert answer.status_code == 400
    problems = {p["pointer"]: p["message"] for p in answer.json()["problems"]}
    assert "more than its 5 keys" in problems["/key_requests/5/account_key"]
    assert "/key_requests/1/pix_key_status" in problems
    assert "/key_requests/2/request_status" in problems


@pytest.mark.parametrize("body,status", [
    ([], 400),  # not an object
    ({"format": 1}, 400),
    ({"format": "baas-sandbox.namespace-state/1", "accounts": "many"}, 400),
])
def test_wrong_shapes_are_refused_never_a_500(client, body, status):
    before = state_of(client, "shapes")
    answer = put_state(client, "shapes", body)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == "SBX000400"
    assert state_of(client, "shapes") == before


def test_hostile_bodies_are_refused_by_the_json_limits(client):
    deep = '{"format": ' + "[" * 40 + "]" * 40 + "}"
    twice = '{"accounts": [], "accounts": []}'
    for raw in (deep, twice, "{", '{"format": NaN}'):
        answer = client.put("/__admin/state", content=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (raw[:40], answer.text)
        assert answer.json()["code"] == "SBX000400"


def test_an_account_nobody_references_is_fine(client):
    snapshot = state_of(client, "lonely")
    snapshot["accounts"].append(account_entry(1))
    assert put_state(client, "lonely", snapshot).status_code == 200
    assert len(client.get("/__admin/accounts", headers=ns("lonely")).json()["accounts"]) == len(snapshot["accounts"])


def accounts_held(client, namespace: str) -> int:
    listed = client.get("/__admin/namespaces").json()["namespaces"]
    return next(n["accounts"] for n in listed if n["name"] == namespace)


def test_ten_thousand_accounts(client_with):
    with client_with(max_body_size=16 * 1024 * 1024) as big:
        snapshot = state_of(big, "big")
        fixtures = list(snapshot["accounts"])
        snapshot["accounts"] += [account_entry(i) for i in range(10_000)]
        assert put_state(big, "big", snapshot).status_code == 200
        assert accounts_held(big, "big") == len(snapshot["accounts"])
        # every one wrong: 400, a hundred problems listed, the count said, nothing changed
        snapshot["accounts"] = fixtures + [account_entry(i, owner_document_number="12345678900")
                                           for i in range(10_001, 20_001)]
        answer = put_state(big, "big", snapshot)
        assert answer.status_code == 400
        body = answer.json()
        assert len(body["problems"]) == 100
        assert "10000 problems" in body["details"]
        assert accounts_held(big, "big") == len(fixtures) + 10_000


def test_a_body_over_the_limit_is_413(client):
    snapshot = state_of(client, "huge")
    snapshot["accounts"] += [account_entry(i) for i in range(5_000)]  # ~2.5 MB, over 1 MiB
    assert put_state(client, "huge", snapshot).status_code == 413


# -- the state file ---------------------------------------------------------------------------------


def serve(*args: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([*COMMAND, "serve", "--port", "0", "--log-level", "warning", "--no-reload",
                                "--activation-delay", "0.05", *args],
                               cwd=cwd, stderr=subprocess.PIPE, text=True)
    lines = []
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        match = re.search(r"baas-sandbox: serving on (http://\S+)", line)
        if match:
            return process, match.group(1)
    process.wait(timeout=30)
    raise AssertionError(f"serve ended without a banner: {''.join(lines)}")


def shut_down(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    process.send_signal(sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    assert process.returncode in (0, -sig), process.returncode  # uvicorn re-raises the signal it handled


def test_a_restarted_sandbox_keeps_its_accounts_and_keys_in_every_namespace(tmp_path):
    path = tmp_path / "state.json"
    process, url = serve("--state-file", str(path), "--state-save-interval", "3600", cwd=tmp_path)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            lists = {}
            for namespace in ("one", "two"):
                made = make_state(http, namespace)
                lists[namespace] = {
                    "accounts": http.get("/__admin/accounts", headers=ns(namespace)).json(),
                    "keys": {a: listed_keys(http, a, ORG_A | ns(namespace))
                             for a in (SEED_ACCOUNT, NATURAL_ACCOUNT, made["account"])},
                    "made": made,
                }
    finally:
        shut_down(process, signal.SIGINT)
    saved = json.loads(path.read_text())
    assert saved["format"] == "baas-sandbox.state-file/1" and {"one", "two"} <= set(saved["namespaces"])
    assert PROVIDER_KEY not in path.read_text() and WEBHOOK_SECRET not in path.read_text()

    process, url = serve("--state-file", str(path), cwd=tmp_path)
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            for namespace, seen in lists.items():
                assert http.get("/__admin/accounts", headers=ns(namespace)).json() == seen["accounts"]
                for account, keys in seen["keys"].items():
                    assert listed_keys(http, account, ORG_A | ns(namespace)) == keys
            # a code sent before the restart still confirms its key
            email = lists["one"]["made"]["email"]
            code = http.get("/__admin/outbox", headers=ns("one"),
                            params={"pix_key_request_key": email}).json()["messages"][-1]["verification_code"]
            assert http.patch(f"/baas/pix/keys/{email}/twofa_validation", headers=ORG_A | ns("one"),
                              json={"verification_code": code}).status_code == 200
    finally:
        shut_down(process)


@pytest.mark.parametrize("content,says", [
    (b'{"format": "baas-sandbox.state-file/1", "namespaces": {', "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"format": "baas-sandbox.state-file/1", "namespaces": {"x": {"format": "nope"}}}', "/namespaces/x"),
    (b'{"format": "baas-sandbox.state-file/1", "namespaces": {"bad name!": {}}}', "not a valid namespace name"),
])
def test_a_corrupt_state_file_stops_the_start_and_is_left_as_it_is(tmp_path, content, says):
    path = tmp_path / "state.json"
    path.write_bytes(content)
    result = subprocess.run([*COMMAND, "serve", "--port", "0", "--log-level", "warning", "--state-file", str(path)],
                            capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("baas-sandbox: cannot start: ") and str(path) in lines[0]
    assert says in lines[0] and "serving on" not in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == content


def test_a_state_file_in_a_folder_that_does_not_exist_stops_the_start(tmp_path):
    path = tmp_path / "nowhere" / "state.json"
    result = subprocess.run([*COMMAND, "serve", "--port", "0", "--log-level", "warning", "--state-file", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_state_is_saved_while_it_runs(tmp_path):
    path = tmp_path / "sub" / "state.json"
    path.parent.mkdir()
    process, url = serve("--state-file", str(path), "--state-save-interval", "0.1", cwd=tmp_path)
    try:
        wait_until(path.exists, timeout=10)  # a missing file is created at the first save
        with httpx.Client(base_url=url, timeout=10) as http:
            made = http.post("/__admin/accounts", headers=ns("live"), json={
                "owner_name": "SALVA", "owner_document_number": valid_cpf(7), "owner_person_type": "natural",
                "status": "open", "tenant": "org-a"}).json()

        def saved() -> bool:
            try:
                document = json.loads(path.read_text())
            except (OSError, ValueError):
                return False
            accounts = document["namespaces"].get("live", {}).get("accounts", [])
            return any(a["account_key"] == made["account_key"] for a in accounts)

        wait_until(saved, timeout=10)
        assert not [name for name in os.listdir(path.parent) if name.endswith(".tmp")]
    finally:
        shut_down(process)


def test_a_snapshot_carries_deleted_keys_dict_entries_and_buckets(client):
    """What the key lifecycle added to a namespace: a deleted key, a key held at another bank, a
    bucket spent by lookups: copied into another namespace, it answers the same."""
    from tests.test_lifecycle import FIXTURE_EMAIL, OTHER_BANK_PHONE

    src, dst = ns("lifecycle-src"), ns("lifecycle-dst")
    assert client.put("/__admin/clock", json={"frozen": True}, headers=src).status_code == 200
    deleted = client.delete(f"/baas/pix/keys/{FIXTURE_EMAIL}", headers=ORG_A | src)
    assert deleted.status_code == 200, deleted.text
    entry = {"pix_key": "+5511933334444", "pix_key_type": "phone_number", "owner_document_number": NATURAL_CPF,
             "owner_name": "OUTRA PESSOA", "owner_person_type": "natural", "ispb": "60746948",
             "bank_name": "BANCO BRADESCO S.A.", "branch_number": "0001", "account_number": "998877",
             "account_digit": "0", "account_type": "checking"}
    assert client.post("/__admin/dict/entries", json=entry, headers=src).status_code == 201
    for key in (OTHER_BANK_PHONE, "nobody@example.com"):
        assert client.get(f"/baas/pix/keys/{key}", params={"account_key": NATURAL_ACCOUNT},
                          headers=ORG_A | src).status_code == 200

    exported = client.get("/__admin/state", headers=src).json()
    imported = client.put("/__admin/state", json=exported, headers=dst)
    assert imported.status_code == 200, imported.text
    assert client.get("/__admin/state", headers=dst).json() == exported

    def seen(headers) -> tuple:
        buckets = client.get("/__admin/rate-limits", headers=headers).json()
        entries = client.get("/__admin/dict/entries", headers=headers).json()
        inactive = client.get("/baas/pix/keys", params={"account_key": "8e3f5a71-6c2b-4d9e-a1f0-2b3c4d5e6f09",
                                                        "pix_key_status": "inactive"}, headers=ORG_A | headers).json()
        found = client.get("/baas/pix/keys/+5511933334444", params={"account_key": NATURAL_ACCOUNT},
                           headers=ORG_A | headers).json()
        return buckets, entries, inactive, found["exists"]

    source, copied = seen(src), seen(dst)
    assert source[:3] == copied[:3] and source[3] is copied[3] is True
    assert [k["pix_key"] for k in copied[2]["pix_keys"]] == [FIXTURE_EMAIL]
    # the deleted key is free in the copy too
    again = client.post("/baas/pix/keys", json={"account_key": "8e3f5a71-6c2b-4d9e-a1f0-2b3c4d5e6f09",
                                                "pix_key_type": "email", "pix_key": FIXTURE_EMAIL},
                        headers=ORG_A | dst)
    assert again.status_code == 201, again.text


def test_a_dict_entry_that_clashes_with_a_held_key_is_refused(client):
    exported = client.get("/__admin/state").json()
    held = next(r for r in exported["key_requests"] if r["pix_key_status"] == "active")
    clash = dict(exported["dict_entries"][0]) | {"pix_key": held["pix_key"], "pix_key_type": held["pix_key_type"]}
    answer = client.put("/__admin/state", json=exported | {"dict_entries": [*exported["dict_entries"], clash]},
                        headers=ns("clash"))
    assert answer.status_code == 400, answer.text
    pointers = [p["pointer"] for p in answer.json()["problems"]]
    assert pointers == [f"/dict_entries/{len(exported['dict_entries'])}/pix_key"]
