"""OutboxSender decisions over fakes: window, backoff, attempt limit, outages; receipt parsing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from scp.adapters.smpp import ConsoleSink
from scp.core.smpp_deliver import parse_receipt
from scp.flows.outbox import OutboxSender
from scp.service.outbox import (
    InMemoryOutbox,
    OutboundSms,
    RetryPolicy,
    SmppLinkError,
    SmppPermanentError,
    SmppTemporaryError,
)
from tests.fakes import FakeGateway

# Fixed times only: the same on any day and in any time zone (tests/dates.py).
pytestmark = pytest.mark.usefixtures("any_day")

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def test_window_and_all_submitted() -> None:
    outbox = InMemoryOutbox()
    for i in range(50):
        outbox.enqueue(f"8613900{i:05d}", f"t{i}", idempotency_key=f"k{i}", now=T0)
    assert outbox.enqueue("x", "dup", idempotency_key="k3", now=T0) == 4  # idempotent
    gw = FakeGateway()
    sender = OutboxSender(
        outbox=outbox, gateway=gw, window=5, prefetch=0, poll_interval=0.01, clock=Clock()
    )
    await sender.run_until_idle(idle_for=0.05)
    assert outbox.count("submitted") == 50 and gw.max_concurrent == 5
    assert {r.smsc_message_id for r in outbox.rows.values()} == {f"m{i}" for i in range(1, 51)}


async def test_temporary_error_backoff_then_limit() -> None:
    outbox = InMemoryOutbox()
    sid = outbox.enqueue("861", "t", idempotency_key="a", now=T0)
    clock = Clock()
    policy = RetryPolicy(max_attempts=3, base=10, factor=2)
    gw = FakeGateway([SmppTemporaryError("x", 0x08)] * 3)
    sender = OutboxSender(outbox=outbox, gateway=gw, policy=policy, poll_interval=0.01, clock=clock)
    await sender.run_until_idle(idle_for=0.05)
    row = outbox.rows[sid]
    assert row.status == "retry" and row.next_attempt_at == T0 + timedelta(seconds=10)
    clock.now = row.next_attempt_at
    await sender.run_until_idle(idle_for=0.05)
    assert row.status == "retry" and row.next_attempt_at == clock.now + timedelta(seconds=20)
    clock.now = row.next_attempt_at
    await sender.run_until_idle(idle_for=0.05)
    assert row.status == "failed" and row.attempts == 3 and "gave up" in (row.last_error or "")


async def test_permanent_error_fails_at_once() -> None:
    outbox = InMemoryOutbox()
    sid = outbox.enqueue("861", "t", idempotency_key="a", now=T0)
    gw = FakeGateway([SmppPermanentError("bad", 0x0B)])
    sender = OutboxSender(outbox=outbox, gateway=gw, poll_interval=0.01, clock=Clock())
    await sender.run_until_idle(idle_for=0.05)
    assert outbox.rows[sid].status == "failed" and outbox.rows[sid].attempts == 1


async def test_outage_never_fails() -> None:
    outbox = InMemoryOutbox()
    sid = outbox.enqueue("861", "t", idempotency_key="a", now=T0)
    clock = Clock()
    gw = FakeGateway([SmppLinkError("lost")] * 20)
    sender = OutboxSender(
        outbox=outbox,
        gateway=gw,
        poll_interval=0.01,
        clock=clock,
        policy=RetryPolicy(max_attempts=2, link_delay=1),
    )
    for _ in range(21):
        await sender.run_until_idle(idle_for=0.03)
        clock.now += timedelta(seconds=1)
    assert outbox.rows[sid].status == "submitted" and outbox.rows[sid].attempts == 21


async def test_not_ready_claims_nothing() -> None:
    outbox = InMemoryOutbox()
    sid = outbox.enqueue("861", "t", idempotency_key="a", now=T0)
    gw = FakeGateway()
    gw.ready = False
    sender = OutboxSender(outbox=outbox, gateway=gw, poll_interval=0.01, clock=Clock())
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.05)
    assert outbox.rows[sid].status == "queued" and not gw.calls
    gw.ready = True
    sender.wake()
    for _ in range(100):
        if outbox.rows[sid].status == "submitted":
            break
        await asyncio.sleep(0.01)
    sender.stop()
    await task
    assert outbox.rows[sid].status == "submitted"


async def test_receipt_before_mark_submitted_is_kept() -> None:
    outbox = InMemoryOutbox()
    sid = outbox.enqueue("861", "t", idempotency_key="a", now=T0)
    await outbox.claim(1, T0)
    await outbox.record_receipt("abc", "DELIVRD", T0)
    await outbox.mark_submitted(sid, "abc")
    assert outbox.rows[sid].delivery_status == "DELIVRD"


async def test_console_sink(capsys: pytest.CaptureFixture[str]) -> None:
    sink = ConsoleSink(source_addr="12599")
    sink.start()
    mid = await sink.submit(OutboundSms(1, "k", "8613900000001", "您好" * 40, 1))
    await sink.stop()
    out = capsys.readouterr().out
    assert mid == "console-1" and "UCS2, 2 segment(s)" in out and "8613900000001" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "id:1a2b sub:001 dlvrd:001 submit date:2611251805 done date:2611251806 stat:DELIVRD "
            "err:000 text:Missed call",
            {
                "id": "1a2b",
                "stat": "DELIVRD",
                "err": "000",
                "done date": "2611251806",
                "text": "Missed call",
            },
        ),
        ("id:42 stat:UNDELIV err:001", {"id": "42", "stat": "UNDELIV", "err": "001"}),
        ("garbage", {}),
    ],
)
def test_parse_receipt(text: str, expected: dict[str, str]) -> None:
    got = parse_receipt(text)
    for k, v in expected.items():
        assert got[k] == v
    if not expected:
        assert got == {}


class SlowCommitOutbox(InMemoryOutbox):
    """Marks take effect only when ``commit`` is set: a store that commits in groups."""

    def __init__(self) -> None:
        super().__init__()
        self.commit = asyncio.Event()
        self.flushed = 0

    async def mark_submitted(
        self, sms_id: int, smsc_message_id: str, at: datetime | None = None
    ) -> None:
        await self.commit.wait()
        await super().mark_submitted(sms_id, smsc_message_id, at)

    async def flush(self) -> None:
        self.flushed += 1


async def test_commit_window_bounds_accepted_but_uncommitted() -> None:
    """A slot frees at submit_sm_resp; while marks are not committed the sender stops at
    window + prefetch + commit_window accepted SMS (the crash duplicate bound)."""
    outbox = SlowCommitOutbox()
    for i in range(100):
        outbox.enqueue(f"8613900{i:05d}", f"t{i}", idempotency_key=f"k{i}", now=T0)
    gw = FakeGateway()
    sender = OutboxSender(
        outbox=outbox,
        gateway=gw,
        window=3,
        prefetch=2,
        commit_window=7,
        poll_interval=0.01,
        clock=Clock(),
    )
    task = asyncio.create_task(sender.run())
    for _ in range(50):
        await asyncio.sleep(0.01)
    assert 7 <= len(gw.calls) <= 3 + 2 + 7 and outbox.count("submitted") == 0
    assert gw.max_concurrent <= 5
    outbox.commit.set()
    for _ in range(300):
        if outbox.count("submitted") == 100:
            break
        await asyncio.sleep(0.01)
    sender.stop()
    await task
    assert outbox.count("submitted") == 100 and len(gw.calls) == 100
    assert outbox.flushed == 1  # run() ends with the outbox's flush


async def test_stop_waits_for_uncommitted_marks() -> None:
    outbox = SlowCommitOutbox()
    for i in range(10):
        outbox.enqueue(f"8613900{i:05d}", f"t{i}", idempotency_key=f"k{i}", now=T0)
    gw = FakeGateway()
    sender = OutboxSender(outbox=outbox, gateway=gw, window=5, poll_interval=0.01, clock=Clock())
    task = asyncio.create_task(sender.run())
    for _ in range(100):
        if len(gw.calls) == 10:
            break
        await asyncio.sleep(0.01)
    sender.stop()
    await asyncio.sleep(0.05)
    assert not task.done()  # accepted SMS whose marks are not committed yet hold the stop
    outbox.commit.set()
    await task
    assert outbox.count("submitted") == 10 and outbox.flushed == 1
