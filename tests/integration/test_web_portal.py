"""The subscriber portal and the operator console from outside, over HTTP, as a browser with
scripts off uses them: logins, sessions, CSRF, every function, authorization and escaping.

Real PostgreSQL, the real application on a real socket (uvicorn), real HTTP (httpx). The web
tier's clock is the test's (fixed ``NOW``, moved where expiry is the point), so nothing here
depends on the day it runs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from scp.config import parse_config
from scp.flows import billing, reports
from scp.flows import provisioning as prov
from scp.flows import selfservice as flows
from scp.flows import voicemail as vm
from scp.service.notifications import local_day
from scp.service.provisioning import Actor, NotFound
from scp.web import console, portal
from tests.integration.api_rig import wav
from tests.integration.webclient import Browser, Clock, serve

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC)  # 18:30 in Shanghai
CFG = parse_config(
    "[web]\nlogin_max_per_address = 12\ncode_interval = 60.0\nsession_idle = 600.0\n"
    "[smpp]\nbackend = 'console'\n"
)
A, B = "8613800138000", "8613900139000"
PIN_A, PIN_B = "246813", "135792"
CALLER = "8613700001111"
OPS = Actor("cli", "test")


@pytest_asyncio.fixture(loop_scope="session")
async def web(clean_pool: asyncpg.Pool) -> AsyncIterator[tuple[str, Clock, asyncpg.Pool]]:
    clock = Clock(NOW)
    today = local_day(NOW, CFG)
    for msisdn, pin in ((A, PIN_A), (B, PIN_B)):
        await prov.add_subscriber(
            clean_pool, OPS, msisdn, today=today, services=("missed-call",), pin=pin, language="zh"
        )
    await flows.add_operator(clean_pool, OPS, "alice", "agent", "alice-password")
    await flows.add_operator(clean_pool, OPS, "sam", "supervisor", "sam-password")
    async with serve(CFG, clean_pool, clock, trusted_proxies=("127.0.0.1",)) as base:
        yield base, clock, clean_pool


async def missed(
    pool: Any, caller: str | None, callee: str, at: dt.datetime, reason: str = "busy"
) -> None:
    await pool.execute(
        "INSERT INTO missed_call (caller, callee, occurred_at, reason) VALUES ($1, $2, $3, $4)",
        caller,
        callee,
        at,
        reason,
    )


def text_of(r: httpx.Response) -> str:
    """The page's text without tags (what a reader sees)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r.text))


# -- logins and sessions ---------------------------------------------------------------------------


PORTAL_PAGES = [
    "/",
    "/missed",
    "/callbacks",
    "/voicemail",
    "/services",
    "/blacklist",
    "/settings",
    "/pin",
    "/charges",
]
CONSOLE_PAGES = [
    "/console/",
    f"/console/subscribers/{A}",
    "/console/calls?number=13800138000",
    "/console/enrol",
    "/console/operators",
    "/console/ads",
    "/console/rates",
    "/console/products",
    "/console/audit",
    "/console/dashboard",
]


async def test_a_logged_out_browser_gets_the_login_page(web: Any) -> None:
    base, _, _ = web
    async with Browser(base) as b:
        for url in PORTAL_PAGES:
            r = await b.get(url)
            assert r.url.path == "/login" and 'id="login"' in r.text, url
            assert r.url.params["next"] == url
        for url in CONSOLE_PAGES:
            r = await b.get(url)
            assert r.url.path == "/console/login" and 'id="login"' in r.text, url
        # and a form posted without a session is refused before anything happens
        r = await b.c.post("/blacklist", data={"op": "add", "number": CALLER, "csrf": "x"})
        assert r.status_code == 403
    assert await prov.blacklist_list(web[2], A) == []


