"""Builds the ASGI application (FastAPI) from its parts; :mod:`scp.app` and ``mcn-scp web``
serve it with :class:`scp.adapters.http.HttpServer`.

Each part of the site (health, portal, console, API, metrics) is a module with an
``install(app, ctx)`` function registered in :data:`PARTS`; a part mounts its routes under its
own prefix and may keep its own state on ``ctx``. The application has no documentation pages
of its own: the API part publishes its OpenAPI document under its prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import FastAPI

from scp.web import api, console, health, metrics, portal
from scp.web.context import WebContext
from scp.web.ui import common as ui

Part = Callable[[FastAPI, WebContext], None]

# The parts of the site, installed in this order.
PARTS: Sequence[Part] = (
    health.install,
    metrics.install,
    api.install,
    ui.install,
    console.install,
    portal.install,
)


def create_app(ctx: WebContext, *, parts: Sequence[Part] = PARTS) -> FastAPI:
    """The application with every part installed."""
    app = FastAPI(
        title="mcn-scp",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    for install in parts:
        install(app, ctx)
    return app
