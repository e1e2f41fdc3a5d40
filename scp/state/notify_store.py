"""Named SQL of the notification service: what ``scp.flows.notify``,
``scp.flows.smscmd`` and ``scp.flows.presence`` read and write, kept out of their decisions
(``scp.service.notifications``, ``scp.service.smscmd``).

Tables: ``missed_call`` / ``callback_request`` (written by call handling), ``presence``,
``sms_outbox`` (the durable outbox, ARCHITECTURE §5), ``hlr_alert`` (migration 0020: pending
MAP registrations toward the HLR, TS 29.002 §12.3 / §12.4), ``ad_rule``, ``rate``, ``cdr``,
``sms_mo``. Every function takes the connection of the caller's transaction: the event and the
SMS it causes commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg

from scp.service.notifications import (
    MissedCallState,
    PendingCall,
    PendingCallback,
    Recipient,
)
from scp.service.provisioning import AdRule

__all__ = [
    "active_ads",
    "calls_since",
    "claim_hlr_alerts",
    "clear_hlr_alert",
    "enqueue_sms",
    "hlr_alert_failed",
    "hlr_alert_registered",
    "hlr_alert_retry",
    "insert_cdr",
    "MissedCallDecision",
    "MissedCallWrite",
    "forecast_missed_call",
    "forget_forecasts",
    "record_missed_call",
    "record_missed_calls",
    "remember_recipient",
    "insert_mo",
    "load_recipient",
    "lock_open_busy_sms",
    "mark_callbacks",
    "mark_missed_calls",
    "mark_mo_handled",
    "msisdn_by_imsi",
    "pending_callbacks",
    "pending_missed_calls",
    "recent_missed_calls",
    "request_hlr_alert",
    "set_presence",
    "sms_rate",
    "update_sms_text",
]


async def load_recipient(conn: asyncpg.Connection, msisdn: str, day: dt.date) -> Recipient | None:
    """The subscriber with the services in force on ``day``; None if not a subscriber."""
    row = await conn.fetchrow(
        "SELECT s.msisdn, s.language, s.user_group, s.notify_mode, s.status,"
        " coalesce(array_agg(u.service) FILTER (WHERE u.service IS NOT NULL), '{}') AS services"
        " FROM subscriber s LEFT JOIN subscription u ON u.msisdn = s.msisdn"
        "  AND u.start_date <= $2 AND (u.end_date IS NULL OR $2 < u.end_date)"
        " WHERE s.msisdn = $1 GROUP BY s.msisdn",
        msisdn,
        day,
    )
    if row is None:
        return None
    return _recipient(msisdn, row)


# -- missed call in one statement (migration 0030) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class MissedCallWrite:
    """Outcome of :func:`record_missed_call`: written, or the state found instead."""

    done: bool
    missed_call_id: int | None = None
    sms_id: int | None = None
    hlr_alert: bool = False
    state: MissedCallState | None = None


# Forecasts for the write (process memory, bounded): the recipient as the InitialDP's lookup
# saw it, the open SMS per key prefix as this process left it, the last ads seen. A wrong
# forecast costs one more round trip, never a wrong row: the write checks them under its locks.
_FORECAST_MAX = 50_000
_rcpt_seen: OrderedDict[str, tuple[str, Recipient]] = OrderedDict()
_open_seen: OrderedDict[str, tuple[int, str, dt.datetime | None, int, dt.datetime]] = OrderedDict()
_ads_seen: list[tuple[str, tuple[AdRule, ...]]] = []


_V = TypeVar("_V")


def _bounded_put(d: OrderedDict[str, _V], key: str, value: _V) -> None:
    d[key] = value
    d.move_to_end(key)
    if len(d) > _FORECAST_MAX:
        d.popitem(last=False)


def _make_recipient(
    msisdn: str,
    language: str,
    user_group: str,
    notify_mode: str,
    status: str,
    services: Sequence[str],
) -> Recipient:
    """A subscriber as notifications see it: a suspended or barred one has no service."""
    svc = frozenset(services) if status == "active" else frozenset()
    return Recipient(msisdn, language, user_group, notify_mode, svc)


def _recipient(msisdn: str, r: asyncpg.Record) -> Recipient:
    return _make_recipient(
        msisdn, r["language"], r["user_group"], r["notify_mode"], r["status"], r["services"]
    )


def remember_recipient(
    msisdn: str,
    rcpt: str | None,
    language: str,
    user_group: str,
    notify_mode: str,
    status: str,
    services: Sequence[str],
) -> None:
    """Keep a lookup's ``mcn_recipient`` row (``rcpt``: its text form) as the forecast for a
    missed call of ``msisdn`` (the InitialDP's subscriber lookup reads it in passing)."""
    if rcpt is not None:
        _bounded_put(
            _rcpt_seen,
            msisdn,
            (rcpt, _make_recipient(msisdn, language, user_group, notify_mode, status, services)),
        )


def forget_forecasts() -> None:
    """Drop every forecast (tests; a database reset)."""
    _rcpt_seen.clear()
    _open_seen.clear()
    _ads_seen.clear()


def forecast_missed_call(
    *, callee: str, prefix: str | None, at: dt.datetime, ads: bool
) -> MissedCallState | None:
    """The state a missed call of ``callee`` will probably find; None if nothing is known."""
    seen = _rcpt_seen.get(callee)
    if seen is None or (ads and not _ads_seen):
        return None
    rcpt_text, rcpt = seen
    open_id = open_key = open_due = first_at = None
    count = 0
    o = _open_seen.get(prefix) if prefix is not None else None
    if o is not None and at < o[4]:
        open_id, open_key, first_at, count, open_due = o
    digest, rules = _ads_seen[0] if ads else (None, ())
    return MissedCallState(
        rcpt, rcpt_text, open_id, open_key, open_due, count, first_at, rules, digest
    )


_RECORD = (
    "SELECT * FROM mcn_record_missed_call($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
    " $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
)
# Several calls in one statement (migration 0280): the same arguments as arrays, but for the
# refresh interval and want_ads ($11, $17), which are the node's configuration.
_RECORD_MANY = (
    "SELECT * FROM mcn_record_missed_calls($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
    " $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
)


@dataclass(frozen=True, slots=True)
class MissedCallDecision:
    """One missed call and what was decided for it on ``state`` (see
    :func:`record_missed_call` for the fields), as :func:`record_missed_calls` writes it."""

    caller: str | None
    callee: str
    at: dt.datetime
    reason: str
    cause: int | None
    call_ref: str | None
    day: dt.date
    state: MissedCallState | None
    hlr: bool
    refresh: dt.timedelta
    prefix: str | None
    count: int
    first_at: dt.datetime | None
    text: str | None
    not_before: dt.datetime | None
    expires_at: dt.datetime | None
    outcome: str | None
    want_ads: bool


def _arguments(d: MissedCallDecision) -> tuple[object, ...]:
    """``mcn_record_missed_call``'s 21 arguments for ``d``, in order."""
    st, text = d.state, d.text
    return (
        d.caller,
        d.callee,
        d.at,
        d.reason,
        d.cause,
        d.call_ref,
        d.day,
        st is not None,
        st.rcpt if st else None,
        d.hlr,
        d.refresh,
        d.prefix,
        st.open_id if st and text is not None else None,
        d.count,
        d.first_at,
        st.ads_digest if st and text is not None and d.want_ads else None,
        d.want_ads,
        text,
        d.not_before,
        d.expires_at,
        d.outcome,
    )


def _lock_order(d: MissedCallDecision) -> tuple[str, str]:
    # callee, then key prefix (none last: the HLR alert row comes after the callee's SMS)
    return (d.callee, "\U0010ffff" if d.prefix is None else d.prefix)


async def record_missed_call(
    conn: asyncpg.Connection,
    *,
    caller: str | None,
    callee: str,
    at: dt.datetime,
    reason: str,
    cause: int | None,
    call_ref: str | None,
    day: dt.date,
    state: MissedCallState | None,
    hlr: bool,
    refresh: dt.timedelta,
    prefix: str | None,
    count: int,
    first_at: dt.datetime | None,
    text: str | None,
    not_before: dt.datetime | None,
    expires_at: dt.datetime | None,
    outcome: str | None,
    want_ads: bool,
) -> MissedCallWrite:
    """One statement (its own transaction): the missed call and what was decided on ``state``
    (HLR alert, the SMS under ``prefix`` with ``text`` rendered for ``count`` / ``first_at``,
    the call marked ``outcome``), if under the locks the state is ``state``; else nothing is
    written and the state found is returned (``state`` None: only read it). Must not run
    inside a transaction that expects the write (it may not happen)."""
    d = MissedCallDecision(
        caller,
        callee,
        at,
        reason,
        cause,
        call_ref,
        day,
        state,
        hlr,
        refresh,
        prefix,
        count,
        first_at,
        text,
        not_before,
        expires_at,
        outcome,
        want_ads,
    )
    return (await record_missed_calls(conn, [d]))[0]


async def record_missed_calls(
    conn: asyncpg.Connection, decisions: Sequence[MissedCallDecision]
) -> list[MissedCallWrite]:
    """:func:`record_missed_call` for each of ``decisions`` in ONE statement, one transaction
    (migration 0280; a lone one: 0030's statement): each written, or the state it found
    returned with nothing of it written. The calls go in the order of the locks they take
    (callee, then key prefix), the same in every batch, so two batches cannot deadlock. An
    error raises and writes nothing of any of them. They share ``refresh`` and ``want_ads``
    (the node's configuration)."""
    if not decisions:
        return []
    if len(decisions) == 1:
        row = await conn.fetchrow(_RECORD, *_arguments(decisions[0]))
        assert row is not None
        return [_outcome(decisions[0], row)]
    order = sorted(range(len(decisions)), key=lambda k: _lock_order(decisions[k]))
    columns: list[Any] = [
        list(c) for c in zip(*(_arguments(decisions[k]) for k in order), strict=True)
    ]
    refresh, want_ads = decisions[0].refresh, decisions[0].want_ads
    assert all(d.refresh == refresh and d.want_ads == want_ads for d in decisions)
    columns[10], columns[16] = refresh, want_ads  # one for all: scalars
    rows = await conn.fetch(_RECORD_MANY, *columns)
    out: list[MissedCallWrite | None] = [None] * len(decisions)
    for row in rows:
        k = order[row["i"] - 1]
        out[k] = _outcome(decisions[k], row)
    assert all(w is not None for w in out)
    return out  # type: ignore[return-value]


def _outcome(d: MissedCallDecision, r: asyncpg.Record) -> MissedCallWrite:
    """What the statement's row ``r`` says of ``d``; the forecasts learn from it."""
    callee, prefix, state, text, want_ads = d.callee, d.prefix, d.state, d.text, d.want_ads
    if not r["done"] and want_ads and r["ads_digest"] is not None:  # the ads read again
        rules = tuple(
            AdRule(
                a["id"],
                a["text"],
                a["window_start"],
                a["window_end"],
                tuple(a["caller_prefixes"]),
                tuple(a["user_groups"]),
                a["priority"],
                a["valid_from"],
                a["valid_until"],
            )
            for a in (r["ads"] or ())
        )
        _ads_seen[:] = [(r["ads_digest"], rules)]
    if r["done"]:
        mc_id = int(r["missed_call_id"])
        if text is not None and prefix is not None and state is not None:
            sms_id = r["sms_id"]
            if sms_id is None:  # the key existed (a replay): nothing known about it
                _open_seen.pop(prefix, None)
            elif r["open_id"] is not None:  # its text updated: one more call counted
                _bounded_put(
                    _open_seen,
                    prefix,
                    (sms_id, r["open_key"], d.first_at, d.count, r["open_due"]),
                )
            elif d.not_before is not None:
                _bounded_put(
                    _open_seen, prefix, (sms_id, prefix + str(mc_id), d.first_at, 1, d.not_before)
                )
        return MissedCallWrite(True, mc_id, r["sms_id"], bool(r["hlr_alert"]))
    rcpt = _recipient(callee, r) if r["rcpt"] is not None else None
    if rcpt is not None:
        _bounded_put(_rcpt_seen, callee, (r["rcpt"], rcpt))
    rules = _ads_seen[0][1] if want_ads and _ads_seen else ()
    found = MissedCallState(
        rcpt,
        r["rcpt"],
        r["open_id"],
        r["open_key"],
        r["open_due"],
        int(r["n"]),
        r["first_at"],
        rules,
        _ads_seen[0][0] if want_ads and _ads_seen else None,
    )
    return MissedCallWrite(False, state=found)


async def msisdn_by_imsi(conn: asyncpg.Connection, imsi: str) -> str | None:
    result: str | None = await conn.fetchval("SELECT msisdn FROM subscriber WHERE imsi = $1", imsi)
    return result


# -- outbox ----------------------------------------------------------------------------------


async def enqueue_sms(
    conn: asyncpg.Connection,
    *,
    key: str,
    destination: str,
    text: str,
    not_before: dt.datetime,
    expires_at: dt.datetime | None = None,
    source: str | None = None,
) -> int | None:
    """Queue one SMS, due from ``not_before`` (the event's time, or later to hold it), unless
    its idempotency key exists; its id, or None if it did."""
    result: int | None = await conn.fetchval(
        "INSERT INTO sms_outbox (idempotency_key, destination, source, text, next_attempt_at,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        key,
        destination,
        source,
        text,
        not_before,
        expires_at,
    )
    return result


async def lock_open_busy_sms(
    conn: asyncpg.Connection, key_prefix: str, destination: str
) -> tuple[int, str] | None:
    """The busy SMS for this caller still waiting out its window (locked), if any.

    Only a row never claimed qualifies: once a sender holds it, it is on its way and a later
    attempt starts a new window. FOR UPDATE waits for a sender's claim in flight and then
    re-checks, so a row is either updated before it is claimed or not at all.
    """
    # two attempts from the same caller committing at once must not both open a window:
    # serialise them on the key prefix until the end of the transaction
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key_prefix)
    row = await conn.fetchrow(
        "SELECT id, idempotency_key FROM sms_outbox WHERE destination = $1"
        " AND status = 'queued' AND attempts = 0 AND left(idempotency_key, length($2)) = $2"
        " ORDER BY id DESC LIMIT 1 FOR UPDATE",
        destination,
        key_prefix,
    )
    return (row["id"], row["idempotency_key"]) if row else None


