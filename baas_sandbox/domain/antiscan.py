"""DICT's anti-scan rule for key lookups (ENTRIES_READ_USER_ANTISCAN): a token bucket per payer.

A lookup is answered while the paying account's bucket holds at least one token; it then costs 1
token when the key is found and 20 when it is not (scanning for keys costs twenty times more than
paying them). The bucket holds 100 tokens for a natural person and 1,000 for a legal person and
refills 2 tokens a minute. Refill is computed when the bucket is read, from the time of its last
change (tokens + elapsed × rate, capped): no timer, and the namespace's clock moves it.

A key not found is charged in full even with fewer than 20 tokens left: the bucket then goes below
zero and the next lookup waits for it to be back to one token. Refusing instead when fewer than 20
tokens are left would tell the caller, by the refusal, that the key is not registered.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

from baas_sandbox.domain import errors
from baas_sandbox.domain.model import PersonType

CAPACITY = {PersonType.NATURAL: 100, PersonType.LEGAL: 1000}
REFILL_PER_MINUTE = 2
COST_FOUND = 1
COST_NOT_FOUND = 20
POLICY = "ENTRIES_READ_USER_ANTISCAN"


@dataclass(frozen=True)
class TokenBucket:
    account_key: str
    person_type: PersonType
    capacity: int
    tokens: float  # at ``updated_at``
    updated_at: dt.datetime

    @classmethod
    def full(cls, account_key: str, person_type: PersonType, now: dt.datetime) -> "TokenBucket":
        capacity = CAPACITY[person_type]
        return cls(account_key, person_type, capacity, float(capacity), now)

    def tokens_at(self, now: dt.datetime) -> float:
        elapsed = max((now - self.updated_at).total_seconds(), 0.0)
        return min(float(self.capacity), self.tokens + elapsed * REFILL_PER_MINUTE / 60)

    def spend(self, cost: int, now: dt.datetime) -> "TokenBucket":
        """The bucket after a lookup of this cost; ``RateLimited`` (with the seconds until one token)
        when it is empty."""
        tokens = self.tokens_at(now)
        if tokens < 1:
            raise errors.RateLimited(retry_after=max(1, math.ceil((1 - tokens) * 60 / REFILL_PER_MINUTE)))
        return replace(self, tokens=tokens - cost, updated_at=max(now, self.updated_at))

    def as_dict(self, now: dt.datetime) -> dict:
        return {
            "account_key": self.account_key,
            "policy": POLICY,
            "person_type": str(self.person_type),
            "capacity": self.capacity,
            "tokens": round(self.tokens_at(now), 3),
            "refill_per_minute": REFILL_PER_MINUTE,
            "cost_found": COST_FOUND,
            "cost_not_found": COST_NOT_FOUND,
        }
