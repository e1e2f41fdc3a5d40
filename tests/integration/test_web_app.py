"""The one HTTP application, served for real: in-process (as ``mcn-scp web`` runs it), by
``mcn-scp run``'s web child when ``[web] listen`` is set, and alone by ``mcn-scp web``.

Real sockets, real PostgreSQL, real HTTP (httpx); nothing mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from scp.adapters.clock import utcnow
from scp.adapters.http import HttpServer
from scp.config import ConfigError, parse_config
from scp.web.app import create_app
from scp.web.context import WebContext
from tests.helpers import free_port

pytestmark = pytest.mark.integration


async def _serve(ctx: WebContext) -> HttpServer:
    server = HttpServer(create_app(ctx), host="127.0.0.1", port=0, grace=1)
    await server.start()
    return server


async def test_healthz_and_readyz_in_process(pool) -> None:  # type: ignore[no-untyped-def]
    async def smsc_down() -> tuple[bool, str]:
        return False, "not bound"

    ctx = WebContext(cfg=parse_config(""), pool=pool, wall_now=utcnow)
    server = await _serve(ctx)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c:
            r = await c.get("/healthz")
            assert r.status_code == 200 and r.json()["status"] == "alive"
            r = await c.get("/readyz")
            assert r.status_code == 200, r.text
            assert r.json()["checks"]["database"]["ready"] is True
            ctx.ready_checks["smsc"] = smsc_down  # what the node registers
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert r.json()["checks"]["smsc"] == {"ready": False, "detail": "not bound"}
            assert (await c.get("/no/such/page")).status_code == 404
    finally:
        await server.stop()
    with pytest.raises(httpx.ConnectError):  # stopped means the port is closed
        async with httpx.AsyncClient() as c:
            await c.get(f"http://127.0.0.1:{server.port}/healthz")


async def test_a_busy_port_fails_at_start(pool) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        ctx = WebContext(cfg=parse_config(""), pool=pool, wall_now=utcnow)
        server = HttpServer(create_app(ctx), host="127.0.0.1", port=port)
        with pytest.raises(OSError):
            await server.start()


def test_web_config_is_validated() -> None:
    assert parse_config("").web.listen == ""  # no HTTP unless asked
    for text, key in [
        ('[web]\nlisten = "8080"\n', "web.listen"),
        ('[web]\ntls_cert = "a.pem"\n', "web.tls_cert"),
        ('[web]\ntrusted_proxies = ["proxy"]\n', "web.trusted_proxies[0]"),
        ("[web]\nmax_connections = 0\n", "web.max_connections"),
    ]:
        with pytest.raises(ConfigError) as e:
            parse_config(text)
        assert e.value.key == key


def _start(args: list[str], conf: Path, db_dsn: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, MCN_DATABASE_URL=db_dsn)
    return subprocess.Popen(
        [sys.executable, "-m", "scp", *args, "--config", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


async def _until_up(proc: subprocess.Popen[bytes], url: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as c:
        while True:
            try:
                return await c.get(url)
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def _stop(proc: subprocess.Popen[bytes], sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, proc.stderr.read().decode() if proc.stderr else ""


async def test_mcn_scp_run_serves_the_web_and_stops_it(tmp_path: Path, db_dsn: str) -> None:
    m3ua, web = free_port(), free_port()
    conf = tmp_path / "node.toml"
    conf.write_text(
        f'[m3ua]\nlisten = "127.0.0.1:{m3ua}"\n[smpp]\nbackend = "console"\n'
        f'[web]\nlisten = "127.0.0.1:{web}"\n[log]\nformat = "json"\n'
    )
    proc = _start(["run"], conf, db_dsn)
    r = await _until_up(proc, f"http://127.0.0.1:{web}/healthz")
    assert r.status_code == 200 and r.json()["role"] == "node"
    async with httpx.AsyncClient() as c:
        ready = await c.get(f"http://127.0.0.1:{web}/readyz")
    # no ASP has come up: the node is alive but not ready, and says why
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"]["ready"] and checks["smsc"]["ready"]
    assert checks["m3ua"] == {"ready": False, "detail": "no active ASP"}
    rc, err = await _stop(proc, signal.SIGTERM)
    assert rc == 0, err
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert any(x.get("event") == "http serving" for x in lines), err
    assert "scp node stopped" in err


async def _expired_session(pool: asyncpg.Pool, token_hash: str) -> None:
    """A subscriber's session that ended a day ago (by the database's clock, as the process
    under test reads it)."""
    await pool.execute(
        "INSERT INTO web_session (token_hash, kind, subject, csrf, via, created_at, seen_at,"
        " expires_at) VALUES ($1, 'subscriber', '8613800138000', 'c', 'pin',"
        " now() - interval '2 days', now() - interval '2 days', now() - interval '1 day')",
        token_hash,
    )


async def _until_gone(pool: asyncpg.Pool, token_hash: str) -> None:
    """The purge runs at the process's start: wait (up to 30 s) until the row is gone."""
    q = "SELECT count(*) FROM web_session WHERE token_hash = $1"
    for _ in range(300):
        if await pool.fetchval(q, token_hash) == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the expired session was not purged")


async def test_mcn_scp_run_purges_expired_web_sessions(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    await _expired_session(pool, "gone-by-the-node")
    conf = tmp_path / "node.toml"
    conf.write_text(
        f'[m3ua]\nlisten = "127.0.0.1:{free_port()}"\n[smpp]\nbackend = "console"\n'
        '[log]\nformat = "json"\n'
    )
    proc = _start(["run"], conf, db_dsn)
    try:
        await _until_gone(pool, "gone-by-the-node")
    finally:
        rc, err = await _stop(proc, signal.SIGTERM)
    assert rc == 0, err


async def test_mcn_scp_web_alone(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    await _expired_session(pool, "gone-by-the-web")
    web = free_port()
    conf = tmp_path / "web.toml"
    conf.write_text(f'[web]\nlisten = "127.0.0.1:{web}"\n[log]\nformat = "json"\n')
    proc = _start(["web"], conf, db_dsn)
    r = await _until_up(proc, f"http://127.0.0.1:{web}/readyz")
    assert r.status_code == 200 and list(r.json()["checks"]) == ["database"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web}") as c:
        for url, form in (
            ("/login", 'action="/login"'),
            ("/console/login", 'action="/console/login"'),
        ):
            page = await c.get(url)
            assert page.status_code == 200 and form in page.text and 'name="csrf"' in page.text
    await _until_gone(pool, "gone-by-the-web")
    rc, err = await _stop(proc, signal.SIGINT)
    assert rc == 0, err
    assert "web stopped" in err


def test_mcn_scp_web_without_listen_exits_2(tmp_path: Path) -> None:
    conf = tmp_path / "none.toml"
    conf.write_text('[web]\nlisten = ""\n')
    out = subprocess.run(
        [sys.executable, "-m", "scp", "web", "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "web.listen" in out.stderr
