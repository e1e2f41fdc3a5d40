"""Where the clock may be read (ARCHITECTURE §2, tests/dates.py), checked in the source.

* ``scp/primitives.py``, ``scp/core`` and ``scp/service`` never read a clock: no
  ``datetime.now()``, ``date.today()``, ``time.time()``, ``time.monotonic()``... (called or
  handed over as a default factory), and no ``astimezone()`` without a zone (that is the
  machine's zone). Their callers pass ``now`` / ``at`` / ``today``.
* The SQL of ``scp/state`` and ``scp/flows`` takes business time from its caller: no
  ``current_date`` / ``current_timestamp``, and ``now()`` only for audit stamps: ``updated_at``,
  the moment a PIN locked, when a migration was applied. (The migrations are checked on the built schema:
  tests/integration/test_state_migrate.py.)
The date guard (``any_day``) catches what slips through at run time; this catches it in review.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SCP = Path(__file__).resolve().parents[2] / "scp"
PURE = sorted(
    [SCP / "primitives.py", *(SCP / "core").glob("*.py"), *(SCP / "service").glob("*.py")]
)
# the modules that hold SQL: the stores and the flows that run statements of their own
STATE = sorted([*(SCP / "state").glob("*.py"), *(SCP / "flows").glob("*.py")])

# a clock read whatever the object: datetime.now, date.today, datetime.utcnow
_ANY_BASE = {"now", "today", "utcnow"}
# time.<f>: the time module's clocks
_TIME_MODULE = {
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "perf_counter_ns",
    "localtime",
    "gmtime",
    "ctime",
    "asctime",
    "strftime",
    "clock_gettime",
    "clock_gettime_ns",
}


def clock_reads(source: str) -> list[str]:
    """Each place ``source`` reads the wall clock, a monotonic clock or the machine's zone."""
    found: list[str] = []
    tree = ast.parse(source)
    # the names the time module is bound to (``import time as t`` reads the clock as t.time())
    time_names = {"time"} | {
        a.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for a in node.names
        if a.name == "time" and a.asname
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if node.attr in _ANY_BASE:
                found.append(f"line {node.lineno}: .{node.attr}")
            elif (
                node.attr in _TIME_MODULE
                and isinstance(node.value, ast.Name)
                and node.value.id in time_names
            ):
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
            elif node.attr == "time" and _is_event_loop(node.value):
                found.append(f"line {node.lineno}: the event loop's clock")
        elif isinstance(node, ast.ImportFrom) and node.module == "time":
            found += [
                f"line {node.lineno}: from time import {a.name}"
                for a in node.names
                if a.name in _TIME_MODULE
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "astimezone"
            and not node.args
            and not node.keywords
        ):
            found.append(f"line {node.lineno}: astimezone() in the machine's zone")
    return sorted(found, key=lambda f: int(f.split(":")[0].split()[1]))


def _is_event_loop(node: ast.expr) -> bool:
    """``loop`` / ``self.loop`` / ``asyncio.get_running_loop()``: an event loop (its time() is
    a monotonic clock), not a datetime (whose time() is the time of day it holds)."""
    if isinstance(node, ast.Call):
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        return name in ("get_running_loop", "get_event_loop")
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name in ("loop", "_loop", "event_loop")


@pytest.mark.parametrize("path", PURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_cores_and_services_never_read_a_clock(path: Path) -> None:
    assert clock_reads(path.read_text(encoding="utf-8")) == []


def test_the_check_sees_each_kind_of_read() -> None:
    src = """
import datetime as dt, time
from time import monotonic
from dataclasses import field
a = dt.datetime.now(dt.UTC)
b = dt.date.today()
c = field(default_factory=dt.datetime.now)
d = time.time()
e = x.astimezone()
f = x.astimezone(tz)
import time as t
g = t.monotonic()
h = asyncio.get_running_loop().time()
i = self.loop.time()
j = when.time()
"""
    assert [r.split(":")[0] for r in clock_reads(src)] == [
        "line 3",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
        "line 9",
        "line 12",
        "line 13",
        "line 14",
    ]


# the server-side stamps that stay: when a row was last touched, when a PIN locked, when a
# migration was applied
_AUDIT_NOW = re.compile(
    r"updated_at = now\(\)|applied_at timestamptz NOT NULL DEFAULT now\(\)|"
    r"pin_locked_at =\"\s*\"\s*CASE WHEN \$3 THEN now\(\) END"
)
_DB_CLOCK = re.compile(
    r"\bnow\(\)|\bcurrent_date\b|\bcurrent_timestamp\b|\blocaltimestamp\b|"
    r"\bclock_timestamp\(|\bstatement_timestamp\(|\btransaction_timestamp\(",
    re.IGNORECASE,
)


@pytest.mark.parametrize("path", STATE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_state_sql_takes_business_time_from_the_caller(path: Path) -> None:
    text = _AUDIT_NOW.sub("", path.read_text(encoding="utf-8"))
    lines = [
        n for n, line in enumerate(text.splitlines(), 1) if _DB_CLOCK.search(line.split("#", 1)[0])
    ]
    assert lines == [], f"{path.name}: the database's clock at lines {lines}"
