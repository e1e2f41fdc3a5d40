"""``mcn-scp replay`` (ARCHITECTURE §3): a capture's ladder, answered by an in-process SCP
(offline, the default) or sent toward a running one (``--target``).

A thin shell over :mod:`scp.tools.replay`. Exit codes: 0 done; 2 bad input (the message names
the option or the file); 1 failure (e.g. the target SCP is unreachable). ``--json`` prints one
JSON object per line: messages, warnings, dialogues, SMS, a summary last.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from typing import IO, Any, Literal

import click

from scp.cli.common import (
    VERBOSE_OPTION,
    BadInputError,
    Failure,
    get_config,
    tool_database,
    tool_verbosity,
)
from scp.config import Config, ConfigError
from scp.primitives import PointCodeFormat
from scp.tools.pcapread import CaptureWarning
from scp.tools.replay.feed import NumberRewriter
from scp.tools.replay.ladder import LadderDecoder, LadderEntry, decode_capture, preload_codecs
from scp.tools.replay.live import parse_target, replay_live
from scp.tools.replay.output import JsonLines, LadderFilter, entry_json, format_entry

__all__ = ["replay"]


def _speed(raw: str | None) -> float | None:
    """``--speed``: max (as fast as possible), capture (1x) or a factor like 10."""
    if raw is None or raw.lower() in ("max", "0", "asap"):
        return None
    if raw.lower() in ("capture", "real", "1x"):
        return 1.0
    try:
        v = float(raw.rstrip("xX"))
    except ValueError:
        raise BadInputError(f"--speed {raw!r}: use max, capture or a factor such as 10") from None
    if v <= 0:
        raise BadInputError(f"--speed {raw!r}: must be positive")
    return v


def _ssn_map(pairs: tuple[str, ...]) -> dict[int, str] | None:
    """``--ssn SSN=PROTO`` pairs: overrides of what the capture and the standard SSNs say."""
    if not pairs:
        return None
    out: dict[int, str] = {}
    for p in pairs:
        ssn, sep, proto = p.partition("=")
        if not sep or not ssn.strip().isdigit() or proto.strip() not in ("cap", "inap", "map"):
            raise BadInputError(f"--ssn {p!r}: expected SSN=cap|inap|map, e.g. 200=cap")
        out[int(ssn)] = proto.strip()
    return out


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
        elif kind == "note":
            if self.as_json:
                w(json.dumps({"type": "note", "text": payload}, ensure_ascii=False) + "\n")
            else:
                w(f"note: {payload}\n")
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


async def _offline(
    path: str, cfg: Config, printer: _Printer, *, live_db: bool = False, **kw: Any
) -> dict[str, Any]:
    # Deferred: offline replay brings the whole node (its flows, asyncpg, the state: a third
    # of a second and a fifth more memory) that --decode-only, the fast path, never needs.
    from scp.tools.replay.offline import replay_offline

    async with tool_database(live_db) as pool:
        if not await pool.fetchval("SELECT EXISTS (SELECT 1 FROM subscriber)"):
            # else a call to the capture's callee is continued (not our subscriber), which
            # reads like a fault to someone replaying a capture on a new installation
            printer(
                "note",
                "the database holds no subscriber, so our SCP continues every call "
                "(provision the capture's callees: mcn-scp subscriber add / import)",
            )
        summary = await replay_offline(path, cfg, pool=pool, emit=printer, **kw)
    return summary.as_dict()


def _decode_only(
    path: str, printer: _Printer, flt: Any, ssn: dict[int, str] | None, pcf: PointCodeFormat
) -> dict[str, Any]:
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
        raise BadInputError(f"{path}: {e.strerror}") from None
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
        raise BadInputError(f"{path}: not a pcap or pcapng file (magic {magic.hex() or 'empty'})")


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
@VERBOSE_OPTION
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
    tool_verbosity(ctx, verbose)
    if not os.path.exists(file):
        raise BadInputError(f"{file}: no such file")
    _check_capture(file)
    try:
        flt = LadderFilter(filters)
    except ValueError as e:
        raise BadInputError(f"--filter: {e}") from None
    try:
        numbers = NumberRewriter(rewrites)
    except ValueError as e:
        raise BadInputError(str(e)) from None
    ssn = _ssn_map(ssns)
    pace = _speed(speed)
    if target is not None:
        try:
            parse_target(target)
        except ValueError as e:
            raise BadInputError(str(e)) from None
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
        raise BadInputError(f"config: {e}") from None
