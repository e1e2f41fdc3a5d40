"""A strict second oracle beside tshark: every TCAP message decoded with full ASN.1 definitions.

Wireshark is lenient by design (it shows what it can and flags little), so a frame it reads
cleanly may still be refused by a peer built on a strict ASN.1 compiler: our MAP answers once
carried a ReturnResult whose ``result`` held the operation code without the mandatory
parameter (Q.773 §3.2 / X.880 ``ReturnResult``), which tshark showed and pycrate's TCAP-MAP
refuses. This module is that strict peer. It is test tooling, so it imports pycrate directly
(the product keeps pycrate inside ``scp/codecs/``).

A capture is walked frame by frame (``scp.tools.pcapread``: SCTP DATA, M3UA DATA, M2PA, M2UA) down
to the SCCP user data (UDT, XUDT, LUDT; segments reassembled by local reference), and
each TCAP message is decoded by the definitions of its application:

* MAP: ``pycrate_asn1dir.TCAP_MAPv2v3`` ``TCAP-MAP-Message`` (TS 29.002 v3 modules and the
  MAPv2 ones, with MAP-DialoguePDU user information);
* CAP: ``pycrate_asn1dir.TCAP_CAP`` ``TCAP-CAP-Message`` (TS 29.078 CAP v4 operation packages,
  the BER superset of phases 2 and 3, except SpecializedResourceReportArg: a NULL in phase 2
  and 3 dialogues, see :func:`_cap_phase_2_3_srr`);
* INAP: pycrate has none, so ``pycrate_asn1dir.TCAP_RAW`` ``TCAP-Message`` checks the
  transaction, dialogue and component structure, and each argument, result and error
  parameter is decoded by its type in our compiled ETS 300 374-1 module
  (``scp/codecs/asn/_inap_gen.py``) by operation and error code;
* anything else (no application context, no known dialogue, no known SSN): the TCAP structure
  with ``TCAP_RAW`` only, counted apart as ``tcap``.

The application comes from the AC of the dialogue portion, else from the dialogue the
transaction ID belongs to earlier in the capture, else from the SSNs (CAP 146; INAP 106, 241;
MAP 5-10, 145, 147-150, as ``tests/tshark.py`` tells Wireshark).

A message passes when: pycrate decodes it (constraints included) without error; no open type
fell back to raw octets (``_unk_``: an argument, result or error parameter that is not a value
of the type the operation table names) and no unknown extension was skipped (``_ext_``);
re-encoding the decoded value gives the same octets; and a ReturnResult without ``result``
answers an invoke (seen earlier in the capture) whose operation returns no value or an optional
one (X.880 ReturnResult: ``result`` is there when the operation returns a value; TS 29.002
marks ReadyForSM and ReportSM-DeliveryStatus results "-- optional").

The re-encoding is not a formality: pycrate 0.8's SEQUENCE decoder drops a last component it
cannot place without a word (a phase 2 SpecializedResourceReport NULL decoded as phase 4 comes
out as an Invoke with no argument), and accepts long-form lengths and tags where BER wants the
short form (``9f 1c`` for tag 28, X.690 §8.1.2.2); only comparing octets catches those.

What it cannot judge: OCTET STRING containers whose contents TS 29.078 types only through a
parameterised CONTAINING (CAMEL-AChBillingChargingCharacteristics, CAMEL-CallResult,
CAMEL-FCIBillingChargingCharacteristics) stay octets in pycrate's CAP definitions, so their
insides are checked by the codec golden tests, not here.

Nothing is skipped silently: every SCCP message is either checked or counted under the reason
it was not (SCMG, a UDTS returning someone's message, user data that is not TCAP, a frame sent
by the other side when ``only_from`` restricts the check). ``TOTALS`` adds up what was checked
over the test session; ``tests/conftest.py`` prints it at the end of the run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from scp.codecs import sccp
from scp.codecs.errors import DecodeError
from scp.primitives import PointCodeFormat
from scp.tools.pcapread import CapturedMessage, read_capture

__all__ = [
    "StrictError",
    "Checked",
    "Report",
    "TOTALS",
    "assert_strict",
    "cap_phase",
    "check_tcap",
    "check_pcap",
    "protocol_of_ac",
]

TOTALS: Counter[str] = Counter()
"""TCAP messages that passed in this process, per protocol (``map``, ``cap``, ``inap``,
``tcap``); frames refused on purpose by the oracle's own tests are not counted."""

