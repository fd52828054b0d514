"""Which ``Sandbox`` (which namespace) serves the current request.

connexion resolves handlers and the bearer function by import path, so they cannot be handed the
sandbox as an argument; the namespace layer (``http/namespace.py``) and the express lane bind the
request's namespace to this context variable, and put it in the request's scope state for the
layers outside the binding (the journal).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from baas_sandbox.services.sandbox import Sandbox

if TYPE_CHECKING:
    from baas_sandbox.services.namespaces import Namespaces

_current: ContextVar[Sandbox] = ContextVar("baas_sandbox")


def current_sandbox() -> Sandbox:
    return _current.get()


_namespaces: ContextVar["Namespaces"] = ContextVar("baas_sandbox_namespaces")


def current_namespaces() -> "Namespaces":
    """Every namespace of the app serving the request (the admin API's namespace operations)."""
    return _namespaces.get()
