"""Bad input to the carrier API is a 422 naming the field, never a 500: each case below is an
input that once reached PostgreSQL unchecked (a time PostgreSQL or Python cannot hold once in
UTC, a NUL character PostgreSQL refuses in text), in a query value, a JSON body, a multipart
form and a cursor. And the other field names the errors give: a duplicate IMSI, a bad number
in a path, a body that is not JSON.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import asyncpg
import pytest

from scp.config import parse_config
from scp.web.api import limits
from tests.integration.api_rig import serve_api, wav
from tests.integration.test_api import CALLEE, problem

pytestmark = pytest.mark.integration

EARLY = "0001-01-01T00:00:00+14:00"  # before year 1 once in UTC
LATE = "9999-12-31T23:59:59-14:00"  # after year 9999 once in UTC


def cursor(**key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).rstrip(b"=").decode()


# (name, method, path, keyword arguments of the request, the field the 422 names)
CASES: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("cdrs since year 0", "GET", "/cdrs", {"params": {"since": EARLY}}, "query.since"),
    ("cdrs until year 10000", "GET", "/cdrs", {"params": {"until": LATE}}, "query.until"),
    ("cdrs since 1899", "GET", "/cdrs", {"params": {"since": "1899-12-31T23:59:59Z"}}, "query.since"),
    ("ad valid_from year 10000", "POST", "/ads", {"json": {"text": "hi", "valid_from": LATE}}, "body.valid_from"),
    ("ad valid_until year 0", "POST", "/ads", {"json": {"text": "hi", "valid_until": EARLY}}, "body.valid_until"),
    ("ad text NUL", "POST", "/ads", {"json": {"text": "hi\u0000there"}}, "body.text"),
    ("ad user group NUL", "POST", "/ads", {"json": {"text": "hi", "user_groups": ["a\u0000"]}}, "body.user_groups"),
    ("subscriber group NUL", "PUT", f"/subscribers/{CALLEE}", {"json": {"group": "a\u0000b"}}, "body.group"),
    ("patch forward_to NUL", "PATCH", f"/subscribers/{CALLEE}", {"json": {"forward_to": "\u0000"}}, "body.forward_to"),
    ("blacklist number NUL", "POST", f"/subscribers/{CALLEE}/blacklist", {"json": {"number": "1\u0000"}}, "body.number"),
    ("callback caller NUL", "POST", "/callbacks", {"json": {"caller": "\u0000", "callee": CALLEE}}, "body.caller"),
    ("list group NUL", "GET", "/subscribers", {"params": {"group": "a\u0000b"}}, "group"),
    ("cdrs msisdn NUL", "GET", "/cdrs", {"params": {"msisdn": "86139\u0000"}}, "msisdn"),
    ("path msisdn NUL", "GET", "/subscribers/86139%00", {}, "msisdn"),
    ("unblock number NUL", "DELETE", f"/subscribers/{CALLEE}/blacklist/1%00", {}, "number"),
    ("subscribers cursor NUL", "GET", "/subscribers", {"params": {"cursor": cursor(msisdn="a\u0000")}}, "cursor"),
    ("missed-calls cursor year 0", "GET", f"/subscribers/{CALLEE}/missed-calls", {"params": {"cursor": cursor(at=EARLY, id=1)}}, "cursor"),
    ("missed-calls cursor naive", "GET", f"/subscribers/{CALLEE}/missed-calls", {"params": {"cursor": cursor(at="2026-01-01T00:00:00", id=1)}}, "cursor"),
    ("cdrs cursor year 10000", "GET", "/cdrs", {"params": {"cursor": cursor(at=LATE, id=1)}}, "cursor"),
    ("cdrs cursor NUL", "GET", "/cdrs", {"params": {"cursor": cursor(at="2026-01-01T00:00:00+00:00\u0000", id=1)}}, "cursor"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "kw", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_input_is_422_naming_the_field(
    clean_pool: asyncpg.Pool, method: str, path: str, kw: dict[str, Any], field: str
) -> None:
    async with serve_api(clean_pool) as api:
        token = await api.token("boss")
        async with api.client(token) as c:
            assert (await c.put(f"/subscribers/{CALLEE}", json={})).status_code == 201
            problem(await c.request(method, path, **kw), 422, field)


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"deposited_at": LATE}, "body.deposited_at"),
        ({"deposited_at": EARLY}, "body.deposited_at"),
        ({"caller": "8613700001111\u0000"}, "body.caller"),
        ({"callee": CALLEE + "\u0000"}, "body.callee"),
    ],
    ids=["deposited_at year 10000", "deposited_at year 0", "caller NUL", "callee NUL"],
)
async def test_bad_deposit_form_is_422_naming_the_field(
    clean_pool: asyncpg.Pool, form: dict[str, str], field: str
) -> None:
    cfg = parse_config("[voicemail]\nmax_seconds = 10\nmax_bytes = 200000\n")
    async with serve_api(clean_pool, cfg) as api:
        token = await api.token("ivr")
        async with api.client(token) as c:
            put = await c.put(f"/subscribers/{CALLEE}", json={"services": ["voicemail"]})
            assert put.status_code == 201
            data = {"callee": CALLEE, "deposited_at": "2026-01-01T00:00:00Z", "duration": "1"}
            r = await c.post(
                "/voicemail", data=data | form, files={"audio": ("m.wav", wav(1.0), "audio/wav")}
            )
            problem(r, 422, field)
            assert await clean_pool.fetchval("SELECT count(*) FROM voicemail") == 0


async def test_errors_name_the_field_at_fault(clean_pool: asyncpg.Pool) -> None:
    other = "8613912345679"
    async with serve_api(clean_pool) as api:
        token = await api.token("boss")
        async with api.client(token) as c:
            assert (
                await c.put(f"/subscribers/{CALLEE}", json={"imsi": "460001234567890"})
            ).status_code == 201
            # an IMSI another subscriber holds: on create, on replace, on change
            r = await c.put(f"/subscribers/{other}", json={"imsi": "460001234567890"})
            problem(r, 409, "imsi")
            assert (await c.put(f"/subscribers/{other}", json={})).status_code == 201
            problem(
                await c.put(f"/subscribers/{other}", json={"imsi": "460001234567890"}), 409, "imsi"
            )
            problem(
                await c.patch(f"/subscribers/{other}", json={"imsi": "460001234567890"}),
                409,
                "imsi",
            )
            # the call inquiry of a number that is not one names the path's msisdn
            problem(await c.get("/subscribers/12ab/missed-calls"), 422, "msisdn")
            # a body that is not JSON at all: 400 naming the body, as the README says
            for method, path in (("PUT", f"/subscribers/{other}"), ("POST", "/ads")):
                r = await c.request(
                    method,
                    path,
                    content=b'{"group": ',
                    headers={"Content-Type": "application/json"},
                )
                body = problem(r, 400, "body")
                assert "JSON" in body["detail"], body
            # JSON, but not the shape: 422 naming the part
            problem(await c.put(f"/subscribers/{other}", json=[1]), 422, "body")


async def post_raw(
    port: int,
    path: str,
    headers: dict[str, str],
    chunks: int,
    chunk: bytes,
    *,
    framed: bool,
    first: bytes = b"",
) -> tuple[int | None, dict[str, Any], int]:
    """POST over a bare socket: the headers, then up to ``chunks`` chunks (HTTP/1.1 chunked
    framing when ``framed``) while the server reads them; (status, problem, octets sent).

    The status is None when the connection was reset before the answer could be read: a server
    that closes a connection whose request it did not read makes its kernel send a reset, which
    may discard an answer not yet read (RFC 9112 §9.6)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"POST /api/v1{path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    reading = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
    sent = 0
    try:
        for i in range(chunks):
            if reading.done():
                break
            data = first + chunk if i == 0 else chunk
            writer.write(b"%x\r\n%s\r\n" % (len(data), data) if framed else data)
            sent += len(chunk)
            drain = asyncio.ensure_future(writer.drain())
            await asyncio.wait([drain, reading], return_when=asyncio.FIRST_COMPLETED)
            if not drain.done():
                drain.cancel()
                break
            drain.result()
        else:
            if framed:
                writer.write(b"0\r\n\r\n")  # the sender is done
        head = (await asyncio.wait_for(reading, 30)).decode()
        status = int(head.split(" ", 2)[1])
        length = re.search(r"(?i)content-length: *(\d+)", head)
        assert length is not None, head
        body = json.loads(await reader.readexactly(int(length.group(1))))
    except (ConnectionError, asyncio.IncompleteReadError):
        return None, {}, sent
    finally:
        writer.close()
    return status, body, sent


