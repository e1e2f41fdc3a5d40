"""The carrier integration API under ``/api/v1``: BOSS / CRM provisioning in real time, the IVR
media server's side of every call, voice messages, bulk loads and billing reads.

A FastAPI application of its own, mounted on the one HTTP application (:mod:`scp.web.app`), so
it publishes its own OpenAPI document (``/api/v1/openapi.json``) and a browsable page of it:
Swagger UI at ``/api/v1/docs`` and ReDoc at ``/api/v1/redoc``, their scripts and styles served
from this process (``/api/v1/assets/``, the files the PyPI package ``fastapi-offline`` ships):
a carrier's network has no way to a CDN.

Routers: :mod:`.provisioning`, :mod:`.media`, :mod:`.bulk`, :mod:`.billing`; shared machinery in
:mod:`.common` (tokens and scopes, cursors, Idempotency-Key), :mod:`.problems` (RFC 9457) and
:mod:`.limits` (request bodies refused before they are read whole).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from starlette.routing import Mount

from scp.flows import api as api_flow
from scp.web.api import billing, bulk, common, limits, media, problems, provisioning
from scp.web.context import WebContext

PREFIX = "/api/v1"
ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"

DESCRIPTION = """\
The carrier integration API of mcn-scp (来电提醒 SCP).

**Authentication**: `Authorization: Bearer <token>`; a token is made with
`mcn-scp api token create NAME --scope SCOPE[,SCOPE]` (scopes `provisioning`, `media`,
`billing`, `read`). No or a wrong token: 401; a token without the route's scope: 403.

**Errors**: `application/problem+json` (RFC 9457) with `field` naming the request part at fault.

**POST** requests take an `Idempotency-Key` header: a retry with the same key gets the first
answer again (`Idempotent-Replayed: true`); the same key with another request: 422.

**Lists** page with `cursor` (opaque, from `next_cursor`) and `limit`.
"""


def build(ctx: WebContext) -> FastAPI:
    """The API application (mounted under :data:`PREFIX` by :func:`install`)."""
    api = FastAPI(
        title="mcn-scp carrier API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(common.no_nul)],
    )
    api.state.ctx = ctx
    api.add_middleware(limits.BodyLimit, cfg=lambda: ctx.cfg)
    api.state.import_tasks = set()
    problems.install(api)
    for r in (provisioning.router, media.router, bulk.router, billing.router):
        api.include_router(r)
    api.mount("/assets", StaticFiles(directory=ASSETS), name="api-assets")

    @api.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{PREFIX}/openapi.json",
            title="mcn-scp carrier API",
            swagger_js_url=f"{PREFIX}/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/assets/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/assets/favicon.png",
        )

    @api.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=f"{PREFIX}/openapi.json",
            title="mcn-scp carrier API",
            redoc_js_url=f"{PREFIX}/assets/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/assets/favicon.png",
            with_google_fonts=False,
        )

    plain_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = _problems_only(plain_openapi())
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]

    async def stop_imports() -> None:
        # an import still running when the process stops rolls back: say so on its job
        tasks: set[asyncio.Task[None]] = api.state.import_tasks
        ids = [getattr(t, "job_id", 0) for t in tasks]
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if ids:
            await api_flow.fail_unfinished_jobs(ctx.pool, ids, now=ctx.wall_now())

    ctx.stop_hooks.append(stop_imports)
    return api


def _problems_only(doc: dict[str, Any]) -> dict[str, Any]:
    """Every error is a problem document, 422 included (FastAPI documents its own validation
    error shape, which this API never sends)."""
    for item in doc.get("paths", {}).values():
        for op in item.values():
            if "requestBody" in op:  # a body that is not JSON / multipart at all, or too large
                op["responses"].setdefault("400", {"description": "The body cannot be parsed"})
                op["responses"].setdefault("413", {"description": "Content too large"})
            for status, r in op.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    r["content"] = {
                        problems.MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc


def install(app: FastAPI, ctx: WebContext) -> None:
    """Mount the API on the one application."""
    app.mount(PREFIX, build(ctx))
    # A path parameter may hold any character, a newline too; the mount's pattern (".*") would
    # not match one, and the outer application, not this API, would answer that request.
    mount = app.router.routes[-1]
    assert isinstance(mount, Mount)
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
