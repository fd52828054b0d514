"""A small closed-loop load generator for tests: raw HTTP/1.1 on keep-alive sockets.

A test process drives a sandbox served in another process: the client must cost far less than the
server per request, or it measures itself. httpx costs about as much as the sandbox's answer;
writing prepared bytes and reading an answer by its content-length costs a few microseconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from urllib.parse import urlsplit

_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def post_request(base_url: str, path: str, body: dict, headers: dict[str, str]) -> bytes:
    raw = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", f"host: {urlsplit(base_url).netloc}", "content-type: application/json",
             f"content-length: {len(raw)}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + raw


def throughput(base_url: str, request: bytes, total: int, connections: int = 16) -> tuple[float, list[int]]:
    """Send ``request`` ``total`` times over ``connections`` sockets, each waiting for its answer
    before sending again: (requests per second, the statuses seen)."""
    return asyncio.run(_drive(urlsplit(base_url), request, total, connections))


async def _drive(url, request: bytes, total: int, connections: int) -> tuple[float, list[int]]:
    remaining = total
    statuses: list[int] = []

    async def one_connection() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            while remaining > 0:
                remaining -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                assert length, f"no content-length in {head!r}"
                await reader.readexactly(int(length.group(1)))
                statuses.append(int(head[9:12]))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one_connection() for _ in range(connections))), timeout=120)
    return total / (time.perf_counter() - started), statuses
