"""What the console stands on, without a browser: its page and files, ``GET /__admin/tenants`` and
``GET /__admin/key-requests`` (documented in spec/admin.yaml; responses validated by the test app)."""

from __future__ import annotations

import pytest

from tests.helpers import (ORG_A, ORG_B, ORG_B_ACCOUNT, ORG_B_CPF, REJECTED_ACCOUNT, REJECTED_CPF, SEED_ACCOUNT,
                           create_key, wait_until)


@pytest.mark.parametrize("path,media_type", [("/__admin/console", "text/html"),
                                             ("/__admin/console/console.js", "text/javascript"),
                                             ("/__admin/console/console.css", "text/css")])
def test_the_console_is_served_with_a_policy_that_loads_only_its_own_files(client, path, media_type):
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media_type)
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_the_page_loads_nothing_from_elsewhere(client):
    import re

    page = client.get("/__admin/console").text
    loaded = re.findall(r'(?:src|href)="([^"#]*)"', page)
    assert loaded and all(url.startswith("/") and not url.startswith("//") for url in loaded), loaded
    assert '<script src="/__admin/console/console.js"' in page


def test_the_front_door_links_the_console(client):
    assert 'href="/__admin/console"' in client.get("/").text
    links = client.get("/", headers={"Accept": "application/json"}).json()["links"]
    assert links["console"]["href"] == "/__admin/console"


def test_tenants_are_listed_with_their_tokens(client):
    tenants = {t["name"]: t for t in client.get("/__admin/tenants").json()["tenants"]}
    assert tenants["org-a"]["token"] == "org-a-token" and tenants["org-b"]["token"] == "org-b-token"
    assert "BTG" not in tenants["org-b"]["providers"]
    assert tenants["org-b"]["accounts"] == 1


def test_key_requests_are_listed_in_every_status_newest_first(client):
    rejected = create_key(client, REJECTED_ACCOUNT, "cpf", REJECTED_CPF).json()["pix_key_request_key"]
    approved = create_key(client, SEED_ACCOUNT, "random_key").json()["pix_key_request_key"]
    other = create_key(client, ORG_B_ACCOUNT, "cpf", ORG_B_CPF, headers=ORG_B).json()["pix_key_request_key"]
    client.post("/__admin/clock/advance", json={"seconds": 2})

    def statuses():
        listed = client.get("/__admin/key-requests").json()["key_requests"]
        return {r["pix_key_request_key"]: r for r in listed}

    listed = wait_until(lambda: (s := statuses())[rejected]["request_status"] == "rejected" and s)
    assert listed[rejected]["request_failure_reason"]
    assert listed[approved]["request_status"] == "approved" and listed[approved]["tenant"] == "org-a"
    assert listed[other]["tenant"] == "org-b"
    assert listed[approved]["claim_lock"] is None
    times = [r["created_at"] for r in client.get("/__admin/key-requests").json()["key_requests"]]
    assert times == sorted(times, reverse=True)
    # the product list shows keys only: the rejected request is not there
    product = client.get("/baas/pix/keys", params={"account_key": REJECTED_ACCOUNT}, headers=ORG_A).json()["pix_keys"]
    assert rejected not in {k["pix_key_request_key"] for k in product}
    only = client.get("/__admin/key-requests", params={"account_key": SEED_ACCOUNT}).json()["key_requests"]
    assert {r["account_key"] for r in only} == {SEED_ACCOUNT}
    org_b = client.get("/__admin/key-requests", params={"tenant": "org-b"}).json()["key_requests"]
    assert [r["pix_key_request_key"] for r in org_b] == [other]


def test_with_an_admin_token_the_console_loads_but_its_data_needs_the_token(client_with):
    with client_with(admin_token="s3cret") as client:
        for path in ("/__admin/console", "/__admin/console/console.js", "/__admin/console/console.css"):
            assert client.get(path).status_code == 200, path
        for path in ("/__admin/tenants", "/__admin/key-requests"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200, path
