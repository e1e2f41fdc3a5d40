"""M3UA message codec (RFC 4666 §3: common header, parameters, every message class).

Bytes <-> :class:`M3uaMessage`, a frozen dataclass holding the message type and its parameters
as ``(tag, value)`` pairs in wire order, so parameters we do not know survive a round trip.
Typed accessors and :func:`make` cover the parameters of RFC 4666 §3.2-§3.6; the nested TLV
parameters of Routing Key Management (§3.6) have their own small dataclasses.

Decoding checks what RFC 4666 §4.5 (and §3.8.1, the Error message) asks a receiver to check and
raises :class:`M3uaDecodeError` (a :class:`~scp.codecs.errors.DecodeError`) carrying the Error
Code (§3.8.1) the receiver answers with: Invalid Version, Unsupported Message Class/Type,
Protocol Error, Parameter Field Error, Unexpected Parameter, Missing Parameter...

The hot path (Payload Data, §3.3.1) has its own helpers :func:`decode_data` /
:func:`encode_data` that go straight between bytes and :class:`~scp.primitives.MtpTransfer`
with ``struct`` and no intermediate objects. Hand-written on purpose: pycrate is used only as an
independent oracle in the tests.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from scp.codecs.errors import DecodeError, EncodeError
from scp.primitives import MtpTransfer

__all__ = [
    "VERSION",
    "MAX_MESSAGE_LENGTH",
    "MessageClass",
    "MessageType",
    "Tag",
    "ErrorCode",
    "StatusType",
    "AsStateChange",
    "OtherStatus",
    "TrafficMode",
    "RegistrationStatus",
    "DeregistrationStatus",
    "M3uaDecodeError",
    "M3uaMessage",
    "ProtocolData",
    "AffectedPointCode",
    "RoutingKey",
    "RegistrationResult",
    "DeregistrationResult",
    "Data",
    "decode",
    "encode",
    "make",
    "decode_data",
    "encode_data",
    "decode_params",
    "encode_params",
    "peek_header",
]

VERSION = 1
"""Release 1.0 of the protocol (RFC 4666 §3.1.1)."""

MAX_MESSAGE_LENGTH = 65536
"""Largest message we accept; M3UA carries MTP3 user parts of at most 272 (or 4 kB) octets."""

LAYER = "m3ua"

_HDR = struct.Struct("!BBBBI")  # version, reserved, class, type, length (§3.1)
_TLV = struct.Struct("!HH")  # tag, length (§3.2)
_U32 = struct.Struct("!I")
_PD = struct.Struct("!IIBBBB")  # OPC, DPC, SI, NI, MP, SLS (§3.3.1)


# ---------------------------------------------------------------------------------------------
# Numbers from the RFC
# ---------------------------------------------------------------------------------------------


class MessageClass(enum.IntEnum):
    """Message Class (RFC 4666 §3.1.2)."""

    MGMT = 0
    TRANSFER = 1
    SSNM = 2
    ASPSM = 3
    ASPTM = 4
    RKM = 9


class MessageType(enum.IntEnum):
    """Message class and type as one number, ``class << 8 | type`` (RFC 4666 §3.1.3)."""

    ERR = 0x0000
    NTFY = 0x0001
    DATA = 0x0101
    DUNA = 0x0201
    DAVA = 0x0202
    DAUD = 0x0203
    SCON = 0x0204
    DUPU = 0x0205
    DRST = 0x0206
    ASPUP = 0x0301
    ASPDN = 0x0302
    BEAT = 0x0303
    ASPUP_ACK = 0x0304
    ASPDN_ACK = 0x0305
    BEAT_ACK = 0x0306
    ASPAC = 0x0401
    ASPIA = 0x0402
    ASPAC_ACK = 0x0403
    ASPIA_ACK = 0x0404
    REG_REQ = 0x0901
    REG_RSP = 0x0902
    DEREG_REQ = 0x0903
    DEREG_RSP = 0x0904

    @property
    def msg_class(self) -> int:
        return self.value >> 8


class Tag(enum.IntEnum):
    """Parameter tags: common (RFC 4666 §3.2) and M3UA-specific (§3.2, 0x0200-0x02ff)."""

    INFO_STRING = 0x0004
    ROUTING_CONTEXT = 0x0006
    DIAGNOSTIC_INFORMATION = 0x0007
    HEARTBEAT_DATA = 0x0009
    TRAFFIC_MODE_TYPE = 0x000B
    ERROR_CODE = 0x000C
    STATUS = 0x000D
    ASP_IDENTIFIER = 0x0011
    AFFECTED_POINT_CODE = 0x0012
    CORRELATION_ID = 0x0013
    NETWORK_APPEARANCE = 0x0200
    USER_CAUSE = 0x0204
    CONGESTION_INDICATIONS = 0x0205
    CONCERNED_DESTINATION = 0x0206
    ROUTING_KEY = 0x0207
    REGISTRATION_RESULT = 0x0208
    DEREGISTRATION_RESULT = 0x0209
    LOCAL_ROUTING_KEY_IDENTIFIER = 0x020A
    DESTINATION_POINT_CODE = 0x020B
    SERVICE_INDICATORS = 0x020C
    ORIGINATING_POINT_CODE_LIST = 0x020E
    PROTOCOL_DATA = 0x0210
    REGISTRATION_STATUS = 0x0212
    DEREGISTRATION_STATUS = 0x0213


class ErrorCode(enum.IntEnum):
    """Error Code parameter values (RFC 4666 §3.8.1)."""

    INVALID_VERSION = 0x01
    UNSUPPORTED_MESSAGE_CLASS = 0x03
    UNSUPPORTED_MESSAGE_TYPE = 0x04
    UNSUPPORTED_TRAFFIC_MODE_TYPE = 0x05
    UNEXPECTED_MESSAGE = 0x06
    PROTOCOL_ERROR = 0x07
    INVALID_STREAM_IDENTIFIER = 0x09
    REFUSED_MANAGEMENT_BLOCKING = 0x0D
    ASP_IDENTIFIER_REQUIRED = 0x0E
    INVALID_ASP_IDENTIFIER = 0x0F
    INVALID_PARAMETER_VALUE = 0x11
    PARAMETER_FIELD_ERROR = 0x12
    UNEXPECTED_PARAMETER = 0x13
    DESTINATION_STATUS_UNKNOWN = 0x14
    INVALID_NETWORK_APPEARANCE = 0x15
    MISSING_PARAMETER = 0x16
    INVALID_ROUTING_CONTEXT = 0x19
    NO_CONFIGURED_AS_FOR_ASP = 0x1A


class StatusType(enum.IntEnum):
    """Status Type of the Notify message (RFC 4666 §3.8.2)."""

    AS_STATE_CHANGE = 1
    OTHER = 2


class AsStateChange(enum.IntEnum):
    """Status Information for Status Type AS-State-Change (RFC 4666 §3.8.2)."""

    AS_INACTIVE = 2
    AS_ACTIVE = 3
    AS_PENDING = 4


class OtherStatus(enum.IntEnum):
    """Status Information for Status Type Other (RFC 4666 §3.8.2)."""

    INSUFFICIENT_ASP_RESOURCES_ACTIVE = 1
    ALTERNATE_ASP_ACTIVE = 2
    ASP_FAILURE = 3


class TrafficMode(enum.IntEnum):
    """Traffic Mode Type (RFC 4666 §3.7.1)."""

    OVERRIDE = 1
    LOADSHARE = 2
    BROADCAST = 3


class RegistrationStatus(enum.IntEnum):
    """Registration Status (RFC 4666 §3.6.2)."""

    SUCCESSFULLY_REGISTERED = 0
    UNKNOWN = 1
    INVALID_DPC = 2
    INVALID_NETWORK_APPEARANCE = 3
    INVALID_ROUTING_KEY = 4
    PERMISSION_DENIED = 5
    CANNOT_SUPPORT_UNIQUE_ROUTING = 6
    ROUTING_KEY_NOT_PROVISIONED = 7
    INSUFFICIENT_RESOURCES = 8
    UNSUPPORTED_RK_PARAMETER_FIELD = 9
    UNSUPPORTED_TRAFFIC_HANDLING_MODE = 10
    ROUTING_KEY_CHANGE_REFUSED = 11
    ROUTING_KEY_ALREADY_REGISTERED = 12


class DeregistrationStatus(enum.IntEnum):
    """Deregistration Status (RFC 4666 §3.6.4)."""

    SUCCESSFULLY_DEREGISTERED = 0
    UNKNOWN = 1
    INVALID_ROUTING_CONTEXT = 2
    PERMISSION_DENIED = 3
    NOT_REGISTERED = 4
    ASP_CURRENTLY_ACTIVE = 5


# Parameters each message may carry, in the order the RFC lists them (which is the order
# `make` emits them), and the mandatory ones. Sources: RFC 4666 §3.3-§3.8.
_T = Tag
_SSNM_COMMON = (_T.NETWORK_APPEARANCE, _T.ROUTING_CONTEXT, _T.AFFECTED_POINT_CODE, _T.INFO_STRING)
_ALLOWED: dict[int, tuple[Tag, ...]] = {
    MessageType.ERR: (
        _T.ERROR_CODE,
        _T.ROUTING_CONTEXT,
        _T.NETWORK_APPEARANCE,
        _T.AFFECTED_POINT_CODE,
        _T.DIAGNOSTIC_INFORMATION,
    ),
    MessageType.NTFY: (_T.STATUS, _T.ASP_IDENTIFIER, _T.ROUTING_CONTEXT, _T.INFO_STRING),
    MessageType.DATA: (
        _T.NETWORK_APPEARANCE,
        _T.ROUTING_CONTEXT,
        _T.PROTOCOL_DATA,
        _T.CORRELATION_ID,
    ),
    MessageType.DUNA: _SSNM_COMMON,
    MessageType.DAVA: _SSNM_COMMON,
    MessageType.DAUD: _SSNM_COMMON,
    MessageType.SCON: (
        _T.NETWORK_APPEARANCE,
        _T.ROUTING_CONTEXT,
        _T.AFFECTED_POINT_CODE,
        _T.CONCERNED_DESTINATION,
        _T.CONGESTION_INDICATIONS,
        _T.INFO_STRING,
    ),
    MessageType.DUPU: (
        _T.NETWORK_APPEARANCE,
        _T.ROUTING_CONTEXT,
        _T.AFFECTED_POINT_CODE,
        _T.USER_CAUSE,
        _T.INFO_STRING,
    ),
    MessageType.DRST: _SSNM_COMMON,
    MessageType.ASPUP: (_T.ASP_IDENTIFIER, _T.INFO_STRING),
    MessageType.ASPUP_ACK: (_T.ASP_IDENTIFIER, _T.INFO_STRING),
    MessageType.ASPDN: (_T.INFO_STRING,),
    MessageType.ASPDN_ACK: (_T.INFO_STRING,),
    MessageType.BEAT: (_T.HEARTBEAT_DATA,),
    MessageType.BEAT_ACK: (_T.HEARTBEAT_DATA,),
    MessageType.ASPAC: (_T.TRAFFIC_MODE_TYPE, _T.ROUTING_CONTEXT, _T.INFO_STRING),
    MessageType.ASPAC_ACK: (_T.TRAFFIC_MODE_TYPE, _T.ROUTING_CONTEXT, _T.INFO_STRING),
    MessageType.ASPIA: (_T.ROUTING_CONTEXT, _T.INFO_STRING),
    MessageType.ASPIA_ACK: (_T.ROUTING_CONTEXT, _T.INFO_STRING),
    MessageType.REG_REQ: (_T.ROUTING_KEY,),
    MessageType.REG_RSP: (_T.REGISTRATION_RESULT,),
    MessageType.DEREG_REQ: (_T.ROUTING_CONTEXT,),
    MessageType.DEREG_RSP: (_T.DEREGISTRATION_RESULT,),
}
_MANDATORY: dict[int, frozenset[int]] = {
    MessageType.ERR: frozenset({_T.ERROR_CODE}),
    MessageType.NTFY: frozenset({_T.STATUS}),
    MessageType.DATA: frozenset({_T.PROTOCOL_DATA}),
    MessageType.DUNA: frozenset({_T.AFFECTED_POINT_CODE}),
    MessageType.DAVA: frozenset({_T.AFFECTED_POINT_CODE}),
    MessageType.DAUD: frozenset({_T.AFFECTED_POINT_CODE}),
    MessageType.SCON: frozenset({_T.AFFECTED_POINT_CODE}),
    MessageType.DUPU: frozenset({_T.AFFECTED_POINT_CODE, _T.USER_CAUSE}),
    MessageType.DRST: frozenset({_T.AFFECTED_POINT_CODE}),
    MessageType.REG_REQ: frozenset({_T.ROUTING_KEY}),
    MessageType.REG_RSP: frozenset({_T.REGISTRATION_RESULT}),
    MessageType.DEREG_REQ: frozenset({_T.ROUTING_CONTEXT}),
    MessageType.DEREG_RSP: frozenset({_T.DEREGISTRATION_RESULT}),
}
# Only these may appear more than once in one message (one per routing key / result, §3.6).
_REPEATABLE = frozenset({_T.ROUTING_KEY, _T.REGISTRATION_RESULT, _T.DEREGISTRATION_RESULT})
_KNOWN_TAGS = frozenset(int(t) for t in Tag)
_KNOWN_CLASSES = frozenset(int(c) for c in MessageClass)
_KNOWN_TYPES = frozenset(int(t) for t in MessageType)

# Value length rules: exact length, or a positive multiple of 4 (lists of 32-bit values).
_FIXED_LEN = {
    _T.TRAFFIC_MODE_TYPE: 4,
    _T.ERROR_CODE: 4,
    _T.STATUS: 4,
    _T.ASP_IDENTIFIER: 4,
    _T.CORRELATION_ID: 4,
    _T.NETWORK_APPEARANCE: 4,
    _T.USER_CAUSE: 4,
    _T.CONGESTION_INDICATIONS: 4,
    _T.CONCERNED_DESTINATION: 4,
    _T.LOCAL_ROUTING_KEY_IDENTIFIER: 4,
    _T.DESTINATION_POINT_CODE: 4,
    _T.REGISTRATION_STATUS: 4,
    _T.DEREGISTRATION_STATUS: 4,
}
_LIST32 = frozenset({_T.ROUTING_CONTEXT, _T.AFFECTED_POINT_CODE})


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class M3uaDecodeError(DecodeError):
    """A message the receiver must refuse; ``error_code`` is the ERR to answer with (§3.8.1)."""

    def __init__(self, offset: int, reason: str, error_code: ErrorCode) -> None:
        super().__init__(LAYER, offset, reason)
        self.error_code = error_code


def _err(offset: int, reason: str, code: ErrorCode) -> M3uaDecodeError:
    return M3uaDecodeError(offset, reason, code)


# ---------------------------------------------------------------------------------------------
# Parameter values
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProtocolData:
    """Protocol Data parameter (0x0210, RFC 4666 §3.3.1): the MTP3 routing label and user data."""

    opc: int
    dpc: int
    si: int
    ni: int
    mp: int
    sls: int
    data: bytes

    def to_transfer(self) -> MtpTransfer:
        return MtpTransfer(self.opc, self.dpc, self.si, self.ni, self.mp, self.sls, self.data)

    def encode(self) -> bytes:
        return _PD.pack(self.opc, self.dpc, self.si, self.ni, self.mp, self.sls) + self.data


@dataclass(frozen=True, slots=True)
class AffectedPointCode:
    """One entry of Affected Point Code (0x0012, RFC 4666 §3.4.1): ``mask`` wildcards low bits."""

    pc: int
    mask: int = 0

    def covers(self, pc: int) -> bool:
        """Whether ``pc`` lies in the range this entry names (the mask counts wildcard bits)."""
        low = (1 << min(self.mask, 24)) - 1
        return (self.pc & ~low & 0xFFFFFF) == (pc & ~low & 0xFFFFFF)


@dataclass(frozen=True, slots=True)
class RoutingKey:
    """Routing Key parameter (0x0207, RFC 4666 §3.6.1), as carried by REG REQ."""

    local_rk_identifier: int
    dpc: int
    routing_context: int | None = None
    traffic_mode: int | None = None
    network_appearance: int | None = None
    service_indicators: tuple[int, ...] = ()
    opc_list: tuple[int, ...] = ()

    def encode(self) -> bytes:
        p: list[tuple[int, bytes]] = [
            (_T.LOCAL_ROUTING_KEY_IDENTIFIER, _u32(self.local_rk_identifier))
        ]
        if self.routing_context is not None:
            p.append((_T.ROUTING_CONTEXT, _u32(self.routing_context)))
        if self.traffic_mode is not None:
            p.append((_T.TRAFFIC_MODE_TYPE, _u32(self.traffic_mode)))
        p.append((_T.DESTINATION_POINT_CODE, _u32(self.dpc & 0xFFFFFF)))
        if self.network_appearance is not None:
            p.append((_T.NETWORK_APPEARANCE, _u32(self.network_appearance)))
        if self.service_indicators:
            sis = bytes(self.service_indicators)
            p.append((_T.SERVICE_INDICATORS, sis + b"\x00" * (-len(sis) % 4)))
        if self.opc_list:
            p.append(
                (
                    _T.ORIGINATING_POINT_CODE_LIST,
                    b"".join(_u32(o & 0xFFFFFF) for o in self.opc_list),
                )
            )
        return encode_params(p)

    @classmethod
    def decode(cls, value: bytes, base: int = 0) -> RoutingKey:
        params = decode_params(value, base)
        d = dict(params)
        try:
            rkid = _u32v(d, _T.LOCAL_ROUTING_KEY_IDENTIFIER)
            dpc = _u32v(d, _T.DESTINATION_POINT_CODE)
        except KeyError as e:
            raise _err(
                base, f"routing key without {Tag(e.args[0]).name}", ErrorCode.MISSING_PARAMETER
            ) from None
        sis = d.get(_T.SERVICE_INDICATORS, b"")
        opcs = d.get(_T.ORIGINATING_POINT_CODE_LIST, b"")
        if len(opcs) % 4:
            raise _err(base, "OPC list not a multiple of 4 octets", ErrorCode.PARAMETER_FIELD_ERROR)
        return cls(
            local_rk_identifier=rkid,
            dpc=dpc & 0xFFFFFF,
            routing_context=_u32o(d, _T.ROUTING_CONTEXT),
            traffic_mode=_u32o(d, _T.TRAFFIC_MODE_TYPE),
            network_appearance=_u32o(d, _T.NETWORK_APPEARANCE),
            service_indicators=tuple(s for s in sis if s),
            opc_list=tuple(x & 0xFFFFFF for (x,) in struct.iter_unpack("!I", opcs)),
        )


@dataclass(frozen=True, slots=True)
class RegistrationResult:
    """Registration Result parameter (0x0208, RFC 4666 §3.6.2), one per routing key."""

    local_rk_identifier: int
    status: int
    routing_context: int = 0

    def encode(self) -> bytes:
        return encode_params(
            [
                (_T.LOCAL_ROUTING_KEY_IDENTIFIER, _u32(self.local_rk_identifier)),
                (_T.REGISTRATION_STATUS, _u32(self.status)),
                (_T.ROUTING_CONTEXT, _u32(self.routing_context)),
            ]
        )

    @classmethod
    def decode(cls, value: bytes, base: int = 0) -> RegistrationResult:
        d = dict(decode_params(value, base))
        try:
            return cls(
                _u32v(d, _T.LOCAL_ROUTING_KEY_IDENTIFIER),
                _u32v(d, _T.REGISTRATION_STATUS),
                _u32v(d, _T.ROUTING_CONTEXT),
            )
        except KeyError as e:
            raise _err(
                base,
                f"registration result without {Tag(e.args[0]).name}",
                ErrorCode.MISSING_PARAMETER,
            ) from None


@dataclass(frozen=True, slots=True)
class DeregistrationResult:
    """Deregistration Result parameter (0x0209, RFC 4666 §3.6.4), one per routing context."""

    routing_context: int
    status: int

    def encode(self) -> bytes:
        return encode_params(
            [
                (_T.ROUTING_CONTEXT, _u32(self.routing_context)),
                (_T.DEREGISTRATION_STATUS, _u32(self.status)),
            ]
        )

    @classmethod
    def decode(cls, value: bytes, base: int = 0) -> DeregistrationResult:
        d = dict(decode_params(value, base))
        try:
            return cls(_u32v(d, _T.ROUTING_CONTEXT), _u32v(d, _T.DEREGISTRATION_STATUS))
        except KeyError as e:
            raise _err(
                base,
                f"deregistration result without {Tag(e.args[0]).name}",
                ErrorCode.MISSING_PARAMETER,
            ) from None


def _u32(v: int) -> bytes:
    try:
        return _U32.pack(v)
    except struct.error:
        raise EncodeError(LAYER, f"{v!r} does not fit 32 bits") from None


def _u32v(d: dict[int, bytes], tag: int) -> int:
    v = d[tag]
    if len(v) != 4:
        raise _err(0, f"{Tag(tag).name} is {len(v)} octets, not 4", ErrorCode.PARAMETER_FIELD_ERROR)
    return int.from_bytes(v, "big")


def _u32o(d: dict[int, bytes], tag: int) -> int | None:
    return _u32v(d, tag) if tag in d else None


# ---------------------------------------------------------------------------------------------
# The message
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class M3uaMessage:
    """One M3UA message: its class/type and its parameters as ``(tag, value)`` in wire order."""

    msg_type: int
    params: tuple[tuple[int, bytes], ...] = ()

    @property
    def msg_class(self) -> int:
        return self.msg_type >> 8

    @property
    def name(self) -> str:
        try:
            return MessageType(self.msg_type).name
        except ValueError:
            return f"0x{self.msg_type:04x}"

    def get(self, tag: int) -> bytes | None:
        """The value of the first parameter with ``tag`` (no padding), or None."""
        for t, v in self.params:
            if t == tag:
                return v
        return None

    def get_all(self, tag: int) -> list[bytes]:
        return [v for t, v in self.params if t == tag]

    def u32(self, tag: int) -> int | None:
        v = self.get(tag)
        return None if v is None or len(v) != 4 else int.from_bytes(v, "big")

    # Typed views of the common parameters (RFC 4666 §3.2); None when absent.
    @property
    def routing_contexts(self) -> tuple[int, ...] | None:
        v = self.get(Tag.ROUTING_CONTEXT)
        return (
            None if v is None else tuple(x for (x,) in struct.iter_unpack("!I", v[: len(v) & ~3]))
        )

    @property
    def network_appearance(self) -> int | None:
        return self.u32(Tag.NETWORK_APPEARANCE)

    @property
    def asp_identifier(self) -> int | None:
        return self.u32(Tag.ASP_IDENTIFIER)

    @property
    def traffic_mode(self) -> int | None:
        return self.u32(Tag.TRAFFIC_MODE_TYPE)

    @property
    def error_code(self) -> int | None:
        return self.u32(Tag.ERROR_CODE)

    @property
    def correlation_id(self) -> int | None:
        return self.u32(Tag.CORRELATION_ID)

    @property
    def status(self) -> tuple[int, int] | None:
        """(Status Type, Status Information) of a Notify (§3.8.2)."""
        v = self.get(Tag.STATUS)
        return None if v is None or len(v) != 4 else (v[0] << 8 | v[1], v[2] << 8 | v[3])

    @property
    def info_string(self) -> str | None:
        v = self.get(Tag.INFO_STRING)
        return None if v is None else v.decode("utf-8", "replace")

    @property
    def heartbeat_data(self) -> bytes | None:
        return self.get(Tag.HEARTBEAT_DATA)

    @property
    def diagnostic_information(self) -> bytes | None:
        return self.get(Tag.DIAGNOSTIC_INFORMATION)

    @property
    def affected_point_codes(self) -> tuple[AffectedPointCode, ...]:
        v = self.get(Tag.AFFECTED_POINT_CODE) or b""
        return tuple(
            AffectedPointCode(x & 0xFFFFFF, x >> 24)
            for (x,) in struct.iter_unpack("!I", v[: len(v) & ~3])
        )

    @property
    def user_cause(self) -> tuple[int, int] | None:
        """(Cause, User) of a DUPU (§3.4.5)."""
        v = self.get(Tag.USER_CAUSE)
        return None if v is None or len(v) != 4 else (v[0] << 8 | v[1], v[2] << 8 | v[3])

    @property
    def protocol_data(self) -> ProtocolData | None:
        v = self.get(Tag.PROTOCOL_DATA)
        if v is None or len(v) < 12:
            return None
        opc, dpc, si, ni, mp, sls = _PD.unpack_from(v)
        return ProtocolData(opc, dpc, si, ni, mp, sls, v[12:])

    @property
    def routing_keys(self) -> tuple[RoutingKey, ...]:
        return tuple(RoutingKey.decode(v) for v in self.get_all(Tag.ROUTING_KEY))

    @property
    def registration_results(self) -> tuple[RegistrationResult, ...]:
        return tuple(RegistrationResult.decode(v) for v in self.get_all(Tag.REGISTRATION_RESULT))

    @property
    def deregistration_results(self) -> tuple[DeregistrationResult, ...]:
        return tuple(
            DeregistrationResult.decode(v) for v in self.get_all(Tag.DEREGISTRATION_RESULT)
        )


def make(
    msg_type: int,
    *,
    routing_context: int | Iterable[int] | None = None,
    network_appearance: int | None = None,
    protocol_data: ProtocolData | MtpTransfer | None = None,
    correlation_id: int | None = None,
    traffic_mode: int | None = None,
    asp_identifier: int | None = None,
    info_string: str | None = None,
    error_code: int | None = None,
    diagnostic_information: bytes | None = None,
    status: tuple[int, int] | None = None,
    affected_point_codes: Iterable[AffectedPointCode | int] | None = None,
    heartbeat_data: bytes | None = None,
    user_cause: tuple[int, int] | None = None,
    concerned_destination: int | None = None,
    congestion_level: int | None = None,
    routing_keys: Iterable[RoutingKey] = (),
    registration_results: Iterable[RegistrationResult] = (),
    deregistration_results: Iterable[DeregistrationResult] = (),
    extra: Iterable[tuple[int, bytes]] = (),
) -> M3uaMessage:
    """Build a message from typed values; parameters come out in the RFC's order for the type."""
    values: dict[int, list[bytes]] = {}

    def put(tag: int, v: bytes) -> None:
        values.setdefault(tag, []).append(v)

    if routing_context is not None:
        rcs = [routing_context] if isinstance(routing_context, int) else list(routing_context)
        put(Tag.ROUTING_CONTEXT, b"".join(_u32(r) for r in rcs))
    if network_appearance is not None:
        put(Tag.NETWORK_APPEARANCE, _u32(network_appearance))
    if protocol_data is not None:
        p = protocol_data
        try:
            put(Tag.PROTOCOL_DATA, _PD.pack(p.opc, p.dpc, p.si, p.ni, p.mp, p.sls) + p.data)
        except struct.error as e:
            raise EncodeError(LAYER, f"protocol data out of range: {e}") from None
    if correlation_id is not None:
        put(Tag.CORRELATION_ID, _u32(correlation_id))
    if traffic_mode is not None:
        put(Tag.TRAFFIC_MODE_TYPE, _u32(traffic_mode))
    if asp_identifier is not None:
        put(Tag.ASP_IDENTIFIER, _u32(asp_identifier))
    if info_string is not None:
        put(Tag.INFO_STRING, info_string.encode("utf-8"))
    if error_code is not None:
        put(Tag.ERROR_CODE, _u32(error_code))
    if diagnostic_information is not None:
        put(Tag.DIAGNOSTIC_INFORMATION, diagnostic_information)
    if status is not None:
        put(Tag.STATUS, struct.pack("!HH", *status))
    if affected_point_codes is not None:
        apcs = [
            a if isinstance(a, AffectedPointCode) else AffectedPointCode(a)
            for a in affected_point_codes
        ]
        put(
            Tag.AFFECTED_POINT_CODE,
            b"".join(_u32((a.mask << 24) | (a.pc & 0xFFFFFF)) for a in apcs),
        )
    if heartbeat_data is not None:
        put(Tag.HEARTBEAT_DATA, heartbeat_data)
    if user_cause is not None:
        put(Tag.USER_CAUSE, struct.pack("!HH", *user_cause))
    if concerned_destination is not None:
        put(Tag.CONCERNED_DESTINATION, _u32(concerned_destination & 0xFFFFFF))
    if congestion_level is not None:
        put(Tag.CONGESTION_INDICATIONS, _u32(congestion_level))
    for rk in routing_keys:
        put(Tag.ROUTING_KEY, rk.encode())
    for rr in registration_results:
        put(Tag.REGISTRATION_RESULT, rr.encode())
    for dr in deregistration_results:
        put(Tag.DEREGISTRATION_RESULT, dr.encode())

    order = _ALLOWED.get(msg_type, ())
    params: list[tuple[int, bytes]] = []
    for tag in order:
        for v in values.pop(tag, ()):
            params.append((int(tag), v))
    if values:
        # Not defined for this type by the RFC: still emitted (tests build bad messages so).
        for other, vs in values.items():
            params += [(other, v) for v in vs]
    params += [(int(t), bytes(v)) for t, v in extra]
    return M3uaMessage(int(msg_type), tuple(params))


