"""The SMS outbox as the sender sees it: the ports, their errors and value types, the retry policy.

:class:`OutboxPort` is the durable outbox (PostgreSQL, rows claimed with
``FOR UPDATE SKIP LOCKED``; ARCHITECTURE §5; :class:`scp.state.outbox.PgOutbox`),
:class:`SmsGatewayPort` the SMSC gateway (:mod:`scp.adapters.smpp`, SMPP 3.4) whose submit
raises one of the :class:`SmppError` classes, and :class:`RetryPolicy` the backoff the sender
(:class:`scp.flows.outbox.OutboxSender`, where the delivery guarantee is stated) applies to
temporary refusals. :class:`InMemoryOutbox` is the port's fake for unit tests, with the
PostgreSQL store's semantics.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

__all__ = [
    "InMemoryOutbox",
    "OutboundSms",
    "OutboxPort",
    "OutboxRow",
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

    async def mark_submitted(
        self, sms_id: int, smsc_message_id: str, at: datetime | None = None
    ) -> None:
        """The SMSC accepted it (submit_sm_resp) at ``at`` (the sender's clock)."""
        ...

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

    async def mark_submitted(
        self, sms_id: int, smsc_message_id: str, at: datetime | None = None
    ) -> None:
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
