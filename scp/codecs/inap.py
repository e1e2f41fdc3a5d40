"""ETSI Core INAP CS-1: the INAP operation codec (``CODEC``), giving the same ops values as CAP.

Spec: ETSI ETS 300 374-1 §6 (Core INAP CS-1: operations §6.1, errors §6.2, data types §6.3,
codes §6.4 as :class:`~scp.codecs.opcodes.InapOpcode`, application contexts §6.5), derived
from ITU-T Q.1218. The ASN.1 is the project's transcription compiled by pycrate
(``scp.codecs.asn``), whose ``decode_value`` also drops unknown SEQUENCE members as §4.6.2
asks.

INAP and CAMEL share component names and tags for the operations the service uses, so the
conversions of :mod:`scp.codecs.callcontrol` apply unchanged, with these INAP differences:

* ReleaseCallArg is a bare Cause; SpecializedResourceReportArg a NULL.
* CallGap's gapCriteria is the CS-1 CHOICE itself (CAP nests it under basicGapCriteria).
* PlayAnnouncement's flag is ``requestAnnouncementComplete``.
* ApplyCharging / ApplyChargingReport carry network-specific octet strings in CS-1 (§6.3
  AChBillingChargingCharacteristics, CallResult): they stay ``GenericOperation`` values.
* Under a vendor application context (e.g. Ericsson INAP CS1+, 1.2.826.0.1249.51.x) the
  abstract syntax is not ETSI's: an argument that does not decode as ETSI is kept as a
  lossless GenericOperation (BER framing still checked) instead of failing the dialogue.
"""

from __future__ import annotations

from typing import Any

from scp.codecs import asn as _asn
from scp.codecs import ops
from scp.codecs.callcontrol import (
    HOT,
    HOT_RESULTS,
    RESULT_CONVERSIONS,
    call_gap_conversion,
    shared_conversions,
)
from scp.codecs.errors import DecodeError
from scp.codecs.numbers import Cause
from scp.codecs.opcodec import Conversion, Enumerated, OperationCodec
from scp.codecs.opcodes import InapErrorCode, InapOpcode, spec_names
from scp.primitives import Opcode

__all__ = ["CODEC", "InapCodec"]


class InapCodec(OperationCodec):
    """OperationCodec over the compiled INAP module (its pruning decoder and canonical
    encoder), lenient with arguments under a vendor application context."""

    def ber_decode(self, t: Any, parameter: bytes) -> Any:
        return _asn.decode_value(t, parameter, layer=self.layer)

    def ber_encode(self, t: Any, value: Any) -> bytes:
        return _asn.encode_value(t, value, layer=self.layer)

    def decode_arg(
        self, opcode: Opcode, parameter: bytes | None, *, ac: tuple[int, ...] | None = None
    ) -> ops.Operation:
        try:
            return super().decode_arg(opcode, parameter, ac=ac)
        except DecodeError:
            if ac is None or tuple(ac) in _asn.APPLICATION_CONTEXTS:
                raise
            if parameter is not None:
                self.check_tlv(parameter)
            name = self.opcode_names.get(opcode, "unknown") if isinstance(opcode, int) else None
            return ops.GenericOperation(opcode, name or "unknown", None, parameter)


def dec_release(c: OperationCodec, d: Any, v: int) -> ops.ReleaseCall:
    return ops.ReleaseCall(Cause.decode(d))


def enc_release(c: OperationCodec, o: ops.ReleaseCall, v: int) -> bytes:
    return o.cause.encode()


def _build() -> InapCodec:
    names = spec_names(InapOpcode)
    args = {code: (name, _asn.inap_arg_type(code)) for code, name in names.items()}
    results = {
        code: (name, rt)
        for code, name in names.items()
        if (rt := _asn.inap_result_type(code)) is not None
    }
    errors = {
        code: (name, _asn.inap_error_type(code)) for code, name in spec_names(InapErrorCode).items()
    }
    t = _asn.inap_types()
    enums = {
        "EventTypeBCSM": Enumerated(t.EventTypeBCSM._cont, ops.EventTypeBCSM, "inap"),
        "MonitorMode": Enumerated(t.MonitorMode._cont, ops.MonitorMode, "inap"),
        "ErrorTreatment": Enumerated(t.ErrorTreatment._cont, layer="inap"),
        "RequestedInformationType": Enumerated(t.RequestedInformationType._cont, layer="inap"),
        "TimerID": Enumerated(t.TimerID._cont, layer="inap"),
    }
    return InapCodec(
        "inap",
        args=args,
        results=results,
        errors=errors,
        # CS-1 charging octet strings are network specific: not interpreted (docstring).
        typed={
            **shared_conversions(Conversion(ops.ReleaseCall, dec_release, enc_release)),
            InapOpcode.CALL_GAP: call_gap_conversion(basic=False),
        },
        typed_results=RESULT_CONVERSIONS,
        enums=enums,
        version_of=lambda ac: 0,  # one version; 0 keeps CAP phase checks out of the way
        opcode_names=names,
        error_names=spec_names(InapErrorCode),
        # The hot operations through scp.codecs.fastber first, as for CAP; INAP's encoder
        # leaves DEFAULT values out, so the fast path does too.
        fast_decode=HOT,
        fast_encode=HOT,
        fast_results=HOT_RESULTS,
        canon=True,
        aliases={
            "requestAnnouncementCompleteNotification": "requestAnnouncementComplete",
            "dpSpecificCriteria": "dPSpecificCriteria",
        },
    )


CODEC = _build()
"""The INAP CS-1 codec: ``CODEC.decode_arg(opcode, parameter, ac=...)`` and the other five."""
