"""The node's outbox (NotifyingOutbox over PostgreSQL) driven by OutboxSender.

* two senders on the same outbox never submit a row twice;
* temporary refusals back off and are given up after ``max_attempts``, permanent ones at
  once; both visible to ``mcn-scp sms list`` (provisioning.list_sms);
* window expiry: a notification whose window passed while the SMSC was away is not sent;
* with the real third-party SMSC (npm ``smpp``, tests/smppd): killed and restarted in the
  middle of a run, every SMS still reaches it exactly once.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import threading
from collections.abc import Iterator

import asyncpg
import pytest

from scp.adapters.clock import utcnow
from scp.adapters.smpp import SmppGateway, SmppGatewayConfig
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.flows.outbox import OutboxSender, build_outbox
from scp.service.outbox import OutboundSms, RetryPolicy, SmppPermanentError, SmppTemporaryError
from tests.dates import today
from tests.fakes import FakeGateway
from tests.helpers import eventually
from tests.integration.smppd import Smppd, smppd_fixture
from tests.integration.sms import outbox_gateway, send_outbox

# Senders, the gateway and these rows all run on the process's wall clock: on any day.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("any_day")]

CFG = parse_config("[notify]\nlease = 5.0\n")


async def subscriber(pool: asyncpg.Pool, msisdn: str, services: list[str]) -> None:
    """Subscribed from today, as the CLI would on the machine's clock."""
    await prov.add_subscriber(
        pool, prov.Actor("cli", "t"), msisdn, today=today(CFG), services=services
    )


@pytest.fixture(scope="module")
def smppd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smppd]:
    yield from smppd_fixture(tmp_path_factory, "smppd-outbox")


async def fill(pool: asyncpg.Pool, n: int, *, prefix: str = "k") -> list[int]:
    ob = build_outbox(pool, CFG)
    return [
        await ob.enqueue(f"86139{i:08d}", f"短信 {i}", idempotency_key=f"{prefix}{i}", now=utcnow())
        for i in range(n)
    ]


