"""POST /banking-auth/v1/credentials, as a client sees it."""

from __future__ import annotations

import logging

import pytest

from baas_sandbox.domain.model import SUPPORTED_PROVIDERS
from tests.helpers import ORG_A, ORG_B, run

URL = "/banking-auth/v1/credentials"
HEADERS = ORG_A | {"account_token": "Your account token"}

# Seed 001's schema example and seed 000's sample request, verbatim.
SEED_001 = {"key": "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf", "provider": "BTG", "type": "PIX",
            "provider_data": {"client_id": "Your client ID"}}
SEED_000 = {"key": "71069360002100", "provider": "CELCOIN", "type": "PIX",
            "provider_data": {"client_id": "Jk10014812-4785-1293-cded-3683ce1fdwjdj"}}


def save(client, body, headers=HEADERS):
    return client.post(URL, json=body, headers=headers)


@pytest.mark.parametrize("body", [SEED_001, SEED_000], ids=["seed-001", "seed-000"])
def test_seed_requests_are_saved_with_a_proxy_value(client, body):
    response = save(client, body)
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved["message"] == "Credential saved"
    assert saved["proxy_value"].startswith("prx_")
    assert body["key"] not in response.text


def test_replacing_a_credential_gives_a_new_proxy_value(client):
    first = save(client, SEED_001).json()["proxy_value"]
    second = save(client, SEED_001 | {"key": "another-key"}).json()["proxy_value"]
    assert first != second
    stored = run(client.sandbox.store.credential("org-a", "BTG", "PIX"))
    assert stored.proxy_value == second


def test_the_key_is_encrypted_at_rest(client):
    save(client, SEED_001)
    stored = run(client.sandbox.store.credential("org-a", "BTG", "PIX"))
    assert SEED_001["key"].encode() not in stored.sealed_key
    assert client.sandbox.vault.open(stored.sealed_key, "org-a/BTG/PIX") == SEED_001["key"]


def test_the_key_never_reaches_logs_or_admin(client, caplog):
    secret = "S3cr3t-never-shown-0001"
    with caplog.at_level(logging.DEBUG):
        assert save(client, SEED_001 | {"key": secret}).status_code == 201
        assert save(client, SEED_001 | {"key": secret, "provider": "NOPE"}).status_code == 400
    assert secret not in caplog.text
    for path in ("/__admin/accounts", "/__admin/outbox", "/__admin/webhooks"):
        assert secret not in client.get(path).text


def test_a_secret_breaking_the_schema_is_not_echoed_in_the_error(client):
    secret = "x" * 4097
    response = save(client, SEED_001 | {"key": secret})
    assert response.status_code == 400
    assert response.json()["code"] == "EBAA0004"
    assert secret not in response.text
    assert "at most 4096 characters" in response.json()["details"]


def test_credentials_are_kept_per_tenant(client):
    save(client, SEED_000)
    save(client, SEED_000 | {"key": "org-b-key"}, headers=ORG_B | {"account_token": "t"})
    a = run(client.sandbox.store.credential("org-a", "CELCOIN", "PIX"))
    b = run(client.sandbox.store.credential("org-b", "CELCOIN", "PIX"))
    assert a.proxy_value != b.proxy_value


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [("provider", "FOO"), ("type", "CARDS"), ("key", 42),
                                         ("provider_data", "not-an-object")])
def test_EBAA0004_invalid_payload(client, field, value):
    response = save(client, SEED_001 | {field: value})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "EBAA0004"
    assert body["message"] == "Invalid payload"
    assert body["details"].startswith(field)


