"""Transition tables: the one way a protocol core (and the call session) writes a state machine.

As h11 writes HTTP/1.1's connection states and libosmo-sigtran the ASP state machine of
RFC 4666 §4.3.1: the states and the events are enums named as the spec names them (``ASP-ACTIVE``,
``ASP Up Ack``, Q.774's ``initiation sent``, SMPP's ``BOUND_TRX``), and one table maps each
(state, event) pair to a :class:`Transition`: the action that carries the event out and the state
the event leads to. The table is the whole machine: an event with no row for the current state is
illegal there. :meth:`TransitionTable.lookup` then raises :class:`IllegalEvent`, which the
machine's owner turns into the protocol's answer (M3UA ERR "Unexpected Message", TCAP P-Abort
"unrecognized transaction ID", SMPP ESME_RINVBNDSTS, SCCP "segmentation failure", CAP ReturnError
"unexpectedComponentSequence"), never a traceback.

``Transition.next`` is the state the event leads to once its action accepts it; ``None`` where
the spec lets the event's data decide (the digit a caller pressed, whether a charging report says
the call is still up). An action refuses an event by raising its layer's error before it changes
anything, or, where the spec says so, by ignoring it (a late acknowledgement); each core's tests
walk every row of its table and check where the machine ends.

The states and events are ``str`` enums: a (state, event) key then hashes in C, which keeps the
table lookup on the per-message path as cheap as the attribute tests it replaced.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["IllegalEvent", "Transition", "TransitionTable"]

S = TypeVar("S", bound=enum.Enum)
E = TypeVar("E", bound=enum.Enum)
A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class Transition(Generic[S, A]):
    """One row's outcome: ``action`` carries the event out; the machine goes to ``next``
    (``None``: to the state the action picks from the event's data)."""

    action: A
    next: S | None = None


class IllegalEvent(Exception):
    """``event`` has no row for ``state`` in the table of ``machine``: illegal in that state."""

    def __init__(self, machine: str, state: enum.Enum, event: enum.Enum) -> None:
        super().__init__(f"{machine}: {event.value} in {state.value}")
        self.machine = machine
        self.state = state
        self.event = event


class TransitionTable(Generic[S, E, A]):
    """A state machine as rows ``(state, event) -> Transition(action, next)``."""

    __slots__ = ("name", "_rows")

    def __init__(self, name: str, rows: Mapping[tuple[S, E], Transition[S, A]]) -> None:
        self.name = name
        self._rows: dict[tuple[S, E], Transition[S, A]] = dict(rows)

    def lookup(self, state: S, event: E) -> Transition[S, A]:
        """The row for ``event`` in ``state``; :class:`IllegalEvent` when there is none."""
        row = self._rows.get((state, event))
        if row is None:
            raise IllegalEvent(self.name, state, event)
        return row

    def get(self, state: S, event: E) -> Transition[S, A] | None:
        """The row, or None: for a per-message path that answers an illegal event itself."""
        return self._rows.get((state, event))

    def allows(self, state: S, event: E) -> bool:
        return (state, event) in self._rows

    def events(self, state: S) -> frozenset[E]:
        """The events legal in ``state``."""
        return frozenset(e for s, e in self._rows if s is state)

    def states(self, event: E) -> frozenset[S]:
        """The states ``event`` is legal in (a per-message path tests membership in this)."""
        return frozenset(s for s, e in self._rows if e is event)

    def rows(self) -> Iterator[tuple[S, E, Transition[S, A]]]:
        """Every row, in the order the table was written (for tests and documentation)."""
        for (s, e), t in self._rows.items():
            yield s, e, t

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"<TransitionTable {self.name}: {len(self._rows)} rows>"
