"""The outbox the running node uses: :class:`scp.state.outbox.PgOutbox` plus what its SMPP
events mean for the notification service (issue 6).

:class:`scp.state.outbox.PgOutbox` is the durable ``OutboxPort`` (``FOR UPDATE SKIP LOCKED``
claims, leases, retry / give-up, receipts, expiry; ARCHITECTURE §5). This subclass adds, each
in the transaction that records the SMPP event:

* a DELIVRD receipt for one of our SMS proves its destination reachable (ARCHITECTURE §4
  "Subscriber present"): ``on_delivered(conn, destination, at)``, normally
  :func:`scp.flows.notify.on_present` with source ``delivery-receipt`` (called for
  subscribers only: on_present does nothing for anyone else, and the group statement tells
  which destinations are subscribers without a query per SMS);
* a mobile-originated SMS is stored in ``sms_mo`` in a transaction of its own (``record_mo``
  returns, and the gateway answers the deliver_sm, once that committed), then handed to
  ``on_mo(conn, mo_id, source, destination, text, at)``, normally
  :func:`scp.flows.smscmd.handle_mo` (SMS commands), in a second transaction that also sets
  ``handled_at``: the command, its CDR, its reply and the mark commit together or not at all.
  The first attempt runs right after the MO's commit, in arrival order (a subscriber's ``QX``
  then ``KT`` keep their order), bounded by ``mo_command_timeout`` s; its outcome does not
  change the deliver_sm answer. A failed (or timed out) command leaves the row unhandled, due
  again after an exponential backoff (``mo_retry_base`` doubling up to ``mo_retry_cap`` s;
  ``attempts``, ``last_error``, migration 0040); :meth:`NotifyingOutbox.run_mo_retry` re-scans
  due rows (and rows a crash left behind, ``mo_grace`` s after they arrived) every few seconds.
  The row is taken ``FOR UPDATE SKIP LOCKED`` and skipped once handled, so several nodes and
  the first attempt never run one command twice. An MO the hook leaves unhandled (not to the
  service number: no command) stays ``handled_at IS NULL`` and is never re-scanned
  (``next_attempt_at = 'infinity'``).

Crash window (the guarantee operations can quote): a sender that dies after the SMSC accepted
a submit_sm but before its ``mark_submitted`` group commits leaves the row ``sending``; after
its lease another sender submits it again. A crash therefore causes at most one duplicate per
SMS that was in flight or accepted-but-uncommitted at that moment: at most
``window + prefetch + commit_window`` per sender (``OutboxSender``; 22 x ``[smpp] window``
with the defaults, 220 for window 10), and never a loss; the UDH reference of a long SMS is derived from the row id, so
handsets drop repeated parts. Receipts and presence are committed in groups (PgOutbox), each
group in one transaction with the hooks it triggers; the gateway answers deliver_sm only
after that commit (ESME_RX_T_APPN if it failed: the SMSC delivers the receipt again), so a crash
loses no receipt: an uncommitted one was never acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import asyncpg
import structlog

from scp.service.outbox import RetryPolicy
from scp.state.outbox import PgOutbox

if TYPE_CHECKING:
    from scp.config import Config

__all__ = ["NotifyingOutbox", "DeliveredHook", "MoHook", "build_outbox", "retry_policy"]

log = structlog.get_logger("scp.outbox")

_MO_DUE = (
    "SELECT id FROM sms_mo WHERE handled_at IS NULL AND next_attempt_at <= $1"
    " ORDER BY next_attempt_at LIMIT $2"
)
_MO_LOCK = (
    "SELECT source, destination, text, received_at FROM sms_mo"
    " WHERE id = $1 AND handled_at IS NULL FOR UPDATE SKIP LOCKED"
)
_MO_FAILED = (
    "UPDATE sms_mo SET attempts = attempts + 1, last_error = $2,"
    " next_attempt_at = $5::timestamptz"
    "  + make_interval(secs => least($3 * 2 ^ attempts, $4))"
    " WHERE id = $1 AND handled_at IS NULL"
)

DeliveredHook = Callable[[asyncpg.Connection, str, dt.datetime], Awaitable[object]]
"""(conn, destination, at) in the receipt's transaction, for a DELIVRD receipt."""

