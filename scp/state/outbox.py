"""The durable SMS outbox in PostgreSQL: ``scp.service.outbox.OutboxPort`` over ``sms_outbox``.

ARCHITECTURE §5: every node's sender claims due rows with ``FOR UPDATE SKIP LOCKED``, so N
senders share one outbox without handing out a row twice. A claimed row becomes ``sending``
with ``next_attempt_at`` moved to the end of a lease; if its sender dies, the row is due again
when the lease ends (at-least-once, see scp/service/outbox.py for the duplicate bound).
Status after SMPP 3.4 delivery receipts (Appendix B ``stat``): DELIVRD -> delivered,
EXPIRED -> expired, UNDELIV / REJECTD / DELETED -> failed; other values only update
``delivery_status``. A receipt that overtakes the ``mark_submitted`` commit is kept in
``sms_receipt`` and applied when the message id is recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from scp.service.outbox import OutboundSms

_RECEIPT_STATUS = """CASE $2::text WHEN 'DELIVRD' THEN 'delivered' WHEN 'EXPIRED' THEN 'expired'
    WHEN 'UNDELIV' THEN 'failed' WHEN 'REJECTD' THEN 'failed' WHEN 'DELETED' THEN 'failed'
    ELSE status END"""


class PgOutbox:
    """``OutboxPort`` on PostgreSQL (plus ``enqueue`` for the notification service)."""

    def __init__(self, pool: asyncpg.Pool, *, lease: timedelta = timedelta(minutes=5)) -> None:
        self.pool = pool
        self.lease = lease

    async def enqueue(self, destination: str, text: str, *, idempotency_key: str,
                      now: datetime | None = None, source: str | None = None,
                      expires_at: datetime | None = None,
                      conn: asyncpg.Connection | None = None) -> int:
        """Queue an SMS once per idempotency key; return its id. Pass ``conn`` to enqueue in
        the caller's transaction (e.g. together with marking the missed call notified)."""
        db = conn or self.pool
        sms_id = await db.fetchval(
            "INSERT INTO sms_outbox (idempotency_key, destination, source, text,"
            " next_attempt_at, expires_at) VALUES ($1, $2, $3, $4, coalesce($5, now()), $6)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            idempotency_key, destination, source, text, now, expires_at)
        if sms_id is None:
            sms_id = await db.fetchval("SELECT id FROM sms_outbox WHERE idempotency_key = $1",
                                       idempotency_key)
        return int(sms_id)

    async def claim(self, limit: int, now: datetime) -> list[OutboundSms]:
        """Rows due at ``now``, marked 'sending', attempts incremented; at most ``limit``."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE sms_outbox SET status = 'expired', last_error = 'validity expired',"
                " updated_at = now() WHERE status IN ('queued', 'sending')"
                " AND next_attempt_at <= $1 AND expires_at <= $1", now)
            rows = await conn.fetch(
                "WITH due AS (SELECT id FROM sms_outbox WHERE status IN ('queued', 'sending')"
                "  AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
                "  FOR UPDATE SKIP LOCKED)"
                " UPDATE sms_outbox o SET status = 'sending', attempts = o.attempts + 1,"
                "  next_attempt_at = $1 + $3::interval, updated_at = now()"
                " FROM due WHERE o.id = due.id"
                " RETURNING o.id, o.idempotency_key, o.destination, o.text, o.attempts",
                now, limit, self.lease)
        rows = sorted(rows, key=lambda r: r["id"])
        return [OutboundSms(r["id"], r["idempotency_key"], r["destination"], r["text"],
                            r["attempts"]) for r in rows]

    async def mark_submitted(self, sms_id: int, smsc_message_id: str) -> None:
        """The SMSC accepted it (submit_sm_resp); apply a receipt that arrived first."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE sms_outbox SET status = 'submitted', smsc_message_id = $2,"
                " last_error = NULL, updated_at = now()"
                " WHERE id = $1 AND status NOT IN ('delivered', 'failed', 'expired')",
                sms_id, smsc_message_id)
            early = await conn.fetchrow(
                "SELECT status, received_at FROM sms_receipt WHERE smsc_message_id = $1"
                " ORDER BY id DESC LIMIT 1", smsc_message_id)
            if early is not None:
                await self._apply_receipt(conn, smsc_message_id, early["status"],
                                          early["received_at"])

    async def mark_retry(self, sms_id: int, error: str, next_attempt_at: datetime) -> None:
        """Temporary failure: due again at ``next_attempt_at``."""
        await self.pool.execute(
            "UPDATE sms_outbox SET status = 'queued', last_error = $2, next_attempt_at = $3,"
            " updated_at = now() WHERE id = $1 AND status = 'sending'",
            sms_id, error, next_attempt_at)

    async def mark_failed(self, sms_id: int, error: str) -> None:
        """Gave up (permanent refusal, or the attempt limit)."""
        await self.pool.execute(
            "UPDATE sms_outbox SET status = 'failed', last_error = $2, updated_at = now()"
            " WHERE id = $1 AND status IN ('queued', 'sending')", sms_id, error)

    async def record_receipt(self, smsc_message_id: str, status: str, at: datetime) -> None:
        """An SMPP delivery receipt (deliver_sm with esm_class receipt)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO sms_receipt (smsc_message_id, status, received_at)"
                               " VALUES ($1, $2, $3)", smsc_message_id, status, at)
            await self._apply_receipt(conn, smsc_message_id, status, at)

    @staticmethod
    async def _apply_receipt(conn: asyncpg.Connection, smsc_message_id: str, status: str,
                             at: datetime) -> None:
        await conn.execute(
            f"UPDATE sms_outbox SET delivery_status = $2, delivered_at = $3,"
            f" status = {_RECEIPT_STATUS}, updated_at = now()"
            " WHERE smsc_message_id = $1 AND status IN ('sending', 'submitted')",
            smsc_message_id, status, at)

    async def record_mo(self, source: str, destination: str, text: str, at: datetime) -> None:
        """A mobile-originated SMS to our number (SMS self-care channel)."""
        await self.pool.execute("INSERT INTO sms_mo (source, destination, text, received_at)"
                                " VALUES ($1, $2, $3, $4)", source, destination, text, at)