# ---------------------------------------------------------------------------------------------
# Encoding and decoding
# ---------------------------------------------------------------------------------------------


def encode_params(params: Iterable[tuple[int, bytes]]) -> bytes:
    """Tag-Length-Value parameters, each padded to a 4-octet boundary (RFC 4666 §3.2)."""
    out = bytearray()
    for tag, value in params:
        n = len(value) + 4
        if n > 0xFFFF:
            raise EncodeError(LAYER, f"parameter 0x{tag:04x} too long ({n} octets)")
        out += _TLV.pack(tag, n)
        out += value
        out += b"\x00" * (-n % 4)
    return bytes(out)


def encode(msg: M3uaMessage) -> bytes:
    """The wire form of ``msg``: common header (§3.1) and its padded parameters."""
    body = encode_params(msg.params)
    return _HDR.pack(VERSION, 0, msg.msg_type >> 8, msg.msg_type & 0xFF, 8 + len(body)) + body


def decode_params(data: bytes, base: int = 0) -> list[tuple[int, bytes]]:
    """Split a run of padded TLV parameters; ``base`` is their offset, for error reports."""
    params: list[tuple[int, bytes]] = []
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < 4:
            raise _err(
                base + pos,
                "trailing octets shorter than a parameter header",
                ErrorCode.PARAMETER_FIELD_ERROR,
            )
        tag, n = _TLV.unpack_from(data, pos)
        if n < 4 or pos + n > end:
            raise _err(
                base + pos + 2,
                f"parameter 0x{tag:04x} length {n} does not fit",
                ErrorCode.PARAMETER_FIELD_ERROR,
            )
        params.append((tag, data[pos + 4 : pos + n]))
        # The last parameter's padding may be missing: nothing follows it to misalign.
        pos = min(end, pos + n + (-n % 4))
    return params