# The SSNs tests/tshark.py gives Wireshark for each dissector (ARCHITECTURE §3 and the peers').
_SSN_PROTOCOL: dict[int, str] = {146: "cap", 106: "inap", 241: "inap"}
_SSN_PROTOCOL.update({s: "map" for s in (5, 6, 7, 8, 9, 10, 145, 147, 148, 149, 150)})

_TCAP_TAGS = frozenset((0x61, 0x62, 0x64, 0x65, 0x67))  # Q.773 §3.1 message types
_SCMG_SSN = 1

# TS 29.002 §17: operations whose RESULT is marked "-- optional" (a result without value is
# allowed); pycrate drops that comment, so it is restated here for the ones the tests meet.
_MAP_RESULT_OPTIONAL = frozenset((47, 66))  # reportSM-DeliveryStatus, readyForSM


class StrictError(AssertionError):
    """A TCAP message the strict decoder refuses; the text says where and why."""


def protocol_of_ac(ac: tuple[int, ...]) -> str | None:
    """``map``, ``cap`` or ``inap`` for an application-context name, None if none of them.

    CAP: {0 4 0 0 1 0 50..52 1} (phase 2) and {0 4 0 0 1 20..23 3 n} (phases 3 and 4,
    TS 29.078 §5.3); INAP CS-1: {0 4 0 1 1 1 n 0} (ETS 300 374-1 §6.5); MAP: {0 4 0 0 1 0 ac v}
    for the ``ac`` numbers pycrate's MAP application-context modules define (TS 29.002
    §17.3.3), versions 1 to 4. Anything else (a made-up context a test proposes to be
    refused) names no protocol, and the caller falls back on the dialogue or the SSN.
    """
    if len(ac) != 8:
        return None
    if ac[:6] == (0, 4, 0, 1, 1, 1):
        return "inap"
    if ac[:5] != (0, 4, 0, 0, 1):
        return None
    if (ac[5] in (20, 21, 22, 23) and ac[6] == 3) or (ac[5] == 0 and ac[6] in (50, 51, 52)):
        return "cap"
    if ac[5] == 0 and ac[6] in _map_ac_numbers() and 1 <= ac[7] <= 4:
        return "map"
    return None


@cache
def _map_ac_numbers() -> frozenset[int]:
    from pycrate_asn1dir import TCAP_MAPv2v3 as m

    out = set()
    for mod in (m.MAP_ApplicationContexts, m.MAPv2_ApplicationContexts):
        for name in mod._obj_:
            obj = getattr(mod, name.replace("-", "_"), None)
            val = getattr(obj, "_val", None)
            if (
                getattr(obj, "TYPE", None) == "OBJECT IDENTIFIER"
                and isinstance(val, tuple)
                and len(val) == 8
            ):
                out.add(val[6])
    return frozenset(out)


# ---------------------------------------------------------------------------------------------
# The pycrate definitions (loaded once; the objects are shared and mutable: one thread only)
# ---------------------------------------------------------------------------------------------


@cache
def _message_type(protocol: str) -> Any:
    if protocol == "map":
        from pycrate_asn1dir import TCAP_MAPv2v3

        return TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message
    if protocol == "cap":
        from pycrate_asn1dir import TCAP_CAP

        message = TCAP_CAP.TCAP_CAP_Messages.TCAP_CAP_Message
        _add_call_gap(TCAP_CAP, message)
        return message
    from pycrate_asn1dir import TCAP_RAW

    return TCAP_RAW.TCAP_Messages.TCAP_Message


def _add_call_gap(module: Any, message_type: Any) -> None:
    """Put CallGap (opcode 41, CallGapArg) in the invoke table of ``TCAP-CAP-Message``.

    TS 29.078 (CAP v3 and v4) has the gsmSCF send CallGap to the gsmSSF in the generic
    contract (pycrate has it in ``SsfToScfGenericReturnable``), but pycrate's
    ``AllCAPInvokable``, from which the message's open types are looked up, leaves it out: the
    oracle would refuse every CallGap as "not a value of its type". The operation object is
    pycrate's own, so its argument type (CallGapArg) is pycrate's.
    """
    argument = (
        message_type._cont["end"]
        ._cont["components"]
        ._cont._cont["basicROS"]
        ._cont["invoke"]
        ._cont["argument"]
    )
    tab = argument._const_tab  # one table, shared by the four message types
    code = ("local", 41)
    if code in tab._lut:
        return
    generic = module.CAP_gsmSSF_gsmSCF_pkgs_contracts_acs.SsfToScfGenericReturnable._val.root
    (call_gap,) = (o for o in generic if o.get("operationCode") == code)
    tab._val.root.append(call_gap)
    tab._lut[code] = ("U", call_gap)  # the decoder's index by operation code (unique)


