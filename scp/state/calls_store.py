"""Named SQL of call handling: what one call reads and writes in PostgreSQL.

Reads: the called subscriber with its services in force on the call's day (passed in: the
database's clock is not the node's) and whether the caller is on its blacklist, in one round
trip for the calls of a whole batch (:data:`LOAD_CALLEES`, which also reads the subscriber as
a notification recipient: the forecast of ``scp.flows.notify.record_missed_call``); the
tariffs, the per-number category overrides and the number-pair tariffs for
:class:`scp.service.rating.RateTable`. Writes: the missed call, the callback request, the
voicemail record and the CDRs a call decision produces, one statement each;
:func:`scp.flows.calls.write_records` puts them in one transaction with the notification flow.
Schema: migrations 0001, 0010, 0030, 0220 and 0250 (a missed call is written once however
often its write runs).

Which failures a write may be run again after (:func:`nothing_committed`, :func:`transient`):
asyncpg raises ``InterfaceError`` before it sends anything (a connection it knows is closed,
one the pool took back when its server went away, "released back to the pool"); a connect
that fails, and a transaction the server rolled back (serialization failure, deadlock, a
read-only server), commit nothing either. A connection lost with a statement on its way
(``ConnectionDoesNotExistError``, the server shutting down) leaves the outcome unknown: only a
write that is safe to repeat is run again then (one holding a missed call, guarded by the
``missed_call_once`` index).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from scp.service.calls import (
    Callee,
    RecordCallback,
    RecordMissedCall,
    RecordVoicemail,
    WriteCdr,
)
from scp.service.rating import PairTariff, RateTable, RatingRules, Tariff
from scp.state import notify_store

# The called subscribers of several calls in one round trip: for each (msisdn, caller, day) of
# the arrays ($1, $2, $3), its index in them (from 1) and the subscriber with the services in
# force on that day, whether the caller is on its blacklist, and the subscriber as a
# notification recipient; no row for a number that is no subscriber. The lateral subquery
# (OFFSET 0 keeps it one) makes each element one primary-key lookup whatever the planner
# guesses of the arrays' length.
LOAD_CALLEES = """
SELECT q.i, c.*
FROM unnest($1::text[], $2::text[], $3::date[]) WITH ORDINALITY AS q (msisdn, caller, day, i)
CROSS JOIN LATERAL (
    SELECT s.status = 'active' AS active, s.forward_to,
           ARRAY(SELECT service FROM subscription u
                 WHERE u.msisdn = s.msisdn AND u.start_date <= q.day
                   AND (u.end_date IS NULL OR q.day < u.end_date)) AS services,
           (q.caller IS NOT NULL AND EXISTS (
               SELECT 1 FROM blacklist b WHERE b.owner = s.msisdn AND (
                   (b.kind = 'exact' AND b.number = q.caller) OR
                   (b.kind = 'prefix' AND left(q.caller, length(b.number)) = b.number))))
               AS blacklisted,
           CASE WHEN r.msisdn IS NULL THEN NULL ELSE r::text END AS rcpt, r.language,
           r.user_group, r.notify_mode, r.status AS rcpt_status, r.services AS rcpt_services
      FROM subscriber s CROSS JOIN LATERAL mcn_recipient(s.msisdn, q.day) r
     WHERE s.msisdn = q.msisdn
    OFFSET 0
) c
"""

INSERT_MISSED_CALL = """
INSERT INTO missed_call (caller, callee, occurred_at, reason, cause, call_ref)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
"""

# At most one open request per pair (index callback_request_open_uq): asking again renews it.
INSERT_CALLBACK = """
INSERT INTO callback_request (caller, callee, requested_at, expires_at, missed_call_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (caller, callee) WHERE notified_at IS NULL
DO UPDATE SET requested_at = EXCLUDED.requested_at, expires_at = EXCLUDED.expires_at,
              missed_call_id = coalesce(EXCLUDED.missed_call_id, callback_request.missed_call_id)
RETURNING id
"""

INSERT_VOICEMAIL = """
INSERT INTO voicemail (callee, caller, recorded_at, duration_s, media_uri)
VALUES ($1, $2, $3, 0, $4) RETURNING id
"""

INSERT_CDR = """
INSERT INTO cdr (record_type, msisdn, caller, callee, service, call_category, started_at,
                 ended_at, duration_s, charge, call_ref)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""

LOAD_TARIFFS = """
SELECT call_category, prefix, per_minute, per_sms, per_use, valid_from FROM rate
"""

LOAD_OVERRIDES = "SELECT number, kind, call_category FROM rate_override"

LOAD_PAIRS = """
SELECT origin_prefix, destination_prefix, call_category, per_minute, per_use, valid_from
FROM rate_pair
"""


CalleeKey = tuple[str, str | None, dt.date]
"""What a call reads its subscriber by: (called number, calling number or None, the call's
calendar day in ``[notify] timezone``, ``scp.service.notifications.local_day``)."""


async def load_callees(
    db: asyncpg.Pool | asyncpg.Connection, keys: Sequence[CalleeKey]
) -> list[Callee | None]:
    """The subscriber of each key with the services in force on its day, in one round trip
    (:data:`LOAD_CALLEES`); None where the number is not provisioned. The day is passed in:
    the database's clock is not the node's."""
    found: list[Callee | None] = [None] * len(keys)
    if not keys:
        return found
    rows = await db.fetch(
        LOAD_CALLEES, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
    )
    for row in rows:
        msisdn = keys[row["i"] - 1][0]
        # In passing, the notification recipient: the forecast a missed call of this call is
        # decided on (checked by the write, migration 0030), which saves that call a round trip.
        notify_store.remember_recipient(
            msisdn,
            row["rcpt"],
            row["language"],
            row["user_group"],
            row["notify_mode"],
            row["rcpt_status"],
            row["rcpt_services"],
        )
        found[row["i"] - 1] = Callee(
            msisdn,
            bool(row["active"]),
            frozenset(row["services"]),
            row["forward_to"],
            bool(row["blacklisted"]),
        )
    return found


async def load_callee(
    db: asyncpg.Pool | asyncpg.Connection, msisdn: str, caller: str | None, day: dt.date
) -> Callee | None:
    """The subscriber ``msisdn`` with the services in force on ``day``, or None if not
    provisioned (:func:`load_callees` of one)."""
    return (await load_callees(db, [(msisdn, caller, day)]))[0]


async def load_rates(db: asyncpg.Pool | asyncpg.Connection, rules: RatingRules) -> RateTable:
    """Every tariff line, override and number-pair tariff (small tables: cached by the
    executor)."""
    tariffs = [
        Tariff(
            r["call_category"],
            r["prefix"],
            r["per_minute"],
            r["per_sms"],
            r["per_use"],
            r["valid_from"],
        )
        for r in await db.fetch(LOAD_TARIFFS)
    ]
    exact: dict[str, str] = {}
    prefix: dict[str, str] = {}
    for r in await db.fetch(LOAD_OVERRIDES):
        (exact if r["kind"] == "exact" else prefix)[r["number"]] = r["call_category"]
    pairs = tuple(PairTariff(**dict(r)) for r in await db.fetch(LOAD_PAIRS))
    return RateTable(rules, tuple(tariffs), exact, prefix, pairs)


Record = RecordMissedCall | RecordCallback | RecordVoicemail | WriteCdr

RECORD_KIND: dict[type, str] = {
    RecordMissedCall: "missed_call",
    RecordCallback: "callback",
    RecordVoicemail: "voicemail",
    WriteCdr: "cdr",
}
"""The name of each record type in logs and counters."""

MISSED_CALL_ONCE = "missed_call_once"  # the unique index of migration 0250

_CONNECT_FAILED: tuple[type[BaseException], ...] = (
    OSError,  # the connect failed: refused, unreachable, no socket
    # asyncpg refused to start the statement: the connection's protocol was left mid-way by
    # the server going away under it ("another operation is in progress")
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,  # starting up, shutting down, in recovery
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionRejectionError,
    asyncpg.ClientCannotConnectError,
)

_ROLLED_BACK: tuple[type[BaseException], ...] = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.ReadOnlySQLTransactionError,  # a standby: a failover is under way
)

