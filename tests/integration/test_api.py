"""The carrier API over real HTTP (httpx) against the served application and a real PostgreSQL:
provisioning, idempotency, cursors, bulk loads, the media server's reports, voice messages
from deposit to deletion, the documentation page, and the authorization matrix.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from scp.adapters.clock import utcnow
from scp.config import parse_config
from scp.flows import api as api_flow
from scp.service.calls import RecordMissedCall
from scp.state import calls_store
from tests.integration.api_rig import ADMIN, amr, serve_api, wav

pytestmark = pytest.mark.integration
# the tests whose defaults or windows come from the day (the API's local_day(wall_now())): run
# on the real day and on the date guard's fake ones (tests/dates.py)
DATED = pytest.mark.usefixtures("any_day")

CALLEE = "8613912345678"
CALLER = "8613700001111"
PROBLEM = "application/problem+json"


async def audit_rows(pool: asyncpg.Pool, **where: str) -> list[asyncpg.Record]:
    cond = " AND ".join(f"{k} = ${i}" for i, k in enumerate(where, 1)) or "true"
    return await pool.fetch(f"SELECT * FROM audit_log WHERE {cond} ORDER BY id", *where.values())


def problem(r: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status and body["title"]
    if field is not None:
        assert body["field"] == field, body
    return body


async def missed_call(pool: asyncpg.Pool, at: dt.datetime, caller: str = CALLER) -> int:
    async with pool.acquire() as conn:
        return await calls_store.insert_missed_call(
            conn, RecordMissedCall(caller, CALLEE, "not-reachable", 20, "scp-1:0000abcd", at)
        )


@DATED
async def test_subscriber_lifecycle_audited_as_the_client(clean_pool: asyncpg.Pool) -> None:
    async with serve_api(clean_pool) as api:
        token = await api.token("boss", "provisioning")
        async with api.client(token) as c:
            body = {"services": ["missed-call", "busy"], "group": "vip", "language": "en"}
            r = await c.put(f"/subscribers/0{CALLEE[2:]}", json=body)  # national form accepted
            assert r.status_code == 201, r.text
            assert r.headers["location"] == f"/api/v1/subscribers/{CALLEE}"
            sub = r.json()
            assert sub["msisdn"] == CALLEE and sub["user_group"] == "vip"
            assert sorted(s["service"] for s in sub["subscriptions"]) == ["busy", "missed-call"]
            # replace: busy ends, voicemail starts, attributes as given
            body = {"services": ["missed-call", "voicemail"], "notify_mode": "digest"}
            r = await c.put(f"/subscribers/{CALLEE}", json=body)
            assert r.status_code == 200, r.text
            sub = r.json()
            live = {s["service"] for s in sub["subscriptions"] if s["end_date"] is None}
            assert live == {"missed-call", "voicemail"} and sub["notify_mode"] == "digest"
            assert sub["user_group"] == "default"  # PUT is the whole subscriber
            r = await c.patch(f"/subscribers/{CALLEE}", json={"forward_to": "13800000001"})
            assert r.json()["forward_to"] == "8613800000001"
            r = await c.patch(f"/subscribers/{CALLEE}", json={"forward_to": None, "group": "b2"})
            assert r.json()["forward_to"] is None and r.json()["user_group"] == "b2"
            r = await c.put(f"/subscribers/{CALLEE}/services/forwarding")
            assert "forwarding" in {s["service"] for s in r.json()["subscriptions"]}
            r = await c.delete(f"/subscribers/{CALLEE}/services/forwarding")
            assert r.status_code == 200
            r = await c.post(
                f"/subscribers/{CALLEE}/blacklist", json={"number": "1370000", "prefix": True}
            )
            assert r.status_code == 201 and r.json() == {
                "owner": CALLEE,
                "number": "1370000",
                "kind": "prefix",
            }
            assert len((await c.get(f"/subscribers/{CALLEE}/blacklist")).json()) == 1
            r = await c.delete(
                f"/subscribers/{CALLEE}/blacklist/1370000", params={"prefix": "true"}
            )
            assert r.status_code == 204
            r = await c.post(f"/subscribers/{CALLEE}/pin/reset")
            assert r.status_code == 200 and r.json()["pin_set"] is False
            groups = (await c.get("/groups")).json()
            assert groups == [{"group": "b2", "subscribers": 1}]
            # bad input names the field; never a 500
            problem(await c.put("/subscribers/12ab", json={}), 422, "msisdn")
            problem(
                await c.put(f"/subscribers/{CALLEE}", json={"services": ["tv"]}),
                422,
                "body.services[0]",
            )
            problem(
                await c.put(f"/subscribers/{CALLEE}", json={"colour": "red"}), 422, "body.colour"
            )
            problem(await c.patch(f"/subscribers/{CALLEE}", json={"imsi": "12"}), 422, "imsi")
            r = await c.put(
                f"/subscribers/{CALLEE}",
                content=b"{not json",
                headers={"content-type": "application/json"},
            )
            problem(r, 400, "body")  # not JSON at all
            assert (await c.delete(f"/subscribers/{CALLEE}")).status_code == 204
            problem(await c.get(f"/subscribers/{CALLEE}"), 404)
            problem(await c.delete(f"/subscribers/{CALLEE}"), 404)
    rows = await audit_rows(clean_pool, channel="api")
    assert rows and {r["actor"] for r in rows} == {"boss"}
    actions = [r["action"] for r in rows]
    assert actions[0] == "create" and actions[-1] == "delete"
    assert {"enable-service", "disable-service", "update", "reset-pin"} <= set(actions)


@DATED
async def test_idempotency_key_replays_and_refuses_another_body(clean_pool: asyncpg.Pool) -> None:
    async with serve_api(clean_pool) as api:
        token = await api.token("crm", "provisioning")
        async with api.client(token) as c:
            await c.put(f"/subscribers/{CALLEE}", json={"services": ["missed-call"]})
            key = {"Idempotency-Key": "order-4711"}
            body = {"number": "13700001111"}
            first = await c.post(f"/subscribers/{CALLEE}/blacklist", json=body, headers=key)
            assert first.status_code == 201 and "idempotent-replayed" not in first.headers
            # the entry is deleted meanwhile: a retry still gets the first answer, changes nothing
            await c.delete(f"/subscribers/{CALLEE}/blacklist/13700001111")
            again = await c.post(f"/subscribers/{CALLEE}/blacklist", json=body, headers=key)
            assert again.status_code == 201 and again.json() == first.json()
            assert again.headers["idempotent-replayed"] == "true"
            assert (await c.get(f"/subscribers/{CALLEE}/blacklist")).json() == []
            other = await c.post(
                f"/subscribers/{CALLEE}/blacklist", json={"number": "13700002222"}, headers=key
            )
            problem(other, 422, "Idempotency-Key")
            # ten concurrent retries of a new key: one effect, ten equal answers
            key2 = {"Idempotency-Key": "order-4712"}
            rs = await asyncio.gather(
                *(
                    c.post(
                        f"/subscribers/{CALLEE}/blacklist",
                        json={"number": "13700003333"},
                        headers=key2,
                    )
                    for _ in range(10)
                )
            )
            assert {r.status_code for r in rs} == {201} and len({r.text for r in rs}) == 1
            # a failed request does not keep its key
            bad = {"Idempotency-Key": "order-4713"}
            problem(
                await c.post("/subscribers/8613000000000/blacklist", json=body, headers=bad), 404
            )
            await c.put("/subscribers/8613000000000", json={})
            r = await c.post("/subscribers/8613000000000/blacklist", json=body, headers=bad)
            assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    creates = await audit_rows(clean_pool, entity="blacklist", action="create")
    assert len(creates) == 3


@DATED
async def test_lists_page_with_opaque_cursors(clean_pool: asyncpg.Pool) -> None:
    async with serve_api(clean_pool) as api:
        token = await api.token("crm", "provisioning", "read")
        async with api.client(token) as c:
            for i in range(25):
                await c.put(f"/subscribers/86139000000{i:02d}", json={"group": "g" + str(i % 2)})
            seen: list[str] = []
            cursor = None
            pages = 0
            while True:
                params: dict[str, Any] = {"limit": 10}
                if cursor:
                    params["cursor"] = cursor
                page = (await c.get("/subscribers", params=params)).json()
                pages += 1
                seen += [s["msisdn"] for s in page["items"]]
                # a row written between pages, before the cursor, moves nothing: key order
                await c.put("/subscribers/8613800000000", json={})
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert seen == sorted(seen) and len(seen) == len(set(seen)) == 25 and pages == 3
            assert "8613800000000" not in seen
            g1 = (await c.get("/subscribers", params={"group": "g1", "limit": 1000})).json()
            assert len(g1["items"]) == 12 and g1["next_cursor"] is None
            everyone = (await c.get("/subscribers", params={"limit": 26})).json()
            assert len(everyone["items"]) == 26 and everyone["next_cursor"]  # a full last page
            last = (await c.get("/subscribers", params={"cursor": everyone["next_cursor"]})).json()
            assert last == {"items": [], "next_cursor": None}
            problem(
                await c.get("/subscribers", params={"cursor": "bm90LWEtY3Vyc29y"}), 422, "cursor"
            )
            problem(await c.get("/subscribers", params={"limit": 0}), 422, "query.limit")


async def pages(c: Any, path: str, limit: int, **params: Any) -> tuple[list[Any], int]:
    """Every item of a paged list, following next_cursor; (items, pages)."""
    items: list[Any] = []
    cursor, n = None, 0
    while True:
        q = {"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        r = await c.get(path, params=q)
        assert r.status_code == 200, r.text
        n += 1
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items, n


@DATED
async def test_call_inquiry_voicemail_and_cdrs_page_with_cursors(clean_pool: asyncpg.Pool) -> None:
    t0 = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
    cfg = parse_config("[voicemail]\nmax_messages = 10\nmax_seconds = 10\n")
    async with serve_api(clean_pool, cfg) as api:
        async with api.client(await api.token("all")) as c:
            await c.put(f"/subscribers/{CALLEE}", json={"services": ["voicemail"]})
            await c.put("/subscribers/8613900000002", json={})
            # 25 calls CALLEE missed, three of them at one instant (the id breaks the tie), one
            # another number missed, and one CALLEE made and the other missed: not CALLEE's inquiry
            async with clean_pool.acquire() as conn:
                ids = [
                    await calls_store.insert_missed_call(
                        conn,
                        RecordMissedCall(
                            CALLER,
                            CALLEE,
                            "not-reachable",
                            20,
                            f"scp-1:{i:08x}",
                            t0 + dt.timedelta(minutes=i // 3 * 3),
                        ),
                    )
                    for i in range(25)
                ]
                for ref, caller in (("scp-1:1000abce", CALLER), ("scp-1:1000abcf", CALLEE)):
                    await calls_store.insert_missed_call(
                        conn, RecordMissedCall(caller, "8613900000002", "busy", 17, ref, t0)
                    )
                for i in range(7):
                    await conn.execute(
                        calls_store.INSERT_CDR,
                        "sms",
                        CALLEE if i % 2 else CALLER,
                        None,
                        None,
                        "missed-call",
                        None,
                        t0 + dt.timedelta(hours=i // 2),
                        None,
                        None,
                        Decimal("0.1"),
                        None,
                    )
            got, n = await pages(c, f"/subscribers/0{CALLEE[2:]}/missed-calls", 10)
            assert n == 3 and [m["id"] for m in got] == sorted(ids, reverse=True)  # newest first
            assert {(m["caller"], m["callee"]) for m in got} == {(CALLER, CALLEE)}
            for i in range(5):
                at = (t0 + dt.timedelta(minutes=i)).isoformat()
                data = {"callee": CALLEE, "caller": "", "deposited_at": at, "duration": "1"}
                files = {"audio": ("a", wav(1.0, seed=i + 1), "audio/wav")}
                assert (await c.post("/voicemail", data=data, files=files)).status_code == 201
            msgs, n = await pages(c, f"/subscribers/{CALLEE}/voicemail", 2)
            assert (
                n == 3
                and len(msgs) == 5
                and [m["id"] for m in msgs] == sorted(m["id"] for m in msgs)
            )
            cdrs, n = await pages(c, "/cdrs", 3, since=t0.isoformat())
            assert n == 3 and len(cdrs) == 7
            assert [(x["started_at"], x["id"]) for x in cdrs] == sorted(
                (x["started_at"], x["id"]) for x in cdrs
            )
            mine, _ = await pages(c, "/cdrs", 2, msisdn=CALLEE)
            assert len(mine) == 3 and {x["msisdn"] for x in mine} == {CALLEE}


@DATED
async def test_bulk_import_job_same_importer(clean_pool: asyncpg.Pool) -> None:
    csv = "msisdn,services,group,language,notify_mode\n" + "".join(
        f"86139100{i:05d},missed-call;busy,oss,zh,sms\n" for i in range(300)
    )
    bad = csv + "12,missed-call,oss,zh,sms\n86139100000,missed-call,oss,xx,sms\n"
    async with serve_api(clean_pool) as api:
        token = await api.token("oss", "provisioning")
        async with api.client(token, headers={"Content-Type": "text/csv"}) as c:

            async def run(body: str, **params: Any) -> dict[str, Any]:
                r = await c.post("/imports", content=body.encode(), params=params)
                assert r.status_code == 202, r.text
                job = r.json()
                for _ in range(200):
                    job = (await c.get(f"/imports/{job['id']}")).json()
                    if job["status"] not in ("queued", "running"):
                        return job
                    await asyncio.sleep(0.05)
                raise AssertionError(job)

            job = await run(bad)
            assert job["status"] == "rejected" and job["result"]["loaded"] is False
            assert [b["line"] for b in job["result"]["bad_rows"]] == [302, 303]
            assert await clean_pool.fetchval("SELECT count(*) FROM subscriber") == 0
            job = await run(csv)
            assert job["status"] == "loaded" and job["result"]["inserted"] == 300
            assert job["lines_read"] == 301
            again = await run(csv)
            assert again["result"]["inserted"] == 0 and again["result"]["unchanged"] == 300
            skip = await run(bad, skip_bad="true")
            assert skip["status"] == "loaded" and skip["result"]["bad"] == 2
            r = await c.post("/imports", content=b"x", headers={"Content-Type": "image/png"})
            problem(r, 415, "Content-Type")
            job = await run("nope,header\n")
            assert job["status"] == "failed" and "line 1" in job["error"]
            problem(await c.get("/imports/999999"), 404)
    assert await clean_pool.fetchval("SELECT count(*) FROM subscriber") == 300
    jobs = await audit_rows(clean_pool, entity="subscriber-import")
    assert jobs and all(j["channel"] == "api" and j["actor"] == "oss" for j in jobs)


async def test_bulk_loads_at_once_do_not_wait_on_the_pool(clean_pool: asyncpg.Pool) -> None:
    """More loads at once than the pool has connections (5 in the tests), each with its
    Idempotency-Key: each takes one connection for its request and its job, never a second."""
    async with serve_api(clean_pool) as api:
        token = await api.token("oss", "provisioning")
        async with api.client(token, headers={"Content-Type": "text/csv"}) as c:

            async def load(i: int) -> int:
                csv = f"msisdn,services,group,language\n861391110{i:04d},missed-call,oss,zh\n"
                r = await c.post("/imports", content=csv, headers={"Idempotency-Key": f"k{i}"})
                assert r.status_code == 202, r.text
                job_id: int = r.json()["id"]
                return job_id

            ids = await asyncio.wait_for(asyncio.gather(*(load(i) for i in range(12))), 60)
            for job_id in ids:
                for _ in range(400):
                    job = (await c.get(f"/imports/{job_id}")).json()
                    if job["status"] not in ("queued", "running"):
                        break
                    await asyncio.sleep(0.05)
                assert job["status"] == "loaded", job
    assert await clean_pool.fetchval("SELECT count(*) FROM subscriber") == 12


@DATED
async def test_media_server_choices_only_for_real_missed_calls(clean_pool: asyncpg.Pool) -> None:
    cfg = parse_config('[call]\ncallback_fee = "0.20"\n')
    async with serve_api(clean_pool, cfg) as api:
        boss, ivr = await api.token("boss", "provisioning"), await api.token("ivr", "media")
        async with api.client(boss) as c:
            await c.put(f"/subscribers/{CALLEE}", json={"services": ["missed-call", "voicemail"]})
        now = utcnow()
        await missed_call(clean_pool, now - dt.timedelta(seconds=30))
        await missed_call(clean_pool, now - dt.timedelta(hours=2), caller="8613700002222")
        pair = {"caller": CALLER, "callee": CALLEE}
        async with api.client(ivr) as c:
            r = await c.post("/callbacks", json=pair)
            assert r.status_code == 201, r.text
            taken = r.json()
            assert taken["fee"] == "0.20" and taken["callback_id"]
            problem(await c.post("/callbacks", json=pair), 409)  # one per missed call
            # outside [ivr] choice_window, or never called: refused, naming the caller
            old = {"caller": "8613700002222", "callee": CALLEE}
            problem(await c.post("/callbacks", json=old), 422, "caller")
            problem(
                await c.post("/callbacks", json={"caller": "8613700009999", "callee": CALLEE}),
                422,
                "caller",
            )
            r = await c.post("/voicemail-requests", json=pair)
            assert r.status_code == 201 and r.json()["route"] == "8613800200"
            problem(await c.post("/voicemail-requests", json=pair), 409)
            r = await c.post("/operator-requests", json=pair)
            assert r.status_code == 201 and r.json()["route"] == "8613800100"
    cb = await clean_pool.fetchrow("SELECT * FROM callback_request")
    assert (cb["caller"], cb["callee"], cb["notified_at"]) == (CALLER, CALLEE, None)
    # the fee is announced, not yet charged: the caller pays once, when the SMS goes out
    assert await clean_pool.fetchval("SELECT count(*) FROM cdr") == 0
    expected = await clean_pool.fetchrow("SELECT * FROM voicemail")
    assert expected["deposited_at"] is None and expected["caller"] == CALLER
    acts = [r["action"] for r in await audit_rows(clean_pool, channel="api", actor="ivr")]
    assert acts == ["ivr-callback", "ivr-voicemail", "ivr-operator"]


@DATED
async def test_voicemail_deposit_to_deletion(clean_pool: asyncpg.Pool) -> None:
    cfg = parse_config("[voicemail]\nmax_messages = 2\nmax_seconds = 10\nmax_bytes = 200000\n")
    rec = wav(3.0, seed=3)
    async with serve_api(clean_pool, cfg) as api:
        boss, ivr = await api.token("boss", "provisioning"), await api.token("ivr", "media")
        reader = await api.token("portal", "read")
        async with api.client(boss) as c:
            await c.put(f"/subscribers/{CALLEE}", json={"services": ["missed-call", "voicemail"]})
            await c.put("/subscribers/8613900000002", json={"services": ["missed-call"]})
        at = utcnow().replace(microsecond=0)
        # the caller chose 2 before recording: the deposit completes that row
        await missed_call(clean_pool, utcnow() - dt.timedelta(seconds=10))
        async with api.client(ivr) as c:
            assert (
                await c.post("/voicemail-requests", json={"caller": CALLER, "callee": CALLEE})
            ).status_code == 201

            async def deposit(
                audio: bytes, *, callee: str = CALLEE, duration: int = 3, name: str = "m.wav"
            ) -> Any:
                data = {
                    "callee": callee,
                    "caller": CALLER,
                    "deposited_at": at.isoformat(),
                    "duration": str(duration),
                }
                return await c.post(
                    "/voicemail",
                    data=data,
                    files={"audio": (name, audio, "application/octet-stream")},
                )

            r = await deposit(rec)
            assert r.status_code == 201, r.text
            msg = r.json()
            assert msg["duration_s"] == 3 and msg["content_type"] == "audio/wav"
            assert msg["sms_queued"] is True and msg["status"] == "new"
            rows = await clean_pool.fetch("SELECT id, deposited_at FROM voicemail")
            assert len(rows) == 1 and rows[0]["id"] == msg["id"]  # the expected row, filled in
            # refused, nothing stored: wrong type, too long, too big, lying about its length
            problem(await deposit(b"ID3\x03\x00\x00\x00 an mp3"), 415, "audio")
            problem(await deposit(wav(11.0), duration=11), 413, "audio")
            problem(await deposit(rec + b"\x00" * 200000), 413, "audio")
            problem(await deposit(rec, duration=9), 422, "duration")
            problem(await deposit(rec[:60]), 422, "audio")
            problem(await deposit(rec, callee="8613900000002"), 409)  # no voicemail service
            problem(await deposit(rec, callee="8613900000009"), 404)
            r = await deposit(amr(150), name="m.amr")
            assert r.status_code == 201 and r.json()["content_type"] == "audio/amr"
            assert r.json()["duration_s"] == 3
            body = problem(await deposit(rec), 409)  # the mailbox holds max_messages
            assert body["type"].endswith("mailbox-full")
            assert await clean_pool.fetchval("SELECT count(*) FROM voicemail") == 2
            # the recording back, whole and by ranges
            url = msg["audio"].removeprefix("/api/v1")
            whole = await c.get(url)
            assert whole.status_code == 200 and whole.content == rec
            assert (
                whole.headers["content-type"] == "audio/wav"
                and whole.headers["accept-ranges"] == "bytes"
            )
            part = await c.get(url, headers={"Range": "bytes=44-99"})
            assert part.status_code == 206 and part.content == rec[44:100]
            assert part.headers["content-range"] == f"bytes 44-99/{len(rec)}"
            tail = await c.get(url, headers={"Range": "bytes=-10"})
            assert tail.status_code == 206 and tail.content == rec[-10:]
            r = await c.get(url, headers={"Range": f"bytes={len(rec)}-"})
            problem(r, 416)
            assert r.headers["content-range"] == f"bytes */{len(rec)}"
            page = (await c.get(f"/subscribers/{CALLEE}/voicemail")).json()
            assert [m["status"] for m in page["items"]] == ["new", "new"]
            r = await c.post(f"/voicemail/{msg['id']}/heard")
            assert r.json()["status"] == "heard" and r.json()["heard_at"]
            new = (await c.get(f"/subscribers/{CALLEE}/voicemail", params={"status": "new"})).json()
            assert len(new["items"]) == 1
            assert (await c.delete(f"/voicemail/{msg['id']}")).status_code == 204
            problem(await c.get(url), 404)
            problem(await c.delete(f"/voicemail/{msg['id']}"), 404)
        async with api.client(reader) as c:
            assert len((await c.get(f"/subscribers/{CALLEE}/voicemail")).json()["items"]) == 1
            problem(await c.get(url), 403)  # the recording is the media server's
    sms = await clean_pool.fetch("SELECT * FROM sms_outbox ORDER BY id")
    assert [s["destination"] for s in sms] == [CALLEE, CALLEE]
    assert sms[0]["idempotency_key"] == f"voicemail:{msg['id']}"
    assert "13700001111" in sms[0]["text"] and "3秒" in sms[0]["text"]
    assert await clean_pool.fetchval("SELECT audio FROM voicemail WHERE id = $1", msg["id"]) is None


@DATED
async def test_voicemail_notify_none_stores_without_sms(clean_pool: asyncpg.Pool) -> None:
    async with serve_api(clean_pool) as api:
        token = await api.token("all")
        async with api.client(token) as c:
            body = {"services": ["voicemail"], "voicemail_notify": "none", "language": "en"}
            await c.put(f"/subscribers/{CALLEE}", json=body)
            data = {
                "callee": CALLEE,
                "caller": "",
                "deposited_at": utcnow().isoformat(),
                "duration": "1",
            }
            r = await c.post("/voicemail", data=data, files={"audio": ("a", wav(1.0), "audio/wav")})
            assert r.status_code == 201 and r.json()["sms_queued"] is False
            assert r.json()["caller"] is None
    assert await clean_pool.fetchval("SELECT count(*) FROM sms_outbox") == 0


@DATED
async def test_retention_deletes_old_messages_once(clean_pool: asyncpg.Pool) -> None:
    from scp.flows import voicemail as vm

    cfg = parse_config("[voicemail]\nretention_days = 7\n")
    async with serve_api(clean_pool, cfg) as api:
        token = await api.token("all")
        async with api.client(token) as c:
            await c.put(f"/subscribers/{CALLEE}", json={"services": ["voicemail"]})
            now = utcnow()
            for days in (1, 8):
                at = (now - dt.timedelta(days=days)).isoformat()
                data = {"callee": CALLEE, "caller": CALLER, "deposited_at": at, "duration": "1"}
                r = await c.post(
                    "/voicemail", data=data, files={"audio": ("a", wav(1.0), "audio/wav")}
                )
                assert r.status_code == 201
    async with clean_pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT pg_advisory_xact_lock($1)", vm.RETENTION_LOCK)
        assert await vm.purge(clean_pool, cfg, now=now) is None  # another node runs it
    assert await vm.purge(clean_pool, cfg, now=now) == 1
    assert await clean_pool.fetchval("SELECT count(*) FROM voicemail") == 1


async def test_docs_page_serves_its_assets_locally(clean_pool: asyncpg.Pool) -> None:
    async with serve_api(clean_pool) as api, api.client() as c:
        doc = (await c.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.") and "/subscribers/{msisdn}" in doc["paths"]
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        for page in ("/docs", "/redoc"):
            html = (await c.get(page)).text
            urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)""", html)
            assert urls and all(u.startswith("/api/v1/") for u in urls), urls
            for u in urls:
                r = await c.get(u.removeprefix("/api/v1"))
                assert r.status_code == 200 and len(r.content) > 100, u
            assert "http://" not in html and "https://" not in html.replace("https://fastapi", "")