async def test_subscriber_logs_in_with_the_ivr_pin_and_uses_every_function(web: Any) -> None:
    base, clock, pool = web
    await missed(pool, CALLER, A, NOW - dt.timedelta(hours=2))
    await missed(pool, CALLER, A, NOW - dt.timedelta(hours=1), "not-reachable")
    await missed(pool, None, A, NOW - dt.timedelta(minutes=5), "no-answer")
    await missed(pool, CALLER, A, NOW - dt.timedelta(hours=30))  # outside the 24 h window
    await missed(pool, "8613700002222", B, NOW - dt.timedelta(hours=1))  # someone else's
    async with Browser(base) as b:
        r = await b.portal_login("13800138000", PIN_A)  # national form is fine
        assert r.url.path == "/" and "来电提醒" in r.text
        cookie = r.history[0].headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP, no proxy said HTTPS
        assert "2" in text_of(r)  # two callers in the window
        r = await b.get("/missed")
        rows = re.findall(r"<tr><td>([^<]*)</td><td class=\"num\">(\d+)</td>", r.text)
        assert rows == [("未知号码", "1"), ("13700001111", "2")]
        assert "8613700002222" not in r.text and "13700002222" not in r.text
        assert "遇忙提示" in r.text and "无法接通" in r.text  # the reasons, in Chinese
        # English pages on request, and the subscriber's preference is what SMS use
        r = await b.get("/lang/en?next=/missed")
        assert r.url.path == "/missed" and "Missed calls" in r.text and "unknown number" in r.text
        # services: switch busy on, then missed-call off
        await b.get("/services")
        r = await b.post("/services", {"service": "busy", "state": "on"})
        assert "Saved." in r.text and 'data-service="busy" data-state="on"' in r.text
        r = await b.post("/services", {"service": "missed-call", "state": "off"})
        sub = await prov.get_subscriber(pool, A)
        assert sub.active_services(local_day(NOW, CFG)) == ("busy",)
        # blacklist: a number and a prefix, then one removed
        await b.get("/blacklist")
        await b.post("/blacklist", {"op": "add", "number": "13700001111"})
        r = await b.post("/blacklist", {"op": "add", "number": "8610", "prefix": "1"})
        assert {(e.number, e.kind) for e in await prov.blacklist_list(pool, A)} == {
            ("8613700001111", "exact"),
            ("8610", "prefix"),
        }
        r = await b.post("/blacklist", {"op": "del", "number": "8610", "kind": "prefix"})
        assert "Removed." in r.text
        r = await b.post("/blacklist", {"op": "add", "number": "12ab"})
        assert "Please check the value" in r.text and 'id="blacklist"' in r.text
        # settings: forward-to, notification mode, language
        await b.get("/settings")
        await b.post("/settings", {"field": "forward_to", "value": "13600001111"})
        await b.post("/settings", {"field": "notify_mode", "value": "digest"})
        r = await b.post("/settings", {"field": "language", "value": "en"})
        sub = await prov.get_subscriber(pool, A)
        assert (sub.forward_to, sub.notify_mode, sub.language) == ("8613600001111", "digest", "en")
        r = await b.post("/settings", {"field": "notify_mode", "value": "loud"})
        assert "Please check the value" in r.text
        # callbacks, voicemail, charges
        await pool.execute(
            "INSERT INTO callback_request (caller, callee, requested_at) VALUES ($1, $2, $3)",
            CALLER,
            A,
            NOW,
        )
        r = await b.get("/callbacks")
        assert "13700001111" in r.text
        r = await b.get("/voicemail")
        assert 'id="voicemail-list"' not in r.text and 'id="voicemail-notify"' in r.text
        await pool.execute(
            "INSERT INTO cdr (record_type, msisdn, service, started_at, charge)"
            " VALUES ('sms', $1, 'sms-command:cx', $2, 0.1), ('fee', $3, 'x', $2, 5)",
            A,
            NOW,
            B,
        )
        r = await b.get("/charges")
        assert "sms-command:cx" in r.text and "0.1" in text_of(r) and "5.0000" not in r.text
        # a new PIN, which the IVR's check takes from now on
        await b.get("/pin")
        r = await b.post("/pin", {"old": PIN_A, "new": "777888", "again": "777888"})
        assert "Your new PIN is set" in r.text
        check = await prov.verify_pin(pool, Actor("ivr", A), A, "777888")
        assert check.outcome == "ok"
    audit = await pool.fetch(
        "SELECT channel, actor, action FROM audit_log WHERE entity_key = $1 AND channel = 'web'", A
    )
    assert {(r["channel"], r["actor"]) for r in audit} == {("web", A)}
    assert {"enable-service", "disable-service", "update", "set-pin"} <= {
        r["action"] for r in audit
    }


async def test_three_wrong_pins_lock_the_portal_and_the_ivr(web: Any) -> None:
    base, _, pool = web
    async with Browser(base) as b:
        for _ in range(3):
            r = await b.portal_login(B, "000000")
            assert r.url.path == "/login"
        assert "three wrong tries" in r.text or "三次" in r.text
        r = await b.portal_login(B, PIN_B)  # the right PIN now: locked
        assert r.url.path == "/login" and "locked" in str(r.url)
    # the IVR's check (channel ivr) refuses the right PIN too
    check = await prov.verify_pin(pool, Actor("ivr", B), B, PIN_B)
    assert check.outcome == "locked"
    # an agent unlocks it; the audit log names the agent
    async with Browser(base) as agent:
        await agent.console_login("alice", "alice-password")
        r = await agent.get(f"/console/subscribers/{B}")
        assert 'data-locked="yes"' in r.text
        r = await agent.post(f"/console/subscribers/{B}/pin", {"op": "unlock"})
        assert 'data-locked="no"' in r.text and "密码已解锁。" in r.text
    assert (await prov.verify_pin(pool, Actor("ivr", B), B, PIN_B)).outcome == "ok"
    async with Browser(base) as sup:
        await sup.console_login("sam", "sam-password")
        r = await sup.get(f"/console/audit?subscriber={B}&agent=alice")
        assert re.search(r'<td class="actor">alice</td><td class="action">unlock-pin</td>', r.text)


async def test_sessions_expire_and_cookies_follow_the_proxy(web: Any) -> None:
    base, clock, _ = web
    async with Browser(base) as b:
        r = await b.portal_login(A, PIN_A)
        assert r.url.path == "/"
        clock.advance(seconds=590)
        assert (await b.get("/missed")).url.path == "/missed"  # seen: the idle time starts again
        clock.advance(seconds=590)
        assert (await b.get("/missed")).url.path == "/missed"
        clock.advance(seconds=700)  # idle longer than [web] session_idle (600 s)
        assert (await b.get("/missed")).url.path == "/login"
        # logout ends the session on the server, not only in this browser
        await b.portal_login(A, PIN_A)
        token = b.c.cookies.get("mcn_portal")
        await b.post("/logout", {})
        async with Browser(base) as thief:
            thief.c.cookies.set("mcn_portal", token or "")
            assert (await thief.get("/")).url.path == "/login"
    # a trusted proxy (127.0.0.1 here) saying HTTPS makes the cookies Secure
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


async def test_csrf_is_checked_on_every_form(web: Any) -> None:
    base, _, pool = web
    async with Browser(base) as a, Browser(base) as other:
        await a.portal_login(A, PIN_A)
        await other.portal_login(B, PIN_B)
        await a.get("/blacklist")
        for token in ("", "forged", other.csrf(await other.get("/blacklist"))):
            r = await a.post("/blacklist", {"op": "add", "number": CALLER}, csrf=token)
            assert r.status_code == 403
        r = await a.c.post("/login", data={"number": A, "pin": PIN_A})  # no token at all
        assert r.status_code == 403
    assert await prov.blacklist_list(pool, A) == []