def cap_phase(ac: tuple[int, ...] | None) -> int | None:
    """CAP phase of an application context: 2 ({0 4 0 0 1 0 ...}), 3 (20, 21) or 4 (22, 23);
    None when the dialogue's context is not known."""
    if ac is None or len(ac) < 6:
        return None
    return 2 if ac[5] == 0 else 3 if ac[5] in (20, 21) else 4


@contextmanager
def _cap_phase_2_3_srr(message_type: Any) -> Iterator[None]:
    """Decode SpecializedResourceReport (opcode 49) with its phase 2 and 3 argument type.

    ``TCAP_CAP`` is CAP v4, where SpecializedResourceReportArg is a CHOICE of two tagged
    NULLs; in phases 2 and 3 it is a plain NULL (TS 29.078 v7 §6.2.2 / GSM 09.78 phase 2).
    It is the only CAP argument whose BER differs between the phases outside an OCTET
    STRING container, so for phase 2 and 3 dialogues the operation table entries of opcode 49
    (the operation and its links from PlayAnnouncement / PromptAndCollectUserInformation)
    point at a NULL for the duration of one decode and re-encode.
    """
    from pycrate_asn1rt.asnobj_basic import NULL

    arguments = [
        message_type._cont[kind]
        ._cont["components"]
        ._cont._cont["basicROS"]
        ._cont["invoke"]
        ._cont["argument"]
        for kind in ("unidirectional", "begin", "continue", "end")
    ]
    table = arguments[0]._const_tab._val  # one table, shared by the four message types
    entries = []
    for obj in table.root:
        linked = obj.get("Linked")
        for o in [obj, *(linked.root if linked is not None else ())]:
            if o.get("operationCode") == ("local", 49) and "ArgumentType" in o:
                entries.append((o, o["ArgumentType"]))
    null = NULL(name="SpecializedResourceReportArg", mode="TYPE")
    null._tagc = [(0, NULL.TAG)]  # (class UNIVERSAL, 5), as pycrate's compiled types hold it

    def forget_encoders() -> None:
        # An OPEN object caches its name -> type map at its first encoding (pycrate 0.8):
        # drop it whenever the table changes, or a swapped type would outlive the swap.
        for arg in arguments:
            arg.__dict__.pop("__const_tr__", None)

    for o, _ in entries:
        o["ArgumentType"] = null
    forget_encoders()
    try:
        yield
    finally:
        for o, original in entries:
            o["ArgumentType"] = original
        forget_encoders()


def _result_types(modules: list[Any]) -> dict[int, bool]:
    """opcode -> whether the OPERATION object defines a ResultType, over ``modules``."""
    out: dict[int, bool] = {}
    for mod in modules:
        for name in getattr(mod, "_obj_", ()):
            obj = getattr(mod, name.replace("-", "_"), None)
            val = getattr(obj, "_val", None)
            if getattr(obj, "TYPE", None) != "CLASS" or not isinstance(val, dict):
                continue
            code = val.get("operationCode")
            if isinstance(code, tuple) and code[0] == "local":
                out.setdefault(code[1], "ResultType" in val)
    return out


@cache
def _returns_value(protocol: str, version: int) -> dict[int, bool]:
    """opcode -> the operation returns a value that a ReturnResult must carry."""
    if protocol == "map":
        from pycrate_asn1dir import TCAP_MAPv2v3 as m

        prefix = "MAP_" if version >= 3 else "MAPv2_"
        mods = [getattr(m, n) for n in dir(m) if n.startswith(prefix) and n.endswith("Operations")]
        table = _result_types(mods)
        return {op: has and op not in _MAP_RESULT_OPTIONAL for op, has in table.items()}
    if protocol == "cap":
        from pycrate_asn1dir import TCAP_CAP as c

        return _result_types([getattr(c, n) for n in dir(c) if n.endswith("_ops_args")])
    if protocol == "inap":
        from scp.codecs.asn import inap_result_type
        from scp.codecs.opcodes import InapOpcode

        return {op: inap_result_type(op) is not None for op in map(int, InapOpcode)}
    return {}


