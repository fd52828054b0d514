"""/__admin/clock: the namespace's clock; freeze it, set it, advance it, give it back to real time."""

from __future__ import annotations

import datetime as dt

from baas_sandbox.clock import REAL_TIME, ClockSetting
from baas_sandbox.http.context import current_sandbox
from baas_sandbox.http.errors import json_response

#: The times a clock may show: far enough for any test (a 14-day claim window, a code a year old),
#: bounded so that no later arithmetic leaves the calendar.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc)


async def get_clock():
    return current_sandbox().clock_view(), 200


async def set_clock(body: dict):
    moment = None
    if "now" in body:
        moment = _parse(body["now"])
        if moment is None:
            return _invalid(f"now: {body['now']} is not a time between {EARLIEST.year} and {LATEST.year}")

    def change(setting: ClockSetting, real: dt.datetime) -> ClockSetting:
        if moment is not None:
            setting = setting.set_to(moment, real)
        if "frozen" in body:
            setting = setting.with_frozen(body["frozen"], real)
        return setting

    return await _moved(change)


async def reset_clock():
    return await _moved(lambda _setting, _real: REAL_TIME)


async def advance_clock(body: dict):
    seconds = float(body["seconds"])
    sandbox = current_sandbox()
    if sandbox.clock() + dt.timedelta(seconds=seconds) >= LATEST:
        return _invalid(f"seconds: {body['seconds']} would move the clock past {LATEST.year}")
    return await _moved(lambda setting, _real: setting.advanced(seconds))


async def _moved(change) -> tuple[dict, int]:
    sandbox = current_sandbox()
    ran = await sandbox.change_clock(change)
    return sandbox.clock_view() | {"jobs_run": ran}, 200


def _parse(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    moment = moment.astimezone(dt.timezone.utc)
    return moment if EARLIEST <= moment < LATEST else None


def _invalid(details: str):
    return json_response(400, {"code": "SBX000400", "message": "Invalid request", "details": details})
