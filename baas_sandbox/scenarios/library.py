"""The scenarios on disk (one library per process), and per namespace which are active and how
often each rule matched and applied: kept by the namespace's store (``ScenarioState``), so that
every process serving a namespace switches and counts as one; ``NamespaceScenarios`` binds both."""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from baas_sandbox.scenarios.loader import ScenarioError, load_scenario
from baas_sandbox.scenarios.model import RequestView, Rule, RuleCount, Scenario
from baas_sandbox.spec import Contract

logger = logging.getLogger("baas_sandbox.scenarios")


class ScenarioState(Protocol):
    """Where a namespace keeps which scenarios are on and each rule's counts: its store (shared by
    every process serving it, so a switch made through one is seen by all, and ``first: N`` is
    counted once for all of them)."""

    async def set_active_scenarios(self, names: list[str], restart_counts: bool = False) -> None: ...
    async def count_rule(self, rule_id: str, fires: Callable[[int], bool]) -> tuple[int, bool]: ...
    async def rule_counts(self) -> dict[str, tuple[int, int]]: ...


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
    """What a process holds of one namespace's scenarios: the active ones as last read from its
    store (every request reads them again first, ``Sandbox.settle``), and each rule's random source
    (probability budgets and latencies draw in each process; ``first``/``every`` count in the store).

    Sources are keyed by the rule object: a scenario reloaded from its edited file has new rules."""

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
        # scenario name -> its file's digest: the same in every process, new with every edit, so a
        # rule's counts (kept in the store, by rule id) start again when its file changes
        self._digests: dict[str, str] = {}
        self.load(strict=True)
        self._initially_active = list(active)
        self.checked(self._initially_active)  # unknown names stop start-up

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
                self._digests[scenario.name] = _digest(path)
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

    @property
    def initially_active(self) -> list[str]:
        """A new namespace's active scenarios: the start-up selection (``--scenario``)."""
        with self._lock:
            return [name for name in self._initially_active if name in self._scenarios]

    def active(self, names: Iterable[str]) -> list[str]:
        """``names`` without the scenarios whose file is gone."""
        with self._lock:
            return [name for name in names if name in self._scenarios]

    def checked(self, names: Iterable[str]) -> list[str]:
        """``names`` once each, in order; ``UnknownScenario`` if one is not a scenario."""
        names = list(dict.fromkeys(names))
        with self._lock:
            unknown = [name for name in names if name not in self._scenarios]
            if unknown:
                raise UnknownScenario(unknown, self._scenarios)
        return names

    def activate(self, switches: ScenarioSwitches, names: Iterable[str]) -> None:
        """Check ``names`` (start-up: an unknown one stops it) and hold them in ``switches``."""
        switches.active = self.checked(names)

    def known(self, name: str) -> bool:
        return name in self._scenarios

    # -- deciding ---------------------------------------------------------------------------------

    def rule_id(self, scenario: Scenario, index: int) -> str:
        """A rule's name in the store: its scenario, its file's digest and its place."""
        return f"{scenario.name}@{self._digests.get(scenario.name, '')}#{index}"

    def candidates(self, active: list[str], request: RequestView,
                   only: str | None = None) -> list[tuple[Scenario, Rule, str]]:
        """The rules that match ``request``, in order, with their ids (``only``: the scenario named by
        the request's ``X-Sandbox-Scenario`` header, instead of the active ones)."""
        found = []
        with self._lock:
            for name in [only] if only is not None else self.active(active):
                scenario = self._scenarios.get(name)
                if scenario is None:
                    continue
                found += [(scenario, rule, self.rule_id(scenario, index))
                          for index, rule in enumerate(scenario.rules) if rule.match.matches(request)]
        return found

    def source(self, switches: ScenarioSwitches, scenario: Scenario, rule: Rule) -> RuleCount:
        """The rule's random source in this process (and the counts last seen for it)."""
        with self._lock:
            count = switches.counts.get(rule)
            if count is None:
                count = switches.counts[rule] = RuleCount.start(self.seed, scenario.name, rule.name)
            return count

    def sample_latency(self, choice: Choice) -> float:
        with self._lock:  # the rule's random source is shared by concurrent requests
            assert choice.rule.latency is not None
            return choice.rule.latency.sample_seconds(choice.count.rng)

    def describe(self, active: list[str], counts: dict[str, tuple[int, int]]) -> dict:
        with self._lock:
            active = self.active(active)
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
                                "matched": count[0],
                                "applied": count[1],
                            }
                            for index, rule in enumerate(scenario.rules)
                            for count in [counts.get(self.rule_id(scenario, index), (0, 0))]
                        ],
                    }
                    for scenario in sorted(self._scenarios.values(), key=lambda s: s.name)
                ],
                "refused": [{"name": name, "problem": problem} for name, problem in sorted(self._problems.items())
                            if name not in self._scenarios],
            }


def _digest(path: Path) -> str:
    try:
        return hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()[:12]
    except OSError:  # removed meanwhile: the next load forgets it
        return ""


class NamespaceScenarios:
    """The library as one namespace sees it: its active scenarios and counts, kept by its store
    (``ScenarioState``), and what this process holds of them (``ScenarioSwitches``)."""

    def __init__(self, library: ScenarioLibrary, store: ScenarioState) -> None:
        self.library, self._store = library, store
        self.switches = ScenarioSwitches(active=library.initially_active)

    @property
    def active(self) -> list[str]:
        return self.library.active(self.switches.active)

    @property
    def may_apply(self) -> bool:
        """Whether any scenario is switched on: a cheap check for every request (a name whose file was
        removed since still counts: the answer errs on the side of "yes")."""
        return bool(self.switches.active)

    def adopt(self, active: list[str] | None) -> None:
        """The active scenarios as read from the store (None: never switched: the start-up selection)."""
        self.switches.active = self.library.initially_active if active is None else active

    async def activate(self, names: Iterable[str], restart_counts: bool = False) -> None:
        """Switch exactly ``names`` on (``UnknownScenario``: nothing changed), for every process."""
        names = self.library.checked(names)
        await self._store.set_active_scenarios(names, restart_counts)
        self.switches.active = names

    async def restart(self) -> None:
        """A reset: the start-up selection, every count at zero."""
        await self.activate(self.library.initially_active, restart_counts=True)

    def known(self, name: str) -> bool:
        return self.library.known(name)

    async def choose(self, request: RequestView, only: str | None = None) -> Choice | None:
        """The first rule, in order, that matches ``request`` and whose budget fires, counted in the
        store (``first: 3`` fires three times in all, whichever process serves the requests)."""
        for scenario, rule, rule_id in self.library.candidates(self.switches.active, request, only):
            source = self.library.source(self.switches, scenario, rule)
            matched, applied = await self._store.count_rule(rule_id, lambda nth: rule.budget.fires(nth, source.rng))
            source.matched = matched
            if applied:
                source.applied += 1
                return Choice(scenario, rule, source)
        return None

    def sample_latency(self, choice: Choice) -> float:
        return self.library.sample_latency(choice)

    async def describe(self) -> dict:
        return self.library.describe(self.switches.active, await self._store.rule_counts())
