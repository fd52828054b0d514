"""Hostile input through a real socket (issue 11): every bad body, URL or header gets the API's own
JSON error, never a 500 or plain text, and what one client sends stays bounded.

Each test talks to ``baas-sandbox serve`` run as a subprocess (the protocol, the limits and the
access log are those of ``serve``), over raw sockets where the framing matters (a declared length
the body never reaches, a chunked body, partial headers).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from tests.helpers import ORG_A, SEED_ACCOUNT

LEGAL = SEED_ACCOUNT
UNKNOWN_REQUEST = "8d6f0f7e-0000-4000-8000-000000000000"
CREDENTIALS = "/banking-auth/v1/credentials"
KEYS = "/baas/pix/keys"
TWOFA = f"/baas/pix/keys/{UNKNOWN_REQUEST}/twofa_validation"
RESEND = f"/baas/pix/keys/{UNKNOWN_REQUEST}/resend_twofa"
CREDENTIAL_HEADERS = ORG_A | {"account_token": "t"}

#: (method, path, extra headers) of every product operation and every admin operation with a JSON body.
OPERATIONS = [
    ("POST", CREDENTIALS, CREDENTIAL_HEADERS),
    ("POST", KEYS, ORG_A),
    ("GET", KEYS + f"?account_key={LEGAL}", ORG_A),
    ("PATCH", TWOFA, ORG_A),
    ("PATCH", RESEND, ORG_A),
    ("POST", "/__admin/accounts", {}),
    ("PUT", "/__admin/scenarios/active", {}),
    ("POST", "/__admin/webhooks/subscriptions", {}),
]
BODY_OPERATIONS = [op for op in OPERATIONS if op[0] != "GET"]
PRODUCT_BODY_OPERATIONS = [op for op in BODY_OPERATIONS if not op[1].startswith("/__admin")]


class Served:
    """``baas-sandbox serve`` in a subprocess: its base URL, port, process and log file."""

    def __init__(self, port: int, process: subprocess.Popen, log: Path) -> None:
        self.port, self.process, self.log = port, process, log
        self.base = f"http://127.0.0.1:{port}"

    def status(self, field: str) -> int:
        """A field of the server process's /proc status, in kB (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(*options: str) -> Iterator[Served]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "serve.log"
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "baas_sandbox.cli", "serve", "--port", str(port),
                                        "--no-reload", "--log-level", "info", *options],
                                       stdout=out, stderr=subprocess.STDOUT)
        served = Served(port, process, log)
        try:
            for _ in range(400):  # up to ~20 s; the admin API needs the full pipeline: built once this answers
                try:
                    if httpx.get(f"{served.base}/__admin/accounts", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, log.read_text()
                time.sleep(0.05)
            else:
                raise AssertionError("the server did not start")
            yield served
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base, timeout=10) as http_client:
        yield http_client