_OUTCOME_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # the connection died with the statement on its way
    asyncpg.AdminShutdownError,  # the server stopped (fast shutdown, failover): maybe after
    asyncpg.CrashShutdownError,  # the commit, before its answer
)


def nothing_committed(exc: BaseException) -> bool:
    """True when ``exc`` proves that the write it interrupted committed nothing: it was raised
    before anything was sent (asyncpg's ``InterfaceError``, a failed connect), or the server
    answered with an error (a failed statement aborts its transaction), unless that error is
    the connection or the server going away, which can come after a commit."""
    if isinstance(exc, _OUTCOME_LOST):
        return False
    return isinstance(
        exc,
        (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresError),
    )


def transient(exc: BaseException) -> bool:
    """True when ``exc`` is the database or the way to it failing, not the statement: another
    attempt on another connection may succeed (a read may always be run again then)."""
    if isinstance(exc, asyncpg.InterfaceError):
        # a closed or released connection; its subclasses (DataError...) are the statement's
        return type(exc) is asyncpg.InterfaceError
    return isinstance(exc, _CONNECT_FAILED + _ROLLED_BACK + _OUTCOME_LOST)


def stale_connection(exc: BaseException) -> bool:
    """True when ``exc`` is about the connection the attempt used (closed, handed back to the
    pool, its protocol left mid-way), not the server: another one may be tried at once."""
    if isinstance(exc, asyncpg.exceptions.TargetServerAttributeNotMatched):
        return False  # no server accepts writes yet (a failover under way): wait
    return type(exc) is asyncpg.InterfaceError or isinstance(exc, asyncpg.InternalClientError)