async def test_a_subscriber_reaches_only_their_own_data(web: Any) -> None:
    base, _, pool = web
    await missed(pool, CALLER, B, NOW - dt.timedelta(hours=1))
    await missed(pool, "8613755556666", A, NOW - dt.timedelta(hours=1))
    async with Browser(base) as b:
        await b.portal_login(A, PIN_A)
        await b.get("/blacklist")
        # a form field naming another subscriber changes nothing of theirs
        await b.post("/blacklist", {"op": "add", "number": CALLER, "owner": B, "msisdn": B})
        assert await prov.blacklist_list(pool, B) == []
        assert [e.number for e in await prov.blacklist_list(pool, A)] == [CALLER]
        # neither does a URL: the missed calls shown are the session's (A's call from
        # 13755556666), never B's (from 13700001111) whatever the query names; the console
        # is another site with its own login
        for url in (f"/missed?msisdn={B}", f"/missed?callee={B}", f"/missed?number={B}"):
            r = await b.get(url)
            assert r.status_code == 200 and r.url.path == "/missed", url
            assert "13755556666" in r.text and "13700001111" not in r.text, url
        r = await b.get(f"/console/subscribers/{B}")
        assert r.url.path == "/console/login"
        r = await b.c.post(
            f"/console/subscribers/{B}/services",
            data={"csrf": b.csrf(await b.get("/services")), "service": "busy", "state": "on"},
        )
        assert r.status_code == 403
    assert "busy" not in (await prov.get_subscriber(pool, B)).active_services(local_day(NOW, CFG))


async def test_an_agent_cannot_do_a_supervisors_work(web: Any) -> None:
    base, _, pool = web
    async with Browser(base) as agent:
        r = await agent.console_login("alice", "alice-password")
        assert r.url.path == "/console/" and "Dashboard" not in r.text and "统计图表" not in r.text
        for url in (
            "/console/operators",
            "/console/ads",
            "/console/rates",
            "/console/products",
            "/console/audit",
            "/console/dashboard",
        ):
            r = await agent.get(url)
            assert r.status_code == 403, url
        await agent.get("/console/")
        for url, data in (
            (
                "/console/operators",
                {"name": "mallory", "role": "supervisor", "password": "12345678"},
            ),
            ("/console/ads", {"text": "buy now"}),
            ("/console/rates", {"call_category": "local", "per_sms": "9"}),
            ("/console/operators/sam/delete", {}),
        ):
            r = await agent.post(url, data)
            assert r.status_code == 403, url
    assert [o.name for o in await flows.list_operators(pool)] == ["alice", "sam"]
    assert await prov.list_ads(pool) == [] and await prov.list_rates(pool) == []
    # a subscriber's session is no operator's
    async with Browser(base) as sub:
        await sub.portal_login(A, PIN_A)
        assert (await sub.get("/console/")).url.path == "/console/login"


async def test_output_is_escaped(web: Any) -> None:
    base, _, pool = web
    evil = "<script>alert(1)</script>"
    await missed(pool, evil, A, NOW - dt.timedelta(minutes=1))
    await prov.add_ad(pool, OPS, evil, now=NOW)
    async with pool.acquire() as conn:
        await prov.audit(conn, Actor("cli", evil), "test", "subscriber", A)
    async with Browser(base) as b:
        r = await b.portal_login(A, PIN_A)
        r = await b.get("/missed")
        assert evil not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    async with Browser(base) as s:
        await s.console_login("sam", "sam-password")
        await s.get("/lang/en")
        for url in (
            "/console/ads",
            "/console/audit",
            f"/console/subscribers/{A}",
            "/console/calls?number=" + A,
        ):
            r = await s.get(url)
            assert r.status_code == 200 and evil not in r.text, url
            assert "&lt;script&gt;" in r.text, url
        # an operator cannot even be named so
        await s.get("/console/operators")
        r = await s.post(
            "/console/operators", {"name": evil, "role": "agent", "password": "12345678"}
        )
        assert "Please check the value" in r.text and evil not in r.text
        # a reflected number is escaped too
        r = await s.get("/console/enrol?msisdn=" + evil)
        assert evil not in r.text
    assert [o.name for o in await flows.list_operators(pool)] == ["alice", "sam"]


async def test_a_code_by_sms_enrols_a_new_number_which_then_sets_its_pin(web: Any) -> None:
    base, clock, pool = web
    new = "8613500135000"
    async with Browser(base) as b:
        await b.get("/code")
        r = await b.post("/code", {"number": "13500135000"})
        assert "A code is on its way" in r.text or "验证码已通过短信发送" in r.text
        sms = await pool.fetch(
            "SELECT destination, text FROM sms_outbox WHERE destination = $1", new
        )
        assert len(sms) == 1
        code = re.search(r"\d{6}", sms[0]["text"]).group(0)  # type: ignore[union-attr]
        # rate limited: no second code within [web] code_interval
        r = await b.post("/code", {"number": new})
        assert "e=code-throttled" in str(r.url)
        assert (
            await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE destination = $1", new) == 1
        )
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        r = await b.post("/code/verify", {"number": new, "code": wrong})
        assert "e=wrong-code" in str(r.url)
        r = await b.post("/code/verify", {"number": new, "code": code})
        assert r.url.path == "/pin" and 'name="old"' not in r.text  # after a code: no old PIN
        r = await b.post("/pin", {"new": "864213", "again": "864213"})
        assert r.url.path == "/" and "pin-set" in str(r.url)
        # the code worked once only
        r = await b.post("/logout", {})
        await b.get("/code")
        r = await b.post("/code/verify", {"number": new, "code": code})
        assert "e=wrong-code" in str(r.url)
    sub = await prov.get_subscriber(pool, new)
    assert sub.pin_set and sub.active_services(local_day(NOW, CFG)) == ("missed-call",)
    assert (await prov.verify_pin(pool, Actor("ivr", new), new, "864213")).outcome == "ok"
    rows = await pool.fetch(
        "SELECT action FROM audit_log WHERE entity_key = $1 AND channel = 'web' ORDER BY id", new
    )
    assert [r["action"] for r in rows] == ["create", "set-pin"]
    # the code itself is nowhere but in the SMS: only its hash was stored, and it is gone
    assert await pool.fetchval("SELECT count(*) FROM web_code WHERE msisdn = $1", new) == 0


