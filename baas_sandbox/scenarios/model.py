"""What a scenario rule is, and its decisions: does it match, does its budget fire, how late."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

MISSING = object()


@dataclass(frozen=True)
class RequestView:
    """What a rule may look at in a request (header names lower case)."""

    operation_id: str
    method: str
    headers: dict[str, str]
    query: dict[str, str]
    path_params: dict[str, str]
    body: Any = None

    def value(self, source: str, name: str) -> Any:
        if source == "body":
            node = self.body
            for part in name.split("."):
                if not isinstance(node, dict) or part not in node:
                    return MISSING
                node = node[part]
            return node
        values = {"headers": self.headers, "query": self.query, "path": self.path_params}[source]
        return values.get(name.lower() if source == "headers" else name, MISSING)


@dataclass(frozen=True)
class Condition:
    """One test on one value: equals, one of, regex (search), present or absent."""

    source: str  # headers, query, path, body
    name: str
    equals: Any = MISSING
    one_of: tuple = ()
    regex: re.Pattern | None = None
    present: bool | None = None

    def holds(self, request: RequestView) -> bool:
        value = request.value(self.source, self.name)
        if self.present is not None and (value is not MISSING) != self.present:
            return False
        if self.equals is not MISSING and value != self.equals:
            return False
        if self.one_of and value not in self.one_of:
            return False
        if self.regex is not None and (value is MISSING or not self.regex.search(str(value))):
            return False
        return True


@dataclass(frozen=True)
class Match:
    operations: frozenset[str]  # empty: every operation of the product API
    conditions: tuple[Condition, ...] = ()

    def matches(self, request: RequestView) -> bool:
        if self.operations and request.operation_id not in self.operations:
            return False
        return all(condition.holds(request) for condition in self.conditions)


@dataclass(frozen=True)
class Budget:
    """Which matching calls the rule applies to: always, the first N, every Nth, or with probability p."""

    first: int | None = None
    every: int | None = None
    probability: float | None = None

    def fires(self, nth_match: int, rng: random.Random) -> bool:
        """``nth_match`` counts from 1 the calls this rule has matched, this one included."""
        if self.first is not None:
            return nth_match <= self.first
        if self.every is not None:
            return nth_match % self.every == 0
        if self.probability is not None:
            return rng.random() < self.probability
        return True

    def describe(self) -> str:
        if self.first is not None:
            return f"first {self.first}"
        if self.every is not None:
            return f"every {self.every}"
        if self.probability is not None:
            return f"probability {self.probability}"
        return "always"


@dataclass(frozen=True)
class Latency:
    """A delay: fixed, uniform between two bounds, or log-normal around a median."""

    fixed_ms: float | None = None
    uniform_ms: tuple[float, float] | None = None
    median_ms: float | None = None
    sigma: float = 0.0

    def sample_seconds(self, rng: random.Random) -> float:
        if self.fixed_ms is not None:
            return self.fixed_ms / 1000
        if self.uniform_ms is not None:
            return rng.uniform(*self.uniform_ms) / 1000
        assert self.median_ms is not None
        return self.median_ms * math.exp(self.sigma * rng.gauss(0.0, 1.0)) / 1000


@dataclass(frozen=True)
class Respond:
    """A documented status, with an inline body or an example of the spec (named, or the first)."""

    status: int
    body: Any = None
    example: str | None = None
    inline: bool = False  # the body is the rule's own; otherwise the operation's example is used


@dataclass(frozen=True)
class Fault:
    """A network fault: ``reset``, ``close`` (no answer), ``truncate`` (part of the body), ``drip``."""

    kind: str
    fraction: float = 0.5  # truncate: the share of the body sent
    duration_ms: float = 0.0  # drip: over how long the body is sent
    chunks: int = 10  # drip: in how many pieces


@dataclass(eq=False)  # a rule is itself (hashed by identity): each namespace counts it by the object
class Rule:
    name: str
    match: Match
    budget: Budget
    respond: Respond | None = None
    latency: Latency | None = None
    fault: Fault | None = None
    line: int | None = None

    def effects(self) -> list[str]:
        named = []
        if self.latency:
            named.append("latency")
        if self.respond:
            example = f" {self.respond.example}" if self.respond.example else ""
            named.append(f"respond {self.respond.status}{example}")
        if self.fault:
            named.append(f"fault {self.fault.kind}")
        return named


@dataclass
class Scenario:
    name: str
    description: str
    rules: list[Rule]
    source: str  # the file it came from


@dataclass
class RuleCount:
    """How often a rule matched and applied in one namespace, and its random source there: each
    namespace counts its own ``first: N`` budgets and draws its own probabilities."""

    matched: int = 0
    applied: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def start(cls, seed: int | None, scenario: str, rule: str) -> "RuleCount":
        """Reproducible with a seed (the same draws in every namespace), independent of other rules."""
        return cls(rng=random.Random(f"{seed}:{scenario}:{rule}") if seed is not None else random.Random())
