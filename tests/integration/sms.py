"""The node's SMS path against the test SMSC, for integration tests: the outbox of
``scp.flows.outbox.build_outbox`` bound to an ``SmppGateway`` on the running ``Smppd``, and a
send of everything due that waits for the SMSC's receipts (a condition, never a duration).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

from scp.adapters.clock import utcnow
from scp.adapters.smpp import SmppGateway, SmppGatewayConfig
from scp.config import Config
from scp.flows.outbox import OutboxSender, build_outbox
from scp.state.outbox import NotifyingOutbox
from tests.helpers import eventually
from tests.integration.smppd import Smppd


@asynccontextmanager
async def outbox_gateway(
    pool: asyncpg.Pool, cfg: Config, smppd: Smppd, *, foreign_receipts: bool = False
) -> AsyncIterator[tuple[NotifyingOutbox, SmppGateway]]:
    """The node's outbox and a gateway bound to ``smppd`` that hands it receipts and MO SMS
    (and, with ``foreign_receipts``, receipts of subscribers' own SMS); it stops on the way
    out."""
    ob = build_outbox(pool, cfg)
    gw = SmppGateway(
        SmppGatewayConfig(host="127.0.0.1", port=smppd.port),
        on_receipt=ob.record_receipt,
        on_mo=ob.record_mo,
        on_foreign_receipt=ob.record_foreign_receipt if foreign_receipts else None,
    )
    gw.start()
    await gw.wait_ready()
    try:
        yield ob, gw
    finally:
        await gw.stop()


async def send_outbox(
    pool: asyncpg.Pool,
    cfg: Config,
    smppd: Smppd,
    *,
    pending: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Send every SMS due to ``smppd`` as the node's sender does; then, with ``pending`` (true
    while SMS still wait for their receipts), wait until it is false. The 30 s bound is for a
    loaded machine, not a speed check."""
    async with outbox_gateway(pool, cfg, smppd) as (ob, gw):
        sender = OutboxSender(clock=utcnow, outbox=ob, gateway=gw, poll_interval=0.05)
        await sender.run_until_idle(idle_for=0.5)
        if pending is not None:
            check = pending

            async def settled() -> bool:
                return not await check()

            await eventually(settled, what="receipts did not arrive", timeout=30, interval=0.05)
