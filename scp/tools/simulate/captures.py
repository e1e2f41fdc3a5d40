"""The demo captures in ``pcaps/``: each scenario run against an in-process SCP, both
directions written to a pcap (SCTP-framed M3UA, ``scp.adapters.capture``).

The SCP side is the node's own TC-users (:func:`scp.app.build_users`) on a database holding the
demo subscribers (:func:`scp.tools.demo.seed_subscribers`): the captures show what
``mcn-scp run`` answers, ARCHITECTURE §4. :data:`DEMO_CAPTURES` are the connect-mode call
flows and presence reports, :data:`IVR_CAPTURES` the caller menu and self-service in the
``[ivr] mode`` each names. Regenerate them all (on a scratch copy of ``$MCN_DATABASE_URL`` or
of the embedded server, dropped afterwards) with::

    python -m scp.tools.simulate.captures pcaps
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg

from scp.adapters.capture import SctpPcapWriter
from scp.adapters.clock import utcnow
from scp.config import Config, parse_config
from scp.service.notifications import local_day
from scp.state.scratch import ScratchDatabase
from scp.tools.demo import seed_subscribers
from scp.tools.simulate.network import Simulator, run_scenario
from scp.tools.simulate.scenarios import CallResult, Numbers
from scp.tools.simulate.transports import connect_in_process

__all__ = ["DEMO_CAPTURES", "IVR_CAPTURES", "regenerate", "write_demo_captures"]

DEMO_CAPTURES: dict[str, str] = {
    "demo-missed-call.pcap": "not-reachable-then-present",
    "busy.pcap": "busy",
    "no-answer.pcap": "no-answer",
    "present-vlr.pcap": "present-vlr",
}
"""Captures of the ARCHITECTURE §4 connect-mode flow ([ivr] mode = connect)."""

IVR_CAPTURES: dict[str, tuple[str, str]] = {
    "menu-sms-ctr.pcap": ("menu-sms", "ctr"),
    "menu-other-number-ctr.pcap": ("menu-other-number", "ctr"),
    "menu-voicemail-etc.pcap": ("menu-voicemail", "etc"),
    "selfcare-pin-ctr.pcap": ("selfcare-pin", "ctr"),
}
"""Caller menu and self-service captures, each in the [ivr] mode it names."""


async def _capture_one(
    path: Path, scenario: str, cfg: Config, pool: asyncpg.Pool, numbers: Numbers
) -> CallResult:
    w = SctpPcapWriter.open(str(path))
    try:
        conn, _scp = await connect_in_process(cfg, pool=pool, capture=w)
        try:
            sim = Simulator(conn.peer, cfg, numbers=numbers, timeout=3.0)
            res = await run_scenario(sim, scenario, settle=0.1)
            await asyncio.sleep(0.05)
        finally:
            await conn.close()
    finally:
        w.close()
    return res


async def write_demo_captures(
    out_dir: str | Path, pool: asyncpg.Pool, *, numbers: Numbers | None = None
) -> dict[str, CallResult]:
    """Run each demo scenario against an in-process SCP on ``pool`` (the demo subscribers
    provisioned in it) and write its pcap into ``out_dir``; the scenarios' results."""
    numbers = numbers or Numbers()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, CallResult] = {}
    for fname, scenario in DEMO_CAPTURES.items():
        out[fname] = await _capture_one(out_dir / fname, scenario, parse_config(""), pool, numbers)
    for fname, (scenario, mode) in IVR_CAPTURES.items():
        mcfg = parse_config(f'[ivr]\nmode = "{mode}"\n')
        out[fname] = await _capture_one(out_dir / fname, scenario, mcfg, pool, numbers)
    return out


async def regenerate(out_dir: str | Path) -> dict[str, CallResult]:
    """:func:`write_demo_captures` on a scratch database holding only the demo subscribers."""
    cfg = parse_config("")
    async with ScratchDatabase() as pool:
        await pool.execute("TRUNCATE subscriber CASCADE")
        await seed_subscribers(pool, today=local_day(utcnow(), cfg))
        return await write_demo_captures(out_dir, pool)


if __name__ == "__main__":
    for name, r in asyncio.run(regenerate(sys.argv[1] if len(sys.argv) > 1 else "pcaps")).items():
        print(f"{name}: {r.as_dict()}")
