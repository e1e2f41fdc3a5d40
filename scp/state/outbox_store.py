"""The outbox the running node uses: :class:`scp.state.outbox.PgOutbox` plus what its SMPP
events mean for the notification service (issue 6).

:class:`scp.state.outbox.PgOutbox` is the durable ``OutboxPort`` (``FOR UPDATE SKIP LOCKED``
claims, leases, retry / give-up, receipts, expiry; ARCHITECTURE §5). This subclass adds, each
in the transaction that records the SMPP event:

* a DELIVRD receipt for one of our SMS proves its destination reachable (ARCHITECTURE §4
  "Subscriber present"): ``on_delivered(conn, destination, at)``, normally
  :func:`scp.service.notifications.on_present` with source ``delivery-receipt``;
* a mobile-originated SMS is stored in ``sms_mo`` and handed to ``on_mo(conn, mo_id, source,
  destination, text, at)``, normally :func:`scp.service.smscmd.handle_mo` (SMS commands), so
  the command, its CDR and its reply commit with the MO or not at all.

Crash window (the guarantee operations can quote): a sender that dies after the SMSC accepted
a submit_sm but before ``mark_submitted`` commits leaves the row ``sending``; after its lease
another sender submits it again. A crash therefore causes at most one duplicate per SMS in
flight at that moment (at most ``window + prefetch`` per sender) and never a loss; the UDH
reference of a long SMS is derived from the row id, so handsets drop repeated parts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg

from scp.service.outbox import RetryPolicy
from scp.state.outbox import PgOutbox

if TYPE_CHECKING:
    from scp.config import Config

__all__ = ["NotifyingOutbox", "DeliveredHook", "MoHook", "build_outbox", "retry_policy"]

DeliveredHook = Callable[[asyncpg.Connection, str, dt.datetime], Awaitable[object]]
"""(conn, destination, at) in the receipt's transaction, for a DELIVRD receipt."""

MoHook = Callable[[asyncpg.Connection, int, str, str, str, dt.datetime], Awaitable[object]]
"""(conn, mo_id, source, destination, text, at) in the MO's transaction."""

SubscriberReceiptHook = Callable[[asyncpg.Connection, str, str, str, dt.datetime], Awaitable[object]]
"""(conn, owner, destination, smsc_message_id, at) for the receipt of a subscriber's own SMS."""


class NotifyingOutbox(PgOutbox):
    """PgOutbox whose receipts mark presence and whose MO SMS run commands."""

    def __init__(self, pool: asyncpg.Pool, *, lease: dt.timedelta = dt.timedelta(minutes=1),
                 on_delivered: DeliveredHook | None = None, on_mo: MoHook | None = None,
                 on_subscriber_receipt: SubscriberReceiptHook | None = None) -> None:
        super().__init__(pool, lease=lease)
        self.on_delivered = on_delivered
        self.on_mo = on_mo
        self.on_subscriber_receipt = on_subscriber_receipt

    async def record_foreign_receipt(self, owner: str, destination: str, smsc_message_id: str,
                                     status: str, at: dt.datetime) -> None:
        """A receipt for a message we did not submit: a subscriber's own SMS (短信回执).

        Checked against the outbox inside the transaction, so a receipt of one of ours whose id
        the gateway no longer remembered (restart) is never mistaken for a subscriber's.
        """
        if status != "DELIVRD" or self.on_subscriber_receipt is None:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            ours = await conn.fetchval("SELECT 1 FROM sms_outbox WHERE smsc_message_id = $1"
                                       " LIMIT 1", smsc_message_id)
            if ours is None:
                await self.on_subscriber_receipt(conn, owner, destination, smsc_message_id, at)

    async def _delivered(self, conn: asyncpg.Connection, where: str, key: object,
                         at: dt.datetime) -> None:
        if self.on_delivered is None:
            return
        for r in await conn.fetch(f"SELECT destination FROM sms_outbox WHERE {where}", key):
            await self.on_delivered(conn, r["destination"], at)

    async def record_receipt(self, smsc_message_id: str, status: str, at: dt.datetime) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO sms_receipt (smsc_message_id, status, received_at)"
                               " VALUES ($1, $2, $3)", smsc_message_id, status, at)
            # the rows this receipt settles, read before it changes their status
            pending = await conn.fetch(
                "SELECT id FROM sms_outbox WHERE smsc_message_id = $1"
                " AND status IN ('sending', 'submitted') FOR UPDATE", smsc_message_id)
            await self._apply_receipt(conn, smsc_message_id, status, at)
            if status == "DELIVRD" and pending:
                await self._delivered(conn, "id = ANY($1::bigint[])",
                                      [r["id"] for r in pending], at)

    async def mark_submitted(self, sms_id: int, smsc_message_id: str) -> None:
        await super().mark_submitted(sms_id, smsc_message_id)
        if self.on_delivered is None:
            return
        # a DELIVRD receipt that overtook this commit: record_receipt could not match it
        async with self.pool.acquire() as conn, conn.transaction():
            at = await conn.fetchval("SELECT received_at FROM sms_receipt"
                                     " WHERE smsc_message_id = $1 AND status = 'DELIVRD'"
                                     " ORDER BY id DESC LIMIT 1", smsc_message_id)
            if at is not None:
                await self._delivered(conn, "id = $1", sms_id, at)

    async def record_mo(self, source: str, destination: str, text: str, at: dt.datetime) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            mo_id = await conn.fetchval(
                "INSERT INTO sms_mo (source, destination, text, received_at)"
                " VALUES ($1, $2, $3, $4) RETURNING id", source, destination, text, at)
            if self.on_mo is not None:
                await self.on_mo(conn, mo_id, source, destination, text, at)


def build_outbox(pool: asyncpg.Pool, cfg: Config) -> NotifyingOutbox:
    """The node's outbox: receipts mark presence, MO SMS to the service number are commands."""
    from scp.service import notifications, smscmd

    async def delivered(conn: asyncpg.Connection, destination: str, at: dt.datetime) -> None:
        await notifications.on_present(conn, msisdn=destination, source="delivery-receipt",
                                       at=at, cfg=cfg)

    async def mo(conn: asyncpg.Connection, mo_id: int, source: str, destination: str, text: str,
                 at: dt.datetime) -> None:
        await smscmd.handle_mo(conn, mo_id=mo_id, source=source, destination=destination,
                               text=text, at=at, cfg=cfg)

    async def subscriber_receipt(conn: asyncpg.Connection, owner: str, destination: str,
                                 message_id: str, at: dt.datetime) -> None:
        await notifications.on_subscriber_receipt(conn, owner=owner, destination=destination,
                                                  message_id=message_id, at=at, cfg=cfg)

    return NotifyingOutbox(pool, lease=dt.timedelta(seconds=cfg.notify.lease),
                           on_delivered=delivered, on_mo=mo,
                           on_subscriber_receipt=subscriber_receipt)


def retry_policy(cfg: Config) -> RetryPolicy:
    """The sender's backoff from ``[notify]`` (max_attempts, retry_base, retry_cap)."""
    return RetryPolicy(max_attempts=cfg.notify.max_attempts, base=cfg.notify.retry_base,
                       cap=cfg.notify.retry_cap)
