"""Replay SIGTRAN captures: a message ladder, an in-process SCP that answers them, and a live peer.

Network engineers test IN services by replaying captures from the live network against the lab
SCP (ARCHITECTURE §1, §3 ``mcn-scp replay``). This module has three layers, all fed by
:func:`scp.tools.pcapread.read_capture` (pcap / pcapng, M3UA over SCTP or TCP, MTP3 over M2PA / M2UA):

* **Ladder** (:class:`LadderDecoder`): each MTP-TRANSFER (Q.704 §2.2 routing label) is decoded
  down through SCCP (Q.713 §4: UDT/XUDT/LUDT and their services, segmented XUDT reassembled per
  Q.714 §4.1.1.2.3), TCAP (Q.773 §3.1 message type, otid / dtid, §4.2 dialogue portion) and the
  component portion (§3.2) to the CAP (TS 29.078), INAP CS-1 (ETS 300 374-1) or MAP (TS 29.002)
  operation with its key fields (numbers, event, cause, service key). The protocol of a
  dialogue is taken from its application context name (or that of the dialogue its
  transaction ID belongs to); for the rest, typically a capture that starts mid-call, from what
  the capture itself shows each subsystem carrying (:class:`LearnedProtocols`, built by a
  first pass over the file), then from the standard SSN assignments. Wireshark needs an SSN
  preference for those; replay names the same operations with no option (``--ssn`` still
  overrides).
* **Offline replay** (:func:`replay_offline`): the messages a switch, HLR or VLR sent are fed to
  an in-process SCP (the same cores and TC-users as ``mcn-scp run``); transaction IDs are
  rewritten (Q.774 §3.2.1: the dtid of a continuation names the receiver's transaction) so the
  capture's later messages reach the dialogues *our* SCP opened. The ladder shows every message
  of the capture, both directions, with what our SCP answered after each message it was fed;
  per dialogue, what the network sent, what our SCP and the capture's SCP answered, and the SMS
  it queued. The file is streamed twice (learn, then replay), never held in memory.
* **Live replay** (:func:`replay_live`): the same messages are sent as an M3UA ASP (RFC 4666
  §4.3 ASP-UP / ASP-ACTIVE, client role) toward a running SCP, at capture timing, faster, or as
  fast as possible; answers are correlated through the transaction IDs and their latency
  reported.

Nothing here raises on a bad capture: undecodable layers become a note on the ladder line or a
:class:`~scp.tools.pcapread.CaptureWarning`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scp.codecs import appctx
from scp.codecs import sccp as sccp_codec
from scp.codecs import tcap as tcap_codec
from scp.codecs.errors import DecodeError, EncodeError
from scp.primitives import (
    SI_SCCP,
    Invoke,
    MtpTransfer,
    PointCodeFormat,
    ReturnError,
    ReturnResult,
    RoutingIndicator,
    SccpAddress,
)
from scp.tools.pcapread import CapturedMessage, CaptureWarning, read_capture

__all__ = [
    "OpInfo",
    "LadderEntry",
    "LadderDecoder",
    "LadderFilter",
    "JsonLines",
    "NumberRewriter",
    "InProcessScp",
    "ReplaySummary",
    "decode_capture",
    "format_entry",
    "entry_json",
    "rewrite_tids",
    "replay_offline",
    "replay_live",
    "DEFAULT_SSN_PROTOCOLS",
    "LearnedProtocols",
    "CaptureSurvey",
    "ScpGuess",
    "survey_capture",
    "learn_protocols",
    "preload_codecs",
]

# SSN -> protocol when the application context does not say (3GPP TS 23.003 §8.1 / Q.713
# Annex B: 5-10 MAP entities, 146 gsmSCF CAP, 147 gsmSCF MAP; 106/241 the INAP SSNs that
# tests/tshark.py registers). Wireshark's defaults plus this SCP's own SSNs.
DEFAULT_SSN_PROTOCOLS: dict[int, str] = {
    5: "map",
    6: "map",
    7: "map",
    8: "map",
    9: "map",
    10: "map",
    145: "map",
    147: "map",
    148: "map",
    149: "map",
    150: "map",
    146: "cap",
    106: "inap",
    241: "inap",
}

_TCAP_NAMES = {0x61: "Unidirectional", 0x62: "Begin", 0x64: "End", 0x65: "Continue", 0x67: "Abort"}
_SCCP_NAMES = {
    sccp_codec.Udt: "UDT",
    sccp_codec.Udts: "UDTS",
    sccp_codec.Xudt: "XUDT",
    sccp_codec.Xudts: "XUDTS",
    sccp_codec.Ludt: "LUDT",
    sccp_codec.Ludts: "LUDTS",
}
_SERVICES = (sccp_codec.Udts, sccp_codec.Xudts, sccp_codec.Ludts)
_SERVICE_NAMES = frozenset({"UDTS", "XUDTS", "LUDTS"})

# Short ladder names for the fields operators read first (TS 29.078 / 29.002 component names).
_SHORT = {
    "service_key": "sk",
    "called_party_number": "called",
    "calling_party_number": "calling",
    "called_party_bcd_number": "called_bcd",
    "event_type_bcsm": "event",
    "destination_routing_address": "dra",
    "service_centre_address": "sc",
    "ip_routing_address": "ip",
    "assisting_ssp_ip_routing_address": "assist",
    "correlation_id": "corr",
    "original_called_party_id": "ocn",
    "redirecting_party_id": "rdn",
    "network_node_number": "nnn",
    "max_call_period_duration": "max_period",
}
_SKIP = frozenset(
    {
        "extra",
        "leg_id",
        "call_reference_number",
        "redirection_information",
        "scf_id",
        "alerting_pattern",
        "time_and_timezone",
        "msc_address",
        "information_to_send",
        "lmsi",
        "ip_ssp_capabilities",
    }
)


# ---------------------------------------------------------------------------------------------
# Ladder values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpInfo:
    """One TCAP component as the ladder shows it: kind, invoke ID, operation and key fields."""

    kind: str  # invoke | result | error | reject | bad
    invoke_id: int | None
    code: int | tuple[int, ...] | None
    name: str
    fields: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        args = " ".join(f"{k}={_fmt(v)}" for k, v in self.fields.items())
        label = self.name if self.kind == "invoke" else f"{self.kind}:{self.name}"
        return f"{label}({args})" if args else label


@dataclass(frozen=True, slots=True)
class LadderEntry:
    """One SCCP message of a capture (or of our SCP), decoded as far as it goes."""

    frame: int
    ts: float
    opc: int
    dpc: int
    sccp: str
    called_ssn: int | None = None
    calling_ssn: int | None = None
    called_gt: str | None = None
    calling_gt: str | None = None
    tcap: str | None = None
    otid: str | None = None
    dtid: str | None = None
    ac: str | None = None
    protocol: str | None = None
    ops: tuple[OpInfo, ...] = ()
    note: str | None = None
    source: str = "capture"  # capture | ours | sent
    tcap_data: bytes | None = field(default=None, repr=False, compare=False)
    # What named the protocol: ac, tid (the dialogue's context), --ssn N, learned from ...,
    # ssn N (the standard assignments).
    protocol_from: str | None = None

    @property
    def numbers(self) -> list[str]:
        """Every digit string the message carries (GTs and operation numbers), for filtering."""
        out = [g for g in (self.called_gt, self.calling_gt) if g]
        for op in self.ops:
            for v in op.fields.values():
                if isinstance(v, str) and v[:1].isdigit():
                    out.append(v)
                elif isinstance(v, list):
                    out += [x for x in v if isinstance(x, str)]
        return out


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)


_OID_TEXT: dict[tuple[int, ...], str] = {}


def _oid(ac: Sequence[int] | None) -> str | None:
    if ac is None:
        return None
    t = tuple(ac)
    text = _OID_TEXT.get(t)
    if text is None:
        text = ".".join(str(a) for a in t)
        if len(_OID_TEXT) < 1024:
            _OID_TEXT[t] = text
    return text


def _ev_name(v: int) -> str:
    try:
        name = appctx_event_names[v]
    except KeyError:
        return str(v)
    return name


def _camel_case(enum_name: str) -> str:
    # O_CALLED_PARTY_BUSY -> oCalledPartyBusy, the spelling of TS 29.078 EventTypeBCSM.
    parts = enum_name.lower().split("_")
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def _event_names() -> dict[int, str]:
    from scp.codecs.ops import EventTypeBCSM

    return {int(e): _camel_case(e.name) for e in EventTypeBCSM}


appctx_event_names = _event_names()


def _scalar(name: str, v: Any) -> Any:
    """A ladder-friendly form of one operation field, or None to leave it out."""
    if v is None or isinstance(v, (bytes, bytearray)):
        return None
    if isinstance(v, bool):
        return v if v else None
    if isinstance(v, int):
        if name in ("event_type_bcsm", "event"):
            return _ev_name(int(v))
        return int(v)
    if isinstance(v, str):
        return v
    digits = getattr(v, "digits", None)
    if isinstance(digits, str):
        return digits
    if hasattr(v, "value") and type(v).__name__ == "Cause":
        return int(v.value)
    if isinstance(v, tuple):
        items = [_scalar(name, x) for x in v]
        items = [x for x in items if x is not None and not isinstance(x, dict)]
        return items or None
    if dataclasses.is_dataclass(v):
        ev = getattr(v, "event_type_bcsm", None)
        if ev is not None:
            return _ev_name(int(ev))
    return None


def op_fields(op: Any) -> dict[str, Any]:
    """The key fields of a typed CAP/INAP/MAP value (numbers as digit strings, events by name)."""
    out: dict[str, Any] = {}
    if not dataclasses.is_dataclass(op) or type(op).__name__ in ("GenericOperation", "EmptyResult"):
        return out
    for f in dataclasses.fields(op):
        if f.name in _SKIP:
            continue
        v = getattr(op, f.name)
        if f.name == "event_specific_information" and v is not None:
            out["info"] = v.kind
            if v.cause is not None:
                out["cause"] = int(v.cause.value)
            continue
        if f.name == "collected_digits" and v is not None:
            out["max_digits"] = v.maximum_nb_of_digits
            continue
        s = _scalar(f.name, v)
        if s is not None:
            out[_SHORT.get(f.name, f.name)] = s
    return out


# ---------------------------------------------------------------------------------------------
# The ladder decoder
# ---------------------------------------------------------------------------------------------


_CODECS: dict[str, Any] = {}


def _codec(protocol: str) -> Any:
    """The operation codec module of a protocol, imported on first use (pycrate loads slowly)."""
    mod = _CODECS.get(protocol)
    if mod is None:
        import importlib

        mod = importlib.import_module(f"scp.codecs.{protocol}")
        _CODECS[protocol] = mod
    return mod


_AC_PROTOCOL: dict[tuple[int, ...], str | None] = {}


def preload_codecs(protocols: Sequence[str] = ("cap", "map")) -> None:
    """Import operation codecs now (they load pycrate's ASN.1: about a second for CAP + MAP)."""
    for protocol in protocols:
        _codec(protocol)


def protocol_of_ac(ac: Sequence[int] | None) -> str | None:
    """CAP / INAP / MAP from an application context name (TS 29.078 §6, 29.002 §17.3.3)."""
    if ac is None:
        return None
    t = tuple(ac)
    try:
        return _AC_PROTOCOL[t]
    except KeyError:
        pass
    p = _protocol_of_ac(t)
    if len(_AC_PROTOCOL) < 1024:
        _AC_PROTOCOL[t] = p
    return p


def _protocol_of_ac(ac: tuple[int, ...]) -> str | None:
    known = appctx.lookup(tuple(ac))
    if known is not None:
        return known.protocol.value
    t = tuple(ac)
    if len(t) == 8 and t[:6] == (0, 4, 0, 0, 1, 0):
        return "cap" if 50 <= t[6] <= 52 else "map"
    if len(t) >= 7 and t[:5] == (0, 4, 0, 0, 1) and t[5] in (20, 21, 22, 23):
        return "cap"
    if len(t) >= 5 and t[:5] == (0, 4, 0, 1, 1):
        return "inap"
    if t[:8] == _ERICSSON_CS1_PLUS:
        return "inap"
    return None


# iso(1) member-body(2) gb(826) national(0) ericsson(1249) inDomain(51) inNetwork(1)
# inNetworkcapabilitySet1plus(1): Ericsson's INAP CS1+, a superset of CS-1 that keeps the
# Q.1218 / ETS 300 374-1 operation codes (Wireshark's INAP dissector names this arc). Its
# operations are named and, where their arguments are ETSI's, decoded by the ETSI INAP codec.
_ERICSSON_CS1_PLUS = (1, 2, 826, 0, 1249, 51, 1, 1)


_Head = tuple[int, float, int, int, str, "int | None", "int | None", "str | None", "str | None"]
"""frame, ts, OPC, DPC, SCCP message, called / calling SSN, called / calling GT."""


# ---------------------------------------------------------------------------------------------
# What each subsystem of a capture carries, learned from the capture itself
# ---------------------------------------------------------------------------------------------


class LearnedProtocols:
    """Which protocol each SCCP subsystem (and point code, global title) carries in a capture.

    Captures from a live network start mid-call: a Continue or End whose Begin is not in the
    file carries no application context (Q.773 §3.1: the dialogue portion travels only in the
    first messages of each direction), and Wireshark then needs an SSN preference to decode it.
    Here every message whose protocol is known from its application context, or from a
    transaction ID seen with one, votes for the protocol of its two SCCP end points:
    point code + SSN, global title + SSN, SSN alone, and (weaker, used only when the standard
    SSN assignments do not say) the global title or point code alone. A key answers only while
    its votes agree; a key that saw two protocols stays silent. The table holds one small
    record per end point of the capture (at most ``max_keys``), never per message or dialogue.
    """

    def __init__(self, max_keys: int = 4096) -> None:
        self.max_keys = max_keys
        self._votes: dict[tuple[Any, ...], dict[str, int]] = {}
        self._acs: dict[tuple[Any, ...], tuple[int, ...] | None] = {}

    def __len__(self) -> int:
        return len(self._votes)

    @staticmethod
    def _keys(pc: int, ssn: int | None, gt: str | None) -> tuple[tuple[Any, ...], ...]:
        out: list[tuple[Any, ...]] = []
        if ssn:
            out.append(("pc", pc, ssn))
            if gt:
                out.append(("gt", gt, ssn))
            out.append(("ssn", ssn))
        if gt:
            out.append(("gt", gt))
        out.append(("pc", pc))
        return tuple(out)

    def observe(self, head: _Head, protocol: str, ac: tuple[int, ...] | None) -> None:
        """One message whose protocol its application context (or its dialogue's) gave."""
        for pc, ssn, gt in ((head[3], head[5], head[7]), (head[2], head[6], head[8])):
            for key in self._keys(pc, ssn, gt):
                votes = self._votes.get(key)
                if votes is None:
                    if len(self._votes) >= self.max_keys:
                        continue
                    votes = self._votes[key] = {}
                    self._acs[key] = ac
                elif self._acs.get(key) != ac:
                    self._acs[key] = None  # several contexts: decode by protocol alone
                votes[protocol] = votes.get(protocol, 0) + 1

    def _answer(self, key: tuple[Any, ...]) -> tuple[str, tuple[int, ...] | None] | None:
        votes = self._votes.get(key)
        if votes is None or len(votes) != 1:
            return None
        return next(iter(votes)), self._acs.get(key)

    def resolve(
        self, head: _Head, *, strong: bool
    ) -> tuple[str, tuple[int, ...] | None, str] | None:
        """(protocol, application context or None, how it was learned) for a message's ends.

        ``strong``: point code + SSN, global title + SSN, SSN; else global title, point code.
        """
        ends = ((head[3], head[5], head[7]), (head[2], head[6], head[8]))
        for rank in (0, 1, 2) if strong else (3, 4):
            for pc, ssn, gt in ends:
                key = _learned_key(rank, pc, ssn, gt)
                if key is None:
                    continue
                hit = self._answer(key)
                if hit is not None:
                    return hit[0], hit[1], _key_text(key)
        return None

    def table(self) -> dict[str, str]:
        """What was learned, by SSN (the ``--ssn`` values an engineer would otherwise give)."""
        out = {}
        for key in sorted(k for k in self._votes if k[0] == "ssn"):
            hit = self._answer(key)
            out[str(key[1])] = hit[0] if hit else "ambiguous"
        return out


def _learned_key(rank: int, pc: int, ssn: int | None, gt: str | None) -> tuple[Any, ...] | None:
    if rank == 0:
        return ("pc", pc, ssn) if ssn else None
    if rank == 1:
        return ("gt", gt, ssn) if ssn and gt else None
    if rank == 2:
        return ("ssn", ssn) if ssn else None
    if rank == 3:
        return ("gt", gt) if gt else None
    return ("pc", pc)


def _key_text(key: tuple[Any, ...]) -> str:
    if key[0] == "ssn":
        return f"ssn {key[1]}"
    if len(key) == 3:
        return f"{key[0]} {key[1]} ssn {key[2]}"
    return f"{key[0]} {key[1]}"


class LadderDecoder:
    """MTP-TRANSFER -> :class:`LadderEntry`: SCCP, TCAP and operations, with dialogue memory.

    The protocol of a dialogue (CAP / INAP / MAP) comes, in this order, from its application
    context name or that of the dialogue its transaction ID belongs to; from ``ssn_overrides``
    (``--ssn``); from what the capture itself showed about the subsystem (``learned``, a
    :class:`LearnedProtocols`; with ``learn_from`` a first pass over that file builds it the
    first time a message needs it); from ``defaults``, the standard SSN assignments (Wireshark's
    ``camel.tcap.ssn`` etc. prefs); last from a learned global title or point code.
    ``with_fields`` False skips the argument decoding (opcodes and names only). ``pcf`` is the
    network's point code format (two-octet ITU or three-octet China point codes in SCCP).
    """

    def __init__(
        self,
        ssn_overrides: dict[int, str] | None = None,
        *,
        with_fields: bool = True,
        pcf: PointCodeFormat = PointCodeFormat.ITU,
        defaults: dict[int, str] | None = None,
        learned: LearnedProtocols | None = None,
        learn_from: str | Path | None = None,
    ) -> None:
        self.pcf = pcf
        self.overrides = dict(ssn_overrides or {})
        self.defaults = DEFAULT_SSN_PROTOCOLS if defaults is None else dict(defaults)
        self.learned = learned
        self.learn_from = learn_from
        self.with_fields = with_fields
        self.observer: LearnedProtocols | None = None  # set by the first pass
        self._ac_by_tid: dict[bytes, tuple[int, ...]] = {}
        self._segments: dict[tuple[int, int, int], list[bytes]] = {}
        self._field_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._op_cache: dict[tuple[Any, ...], OpInfo] = {}

    def decode(self, msg: CapturedMessage, source: str = "capture") -> LadderEntry | None:
        """The ladder line of a captured message; None for M3UA management (no MSU)."""
        if msg.mtp3 is None:
            return None
        return self.decode_transfer(msg.mtp3, frame=msg.frame, ts=msg.ts, source=source)

    def decode_transfer(
        self, x: MtpTransfer, *, frame: int = 0, ts: float = 0.0, source: str = "capture"
    ) -> LadderEntry:
        # The per-message hot path of ``replay --json`` (bench/replay.py): entries are built
        # positionally from a head tuple (frame, ts, opc, dpc) + SCCP part.
        if x.si != SI_SCCP:
            return LadderEntry(
                frame, ts, x.opc, x.dpc, f"SI={x.si}", note="not SCCP", source=source
            )
        try:
            m = sccp_codec.decode(x.data, self.pcf)
        except DecodeError as e:
            return LadderEntry(frame, ts, x.opc, x.dpc, "?", note=f"SCCP: {e}", source=source)
        except Exception as e:  # noqa: BLE001 - a codec bug must not end the replay
            return LadderEntry(
                frame, ts, x.opc, x.dpc, "?", note=f"SCCP: {type(e).__name__}: {e}", source=source
            )
        cd, cg = m.called, m.calling
        head: _Head = (
            frame,
            ts,
            x.opc,
            x.dpc,
            _SCCP_NAMES.get(type(m)) or type(m).__name__,
            cd.ssn,
            cg.ssn,
            cd.gt.digits if cd.gt else None,
            cg.gt.digits if cg.gt else None,
        )
        data = m.data
        note = None
        if isinstance(m, _SERVICES):
            note = f"returned, cause {m.return_cause}"
        seg = getattr(m, "segmentation", None)
        if seg is not None and not (seg.first and seg.remaining == 0):
            key = (x.opc, seg.local_reference, x.dpc)
            if seg.first:
                self._segments[key] = [data]
            elif key in self._segments:
                self._segments[key].append(data)
            else:
                return LadderEntry(*head, note="segment without its first", source=source)
            if seg.remaining:
                return LadderEntry(*head, note=f"segment, {seg.remaining} to come", source=source)
            data = b"".join(self._segments.pop(key))
            note = (note + "; " if note else "") + "reassembled"
        if cd.ssn == 1 and cg.ssn == 1:
            return LadderEntry(*head, note="SCCP management", source=source)
        return self._tcap(data, head, note, source)

    def _tcap(self, data: bytes, head: _Head, note: str | None, source: str) -> LadderEntry:
        try:
            t = tcap_codec.decode(data)
        except DecodeError as e:
            if data[:1] and data[0] in (0xE1, 0xE2, 0xE3, 0xE4):
                reason = "ANSI TCAP (not decoded)"
            else:
                reason = f"TCAP: {e}"
            return LadderEntry(*head, note=_join(note, reason), source=source, tcap_data=data)
        except Exception as e:  # noqa: BLE001
            return LadderEntry(
                *head, note=_join(note, f"TCAP: {type(e).__name__}"), source=source, tcap_data=data
            )
        ac, via_tid = self._remember_ac(t)
        protocol = protocol_of_ac(ac)
        learned_note = how = None
        decode_ac = ac
        if protocol is not None:
            how = "tid" if via_tid else "ac"
            if self.observer is not None:
                self.observer.observe(head, protocol, ac)
        else:
            decode_ac = None
            found = self._by_address(head)
            if found is not None:
                protocol, decode_ac, how = found
                if how.startswith("learned"):
                    learned_note = f"{protocol} {how}"
        if self.observer is not None and t.message_type != 0x62:
            ops_: tuple[OpInfo, ...] = ()  # the first pass reads only the Begins' operations
        elif t.components or t.bad_components:
            ops_ = self._components(t, protocol, decode_ac)
        else:
            ops_ = ()
        extra = None
        if t.p_abort_cause is not None:
            extra = f"P-Abort cause {t.p_abort_cause}"
        elif t.dialogue is not None:
            if isinstance(t.dialogue, tcap_codec.Aare) and t.dialogue.result:
                extra = f"AARE reject diagnostic {t.dialogue.diagnostic}"
            elif isinstance(t.dialogue, tcap_codec.Abrt):
                extra = "U-Abort"
        if learned_note is not None:
            extra = _join(extra, learned_note)
        return LadderEntry(
            *head,
            _TCAP_NAMES.get(t.message_type) or str(t.message_type),
            t.otid.hex() if t.otid else None,
            t.dtid.hex() if t.dtid else None,
            _oid(ac),
            protocol,
            ops_,
            _join(note, extra),
            source,
            data,
            how,
        )

    def _by_address(self, head: _Head) -> tuple[str, tuple[int, ...] | None, str] | None:
        """The protocol of a message whose dialogue named no known application context."""
        for ssn in (head[5], head[6]):
            if ssn and ssn in self.overrides:
                return self.overrides[ssn], None, f"--ssn {ssn}"
        learned = self._learned()
        if learned is not None:
            hit = learned.resolve(head, strong=True)
            if hit is not None:
                return hit[0], hit[1], f"learned from {hit[2]}"
        for ssn in (head[5], head[6]):
            if ssn and ssn in self.defaults:
                return self.defaults[ssn], None, f"ssn {ssn}"
        if learned is not None:
            hit = learned.resolve(head, strong=False)
            if hit is not None:
                return hit[0], hit[1], f"learned from {hit[2]}"
        return None

    def _learned(self) -> LearnedProtocols | None:
        if self.learned is None and self.learn_from is not None and self.observer is None:
            # The first message that needs it: one pass over the whole file, then on as before.
            self.learned = learn_protocols(self.learn_from, self.pcf, self.overrides)
        return self.learned

    def _remember_ac(self, t: tcap_codec.TcapMessage) -> tuple[tuple[int, ...] | None, bool]:
        """The application context of a message's dialogue, and whether only its TID said it."""
        d = t.dialogue
        ac = getattr(d, "application_context", None) if d is not None else None
        if ac is not None:
            ac = tuple(ac)
            if len(self._ac_by_tid) > 100_000:
                self._ac_by_tid.clear()
            for tid in (t.otid, t.dtid):
                if tid:
                    self._ac_by_tid[tid] = ac
            return ac, False
        if t.message_type == 0x62 and t.otid:
            # A Begin opens a new transaction: a reused ID no longer names the old dialogue.
            self._ac_by_tid.pop(t.otid, None)
            return None, False
        for tid in (t.dtid, t.otid):
            if tid and tid in self._ac_by_tid:
                return self._ac_by_tid[tid], True
        return None, False

    def _components(
        self, t: tcap_codec.TcapMessage, protocol: str | None, ac: tuple[int, ...] | None
    ) -> tuple[OpInfo, ...]:
        cac = ac if protocol_of_ac(ac) == protocol else None
        cache = self._op_cache
        out = []
        for c in t.components or ():
            # Components are frozen values: the same component in the same context reads the
            # same, so its ladder form is built once (the same RRBE or Continue every call).
            key = (protocol, cac, c)
            op = cache.get(key)
            if op is None:
                op = self._component(c, protocol, cac)
                if len(cache) >= 8192:
                    cache.clear()
                cache[key] = op
            out.append(op)
        for b in t.bad_components:
            out.append(OpInfo("bad", b.invoke_id, None, b.reason))
        return tuple(out)

    def _component(self, c: Any, protocol: str | None, cac: tuple[int, ...] | None) -> OpInfo:
        codec = _codec(protocol) if protocol else None
        names: dict[Any, str] = getattr(codec, "OPCODES", {}) if codec else {}
        errors: dict[Any, str] = getattr(codec, "ERRORS", {}) if codec else {}
        if isinstance(c, Invoke):
            return OpInfo(
                "invoke",
                c.invoke_id,
                c.opcode,
                names.get(c.opcode, _code(c.opcode)),
                self._fields(codec, "decode_arg", c.opcode, c.parameter, cac),
            )
        if isinstance(c, ReturnResult):
            if c.opcode is None:
                return OpInfo("result", c.invoke_id, None, "result")
            return OpInfo(
                "result",
                c.invoke_id,
                c.opcode,
                names.get(c.opcode, _code(c.opcode)),
                self._fields(codec, "decode_result", c.opcode, c.parameter, cac),
            )
        if isinstance(c, ReturnError):
            return OpInfo(
                "error", c.invoke_id, c.error_code, errors.get(c.error_code, _code(c.error_code))
            )
        return OpInfo(
            "reject", c.invoke_id, None, f"{c.problem_type.name.lower()}/{c.problem_code}"
        )

    def _fields(
        self, codec: Any, fn: str, code: Any, parameter: bytes | None, ac: tuple[int, ...] | None
    ) -> dict[str, Any]:
        if codec is None or not self.with_fields or not isinstance(code, int):
            return {}
        # Switches repeat most arguments byte for byte (RRBE, ERB, Connect to the IVR...):
        # the key fields of an argument already seen are reused (read-only) without pycrate.
        key = (codec.__name__, fn, code, parameter, ac)
        hit = self._field_cache.get(key)
        if hit is not None:
            return hit
        if (
            code == 0
            and fn == "decode_arg"
            and parameter is not None
            and codec.__name__ == "scp.codecs.cap"
        ):
            quick = idp_summary(parameter)
            if quick is not None:
                return quick  # callers differ call by call: not worth caching
        try:
            op = getattr(codec, fn)(code, parameter, ac=ac)
            out = op_fields(op)
        except (DecodeError, EncodeError) as e:
            out = {"undecoded": e.reason if hasattr(e, "reason") else str(e)}
        except Exception as e:  # noqa: BLE001 - pycrate edge cases are contained in codecs, but be safe
            out = {"undecoded": type(e).__name__}
        if len(self._field_cache) >= 8192:
            self._field_cache.clear()
        self._field_cache[key] = out
        return out


# InitialDPArg (TS 29.078 §6.1.2.1 / 3GPP CAP ASN.1): context tags whose values the ladder
# shows, and tags it may skip because op_fields() leaves them out anyway (extensions and
# CAMEL blobs). Any other tag, or any oddity, falls back to the full codec.
_IDP_NUMBER_TAGS = {
    0x82: ("called", "cpn"),
    0x83: ("calling", "cgpn"),
    0x8A: ("location_number", "cgpn"),
    0x8C: ("ocn", "rdn"),
    0x9D: ("rdn", "rdn"),
}
_IDP_SKIP = frozenset(
    {0x87, 0x88, 0xAF, 0x97, 0xBB, 0x9E, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB9, 0x99}
)
# Position of each tag in the SEQUENCE definition: components must come in this order (X.680
# §25), and a decoder that finds one out of place drops it, so the fast path steps aside.
_IDP_ORDER = {
    t: i
    for i, t in enumerate(
        (
            0x80,
            0x82,
            0x83,
            0x85,
            0x87,
            0x88,
            0x8A,
            0x8C,
            0xAF,
            0x97,
            0x99,
            0xBB,
            0x9C,
            0x9D,
            0x9E,
            0x100 | 50,
            0x100 | 51,
            0x100 | 52,
            0x100 | 53,
            0x100 | 54,
            0x100 | 55,
            0x100 | 56,
            0x100 | 57,
        )
    )
}


def idp_summary(p: bytes) -> dict[str, Any] | None:
    """The ladder fields of a CAP InitialDP argument read straight from its BER, or None.

    The hot path of ``replay --json``: pycrate takes ~30 µs per InitialDP and most captures
    are mostly InitialDPs with different numbers. Only definite lengths and the tags above are
    read; anything else returns None and the caller uses :mod:`scp.codecs.cap`. The unit tests
    check that both give the same fields.
    """
    from scp.codecs.numbers import (
        AddressString,
        CalledPartyNumber,
        CallingPartyNumber,
        RedirectingNumber,
        decode_tbcd,
    )

    n = len(p)
    if n < 2 or p[0] != 0x30 or p[1] & 0x80 and p[1] != 0x81:
        return None
    pos, end = (2, 2 + p[1]) if p[1] < 0x80 else (3, 3 + p[2] if n > 2 else 0)
    if end != n:
        return None
    sk = event = category = None
    nums: dict[str, str] = {}
    imsi = bcd = None
    last = -1
    try:
        while pos < end:
            tag = p[pos]
            pos += 1
            if tag & 0x1F == 0x1F:  # two-octet tag number (>= 31)
                if pos >= end or p[pos] & 0x80:
                    return None
                tag = 0x100 | p[pos]  # 0x100 + tag number
                pos += 1
            if pos >= end:
                return None
            ln = p[pos]
            pos += 1
            if ln & 0x80:
                if ln != 0x81 or pos >= end:
                    return None
                ln = p[pos]
                pos += 1
            v = p[pos : pos + ln]
            pos += ln
            if pos > end:
                return None
            rank = _IDP_ORDER.get(tag)
            if rank is None or rank <= last:
                return None
            last = rank
            if tag == 0x80:
                if not 1 <= ln <= 4:
                    return None
                sk = int.from_bytes(v, "big", signed=True)
            elif tag in _IDP_NUMBER_TAGS:
                name, kind = _IDP_NUMBER_TAGS[tag]
                cls: Any = {
                    "cpn": CalledPartyNumber,
                    "cgpn": CallingPartyNumber,
                    "rdn": RedirectingNumber,
                }[kind]
                nums[name] = cls.decode(v).digits
            elif tag == 0x85:
                category = v[0] if v else 0
            elif tag == 0x9C:  # [28] eventTypeBCSM
                if ln != 1:
                    return None
                event = v[0]
            elif tag == 0x100 | 50:
                imsi = decode_tbcd(v)
            elif tag == 0x100 | 56:
                bcd = AddressString.decode(v).digits
            elif tag in _IDP_SKIP or tag in (
                0x100 | 54,
                0x100 | 55,
                0x100 | 57,
                0x100 | 51,
                0x100 | 52,
                0x100 | 53,
            ):
                continue
            else:
                return None
    except (DecodeError, IndexError, ValueError):
        return None
    if sk is None:
        return None
    out: dict[str, Any] = {"sk": sk}
    if "called" in nums:
        out["called"] = nums["called"]
    if "calling" in nums:
        out["calling"] = nums["calling"]
    if category is not None:
        out["calling_partys_category"] = category
    if "location_number" in nums:
        out["location_number"] = nums["location_number"]
    if "ocn" in nums:
        out["ocn"] = nums["ocn"]
    if event is not None:
        out["event"] = _ev_name(event)
    if "rdn" in nums:
        out["rdn"] = nums["rdn"]
    if imsi is not None:
        out["imsi"] = imsi
    if bcd is not None:
        out["called_bcd"] = bcd
    return out


def _code(code: Any) -> str:
    return str(code) if isinstance(code, int) else ".".join(map(str, code or ()))


def _join(a: str | None, b: str | None) -> str | None:
    if a and b:
        return f"{a}; {b}"
    return a or b


@dataclass
class CaptureSurvey:
    """What a first pass over a capture learns: subsystem protocols and the SCP's point code."""

    protocols: LearnedProtocols
    scp_pc: int | None
    messages: int = 0


def survey_capture(
    path: str | Path,
    pcf: PointCodeFormat = PointCodeFormat.ITU,
    ssn_overrides: dict[int, str] | None = None,
) -> CaptureSurvey:
    """The first pass: stream the file once, keep only the learned table and the SCP guess."""
    table = LearnedProtocols()
    dec = LadderDecoder(ssn_overrides, with_fields=False, pcf=pcf)
    dec.observer = table
    scp = ScpGuess()
    n = 0
    for item in read_capture(str(path), pcf):
        if type(item) is CaptureWarning:
            continue  # the second pass reports them
        try:
            e = dec.decode(item)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - the second pass reports it
            continue
        if e is not None:
            n += 1
            scp.see(e)
    return CaptureSurvey(table, scp.pc, n)


def learn_protocols(
    path: str | Path,
    pcf: PointCodeFormat = PointCodeFormat.ITU,
    ssn_overrides: dict[int, str] | None = None,
) -> LearnedProtocols:
    """Which protocol each subsystem of the capture carries (:class:`LearnedProtocols`)."""
    return survey_capture(path, pcf, ssn_overrides).protocols


def decode_capture(
    path: str | Path, decoder: LadderDecoder | None = None, *, learn: bool = True
) -> Iterator[LadderEntry | CaptureWarning]:
    """Every ladder line of a capture and every warning, in capture order (never raises).

    ``learn``: a message whose protocol its dialogue does not name is decoded with what the
    capture shows about its subsystem (a first pass over the file, run only if one needs it).
    """
    dec = decoder or LadderDecoder()
    if learn and dec.learned is None and dec.learn_from is None:
        dec.learn_from = path
    for item in read_capture(str(path), dec.pcf):
        if type(item) is CaptureWarning:
            yield item
            continue
        try:
            entry = dec.decode(item)  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - one bad frame is a warning, not the end
            yield CaptureWarning(item.frame, f"could not decode: {type(e).__name__}: {e}")  # type: ignore[union-attr]
            continue
        if entry is not None:
            yield entry


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def format_entry(e: LadderEntry, t0: float = 0.0) -> str:
    """One ladder line: time, OPC -> DPC, SCCP / TCAP type, tids, operations with key fields."""
    tag = {"capture": "  ", "ours": "<=", "sent": "=>"}.get(e.source, "  ")
    head = f"{e.ts - t0:9.3f} {tag} #{e.frame:<5} {e.opc:>5} -> {e.dpc:<5} {e.sccp:<5}"
    parts = [head]
    if e.tcap:
        tids = []
        if e.otid:
            tids.append(f"otid={e.otid}")
        if e.dtid:
            tids.append(f"dtid={e.dtid}")
        parts.append(f"{e.tcap:<8} {' '.join(tids)}")
        if e.protocol:
            parts.append(f"[{e.protocol}]")
        if e.ops:
            parts.append(" ".join(o.text() for o in e.ops))
    if e.note:
        parts.append(f"({e.note})")
    return " ".join(parts)


def entry_json(e: LadderEntry) -> dict[str, Any]:
    """A JSON-ready dict of one ladder line (``--json`` prints one per line)."""
    d = _entry_head(e)
    if e.ops:
        d["ops"] = _ops_json(e.ops)
    return d


def _ops_json(ops_: tuple[OpInfo, ...]) -> list[dict[str, Any]]:
    out = []
    for o in ops_:
        od: dict[str, Any] = {"kind": o.kind, "id": o.invoke_id, "code": o.code, "name": o.name}
        if o.fields:
            od["fields"] = o.fields
        out.append(od)
    return out


def _entry_head(e: LadderEntry) -> dict[str, Any]:
    d: dict[str, Any] = {
        "type": "message",
        "source": e.source,
        "frame": e.frame,
        "ts": round(e.ts, 6),
        "opc": e.opc,
        "dpc": e.dpc,
        "sccp": e.sccp,
    }
    # Spelled out rather than a getattr loop: one call per message of ``replay --json``.
    if e.called_ssn is not None:
        d["called_ssn"] = e.called_ssn
    if e.calling_ssn is not None:
        d["calling_ssn"] = e.calling_ssn
    if e.called_gt is not None:
        d["called_gt"] = e.called_gt
    if e.calling_gt is not None:
        d["calling_gt"] = e.calling_gt
    if e.tcap is not None:
        d["tcap"] = e.tcap
    if e.otid is not None:
        d["otid"] = e.otid
    if e.dtid is not None:
        d["dtid"] = e.dtid
    if e.ac is not None:
        d["ac"] = e.ac
    if e.protocol is not None:
        d["protocol"] = e.protocol
    if e.note is not None:
        d["note"] = e.note
    return d


class JsonLines:
    """``entry_json`` as one compact JSON line, with the ``ops`` part cached.

    The ladder decoder hands out the same :class:`OpInfo` objects for a component it has seen
    (same RRBE, same Continue on every call), so their JSON text is made once. The cache keeps
    the OpInfo objects alive, so the ``id()`` in its key cannot be reused by another object.
    """

    def __init__(self) -> None:
        self._encode = json.JSONEncoder(separators=(",", ":")).encode
        self._ops: dict[tuple[int, ...], tuple[tuple[OpInfo, ...], str]] = {}

    def line(self, e: LadderEntry) -> str:
        ops_ = e.ops
        if not ops_:
            return self._encode(entry_json(e))
        key = tuple(map(id, ops_))
        hit = self._ops.get(key)
        if hit is None:
            hit = (ops_, self._encode(_ops_json(ops_)))
            if len(self._ops) >= 4096:
                self._ops.clear()
            self._ops[key] = hit
        head = self._encode(_entry_head(e))
        return f'{head[:-1]},"ops":{hit[1]}}}'


class LadderFilter:
    """``--filter`` terms, all of which must match: ``KEY=VALUE`` or a bare word.

    Keys: ``pc`` (OPC or DPC), ``opc``, ``dpc``, ``tcap`` (begin, continue...), ``op``
    (operation name, substring, case-insensitive), ``tid`` (otid or dtid, hex), ``number``
    (digits anywhere: GTs and operation numbers, substring), ``protocol`` (cap / inap / map),
    ``ssn``. A bare word matches operation names, e.g. ``initialDP``.
    """

    KEYS = ("pc", "opc", "dpc", "tcap", "op", "tid", "number", "protocol", "ssn")

    def __init__(self, terms: Iterable[str]) -> None:
        self.terms: list[tuple[str, str]] = []
        for raw in terms:
            for term in raw.split(","):
                term = term.strip()
                if not term:
                    continue
                key, sep, val = term.partition("=")
                if not sep:
                    key, val = "op", term
                key = key.strip().lower()
                if key not in self.KEYS:
                    raise ValueError(f"filter key {key!r} is not one of {', '.join(self.KEYS)}")
                if key in ("pc", "opc", "dpc", "ssn") and not val.strip().isdigit():
                    raise ValueError(f"filter {key}= needs a number, got {val!r}")
                self.terms.append((key, val.strip().lower()))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def match(self, e: LadderEntry) -> bool:
        for key, val in self.terms:
            if key == "pc" and int(val) not in (e.opc, e.dpc):
                return False
            if key == "opc" and int(val) != e.opc:
                return False
            if key == "dpc" and int(val) != e.dpc:
                return False
            if key == "ssn" and int(val) not in (e.called_ssn, e.calling_ssn):
                return False
            if key == "tcap" and (e.tcap or "").lower() != val:
                return False
            if key == "protocol" and (e.protocol or "") != val:
                return False
            if key == "tid" and val not in ((e.otid or ""), (e.dtid or "")):
                return False
            if key == "op" and not any(val in o.name.lower() for o in e.ops):
                return False
            if key == "number" and not any(val in n.lower() for n in e.numbers):
                return False
        return True


# ---------------------------------------------------------------------------------------------
# Rewriting: transaction IDs (Q.773 §3.1) and numbers
# ---------------------------------------------------------------------------------------------


def _tlv_head(tag: int, n: int) -> bytes:
    if n < 0x80:
        return bytes((tag, n))
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(ln))) + ln


