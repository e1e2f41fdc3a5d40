"""What the node counts for operations: one :class:`NodeStats` per process.

The composition root (``scp/app.py``) makes it and hands each part the section it counts in;
the metrics endpoint reads it. Plain integers, no I/O, no clock: a counter only ever grows, so
an exporter reports it as a Prometheus counter and a test reads it directly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["CallPathStats", "NodeStats"]


@dataclass
class CallPathStats:
    """The call path and its database (:mod:`scp.flows.calls`, ``[database] budget``).

    Record kinds, as the keys of the two counters: ``missed_call``, ``callback``,
    ``voicemail``, ``cdr``.
    """

    # InitialDP answered with Continue because the subscriber could not be read within the
    # budget (database down, slow or failing): the call went on as if there were no service
    continued_without_database: int = 0
    # records of a call that were not written (the database failed or outlasted the budget
    # before anything was committed); each is logged with its content
    records_lost: Counter[str] = field(default_factory=Counter)
    # records whose write was cut off after it reached the server and could not be run again
    # safely: they may or may not be in the database; each is logged with its content
    records_in_doubt: Counter[str] = field(default_factory=Counter)
    # database work run again after an error that proved nothing had been committed (a stale
    # connection, a refused connect, a rolled-back transaction), or after a lost outcome of a
    # write that is safe to repeat (a missed call: migration 0250)
    db_retries: int = 0
    # self-service requests (PIN check, service on/off...) answered "not done" because the
    # database did not answer within the budget
    requests_failed: int = 0


@dataclass
class NodeStats:
    """Every counter of one node process, by the part of the node that keeps it."""

    calls: CallPathStats = field(default_factory=CallPathStats)