def test_EBAA0004_body_that_is_not_json(client):
    response = client.post(URL, content=b"{not json", headers=HEADERS | {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "EBAA0004"
    assert "not valid JSON" in response.json()["details"]


@pytest.mark.parametrize("missing", [["key"], ["provider", "type"], ["key", "provider", "type"]])
def test_EBAA0005_lists_every_missing_field(client, missing):
    body = {k: v for k, v in SEED_001.items() if k not in missing}
    response = save(client, body)
    assert response.status_code == 400
    assert response.json() == {"code": "EBAA0005",
                               "message": f"Invalid payload. Required fields: [{', '.join(missing)}]"}


def test_EBAA0005_for_an_empty_body(client):
    response = client.post(URL, headers=HEADERS | {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid payload. Required fields: [key, provider, type]"


def test_EBAA0005_for_a_missing_account_token_header(client):
    response = save(client, SEED_001, headers=ORG_A)
    assert response.status_code == 400
    assert response.json() == {"code": "EBAA0005", "message": "Invalid payload. Required fields: [account_token]"}


UNSUPPORTED = [(t, p) for t in SUPPORTED_PROVIDERS for p in ("BTG", "CELCOIN", "JDPI", "PAY2ALL")
               if p not in SUPPORTED_PROVIDERS[t]]
SUPPORTED = [(t, p) for t, providers in SUPPORTED_PROVIDERS.items() for p in sorted(providers)]


def test_the_pairs_table_is_the_documented_one():
    assert SUPPORTED == [("PIX", "BTG"), ("PIX", "CELCOIN"), ("PIX", "JDPI"),
                         ("BAAS", "BTG"), ("BAAS", "CELCOIN"), ("PAY2ALL", "PAY2ALL")]


@pytest.mark.parametrize("integration_type,provider", SUPPORTED)
def test_supported_pairs_are_saved(client, integration_type, provider):
    response = save(client, {"key": "k-1", "provider": provider, "type": integration_type})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("integration_type,provider", UNSUPPORTED)
def test_EBAA0007_unsupported_pairs(client, integration_type, provider):
    response = save(client, {"key": "k-1", "provider": provider, "type": integration_type})
    assert response.status_code == 400
    assert response.json() == {"code": "EBAA0007",
                               "message": f"Unsupported Type: ({integration_type}) and Provider ({provider})"}


@pytest.mark.parametrize("provider,integration_type", [("BTG", "PIX"), ("CELCOIN", "BAAS"), ("PAY2ALL", "PAY2ALL")])
def test_EBAA0018_provider_refuses_the_key(client, provider, integration_type):
    response = save(client, {"key": "invalid-key", "provider": provider, "type": integration_type})
    assert response.status_code == 400
    assert response.json() == {"code": "EBAA0018", "message": f"{provider} - API Invalid credential"}
    assert run(client.sandbox.store.credential("org-a", provider, integration_type)) is None


def test_a_refused_key_keeps_the_previous_credential(client):
    proxy = save(client, SEED_001).json()["proxy_value"]
    assert save(client, SEED_001 | {"key": "invalid-now"}).status_code == 400
    assert run(client.sandbox.store.credential("org-a", "BTG", "PIX")).proxy_value == proxy


def test_EBAA0002_provider_outage(client):
    response = save(client, SEED_001 | {"key": "unavailable-1"})
    assert response.status_code == 502
    assert response.json() == {"code": "EBAA0002", "message": "Bad Gateway Error"}


def test_EBAA0003_provider_timeout(client):
    response = save(client, SEED_001 | {"key": "timeout-1"})
    assert response.status_code == 504
    assert response.json() == {"code": "EBAA0003", "message": "Gateway Timeout"}


def test_EBAA0014_provider_not_configured_for_the_tenant(client):
    response = save(client, SEED_001, headers=ORG_B | {"account_token": "t"})
    assert response.status_code == 500
    assert response.json() == {"code": "EBAA0014", "message": "BTG - API configuration not found"}


@pytest.mark.parametrize("code", ["EPIX0005", "EBAA0009", "EBAA0010", "EBAA0011", "EBAA0012"])
def test_internal_failures_on_purpose_with_prefer(client, code):
    response = client.post(URL, json=SEED_001, headers=HEADERS | {"Prefer": f"code=500, example={code}"})
    assert response.status_code == 500
    assert response.json()["code"] == code
    assert run(client.sandbox.store.credential("org-a", "BTG", "PIX")) is None  # the handler did not run
