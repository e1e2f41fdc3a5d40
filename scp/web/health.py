"""``/healthz`` (the process is alive and its event loop answers) and ``/readyz`` (it can do its
work: database reachable, and for a node the M3UA application server active and the SMSC bound,
as the node answers over its link; a node that does not answer is not ready),
for the carrier's load balancer and orchestration (Kubernetes probe semantics: 200 or 503).
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from scp.web.context import WebContext

DB_TIMEOUT = 2.0  # s: a database slower than this is not ready


def install(app: FastAPI, ctx: WebContext) -> None:
    async def database() -> tuple[bool, str]:
        try:
            async with asyncio.timeout(DB_TIMEOUT):
                await ctx.pool.fetchval("SELECT 1")
        except Exception as e:  # any failure means not ready; the detail says which
            return False, f"{type(e).__name__}: {e}"[:200]
        return True, "reachable"

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "alive", "role": ctx.role})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = {"database": database, **ctx.ready_checks}
        results = {}
        for name, check in checks.items():
            ok, detail = await check()
            results[name] = {"ready": ok, "detail": detail}
        if ctx.node_ready is not None:
            for name, (ok, detail) in (await ctx.node_ready()).items():
                results[name] = {"ready": ok, "detail": detail}
        ready = all(r["ready"] for r in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": results},
            status_code=200 if ready else 503,
        )
