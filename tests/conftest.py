"""Every test talks HTTP to a real app, with response validation on: a response the spec does
not allow answers 500 and fails the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from baas_sandbox.app import create_app
from baas_sandbox.services.sandbox import Settings

FAST = {"activation_delay": 0.05, "validate_responses": True}


@contextmanager
def running(**settings) -> Iterator:
    """A test client whose event loop lives for the block, so scheduled decisions happen."""
    app = create_app(Settings(**(FAST | settings)))
    with app.test_client() as client:
        client.sandbox = app.sandbox
        yield client


@pytest.fixture
def client() -> Iterator:
    with running() as test_client:
        yield test_client


@pytest.fixture
def client_with() -> Callable:
    """``with client_with(code_ttl=0.2) as client:`` for tests that need other settings."""
    return running
