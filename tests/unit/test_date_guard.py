"""The date guard itself (tests/dates.py): under each fake day the process's wall clock, date
and time zone really are that day's, so a guarded test that passes has run on it."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from scp.adapters.clock import utcnow
from tests.dates import clock_offset, today

pytestmark = pytest.mark.usefixtures("any_day")

# the network's day (Asia/Shanghai) of each fake start: LA's leap-day evening is already
# 1 March there, Shanghai's half past midnight is 15 July
NETWORK_DAY = {2024: dt.date(2024, 3, 1), 2031: dt.date(2031, 7, 15)}


def test_the_wall_clock_the_date_and_the_zone_are_the_fake_days(
    any_day: dt.datetime | None,
) -> None:
    now = utcnow()
    if any_day is None:
        assert clock_offset() == 0.0
        assert abs(now.timestamp() - time.time()) < 5
        return
    assert abs(now - any_day) < dt.timedelta(minutes=5), (now, any_day)
    assert today() == NETWORK_DAY[any_day.year]
    # the machine's own date and zone moved too: code that (wrongly) used them would show it
    assert dt.date.today() == any_day.date()
    assert dt.datetime.now().astimezone().utcoffset() == any_day.utcoffset()
    assert abs(clock_offset()) > 86_400 * 300
