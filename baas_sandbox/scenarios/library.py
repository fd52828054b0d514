"""The scenarios on disk (one library per process), and per namespace which are active and how
often each rule matched and applied (``ScenarioSwitches``, part of a namespace's state)."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from baas_sandbox.scenarios.loader import ScenarioError, load_scenario
from baas_sandbox.scenarios.model import RequestView, Rule, RuleCount, Scenario
from baas_sandbox.spec import Contract

logger = logging.getLogger("baas_sandbox.scenarios")


class HasSwitches(Protocol):
    scenario_switches: ScenarioSwitches


class UnknownScenario(LookupError):
    def __init__(self, names: Iterable[str], known: Iterable[str]) -> None:
        self.names = list(names)
        super().__init__(f"unknown scenario(s): {', '.join(self.names)} (known: {', '.join(sorted(known)) or 'none'})")


@dataclass(frozen=True)
class Choice:
    scenario: Scenario
    rule: Rule
    count: RuleCount


@dataclass
class ScenarioSwitches:
    """One namespace's scenario state: the active scenarios, in order, and each rule's count.

    Counts are keyed by the rule object: a scenario reloaded from its edited file has new rules,
    whose counts start at zero, in every namespace."""

    active: list[str] = field(default_factory=list)
    counts: weakref.WeakKeyDictionary[Rule, RuleCount] = field(default_factory=weakref.WeakKeyDictionary)


class ScenarioLibrary:
    """Scenario files of one folder; safe to use from the event loop and from the file watcher.

    What a namespace switched on and counted is its ``ScenarioSwitches``, given to each call."""

    def __init__(self, directory: Path, contract: Contract, product_operations: Iterable[str],
                 seed: int | None = None, active: Iterable[str] = ()) -> None:
        self.directory = directory
        self.contract = contract
        self.product_operations = frozenset(product_operations)
        self.seed = seed
        self._lock = threading.RLock()
        self._scenarios: dict[str, Scenario] = {}
        self._versions: dict[Path, tuple[int, int]] = {}
        self._problems: dict[str, str] = {}  # scenario name -> why its latest edit was refused
        self.load(strict=True)
        self._initially_active = list(active)
        self.activate(ScenarioSwitches(), self._initially_active)  # unknown names stop start-up

    # -- loading ----------------------------------------------------------------------------------

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.yaml")) if self.directory.is_dir() else []

    def load(self, strict: bool = False) -> list[str]:
        """(Re)load what changed on disk; returns what happened, one line per file.

        ``strict`` (start-up): the broken files raise one ``ScenarioError`` with every problem of
        each. Otherwise a broken edit keeps the last good version of the scenario and the reason is
        logged and kept for the admin API.
        """
        report = []
        refused: list[ScenarioError] = []
        with self._lock:
            present = {}
            for path in self.files():
                try:
                    stat = path.stat()
                except OSError:  # removed between listing and reading, or a dangling link
                    continue
                present[path] = (stat.st_mtime_ns, stat.st_size)
            for path, version in present.items():
                if self._versions.get(path) == version:
                    continue
                self._versions[path] = version
                try:
                    scenario = load_scenario(path, self.contract, self.product_operations)
                except Exception as exc:  # noqa: BLE001 - whatever breaks, one file must not stop the rest
                    if not isinstance(exc, ScenarioError):
                        exc = ScenarioError(path, None, "", f"cannot be loaded ({type(exc).__name__}: {exc})")
                    if strict:
                        refused.append(exc)
                        continue
                    self._problems[path.stem] = str(exc)
                    kept = "keeping the last good version" if path.stem in self._scenarios else "not loaded"
                    logger.warning("scenario %s refused (%s): %s", path.stem, kept, exc)
                    report.append(f"{path.stem}: refused")
                    continue
                self._scenarios[scenario.name] = scenario
                self._problems.pop(scenario.name, None)
                logger.info("scenario %s loaded from %s", scenario.name, path)
                report.append(f"{scenario.name}: loaded")
            for path in set(self._versions) - set(present):
                del self._versions[path]
                if self._scenarios.pop(path.stem, None) is not None:
                    logger.info("scenario %s removed (its file is gone)", path.stem)
                    report.append(f"{path.stem}: removed")
                self._problems.pop(path.stem, None)
        if refused:
            raise ScenarioError.several(refused)
        return report

    # -- switching --------------------------------------------------------------------------------

    def new_switches(self) -> ScenarioSwitches:
        """A new namespace's switches: the start-up selection (``--scenario``), every count at zero."""
        with self._lock:
            return ScenarioSwitches(active=[name for name in self._initially_active if name in self._scenarios])

    def active(self, switches: ScenarioSwitches) -> list[str]:
        with self._lock:
            return [name for name in switches.active if name in self._scenarios]

    def activate(self, switches: ScenarioSwitches, names: Iterable[str]) -> None:
        names = list(dict.fromkeys(names))
        with self._lock:
            unknown = [name for name in names if name not in self._scenarios]
            if unknown:
                raise UnknownScenario(unknown, self._scenarios)
            switches.active = names

    def known(self, name: str) -> bool:
        return name in self._scenarios

    # -- deciding ---------------------------------------------------------------------------------

    def choose(self, switches: ScenarioSwitches, request: RequestView, only: str | None = None) -> Choice | None:
        """The first rule, in order, that matches ``request`` and whose budget fires (counted in
        ``switches``, the namespace's).

        ``only``: the scenario named by the request's ``X-Sandbox-Scenario`` header, instead of the
        active ones.
        """
        with self._lock:
            names = [only] if only is not None else self.active(switches)
            for name in names:
                scenario = self._scenarios.get(name)
                if scenario is None:
                    continue
                for rule in scenario.rules:
                    if not rule.match.matches(request):
                        continue
                    count = self._count(switches, scenario, rule)
                    count.matched += 1
                    if rule.budget.fires(count.matched, count.rng):
                        count.applied += 1
                        return Choice(scenario, rule, count)
        return None

    def _count(self, switches: ScenarioSwitches, scenario: Scenario, rule: Rule) -> RuleCount:
        count = switches.counts.get(rule)
        if count is None:
            count = switches.counts[rule] = RuleCount.start(self.seed, scenario.name, rule.name)
        return count

    def sample_latency(self, choice: Choice) -> float:
        with self._lock:  # the rule's random source is shared by concurrent requests
            assert choice.rule.latency is not None
            return choice.rule.latency.sample_seconds(choice.count.rng)

    def describe(self, switches: ScenarioSwitches) -> dict:
        with self._lock:
            active = self.active(switches)
            return {
                "active": active,
                "scenarios": [
                    {
                        "name": scenario.name,
                        "description": scenario.description,
                        "file": scenario.source,
                        "active": scenario.name in active,
                        "problem": self._problems.get(scenario.name),
                        "rules": [
                            {
                                "name": rule.name,
                                "line": rule.line,
                                "operations": sorted(rule.match.operations),
                                "budget": rule.budget.describe(),
                                "effects": rule.effects(),
                                "matched": count.matched if count else 0,
                                "applied": count.applied if count else 0,
                            }
                            for rule in scenario.rules
                            for count in [switches.counts.get(rule)]
                        ],
                    }
                    for scenario in sorted(self._scenarios.values(), key=lambda s: s.name)
                ],
                "refused": [{"name": name, "problem": problem} for name, problem in sorted(self._problems.items())
                            if name not in self._scenarios],
            }


class NamespaceScenarios:
    """The library as one namespace sees it: its switches (kept by its store), bound (what handlers
    and layers use)."""

    def __init__(self, library: ScenarioLibrary, store: "HasSwitches") -> None:
        self.library, self._store = library, store

    @property
    def switches(self) -> ScenarioSwitches:
        return self._store.scenario_switches

    @property
    def active(self) -> list[str]:
        return self.library.active(self.switches)

    @property
    def may_apply(self) -> bool:
        """Whether any scenario is switched on: a cheap check, without the lock, for every request (a
        name whose file was removed since still counts: the answer errs on the side of "yes")."""
        return bool(self.switches.active)

    def activate(self, names: Iterable[str]) -> None:
        self.library.activate(self.switches, names)

    def known(self, name: str) -> bool:
        return self.library.known(name)

    def choose(self, request: RequestView, only: str | None = None) -> Choice | None:
        return self.library.choose(self.switches, request, only)

    def sample_latency(self, choice: Choice) -> float:
        return self.library.sample_latency(choice)

    def describe(self) -> dict:
        return self.library.describe(self.switches)
