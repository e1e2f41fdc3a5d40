"""Benchmark: the carrier API's subscriber PUT and GET against a bare endpoint of the same server.

Starts ``mcn-scp web`` (the one HTTP application, as ops would run it alone) on a throw-away
database, makes a token with ``mcn-scp api token create``, then drives three phases over
HTTP/1.1 keep-alive with ``--concurrency`` clients, each ``--seconds`` long:

* ``bare``: ``GET /healthz`` - the same server, routing and event loop, no token, no database;
  the ceiling any API route of this process can reach on this machine;
* ``put``: ``PUT /api/v1/subscribers/{msisdn}`` creating distinct subscribers (token check,
  validation, one transaction with its audit row);
* ``get``: ``GET /api/v1/subscribers/{msisdn}`` of the subscribers just made.

Prints one JSON object: requests/s of each phase, latency percentiles, and ``put_vs_bare`` /
``get_vs_bare`` (target >= 0.3). The client runs in this process and shares the machine: on few
cores the ratios are lower than a dedicated load generator would show.

Runs against a throw-away database on ``$MCN_DATABASE_URL``'s server if set, else on a temporary
pgserver instance (deleted afterwards). Usage:
    python bench/api.py [--seconds 5] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from scratch import free_port, scratch_database, wait_for_http

MCN_SCP = str(Path(sys.executable).parent / "mcn-scp")


async def phase(
    client: httpx.AsyncClient,
    seconds: float,
    concurrency: int,
    request: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
    expect: int,
) -> dict[str, Any]:
    """``concurrency`` workers sending ``request`` for ``seconds``; every answer must be
    ``expect`` (a benchmark of errors measures nothing)."""
    counter = itertools.count()
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop:
            i = next(counter)
            t0 = time.perf_counter()
            r = await request(client, i)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != expect:
                raise SystemExit(f"request {i}: {r.status_code} {r.text[:500]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }


async def drive(base: str, token: str, seconds: float, concurrency: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as c:
        made = 0

        async def bare(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.get("/healthz")

        async def put(c: httpx.AsyncClient, i: int) -> httpx.Response:
            nonlocal made
            made = max(made, i + 1)
            body = {"services": ["missed-call", "voicemail"], "group": "vip", "language": "en"}
            return await c.put(f"/api/v1/subscribers/86138{i:08d}", json=body, headers=auth)

        async def get(c: httpx.AsyncClient, i: int) -> httpx.Response:
            return await c.get(f"/api/v1/subscribers/86138{i % made:08d}", headers=auth)

        await phase(c, 1.0, concurrency, bare, 200)  # warm-up: connections, first imports
        b = await phase(c, seconds, concurrency, bare, 200)
        p = await phase(c, seconds, concurrency, put, 201)
        g = await phase(c, seconds, concurrency, get, 200)
    return {"bare": b, "put": p, "get": g}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()

    with scratch_database("mcn-bench-api-") as (dsn, tmp):
        run(args, dsn, tmp)


def run(args: argparse.Namespace, dsn: str, tmp: Path) -> None:
    port = free_port()
    conf = tmp / "web.toml"
    conf.write_text(f'[web]\nlisten = "127.0.0.1:{port}"\n[log]\nlevel = "warning"\n')
    env = {**os.environ, "MCN_DATABASE_URL": dsn}
    cmd = [MCN_SCP, "--config", str(conf)]
    web = None
    try:
        subprocess.run([*cmd, "db", "migrate"], env=env, check=True, capture_output=True)
        token = subprocess.run(
            [*cmd, "api", "token", "create", "bench", "--scope", "provisioning,read"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()[0]
        web = subprocess.Popen([*cmd, "web"], env=env, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        if not wait_for_http(f"{base}/healthz", web):
            raise SystemExit("mcn-scp web did not start")
        res = asyncio.run(drive(base, token, args.seconds, args.concurrency))
        report = {
            "seconds_per_phase": args.seconds,
            "concurrency": args.concurrency,
            "cpus": os.cpu_count(),
            "bare_per_s": res["bare"]["per_s"],
            "put_per_s": res["put"]["per_s"],
            "get_per_s": res["get"]["per_s"],
            "put_vs_bare": round(res["put"]["per_s"] / res["bare"]["per_s"], 3),
            "get_vs_bare": round(res["get"]["per_s"] / res["bare"]["per_s"], 3),
            "target_ratio": 0.3,
            "phases": res,
        }
        print(json.dumps(report, indent=2))
    finally:
        if web is not None:
            web.terminate()
            web.wait(15)


if __name__ == "__main__":
    main()
