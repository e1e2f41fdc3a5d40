"""Named SQL of the web tier: sessions, operator accounts, login throttling, one-time codes,
and the read models of the portal's and the console's pages (migration 0100).

Every function takes a connection (or the pool) and the caller's time; none decides anything
(the rules are :mod:`scp.service.webauth`, the flows :mod:`scp.flows.selfservice`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, TypeAlias

import asyncpg

from scp.service.webauth import Operator, SessionInfo

Db: TypeAlias = asyncpg.Pool | asyncpg.Connection

# A session's seen_at / expires_at are written at most this often (a page view is a read).
TOUCH_EVERY = dt.timedelta(seconds=60)

# -- sessions ------------------------------------------------------------------------------------


async def create_session(
    db: Db,
    *,
    token_hash: str,
    kind: str,
    subject: str | None,
    csrf: str,
    via: str | None,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> None:
    await db.execute(
        "INSERT INTO web_session (token_hash, kind, subject, csrf, via, created_at, seen_at,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        token_hash,
        kind,
        subject,
        csrf,
        via,
        now,
        expires_at,
    )


_LOAD_SESSION = """
WITH s AS (
    SELECT token_hash, kind, subject, csrf, via, created_at, seen_at FROM web_session
     WHERE token_hash = $1 AND expires_at > $2
), touched AS (
    UPDATE web_session w SET seen_at = $2,
           expires_at = least($2 + $3::interval, s.created_at + $4::interval)
      FROM s WHERE w.token_hash = s.token_hash AND s.seen_at < $2 - $5::interval
    RETURNING 1
)
SELECT s.token_hash, s.kind, s.subject, s.csrf, s.via, o.role
  FROM s LEFT JOIN operator o ON s.kind = 'operator' AND o.name = s.subject
"""


async def load_session(
    db: Db,
    token_hash: str,
    now: dt.datetime,
    *,
    idle: dt.timedelta,
    lifetime: dt.timedelta,
) -> SessionInfo | None:
    """The live session with this token hash (its idle expiry moved on), or None.

    One statement: the read, the sliding expiry (written at most every :data:`TOUCH_EVERY`)
    and an operator's current role. An operator deleted meanwhile has no session any more.
    """
    row = await db.fetchrow(_LOAD_SESSION, token_hash, now, idle, lifetime, TOUCH_EVERY)
    if row is None or (row["kind"] == "operator" and row["role"] is None):
        return None
    return SessionInfo(
        row["token_hash"], row["kind"], row["subject"], row["csrf"], row["via"], row["role"]
    )


async def delete_session(db: Db, token_hash: str) -> None:
    await db.execute("DELETE FROM web_session WHERE token_hash = $1", token_hash)


async def delete_sessions_of(db: Db, kind: str, subject: str) -> int:
    """End every session of a subscriber or an operator (password changed, account deleted)."""
    r = await db.execute("DELETE FROM web_session WHERE kind = $1 AND subject = $2", kind, subject)
    return int(r.split()[-1])


async def purge_expired(db: Db, now: dt.datetime, attempts_before: dt.datetime) -> dict[str, int]:
    """Drop sessions and codes past their expiry and attempts older than any throttling
    window; how many rows of each went."""
    gone = {}
    for name, sql, at in (
        ("sessions", "DELETE FROM web_session WHERE expires_at <= $1", now),
        ("attempts", "DELETE FROM web_attempt WHERE at < $1", attempts_before),
        ("codes", "DELETE FROM web_code WHERE expires_at <= $1", now),
    ):
        r: str = await db.execute(sql, at)
        gone[name] = int(r.split()[-1])
    return gone


# -- throttling ----------------------------------------------------------------------------------


async def record_attempt(db: Db, keys: Sequence[str], at: dt.datetime) -> None:
    """One failure (or one code sent) for each key."""
    await db.executemany(
        "INSERT INTO web_attempt (key, at) VALUES ($1, $2)", [(k, at) for k in keys]
    )


async def count_attempts(db: Db, keys: Sequence[str], since: dt.datetime) -> dict[str, int]:
    """Failures per key since ``since``."""
    rows = await db.fetch(
        "SELECT key, count(*) AS n FROM web_attempt WHERE key = ANY($1::text[]) AND at >= $2"
        " GROUP BY key",
        list(keys),
        since,
    )
    got = {r["key"]: int(r["n"]) for r in rows}
    return {k: got.get(k, 0) for k in keys}


async def clear_attempts(db: Db, key: str) -> None:
    await db.execute("DELETE FROM web_attempt WHERE key = $1", key)


# -- operators -----------------------------------------------------------------------------------

_OP_COLS = "name, role, created_at, updated_at"


async def insert_operator(conn: asyncpg.Connection, name: str, role: str, pw_hash: str) -> Operator:
    row = await conn.fetchrow(
        f"INSERT INTO operator (name, role, password_hash) VALUES ($1, $2, $3) RETURNING {_OP_COLS}",
        name,
        role,
        pw_hash,
    )
    return Operator(**dict(row))


async def operator_with_hash(db: Db, name: str) -> tuple[Operator, str] | None:
    row = await db.fetchrow(f"SELECT {_OP_COLS}, password_hash FROM operator WHERE name = $1", name)
    if row is None:
        return None
    d = dict(row)
    h = d.pop("password_hash")
    return Operator(**d), h


async def list_operators(db: Db) -> list[Operator]:
    rows = await db.fetch(f"SELECT {_OP_COLS} FROM operator ORDER BY name")
    return [Operator(**dict(r)) for r in rows]


async def delete_operator(conn: asyncpg.Connection, name: str) -> Operator | None:
    row = await conn.fetchrow(f"DELETE FROM operator WHERE name = $1 RETURNING {_OP_COLS}", name)
    return Operator(**dict(row)) if row is not None else None


async def set_operator_password(conn: asyncpg.Connection, name: str, pw_hash: str) -> bool:
    r: str = await conn.execute(
        "UPDATE operator SET password_hash = $2, updated_at = now() WHERE name = $1", name, pw_hash
    )
    return r.endswith(" 1")


# -- one-time codes ------------------------------------------------------------------------------


async def put_code(
    conn: asyncpg.Connection,
    msisdn: str,
    code_hash: str,
    sent_at: dt.datetime,
    expires_at: dt.datetime,
) -> None:
    """The number's code (a new one replaces the old, its tries back to 0)."""
    await conn.execute(
        "INSERT INTO web_code (msisdn, code_hash, sent_at, expires_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (msisdn) DO UPDATE SET code_hash = EXCLUDED.code_hash,"
        " sent_at = EXCLUDED.sent_at, expires_at = EXCLUDED.expires_at, tries = 0",
        msisdn,
        code_hash,
        sent_at,
        expires_at,
    )


