"""Provisioning service (scp.flows.provisioning) against a real PostgreSQL: every change
and its audit row commit together; validation names the field; PIN lock after 3 failures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg
import pytest

from scp.flows import provisioning as prov
from scp.service import pin as pins
from scp.service.provisioning import Actor, Conflict, InvalidInput, NotFound

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("any_day")]

CLI = Actor("cli", "tester")
IVR = Actor("ivr", "ivr-1")
# The time of the tests: every provisioning function is told the day (the CLI reads the clock)
NOW = dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 25)


async def audit_rows(pool: asyncpg.Pool, entity: str | None = None) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM audit_log WHERE ($1::text IS NULL OR entity = $1) ORDER BY id", entity
    )


async def test_add_show_update_delete_with_audit(clean_pool: asyncpg.Pool) -> None:
    s = await prov.add_subscriber(
        clean_pool,
        CLI,
        "013800138000",
        today=TODAY,
        services=["missed-call", "busy", "busy"],
        pin="123456",
        group="vip",
        language="en",
        imsi="460001234567890",
    )
    assert s.msisdn == "8613800138000"  # national form normalised (CC 86, trunk prefix 0)
    assert s.active_services(TODAY) == ("busy", "missed-call")
    assert s.active_services(TODAY - dt.timedelta(days=1)) == ()  # from the day it was told
    assert s.pin_set and not s.pin_locked
    got = await prov.get_subscriber(clean_pool, "+8613800138000")
    assert got == s
    up = await prov.update_subscriber(
        clean_pool, CLI, "8613800138000", status="suspended", forward_to="13900139000"
    )
    assert up.status == "suspended" and up.forward_to == "8613900139000"
    # a no-op update writes no audit row
    await prov.update_subscriber(clean_pool, CLI, "8613800138000", status="suspended")
    await prov.delete_subscriber(clean_pool, CLI, "8613800138000")
    with pytest.raises(NotFound):
        await prov.get_subscriber(clean_pool, "8613800138000")
    rows = await audit_rows(clean_pool, "subscriber")
    assert [r["action"] for r in rows] == ["create", "update", "delete"]
    assert rows[0]["channel"] == "cli" and rows[0]["actor"] == "tester"
    assert rows[1]["before"]["status"] == "active" and rows[1]["after"]["status"] == "suspended"
    assert rows[2]["after"] is None
    assert "pin_hash" not in rows[0]["after"]  # hashes stay out of the audit log
    assert await clean_pool.fetchval("SELECT count(*) FROM subscription") == 0  # cascaded


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"msisdn": "12345"}, "msisdn"),
        ({"msisdn": "86abc"}, "msisdn"),
        ({"services": ["sms-me"]}, "services"),
        ({"language": "fr"}, "language"),
        ({"group": "bad group"}, "group"),
        ({"imsi": "46000"}, "imsi"),
        ({"pin": "12345"}, "pin"),
        ({"notify_mode": "loud"}, "notify_mode"),
        ({"forward_to": "x"}, "forward_to"),
    ],
)
async def test_invalid_input_names_field(
    clean_pool: asyncpg.Pool, kwargs: dict[str, object], field: str
) -> None:
    args = {"msisdn": "8613800000001", **kwargs}
    msisdn = args.pop("msisdn")
    with pytest.raises(InvalidInput) as ei:
        await prov.add_subscriber(
            clean_pool,
            CLI,
            msisdn,
            today=TODAY,  # type: ignore[arg-type]
            **args,
        )
    assert ei.value.field == field
    assert await clean_pool.fetchval("SELECT count(*) FROM subscriber") == 0
    assert await clean_pool.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_duplicate_msisdn_and_imsi_conflict(clean_pool: asyncpg.Pool) -> None:
    await prov.add_subscriber(clean_pool, CLI, "8613800000001", today=TODAY, imsi="460000000000001")
    with pytest.raises(Conflict, match="msisdn"):
        await prov.add_subscriber(clean_pool, CLI, "8613800000001", today=TODAY)
    with pytest.raises(Conflict, match="imsi"):
        await prov.add_subscriber(
            clean_pool, CLI, "8613800000002", today=TODAY, imsi="460000000000001"
        )
    assert await clean_pool.fetchval("SELECT count(*) FROM audit_log") == 1


async def test_services_enable_disable_dates(clean_pool: asyncpg.Pool) -> None:
    today = TODAY
    month = dt.timedelta(days=30)
    await prov.add_subscriber(
        clean_pool, CLI, "8613800000001", today=today - month, services=["missed-call"]
    )
    s = await prov.enable_service(
        clean_pool, CLI, "8613800000001", "voicemail", today=today, end=today + month
    )
    vm = next(x for x in s.subscriptions if x.service == "voicemail")
    assert vm.start_date == today and vm.end_date == today + month
    s = await prov.disable_service(clean_pool, CLI, "8613800000001", "missed-call", today=today)
    mc = next(x for x in s.subscriptions if x.service == "missed-call")
    assert (mc.start_date, mc.end_date) == (today - month, today)  # kept as history
    assert s.active_services(today) == ("voicemail",)
    s = await prov.enable_service(clean_pool, CLI, "8613800000001", "missed-call", today=today)
    assert set(s.active_services(today)) == {"missed-call", "voicemail"}
    # a service ended in the future (still running) keeps its start when renewed
    s = await prov.enable_service(
        clean_pool, CLI, "8613800000001", "voicemail", today=today + dt.timedelta(days=1)
    )
    vm = next(x for x in s.subscriptions if x.service == "voicemail")
    assert (vm.start_date, vm.end_date) == (today, None)
    with pytest.raises(NotFound):
        await prov.disable_service(clean_pool, CLI, "8613800000001", "forwarding", today=today)
    with pytest.raises(InvalidInput) as ei:
        await prov.enable_service(clean_pool, CLI, "8613800000001", "teleport", today=today)
    assert ei.value.field == "service"
    acts = [r["action"] for r in await audit_rows(clean_pool)]
    assert acts == [
        "create",
        "enable-service",
        "disable-service",
        "enable-service",
        "enable-service",
    ]


async def test_blacklist_exact_and_prefix(clean_pool: asyncpg.Pool) -> None:
    await prov.add_subscriber(clean_pool, CLI, "8613800000001", today=TODAY)
    await prov.blacklist_add(clean_pool, CLI, "8613800000001", "13900000000")
    await prov.blacklist_add(clean_pool, CLI, "8613800000001", "86177", prefix=True)
    await prov.blacklist_add(clean_pool, CLI, "8613800000001", "86177", prefix=True)  # no-op
    entries = await prov.blacklist_list(clean_pool, "8613800000001")
    assert [(e.number, e.kind) for e in entries] == [
        ("8613900000000", "exact"),
        ("86177", "prefix"),
    ]
    assert await prov.is_blacklisted(clean_pool, "8613800000001", "8613900000000")
    assert await prov.is_blacklisted(clean_pool, "8613800000001", "8617712345678")
    assert not await prov.is_blacklisted(clean_pool, "8613800000001", "8613900000001")
    await prov.blacklist_del(clean_pool, CLI, "8613800000001", "8613900000000")
    with pytest.raises(NotFound):
        await prov.blacklist_del(clean_pool, CLI, "8613800000001", "8613900000000")
    with pytest.raises(NotFound):
        await prov.blacklist_add(clean_pool, CLI, "8613800000009", "8613900000000")
    assert len(await audit_rows(clean_pool, "blacklist")) == 3


async def test_pin_lock_after_three_failures_and_unlock(clean_pool: asyncpg.Pool) -> None:
    await prov.add_subscriber(clean_pool, CLI, "8613800000001", today=TODAY)
    assert (await prov.verify_pin(clean_pool, IVR, "8613800000001", "123456")).outcome == "no-pin"
    await prov.set_pin(clean_pool, CLI, "8613800000001", "123456")
    assert (await prov.verify_pin(clean_pool, IVR, "8613800000001", "123456")).outcome == "ok"
    r1 = await prov.verify_pin(clean_pool, IVR, "8613800000001", "000000")
    r2 = await prov.verify_pin(clean_pool, IVR, "8613800000001", "000001")
    assert (r1.outcome, r1.attempts_left, r2.attempts_left) == ("wrong", 2, 1)
    assert (await prov.verify_pin(clean_pool, IVR, "8613800000001", "000002")).outcome == "locked"
    # locked: even the right PIN is refused
    assert (await prov.verify_pin(clean_pool, IVR, "8613800000001", "123456")).outcome == "locked"
    s = await prov.get_subscriber(clean_pool, "8613800000001")
    assert s.pin_locked and s.pin_failed_attempts == 3
    await prov.unlock_pin(clean_pool, CLI, "8613800000001")
    assert (await prov.verify_pin(clean_pool, IVR, "8613800000001", "123456")).outcome == "ok"
    await prov.reset_pin(clean_pool, CLI, "8613800000001")
    assert not (await prov.get_subscriber(clean_pool, "8613800000001")).pin_set
    acts = [(r["channel"], r["action"]) for r in await audit_rows(clean_pool)]
    assert ("ivr", "pin-lock") in acts and ("cli", "unlock-pin") in acts
    assert all("123456" not in str(r["after"]) for r in await audit_rows(clean_pool))


async def test_success_resets_counter_and_upgrades_bulk_hash(clean_pool: asyncpg.Pool) -> None:
    await prov.add_subscriber(clean_pool, CLI, "8613800000001", today=TODAY)
    await clean_pool.execute(
        "UPDATE subscriber SET pin_hash = $1", pins.hash_pin("7654321", pins.BULK)
    )
    assert (await prov.verify_pin(clean_pool, IVR, "8613800000001", "7654320")).outcome == "wrong"
    assert (await prov.verify_pin(clean_pool, IVR, "8613800000001", "7654321")).outcome == "ok"
    row = await clean_pool.fetchrow("SELECT pin_hash, pin_failed_attempts FROM subscriber")
    assert row["pin_failed_attempts"] == 0 and not pins.needs_rehash(row["pin_hash"])


async def test_list_subscribers_paging(clean_pool: asyncpg.Pool) -> None:
    for i in range(5):
        await prov.add_subscriber(
            clean_pool,
            CLI,
            f"861380000000{i}",
            today=TODAY,
            services=["busy"],
            group="g1" if i % 2 else "g2",
        )
    page = await prov.list_subscribers(clean_pool, limit=2)
    assert [s.msisdn for s in page] == ["8613800000000", "8613800000001"]
    page2 = await prov.list_subscribers(clean_pool, limit=2, after=page[-1].msisdn)
    assert [s.msisdn for s in page2] == ["8613800000002", "8613800000003"]
    assert len(await prov.list_subscribers(clean_pool, group="g1")) == 2
    assert page[0].subscriptions[0].service == "busy"


async def test_ads_rates(clean_pool: asyncpg.Pool) -> None:
    ad = await prov.add_ad(
        clean_pool,
        CLI,
        "Try our 5G plan!",
        now=NOW,
        window_start=dt.time(8),
        window_end=dt.time(22),
        caller_prefixes=["86138"],
        user_groups=["vip"],
        priority=5,
    )
    assert ad.valid_from == NOW  # from the caller's now unless told
    await prov.add_ad(clean_pool, CLI, "low", now=NOW, priority=1)
    assert [a.text for a in await prov.list_ads(clean_pool)] == ["Try our 5G plan!", "low"]
    with pytest.raises(InvalidInput) as ei:
        await prov.add_ad(clean_pool, CLI, "x", now=NOW, caller_prefixes=["86a"])
    assert ei.value.field == "caller_prefixes"
    with pytest.raises(InvalidInput) as ei:  # ends before it starts: now, when not told
        await prov.add_ad(clean_pool, CLI, "x", now=NOW, valid_until=NOW - dt.timedelta(hours=1))
    assert ei.value.field == "valid_until"
    await prov.delete_ad(clean_pool, CLI, ad.id)
    with pytest.raises(NotFound):
        await prov.delete_ad(clean_pool, CLI, ad.id)
    r = await prov.add_rate(
        clean_pool,
        CLI,
        "international",
        "852",
        today=TODAY,
        per_minute="1.5",
        per_sms="0.1",
        valid_from="2026-01-01",
    )
    assert r.per_minute == Decimal("1.5000") and r.valid_from == dt.date(2026, 1, 1)
    r2 = await prov.add_rate(
        clean_pool,
        CLI,
        "international",
        "852",
        today=TODAY,
        per_minute="2",
        valid_from="2026-01-01",
    )
    assert r2.id == r.id and r2.per_minute == Decimal("2")  # same key replaces
    r3 = await prov.add_rate(clean_pool, CLI, "international", "853", today=TODAY)
    assert r3.valid_from == TODAY  # no valid_from: the caller's today
    with pytest.raises(InvalidInput) as ei:
        await prov.add_rate(clean_pool, CLI, "galactic", "1", today=TODAY)
    assert ei.value.field == "call_category"
    with pytest.raises(InvalidInput) as ei:
        await prov.add_rate(clean_pool, CLI, "local", "", today=TODAY, per_minute="-1")
    assert ei.value.field == "per_minute"
    with pytest.raises(InvalidInput, match="line 3"):
        await prov.import_rates(
            clean_pool,
            CLI,
            [
                (2, {"call_category": "local", "prefix": "", "per_minute": "0.1"}),
                (3, {"call_category": "local", "prefix": "x"}),
            ],
            today=TODAY,
        )
    n = await prov.import_rates(
        clean_pool,
        CLI,
        [
            (2, {"call_category": "local", "prefix": "", "per_minute": "0.1"}),
            (
                3,
                {
                    "call_category": "hmt",
                    "prefix": "853",
                    "per_minute": "0.9",
                    "valid_from": "2026-12-01",
                },
            ),
        ],
        today=TODAY,
    )
    assert n == 2 and len(await prov.list_rates(clean_pool)) == 4
    assert [
        (x.prefix, x.valid_from)
        for x in await prov.list_rates(clean_pool)
        if x.call_category != "international"
    ] == [("853", dt.date(2026, 12, 1)), ("", TODAY)]  # by category: hmt, local


async def test_sms_retry_and_lists(clean_pool: asyncpg.Pool) -> None:
    await prov.add_subscriber(clean_pool, CLI, "8613800000001", today=TODAY)
    sid = await clean_pool.fetchval(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, status, last_error,"
        " next_attempt_at) VALUES ('k1', '8613900000000', 'hi', 'failed', 'boom', $1)"
        " RETURNING id",
        NOW - dt.timedelta(days=1),
    )
    await clean_pool.execute(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, status, next_attempt_at)"
        " VALUES ('k2', '8613900000000', 'hi', 'delivered', $1)",
        NOW - dt.timedelta(days=1),
    )
    assert len(await prov.list_sms(clean_pool, status="failed")) == 1
    await prov.retry_sms(clean_pool, CLI, sid, now=NOW)
    row = await clean_pool.fetchrow(
        "SELECT status, last_error, next_attempt_at FROM sms_outbox WHERE id = $1", sid
    )
    assert (row["status"], row["last_error"], row["next_attempt_at"]) == ("queued", None, NOW)
    with pytest.raises(Conflict):
        await prov.retry_sms(clean_pool, CLI, sid, now=NOW)
    # An expired SMS that had used up its attempts is really sent again: the outbox hands it to
    # a sender (not expired again by the claim, a full attempt budget).
    from scp.state.outbox import PgOutbox

    exp = await clean_pool.fetchval(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, status, attempts,"
        " next_attempt_at, expires_at) VALUES ('k3', '8613900000001', 'late', 'expired', 8, $1,"
        " $1::timestamptz + interval '1 hour') RETURNING id",
        NOW - dt.timedelta(days=1),
    )
    await clean_pool.execute("UPDATE sms_outbox SET status = 'delivered' WHERE id = $1", sid)
    await prov.retry_sms(clean_pool, CLI, exp, now=NOW)
    box = PgOutbox(clean_pool)
    claimed = await box.claim(10, NOW)
    await box.flush()
    assert [(c.id, c.attempts) for c in claimed] == [(exp, 1)]
    with pytest.raises(NotFound):
        await prov.retry_sms(clean_pool, CLI, 999, now=NOW)
    with pytest.raises(InvalidInput):
        await prov.list_sms(clean_pool, status="lost")
    await clean_pool.execute(
        "INSERT INTO missed_call (caller, callee, occurred_at, reason) VALUES"
        " ('8613900000000', '8613800000001', $1::timestamptz - interval '1 minute', 'busy'),"
        " (NULL, '8613800000001', $1, 'not-reachable')",
        NOW,
    )
    mc = await prov.list_missed_calls(clean_pool, callee="8613800000001")
    assert [r["reason"] for r in mc] == ["not-reachable", "busy"]
    recent = await prov.list_missed_calls(
        clean_pool, callee="8613800000001", since=NOW - dt.timedelta(seconds=30)
    )
    assert [r["reason"] for r in recent] == ["not-reachable"]
    await clean_pool.execute(
        "INSERT INTO callback_request (caller, callee, requested_at)"
        " VALUES ('8613900000000', '8613800000001', $1)",
        NOW,
    )
    with pytest.raises(asyncpg.UniqueViolationError):  # one open request per pair
        await clean_pool.execute(
            "INSERT INTO callback_request (caller, callee, requested_at)"
            " VALUES ('8613900000000', '8613800000001', $1)",
            NOW,
        )
    assert len(await prov.list_callbacks(clean_pool, pending=True)) == 1


async def test_cdr_iteration(clean_pool: asyncpg.Pool) -> None:
    await clean_pool.execute(
        "INSERT INTO cdr (record_type, msisdn, callee, started_at, duration_s, charge)"
        " SELECT 'call', '8613800000001', '8613900000000',"
        " timestamptz '2026-11-01' + g * interval '1 hour', 60, 0.5 FROM generate_series(1, 30) g"
    )
    async with clean_pool.acquire() as conn, conn.transaction():
        rows = [
            r
            async for r in prov.iter_cdrs(
                conn,
                since=dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC),
                until=dt.datetime(2026, 11, 1, 20, tzinfo=dt.UTC),
            )
        ]
    assert len(rows) == 10 and rows[0]["started_at"].hour == 10


async def test_audit_and_change_roll_back_together(clean_pool: asyncpg.Pool) -> None:
    await prov.add_subscriber(clean_pool, CLI, "8613800000001", today=TODAY, imsi="460000000000001")
    await prov.add_subscriber(clean_pool, CLI, "8613800000002", today=TODAY)
    with pytest.raises(Conflict):  # the UPDATE fails: no audit row may survive
        await prov.update_subscriber(clean_pool, CLI, "8613800000002", imsi="460000000000001")
    assert len(await audit_rows(clean_pool)) == 2
    async with clean_pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await prov.add_subscriber(conn, CLI, "8613800000003", today=TODAY)
                raise RuntimeError("caller's transaction fails after the change")
    assert await clean_pool.fetchval("SELECT count(*) FROM subscriber") == 2
    assert len(await audit_rows(clean_pool)) == 2


async def test_outbox_claim_uses_partial_index(clean_pool: asyncpg.Pool) -> None:
    await clean_pool.execute(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, status, next_attempt_at)"
        " SELECT 'k' || g, '8613900000000', 't', CASE WHEN g % 50 = 0 THEN 'queued'"
        " ELSE 'delivered' END, $1 FROM generate_series(1, 5000) g",
        NOW,
    )
    await clean_pool.execute("ANALYZE sms_outbox")
    plan = "\n".join(
        r[0]
        for r in await clean_pool.fetch(
            "EXPLAIN SELECT id FROM sms_outbox WHERE status IN ('queued', 'sending')"
            " AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 10"
            " FOR UPDATE SKIP LOCKED",
            NOW,
        )
    )
    assert "sms_outbox_claim_idx" in plan