def rewrite_tids(data: bytes, *, otid: bytes | None = None, dtid: bytes | None = None) -> bytes:
    """The TCAP message with its OrigTransactionID / DestTransactionID replaced.

    Only the transaction portion is rebuilt (the outer length follows the new IDs); the
    dialogue and component portions are copied byte for byte. Raises DecodeError if the
    transaction portion cannot be read.
    """
    from scp.codecs.cap import read_tlv

    tag, vs, ve, _ = read_tlv(data, 0, "tcap")
    if data[1] == 0x80:
        ve = len(data) - 2  # indefinite outer length: keep the end-of-contents
    body = bytearray()
    pos = vs
    while pos < ve:
        t, cs, ce, nxt = read_tlv(data, pos, "tcap")
        if t == tcap_codec.TAG_OTID and otid is not None:
            body += _tlv_head(t, len(otid)) + otid
        elif t == tcap_codec.TAG_DTID and dtid is not None:
            body += _tlv_head(t, len(dtid)) + dtid
        else:
            body += data[pos:nxt]
        if t not in (tcap_codec.TAG_OTID, tcap_codec.TAG_DTID):
            body += data[nxt:ve]
            break
        pos = nxt
    return _tlv_head(tag, len(body)) + bytes(body)


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
# Roles in a capture: who is the SCP?
# ---------------------------------------------------------------------------------------------

