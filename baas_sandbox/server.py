"""How ``baas-sandbox serve`` runs uvicorn: the options chosen by measurement (``python -m bench``).

``uvicorn_options()`` is merged into the CLI's ``uvicorn.run(app, host=..., port=..., log_level=...)``.
"""

from __future__ import annotations

import importlib.util


def uvicorn_options() -> dict:
    """Options for ``uvicorn.run``; none of them changes what a client sees.

    - ``http``: httptools, the C HTTP parser; the pure-Python h11 parser only where it is missing.
    - ``loop``: uvloop; asyncio's own loop only where it is missing (uvloop has no Windows build).

    Both come with connexion's ``uvicorn`` extra (``uvicorn[standard]``), and are what uvicorn's
    ``auto`` picks when installed: naming them states the choice, measured on this project
    (bench/RESULTS.md), and keeps it if uvicorn's defaults change.

    Measured alternative, not chosen: asyncio's loop serves a saturated server more fairly (at 50
    connections p99 ~3-4x lower: 110 vs 365 ms on credentials) but answers ~20% fewer requests per
    second at 50 connections and has a worse tail at 1 connection (p99 ~20-30 ms vs ~2-6 ms). A
    local sandbox mostly serves a few clients at a time, so throughput and the low-concurrency tail
    win. To prefer the saturated tail, return ``"loop": "asyncio"``.
    """
    return {
        "http": "httptools" if _installed("httptools") else "h11",
        "loop": "uvloop" if _installed("uvloop") else "asyncio",
    }


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