# -- the authorization matrix ----------------------------------------------------------------

# Every route and the scopes that grant it: the contract, written here apart from the code.
MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/subscribers"): {"provisioning", "read"},
    ("PUT", "/subscribers/{msisdn}"): {"provisioning"},
    ("GET", "/subscribers/{msisdn}"): {"provisioning", "read"},
    ("PATCH", "/subscribers/{msisdn}"): {"provisioning"},
    ("DELETE", "/subscribers/{msisdn}"): {"provisioning"},
    ("PUT", "/subscribers/{msisdn}/services/{service}"): {"provisioning"},
    ("DELETE", "/subscribers/{msisdn}/services/{service}"): {"provisioning"},
    ("GET", "/subscribers/{msisdn}/blacklist"): {"provisioning", "read"},
    ("POST", "/subscribers/{msisdn}/blacklist"): {"provisioning"},
    ("DELETE", "/subscribers/{msisdn}/blacklist/{number}"): {"provisioning"},
    ("POST", "/subscribers/{msisdn}/pin/reset"): {"provisioning"},
    ("POST", "/subscribers/{msisdn}/pin/unlock"): {"provisioning"},
    ("GET", "/subscribers/{msisdn}/missed-calls"): {"provisioning", "read", "media"},
    ("GET", "/groups"): {"provisioning", "read"},
    ("GET", "/ads"): {"provisioning", "read"},
    ("POST", "/ads"): {"provisioning"},
    ("DELETE", "/ads/{ad_id}"): {"provisioning"},
    ("POST", "/callbacks"): {"media"},
    ("POST", "/voicemail-requests"): {"media"},
    ("POST", "/operator-requests"): {"media"},
    ("POST", "/voicemail"): {"media"},
    ("GET", "/subscribers/{msisdn}/voicemail"): {"media", "read"},
    ("GET", "/voicemail/{vm_id}"): {"media", "read"},
    ("GET", "/voicemail/{vm_id}/audio"): {"media"},
    ("POST", "/voicemail/{vm_id}/heard"): {"media"},
    ("DELETE", "/voicemail/{vm_id}"): {"media"},
    ("POST", "/imports"): {"provisioning"},
    ("GET", "/imports/{job_id}"): {"provisioning", "read"},
    ("GET", "/cdrs"): {"billing"},
    ("GET", "/rates"): {"billing"},
}
SAMPLE = {
    "msisdn": CALLEE,
    "service": "busy",
    "number": "13700001111",
    "ad_id": "1",
    "vm_id": "1",
    "job_id": "1",
}


