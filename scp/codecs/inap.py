"""ETSI Core INAP CS-1 operation codecs: TCAP component parameters <-> the same ops values as CAP.

Spec: ETSI ETS 300 374-1 §6 (Core INAP CS-1: operations §6.1, errors §6.2, data types §6.3,
codes §6.4, application contexts §6.5), derived from ITU-T Q.1218. The ASN.1 is the project's
transcription compiled by pycrate (``scp.codecs.asn``), whose ``decode_value`` also drops
unknown SEQUENCE members as §4.6.2 asks.

INAP and CAMEL share component names and tags for the operations the service uses, so the
conversions of :mod:`scp.codecs.cap` apply unchanged, with these INAP differences:

* ReleaseCallArg is a bare Cause; SpecializedResourceReportArg a NULL.
* PlayAnnouncement's flag is ``requestAnnouncementComplete``.
* ApplyCharging / ApplyChargingReport carry network-specific octet strings in CS-1 (§6.3
  AChBillingChargingCharacteristics, CallResult): they stay ``GenericOperation`` values.
"""

from __future__ import annotations

from typing import Any

from scp.codecs import asn as _asn
from scp.codecs import ops
from scp.codecs.cap import (
    HOT,
    OperationCodec,
    _Enum,
    dec_ica,
    dec_received_info,
    enc_ica,
    enc_received_info,
    read_tlv,
    shared_typed,
)
from scp.codecs.errors import DecodeError
from scp.codecs.numbers import Cause

__all__ = [
    "decode_arg",
    "encode_arg",
    "decode_result",
    "encode_result",
    "decode_error",
    "encode_error",
    "OPCODES",
    "ERRORS",
]

OPCODES = dict(_asn.OPERATIONS)
ERRORS = dict(_asn.ERRORS)


class _InapCodec(OperationCodec):
    """OperationCodec over the compiled INAP module (its pruning decoder and canonical encoder)."""

    def ber_decode(self, t: Any, parameter: bytes) -> Any:
        return _asn.decode_value(t, parameter, layer="inap")

    def ber_encode(self, t: Any, value: Any) -> bytes:
        return _asn.encode_value(t, value, layer="inap")


def dec_release(c: OperationCodec, d: Any, v: int) -> ops.ReleaseCall:
    return ops.ReleaseCall(Cause.decode(d))


def enc_release(c: OperationCodec, o: ops.ReleaseCall, v: int) -> bytes:
    return o.cause.encode()


def _build() -> _InapCodec:
    args = {code: (name, _asn.inap_arg_type(code)) for code, name in OPCODES.items()}
    results = {
        code: (name, rt)
        for code, name in OPCODES.items()
        if (rt := _asn.inap_result_type(code)) is not None
    }
    errors = {code: (name, _asn.inap_error_type(code)) for code, name in ERRORS.items()}
    typed = shared_typed((dec_release, enc_release))
    # CS-1 charging octet strings are network specific: not interpreted (module docstring).
    del typed[35], typed[36]
    typed[32] = (ops.InitiateCallAttempt, dec_ica, enc_ica)
    t = _asn.inap_types()
    enums = {
        "EventTypeBCSM": _Enum(t.EventTypeBCSM._cont, ops.EventTypeBCSM, "inap"),
        "MonitorMode": _Enum(t.MonitorMode._cont, ops.MonitorMode, "inap"),
        "ErrorTreatment": _Enum(t.ErrorTreatment._cont, layer="inap"),
        "RequestedInformationType": _Enum(t.RequestedInformationType._cont, layer="inap"),
        "TimerID": _Enum(t.TimerID._cont, layer="inap"),
    }
    codec = _InapCodec(
        layer="inap",
        args=args,
        results=results,
        errors=errors,
        typed=typed,
        typed_results={48: (ops.ReceivedInformation, dec_received_info, enc_received_info)},
        enums=enums,
        version_of=lambda ac: 0,  # one version; 0 keeps CAP phase checks out of the way
    )
    codec.aliases["requestAnnouncementCompleteNotification"] = "requestAnnouncementComplete"
    codec.aliases["dpSpecificCriteria"] = "dPSpecificCriteria"
    # Hot operations through scp.codecs.fastber first (the same sets as CAP); INAP's encoder
    # leaves DEFAULT values out, so the fast path does too.
    codec.fast_decode = HOT
    codec.fast_encode = HOT
    codec.fast_results = frozenset((48,))
    codec.canon = True
    return codec


CODEC = _build()


def _foreign(ac: tuple[int, ...] | None) -> bool:
    return ac is not None and tuple(ac) not in _asn.APPLICATION_CONTEXTS


def decode_arg(
    opcode: int | tuple[int, ...], parameter: bytes | None, *, ac: tuple[int, ...] | None = None
) -> ops.Operation:
    """TC-INVOKE parameter (complete TLV) -> typed ops value or GenericOperation.

    Under a vendor application context (e.g. Ericsson INAP CS1+, 1.2.826.0.1249.51.x) the
    abstract syntax is not ETSI's: what does not decode as ETSI is kept as a lossless
    GenericOperation (BER framing still checked) instead of failing the dialogue.
    """
    try:
        return CODEC.decode_arg(opcode, parameter, ac)
    except DecodeError:
        if not _foreign(ac):
            raise
        if parameter is not None:
            read_tlv(parameter, 0, "inap")
        name = OPCODES.get(opcode, "unknown") if isinstance(opcode, int) else "unknown"
        return ops.GenericOperation(opcode, name, None, parameter)


def encode_arg(
    op: ops.Operation, *, ac: tuple[int, ...] | None = None
) -> tuple[int | tuple[int, ...], bytes | None]:
    """Typed ops value -> (opcode, parameter TLV or None)."""
    return CODEC.encode_arg(op, ac)


def decode_result(
    opcode: int | tuple[int, ...], parameter: bytes | None, *, ac: tuple[int, ...] | None = None
) -> ops.Operation:
    """TC-RESULT-L parameter -> ReceivedInformation / EmptyResult / GenericOperation."""
    return CODEC.decode_result(opcode, parameter, ac)


def encode_result(
    opcode: int | tuple[int, ...],
    result: ops.Operation | None,
    *,
    ac: tuple[int, ...] | None = None,
) -> bytes | None:
    """Result value -> parameter TLV (None: no parameter)."""
    return CODEC.encode_result(opcode, result, ac)


def decode_error(
    errcode: int | tuple[int, ...], parameter: bytes | None, *, ac: tuple[int, ...] | None = None
) -> ops.OperationError:
    """TC-U-ERROR -> OperationError with the ETS 300 374-1 §6.2 name."""
    return CODEC.decode_error(errcode, parameter, ac)  # type: ignore[return-value]


def encode_error(
    err: ops.OperationError, *, ac: tuple[int, ...] | None = None
) -> tuple[int | tuple[int, ...], bytes | None]:
    """OperationError -> (errcode, parameter TLV or None)."""
    return CODEC.encode_error(err, ac)
