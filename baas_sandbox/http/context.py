"""Which ``Sandbox`` (which namespace) serves the current request.

connexion resolves handlers and the bearer function by import path, so they cannot be handed the
sandbox as an argument; the namespace layer (``http/namespace.py``) and the express lane bind the
request's namespace to this context variable, and put it in the request's scope state for the
layers outside the binding (the journal).
"""

from __future__ import annotations

from contextvars import ContextVar

from baas_sandbox.services.sandbox import Sandbox

_current: ContextVar[Sandbox] = ContextVar("baas_sandbox")


def current_sandbox() -> Sandbox:
    return _current.get()
