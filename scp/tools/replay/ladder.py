"""The ladder of a SIGTRAN capture: each message decoded down to its operations.

Each MTP-TRANSFER (Q.704 §2.2 routing label) that :func:`scp.tools.pcapread.read_capture`
yields (pcap / pcapng, M3UA over SCTP or TCP, MTP3 over M2PA / M2UA) is decoded down through
SCCP (Q.713 §4: UDT/XUDT/LUDT and their services, segmented XUDT reassembled per
Q.714 §4.1.1.2.3), TCAP (Q.773 §3.1 message type, otid / dtid, §4.2 dialogue portion) and the
component portion (§3.2) to the CAP (TS 29.078), INAP CS-1 (ETS 300 374-1) or MAP (TS 29.002)
operation with its key fields (numbers, event, cause, service key): :class:`LadderDecoder`,
one :class:`LadderEntry` per message. The protocol of a dialogue is taken from its
application context name (or that of the dialogue its transaction ID belongs to); for the
rest, typically a capture that starts mid-call, from what the capture itself shows each
subsystem carrying (:class:`LearnedProtocols`, built by a first pass over the file), then
from the standard SSN assignments. Wireshark needs an SSN preference for those; replay names
the same operations with no option (``--ssn`` still overrides). The first pass also guesses
which point code is the SCP (:class:`ScpGuess`).

Nothing here raises on a bad capture: undecodable layers become a note on the ladder line or a
:class:`~scp.tools.pcapread.CaptureWarning`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scp.codecs import appctx
from scp.codecs import sccp as sccp_codec
from scp.codecs import tcap as tcap_codec
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.numbers import (
    AddressString,
    CalledPartyNumber,
    CallingPartyNumber,
    RedirectingNumber,
    decode_tbcd,
)
from scp.codecs.opcodec import OperationCodec
from scp.codecs.opcodes import CapOpcode, MapOpcode
from scp.codecs.ops import EventTypeBCSM
from scp.primitives import (
    SI_SCCP,
    Invoke,
    MtpTransfer,
    PointCodeFormat,
    ReturnError,
    ReturnResult,
)
from scp.tools.pcapread import CapturedMessage, CaptureWarning, read_capture

__all__ = [
    "OpInfo",
    "LadderEntry",
    "LadderDecoder",
    "decode_capture",
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
SERVICE_MESSAGES = frozenset({"UDTS", "XUDTS", "LUDTS"})

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


_CODECS: dict[str, OperationCodec] = {}


def _codec(protocol: str) -> OperationCodec:
    """The operation codec of a protocol (its module's ``CODEC``), imported on first use."""
    codec = _CODECS.get(protocol)
    if codec is None:
        # Deferred: each codec loads pycrate's ASN.1 for its protocol (CAP and MAP most of a
        # second together, INAP its generated module); a capture loads only what it carries.
        codec = importlib.import_module(f"scp.codecs.{protocol}").CODEC
        _CODECS[protocol] = codec
    return codec


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
        invoked: dict[tuple[bytes, int], str] | None = None,
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
        # (invoker's transaction ID, invoke ID) -> operation name: a ReturnResult without a
        # value carries no operation code (Q.773 §3.1: the result sequence is left out), so
        # the ladder names it after the invoke it answers, sent earlier in the dialogue
        # (``invoked``: shared with the decoder of the other direction, as replay reads the
        # capture and the SCP's answers with a decoder each)
        self._invoked: dict[tuple[bytes, int], str] = {} if invoked is None else invoked

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
            return LadderEntry(*head, note=join_notes(note, reason), source=source, tcap_data=data)
        except Exception as e:  # noqa: BLE001
            return LadderEntry(
                *head,
                note=join_notes(note, f"TCAP: {type(e).__name__}"),
                source=source,
                tcap_data=data,
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
            extra = join_notes(extra, learned_note)
        return LadderEntry(
            *head,
            _TCAP_NAMES.get(t.message_type) or str(t.message_type),
            t.otid.hex() if t.otid else None,
            t.dtid.hex() if t.dtid else None,
            _oid(ac),
            protocol,
            ops_,
            join_notes(note, extra),
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
        return tuple(self._name_bare_results(t, out))

    def _name_bare_results(self, t: tcap_codec.TcapMessage, ops: list[OpInfo]) -> list[OpInfo]:
        """Remember this message's invokes; name its value-less results after theirs."""
        invoked = self._invoked
        for i, op in enumerate(ops):
            if op.invoke_id is None:
                continue
            if op.kind == "invoke" and t.otid:
                if len(invoked) > 100_000:
                    invoked.clear()
                invoked[(t.otid, op.invoke_id)] = op.name
            elif op.kind == "result" and op.code is None and t.dtid:
                name = invoked.get((t.dtid, op.invoke_id))
                if name is not None:
                    ops[i] = dataclasses.replace(op, name=name)
        return ops

    def _component(self, c: Any, protocol: str | None, cac: tuple[int, ...] | None) -> OpInfo:
        codec = _codec(protocol) if protocol else None
        names: dict[Any, str] = codec.opcode_names if codec else {}
        errors: dict[Any, str] = codec.error_names if codec else {}
        if isinstance(c, Invoke):
            return OpInfo(
                "invoke",
                c.invoke_id,
                c.opcode,
                _versioned(protocol, cac, c.opcode, names.get(c.opcode, _code(c.opcode))),
                self._fields(codec, "decode_arg", c.opcode, c.parameter, cac),
            )
        if isinstance(c, ReturnResult):
            if c.opcode is None:
                return OpInfo("result", c.invoke_id, None, "result")
            return OpInfo(
                "result",
                c.invoke_id,
                c.opcode,
                _versioned(protocol, cac, c.opcode, names.get(c.opcode, _code(c.opcode))),
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
        self,
        codec: OperationCodec | None,
        fn: str,
        code: Any,
        parameter: bytes | None,
        ac: tuple[int, ...] | None,
    ) -> dict[str, Any]:
        if codec is None or not self.with_fields or not isinstance(code, int):
            return {}
        # Switches repeat most arguments byte for byte (RRBE, ERB, Connect to the IVR...):
        # the key fields of an argument already seen are reused (read-only) without pycrate.
        key = (codec.layer, fn, code, parameter, ac)
        hit = self._field_cache.get(key)
        if hit is not None:
            return hit
        if (
            code == CapOpcode.INITIAL_DP
            and fn == "decode_arg"
            and parameter is not None
            and codec.layer == "cap"
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


def _versioned(protocol: str | None, ac: tuple[int, ...] | None, code: Any, name: str) -> str:
    """The operation's name in its dialogue's version: MAP operation 46 is forwardSM up to MAP
    v2 and mo-ForwardSM from v3 (TS 29.002 §17.6.4; v3 split it from mt-ForwardSM, 44), the
    codec's table being v3's. A MAP context's last arc is its version (§17.3.2)."""
    if protocol == "map" and code == MapOpcode.MO_FORWARD_SM and ac is not None and ac[-1] <= 2:
        return "forwardSM"
    return name


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


def join_notes(a: str | None, b: str | None) -> str | None:
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
            yield CaptureWarning(item.frame, f"could not decode: {type(e).__name__}: {e}")
            continue
        if entry is not None:
            yield entry


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
