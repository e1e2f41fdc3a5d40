"""What ``make run`` shows a newcomer: a missed call becoming an SMS, on the running node.

After the node is up (embedded PostgreSQL, console SMS, ``conf/example.toml``), :func:`run_demo`
seeds two demo subscribers through :mod:`scp.flows.provisioning` (the functions every channel
uses) and replays ``pcaps/demo-missed-call.pcap`` once against the node's own M3UA listener,
as a switch and HLR would send it (live replay, :func:`scp.replay.replay_live`):

1. the MSC's InitialDP for the subscriber (TS 29.078 §6.1.2.1, termAttemptAuthorized),
2. its EventReportBCSM tBusy with busyCause 20, subscriber absent (ARCHITECTURE §4),
3. the HLR's AlertServiceCentre when the subscriber is reachable again (TS 29.002 §12.5).

The node records the missed call and queues the notification SMS; the console SMS sink prints
it. The demo narrates each step on stdout and never stops the node: a failure is reported
and the node keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

from scp.flows import billing, selfservice
from scp.flows import provisioning as prov
from scp.primitives import PointCodeFormat
from scp.service.notifications import local_day
from scp.service.provisioning import Actor, Conflict
from scp.tools.replay.live import replay_live

__all__ = [
    "DEMO_CAPTURE",
    "DEMO_OPERATOR",
    "DEMO_SUBSCRIBERS",
    "demo_capture_path",
    "run_demo",
    "seed_operator",
    "seed_products",
    "seed_subscribers",
]

# The numbers pcaps/demo-missed-call.pcap carries (scp.tools.simulate.scenarios.Numbers defaults).
DEMO_SUBSCRIBERS: tuple[tuple[str, str], ...] = (
    ("8613800138000", "en"),  # the called subscriber of the demo capture
    ("8613900139000", "zh"),  # the caller, a subscriber too (so both directions can be tried)
)
DEMO_CAPTURE = "demo-missed-call.pcap"
# The console's demo account (README): a supervisor, so every page of /console/ can be tried.
# Only `make run --demo` creates it; a real deployment adds staff with `mcn-scp operator add`.
DEMO_OPERATOR = ("demo", "supervisor", "demo-password")


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def demo_capture_path() -> Path | None:
    """``pcaps/demo-missed-call.pcap`` next to the package (source checkout) or in the cwd."""
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        p = base / "pcaps" / DEMO_CAPTURE
        if p.is_file():
            return p
    return None


async def seed_subscribers(pool: Any, *, today: dt.date) -> list[str]:
    """Add the demo subscribers (missed-call and busy services from ``today``) unless they
    exist."""
    actor = Actor("system", "demo")
    added = []
    for msisdn, lang in DEMO_SUBSCRIBERS:
        try:
            await prov.add_subscriber(
                pool,
                actor,
                msisdn,
                today=today,
                services=("missed-call", "busy", "voicemail"),
                language=lang,
                pin="246813",
            )
            added.append(msisdn)
        except Conflict:
            pass
    return added


# The brief's example configuration: 来话提示 (missed-call) and 遇忙提示 (busy) at 2 元 a month.
DEMO_PRICES = (("missed-call", "2.00"), ("busy", "2.00"))


async def seed_products(pool: Any, *, today: dt.date) -> list[str]:
    """Price the two notification products at 2 元 a month from ``today``, each only if it has
    no price list yet (an operator's prices are never overwritten)."""
    actor = Actor("system", "demo")
    priced = {p.service for p in await billing.list_prices(pool)}
    added = []
    for service, fee in DEMO_PRICES:
        if service not in priced:
            await billing.set_price(pool, actor, service, fee, today=today)
            added.append(service)
    return added


async def seed_operator(pool: Any) -> bool:
    """Add the demo operator account unless it exists (True when added)."""
    name, role, password = DEMO_OPERATOR
    try:
        await selfservice.add_operator(pool, Actor("system", "demo"), name, role, password)
    except Conflict:
        return False
    return True


async def _sms_rows(pool: Any, floor: int) -> list[Any]:
    try:
        return list(
            await pool.fetch(
                "SELECT id, destination, text, status FROM sms_outbox WHERE id > $1 ORDER BY id",
                floor,
            )
        )
    except Exception:  # noqa: BLE001 - the demo must never take the node down
        return []


async def run_demo(
    node: Any, pool: Any, cfg: Any, *, capture: Path | None = None, wait_sms: float = 8.0
) -> None:
    """Seed, replay the demo capture against ``node`` once, show the SMS; never raises."""
    try:
        await _run(node, pool, cfg, capture, wait_sms)
    except Exception as exc:  # noqa: BLE001 - narrate, keep the node serving
        _say(f"demo stopped early: {type(exc).__name__}: {exc}")
    _say("the node keeps serving; press Ctrl-C to stop it")


async def _run(node: Any, pool: Any, cfg: Any, capture: Path | None, wait_sms: float) -> None:
    added = await seed_subscribers(pool, today=local_day(node.wall_now(), cfg))
    subs = ", ".join(m for m, _ in DEMO_SUBSCRIBERS)
    priced = await seed_products(pool, today=local_day(node.wall_now(), cfg))
    if priced:
        _say(f"products priced at 2.00 CNY a month: {', '.join(priced)} (mcn-scp products list)")
    _say(f"demo subscribers: {subs}" + (f" (added {len(added)})" if added else " (already there)"))
    await seed_operator(pool)
    if cfg.web.listen:
        name, role, password = DEMO_OPERATOR
        host = cfg.web.listen.rsplit(":", 1)
        base = f"http://{host[0]}:{host[1]}"
        _say(f"portal {base}/ (a demo subscriber and PIN 246813)")
        _say(f"console {base}/console/ (user {name}, password {password}, {role})")
    path = capture or demo_capture_path()
    if path is None:
        _say(f"pcaps/{DEMO_CAPTURE} not found: nothing to replay")
        return
    if cfg.m3ua.role != "server" or cfg.m3ua.transport != "tcp" or not node.transport.listening:
        _say(
            "the demo replays over M3UA/TCP to the node's listener: needs m3ua.role = server "
            "and transport = tcp"
        )
        return
    host, port = node.transport.listening[0][:2]
    floor = 0
    try:
        floor = int(await pool.fetchval("SELECT coalesce(max(id), 0) FROM sms_outbox"))
    except Exception:  # noqa: BLE001
        pass
    _say(
        f"replaying {path.name} as the MSC and HLR toward {host}:{port}: "
        "a call to 8613800138000, who is not reachable, then the HLR says they are back"
    )

    def show(kind: str, payload: Any) -> None:
        if kind == "message":
            who = {"sent": "switch/HLR ->", "ours": "<- SCP      "}.get(payload.source)
            if who is None:
                if payload.note and "not sent" in payload.note:
                    _say(f"  skipped: {payload.tcap} ({payload.note})")
                return
            ops = " ".join(o.text() for o in payload.ops) or "-"
            note = f" ({payload.note})" if payload.note else ""
            _say(f"  {who} {payload.tcap or payload.sccp} {ops}{note}")
        elif kind == "warning":
            _say(f"  warning: {payload.reason}")

    # the bundled capture is ITU; the node may be configured for China's point codes
    summary = await replay_live(
        path,
        cfg,
        f"{host}:{port}",
        emit=show,
        speed=1.0,
        answer_timeout=3.0,
        capture_pcf=PointCodeFormat.ITU,
    )
    _say(f"replay done: {summary.fed} message(s) sent, {summary.answers} answer(s)")
    deadline = time.monotonic() + wait_sms
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = await _sms_rows(pool, floor)
        if rows:
            break
        await asyncio.sleep(0.2)
    if rows:
        for r in rows:
            _say(f"SMS to {r['destination']} ({r['status']}): {r['text']}")
    else:
        _say("no SMS queued")
