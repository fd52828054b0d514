"""Time: the real clock (UTC), and a namespace's clock, which tests may freeze, set and advance.

A namespace's clock is data, not a timer: a ``ClockSetting`` (an offset from real time, or the
moment it was frozen at) kept in the namespace's state, from which ``now`` is derived. Every
process reading the same setting agrees on the namespace's time, and a snapshot carries it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class ClockSetting:
    """A namespace's time: real time moved by ``offset_seconds``, or stopped at ``frozen_at``."""

    offset_seconds: float = 0.0
    frozen_at: dt.datetime | None = None

    @property
    def frozen(self) -> bool:
        return self.frozen_at is not None

    @property
    def is_real_time(self) -> bool:
        return self.frozen_at is None and self.offset_seconds == 0.0

    def now(self, real: dt.datetime) -> dt.datetime:
        if self.frozen_at is not None:
            return self.frozen_at
        if self.offset_seconds:
            return real + dt.timedelta(seconds=self.offset_seconds)
        return real

    def offset_from(self, real: dt.datetime) -> float:
        """How far the namespace's time is from real time, in seconds (a frozen clock drifts)."""
        return (self.now(real) - real).total_seconds()

    def advanced(self, seconds: float) -> "ClockSetting":
        if self.frozen_at is not None:
            return ClockSetting(self.offset_seconds, self.frozen_at + dt.timedelta(seconds=seconds))
        return ClockSetting(self.offset_seconds + seconds, None)

    def set_to(self, moment: dt.datetime, real: dt.datetime) -> "ClockSetting":
        """The clock showing ``moment`` now, frozen there if it was frozen, running from there if not."""
        if self.frozen_at is not None:
            return ClockSetting(0.0, moment)
        return ClockSetting((moment - real).total_seconds(), None)

    def with_frozen(self, frozen: bool, real: dt.datetime) -> "ClockSetting":
        """Stopped at the present moment, or running again from the moment it was stopped at."""
        if frozen == self.frozen:
            return self
        if frozen:
            return ClockSetting(0.0, self.now(real))
        assert self.frozen_at is not None
        return ClockSetting((self.frozen_at - real).total_seconds(), None)


REAL_TIME = ClockSetting()
