"""The sandbox's clock: UTC, and the one place tests or adapters read the time from."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
