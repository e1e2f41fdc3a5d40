"""Named SQL of call handling (scp.state.calls_store) and the write step of the call flow
(scp.flows.calls.write_records) on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
from decimal import Decimal
from typing import Any

import pytest

from scp.config import Config
from scp.flows import provisioning as P
from scp.flows.calls import write_records
from scp.service.calls import RecordCallback, RecordMissedCall, RecordVoicemail, WriteCdr
from scp.service.rating import RatingRules
from scp.state import calls_store as store

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("any_day")]

ADMIN = P.Actor("cli", "test")
AT = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 25)  # AT's day in Shanghai
CALLEE = "8613912345678"
CALLER = "8613700001111"


async def test_load_callee_services_forward_and_blacklist(clean_pool: Any) -> None:
    assert await store.load_callee(clean_pool, CALLEE, CALLER, DAY) is None
    await P.add_subscriber(
        clean_pool, ADMIN, CALLEE, today=DAY, services=("missed-call", "forwarding")
    )
    await P.update_subscriber(clean_pool, ADMIN, CALLEE, forward_to="8613800001111")
    c = await store.load_callee(clean_pool, CALLEE, CALLER, DAY)
    assert c is not None and c.active and not c.blacklisted
    assert c.services == {"missed-call", "forwarding"} and c.forward_to == "8613800001111"
    # services in force on the day asked for (the call's), not on the database's date
    c = await store.load_callee(clean_pool, CALLEE, CALLER, DAY - dt.timedelta(days=1))
    assert c is not None and c.services == frozenset()
    await P.disable_service(
        clean_pool, ADMIN, CALLEE, "forwarding", today=DAY + dt.timedelta(days=1)
    )
    await P.blacklist_add(clean_pool, ADMIN, CALLEE, "861370000", prefix=True)
    c = await store.load_callee(clean_pool, CALLEE, CALLER, DAY)
    assert c is not None and c.services == {"missed-call", "forwarding"}  # ends tomorrow
    c = await store.load_callee(clean_pool, CALLEE, CALLER, DAY + dt.timedelta(days=1))
    assert c is not None and c.services == {"missed-call"} and c.blacklisted
    c = await store.load_callee(clean_pool, CALLEE, None, DAY)  # unknown caller: never blacklisted
    assert c is not None and not c.blacklisted
    await P.update_subscriber(clean_pool, ADMIN, CALLEE, status="suspended")
    c = await store.load_callee(clean_pool, CALLEE, "8613600000000", DAY)
    assert c is not None and not c.active


async def test_load_callees_reads_each_key_as_one_read_would(clean_pool: Any) -> None:
    """Several calls' subscribers in one statement: each key gets what it would get alone
    (its own caller's blacklist, its own day), in the keys' order, None for a number that is
    no subscriber, the same number twice answered twice."""
    other = "8613912345600"
    await P.add_subscriber(clean_pool, ADMIN, CALLEE, today=DAY, services=("missed-call",))
    await P.add_subscriber(clean_pool, ADMIN, other, today=DAY, services=("busy",))
    await P.blacklist_add(clean_pool, ADMIN, CALLEE, "861370000", prefix=True)
    await P.blacklist_add(clean_pool, ADMIN, other, "8613600000000")
    keys: list[store.CalleeKey] = [
        (CALLEE, CALLER, DAY),  # blacklisted by prefix
        ("8613900000000", CALLER, DAY),  # no subscriber
        (other, CALLER, DAY),
        (CALLEE, "8613600000000", DAY),  # another caller: not blacklisted
        (other, "8613600000000", DAY - dt.timedelta(days=1)),  # before its services
        (CALLEE, None, DAY),
        (CALLEE, CALLER, DAY),  # the same key again
    ]
    got = await store.load_callees(clean_pool, keys)
    assert got == [await store.load_callee(clean_pool, *k) for k in keys]
    assert [None if c is None else (c.msisdn, c.blacklisted, sorted(c.services)) for c in got] == [
        (CALLEE, True, ["missed-call"]),
        None,
        (other, False, ["busy"]),
        (CALLEE, False, ["missed-call"]),
        (other, True, []),
        (CALLEE, False, ["missed-call"]),
        (CALLEE, True, ["missed-call"]),
    ]
    assert await store.load_callees(clean_pool, []) == []


async def test_records_in_one_transaction_with_the_notification_hook(clean_pool: Any) -> None:
    await P.add_subscriber(clean_pool, ADMIN, CALLEE, today=DAY, services=("missed-call",))
    seen: list[dict[str, Any]] = []

    async def on_missed_call(conn: Any, **kw: Any) -> None:
        assert conn.is_in_transaction()
        seen.append(kw)
        if kw["caller"] == "8613600000000":
            raise RuntimeError("hook failed")

    async def declined(conn: Any, **kw: Any) -> None:
        return None  # the one-statement path declines: the transaction path runs

    notify = types.SimpleNamespace(record_missed_call=declined, on_missed_call=on_missed_call)
    cfg = Config()
    mc = await write_records(
        clean_pool,
        [RecordMissedCall(CALLER, CALLEE, "busy", 17, "scp-1:1", AT)],
        cfg=cfg,
        notify=notify,
    )
    assert mc is not None and seen[0]["missed_call_id"] == mc and seen[0]["reason"] == "busy"
    await write_records(
        clean_pool,
        [
            RecordCallback(CALLER, CALLEE, AT, AT + dt.timedelta(hours=24)),
            RecordCallback(CALLER, CALLEE, AT, AT + dt.timedelta(hours=48)),  # same open request
            RecordVoicemail(CALLEE, CALLER, AT, "vm://x/1"),
            WriteCdr(
                "fee",
                CALLER,
                CALLER,
                CALLEE,
                "callback",
                None,
                AT,
                AT,
                None,
                Decimal("0.10"),
                "scp-1:1",
            ),
        ],
        cfg=cfg,
        missed_call_id=mc,
        notify=notify,
    )
    cb = await clean_pool.fetch("SELECT missed_call_id, expires_at FROM callback_request")
    assert len(cb) == 1 and cb[0]["missed_call_id"] == mc
    assert cb[0]["expires_at"] == AT + dt.timedelta(hours=48)
    assert await clean_pool.fetchval("SELECT count(*) FROM voicemail") == 1
    # The hook fails: the missed call is not left behind either.
    with pytest.raises(RuntimeError):
        await write_records(
            clean_pool,
            [RecordMissedCall("8613600000000", CALLEE, "busy", None, "scp-1:2", AT)],
            cfg=cfg,
            notify=notify,
        )
    assert await clean_pool.fetchval("SELECT count(*) FROM missed_call") == 1


async def test_load_rates_and_overrides(clean_pool: Any) -> None:
    await P.add_rate(clean_pool, ADMIN, "national", "", today=DAY, per_minute="0.30")
    await clean_pool.execute(
        "INSERT INTO rate_override (number, kind, call_category) VALUES"
        " ('862188887777', 'exact', 'local'), ('8621', 'prefix', 'hmt')"
    )
    t = await store.load_rates(clean_pool, RatingRules())
    assert t.category("862188887777") == "local" and t.category("862100000000") == "hmt"
    assert t.rate_call("862088887777", 90, DAY).charge == Decimal("0.60")


async def test_a_missed_call_written_again_is_written_once(clean_pool: Any) -> None:
    """The write of a call's records is run again when its first outcome was lost with its
    connection (scp.flows.calls): the second run finds the missed call of the first (migration
    0250) and writes nothing, whether it takes the one-statement path or the transaction, with
    other records beside it or not; the notification SMS stays one."""
    await P.add_subscriber(clean_pool, ADMIN, CALLEE, today=DAY, services=("missed-call",))
    cfg = Config()
    mc = RecordMissedCall(CALLER, CALLEE, "not-reachable", 20, "scp-1:0000002a", AT)
    cdr = WriteCdr(
        "fee", CALLER, CALLER, CALLEE, "callback", "local", AT, AT, 0,
        Decimal("0.10"), "scp-1:0000002a",
    )  # fmt: skip
    first = await write_records(clean_pool, [mc], cfg=cfg)
    assert first is not None
    written = {
        t: await clean_pool.fetchval(f"SELECT count(*) FROM {t}")
        for t in ("missed_call", "sms_outbox", "hlr_alert")
    }
    assert written["missed_call"] == 1 and written["hlr_alert"] == 1
    assert await write_records(clean_pool, [mc], cfg=cfg) == first
    assert await write_records(clean_pool, [mc, cdr], cfg=cfg) == first
    for t, n in written.items():
        assert await clean_pool.fetchval(f"SELECT count(*) FROM {t}") == n, t
    assert await clean_pool.fetchval("SELECT count(*) FROM cdr") == 0  # rolled back with it
    # another call of the same pair at another time is another missed call
    again = dataclasses.replace(mc, call_ref="scp-1:0000002b")
    assert await write_records(clean_pool, [again], cfg=cfg) not in (None, first)
