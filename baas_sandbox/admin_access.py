"""Who may use the admin API, decided when ``baas-sandbox serve`` starts.

On loopback the admin API needs no token: only this machine reaches it (and ``http/admin_guard.py``
keeps browsers' cross-site requests and DNS rebinding out). Bound to any other address it would
hand reset, accounts and verification codes to the network, so the server refuses to start
without an admin token, unless told with ``--no-admin-auth`` that the network is private (a
container's), which the banner then repeats as a warning.

Free of heavy imports: the CLI calls it before building the app.
"""

from __future__ import annotations

import ipaddress
import os

from baas_sandbox.defaults import LOOPBACK_HOSTS

TOKEN_VARIABLE = "BAAS_SANDBOX_ADMIN_TOKEN"


def is_loopback(host: str) -> bool:
    """``localhost`` and loopback addresses (127/8, ::1); any other name or address is the network."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_from(option: str | None) -> str | None:
    """``--admin-token``, else ``$BAAS_SANDBOX_ADMIN_TOKEN``; empty counts as none."""
    return option or os.environ.get(TOKEN_VARIABLE) or None


def startup_problem(host: str, token: str | None, no_admin_auth: bool) -> str | None:
    """One line saying why the server must not start, or None."""
    if token and no_admin_auth:
        return ("an admin token and --no-admin-auth were both given: choose one "
                f"(unset {TOKEN_VARIABLE} or drop --no-admin-auth)")
    if token or no_admin_auth or is_loopback(host):
        return None
    return (f"--host {host} serves the admin API (/__admin: reset, accounts, verification codes) to the "
            f"network: give it a token (--admin-token or {TOKEN_VARIABLE}; clients send "
            "'Authorization: Bearer <token>'), or, on a private network only, start with --no-admin-auth")


def banner_warning(host: str, port: int, token: str | None, no_admin_auth: bool) -> str | None:
    """What the banner says of the admin API's access, when there is something to say."""
    if token:
        return "baas-sandbox: the admin API (/__admin) needs 'Authorization: Bearer <admin token>'"
    if no_admin_auth and not is_loopback(host):
        return (f"baas-sandbox: WARNING: --no-admin-auth: the admin API (/__admin: reset, accounts, "
                f"verification codes) is open to anyone who can reach {host}:{port}")
    return None


def allowed_hosts(host: str, extra: str) -> tuple[str, ...]:
    """The names the admin API answers to: this machine's, the bound address (unless a wildcard such
    as 0.0.0.0, which names no one), and ``--allowed-hosts`` (comma-separated; '*' for any)."""
    names = list(LOOPBACK_HOSTS)
    bound = host.strip().strip("[]").lower()
    try:
        wildcard = ipaddress.ip_address(bound).is_unspecified
    except ValueError:
        wildcard = False
    if bound and not wildcard:
        names.append(bound)
    names += [name.strip().lower().strip("[]") for name in extra.split(",") if name.strip()]
    return tuple(dict.fromkeys(names))
