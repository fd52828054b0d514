"""A partner's tests against the sandbox, with the ``baas_sandbox`` pytest fixture.

    pip install 'baas-sandbox[test]'      # the fixture comes with the package
    pytest examples/test_partner_example.py

``PixKeys`` below stands for the partner's own code: the client their app uses to talk to the
Pix key API. The tests drive it against a real sandbox, reset before each test; the fixture's
helpers do what the product API cannot (read the verification code "sent", add an account, force
an error scenario, wait for the asynchronous DICT decision).
"""

from __future__ import annotations

import time

import httpx
import pytest


class PixKeys:
    """The partner's client of the Pix key API (in a real project, imported from their app)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def register_email(self, account_key: str, email: str) -> dict:
        answer = self.http.post("/baas/pix/keys", json={"account_key": account_key, "pix_key_type": "email",
                                                        "pix_key": email})
        answer.raise_for_status()
        return answer.json()

    def confirm(self, request_key: str, code: str) -> dict:
        answer = self.http.patch(f"/baas/pix/keys/{request_key}/twofa_validation",
                                 json={"verification_code": code})
        answer.raise_for_status()
        return answer.json()

    def save_credential(self, provider: str, key: str) -> httpx.Response:
        return self.http.post("/banking-auth/v1/credentials", headers={"account_token": "t"},
                              json={"key": key, "provider": provider, "type": "PIX"})


@pytest.fixture
def pix(baas_sandbox) -> PixKeys:
    return PixKeys(baas_sandbox.url, baas_sandbox.token)


def test_an_email_key_is_active_once_confirmed(baas_sandbox, pix):
    account = baas_sandbox.create_account(owner_name="ANA SOUZA")
    request = pix.register_email(account["account_key"], "ana.souza@example.com")
    assert request["request_status"] == "pending_validation"

    code = baas_sandbox.last_verification_code(request["pix_key_request_key"])
    assert pix.confirm(request["pix_key_request_key"], code)["request_status"] == "pending"

    key = baas_sandbox.wait_for_key_status(account["account_key"], request["pix_key_request_key"], "active")
    assert key["pix_key"] == "ana.souza@example.com"


def test_a_wrong_code_is_refused(baas_sandbox, pix):
    account = baas_sandbox.create_account()
    request = pix.register_email(account["account_key"], "ana.souza@example.com")  # free again: reset
    code = baas_sandbox.last_verification_code(request["pix_key_request_key"])
    with pytest.raises(httpx.HTTPStatusError) as refused:
        pix.confirm(request["pix_key_request_key"], "000000" if code != "000000" else "111111")
    assert refused.value.response.json()["code"] == "2FA000400"


def test_a_key_dict_rejects_never_becomes_active(baas_sandbox, pix):
    account = baas_sandbox.create_account(dict_rejects=True)
    request = pix.register_email(account["account_key"], "joao@example.com")
    pix.confirm(request["pix_key_request_key"], baas_sandbox.last_verification_code(request["pix_key_request_key"]))
    with pytest.raises(AssertionError, match="not 'active'"):
        baas_sandbox.wait_for_key_status(account["account_key"], request["pix_key_request_key"], timeout=0.5)


def test_the_app_sees_the_provider_outage(baas_sandbox, pix):
    with baas_sandbox.scenarios("provider-outage"):
        assert pix.save_credential("BTG", "a-key").status_code == 502
    assert pix.save_credential("BTG", "a-key").status_code == 201


@pytest.mark.baas_sandbox(code_ttl=0.2)  # a sandbox of its own, where codes expire at once
def test_an_expired_code_is_gone(baas_sandbox, pix):
    account = baas_sandbox.create_account()
    request = pix.register_email(account["account_key"], "late@example.com")
    code = baas_sandbox.last_verification_code(request["pix_key_request_key"])
    time.sleep(0.3)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        pix.confirm(request["pix_key_request_key"], code)
    assert refused.value.response.status_code == 410

