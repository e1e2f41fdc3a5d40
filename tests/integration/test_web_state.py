"""The web tier's own tables stay bounded: a login page viewed by anyone writes no row, and
the purge (run by the node's retention and by ``mcn-scp web``) deletes expired sessions and
codes and the login attempts no window counts any more.

Real PostgreSQL, the real application over HTTP; the clock is the test's.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest

from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.flows import selfservice as flows
from scp.service.notifications import local_day
from scp.service.provisioning import Actor
from scp.state import web_store
from tests.integration.webclient import Browser, Clock, serve

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC)
CFG = parse_config(
    "[web]\nsession_idle = 600.0\nsession_lifetime = 3600.0\nlogin_window = 900.0\n"
    "code_ttl = 300.0\n[smpp]\nbackend = 'console'\n"
)
S = flows.WebSettings.from_config(CFG)
A, PIN_A = "8613800138000", "246813"
OPS = Actor("cli", "test")


async def rows(pool: asyncpg.Pool, table: str) -> int:
    return int(await pool.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 - fixed names


async def test_anonymous_login_pages_write_nothing(clean_pool: asyncpg.Pool) -> None:
    await prov.add_subscriber(
        clean_pool, OPS, A, today=local_day(NOW, CFG), services=("missed-call",), pin=PIN_A
    )
    await flows.add_operator(clean_pool, OPS, "alice", "agent", "alice-password")
    async with serve(CFG, clean_pool, Clock(NOW)) as base:
        for _ in range(10):  # each a new browser: no cookie
            async with Browser(base) as b:
                for url in ("/login", "/code", "/console/login"):
                    r = await b.get(url)
                    assert r.status_code == 200 and 'name="csrf"' in r.text, url
        assert await rows(clean_pool, "web_session") == 0
        async with Browser(base) as b:
            # the form's token is bound to this browser's cookie: another's is refused
            await b.get("/login")
            mine = b.csrf()
            async with Browser(base) as other:
                await other.get("/login")
                r = await other.post("/login", {"number": A, "pin": PIN_A}, csrf=mine)
                assert r.status_code == 403
            # the same page again keeps the browser's token, and the login works
            assert b.csrf(await b.get("/login")) == mine
            r = await b.post("/login", {"number": A, "pin": PIN_A})
            assert r.url.path == "/" and r.status_code == 200
            r = await b.console_login("alice", "alice-password")
            assert r.url.path == "/console/"
        # the two logins, and nothing else
        assert await rows(clean_pool, "web_session") == 2
        kinds = await clean_pool.fetch("SELECT kind, subject FROM web_session ORDER BY kind")
        assert [(k["kind"], k["subject"]) for k in kinds] == [
            ("operator", "alice"),
            ("subscriber", A),
        ]


async def test_a_forged_cookie_is_no_session(clean_pool: asyncpg.Pool) -> None:
    async with serve(CFG, clean_pool, Clock(NOW)) as base, Browser(base) as b:
        b.c.cookies.set("mcn_portal", "x" * 500, domain="127.0.0.1", path="/")
        r = await b.get("/login")
        assert r.status_code == 200
        assert (
            b.c.cookies.get("mcn_portal", domain="127.0.0.1") != "x" * 500
        )  # replaced by a token of ours
        r = await b.post("/login", {"number": A, "pin": "000000"})
        assert r.status_code == 200 and r.url.path == "/login"  # a form, answered (no 403)


async def seed(pool: asyncpg.Pool) -> None:
    """Sessions, attempts and codes, some past their time at NOW and some not."""
    old = NOW - dt.timedelta(hours=2)  # past a 1 h lifetime
    await flows.start_session(pool, "subscriber", A, old, S, via="pin")
    await flows.start_session(pool, "operator", "alice", old, S, via="password")
    await flows.start_session(pool, "subscriber", A, NOW - dt.timedelta(minutes=5), S, via="pin")
    await web_store.record_attempt(pool, ["number:x", "address:y"], NOW - dt.timedelta(days=2))
    # inside the day that counts codes: kept though older than login_window
    await web_store.record_attempt(pool, ["code:z"], NOW - dt.timedelta(hours=20))
    await web_store.record_attempt(pool, ["number:x"], NOW - dt.timedelta(minutes=1))
    async with pool.acquire() as conn:
        await web_store.put_code(conn, A, "h", old, old + S.code_ttl)
        await web_store.put_code(conn, "8613900139000", "h", NOW, NOW + S.code_ttl)


async def test_purge_deletes_only_what_is_past_its_time(clean_pool: asyncpg.Pool) -> None:
    await seed(clean_pool)
    gone = await flows.purge(clean_pool, now=NOW, s=S)
    assert gone == {"sessions": 2, "attempts": 2, "codes": 1}
    assert await rows(clean_pool, "web_session") == 1
    assert await rows(clean_pool, "web_attempt") == 2
    assert await clean_pool.fetchval("SELECT msisdn FROM web_code") == "8613900139000"
    assert await flows.purge(clean_pool, now=NOW, s=S) == {
        "sessions": 0,
        "attempts": 0,
        "codes": 0,
    }


async def test_run_purge_runs_at_once_then_every_interval(clean_pool: asyncpg.Pool) -> None:
    await seed(clean_pool)
    clock = Clock(NOW)
    stop = asyncio.Event()
    task = asyncio.create_task(flows.run_purge(clean_pool, S, clock, stop, 0.05))
    try:
        for _ in range(200):
            if await rows(clean_pool, "web_session") == 1:
                break
            await asyncio.sleep(0.05)
        assert await rows(clean_pool, "web_session") == 1
        clock.advance(hours=1)  # the last session's lifetime is over; the next pass sees it
        for _ in range(200):
            if await rows(clean_pool, "web_session") == 0:
                break
            await asyncio.sleep(0.05)
        assert await rows(clean_pool, "web_session") == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert task.done() and task.exception() is None