# Operations a switch, HLR, VLR or SRF sends *to* an SCP (TS 29.078 §6: InitialDP 0,
# AssistRequestInstructions 16; TS 29.002: alertServiceCentre 64 / 49, NoteMM-Event 89).
_TO_SCP = {
    ("cap", 0),
    ("inap", 0),
    ("cap", 16),
    ("inap", 16),
    ("map", 64),
    ("map", 49),
    ("map", 89),
}


class ScpGuess:
    """The SCP's point code: DPC of the first Begin carrying an operation sent to an SCP
    (else of the first Begin), seen one ladder line at a time."""

    def __init__(self) -> None:
        self.first_begin: int | None = None
        self.found: int | None = None

    @property
    def pc(self) -> int | None:
        return self.found if self.found is not None else self.first_begin

    def see(self, e: LadderEntry) -> None:
        if self.found is not None or e.tcap != "Begin":
            return
        if self.first_begin is None:
            self.first_begin = e.dpc
        for o in e.ops:
            if o.kind == "invoke" and (e.protocol, o.code) in _TO_SCP:
                self.found = e.dpc
                return


def guess_scp_pc(entries: Iterable[LadderEntry]) -> int | None:
    """The SCP's point code: DPC of the first Begin carrying an operation sent to an SCP."""
    g = ScpGuess()
    for e in entries:
        g.see(e)
    return g.pc


