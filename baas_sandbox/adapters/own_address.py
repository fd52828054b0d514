"""Whether a URL reaches this sandbox itself: a webhook must never call the sandbox's own API.

A subscription to ``http://127.0.0.1:8080/__admin/reset`` would have the sandbox reset itself at
its first event. The same listening socket is reached under many names: ``localhost``,
``127.0.0.1`` (and all of 127/8), ``[::1]``, ``0.0.0.0`` (which Linux connects to this machine),
``::ffff:127.0.0.1``, and, when bound to ``0.0.0.0``, any of the machine's own addresses and the
names that resolve to them. So a URL is "this sandbox" when its port is one the sandbox listens
on and its host resolves to an address of this machine, whichever one the sandbox is bound to
(conservative: a receiver on another address of this machine with the sandbox's very port is
refused too).

Whether an address is this machine's is asked of the operating system by binding a socket to it
(port 0, closed at once): no packet is sent, and no list of interfaces (a dependency) is needed.
A name is resolved only when the port matches (rare), with the system's resolver.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}


def targets_own_port(url: str, own_ports: Collection[int]) -> str | None:
    """Why ``url`` would reach this sandbox (a sentence), or None."""
    if not own_ports:
        return None
    import httpx  # here: only subscriptions use it, and httpx is slow to import (start-up time)

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return None  # refused as an invalid URL elsewhere
    port = parsed.port or DEFAULT_PORTS.get(parsed.scheme)
    host = parsed.host or ""
    if port not in own_ports or not is_this_machine(host):
        return None
    return (f"reaches this sandbox itself ({host} port {port} is where it listens): a delivery would "
            "call its own API")


def is_this_machine(host: str) -> bool:
    """True when connecting to ``host`` reaches this machine."""
    return any(_is_local(address) for address in _addresses(host))


def _addresses(host: str) -> list[Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):  # unknown name: it cannot reach anything, this machine included
        return []
    found = []
    for *_, sockaddr in infos:
        try:
            found.append(ipaddress.ip_address(str(sockaddr[0]).partition("%")[0]))
        except ValueError:
            continue
    return found


def _is_local(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))  # only an address of this machine can be bound
    except OSError:
        return False
    return True
