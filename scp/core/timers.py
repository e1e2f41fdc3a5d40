"""Named protocol timers for the sans-I/O cores.

A core never reads a clock: it is told ``now`` with each input, arms timers as absolute
deadlines here, reports the earliest one through ``next_deadline()`` and, when its owner calls
``handle_timer(now)``, pops the ones that are due. The asyncio adapter sleeps until
``next_deadline()`` and calls back; tests just pass a larger ``now``.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable


class Timers:
    """A set of named one-shot timers keyed by any hashable name (e.g. ``("T_inv", 3)``)."""

    __slots__ = ("_deadline", "_heap", "_seq")

    def __init__(self) -> None:
        self._deadline: dict[Hashable, float] = {}
        # Lazy-deletion heap: entries whose deadline no longer matches _deadline are stale.
        self._heap: list[tuple[float, int, Hashable]] = []
        self._seq = 0  # tie-breaker so names of different types are never compared

    def start(self, name: Hashable, now: float, duration: float) -> None:
        """Arm (or re-arm) ``name`` to expire ``duration`` seconds after ``now``."""
        deadline = now + duration
        self._deadline[name] = deadline
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, name))
        if len(self._heap) > 2 * len(self._deadline) + 64:
            self._compact()

    def _compact(self) -> None:
        """Drop stale heap entries (cancelled or re-armed timers); amortised O(1) per start."""
        live = self._deadline
        self._heap = [e for e in self._heap if live.get(e[2]) == e[0]]
        heapq.heapify(self._heap)

    def cancel(self, name: Hashable) -> None:
        """Disarm ``name``; cancelling a timer that is not running is a no-op."""
        self._deadline.pop(name, None)

    def running(self, name: Hashable) -> bool:
        return name in self._deadline

    def next_deadline(self) -> float | None:
        """The earliest armed deadline, or None when nothing is armed."""
        heap = self._heap
        while heap:
            deadline, _, name = heap[0]
            if self._deadline.get(name) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    def expired(self, now: float) -> list[Hashable]:
        """Pop and return, earliest first, every timer whose deadline is ``<= now``."""
        due: list[Hashable] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, name = heapq.heappop(heap)
            if self._deadline.get(name) == deadline:
                del self._deadline[name]
                due.append(name)
        return due

    def __len__(self) -> int:
        return len(self._deadline)
