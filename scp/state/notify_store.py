"""Named SQL of the notification service (issue 6): what ``scp.service.notifications``,
``scp.service.smscmd`` and ``scp.mapuser`` read and write, kept out of their decisions.

Tables: ``missed_call`` / ``callback_request`` (written by call handling), ``presence``,
``sms_outbox`` (the durable outbox, ARCHITECTURE §5), ``hlr_alert`` (migration 0020: pending
MAP registrations toward the HLR, TS 29.002 §12.3 / §12.4), ``ad_rule``, ``rate``, ``cdr``,
``sms_mo``. Every function takes the connection of the caller's transaction: the event and the
SMS it causes commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from scp.service.provisioning import AdRule

__all__ = [
    "PendingCall",
    "PendingCallback",
    "Recipient",
    "active_ads",
    "calls_since",
    "claim_hlr_alerts",
    "clear_hlr_alert",
    "enqueue_sms",
    "hlr_alert_failed",
    "hlr_alert_registered",
    "hlr_alert_retry",
    "insert_cdr",
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


@dataclass(frozen=True, slots=True)
class Recipient:
    """A subscriber as the notification decisions need it."""

    msisdn: str
    language: str
    user_group: str
    notify_mode: str
    services: frozenset[str]


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A missed call not yet notified."""

    id: int
    caller: str | None
    occurred_at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class PendingCallback:
    """A caller waiting to hear that the callee is reachable (IVR digit 1)."""

    id: int
    caller: str
    requested_at: dt.datetime
    expires_at: dt.datetime | None = None


async def load_recipient(conn: asyncpg.Connection, msisdn: str, day: dt.date
                         ) -> Recipient | None:
    """The subscriber with the services in force on ``day``; None if not a subscriber."""
    row = await conn.fetchrow(
        "SELECT s.msisdn, s.language, s.user_group, s.notify_mode, s.status,"
        " coalesce(array_agg(u.service) FILTER (WHERE u.service IS NOT NULL), '{}') AS services"
        " FROM subscriber s LEFT JOIN subscription u ON u.msisdn = s.msisdn"
        "  AND u.start_date <= $2 AND (u.end_date IS NULL OR $2 < u.end_date)"
        " WHERE s.msisdn = $1 GROUP BY s.msisdn", msisdn, day)
    if row is None:
        return None
    services = frozenset(row["services"]) if row["status"] == "active" else frozenset()
    return Recipient(row["msisdn"], row["language"], row["user_group"], row["notify_mode"],
                     services)


async def msisdn_by_imsi(conn: asyncpg.Connection, imsi: str) -> str | None:
    return await conn.fetchval("SELECT msisdn FROM subscriber WHERE imsi = $1", imsi)


# -- outbox ----------------------------------------------------------------------------------