# ---------------------------------------------------------------------------------------------
# One TCAP message
# ---------------------------------------------------------------------------------------------


class _PycrateWarnings(logging.Handler):
    """Collects what pycrate logs while decoding (why an open type fell back to octets)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


# Where a TCAP-only definition (TCAP_RAW) leaves operation parameters as octets by design.
_PARAMETER_FIELDS = frozenset(("argument", "result", "parameter"))


def _decode_exact(asn: Any, data: bytes, what: str, *, open_parameters: bool = False) -> Any:
    """Decode ``data`` as ``asn`` and re-encode it: same octets, or :class:`StrictError`.

    ``open_parameters``: the definitions carry no operation table (``TCAP_RAW``), so component
    parameters stay octets; every other undecoded part still fails.
    """
    from pycrate_asn1rt.codecs import ASN1CodecBER

    log = logging.getLogger("pycrate.asn1rt")
    catcher = _PycrateWarnings()
    log.addHandler(catcher)
    propagate, log.propagate = log.propagate, False
    canon, ASN1CodecBER.ENC_DEF_CANON = ASN1CodecBER.ENC_DEF_CANON, False
    try:
        try:
            asn.from_ber(data)
            value = asn.get_val()
        except Exception as exc:  # pycrate raises many types: all of them are refusals
            raise StrictError(f"{what}: {exc}") from None
        unknown = [
            (path, tag)
            for path, tag in _unknown_parts(value, ())
            if not (
                open_parameters
                and tag.startswith("_unk_")
                and path
                and path[-1] in _PARAMETER_FIELDS
            )
        ]
        if unknown:
            path, tag = unknown[0]
            hint = f" ({'; '.join(catcher.lines)})" if catcher.lines else ""
            raise StrictError(
                f"{what}: {'/'.join(map(str, path))} is not a value of its type "
                f"(pycrate kept it as {tag}){hint}"
            )
        try:
            again = asn.to_ber()
        except Exception as exc:
            raise StrictError(f"{what}: decoded value does not re-encode: {exc}") from None
    finally:
        ASN1CodecBER.ENC_DEF_CANON = canon
        log.removeHandler(catcher)
        log.propagate = propagate
    if again != data:
        raise StrictError(
            f"{what}: re-encodes to different octets\n  sent     {data.hex()}\n"
            f"  re-coded {again.hex()}"
        )
    return value


def _unknown_parts(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Paths where pycrate kept undecoded octets (``_unk_``) or skipped an extension (``_ext_``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and k[:5] in ("_unk_", "_ext_"):
                yield (*path, k), k
            else:
                yield from _unknown_parts(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _unknown_parts(v, (*path, i))
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        if value[0][:5] in ("_unk_", "_ext_"):
            yield path, value[0]
        else:
            yield from _unknown_parts(value[1], (*path, value[0]))


def _components(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """(kind, fields) of each basicROS component in a decoded TCAP message value."""
    body = value[1]
    out = []
    for comp in body.get("components", []) if isinstance(body, dict) else []:
        if comp[0] == "basicROS":
            out.append(comp[1])
    return out


def _unk_tlv(name: str, content: bytes) -> bytes:
    """Rebuild the TLV of an open-type value pycrate kept as ``_unk_<class><pc><tag>``."""
    cls, pc, num = int(name[5]), int(name[6]), int(name[7:])
    if num >= 31:
        raise StrictError(f"open type with high tag number {num}: not expected in INAP")
    n = len(content)
    length = (
        bytes((n,))
        if n < 0x80
        else bytes((0x80 | ((n.bit_length() + 7) // 8),))
        + (n.to_bytes((n.bit_length() + 7) // 8, "big"))
    )
    return bytes(((cls << 6) | (pc << 5) | num,)) + length + content


def _check_inap_parameters(value: Any) -> None:
    """Each argument, result and error parameter against its ETS 300 374-1 type."""
    from scp.codecs.asn import inap_arg_type, inap_error_type, inap_result_type

    for kind, f in _components(value):
        if kind == "invoke":
            code, typ, part = f["opcode"], inap_arg_type, f.get("argument")
        elif kind == "returnResult" and "result" in f:
            code, typ, part = f["result"]["opcode"], inap_result_type, f["result"]["result"]
        elif kind == "returnError":
            code, typ, part = f["errcode"], inap_error_type, f.get("parameter")
        else:
            continue
        if code[0] != "local":
            raise StrictError(f"INAP {kind}: global code {code[1]} is not in ETS 300 374-1")
        asn = typ(code[1])
        what = f"INAP {kind} {code[1]}"
        if asn is None:
            if part is not None:
                raise StrictError(f"{what}: carries a parameter its definition does not have")
            continue
        if part is None:
            raise StrictError(f"{what}: parameter missing")
        _decode_exact(asn, _unk_tlv(part[0], part[1]), what)


def check_tcap(data: bytes, protocol: str, ac: tuple[int, ...] | None = None) -> Any:
    """Decode one TCAP message strictly as ``protocol``; return pycrate's value.

    ``protocol`` is ``map``, ``cap``, ``inap`` or ``tcap`` (structure only); ``ac`` is the
    dialogue's application context when known (it picks the CAP phase). Raises
    :class:`StrictError` when the message is refused.
    """
    asn = _message_type(protocol)
    what = f"TCAP-{protocol.upper()}"
    if protocol == "cap":
        phase = cap_phase(ac)
        if phase is not None and phase < 4:
            with _cap_phase_2_3_srr(asn):
                return _decode_exact(asn, data, what)
        try:
            return _decode_exact(asn, data, what)
        except StrictError:
            if phase is not None:
                raise
        # A message of a dialogue whose context is not in the capture: either phase's form.
        with _cap_phase_2_3_srr(asn):
            try:
                return _decode_exact(asn, data, what)
            except StrictError:
                pass
        return _decode_exact(asn, data, what)  # raises again, with the phase 4 reason
    value = _decode_exact(asn, data, what, open_parameters=protocol in ("inap", "tcap"))
    if protocol == "inap":
        _check_inap_parameters(value)
    return value


# ---------------------------------------------------------------------------------------------
# A capture
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checked:
    """One TCAP message the oracle decoded: where it was and what it found."""

    frame: int
    src: str
    protocol: str
    problem: str | None


@dataclass
class Report:
    """What :func:`check_pcap` did with every SCCP message of a capture."""

    checked: list[Checked] = field(default_factory=list)
    not_checked: Counter[str] = field(default_factory=Counter)
    tcap_frames: set[int] = field(default_factory=set)  # frames whose TCAP was decoded
    # frames left out on purpose: the other side's (only_from), data returned in a UDTS,
    # segments before the last (the message is checked in the frame that completes it)
    excluded_frames: set[int] = field(default_factory=set)

    @property
    def failures(self) -> list[Checked]:
        return [c for c in self.checked if c.problem is not None]

    def counts(self) -> Counter[str]:
        return Counter(c.protocol for c in self.checked)


@dataclass
class _Dialogues:
    """What earlier messages of the capture say about transaction IDs and invokes."""

    by_tid: dict[bytes, tuple[str, tuple[int, ...] | None]] = field(default_factory=dict)
    invokes: dict[tuple[bytes, int], tuple[str, int, int]] = field(default_factory=dict)


def _ac_of(data: bytes) -> tuple[int, ...] | None:
    """The application-context name in a TCAP message's dialogue portion, if one is there."""
    from scp.codecs import tcap

    try:
        msg = tcap.decode(data)
    except DecodeError:
        return None
    ac = getattr(msg.dialogue, "application_context", None)
    return tuple(ac) if ac is not None else None


