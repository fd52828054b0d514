"""Hot reload: an edited, added or removed scenario file takes effect without a restart."""

from __future__ import annotations

import asyncio
import logging

from baas_sandbox.scenarios.library import ScenarioLibrary

logger = logging.getLogger("baas_sandbox.scenarios")


async def watch(library: ScenarioLibrary, stop: asyncio.Event) -> None:
    """Reload the library whenever its folder changes, until ``stop`` is set.

    watchfiles yields once a burst of changes has been quiet for 50 ms (an editor's save is
    several events), well within the 2 seconds promised.
    """
    from watchfiles import awatch  # here: not on the way to the server's first answer

    directory = library.directory
    if not directory.is_dir():
        logger.info("no scenario folder at %s: hot reload is off", directory)
        return
    async for _changes in awatch(directory, stop_event=stop, step=50, debounce=1000, recursive=False):
        try:
            for line in library.load():
                logger.info("hot reload: %s", line)
        except Exception:  # a reload must never end hot reload for the rest of the run
            logger.exception("hot reload failed; watching on")
