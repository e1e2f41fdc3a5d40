"""An HTTP client for the portal and the console as a browser without JavaScript uses them:
it keeps cookies, reads each form's CSRF token from the page, and posts forms.

Real HTTP (httpx) against the real application served by uvicorn on a real socket
(:func:`serve`); the clock of the web tier is the test's (``WebContext.wall_now``).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from scp.adapters.http import HttpServer
from scp.config import Config
from scp.web.app import create_app
from scp.web.context import WebContext

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clock:
    """The web tier's wall clock, moved by the test."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@asynccontextmanager
async def serve(
    cfg: Config,
    pool: Any,
    clock: Callable[[], dt.datetime],
    *,
    trusted_proxies: tuple[str, ...] = (),
) -> AsyncIterator[str]:
    """The whole web application on 127.0.0.1 (any free port); yields its base URL."""
    server = HttpServer(
        create_app(WebContext(cfg=cfg, pool=pool, wall_now=clock, role="web")),
        host="127.0.0.1",
        port=0,
        grace=1,
        trusted_proxies=trusted_proxies,
    )
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


class Browser:
    """Cookies, CSRF tokens and redirects, like a browser with scripts off."""

    def __init__(self, base: str) -> None:
        self.c = httpx.AsyncClient(base_url=base, follow_redirects=True, timeout=30)
        self.last: httpx.Response | None = None

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.c.aclose()

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        self.last = await self.c.get(url, **kw)
        return self.last

    def csrf(self, page: httpx.Response | None = None) -> str:
        page = page or self.last
        assert page is not None
        m = CSRF.search(page.text)
        assert m, f"no CSRF token on {page.url}"
        return html.unescape(m.group(1))

    async def post(
        self, url: str, data: dict[str, str], *, csrf: str | None = None, **kw: Any
    ) -> httpx.Response:
        """Post a form with the CSRF token of the last page (``csrf`` overrides it)."""
        body = {"csrf": self.csrf() if csrf is None else csrf, **data}
        self.last = await self.c.post(url, data=body, **kw)
        return self.last

    async def portal_login(self, number: str, pin: str) -> httpx.Response:
        await self.get("/login")
        return await self.post("/login", {"number": number, "pin": pin})

    async def console_login(self, name: str, password: str) -> httpx.Response:
        await self.get("/console/login")
        return await self.post("/console/login", {"name": name, "password": password})
