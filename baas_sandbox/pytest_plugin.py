"""pytest plugin: the ``baas_sandbox`` fixture, a running sandbox for a consumer's own tests.

Installed with the package (entry point ``pytest11``), so a partner team writes
``def test_x(baas_sandbox): ...`` and gets a real sandbox on a free loopback port, its base URL,
the tenants' tokens, and helpers for what a test needs and the product API does not offer: reset
the state, add an account, read the verification code "sent", switch error scenarios, wait for
the asynchronous DICT decision.

One server per test session (starting one costs a few hundred milliseconds), reset before every
test so tests do not see each other's keys. A test that needs other settings asks for a server of
its own with ``@pytest.mark.baas_sandbox(activation_delay=2, code_ttl=0.5, ...)``; the session
server's settings come from ini options (``baas_sandbox_activation_delay`` ...).

The server runs in a thread of the test process (uvicorn on a real socket, so network faults of
scenarios work too). Helpers speak HTTP with the standard library only: this module is imported
by every pytest run of an environment where the package is installed, so it must import nothing
heavy or optional at import time.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from baas_sandbox.defaults import DEFAULT_FIXTURES

MARKER = "baas_sandbox"
#: ini option -> (help, default); all read as strings, converted by ``session_settings``.
INI_OPTIONS = {
    "baas_sandbox_activation_delay": ("seconds from a pending key request to the DICT decision", "0.1"),
    "baas_sandbox_code_ttl": ("seconds a verification code stays valid", "600"),
    "baas_sandbox_fixtures": ("folder with tenants.yaml, accounts.yaml and scenarios/ "
                              "(default: the sandbox's own fixtures)", ""),
    "baas_sandbox_seed": ("seed of the scenarios' random choices and dynamic bodies (default: none)", ""),
    "baas_sandbox_validate_responses": ("check every answer against the spec; a violation answers 500 "
                                        "(default true)", "true"),
}
START_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, (help_text, default) in INI_OPTIONS.items():
        parser.addini(name, help_text, default=default)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): give this test a sandbox of its own, started with these settings "
        "(activation_delay, code_ttl, scenarios, seed, fixtures_dir, validate_responses, ...)")


class SandboxError(AssertionError):
    """A helper's request was refused or timed out; the message has the status and the body.

    An AssertionError, so pytest shows it as a failed expectation of the test, not a crash."""


# --- the server ---------------------------------------------------------------------------------


class SandboxServer:
    """The sandbox app served by uvicorn on a free loopback port, in a daemon thread."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        # Imported here: connexion is slow to import, and most pytest runs never start a sandbox.
        # It warns at import about starlette's test client and jsonschema's deprecated names, noise
        # in a consumer's test report: the full pipeline's modules (connexion) are imported now,
        # under these filters, rather than by the server's background build, which no filter of
        # this thread would cover.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient`")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"connexion(\.|$)")
            import uvicorn

            import baas_sandbox.pipeline  # noqa: F401
            from baas_sandbox.app import create_app
            from baas_sandbox.services.sandbox import Settings

        app = create_app(Settings(**self.settings))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # bound here, handed to uvicorn: no window for another process
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        # Open event streams never end by themselves: bound the wait for them when stopping.
        # serve's own protocol and bounds (JSON errors from the protocol, the header time-out, the
        # connection cap, no query string in the access log), on asyncio's loop: uvloop's would be
        # installed as the policy of the consumer's whole test process.
        from baas_sandbox.server import uvicorn_options

        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2,
                                                     **(uvicorn_options() | {"loop": "asyncio"})))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="baas-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the baas-sandbox server did not start (see the log above)")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)


@contextlib.contextmanager
def running(settings: dict[str, Any]) -> Iterator[SandboxServer]:
    server = SandboxServer(settings).start()
    try:
        yield server
    finally:
        server.stop()


