"""Full garbage collections when the server is idle, not in the middle of a load test.

CPython collects its oldest generation whenever it has grown by a quarter, and such a collection
walks every object that lives on: in a sandbox that stores keys, every stored key. Measured under
load (``python -m bench``, 50 connections creating keys): 7 full collections in 10 s, up to 141 ms
each, and the p99 latency was theirs. What a sandbox keeps (accounts, key requests, logs) holds no
reference cycles; the cycles a request makes (exceptions, tasks) die young, where the two young
generations, still collected as usual, reclaim them.

So, in the process that serves one sandbox (``baas-sandbox serve``):

- once the app is loaded, everything loaded is frozen (``gc.freeze``, after a collection of the
  young generations): never walked again;
- allocations no longer trigger full collections;
- after a second without requests, one full collection runs, and what survives it is frozen in
  turn, so the next one walks only what came since. A frozen object is still freed when nothing
  refers to it; only a cycle of frozen objects would outlive its use, and the sandbox's own data
  makes none.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("baas_sandbox")

IDLE_SECONDS = 1.0
#: The oldest generation's threshold when allocations must not trigger it (a C int).
NEVER = 2**31 - 1


async def collect_when_idle(requests_seen: Callable[[], int], loaded: Awaitable | None,
                            stop: asyncio.Event, idle_seconds: float = IDLE_SECONDS) -> None:
    """Run for the server's life: ``requests_seen()`` counts the requests so far; ``loaded``
    completes when the app has loaded what it needs for good (the full pipeline). Ends when
    ``stop`` is set, at once if that comes first."""
    if loaded is not None:
        loading = asyncio.ensure_future(loaded)
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not loading.done():  # stopped first: the server is going away
            loading.cancel()
            return
        if loading.cancelled() or loading.exception() is not None:
            return  # the app reports its own failure; collection stays Python's
    young, middle, oldest = gc.get_threshold()
    # The young generations only: a full pass would walk everything loaded, which can be a million
    # stored keys (seconds); what is old by now lives for the process anyway.
    gc.collect(1)
    gc.freeze()
    gc.set_threshold(young, middle, NEVER)
    try:
        seen = requests_seen()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), idle_seconds)
            except TimeoutError:
                pass
            now = requests_seen()
            if now == seen and gc.get_count()[2] > 0:  # idle, and something reached the oldest generation
                gc.collect()
                gc.freeze()
            seen = now
    finally:
        gc.set_threshold(young, middle, oldest)
