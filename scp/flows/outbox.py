"""The SMS flow: claim due outbox rows, submit them through the SMS gateway, record the results;
and the node's outbox, whose SMPP events run the notification and SMS-command flows.

:class:`OutboxSender` is the loop between the durable outbox
(:class:`scp.service.outbox.OutboxPort`, PostgreSQL rows claimed with
``FOR UPDATE SKIP LOCKED``; ARCHITECTURE §5) and the SMSC gateway
(:class:`scp.service.outbox.SmsGatewayPort`, :mod:`scp.adapters.smpp`, SMPP 3.4); both are
ports, so its decisions are tested with in-memory fakes. :func:`build_outbox` gives the node
its :class:`scp.state.outbox.NotifyingOutbox`, whose hooks run in the transaction that records
the SMPP event: a DELIVRD receipt proves its destination reachable
(:func:`scp.flows.notify.on_present`, ARCHITECTURE §4 "Subscriber present"), a receipt of a
subscriber's own SMS is :func:`scp.flows.notify.on_subscriber_receipt`, a
mobile-originated SMS is an SMS command (:func:`scp.flows.smscmd.handle_mo`), and a callback
SMS submitted (or delivered, ``[billing] callback_fee_on``) charges the caller's callback fee
(:func:`scp.flows.billing.charge_callbacks`).

Delivery guarantee (what operations can promise):
- An SMSC outage delays, never drops: the sender claims nothing while the gateway is unbound,
  and a submit lost with the link (:class:`SmppLinkError`) is retried
  without ever being failed for it.
- A refusal the SMSC calls temporary is retried with exponential backoff
  (``RetryPolicy.base * factor**(attempts-1)``, capped) until ``max_attempts``; a permanent
  refusal (e.g. invalid destination) fails the row at once.
- At most one duplicate, by design: the SMSC may accept a submit_sm whose submit_sm_resp we
  never see (the link drops, or this process dies between the response and the
  ``mark_submitted`` commit). The row then goes out once more on retry / lease expiry: the SMS is
  delivered at least once and, per such crash, at most twice. A multipart SMS keeps its UDH
  reference (derived from the row id) across retries, so a handset discards the repeated parts.
- How many SMS one crash can duplicate: a window slot is freed when the submit_sm_resp
  arrives, before its ``mark_submitted`` commits (the store commits marks in groups, see
  scp/state/outbox.py), and the sender claims nothing while ``commit_window`` marks are
  outstanding. Accepted-but-uncommitted SMS are therefore at most
  ``window + prefetch + commit_window`` per sender; with the defaults (``prefetch = window``,
  ``commit_window = 10 * (window + prefetch)``) that is ``22 * window``, 220 for
  ``[smpp] window = 10``. Only those can be sent twice, each at most once more. A row is never
  marked submitted before its submit_sm_resp. (The PostgreSQL store commits a group within
  ``flush_delay`` + one transaction, ~10 ms, so in practice far fewer are outstanding.)
- :meth:`OutboxSender.run` ends (after :meth:`~OutboxSender.stop`) only when every accepted
  submit's mark is committed and the outbox's ``flush()`` ran (rows claimed ahead go back).
- ``attempts`` counts claims: ``claim`` increments it before handing the row out.
- Receipts and presence are committed in groups (:class:`scp.state.outbox.PgOutbox`), each
  group in one transaction with the hooks it triggers; the gateway answers deliver_sm only
  after that commit (ESME_RX_T_APPN if it failed: the SMSC delivers the receipt again), so a
  crash loses no receipt: an uncommitted one was never acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import asyncpg
import structlog

from scp.flows import billing, smscmd
from scp.flows import notify as notifications
from scp.service.outbox import (
    OutboundSms,
    OutboxPort,
    RetryPolicy,
    SmppLinkError,
    SmppPermanentError,
    SmsGatewayPort,
)
from scp.state.outbox import NotifyingOutbox

if TYPE_CHECKING:
    from scp.config import Config

__all__ = ["OutboxSender", "build_outbox", "retry_policy"]

log = structlog.get_logger("scp.outbox")


class OutboxSender:
    """Keeps ``window + prefetch`` SMS in the gateway, claiming more as each one settles.

    ``window`` is the SMPP window the gateway enforces; ``prefetch`` more wait queued in the
    gateway so that a submit_sm_resp frees a slot that the gateway thread refills at once,
    without a round trip through the event loop (it doubles throughput on loopback). They are
    claimed rows: a crash leaves them to the store's lease, like the in-flight ones.
    An accepted SMS leaves its slot at once; its ``mark_submitted`` commit is awaited outside
    the window, at most ``commit_window`` (default ``10 * (window + prefetch)``) at a time.
    ``clock`` is the wall clock the claims and retries are timed by (the node's; a test's).
    """

    def __init__(
        self,
        *,
        outbox: OutboxPort,
        gateway: SmsGatewayPort,
        clock: Callable[[], datetime],
        window: int = 10,
        prefetch: int | None = None,
        policy: RetryPolicy | None = None,
        poll_interval: float = 0.5,
        commit_window: int | None = None,
    ) -> None:
        self.outbox = outbox
        self.gateway = gateway
        self.window = window + (window if prefetch is None else prefetch)
        # marks commit in groups every few ms: 10 windows keep the SMSC busy meanwhile
        self.commit_window = 10 * self.window if commit_window is None else max(commit_window, 1)
        self._committing: set[asyncio.Task[None]] = set()
        self._uncommitted = 0  # marks queued with the store's mark_submitted_nowait
        self.policy = policy or RetryPolicy()
        self.poll_interval = poll_interval
        self.clock = clock
        self._inflight: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()  # set by wake(), stop() and every settled submit
        self._stopped = False
        self.submitted = 0
        self.retried = 0
        self.failed = 0

    def wake(self) -> None:
        """New rows are due: claim now instead of at the next poll."""
        self._wakeup.set()

    def stop(self) -> None:
        self._stopped = True
        self._wakeup.set()

    async def run(self) -> None:
        """Claim and submit until :meth:`stop`; then let in-flight submits settle, their marks
        commit and the outbox flush."""
        try:
            while not self._stopped:
                await self._step()
        finally:
            await self._settle_all()

    async def _settle_all(self) -> None:
        """Wait for every submit and mark, then ``outbox.flush()`` (never raises)."""
        while self._inflight or self._committing or self._uncommitted:
            if self._inflight or self._committing:
                await asyncio.gather(*self._inflight, *self._committing, return_exceptions=True)
                continue
            self._wakeup.clear()
            if self._uncommitted:
                await self._wakeup.wait()  # set by _committed
        flush = getattr(self.outbox, "flush", None)
        if flush is not None:
            try:
                await flush()
            except Exception as e:  # a failed flush leaves rows to the lease: never lost
                log.error("sms.flush_failed", error=repr(e))

    async def run_until_idle(self, idle_for: float = 0.3, timeout: float = 60.0) -> None:
        """Tests and the bench: run until nothing was due or in flight for ``idle_for`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        idle_since: float | None = None
        while loop.time() < deadline:
            claimed = await self._step(max_wait=min(self.poll_interval, idle_for / 3))
            if (
                claimed
                or self._inflight
                or self._committing
                or self._uncommitted
                or not self.gateway.ready
            ):
                idle_since = None
            elif idle_since is None:
                idle_since = loop.time()
            elif loop.time() - idle_since >= idle_for:
                await self._settle_all()
                return
        raise TimeoutError("outbox did not drain in time")

    async def _step(self, max_wait: float | None = None) -> int:
        wait = self.poll_interval if max_wait is None else max_wait
        if not self.gateway.ready:
            await self._idle(wait)
            return 0
        free = self.window - len(self._inflight)
        self._wakeup.clear()
        if free <= 0 or len(self._committing) + self._uncommitted >= self.commit_window:
            await self._wakeup.wait()  # a slot frees when a submit (or a mark) settles
            return 0
        rows = await self.outbox.claim(free, self.clock())
        for row in rows:
            task = asyncio.create_task(self._send(row))
            self._inflight.add(task)
            task.add_done_callback(self._settled)
        if not rows:
            await self._idle(wait)
        return len(rows)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._committing.discard(task)
        self._wakeup.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("sms.sender_failed", error=repr(task.exception()))

    def _committed(self, fut: asyncio.Future[None]) -> None:
        self._uncommitted -= 1
        self._wakeup.set()
        if not fut.cancelled() and fut.exception() is not None:
            # the row stays 'sending' and goes out again after its lease: never lost
            log.error("sms.mark_failed", error=repr(fut.exception()))

    async def _idle(self, wait: float) -> None:
        """Sleep until woken, a submit settles (a window slot frees) or ``wait`` passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), wait)

    async def _send(self, sms: OutboundSms) -> None:
        try:
            message_id = await self.gateway.submit(sms)
        except SmppPermanentError as e:
            self.failed += 1
            log.warning("sms.failed", sms_id=sms.id, error=str(e))
            await self.outbox.mark_failed(sms.id, str(e))
            return
        except SmppLinkError as e:
            # an outage is not the message's fault: retry soon, never give up for it
            self.retried += 1
            await self.outbox.mark_retry(
                sms.id, str(e), self.clock() + timedelta(seconds=self.policy.link_delay)
            )
            return
        except Exception as e:  # SmppTemporaryError and anything unexpected: retry with backoff
            if sms.attempts >= self.policy.max_attempts:
                self.failed += 1
                log.warning("sms.gave_up", sms_id=sms.id, attempts=sms.attempts, error=str(e))
                await self.outbox.mark_failed(sms.id, f"gave up after {sms.attempts}: {e}")
            else:
                self.retried += 1
                await self.outbox.mark_retry(
                    sms.id, str(e), self.clock() + self.policy.delay(sms.attempts)
                )
            return
        self.submitted += 1
        # the SMSC has it: free the window slot now, commit the mark outside the window
        nowait = getattr(self.outbox, "mark_submitted_nowait", None)
        if nowait is not None:
            fut: asyncio.Future[None] = nowait(sms.id, message_id, self.clock())
            self._uncommitted += 1
            fut.add_done_callback(self._committed)
            return
        task = asyncio.current_task()
        if task in self._inflight:
            assert task is not None
            self._inflight.discard(task)
            self._committing.add(task)
            self._wakeup.set()
        await self.outbox.mark_submitted(sms.id, message_id, self.clock())


def build_outbox(pool: asyncpg.Pool, cfg: Config) -> NotifyingOutbox:
    """The node's outbox: receipts mark presence, MO SMS to the service number are commands."""

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

    fee = Decimal(cfg.call.callback_fee)

    async def charge(conn: asyncpg.Connection, sms: list[tuple[str, dt.datetime]]) -> None:
        await billing.charge_callbacks(conn, sms, fee=fee)

    return NotifyingOutbox(
        pool,
        lease=dt.timedelta(seconds=cfg.notify.lease),
        on_delivered=delivered,
        on_mo=mo,
        on_subscriber_receipt=subscriber_receipt,
        # on_present does nothing for a number that is no subscriber
        # (notify_store.load_recipient returns None)
        subscribers_only=True,
        # the caller's callback fee, once its SMS is submitted (or delivered)
        on_charge=charge,
        charge_on=cfg.billing.callback_fee_on,
        charge_prefix=billing.CALLBACK_KEY,
    )


def retry_policy(cfg: Config) -> RetryPolicy:
    """The sender's backoff from ``[notify]`` (max_attempts, retry_base, retry_cap)."""
    return RetryPolicy(
        max_attempts=cfg.notify.max_attempts, base=cfg.notify.retry_base, cap=cfg.notify.retry_cap
    )