async def test_two_senders_never_submit_a_row_twice(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await fill(pool, 400)
    gw = FakeGateway()
    senders = [
        OutboxSender(
            clock=utcnow, outbox=build_outbox(pool, CFG), gateway=gw, window=10, poll_interval=0.05
        )
        for _ in range(2)
    ]
    await asyncio.gather(*(s.run_until_idle(idle_for=0.3) for s in senders))
    assert len(gw.submits) == 400 and set(gw.submits.values()) == {1}
    assert all(s.submitted > 50 for s in senders)  # both did real work
    assert await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE status = 'submitted'") == 400


async def test_retry_backoff_and_give_up_visible_in_sms_list(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    ids = await fill(pool, 3)

    def fail(sms: OutboundSms) -> None:
        if sms.id == ids[0]:
            raise SmppTemporaryError("ESME_RSYSERR", 0x08)
        if sms.id == ids[1]:
            raise SmppPermanentError("ESME_RINVDSTADR", 0x0B)

    gw = FakeGateway(fail=fail)
    sender = OutboxSender(
        clock=utcnow,
        outbox=build_outbox(pool, CFG),
        gateway=gw,
        window=5,
        poll_interval=0.02,
        policy=RetryPolicy(max_attempts=3, base=0.05, factor=2.0, cap=1.0),
    )
    await sender.run_until_idle(idle_for=0.5)
    assert gw.submits == {ids[0]: 3, ids[1]: 1, ids[2]: 1}
    failed = {r["id"]: r for r in await prov.list_sms(pool, status="failed")}
    assert set(failed) == {ids[0], ids[1]}
    assert failed[ids[0]]["attempts"] == 3 and "gave up after 3" in failed[ids[0]]["last_error"]
    assert "ESME_RINVDSTADR" in failed[ids[1]]["last_error"]
    assert [r["id"] for r in await prov.list_sms(pool, status="submitted")] == [ids[2]]


async def test_window_expiry_while_the_smsc_was_away(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    ob = build_outbox(pool, CFG)
    now = utcnow()
    stale = await ob.enqueue(
        "8613900000001",
        "old",
        idempotency_key="stale",
        now=now,
        expires_at=now - dt.timedelta(seconds=1),
    )
    fresh = await ob.enqueue(
        "8613900000002",
        "new",
        idempotency_key="fresh",
        now=now,
        expires_at=now + dt.timedelta(hours=24),
    )
    gw = FakeGateway()
    await OutboxSender(clock=utcnow, outbox=ob, gateway=gw, poll_interval=0.02).run_until_idle(
        idle_for=0.2
    )
    assert list(gw.submits) == [fresh]
    assert [r["id"] for r in await prov.list_sms(pool, status="expired")] == [stale]


async def test_smsc_killed_and_restarted_every_sms_exactly_once(
    clean_pool: asyncpg.Pool, smppd: Smppd
) -> None:
    pool = clean_pool
    n = 300
    await fill(pool, n, prefix="r")
    dests = {f"86139{i:08d}" for i in range(n)}
    before = {s["message_id"] for s in smppd.accepted()}
    ob = build_outbox(pool, CFG)
    gw = SmppGateway(
        SmppGatewayConfig(
            host="127.0.0.1", port=smppd.port, window=10, reconnect_min=0.05, reconnect_max=0.3
        ),
        on_receipt=ob.record_receipt,
        on_mo=ob.record_mo,
    )
    gw.start()
    await gw.wait_ready()
    sender = OutboxSender(
        clock=utcnow,
        outbox=ob,
        gateway=gw,
        window=10,
        poll_interval=0.05,
        policy=RetryPolicy(base=0.05, link_delay=0.05),
    )
    run = asyncio.create_task(sender.run())
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while sender.submitted < n // 3:
            assert loop.time() < deadline, "no progress before the crash"
            await asyncio.sleep(0.005)
        t = threading.Thread(target=smppd.restart, kwargs={"down_for": 0.5})
        t.start()
        await asyncio.to_thread(t.join)
        # the crash really fell in the middle of the run
        left = await pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE status IN ('queued', 'sending')"
        )
        assert 0 < left < n
        deadline = loop.time() + 60
        while await pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE status IN ('queued', 'sending')"
        ):
            assert loop.time() < deadline, "outbox did not drain after the restart"
            await asyncio.sleep(0.1)
    finally:
        sender.stop()
        await run
        await gw.stop()
    got = collections.Counter(
        s["destination"]
        for s in smppd.accepted()
        if s["message_id"] not in before and s["destination"] in dests
    )
    assert set(got) == dests
    assert set(got.values()) == {1}, {d: c for d, c in got.items() if c > 1}
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE status IN ('submitted', 'delivered')"
        )
        == n
    )
    assert sender.submitted == n


async def test_alert_to_handset_through_the_real_smsc(
    clean_pool: asyncpg.Pool, smppd: Smppd
) -> None:
    """AlertServiceCentre recorded -> missed-call SMS and callback SMS queued -> submitted to
    the SMSC as UCS-2 -> its DELIVRD receipt marks the row delivered."""
    from scp.flows import notify as notifications
    from scp.flows.presence import PresenceEvent, database_sink

    pool = clean_pool
    callee, caller = "8613912340000", "8613700000042"
    await subscriber(pool, callee, ["missed-call"])
    now = utcnow()
    async with pool.acquire() as conn, conn.transaction():
        mc = await conn.fetchval(
            "INSERT INTO missed_call (caller, callee, occurred_at, reason)"
            " VALUES ($1, $2, $3, 'not-reachable') RETURNING id",
            caller,
            callee,
            now,
        )
        await notifications.on_missed_call(
            conn,
            missed_call_id=mc,
            caller=caller,
            callee=callee,
            reason="not-reachable",
            at=now,
            cfg=CFG,
        )
        await conn.execute(
            "INSERT INTO callback_request (caller, callee, requested_at,"
            " missed_call_id) VALUES ($1, $2, $3, $4)",
            caller,
            callee,
            now,
            mc,
        )
    await database_sink(pool, CFG, utcnow)((PresenceEvent(True, "alert-sc", msisdn=callee),))
    await send_outbox(
        pool,
        CFG,
        smppd,
        pending=lambda: pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE status <> 'delivered'"
        ),
    )
    got = {s["destination"]: s for s in smppd.accepted() if s["destination"] in (callee, caller)}
    assert got[callee]["data_coding"] == 8  # UCS-2
    assert (
        bytes.fromhex(got[callee]["raw"]).decode("utf-16-be").startswith("您好,用户13700000042于")
    )
    assert (
        bytes.fromhex(got[caller]["raw"]).decode("utf-16-be")
        == "您好,用户13912340000已可达,请及时联系。"
    )