async def test_logins_are_throttled_per_address(web: Any) -> None:
    base, clock, pool = web
    async with Browser(base) as b:
        for i in range(12):  # [web] login_max_per_address = 12 here, over many numbers
            await b.portal_login(f"86135000000{i:02d}", "000000")
        r = await b.portal_login(A, PIN_A)  # the right PIN, but this address is throttled
        assert "e=throttled" in str(r.url)
        assert (await prov.get_subscriber(pool, A)).pin_failed_attempts == 0  # not even checked
        clock.advance(seconds=CFG.web.login_window + 1)
        r = await b.portal_login(A, PIN_A)
        assert r.url.path == "/"
    async with Browser(base) as b:
        for _ in range(CFG.web.login_max_per_number):
            await b.console_login("sam", "wrong-password")
        r = await b.console_login("sam", "sam-password")
        assert "e=throttled" in str(r.url)


async def test_the_console_does_for_a_subscriber_what_the_portal_does(web: Any) -> None:
    base, _, pool = web
    await missed(pool, CALLER, A, NOW - dt.timedelta(minutes=30))
    await pool.execute(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, status, attempts,"
        " next_attempt_at) VALUES ('k1', $1, 'hello', 'failed', 8, $2)",
        A,
        NOW,
    )
    async with Browser(base) as b:
        await b.console_login("alice", "alice-password")
        await b.get("/lang/en")
        r = await b.get("/console/find?msisdn=13800138000")
        assert r.url.path == f"/console/subscribers/{A}"
        assert "13700001111" in r.text and "hello" in r.text
        await b.post(f"/console/subscribers/{A}/services", {"service": "voicemail", "state": "on"})
        await b.post(
            f"/console/subscribers/{A}/blacklist", {"op": "add", "number": "8613911112222"}
        )
        await b.post(
            f"/console/subscribers/{A}/settings", {"field": "forward_to", "value": "13600002222"}
        )
        sms_id = await pool.fetchval("SELECT id FROM sms_outbox WHERE idempotency_key = 'k1'")
        r = await b.post(f"/console/subscribers/{A}/sms/{sms_id}/retry", {})
        assert "The SMS is queued again." in r.text
        other = await pool.fetchval(
            "INSERT INTO sms_outbox (idempotency_key, destination, text, status, attempts,"
            " next_attempt_at) VALUES ('k2', $1, 'hi B', 'failed', 8, $2) RETURNING id",
            B,
            NOW,
        )
        for wrong in (str(other), "0", "99999999999999999999", "x"):
            r = await b.post(f"/console/subscribers/{A}/sms/{wrong}/retry", {})
            assert "e=refused" in str(r.url), wrong  # not A's: not from A's page
        assert await pool.fetchval("SELECT status FROM sms_outbox WHERE id = $1", other) == "failed"
        r = await b.post(f"/console/subscribers/{A}/pin", {"op": "reset"})
        assert (await prov.get_subscriber(pool, A)).pin_set is False
        # call inquiry for a number that is no subscriber: the calls it made
        r = await b.get("/console/calls?number=13700001111")
        assert f"/console/subscribers/{A}" in r.text
        # enrol a new subscriber
        r = await b.get("/console/subscribers/8613312345678")
        assert r.status_code == 404 and 'id="enrol"' in r.text
        r = await b.post(
            "/console/enrol",
            {"msisdn": "13312345678", "svc-missed-call": "1", "svc-busy": "1", "language": "en"},
        )
        assert r.url.path == "/console/subscribers/8613312345678"
        r = await b.post("/console/enrol", {"msisdn": "13312345678"})
        assert "e=exists" in str(r.url)
    sub = await prov.get_subscriber(pool, A)
    assert (
        "voicemail" in sub.active_services(local_day(NOW, CFG))
        and sub.forward_to == "8613600002222"
    )
    assert await pool.fetchval("SELECT status FROM sms_outbox WHERE id = $1", sms_id) == "queued"
    actors = await pool.fetch(
        "SELECT DISTINCT channel, actor FROM audit_log WHERE channel = 'operator'"
    )
    assert [(r["channel"], r["actor"]) for r in actors] == [("operator", "alice")]
    new = await prov.get_subscriber(pool, "8613312345678")
    assert (
        set(new.active_services(local_day(NOW, CFG))) == {"missed-call", "busy"}
        and new.language == "en"
    )


async def test_an_agent_sets_a_pin_and_the_subscribers_portal_sessions_end(web: Any) -> None:
    base, _, pool = web
    async with Browser(base) as sub, Browser(base) as agent:
        assert (await sub.portal_login(B, PIN_B)).url.path == "/"
        await agent.console_login("alice", "alice-password")
        await agent.get("/lang/en")
        page = await agent.get(f"/console/subscribers/{B}")
        assert 'id="set-pin-form"' in page.text
        url = f"/console/subscribers/{B}/pin"
        r = await agent.post(url, {"op": "set", "new": "97531864", "again": "97531865"})
        assert "e=pin-mismatch" in str(r.url) and "The two PINs differ." in r.text
        r = await agent.post(url, {"op": "set", "new": "12", "again": "12"})
        assert "e=invalid" in str(r.url) and "f=pin" in str(r.url)
        assert (await sub.get("/")).url.path == "/"  # refusals change nothing
        r = await agent.post(url, {"op": "set", "new": "97531864", "again": "97531864"})
        assert "portal sessions are ended" in r.text
        # the browser logged in with the old PIN is logged out; the new PIN works, IVR too
        assert (await sub.get("/")).url.path == "/login"
        assert "e=wrong" in str((await sub.portal_login(B, PIN_B)).url)
        assert (await sub.portal_login(B, "97531864")).url.path == "/"
        check = await prov.verify_pin(pool, Actor("ivr", B), B, "97531864")
        assert check.outcome == "ok"
        # a reset by the agent ends the sessions too
        await agent.get(f"/console/subscribers/{B}")
        await agent.post(url, {"op": "reset"})
        assert (await sub.get("/")).url.path == "/login"
    rows = await pool.fetch(
        "SELECT channel, actor, action FROM audit_log WHERE entity_key = $1"
        " AND action LIKE '%-pin' ORDER BY id",
        B,
    )
    assert [tuple(r) for r in rows] == [
        ("operator", "alice", "set-pin"),
        ("operator", "alice", "reset-pin"),
    ]


