"""What the tests share: the fixture accounts, tokens, and small HTTP helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

SEED_ACCOUNT = "6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8"  # legal, CNPJ 09080702000105, org-a, approved
SEED_CNPJ = "09080702000105"
NATURAL_ACCOUNT = "1f0e8a5c-2b7d-4c3e-9a61-7b2d4e8f0a11"  # MARIA SOUZA, CPF 81563500221, approved
NATURAL_CPF = "81563500221"
REJECTED_ACCOUNT = "3c5d7e9f-1a2b-4c3d-8e4f-5a6b7c8d9e03"  # JOAO LIMA, CPF 31605305073: DICT rejects
REJECTED_CPF = "31605305073"
CLOSED_ACCOUNT = "5b7e2c41-9f3d-4a8e-b6c2-0d1e2f3a4b5c"  # closed
PERSON_MISSING_ACCOUNT = "7a1b2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c27"  # owner's person record missing
PERSON_MISSING_KEY = "8b1f9d2e-3c4a-4e5f-9a6b-7c8d9e0f1a2b"
ORG_B_ACCOUNT = "9a4c1e77-2b3d-4f5a-8c6e-1d2f3a4b5c6d"  # org-b's, CPF 02269499905
ORG_B_CPF = "02269499905"
ORG_A_REQUESTER = "ef48fbe4-267b-45c1-9049-75345c075486"

ORG_A = {"Authorization": "Bearer org-a-token"}
ORG_B = {"Authorization": "Bearer org-b-token"}


def run(step: Any) -> Any:
    """A store operation or a namespace's coroutine, run from a test's thread, on a loop of its own
    (the in-memory store holds nothing of a loop)."""
    return asyncio.run(step) if asyncio.iscoroutine(step) else step


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def create_key(client, account_key: str, key_type: str, value: str | None = None, headers=ORG_A):
    body: dict = {"account_key": account_key, "pix_key_type": key_type}
    if value is not None:
        body["pix_key"] = value
    return client.post("/baas/pix/keys", json=body, headers=headers)


def latest_code(client, request_key: str) -> str:
    response = client.get("/__admin/outbox", params={"pix_key_request_key": request_key})
    assert response.status_code == 200, response.text
    messages = response.json()["messages"]
    assert messages, f"no verification code was sent for {request_key}"
    return messages[-1]["verification_code"]


def listed_keys(client, account_key: str, headers=ORG_A) -> list[dict]:
    response = client.get("/baas/pix/keys", params={"account_key": account_key}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["pix_keys"]


def key_status(client, account_key: str, request_key: str, headers=ORG_A) -> str | None:
    for key in listed_keys(client, account_key, headers):
        if key["pix_key_request_key"] == request_key:
            return key["pix_key_status"]
    return None


def webhooks_for(client, request_key: str) -> list[dict]:
    response = client.get("/__admin/webhooks")
    assert response.status_code == 200, response.text
    return [w["body"] for w in response.json()["webhooks"] if w["body"]["pix_key_request_key"] == request_key]


def billion_laughs(top: str = "") -> str:
    """The "billion laughs" YAML (red team, reproduction 10): nine lines of nested aliases, 9**9
    values once expanded; ``top``: lines to put first."""
    lines = [top] if top else []
    lines.append("a: &a [" + ", ".join(['"lol"'] * 9) + "]")
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def nested(depth: int, key: str = "rules") -> str:
    """A document nested ``depth`` lists deep (red team, reproduction 11: 5,000)."""
    return f"{key}: " + "[" * depth + "]" * depth + "\n"
