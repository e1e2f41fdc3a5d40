"""The outbox the running node uses: :class:`scp.state.outbox.PgOutbox` plus what its SMPP
events mean for the notification service (issue 6).

:class:`scp.state.outbox.PgOutbox` is the durable ``OutboxPort`` (``FOR UPDATE SKIP LOCKED``
claims, leases, retry / give-up, receipts, expiry; ARCHITECTURE §5). This subclass adds, each
in the transaction that records the SMPP event:

* a DELIVRD receipt for one of our SMS proves its destination reachable (ARCHITECTURE §4
  "Subscriber present"): ``on_delivered(conn, destination, at)``, normally
  :func:`scp.service.notifications.on_present` with source ``delivery-receipt`` (called for
  subscribers only: on_present does nothing for anyone else, and the group statement tells
  which destinations are subscribers without a query per SMS);
* a mobile-originated SMS is stored in ``sms_mo`` and handed to ``on_mo(conn, mo_id, source,
  destination, text, at)``, normally :func:`scp.service.smscmd.handle_mo` (SMS commands), so
  the command, its CDR and its reply commit with the MO or not at all.

Crash window (the guarantee operations can quote): a sender that dies after the SMSC accepted
a submit_sm but before its ``mark_submitted`` group commits leaves the row ``sending``; after
its lease another sender submits it again. A crash therefore causes at most one duplicate per
SMS that was in flight or accepted-but-uncommitted at that moment: at most
``window + prefetch + commit_window`` per sender (``OutboxSender``; 22 x ``[smpp] window``
with the defaults, 220 for window 10), and never a loss; the UDH reference of a long SMS is derived from the row id, so
handsets drop repeated parts. Receipts and presence are committed in groups (PgOutbox), each
group in one transaction with the hooks it triggers; the gateway acknowledges deliver_sm
before that commit, so a crash may lose the receipts of the last few milliseconds, as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
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
    """PgOutbox whose receipts mark presence and whose MO SMS run commands.

    ``subscribers_only``: call ``on_delivered`` only for destinations that are subscribers
    (filtered inside the group statement), for a hook that does nothing for anyone else.
    """

    def __init__(self, pool: asyncpg.Pool, *, lease: dt.timedelta = dt.timedelta(minutes=1),
                 on_delivered: DeliveredHook | None = None, on_mo: MoHook | None = None,
                 on_subscriber_receipt: SubscriberReceiptHook | None = None,
                 subscribers_only: bool = False,
                 claim_ahead: int = 256, flush_delay: float = 0.005,
                 max_batch: int = 500) -> None:
        super().__init__(pool, lease=lease, claim_ahead=claim_ahead, flush_delay=flush_delay,
                         max_batch=max_batch)
        self.on_delivered = on_delivered
        self.subscribers_only = subscribers_only
        if on_delivered is None:
            self.settled_filter = "false"
        elif subscribers_only:
            self.settled_filter = ("EXISTS (SELECT 1 FROM subscriber s"
                                   " WHERE s.msisdn = d.destination)")
        else:
            self.settled_filter = "true"
        self.on_mo = on_mo
        self.on_subscriber_receipt = on_subscriber_receipt

    async def record_foreign_receipt(self, owner: str, destination: str, smsc_message_id: str,
                                     status: str, at: dt.datetime) -> None:
        """A receipt for a message we did not submit: a subscriber's own SMS (短信回执).

        Checked against the outbox inside the transaction, so a receipt of one of ours whose id
        the gateway no longer remembered (restart) is never mistaken for a subscriber's; queued
        marks are committed first, so one of ours is in the table when it is checked.
        """
        if status != "DELIVRD" or self.on_subscriber_receipt is None:
            return
        await self._drain()
        async with self.pool.acquire() as conn, conn.transaction():
            ours = await conn.fetchval("SELECT 1 FROM sms_outbox WHERE smsc_message_id = $1"
                                       " LIMIT 1", smsc_message_id)
            if ours is None:
                await self.on_subscriber_receipt(conn, owner, destination, smsc_message_id, at)

    async def _settled_by_receipt(self, conn: asyncpg.Connection,
                                  rows: Sequence[asyncpg.Record]) -> None:
        # rows a receipt settled in this transaction (a receipt applied on arrival, or one that
        # overtook the submit and was applied with the mark): DELIVRD proves presence
        delivered = [(r["destination"], r["at"]) for r in rows if r["stat"] == "DELIVRD"]
        if self.on_delivered is not None:
            for destination, at in delivered:
                await self.on_delivered(conn, destination, at)

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
                           on_subscriber_receipt=subscriber_receipt,
                           # on_present does nothing for a number that is no subscriber
                           # (notify_store.load_recipient returns None)
                           subscribers_only=True)


def retry_policy(cfg: Config) -> RetryPolicy:
    """The sender's backoff from ``[notify]`` (max_attempts, retry_base, retry_cap)."""
    return RetryPolicy(max_attempts=cfg.notify.max_attempts, base=cfg.notify.retry_base,
                       cap=cfg.notify.retry_cap)