def session_settings(config: pytest.Config) -> dict[str, Any]:
    """The ini options as ``Settings`` fields; the scenario watcher is off (files do not change)."""
    settings: dict[str, Any] = {
        "activation_delay": float(config.getini("baas_sandbox_activation_delay")),
        "code_ttl": float(config.getini("baas_sandbox_code_ttl")),
        "validate_responses": str(config.getini("baas_sandbox_validate_responses")).strip().lower()
        in ("1", "true", "yes", "on"),
        "hot_reload": False,
    }
    if fixtures := str(config.getini("baas_sandbox_fixtures")).strip():
        settings["fixtures_dir"] = Path(config.rootpath, fixtures)
    if seed := str(config.getini("baas_sandbox_seed")).strip():
        settings["seed"] = int(seed)
    return settings


# --- the handle a test gets -----------------------------------------------------------------------


@dataclass
class BaasSandbox:
    """A running sandbox, reset for this test: where it is, who may call it, and helpers."""

    #: Base URL of the product APIs, e.g. ``http://127.0.0.1:53124``.
    url: str
    #: Each tenant's bearer token, from the fixtures: ``{"org-a": "org-a-token", ...}``.
    tokens: dict[str, str]
    #: The tenant used when none is named: the fixtures' first (``org-a``).
    default_tenant: str
    #: The admin API's token, when the server has one (``@pytest.mark.baas_sandbox(admin_token=...)``):
    #: the helpers send it on ``/__admin``.
    admin_token: str | None = field(default=None, repr=False)

    @property
    def admin_url(self) -> str:
        return f"{self.url}/__admin"

    @property
    def token(self) -> str:
        return self.tokens[self.default_tenant]

    def headers(self, tenant: str | None = None) -> dict[str, str]:
        """``Authorization`` for a tenant (default ``org-a``), ready for any HTTP client."""
        return {"Authorization": f"Bearer {self.tokens[tenant or self.default_tenant]}"}

    # Sandbox control (/__admin)

    def reset(self) -> dict:
        """State back to the fixtures, scenarios back to those the server started with."""
        return self.call("POST", "/__admin/reset")

    def create_account(self, *, dict_rejects: bool = False, **fields: Any) -> dict:
        """Add an account and return it (with its ``account_key``).

        Every field of ``POST /__admin/accounts`` may be given; the required ones default to an
        open account of the default tenant, natural person, with a new valid CPF (or CNPJ for
        ``owner_person_type="legal"``). The owner's document decides DICT's answer to the
        account's keys: approved, or rejected with ``dict_rejects=True``.
        """
        person_type = fields.setdefault("owner_person_type", "natural")
        fields.setdefault("tenant", self.default_tenant)
        fields.setdefault("status", "open")
        fields.setdefault("owner_name", "TEST OWNER")
        fields.setdefault("owner_document_number", new_document(person_type, dict_rejects=dict_rejects))
        return self.call("POST", "/__admin/accounts", body=fields)

    def verification_codes(self, pix_key_request_key: str) -> list[str]:
        """Every code "sent" for a key request, oldest first."""
        query = urllib.parse.urlencode({"pix_key_request_key": pix_key_request_key})
        messages = self.call("GET", f"/__admin/outbox?{query}")["messages"]
        return [message["verification_code"] for message in messages]

    def last_verification_code(self, pix_key_request_key: str) -> str:
        """The code a user would have received last (after a resend, the new one)."""
        codes = self.verification_codes(pix_key_request_key)
        if not codes:
            raise SandboxError(f"no verification code was sent for {pix_key_request_key} "
                               "(only email and phone key requests get one)")
        return codes[-1]

    def activate_scenarios(self, *names: str) -> list[str]:
        """Make exactly these error scenarios active, in order (none: all off); returns the active list."""
        return self.call("PUT", "/__admin/scenarios/active", body={"names": list(names)})["active"]

    @contextlib.contextmanager
    def scenarios(self, *names: str) -> Iterator[list[str]]:
        """``with baas_sandbox.scenarios("provider-outage"):`` active in the block, the previous ones after."""
        previous = self.call("GET", "/__admin/scenarios")["active"]
        try:
            yield self.activate_scenarios(*names)
        finally:
            self.activate_scenarios(*previous)

    # Product API

    def wait_for_key_status(self, account_key: str, pix_key_request_key: str, status: str = "active", *,
                            tenant: str | None = None, timeout: float = 5.0) -> dict:
        """Poll the account's keys until this request's key has ``status``; return the listed key.

        Key creation is asynchronous (``baas_sandbox_activation_delay``): a test waits for the
        outcome instead of sleeping. A request DICT rejects leaves the list, so it never
        becomes ``active``: the error then says what was seen last.
        """
        query = urllib.parse.urlencode({"account_key": account_key})
        deadline = time.monotonic() + timeout
        while True:
            keys = self.call("GET", f"/baas/pix/keys?{query}", tenant=tenant)["pix_keys"]
            key = next((k for k in keys if k.get("pix_key_request_key") == pix_key_request_key), None)
            if key is not None and key.get("pix_key_status") == status:
                return key
            if time.monotonic() > deadline:
                raise SandboxError(f"the key of request {pix_key_request_key} was not {status!r} within "
                                   f"{timeout} s; last seen: {key if key is not None else 'not listed'}")
            time.sleep(0.02)

    # Plumbing

    def call(self, method: str, path: str, *, body: Any = None, tenant: str | None = None) -> Any:
        """One request to the sandbox (product paths with the tenant's token); the JSON answer.

        Raises ``SandboxError`` with the status and body for any answer other than 2xx.
        """
        if not path.startswith("/__admin"):
            headers = self.headers(tenant)
        else:
            headers = {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise SandboxError(f"{method} {path} answered {exc.code}: {exc.read().decode(errors='replace')}") from None


def marker_settings(marker: pytest.Mark) -> dict[str, Any]:
    """The marker's keyword arguments as ``Settings`` fields (a folder may be given as a string)."""
    if marker.args:
        raise TypeError(f"@pytest.mark.{MARKER} takes keyword arguments only (Settings fields), got {marker.args}")
    settings = dict(marker.kwargs)
    if "fixtures_dir" in settings:
        settings["fixtures_dir"] = Path(settings["fixtures_dir"])
    return settings


def new_document(person_type: str, *, dict_rejects: bool = False) -> str:
    """A fresh valid CPF (natural) or CNPJ (legal) whose first digit gives the DICT outcome wanted.

    The sandbox's DICT rejects a request when the owner's document begins with 1-5 and approves
    it for 0 and 6-9. Random digits make it unlikely two accounts of a session share a document
    (which would make them share their CPF/CNPJ key).
    """
    from stdnum.br import cnpj, cpf

    validator, length = (cnpj, 14) if person_type == "legal" else (cpf, 11)
    first = random.choice("12345" if dict_rejects else "06789")
    while True:
        stem = first + "".join(random.choices("0123456789", k=length - 3))
        for check in range(100):
            candidate = f"{stem}{check:02d}"
            if validator.is_valid(candidate):
                return candidate


def tenant_tokens(fixtures_dir: Path) -> dict[str, str]:
    """``{tenant: token}`` in the order of ``tenants.yaml``, the sandbox's own source of tokens."""
    from baas_sandbox.adapters.yamlfile import YamlDocument  # the sandbox's loader, with its limits

    document = YamlDocument(Path(fixtures_dir) / "tenants.yaml").data
    return {tenant["name"]: tenant["token"] for tenant in document["tenants"]}


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def baas_sandbox_server(pytestconfig: pytest.Config) -> Iterator[SandboxServer]:
    """The session's sandbox, started the first time a test asks for it, with the ini settings."""
    with running(session_settings(pytestconfig)) as server:
        yield server


@pytest.fixture
def baas_sandbox(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Iterator[BaasSandbox]:
    """A sandbox reset for this test: the session's, or one of its own for a ``baas_sandbox`` marker."""
    marker = request.node.get_closest_marker(MARKER)
    with contextlib.ExitStack() as stack:
        if marker is None:
            server = request.getfixturevalue("baas_sandbox_server")
        else:
            server = stack.enter_context(running(session_settings(pytestconfig) | marker_settings(marker)))
        tokens = tenant_tokens(server.settings.get("fixtures_dir", DEFAULT_FIXTURES))
        sandbox = BaasSandbox(url=server.url, tokens=tokens, default_tenant=next(iter(tokens)),
                              admin_token=server.settings.get("admin_token"))
        if marker is None:
            sandbox.reset()
        yield sandbox