# ---------------------------------------------------------------------------------------------
# The in-process SCP (offline replay, the simulator's default target, demo captures)
# ---------------------------------------------------------------------------------------------


class _LoopbackTransport:
    """Stands in for the TCP/SCTP adapter: what the node sends goes to a callback."""

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self.deliver = deliver
        self.listening: list[tuple[str, int]] = []

    def send(self, assoc_id: int, stream: int, data: bytes) -> bool:
        self.deliver(data)
        return True

    def close_association(self, assoc_id: int, reason: str) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def default_users(pool: Any, cfg: Any) -> Callable[[Any], list[Any]] | None:
    """The node's real TC-users (call handling, MAP presence) when those modules exist.

    Returns None (the node's interim ContinueUser) without a database or before issues 5 and 6
    land, so replay works either way.
    """
    if pool is None:
        return None
    makers: list[Callable[[Any, Any, Any], Any]] = []
    try:
        from scp.flows.calls import build_call_user  # type: ignore[import-not-found,unused-ignore]

        makers.append(build_call_user)
    except ImportError:
        pass
    try:
        from scp.flows.presence import build_map_user  # type: ignore[import-not-found,unused-ignore]

        makers.append(build_map_user)
    except ImportError:
        pass
    if not makers:
        return None

    def users(node: Any) -> list[Any]:
        out: list[Any] = [m(node, pool, cfg) for m in makers]
        if len(makers) == 1 and makers[0].__name__ == "build_map_user":
            from scp.service.dialogue import ContinueUser

            out.insert(0, ContinueUser())
        return out

    return users