def assert_own_error(response: httpx.Response, status: int | None = None) -> dict:
    """A 4xx in the error body of the API the path belongs to."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/json", response.text[:300]
    body = response.json()
    path = response.request.url.path
    if path.startswith("/baas"):
        assert {"title", "description", "translation", "code"} <= set(body), body
    else:
        assert {"code", "message"} <= set(body), body
    return body


def send(client: httpx.Client, method: str, path: str, headers: dict, body: bytes,
         content_type: bytes | None = b"application/json") -> httpx.Response:
    headers = dict(headers)
    if content_type is not None:
        headers["content-type"] = content_type.decode("latin-1")
    return client.request(method, path, content=body, headers=headers)


# -- the reproductions ------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "headers"), OPERATIONS, ids=[f"{m} {p[:30]}" for m, p, _ in OPERATIONS])
def test_a_5000_digit_number_or_1000_deep_nesting_is_a_400_in_the_apis_format(client, method, path, headers):
    for body in (b'{"x": 1' + b"0" * 5000 + b"}", b"[" * 1000 + b"]" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000):
        response = send(client, method, path, headers, body)
        if method == "GET":  # no body documented: the body is not read
            assert response.status_code == 200
            continue
        error = assert_own_error(response, 400)
        assert "number longer than" in json.dumps(error) or "nested deeper than" in json.dumps(error)


def test_a_lone_surrogate_is_a_400_and_never_reaches_the_vault(client):
    error = assert_own_error(send(client, "PATCH", TWOFA, ORG_A, b'{"verification_code": "\\ud800"}'), 400)
    assert error["code"] == "SBX000400" and "lone surrogate" in error["description"]
    error = assert_own_error(send(client, "POST", CREDENTIALS, CREDENTIAL_HEADERS,
                                  b'{"key": "\\ud800", "provider": "BTG", "type": "PIX"}'), 400)
    assert error["code"] == "EBAA0004" and "lone surrogate" in error["details"]
    # a surrogate pair is a character like any other
    response = send(client, "POST", CREDENTIALS, CREDENTIAL_HEADERS,
                    b'{"key": "k\\ud83d\\ude00", "provider": "BTG", "type": "PIX"}')
    assert response.status_code == 201


@pytest.mark.parametrize(("method", "path", "headers"), PRODUCT_BODY_OPERATIONS[:3],
                         ids=["credentials", "create-key", "twofa"])
@pytest.mark.parametrize("content_type", [b"", None], ids=["empty", "missing"])
def test_a_json_body_without_a_media_type_is_a_415(client, method, path, headers, content_type):
    body = json.dumps({"key": "k", "provider": "BTG", "type": "PIX", "account_key": LEGAL,
                       "pix_key_type": "random_key", "verification_code": "123456"}).encode()
    error = assert_own_error(send(client, method, path, headers, body, content_type), 415)
    assert error["code"] == "SBX000415"


def _response_on(sock: socket.socket, method: str) -> tuple[http.client.HTTPResponse, bytes]:
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    return response, response.read()


def _closed(sock: socket.socket) -> bool:
    """The server closed the connection (what it does not read is not waited for)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_declared_length_over_the_limit_is_refused_at_once_without_a_token(served):
    for path, api_field in ((KEYS, "title"), (CREDENTIALS, "message"), ("/__admin/accounts", "message")):
        with served.connect() as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                         f"Content-Length: 100000000\r\n\r\n".encode() + b"{" * 65536)
            response, payload = _response_on(sock, "POST")  # answered with 99.9 MB never sent
            assert response.status == 413 and response.getheader("content-type") == "application/json"
            body = json.loads(payload)
            assert body["code"] == "SBX000413" and api_field in body
            assert response.getheader("connection") == "close" and _closed(sock)
            if path.startswith("/baas"):
                assert response.getheader("tracking_id")


