"""The node's gate on web requests in progress (scp/adapters/http.py, ``[web] node_in_flight``):
at most ``limit`` requests in the application at once, the health and metrics probes never
waiting behind them, and a real uvicorn server serving through it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from scp.adapters.http import HttpServer, InFlightLimit


class _SlowApp:
    """An ASGI app that holds each request until released, counting those inside it."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            if scope["path"] not in ("/healthz", "/metrics"):
                await self.release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": scope["path"].encode()})
        finally:
            self.inside -= 1


async def _call(app: Any, path: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(m: dict[str, Any]) -> None:
        sent.append(m)

    await app({"type": "http", "path": path}, receive, send)
    return sent


async def test_at_most_limit_requests_inside_and_probes_pass() -> None:
    inner = _SlowApp()
    app = InFlightLimit(inner, 2)
    pages = [asyncio.create_task(_call(app, f"/missed?page={i}")) for i in range(6)]
    await asyncio.sleep(0.05)
    assert inner.inside == 2  # four wait at the gate
    # the probes are answered while the gate is full
    probe = await asyncio.wait_for(_call(app, "/healthz"), 1)
    assert probe[-1]["body"] == b"/healthz"
    inner.release.set()
    done = await asyncio.wait_for(asyncio.gather(*pages), 2)
    assert len(done) == 6 and inner.most == 3  # two pages and the probe
    assert inner.inside == 0


async def test_a_request_that_fails_gives_its_turn_back() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("handler bug")

    app = InFlightLimit(broken, 1)
    for _ in range(3):
        try:
            await asyncio.wait_for(_call(app, "/x"), 1)
        except RuntimeError:
            pass
    assert not app.gate.locked()


async def test_served_by_uvicorn_through_the_gate() -> None:
    inner = _SlowApp()
    inner.release.set()
    server = HttpServer(inner, host="127.0.0.1", port=0, in_flight=1, grace=1)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c:
            got = await asyncio.gather(*(c.get(f"/p{i}") for i in range(5)))
    finally:
        await server.stop()
    assert [r.text for r in got] == [f"/p{i}" for i in range(5)]
    assert inner.most == 1