async def test_forwarded_receipt_of_a_subscribers_own_sms(
    clean_pool: asyncpg.Pool, smppd: Smppd
) -> None:
    """短信回执: the SMSC forwards the receipt of a subscriber's own SMS; a subscriber with the
    delivery-receipt service gets "您发给{dst}的短信已送达。"; one without it gets nothing, and a
    receipt of one of our own SMS is never taken for a subscriber's."""
    pool = clean_pool
    owner, other, dst = "8613912345001", "8613912345002", "8613700000099"
    await subscriber(pool, owner, ["missed-call", "delivery-receipt"])
    await subscriber(pool, other, ["missed-call"])
    async with outbox_gateway(pool, CFG, smppd, foreign_receipts=True):
        assert smppd.forward_receipt("ext-1", owner, dst) == 1
        assert smppd.forward_receipt("ext-2", other, dst) == 1
        # The gateway hands receipts over in order: once ext-3 is settled, ext-2 was too.
        assert smppd.forward_receipt("ext-3", owner, dst) == 1

        async def both() -> bool:
            n = await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE destination = $1", owner)
            return bool(n >= 2)

        await eventually(both, what="forwarded receipts did not arrive", timeout=30)
    rows = await pool.fetch("SELECT destination, text FROM sms_outbox ORDER BY id")
    assert [r["destination"] for r in rows] == [owner, owner]
    assert rows[0]["text"].startswith("您发给13700000099的短信已送达。")


async def test_grouped_receipts_mark_presence_of_subscribers_only(clean_pool: asyncpg.Pool) -> None:
    """DELIVRD receipts committed in one group call the presence hook in that transaction, for
    subscribers only (the node's on_present does nothing for anyone else), also when the
    receipt overtook the mark; a receipt queued while our mark is queued is never taken for a
    subscriber's own SMS."""
    from scp.state.outbox import NotifyingOutbox

    pool = clean_pool
    sub, other = "8613912345001", "8613912345002"
    await subscriber(pool, sub, ["missed-call"])
    seen: list[tuple[str, bool]] = []

    async def delivered(conn: asyncpg.Connection, destination: str, at: dt.datetime) -> None:
        seen.append((destination, conn.is_in_transaction()))

    foreign: list[str] = []

    async def subscriber_receipt(
        conn: asyncpg.Connection, owner: str, destination: str, mid: str, at: dt.datetime
    ) -> None:
        foreign.append(mid)

    now = utcnow()
    for only in (True, False):
        await pool.execute("TRUNCATE sms_outbox, sms_receipt")
        seen.clear()
        ob = NotifyingOutbox(
            pool,
            on_delivered=delivered,
            subscribers_only=only,
            on_subscriber_receipt=subscriber_receipt,
            flush_delay=0.05,
        )
        for i, d in enumerate((sub, other, sub, other)):
            await ob.enqueue(d, "x", idempotency_key=f"p{i}", now=now)
        rows = await ob.claim(4, now)
        await ob.record_receipt(f"e{rows[0].id}", "DELIVRD", now)  # overtakes its mark
        await ob.record_receipt(f"e{rows[1].id}", "DELIVRD", now)
        marks = [asyncio.ensure_future(ob.mark_submitted(r.id, f"e{r.id}")) for r in rows]
        await asyncio.sleep(0)
        # while those marks wait for their group: a "foreign" receipt of one of ours
        await ob.record_foreign_receipt(sub, other, f"e{rows[2].id}", "DELIVRD", now)
        assert all(m.done() for m in marks)
        await asyncio.gather(
            ob.record_receipt(f"e{rows[2].id}", "DELIVRD", now),
            ob.record_receipt(f"e{rows[3].id}", "DELIVRD", now),
        )
        want = [sub, sub] if only else [sub, other, sub, other]
        assert sorted(d for d, _ in seen) == sorted(want) and all(tx for _, tx in seen)
        assert (
            await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE status = 'delivered'") == 4
        )
    assert foreign == []