async def test_a_pin_changed_in_the_portal_ends_the_other_browsers(web: Any) -> None:
    base, _, _ = web
    async with Browser(base) as here, Browser(base) as there:
        await here.portal_login(A, PIN_A)
        await there.portal_login(A, PIN_A)
        await here.get("/pin")
        r = await here.post("/pin", {"old": PIN_A, "new": "11223344", "again": "11223344"})
        assert r.url.path == "/" and "m=pin-set" in str(r.url)
        assert (await here.get("/missed")).url.path == "/missed"  # this browser stays in
        assert (await there.get("/missed")).url.path == "/login"


@pytest.mark.parametrize("channel", ["ivr", "cli", "api"])
async def test_a_pin_set_or_reset_by_another_channel_ends_the_portal_sessions(
    web: Any, channel: str
) -> None:
    """The IVR's, the CLI's and the API's PIN changes go through the same provisioning
    function as the web's, which ends the subscriber's portal sessions with it."""
    base, _, pool = web
    async with Browser(base) as b:
        await b.portal_login(A, PIN_A)
        await prov.set_pin(pool, Actor(channel, "x"), A, "55667788")
        assert (await b.get("/missed")).url.path == "/login"
        await b.portal_login(A, "55667788")
        assert (await b.get("/missed")).url.path == "/missed"
        await prov.reset_pin(pool, Actor(channel, "x"), A)
        assert (await b.get("/missed")).url.path == "/login"
    await prov.set_pin(pool, Actor("cli", "test"), A, PIN_A)  # as the other tests expect


async def test_the_console_pages_a_subscribers_charges_on_their_own(web: Any) -> None:
    base, _, pool = web
    await missed(pool, CALLER, A, NOW - dt.timedelta(minutes=30))
    await pool.executemany(
        "INSERT INTO cdr (record_type, msisdn, service, started_at, charge)"
        " VALUES ('fee', $1, $2, $3, 1)",
        [(A, f"item-{i:02d}", NOW - dt.timedelta(minutes=i)) for i in range(1, 26)],
    )
    async with Browser(base) as b:
        await b.console_login("alice", "alice-password")
        r = await b.get(f"/console/subscribers/{A}")
        shown = set(re.findall(r"item-\d\d", r.text))
        assert shown == {f"item-{i:02d}" for i in range(1, 21)}  # the newest 20
        older = f"/console/subscribers/{A}?charges_page=2#charges"
        assert f'href="{older}"' in r.text
        r = await b.get(older)
        assert set(re.findall(r"item-\d\d", r.text)) == {f"item-{i:02d}" for i in range(21, 26)}
        assert "13700001111" in r.text  # the missed calls stay on their first page
        r = await b.get(f"/console/subscribers/{A}?page=2")  # the missed calls' page 2
        assert len(set(re.findall(r"item-\d\d", r.text))) == 20
    pg, total = await flows.charges_page(pool, A, page=2, per_page=20)
    assert (pg.total, pg.pages, len(pg.rows), total) == (25, 2, 5, Decimal(25))


async def test_the_audit_filters_apply_or_say_what_is_wrong(web: Any) -> None:
    base, _, pool = web
    await prov.unlock_pin(pool, Actor("operator", "alice"), A)
    async with Browser(base) as s:
        await s.console_login("sam", "sam-password")
        await s.get("/lang/en")
        for query, field in (
            ("since=notadate", "since"),
            ("until=2026-13-01", "until"),
            ("channel=carrier-pigeon", "channel"),
            ("before=x", "before"),
        ):
            r = await s.get(f"/console/audit?subscriber={A}&{query}")
            assert r.status_code == 400, query
            assert f'data-field="{field}"' in r.text and "Please check the value" in r.text
            assert 'id="audit"' not in r.text  # no unfiltered rows in its place
        # the audit rows are written at the database's time: far dates select all or none
        r = await s.get(f"/console/audit?subscriber={A}&channel=operator&since=2000-01-01")
        assert r.status_code == 200 and "unlock-pin" in r.text and "filter-error" not in r.text
        r = await s.get(f"/console/audit?subscriber={A}&until=2000-01-01")
        assert r.status_code == 200 and "unlock-pin" not in r.text
        r = await s.get(f"/console/audit?subscriber={A}&channel=web")
        assert "unlock-pin" not in r.text


