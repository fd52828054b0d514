"""Authentication, tracking_id, CORS, unknown routes and media types: each in its API's own body."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import ORG_A, SEED_ACCOUNT

CREDENTIALS = "/banking-auth/v1/credentials"
KEYS = "/baas/pix/keys"
CREDENTIAL = {"key": "k-1", "provider": "CELCOIN", "type": "PIX"}
BAD_TOKENS = {
    "missing": {},
    "unknown": {"Authorization": "Bearer org-z-token"},
    "malformed": {"Authorization": "Bearer"},
    "wrong scheme": {"Authorization": "Basic b3JnLWE6b3JnLWE="},
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_SBX000401_in_the_banking_auth_body(client, case):
    response = client.post(CREDENTIALS, json=CREDENTIAL, headers=BAD_TOKENS[case] | {"account_token": "t"})
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "SBX000401"
    assert set(body) <= {"code", "message", "details"}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_SBX000401_in_the_baas_body(client, case):
    response = client.get(KEYS, params={"account_key": SEED_ACCOUNT}, headers=BAD_TOKENS[case])
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "SBX000401"
    assert {"title", "description", "translation"} <= set(body)


def test_authentication_comes_before_validation(client):
    response = client.post(KEYS, json={"nonsense": True})
    assert response.status_code == 401


def test_the_admin_api_needs_no_token(client):
    assert client.get("/__admin/accounts").status_code == 200


def test_tracking_id_is_echoed(client):
    response = client.get(KEYS, params={"account_key": SEED_ACCOUNT},
                          headers=ORG_A | {"tracking_id": "1dd-dd84-cniidk-ioumjskd-87690"})
    assert response.headers["tracking_id"] == "1dd-dd84-cniidk-ioumjskd-87690"


@pytest.mark.parametrize("request_args", [
    ("GET", KEYS, {"params": {"account_key": SEED_ACCOUNT}, "headers": ORG_A}),  # handler answer
    ("GET", KEYS, {"params": {"account_key": SEED_ACCOUNT}}),                    # 401
    ("POST", CREDENTIALS, {"json": {}, "headers": ORG_A}),                       # 400
    ("GET", "/baas/pix/nowhere", {}),                                            # 404
])
def test_tracking_id_is_generated_on_every_product_answer(client, request_args):
    method, path, kwargs = request_args
    response = client.request(method, path, **kwargs)
    uuid.UUID(response.headers["tracking_id"])


def test_SBX000404_unknown_route_in_the_baas_body(client):
    response = client.get("/baas/pix/nowhere", headers=ORG_A)
    assert response.status_code == 404
    assert response.json()["code"] == "SBX000404"
    assert "title" in response.json()


def test_SBX000404_unknown_route_in_the_banking_auth_body(client):
    response = client.get("/banking-auth/v2/nothing", headers=ORG_A)
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message", "details"}


def test_SBX000405_method_not_allowed(client):
    response = client.delete(KEYS, headers=ORG_A)
    assert response.status_code == 405
    assert response.json()["code"] == "SBX000405"


@pytest.mark.parametrize("path,body_format", [(CREDENTIALS, {"code", "message", "details"}),
                                              (KEYS, {"title", "description", "translation", "code"})])
def test_SBX000415_body_must_be_json(client, path, body_format):
    response = client.post(path, content=b"key=1", headers=ORG_A | {"account_token": "t",
                                                                     "Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["code"] == "SBX000415"
    assert set(response.json()) == body_format


def test_cors_allows_localhost_origins(client):
    response = client.options(KEYS, headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    answer = client.get(KEYS, params={"account_key": SEED_ACCOUNT}, headers=ORG_A | {"Origin": "http://127.0.0.1:3000"})
    assert answer.headers["access-control-allow-origin"] == "http://127.0.0.1:3000"
    assert "tracking_id" in answer.headers["access-control-expose-headers"]


def test_cors_refuses_other_origins(client):
    response = client.options(KEYS, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_origins_are_configurable(client_with):
    with client_with(cors_origin_regex=r"^https://app\.partner\.example$") as client:
        allowed = client.get("/__admin/accounts", headers={"Origin": "https://app.partner.example"})
        local = client.get("/__admin/accounts", headers={"Origin": "http://localhost:5173"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.partner.example"
    assert "access-control-allow-origin" not in local.headers


def test_swagger_ui_serves_both_specs(client):
    assert client.get("/ui/").status_code == 200
    assert client.get("/__admin/ui/").status_code == 200
    assert client.get("/openapi.json").json()["paths"].keys() >= {CREDENTIALS, KEYS}
    assert "/reset" in client.get("/__admin/openapi.json").json()["paths"]


@pytest.mark.parametrize("pix_key_type", [{"a": 1}, ["cpf"], 7, None])
def test_a_discriminator_of_the_wrong_type_is_a_clear_400(client, pix_key_type):
    """Found by schemathesis: an object as pix_key_type used to crash the validator."""
    response = client.post(KEYS, json={"account_key": SEED_ACCOUNT, "pix_key_type": pix_key_type}, headers=ORG_A)
    assert response.status_code == 400
    assert response.json()["code"] == "SBX000400"
    assert response.json()["extra_fields"]["violations"][0]["field"] == "pix_key_type"


@pytest.mark.parametrize("key_type,value", [("email", "dup@example.com"), ("phone_number", "+5511987654321")])
def test_a_trailing_newline_does_not_make_another_key(client, key_type, value):
    """Found in review: Python's `$` matched before a final newline, so "x\\n" was a second key."""
    first = client.post(KEYS, json={"account_key": SEED_ACCOUNT, "pix_key_type": key_type, "pix_key": value},
                        headers=ORG_A)
    assert first.status_code == 201
    second = client.post(KEYS, json={"account_key": SEED_ACCOUNT, "pix_key_type": key_type,
                                      "pix_key": value + "\n"}, headers=ORG_A)
    assert second.status_code == 400
    assert second.json()["code"] == "SBX000400"


@pytest.mark.parametrize("method,path", [("POST", "/banking-auth/v1/credentials/"), ("GET", "/baas/pix/keys/"),
                                         ("POST", "/__admin/reset/")])
def test_a_trailing_slash_is_not_redirected(client, method, path):
    """Found in review: starlette answered 307 (undocumented) and a client following it re-POSTed."""
    response = client.request(method, path, headers=ORG_A, follow_redirects=False)
    assert response.status_code == 404
    assert response.json()["code"] == "SBX000404"
    assert client.get("/ui/").status_code == 200  # Swagger UI keeps its slash
