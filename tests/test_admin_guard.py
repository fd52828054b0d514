"""The admin API is guarded (issue 11, item 6): each risk a red-team pass found, over a real socket.

- DNS rebinding: a foreign ``Host`` is refused 421 ``SBX000421``;
- cross-site requests: a state-changing request from a foreign ``Origin`` 403 ``SBX000403``, a body
  that is not JSON 415 ``SBX000415``; a bodiless ``curl -X POST .../reset`` still works;
- the network: with an admin token, 401 ``SBX000401`` without it; ``serve`` on a non-loopback
  address refuses to start without one (exit 2);
- a webhook subscription may not point at the sandbox itself.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baas_sandbox import admin_access, cli
from baas_sandbox.adapters.fixtures import FixtureError
from baas_sandbox.app import create_app
from baas_sandbox.defaults import LOOPBACK_HOSTS
from baas_sandbox.http.admin_guard import host_name
from baas_sandbox.services.sandbox import Settings
from tests.conftest import live_server
from tests.helpers import ORG_A, SEED_ACCOUNT, wait_until
from tests.test_webhooks import fixtures_with_webhooks

ADMIN_TOKEN = "adm_7Yq2-not-a-real-secret"
NEW_ACCOUNT = {"owner_name": "Ana Lima", "owner_document_number": "81563500221", "owner_person_type": "natural",
               "status": "open", "tenant": "org-a", "account_key": "0b5e8c1a-2d3f-4a6b-8c9d-0e1f2a3b4c5d"}


@contextlib.contextmanager
def served(**settings) -> Iterator[tuple[httpx.Client, int]]:
    with live_server(**settings) as (base_url, _), httpx.Client(base_url=base_url, timeout=10) as client:
        yield client, int(base_url.rsplit(":", 1)[1])


def account_added(client: httpx.Client, **headers) -> None:
    """An account beyond the fixtures: a reset removes it, so its presence says no reset happened."""
    response = client.post("/__admin/accounts", json=NEW_ACCOUNT, headers=headers)
    assert response.status_code == 201, response.text


def has_account(client: httpx.Client, **headers) -> bool:
    accounts = client.get("/__admin/accounts", headers=headers).json()["accounts"]
    return any(a["account_key"] == NEW_ACCOUNT["account_key"] for a in accounts)


def refused(response: httpx.Response, status: int, code: str) -> dict:
    """The admin API's own error body: ``{code, message, details}``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and set(body) == {"code", "message", "details"}, body
    return body


# -- DNS rebinding: the Host header ---------------------------------------------------------------


def test_SBX000421_a_foreign_host_reaches_no_admin_operation():
    """A page whose name was re-pointed at 127.0.0.1 is same-origin for the browser; its Host is not ours."""
    with served() as (client, port):
        account_added(client)
        rebound = {"Host": f"evil.example:{port}"}
        body = refused(client.post("/__admin/reset", headers=rebound), 421, "SBX000421")
        assert "evil.example" in body["details"] and "--allowed-hosts" in body["details"]
        refused(client.get("/__admin/outbox", headers=rebound), 421, "SBX000421")
        refused(client.get("/__admin/accounts", headers=rebound), 421, "SBX000421")
        assert has_account(client)  # not reset
        for name in ("localhost", "127.0.0.1", "[::1]", "LOCALHOST"):
            assert client.get("/__admin/accounts", headers={"Host": f"{name}:{port}"}).status_code == 200, name
        # The product API is not host-checked: it needs a tenant token, which a browser never adds by itself.
        for lane in ({}, {"Origin": "http://localhost:5173"}):  # the express lane; the full pipeline
            assert client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT},
                              headers=ORG_A | rebound | lane).status_code == 200


@pytest.mark.parametrize("header,name", [("[::1]:8080", "::1"), ("::1", "::1"), ("LOCALHOST.:80", "localhost"),
                                         ("127.0.0.1", "127.0.0.1"), ("evil.example:x", "evil.example:x")])
def test_a_host_header_is_read_as_its_name(header, name):
    assert host_name(header) == name


def test_allowed_hosts_adds_names():
    with served(allowed_hosts=(*LOOPBACK_HOSTS, "sandbox.internal")) as (client, port):
        assert client.get("/__admin/accounts", headers={"Host": f"sandbox.internal:{port}"}).status_code == 200
        refused(client.get("/__admin/accounts", headers={"Host": "other.internal"}), 421, "SBX000421")
    with served(allowed_hosts=("*",)) as (client, _):
        assert client.get("/__admin/accounts", headers={"Host": "anything.example"}).status_code == 200


def test_the_cli_allows_the_bound_address_and_the_allowed_hosts():
    assert admin_access.allowed_hosts("127.0.0.1", "") == LOOPBACK_HOSTS
    assert admin_access.allowed_hosts("0.0.0.0", "sandbox, [fd00::1]") == (*LOOPBACK_HOSTS, "sandbox", "fd00::1")
    assert admin_access.allowed_hosts("10.1.2.3", "") == (*LOOPBACK_HOSTS, "10.1.2.3")


