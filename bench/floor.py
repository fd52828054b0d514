"""``python -m bench.floor --port P``: the least an HTTP server can do here, to show the load generator
is not what limits the results: uvicorn with httptools, one ASGI function answering every request with
the body of ``GET /baas/pix/keys`` (no routing, no validation). wrk driving it at 50 connections sends
several times the requests per second that either server under test answers."""

from __future__ import annotations

import argparse

BODY = b'{"account_key": "6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8", "pix_keys": []}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning", http="httptools")


if __name__ == "__main__":
    main()
