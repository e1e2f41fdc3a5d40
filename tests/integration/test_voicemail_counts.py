"""What a subscriber is told about their voice messages, read from PostgreSQL: the notification
SMS of a deposit (caller, length, the time in the network's zone, zh and en), the answer to
the SMS command LY (new and total, or none), and the self-service IVR's menu 2, whose
announcement carries the number of new messages (CAP PlayAnnouncement with a variable part,
through the real node and a switch peer, every frame checked by tshark).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import asyncpg
import pytest

from scp.config import parse_config
from scp.flows import provisioning as P
from scp.flows import voicemail as vm
from scp.flows.outbox import build_outbox
from scp.service.notifications import local_day
from tests.integration.api_rig import ADMIN, wav
from tests.integration.test_calls_e2e import selfcare_call, start, stop

pytestmark = pytest.mark.integration

CFG = parse_config("")
CALLEE = "8613912345678"
EN = "8613912340000"
CALLER = "8613700001111"
# 10:00 on 6 December in Asia/Shanghai ([notify] timezone), 02:00 UTC
AT = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)


async def subscribers(pool: asyncpg.Pool) -> None:
    day = local_day(AT - dt.timedelta(days=30), CFG)  # subscribed well before AT
    for m, lang in ((CALLEE, "zh"), (EN, "en")):
        await P.add_subscriber(
            pool, ADMIN, m, today=day, services=("missed-call", "voicemail"), language=lang
        )


async def deposit(pool: asyncpg.Pool, callee: str, at: dt.datetime, seconds: int = 3) -> int:
    done = await vm.deposit(
        pool,
        ADMIN,
        CFG,
        callee=callee,
        caller=CALLER,
        audio=wav(seconds, seed=seconds),
        declared_seconds=seconds,
        deposited_at=at,
        now=at + dt.timedelta(seconds=5),
    )
    return done.message.id


async def sms_to(pool: asyncpg.Pool, msisdn: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT text FROM sms_outbox WHERE destination = $1 ORDER BY id", msisdn
    )
    return [r["text"] for r in rows]


async def test_deposit_sms_says_caller_length_and_local_time(clean_pool: asyncpg.Pool) -> None:
    await subscribers(clean_pool)
    await deposit(clean_pool, CALLEE, AT)
    await deposit(clean_pool, EN, AT + dt.timedelta(minutes=7, seconds=59), seconds=2)
    assert await sms_to(clean_pool, CALLEE) == [
        "您好,用户13700001111于12月6日10时00分给您留言3秒,请拨打013800201收听。"
    ]
    assert await sms_to(clean_pool, EN) == [
        "13700001111 left you a 2 s voice message at 10:07 on 6/12. Call 013800201 to listen."
    ]


async def test_ly_answers_the_counts_from_the_database(clean_pool: asyncpg.Pool) -> None:
    await subscribers(clean_pool)
    ids = [await deposit(clean_pool, CALLEE, AT + dt.timedelta(minutes=i)) for i in range(3)]
    await vm.mark_heard(clean_pool, ADMIN, ids[0], at=AT + dt.timedelta(hours=1))
    ob = build_outbox(clean_pool, CFG)
    later = AT + dt.timedelta(hours=2)
    await ob.record_mo(CALLEE, CFG.smpp.source_addr, "ly", later)
    await ob.record_mo(EN, CFG.smpp.source_addr, "LY", later)
    await vm.delete_message(clean_pool, ADMIN, ids[1], at=later)
    await ob.record_mo(CALLEE, CFG.smpp.source_addr, "LY", later)
    assert (await sms_to(clean_pool, CALLEE))[3:] == [
        "您有2条新留言,共3条,请拨打013800201收听。",
        "您有1条新留言,共2条,请拨打013800201收听。",  # a deleted message no longer counts
    ]
    assert await sms_to(clean_pool, EN) == ["You have no voice messages."]


@pytest.mark.parametrize(("new", "heard"), [(2, 1), (0, 1)])
async def test_ivr_menu_2_announces_the_new_count(
    tmp_path: Path, clean_pool: asyncpg.Pool, new: int, heard: int
) -> None:
    await subscribers(clean_pool)
    await P.set_pin(clean_pool, ADMIN, CALLEE, "123456")
    ids = [
        await deposit(clean_pool, CALLEE, AT + dt.timedelta(minutes=i)) for i in range(new + heard)
    ]
    for i in ids[:heard]:
        await vm.mark_heard(clean_pool, ADMIN, i, at=AT + dt.timedelta(hours=1))
    rig = await start(tmp_path, clean_pool, "ctr")
    sw = rig.sw
    try:
        did, m1 = await selfcare_call(sw, CALLEE)
        sw.result(did, sw.ops_of(m1)[1][0], "123456")
        m = await sw.next(did, 2)
        sw.result(did, sw.ops_of(m[1])[0][0], "2")  # how many voice messages
        m = await sw.next(did, 3)
        ((_, pa),) = sw.ops_of(m[2])
        assert type(pa).__name__ == "PlayAnnouncement"
        msg = pa.information_to_send.extra["messageID"][1]
        assert msg == {"elementaryMessageID": 2012, "variableParts": [("integer", new)]}
        sw.cont(did, end=True)
        await rig.peer.wait(lambda: rig.node.user.open_dialogues == 0)
    finally:
        await stop(rig)