# -- cross-site requests --------------------------------------------------------------------------


def test_SBX000403_a_cross_site_simple_post_cannot_reset():
    """A form or ``fetch(..., {mode: "no-cors"})`` on any web page: text/plain, no preflight."""
    with served() as (client, _):
        account_added(client)
        cross_site = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
        body = refused(client.post("/__admin/reset", content=b"{}", headers=cross_site), 403, "SBX000403")
        assert "evil.example" in body["details"]
        # bodiless, or with JSON: still a foreign origin; "null" is a sandboxed page or a redirect's
        refused(client.post("/__admin/reset", headers={"Origin": "https://evil.example"}), 403, "SBX000403")
        refused(client.post("/__admin/reset", headers={"Origin": "null"}), 403, "SBX000403")
        refused(client.put("/__admin/scenarios/active", json={"names": []}, headers={"Origin": "http://evil.example"}),
                403, "SBX000403")
        refused(client.delete("/__admin/requests", headers={"Origin": "http://evil.example"}), 403, "SBX000403")
        assert has_account(client)
        # Reading is not refused (the browser keeps the answer from a foreign page: CORS)
        assert client.get("/__admin/accounts", headers={"Origin": "https://evil.example"}).status_code == 200


def test_SBX000415_an_admin_body_must_be_json_even_without_origin():
    with served() as (client, _):
        account_added(client)
        body = refused(client.post("/__admin/reset", content=b"x", headers={"Content-Type": "text/plain"}),
                       415, "SBX000415")
        assert body["details"] == "Expected 'application/json', got 'text/plain'"
        refused(client.post("/__admin/reset", content=b"a=1",
                            headers={"Content-Type": "application/x-www-form-urlencoded"}), 415, "SBX000415")
        refused(client.post("/__admin/reset", content=b"--b--", headers={"Content-Type": "multipart/form-data; boundary=b"}),
                415, "SBX000415")
        refused(client.post("/__admin/reset", content=b"{}"), 415, "SBX000415")  # a body, no Content-Type
        assert has_account(client)


