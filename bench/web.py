"""Benchmark: the portal's missed-calls page against a bare endpoint of the same server, and
signalling latency with and without web load on the node that serves the web too.

First phase: the whole web application (``scp.web.app.create_app``, uvicorn through
``scp.adapters.http.HttpServer``) plus one bare route returning a fixed string, on an embedded
PostgreSQL (pgserver). A subscriber has 1,000 missed calls (distinct callers, inside the
window); the page shows them paginated. Load comes from a separate process (``--client``:
keep-alive HTTP/1.1 connections, closed loop), so the server's loop does only the server's
work: requests/s and p99 of ``/missed?page=N`` (logged in, pages 1-20 in turn) and of the bare
endpoint, same run; the ratio's target is >= 0.25.

Second phase: the node as ``mcn-scp run`` builds it (``scp.app.Services``: M3UA over TCP, the
call and MAP users and the outbox in this process, and the web application on ``[web] listen``
served by the node's web child, a process of its own at ``[web] nice``). The simulator's busy
calls come from another process (``--calls``: an M3UA ASP over TCP, InitialDP -> first answer
timed there), alone, then while a third process loads the node's missed-calls page, then
under the same load on a ``mcn-scp web`` that is no part of the node (same database, same
priority as the child): the last is what the machine's shared cores and PostgreSQL cost the
calls whoever serves the web, so the difference between the two loaded runs is what serving
the web from the node's child costs the node itself. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import structlog  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.responses import PlainTextResponse  # noqa: E402

from scp.adapters.clock import utcnow  # noqa: E402
from scp.adapters.http import HttpServer  # noqa: E402
from scp.app import Services  # noqa: E402
from scp.config import parse_config  # noqa: E402
from scp.flows import provisioning as prov  # noqa: E402
from scp.service.notifications import local_day  # noqa: E402
from scp.service.provisioning import Actor  # noqa: E402
from scp.state.db import open_pool, start_embedded, stop_embedded  # noqa: E402
from scp.state.migrate import migrate  # noqa: E402
from scp.tools.simulate.load import run_load  # noqa: E402
from scp.tools.simulate.network import Simulator  # noqa: E402
from scp.tools.simulate.scenarios import Numbers  # noqa: E402
from scp.tools.simulate.transports import connect_tcp  # noqa: E402
from scp.web.app import PARTS, create_app  # noqa: E402
from scp.web.context import WebContext  # noqa: E402
from tests.helpers import free_port, wait_for_http  # noqa: E402

CFG = parse_config("[smpp]\nbackend = 'console'\n[web]\nlogin_max_per_address = 0\n")
N = Numbers()
PIN = "246813"
MISSED = 1000
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def bare_part(app: FastAPI, ctx: WebContext) -> None:
    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> PlainTextResponse:
        return PlainTextResponse("ok")


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# -- the load generator (its own process) -----------------------------------------------------


async def _client(base: str, path: str, cookie: str, seconds: float, conc: int) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def worker(i: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, cookies={"mcn_portal": cookie}) as c:
            n = i
            while time.monotonic() < stop:
                url = path.replace("{page}", str(n % 20 + 1))
                n += 1
                t0 = time.perf_counter()
                r = await c.get(url)
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(conc)))
    elapsed = time.monotonic() - t0
    return {
        "requests": len(lat),
        "errors": errors,
        "req_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(pct(lat, 0.5) * 1000, 2),
        "p99_ms": round(pct(lat, 0.99) * 1000, 2),
    }


def load(base: str, path: str, cookie: str, seconds: float, conc: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        # one JSON argument: a session cookie may begin with "-", which argparse takes for an option
        [sys.executable, __file__, "--client", json.dumps([base, path, cookie, seconds, conc])],
        stdout=subprocess.PIPE,
        text=True,
    )


async def result(p: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = await asyncio.to_thread(p.communicate)
    return json.loads(out)  # type: ignore[no-any-return]


# -- the server process ---------------------------------------------------------------------------


async def seed(pool: Any) -> None:
    now = utcnow()
    actor = Actor("cli", "bench")
    await prov.add_subscriber(
        pool, actor, N.subscriber, today=local_day(now, CFG), services=("missed-call",), pin=PIN
    )
    rows = [
        (str(8613700000000 + i), N.subscriber, now - dt.timedelta(minutes=i % 600), "busy")
        for i in range(MISSED)
    ]
    await pool.executemany(
        "INSERT INTO missed_call (caller, callee, occurred_at, reason) VALUES ($1, $2, $3, $4)",
        rows,
    )


async def login(base: str) -> str:
    async with httpx.AsyncClient(base_url=base) as c:
        page = await c.get("/login")
        m = CSRF.search(page.text)
        assert m is not None
        await c.post("/login", data={"csrf": m.group(1), "number": N.subscriber, "pin": PIN})
        cookie = c.cookies.get("mcn_portal")
        r = await c.get("/missed?page=2")
        assert r.status_code == 200 and "/login" not in str(r.url), "login failed"
        assert cookie
        return cookie


def calls_summary(rep: Any) -> dict[str, Any]:
    return {
        "calls": rep.calls,
        "ok": rep.ok,
        "p50_ms": round(statistics.median(rep.latencies) * 1000, 2) if rep.latencies else None,
        "p99_ms": round(pct(rep.latencies, 0.99) * 1000, 2),
    }


async def _calls_client(host: str, port: int, calls: int) -> dict[str, Any]:
    """The switch: busy calls toward the node over M3UA/TCP, timed on this side."""
    conn = await connect_tcp(host, port)
    try:
        sim = Simulator(conn.peer, CFG, numbers=N, timeout=5.0)
        await run_load(sim, calls=50, concurrency=5)  # warm-up
        return calls_summary(await run_load(sim, calls=calls, concurrency=5))
    finally:
        await conn.close()


def calls_from_another_process(port: int, calls: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--calls", "127.0.0.1", str(port), str(calls)],
        stdout=subprocess.PIPE,
        text=True,
    )


async def node_under_web_load(
    pool: Any, dsn: str, seconds: float, conc: int, calls: int
) -> dict[str, Any]:
    """Signalling latency of the node as ``mcn-scp run`` runs it, alone and under web load."""
    cfg = parse_config(
        "[smpp]\nbackend = 'console'\n[m3ua]\nlisten = '127.0.0.1:0'\n"
        "[web]\nlisten = '127.0.0.1:0'\nlogin_max_per_address = 0\n[log]\nlevel = 'warning'\n"
    )
    services = Services(cfg, pool, dsn=dsn)
    await services.start()
    try:
        assert services.web is not None
        base = f"http://127.0.0.1:{services.web.port}"
        port = services.node.transport.listening[0][1]
        cookie = await login(base)
        alone = await result(calls_from_another_process(port, calls))
        loaded, page_during = await calls_under_load(base, cookie, port, seconds, conc, calls)
        # the same load on a web process that is no part of the node (`mcn-scp web`, the
        # deployment README recommends for heavy portal traffic), the node's web idle: what
        # web load costs the calls through the machine alone (shared cores, one PostgreSQL)
        with separate_web(dsn) as other:
            other_cookie = await login(other)
            apart, page_apart = await calls_under_load(
                other, other_cookie, port, seconds, conc, calls
            )
    finally:
        await services.stop()
    return {
        "alone": alone,
        "under_web_load": loaded,
        "missed_page_during_calls": page_during,
        "under_web_load_on_a_separate_web_process": apart,
        "missed_page_during_calls_separate": page_apart,
    }


async def calls_under_load(
    base: str, cookie: str, port: int, seconds: float, conc: int, calls: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The calls' latency while another process loads ``base``'s missed-calls page."""
    busy = load(base, "/missed?page={page}", cookie, seconds, conc)
    await asyncio.sleep(1.0)  # the load is running
    loaded = await result(calls_from_another_process(port, calls))
    return loaded, await result(busy)