async def test_authorization_matrix(clean_pool: asyncpg.Pool) -> None:
    async with serve_api(clean_pool) as api:
        tokens = {
            s: await api.token(f"only-{s}", s) for s in ("provisioning", "media", "billing", "read")
        }
        revoked = await api.token("gone", "provisioning", "media", "billing", "read")
        await api_flow.revoke_client(clean_pool, ADMIN, "gone", now=utcnow())
        async with api.client() as anon:
            doc = (await anon.get("/openapi.json")).json()
            routes = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
            assert routes == set(MATRIX)  # every route is in the matrix, and only those
            for (method, path), allowed in MATRIX.items():
                url = path.format(**SAMPLE)
                for token in (None, "mcn_not-a-token", revoked):
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    r = await anon.request(method, url, headers=headers)
                    problem(r, 401)
                    assert r.headers["www-authenticate"].startswith("Bearer"), (method, path)
                for scope, token in tokens.items():
                    r = await anon.request(
                        method, url, headers={"Authorization": f"Bearer {token}"}
                    )
                    if scope in allowed:
                        assert r.status_code not in (401, 403), (method, path, scope, r.text)
                    else:
                        problem(r, 403)
                        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    last_used = await clean_pool.fetchval(
        "SELECT count(*) FROM api_client WHERE last_used_at IS NOT NULL"
    )
    assert last_used == 4