async def test_the_supervisor_removes_rates_and_sets_product_prices(web: Any) -> None:
    base, _, pool = web
    today = local_day(NOW, CFG)
    rate = await prov.add_rate(pool, OPS, "international", "852", today=today, per_minute="1.2")
    async with Browser(base) as agent:
        await agent.console_login("alice", "alice-password")
        assert (await agent.get("/console/products")).status_code == 403
        await agent.get("/console/")
        for url, form in (
            (f"/console/rates/{rate.id}/delete", {}),
            ("/console/products", {"service": "busy", "monthly_fee": "9"}),
        ):
            assert (await agent.post(url, form)).status_code == 403, url
    assert [r.id for r in await prov.list_rates(pool)] == [rate.id]
    assert await billing.list_prices(pool) == []
    async with Browser(base) as s, Browser(base) as sub:
        await s.console_login("sam", "sam-password")
        await s.get("/lang/en")
        r = await s.get("/console/rates")
        assert f'id="rate-del-{rate.id}"' in r.text
        r = await s.post(f"/console/rates/{rate.id}/delete", {})
        assert "m=deleted" in str(r.url) and f'id="rate-del-{rate.id}"' not in r.text
        r = await s.post(f"/console/rates/{rate.id}/delete", {})
        assert "e=refused" in str(r.url)
        await s.get("/console/products")
        for form, field, label in (
            ({"service": "busy", "monthly_fee": "abc"}, "monthly_fee", "monthly fee"),
            ({"service": "moon", "monthly_fee": "1"}, "service", "service"),
            ({"service": "busy", "monthly_fee": "1", "valid_from": "soon"}, "valid_from", ""),
        ):
            r = await s.post("/console/products", form)
            assert f"e=invalid&f={field}" in str(r.url) and "Please check the value" in r.text
            assert label in r.text
        r = await s.post(
            "/console/products",
            {"service": "busy", "monthly_fee": "3.50", "valid_from": today.isoformat()},
        )
        assert "m=saved" in str(r.url) and "in force" in r.text
        # the fee the portal shows is the one just set
        await sub.portal_login(A, PIN_A)
        await sub.get("/lang/en")
        page = text_of(await sub.get("/services"))
        assert "Busy notification off Monthly fee: 3.5000 CNY" in page
    assert [(p.service, p.valid_from, p.monthly_fee) for p in await billing.list_prices(pool)] == [
        ("busy", today, Decimal("3.50"))
    ]
    rows = await pool.fetch(
        "SELECT channel, actor, action, entity FROM audit_log WHERE entity IN ('rate', 'product')"
        " AND channel = 'operator' ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("operator", "sam", "delete", "rate"),
        ("operator", "sam", "set-price", "product"),
    ]


async def test_every_declared_page_and_anchor_is_served(web: Any) -> None:
    """The parity declarations (portal.OFFERS, console.OFFERS) against the pages as served,
    for a subscriber with nothing in any list (an anchor must not depend on content)."""
    base, _, _ = web
    async with Browser(base) as sub, Browser(base) as agent:
        await sub.portal_login(B, PIN_B)
        for function, url in portal.OFFERS.items():
            r = await sub.get(url)
            assert r.status_code == 200 and r.url.path == url, function
        await agent.console_login("alice", "alice-password")
        for function, url in console.OFFERS.items():
            path, _, anchor = url.replace("{msisdn}", B).partition("#")
            r = await agent.get(path)
            assert r.status_code == 200 and r.url.path == path, function
            if anchor:
                assert f'id="{anchor}"' in r.text, function


async def test_the_supervisor_manages_staff_ads_tariffs_and_sees_the_dashboard(web: Any) -> None:
    base, _, pool = web
    day = dt.timedelta(days=1)
    for reason, days_ago in (("busy", 0), ("busy", 0), ("not-reachable", 0), ("no-answer", 2)):
        await missed(pool, CALLER, A, NOW - day * days_ago)
        await pool.execute(
            "UPDATE missed_call SET reason = $1 WHERE id = (SELECT max(id) FROM missed_call)",
            reason,
        )
    await missed(pool, CALLER, A, NOW - day * 9)  # older than the dashboard's week
    for status in ("delivered", "delivered", "failed", "submitted"):
        await pool.execute(
            "INSERT INTO sms_outbox (idempotency_key, destination, text, status, next_attempt_at,"
            " created_at) VALUES ($1, $2, 't', $3, $4, $4)",
            f"d-{status}-{await pool.fetchval('SELECT count(*) FROM sms_outbox')}",
            A,
            status,
            NOW,
        )
    await pool.execute(
        "INSERT INTO cdr (record_type, msisdn, started_at, charge) VALUES ('fee', $1, $2, 1.5),"
        " ('call', $1, $2, 2.25)",
        A,
        NOW - day,
    )
    async with Browser(base) as s:
        await s.console_login("sam", "sam-password")
        r = await s.get("/console/dashboard")
        bars = re.findall(
            r'data-series="([^"]+)" data-label="([^"]+)" data-value="([^"]+)"', r.text
        )
        got = {(series, label): value for series, label, value in bars}
        today, yesterday = local_day(NOW, CFG), local_day(NOW, CFG) - day
        lbl = lambda d: f"{d.month}/{d.day}"  # noqa: E731
        assert got[("遇忙提示", lbl(today))] == "2" and got[("无法接通", lbl(today))] == "1"
        assert got[("无人接听", lbl(today - 2 * day))] == "1"
        assert got[("已发送", lbl(today))] == "3" and got[("已送达", lbl(today))] == "2"
        assert got[("失败", lbl(today))] == "1"
        assert got[("收入（元）", lbl(yesterday))] == "3.75"
        assert len({label for _, label in got}) == 7 and "<script" not in r.text
        # staff
        await s.get("/console/operators")
        await s.post(
            "/console/operators", {"name": "bob", "role": "agent", "password": "bob-password"}
        )
        r = await s.post("/console/operators/bob/password", {"password": "bob-new-password"})
        assert "The password is changed" in r.text or "密码已修改" in r.text
        r = await s.post("/console/operators/alice/delete", {})
        # ads and tariffs
        await s.get("/console/ads")
        r = await s.post(
            "/console/ads", {"text": "秋季优惠", "caller_prefixes": "86139", "priority": "5"}
        )
        ad = (await prov.list_ads(pool))[0]
        assert ad.text == "秋季优惠" and ad.caller_prefixes == ("86139",) and ad.valid_from == NOW
        await s.post(f"/console/ads/{ad.id}/delete", {})
        await s.get("/console/rates")
        await s.post(
            "/console/rates", {"call_category": "local", "prefix": "86138", "per_sms": "0.15"}
        )
        r = await s.post("/console/rates", {"call_category": "moon", "per_sms": "1"})
        assert "e=invalid" in str(r.url)
    assert [o.name for o in await flows.list_operators(pool)] == ["bob", "sam"]
    assert await prov.list_ads(pool) == []
    assert [(x.prefix, str(x.per_sms)) for x in await prov.list_rates(pool)] == [
        ("86138", "0.1500")
    ]
    async with Browser(base) as bob:
        assert (await bob.console_login("bob", "bob-password")).url.path == "/console/login"
        assert (await bob.console_login("bob", "bob-new-password")).url.path == "/console/"


