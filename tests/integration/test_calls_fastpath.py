"""The lone missed call in one statement (migration 0030, ``flows.calls.write_records`` ->
``notifications.record_missed_call``) writes exactly what the transactional path writes
(missed call + ``notifications.on_missed_call``), with no forecast, a right one or any wrong
one; and a busy flow costs one statement for the InitialDP lookup and one for the missed call,
instead of about eleven."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import types
from typing import Any

import asyncpg
import pytest

from scp.codecs import cap
from scp.config import Config, parse_config
from scp.flows import calls as calls_flow
from scp.flows import notify as notifications
from scp.flows import provisioning as P
from scp.flows.calls import CallUser, write_missed_calls, write_records
from scp.service.calls import RecordMissedCall
from scp.service.dialogue import AC_CAP_V2_GSMSSF_SCF
from scp.service.notifications import MissedCallState, local_day
from scp.state import calls_store as store
from scp.state import notify_store
from tests.conftest import truncate_all

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("any_day")]

ADMIN = P.Actor("cli", "test")
T0 = dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC)  # 18:30 in Asia/Shanghai
DAY = local_day(T0, Config())  # every call of the scripts falls on it
SUB = "8613912345678"  # missed-call + busy, sms
NOSVC = "8613912345679"  # busy only: no-answer / not-reachable suppressed
NONE_MODE = "8613912345670"  # notify_mode none
EN = "8613912345671"  # English texts, other user group
A = "8613700000001"
B = "861012345678"

# (caller, callee, reason, seconds after T0): repeated busy attempts aggregate into one SMS,
# no-answer and not-reachable, unknown callers, suppressed recipients, an old open SMS.
SCRIPT = [
    (A, SUB, "busy", 0),
    (A, SUB, "busy", 10),
    (B, SUB, "busy", 12),
    (A, SUB, "busy", 30),
    (None, SUB, "busy", 31),
    (None, SUB, "busy", 32),
    (A, SUB, "no-answer", 40),
    (A, SUB, "no-answer", 41),
    (A, SUB, "not-reachable", 50),
    (B, SUB, "not-reachable", 51),
    (A, NOSVC, "busy", 60),
    (A, NOSVC, "no-answer", 61),
    (A, NOSVC, "not-reachable", 62),
    (A, NONE_MODE, "busy", 70),
    (A, NONE_MODE, "not-reachable", 71),
    (B, EN, "busy", 80),
    (B, EN, "busy", 81),
    (A, SUB, "busy", 200),
]

TABLES = {
    "missed_call": "SELECT id, caller, callee, occurred_at, reason, cause, call_ref, notified_at,"
    " notify_outcome FROM missed_call ORDER BY id",
    "sms_outbox": "SELECT id, idempotency_key, destination, source, text, status, attempts,"
    " next_attempt_at, expires_at FROM sms_outbox ORDER BY id",
    "hlr_alert": "SELECT msisdn, status, attempts, requested_at, next_attempt_at, last_error"
    " FROM hlr_alert ORDER BY msisdn",
}

CONFIGS = {
    "default": Config(),
    "no-ads-no-hlr": parse_config("[notify]\nad_segment_budget = 0\nalert_via_hlr = false\n"),
    "digest-2-segments": parse_config("[notify]\nad_segment_budget = 2\nbusy_window = 5.0\n"),
}


async def _setup(pool: asyncpg.Pool) -> None:
    await truncate_all(pool)
    for msisdn, kw in (
        (SUB, {"services": ("missed-call", "busy")}),
        (NOSVC, {"services": ("busy",)}),
        (NONE_MODE, {"services": ("missed-call",), "notify_mode": "none"}),
        (EN, {"services": ("missed-call", "busy"), "language": "en", "group": "vip"}),
    ):
        await P.add_subscriber(
            pool,
            ADMIN,
            msisdn,  # type: ignore[arg-type]
            today=DAY - dt.timedelta(days=30),
            **kw,
        )
    await P.add_ad(pool, ADMIN, "Ad for everyone", now=T0 - dt.timedelta(days=1), priority=1)
    await P.add_ad(
        pool, ADMIN, "VIP ad", now=T0 - dt.timedelta(days=1), priority=5, user_groups=("vip",)
    )
    await P.add_ad(
        pool, ADMIN, "Late ad", now=T0, priority=9, valid_from=T0 + dt.timedelta(seconds=100)
    )
    # a sender already holds an older busy SMS of B to SUB: a new window starts
    await pool.execute(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, attempts,"
        " next_attempt_at) VALUES ($1, $2, 'old', 1, $3)",
        f"busy:{SUB}:{B}:0",
        SUB,
        T0,
    )


async def _dump(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    return {k: [tuple(r) for r in await pool.fetch(q)] for k, q in TABLES.items()}


def _records(script: list[tuple[str | None, str, str, int]]) -> list[RecordMissedCall]:
    return [
        RecordMissedCall(
            caller,
            callee,
            reason,
            17 if reason == "busy" else None,
            f"scp-1:{i}",
            T0 + dt.timedelta(seconds=s),
        )
        for i, (caller, callee, reason, s) in enumerate(script)
    ]


async def _run(pool: asyncpg.Pool, cfg: Config, *, fast: bool, idp: bool = False) -> None:
    for rec in _records(SCRIPT):
        if idp:  # the InitialDP's lookup leaves the recipient forecast
            await store.load_callee(pool, rec.callee, rec.caller, DAY)
        if fast:
            await write_records(pool, [rec], cfg=cfg)
        else:
            async with pool.acquire() as conn, conn.transaction():
                mc = await conn.fetchval(
                    store.INSERT_MISSED_CALL,
                    rec.caller,
                    rec.callee,
                    rec.at,
                    rec.reason,
                    rec.cause,
                    rec.call_ref,
                )
                await notifications.on_missed_call(
                    conn,
                    missed_call_id=mc,
                    caller=rec.caller,
                    callee=rec.callee,
                    reason=rec.reason,
                    at=rec.at,
                    cfg=cfg,
                )


@pytest.mark.parametrize("name", sorted(CONFIGS))
async def test_fast_path_writes_what_the_transaction_writes(pool: asyncpg.Pool, name: str) -> None:
    cfg = CONFIGS[name]
    await _setup(pool)
    await _run(pool, cfg, fast=False)
    slow = await _dump(pool)
    # cold (no forecast), warm from the InitialDP lookups, then with the forecasts of the
    # previous run left over (all wrong: the database was reset)
    notify_store.forget_forecasts()
    for idp in (False, True, True):
        await _setup(pool)
        await _run(pool, cfg, fast=True, idp=idp)
        fast = await _dump(pool)
        for table in TABLES:
            assert [r for r in fast[table] if r not in slow[table]] == [], (table, idp)
            assert fast[table] == slow[table], table
    # the script does exercise aggregation, suppression, HLR alerts and ads
    assert any("3" in r[4] for r in slow["sms_outbox"])
    assert any(r[8] == "suppressed" for r in slow["missed_call"])
    if cfg.notify.ad_segment_budget > 0:
        assert any("VIP ad" in r[4] for r in slow["sms_outbox"])
        assert any("Ad for everyone" in r[4] for r in slow["sms_outbox"])
    if cfg.notify.alert_via_hlr:
        assert SUB in [r[0] for r in slow["hlr_alert"]]


async def test_wrong_forecasts_write_nothing_and_are_corrected(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = Config()
    await _setup(pool)
    await _run(pool, cfg, fast=False)
    slow = await _dump(pool)
    real = notify_store.forecast_missed_call
    made: list[int] = []

    def forecast(**kw: Any) -> MissedCallState | None:
        st = real(**kw)
        k = len(made) % 5
        made.append(k)
        if st is None or k == 0:
            return st
        # each a different lie: recipient, open SMS, count, first time, ads
        lies = [
            {},
            {"rcpt": (st.rcpt or "") + "x"},
            {"open_id": (st.open_id or 0) + 1000, "open_key": "busy:x:y:1"},
            {"count": st.count + 1},
            {"ads_digest": "0" * 32, "ads": ()},
        ]
        return dataclasses.replace(st, **lies[k])  # type: ignore[arg-type]

    monkeypatch.setattr(notify_store, "forecast_missed_call", forecast)
    for idp in (False, True):
        notify_store.forget_forecasts()
        await _setup(pool)
        await _run(pool, cfg, fast=True, idp=idp)
        assert await _dump(pool) == slow
    assert set(made) == {0, 1, 2, 3, 4}
    # a wrong forecast and no second attempt: nothing at all is written
    await _setup(pool)
    await store.load_callee(pool, SUB, A, DAY)
    before = await _dump(pool)
    made.clear()
    made.append(0)  # the next forecast lies about the recipient
    async with pool.acquire() as conn:
        mc = await notifications.record_missed_call(
            conn,
            caller=A,
            callee=SUB,
            reason="busy",
            cause=17,
            call_ref="x",
            at=T0,
            cfg=cfg,
            attempts=1,
        )
    assert mc is None and await _dump(pool) == before


async def test_a_busy_flow_costs_two_statements(pool: asyncpg.Pool) -> None:
    await _setup(pool)
    notify_store.forget_forecasts()
    seen: list[str] = []
    async with pool.acquire() as conn:
        # first use on a connection: asyncpg introspects the ad_rule[] type once
        await write_records(conn, [RecordMissedCall(B, SUB, "busy", 17, "warm", T0)], cfg=Config())

        def logger(q: Any) -> None:
            seen.append(q.query)

        conn.add_query_logger(logger)
        try:
            for i in range(3):  # InitialDP lookup, then the missed call
                await store.load_callee(conn, SUB, A, DAY)
                await write_records(
                    conn,
                    [
                        RecordMissedCall(
                            A, SUB, "busy", 17, f"scp-1:{i}", T0 + dt.timedelta(seconds=i)
                        )
                    ],
                    cfg=Config(),
                )
        finally:
            conn.remove_query_logger(logger)
    assert len(seen) == 6 and not any(q.strip().upper() in ("BEGIN", "COMMIT") for q in seen)
    texts = await pool.fetch(
        "SELECT text FROM sms_outbox WHERE idempotency_key LIKE $1", f"busy:{SUB}:{A}:%"
    )
    assert len(texts) == 1 and "3" in texts[0]["text"]


async def test_a_declined_statement_takes_the_transaction(pool: asyncpg.Pool) -> None:
    await _setup(pool)
    seen: list[bool] = []

    async def declined(conn: Any, **kw: Any) -> None:
        seen.append(conn.is_in_transaction())

    async def on_missed_call(conn: Any, **kw: Any) -> None:
        seen.append(conn.is_in_transaction())

    notify = types.SimpleNamespace(record_missed_call=declined, on_missed_call=on_missed_call)
    rec = RecordMissedCall(A, SUB, "busy", 17, "r", T0)
    await write_records(pool, [rec], cfg=Config(), notify=notify)
    assert seen == [False, True]  # the one statement outside, the hook inside the transaction
    # No notification flow: the missed call alone (another call's: the same one is once).
    rec = RecordMissedCall(A, SUB, "busy", 17, "r2", T0)
    mc = await write_records(pool, [rec], cfg=Config(), notify=None)
    assert mc is not None and await pool.fetchval("SELECT count(*) FROM missed_call") == 2
    assert await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE attempts = 0") == 0


def _random_script(seed: int) -> list[tuple[str | None, str, str, int, bool]]:
    """Seeded calls (caller, callee, reason, seconds, a sender claims the due SMS first)."""
    rnd = random.Random(seed)
    t = 0
    out = []
    for _ in range(60):
        t += rnd.choice((0, 1, 5, 20, 70))  # within and beyond the 60 s busy window
        out.append(
            (
                rnd.choice((A, B, None)),
                rnd.choice((SUB, NOSVC, NONE_MODE, EN)),
                rnd.choice(("busy", "busy", "no-answer", "not-reachable")),
                t,
                rnd.random() < 0.15,
            )
        )
    return out


@pytest.mark.parametrize("seed", range(4))
async def test_random_scripts_write_the_same(pool: asyncpg.Pool, seed: int) -> None:
    cfg = Config()
    script = _random_script(seed)

    async def run(fast: bool) -> dict[str, list[tuple[Any, ...]]]:
        await _setup(pool)
        for i, (caller, callee, reason, s, claim) in enumerate(script):
            at = T0 + dt.timedelta(seconds=s)
            if claim:  # a sender takes what is due: the forecast of an open SMS turns wrong
                await pool.execute(
                    "UPDATE sms_outbox SET attempts = attempts + 1,"
                    " status = 'sending' WHERE status = 'queued'"
                    " AND next_attempt_at <= $1",
                    at,
                )
            rec = RecordMissedCall(caller, callee, reason, None, f"r:{i}", at)
            if fast:
                await store.load_callee(pool, callee, caller, DAY)
                await write_records(pool, [rec], cfg=cfg)
            else:
                async with pool.acquire() as conn, conn.transaction():
                    mc = await conn.fetchval(
                        store.INSERT_MISSED_CALL,
                        rec.caller,
                        rec.callee,
                        rec.at,
                        rec.reason,
                        rec.cause,
                        rec.call_ref,
                    )
                    await notifications.on_missed_call(
                        conn,
                        missed_call_id=mc,
                        caller=rec.caller,
                        callee=rec.callee,
                        reason=rec.reason,
                        at=rec.at,
                        cfg=cfg,
                    )
        return await _dump(pool)

    slow = await run(False)
    assert await run(True) == slow


async def test_concurrent_attempts_make_one_sms(pool: asyncpg.Pool) -> None:
    # the advisory lock serialises attempts of one caller: one SMS counting every call
    await _setup(pool)
    cfg = Config()

    async def one(i: int) -> int | None:
        async with pool.acquire() as conn:
            await store.load_callee(conn, SUB, A, DAY)
            return await write_records(
                conn,
                [RecordMissedCall(A, SUB, "busy", 17, f"c:{i}", T0 + dt.timedelta(milliseconds=i))],
                cfg=cfg,
            )

    ids = await asyncio.gather(*(one(i) for i in range(20)))
    assert len(set(ids)) == 20
    rows = await pool.fetch(
        "SELECT text FROM sms_outbox WHERE idempotency_key LIKE $1", f"busy:{SUB}:{A}:%"
    )
    assert len(rows) == 1 and "20次" in rows[0]["text"]
    assert (
        await pool.fetchval("SELECT count(*) FROM missed_call WHERE notify_outcome = 'queued'")
        == 20
    )


# -- the missed calls of one pass in one statement (migration 0280) ---------------------------


def _normalised(dump: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """A dump without the ids, which follow the order of inserts: each missed call named by its
    call reference, an SMS key's missed-call id by that call's reference."""
    ref = {r[0]: r[6] for r in dump["missed_call"]}
    calls = sorted((r[1:] for r in dump["missed_call"]), key=lambda r: r[5])  # call_ref
    sms = []
    for r in dump["sms_outbox"]:
        head, _, last = r[1].rpartition(":")
        key = f"{head}:{ref[int(last)]}" if last.isdigit() and int(last) in ref else r[1]
        sms.append((key, *r[2:]))
    sms.sort(key=lambda r: r[0])  # the keys are unique
    return {"missed_call": calls, "sms_outbox": sms, "hlr_alert": dump["hlr_alert"]}


@pytest.mark.parametrize("name", sorted(CONFIGS))
async def test_a_pass_writes_what_its_calls_write_one_by_one(pool: asyncpg.Pool, name: str) -> None:
    """The script's calls in passes of five (each pass's calls close enough in time to be
    concurrent): what the passes write is what the calls write one after the other, the
    repeated busy attempts of one caller in one pass included (the second one's forecast is
    wrong: decided again, written in a second round)."""
    cfg = CONFIGS[name]
    records = _records(SCRIPT)
    await _setup(pool)
    for rec in records:
        await store.load_callee(pool, rec.callee, rec.caller, DAY)
        await write_records(pool, [rec], cfg=cfg)
    one_by_one = _normalised(await _dump(pool))
    for idp in (False, True):
        notify_store.forget_forecasts()
        await _setup(pool)
        for i in range(0, len(records), 5):
            batch = records[i : i + 5]
            if idp:
                await store.load_callees(pool, [(r.callee, r.caller, DAY) for r in batch])
            async with pool.acquire() as conn:
                ids = await write_missed_calls(conn, batch, cfg=cfg, notify=notifications)
            assert None not in ids and len(set(ids)) == len(batch)
        assert _normalised(await _dump(pool)) == one_by_one, idp
    assert any("3" in r[3] for r in one_by_one["sms_outbox"])  # aggregation was exercised


async def _subscribers(pool: asyncpg.Pool, numbers: list[str]) -> None:
    """``numbers`` as subscribers to missed-call and busy since a month before DAY."""
    for s in numbers:
        await P.add_subscriber(
            pool,
            ADMIN,
            s,
            today=DAY - dt.timedelta(days=30),
            services=("missed-call", "busy"),  # type: ignore[arg-type]
        )


async def test_a_pass_is_one_statement_and_one_commit(pool: asyncpg.Pool) -> None:
    """Six calls of one pass to six subscribers (busy, no-answer, not-reachable), forecasts
    right: one statement, no BEGIN / COMMIT of ours, and every row written (the missed calls,
    their SMS, the HLR alerts) carries the same transaction id: one commit. Each call gets its
    own missed call's id."""
    await _setup(pool)
    subs = [f"86139000000{i:02d}" for i in range(6)]
    await _subscribers(pool, subs)
    notify_store.forget_forecasts()  # none left by an earlier test (its rows are gone)
    reasons = ["busy", "no-answer", "not-reachable"] * 2
    records = [
        RecordMissedCall(A, s, r, None, f"pass:{i}", T0 + dt.timedelta(milliseconds=i))
        for i, (s, r) in enumerate(zip(subs, reasons, strict=True))
    ]
    await store.load_callees(pool, [(r.callee, r.caller, DAY) for r in records])
    seen: list[str] = []

    def logger(q: Any) -> None:
        seen.append(q.query)

    async with pool.acquire() as conn:
        # first use on a connection: asyncpg introspects the result's ad_rule[] type once;
        # and the ads are read (the forecast of the next write)
        warm = [RecordMissedCall(B, SUB, "busy", 17, f"warm:{i}", T0) for i in range(2)]
        await write_missed_calls(conn, warm, cfg=Config(), notify=notifications)
        conn.add_query_logger(logger)
        try:
            ids = await write_missed_calls(conn, records, cfg=Config(), notify=notifications)
        finally:
            conn.remove_query_logger(logger)
    assert len(seen) == 1 and "mcn_record_missed_calls" in seen[0], seen
    rows = await pool.fetch(
        "SELECT id, call_ref, xmin::text AS tx FROM missed_call WHERE call_ref LIKE 'pass:%'"
    )
    assert {r["call_ref"]: r["id"] for r in rows} == {
        r.call_ref: i for r, i in zip(records, ids, strict=True)
    }
    txs = {r["tx"] for r in rows}
    txs |= {
        r["tx"]
        for r in await pool.fetch(
            "SELECT xmin::text AS tx FROM sms_outbox WHERE destination = ANY($1)", subs
        )
    }
    txs |= {
        r["tx"]
        for r in await pool.fetch(
            "SELECT xmin::text AS tx FROM hlr_alert WHERE msisdn = ANY($1)", subs
        )
    }
    assert len(txs) == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE destination = ANY($1)", subs)
        == 4
    )  # busy and no-answer: at once (held for the busy window)
    assert await pool.fetchval("SELECT count(*) FROM hlr_alert WHERE msisdn = ANY($1)", subs) == 2