def written_before(exc: BaseException) -> bool:
    """True when ``exc`` says that the missed call being written is in the database already:
    an earlier attempt of the same write committed (migration 0250)."""
    return (
        isinstance(exc, asyncpg.UniqueViolationError)
        and getattr(exc, "constraint_name", None) == MISSED_CALL_ONCE
    )


async def missed_call_id(conn: asyncpg.Connection, r: RecordMissedCall) -> int | None:
    """The id of the missed call ``r`` if it is recorded (its call reference and time)."""
    v = await conn.fetchval(
        "SELECT id FROM missed_call WHERE call_ref = $1 AND occurred_at = $2", r.call_ref, r.at
    )
    return None if v is None else int(v)


async def insert_missed_call(conn: asyncpg.Connection, r: RecordMissedCall) -> int:
    """The missed call alone (no notification): its id."""
    return int(
        await conn.fetchval(
            INSERT_MISSED_CALL, r.caller, r.callee, r.at, r.reason, r.cause, r.call_ref
        )
    )


async def write_other(conn: asyncpg.Connection, r: Record, missed_call_id: int | None) -> None:
    """A callback request (linked to ``missed_call_id``), voicemail record or CDR: one
    statement, the same inside the transaction and on its own."""
    t = type(r)
    if t is RecordCallback:
        assert isinstance(r, RecordCallback)
        await conn.fetchval(INSERT_CALLBACK, r.caller, r.callee, r.at, r.expires_at, missed_call_id)
    elif t is RecordVoicemail:
        assert isinstance(r, RecordVoicemail)
        await conn.fetchval(INSERT_VOICEMAIL, r.callee, r.caller, r.at, r.media_uri)
    elif t is WriteCdr:
        assert isinstance(r, WriteCdr)
        await conn.execute(
            INSERT_CDR,
            r.record_type,
            r.msisdn,
            r.caller,
            r.callee,
            r.service,
            r.call_category,
            r.started_at,
            r.ended_at,
            r.duration_s,
            r.charge,
            r.call_ref,
        )