class InProcessScp:
    """An SCP node (same cores, same TC-users) whose association is a function call.

    ``feed(m3ua)`` delivers one M3UA message from the peer; what the node sends lands in
    ``sent`` and in ``on_send``. The node's ASP is brought up by sending ASPUP / ASPAC for the
    peer (RFC 4666 §4.3.4.1, §4.3.4.3), so DATA is accepted exactly as on the wire.
    Needs a running event loop (the node arms asyncio timers).
    """

    PEER = ("127.0.0.2", 2906)
    LOCAL = ("127.0.0.1", 2905)

    def __init__(
        self,
        cfg: Any,
        *,
        pool: Any = None,
        users: Callable[[Any], list[Any]] | None = None,
        on_send: Callable[[bytes], None] | None = None,
    ) -> None:
        from scp.app import Node

        # The replayer plays the ASP that connects in: the node is the server side of a TCP
        # association that never opens a socket, whatever the config says for the live node.
        m = cfg.m3ua
        if m.role != "server" or m.transport != "tcp":
            cfg = dataclasses.replace(
                cfg, m3ua=dataclasses.replace(m, role="server", transport="tcp")
            )
        self.cfg = cfg
        self.sent: list[bytes] = []
        self.on_send = on_send
        self.changed = asyncio.Event()
        self.node = Node(cfg, users=users if users is not None else default_users(pool, cfg))
        self.node.transport = _LoopbackTransport(self._sent)  # type: ignore[assignment]
        self.assoc_id = 1

    def _sent(self, data: bytes) -> None:
        self.sent.append(data)
        self.changed.set()
        if self.on_send is not None:
            self.on_send(data)

    def start(self) -> None:
        """Association up and the peer ASP active (ASPUP, ASPAC with our routing context)."""
        from scp.codecs import m3ua

        self.node.association_up(self.assoc_id, self.PEER, self.LOCAL)
        rc = self.cfg.m3ua.routing_context
        self.feed(m3ua.encode(m3ua.make(m3ua.MessageType.ASPUP)))
        self.feed(
            m3ua.encode(
                m3ua.make(
                    m3ua.MessageType.ASPAC, routing_context=rc, traffic_mode=_traffic_mode(self.cfg)
                )
            )
        )

    def feed(self, data: bytes) -> None:
        # As an SCTP peer would: management on stream 0, DATA on a data stream (RFC 4666 §1.4.7)
        self.node.association_data(self.assoc_id, data, 1 if data[2:4] == b"\x01\x01" else 0)

    def feed_transfer(self, x: MtpTransfer) -> None:
        from scp.codecs import m3ua

        self.feed(m3ua.encode_data(x, rc=self.cfg.m3ua.routing_context))

    async def settle(self, quiet: float = 0.05, limit: float = 3.0) -> None:
        """Wait until the node has sent nothing for ``quiet`` s (its users may await the DB)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), quiet)
            except TimeoutError:
                return

    async def stop(self) -> None:
        self.node.association_down(self.assoc_id, "replay done")
        if self.node._timer is not None:
            self.node._timer.cancel()
        # The real users hold database work in flight: let it finish before the pool closes.
        for user in self.node.user.users:
            for name in ("drain", "aclose"):
                fn = getattr(user, name, None)
                if fn is not None:
                    try:
                        await asyncio.wait_for(fn(), 5.0)
                    except Exception:  # noqa: BLE001 - shutting down: report nothing more
                        pass


def _traffic_mode(cfg: Any) -> int:
    return {"override": 1, "loadshare": 2, "broadcast": 3}[cfg.m3ua.traffic_mode]


# ---------------------------------------------------------------------------------------------
# Offline replay
# ---------------------------------------------------------------------------------------------


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


def _our_ssn(cfg: Any, protocol: str | None, e: LadderEntry) -> int:
    ssn = cfg.sccp.ssn
    if protocol == "inap":
        return ssn.inap
    if protocol == "map":
        if any(o.code in (64, 49) for o in e.ops if o.kind == "invoke"):
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


def _stream(
    path: str | Path,
    ssn_overrides: dict[int, str] | None,
    emit: Emit,
    summary: ReplaySummary,
    scp_pc: int | None,
    pcf: PointCodeFormat,
) -> tuple[Iterator[tuple[CapturedMessage, LadderEntry]], int | None]:
    """The capture's SCCP messages with their ladder lines, streamed, and the SCP's point code.

    Two passes over the file: the first learns which protocol each subsystem carries and where
    the SCP is (:func:`survey_capture`, a small table); the second, lazily iterated, decodes
    with it. Warnings are emitted (and counted) as the second pass meets them.
    """
    survey = survey_capture(path, pcf, ssn_overrides)
    summary.learned = survey.protocols.table()
    dec = LadderDecoder(ssn_overrides, pcf=pcf, learned=survey.protocols)

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
                        item.frame,  # type: ignore[union-attr]
                        f"could not decode: {exc!r}",
                    ),
                )
                continue
            if e is not None:
                summary.messages += 1
                yield item, e  # type: ignore[misc]

    return items(), (scp_pc if scp_pc is not None else survey.scp_pc)


def _writer(capture_out: str | Path | None) -> Any:
    if capture_out is None:
        return None
    from scp.adapters.capture import SctpPcapWriter

    return SctpPcapWriter.open(str(capture_out))


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
    items, scp = _stream(path, ssn_overrides, emit, summary, scp_pc, capture_pcf)
    writer = _writer(capture_out)
    our_dec = LadderDecoder(ssn_overrides, pcf=cfg.m3ua.pcf)
    # network otid -> report, for the dialogues still open in the capture (insertion order)
    dialogues: dict[bytes, DialogueReport] = {}
    by_capture_scp_tid: dict[bytes, DialogueReport] = {}
    by_our_tid: dict[bytes, DialogueReport] = {}
    current: list[LadderEntry] = []
    frame_now = [0]
    first_answer_at: list[float] = []

    def on_send(data: bytes) -> None:
        from scp.codecs import m3ua

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
            if e.sccp in _SERVICE_NAMES:
                # A message SCCP returned (UDTS/XUDTS/LUDTS, Q.714 §4.2) answers what the
                # capture's SCP sent, not ours: shown, never fed.
                if show and (compare or from_network):
                    emit(
                        "message",
                        dataclasses.replace(e, note=_join(e.note, "not fed: a returned message")),
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
                                e, note=_join(e.note, "not fed: our SCP closed this dialogue")
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
                            e, note=_join(e.note, "not fed: its dialogue began before the capture")
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
                from scp.codecs import m3ua

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


# ---------------------------------------------------------------------------------------------
# Live replay: an M3UA ASP toward a running SCP
# ---------------------------------------------------------------------------------------------


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
        from scp.core.m3ua_asp import M3uaLayer
        from scp.core.m3ua_framing import M3uaStreamReader

        self.m3ua = M3uaLayer(
            role="client", local_pc=local_pc, routing_context=routing_context, beat_interval=0.0
        )
        self.reader = M3uaStreamReader()
        self.transport: asyncio.Transport | None = None
        self.on_data = on_data
        self.on_wire = on_wire
        self.active = asyncio.Event()
        self.closed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._process(self.m3ua.association_up(1, time.monotonic()))

    def data_received(self, data: bytes) -> None:
        for m in self.reader.feed(data):
            if self.on_wire is not None:
                self.on_wire(m, False)
            self._process(self.m3ua.receive(1, m, time.monotonic(), 0))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.closed.set()
        if self._timer is not None:
            self._timer.cancel()

    def _process(self, outputs: Iterable[object]) -> None:
        from scp.core.m3ua_asp import Deliver, Transmit

        for o in outputs:
            if type(o) is Transmit:
                if self.transport is not None:
                    self.transport.write(o.data)  # type: ignore[attr-defined]
                if self.on_wire is not None:
                    self.on_wire(o.data, True)  # type: ignore[attr-defined]
            elif type(o) is Deliver:
                self.on_data(o.xfer)  # type: ignore[attr-defined]
        if self.m3ua.is_active:
            self.active.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        d = self.m3ua.next_deadline()
        if d is not None:
            self._timer = asyncio.get_running_loop().call_later(
                max(0.0, d - time.monotonic()), self._on_timer
            )

    def _on_timer(self) -> None:
        self._timer = None
        self._process(self.m3ua.handle_timer(time.monotonic()))

    def send(self, x: MtpTransfer) -> None:
        self._process(self.m3ua.send_transfer(x, time.monotonic()))

    def close(self) -> None:
        if self.transport is not None:
            self._process(self.m3ua.shutdown(time.monotonic()))
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
    items, scp = _stream(path, ssn_overrides, emit, summary, scp_pc, capture_pcf)
    writer = _writer(capture_out)
    ans_dec = LadderDecoder(ssn_overrides, pcf=cfg.m3ua.pcf)
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
            e = dataclasses.replace(e, note=_join(e.note, f"answered in {lat * 1000:.1f} ms"))
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
            if e.tcap is None or e.tcap_data is None or e.sccp in _SERVICE_NAMES:
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
                                note=_join(
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