@contextlib.contextmanager
def separate_web(dsn: str) -> Iterator[str]:
    """``mcn-scp web`` on the same database, as a process of its own (the README's advice for
    heavy portal traffic), at the web child's priority (``[web] nice``) so that the one
    difference is whose process it is; its base URL."""
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as conf:
        conf.write(
            f"[smpp]\nbackend = 'console'\n[web]\nlisten = '127.0.0.1:{port}'\n"
            "login_max_per_address = 0\n[log]\nlevel = 'warning'\n"
        )
        conf.flush()
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("mcn-scp")), "web", "--config", conf.name],
            env={**os.environ, "MCN_DATABASE_URL": dsn},
            stdout=subprocess.DEVNULL,
            preexec_fn=lambda: os.nice(CFG.web.nice),
        )
        try:
            base = f"http://127.0.0.1:{port}"
            if not wait_for_http(f"{base}/healthz", proc, timeout=60):
                raise RuntimeError("mcn-scp web did not start")
            yield base
        finally:
            proc.terminate()
            proc.wait(30)


async def serve(dsn: str, seconds: float, conc: int, calls: int) -> dict[str, Any]:
    pool = await open_pool(dsn, min_size=2, max_size=10)
    await migrate(pool)
    await seed(pool)
    app = create_app(
        WebContext(cfg=CFG, pool=pool, wall_now=utcnow, role="node"), parts=(*PARTS, bare_part)
    )
    try:
        server = HttpServer(app, host="127.0.0.1", port=0, grace=1)
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            cookie = await login(base)
            await result(load(base, "/bench/bare", cookie, 2, conc))  # warm-up
            await result(load(base, "/missed?page={page}", cookie, 2, conc))
            bare = await result(load(base, "/bench/bare", cookie, seconds, conc))
            page = await result(load(base, "/missed?page={page}", cookie, seconds, conc))
        finally:
            await server.stop()
        node = await node_under_web_load(pool, dsn, seconds, conc, calls)
    finally:
        await pool.close()
    return {
        "bench": "web",
        "missed_calls": MISSED,
        "concurrency": conc,
        "bare": bare,
        "missed_page": page,
        "ratio": round(page["req_per_s"] / bare["req_per_s"], 3),
        "target_ratio": 0.25,
        "signalling_alone": node["alone"],
        "signalling_under_web_load": node["under_web_load"],
        "missed_page_during_calls": node["missed_page_during_calls"],
        "signalling_under_web_load_on_a_separate_web_process": node[
            "under_web_load_on_a_separate_web_process"
        ],
        "missed_page_during_calls_separate": node["missed_page_during_calls_separate"],
        "web_nice": CFG.web.nice,
        "note": "shared 2-core machine; HTTP load and calls each from a process of their own;"
        " the node's web in its web child",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", metavar="[BASE, PATH, COOKIE, SECONDS, CONC]")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--calls", nargs=3, metavar=("HOST", "PORT", "CALLS"))
    ap.add_argument("--call-count", type=int, default=1000)
    args = ap.parse_args()
    if args.calls:
        host, port, calls = args.calls
        print(json.dumps(asyncio.run(_calls_client(host, int(port), int(calls)))))
        return
    if args.client:
        base, path, cookie, seconds, conc = json.loads(args.client)
        print(json.dumps(asyncio.run(_client(base, path, cookie, float(seconds), int(conc)))))
        return
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        home = Path(d) / "pg"
        dsn = start_embedded(home)
        try:
            out = asyncio.run(serve(dsn, args.seconds, args.concurrency, args.call_count))
        finally:
            stop_embedded(home)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