async def enqueue_sms(conn: asyncpg.Connection, *, key: str, destination: str, text: str,
                      not_before: dt.datetime | None = None,
                      expires_at: dt.datetime | None = None,
                      source: str | None = None) -> int | None:
    """Queue one SMS unless its idempotency key exists; its id, or None if it did."""
    return await conn.fetchval(
        "INSERT INTO sms_outbox (idempotency_key, destination, source, text, next_attempt_at,"
        " expires_at) VALUES ($1, $2, $3, $4, coalesce($5, now()), $6)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        key, destination, source, text, not_before, expires_at)


async def lock_open_busy_sms(conn: asyncpg.Connection, key_prefix: str, destination: str
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
        " ORDER BY id DESC LIMIT 1 FOR UPDATE", destination, key_prefix)
    return (row["id"], row["idempotency_key"]) if row else None


async def update_sms_text(conn: asyncpg.Connection, sms_id: int, text: str) -> None:
    await conn.execute("UPDATE sms_outbox SET text = $2, updated_at = now() WHERE id = $1",
                       sms_id, text)


async def calls_since(conn: asyncpg.Connection, callee: str, caller: str | None,
                      first_id: int, reason: str) -> tuple[int, dt.datetime | None]:
    """How many ``reason`` calls from ``caller`` since missed call ``first_id``, and the first
    one's time (the count an aggregated busy / no-answer SMS reports)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, min(occurred_at) AS first FROM missed_call WHERE callee = $1"
        " AND caller IS NOT DISTINCT FROM $2 AND reason = $4 AND id >= $3",
        callee, caller, first_id, reason)
    return int(row["n"]), row["first"]


# -- missed calls, callbacks, presence -------------------------------------------------------


async def pending_missed_calls(conn: asyncpg.Connection, callee: str) -> list[PendingCall]:
    """Missed calls of ``callee`` not yet notified, oldest first, locked for this transaction."""
    rows = await conn.fetch(
        "SELECT id, caller, occurred_at, reason FROM missed_call"
        " WHERE callee = $1 AND notified_at IS NULL ORDER BY occurred_at, id FOR UPDATE", callee)
    return [PendingCall(r["id"], r["caller"], r["occurred_at"], r["reason"]) for r in rows]


async def mark_missed_calls(conn: asyncpg.Connection, ids: Sequence[int], at: dt.datetime,
                            outcome: str) -> None:
    if ids:
        await conn.execute("UPDATE missed_call SET notified_at = $2, notify_outcome = $3"
                           " WHERE id = ANY($1::bigint[])", list(ids), at, outcome)


async def recent_missed_calls(conn: asyncpg.Connection, callee: str, since: dt.datetime
                              ) -> list[PendingCall]:
    """Every missed call of ``callee`` since ``since``, newest first (SMS command CX)."""
    rows = await conn.fetch(
        "SELECT id, caller, occurred_at, reason FROM missed_call WHERE callee = $1"
        " AND occurred_at >= $2 ORDER BY occurred_at DESC, id DESC LIMIT 50", callee, since)
    return [PendingCall(r["id"], r["caller"], r["occurred_at"], r["reason"]) for r in rows]


async def pending_callbacks(conn: asyncpg.Connection, callee: str) -> list[PendingCallback]:
    """Open callback requests for ``callee`` (any age: the caller filters), locked."""
    rows = await conn.fetch(
        "SELECT id, caller, requested_at, expires_at FROM callback_request"
        " WHERE callee = $1 AND notified_at IS NULL ORDER BY requested_at, id FOR UPDATE",
        callee)
    return [PendingCallback(r["id"], r["caller"], r["requested_at"], r["expires_at"])
            for r in rows]


async def mark_callbacks(conn: asyncpg.Connection, ids: Sequence[int], at: dt.datetime) -> None:
    if ids:
        await conn.execute("UPDATE callback_request SET notified_at = $2"
                           " WHERE id = ANY($1::bigint[])", list(ids), at)


async def set_presence(conn: asyncpg.Connection, msisdn: str, present: bool, at: dt.datetime,
                       source: str, detail: str | None = None) -> None:
    """Record evidence of (non-)presence; an older event never overwrites a newer one."""
    await conn.execute(
        "INSERT INTO presence (msisdn, present, event_at, source, detail)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (msisdn) DO UPDATE SET"
        " present = EXCLUDED.present, event_at = EXCLUDED.event_at, source = EXCLUDED.source,"
        " detail = EXCLUDED.detail WHERE presence.event_at <= EXCLUDED.event_at",
        msisdn, present, at, source, detail)


# -- HLR alert registration ------------------------------------------------------------------


async def request_hlr_alert(conn: asyncpg.Connection, msisdn: str, at: dt.datetime,
                            refresh: dt.timedelta) -> bool:
    """Ask for a registration unless one is pending or succeeded within ``refresh``."""
    r = await conn.execute(
        "INSERT INTO hlr_alert (msisdn, requested_at, next_attempt_at) VALUES ($1, $2, $2)"
        " ON CONFLICT (msisdn) DO UPDATE SET status = 'pending', attempts = 0,"
        " requested_at = EXCLUDED.requested_at, next_attempt_at = EXCLUDED.requested_at,"
        " last_error = NULL, updated_at = now()"
        " WHERE hlr_alert.status = 'failed' OR (hlr_alert.status = 'registered'"
        "  AND hlr_alert.registered_at < EXCLUDED.requested_at - $3::interval)",
        msisdn, at, refresh)
    return r.endswith(" 1")


async def clear_hlr_alert(conn: asyncpg.Connection, msisdn: str) -> None:
    """The subscriber is present: the registration has served (or is no longer needed)."""
    await conn.execute("DELETE FROM hlr_alert WHERE msisdn = $1", msisdn)


async def claim_hlr_alerts(db: asyncpg.Pool | asyncpg.Connection, limit: int, now: dt.datetime,
                           lease: dt.timedelta) -> list[tuple[str, int]]:
    """Due registrations (msisdn, attempt number), leased to this node until ``now + lease``."""
    rows = await db.fetch(
        "WITH due AS (SELECT msisdn FROM hlr_alert WHERE status IN ('pending', 'in-progress')"
        "  AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " UPDATE hlr_alert a SET status = 'in-progress', attempts = a.attempts + 1,"
        " next_attempt_at = $1 + $3::interval, updated_at = now() FROM due"
        " WHERE a.msisdn = due.msisdn RETURNING a.msisdn, a.attempts", now, limit, lease)
    return [(r["msisdn"], r["attempts"]) for r in rows]


async def hlr_alert_registered(db: asyncpg.Pool | asyncpg.Connection, msisdn: str,
                               at: dt.datetime) -> None:
    await db.execute("UPDATE hlr_alert SET status = 'registered', registered_at = $2,"
                     " last_error = NULL, updated_at = now() WHERE msisdn = $1"
                     " AND status = 'in-progress'", msisdn, at)


async def hlr_alert_retry(db: asyncpg.Pool | asyncpg.Connection, msisdn: str, error: str,
                          at: dt.datetime) -> None:
    await db.execute("UPDATE hlr_alert SET status = 'pending', next_attempt_at = $3,"
                     " last_error = $2, updated_at = now() WHERE msisdn = $1"
                     " AND status = 'in-progress'", msisdn, error, at)


async def hlr_alert_failed(db: asyncpg.Pool | asyncpg.Connection, msisdn: str,
                           error: str) -> None:
    await db.execute("UPDATE hlr_alert SET status = 'failed', last_error = $2,"
                     " updated_at = now() WHERE msisdn = $1 AND status = 'in-progress'",
                     msisdn, error)


# -- ads, rates, CDR, MO -----------------------------------------------------------------------

_AD_COLS = ("id, text, window_start, window_end, caller_prefixes, user_groups, priority,"
            " valid_from, valid_until")


async def active_ads(conn: asyncpg.Connection, at: dt.datetime) -> list[AdRule]:
    """Ad rules valid at ``at``, highest priority first (time window and match: the caller)."""
    rows = await conn.fetch(
        f"SELECT {_AD_COLS} FROM ad_rule WHERE valid_from <= $1"
        " AND (valid_until IS NULL OR $1 < valid_until) ORDER BY priority DESC, id", at)
    return [AdRule(**{**dict(r), "caller_prefixes": tuple(r["caller_prefixes"]),
                      "user_groups": tuple(r["user_groups"])}) for r in rows]


async def sms_rate(conn: asyncpg.Connection, category: str, msisdn: str, day: dt.date
                   ) -> Decimal:
    """``per_sms`` of the longest-prefix tariff line for ``msisdn`` in force on ``day``."""
    v = await conn.fetchval(
        "SELECT per_sms FROM rate WHERE call_category = $1 AND valid_from <= $3"
        " AND left($2, length(prefix)) = prefix ORDER BY length(prefix) DESC, valid_from DESC"
        " LIMIT 1", category, msisdn, day)
    return v if v is not None else Decimal(0)


async def insert_cdr(conn: asyncpg.Connection, *, msisdn: str, service: str,
                     call_category: str, at: dt.datetime, charge: Decimal,
                     call_ref: str) -> int:
    return await conn.fetchval(
        "INSERT INTO cdr (record_type, msisdn, service, call_category, started_at, ended_at,"
        " charge, call_ref) VALUES ('sms', $1, $2, $3, $4, $4, $5, $6) RETURNING id",
        msisdn, service, call_category, at, charge, call_ref)


async def insert_mo(conn: asyncpg.Connection, source: str, destination: str, text: str,
                    at: dt.datetime) -> int:
    return await conn.fetchval("INSERT INTO sms_mo (source, destination, text, received_at)"
                               " VALUES ($1, $2, $3, $4) RETURNING id",
                               source, destination, text, at)


async def mark_mo_handled(conn: asyncpg.Connection, mo_id: int, at: dt.datetime) -> None:
    await conn.execute("UPDATE sms_mo SET handled_at = $2 WHERE id = $1", mo_id, at)
