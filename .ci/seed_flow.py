"""One seed flow against a served sandbox, with the standard library only: the seed 002 CNPJ request
verbatim (201, pending), then the account's list until DICT has made the key active.

    python .ci/seed_flow.py http://127.0.0.1:PORT
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request

ACCOUNT = "6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8"
HEADERS = {"Authorization": "Bearer org-a-token", "Content-Type": "application/json"}


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=HEADERS)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.load(answer)


def main(base: str) -> int:
    status, created = call("POST", f"{base}/baas/pix/keys",
                           {"account_key": ACCOUNT, "pix_key_type": "cnpj", "pix_key": "09080702000105"})
    assert status == 201 and created["request_status"] == "pending", (status, created)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        _, listed = call("GET", f"{base}/baas/pix/keys?account_key={ACCOUNT}")
        statuses = {key["pix_key"]: key["pix_key_status"] for key in listed["pix_keys"]}
        if statuses.get("09080702000105") == "active":
            print(f"seed flow: 201 pending, then active ({base})")
            return 0
        time.sleep(0.1)
    print(f"seed flow: the key is not active after 15 s: {listed}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
