"""Offline replay: a capture's network side fed to an in-process SCP, its answers beside the
capture's own.

The messages a switch, HLR or VLR sent are fed to :class:`scp.tools.replay.inprocess.InProcessScp`
(the same cores and TC-users as ``mcn-scp run``); transaction IDs are rewritten (Q.774
§3.2.1: the dtid of a continuation names the receiver's transaction) so the capture's later
messages reach the dialogues *our* SCP opened. The ladder shows every message of the capture,
both directions, with what our SCP answered after each message it was fed; per dialogue, what
the network sent, what our SCP and the capture's SCP answered, and the SMS it queued. The file
is streamed twice (learn, then replay), never held in memory.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scp.codecs import m3ua
from scp.codecs.errors import DecodeError, EncodeError
from scp.primitives import (
    PointCodeFormat,
)
from scp.tools.pcapread import CaptureWarning
from scp.tools.replay.feed import (
    Emit,
    NumberRewriter,
    ReplaySummary,
    open_writer,
    retarget,
    rewrite_tids,
    stream_capture,
)
from scp.tools.replay.inprocess import InProcessScp
from scp.tools.replay.ladder import (
    SERVICE_MESSAGES,
    LadderDecoder,
    LadderEntry,
    join_notes,
)
from scp.tools.replay.output import LadderFilter

__all__ = [
    "replay_offline",
]


@dataclass
class DialogueReport:
    """What one captured dialogue looked like and what our SCP did with it."""

    key: str  # the network side's otid (hex)
    first_frame: int
    net_tid: bytes | None = None
    network: list[LadderEntry] = field(default_factory=list)
    capture_answers: list[LadderEntry] = field(default_factory=list)
    our_answers: list[LadderEntry] = field(default_factory=list)
    our_tid: bytes | None = None
    capture_scp_tid: bytes | None = None
    closed_by_us: bool = False
    skipped: int = 0


_MAX_OPEN_DIALOGUES = 20_000
"""Dialogue reports kept while their dialogue is open in the capture; the oldest is reported
early beyond this (a capture that never shows the end of many dialogues keeps memory flat)."""


async def replay_offline(
    path: str | Path,
    cfg: Any,
    *,
    pool: Any = None,
    emit: Emit,
    compare: bool = True,
    flt: LadderFilter | None = None,
    scp_pc: int | None = None,
    numbers: NumberRewriter | None = None,
    ssn_overrides: dict[int, str] | None = None,
    users: Callable[[Any], list[Any]] | None = None,
    capture_out: str | Path | None = None,
    settle: float = 0.05,
    capture_pcf: PointCodeFormat | None = None,
) -> ReplaySummary:
    """Feed the network side of a capture to an in-process SCP and report what it answered.

    The capture's own SCP is the DPC of the first Begin carrying an operation sent to an SCP
    (InitialDP, AssistRequestInstructions, AlertServiceCentre, NoteMM-Event), or ``scp_pc``.
    Dialogues the capture's network side opened are replayed. The ladder shows every message
    of the capture in both directions (``compare`` False leaves out what the capture's SCP
    sent) and, after each message fed, what our SCP answered to it. A dialogue's report (what
    the network sent, what our SCP and the capture's SCP answered) is emitted when the capture
    ends the dialogue, the rest at the end. The file is read twice (:func:`_stream`) and never
    held in memory. ``capture_out`` writes what was fed and answered as an SCTP-framed pcap
    (Wireshark reads it). ``capture_pcf``: the point code format of the capture's network
    (default: the SCP's ``[m3ua] pc_format``).
    """
    summary = ReplaySummary()
    capture_pcf = capture_pcf or cfg.m3ua.pcf
    invoked: dict[tuple[bytes, int], str] = {}  # the capture's invokes name our bare results
    items, scp = stream_capture(
        path, ssn_overrides, emit, summary, scp_pc, capture_pcf, invoked=invoked
    )
    writer = open_writer(capture_out)
    our_dec = LadderDecoder(ssn_overrides, pcf=cfg.m3ua.pcf, invoked=invoked)
    # network otid -> report, for the dialogues still open in the capture (insertion order)
    dialogues: dict[bytes, DialogueReport] = {}
    by_capture_scp_tid: dict[bytes, DialogueReport] = {}
    by_our_tid: dict[bytes, DialogueReport] = {}
    current: list[LadderEntry] = []
    frame_now = [0]
    first_answer_at: list[float] = []

    def on_send(data: bytes) -> None:
        if writer is not None:
            writer.write(data, ts=time.time(), src=InProcessScp.LOCAL, dst=InProcessScp.PEER)
        try:
            d = m3ua.decode_data(data)
        except DecodeError:
            return  # ASP management answers (ASPUP_ACK...): not part of the ladder
        le = our_dec.decode_transfer(d.xfer, frame=frame_now[0], ts=time.time(), source="ours")
        if not current:
            first_answer_at.append(time.monotonic())
        current.append(le)

    def report(rep: DialogueReport) -> None:
        """Emit a dialogue's report and forget it."""
        for index, key in (
            (dialogues, rep.net_tid),
            (by_capture_scp_tid, rep.capture_scp_tid),
            (by_our_tid, rep.our_tid),
        ):
            if key is not None and index.get(key) is rep:
                del index[key]
        emit("dialogue", rep)

    node = InProcessScp(cfg, pool=pool, users=users, on_send=on_send)
    sms_floor = await _sms_floor(pool)
    node.start()
    current.clear()
    try:
        for msg, e in items:
            show = flt is None or not flt or flt.match(e)
            from_network = scp is None or e.opc != scp
            if e.tcap is None or e.tcap_data is None:
                if show and (compare or from_network):
                    emit("message", e)
                continue
            if e.sccp in SERVICE_MESSAGES:
                # A message SCCP returned (UDTS/XUDTS/LUDTS, Q.714 §4.2) answers what the
                # capture's SCP sent, not ours: shown, never fed.
                if show and (compare or from_network):
                    emit(
                        "message",
                        dataclasses.replace(
                            e, note=join_notes(e.note, "not fed: a returned message")
                        ),
                    )
                continue
            otid = bytes.fromhex(e.otid) if e.otid else None
            dtid = bytes.fromhex(e.dtid) if e.dtid else None
            ends = e.tcap in ("End", "Abort")
            if not from_network:
                # The capture's own SCP answering: learn its transaction ID for the rewrite.
                rep = dialogues.get(dtid) if dtid else None
                if rep is not None:
                    if otid and rep.capture_scp_tid is None:
                        rep.capture_scp_tid = otid
                        by_capture_scp_tid[otid] = rep
                    rep.capture_answers.append(e)
                if compare and show:
                    emit("message", e)
                if rep is not None and ends:
                    report(rep)
                continue
            summary.frames_with_sccp += 1
            if e.tcap in ("Begin", "Unidirectional"):
                rep = DialogueReport(
                    key=e.otid or f"uni-{e.frame}", first_frame=e.frame, net_tid=otid
                )
                if otid:
                    old = dialogues.pop(otid, None)
                    if old is not None:
                        report(old)  # the capture reuses the ID: the old dialogue is over
                    dialogues[otid] = rep
                    if len(dialogues) > _MAX_OPEN_DIALOGUES:
                        report(next(iter(dialogues.values())))
                summary.dialogues += 1
                new_dtid = None
            else:
                rep = (by_capture_scp_tid.get(dtid) if dtid else None) or (
                    dialogues.get(otid) if otid else None
                )
                new_dtid = rep.our_tid if rep is not None else None
                if rep is not None and (rep.closed_by_us or new_dtid is None):
                    rep.skipped += 1
                    rep.network.append(e)
                    if show:
                        emit(
                            "message",
                            dataclasses.replace(
                                e, note=join_notes(e.note, "not fed: our SCP closed this dialogue")
                            ),
                        )
                    if ends:
                        report(rep)
                    continue
            if rep is None:
                if show:
                    emit(
                        "message",
                        dataclasses.replace(
                            e,
                            note=join_notes(
                                e.note, "not fed: its dialogue began before the capture"
                            ),
                        ),
                    )
                continue
            if show:
                emit("message", e)
            rep.network.append(e)
            try:
                tdata = e.tcap_data
                if new_dtid is not None:
                    tdata = rewrite_tids(tdata, dtid=new_dtid)
                x = retarget(
                    msg.mtp3,  # type: ignore[arg-type]
                    cfg,
                    e,
                    tcap_data=tdata,
                    numbers=numbers,
                    capture_pcf=capture_pcf,
                )
                wire = m3ua.encode_data(x, rc=cfg.m3ua.routing_context)
            except (DecodeError, EncodeError) as exc:
                summary.warnings += 1
                emit("warning", CaptureWarning(e.frame, f"cannot re-address for our SCP: {exc}"))
                continue
            if writer is not None:
                writer.write(wire, ts=time.time(), src=InProcessScp.PEER, dst=InProcessScp.LOCAL)
            frame_now[0] = e.frame
            current.clear()
            first_answer_at.clear()
            sent_at = time.monotonic()
            try:
                node.feed(wire)
            except Exception as exc:  # noqa: BLE001 - a node bug is reported, the replay goes on
                summary.warnings += 1
                emit(
                    "warning",
                    CaptureWarning(
                        e.frame, f"our SCP failed on this message: {type(exc).__name__}: {exc}"
                    ),
                )
                continue
            summary.fed += 1
            await node.settle(settle)
            if first_answer_at:
                summary.latencies.append(first_answer_at[0] - sent_at)
            for ans in current:
                ans = dataclasses.replace(ans, ts=e.ts)  # shown beside what triggered it
                summary.answers += 1
                target = rep
                ans_d = bytes.fromhex(ans.dtid) if ans.dtid else None
                if ans_d and ans_d in dialogues:
                    target = dialogues[ans_d]
                target.our_answers.append(ans)
                if ans.otid and target.our_tid is None:
                    target.our_tid = bytes.fromhex(ans.otid)
                    by_our_tid[target.our_tid] = target
                if ans.tcap in ("End", "Abort"):
                    target.closed_by_us = True
                if flt is None or not flt or flt.match(ans) or show:
                    emit("message", ans)
            current.clear()
            if ends:
                report(rep)
        await node.settle(settle)
        for ans in current:  # late answers (timers)
            summary.answers += 1
            emit("message", ans)
        summary.sms = await _sms_since(pool, sms_floor)
        for rep in list(dialogues.values()):
            report(rep)
        for s in summary.sms:
            emit("sms", s)
    finally:
        await node.stop()
        if writer is not None:
            writer.close()
    return summary


async def _sms_floor(pool: Any) -> int:
    if pool is None:
        return 0
    try:
        return int(await pool.fetchval("SELECT coalesce(max(id), 0) FROM sms_outbox"))
    except Exception:  # noqa: BLE001 - no outbox table: nothing to show
        return 0


async def _sms_since(pool: Any, floor: int) -> list[dict[str, Any]]:
    if pool is None:
        return []
    try:
        rows = await pool.fetch(
            "SELECT id, destination, text, status FROM sms_outbox WHERE id > $1 ORDER BY id", floor
        )
    except Exception:  # noqa: BLE001
        return []
    return [dict(r) for r in rows]
