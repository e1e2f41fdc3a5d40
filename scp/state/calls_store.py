"""Named SQL of call handling (issue 5): what one call reads and writes in PostgreSQL.

Reads: the called subscriber with its services in force on the call's day (passed in: the
database's clock is not the node's) and whether the caller is on its blacklist, in one round
trip (:data:`LOAD_CALLEE`, which also reads the subscriber as a notification recipient: the
forecast of ``scp.flows.notify.record_missed_call``); the tariffs and the per-number
category overrides for :class:`scp.service.rating.RateTable`. Writes: everything a call
decision produces, in ONE transaction (:func:`write_records`): missed call (and, in the same
transaction, ``scp.flows.notify.on_missed_call`` when that module is installed),
callback request, voicemail record, CDRs. Schema: migrations 0001, 0010 and 0030. A lone
record is one statement (its implicit transaction: no BEGIN / COMMIT round trips); a lone
missed call with its notifications too (``scp.flows.notify.record_missed_call``,
migration 0030), usually in one round trip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import asyncpg

from scp.service.calls import (
    Callee,
    RecordCallback,
    RecordMissedCall,
    RecordVoicemail,
    WriteCdr,
)
from scp.service.rating import RateTable, RatingRules, Tariff
from scp.state import notify_store

try:  # issue 6 (notifications) is built concurrently: call it when it is there
    from scp.flows import notify as _notifications
except ImportError:  # pragma: no cover - depends on the other module's presence
    _notifications = None  # type: ignore[assignment]

LOAD_CALLEE = """
SELECT s.status = 'active' AS active, s.forward_to,
       ARRAY(SELECT service FROM subscription u
             WHERE u.msisdn = s.msisdn AND u.start_date <= $3::date
               AND (u.end_date IS NULL OR $3::date < u.end_date)) AS services,
       ($2::text IS NOT NULL AND EXISTS (
           SELECT 1 FROM blacklist b WHERE b.owner = s.msisdn AND (
               (b.kind = 'exact' AND b.number = $2) OR
               (b.kind = 'prefix' AND left($2, length(b.number)) = b.number)))) AS blacklisted,
       CASE WHEN r.msisdn IS NULL THEN NULL ELSE r::text END AS rcpt, r.language,
       r.user_group, r.notify_mode, r.status AS rcpt_status, r.services AS rcpt_services
FROM subscriber s CROSS JOIN LATERAL mcn_recipient(s.msisdn, $3::date) r
WHERE s.msisdn = $1
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


async def load_callee(
    db: asyncpg.Pool | asyncpg.Connection, msisdn: str, caller: str | None, day: dt.date
) -> Callee | None:
    """The subscriber ``msisdn`` with the services in force on ``day`` (the call's calendar
    day, ``scp.service.notifications.local_day``), or None if not provisioned."""
    row = await db.fetchrow(LOAD_CALLEE, msisdn, caller, day)
    if row is None:
        return None
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
    return Callee(
        msisdn,
        bool(row["active"]),
        frozenset(row["services"]),
        row["forward_to"],
        bool(row["blacklisted"]),
    )


async def load_rates(db: asyncpg.Pool | asyncpg.Connection, rules: RatingRules) -> RateTable:
    """Every tariff line and override (small tables: cached by the executor)."""
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
    return RateTable(rules, tuple(tariffs), exact, prefix)


Record = RecordMissedCall | RecordCallback | RecordVoicemail | WriteCdr


async def write_records(
    db: asyncpg.Pool | asyncpg.Connection,
    records: Sequence[Record],
    *,
    cfg: Any,
    missed_call_id: int | None = None,
) -> int | None:
    """Write ``records`` in one transaction; return the id of the missed call written, if any.

    ``missed_call_id`` links a callback request to the missed call of the same call.
    """
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await write_records(conn, records, cfg=cfg, missed_call_id=missed_call_id)
    conn = db
    if len(records) == 1 and not conn.is_in_transaction():
        # One record is one statement: its implicit transaction is the transaction, without
        # the BEGIN and COMMIT round trips (migration 0030 for the missed call + notification).
        mc_id = await _write_one(conn, records[0], cfg=cfg, missed_call_id=missed_call_id)
        if mc_id is not _STATE_CHANGED:
            return mc_id  # type: ignore[return-value]
    mc_id = missed_call_id
    async with conn.transaction():
        for r in records:
            t = type(r)
            if t is RecordMissedCall:
                assert isinstance(r, RecordMissedCall)
                mc_id = await conn.fetchval(
                    INSERT_MISSED_CALL, r.caller, r.callee, r.at, r.reason, r.cause, r.call_ref
                )
                if _notifications is not None and hasattr(_notifications, "on_missed_call"):
                    await _notifications.on_missed_call(
                        conn,
                        missed_call_id=mc_id,
                        caller=r.caller,
                        callee=r.callee,
                        reason=r.reason,
                        at=r.at,
                        cfg=cfg,
                    )
            else:
                await _write_other(conn, r, mc_id)
    return mc_id


_STATE_CHANGED = object()  # _write_one: the fast path wrote nothing, take the transaction


async def _write_one(
    conn: asyncpg.Connection, r: Record, *, cfg: Any, missed_call_id: int | None
) -> int | None | object:
    """``r`` in one statement outside any explicit transaction; the missed call id (or
    ``missed_call_id``), or :data:`_STATE_CHANGED` when the caller must use the transaction."""
    t = type(r)
    if t is RecordMissedCall:
        assert isinstance(r, RecordMissedCall)
        if _notifications is None:
            return await conn.fetchval(
                INSERT_MISSED_CALL, r.caller, r.callee, r.at, r.reason, r.cause, r.call_ref
            )
        fast = getattr(_notifications, "record_missed_call", None)
        if fast is None:  # only the transactional hook: it must share the insert's transaction
            return _STATE_CHANGED
        mc_id = await fast(
            conn,
            caller=r.caller,
            callee=r.callee,
            reason=r.reason,
            cause=r.cause,
            call_ref=r.call_ref,
            at=r.at,
            cfg=cfg,
        )
        return _STATE_CHANGED if mc_id is None else mc_id
    await _write_other(conn, r, missed_call_id)
    return missed_call_id


async def _write_other(conn: asyncpg.Connection, r: Record, missed_call_id: int | None) -> None:
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
