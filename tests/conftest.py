"""Every test talks HTTP to a real app, with response validation on: a response the spec does
not allow answers 500 and fails the test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from baas_sandbox.app import create_app
from baas_sandbox.services.sandbox import Settings
from tests.redis_server import redis_url  # noqa: F401  (the session's Redis, for the Redis store's tests)

FAST = {"activation_delay": 0.05, "validate_responses": True, "webhook_backoff": 0.05, "webhook_timeout": 1.0}


def assert_events_valid(sandbox) -> None:
    """Every data event a test made, in every namespace, validates against its JSON Schema in spec/events/."""
    import jsonschema

    from baas_sandbox.services.data_events import event_schema

    namespaces = getattr(sandbox, "namespaces", None)
    if namespaces is not None:  # the app: each of its namespaces
        for each in namespaces:
            assert_events_valid(each)
        return
    for event in asyncio.run(sandbox.store.records("events")):
        schema = event_schema(event["event_type"])
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(event)]
        assert not errors, f"{event['event_type']} breaks its schema: {errors}\n{event}"


@contextmanager
def running(**settings) -> Iterator:
    """A test client whose event loop lives for the block, so scheduled decisions happen."""
    app = create_app(Settings(**(FAST | settings)))
    with app.test_client() as client:
        client.sandbox = app.sandbox
        yield client
    assert_events_valid(app)


@pytest.fixture
def client() -> Iterator:
    with running() as test_client:
        yield test_client


@pytest.fixture
def client_with() -> Callable:
    """``with client_with(code_ttl=0.2) as client:`` for tests that need other settings."""
    return running


@contextmanager
def live_server(port: int | None = None, **settings) -> Iterator[tuple[str, object]]:
    """The app served by uvicorn on a loopback port (``port``, or a free one), in a thread: (base URL, sandbox)."""
    import socket
    import threading
    import time

    import uvicorn

    # Bound here and handed to uvicorn (as the plugin and `serve` do): no window between finding a
    # free port and binding it in which another process could take it.
    sock = socket.socket()
    sock.bind(("127.0.0.1", port or 0))
    port = sock.getsockname()[1]
    app = create_app(Settings(**(FAST | settings)))
    from baas_sandbox.server import uvicorn_options

    # serve's protocol and bounds, as the pytest plugin has them (asyncio's loop: see the plugin)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=0.5,
                                           **(uvicorn_options() | {"loop": "asyncio"})))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app.sandbox
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert_events_valid(app)


@pytest.fixture
def server() -> Iterator[tuple[str, object]]:
    with live_server() as running_server:
        yield running_server
