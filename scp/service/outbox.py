"""The SMS sender: claims due outbox rows, submits them through the SMS gateway, records results.

This is the loop between the durable outbox (PostgreSQL, rows claimed with
``FOR UPDATE SKIP LOCKED``; ARCHITECTURE §5) and the SMSC gateway (:mod:`scp.adapters.smpp`,
SMPP 3.4). Both sit behind ports so the decisions here are tested with in-memory fakes; the
PostgreSQL store :class:`scp.state.outbox.PgOutbox` implements :class:`OutboxPort`.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

log = structlog.get_logger("scp.outbox")

__all__ = [
    "InMemoryOutbox",
    "OutboundSms",
    "OutboxPort",
    "OutboxRow",
    "OutboxSender",
    "RetryPolicy",
    "SmppError",
    "SmppLinkError",
    "SmppPermanentError",
    "SmppTemporaryError",
    "SmsGatewayPort",
]


@dataclass(frozen=True)
class OutboundSms:
    """One claimed outbox row, as the sender needs it."""

    id: int
    idempotency_key: str
    destination: str
    text: str
    attempts: int


class OutboxPort(Protocol):
    """The durable SMS outbox (``scp.state.outbox.PgOutbox``; :class:`InMemoryOutbox` for tests)."""

    async def claim(self, limit: int, now: datetime) -> list[OutboundSms]:
        """Rows due at ``now``, marked 'sending', attempts incremented; at most ``limit``."""
        ...

    async def mark_submitted(self, sms_id: int, smsc_message_id: str) -> None: ...

    async def mark_retry(self, sms_id: int, error: str, next_attempt_at: datetime) -> None: ...

    async def mark_failed(self, sms_id: int, error: str) -> None:
        """Gave up (permanent refusal, or the attempt limit)."""
        ...

    def record_receipt(self, smsc_message_id: str, status: str, at: datetime) -> Awaitable[None]:
        """A delivery receipt; may be queued at call time and committed with others."""
        ...

    async def record_mo(self, source: str, destination: str, text: str, at: datetime) -> None: ...

    async def flush(self) -> None:
        """Commit everything queued and give back rows claimed ahead (the sender's stop)."""
        ...


class SmppError(Exception):
    """A submit did not reach the SMSC (what :meth:`SmsGatewayPort.submit` raises)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason if status is None else f"{reason} (command_status 0x{status:02X})")
        self.status = status


class SmppTemporaryError(SmppError):
    """The SMSC refused for now; the same SMS may succeed later (counts as an attempt)."""


class SmppLinkError(SmppTemporaryError):
    """No bound link (outage, lost connection, no response): not the message's fault."""


class SmppPermanentError(SmppError):
    """The SMSC refused the message itself; sending it again cannot succeed."""


class SmsGatewayPort(Protocol):
    """What the sender needs of the SMPP gateway (or the console sink); ``submit`` returns the
    SMSC's message id or raises one of the :class:`SmppError` classes."""

    @property
    def ready(self) -> bool: ...

    async def submit(self, sms: OutboundSms) -> str: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for temporary refusals; link losses retry after ``link_delay`` and never fail."""

    max_attempts: int = 8
    base: float = 5.0  # s before the 2nd attempt
    factor: float = 2.0
    cap: float = 3600.0
    link_delay: float = 1.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.base * self.factor ** max(attempts - 1, 0), self.cap))


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
            fut: asyncio.Future[None] = nowait(sms.id, message_id)
            self._uncommitted += 1
            fut.add_done_callback(self._committed)
            return
        task = asyncio.current_task()
        if task in self._inflight:
            assert task is not None
            self._inflight.discard(task)
            self._committing.add(task)
            self._wakeup.set()
        await self.outbox.mark_submitted(sms.id, message_id)


# ---------------------------------------------------------------------------------------------


@dataclass
class OutboxRow:
    """A row of the in-memory outbox, with the columns the PostgreSQL table has."""

    id: int
    idempotency_key: str
    destination: str
    text: str
    next_attempt_at: datetime
    status: str = "queued"  # queued | sending | retry | submitted | failed
    attempts: int = 0
    smsc_message_id: str | None = None
    delivery_status: str | None = None
    delivered_at: datetime | None = None
    last_error: str | None = None


class InMemoryOutbox:
    """:class:`OutboxPort` fake with the same semantics as the PostgreSQL store (no lease
    reclaim of rows left 'sending' by a crashed sender: this fake lives in one process)."""

    def __init__(self) -> None:
        self.rows: dict[int, OutboxRow] = {}
        self._by_key: dict[str, int] = {}
        self._by_message_id: dict[str, int] = {}
        self._due: list[tuple[datetime, int]] = []
        self.receipts: list[tuple[str, str, datetime]] = []
        self.mo: list[tuple[str, str, str, datetime]] = []
        self._early_receipts: dict[str, tuple[str, datetime]] = {}
        self._next_id = 1

    def enqueue(self, destination: str, text: str, *, idempotency_key: str, now: datetime) -> int:
        """Queue an SMS once per idempotency key, due from ``now``; returns its id."""
        existing = self._by_key.get(idempotency_key)
        if existing is not None:
            return existing
        sms_id = self._next_id
        self._next_id += 1
        self.rows[sms_id] = OutboxRow(
            sms_id, idempotency_key, destination, text, next_attempt_at=now
        )
        self._by_key[idempotency_key] = sms_id
        heapq.heappush(self._due, (now, sms_id))
        return sms_id

    async def claim(self, limit: int, now: datetime) -> list[OutboundSms]:
        out: list[OutboundSms] = []
        while self._due and len(out) < limit and self._due[0][0] <= now:
            _, sms_id = heapq.heappop(self._due)
            row = self.rows[sms_id]
            if row.status not in ("queued", "retry"):
                continue
            row.status = "sending"
            row.attempts += 1
            out.append(
                OutboundSms(row.id, row.idempotency_key, row.destination, row.text, row.attempts)
            )
        return out

    async def mark_submitted(self, sms_id: int, smsc_message_id: str) -> None:
        row = self.rows[sms_id]
        row.status = "submitted"
        row.smsc_message_id = smsc_message_id
        self._by_message_id[smsc_message_id] = sms_id
        early = self._early_receipts.pop(smsc_message_id, None)
        if early is not None:
            row.delivery_status, row.delivered_at = early

    async def mark_retry(self, sms_id: int, error: str, next_attempt_at: datetime) -> None:
        row = self.rows[sms_id]
        row.status = "retry"
        row.last_error = error
        row.next_attempt_at = next_attempt_at
        heapq.heappush(self._due, (next_attempt_at, sms_id))

    async def mark_failed(self, sms_id: int, error: str) -> None:
        row = self.rows[sms_id]
        row.status = "failed"
        row.last_error = error

    async def record_receipt(self, smsc_message_id: str, status: str, at: datetime) -> None:
        self.receipts.append((smsc_message_id, status, at))
        sms_id = self._by_message_id.get(smsc_message_id)
        if sms_id is None:
            # the receipt can overtake the mark_submitted commit: keep it for the row
            self._early_receipts[smsc_message_id] = (status, at)
            return
        row = self.rows[sms_id]
        row.delivery_status = status
        row.delivered_at = at

    async def record_mo(self, source: str, destination: str, text: str, at: datetime) -> None:
        self.mo.append((source, destination, text, at))

    async def flush(self) -> None:
        """Nothing is queued here: every call took effect at once."""

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows.values() if r.status == status)