async def test_large_uploads_are_refused_before_being_read_whole(clean_pool: asyncpg.Pool) -> None:
    cfg = parse_config("[voicemail]\nmax_bytes = 100000\n[api]\nmax_import_bytes = 100000\n")
    total = 512  # chunks of 64 KiB: 32 MiB, far more than any socket buffer holds
    chunk = b"\x00" * 65536
    async with serve_api(clean_pool, cfg) as api:
        token = await api.token("ivr")
        port = api.server.port
        auth = {"Authorization": f"Bearer {token}"}
        form = {"Content-Type": "multipart/form-data; boundary=b"}
        # a length over the limit: answered at once, the body never sent
        for path, ctype, field in (
            ("/voicemail", form, "audio"),
            ("/imports", {"Content-Type": "text/csv"}, "body"),
            ("/ads", {"Content-Type": "application/json"}, "body"),
        ):
            h = auth | ctype | {"Content-Length": str(10**9)}
            status, body, sent = await post_raw(port, path, h, 0, b"", framed=False)
            assert (status, body["field"], sent) == (413, field, 0), (path, body)
        # no length (chunked): refused once past the limit, long before the sender is done
        starts = {
            "/voicemail": b"--b\r\nContent-Disposition: form-data; name=callee\r\n\r\n"
            + CALLEE.encode()
            + b"\r\n--b\r\nContent-Disposition: form-data; name=audio; filename=m.wav\r\n"
            b"Content-Type: audio/wav\r\n\r\n",
            "/imports": b"msisdn,services,group,language\n",
        }
        for path, ctype, field in (
            ("/voicemail", form, "audio"),
            ("/imports", {"Content-Type": "text/csv"}, "body"),
            ("/ads", {"Content-Type": "application/json"}, "body"),
        ):
            h = auth | ctype | {"Transfer-Encoding": "chunked"}
            start = starts.get(path, b"")
            status, body, sent = await post_raw(
                port, path, h, total, chunk, framed=True, first=start
            )
            assert status in (413, None) and body.get("field", field) == field, (path, body)
            assert sent < total * len(chunk) // 2, (path, sent)
            # and the answer, when the sender stops just past the limit (8 KiB at most)
            small = chunk[:4096]
            n = limits.limit_of(cfg, "POST", path)[0] // len(small) + 2
            status, body, _ = await post_raw(port, path, h, n, small, framed=True, first=start)
            assert (status, body["field"]) == (413, field), (path, body)
        assert await clean_pool.fetchval("SELECT count(*) FROM voicemail") == 0
        assert await clean_pool.fetchval("SELECT count(*) FROM import_job") == 0
        # within the limits all is as before
        async with api.client(token) as c:
            assert (
                await c.put(f"/subscribers/{CALLEE}", json={"services": ["voicemail"]})
            ).status_code == 201
            data = {"callee": CALLEE, "deposited_at": "2026-01-01T00:00:00Z", "duration": "1"}
            r = await c.post(
                "/voicemail", data=data, files={"audio": ("m.wav", wav(1.0), "audio/wav")}
            )
            assert r.status_code == 201, r.text
