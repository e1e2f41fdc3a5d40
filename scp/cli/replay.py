"""Network engineers' commands of ``mcn-scp`` (ARCHITECTURE §3): ``replay`` and ``simulate``.

Thin shells over :mod:`scp.replay` and :mod:`scp.simulate`. Exit codes: 0 done; 2 bad input
(the message names the option or the file); 1 failure (e.g. the target SCP is unreachable).
``--json`` prints one JSON object per line: messages, warnings, dialogues, SMS, a summary last.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import IO, Any, Literal

import click

from scp.adapters.clock import utcnow
from scp.cli_provision import BadInputError, Failure, get_config
from scp.config import Config, ConfigError
from scp.primitives import PointCodeFormat
from scp.service.notifications import local_day

__all__ = ["register", "replay", "simulate"]


# Exit 2 (bad input, the message names the option or file) and exit 1 (could not be done),
# as every mcn-scp command answers them.
BadInput = BadInputError


def _speed(raw: str | None) -> float | None:
    """``--speed``: max (as fast as possible), capture (1x) or a factor like 10."""
    if raw is None or raw.lower() in ("max", "0", "asap"):
        return None
    if raw.lower() in ("capture", "real", "1x"):
        return 1.0
    try:
        v = float(raw.rstrip("xX"))
    except ValueError:
        raise BadInput(f"--speed {raw!r}: use max, capture or a factor such as 10") from None
    if v <= 0:
        raise BadInput(f"--speed {raw!r}: must be positive")
    return v


def _ssn_map(pairs: tuple[str, ...]) -> dict[int, str] | None:
    """``--ssn SSN=PROTO`` pairs: overrides of what the capture and the standard SSNs say."""
    if not pairs:
        return None
    out: dict[int, str] = {}
    for p in pairs:
        ssn, sep, proto = p.partition("=")
        if not sep or not ssn.strip().isdigit() or proto.strip() not in ("cap", "inap", "map"):
            raise BadInput(f"--ssn {p!r}: expected SSN=cap|inap|map, e.g. 200=cap")
        out[int(ssn)] = proto.strip()
    return out


def _verbosity(ctx: click.Context, verbose: int) -> None:
    """``-v``: the in-process node's log lines at info, ``-vv`` at debug.

    Replay and simulate print a ladder or a verdict on stdout; the node they drive logs only
    errors to stderr unless asked (``-v`` here, or ``mcn-scp --log-level``, which wins).
    """
    obj = ctx.obj or {}
    configure = obj.get("configure_logging")
    if verbose and obj.get("log_level") is None and configure is not None:
        configure("debug" if verbose > 1 else "info", "auto")


_VERBOSE = click.option(
    "-v",
    "--verbose",
    count=True,
    help="Show the SCP node's log lines (-v info, -vv debug) on stderr.",
)


class _Printer:
    """Text ladder or JSON lines on stdout, buffered; warnings counted."""

    def __init__(
        self, as_json: bool, out: IO[str] | None = None, legend: str | None = None
    ) -> None:
        self.as_json = as_json
        self.out = out or sys.stdout
        self.t0: float | None = None
        self.legend = legend  # one line said before the text ladder (what its marks mean)

    def message_writer(self) -> Any:
        """A fast ``write(entry)`` for the decode-only loop: one JSON encoder, batched writes."""
        from scp.replay import JsonLines

        line = JsonLines().line
        buf: list[str] = []
        out = self.out

        def write(e: Any) -> None:
            buf.append(line(e))
            if len(buf) >= 512:
                out.write("\n".join(buf) + "\n")
                buf.clear()

        def flush() -> None:
            if buf:
                out.write("\n".join(buf) + "\n")
                buf.clear()

        write.flush = flush  # type: ignore[attr-defined]
        return write

    def __call__(self, kind: str, payload: Any) -> None:
        from scp.replay import LadderEntry, entry_json, format_entry

        w = self.out.write
        if kind == "message":
            e: LadderEntry = payload
            if self.as_json:
                w(json.dumps(entry_json(e), separators=(",", ":")) + "\n")
            else:
                if self.t0 is None:
                    self.t0 = e.ts
                    if self.legend:
                        w(self.legend + "\n")
                w(format_entry(e, self.t0) + "\n")
        elif kind == "warning":
            if self.as_json:
                w(
                    json.dumps(
                        {"type": "warning", "frame": payload.frame, "reason": payload.reason}
                    )
                    + "\n"
                )
            else:
                where = f"frame {payload.frame}" if payload.frame else "file"
                w(f"warning: {where}: {payload.reason}\n")
        elif kind == "dialogue":
            self._dialogue(payload)
        elif kind == "sms":
            if self.as_json:
                w(
                    json.dumps(
                        {
                            "type": "sms",
                            **{k: payload[k] for k in ("id", "destination", "text", "status")},
                        },
                        ensure_ascii=False,
                        default=str,
                    )
                    + "\n"
                )
            else:
                w(f"SMS to {payload['destination']}: {payload['text']} [{payload['status']}]\n")

    def _dialogue(self, rep: Any) -> None:
        def ops_of(entries: list[Any]) -> list[str]:
            out = []
            for e in entries:
                names = " ".join(o.text() for o in e.ops) or "-"
                out.append(f"{e.tcap or e.sccp} {names}")
            return out

        if self.as_json:
            d = {
                "type": "dialogue",
                "otid": rep.key,
                "first_frame": rep.first_frame,
                "network": ops_of(rep.network),
                "ours": ops_of(rep.our_answers),
                "capture": ops_of(rep.capture_answers),
                "not_fed": rep.skipped,
            }
            self.out.write(json.dumps(d, ensure_ascii=False) + "\n")
            return
        w = self.out.write
        w(f"\ndialogue otid={rep.key} (from frame {rep.first_frame})\n")
        for s in ops_of(rep.network):
            w(f"  network  : {s}\n")
        for s in ops_of(rep.our_answers) or ["(no answer)"]:
            w(f"  our SCP  : {s}\n")
        if rep.capture_answers:
            for s in ops_of(rep.capture_answers):
                w(f"  capture  : {s}\n")
        if rep.skipped:
            w(f"  ({rep.skipped} later network message(s) not fed: our SCP had closed it)\n")

    def summary(self, d: dict[str, Any]) -> None:
        if self.as_json:
            self.out.write(json.dumps(d) + "\n")
        else:
            parts = [
                f"{k}="
                + ("/".join(f"{a}:{b}" for a, b in v.items()) if isinstance(v, dict) else str(v))
                for k, v in d.items()
                if k != "type"
            ]
            self.out.write("\nsummary: " + " ".join(parts) + "\n")
        self.out.flush()


def _needs_database() -> bool:
    import importlib.util

    return any(
        importlib.util.find_spec(m) is not None for m in ("scp.flows.calls", "scp.flows.presence")
    )


# Reference data a replayed call needs; everything the SCP writes (missed calls, SMS outbox,
# CDRs) goes to the scratch database and disappears with it.
_SCRATCH_COPY = ("subscriber", "subscription", "blacklist", "ad_rule", "rate")


class _Database:
    """The database an in-process SCP uses: a scratch copy (default) or the configured one.

    Scratch: a new database on the configured server (``$MCN_DATABASE_URL`` or the embedded
    one), migrated, with the subscribers, services, blacklists, ads and tariffs copied in, and
    dropped afterwards. So a replay never queues a real SMS that a running node's sender would
    submit, nor adds missed calls or CDRs to production data.
    """

    def __init__(self, live: bool, cfg: Config) -> None:
        self.live = live
        self.cfg = cfg
        self.pool: Any = None
        self._admin_dsn: str | None = None
        self._name: str | None = None

    async def __aenter__(self) -> Any:
        if not _needs_database():
            return None
        if self.live:
            from scp.app import open_state

            self.pool = await open_state(self.cfg)
            return self.pool
        import secrets
        from urllib.parse import urlsplit, urlunsplit

        import asyncpg

        from scp.state.db import open_pool, resolve_dsn
        from scp.state.migrate import SchemaVersionError, migrate

        dsn = await asyncio.to_thread(resolve_dsn)
        name = f"mcn_replay_{os.getpid()}_{secrets.token_hex(3)}"
        parts = urlsplit(dsn)
        scratch = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
        try:
            admin = await asyncpg.connect(dsn)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
        except (OSError, asyncpg.PostgresError) as e:
            raise Failure(
                f"cannot create a scratch database for the replay ({e}); "
                "--live-db uses the configured database instead"
            ) from None
        self._admin_dsn, self._name = dsn, name
        try:
            self.pool = await open_pool(scratch, max_size=5)
            await migrate(self.pool)
            await self._copy_reference_data(dsn)
        except BaseException as e:
            await self.__aexit__(None, None, None)  # the scratch database goes with the error
            if isinstance(e, SchemaVersionError):
                raise Failure(str(e)) from None
            raise
        return self.pool

    async def _copy_reference_data(self, dsn: str) -> None:
        import asyncpg

        from scp.state.migrate import (
            SchemaOutdated,
            check_schema_version,
            current_version,
            migrate,
        )

        live = await asyncpg.connect(dsn)
        try:
            # A brand-new database (a fresh $MCN_HOME's embedded one) is set up on the spot,
            # as every command does, so there is a schema to copy from (and nothing in it).
            version = await current_version(live)
            if version == 0:
                await migrate(live)
            else:
                try:
                    await check_schema_version(live)
                except SchemaOutdated:
                    pass  # older columns still copy; `db migrate` is the operator's call
            for table in _SCRATCH_COPY:
                try:
                    rows = await live.fetch(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
                    if rows:
                        await self.pool.copy_records_to_table(
                            table, records=[tuple(r) for r in rows], columns=list(rows[0].keys())
                        )
                except asyncpg.PostgresError as e:
                    click.echo(
                        f"warning: {table} not copied to the scratch database: {e}", err=True
                    )
        finally:
            await live.close()

    async def __aexit__(self, *exc: object) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self._name is not None and self._admin_dsn is not None:
            import asyncpg

            admin = await asyncpg.connect(self._admin_dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')
            finally:
                await admin.close()


async def _offline(
    path: str, cfg: Config, printer: _Printer, *, live_db: bool = False, **kw: Any
) -> dict[str, Any]:
    from scp.replay import replay_offline

    async with _Database(live_db, cfg) as pool:
        summary = await replay_offline(path, cfg, pool=pool, emit=printer, **kw)
    return summary.as_dict()


def _decode_only(
    path: str, printer: _Printer, flt: Any, ssn: dict[int, str] | None, pcf: PointCodeFormat
) -> dict[str, Any]:
    import gc

    from scp.replay import LadderDecoder, decode_capture, preload_codecs
    from scp.tools.pcapread import CaptureWarning

    # pycrate's compiled ASN.1 is a large object graph: load it now and move it out of the
    # collector's reach, or every full collection walks it again (a third of the run time).
    preload_codecs()
    gc.freeze()
    n = warnings = shown = 0
    fast = printer.message_writer() if printer.as_json else None
    dec = LadderDecoder(ssn, pcf=pcf)
    for item in decode_capture(path, dec):
        if type(item) is CaptureWarning:
            if fast is not None:
                fast.flush()
            warnings += 1
            printer("warning", item)
            continue
        n += 1
        if flt and not flt.match(item):
            continue
        shown += 1
        if fast is not None:
            fast(item)
        else:
            printer("message", item)
    if fast is not None:
        fast.flush()
    out: dict[str, Any] = {"type": "summary", "messages": n, "shown": shown, "warnings": warnings}
    if dec.learned is not None and dec.learned.table():
        out["learned_ssn"] = dec.learned.table()
    return out


def _check_capture(path: str) -> None:
    """Exit 2 if the file is not a capture at all (rather than a warning per nothing)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise BadInput(f"{path}: {e.strerror}") from None
    known = {
        b"\xd4\xc3\xb2\xa1",
        b"\xa1\xb2\xc3\xd4",
        b"\x4d\x3c\xb2\xa1",
        b"\xa1\xb2\x3c\x4d",
        b"\x0a\x0d\x0d\x0a",
        b"\x1f\x8b\x08\x00"[:4],
    }
    if magic[:2] == b"\x1f\x8b":
        return  # gzip: scapy reads compressed captures
    if magic not in known:
        raise BadInput(f"{path}: not a pcap or pcapng file (magic {magic.hex() or 'empty'})")