MoHook = Callable[[asyncpg.Connection, int, str, str, str, dt.datetime], Awaitable[object]]
"""(conn, mo_id, source, destination, text, at) in the MO's transaction."""

SubscriberReceiptHook = Callable[
    [asyncpg.Connection, str, str, str, dt.datetime], Awaitable[object]
]
"""(conn, owner, destination, smsc_message_id, at) for the receipt of a subscriber's own SMS."""


class NotifyingOutbox(PgOutbox):
    """PgOutbox whose receipts mark presence and whose MO SMS run commands.

    ``subscribers_only``: call ``on_delivered`` only for destinations that are subscribers
    (filtered inside the group statement), for a hook that does nothing for anyone else.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        lease: dt.timedelta = dt.timedelta(minutes=1),
        on_delivered: DeliveredHook | None = None,
        on_mo: MoHook | None = None,
        on_subscriber_receipt: SubscriberReceiptHook | None = None,
        subscribers_only: bool = False,
        claim_ahead: int = 256,
        flush_delay: float = 0.005,
        max_batch: int = 500,
        mo_retry_base: float = 5.0,
        mo_retry_cap: float = 600.0,
        mo_grace: float = 60.0,
        mo_command_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            pool, lease=lease, claim_ahead=claim_ahead, flush_delay=flush_delay, max_batch=max_batch
        )
        self.on_delivered = on_delivered
        self.subscribers_only = subscribers_only
        if on_delivered is None:
            self.settled_filter = "false"
        elif subscribers_only:
            self.settled_filter = (
                "EXISTS (SELECT 1 FROM subscriber s WHERE s.msisdn = d.destination)"
            )
        else:
            self.settled_filter = "true"
        self.on_mo = on_mo
        self.on_subscriber_receipt = on_subscriber_receipt
        self.mo_retry_base = mo_retry_base
        self.mo_retry_cap = mo_retry_cap
        # a fresh row is left to its first attempt for this long before a re-scan takes it
        self.mo_grace = mo_grace
        self.mo_command_timeout = mo_command_timeout

    async def record_foreign_receipt(
        self, owner: str, destination: str, smsc_message_id: str, status: str, at: dt.datetime
    ) -> None:
        """A receipt for a message we did not submit: a subscriber's own SMS (短信回执).

        Checked against the outbox inside the transaction, so a receipt of one of ours whose id
        the gateway no longer remembered (restart) is never mistaken for a subscriber's; queued
        marks are committed first, so one of ours is in the table when it is checked.
        """
        if status != "DELIVRD" or self.on_subscriber_receipt is None:
            return
        await self._drain()
        async with self.pool.acquire() as conn, conn.transaction():
            ours = await conn.fetchval(
                "SELECT 1 FROM sms_outbox WHERE smsc_message_id = $1 LIMIT 1", smsc_message_id
            )
            if ours is None:
                await self.on_subscriber_receipt(conn, owner, destination, smsc_message_id, at)

    async def _settled_by_receipt(
        self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]
    ) -> None:
        # rows a receipt settled in this transaction (a receipt applied on arrival, or one that
        # overtook the submit and was applied with the mark): DELIVRD proves presence
        delivered = [(r["destination"], r["at"]) for r in rows if r["stat"] == "DELIVRD"]
        if self.on_delivered is not None:
            for destination, at in delivered:
                await self.on_delivered(conn, destination, at)

    async def record_mo(self, source: str, destination: str, text: str, at: dt.datetime) -> None:
        """Store the MO in a transaction of its own, then run its command in a second one; raises
        only if the MO row could not be committed (the SMSC then delivers it again). A failed
        command is retried by the re-scan, never lost."""
        mo_id = await self.pool.fetchval(
            "INSERT INTO sms_mo (source, destination, text, received_at, next_attempt_at)"
            " VALUES ($1, $2, $3, $4, $4::timestamptz + make_interval(secs => $5)) RETURNING id",
            source,
            destination,
            text,
            at,
            self.mo_grace,
        )
        if self.on_mo is None:
            return
        try:
            await asyncio.wait_for(self.handle_mo(mo_id, at), self.mo_command_timeout)
        except TimeoutError:
            log.error("sms.mo_command_timeout", mo_id=mo_id)
            with contextlib.suppress(Exception):
                await self.pool.execute(
                    _MO_FAILED,
                    mo_id,
                    "command timed out",
                    float(self.mo_retry_base),
                    float(self.mo_retry_cap),
                    at,
                )

    async def handle_mo(self, mo_id: int, now: dt.datetime) -> bool:
        """Run the command of one unhandled MO and mark it handled, in one transaction; False
        if it is handled already, taken by another node, or failed (then due again after a
        backoff from ``now``)."""
        if self.on_mo is None:
            return False
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_MO_LOCK, mo_id)
                if row is None:
                    return False
                await self.on_mo(
                    conn, mo_id, row["source"], row["destination"], row["text"], row["received_at"]
                )
                # an MO the hook left unhandled is not for us: never due again
                handled = await conn.fetchval(
                    "UPDATE sms_mo SET next_attempt_at = CASE WHEN handled_at IS NULL"
                    " THEN 'infinity' ELSE next_attempt_at END, last_error = NULL"
                    " WHERE id = $1 RETURNING handled_at IS NOT NULL",
                    mo_id,
                )
            return bool(handled)
        except Exception as e:
            log.error("sms.mo_command_failed", mo_id=mo_id, error=repr(e))
            with contextlib.suppress(Exception):  # the database may be away: next re-scan
                await self.pool.execute(
                    _MO_FAILED,
                    mo_id,
                    repr(e)[:500],
                    float(self.mo_retry_base),
                    float(self.mo_retry_cap),
                    now,
                )
            return False

    async def retry_mo(self, now: dt.datetime, limit: int = 100) -> int:
        """Run the commands of unhandled MO rows that are due at ``now``; how many were
        handled."""
        if self.on_mo is None:
            return 0
        ids = [r["id"] for r in await self.pool.fetch(_MO_DUE, now, limit)]
        done = 0
        for mo_id in ids:
            done += await self.handle_mo(mo_id, now)
        return done

    async def run_mo_retry(
        self, stop: asyncio.Event, clock: Callable[[], dt.datetime], interval: float = 5.0
    ) -> None:
        """Re-scan unhandled MO every ``interval`` s until ``stop`` is set (started next to the
        outbox sender, timed by the node's wall ``clock``); database errors only delay it."""
        while not stop.is_set():
            try:
                n = await self.retry_mo(clock())
                if n:
                    log.info("sms.mo_retried", handled=n)
            except Exception as e:
                log.warning("sms.mo_rescan_failed", error=repr(e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


def build_outbox(pool: asyncpg.Pool, cfg: Config) -> NotifyingOutbox:
    """The node's outbox: receipts mark presence, MO SMS to the service number are commands."""
    from scp.flows import notify as notifications
    from scp.flows import smscmd

    async def delivered(conn: asyncpg.Connection, destination: str, at: dt.datetime) -> None:
        await notifications.on_present(
            conn, msisdn=destination, source="delivery-receipt", at=at, cfg=cfg
        )

    async def mo(
        conn: asyncpg.Connection,
        mo_id: int,
        source: str,
        destination: str,
        text: str,
        at: dt.datetime,
    ) -> None:
        await smscmd.handle_mo(
            conn, mo_id=mo_id, source=source, destination=destination, text=text, at=at, cfg=cfg
        )

    async def subscriber_receipt(
        conn: asyncpg.Connection, owner: str, destination: str, message_id: str, at: dt.datetime
    ) -> None:
        await notifications.on_subscriber_receipt(
            conn, owner=owner, destination=destination, message_id=message_id, at=at, cfg=cfg
        )

    return NotifyingOutbox(
        pool,
        lease=dt.timedelta(seconds=cfg.notify.lease),
        on_delivered=delivered,
        on_mo=mo,
        on_subscriber_receipt=subscriber_receipt,
        # on_present does nothing for a number that is no subscriber
        # (notify_store.load_recipient returns None)
        subscribers_only=True,
    )


def retry_policy(cfg: Config) -> RetryPolicy:
    """The sender's backoff from ``[notify]`` (max_attempts, retry_base, retry_cap)."""
    return RetryPolicy(
        max_attempts=cfg.notify.max_attempts, base=cfg.notify.retry_base, cap=cfg.notify.retry_cap
    )