def test_a_bodiless_post_from_a_shell_and_the_sandboxs_own_pages_still_work():
    with served() as (client, port):
        account_added(client)
        assert client.post("/__admin/reset").status_code == 200  # curl -X POST .../__admin/reset
        assert not has_account(client)
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)  # no Content-Length at all
        with raw:
            raw.sendall(f"POST /__admin/reset HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            assert raw.recv(64).startswith(b"HTTP/1.1 200 ")
        # Swagger UI (same origin, whatever the name), a local dev server (--cors-origin-regex), JSON
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", "http://localhost:5173"):
            response = client.put("/__admin/scenarios/active", json={"names": []}, headers={"Origin": origin})
            assert response.status_code == 200, (origin, response.text)
        account_added(client, Origin="http://localhost:5173")
        assert client.get("/__admin/ui/").status_code == 200


# -- the admin token ------------------------------------------------------------------------------


def test_SBX000401_an_admin_token_is_required_once_set():
    with served(admin_token=ADMIN_TOKEN) as (client, _):
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": ADMIN_TOKEN},
                        {"Authorization": f"Basic {ADMIN_TOKEN}"}, {"Authorization": "Bearer org-a-token"}):
            response = client.post("/__admin/reset", headers=headers)
            body = refused(response, 401, "SBX000401")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert ADMIN_TOKEN not in response.text
        refused(client.get("/__admin/outbox"), 401, "SBX000401")
        good = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert client.post("/__admin/reset", headers=good).status_code == 200
        assert client.get("/__admin/outbox", headers=good).status_code == 200
        with client.stream("GET", "/__admin/events/stream", headers=good, timeout=5) as stream:
            assert stream.status_code == 200
        # Swagger UI's page and the spec it shows: a browser navigation cannot carry a token
        assert client.get("/__admin/ui/").status_code == 200
        assert client.get("/__admin/openapi.json").status_code == 200
        # The product API keeps its tenant tokens
        assert client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A).status_code == 200
        assert body["details"] == "Provided token is not valid"  # the last: a tenant's token is not the admin's


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(*options: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``baas-sandbox serve`` in a subprocess; a refusal exits at once (a server would time out)."""
    command = [sys.executable, "-m", "baas_sandbox", "serve", "--log-level", "warning", "--no-reload", *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=20, env=env)


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_serve_on_the_network_without_a_token_refuses_to_start(host, monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k != admin_access.TOKEN_VARIABLE}
    result = serve("--host", host, "--port", str(free_port()), env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"baas-sandbox: cannot start: --host {host} serves the admin API")
    assert "--admin-token" in lines[0] and admin_access.TOKEN_VARIABLE in lines[0] and "--no-admin-auth" in lines[0]


def test_serve_on_the_network_with_a_token_or_no_admin_auth_starts(monkeypatch, capsys):
    """In-process, the server's listen and run replaced: nothing listens beyond loopback during the
    test suite (the socket handed over is a loopback one, on a free port)."""
    import socket

    from baas_sandbox import server

    started: list[dict] = []
    sockets: list[socket.socket] = []

    def loopback_instead(host: str, port: int) -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        return sock

    monkeypatch.setattr(server, "listen", loopback_instead)
    monkeypatch.setattr(server, "run", lambda app, sock, **options: started.append({"app": app, **options}))
    monkeypatch.setenv(admin_access.TOKEN_VARIABLE, ADMIN_TOKEN)
    assert cli.main(["serve", "--host", "0.0.0.0", "--no-reload", "--log-level", "warning"]) == 0
    settings = started[-1]["app"].settings
    assert settings.admin_token == ADMIN_TOKEN and ADMIN_TOKEN not in repr(settings)
    assert started[-1]["notes"] == ["baas-sandbox: the admin API (/__admin) needs 'Authorization: Bearer <admin token>'"]
    assert ADMIN_TOKEN not in capsys.readouterr().err
    assert cli.main(["serve", "--host", "0.0.0.0", "--no-admin-auth", "--no-reload"]) == 2  # both: choose one
    monkeypatch.delenv(admin_access.TOKEN_VARIABLE)
    assert cli.main(["serve", "--host", "0.0.0.0", "--no-admin-auth", "--port", "8088", "--no-reload",
                     "--log-level", "warning"]) == 0
    assert started[-1]["app"].settings.admin_token is None
    assert started[-1]["notes"] == [
        "baas-sandbox: WARNING: --no-admin-auth: the admin API (/__admin: reset, accounts, verification codes) "
        f"is open to anyone who can reach 0.0.0.0:{sockets[-1].getsockname()[1]}"]
    assert cli.main(["serve", "--admin-token", ADMIN_TOKEN, "--no-reload", "--log-level", "warning"]) == 0
    assert started[-1]["app"].settings.admin_token == ADMIN_TOKEN  # on loopback too, when given
    for sock in sockets:
        sock.close()


# -- webhooks to the sandbox itself ---------------------------------------------------------------


def test_a_webhook_subscription_cannot_target_the_sandbox_itself():
    """The first event would have reset the sandbox. Every name of this machine counts, also with
    any webhook host allowed (``--webhook-allowed-hosts '*'``, a sandbox bound to 0.0.0.0)."""
    for allowed, hosts in ((LOOPBACK_HOSTS, ("127.0.0.1", "localhost", "[::1]")),
                           (("*",), ("LOCALHOST", "0.0.0.0", "127.0.0.2", "[::ffff:127.0.0.1]", "[::]"))):
        with served(webhook_allowed_hosts=allowed) as (client, port):
            account_added(client)
            for host in hosts:
                response = client.post("/__admin/webhooks/subscriptions",
                                       json={"url": f"http://{host}:{port}/__admin/reset", "events": ["*"]})
                body = refused(response, 400, "SBX000400")
                assert body["details"].startswith("url: reaches this sandbox itself"), body
            # another port of this machine is a receiver, as before
            other = client.post("/__admin/webhooks/subscriptions",
                                json={"url": f"http://127.0.0.1:{free_port()}/hook", "events": ["*"]})
            assert other.status_code == 201
            assert client.post("/banking-auth/v1/credentials", headers=ORG_A | {"account_token": "t"},
                               json={"key": "k", "provider": "BTG", "type": "PIX"}).status_code == 201
            assert has_account(client)


def test_a_webhooks_fixture_that_targets_the_sandbox_is_refused_at_start(tmp_path):
    port = free_port()
    text = f"subscriptions:\n  - url: http://localhost:{port}/__admin/reset\n    events: ['*']\n"
    with pytest.raises(FixtureError, match=r"webhooks.yaml:2: subscriptions\[0\].url: reaches this sandbox itself"):
        create_app(Settings(fixtures_dir=fixtures_with_webhooks(tmp_path, text), hot_reload=False, listen_port=port))
    result = serve("--port", str(port), "--fixtures", str(tmp_path / "fixtures"))
    assert result.returncode == 2 and "reaches this sandbox itself" in result.stderr


def test_a_fixture_subscription_to_a_port_learned_later_is_not_sent(tmp_path):
    """``--port 0``: the port is known once the server listens; the delivery is refused then."""
    port = free_port()
    text = f"subscriptions:\n  - url: http://127.0.0.1:{port}/__admin/reset\n    events: ['*']\n"
    with live_server(port=port, fixtures_dir=fixtures_with_webhooks(tmp_path, text)) as (base_url, _), \
            httpx.Client(base_url=base_url, timeout=10) as client:
        account_added(client)
        assert client.post("/banking-auth/v1/credentials", headers=ORG_A | {"account_token": "t"},
                           json={"key": "k", "provider": "BTG", "type": "PIX"}).status_code == 201
        failed = wait_until(lambda: client.get("/__admin/webhooks/deliveries", params={"state": "failed"})
                            .json()["deliveries"])
        assert failed[0]["attempts"][0]["error"].startswith("not sent: the URL reaches this sandbox itself")
        assert len(failed[0]["attempts"]) == 1 and has_account(client)