async def take_code_try(
    conn: asyncpg.Connection, msisdn: str, now: dt.datetime
) -> asyncpg.Record | None:
    """Count one try of the number's live code (locked for the transaction); the row before."""
    return await conn.fetchrow(
        "UPDATE web_code c SET tries = c.tries + 1 FROM web_code old"
        " WHERE c.msisdn = $1 AND old.msisdn = c.msisdn AND c.expires_at > $2"
        " RETURNING old.code_hash, old.tries",
        msisdn,
        now,
    )


async def delete_code(conn: asyncpg.Connection, msisdn: str) -> None:
    await conn.execute("DELETE FROM web_code WHERE msisdn = $1", msisdn)


# -- read models ---------------------------------------------------------------------------------


async def missed_calls_by_caller(
    db: Db, callee: str, since: dt.datetime, *, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    """The callee's missed calls since ``since``, one row per caller (count, last time, the
    reasons), latest first; and how many callers in all (for the pages)."""
    rows = await db.fetch(
        "SELECT caller, count(*) AS calls, max(occurred_at) AS last_at,"
        " array_agg(DISTINCT reason ORDER BY reason) AS reasons, count(*) OVER () AS total"
        " FROM missed_call WHERE callee = $1 AND occurred_at >= $2"
        " GROUP BY caller ORDER BY last_at DESC, caller LIMIT $3 OFFSET $4",
        callee,
        since,
        limit,
        offset,
    )
    total = int(rows[0]["total"]) if rows else 0
    if not rows and offset:
        total = int(
            await db.fetchval(
                "SELECT count(DISTINCT caller) + bool_or(caller IS NULL)::int FROM missed_call"
                " WHERE callee = $1 AND occurred_at >= $2",
                callee,
                since,
            )
            or 0
        )
    return list(rows), total


async def calls_of_number(
    db: Db, number: str, since: dt.datetime, limit: int
) -> list[asyncpg.Record]:
    """Missed calls to or from ``number`` since ``since`` (the console's call inquiry)."""
    return list(
        await db.fetch(
            "SELECT id, caller, callee, occurred_at, reason, notified_at FROM missed_call"
            " WHERE (callee = $1 OR caller = $1) AND occurred_at >= $2"
            " ORDER BY occurred_at DESC, id DESC LIMIT $3",
            number,
            since,
            limit,
        )
    )


async def charges(
    db: Db, msisdn: str, *, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int, Any]:
    """The subscriber's CDRs, newest first; how many in all; the sum of all their charges."""
    rows = await db.fetch(
        "SELECT id, record_type, caller, callee, service, call_category, started_at,"
        " duration_s, charge FROM cdr WHERE msisdn = $1 ORDER BY started_at DESC, id DESC"
        " LIMIT $2 OFFSET $3",
        msisdn,
        limit,
        offset,
    )
    row = await db.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(charge), 0) AS total FROM cdr WHERE msisdn = $1",
        msisdn,
    )
    assert row is not None  # an aggregate always has its row
    return list(rows), int(row["n"]), row["total"]


async def search_audit(
    db: Db,
    *,
    subject: str | None,
    agent: str | None,
    channel: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    before_id: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Audit rows, newest first (keyset paging on the id): ``subject`` is the entity key (a
    subscriber's entries start with the MSISDN), ``agent`` the actor."""
    return list(
        await db.fetch(
            "SELECT id, at, channel, actor, action, entity, entity_key, before, after"
            " FROM audit_log WHERE ($1::text IS NULL OR entity_key = $1"
            "   OR left(entity_key, length($1) + 1) = $1 || ':')"
            " AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR channel = $3)"
            " AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5)"
            " AND ($6::bigint IS NULL OR id < $6) ORDER BY id DESC LIMIT $7",
            subject,
            agent,
            channel,
            since,
            until,
            before_id,
            limit,
        )
    )


async def sms_destination(db: Db, sms_id: int) -> str | None:
    """The number an outbox SMS is for (None: no such SMS)."""
    dest: str | None = await db.fetchval("SELECT destination FROM sms_outbox WHERE id = $1", sms_id)
    return dest
