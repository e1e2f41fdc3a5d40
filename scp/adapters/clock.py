"""The wall clock, read at the edges only (ARCHITECTURE §2: cores and ``service/`` never read one).

Protocol cores take ``now`` (monotonic seconds) and the service decisions take ``at`` / ``today``
from their caller. The callers that stand at the edge - the node (``scp.app.Node.wallclock``),
its background loops (SMS sender, HLR-alert originator, MO re-scan) and the CLI - read the
wall clock here and pass the value down, so a test fixes time by passing a value, and the
test suite's date guard (``tests/dates.py``) can move the whole process to another day.

Business time never comes from PostgreSQL's ``now()`` / ``current_date``: the server's clock
and time zone are not the node's, and a test cannot move them.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["from_epoch", "utcnow"]


def utcnow() -> dt.datetime:
    """The wall clock as an aware UTC datetime (what ``timestamptz`` columns hold)."""
    return dt.datetime.now(dt.UTC)


def from_epoch(wall: float) -> dt.datetime:
    """A wall-clock epoch (``time.time()``, ``Node.wallclock()``) as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(wall, dt.UTC)
