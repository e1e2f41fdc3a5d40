"""Live replay: a capture's network side sent as an M3UA ASP toward a running SCP.

The messages are sent in client role (RFC 4666 §4.3 ASP-UP / ASP-ACTIVE) at capture timing,
faster, or as fast as possible; answers are correlated through the transaction IDs and their
latency reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, assert_never, cast

from scp.adapters.driver import CoreDriver
from scp.codecs.errors import DecodeError, EncodeError
from scp.core.m3ua_asp import (
    AspStateChanged,
    AsStateChanged,
    CloseAssociation,
    Deliver,
    Dropped,
    M3uaLayer,
    M3uaOutput,
    MtpStatus,
    OpcRefused,
    PeerNotify,
    Transmit,
)
from scp.core.m3ua_framing import M3uaStreamReader
from scp.primitives import (
    MtpTransfer,
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
from scp.tools.replay.ladder import (
    SERVICE_MESSAGES,
    LadderDecoder,
    join_notes,
)
from scp.tools.replay.output import LadderFilter

__all__ = [
    "replay_live",
]


class M3uaClient(asyncio.Protocol):
    """A client-role M3UA ASP (RFC 4666 §4.3) over TCP whose DATA goes to a callback.

    Only the M3UA layer of the stack is used: the payload is replayed and read raw, so the
    captured TCAP reaches the SCP byte for byte (after the rewrites) and answers are read by
    the ladder decoder instead of a TCAP state machine.
    """

    def __init__(
        self,
        *,
        local_pc: int,
        routing_context: int,
        on_data: Callable[[MtpTransfer], None],
        on_wire: Callable[[bytes, bool], None] | None = None,
    ) -> None:

        self.m3ua = M3uaLayer(
            role="client", local_pc=local_pc, routing_context=routing_context, beat_interval=0.0
        )
        self.reader = M3uaStreamReader()
        self.transport: asyncio.Transport | None = None
        self.on_data = on_data
        self.on_wire = on_wire
        self.active = asyncio.Event()
        self.closed = asyncio.Event()
        self.driver: CoreDriver[M3uaOutput] = CoreDriver(
            self.m3ua, self._output, after=self._check_active
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not an asyncio.Transport subclass, so no isinstance)
        self.transport = cast(asyncio.Transport, transport)
        self.driver.feed(lambda now: self.m3ua.association_up(1, now))

    def data_received(self, data: bytes) -> None:
        for m in self.reader.feed(data):
            if self.on_wire is not None:
                self.on_wire(m, False)
            self.driver.feed(partial(self.m3ua.receive, 1, m))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closed.set()
        self.driver.close()

    def _output(self, o: M3uaOutput) -> None:
        match o:
            case Transmit():
                if self.transport is not None:
                    self.transport.write(o.data)
                if self.on_wire is not None:
                    self.on_wire(o.data, True)
            case Deliver():
                self.on_data(o.xfer)
            case (
                CloseAssociation()
                | AspStateChanged()
                | AsStateChanged()
                | Dropped()
                | OpcRefused()
                | MtpStatus()
                | PeerNotify()
            ):
                pass  # replay reports what the SCP answers, not the ASP's own events
            case _:
                assert_never(o)

    def _check_active(self) -> None:
        if self.m3ua.is_active:
            self.active.set()

    def send(self, x: MtpTransfer) -> None:
        self.driver.feed(lambda now: self.m3ua.send_transfer(x, now))

    def close(self) -> None:
        if self.transport is not None:
            self.driver.feed(self.m3ua.shutdown)
            self.transport.close()


def parse_target(target: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); ValueError naming the problem."""
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--target {target!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


async def replay_live(
    path: str | Path,
    cfg: Any,
    target: str,
    *,
    emit: Emit,
    speed: float | None = None,
    flt: LadderFilter | None = None,
    scp_pc: int | None = None,
    numbers: NumberRewriter | None = None,
    ssn_overrides: dict[int, str] | None = None,
    peer_pc: int = 200,
    answer_timeout: float = 3.0,
    capture_out: str | Path | None = None,
    connect_timeout: float = 5.0,
    capture_pcf: PointCodeFormat | None = None,
) -> ReplaySummary:
    """Play the capture's switch / HLR side toward a running SCP and report its answers.

    ``speed`` None: as fast as possible (each message waits for the previous answer or
    ``answer_timeout``); 1.0: capture timing; 10: ten times faster. Transaction IDs: our
    continuations carry the dtid the target SCP gave, not the capture's. ``cfg`` describes the
    target (its point code, routing context and point code format); the replaying ASP uses
    ``peer_pc``. ``capture_pcf``: the capture's point code format (default: the target's).
    """
    host, port = parse_target(target)
    summary = ReplaySummary()
    capture_pcf = capture_pcf or cfg.m3ua.pcf
    invoked: dict[tuple[bytes, int], str] = {}  # the capture's invokes name our bare results
    items, scp = stream_capture(
        path, ssn_overrides, emit, summary, scp_pc, capture_pcf, invoked=invoked
    )
    writer = open_writer(capture_out)
    ans_dec = LadderDecoder(ssn_overrides, pcf=cfg.m3ua.pcf, invoked=invoked)
    # our otid (sent) -> (send time, report); capture SCP tid -> target SCP tid
    pending: dict[bytes, float] = {}
    tid_map: dict[bytes, bytes] = {}
    shown: set[bytes] = set()  # network otids of the dialogues --filter lets through
    answered = asyncio.Event()

    def on_wire(data: bytes, outgoing: bool) -> None:
        if writer is not None:
            src, dst = (("127.0.0.2", 2906), ("127.0.0.1", 2905))
            writer.write(
                data, ts=time.time(), src=src if outgoing else dst, dst=dst if outgoing else src
            )

    def on_data(x: MtpTransfer) -> None:
        e = ans_dec.decode_transfer(x, frame=0, ts=time.time(), source="ours")
        summary.answers += 1
        d = bytes.fromhex(e.dtid) if e.dtid else None
        if d is not None and d in pending:
            lat = time.monotonic() - pending.pop(d)
            summary.latencies.append(lat)
            e = dataclasses.replace(e, note=join_notes(e.note, f"answered in {lat * 1000:.1f} ms"))
            if e.otid:
                # The target's transaction ID for this dialogue: later continuations use it.
                tid_map.setdefault(d, bytes.fromhex(e.otid))
        if not flt or (d is not None and d in shown) or flt.match(e):
            emit("message", e)
        answered.set()

    loop = asyncio.get_running_loop()
    client = M3uaClient(
        local_pc=peer_pc, routing_context=cfg.m3ua.routing_context, on_data=on_data, on_wire=on_wire
    )
    try:
        await asyncio.wait_for(loop.create_connection(lambda: client, host, port), connect_timeout)
        await asyncio.wait_for(client.active.wait(), connect_timeout)
    except (OSError, TimeoutError) as exc:
        if writer is not None:
            writer.close()
        raise ConnectionError(f"cannot reach an active M3UA SCP at {target}: {exc}") from None
    # capture SCP tid -> network otid, learned from the capture's own answers as they come
    # (an answer always precedes the continuation that names its transaction ID)
    cap_scp_to_net: dict[bytes, bytes] = {}
    prev_ts: float | None = None
    try:
        for msg, e in items:
            # --filter limits what is shown, not what is replayed (the SCP needs whole dialogues).
            visible = not flt or flt.match(e)
            if scp is not None and e.opc == scp:
                if e.otid and e.dtid:
                    cap_scp_to_net.setdefault(bytes.fromhex(e.otid), bytes.fromhex(e.dtid))
                if visible:
                    emit("message", e)  # the capture's own SCP, for comparison
                continue
            if e.tcap is None or e.tcap_data is None or e.sccp in SERVICE_MESSAGES:
                if visible:
                    emit("message", e)
                continue
            if speed is not None and prev_ts is not None and speed > 0:
                gap = (e.ts - prev_ts) / speed
                if gap > 0:
                    await asyncio.sleep(min(gap, 60.0))
            prev_ts = e.ts
            otid = bytes.fromhex(e.otid) if e.otid else None
            dtid = bytes.fromhex(e.dtid) if e.dtid else None
            new_dtid = None
            if dtid is not None:
                net = cap_scp_to_net.get(dtid, dtid)
                new_dtid = tid_map.get(net)
                # Causality beats capture timing: a continuation waits for the target's answer
                # to the message it continues (the target may be slower than the capture's SCP).
                deadline = time.monotonic() + answer_timeout
                while new_dtid is None and net in pending and time.monotonic() < deadline:
                    answered.clear()
                    try:
                        await asyncio.wait_for(answered.wait(), deadline - time.monotonic())
                    except TimeoutError:
                        break
                    new_dtid = tid_map.get(net)
                if new_dtid is None:
                    if visible:
                        emit(
                            "message",
                            dataclasses.replace(
                                e,
                                note=join_notes(
                                    e.note, "not sent: the target never answered this dialogue"
                                ),
                            ),
                        )
                    continue
            if otid is not None and e.tcap == "Begin":
                tid_map.pop(otid, None)  # a reused transaction ID starts a new dialogue
            if otid is not None and visible:
                shown.add(otid)
            try:
                tdata = rewrite_tids(e.tcap_data, dtid=new_dtid) if new_dtid else e.tcap_data
                x = retarget(
                    msg.mtp3,  # type: ignore[arg-type]
                    cfg,
                    e,
                    opc=peer_pc,
                    tcap_data=tdata,
                    numbers=numbers,
                    capture_pcf=capture_pcf,
                )
            except (DecodeError, EncodeError) as exc:
                summary.warnings += 1
                emit("warning", CaptureWarning(e.frame, f"cannot re-address: {exc}"))
                continue
            if visible:
                emit("message", dataclasses.replace(e, source="sent", ts=time.time()))
            if otid is not None and e.tcap in ("Begin", "Continue"):
                pending[otid] = time.monotonic()
            answered.clear()
            client.send(x)
            summary.fed += 1
            if speed is None and otid is not None and e.tcap in ("Begin", "Continue"):
                try:
                    await asyncio.wait_for(answered.wait(), answer_timeout)
                except TimeoutError:
                    pass
        # Answers to the last messages.
        deadline = time.monotonic() + answer_timeout
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        summary.unanswered = len(pending)
    finally:
        client.close()
        await asyncio.sleep(0.05)
        if writer is not None:
            writer.close()
    return summary