async def test_a_bad_call_fails_its_statement_and_writes_nothing(pool: asyncpg.Pool) -> None:
    """One call of the pass is to a number that is no longer a subscriber (deleted since its
    InitialDP): the statement fails as a whole and writes nothing of the others either (the
    call path then writes each on its own: CallUser tests below)."""
    await _setup(pool)
    records = [
        RecordMissedCall(A, SUB, "busy", 17, "bad:0", T0),
        RecordMissedCall(A, "8613999999999", "busy", 17, "bad:1", T0),
        RecordMissedCall(B, EN, "busy", 17, "bad:2", T0),
    ]
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await write_missed_calls(conn, records, cfg=Config(), notify=notifications)
    assert await pool.fetchval("SELECT count(*) FROM missed_call") == 0
    assert await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE attempts = 0") == 0


class _Node:
    """What the call path needs of a node to write a call's records: its clocks."""

    def clock(self) -> float:
        return asyncio.get_running_loop().time()

    def wall_now(self) -> dt.datetime:
        return T0

    def tc_send(self, req: object) -> None:
        raise AssertionError("nothing is sent by a write")


async def test_calls_of_a_pass_write_together_and_a_bad_one_alone(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call path (CallUser) with its missed calls asked for in one pass: one statement
    and one commit for all, each call with its own id. Then a pass with one call whose callee
    was deleted since its InitialDP: the batch fails, each call is written on its own, the
    others are written and the bad one alone is counted lost."""
    await _setup(pool)
    notify_store.forget_forecasts()
    subs = [f"86139000001{i:02d}" for i in range(5)]
    await _subscribers(pool, subs)
    statements: list[int] = []
    real = notify_store.record_missed_calls

    async def counted(conn: Any, decisions: Any) -> Any:
        statements.append(len(decisions))
        return await real(conn, decisions)

    monkeypatch.setattr(notify_store, "record_missed_calls", counted)
    user = CallUser(_Node(), pool, Config())
    try:

        async def a_pass(tag: str, bad: int | None = None, cause: int = 17) -> list[Any]:
            # the InitialDPs' read leaves the forecasts the write is decided on
            await store.load_callees(pool, [(s, A, DAY) for s in subs])
            ctxs = [
                calls_flow._Ctx(
                    call=calls_flow._Leg(i, AC_CAP_V2_GSMSSF_SCF, cap.CODEC), proto="cap2"
                )
                for i in range(len(subs))
            ]
            deadline = asyncio.get_running_loop().time() + 5
            await asyncio.gather(
                *(
                    user._write(
                        ctx,
                        [
                            RecordMissedCall(
                                A, s, "busy", cause if i == bad else 17, f"{tag}:{i}", T0
                            )
                        ],
                        deadline,
                    )
                    for i, (ctx, s) in enumerate(zip(ctxs, subs, strict=True))
                )
            )
            return ctxs

        await a_pass("warm")  # a process's first write reads the ads to forecast them
        statements.clear()
        ctxs = await a_pass("together")
        assert statements == [len(subs)]
        rows = await pool.fetch(
            "SELECT id, call_ref, xmin::text AS tx FROM missed_call WHERE call_ref LIKE 'together:%'"
        )
        assert sorted(r["id"] for r in rows) == sorted(c.missed_call_id for c in ctxs)
        assert len({r["tx"] for r in rows}) == 1
        assert not user.stats.records_lost and not user.stats.records_in_doubt

        # a value the statement cannot take (a smallint cause out of range): the batch fails
        # before anything is sent, each call is written on its own, the bad one alone fails
        statements.clear()
        ctxs = await a_pass("alone", bad=1, cause=70_000)
        assert statements[0] == len(subs) and len(statements) == 1 + len(subs)
        await _written_alone(pool, "alone", subs, bad=subs[1])
        assert [c.missed_call_id is None for c in ctxs] == [False, True, False, False, False]
        assert user.stats.records_lost == {"missed_call": 1} and not user.stats.records_in_doubt

        # a callee deleted since its InitialDP: the statement declines that call (no such
        # recipient: nothing of it written) and writes the others; decided again, its own
        # round fails on the missed call's foreign key: written on its own, it is lost alone
        await pool.execute("DELETE FROM subscriber WHERE msisdn = $1", subs[3])
        statements.clear()
        ctxs = await a_pass("deleted", bad=3)
        assert statements[:2] == [len(subs), 1]
        rows = await pool.fetch(
            "SELECT callee, xmin::text AS tx FROM missed_call WHERE call_ref LIKE 'deleted:%'"
        )
        assert sorted(r["callee"] for r in rows) == [s for s in subs if s != subs[3]]
        assert len({r["tx"] for r in rows}) == 1
        assert [c.missed_call_id is None for c in ctxs] == [False, False, False, True, False]
        assert user.stats.records_lost == {"missed_call": 2} and not user.stats.records_in_doubt
    finally:
        await user.aclose()


async def _written_alone(pool: asyncpg.Pool, tag: str, subs: list[str], *, bad: str) -> None:
    """Every call of the pass but ``bad`` written, each in its own transaction with its SMS."""
    written = await pool.fetch(
        "SELECT id, callee, xmin::text AS tx FROM missed_call WHERE call_ref LIKE $1", f"{tag}:%"
    )
    assert sorted(r["callee"] for r in written) == [s for s in subs if s != bad]
    assert len({r["tx"] for r in written}) == len(subs) - 1  # one commit each
    sms = {
        r["destination"]: r["tx"]
        for r in await pool.fetch(
            "SELECT destination, xmin::text AS tx FROM sms_outbox WHERE destination = ANY($1)",
            subs,
        )
    }
    assert all(sms[r["callee"]] == r["tx"] for r in written)  # the SMS text updated with it
