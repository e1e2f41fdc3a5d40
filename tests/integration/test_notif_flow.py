"""Notification flows on real PostgreSQL: what a missed call, a presence event, a
receipt or an MO SMS leaves in the outbox, exactly, and that nothing is queued twice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg
import pytest

from scp.config import Config, parse_config
from scp.flows import notify as notifications
from scp.flows import provisioning as prov
from scp.flows.outbox import build_outbox
from scp.service.notifications import local_day

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("any_day")]

CFG = parse_config("[notify]\nbusy_window = 60.0\n")
ACTOR = prov.Actor("cli", "test")
CALLEE = "8613912345678"
A = "8613700000001"
B = "861012345678"  # Beijing fixed line: shown as 01012345678
NOW = dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC)  # 18:30 in Asia/Shanghai


async def subscriber(pool: asyncpg.Pool, msisdn: str = CALLEE, **kw: object) -> None:
    kw.setdefault("services", ["missed-call", "busy"])
    # subscribed for a month already (the calls below are dated around NOW)
    await prov.add_subscriber(
        pool,
        ACTOR,
        msisdn,  # type: ignore[arg-type]
        today=local_day(NOW - dt.timedelta(days=30), CFG),
        **kw,
    )


async def missed(
    pool: asyncpg.Pool,
    caller: str | None,
    at: dt.datetime,
    reason: str = "not-reachable",
    cfg: Config = CFG,
    callee: str = CALLEE,
) -> notifications.Queued:
    async with pool.acquire() as conn, conn.transaction():
        mc = await conn.fetchval(
            "INSERT INTO missed_call (caller, callee, occurred_at, reason)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            caller,
            callee,
            at,
            reason,
        )
        return await notifications.on_missed_call(
            conn, missed_call_id=mc, caller=caller, callee=callee, reason=reason, at=at, cfg=cfg
        )


async def present(
    pool: asyncpg.Pool, at: dt.datetime = NOW, cfg: Config = CFG, msisdn: str = CALLEE
) -> notifications.Queued:
    async with pool.acquire() as conn, conn.transaction():
        return await notifications.on_present(
            conn, msisdn=msisdn, source="alert-sc", at=at, cfg=cfg
        )


async def outbox(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT destination, text FROM sms_outbox ORDER BY id")
    return [(r["destination"], r["text"]) for r in rows]


async def test_per_caller_sms_on_present_and_expiry(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await subscriber(pool)
    old = await missed(pool, A, NOW - dt.timedelta(hours=25))  # beyond window_hours = 24
    q = await missed(pool, A, NOW - dt.timedelta(hours=2))
    assert q.hlr_alert is False  # one registration pending already (from the old call)
    await missed(pool, B, NOW - dt.timedelta(hours=1, minutes=30))
    await missed(pool, A, NOW - dt.timedelta(minutes=5))
    assert old.hlr_alert is True
    assert await outbox(pool) == []  # waits for presence
    q = await present(pool)
    assert len(q.sms_ids) == 2
    assert await outbox(pool) == [
        (CALLEE, "您好,用户13700000001于11月25日18时呼叫您2次,请回电!"),
        (CALLEE, "您好,用户01012345678于11月25日17时呼叫您1次,请回电!"),
    ]
    outcomes = await pool.fetch("SELECT notify_outcome, count(*) FROM missed_call GROUP BY 1")
    assert {r[0]: r[1] for r in outcomes} == {"expired": 1, "queued": 3}
    assert await pool.fetchval("SELECT count(*) FROM hlr_alert") == 0
    # present again (e.g. NoteMM-Event after AlertServiceCentre): nothing sent twice
    assert (await present(pool, NOW + dt.timedelta(minutes=1))).sms_ids == ()
    assert len(await outbox(pool)) == 2


async def test_digest_and_callbacks(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await subscriber(pool, notify_mode="digest")
    await missed(pool, A, NOW - dt.timedelta(hours=2))
    await missed(pool, None, NOW - dt.timedelta(hours=1))
    await missed(pool, A, NOW - dt.timedelta(minutes=10))
    await pool.execute(
        "INSERT INTO callback_request (caller, callee, requested_at) VALUES ($1, $2, $3)",
        A,
        CALLEE,
        NOW - dt.timedelta(minutes=10),
    )
    await pool.execute(
        "INSERT INTO callback_request (caller, callee, requested_at, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        "8613700000009",
        CALLEE,
        NOW - dt.timedelta(hours=3),
        NOW - dt.timedelta(hours=1),
    )
    await present(pool)
    assert await outbox(pool) == [
        (
            CALLEE,
            "您好,您有3个未接来电:13700000001(11月25日18时2次);未知号码(11月25日17时1次),请回电!",
        ),
        (A, "您好,用户13912345678已可达,请及时联系。"),
    ]
    assert (
        await pool.fetchval("SELECT count(*) FROM callback_request WHERE notified_at IS NULL") == 1
    )


async def test_busy_attempts_aggregate_into_one_sms(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await subscriber(pool)
    for s in (0, 20, 40):
        await missed(pool, A, NOW + dt.timedelta(seconds=s), reason="busy")
    rows = await pool.fetch("SELECT text, next_attempt_at, status FROM sms_outbox")
    assert len(rows) == 1
    assert rows[0]["text"] == "您好,用户13700000001于11月25日18时呼叫您3次,您正在通话中,请回电!"
    assert rows[0]["next_attempt_at"] == NOW + dt.timedelta(seconds=60)
    # another caller has its own SMS; once a sender took the first, a new attempt starts anew
    await missed(pool, B, NOW + dt.timedelta(seconds=45), reason="busy")
    ob = build_outbox(pool, CFG)
    claimed = await ob.claim(10, NOW + dt.timedelta(seconds=61))
    assert [c.text.count("3次") for c in claimed] == [1]  # B waits out its own window
    await missed(pool, A, NOW + dt.timedelta(seconds=70), reason="busy")
    texts = [t for _, t in await outbox(pool)]
    assert texts[-1] == "您好,用户13700000001于11月25日18时呼叫您1次,您正在通话中,请回电!"
    assert await pool.fetchval("SELECT count(*) FROM missed_call WHERE notified_at IS NULL") == 0


async def test_no_service_or_none_mode_is_recorded_only(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await subscriber(pool, services=["voicemail"])
    await missed(pool, A, NOW - dt.timedelta(minutes=3))
    await missed(pool, A, NOW - dt.timedelta(minutes=2), reason="busy")
    await present(pool)
    assert await outbox(pool) == []
    assert (
        await pool.fetchval("SELECT count(*) FROM missed_call WHERE notify_outcome = 'suppressed'")
        == 2
    )


async def test_enqueue_rolls_back_with_the_event(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await subscriber(pool)
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            mc = await conn.fetchval(
                "INSERT INTO missed_call (caller, callee, occurred_at,"
                " reason) VALUES ($1, $2, $3, 'busy') RETURNING id",
                A,
                CALLEE,
                NOW,
            )
            await notifications.on_missed_call(
                conn, missed_call_id=mc, caller=A, callee=CALLEE, reason="busy", at=NOW, cfg=CFG
            )
            assert await conn.fetchval("SELECT count(*) FROM sms_outbox") == 1
            raise RuntimeError("the call handler's transaction fails")
    assert await outbox(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM missed_call") == 0


async def test_ads_by_group_and_segment_budget(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await subscriber(pool, group="vip")
    await subscriber(pool, "8613912345679", group="default")
    await prov.add_ad(
        pool,
        ACTOR,
        "【尊享】回电享优惠",
        now=NOW - dt.timedelta(days=1),
        user_groups=["vip"],
        priority=5,
    )
    await prov.add_ad(pool, ACTOR, "广" * 60, now=NOW - dt.timedelta(days=1), priority=9)
    await prov.add_ad(
        pool, ACTOR, "明天起", now=NOW, valid_from=NOW + dt.timedelta(days=1), priority=99
    )  # not valid yet at NOW
    await missed(pool, A, NOW - dt.timedelta(minutes=5))
    await missed(pool, A, NOW - dt.timedelta(minutes=5), callee="8613912345679")
    await present(pool)
    await present(pool, msisdn="8613912345679")
    texts = dict((d, t) for d, t in await outbox(pool))
    # vip: the priority-9 ad would make two segments, so the fitting vip ad is taken
    assert texts[CALLEE] == "您好,用户13700000001于11月25日18时呼叫您1次,请回电!【尊享】回电享优惠"
    assert texts["8613912345679"] == "您好,用户13700000001于11月25日18时呼叫您1次,请回电!"


async def test_delivery_receipt_counts_as_present(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await subscriber(pool)
    ob = build_outbox(pool, CFG)
    sms_id = await ob.enqueue(CALLEE, "earlier notification", idempotency_key="x", now=NOW)
    await missed(pool, A, NOW - dt.timedelta(minutes=1))
    (row,) = await ob.claim(5, NOW)
    await ob.mark_submitted(row.id, "m-1")
    await ob.record_receipt("m-1", "DELIVRD", NOW + dt.timedelta(seconds=5))
    assert await pool.fetchval("SELECT status FROM sms_outbox WHERE id = $1", sms_id) == "delivered"
    assert await pool.fetchval("SELECT source FROM presence") == "delivery-receipt"
    assert len(await outbox(pool)) == 2


async def test_subscriber_receipt_service(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await subscriber(pool, services=["delivery-receipt"])
    async with pool.acquire() as conn, conn.transaction():
        q = await notifications.on_subscriber_receipt(
            conn, owner=CALLEE, destination=A, message_id="abc", at=NOW, cfg=CFG
        )
        again = await notifications.on_subscriber_receipt(
            conn, owner=CALLEE, destination=A, message_id="abc", at=NOW, cfg=CFG
        )
    assert len(q.sms_ids) == 1 and again.sms_ids == ()
    assert await outbox(pool) == [(CALLEE, "您发给13700000001的短信已送达。")]


async def test_sms_commands_through_the_mo_path(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await subscriber(pool)
    # the tariff is valid from NOW's day, in the network's time zone (18:30 in Shanghai)
    await prov.add_rate(pool, ACTOR, "local", "86139", today=local_day(NOW, CFG), per_sms="0.10")
    await prov.add_rate(
        pool,
        ACTOR,
        "local",
        "86139",
        per_sms="9.99",
        today=local_day(NOW, CFG) + dt.timedelta(days=1),
    )  # tomorrow's
    ob = build_outbox(pool, CFG)
    await missed(pool, A, NOW - dt.timedelta(hours=1))
    svc = CFG.smpp.source_addr
    for text in (
        "cx",
        "ＨＭＤ 13700000002",
        "QHMD13700000002",
        "QHMD 13700000003",
        "QX",
        "KT",
        "QXYM",
        "QX YM",
        "ktym",
        "HMD 12",
        "hello",
    ):
        await ob.record_mo(CALLEE, svc, text, NOW)
    await ob.record_mo(CALLEE, "10086", "CX", NOW)  # not our number: stored, not answered
    await ob.record_mo("8613600000000", svc, "CX", NOW)  # not a subscriber
    replies = [t for d, t in await outbox(pool) if d != CALLEE or not t.startswith("您好")]
    assert replies == [
        "您近24小时有1个未接来电:13700000001(11月25日17:30)",
        "已将13700000002加入黑名单,其来电将不再提醒。",
        "已将13700000002移出黑名单。",
        "13700000003不在您的黑名单中。",
        "您已成功取消来电提醒业务。",
        "您已成功开通来电提醒业务。",
        "您已成功取消遇忙提示业务。",
        "您已成功取消遇忙提示业务。",  # already off: the end date stays, the reply is the same
        "您已成功开通遇忙提示业务。",
        "号码12有误,请发送 HMD 号码 或 QHMD 号码。",
        "来电提醒:CX查询未接来电,LY查询留言,KT开通,QX取消,HMD 号码 加黑名单,QHMD 号码 移出黑名单。"
        "KT/QX加业务代码:YM遇忙 HZ回执 LY留言 ZJ转接。",
        "您尚未开通来电提醒业务,发送KT开通。",
    ]
    # each product switched on its own
    subs = {s.service: s.end_date for s in (await prov.get_subscriber(pool, CALLEE)).subscriptions}
    assert subs["missed-call"] is None and subs["busy"] is None
    # each service by its code; a number that is no subscriber enrols itself with KT
    new = "8613600000001"
    await ob.record_mo(CALLEE, svc, "KT YM", NOW)
    await ob.record_mo(CALLEE, svc, "qx busy", NOW)
    await ob.record_mo(CALLEE, svc, "QX LY", NOW)
    await ob.record_mo(new, svc, "KT HZ", NOW)
    more = [t for _, t in await outbox(pool) if not t.startswith("您好")]
    assert more[-4:] == [
        "您已成功开通遇忙提示业务。",
        "您已成功取消遇忙提示业务。",
        "您未开通语音留言业务。",
        "您已成功开通短信回执业务。",
    ]
    enrolled = await prov.get_subscriber(pool, new)
    assert set(enrolled.active_services(local_day(NOW, CFG))) == {
        "missed-call",
        "delivery-receipt",
    }
    assert (
        await pool.fetchval(
            "SELECT actor FROM audit_log WHERE channel = 'sms' AND entity_key = $1 LIMIT 1", new
        )
        == new
    )
    cdrs = await pool.fetch("SELECT service, charge FROM cdr ORDER BY id")
    assert [r["service"] for r in cdrs][:10] == [
        "sms-command:cx",
        "sms-command:hmd",
        "sms-command:qhmd",
        "sms-command:qhmd",
        "sms-command:qx",
        "sms-command:kt",
        "sms-command:qx",  # QXYM: QX YM in one word
        "sms-command:qx",
        "sms-command:kt",
        "sms-command:hmd",
    ]
    assert all(r["charge"] == Decimal("0.1") for r in cdrs[:10])
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE channel = 'sms'") >= 4
    assert await pool.fetchval("SELECT count(*) FROM sms_mo WHERE handled_at IS NULL") == 1


async def test_concurrent_events_queue_each_sms_once(clean_pool: asyncpg.Pool) -> None:
    """Two nodes handling the same moment: busy attempts committing together make one SMS;
    AlertServiceCentre and NoteMM-Event arriving together queue the waiting SMS once."""
    import asyncio

    pool = clean_pool
    await subscriber(pool)
    await asyncio.gather(
        *(missed(pool, A, NOW + dt.timedelta(seconds=i), reason="busy") for i in range(5))
    )
    rows = await pool.fetch("SELECT text FROM sms_outbox")
    assert [r["text"] for r in rows] == [
        "您好,用户13700000001于11月25日18时呼叫您5次,您正在通话中,请回电!"
    ]
    await pool.execute("DELETE FROM sms_outbox")
    for i in range(3):
        await missed(pool, f"861370000000{i}", NOW - dt.timedelta(minutes=i + 1))
    results = await asyncio.gather(
        *(present(pool, NOW + dt.timedelta(seconds=i)) for i in range(4))
    )
    assert sorted(len(q.sms_ids) for q in results) == [0, 0, 0, 3]
    assert len(await outbox(pool)) == 3


async def test_no_answer_is_told_at_once_with_the_missed_call_text(
    clean_pool: asyncpg.Pool,
) -> None:
    pool = clean_pool
    await subscriber(pool, services=["missed-call"])
    await missed(pool, A, NOW, reason="no-answer")
    await missed(pool, A, NOW + dt.timedelta(seconds=30), reason="no-answer")
    # busy notification is another product: this subscriber does not have it
    await missed(pool, A, NOW + dt.timedelta(seconds=40), reason="busy")
    rows = await pool.fetch("SELECT text, next_attempt_at FROM sms_outbox ORDER BY id")
    assert [r["text"] for r in rows] == [
        "您好,用户13700000001于11月25日18时呼叫您2次,请回电!",
    ]
    assert rows[0]["next_attempt_at"] == NOW + dt.timedelta(seconds=60)
    outcomes = await pool.fetch("SELECT reason, notify_outcome FROM missed_call ORDER BY id")
    assert [tuple(r) for r in outcomes] == [
        ("no-answer", "queued"),
        ("no-answer", "queued"),
        ("busy", "suppressed"),
    ]


async def test_busy_only_subscriber_gets_busy_sms_and_nothing_else(
    clean_pool: asyncpg.Pool,
) -> None:
    pool = clean_pool
    await subscriber(pool, services=["busy"])
    await missed(pool, A, NOW, reason="busy")
    await missed(pool, A, NOW + dt.timedelta(seconds=5), reason="no-answer")
    await missed(pool, A, NOW + dt.timedelta(seconds=6), reason="not-reachable")
    await present(pool, NOW + dt.timedelta(minutes=5))
    rows = await pool.fetch("SELECT text FROM sms_outbox ORDER BY id")
    assert [r["text"] for r in rows] == [
        "您好,用户13700000001于11月25日18时呼叫您1次,您正在通话中,请回电!"
    ]
    outcomes = await pool.fetch("SELECT reason, notify_outcome FROM missed_call ORDER BY id")
    assert [tuple(r) for r in outcomes] == [
        ("busy", "queued"),
        ("no-answer", "suppressed"),
        ("not-reachable", "suppressed"),
    ]
