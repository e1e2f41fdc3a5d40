"""``/readyz`` of a running node against its real peers: a private PostgreSQL (tests/pgcluster.py)
the test stops and starts, the test SMSC (tests/smppd, npm ``smpp``) the node binds to, and the
simulator's switch holding an active ASP over M3UA/TCP. Ready (200) while all three are there;
503 naming the check that failed, the others still ready, when PostgreSQL is stopped and when
the SMSC is gone; ready again once each is back, with nobody restarting the node. The node's
web child answers (``mcn-scp run``'s web), asking the node for its checks over their link.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scp.app import Services
from scp.config import parse_config
from scp.state.db import open_pool
from scp.tools.simulate.transports import connect_tcp
from tests.integration.smppd import Smppd, smppd_fixture
from tests.pgcluster import PgCluster, cluster_fixture

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
[smpp]
backend = "smpp"
host = "127.0.0.1"
port = {smsc}
system_id = "mcn"
password = "secret"
[web]
listen = "127.0.0.1:0"
[notify]
alert_via_hlr = false
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    yield from cluster_fixture("mcn-readyz-")


@pytest.fixture(scope="module")
def smppd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smppd]:
    yield from smppd_fixture(tmp_path_factory, "smppd-readyz")


async def _readyz(c: httpx.AsyncClient, status: int) -> dict[str, Any]:
    """The checks of /readyz once it answers ``status`` (the node notices a peer going or
    coming back on its own time: the SMPP session's reconnect, the pool's next connect)."""
    deadline = time.monotonic() + 30
    while True:
        r = await c.get("/readyz")
        if r.status_code == status:
            body: dict[str, Any] = r.json()
            assert body["status"] == ("ready" if status == 200 else "not ready")
            return dict(body["checks"])
        assert time.monotonic() < deadline, f"/readyz never answered {status}: {r.text}"
        await asyncio.sleep(0.1)


def _failing(checks: dict[str, Any]) -> dict[str, str]:
    return {name: c["detail"] for name, c in checks.items() if not c["ready"]}


async def test_readyz_follows_the_database_and_the_smsc(
    cluster: PgCluster, smppd: Smppd, tmp_path: Path
) -> None:
    cfg = parse_config(CONFIG.format(smsc=smppd.port))
    dsn = cluster.create_database("readyz")
    pool = await open_pool(dsn, options=cfg.database)
    services = Services(cfg, pool, dsn=dsn)
    await services.start()
    conn = None
    try:
        assert services.web is not None  # the web child, asking the node over its link
        conn = await connect_tcp("127.0.0.1", services.node.transport.listening[0][1])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{services.web.port}") as c:
            checks = await _readyz(c, 200)
            assert checks == {
                "database": {"ready": True, "detail": "reachable"},
                "m3ua": {"ready": True, "detail": "application server active"},
                "smsc": {"ready": True, "detail": "bound"},
            }

            # the SMSC goes away: not ready for want of it alone
            await asyncio.to_thread(smppd.stop)
            assert _failing(await _readyz(c, 503)) == {"smsc": "not bound"}
            await asyncio.to_thread(smppd.start)
            await _readyz(c, 200)

            # PostgreSQL stopped: not ready for want of it alone, and the detail says why
            await asyncio.to_thread(cluster.stop)
            try:
                failing = _failing(await _readyz(c, 503))
                assert list(failing) == ["database"], failing
                # the error that made it so: "ConnectionRefusedError: ..." or the like
                assert failing["database"].partition(":")[0].endswith("Error"), failing
            finally:
                await asyncio.to_thread(cluster.start)
            await _readyz(c, 200)
    finally:
        if conn is not None:
            await conn.close()
        await services.stop()
        await pool.close()