def test_a_chunked_body_is_refused_when_it_passes_the_limit(served):
    chunk = b"[" * 65536
    with served.connect() as sock:
        sock.sendall(f"POST {KEYS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer org-a-token\r\n"
                     f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        for _ in range(17):  # 1.06 MiB: just past the default limit of 1 MiB
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response, payload = _response_on(sock, "POST")
        assert response.status == 413 and json.loads(payload)["code"] == "SBX000413"
        assert response.getheader("connection") == "close" and _closed(sock)


def test_the_journal_keeps_a_large_body_cut_and_the_error_quotes_a_value_once_cut(client):
    client.delete("/__admin/requests")
    email = "a" * 1_000_000 + "@example.com"  # within the body limit
    response = client.post(KEYS, json={"account_key": LEGAL, "pix_key_type": "email", "pix_key": email}, headers=ORG_A)
    error = assert_own_error(response, 400)
    assert len(response.content) < 4000  # was 3.1 MB: the value, whole, in three places
    assert "a" * 80 + "…" in error["description"] and "a" * 81 not in response.text
    entry = client.get("/__admin/requests").json()["requests"][0]
    assert entry["request_body"] is None and entry["request_body_cut"] is True
    assert entry["response_body"]["code"] == "SBX000400" and entry["response_body_cut"] is False
    upper = client.post(KEYS, json={"account_key": LEGAL, "pix_key_type": "email", "pix_key": "A" * 1000},
                        headers=ORG_A)  # too long, and not the pattern: the value quoted once
    assert assert_own_error(upper, 400)["description"].count("A" * 80 + "…") == 1
    assert "pix_key: the value does not match" in upper.json()["description"]


def test_a_secret_outside_key_reaches_neither_the_journal_nor_the_access_log(served, client):
    client.delete("/__admin/requests")
    body = {"key": "k", "provider": "BTG", "type": "PIX", "password": "extra-field-secret",
            "provider_data": {"client_id": "c", "client_secret": "nested-secret"}}
    response = client.post(CREDENTIALS, json=body, headers=CREDENTIAL_HEADERS,
                           params={"api_key": "query-secret"})
    assert response.status_code == 201  # extra fields are accepted (and ignored), as documented
    listed = client.get(KEYS, params={"account_key": LEGAL, "token": "list-query-secret"}, headers=ORG_A)
    assert listed.status_code == 200
    entries = client.get("/__admin/requests").json()["requests"]
    assert entries[0]["query"] == f"account_key={LEGAL}&token=****"
    assert entries[1]["query"] == "api_key=****"
    assert entries[1]["request_body"] == {"key": "****", "provider": "BTG", "type": "PIX", "password": "****",
                                          "provider_data": {"client_id": "c", "client_secret": "****"}}
    journal = json.dumps(entries)
    log = served.log.read_text()
    for secret in ("query-secret", "extra-field-secret", "nested-secret", "list-query-secret"):
        assert secret not in journal and secret not in log
    assert f'"GET {KEYS} HTTP/1.1" 200' in log  # the access log is on, without the query string


def test_an_overlong_url_or_header_is_a_json_400(served):
    for head in (f"GET {KEYS}?account_key={'a' * 70_000} HTTP/1.1\r\nHost: localhost\r\n\r\n",
                 f"GET {KEYS} HTTP/1.1\r\nHost: localhost\r\nX-Long: {'a' * 100_000}\r\n\r\n",
                 "GET /baas/pix/keys HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n"):
        with served.connect() as sock:
            sock.sendall(head.encode())
            response, payload = _response_on(sock, "GET")
            assert response.status == 400 and response.getheader("content-type") == "application/json"
            body = json.loads(payload)
            assert body["code"] == "SBX000400" and _closed(sock)
            assert response.getheader("tracking_id")  # as on every product answer


@pytest.fixture(scope="module")
def bounded() -> Iterator[Served]:
    """A sandbox with a short header-read timeout and few connections, to reach both."""
    with serving("--header-timeout", "1", "--max-connections", "6") as server:
        yield server


def test_a_client_that_never_finishes_its_headers_is_disconnected(bounded):
    with ExitStack() as stack:
        silent = stack.enter_context(bounded.connect())
        partial = stack.enter_context(bounded.connect())
        partial.sendall(b"GET /baas/pix/keys HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        assert _closed(silent) and _closed(partial)  # after --header-timeout (1 s); the socket waits up to 10
        # (an idle connection after an answer is closed too, but uvicorn's own keep-alive time-out
        # would close it within that wait as well: no test of it here could fail)


def test_past_the_connection_cap_the_answer_is_a_json_503(bounded):
    with ExitStack() as stack:
        for _ in range(6):
            stack.enter_context(bounded.connect())
        with bounded.connect() as sock:
            sock.sendall(f"GET {KEYS}?account_key={LEGAL} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer org-a-token\r\n"
                         f"tracking_id: t-1\r\n\r\n".encode())
            response, payload = _response_on(sock, "GET")
            assert response.status == 503 and response.getheader("content-type") == "application/json"
            assert response.getheader("retry-after") == "1" and response.getheader("tracking_id") == "t-1"
            assert json.loads(payload)["code"] == "SBX000503"
    # the cap is on connections at once: once they are gone, requests are served again
    assert httpx.get(f"{bounded.base}/baas/pix/keys", params={"account_key": LEGAL}, headers=ORG_A).status_code == 200


def _post_raw(server: Served, body: bytes) -> int:
    with server.connect(timeout=60) as sock:
        sock.sendall(f"POST {KEYS} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer org-a-token\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        response, _ = _response_on(sock, "POST")
        return response.status


def test_resident_memory_stays_bounded_after_large_bodies():
    """50 MB bodies within a raised limit: what stays resident does not grow with their number (the
    journal kept each whole: four 100 MB requests left 2.7 GB). Then 100 MB bodies over the default
    limit: refused unread, the peak barely moves (the whole body was read first: 921 MB)."""
    body = b'{"account_key": "' + b"a" * 50_000_000 + b'", "pix_key_type": "random_key"}'
    with serving("--max-body-size", "60000000", "--log-level", "warning") as server:
        assert [_post_raw(server, body) for _ in range(2)] == [400, 400]
        after_two = server.status("VmRSS")
        assert [_post_raw(server, body) for _ in range(3)] == [400, 400, 400]
        after_five = server.status("VmRSS")
        # kB. What is freed depends on the allocator and on when the idle-time collections run:
        # observed 0-100 MB up or down. Before, the journal kept each body (~+600 MB over three).
        assert after_five - after_two < 150_000, (after_two, after_five)
    with serving("--log-level", "warning") as server:
        before = server.status("VmRSS")
        for _ in range(4):
            with server.connect(timeout=60) as sock:
                try:
                    sock.sendall(f"POST {KEYS} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                 f"Content-Length: {len(body) * 2}\r\n\r\n".encode() + body + body)
                except OSError:  # refused before the body was all sent: what is meant
                    pass
        assert server.status("VmHWM") - before < 50_000, (before, server.status("VmHWM"))


# -- hostile JSON, generated: never a 5xx, never anything but JSON ------------------------------------

_any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)
_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _any_text,
                  st.integers(min_value=10 ** 60, max_value=10 ** 80))


def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(_any_text, inner, max_size=3))


_values = st.recursive(_leaf, _containers, max_leaves=10)
_EXAMPLES = [
    {"key": "k", "provider": "BTG", "type": "PIX", "provider_data": {"client_id": "c"}},
    {"account_key": LEGAL, "pix_key_type": "email", "pix_key": "a@example.com"},
    {"verification_code": "123456"},
    {"scenarios": []},
    {"url": "http://127.0.0.1:9/hook", "events": ["pix_key_activated"]},
]


def _dumps(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()  # NaN and Infinity written as such: not JSON


@st.composite
def _example_with_a_hostile_value(draw) -> bytes:
    body = dict(draw(st.sampled_from(_EXAMPLES)))
    body[draw(st.sampled_from(sorted(body)) | _any_text)] = draw(_values)
    return _dumps(body)


_hostile_bodies = st.one_of(
    _values.map(_dumps),
    _example_with_a_hostile_value(),
    st.binary(max_size=64),
    _any_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.integers(30, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(60, 6000).map(lambda n: b'{"x": -1' + b"1" * n + b"}"),
    st.integers(60, 400).map(lambda n: b'{"x": 0.' + b"1" * n + b"e-9}"),
    st.sampled_from([
        b"NaN", b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": 1e999}', b'{"a": 1, "a": 2}', b"\xef\xbb\xbf{}",
        b"\xff\xfe{\x00}\x00", b'{"a": "\\ud800"}', b'{"\\udfff": 1}', b'{"a": "\\x"}', b'{"a": "\\u12"}', b"{} {}",
        b'{"a": 1} garbage', b'{"a": "\t"}', b"", b" ", b"null", b"[]", b"1", b'"\\u0000"', b"{'a': 1}",
        b'{"a": 1,}', b"[1,]", b'{"key": "\\ud800", "provider": "BTG", "type": "PIX"}',
        b'{"account_key": "\\udbff", "pix_key_type": "random_key"}', b'{"verification_code": "\\ud800"}',
        b'{"a": 01}', b'{"a": .5}', b'{"a": +1}', b"\x00", b"/* */ {}", b'{"a": tru}',
    ]),
)
_content_types = st.sampled_from([b"application/json", b"application/json", b"", None, b"text/plain",
                                  b"application/json; charset=latin-1", b"application/json; charset=nope",
                                  b"APPLICATION/JSON", b"application/json;", b"application/octet-stream"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(operation=st.sampled_from(OPERATIONS), body=_hostile_bodies, content_type=_content_types)
def test_hostile_json_never_gets_a_5xx_or_anything_but_json(client, operation, body, content_type):
    method, path, headers = operation
    response = send(client, method, path, headers, body, content_type)
    if response.status_code < 300:
        assert response.headers["content-type"] == "application/json"
        response.json()
    else:
        assert_own_error(response)


# -- the lane and the full pipeline answer hostile bodies alike ----------------------------------------

TWIN_BODIES = [b'{"x": 1' + b"0" * 5000 + b"}", b"[" * 1000 + b"]" * 1000, b'{"verification_code": "\\ud800"}',
               b'{"key": "\\ud800", "provider": "BTG", "type": "PIX"}', b'{"a": NaN}', b'{"a": 1, "a": 2}',
               b"\xef\xbb\xbf{}", b"\xff", b'{"a": "\\x"}', b"{} x", b'{"a": 1e999}']


@pytest.mark.parametrize("body", TWIN_BODIES, ids=[repr(b[:20]) for b in TWIN_BODIES])
def test_the_lane_and_the_full_pipeline_refuse_hostile_bodies_alike(body):
    from tests.test_express import Twin, same

    with ExitStack() as stack:
        twin = Twin(stack)
        for method, path, headers in PRODUCT_BODY_OPERATIONS:
            answer = same(twin, method, path, content=body, headers=headers | {"content-type": "application/json"})
            assert answer["status"] == 400, answer
        assert twin.journals()[0] == twin.journals()[1]


def test_the_lane_and_the_full_pipeline_refuse_a_body_over_the_limit_alike():
    from tests.test_express import Twin, same

    with ExitStack() as stack:
        twin = Twin(stack, max_body_size=100)
        body = json.dumps({"account_key": LEGAL, "pix_key_type": "email", "pix_key": "a" * 100 + "@example.com"})
        answer = same(twin, "POST", KEYS, content=body, headers=ORG_A | {"content-type": "application/json"})
        assert answer["status"] == 413 and json.loads(answer["body"])["code"] == "SBX000413"
        answer = same(twin, "POST", KEYS, json={"account_key": LEGAL, "pix_key_type": "random_key"}, headers=ORG_A)
        assert answer["status"] == 201  # within the limit
        assert twin.apps[0].express_counts.answered == 1
        assert twin.journals()[0] == twin.journals()[1]
        # an operation without a body is no exception: a declared length over the limit is refused
        answer = same(twin, "GET", KEYS, params={"account_key": LEGAL}, content=b"x" * 101, headers=ORG_A)
        assert answer["status"] == 413 and json.loads(answer["body"])["code"] == "SBX000413"
        assert twin.apps[0].express_counts.answered == 1


def test_the_journal_drops_its_oldest_entries_past_its_memory_bound(client_with):
    with client_with() as app_client:
        app_client.sandbox.journal.budget.limit = 300_000  # 32 MiB in use: a few 60 KB bodies here
        for index in range(10):
            body = {"account_key": LEGAL, "pix_key_type": "email", "pix_key": f"{index}" + "a" * 60_000}
            assert app_client.post(KEYS, json=body, headers=ORG_A).status_code == 400
        entries = app_client.get("/__admin/requests").json()["requests"]
        assert 2 <= len(entries) <= 5  # ~61 KB each, answers included
        assert entries[0]["request_body"]["pix_key"].startswith("9")  # the newest kept, whole
        assert not entries[0]["request_body_cut"]
