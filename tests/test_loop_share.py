"""The cap on the event loop's share that webhook deliveries take (adapters/loop_share.py).

A unit test: the share is a mechanism inside the server, seen from outside only as throughput,
which the load tests of test_webhooks.py measure. Only lower bounds on waits are asserted.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from baas_sandbox.adapters.loop_share import BURST, LoopShare


async def busy(seconds: float) -> str:
    """Work that holds the loop (as encoding, signing and httpx's own code do), around an await."""
    time.sleep(seconds / 2)
    await asyncio.sleep(0)
    time.sleep(seconds / 2)
    return "done"


def test_work_over_its_share_waits_until_the_loop_time_is_repaid():
    async def scenario() -> float:
        share = LoopShare(0.1)
        assert await share.run(busy(0.03)) == "done"
        started = time.monotonic()
        await share.turn()
        return time.monotonic() - started

    waited = asyncio.run(scenario())
    assert waited >= (0.03 - BURST) / 0.1 * 0.9  # 0.25 s: 30 ms of loop time at a 10% share


def test_work_within_its_share_does_not_wait():
    async def scenario() -> None:
        share = LoopShare(0.1)
        await share.run(asyncio.sleep(0.05))  # waiting on the loop costs the loop nothing
        await asyncio.wait_for(share.turn(), timeout=5)  # a bound for a hang, not a speed claim

    asyncio.run(scenario())


def test_errors_and_cancellation_pass_through_the_meter():
    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("receiver said no")

    async def scenario() -> None:
        share = LoopShare(0.5)
        with pytest.raises(ValueError, match="receiver said no"):
            await share.run(fails())
        task = asyncio.get_running_loop().create_task(share.run(asyncio.sleep(60)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