def _tids(data: bytes) -> tuple[bytes | None, bytes | None]:
    from scp.codecs import tcap

    _, otid, dtid = tcap.decode_tids(data)
    return otid, dtid


def _map_version(ac: tuple[int, ...] | None) -> int:
    return ac[-1] if ac and protocol_of_ac(ac) == "map" else 3


def _check_results(
    value: Any,
    protocol: str,
    ac: tuple[int, ...] | None,
    otid: bytes | None,
    dtid: bytes | None,
    dlg: _Dialogues,
) -> None:
    """Remember this message's invokes; check its value-less results against theirs."""
    for kind, f in _components(value):
        iid = f.get("invokeId", ("absent", None))[1]
        if kind == "invoke" and otid is not None and f["opcode"][0] == "local":
            dlg.invokes[(otid, iid)] = (protocol, _map_version(ac), f["opcode"][1])
        elif kind == "returnResult" and "result" not in f and dtid is not None:
            seen = dlg.invokes.get((dtid, iid))
            if seen is None or seen[0] != protocol:
                continue
            proto, version, op = seen
            if _returns_value(proto, version).get(op, False):
                raise StrictError(
                    f"returnResult for invoke {iid} ({protocol} operation {op}) leaves out "
                    "the result value its operation defines as mandatory"
                )


