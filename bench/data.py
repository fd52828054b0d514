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

    def __init__(self, port: int, first: int = 0, namespaces: int = 0) -> None:
        """``namespaces``: spread the accounts over that many namespaces (``bench-0`` ...), each line of
        ``room_for`` then "NAMESPACE ACCOUNT"; 0: the default namespace, a line is the account."""
        self.port = port
        self.next = first
        self.namespaces = namespaces

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
                headers = {"Content-Type": "application/json"}
                namespace = f"bench-{self.next % self.namespaces}" if self.namespaces else None
                if namespace:
                    headers["X-Sandbox-Namespace"] = namespace
                conn.request("POST", "/__admin/accounts", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                if response.status != 201:
                    raise SystemExit(f"bench: POST /__admin/accounts answered {response.status}: {payload[:300]!r}")
                account = json.loads(payload)["account_key"]
                keys.append(f"{namespace} {account}" if namespace else account)
        finally:
            conn.close()
        return keys

    def room_for(self, requests: int) -> list[str]:
        """Enough accounts for ``requests`` new keys, spread round-robin."""
        return self.legal_accounts(max(1, math.ceil(requests / KEYS_PER_LEGAL_ACCOUNT)))
