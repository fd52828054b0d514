"""Valid test data: CNPJs with their check digits, and accounts with room for fresh keys."""

from __future__ import annotations

import http.client
import json
import math

from stdnum.br import cnpj

#: DICT's limit for a legal person's account: 20 keys.
KEYS_PER_LEGAL_ACCOUNT = 20


def valid_cnpj(n: int) -> str:
    """The n-th valid CNPJ of a series of headquarters (``/0001``) starting with 6 (DICT approves it)."""
    base = f"6{n:07d}0001"
    return base + cnpj.calc_check_digits(base)


class AccountMaker:
    """Opens accounts through ``POST /__admin/accounts``, on one kept-alive connection."""

    def __init__(self, port: int, first: int = 0) -> None:
        self.port = port
        self.next = first

    def legal_accounts(self, count: int) -> list[str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        keys = []
        try:
            for _ in range(count):
                self.next += 1
                body = json.dumps({
                    "owner_name": f"BENCH EMPRESA {self.next} LTDA",
                    "owner_document_number": valid_cnpj(self.next),
                    "owner_person_type": "legal",
                    "status": "open",
                    "tenant": "org-a",
                })
                conn.request("POST", "/__admin/accounts", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                if response.status != 201:
                    raise SystemExit(f"bench: POST /__admin/accounts answered {response.status}: {payload[:300]!r}")
                keys.append(json.loads(payload)["account_key"])
        finally:
            conn.close()
        return keys

    def room_for(self, requests: int) -> list[str]:
        """Enough accounts for ``requests`` new keys, spread round-robin."""
        return self.legal_accounts(max(1, math.ceil(requests / KEYS_PER_LEGAL_ACCOUNT)))
