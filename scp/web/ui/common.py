"""The routes the portal and the console share: the style sheet and the language switch."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from scp.web.context import WebContext
from scp.web.ui.pages import UI_DIR, Site, redirect, safe_next


def install(app: FastAPI, ctx: WebContext) -> None:
    app.mount("/static/ui", StaticFiles(directory=UI_DIR / "static"), name="ui-static")

    @app.get("/lang/{code}", include_in_schema=False)
    async def switch_language(code: str, request: Request) -> RedirectResponse:
        """The header's language links: a cookie, then back to the page (a GET: it changes
        only how pages read, nothing stored)."""
        resp = redirect(safe_next(request.query_params.get("next"), "/"))
        Site.set_language_cookie(ctx, request, resp, code)
        return resp
