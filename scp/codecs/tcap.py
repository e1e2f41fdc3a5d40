"""TCAP message codec: ITU-T Q.773 (1997) transaction, dialogue and component portions.

Hand-written BER over :mod:`scp.codecs.ber` because every call decodes and answers several TCAP
messages: pycrate is kept for the CAP/INAP/MAP operation arguments that ride inside.

What it covers (Q.773 clause numbers):

* §3.1 transaction portion: Unidirectional [APPLICATION 1], Begin [2], End [4], Continue [5],
  Abort [7] with a P-Abort cause [APPLICATION 10] or a dialogue portion; transaction IDs of 1 to
  4 octets [APPLICATION 8] / [APPLICATION 9].
* §4.2 dialogue portion [APPLICATION 11]: an EXTERNAL whose direct-reference is
  dialogue-as-id {0 0 17 773 1 1 1} (AARQ, AARE, ABRT) or {0 0 17 773 1 2 1} (AUDT), with
  the PDU in single-ASN1-type [0] (octet-aligned [1] is accepted too). ``user-information``
  ([30] SEQUENCE OF EXTERNAL, e.g. MAP-OPEN) is kept as the raw EXTERNAL TLV bytes inside it.
* §3.2 component portion: Invoke [1], ReturnResultLast [2], ReturnError [3], Reject [4],
  ReturnResultNotLast [7]. The ``parameter`` of a component is the complete TLV exactly as
  received, and is emitted verbatim: the CAP/INAP/MAP codecs decode and encode it.

Errors: a message whose transaction or dialogue portion cannot be read raises
:class:`TcapDecodeError` naming the ``portion`` and carrying whatever transaction IDs were
readable, so the transaction sub-layer can pick the P-Abort cause (Q.774 §3.2.1.1.5). A single
bad component does not fail the message: it becomes a :class:`ComponentProblem` (the General
problem of Q.773 §3.2.2.1) next to the components that did decode, for the component
sub-layer to Reject (Q.774 §3.2.2.2).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from scp.codecs.ber import (
    BerError,
    decode_integer,
    decode_oid,
    encode_integer,
    encode_oid,
    read_tlv,
    tlv,
)
from scp.codecs.errors import DecodeError, EncodeError
from scp.primitives import (
    ApplicationContext,
    Component,
    Invoke,
    Opcode,
    PAbortCause,
    ProblemType,
    Reject,
    ReturnError,
    ReturnResult,
)

__all__ = [
    "MessageType",
    "Aarq",
    "Aare",
    "Abrt",
    "Audt",
    "DialoguePdu",
    "ComponentProblem",
    "TcapMessage",
    "TcapDecodeError",
    "GeneralProblem",
    "InvokeProblem",
    "ReturnResultProblem",
    "ReturnErrorProblem",
    "AbortSource",
    "ServiceProviderDiagnostic",
    "decode",
    "decode_tids",
    "encode",
    "encode_components",
    "encode_dialogue_portion",
    "encode_message",
    "p_abort_cause_for",
    "PROTOCOL_VERSION_1",
]

LAYER = "tcap"


class MessageType(enum.IntEnum):
    """Message type tags (Q.773 §3.1, identifier octets of the constructed APPLICATION tags)."""

    UNIDIRECTIONAL = 0x61
    BEGIN = 0x62
    END = 0x64
    CONTINUE = 0x65
    ABORT = 0x67


_MESSAGE_TYPES = frozenset(int(t) for t in MessageType)

# Transaction portion tags (Q.773 §3.1).
TAG_OTID = 0x48  # [APPLICATION 8] OrigTransactionID
TAG_DTID = 0x49  # [APPLICATION 9] DestTransactionID
TAG_P_ABORT = 0x4A  # [APPLICATION 10] P-AbortCause
TAG_DIALOGUE = 0x6B  # [APPLICATION 11] DialoguePortion
TAG_COMPONENTS = 0x6C  # [APPLICATION 12] ComponentPortion
TAG_EXTERNAL = 0x28  # [UNIVERSAL 8] EXTERNAL

# Component tags (Q.773 §3.2).
TAG_INVOKE = 0xA1
TAG_RRL = 0xA2
TAG_RE = 0xA3
TAG_REJECT = 0xA4
TAG_RRNL = 0xA7

# Dialogue PDU tags (Q.773 §4.2.1): AARQ/AUDT share [APPLICATION 0], told apart by the EXTERNAL's OID.
TAG_AARQ = 0x60
TAG_AARE = 0x61
TAG_ABRT = 0x64
TAG_USER_INFO = 0xBE  # [30] IMPLICIT SEQUENCE OF EXTERNAL

# dialogue-as-id {itu-t(0) recommendation(0) q(17) 773 as(1) dialogue-as(1) version1(1)}
DIALOGUE_AS_ID = bytes.fromhex("001186050101 01".replace(" ", ""))
# uniDialogue-as-id {... 773 as(1) unidialogue-as(2) version1(1)}
UNIDIALOGUE_AS_ID = bytes.fromhex("00118605010201")

PROTOCOL_VERSION_1 = b"\x07\x80"
"""BIT STRING contents of protocol-version {version1}: 7 unused bits, bit 0 set (Q.773 §4.2.1)."""


class GeneralProblem(enum.IntEnum):
    """GeneralProblem (Q.773 §3.2.2.1): the component itself could not be read."""

    UNRECOGNIZED_COMPONENT = 0
    MISTYPED_COMPONENT = 1
    BADLY_STRUCTURED_COMPONENT = 2


class InvokeProblem(enum.IntEnum):
    """InvokeProblem (Q.773 §3.2.2.1)."""

    DUPLICATE_INVOKE_ID = 0
    UNRECOGNIZED_OPERATION = 1
    MISTYPED_PARAMETER = 2
    RESOURCE_LIMITATION = 3
    INITIATING_RELEASE = 4
    UNRECOGNIZED_LINKED_ID = 5
    LINKED_RESPONSE_UNEXPECTED = 6
    UNEXPECTED_LINKED_OPERATION = 7


class ReturnResultProblem(enum.IntEnum):
    """ReturnResultProblem (Q.773 §3.2.2.1)."""

    UNRECOGNIZED_INVOKE_ID = 0
    RETURN_RESULT_UNEXPECTED = 1
    MISTYPED_PARAMETER = 2


class ReturnErrorProblem(enum.IntEnum):
    """ReturnErrorProblem (Q.773 §3.2.2.1)."""

    UNRECOGNIZED_INVOKE_ID = 0
    RETURN_ERROR_UNEXPECTED = 1
    UNRECOGNIZED_ERROR = 2
    UNEXPECTED_ERROR = 3
    MISTYPED_PARAMETER = 4


class AbortSource(enum.IntEnum):
    """ABRT-source (Q.773 §4.2.1)."""

    DIALOGUE_SERVICE_USER = 0
    DIALOGUE_SERVICE_PROVIDER = 1


class ServiceProviderDiagnostic(enum.IntEnum):
    """Associate-source-diagnostic, dialogue-service-provider (Q.773 §4.2.1)."""

    NULL = 0
    NO_REASON_GIVEN = 1
    NO_COMMON_DIALOGUE_PORTION = 2


# Associate-source-diagnostic CHOICE alternatives (Q.773 §4.2.1).
DIAG_SOURCE_USER = 1  # dialogue-service-user [1]
DIAG_SOURCE_PROVIDER = 2  # dialogue-service-provider [2]


@dataclass(frozen=True, slots=True)
class Aarq:
    """AARQ-apdu: the dialogue request carried by the first Begin (Q.773 §4.2.1)."""

    application_context: ApplicationContext
    user_information: bytes | None = None
    protocol_version: bytes | None = PROTOCOL_VERSION_1  # BIT STRING contents; None: absent


@dataclass(frozen=True, slots=True)
class Aare:
    """AARE-apdu: the answer to an AARQ, accepted or rejected with a diagnostic (Q.773 §4.2.1)."""

    application_context: ApplicationContext
    result: int = 0  # Associate-result: 0 accepted, 1 reject-permanent
    diagnostic_source: int = DIAG_SOURCE_USER  # 1 dialogue-service-user, 2 -provider
    # 0 null, 1 no-reason-given, 2 application-context-name-not-supported (user) or
    # no-common-dialogue-portion (provider)
    diagnostic: int = 0
    user_information: bytes | None = None
    protocol_version: bytes | None = PROTOCOL_VERSION_1


@dataclass(frozen=True, slots=True)
class Abrt:
    """ABRT-apdu: a dialogue aborted by the user or the dialogue service provider (Q.773 §4.2.1)."""

    abort_source: int = AbortSource.DIALOGUE_SERVICE_USER
    user_information: bytes | None = None


@dataclass(frozen=True, slots=True)
class Audt:
    """AUDT-apdu: the unidirectional dialogue PDU of a Unidirectional message (Q.773 §4.2.2)."""

    application_context: ApplicationContext
    user_information: bytes | None = None
    protocol_version: bytes | None = PROTOCOL_VERSION_1


DialoguePdu = Aarq | Aare | Abrt | Audt


@dataclass(frozen=True, slots=True)
class ComponentProblem:
    """A received component that could not be decoded, and the Reject problem it earns."""

    invoke_id: int | None
    problem_type: ProblemType
    problem_code: int
    offset: int
    reason: str
    is_reject: bool = False  # a bad Reject is reported locally, never rejected back


@dataclass(frozen=True, slots=True)
class TcapMessage:
    """One TCAP message (Q.773 §3.1); ``components`` is None when there is no component portion."""

    message_type: MessageType
    otid: bytes | None = None
    dtid: bytes | None = None
    dialogue: DialoguePdu | None = None
    components: tuple[Component, ...] | None = None
    p_abort_cause: int | None = None
    bad_components: tuple[ComponentProblem, ...] = ()


class TcapDecodeError(DecodeError):
    """A TCAP message whose ``portion`` could not be decoded.

    ``portion`` is ``"message_type"`` (unrecognized message type), ``"transaction"`` (badly
    formatted transaction portion) or ``"dialogue"`` (bad dialogue portion); ``otid``/``dtid``
    hold the transaction IDs when they could still be read, so the peer can be answered.
    """

    def __init__(
        self,
        offset: int,
        reason: str,
        *,
        portion: str,
        message_type: int | None = None,
        otid: bytes | None = None,
        dtid: bytes | None = None,
    ) -> None:
        super().__init__(LAYER, offset, reason)
        self.portion = portion
        self.message_type = message_type
        self.otid = otid
        self.dtid = dtid


def p_abort_cause_for(err: TcapDecodeError) -> PAbortCause:
    """The P-Abort cause Q.774 §3.2.1.1.5 answers a transaction-level decoding error with."""
    if err.portion == "message_type":
        return PAbortCause.UNRECOGNIZED_MESSAGE_TYPE
    return PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def _tid(data: bytes, vs: int, ve: int) -> bytes | None:
    return data[vs:ve] if 1 <= ve - vs <= 4 else None


def decode_tids(data: bytes) -> tuple[int | None, bytes | None, bytes | None]:
    """Best-effort ``(message_type tag, otid, dtid)`` of a frame that may not decode.

    Used to answer a broken message (Q.774: a P-Abort needs the sender's otid) and to match a
    message SCCP returned to its dialogue. Never raises.
    """
    if not data:
        return None, None, None
    mtype = data[0]
    otid = dtid = None
    try:
        _, vs, _, _ = read_tlv(data, 0, len(data))
    except DecodeError:
        # The outer length may be what is broken: read the children up to the end of the buffer.
        try:
            vs = 2 if len(data) > 1 and data[1] < 0x80 else 2 + (data[1] & 0x7F)
        except IndexError:
            return mtype, None, None
    pos = vs
    end = len(data)
    for _ in range(2):
        try:
            tag, cs, ce, pos = read_tlv(data, pos, end)
        except DecodeError:
            break
        if tag == TAG_OTID and otid is None:
            otid = _tid(data, cs, ce)
        elif tag == TAG_DTID and dtid is None:
            dtid = _tid(data, cs, ce)
        else:
            break
    return mtype, otid, dtid


def decode(data: bytes) -> TcapMessage:
    """Decode one TCAP message; raise :class:`TcapDecodeError` if its structure is broken."""
    end = len(data)
    if end == 0:
        raise TcapDecodeError(0, "empty message", portion="transaction")
    mtype = data[0]
    if mtype not in _MESSAGE_TYPES:
        _, otid, dtid = decode_tids(data)
        raise TcapDecodeError(
            0,
            f"unrecognized message type tag 0x{mtype:02x}",
            portion="message_type",
            message_type=mtype,
            otid=otid,
            dtid=dtid,
        )
    try:
        _, pos, mend, _ = read_tlv(data, 0, end)
    except BerError as e:
        _, otid, dtid = decode_tids(data)
        raise TcapDecodeError(
            e.offset, e.reason, portion="transaction", message_type=mtype, otid=otid, dtid=dtid
        ) from None

    otid = dtid = None
    dialogue: DialoguePdu | None = None
    components: tuple[Component, ...] | None = None
    bad: tuple[ComponentProblem, ...] = ()
    p_abort: int | None = None

    def fail(offset: int, reason: str, portion: str = "transaction") -> TcapDecodeError:
        return TcapDecodeError(
            offset, reason, portion=portion, message_type=mtype, otid=otid, dtid=dtid
        )

    try:
        # Transaction IDs first, in the order Q.773 §3.1 fixes for each message type.
        if mtype == 0x62 or mtype == 0x65:  # Begin, Continue: otid
            tag, vs, ve, nxt = read_tlv(data, pos, mend)
            if tag != TAG_OTID:
                raise fail(pos, f"expected OrigTransactionID, got tag 0x{tag:x}")
            otid = _tid(data, vs, ve)
            if otid is None:
                raise fail(pos, f"OrigTransactionID of {ve - vs} octets (1 to 4 allowed)")
            pos = nxt
        if mtype != 0x62 and mtype != 0x61:  # End, Continue, Abort: dtid
            tag, vs, ve, nxt = read_tlv(data, pos, mend)
            if tag != TAG_DTID:
                raise fail(pos, f"expected DestTransactionID, got tag 0x{tag:x}")
            dtid = _tid(data, vs, ve)
            if dtid is None:
                raise fail(pos, f"DestTransactionID of {ve - vs} octets (1 to 4 allowed)")
            pos = nxt
        if pos < mend and data[pos] == TAG_P_ABORT and mtype == 0x67:
            _, vs, ve, pos = read_tlv(data, pos, mend)
            if ve - vs != 1:
                raise fail(vs, "P-AbortCause must be one octet")
            p_abort = data[vs]
        elif pos < mend and data[pos] == TAG_DIALOGUE:
            start = pos
            _, vs, ve, pos = read_tlv(data, pos, mend)
            # Dialogue portions repeat byte for byte (same AC, no user information): a small
            # cache of decoded, immutable PDUs skips a dozen TLVs on most messages.
            key = data[start:pos] if mtype != 0x61 else None
            dialogue = _DIALOGUE_CACHE.get(key) if key is not None else None
            if dialogue is None:
                try:
                    dialogue = _decode_dialogue_portion(data, vs, ve, mtype == 0x61)
                except BerError as e:
                    raise fail(e.offset, e.reason, "dialogue") from None
                if key is not None and len(key) <= _DIALOGUE_CACHE_MAX_KEY:
                    if len(_DIALOGUE_CACHE) >= _DIALOGUE_CACHE_SIZE:
                        _DIALOGUE_CACHE.clear()
                    _DIALOGUE_CACHE[key] = dialogue
        if pos < mend and data[pos] == TAG_COMPONENTS and mtype != 0x67:
            _, vs, ve, pos = read_tlv(data, pos, mend)
            components, bad = _decode_components(data, vs, ve)
        if pos < mend:
            raise fail(pos, f"unexpected tag 0x{data[pos]:02x} in the transaction portion")
    except BerError as e:
        raise fail(e.offset, e.reason) from None
    if mtype == 0x61 and components is None:
        raise fail(mend, "Unidirectional without a component portion")
    return TcapMessage(MessageType(mtype), otid, dtid, dialogue, components, p_abort, bad)


_DIALOGUE_CACHE: dict[bytes, DialoguePdu] = {}
_DIALOGUE_CACHE_SIZE = 512
_DIALOGUE_CACHE_MAX_KEY = 96  # AARQ/AARE/ABRT without bulky user information


def _decode_dialogue_portion(data: bytes, pos: int, end: int, uni: bool) -> DialoguePdu:
    tag, vs, ve, _ = read_tlv(data, pos, end)
    if tag != TAG_EXTERNAL:
        raise BerError(pos, "dialogue portion is not an EXTERNAL", LAYER)
    # EXTERNAL (X.690 §8.18): direct-reference OID, optional indirect-reference and
    # data-value-descriptor, then the encoding CHOICE.
    tag, os_, oe, p = read_tlv(data, vs, ve)
    if tag != 0x06:
        raise BerError(vs, "EXTERNAL without a direct-reference", LAYER)
    as_id = data[os_:oe]
    structured = as_id == DIALOGUE_AS_ID
    if not structured and as_id != UNIDIALOGUE_AS_ID:
        raise BerError(os_, f"unknown dialogue abstract syntax {as_id.hex()}", LAYER)
    if structured == uni:
        raise BerError(os_, "dialogue abstract syntax does not match the message type", LAYER)
    while True:
        tag, cs, ce, p = read_tlv(data, p, ve)
        if tag == 0x02 or tag == 0x07:  # indirect-reference, data-value-descriptor
            continue
        if tag != 0xA0 and tag != 0x81:  # single-ASN1-type [0], octet-aligned [1]
            raise BerError(cs, f"unsupported EXTERNAL encoding tag 0x{tag:x}", LAYER)
        break
    tag, ps, pe, _ = read_tlv(data, cs, ce)
    fields: dict[int, tuple[int, int, int]] = {}
    q = ps
    while q < pe:
        ftag, fs, fe, nq = read_tlv(data, q, pe)
        fields[ftag] = (fs, fe, q)
        q = nq
    user_info = None
    if TAG_USER_INFO in fields:
        fs, fe, _ = fields[TAG_USER_INFO]
        user_info = data[fs:fe]
    version = None
    if 0x80 in fields:
        fs, fe, _ = fields[0x80]
        version = data[fs:fe]
    if tag == TAG_ABRT and structured:
        if 0x80 not in fields:
            raise BerError(ps, "ABRT without abort-source", LAYER)
        fs, fe, _ = fields[0x80]
        return Abrt(decode_integer(data, fs, fe), user_info)
    if tag != TAG_AARQ and tag != TAG_AARE:
        raise BerError(cs, f"unknown dialogue PDU tag 0x{tag:x}", LAYER)
    if 0xA1 not in fields:
        raise BerError(ps, "dialogue PDU without application-context-name", LAYER)
    fs, fe, _ = fields[0xA1]
    otag, os_, oe, _ = read_tlv(data, fs, fe)
    if otag != 0x06:
        raise BerError(fs, "application-context-name is not an OBJECT IDENTIFIER", LAYER)
    ac = decode_oid(data, os_, oe)
    if tag == TAG_AARQ:
        if version is not None and len(version) < 1:
            raise BerError(ps, "empty protocol-version", LAYER)
        return Aarq(ac, user_info, version) if structured else Audt(ac, user_info, version)
    if not structured:
        raise BerError(cs, "AARE in a unidirectional dialogue", LAYER)
    if 0xA2 not in fields or 0xA3 not in fields:
        raise BerError(ps, "AARE without result or result-source-diagnostic", LAYER)
    fs, fe, _ = fields[0xA2]
    itag, is_, ie, _ = read_tlv(data, fs, fe)
    if itag != 0x02:
        raise BerError(fs, "AARE result is not an INTEGER", LAYER)
    result = decode_integer(data, is_, ie)
    fs, fe, _ = fields[0xA3]
    dtag, ds, de, _ = read_tlv(data, fs, fe)
    if dtag != 0xA1 and dtag != 0xA2:
        raise BerError(fs, "unknown result-source-diagnostic alternative", LAYER)
    itag, is_, ie, _ = read_tlv(data, ds, de)
    if itag != 0x02:
        raise BerError(ds, "result-source-diagnostic is not an INTEGER", LAYER)
    diag = decode_integer(data, is_, ie)
    return Aare(ac, result, dtag & 0x1F, diag, user_info, version)


def _decode_opcode(data: bytes, tag: int, vs: int, ve: int) -> Opcode:
    if tag == 0x02:
        return decode_integer(data, vs, ve)
    return decode_oid(data, vs, ve)


def _decode_components(
    data: bytes, pos: int, end: int
) -> tuple[tuple[Component, ...], tuple[ComponentProblem, ...]]:
    comps: list[Component] = []
    bad: list[ComponentProblem] = []
    while pos < end:
        try:
            ctag, vs, ve, pos = read_tlv(data, pos, end)
        except BerError as e:
            # The component cannot be delimited, so neither can anything after it.
            bad.append(
                ComponentProblem(
                    None,
                    ProblemType.GENERAL,
                    GeneralProblem.BADLY_STRUCTURED_COMPONENT,
                    e.offset,
                    e.reason,
                )
            )
            break
        try:
            comps.append(_decode_component(data, ctag, vs, ve))
        except _ComponentError as e:
            bad.append(
                ComponentProblem(
                    e.invoke_id,
                    ProblemType.GENERAL,
                    e.problem,
                    e.offset,
                    e.reason,
                    ctag == TAG_REJECT,
                )
            )
        except BerError as e:
            bad.append(
                ComponentProblem(
                    _peek_invoke_id(data, vs, ve),
                    ProblemType.GENERAL,
                    GeneralProblem.BADLY_STRUCTURED_COMPONENT,
                    e.offset,
                    e.reason,
                    ctag == TAG_REJECT,
                )
            )
    return tuple(comps), tuple(bad)


class _ComponentError(Exception):
    def __init__(self, invoke_id: int | None, problem: int, offset: int, reason: str) -> None:
        self.invoke_id = invoke_id
        self.problem = problem
        self.offset = offset
        self.reason = reason


def _peek_invoke_id(data: bytes, vs: int, ve: int) -> int | None:
    """The invoke ID of a broken component if its first element still reads as one."""
    try:
        tag, s, e, _ = read_tlv(data, vs, ve)
        if tag == 0x02 and e - s == 1:
            return decode_integer(data, s, e)
    except BerError:
        pass
    return None


def _decode_component(data: bytes, ctag: int, vs: int, ve: int) -> Component:
    if ctag not in (TAG_INVOKE, TAG_RRL, TAG_RE, TAG_REJECT, TAG_RRNL):
        raise _ComponentError(
            _peek_invoke_id(data, vs, ve),
            GeneralProblem.UNRECOGNIZED_COMPONENT,
            vs,
            f"unknown component tag 0x{ctag:x}",
        )
    tag, s, e, p = read_tlv(data, vs, ve)
    invoke_id: int | None
    if tag == 0x02:
        if e - s != 1:
            raise _ComponentError(
                None, GeneralProblem.MISTYPED_COMPONENT, s, "invokeID out of range -128..127"
            )
        invoke_id = decode_integer(data, s, e)
    elif tag == 0x05 and ctag == TAG_REJECT and e == s:
        invoke_id = None  # Reject of a component whose ID could not be read: NULL
    else:
        raise _ComponentError(None, GeneralProblem.MISTYPED_COMPONENT, s, "missing invokeID")

    def mistyped(offset: int, reason: str) -> _ComponentError:
        return _ComponentError(invoke_id, GeneralProblem.MISTYPED_COMPONENT, offset, reason)

    if ctag == TAG_INVOKE:
        assert invoke_id is not None
        if p >= ve:
            raise mistyped(p, "Invoke without an operation code")
        tag, s, e, p = read_tlv(data, p, ve)
        linked: int | None = None
        if tag == 0x80:  # linkedID [0] IMPLICIT INTEGER
            if e - s != 1:
                raise mistyped(s, "linkedID out of range")
            linked = decode_integer(data, s, e)
            if p >= ve:
                raise mistyped(p, "Invoke without an operation code")
            tag, s, e, p = read_tlv(data, p, ve)
        elif tag == 0x81 and e == s:  # linkedId absent [1] NULL (X.880 ROS form)
            if p >= ve:
                raise mistyped(p, "Invoke without an operation code")
            tag, s, e, p = read_tlv(data, p, ve)
        if tag != 0x02 and tag != 0x06:
            raise mistyped(s, f"operation code tag 0x{tag:x}")
        opcode = _decode_opcode(data, tag, s, e)
        param = None
        if p < ve:
            _, _, _, q = read_tlv(data, p, ve)
            param = data[p:q]
            if q != ve:
                raise mistyped(q, "more than one parameter")
        return Invoke(invoke_id, opcode, param, linked)
    if ctag == TAG_RRL or ctag == TAG_RRNL:
        assert invoke_id is not None
        rr_opcode: Opcode | None = None
        param = None
        if p < ve:
            tag, s, e, q = read_tlv(data, p, ve)
            if tag != 0x30 or q != ve:
                raise mistyped(p, "ReturnResult result is not one SEQUENCE")
            tag, os_, oe, r = read_tlv(data, s, e)
            if tag != 0x02 and tag != 0x06:
                raise mistyped(os_, f"operation code tag 0x{tag:x}")
            rr_opcode = _decode_opcode(data, tag, os_, oe)
            if r < e:
                _, _, _, t = read_tlv(data, r, e)
                param = data[r:t]
                if t != e:
                    raise mistyped(t, "more than one result parameter")
        return ReturnResult(invoke_id, rr_opcode, param, ctag == TAG_RRL)
    if ctag == TAG_RE:
        assert invoke_id is not None
        if p >= ve:
            raise mistyped(p, "ReturnError without an error code")
        tag, s, e, p = read_tlv(data, p, ve)
        if tag != 0x02 and tag != 0x06:
            raise mistyped(s, f"error code tag 0x{tag:x}")
        code = _decode_opcode(data, tag, s, e)
        param = None
        if p < ve:
            _, _, _, q = read_tlv(data, p, ve)
            param = data[p:q]
            if q != ve:
                raise mistyped(q, "more than one parameter")
        return ReturnError(invoke_id, code, param)
    # Reject
    if p >= ve:
        raise mistyped(p, "Reject without a problem")
    tag, s, e, q = read_tlv(data, p, ve)
    if not 0x80 <= tag <= 0x83 or q != ve:
        raise mistyped(p, f"Reject problem tag 0x{tag:x}")
    return Reject(invoke_id, ProblemType(tag - 0x80), decode_integer(data, s, e), "remote")


# ---------------------------------------------------------------------------------------------
# Encoding (definite, shortest lengths)
# ---------------------------------------------------------------------------------------------


def _enc_int(tag: int, value: int) -> bytes:
    v = encode_integer(value)
    return bytes((tag, len(v))) + v


def _enc_code(code: Opcode) -> bytes:
    if isinstance(code, int):  # a local code, also as a member of a scp.codecs.opcodes table
        return _enc_int(0x02, code)
    try:
        return tlv(0x06, encode_oid(code))
    except (ValueError, TypeError) as e:
        raise EncodeError(LAYER, f"bad operation/error code {code!r}: {e}") from None


def _check_id(invoke_id: int) -> None:
    if not -128 <= invoke_id <= 127:
        raise EncodeError(LAYER, f"invokeID {invoke_id} out of range -128..127")


def encode_component(c: Component) -> bytes:
    """One component TLV (Q.773 §3.2)."""
    t = type(c)
    if t is Invoke:
        assert isinstance(c, Invoke)
        _check_id(c.invoke_id)
        body = _enc_int(0x02, c.invoke_id)
        if c.linked_id is not None:
            _check_id(c.linked_id)
            body += _enc_int(0x80, c.linked_id)
        body += _enc_code(c.opcode)
        if c.parameter:
            body += c.parameter
        return tlv(TAG_INVOKE, body)
    if t is ReturnResult:
        assert isinstance(c, ReturnResult)
        _check_id(c.invoke_id)
        body = _enc_int(0x02, c.invoke_id)
        # Q.773 §3.2 (X.880 ReturnResult): ``result`` is SEQUENCE { opcode, parameter } with
        # the parameter mandatory, so a result without a value (AlertServiceCentre v2,
        # ActivityTest, ReadyForSM v2) is the invoke ID alone, whatever opcode the TC-user
        # named: an opcode without its parameter is refused by strict ASN.1 decoders.
        if c.parameter:
            if c.opcode is None:
                raise EncodeError(LAYER, "ReturnResult parameter needs its opcode")
            body += tlv(0x30, _enc_code(c.opcode) + c.parameter)
        return tlv(TAG_RRL if c.last else TAG_RRNL, body)
    if t is ReturnError:
        assert isinstance(c, ReturnError)
        _check_id(c.invoke_id)
        body = _enc_int(0x02, c.invoke_id) + _enc_code(c.error_code)
        if c.parameter:
            body += c.parameter
        return tlv(TAG_RE, body)
    if t is Reject:
        assert isinstance(c, Reject)
        if c.invoke_id is None:
            body = b"\x05\x00"
        else:
            _check_id(c.invoke_id)
            body = _enc_int(0x02, c.invoke_id)
        return tlv(TAG_REJECT, body + _enc_int(0x80 + int(c.problem_type), c.problem_code))
    raise EncodeError(LAYER, f"not a component: {c!r}")


def encode_components(components: tuple[Component, ...] | list[Component]) -> bytes:
    """The whole component portion [APPLICATION 12] TLV, or b"" when there are no components."""
    if not components:
        return b""
    return tlv(TAG_COMPONENTS, b"".join([encode_component(c) for c in components]))


_AC_CACHE: dict[ApplicationContext, bytes] = {}


def _enc_ac(ac: ApplicationContext) -> bytes:
    out = _AC_CACHE.get(ac)
    if out is None:
        try:
            out = tlv(0xA1, tlv(0x06, encode_oid(ac)))
        except (ValueError, TypeError) as e:
            raise EncodeError(LAYER, f"bad application context {ac!r}: {e}") from None
        if len(_AC_CACHE) < 256:
            _AC_CACHE[ac] = out
    return out


def _enc_version(v: bytes | None) -> bytes:
    return tlv(0x80, v) if v else b""


def _enc_user_info(ui: bytes | None) -> bytes:
    # None: absent; b"": present and empty (SEQUENCE OF EXTERNAL may be empty, Q.773 §4.2.2)
    return tlv(TAG_USER_INFO, ui) if ui is not None else b""


def encode_dialogue_portion(pdu: DialoguePdu) -> bytes:
    """The dialogue portion [APPLICATION 11] TLV wrapping ``pdu`` in its EXTERNAL (Q.773 §4.2)."""
    t = type(pdu)
    as_id = DIALOGUE_AS_ID
    if t is Aarq:
        assert isinstance(pdu, Aarq)
        body = tlv(
            TAG_AARQ,
            _enc_version(pdu.protocol_version)
            + _enc_ac(pdu.application_context)
            + _enc_user_info(pdu.user_information),
        )
    elif t is Aare:
        assert isinstance(pdu, Aare)
        if pdu.diagnostic_source not in (DIAG_SOURCE_USER, DIAG_SOURCE_PROVIDER):
            raise EncodeError(LAYER, f"bad result-source-diagnostic {pdu.diagnostic_source}")
        body = tlv(
            TAG_AARE,
            _enc_version(pdu.protocol_version)
            + _enc_ac(pdu.application_context)
            + tlv(0xA2, _enc_int(0x02, pdu.result))
            + tlv(0xA3, tlv(0xA0 | pdu.diagnostic_source, _enc_int(0x02, pdu.diagnostic)))
            + _enc_user_info(pdu.user_information),
        )
    elif t is Abrt:
        assert isinstance(pdu, Abrt)
        body = tlv(
            TAG_ABRT, _enc_int(0x80, pdu.abort_source) + _enc_user_info(pdu.user_information)
        )
    elif t is Audt:
        assert isinstance(pdu, Audt)
        as_id = UNIDIALOGUE_AS_ID
        body = tlv(
            TAG_AARQ,
            _enc_version(pdu.protocol_version)
            + _enc_ac(pdu.application_context)
            + _enc_user_info(pdu.user_information),
        )
    else:
        raise EncodeError(LAYER, f"not a dialogue PDU: {pdu!r}")
    external = tlv(TAG_EXTERNAL, b"\x06\x07" + as_id + tlv(0xA0, body))
    return tlv(TAG_DIALOGUE, external)


def encode_message(
    message_type: int,
    *,
    otid: bytes | None = None,
    dtid: bytes | None = None,
    dialogue_portion: bytes = b"",
    component_portion: bytes = b"",
    p_abort_cause: int | None = None,
) -> bytes:
    """A TCAP message from already encoded portions (the fast path the core uses)."""
    body = b""
    if otid is not None:
        if not 1 <= len(otid) <= 4:
            raise EncodeError(LAYER, "otid must be 1 to 4 octets")
        body = bytes((TAG_OTID, len(otid))) + otid
    if dtid is not None:
        if not 1 <= len(dtid) <= 4:
            raise EncodeError(LAYER, "dtid must be 1 to 4 octets")
        body += bytes((TAG_DTID, len(dtid))) + dtid
    if p_abort_cause is not None:
        body += bytes((TAG_P_ABORT, 1, p_abort_cause))
    body += dialogue_portion + component_portion
    return tlv(message_type, body)


def encode(msg: TcapMessage) -> bytes:
    """Encode a :class:`TcapMessage` (inverse of :func:`decode`)."""
    return encode_message(
        msg.message_type,
        otid=msg.otid,
        dtid=msg.dtid,
        dialogue_portion=encode_dialogue_portion(msg.dialogue) if msg.dialogue is not None else b"",
        component_portion=encode_components(msg.components)
        if msg.components
        else (b"\x6c\x00" if msg.components is not None else b""),
        p_abort_cause=msg.p_abort_cause,
    )
