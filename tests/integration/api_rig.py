"""The carrier API served for real in tests: the one HTTP application on a free loopback port,
a real PostgreSQL behind it, clients with real tokens, and recordings made here.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from scp.adapters.clock import utcnow
from scp.adapters.http import HttpServer
from scp.config import Config, parse_config
from scp.flows import api as api_flow
from scp.service.provisioning import Actor
from scp.web.app import create_app
from scp.web.context import WebContext
from tests.helpers import free_port, wait_for_http

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


def cli(tmp: Path, db_dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``mcn-scp --config tmp/web.toml ARGS`` (as :func:`web_process` runs it)."""
    return subprocess.run(
        [sys.executable, "-m", "scp", "--config", str(tmp / "web.toml"), *args],
        env=dict(os.environ, MCN_DATABASE_URL=db_dsn),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def make_token(tmp: Path, db_dsn: str, name: str, scopes: str = ",".join(ALL_SCOPES)) -> str:
    """A token made by the real command ``mcn-scp api token create``."""
    token = cli(tmp, db_dsn, "api", "token", "create", name, "--scope", scopes).stdout
    assert token.startswith("mcn_"), token
    return token.splitlines()[0]


def write_web_conf(tmp: Path) -> str:
    """``tmp/web.toml`` on a free port; its base URL."""
    port = free_port()
    (tmp / "web.toml").write_text(
        f'[web]\nlisten = "127.0.0.1:{port}"\n[log]\nformat = "json"\nlevel = "error"\n'
    )
    return f"http://127.0.0.1:{port}"


@contextmanager
def web_process(tmp: Path, db_dsn: str, base: str) -> Iterator[subprocess.Popen[bytes]]:
    """``mcn-scp web`` as its own process (``tmp/web.toml``), serving once this yields; stopped
    (SIGTERM) at the end unless the caller ended it. Its log is ``tmp/web.log`` - a file: a pipe
    nobody reads while the run goes on would fill and stop the server in the middle of a write.
    """
    cmd = [sys.executable, "-m", "scp", "--config", str(tmp / "web.toml"), "web"]
    log_path = tmp / "web.log"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            cmd,
            env=dict(os.environ, MCN_DATABASE_URL=db_dsn),
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            if not wait_for_http(f"{base}/healthz", proc):
                raise RuntimeError(log_path.read_text(errors="replace")[-4000:] or "no start")
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


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
