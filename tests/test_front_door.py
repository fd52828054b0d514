"""``GET /`` and ``GET /__admin/``: a page for a person, the same links as JSON for a client."""

from __future__ import annotations

import re

import pytest

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("path", ["/", "/__admin/"])
@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "*/*", None])
def test_a_person_gets_a_page_linking_both_swagger_uis(client, path, accept):
    answer = client.get(path, headers={"Accept": accept} if accept else {})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    for href in ("/ui/", "/__admin/ui/", "/__admin/", "/__admin/scenarios"):
        assert f'href="{href}"' in answer.text


@pytest.mark.parametrize("path", ["/", "/__admin/"])
def test_a_client_asking_for_json_gets_the_index(client, path):
    answer = client.get(path, headers={"Accept": "application/json"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    index = answer.json()
    assert index["name"] == "baas-sandbox"
    assert index["links"]["product_api_ui"]["href"] == "/ui/"
    assert index["links"]["admin_api_ui"]["href"] == "/__admin/ui/"
    assert {entry["title"] for entry in index["guide"]} >= {"Error codes and how to trigger them", "Error scenarios"}


def test_every_link_of_the_front_door_opens(client):
    index = client.get("/", headers={"Accept": "application/json"}).json()
    hrefs = {link["href"] for link in index["links"].values()} | {entry["href"] for entry in index["guide"]}
    for href in sorted(hrefs):
        assert client.get(href).status_code == 200, href


def test_the_page_is_escaped_and_names_no_script(client):
    page = client.get("/").text
    assert "<script" not in page
    assert re.search(r"<title>baas-sandbox</title>", page)