def peek_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(version, class, type, length) of the common header, or None if fewer than 8 octets."""
    if len(data) < 8:
        return None
    version, _, cls, typ, length = _HDR.unpack_from(data)
    return version, cls, typ, length


def _check_header(data: bytes) -> int:
    if len(data) < 8:
        raise _err(
            0,
            f"message of {len(data)} octets is shorter than the common header",
            ErrorCode.PROTOCOL_ERROR,
        )
    version, _, cls, typ, length = _HDR.unpack_from(data)
    if version != VERSION:
        raise _err(0, f"version {version}", ErrorCode.INVALID_VERSION)
    if length != len(data):
        raise _err(
            4, f"message length {length} but {len(data)} octets received", ErrorCode.PROTOCOL_ERROR
        )
    if cls not in _KNOWN_CLASSES:
        raise _err(2, f"message class {cls}", ErrorCode.UNSUPPORTED_MESSAGE_CLASS)
    mt: int = cls << 8 | typ
    if mt not in _KNOWN_TYPES:
        raise _err(3, f"message type {typ} of class {cls}", ErrorCode.UNSUPPORTED_MESSAGE_TYPE)
    return mt


def _check_value(tag: int, value: bytes, offset: int) -> None:
    n = len(value)
    want = _FIXED_LEN.get(tag)  # type: ignore[call-overload]
    if want is not None:
        if n != want:
            raise _err(
                offset,
                f"{Tag(tag).name} is {n} octets, not {want}",
                ErrorCode.PARAMETER_FIELD_ERROR,
            )
    elif tag in _LIST32:
        if n == 0 or n % 4:
            raise _err(
                offset,
                f"{Tag(tag).name} is {n} octets, not a multiple of 4",
                ErrorCode.PARAMETER_FIELD_ERROR,
            )
    elif tag == Tag.PROTOCOL_DATA and n < 12:
        raise _err(
            offset,
            f"protocol data of {n} octets has no routing label",
            ErrorCode.PARAMETER_FIELD_ERROR,
        )


def _check_range(mt: int, tag: int, value: bytes, offset: int) -> None:
    """Values the RFC defines no meaning for: Invalid Parameter Value (§3.8.1)."""
    if tag == Tag.TRAFFIC_MODE_TYPE and int.from_bytes(value, "big") not in (1, 2, 3):
        raise _err(offset, f"traffic mode type {value.hex()}", ErrorCode.INVALID_PARAMETER_VALUE)
    if tag == Tag.STATUS and value[:2] not in (b"\0\1", b"\0\2"):
        raise _err(offset, f"status type {value[:2].hex()}", ErrorCode.INVALID_PARAMETER_VALUE)
    if tag == Tag.AFFECTED_POINT_CODE and mt == MessageType.DUPU and any(value[0::4]):
        # §3.4.5: a DUPU names exact point codes; the RFC's own example of this error.
        raise _err(offset, "DUPU with a point code mask", ErrorCode.INVALID_PARAMETER_VALUE)


def decode(data: bytes) -> M3uaMessage:
    """Decode one whole M3UA message; raise :class:`M3uaDecodeError` with the ERR code to send."""
    data = bytes(data)
    mt = _check_header(data)
    params = decode_params(data[8:], 8)
    allowed = _ALLOWED[mt]
    seen: set[int] = set()
    pos = 8
    for tag, value in params:
        if tag in _KNOWN_TAGS:
            if tag not in allowed:
                raise _err(
                    pos,
                    f"{Tag(tag).name} not defined in {MessageType(mt).name}",
                    ErrorCode.UNEXPECTED_PARAMETER,
                )
            if tag in seen and tag not in _REPEATABLE:
                raise _err(pos, f"{Tag(tag).name} repeated", ErrorCode.UNEXPECTED_PARAMETER)
            _check_value(tag, value, pos + 4)
            if tag == Tag.ROUTING_CONTEXT and mt == MessageType.DATA and len(value) != 4:
                # DATA belongs to exactly one routing context (§3.3.1).
                raise _err(
                    pos + 4,
                    "DATA with more than one routing context",
                    ErrorCode.PARAMETER_FIELD_ERROR,
                )
            _check_range(mt, tag, value, pos + 4)
            seen.add(tag)
        n = len(value) + 4
        pos += n + (-n % 4)
    missing = _MANDATORY.get(mt, frozenset()) - seen
    if missing:
        names = ", ".join(sorted(Tag(t).name for t in missing))
        raise _err(
            len(data), f"{MessageType(mt).name} without {names}", ErrorCode.MISSING_PARAMETER
        )
    msg = M3uaMessage(mt, tuple(params))
    if mt == MessageType.REG_REQ:
        msg.routing_keys  # noqa: B018 - validates the nested TLVs now, not in the layer
    elif mt == MessageType.REG_RSP:
        msg.registration_results  # noqa: B018
    elif mt == MessageType.DEREG_RSP:
        msg.deregistration_results  # noqa: B018
    return msg


# ---------------------------------------------------------------------------------------------
# Hot path: Payload Data (RFC 4666 §3.3.1)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Data:
    """A decoded DATA message: the MTP-TRANSFER it carries and its optional parameters."""

    xfer: MtpTransfer
    routing_context: int | None = None
    network_appearance: int | None = None
    correlation_id: int | None = None


_TAG_NA, _TAG_RC, _TAG_PD, _TAG_CID = 0x0200, 0x0006, 0x0210, 0x0013


def decode_data(data: bytes) -> Data:
    """Decode a DATA message straight to :class:`Data`; same checks and errors as :func:`decode`."""
    if len(data) < 8 or data[0] != 1 or data[2] != 1 or data[3] != 1:
        mt = _check_header(data)
        raise _err(2, f"{MessageType(mt).name} is not DATA", ErrorCode.UNEXPECTED_MESSAGE)
    end = len(data)
    if _U32.unpack_from(data, 4)[0] != end:
        _check_header(data)
    pos = 8
    rc = na = cid = None
    xfer: MtpTransfer | None = None
    unpack_tlv = _TLV.unpack_from
    while pos < end:
        if end - pos < 4:
            raise _err(
                pos,
                "trailing octets shorter than a parameter header",
                ErrorCode.PARAMETER_FIELD_ERROR,
            )
        tag, n = unpack_tlv(data, pos)
        if n < 4 or pos + n > end:
            raise _err(
                pos + 2,
                f"parameter 0x{tag:04x} length {n} does not fit",
                ErrorCode.PARAMETER_FIELD_ERROR,
            )
        if tag == _TAG_PD:
            if n < 16:
                raise _err(
                    pos + 4, "protocol data has no routing label", ErrorCode.PARAMETER_FIELD_ERROR
                )
            if xfer is not None:
                raise _err(pos, "PROTOCOL_DATA repeated", ErrorCode.UNEXPECTED_PARAMETER)
            opc, dpc, si, ni, mp, sls = _PD.unpack_from(data, pos + 4)
            xfer = MtpTransfer(opc, dpc, si, ni, mp, sls, data[pos + 16 : pos + n])
        elif tag == _TAG_RC or tag == _TAG_NA or tag == _TAG_CID:
            if n != 8:
                # DATA carries exactly one routing context (§3.3.1).
                raise _err(
                    pos + 4,
                    f"{Tag(tag).name} is {n - 4} octets, not 4",
                    ErrorCode.PARAMETER_FIELD_ERROR,
                )
            v = _U32.unpack_from(data, pos + 4)[0]
            if tag == _TAG_RC:
                dup = rc is not None
                rc = v
            elif tag == _TAG_NA:
                dup = na is not None
                na = v
            else:
                dup = cid is not None
                cid = v
            if dup:
                raise _err(pos, f"{Tag(tag).name} repeated", ErrorCode.UNEXPECTED_PARAMETER)
        elif tag in _KNOWN_TAGS:
            raise _err(pos, f"{Tag(tag).name} not defined in DATA", ErrorCode.UNEXPECTED_PARAMETER)
        pos = min(end, pos + n + (-n % 4))
    if xfer is None:
        raise _err(end, "DATA without PROTOCOL_DATA", ErrorCode.MISSING_PARAMETER)
    return Data(xfer, rc, na, cid)


_PD_TLV = struct.Struct("!HHIIBBBB")


def encode_data(
    xfer: MtpTransfer,
    rc: int | None = None,
    na: int | None = None,
    correlation_id: int | None = None,
) -> bytes:
    """Encode a DATA message for ``xfer`` with optional NA, RC and Correlation ID (§3.3.1)."""
    n = 16 + len(xfer.data)
    pad = -n % 4
    length = (
        8
        + n
        + pad
        + (8 if rc is not None else 0)
        + (8 if na is not None else 0)
        + (8 if correlation_id is not None else 0)
    )
    parts = [_HDR.pack(1, 0, 1, 1, length)]
    try:
        if na is not None:
            parts.append(_TLV.pack(_TAG_NA, 8) + _U32.pack(na))
        if rc is not None:
            parts.append(_TLV.pack(_TAG_RC, 8) + _U32.pack(rc))
        parts.append(
            _PD_TLV.pack(_TAG_PD, n, xfer.opc, xfer.dpc, xfer.si, xfer.ni, xfer.mp, xfer.sls)
        )
        parts.append(xfer.data)
        if pad:
            parts.append(b"\x00" * pad)
        if correlation_id is not None:
            parts.append(_TLV.pack(_TAG_CID, 8) + _U32.pack(correlation_id))
    except struct.error as e:
        raise EncodeError(LAYER, f"DATA field out of range: {e}") from None
    if n > 0xFFFF:
        raise EncodeError(LAYER, f"protocol data too long ({n} octets)")
    return b"".join(parts)
