"""How ``baas-sandbox serve`` runs: one write per answer, and the full pipeline built in the background."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from baas_sandbox.app import create_app
from baas_sandbox.server import _HeadHoldingTransport
from baas_sandbox.services.sandbox import Settings

AUTH = {"Authorization": "Bearer org-a-token"}
LEGAL = "6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8"


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default=None):
        return f"info:{name}"


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def test_a_fixed_length_answer_leaves_in_one_write():
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder)
    transport.write(HEAD)
    assert recorder.writes == []
    transport.write(b"{}")
    assert recorder.writes == [HEAD + b"{}"]
    transport.write(HEAD)
    transport.write(b"")  # an empty body (HEAD, 204): the head leaves with it
    assert recorder.writes[-1] == HEAD


def test_a_stream_head_and_anything_else_leave_at_once():
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder)
    transport.write(CHUNKED_HEAD)
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    transport.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\n\r\nerror")
    assert recorder.writes == [CHUNKED_HEAD, b"HTTP/1.1 100 Continue\r\n\r\n",
                               b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\n\r\nerror"]


def test_a_close_sends_what_is_held_and_an_abort_does_not():
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder)
    transport.write(HEAD)
    transport.close()
    assert recorder.writes == [HEAD] and recorder.closed
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder)
    transport.write(HEAD)
    transport.abort()
    assert recorder.writes == [] and recorder.aborted
    assert transport.get_extra_info("socket") == "info:socket"  # everything else is the socket's


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_served_sandbox_answers_whole_and_streams_at_once():
    """Over a real socket, through ``serve``: answers arrive whole, back to back on one connection,
    and an event stream's head arrives before any event."""
    port = _free_port()
    command = [str(Path(sys.executable).with_name("baas-sandbox")), "serve", "--port", str(port),
               "--log-level", "warning", "--no-reload"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/__admin/accounts", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        with httpx.Client(base_url=base, headers=AUTH, timeout=5) as client:
            for _ in range(20):  # keep-alive: each answer must end where the next begins
                response = client.get("/baas/pix/keys", params={"account_key": LEGAL})
                assert response.status_code == 200 and response.json()["account_key"] == LEGAL
            created = client.post("/baas/pix/keys", json={"account_key": LEGAL, "pix_key_type": "random_key"})
            assert created.status_code == 201
        # HEAD: uvicorn writes no body, so the head must leave when the response completes
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        for method in ("HEAD", "GET"):
            connection.request(method, f"/baas/pix/keys?account_key={LEGAL}", headers=AUTH)
            response = connection.getresponse()
            response.read()
            assert response.status in (200, 405), (method, response.status)
        connection.close()
        # No event is ever published here: a head held until the first event would never arrive,
        # and the client's time-out would fail the test (no timing claim needed).
        with httpx.stream("GET", f"{base}/__admin/events/stream", timeout=5) as stream:
            assert stream.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_lane_answers_before_the_full_pipeline_is_built_and_the_rest_waits_for_it():
    app = create_app(Settings(hot_reload=False, validate_responses=True))
    client = app.test_client()  # no lifespan: nothing starts the build in the background
    response = client.get("/baas/pix/keys", params={"account_key": LEGAL}, headers=AUTH)
    assert response.status_code == 200
    assert not app.pipeline_built
    response = client.get("/__admin/accounts")  # needs the full pipeline: built, then answered
    assert response.status_code == 200 and len(response.json()["accounts"]) == 9
    assert app.pipeline_built


def test_the_server_starts_building_the_full_pipeline_with_its_lifespan():
    app = create_app(Settings(hot_reload=False))
    with app.test_client():
        app.start_building().result(timeout=30)
        assert app.pipeline_built


def test_forked_processes_make_different_ids():
    """``--workers N`` forks after the app is built: each worker must not repeat its parent's (and
    its siblings') ids, which name accounts and requests in the store they share."""
    import os

    from baas_sandbox.ids import new_id

    new_id()  # the parent's generator in use before the fork, as the app's start-up uses it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as child:
        assert child.read() != new_id()


def test_generated_ids_are_distinct_version_4_uuids():
    import uuid

    from baas_sandbox.ids import new_id

    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:1000]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