async def test_pins_passwords_and_codes_are_never_logged(
    web: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    base, _, pool = web
    async with Browser(base) as b:
        await b.portal_login(A, "975310")  # a wrong one
        await b.portal_login(A, PIN_A)
        await b.post("/logout", {})
        await b.get("/code")
        await b.post("/code", {"number": "13500135001"})
        await b.console_login("alice", "alice-password")
    text = await pool.fetchval("SELECT text FROM sms_outbox WHERE destination = '8613500135001'")
    code = re.search(r"\d{6}", text).group(0)  # type: ignore[union-attr]
    out, err = capfd.readouterr()
    for secret in ("975310", PIN_A, "alice-password", code):
        assert secret not in out and secret not in err, secret
    # nor stored in the clear
    rows = []
    for table in ("web_session", "web_attempt", "web_code", "operator", "audit_log"):
        rows += await pool.fetch(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
    dump = " ".join(str(dict(r)) for r in rows)
    for secret in ("975310", PIN_A, "alice-password", code):
        assert secret not in dump, secret


# -- voicemail -------------------------------------------------------------------------------------


async def deposit(pool: Any, callee: str, caller: str | None, audio: bytes, at: dt.datetime) -> int:
    """A voice message as the media server leaves it (the flow the API's deposit calls)."""
    done = await vm.deposit(
        pool,
        Actor("api", "media"),
        CFG,
        callee=callee,
        caller=caller,
        audio=audio,
        declared_seconds=None,
        deposited_at=at,
        now=at,
    )
    return done.message.id


async def mailboxes(pool: Any) -> tuple[list[int], int]:
    """A's two messages (a caller's, a withheld one) and B's one; voicemail on for both."""
    today = local_day(NOW, CFG)
    for msisdn in (A, B):
        await prov.enable_service(pool, OPS, msisdn, "voicemail", today=today)
    a1 = await deposit(pool, A, CALLER, wav(1.5, seed=3), NOW - dt.timedelta(hours=2))
    a2 = await deposit(pool, A, None, wav(0.5, seed=5), NOW - dt.timedelta(hours=1))
    b1 = await deposit(pool, B, CALLER, wav(1.0, seed=7), NOW - dt.timedelta(minutes=30))
    return [a1, a2], b1


async def fetched_byte_exact(b: Browser, url: str, audio: bytes) -> None:
    """The whole recording, a range, the last octets and a range past the end, as a player
    asks for them (RFC 9110 §14)."""
    r = await b.get(url)
    assert r.status_code == 200 and r.content == audio
    assert r.headers["content-type"] == "audio/wav" and r.headers["accept-ranges"] == "bytes"
    r = await b.get(url, headers={"Range": "bytes=100-999"})
    assert r.status_code == 206 and r.content == audio[100:1000]
    assert r.headers["content-range"] == f"bytes 100-999/{len(audio)}"
    r = await b.get(url, headers={"Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == audio[-50:]
    r = await b.get(url, headers={"Range": f"bytes={len(audio)}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(audio)}"


async def test_the_portal_lists_plays_marks_and_deletes_the_subscribers_voicemail(
    web: Any,
) -> None:
    base, _, pool = web
    (a1, a2), b1 = await mailboxes(pool)
    async with Browser(base) as b:
        r = await b.get(f"/voicemail/{a1}/audio")  # logged out: the login page, no audio
        assert r.url.path == "/login" and not r.headers["content-type"].startswith("audio")
        await b.portal_login(A, PIN_A)
        await b.get("/lang/en")
        r = await b.get("/voicemail")
        rows = re.findall(r'<tr id="vm-(\d+)" data-status="(\w+)"><td>([^<]*)</td>', r.text)
        assert rows == [(str(a1), "new", "13700001111"), (str(a2), "new", "unknown number")]
        assert f'src="/voicemail/{a1}/audio"' in r.text and f"vm-{b1}" not in r.text
        assert "16:30" in text_of(r)  # the deposit's time, local (Shanghai)
        # played in the page: byte for byte, with Range so the player can seek
        await fetched_byte_exact(b, f"/voicemail/{a1}/audio", wav(1.5, seed=3))
        # another subscriber's message is not there for this session, whatever the id
        for url in (f"/voicemail/{b1}/audio", "/voicemail/0/audio", "/voicemail/x/audio"):
            r = await b.get(url)
            assert r.status_code == 404 and "No such voice message" in r.text, url
        r = await b.get(f"/voicemail/{'9' * 30}/audio")
        assert r.status_code == 404
        await b.get("/voicemail")
        for op in ("heard", "delete"):
            r = await b.post("/voicemail", {"op": op, "id": str(b1)})
            assert "No such voice message" in r.text
        r = await b.post("/voicemail", {"op": "heard", "id": "12ab"})
        assert "Please check the value" in r.text
        assert (await vm.message(pool, b1)).status == "new"  # B's message untouched
        # heard, deleted
        r = await b.post("/voicemail", {"op": "heard", "id": str(a1)})
        assert "Marked as heard." in r.text and f'<tr id="vm-{a1}" data-status="heard">' in r.text
        r = await b.post("/voicemail", {"op": "delete", "id": str(a2)})
        assert "Deleted." in r.text and f"vm-{a2}" not in r.text
        assert (await b.get(f"/voicemail/{a2}/audio")).status_code == 404
        # how new messages are told: not at all, then the next deposit queues no SMS
        r = await b.post("/voicemail", {"op": "notify", "value": "none"})
        assert "Saved." in r.text and '<option value="none" selected>' in r.text
        r = await b.post("/voicemail", {"op": "notify", "value": "loud"})
        assert "Please check the value" in r.text
    assert (await prov.get_subscriber(pool, A)).voicemail_notify == "none"
    assert (await vm.message(pool, a1)).heard_at == NOW
    with pytest.raises(NotFound):
        await vm.message(pool, a2)
    sms_before = await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE destination = $1", A)
    await deposit(pool, A, CALLER, wav(0.5), NOW)
    sms_after = await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE destination = $1", A)
    assert sms_before == 2 and sms_after == 2  # the two earlier deposits were told by SMS
    audit = await pool.fetch(
        "SELECT actor, action, entity, entity_key FROM audit_log WHERE channel = 'web' ORDER BY id"
    )
    assert [tuple(r) for r in audit] == [
        (A, "heard", "voicemail", str(a1)),
        (A, "delete", "voicemail", str(a2)),
        (A, "update", "subscriber", A),
    ]


async def test_the_console_agent_plays_marks_and_deletes_a_subscribers_voicemail(
    web: Any,
) -> None:
    base, _, pool = web
    (a1, a2), b1 = await mailboxes(pool)
    page = f"/console/subscribers/{B}"
    async with Browser(base) as sub:  # a subscriber's session is no operator's
        await sub.portal_login(B, PIN_B)
        r = await sub.get(f"{page}/voicemail/{b1}/audio")
        assert r.url.path == "/console/login"
    async with Browser(base) as b:
        await b.console_login("alice", "alice-password")
        await b.get("/lang/en")
        r = await b.get(page)
        assert f'<tr id="vm-{b1}" data-status="new">' in r.text and f"vm-{a1}" not in r.text
        assert f'src="{page}/voicemail/{b1}/audio"' in r.text
        await fetched_byte_exact(b, f"{page}/voicemail/{b1}/audio", wav(1.0, seed=7))
        # A's message is not B's, whichever page asks for it
        r = await b.get(f"{page}/voicemail/{a1}/audio")
        assert r.status_code == 404
        await b.get(page)
        r = await b.post(f"{page}/voicemail", {"op": "delete", "id": str(a1)})
        assert "No such voice message" in r.text
        r = await b.post(f"{page}/voicemail", {"op": "heard", "id": str(b1)})
        assert "Marked as heard." in r.text and f'<tr id="vm-{b1}" data-status="heard">' in r.text
        r = await b.post(f"{page}/voicemail", {"op": "notify", "value": "none"})
        assert "Saved." in r.text
        r = await b.post(f"{page}/voicemail", {"op": "delete", "id": str(b1)})
        assert "Deleted." in r.text and "No voice messages." in r.text
        assert (await b.get(f"{page}/voicemail/{b1}/audio")).status_code == 404
    assert (await vm.message(pool, a1)).status == "new"
    assert [m.id for m in await vm.list_messages(pool, A)] == [a1, a2]
    assert await vm.list_messages(pool, B) == []
    assert (await prov.get_subscriber(pool, B)).voicemail_notify == "none"
    audit = await pool.fetch(
        "SELECT actor, action, entity, entity_key FROM audit_log WHERE channel = 'operator'"
        " ORDER BY id"
    )
    assert [tuple(r) for r in audit] == [
        ("alice", "heard", "voicemail", str(b1)),
        ("alice", "update", "subscriber", B),
        ("alice", "delete", "voicemail", str(b1)),
    ]


async def test_the_dashboards_revenue_is_the_billing_reports(web: Any) -> None:
    base, clock, pool = web
    clock.advance(days=8)  # 3 December: the week holds the first day of the month
    now = clock.now
    await pool.execute(
        "INSERT INTO monthly_fee (month, msisdn, service, days, month_days, fee, charge)"
        " VALUES ('2026-12-01', $1, 'missed-call', 31, 31, 5, 5),"
        " ('2026-11-01', $1, 'missed-call', 30, 30, 5, 5)",
        A,
    )
    await pool.execute(
        "INSERT INTO cdr (record_type, msisdn, service, started_at, charge) VALUES"
        " ('fee', $1, 'callback', $2, 0.1), ('call', $1, NULL, $2, 2.25)",
        A,
        now - dt.timedelta(days=1),
    )
    d = await flows.dashboard(pool, now=now, cfg=CFG, days=7)
    today = local_day(now, CFG)
    report = await reports.daily_report(
        pool, since=today - dt.timedelta(days=6), until=today, timezone=CFG.notify.timezone
    )
    assert d.revenue == tuple(x.revenue for x in report)
    by_day = dict(zip(d.days, d.revenue, strict=True))
    assert by_day[dt.date(2026, 12, 1)] == 5 and by_day[dt.date(2026, 12, 2)] == Decimal("2.35")
    assert sum(d.revenue) == Decimal("7.35")  # November's fee is outside the week
    async with Browser(base) as s:
        await s.console_login("sam", "sam-password")
        r = await s.get("/console/dashboard")
        got = dict(
            re.findall(
                r'data-series="收入（元）" data-label="([^"]+)" data-value="([^"]+)"', r.text
            )
        )
        assert Decimal(got["12/1"]) == 5 and Decimal(got["12/2"]) == Decimal("2.35")


async def test_service_fees_are_the_products_price_lists(clean_pool: asyncpg.Pool) -> None:
    """The pages that switch services show each product's monthly fee in force that day."""
    today = local_day(NOW, CFG)
    assert await flows.service_fees(clean_pool, today=today) == {}  # no price list: "per tariff"
    await billing.set_price(clean_pool, OPS, "busy", "2.00", today=today)
    await billing.set_price(
        clean_pool, OPS, "busy", "3.50", today=today, valid_from=today + dt.timedelta(days=1)
    )
    assert await flows.service_fees(clean_pool, today=today) == {"busy": Decimal("2.00")}
    tomorrow = today + dt.timedelta(days=1)
    assert await flows.service_fees(clean_pool, today=tomorrow) == {"busy": Decimal("3.50")}