_LEGEND_OFFLINE = (
    "time       #frame  OPC -> DPC   every message of the capture; "
    "'<=' what our SCP answered to that frame"
)
_LEGEND_LIVE = (
    "time       #frame  OPC -> DPC   '=>' sent to the target; '<=' what it answered; "
    "unmarked: the capture's own SCP"
)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--target",
    metavar="HOST:PORT",
    default=None,
    help="Live: play the switch/HLR as an M3UA ASP toward this running SCP.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="EXPR",
    help="Show only matching messages: op=initialDP, number=8613..., pc=100, "
    "tcap=begin, tid=06f7, protocol=cap, ssn=146 (repeat or comma: all must match).",
)
@click.option(
    "--compare/--no-compare",
    default=True,
    show_default=True,
    help="Show the capture's own SCP messages in the ladder beside our SCP's answers "
    "(--no-compare: only what the network sent and what our SCP answered).",
)
@click.option(
    "--decode-only", is_flag=True, help="Only print the capture's ladder; do not feed an SCP."
)
@click.option(
    "--speed",
    default=None,
    metavar="max|capture|N",
    help="Live pacing: max (default), capture timing, or N times faster.",
)
@click.option(
    "--rewrite-number",
    "rewrites",
    multiple=True,
    metavar="OLD=NEW",
    help="Replace a number (same digit count) in SCCP GTs and operation arguments.",
)
@click.option(
    "--scp-pc",
    type=int,
    default=None,
    help="Point code of the SCP in the capture (default: guessed from InitialDP etc.).",
)
@click.option(
    "--ssn",
    "ssns",
    multiple=True,
    metavar="SSN=PROTO",
    help="Decode this SSN as cap, inap or map when the application context is unknown "
    "(default: what the capture's other dialogues show on that SSN).",
)
@click.option(
    "--peer-pc",
    type=int,
    default=200,
    show_default=True,
    help="Live: our point code as the replaying ASP.",
)
@click.option(
    "--capture",
    "capture_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write what was fed and answered to this pcap (SCTP-framed).",
)
@click.option(
    "--live-db",
    is_flag=True,
    help="Offline: use the configured database itself, not a scratch copy (what the "
    "replay writes is then real: a running node may send its SMS).",
)
@click.option(
    "--pc-format",
    type=click.Choice(["itu", "china"]),
    default=None,
    help="Point codes of the capture's network: itu (14-bit) or china (24-bit). "
    "Default: the configuration's [m3ua] pc_format. What is sent to the SCP "
    "always follows the SCP's own format.",
)
@_VERBOSE
@click.pass_context
def replay(
    ctx: click.Context,
    file: str,
    target: str | None,
    as_json: bool,
    filters: tuple[str, ...],
    compare: bool,
    decode_only: bool,
    speed: str | None,
    rewrites: tuple[str, ...],
    scp_pc: int | None,
    ssns: tuple[str, ...],
    peer_pc: int,
    capture_out: str | None,
    live_db: bool,
    pc_format: Literal["itu", "china"] | None,
    verbose: int,
) -> None:
    """Replay a pcap/pcapng capture: ladder, in-process SCP answers, or live toward a SCP.

    Offline (the default), the switch/HLR/VLR messages are fed to an in-process SCP (embedded
    database unless MCN_DATABASE_URL is set, console SMS) and each dialogue shows what our SCP
    answered and which SMS it would send. It works on a scratch copy of the subscriber data,
    dropped afterwards, unless --live-db.
    """
    from scp.replay import LadderFilter, NumberRewriter, parse_target

    _verbosity(ctx, verbose)
    if not os.path.exists(file):
        raise BadInput(f"{file}: no such file")
    _check_capture(file)
    try:
        flt = LadderFilter(filters)
    except ValueError as e:
        raise BadInput(f"--filter: {e}") from None
    try:
        numbers = NumberRewriter(rewrites)
    except ValueError as e:
        raise BadInput(str(e)) from None
    ssn = _ssn_map(ssns)
    pace = _speed(speed)
    if target is not None:
        try:
            parse_target(target)
        except ValueError as e:
            raise BadInput(str(e)) from None
    printer = _Printer(
        as_json, legend=None if decode_only else _LEGEND_LIVE if target else _LEGEND_OFFLINE
    )
    if decode_only:
        pcf = PointCodeFormat(pc_format or get_config(ctx).m3ua.pc_format)
        printer.summary(_decode_only(file, printer, flt, ssn, pcf))
        return
    cfg = get_config(ctx)
    # the capture's format; what goes to the SCP follows the SCP's own [m3ua] pc_format
    capture_pcf = PointCodeFormat(pc_format) if pc_format is not None else None
    try:
        if target is not None:
            from scp.replay import replay_live

            s = asyncio.run(
                replay_live(
                    file,
                    cfg,
                    target,
                    emit=printer,
                    speed=pace,
                    flt=flt,
                    scp_pc=scp_pc,
                    numbers=numbers,
                    ssn_overrides=ssn,
                    peer_pc=peer_pc,
                    capture_out=capture_out,
                    capture_pcf=capture_pcf,
                )
            )
            printer.summary(s.as_dict())
        else:
            printer.summary(
                asyncio.run(
                    _offline(
                        file,
                        cfg,
                        printer,
                        live_db=live_db,
                        compare=compare,
                        flt=flt,
                        scp_pc=scp_pc,
                        numbers=numbers,
                        ssn_overrides=ssn,
                        capture_out=capture_out,
                        capture_pcf=capture_pcf,
                    )
                )
            )
    except ConnectionError as e:
        raise Failure(str(e)) from None
    except ConfigError as e:
        raise BadInput(f"config: {e}") from None


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
@_VERBOSE
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
    from scp.simulate import SCENARIOS, Numbers

    _verbosity(ctx, verbose)
    if list_ or (scenario is None and calls is None):
        for name, what in SCENARIOS.items():
            click.echo(f"{name:28} {what}")
        if not list_:
            raise BadInput("give a SCENARIO or --calls N")
        return
    if scenario is not None and scenario not in SCENARIOS:
        raise BadInput(f"SCENARIO {scenario!r}: one of {', '.join(SCENARIOS)}")
    for name, v in (("--subscriber", subscriber), ("--caller", caller), ("--pin", pin)):
        if v is not None and not v.isdigit():
            raise BadInput(f"{name} {v!r}: digits only")
    host_port = None
    if target is not None:
        from scp.replay import parse_target

        try:
            host_port = parse_target(target)
        except ValueError as e:
            raise BadInput(str(e)) from None
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
    numbers: Any,
    timeout: float,
    capture_out: str | None,
    live_db: bool,
) -> list[dict[str, Any]]:
    from scp.simulate import (
        Simulator,
        connect_in_process,
        connect_tcp,
        provision_for_scenarios,
        run_load,
        run_scenario,
    )

    capture = None
    if capture_out is not None:
        from scp.adapters.capture import SctpPcapWriter

        capture = SctpPcapWriter.open(capture_out)
    db: _Database | None = None
    pool: Any = None
    try:
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
            db = _Database(live_db, cfg)
            pool = await db.__aenter__()
            if pool is not None and not live_db:
                await provision_for_scenarios(  # the scratch copy only
                    pool, numbers, today=local_day(utcnow(), cfg)
                )
            conn, _ = await connect_in_process(cfg, pool=pool, capture=capture)
        sim = Simulator(conn.peer, cfg, numbers=numbers, timeout=timeout)
        try:
            if calls is not None:
                rep = await run_load(
                    sim, calls=calls, concurrency=concurrency, scenario=scenario or "busy"
                )
                return [rep.as_dict()]
            assert scenario is not None
            why = (
                "--target: the SCP's database is not visible from here" if target else "no database"
            )
            res = await run_scenario(sim, scenario, pool=pool, why_unseen=why)
            return [res.as_dict()]
        finally:
            await conn.close()
    finally:
        if db is not None:
            await db.__aexit__(None, None, None)
        if capture is not None:
            capture.close()


def register(main: click.Group) -> None:
    """Attach ``replay`` and ``simulate`` to the ``mcn-scp`` group."""
    for cmd in (replay, simulate):
        if cmd.name not in main.commands:
            main.add_command(cmd)
