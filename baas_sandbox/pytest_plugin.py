"""pytest plugin: the ``baas_sandbox`` fixture, a running sandbox for a consumer's own tests.

Installed with the package (entry point ``pytest11``), so a partner team writes
``def test_x(baas_sandbox): ...`` and gets a real sandbox, its base URL, the tenants' tokens, and
helpers for what a test needs and the product API does not offer: reset the state, add an
account, read the verification code "sent", switch error scenarios, move the clock, wait for the
asynchronous DICT decision.

Every test works in a namespace of its own (``X-Sandbox-Namespace``): a fresh sandbox made from
the fixtures on its first request and dropped after the test, so tests never see each other's
keys, whether they run one after another or side by side (``pytest -n 4``). The sandbox is either

* one the session starts itself, on a free loopback port (starting one costs a few hundred
  milliseconds; its settings come from ini options such as ``baas_sandbox_activation_delay``), or
* one already running, a team's shared one or a CI service container, given by the option
  ``--baas-sandbox-url``, else ``$BAAS_SANDBOX_URL``, else the ini option ``baas_sandbox_url``
  (its admin token, if it has one, from ``$BAAS_SANDBOX_ADMIN_TOKEN``). Every xdist worker and
  every CI job then works in namespaces of its own on it.

A test that needs other settings asks for a server of its own with
``@pytest.mark.baas_sandbox(activation_delay=2, code_ttl=0.5, ...)``; against a given URL there is
no server of its own to start, and such a test is skipped, saying why.

The server runs in a thread of the test process (uvicorn on a real socket, so network faults of
scenarios work too). Helpers speak HTTP with the standard library only: this module is imported
by every pytest run of an environment where the package is installed, so it must import nothing
heavy or optional at import time.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
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
    "baas_sandbox_url": ("base URL of a running sandbox to use instead of starting one (below "
                         "--baas-sandbox-url and $BAAS_SANDBOX_URL)", ""),
}
START_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
URL_OPTION = "--baas-sandbox-url"
URL_VARIABLE = "BAAS_SANDBOX_URL"
URL_INI = "baas_sandbox_url"
ADMIN_TOKEN_VARIABLE = "BAAS_SANDBOX_ADMIN_TOKEN"  # as baas_sandbox.admin_access.TOKEN_VARIABLE
NAMESPACE_HEADER = "X-Sandbox-Namespace"
#: The names the sandbox accepts (baas_sandbox.services.namespaces.NAME).
NAMESPACE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NAMESPACE_PROPERTY = "baas_sandbox_namespace"  # the test's user property (JUnit XML <properties>)
URL_PROPERTY = "baas_sandbox_url"


def pytest_addoption(parser: pytest.Parser) -> None:
    for name, (help_text, default) in INI_OPTIONS.items():
        parser.addini(name, help_text, default=default)
    parser.getgroup("baas-sandbox").addoption(
        URL_OPTION, dest="baas_sandbox_url", default=None, metavar="URL",
        help=f"use the sandbox running at URL (each test in a namespace of its own) instead of starting "
             f"one; wins over ${URL_VARIABLE} and the ini option {URL_INI}; an empty value starts one")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): give this test a sandbox of its own, started with these settings "
        "(activation_delay, code_ttl, scenarios, seed, fixtures_dir, validate_responses, ...); "
        "skipped when the run uses a sandbox already running (--baas-sandbox-url)")


def pytest_report_header(config: pytest.Config) -> str | None:
    url, source = sandbox_url(config)
    return f"baas-sandbox: {url} (from {source}), a namespace per test" if url else None


def resolve_url(option: str | None, environment: str | None, ini: str | None) -> tuple[str | None, str | None]:
    """The running sandbox to use, and where it was given: the command-line option, else the
    environment variable, else the ini option; ``(None, ...)``: start one. An empty option says
    "start one" even when the variable is set; an empty variable or ini value counts as unset."""
    if option is not None:
        return (option.strip().rstrip("/") or None), URL_OPTION
    if environment and environment.strip():
        return environment.strip().rstrip("/"), f"${URL_VARIABLE}"
    if ini and ini.strip():
        return ini.strip().rstrip("/"), f"ini {URL_INI}"
    return None, None


def sandbox_url(config: pytest.Config) -> tuple[str | None, str | None]:
    return resolve_url(config.getoption("baas_sandbox_url", None), os.environ.get(URL_VARIABLE),
                       str(config.getini(URL_INI)))


class SandboxError(AssertionError):
    """A helper's request was refused or timed out; the message has the status and the body.

    An AssertionError, so pytest shows it as a failed expectation of the test, not a crash.
    ``status``: the HTTP status of a refusal (None when there was no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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


class RunningSandbox:
    """A sandbox already running at ``url`` (a team's shared one, a CI service container): nothing
    to start or stop; its admin token, if it has one, from ``$BAAS_SANDBOX_ADMIN_TOKEN``."""

    def __init__(self, url: str, source: str, admin_token: str | None) -> None:
        self.url, self.source = url, source
        self.settings: dict[str, Any] = {"admin_token": admin_token}

    def check(self) -> RunningSandbox:
        """One request to its admin API, so a wrong URL or token fails every test with one clear reason."""
        token = self.settings["admin_token"]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        where = f"the sandbox at {self.url} (from {self.source})"
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{self.url}/__admin/namespaces", headers=headers),
                                        timeout=HTTP_TIMEOUT) as response:
                json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            hint = {401: f"its admin API needs a token: set ${ADMIN_TOKEN_VARIABLE} to the one it was started with",
                    421: "it does not answer its admin API to this host name: start it with --allowed-hosts NAME",
                    }.get(exc.code, "is it a baas-sandbox?")
            raise SandboxError(f"{where} answered GET /__admin/namespaces {exc.code}: {hint}; {body}", exc.code) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SandboxError(f"{where} does not answer: {getattr(exc, 'reason', exc)}") from None
        return self


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
    """A running sandbox and this test's namespace in it: where it is, who may call it, and helpers.

    Every helper works in ``namespace``; a test's own client sends ``headers()``, which name it."""

    #: Base URL of the product APIs, e.g. ``http://127.0.0.1:53124``.
    url: str
    #: Each tenant's bearer token, from the fixtures: ``{"org-a": "org-a-token", ...}``.
    tokens: dict[str, str]
    #: The tenant used when none is named: the fixtures' first (``org-a``).
    default_tenant: str
    #: The admin API's token, when the server has one (``@pytest.mark.baas_sandbox(admin_token=...)``):
    #: the helpers send it on ``/__admin``.
    admin_token: str | None = field(default=None, repr=False)
    #: This test's namespace (``X-Sandbox-Namespace``): a sandbox of its own, fresh from the fixtures.
    namespace: str = "default"

    @property
    def admin_url(self) -> str:
        return f"{self.url}/__admin"

    @property
    def token(self) -> str:
        return self.tokens[self.default_tenant]

    def headers(self, tenant: str | None = None) -> dict[str, str]:
        """What a test's own client sends: ``Authorization`` for a tenant (default ``org-a``) and
        ``X-Sandbox-Namespace`` naming this test's namespace, ready for any HTTP client."""
        return {"Authorization": f"Bearer {self.tokens[tenant or self.default_tenant]}",
                NAMESPACE_HEADER: self.namespace}

    # Sandbox control (/__admin)

    def reset(self) -> dict:
        """The namespace back to the fixtures, scenarios back to those the server started with."""
        return self.call("POST", "/__admin/reset")

    def clock(self) -> dict:
        """The namespace's clock: ``{"now": ..., "frozen": ..., "offset_seconds": ...}``."""
        return self.call("GET", "/__admin/clock")

    def freeze(self, at: str | None = None) -> dict:
        """Stop the namespace's time (at ``at``, an ISO time, if given): nothing falls due until
        ``advance``, and ``wait_for_key_status`` moves the clock instead of waiting."""
        return self.call("PUT", "/__admin/clock", body={"frozen": True} | ({"now": at} if at else {}))

    def unfreeze(self) -> dict:
        """Let the namespace's time run again, from where it stood."""
        return self.call("PUT", "/__admin/clock", body={"frozen": False})

    def advance(self, seconds: float) -> dict:
        """Move the namespace's time forward (frozen or not); what falls due (DICT decisions, closed
        validation windows) has run when this returns. ``{now, frozen, offset_seconds, jobs_run}``."""
        return self.call("POST", "/__admin/clock/advance", body={"seconds": seconds})

    def real_time(self) -> dict:
        """The namespace's clock back to real time (unfrozen, no offset)."""
        return self.call("DELETE", "/__admin/clock")

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
        outcome instead of sleeping. In a namespace whose clock is frozen (``freeze()``) nothing
        is waited for: the clock is moved forward in growing steps, ``timeout`` seconds of the
        namespace's time at most. A request DICT rejects leaves the list, so it never becomes
        ``active``: the error then says what was seen last.
        """
        query = urllib.parse.urlencode({"account_key": account_key})
        deadline = time.monotonic() + timeout
        frozen: bool | None = None  # asked once, when the key is not there yet
        moved = 0.0  # seconds the frozen clock was moved forward
        while True:
            keys = self.call("GET", f"/baas/pix/keys?{query}", tenant=tenant)["pix_keys"]
            key = next((k for k in keys if k.get("pix_key_request_key") == pix_key_request_key), None)
            if key is not None and key.get("pix_key_status") == status:
                return key
            if frozen is None:
                frozen = bool(self.clock()["frozen"])
            if (moved >= timeout) if frozen else (time.monotonic() > deadline):
                raise SandboxError(f"the key of request {pix_key_request_key} was not {status!r} within "
                                   f"{timeout} s{' of the frozen clock, moved forward that far' if frozen else ''}; "
                                   f"last seen: {key if key is not None else 'not listed'}")
            if frozen:
                step = min(max(0.05, moved), timeout - moved)  # 0.05, 0.05, 0.1, 0.2, ...
                self.advance(step)
                moved += step
            else:
                time.sleep(0.02)

    # Plumbing

    def call(self, method: str, path: str, *, body: Any = None, tenant: str | None = None) -> Any:
        """One request to the sandbox in this test's namespace (product paths with the tenant's
        token, ``/__admin`` with the admin token if any); the JSON answer.

        Raises ``SandboxError`` with the status and body for any answer other than 2xx.
        """
        return self._send(method, path, body=body, tenant=tenant, namespace=self.namespace)

    def drop_namespace(self) -> bool:
        """Drop this test's namespace from the sandbox (done after the test); False if it was gone."""
        try:  # asked in the default namespace: naming the one being dropped would only touch it again
            self._send("DELETE", f"/__admin/namespaces/{self.namespace}", namespace=None)
        except SandboxError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _send(self, method: str, path: str, *, body: Any = None, tenant: str | None = None,
              namespace: str | None) -> Any:
        if not path.startswith("/__admin"):
            headers = {"Authorization": f"Bearer {self.tokens[tenant or self.default_tenant]}"}
        else:
            headers = {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
        if namespace is not None:
            headers[NAMESPACE_HEADER] = namespace
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise SandboxError(f"{method} {path} answered {exc.code}: {exc.read().decode(errors='replace')}",
                               exc.code) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
            raise SandboxError(f"{method} {self.url}{path}: no answer ({getattr(exc, 'reason', exc)})") from None


def marker_settings(marker: pytest.Mark) -> dict[str, Any]:
    """The marker's keyword arguments as ``Settings`` fields (a folder may be given as a string)."""
    if marker.args:
        raise TypeError(f"@pytest.mark.{MARKER} takes keyword arguments only (Settings fields), got {marker.args}")
    settings = dict(marker.kwargs)
    if "fixtures_dir" in settings:
        settings["fixtures_dir"] = Path(settings["fixtures_dir"])
    return settings


def new_namespace(test_name: str, worker: str | None = None) -> str:
    """A namespace name no other test, xdist worker or CI job on the same sandbox will pick:
    ``pt-`` + 10 random hex digits + the xdist worker (``gw0``; ``main`` without xdist) + the
    test's name, reduced to the characters the sandbox allows and cut to its 64."""
    worker = worker if worker is not None else os.environ.get("PYTEST_XDIST_WORKER", "main")
    prefix = f"pt-{uuid.uuid4().hex[:10]}-{re.sub(r'[^A-Za-z0-9]+', '', worker)[:8] or 'main'}-"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_.-") or "test"
    return (prefix + name)[:64]


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
def baas_sandbox_server(pytestconfig: pytest.Config) -> Iterator[SandboxServer | RunningSandbox]:
    """The session's sandbox: the running one given (``--baas-sandbox-url``, ``$BAAS_SANDBOX_URL``,
    ini ``baas_sandbox_url``), else one started the first time a test asks, with the ini settings."""
    url, source = sandbox_url(pytestconfig)
    if url is not None:
        yield RunningSandbox(url, source or "", os.environ.get(ADMIN_TOKEN_VARIABLE) or None).check()
        return
    with running(session_settings(pytestconfig)) as server:
        yield server


@pytest.fixture
def baas_sandbox(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Iterator[BaasSandbox]:
    """This test's namespace, fresh from the fixtures, on the session's sandbox (or on one of its own
    for a ``baas_sandbox`` marker with settings); dropped after the test."""
    marker = request.node.get_closest_marker(MARKER)
    url, source = sandbox_url(pytestconfig)
    if marker is not None and url is not None:
        if marker.args or marker.kwargs:
            settings = ", ".join([*map(repr, marker.args), *(f"{k}={v!r}" for k, v in marker.kwargs.items())])
            pytest.skip(f"@pytest.mark.{MARKER}({settings}) needs a sandbox of its own with these settings; this "
                        f"run uses the one at {url} (from {source}): run without it to include this test")
        marker = None  # no settings: a namespace of its own is a sandbox of its own
    with contextlib.ExitStack() as stack:
        if marker is None:
            server = request.getfixturevalue("baas_sandbox_server")
        else:
            server = stack.enter_context(running(session_settings(pytestconfig) | marker_settings(marker)))
        tokens = tenant_tokens(server.settings.get("fixtures_dir") or session_fixtures(pytestconfig))
        sandbox = BaasSandbox(url=server.url, tokens=tokens, default_tenant=next(iter(tokens)),
                              admin_token=server.settings.get("admin_token"),
                              namespace=new_namespace(request.node.name))
        try:
            sandbox.clock()  # the namespace made now: a full sandbox fails the set-up, not the test
        except SandboxError as exc:
            if exc.status == 429:
                raise SandboxError(f"the sandbox at {sandbox.url} holds as many namespaces as it may, and this "
                                   f"test needs one: {exc}", 429) from None
            raise
        request.node.user_properties += [(NAMESPACE_PROPERTY, sandbox.namespace), (URL_PROPERTY, sandbox.url)]
        yield sandbox
        sandbox.drop_namespace()


def session_fixtures(config: pytest.Config) -> Path:
    """The fixtures whose tenants' tokens the tests use: ini ``baas_sandbox_fixtures``, else the
    sandbox's own (a running sandbox given by URL must serve the same)."""
    fixtures = str(config.getini("baas_sandbox_fixtures")).strip()
    return Path(config.rootpath, fixtures) if fixtures else DEFAULT_FIXTURES
