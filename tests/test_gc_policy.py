"""Full garbage collections when the server is idle (baas_sandbox/gc_policy.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from baas_sandbox.gc_policy import NEVER, collect_when_idle


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _old_garbage_cycle() -> weakref.ref:
    """A reference cycle that becomes garbage only once it is in the oldest generation, where only a
    full collection reclaims it."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    gc.collect(1)  # survivors of the young generations move to the oldest
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def restore_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def run_policy(busy: bool, seconds: float) -> tuple[bool, tuple, int]:
    """Whether an old garbage cycle was still there after ``seconds`` (busy or idle), the thresholds
    and the frozen count meanwhile."""
    async def scenario():
        requests = 0
        stop = asyncio.Event()
        task = asyncio.create_task(collect_when_idle(lambda: requests, None, stop, idle_seconds=0.05))
        await asyncio.sleep(0.02)  # the policy has frozen what is loaded and taken over
        threshold_meanwhile, frozen = gc.get_threshold(), gc.get_freeze_count()
        cycle = _old_garbage_cycle()
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            if busy:
                requests += 1
            await asyncio.sleep(0.01)
        alive = cycle() is not None  # before the policy stops: then Python's own rule is back
        stop.set()
        await task
        return alive, threshold_meanwhile, frozen

    return asyncio.run(scenario())


def test_an_idle_server_collects_the_old_generation_and_freezes_what_survives():
    alive, threshold, frozen = run_policy(busy=False, seconds=0.3)
    assert threshold[2] == NEVER and frozen > 0
    assert not alive  # the old cycle was collected


def test_a_busy_server_runs_no_full_collection():
    alive, threshold, _ = run_policy(busy=True, seconds=0.3)
    assert threshold[2] == NEVER
    assert alive  # still there: no full collection under load
    assert gc.get_threshold()[2] != NEVER  # Python's own rule is back once the policy stops


def test_a_server_stopped_before_it_has_loaded_stops_at_once():
    async def scenario():
        stop = asyncio.Event()
        never_loaded = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(collect_when_idle(lambda: 0, never_loaded, stop, idle_seconds=0.05))
        await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, timeout=1)
        return gc.get_threshold()[2]

    assert asyncio.run(scenario()) != NEVER  # it never took over
