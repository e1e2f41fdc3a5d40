"""Bulk load through the API: ``POST /imports`` streams a CSV (the OSS bulk-load format of
``mcn-scp subscriber import``) into the same importer, as a job; ``GET /imports/{id}`` shows
its progress, outcome and bad lines.

The body is streamed to a temporary file as it arrives (flat memory, up to
``[api] max_import_bytes``), the job row is written (with the Idempotency-Key's answer, if any),
and the import runs in this process's event loop after the answer: one transaction, the same
validation, loading the same file twice changes nothing (:mod:`scp.flows.importer`). The job's
owner lock is taken before its row commits (:func:`scp.flows.api.own_import_job`), so a job
whose process died reads as failed; a retry with the job's Idempotency-Key gets the job as it
stands now.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from scp.flows import api as api_flow
from scp.flows.api import ApiClient
from scp.flows.provisioning import Db
from scp.service.notifications import local_day
from scp.web.api.common import actor, ctx_of, fingerprint, idempotent, json_response, require
from scp.web.api.models import ImportJobOut
from scp.web.api.problems import ApiProblem, responses, urn

router = APIRouter(tags=["bulk load"])

SPOOL = 8 * 1024 * 1024  # octets of an upload kept in memory before it spills to disk
_CSV = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "msisdn,services,group,language\n8613812345678,missed-call;busy,vip,zh\n",
            }
        },
    }
}


@router.post(
    "/imports",
    response_model=ImportJobOut,
    status_code=202,
    responses=responses(401, 403, 411, 413, 415, 422),
    openapi_extra=_CSV,
    summary="Bulk-load subscribers from CSV (header msisdn,services,group,language[,imsi,pin,"
    "notify_mode,forward_to]); skip_bad loads the good rows (scope provisioning;"
    " Idempotency-Key)",
)
async def post_import(
    request: Request,
    client: Annotated[ApiClient, Depends(require("provisioning"))],
    skip_bad: bool = False,
) -> Response:
    ctx = ctx_of(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("text/csv", "text/plain", "application/octet-stream"):
        raise ApiProblem(
            415,
            "Unsupported media type",
            "the body is a CSV file: Content-Type text/csv",
            kind=urn("unsupported-media"),
            field="Content-Type",
        )
    limit = ctx.cfg.api.max_import_bytes
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 - handed to the job
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiProblem(
                    413,
                    "Content too large",
                    f"more than the {limit} octets allowed",
                    kind=urn("too-large"),
                    field="body",
                )
            digest.update(chunk)
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    # One connection per bulk load, taken here and held until the job ends: the request's
    # transaction and then the import run on it (no second connection asked of the pool while
    # holding one, which many loads at once could wait on for ever), and it holds the job's lock.
    owner: asyncpg.Connection = await ctx.pool.acquire()
    started: list[int] = []

    async def run(db: Db) -> Response:
        async with owner.transaction():
            job = await api_flow.create_import_job(
                owner, actor(client), skip_bad=skip_bad, size=size, now=ctx.wall_now()
            )
            # owned before the row commits: nobody can see the job without its owner
            await api_flow.own_import_job(owner, job["id"])
        started.append(job["id"])
        return json_response(job, 202, location=f"/api/v1/imports/{job['id']}")

    try:
        resp = await idempotent(
            request, client, fingerprint(request, digest.digest()), run, conn=owner
        )
    except BaseException:
        spool.close()
        if started:  # rolled back: no job to run, but the session lock is held
            await api_flow.disown_import_job(ctx.pool, owner, started[0])
        else:
            await ctx.pool.release(owner)
        raise
    if resp.headers.get("idempotent-replayed"):
        # a retry gets its job as it stands now, not the "queued" of the first answer: a job
        # whose process died is failed by now, and the client sees it
        spool.close()
        await ctx.pool.release(owner)
        first = json.loads(bytes(resp.body)) if resp.status_code == 202 else None
        if first is None:
            return resp
        job = await api_flow.get_import_job(ctx.pool, first["id"], now=ctx.wall_now())
        out = json_response(job, 202, location=f"/api/v1/imports/{job['id']}")
        out.headers["Idempotent-Replayed"] = "true"
        return out
    if started:  # a new job (not a replayed answer): run it now that its row is committed
        jobs: set[asyncio.Task[None]] = request.app.state.import_tasks
        today = local_day(ctx.wall_now(), ctx.cfg)

        job_id = started[0]

        async def work() -> None:
            try:
                await api_flow.run_import_job(
                    ctx.pool,
                    owner,
                    actor(client),
                    job_id,
                    spool,
                    today=today,
                    skip_bad=skip_bad,
                    clock=ctx.wall_now,
                )
            finally:
                spool.close()

        task = asyncio.create_task(work(), name=f"import-job-{job_id}")
        task.job_id = job_id  # type: ignore[attr-defined]
        jobs.add(task)
        task.add_done_callback(jobs.discard)
    else:
        spool.close()
        await ctx.pool.release(owner)
    return resp


@router.get(
    "/imports/{job_id}",
    response_model=ImportJobOut,
    responses=responses(401, 403, 404, 422),
    summary="A bulk load's progress, outcome and bad lines (scope provisioning or read)",
)
async def get_import(
    request: Request,
    job_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    client: Annotated[ApiClient, Depends(require("provisioning", "read"))],
) -> Response:
    ctx = ctx_of(request)
    return json_response(await api_flow.get_import_job(ctx.pool, job_id, now=ctx.wall_now()))
