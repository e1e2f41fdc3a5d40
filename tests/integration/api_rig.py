"""The carrier API served for real in tests: the one HTTP application on a free loopback port,
a real PostgreSQL behind it, clients with real tokens, and recordings made here.
"""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from scp.adapters.clock import utcnow
from scp.adapters.http import HttpServer
from scp.config import Config, parse_config
from scp.flows import api as api_flow
from scp.service.provisioning import Actor
from scp.web.app import create_app
from scp.web.context import WebContext

ADMIN = Actor("cli", "test")
ALL_SCOPES = ("provisioning", "media", "billing", "read")


class Api:
    """A served API and a way to make clients for it."""

    def __init__(self, server: HttpServer, ctx: WebContext) -> None:
        self.server = server
        self.ctx = ctx
        self.base = f"http://127.0.0.1:{server.port}/api/v1"

    async def token(self, name: str, *scopes: str) -> str:
        _, token = await api_flow.create_client(
            self.ctx.pool, ADMIN, name, scopes or ALL_SCOPES, now=utcnow()
        )
        return token

    def client(
        self, token: str | None = None, *, headers: dict[str, str] | None = None
    ) -> httpx.AsyncClient:
        h = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base, headers=h | (headers or {}), timeout=30)


@asynccontextmanager
async def serve_api(pool: Any, cfg: Config | None = None) -> AsyncIterator[Api]:
    ctx = WebContext(cfg=cfg or parse_config(""), pool=pool, wall_now=utcnow, role="web")
    server = HttpServer(create_app(ctx), host="127.0.0.1", port=0, grace=1)
    await server.start()
    try:
        yield Api(server, ctx)
    finally:
        await server.stop()
        for hook in ctx.stop_hooks:
            await hook()


def wav(seconds: float, *, rate: int = 8000, seed: int = 1) -> bytes:
    """A 16-bit mono PCM WAV of ``seconds``, its samples varying with ``seed``."""
    n = int(seconds * rate)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(struct.pack("<h", (i * seed * 37) % 20000 - 10000) for i in range(n))
        )
    return buf.getvalue()


def amr(frames: int) -> bytes:
    """An AMR (narrowband) storage-format file of ``frames`` 12.2 kbit/s frames (20 ms each)."""
    return b"#!AMR\n" + b"".join(
        bytes([0x3C]) + bytes((i + k) % 256 for k in range(31)) for i in range(frames)
    )
