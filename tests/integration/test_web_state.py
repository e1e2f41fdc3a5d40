"""The web tier's own tables stay bounded: a login page viewed by anyone writes no row, and
the purge (run by the node's retention and by ``mcn-scp web``) deletes expired sessions and
codes and the login attempts no window counts any more.

Real PostgreSQL, the real application over HTTP; the clock is the test's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

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


# -- the limits of sessions, logins and codes, over HTTP with the test's clock ----------------


def limits(**web: float) -> Any:
    """CFG with some [web] keys changed."""
    body = "".join(f"{k} = {v!r}\n" for k, v in web.items())
    return parse_config(f"[web]\n{body}[smpp]\nbackend = 'console'\n")


async def subscriber(pool: asyncpg.Pool, msisdn: str = A, pin: str | None = PIN_A) -> None:
    await prov.add_subscriber(
        pool, OPS, msisdn, today=local_day(NOW, CFG), services=("missed-call",), pin=pin
    )


async def test_a_session_ends_at_its_lifetime_however_busy(clean_pool: asyncpg.Pool) -> None:
    await subscriber(clean_pool)
    cfg = limits(session_idle=600.0, session_lifetime=3600.0)
    clock = Clock(NOW)
    async with serve(cfg, clean_pool, clock) as base, Browser(base) as b:
        assert (await b.portal_login(A, PIN_A)).url.path == "/"
        for _ in range(7):  # a request every 500 s: never idle, 3500 s in all
            clock.advance(seconds=500)
            assert (await b.get("/missed")).url.path == "/missed"
        clock.advance(seconds=101)  # 3601 s after the login
        assert (await b.get("/missed")).url.path == "/login"


async def test_logins_are_throttled_per_number(clean_pool: asyncpg.Pool) -> None:
    await subscriber(clean_pool)
    await subscriber(clean_pool, "8613900139000", "135792")
    cfg = limits(login_max_per_number=2, login_max_per_address=100, login_window=900.0)
    clock = Clock(NOW)
    async with serve(cfg, clean_pool, clock) as base, Browser(base) as b:
        for _ in range(2):
            assert "e=wrong" in str((await b.portal_login(A, "000000")).url)
        r = await b.portal_login(A, PIN_A)  # the right PIN, but this number is throttled
        assert "e=throttled" in str(r.url)
        assert (await prov.get_subscriber(clean_pool, A)).pin_failed_attempts == 2
        # the address is not: another number logs in from the same browser
        assert (await b.portal_login("8613900139000", "135792")).url.path == "/"
        await b.post("/logout", {})
        clock.advance(seconds=901)
        assert (await b.portal_login(A, PIN_A)).url.path == "/"


async def code_sent(pool: asyncpg.Pool, msisdn: str) -> str:
    """The code of the number's last code SMS."""
    text = await pool.fetchval(
        "SELECT text FROM sms_outbox WHERE destination = $1 ORDER BY id DESC LIMIT 1", msisdn
    )
    m = re.search(r"(?<!\d)\d{6}(?!\d)", text or "")
    assert m, text
    return m.group(0)


async def ask_code(b: Browser, clock: Clock, number: str) -> str:
    clock.advance(seconds=1)  # code_interval = 0 here: only the same instant is too soon
    await b.get("/code")
    r = await b.post("/code", {"number": number})
    return "sent" if "m=code-sent" in str(r.url) else "throttled"


async def test_codes_expire_allow_five_tries_and_are_limited_a_day(
    clean_pool: asyncpg.Pool,
) -> None:
    await subscriber(clean_pool, pin=None)
    cfg = limits(
        code_ttl=300.0,
        code_interval=0.0,
        code_max_per_day=2,
        login_max_per_number=100,
        login_max_per_address=1000,
    )
    clock = Clock(NOW)
    async with serve(cfg, clean_pool, clock) as base, Browser(base) as b:
        # five tries: five wrong ones spend the code, the right one is refused after them
        assert await ask_code(b, clock, A) == "sent"
        code = await code_sent(clean_pool, A)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        for _ in range(5):
            r = await b.post("/code/verify", {"number": A, "code": wrong})
            assert "e=wrong-code" in str(r.url)
        r = await b.post("/code/verify", {"number": A, "code": code})
        assert "e=wrong-code" in str(r.url)
        # the second code of the day, past its code_ttl
        assert await ask_code(b, clock, A) == "sent"
        code = await code_sent(clean_pool, A)
        clock.advance(seconds=301)
        r = await b.post("/code/verify", {"number": A, "code": code})
        assert "e=wrong-code" in str(r.url)
        # a third within the day is refused, and no SMS goes
        assert await ask_code(b, clock, A) == "throttled"
        assert await rows(clean_pool, "sms_outbox") == 2
        clock.advance(days=1)
        assert await ask_code(b, clock, A) == "sent"
        # four right tries after four wrong ones: the fifth try is still good
        code = await code_sent(clean_pool, A)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        for _ in range(4):
            await b.post("/code/verify", {"number": A, "code": wrong})
        r = await b.post("/code/verify", {"number": A, "code": code})
        assert r.url.path == "/pin"


async def test_codes_are_limited_per_client_address(clean_pool: asyncpg.Pool) -> None:
    cfg = limits(code_interval=0.0, code_max_per_day=2)  # 8 a day from one address
    clock = Clock(NOW)
    async with serve(cfg, clean_pool, clock) as base, Browser(base) as b:
        numbers = [f"86135001350{i:02d}" for i in range(9)]
        assert [await ask_code(b, clock, n) for n in numbers] == ["sent"] * 8 + ["throttled"]
        assert await rows(clean_pool, "sms_outbox") == 8
        clock.advance(days=1, seconds=1)
        assert await ask_code(b, clock, numbers[8]) == "sent"


async def test_agents_see_that_a_code_went_never_the_code(clean_pool: asyncpg.Pool) -> None:
    await subscriber(clean_pool)
    await flows.add_operator(clean_pool, OPS, "alice", "agent", "alice-password")
    clock = Clock(NOW)
    async with serve(CFG, clean_pool, clock) as base, Browser(base) as b:
        assert await ask_code(b, clock, A) == "sent"
        code = await code_sent(clean_pool, A)
        await b.console_login("alice", "alice-password")
        await b.get("/lang/en")
        r = await b.get(f"/console/subscribers/{A}")
        assert 'id="sms-table"' in r.text and "One-time login code (not shown)" in r.text
        assert code not in r.text
