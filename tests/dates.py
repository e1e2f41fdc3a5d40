"""The date guard: no test may depend on the day, or the time zone, it runs in.

The code reads the wall clock only at its edges (``scp/adapters/clock.py``: the node, its
background loops, the CLI) and hands ``now`` / ``today`` down; PostgreSQL's ``now()`` never
decides business time. A test either fixes its time (a ``NOW`` it passes in) or runs on the
process's clock, and then it must hold on any day. The fixture ``any_day`` (tests/conftest.py)
runs every test that uses it once per entry of :data:`DAYS`: the machine's own date and time
zone, and two far-apart fake ones, each at an hour where the network's day (``[notify]
timezone``, Asia/Shanghai by default) is not the machine's or not UTC's:

* 2024-02-29 23:30 in America/Los_Angeles: a leap day, already 1 March in UTC and in Shanghai;
* 2031-07-15 00:30 in Asia/Shanghai: still 14 July in UTC.

A module opts in with ``pytestmark = pytest.mark.usefixtures("any_day")``; ``-k today`` runs only
the real day while iterating. time-machine moves the process's wall clock (``time.time``,
``datetime.now``, ``date.today``..., ticking on from the fake start) and, with a zoned
destination, ``TZ``. Monotonic time, which asyncio and the protocol timers run on, is left
alone. PostgreSQL and tshark are other processes and keep the real date: code that takes a
business day or a due time from the database fails under a fake day, which is the point. The
test SMSC (tests/smppd) stands for the network's SMSC, which shares the network's time: its
clock is moved with the test's (:func:`clock_offset`), so its receipts are dated on that day.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

import time_machine

from scp.adapters.clock import utcnow
from scp.config import Config
from scp.service.notifications import local_day

__all__ = ["DAYS", "Day", "clock_offset", "today"]


def today(cfg: Config | None = None) -> dt.date:
    """Today as ops would pass it to provisioning: the process's wall clock, in the network's
    zone (``[notify] timezone`` of ``cfg``, default the built-in one), as the CLI counts."""
    return local_day(utcnow(), cfg if cfg is not None else Config())


def clock_offset() -> float:
    """Seconds the process's wall clock is moved off the machine's (0.0 when not moved)."""
    hatch = time_machine.escape_hatch
    return time.time() - hatch.time.time() if hatch.is_travelling() else 0.0


@dataclass(frozen=True)
class Day:
    """One "today" for the guarded tests: None is the machine's real clock and zone."""

    id: str
    start: dt.datetime | None

    @contextlib.contextmanager
    def travel(self) -> Iterator[None]:
        """The process's wall clock (and ``TZ``) at :attr:`start` meanwhile, ticking."""
        if self.start is None:
            yield
            return
        with time_machine.travel(self.start, tick=True):
            yield


DAYS = (
    Day("today", None),
    Day(
        "2024-02-29-los-angeles",
        dt.datetime(2024, 2, 29, 23, 30, tzinfo=zoneinfo.ZoneInfo("America/Los_Angeles")),
    ),
    Day(
        "2031-07-15-shanghai",
        dt.datetime(2031, 7, 15, 0, 30, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai")),
    ),
)
