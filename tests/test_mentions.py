"""Injected answers (``Prefer``, scenarios) name the request's values, not the spec example's."""

from __future__ import annotations

import uuid

from tests.helpers import NATURAL_ACCOUNT, ORG_A, SEED_ACCOUNT

EXAMPLE_ACCOUNT = SEED_ACCOUNT  # the account the spec's PIX000014 example names


def test_an_injected_key_limit_names_the_requests_account(client):
    answer = client.post("/baas/pix/keys", headers=ORG_A | {"Prefer": "code=400, example=PIX000014"},
                         json={"account_key": NATURAL_ACCOUNT, "pix_key_type": "random_key"})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "PIX000014"
    assert body["description"] == f"A conta {NATURAL_ACCOUNT} já atingiu o número máximo de chaves pix."
    assert body["translation"] == body["description"]
    assert EXAMPLE_ACCOUNT not in answer.text


def test_a_scenarios_example_names_the_requests_account(client):
    answer = client.post("/baas/pix/keys", headers=ORG_A | {"X-Sandbox-Scenario": "limits-reached"},
                         json={"account_key": NATURAL_ACCOUNT, "pix_key_type": "random_key"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "PIX000014"
    assert NATURAL_ACCOUNT in answer.json()["description"] and EXAMPLE_ACCOUNT not in answer.text


def test_an_injected_success_names_the_requests_key_and_account(client):
    answer = client.post("/baas/pix/keys", headers=ORG_A | {"Prefer": "code=201"},
                         json={"account_key": NATURAL_ACCOUNT, "pix_key_type": "email", "pix_key": "ana@example.com"})
    assert answer.status_code == 201
    body = answer.json()
    assert body["account_key"] == NATURAL_ACCOUNT
    assert body["pix_key"]["account_key"] == NATURAL_ACCOUNT
    assert (body["pix_key"]["pix_key"], body["pix_key"]["pix_key_type"]) == ("ana@example.com", "email")


def test_a_path_value_is_named_too(client):
    request_key = str(uuid.uuid4())
    answer = client.patch(f"/baas/pix/keys/{request_key}/resend_twofa", json={},
                          headers=ORG_A | {"Prefer": "code=404, example=PIX000008"})
    assert answer.status_code == 404
    assert request_key in answer.text


def test_a_credentials_example_names_the_requests_provider_and_type(client):
    answer = client.post("/banking-auth/v1/credentials",
                         headers=ORG_A | {"account_token": "t", "Prefer": "code=400, example=EBAA0007"},
                         json={"key": "k", "provider": "CELCOIN", "type": "BAAS"})
    assert answer.status_code == 400
    assert answer.json()["message"] == "Unsupported Type: (BAAS) and Provider (CELCOIN)"