async def update_sms_text(
    conn: asyncpg.Connection, sms_id: int, text: str, *, key: str | None = None
) -> None:
    """New text for a queued aggregated SMS; ``key`` moves its window start (idempotency key)."""
    await conn.execute(
        "UPDATE sms_outbox SET text = $2, idempotency_key = coalesce($3,"
        " idempotency_key), updated_at = now() WHERE id = $1",
        sms_id,
        text,
        key,
    )


async def calls_since(
    conn: asyncpg.Connection, callee: str, caller: str | None, first_id: int, reason: str
) -> tuple[int, dt.datetime | None]:
    """How many ``reason`` calls from ``caller`` since missed call ``first_id``, and the first
    one's time (the count an aggregated busy / no-answer SMS reports)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, min(occurred_at) AS first FROM missed_call WHERE callee = $1"
        " AND caller IS NOT DISTINCT FROM $2 AND reason = $4 AND id >= $3",
        callee,
        caller,
        first_id,
        reason,
    )
    return int(row["n"]), row["first"]


# -- missed calls, callbacks, presence -------------------------------------------------------


async def pending_missed_calls(conn: asyncpg.Connection, callee: str) -> list[PendingCall]:
    """Missed calls of ``callee`` not yet notified, oldest first, locked for this transaction."""
    rows = await conn.fetch(
        "SELECT id, caller, occurred_at, reason FROM missed_call"
        " WHERE callee = $1 AND notified_at IS NULL ORDER BY occurred_at, id FOR UPDATE",
        callee,
    )
    return [PendingCall(r["id"], r["caller"], r["occurred_at"], r["reason"]) for r in rows]


async def mark_missed_calls(
    conn: asyncpg.Connection, ids: Sequence[int], at: dt.datetime, outcome: str
) -> None:
    if ids:
        await conn.execute(
            "UPDATE missed_call SET notified_at = $2, notify_outcome = $3"
            " WHERE id = ANY($1::bigint[])",
            list(ids),
            at,
            outcome,
        )


async def recent_missed_calls(
    conn: asyncpg.Connection, callee: str, since: dt.datetime
) -> list[PendingCall]:
    """Every missed call of ``callee`` since ``since``, newest first (SMS command CX)."""
    rows = await conn.fetch(
        "SELECT id, caller, occurred_at, reason FROM missed_call WHERE callee = $1"
        " AND occurred_at >= $2 ORDER BY occurred_at DESC, id DESC LIMIT 50",
        callee,
        since,
    )
    return [PendingCall(r["id"], r["caller"], r["occurred_at"], r["reason"]) for r in rows]


async def pending_callbacks(conn: asyncpg.Connection, callee: str) -> list[PendingCallback]:
    """Open callback requests for ``callee`` (any age: the caller filters), locked."""
    rows = await conn.fetch(
        "SELECT id, caller, requested_at, expires_at FROM callback_request"
        " WHERE callee = $1 AND notified_at IS NULL ORDER BY requested_at, id FOR UPDATE",
        callee,
    )
    return [PendingCallback(r["id"], r["caller"], r["requested_at"], r["expires_at"]) for r in rows]


async def mark_callbacks(conn: asyncpg.Connection, ids: Sequence[int], at: dt.datetime) -> None:
    if ids:
        await conn.execute(
            "UPDATE callback_request SET notified_at = $2 WHERE id = ANY($1::bigint[])",
            list(ids),
            at,
        )


async def set_presence(
    conn: asyncpg.Connection,
    msisdn: str,
    present: bool,
    at: dt.datetime,
    source: str,
    detail: str | None = None,
) -> None:
    """Record evidence of (non-)presence; an older event never overwrites a newer one."""
    await conn.execute(
        "INSERT INTO presence (msisdn, present, event_at, source, detail)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (msisdn) DO UPDATE SET"
        " present = EXCLUDED.present, event_at = EXCLUDED.event_at, source = EXCLUDED.source,"
        " detail = EXCLUDED.detail WHERE presence.event_at <= EXCLUDED.event_at",
        msisdn,
        present,
        at,
        source,
        detail,
    )


# -- HLR alert registration ------------------------------------------------------------------


async def request_hlr_alert(
    conn: asyncpg.Connection, msisdn: str, at: dt.datetime, refresh: dt.timedelta
) -> bool:
    """Ask for a registration unless one is pending or succeeded within ``refresh``."""
    r: str = await conn.execute(
        "INSERT INTO hlr_alert (msisdn, requested_at, next_attempt_at) VALUES ($1, $2, $2)"
        " ON CONFLICT (msisdn) DO UPDATE SET status = 'pending', attempts = 0,"
        " requested_at = EXCLUDED.requested_at, next_attempt_at = EXCLUDED.requested_at,"
        " last_error = NULL, updated_at = now()"
        " WHERE hlr_alert.status = 'failed' OR (hlr_alert.status = 'registered'"
        "  AND hlr_alert.registered_at < EXCLUDED.requested_at - $3::interval)",
        msisdn,
        at,
        refresh,
    )
    return r.endswith(" 1")


async def clear_hlr_alert(conn: asyncpg.Connection, msisdn: str) -> None:
    """The subscriber is present: the registration has served (or is no longer needed)."""
    await conn.execute("DELETE FROM hlr_alert WHERE msisdn = $1", msisdn)


async def claim_hlr_alerts(
    db: asyncpg.Pool | asyncpg.Connection, limit: int, now: dt.datetime, lease: dt.timedelta
) -> list[tuple[str, int]]:
    """Due registrations (msisdn, attempt number), leased to this node until ``now + lease``."""
    rows = await db.fetch(
        "WITH due AS (SELECT msisdn FROM hlr_alert WHERE status IN ('pending', 'in-progress')"
        "  AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " UPDATE hlr_alert a SET status = 'in-progress', attempts = a.attempts + 1,"
        " next_attempt_at = $1 + $3::interval, updated_at = now() FROM due"
        " WHERE a.msisdn = due.msisdn RETURNING a.msisdn, a.attempts",
        now,
        limit,
        lease,
    )
    return [(r["msisdn"], r["attempts"]) for r in rows]


async def hlr_alert_registered(
    db: asyncpg.Pool | asyncpg.Connection, msisdn: str, at: dt.datetime
) -> None:
    await db.execute(
        "UPDATE hlr_alert SET status = 'registered', registered_at = $2,"
        " last_error = NULL, updated_at = now() WHERE msisdn = $1"
        " AND status = 'in-progress'",
        msisdn,
        at,
    )


async def hlr_alert_retry(
    db: asyncpg.Pool | asyncpg.Connection, msisdn: str, error: str, at: dt.datetime
) -> None:
    await db.execute(
        "UPDATE hlr_alert SET status = 'pending', next_attempt_at = $3,"
        " last_error = $2, updated_at = now() WHERE msisdn = $1"
        " AND status = 'in-progress'",
        msisdn,
        error,
        at,
    )


async def hlr_alert_failed(db: asyncpg.Pool | asyncpg.Connection, msisdn: str, error: str) -> None:
    await db.execute(
        "UPDATE hlr_alert SET status = 'failed', last_error = $2,"
        " updated_at = now() WHERE msisdn = $1 AND status = 'in-progress'",
        msisdn,
        error,
    )


# -- ads, rates, CDR, MO -----------------------------------------------------------------------

_AD_COLS = (
    "id, text, window_start, window_end, caller_prefixes, user_groups, priority,"
    " valid_from, valid_until"
)


async def active_ads(conn: asyncpg.Connection, at: dt.datetime) -> list[AdRule]:
    """Ad rules valid at ``at``, highest priority first (time window and match: the caller)."""
    rows = await conn.fetch(
        f"SELECT {_AD_COLS} FROM ad_rule WHERE valid_from <= $1"
        " AND (valid_until IS NULL OR $1 < valid_until) ORDER BY priority DESC, id",
        at,
    )
    return [
        AdRule(
            **{
                **dict(r),
                "caller_prefixes": tuple(r["caller_prefixes"]),
                "user_groups": tuple(r["user_groups"]),
            }
        )
        for r in rows
    ]


async def sms_rate(conn: asyncpg.Connection, category: str, msisdn: str, day: dt.date) -> Decimal:
    """``per_sms`` of the longest-prefix tariff line for ``msisdn`` in force on ``day``."""
    v = await conn.fetchval(
        "SELECT per_sms FROM rate WHERE call_category = $1 AND valid_from <= $3"
        " AND left($2, length(prefix)) = prefix ORDER BY length(prefix) DESC, valid_from DESC"
        " LIMIT 1",
        category,
        msisdn,
        day,
    )
    return v if v is not None else Decimal(0)


async def insert_cdr(
    conn: asyncpg.Connection,
    *,
    msisdn: str,
    service: str,
    call_category: str,
    at: dt.datetime,
    charge: Decimal,
    call_ref: str,
) -> int:
    result: int = await conn.fetchval(
        "INSERT INTO cdr (record_type, msisdn, service, call_category, started_at, ended_at,"
        " charge, call_ref) VALUES ('sms', $1, $2, $3, $4, $4, $5, $6) RETURNING id",
        msisdn,
        service,
        call_category,
        at,
        charge,
        call_ref,
    )
    return result


async def insert_mo(
    conn: asyncpg.Connection, source: str, destination: str, text: str, at: dt.datetime
) -> int:
    result: int = await conn.fetchval(
        "INSERT INTO sms_mo (source, destination, text, received_at)"
        " VALUES ($1, $2, $3, $4) RETURNING id",
        source,
        destination,
        text,
        at,
    )
    return result


async def mark_mo_handled(conn: asyncpg.Connection, mo_id: int, at: dt.datetime) -> None:
    await conn.execute("UPDATE sms_mo SET handled_at = $2 WHERE id = $1", mo_id, at)
