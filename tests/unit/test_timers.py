"""Named timers used by the sans-I/O cores."""

from __future__ import annotations

from scp.core.timers import Timers


def test_expiry_order_cancel_and_rearm() -> None:
    t = Timers()
    t.start("a", 0.0, 5.0)
    t.start(("inv", 1), 0.0, 2.0)
    t.start(7, 0.0, 3.0)
    assert t.next_deadline() == 2.0
    t.cancel(7)
    t.start("a", 1.0, 0.5)  # re-armed earlier
    assert t.expired(1.4) == []
    assert t.expired(2.0) == ["a", ("inv", 1)]
    assert t.next_deadline() is None and len(t) == 0
    t.cancel("never-started")


def test_heap_stays_bounded_under_rearm_churn() -> None:
    t = Timers()
    for i in range(100_000):
        t.start(i % 10, float(i), 60.0)  # 10 live timers re-armed over and over
    assert len(t) == 10
    assert len(t._heap) <= 2 * 10 + 64 + 1
    assert t.next_deadline() == 99_990 + 60.0
