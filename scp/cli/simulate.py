"""``mcn-scp simulate`` (ARCHITECTURE §3): play MSC, SRF, HLR and VLR toward an SCP, one
scenario with its verdict or ``--calls N`` for load.

A thin shell over :mod:`scp.tools.simulate`. Exit codes: 0 done (a verdict of "not checked"
included); 1 a scenario contradicted, or the target SCP unreachable; 2 bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import asyncpg
import click

from scp.adapters.capture import SctpPcapWriter
from scp.adapters.clock import utcnow
from scp.cli.common import (
    VERBOSE_OPTION,
    BadInputError,
    Failure,
    get_config,
    tool_database,
    tool_verbosity,
)
from scp.config import Config
from scp.service.notifications import local_day
from scp.tools.replay.live import parse_target
from scp.tools.simulate.load import run_load
from scp.tools.simulate.network import Simulator, run_scenario
from scp.tools.simulate.scenarios import SCENARIOS, Numbers, provision_for_scenarios
from scp.tools.simulate.transports import connect_in_process, connect_tcp

__all__ = ["simulate"]


@click.command()
@click.argument("scenario", required=False)
@click.option(
    "--target",
    metavar="HOST:PORT",
    default=None,
    help="The running SCP (M3UA over TCP); default: an in-process SCP.",
)
@click.option(
    "--calls",
    type=click.IntRange(min=1),
    default=None,
    help="Load: number of calls (busy call flow unless SCENARIO is given).",
)
@click.option("--concurrency", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--capture",
    "capture_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write every M3UA message both ways to this pcap.",
)
@click.option("--subscriber", default=None, help="Called subscriber MSISDN.")
@click.option("--caller", default=None, help="Calling number (load: the first of a range).")
@click.option("--pin", default=None, help="Self-service PIN the subscriber enters.")
@click.option(
    "--timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds to wait for each SCP answer.",
)
@click.option("--list", "list_", is_flag=True, help="List the scenarios.")
@click.option(
    "--live-db",
    is_flag=True,
    help="In-process SCP: use the configured database, not a scratch copy.",
)
@VERBOSE_OPTION
@click.pass_context
def simulate(
    ctx: click.Context,
    scenario: str | None,
    target: str | None,
    calls: int | None,
    concurrency: int,
    as_json: bool,
    capture_out: str | None,
    subscriber: str | None,
    caller: str | None,
    pin: str | None,
    timeout: float,
    list_: bool,
    live_db: bool,
    verbose: int,
) -> None:
    """Act as MSC, SRF, HLR and VLR toward the SCP: a scenario, or --calls N for load.

    A scenario ends with its verdict: ok when what it is about happened (the operations the
    SCP sent, the rows it wrote, the SMS it queued), "not checked" naming what could not be
    seen from here, or "contradicted" naming what went otherwise (exit code 1). In-process, on
    the scratch database, the scenario's subscriber is provisioned there if missing.
    """
    tool_verbosity(ctx, verbose)
    if list_ or (scenario is None and calls is None):
        for name, what in SCENARIOS.items():
            click.echo(f"{name:28} {what}")
        if not list_:
            raise BadInputError("give a SCENARIO or --calls N")
        return
    if scenario is not None and scenario not in SCENARIOS:
        raise BadInputError(f"SCENARIO {scenario!r}: one of {', '.join(SCENARIOS)}")
    for name, v in (("--subscriber", subscriber), ("--caller", caller), ("--pin", pin)):
        if v is not None and not v.isdigit():
            raise BadInputError(f"{name} {v!r}: digits only")
    host_port = None
    if target is not None:
        try:
            host_port = parse_target(target)
        except ValueError as e:
            raise BadInputError(str(e)) from None
    cfg = get_config(ctx)
    kw = {
        k: v
        for k, v in (("subscriber", subscriber), ("caller", caller), ("pin", pin))
        if v is not None
    }
    numbers = Numbers(**kw)
    try:
        out = asyncio.run(
            _simulate(
                cfg, scenario, host_port, calls, concurrency, numbers, timeout, capture_out, live_db
            )
        )
    except ConnectionError as e:
        raise Failure(str(e)) from None
    contradicted = False
    for d in out:
        contradicted |= d.get("verdict") == "contradicted"
        if as_json:
            click.echo(json.dumps(d, ensure_ascii=False))
        else:
            click.echo(_sim_text(d))
    if contradicted and calls is None:
        ctx.exit(1)


def _sim_text(d: dict[str, Any]) -> str:
    if d.get("type") == "load":
        lat = d["first_answer_ms"]
        return (
            f"{d['calls']} calls, concurrency {d['concurrency']}: {d['ok']} ok, "
            f"{d['failed']} failed in {d['elapsed_s']} s = {d['calls_per_s']} calls/s; "
            f"first answer p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms; "
            f"outcomes {d['outcomes']}"
        )
    lines = [
        f"{d['scenario']}: {d['verdict'].upper() if d['verdict'] != 'ok' else 'ok'}"
        f" - {d['outcome']}"
    ]
    for key, label in (
        ("contradicted", "contradicted"),
        ("not_checked", "not checked"),
        ("checked", "checked"),
        ("not_exercised", "not exercised"),
    ):
        for item in d.get(key) or ():
            lines.append(f"  {label}: {item}")
    tail = f"  SCP sent: {' '.join(d['received']) or 'nothing'}"
    if "first_answer_ms" in d:
        tail += f"; first answer {d['first_answer_ms']} ms"
    if d.get("map"):
        tail += f"; {d['map']}"
    return "\n".join([*lines, tail])


async def _simulate(
    cfg: Config,
    scenario: str | None,
    target: tuple[str, int] | None,
    calls: int | None,
    concurrency: int,
    numbers: Numbers,
    timeout: float,
    capture_out: str | None,
    live_db: bool,
) -> list[dict[str, Any]]:
    # closed in reverse: the connection, then the database, then the capture
    async with contextlib.AsyncExitStack() as stack:
        capture = None
        if capture_out is not None:
            capture = SctpPcapWriter.open(capture_out)
            stack.callback(capture.close)
        pool: asyncpg.Pool | None = None
        if target is not None:
            conn = await connect_tcp(
                target[0],
                target[1],
                scp_pc=cfg.m3ua.local_pc,
                routing_context=cfg.m3ua.routing_context,
                network_indicator=cfg.m3ua.network_indicator,
                capture=capture,
                pc_format=cfg.m3ua.pc_format,
            )
        else:
            pool = await stack.enter_async_context(tool_database(live_db))
            if not live_db:
                await provision_for_scenarios(  # the scratch copy only
                    pool, numbers, today=local_day(utcnow(), cfg)
                )
            conn, _ = await connect_in_process(cfg, pool=pool, capture=capture)
        stack.push_async_callback(conn.close)
        sim = Simulator(conn.peer, cfg, numbers=numbers, timeout=timeout)
        if calls is not None:
            rep = await run_load(
                sim, calls=calls, concurrency=concurrency, scenario=scenario or "busy"
            )
            return [rep.as_dict()]
        assert scenario is not None
        why = "--target: the SCP's database is not visible from here" if target else "no database"
        res = await run_scenario(sim, scenario, pool=pool, why_unseen=why)
        return [res.as_dict()]