def _sccp_messages(
    path: Path, pcf: PointCodeFormat
) -> Iterator[tuple[CapturedMessage | None, sccp.SccpMessage | None, str | None]]:
    """(message, decoded SCCP, reason it carries no SCCP) for every M3UA/MTP3 message."""
    for item in read_capture(path, pcf):
        if type(item) is not CapturedMessage:
            # Not SIGTRAN (an SMPP capture) or unreadable: nothing for this oracle, and the
            # caller's cross-check with tshark's TCAP frames catches a TCAP frame lost here.
            yield None, None, f"no M3UA/MTP3 message read: {item.reason}"
            continue
        if item.mtp3 is None:
            yield item, None, "M3UA management"
            continue
        if item.mtp3.si != 3:
            yield item, None, f"MTP3 service indicator {item.mtp3.si}"
            continue
        try:
            yield item, sccp.decode(item.mtp3.data, pcf), None
        except DecodeError as e:
            yield item, None, f"SCCP not decodable ({e})"


def check_pcap(
    path: str | Path, *, pcf: PointCodeFormat = PointCodeFormat.ITU, only_from: str | None = None
) -> Report:
    """Strictly decode every TCAP message in a capture; see the module docstring.

    ``only_from`` (``"ip:port"`` as the capture writer wrote the sending end) restricts the
    check to the frames that end sent: for captures holding deliberately malformed peer input.
    The others are counted as not checked.
    """
    path = Path(path)
    report = Report()
    dlg = _Dialogues()
    segments: dict[tuple[Any, int], list[bytes]] = {}
    for item, msg, why in _sccp_messages(path, pcf):
        if item is None or msg is None:
            report.not_checked[why or "?"] += 1
            continue
        if isinstance(msg, sccp.Udts | sccp.Xudts | sccp.Ludts):
            report.not_checked["SCCP service message (returned data)"] += 1
            report.excluded_frames.add(item.frame)
            continue
        if msg.called.ssn == _SCMG_SSN:
            report.not_checked["SCMG"] += 1
            continue
        data = msg.data
        seg = getattr(msg, "segmentation", None)
        if seg is not None:
            key = (msg.calling, seg.local_reference)
            parts = segments.setdefault(key, []) if not seg.first else []
            parts.append(data)
            segments[key] = parts
            if seg.remaining:
                report.not_checked["SCCP segment (checked once reassembled)"] += 1
                report.excluded_frames.add(item.frame)
                continue
            data = b"".join(segments.pop(key))
        if not data or data[0] not in _TCAP_TAGS:
            report.not_checked["SCCP user data that is not TCAP"] += 1
            continue
        if only_from is not None and item.src != only_from:
            report.not_checked[f"sent by {item.src}, not {only_from}"] += 1
            report.excluded_frames.add(item.frame)
            continue
        report.tcap_frames.add(item.frame)
        ac = _ac_of(data)
        otid, dtid = _tids(data)
        known = dlg.by_tid.get(dtid) if dtid is not None else None
        protocol = (
            (protocol_of_ac(ac) if ac else None)
            or (known[0] if known else None)
            or _SSN_PROTOCOL.get(msg.called.ssn)
            or _SSN_PROTOCOL.get(msg.calling.ssn)
            or "tcap"
        )
        if ac is None and known is not None:
            ac = known[1]
        for tid in (otid, dtid):
            if tid is not None:
                dlg.by_tid[tid] = (protocol, ac)
        problem = None
        try:
            value = check_tcap(data, protocol, ac)
            _check_results(value, protocol, ac, otid, dtid, dlg)
        except StrictError as e:
            problem = str(e)
        report.checked.append(Checked(item.frame, item.src, protocol, problem))
        if problem is None:
            TOTALS[protocol] += 1
    return report


def assert_strict(
    path: str | Path, *, pcf: PointCodeFormat = PointCodeFormat.ITU, only_from: str | None = None
) -> Report:
    """:func:`check_pcap`, failing with every refused frame named."""
    report = check_pcap(path, pcf=pcf, only_from=only_from)
    bad = report.failures
    if bad:
        lines = [f"frame {c.frame} from {c.src} ({c.protocol}): {c.problem}" for c in bad]
        raise StrictError(
            f"strict ASN.1 decode refuses {len(bad)} frame(s) of {path}:\n" + "\n".join(lines)
        )
    return report
