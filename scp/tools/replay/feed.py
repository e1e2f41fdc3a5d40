"""What replay sends toward an SCP: captured messages made to reach it, and a run's counts.

A captured message is fed with its transaction IDs rewritten (Q.773 §3.1: OTID / DTID in the
transaction portion; Q.774 §3.2.1: the DTID of a continuation names the receiver's
transaction), numbers optionally rewritten (``--rewrite-number``, same digit count), and its
SCCP addresses and point codes re-aimed at our SCP (:func:`retarget`, Q.713 §3.4 / §3.5).
Shared by offline (:mod:`scp.tools.replay.offline`) and live (:mod:`scp.tools.replay.live`)
replay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scp.adapters.capture import SctpPcapWriter
from scp.codecs import sccp as sccp_codec
from scp.codecs import tcap as tcap_codec
from scp.codecs.ber import read_tlv, tlv
from scp.codecs.opcodes import MapOpcode
from scp.config import SsnConfig
from scp.primitives import (
    SI_SCCP,
    MtpTransfer,
    PointCodeFormat,
    RoutingIndicator,
    SccpAddress,
)
from scp.tools.pcapread import CapturedMessage, CaptureWarning, read_capture
from scp.tools.replay.ladder import (
    LadderDecoder,
    LadderEntry,
    survey_capture,
)

__all__ = [
    "NumberRewriter",
    "ReplaySummary",
    "rewrite_tids",
]


def rewrite_tids(data: bytes, *, otid: bytes | None = None, dtid: bytes | None = None) -> bytes:
    """The TCAP message with its OrigTransactionID / DestTransactionID replaced.

    Only the transaction portion is rebuilt (the outer length follows the new IDs); the
    dialogue and component portions are copied byte for byte. Raises DecodeError if the
    transaction portion cannot be read.
    """
    tag, vs, ve, _ = read_tlv(data, 0, len(data))
    if data[1] == 0x80:
        ve = len(data) - 2  # indefinite outer length: keep the end-of-contents
    body = bytearray()
    pos = vs
    while pos < ve:
        t, cs, ce, nxt = read_tlv(data, pos, len(data))
        if t == tcap_codec.TAG_OTID and otid is not None:
            body += tlv(t, otid)
        elif t == tcap_codec.TAG_DTID and dtid is not None:
            body += tlv(t, dtid)
        else:
            body += data[pos:nxt]
        if t not in (tcap_codec.TAG_OTID, tcap_codec.TAG_DTID):
            body += data[nxt:ve]
            break
        pos = nxt
    return tlv(tag, bytes(body))


def _swap_bcd(digits: str, filler: int) -> bytes:
    out = bytearray()
    vals = [int(c, 16) for c in digits]
    for i in range(0, len(vals), 2):
        lo = vals[i]
        hi = vals[i + 1] if i + 1 < len(vals) else filler
        out.append((hi << 4) | lo)
    return bytes(out)


class NumberRewriter:
    """``--rewrite-number OLD=NEW``: replace numbers wherever they are BCD-coded in a message.

    ISUP numbers (Q.763 §3.9, filler 0), MAP TBCD strings (TS 29.002 §17.7.8, filler F) and
    SCCP global titles (Q.713 §3.4.2.3) all store digits as swapped nibbles, so a number is
    found and replaced at byte level with no re-encoding. OLD and NEW must have the same number
    of digits (the lengths around them stay valid); a different length raises ValueError.
    """

    def __init__(self, pairs: Iterable[str]) -> None:
        self.subs: list[tuple[bytes, bytes]] = []
        for p in pairs:
            old, sep, new = p.partition("=")
            old, new = old.strip().lstrip("+"), new.strip().lstrip("+")
            if not sep or not old.isdigit() or not new.isdigit():
                raise ValueError(f"--rewrite-number {p!r}: expected OLD=NEW with digits only")
            if len(old) != len(new):
                raise ValueError(
                    f"--rewrite-number {p!r}: OLD and NEW need the same number of "
                    "digits (the fields around them keep their length)"
                )
            if len(old) < 4:
                raise ValueError(
                    f"--rewrite-number {p!r}: numbers shorter than 4 digits are "
                    "ambiguous at byte level"
                )
            fillers = (0x0, 0xF) if len(old) % 2 else (0x0,)
            for f in fillers:
                self.subs.append((_swap_bcd(old, f), _swap_bcd(new, f)))

    def __bool__(self) -> bool:
        return bool(self.subs)

    def apply(self, data: bytes) -> bytes:
        for old, new in self.subs:
            if old in data:
                data = data.replace(old, new)
        return data


# ---------------------------------------------------------------------------------------------
# A replay run: its counts, and the capture streamed toward the SCP
# ---------------------------------------------------------------------------------------------


@dataclass
class ReplaySummary:
    """Counts of one replay run (printed last; ``--json`` as a ``summary`` line)."""

    frames_with_sccp: int = 0
    messages: int = 0
    fed: int = 0
    answers: int = 0
    warnings: int = 0
    dialogues: int = 0
    sms: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0
    learned: dict[str, str] = field(default_factory=dict)  # SSN -> protocol, from the capture

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "summary",
            "messages": self.messages,
            "fed": self.fed,
            "answers": self.answers,
            "warnings": self.warnings,
            "dialogues": self.dialogues,
            "sms": len(self.sms),
        }
        if self.learned:
            d["learned_ssn"] = self.learned
        if self.latencies:
            s = sorted(self.latencies)
            d["latency_ms"] = {
                "p50": round(_pct(s, 50) * 1000, 3),
                "p95": round(_pct(s, 95) * 1000, 3),
                "max": round(s[-1] * 1000, 3),
            }
            d["unanswered"] = self.unanswered
        return d


def _pct(s: Sequence[float], p: float) -> float:
    if not s:
        return 0.0
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


Emit = Callable[[str, Any], None]
"""Output sink: ``emit(kind, payload)`` with kind message / warning / dialogue / sms / summary."""


# The HLR alerts the SC address (SSN 8), not the gsmSCF: alertServiceCentre v2 and v1.
_ALERT_SC = (MapOpcode.ALERT_SERVICE_CENTRE, MapOpcode.ALERT_SERVICE_CENTRE_WITHOUT_RESULT)


def _our_ssn(cfg: Any, protocol: str | None, e: LadderEntry) -> int:
    ssn: SsnConfig = cfg.sccp.ssn
    if protocol == "inap":
        return ssn.inap
    if protocol == "map":
        if any(o.code in _ALERT_SC for o in e.ops if o.kind == "invoke"):
            return ssn.sc
        return ssn.map
    return ssn.cap


def retarget(
    x: MtpTransfer,
    cfg: Any,
    e: LadderEntry,
    *,
    dpc: int | None = None,
    opc: int | None = None,
    tcap_data: bytes | None = None,
    numbers: NumberRewriter | None = None,
    capture_pcf: PointCodeFormat | None = None,
) -> MtpTransfer:
    """The captured MSU re-addressed to our SCP: DPC, called SSN, calling PC; new TCAP bytes.

    The called party becomes our SSN routed on SSN (Q.713 §3.4.1), so it reaches our TC-users
    whatever SSN the capture's SCP used; the calling party keeps its GT/SSN and gains the
    capture's OPC so our answer is routed back on the point code. The capture is read with
    ``capture_pcf`` (default: the SCP's format) and written in the SCP's ``[m3ua] pc_format``.
    """
    pcf = cfg.m3ua.pcf
    m = sccp_codec.decode(x.data, pcf if capture_pcf is None else capture_pcf)
    called = SccpAddress(
        ri=RoutingIndicator.SSN,
        pc=cfg.m3ua.local_pc if dpc is None else dpc,
        ssn=_our_ssn(cfg, e.protocol, e),
    )
    calling = m.calling
    src_pc = x.opc if opc is None else opc
    calling = (
        dataclasses.replace(calling, pc=src_pc, ri=RoutingIndicator.SSN)
        if calling.ssn is not None
        else dataclasses.replace(calling, pc=src_pc)
    )
    data = tcap_data if tcap_data is not None else e.tcap_data
    if data is None:
        data = m.data
    if numbers:
        data = numbers.apply(data)
    seg_free: dict[str, Any] = {}
    if hasattr(m, "segmentation"):
        seg_free["segmentation"] = None
    # A reassembled message is sent whole: XUDT (or LUDT when long) lets our SCCP take it.
    if len(data) > 255 or (getattr(m, "segmentation", None) is not None):
        new: Any = sccp_codec.Xudt(
            called=called,
            calling=calling,
            data=data,
            protocol_class=getattr(m, "protocol_class", 0),
        )
        if len(data) > 254:
            new = sccp_codec.Ludt(
                called=called,
                calling=calling,
                data=data,
                protocol_class=getattr(m, "protocol_class", 0),
            )
    else:
        new = dataclasses.replace(m, called=called, calling=calling, data=data, **seg_free)
    return MtpTransfer(
        opc=src_pc,
        dpc=cfg.m3ua.local_pc if dpc is None else dpc,
        si=SI_SCCP,
        ni=cfg.m3ua.network_indicator,
        mp=x.mp,
        sls=x.sls,
        data=sccp_codec.encode(new, pcf),
    )


def stream_capture(
    path: str | Path,
    ssn_overrides: dict[int, str] | None,
    emit: Emit,
    summary: ReplaySummary,
    scp_pc: int | None,
    pcf: PointCodeFormat,
    invoked: dict[tuple[bytes, int], str] | None = None,
) -> tuple[Iterator[tuple[CapturedMessage, LadderEntry]], int | None]:
    """The capture's SCCP messages with their ladder lines, streamed, and the SCP's point code.

    Two passes over the file: the first learns which protocol each subsystem carries and where
    the SCP is (:func:`survey_capture`, a small table); the second, lazily iterated, decodes
    with it. Warnings are emitted (and counted) as the second pass meets them. ``invoked``:
    the capture's invokes, shared with the decoder of the SCP's answers (which names its
    value-less results after them).
    """
    survey = survey_capture(path, pcf, ssn_overrides)
    summary.learned = survey.protocols.table()
    dec = LadderDecoder(ssn_overrides, pcf=pcf, learned=survey.protocols, invoked=invoked)

    def items() -> Iterator[tuple[CapturedMessage, LadderEntry]]:
        for item in read_capture(str(path), pcf):
            if type(item) is CaptureWarning:
                summary.warnings += 1
                emit("warning", item)
                continue
            try:
                e = dec.decode(item)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - one bad frame is a warning, not the end
                summary.warnings += 1
                emit(
                    "warning",
                    CaptureWarning(
                        item.frame,
                        f"could not decode: {exc!r}",
                    ),
                )
                continue
            if e is not None:
                summary.messages += 1
                yield item, e  # type: ignore[misc]

    return items(), (scp_pc if scp_pc is not None else survey.scp_pc)


def open_writer(capture_out: str | Path | None) -> SctpPcapWriter | None:
    """The pcap of ``--capture``, if asked for."""
    if capture_out is None:
        return None
    return SctpPcapWriter.open(str(capture_out))
