"""Named SQL of data retention (scp.flows.retention): one batch of old rows per statement.

Each statement deletes at most ``$2`` rows older than the cutoff ``$1`` (a time the node
passes: the database's clock is not business time), picked by primary key with SKIP LOCKED so
a batch never waits on a row another transaction holds. Only rows that are final are taken:
a callback request still open, an SMS queued or in flight, an MO SMS whose command has not run
are kept whatever their age, and a CDR only goes once it is in a written CDR file: below the
export watermark and below every CDR file still to write (migration 0230; a fee file, 0270,
holds no CDR). Monthly fee records are kept. Tables of migrations 0001, 0020 and 0230. The run lock (:data:`LOCK`) keeps the job to one node.
"""

from __future__ import annotations

import datetime as dt

import asyncpg

__all__ = ["DELETES", "LOCK", "delete_batch"]

LOCK = (0x6D636E03, 1)  # pg_try_advisory_lock(key1, key2): the retention job, one node at a time


def _delete(table: str, where: str) -> str:
    return (
        f"WITH d AS (SELECT ctid FROM {table} WHERE {where} LIMIT $2 FOR UPDATE SKIP LOCKED)"
        f" DELETE FROM {table} t USING d WHERE t.ctid = d.ctid"
    )


# kind -> statements in order (a callback request goes before the missed calls it names)
DELETES: dict[str, tuple[str, ...]] = {
    "missed_calls": (
        _delete(
            "callback_request",
            "requested_at < $1 AND (notified_at IS NOT NULL OR expires_at < $1)",
        ),
        _delete("missed_call", "occurred_at < $1"),
    ),
    "sms_outbox": (
        _delete(
            "sms_outbox",
            "created_at < $1 AND status IN ('submitted', 'delivered', 'failed', 'expired')",
        ),
    ),
    "receipts": (_delete("sms_receipt", "received_at < $1"),),
    "mo_sms": (_delete("sms_mo", "received_at < $1 AND handled_at IS NOT NULL"),),
    "audit_log": (_delete("audit_log", "at < $1"),),
    "cdr": (
        _delete(
            "cdr",
            "started_at < $1"
            " AND tx < (SELECT coalesce(min(high_tx), 0) FROM cdr_export WHERE stream = 'cdr')"
            " AND tx < coalesce((SELECT min(tx_lo) FROM cdr_file WHERE NOT written AND kind = 'cdr'),"
            " 9223372036854775807)",
        ),
    ),
}


async def delete_batch(conn: asyncpg.Connection, sql: str, cutoff: dt.datetime, batch: int) -> int:
    """Rows one statement of :data:`DELETES` removed (0: nothing older is left)."""
    status = await conn.execute(sql, cutoff, batch)
    return int(status.rsplit(" ", 1)[1])
