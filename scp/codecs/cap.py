"""CAMEL Application Part codecs, phases 2, 3 and 4: TCAP component parameters <-> ops values.

Spec: 3GPP TS 29.078 §6 (operations: gsmSSF/gsmSCF §6.1.2, gsmSCF/gsmSRF §6.2, assist §6.1.2.x),
§7 (ASN.1 data types, error types §7.7, operation codes §8) and TS 29.078 Annex (phase 2 =
CAP v2, 0.4.0.0.1.0.50.1). The ASN.1 is pycrate's compiled CAP v4 (``pycrate_asn1dir.TCAP_CAP``):
v4 is a BER superset of v2/v3 (extension markers), except where the earlier phases differ on
the wire, handled here by application context:

* SpecializedResourceReportArg is a NULL in v2/v3, a CHOICE of two tagged NULLs in v4.
* CAMEL-AChBillingChargingCharacteristics: releaseIfdurationExceeded is a SEQUENCE {tone} in
  v2, a BOOLEAN in v3/v4; the warning tone is ``tone [3] BOOLEAN`` in v3 and
  ``audibleIndicator [3] CHOICE`` in v4. This octet string is coded by hand (TS 29.078 §7.6).

TCAP hands us ``parameter`` as the complete BER TLV of the argument; we hand back the same.
:class:`OperationCodec` is the machinery, shared with ``inap.py`` because CAMEL keeps INAP's
component names and tags. Nothing from pycrate escapes: bad input raises ``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pycrate_asn1dir import TCAP_CAP as _T

from scp.codecs import fastber, ops
from scp.codecs.errors import CodecError, DecodeError, EncodeError
from scp.codecs.fast_cap import dec_acr_fast
from scp.codecs.numbers import (
    AddressString,
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
    GenericNumber,
    RedirectingNumber,
    TimeAndTimezone,
    decode_tbcd,
    encode_tbcd,
)

__all__ = [
    "decode_arg",
    "encode_arg",
    "decode_result",
    "encode_result",
    "decode_error",
    "encode_error",
    "OperationCodec",
    "cap_version",
    "OPCODES",
    "ERRORS",
]

# --------------------------------------------------------------------------------------------
# Minimal BER helpers: framing checks and the hand-coded CAMEL octet strings
# --------------------------------------------------------------------------------------------


def read_tlv(buf: bytes, off: int, layer: str, _depth: int = 0) -> tuple[int, int, int, int]:
    """(tag octet, value start, value end, TLV end) of the TLV at ``off``.

    Definite and (constructed) indefinite lengths, X.690 §8.1.3; multi-octet tags are
    skipped over and reported by their first octet, enough for the framing checks done here.
    """
    n = len(buf)
    if off >= n:
        raise DecodeError(layer, off, "truncated: tag expected")
    if _depth > 32:
        raise DecodeError(layer, off, "nested too deep")
    tag = buf[off]
    i = off + 1
    if tag & 0x1F == 0x1F:
        while True:
            if i >= n:
                raise DecodeError(layer, i, "truncated tag")
            b = buf[i]
            i += 1
            if not b & 0x80:
                break
    if i >= n:
        raise DecodeError(layer, i, "truncated: length expected")
    ln = buf[i]
    i += 1
    if ln == 0x80:
        # Indefinite length (X.690 §8.1.3.6), constructed only: walk to end-of-contents.
        if not tag & 0x20:
            raise DecodeError(layer, i - 1, "indefinite length on a primitive")
        j = i
        while True:
            if j + 2 > n:
                raise DecodeError(layer, j, "end-of-contents missing")
            if buf[j] == 0 and buf[j + 1] == 0:
                return tag, i, j, j + 2
            j = read_tlv(buf, j, layer, _depth + 1)[3]
    if ln & 0x80:
        k = ln & 0x7F
        if k > 4 or i + k > n:
            raise DecodeError(layer, i - 1, "bad long-form length")
        ln = int.from_bytes(buf[i : i + k], "big")
        i += k
    end = i + ln
    if end > n:
        raise DecodeError(layer, i, f"length {ln} runs past the end ({n - i} octets left)")
    return tag, i, end, end


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(ln))) + ln + value


def _int_bytes(v: int) -> bytes:
    return v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)


# --------------------------------------------------------------------------------------------
# Small value converters (pycrate value notation <-> numbers / ops)
# --------------------------------------------------------------------------------------------


def _opt(d: Mapping[str, Any], key: str, conv: Callable[[Any], Any]) -> Any:
    v = d.get(key)
    return None if v is None else conv(v)


def _put(d: dict[str, Any], key: str, v: Any, conv: Callable[[Any], Any] | None = None) -> None:
    if v is not None:
        d[key] = conv(v) if conv is not None else v


def _rest(d: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    if len(d) <= 4 and all(k in known for k in d):  # the common case: nothing left over
        return {}
    ks = known if isinstance(known, frozenset) else frozenset(known)
    return {k: v for k, v in d.items() if k not in ks}


def _leg_from(v: tuple[str, bytes]) -> ops.LegID:
    name, octets = v
    if len(octets) != 1:
        raise DecodeError("cap", 0, f"LegType is one octet, got {len(octets)}")
    return ops.LegID(octets[0], sending=name == "sendingSideID")


def _leg_to(leg: ops.LegID) -> tuple[str, bytes]:
    return ("sendingSideID" if leg.sending else "receivingSideID", bytes((leg.leg,)))


class _Enum:
    """Name <-> int for one ASN.1 ENUMERATED type, read from the compiled schema."""

    __slots__ = ("to_int", "to_name", "_dec", "layer")

    def __init__(
        self,
        cont: Mapping[str, int],
        cast: Callable[[int], int] | None = None,
        layer: str = "cap",
    ) -> None:
        self.layer = layer
        self.to_int = dict(cont.items())
        self.to_name = {v: k for k, v in self.to_int.items()}
        dec: dict[str, int] = {}
        for name, v in self.to_int.items():
            try:
                dec[name] = cast(v) if cast is not None else v
            except ValueError:
                dec[name] = v
        self._dec = dec

    def dec(self, name: str) -> int:
        return self._dec[name]

    def enc(self, v: int) -> str:
        try:
            return self.to_name[int(v)]
        except KeyError:
            raise EncodeError(
                "cap", f"enumerated value {v} not in {sorted(self.to_name)}"
            ) from None


def _comp(t: Any, *path: str) -> Any:
    for p in path:
        if t.TYPE in ("SEQUENCE OF", "SET OF"):
            t = t._cont
        t = t._cont[p]
    return t


# --------------------------------------------------------------------------------------------
# The codec machinery
# --------------------------------------------------------------------------------------------

Decoder = Callable[["OperationCodec", Any, int], ops.Operation]
Encoder = Callable[["OperationCodec", Any, int], Any]


class OperationCodec:
    """Opcode-keyed BER codec for one IN protocol, turning values into ``ops`` dataclasses.

    ``args``/``results``: opcode -> (name, pycrate type or None for "no parameter").
    ``errors``: errcode -> (name, parameter type or None). ``typed``: opcode -> (ops class,
    decoder, encoder); decoder(codec, value, version) and encoder(codec, op, version).
    """

    def __init__(
        self,
        layer: str,
        args: Mapping[int, tuple[str, Any]],
        results: Mapping[int, tuple[str, Any]],
        errors: Mapping[int, tuple[str, Any]],
        typed: Mapping[int, tuple[type, Decoder, Encoder]],
        typed_results: Mapping[int, tuple[type, Decoder, Encoder]],
        enums: Mapping[str, _Enum],
        version_of: Callable[[tuple[int, ...] | None], int],
    ) -> None:
        self.layer = layer
        self.args = dict(args)
        self.results = dict(results)
        self.errors = dict(errors)
        self.typed = dict(typed)
        self.typed_results = dict(typed_results)
        self.by_class = {cls: (code, enc) for code, (cls, _d, enc) in self.typed.items()}
        self.res_by_class = {
            cls: (code, enc) for code, (cls, _d, enc) in self.typed_results.items()
        }
        self.enums = dict(enums)
        self.version_of = version_of
        self.aliases: dict[str, str] = {}
        # Hand-written BER fast path (scp.codecs.fastber) for the hot operations: opcodes
        # whose argument / result is tried there first; it declines to pycrate on anything
        # unusual. ``canon``: this codec leaves DEFAULT values out (X.690 §11.5) like
        # its ber_encode does.
        self.fast_decode: frozenset[int] = frozenset()
        self.fast_encode: frozenset[int] = frozenset()
        self.fast_results: frozenset[int] = frozenset()
        self.canon = False
        # opcode -> hand-written typed conversion tried before the general one (it returns
        # fastber.DECLINE when unsure), e.g. ApplyChargingReport's CAMEL-CallResult.
        self.fast_convert: dict[int, Callable[[Any, int], Any]] = {}

    def default(self, opcode: int, component: str, fallback: Any) -> Any:
        """The ASN.1 DEFAULT of a component of ``opcode``'s argument (``fallback`` if none)."""
        try:
            d = self.args[opcode][1]._cont[component]._def
        except (KeyError, AttributeError, TypeError):
            return fallback
        return fallback if d is None else d

    def name(self, cap_name: str) -> str:
        """This protocol's spelling of a CAP component name (INAP differs in a few)."""
        return self.aliases.get(cap_name, cap_name)

    # ---- BER with pycrate ------------------------------------------------------------------

    def ber_decode(self, t: Any, parameter: bytes) -> Any:
        end = read_tlv(parameter, 0, self.layer)[3]
        if end != len(parameter):
            raise DecodeError(self.layer, end, f"{len(parameter) - end} octets after the parameter")
        try:
            t.from_ber(parameter)
            return t.get_val()
        except CodecError:
            raise
        except Exception as exc:  # pycrate raises many types; none may leave scp/codecs
            raise DecodeError(self.layer, 0, f"{t._name}: {exc}") from None

    def ber_encode(self, t: Any, value: Any) -> bytes:
        try:
            t.set_val(value)
            return bytes(t.to_ber())
        except CodecError:
            raise
        except Exception as exc:
            raise EncodeError(self.layer, f"{t._name}: {exc}") from None

    def fast_or_ber_decode(self, t: Any, parameter: bytes) -> Any:
        """``ber_decode`` through the fast path first (same value, or it declines)."""
        if fastber.ENABLED:
            value = fastber.decode(t, parameter, self.canon)
            if value is not fastber.DECLINE:
                return value
        return self.ber_decode(t, parameter)

    def fast_or_ber_encode(self, t: Any, value: Any) -> bytes:
        """``ber_encode`` through the fast path first (same octets, or it declines)."""
        if fastber.ENABLED:
            out = fastber.encode(t, value, self.canon)
            if out is not fastber.DECLINE:
                return out  # type: ignore[return-value]
        return self.ber_encode(t, value)

    # ---- operations ------------------------------------------------------------------------

    def _convert(self, dec: Decoder, value: Any, version: int, what: str) -> ops.Operation:
        """Run a typed decoder; anything it trips over becomes this layer's DecodeError."""
        try:
            return dec(self, value, version)
        except DecodeError as exc:
            if exc.layer == self.layer:
                raise
            raise DecodeError(self.layer, 0, f"{what}: {exc}") from None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise DecodeError(self.layer, 0, f"{what}: {exc!r}") from None

    def _run_encoder(self, enc: Encoder, op: ops.Operation, version: int) -> Any:
        """Run a typed encoder; a value of the wrong shape becomes this layer's EncodeError."""
        try:
            return enc(self, op, version)
        except CodecError:
            raise
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise EncodeError(self.layer, f"{type(op).__name__}: {exc!r}") from None

    def decode_arg(
        self, opcode: int | tuple[int, ...], parameter: bytes | None, ac: tuple[int, ...] | None
    ) -> ops.Operation:
        version = self.version_of(ac)
        entry = self.args.get(opcode) if isinstance(opcode, int) else None
        if entry is None:
            return ops.GenericOperation(opcode, "unknown", None, parameter)
        name, t = entry
        typed = self.typed.get(opcode)  # type: ignore[arg-type]
        if typed is None:
            # Not ours to interpret: keep it lossless; a schema violation in an operation we
            # never act on is logged by the caller, not fatal (real networks send such things).
            if parameter is None or t is None:
                return ops.GenericOperation(opcode, name, None, parameter)
            try:
                if opcode in self.fast_decode:
                    value = self.fast_or_ber_decode(t, parameter)
                else:
                    value = self.ber_decode(t, parameter)
            except DecodeError:
                read_tlv(parameter, 0, self.layer)  # framing must still hold
                value = None
            return ops.GenericOperation(opcode, name, value, parameter)
        if t is None:
            if parameter is not None:
                raise DecodeError(self.layer, 0, f"{name} takes no argument")
            return self._convert(typed[1], None, version, name)
        if parameter is None:
            # SpecializedResourceReport may come without its NULL; others need an argument.
            if typed[0] is ops.SpecializedResourceReport:
                return ops.SpecializedResourceReport()
            raise DecodeError(self.layer, 0, f"{name}: argument missing")
        if typed[0] in _RAW_DECODED:
            return self._convert(typed[1], parameter, version, name)
        if opcode in self.fast_decode:
            value = self.fast_or_ber_decode(t, parameter)
            conv = self.fast_convert.get(opcode)  # type: ignore[arg-type]
            if conv is not None and fastber.ENABLED:
                try:
                    op = conv(value, version)
                except (IndexError, KeyError, TypeError, ValueError):
                    op = fastber.DECLINE  # the general conversion below says what is wrong
                if op is not fastber.DECLINE:
                    return op  # type: ignore[no-any-return]
        else:
            value = self.ber_decode(t, parameter)
        return self._convert(typed[1], value, version, name)

    def encode_arg(
        self, op: ops.Operation, ac: tuple[int, ...] | None
    ) -> tuple[int | tuple[int, ...], bytes | None]:
        version = self.version_of(ac)
        if isinstance(op, ops.GenericOperation):
            if op.parameter is not None or op.value is None:
                return op.opcode, op.parameter
            entry = self.args.get(op.opcode) if isinstance(op.opcode, int) else None
            if entry is None or entry[1] is None:
                raise EncodeError(self.layer, f"cannot encode a value for opcode {op.opcode}")
            return op.opcode, self.ber_encode(entry[1], op.value)
        hit = self.by_class.get(type(op))
        if hit is None:
            raise EncodeError(self.layer, f"{type(op).__name__} is not a {self.layer} operation")
        code, enc = hit
        value = self._run_encoder(enc, op, version)
        if isinstance(value, _Raw):
            return code, value.data
        t = self.args[code][1]
        if t is None:
            return code, None
        if code in self.fast_encode:
            return code, self.fast_or_ber_encode(t, value)
        return code, self.ber_encode(t, value)

    def decode_result(
        self, opcode: int | tuple[int, ...], parameter: bytes | None, ac: tuple[int, ...] | None
    ) -> ops.Operation:
        version = self.version_of(ac)
        entry = self.results.get(opcode) if isinstance(opcode, int) else None
        if parameter is None:
            return ops.EmptyResult()
        if entry is None or entry[1] is None:
            return ops.GenericOperation(
                opcode, "unknown" if entry is None else entry[0], None, parameter
            )
        name, t = entry
        typed = self.typed_results.get(opcode)  # type: ignore[arg-type]
        if typed is None:
            try:
                value = self.ber_decode(t, parameter)
            except DecodeError:
                read_tlv(parameter, 0, self.layer)
                value = None
            return ops.GenericOperation(opcode, name, value, parameter)
        if opcode in self.fast_results:
            value = self.fast_or_ber_decode(t, parameter)
        else:
            value = self.ber_decode(t, parameter)
        return self._convert(typed[1], value, version, name)

    def encode_result(
        self,
        opcode: int | tuple[int, ...],
        result: ops.Operation | None,
        ac: tuple[int, ...] | None,
    ) -> bytes | None:
        version = self.version_of(ac)
        if result is None or isinstance(result, ops.EmptyResult):
            entry = self.results.get(opcode) if isinstance(opcode, int) else None
            if entry is None or entry[1] is None:
                return None  # RESULT without a type (ActivityTest, AlertServiceCentre v2)
            if entry[1].TYPE == "SEQUENCE":
                # A RESULT type is not optional in ROS: an all-OPTIONAL SEQUENCE goes as 30 00
                # (e.g. NoteMM-EventRes, ReadyForSM-Res, TS 29.002 §17.6).
                return self.ber_encode(entry[1], {})
            raise EncodeError(self.layer, f"{entry[0]} needs a result value")
        if isinstance(result, ops.GenericOperation):
            if result.parameter is not None or result.value is None:
                return result.parameter
            entry = self.results.get(opcode) if isinstance(opcode, int) else None
            if entry is None or entry[1] is None:
                raise EncodeError(self.layer, f"no result type for opcode {opcode}")
            return self.ber_encode(entry[1], result.value)
        hit = self.res_by_class.get(type(result))
        if hit is None:
            raise EncodeError(self.layer, f"{type(result).__name__} is not a {self.layer} result")
        code, enc = hit
        value = self._run_encoder(enc, result, version)
        if code in self.fast_results:
            return self.fast_or_ber_encode(self.results[code][1], value)
        return self.ber_encode(self.results[code][1], value)

    def decode_error(
        self, errcode: int | tuple[int, ...], parameter: bytes | None, ac: tuple[int, ...] | None
    ) -> ops.Operation:
        entry = self.errors.get(errcode) if isinstance(errcode, int) else None
        if entry is None:
            return ops.OperationError(errcode, "unknown", parameter)
        name, t = entry
        if parameter is None:
            return ops.OperationError(errcode, name, None)
        if t is None:
            raise DecodeError(self.layer, 0, f"error {name} takes no parameter")
        try:
            value = self.ber_decode(t, parameter)
        except DecodeError:
            # Peers do send e.g. a bare ENUMERATED where a SEQUENCE is due: keep the octets.
            read_tlv(parameter, 0, self.layer)
            return ops.OperationError(errcode, name, parameter)
        if t.TYPE == "ENUMERATED":
            value = t._cont[value]
        return ops.OperationError(errcode, name, value)

    def encode_error(
        self, err: ops.OperationError, ac: tuple[int, ...] | None
    ) -> tuple[int | tuple[int, ...], bytes | None]:
        entry = self.errors.get(err.code) if isinstance(err.code, int) else None
        if err.parameter is None:
            return err.code, None
        if entry is None or entry[1] is None:
            if isinstance(err.parameter, bytes):
                return err.code, err.parameter
            raise EncodeError(self.layer, f"error {err.code} has no parameter type")
        t = entry[1]
        value = err.parameter
        if t.TYPE == "ENUMERATED" and isinstance(value, int):
            names = {v: k for k, v in t._cont.items()}
            if value not in names:
                raise EncodeError(self.layer, f"{entry[0]}: value {value} not enumerated")
            value = names[value]
        return err.code, self.ber_encode(t, value)


_RAW_DECODED = (ops.SpecializedResourceReport, ops.ApplyCharging)


class _Raw:
    """An encoder's already-encoded parameter TLV (for hand-coded arguments)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


# --------------------------------------------------------------------------------------------
# Typed conversions, shared by CAP and INAP (same component names, Q.1218 heritage)
# --------------------------------------------------------------------------------------------


def _cpn(b: bytes) -> CalledPartyNumber:
    return CalledPartyNumber.decode(b)


def _enc(x: Any) -> bytes:
    return x.encode()  # type: ignore[no-any-return]


_IDP_KNOWN = frozenset(
    (
        "serviceKey",
        "calledPartyNumber",
        "callingPartyNumber",
        "callingPartysCategory",
        "locationNumber",
        "originalCalledPartyID",
        "eventTypeBCSM",
        "redirectingPartyID",
        "redirectionInformation",
        "iMSI",
        "callReferenceNumber",
        "mscAddress",
        "calledPartyBCDNumber",
        "timeAndTimezone",
        "cause",
        "dialledDigits",
    )
)


def dec_initial_dp(c: OperationCodec, d: Any, v: int) -> ops.InitialDP:
    g = d.get
    cat = g("callingPartysCategory")
    et = g("eventTypeBCSM")
    x = g("calledPartyNumber")
    called = None if x is None else CalledPartyNumber.decode(x)
    x = g("callingPartyNumber")
    calling = None if x is None else CallingPartyNumber.decode(x)
    x = g("iMSI")
    imsi = None if x is None else decode_tbcd(x)
    return ops.InitialDP(
        service_key=d["serviceKey"],
        called_party_number=called,
        calling_party_number=calling,
        calling_partys_category=None if cat is None else (cat[0] if cat else 0),
        location_number=_opt(d, "locationNumber", CallingPartyNumber.decode),
        original_called_party_id=_opt(d, "originalCalledPartyID", RedirectingNumber.decode),
        event_type_bcsm=None if et is None else c.enums["EventTypeBCSM"].dec(et),
        redirecting_party_id=_opt(d, "redirectingPartyID", RedirectingNumber.decode),
        redirection_information=g("redirectionInformation"),
        imsi=imsi,
        call_reference_number=g("callReferenceNumber"),
        msc_address=_opt(d, "mscAddress", AddressString.decode),
        called_party_bcd_number=_opt(d, "calledPartyBCDNumber", AddressString.decode),
        time_and_timezone=_opt(d, "timeAndTimezone", TimeAndTimezone.decode),
        cause=_opt(d, "cause", Cause.decode),
        dialled_digits=_opt(d, "dialledDigits", _cpn),
        extra=_rest(d, _IDP_KNOWN),
    )


def enc_initial_dp(c: OperationCodec, o: ops.InitialDP, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {"serviceKey": o.service_key}
    _put(d, "dialledDigits", o.dialled_digits, _enc)
    _put(d, "calledPartyNumber", o.called_party_number, _enc)
    _put(d, "callingPartyNumber", o.calling_party_number, _enc)
    _put(d, "callingPartysCategory", o.calling_partys_category, lambda x: bytes((x,)))
    _put(d, "locationNumber", o.location_number, _enc)
    _put(d, "originalCalledPartyID", o.original_called_party_id, _enc)
    _put(d, "eventTypeBCSM", o.event_type_bcsm, c.enums["EventTypeBCSM"].enc)
    _put(d, "redirectingPartyID", o.redirecting_party_id, _enc)
    _put(d, "redirectionInformation", o.redirection_information)
    _put(d, "iMSI", o.imsi, encode_tbcd)
    _put(d, "callReferenceNumber", o.call_reference_number)
    _put(d, "mscAddress", o.msc_address, _enc)
    _put(d, "calledPartyBCDNumber", o.called_party_bcd_number, _enc)
    _put(d, "timeAndTimezone", o.time_and_timezone, _enc)
    _put(d, "cause", o.cause, _enc)
    d.update(o.extra)
    return d


# The cause component name follows the CHOICE alternative (Q.1218 / TS 29.078 §7.6).
_CAUSE_KEY_OF = {
    "routeSelectFailureSpecificInfo": "failureCause",
    "oCalledPartyBusySpecificInfo": "busyCause",
    "tBusySpecificInfo": "busyCause",
    "tCalledPartyBusySpecificInfo": "busyCause",
    "oDisconnectSpecificInfo": "releaseCause",
    "tDisconnectSpecificInfo": "releaseCause",
}


def dec_event_report(c: OperationCodec, d: Any, v: int) -> ops.EventReportBCSM:
    info = None
    esi = d.get("eventSpecificInformationBCSM")
    if esi is not None:
        kind, body = esi
        cause = None
        rest: dict[str, Any] = {}
        ckey = _CAUSE_KEY_OF.get(kind)
        if isinstance(body, dict):
            for k, val in body.items():
                if k == ckey:
                    cause = Cause.decode(val)
                else:
                    rest[k] = val
        else:
            rest = {"": body}
        info = ops.EventSpecificInfo(kind, cause, rest)
    misc = d.get("miscCallInfo")
    rest_d = _rest(d, ("eventTypeBCSM", "eventSpecificInformationBCSM", "legID", "miscCallInfo"))
    if misc is not None and len(misc) > 1:
        rest_d["miscCallInfo"] = misc
    return ops.EventReportBCSM(
        event_type_bcsm=c.enums["EventTypeBCSM"].dec(d["eventTypeBCSM"]),
        event_specific_information=info,
        leg_id=_opt(d, "legID", _leg_from),
        # MiscCallInfo DEFAULT {messageType request} (TS 29.078 §6.1.2.x, Q.1218 §6.3)
        message_type=0 if misc is None or misc.get("messageType") == "request" else 1,
        extra=rest_d,
    )


def enc_event_report(c: OperationCodec, o: ops.EventReportBCSM, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {"eventTypeBCSM": c.enums["EventTypeBCSM"].enc(o.event_type_bcsm)}
    i = o.event_specific_information
    if i is not None:
        extra = dict(i.extra)
        if "" in extra:
            d["eventSpecificInformationBCSM"] = (i.kind, extra[""])
        else:
            body: dict[str, Any] = {}
            if i.cause is not None:
                key = _CAUSE_KEY_OF.get(i.kind)
                if key is None:
                    raise EncodeError(c.layer, f"{i.kind} carries no cause")
                body[key] = i.cause.encode()
            body.update(extra)
            d["eventSpecificInformationBCSM"] = (i.kind, body)
    _put(d, "legID", o.leg_id, _leg_to)
    extra_d = dict(o.extra)
    if "miscCallInfo" not in extra_d:
        extra_d["miscCallInfo"] = {
            "messageType": "request" if o.message_type == 0 else "notification"
        }
    d.update(extra_d)
    return d


def dec_rrbe(c: OperationCodec, d: Any, v: int) -> ops.RequestReportBCSMEvent:
    evs = []
    et, mm = c.enums["EventTypeBCSM"], c.enums["MonitorMode"]
    for e in d["bcsmEvents"]:
        dpsc = c.name("dpSpecificCriteria")
        crit = e.get(dpsc)
        rest = _rest(e, ("eventTypeBCSM", "monitorMode", "legID", "automaticRearm"))
        timer = None
        if crit is not None and crit[0] == "applicationTimer":
            timer = crit[1]
            del rest[dpsc]
        evs.append(
            ops.BCSMEvent(
                event_type_bcsm=et.dec(e["eventTypeBCSM"]),
                monitor_mode=mm.dec(e["monitorMode"]),
                leg_id=_opt(e, "legID", _leg_from),
                application_timer=timer,
                automatic_rearm="automaticRearm" in e,
                extra=rest,
            )
        )
    return ops.RequestReportBCSMEvent(tuple(evs), _rest(d, ("bcsmEvents",)))


def enc_rrbe(c: OperationCodec, o: ops.RequestReportBCSMEvent, v: int) -> dict[str, Any]:
    et, mm = c.enums["EventTypeBCSM"], c.enums["MonitorMode"]
    evs = []
    for e in o.bcsm_events:
        x: dict[str, Any] = {
            "eventTypeBCSM": et.enc(e.event_type_bcsm),
            "monitorMode": mm.enc(e.monitor_mode),
        }
        _put(x, "legID", e.leg_id, _leg_to)
        if e.application_timer is not None:
            x[c.name("dpSpecificCriteria")] = ("applicationTimer", e.application_timer)
        if e.automatic_rearm:
            x["automaticRearm"] = 0
        x.update(e.extra)
        evs.append(x)
    d: dict[str, Any] = {"bcsmEvents": evs}
    d.update(o.extra)
    return d


def _no_arg(cls: type) -> tuple[Decoder, Encoder]:
    return (lambda c, d, v: cls()), (lambda c, o, v: None)


def dec_cwa(c: OperationCodec, d: Any, v: int) -> ops.ContinueWithArgument:
    return ops.ContinueWithArgument(
        alerting_pattern=d.get("alertingPattern"),
        generic_numbers=tuple(GenericNumber.decode(b) for b in d.get("genericNumbers", ())),
        extra=_rest(d, ("alertingPattern", "genericNumbers")),
    )


def enc_cwa(c: OperationCodec, o: ops.ContinueWithArgument, v: int) -> dict[str, Any]:
    if v and v < 3:
        raise EncodeError(c.layer, "ContinueWithArgument needs CAP v3 or later")
    d: dict[str, Any] = {}
    _put(d, "alertingPattern", o.alerting_pattern)
    if o.generic_numbers:
        d["genericNumbers"] = [g.encode() for g in o.generic_numbers]
    d.update(o.extra)
    return d


_CONNECT_KNOWN = (
    "destinationRoutingAddress",
    "originalCalledPartyID",
    "redirectingPartyID",
    "redirectionInformation",
    "callingPartysCategory",
    "genericNumbers",
    "suppressionOfAnnouncement",
    "oCSIApplicable",
)


def dec_connect(c: OperationCodec, d: Any, v: int) -> ops.Connect:
    return ops.Connect(
        destination_routing_address=tuple(_cpn(b) for b in d["destinationRoutingAddress"]),
        original_called_party_id=_opt(d, "originalCalledPartyID", RedirectingNumber.decode),
        redirecting_party_id=_opt(d, "redirectingPartyID", RedirectingNumber.decode),
        redirection_information=d.get("redirectionInformation"),
        calling_partys_category=_opt(d, "callingPartysCategory", lambda b: b[0] if b else 0),
        generic_numbers=tuple(GenericNumber.decode(b) for b in d.get("genericNumbers", ())),
        suppression_of_announcement="suppressionOfAnnouncement" in d,
        ocsi_applicable="oCSIApplicable" in d,
        extra=_rest(d, _CONNECT_KNOWN),
    )


def enc_connect(c: OperationCodec, o: ops.Connect, v: int) -> dict[str, Any]:
    if not o.destination_routing_address:
        raise EncodeError(c.layer, "Connect needs a destinationRoutingAddress")
    d: dict[str, Any] = {
        "destinationRoutingAddress": [a.encode() for a in o.destination_routing_address]
    }
    _put(d, "originalCalledPartyID", o.original_called_party_id, _enc)
    _put(d, "redirectingPartyID", o.redirecting_party_id, _enc)
    _put(d, "redirectionInformation", o.redirection_information)
    _put(d, "callingPartysCategory", o.calling_partys_category, lambda x: bytes((x,)))
    if o.generic_numbers:
        d["genericNumbers"] = [g.encode() for g in o.generic_numbers]
    if o.suppression_of_announcement:
        d["suppressionOfAnnouncement"] = 0
    if o.ocsi_applicable:
        d["oCSIApplicable"] = 0
    d.update(o.extra)
    return d


def dec_release_cap(c: OperationCodec, d: Any, v: int) -> ops.ReleaseCall:
    name, body = d
    if isinstance(body, dict):  # v4 allCallSegmentsWithExtension
        return ops.ReleaseCall(
            Cause.decode(body["allCallSegments"]),
            {"__alt": name, **_rest(body, ("allCallSegments",))},
        )
    return ops.ReleaseCall(Cause.decode(body))


def enc_release_cap(c: OperationCodec, o: ops.ReleaseCall, v: int) -> Any:
    extra = dict(o.extra)
    alt = extra.pop("__alt", None)
    if alt is not None:
        return (alt, {"allCallSegments": o.cause.encode(), **extra})
    return ("allCallSegments", o.cause.encode())


def dec_ctr(c: OperationCodec, d: Any, v: int) -> ops.ConnectToResource:
    name, addr = d["resourceAddress"]
    return ops.ConnectToResource(
        ip_routing_address=_cpn(addr) if name == "ipRoutingAddress" else None,
        extra=_rest(d, ("resourceAddress",))
        | (
            {"resourceAddress": d["resourceAddress"]}
            if name not in ("ipRoutingAddress", "none")
            else {}
        ),
    )


def enc_ctr(c: OperationCodec, o: ops.ConnectToResource, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {
        "resourceAddress": ("ipRoutingAddress", o.ip_routing_address.encode())
        if o.ip_routing_address is not None
        else ("none", 0)
    }
    d.update(o.extra)
    return d


def _routing_addr(b: bytes) -> GenericNumber | CalledPartyNumber:
    # TS 29.078 §7.6 codes AssistingSSPIPRoutingAddress as a Generic Number; Q.1218 Digits
    # in INAP are often a called-party-number layout. A generic number has the qualifier first.
    if len(b) >= 3 and b[0] in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A):
        return GenericNumber.decode(b)
    return CalledPartyNumber.decode(b)


def dec_etc(c: OperationCodec, d: Any, v: int) -> ops.EstablishTemporaryConnection:
    return ops.EstablishTemporaryConnection(
        assisting_ssp_ip_routing_address=_routing_addr(d["assistingSSPIPRoutingAddress"]),
        correlation_id=_opt(d, "correlationID", GenericDigits.decode),
        scf_id=d.get("scfID"),
        extra=_rest(d, ("assistingSSPIPRoutingAddress", "correlationID", "scfID")),
    )


def enc_etc(c: OperationCodec, o: ops.EstablishTemporaryConnection, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {
        "assistingSSPIPRoutingAddress": o.assisting_ssp_ip_routing_address.encode()
    }
    _put(d, "correlationID", o.correlation_id, _enc)
    _put(d, "scfID", o.scf_id)
    d.update(o.extra)
    return d


def dec_ari(c: OperationCodec, d: Any, v: int) -> ops.AssistRequestInstructions:
    return ops.AssistRequestInstructions(
        correlation_id=GenericDigits.decode(d["correlationID"]),
        ip_ssp_capabilities=d.get("iPSSPCapabilities"),
        extra=_rest(d, ("correlationID", "iPSSPCapabilities")),
    )


def enc_ari(c: OperationCodec, o: ops.AssistRequestInstructions, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {"correlationID": o.correlation_id.encode()}
    _put(d, "iPSSPCapabilities", o.ip_ssp_capabilities)
    d.update(o.extra)
    return d


def dec_its(v: Any) -> ops.InformationToSend:
    kind, body = v
    if kind == "tone":
        return ops.InformationToSend(tone_id=body["toneID"], tone_duration=body.get("duration"))
    if kind != "inbandInfo":
        return ops.InformationToSend(extra={"": v})
    mk, mv = body["messageID"]
    ids: tuple[int, ...] = ()
    text = None
    extra: dict[str, Any] = {}
    if mk == "elementaryMessageID":
        ids = (mv,)
    elif mk == "elementaryMessageIDs":
        ids = tuple(mv)
        if len(ids) == 1:
            extra["messageIDs1"] = True
    elif mk == "text" and "attributes" not in mv:
        text = mv["messageContent"]
    else:
        extra["messageID"] = body["messageID"]
    return ops.InformationToSend(
        message_ids=ids,
        text=text,
        number_of_repetitions=body.get("numberOfRepetitions"),
        duration=body.get("duration"),
        interval=body.get("interval"),
        extra=extra,
    )


def enc_its(o: ops.InformationToSend) -> Any:
    if "" in o.extra:
        return o.extra[""]
    if o.tone_id is not None:
        t: dict[str, Any] = {"toneID": o.tone_id}
        _put(t, "duration", o.tone_duration)
        return ("tone", t)
    b: dict[str, Any] = {}
    if "messageID" in o.extra:
        b["messageID"] = o.extra["messageID"]
    elif o.text is not None:
        b["messageID"] = ("text", {"messageContent": o.text})
    elif len(o.message_ids) == 1 and not o.extra.get("messageIDs1"):
        b["messageID"] = ("elementaryMessageID", o.message_ids[0])
    elif o.message_ids:
        b["messageID"] = ("elementaryMessageIDs", list(o.message_ids))
    else:
        raise EncodeError("cap", "InformationToSend needs message ids, text or a tone")
    _put(b, "numberOfRepetitions", o.number_of_repetitions)
    _put(b, "duration", o.duration)
    _put(b, "interval", o.interval)
    return ("inbandInfo", b)


def dec_pa(c: OperationCodec, d: Any, v: int) -> ops.PlayAnnouncement:
    rac = c.name("requestAnnouncementCompleteNotification")
    return ops.PlayAnnouncement(
        information_to_send=dec_its(d["informationToSend"]),
        disconnect_from_ip_forbidden=d.get(
            "disconnectFromIPForbidden", c.default(47, "disconnectFromIPForbidden", True)
        ),
        request_announcement_complete=d.get(rac, c.default(47, rac, True)),
        extra=_rest(d, ("informationToSend", "disconnectFromIPForbidden", rac)),
    )


def enc_pa(c: OperationCodec, o: ops.PlayAnnouncement, v: int) -> dict[str, Any]:
    rac = c.name("requestAnnouncementCompleteNotification")
    d: dict[str, Any] = {"informationToSend": enc_its(o.information_to_send)}
    # A value equal to its DEFAULT is left out (X.690 §11.5); the defaults are read from the
    # schema since CAP and the INAP transcription do not agree on every one of them.
    if o.disconnect_from_ip_forbidden != c.default(47, "disconnectFromIPForbidden", True):
        d["disconnectFromIPForbidden"] = o.disconnect_from_ip_forbidden
    if o.request_announcement_complete != c.default(47, rac, True):
        d[rac] = o.request_announcement_complete
    d.update(o.extra)
    return d


_CD = (
    ("maximumNbOfDigits", "maximum_nb_of_digits"),
    ("endOfReplyDigit", "end_of_reply_digit"),
    ("cancelDigit", "cancel_digit"),
    ("startDigit", "start_digit"),
    ("firstDigitTimeOut", "first_digit_timeout"),
    ("interDigitTimeOut", "inter_digit_timeout"),
    ("interruptableAnnInd", "interruptable_ann_ind"),
    ("voiceInformation", "voice_information"),
    ("voiceBack", "voice_back"),
)


def dec_pacui(c: OperationCodec, d: Any, v: int) -> ops.PromptAndCollectUserInformation:
    kind, cd = d["collectedInfo"]
    if kind != "collectedDigits":
        raise DecodeError(c.layer, 0, f"collectedInfo {kind} not supported")
    kw = {py: cd[asn] for asn, py in _CD if asn in cd}
    et = cd.get("errorTreatment")
    return ops.PromptAndCollectUserInformation(
        collected_digits=ops.CollectedDigits(
            minimum_nb_of_digits=cd.get("minimumNbOfDigits", 1),
            error_treatment=None if et is None else c.enums["ErrorTreatment"].dec(et),
            **kw,
        ),
        information_to_send=_opt(d, "informationToSend", dec_its),
        disconnect_from_ip_forbidden=d.get("disconnectFromIPForbidden", True),
        extra=_rest(d, ("collectedInfo", "informationToSend", "disconnectFromIPForbidden")),
    )


def enc_pacui(c: OperationCodec, o: ops.PromptAndCollectUserInformation, v: int) -> dict[str, Any]:
    cd_o = o.collected_digits
    cd: dict[str, Any] = {}
    if cd_o.minimum_nb_of_digits != 1:
        cd["minimumNbOfDigits"] = cd_o.minimum_nb_of_digits
    for asn, py in _CD:
        _put(cd, asn, getattr(cd_o, py))
    _put(cd, "errorTreatment", cd_o.error_treatment, c.enums["ErrorTreatment"].enc)
    d: dict[str, Any] = {"collectedInfo": ("collectedDigits", cd)}
    if not o.disconnect_from_ip_forbidden:
        d["disconnectFromIPForbidden"] = False
    _put(d, "informationToSend", o.information_to_send, enc_its)
    d.update(o.extra)
    return d


def dec_received_info(c: OperationCodec, d: Any, v: int) -> ops.ReceivedInformation:
    kind, digits = d
    if kind != "digitsResponse":
        raise DecodeError(c.layer, 0, f"ReceivedInformation {kind} not supported")
    return ops.ReceivedInformation(GenericDigits.decode(digits))


def enc_received_info(c: OperationCodec, o: ops.ReceivedInformation, v: int) -> Any:
    return ("digitsResponse", o.digits.encode())


def dec_srr(c: OperationCodec, parameter: bytes, v: int) -> ops.SpecializedResourceReport:
    # v2/v3 and INAP: NULL (05 00); v4: [50] allAnnouncementsComplete / [51] firstAnnouncementStarted.
    if parameter == b"\x05\x00" or parameter == b"\x9f\x32\x00":
        return ops.SpecializedResourceReport()
    if parameter == b"\x9f\x33\x00":
        return ops.SpecializedResourceReport(first_announcement_started=True)
    raise DecodeError(c.layer, 0, f"SpecializedResourceReport argument {parameter.hex()}")


def enc_srr(c: OperationCodec, o: ops.SpecializedResourceReport, v: int) -> _Raw:
    if v >= 4:
        return _Raw(b"\x9f\x33\x00" if o.first_announcement_started else b"\x9f\x32\x00")
    if o.first_announcement_started:
        raise EncodeError(c.layer, "firstAnnouncementStarted needs CAP v4")
    return _Raw(b"\x05\x00")


# ---- ApplyCharging: CAMEL-AChBillingChargingCharacteristics coded by hand (see docstring) ----


def _read_all(buf: bytes, start: int, end: int, layer: str) -> list[tuple[int, bytes]]:
    out = []
    i = start
    while i < end:
        tag, s, e, nxt = read_tlv(buf, i, layer)
        if nxt > end:
            raise DecodeError(layer, s, "component runs past its container")
        out.append((tag, buf[s:e]))
        i = nxt
    return out


def _ber_int(b: bytes, layer: str) -> int:
    if not b:
        raise DecodeError(layer, 0, "empty INTEGER")
    return int.from_bytes(b, "big", signed=True)


def _ber_bool(b: bytes, layer: str) -> bool:
    if len(b) != 1:
        raise DecodeError(layer, 0, "BOOLEAN is one octet")
    return b[0] != 0


def dec_apply_charging(c: OperationCodec, parameter: bytes, v: int) -> ops.ApplyCharging:
    L = c.layer
    tag, s, e, nxt = read_tlv(parameter, 0, L)
    if tag != 0x30 or nxt != len(parameter):
        raise DecodeError(L, 0, "ApplyChargingArg is a SEQUENCE")
    ach = None
    leg = None
    extra: dict[str, Any] = {}
    for t, val in _read_all(parameter, s, e, L):
        if t == 0x80:
            ach = val
        elif t == 0xA2:
            inner = _read_all(val, 0, len(val), L)
            if len(inner) != 1 or inner[0][0] != 0x80 or len(inner[0][1]) != 1:
                raise DecodeError(L, 0, "partyToCharge is sendingSideID")
            leg = ops.LegID(inner[0][1][0], sending=True)
        else:
            extra.setdefault("__raw", []).append(_tlv(t, val))
    if ach is None:
        raise DecodeError(L, 0, "aChBillingChargingCharacteristics missing")
    tag, s, e, nxt = read_tlv(ach, 0, L)
    if tag != 0xA0 or nxt != len(ach):
        raise DecodeError(L, 0, "only timeDurationCharging is supported")
    mcpd = None
    rel = False
    tsi = None
    tone = None
    for t, val in _read_all(ach, s, e, L):
        if t == 0x80:
            mcpd = _ber_int(val, L)
        elif t == 0x81:  # v3/v4 BOOLEAN
            rel = _ber_bool(val, L)
        elif t == 0xA1:  # v2 ReleaseIfDurationExceeded SEQUENCE { tone BOOLEAN DEFAULT FALSE }
            rel = True
            for t2, v2 in _read_all(val, 0, len(val), L):
                if t2 in (0x01, 0x80):
                    tone = _ber_bool(v2, L)
        elif t == 0x82:
            tsi = _ber_int(val, L)
        elif t == 0x83:  # v3 tone [3] BOOLEAN
            tone = _ber_bool(val, L)
        elif t == 0xA3:  # v4 audibleIndicator [3] CHOICE { tone BOOLEAN, burstList [1] }
            inner = _read_all(val, 0, len(val), L)
            if inner and inner[0][0] == 0x01:
                tone = _ber_bool(inner[0][1], L)
            else:
                extra["__audible"] = val
    if mcpd is None:
        raise DecodeError(L, 0, "maxCallPeriodDuration missing")
    return ops.ApplyCharging(mcpd, rel, tsi, tone, leg, extra)


def enc_apply_charging(c: OperationCodec, o: ops.ApplyCharging, v: int) -> _Raw:
    if not 1 <= o.max_call_period_duration <= 864000:
        raise EncodeError(c.layer, "maxCallPeriodDuration is 1..864000 (100 ms units)")
    body = _tlv(0x80, _int_bytes(o.max_call_period_duration))
    if v == 2:
        if o.release_if_duration_exceeded:
            inner = _tlv(0x01, b"\xff") if o.tone else b""
            body += _tlv(0xA1, inner)
        elif o.tone:
            raise EncodeError(c.layer, "CAP v2 has a warning tone only with release")
    elif o.release_if_duration_exceeded:
        body += _tlv(0x81, b"\xff")
    if o.tariff_switch_interval is not None:
        body += _tlv(0x82, _int_bytes(o.tariff_switch_interval))
    if v == 3 and o.tone:
        body += _tlv(0x83, b"\xff")
    elif v >= 4:
        if "__audible" in o.extra:
            body += _tlv(0xA3, o.extra["__audible"])
        elif o.tone is not None:
            body += _tlv(0xA3, _tlv(0x01, b"\xff" if o.tone else b"\x00"))
    arg = _tlv(0x80, _tlv(0xA0, body))
    leg = o.party_to_charge or ops.LegID(1, sending=True)
    arg += _tlv(0xA2, _tlv(0x80, bytes((leg.leg,))))
    for raw in o.extra.get("__raw", ()):
        arg += raw
    return _Raw(_tlv(0x30, arg))


def dec_acr(c: OperationCodec, d: Any, v: int) -> ops.ApplyChargingReport:
    # CAMEL-CallResult (TS 29.078 §7.6) is parameterised in the ASN.1, coded by hand here:
    # [0] timeDurationChargingResult { [0] partyToCharge ReceivingSideID, [1] timeInformation,
    # [2] legActive BOOLEAN DEFAULT TRUE, [3] callLegReleasedAtTcpExpiry NULL, [4] ext, ... }
    L = c.layer
    tag, s, e, nxt = read_tlv(d, 0, L)
    if tag != 0xA0 or nxt != len(d):
        raise DecodeError(L, 0, "CAMEL-CallResult: only timeDurationChargingResult is supported")
    leg = None
    ti = None
    active = True
    expiry = False
    raw: list[bytes] = []
    for t, val in _read_all(d, s, e, L):
        if t == 0xA0:
            inner = _read_all(val, 0, len(val), L)
            if len(inner) != 1 or inner[0][0] != 0x81 or len(inner[0][1]) != 1:
                raise DecodeError(L, 0, "partyToCharge is receivingSideID")
            leg = ops.LegID(inner[0][1][0])
        elif t == 0xA1:
            inner = _read_all(val, 0, len(val), L)
            if len(inner) != 1:
                raise DecodeError(L, 0, "timeInformation is one CHOICE")
            it, iv = inner[0]
            if it == 0x80:
                ti = ops.TimeInformation(time_if_no_tariff_switch=_ber_int(iv, L))
            elif it == 0xA1:
                since = None
                tsi = None
                for t2, v2 in _read_all(iv, 0, len(iv), L):
                    if t2 == 0x80:
                        since = _ber_int(v2, L)
                    elif t2 == 0x81:
                        tsi = _ber_int(v2, L)
                if since is None:
                    raise DecodeError(L, 0, "timeSinceTariffSwitch missing")
                ti = ops.TimeInformation(time_since_tariff_switch=since, tariff_switch_interval=tsi)
            else:
                raise DecodeError(L, 0, f"timeInformation tag 0x{it:02x}")
        elif t == 0x82:
            active = _ber_bool(val, L)
        elif t == 0x83:
            expiry = True
        else:
            raw.append(_tlv(t, val))
    if leg is None or ti is None:
        raise DecodeError(L, 0, "CAMEL-CallResult: partyToCharge and timeInformation needed")
    return ops.ApplyChargingReport(leg, ti, active, expiry, {"__raw": raw} if raw else {})


def enc_acr(c: OperationCodec, o: ops.ApplyChargingReport, v: int) -> bytes:
    ti = o.time_information
    if ti.time_if_no_tariff_switch is not None:
        tinfo = _tlv(0x80, _int_bytes(ti.time_if_no_tariff_switch))
    else:
        inner = _tlv(0x80, _int_bytes(ti.time_since_tariff_switch or 0))
        if ti.tariff_switch_interval is not None:
            inner += _tlv(0x81, _int_bytes(ti.tariff_switch_interval))
        tinfo = _tlv(0xA1, inner)
    body = _tlv(0xA0, _tlv(0x81, bytes((o.party_to_charge.leg,)))) + _tlv(0xA1, tinfo)
    if not o.call_active:
        body += _tlv(0x82, b"\x00")
    if o.call_released_at_tcp_expiry:
        body += _tlv(0x83, b"")
    for raw in o.extra.get("__raw", ()):
        body += raw
    return _tlv(0xA0, body)


def dec_cirq(c: OperationCodec, d: Any, v: int) -> ops.CallInformationRequest:
    ri = c.enums["RequestedInformationType"]
    return ops.CallInformationRequest(
        requested_information_types=tuple(ri.dec(x) for x in d["requestedInformationTypeList"]),
        leg_id=_opt(d, "legID", _leg_from),
        extra=_rest(d, ("requestedInformationTypeList", "legID")),
    )


def enc_cirq(c: OperationCodec, o: ops.CallInformationRequest, v: int) -> dict[str, Any]:
    ri = c.enums["RequestedInformationType"]
    d: dict[str, Any] = {
        "requestedInformationTypeList": [ri.enc(x) for x in o.requested_information_types]
    }
    _put(d, "legID", o.leg_id, _leg_to)
    d.update(o.extra)
    return d


def dec_cirp(c: OperationCodec, d: Any, v: int) -> ops.CallInformationReport:
    ri = c.enums["RequestedInformationType"]
    items = []
    for it in d["requestedInformationList"]:
        vk, vv = it["requestedInformationValue"]
        val: int | bytes | Cause = Cause.decode(vv) if vk == "releaseCauseValue" else vv
        items.append(ops.RequestedInformation(ri.dec(it["requestedInformationType"]), val))
    return ops.CallInformationReport(
        tuple(items), _opt(d, "legID", _leg_from), _rest(d, ("requestedInformationList", "legID"))
    )


_RI_VALUE = {
    0: "callAttemptElapsedTimeValue",
    1: "callStopTimeValue",
    2: "callConnectedElapsedTimeValue",
    3: "calledAddressValue",
    30: "releaseCauseValue",
}


def enc_cirp(c: OperationCodec, o: ops.CallInformationReport, v: int) -> dict[str, Any]:
    ri = c.enums["RequestedInformationType"]
    lst = []
    for it in o.requested_information:
        val = it.value.encode() if isinstance(it.value, Cause) else it.value
        lst.append(
            {
                "requestedInformationType": ri.enc(it.type),
                "requestedInformationValue": (_RI_VALUE[int(it.type)], val),
            }
        )
    d: dict[str, Any] = {"requestedInformationList": lst}
    _put(d, "legID", o.leg_id, _leg_to)
    d.update(o.extra)
    return d


def dec_fci(c: OperationCodec, d: Any, v: int) -> ops.FurnishChargingInformation:
    return ops.FurnishChargingInformation(d)


def enc_fci(c: OperationCodec, o: ops.FurnishChargingInformation, v: int) -> bytes:
    return o.fci_billing_charging_characteristics


def dec_sci(c: OperationCodec, d: Any, v: int) -> ops.SendChargingInformation:
    return ops.SendChargingInformation(
        d["sCIBillingChargingCharacteristics"],
        _leg_from(d["partyToCharge"]),
        _rest(d, ("sCIBillingChargingCharacteristics", "partyToCharge")),
    )


def enc_sci(c: OperationCodec, o: ops.SendChargingInformation, v: int) -> dict[str, Any]:
    d = {
        "sCIBillingChargingCharacteristics": o.sci_billing_charging_characteristics,
        "partyToCharge": _leg_to(o.party_to_charge),
    }
    d.update(o.extra)
    return d


def dec_reset_timer(c: OperationCodec, d: Any, v: int) -> ops.ResetTimer:
    return ops.ResetTimer(
        d["timervalue"],
        c.enums["TimerID"].dec(d.get("timerID", "tssf")),
        _rest(d, ("timervalue", "timerID")),
    )


def enc_reset_timer(c: OperationCodec, o: ops.ResetTimer, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {"timervalue": o.timer_value}
    if o.timer_id != 0:
        d["timerID"] = c.enums["TimerID"].enc(o.timer_id)
    d.update(o.extra)
    return d


_CONTROL_TYPES = ("sCPOverloaded", "manuallyInitiated")


def dec_call_gap(c: OperationCodec, d: Any, v: int) -> ops.CallGap:
    crit = d["gapCriteria"]
    ind = d["gapIndicators"]
    ctl = d.get("controlType")
    on_service = crit[0] == "basicGapCriteria" and crit[1][0] == "gapOnService"
    # other criteria (called address, compound...) are kept as they came, in extra
    known = ("gapIndicators", "controlType", *(("gapCriteria",) if on_service else ()))
    return ops.CallGap(
        crit[1][1]["serviceKey"] if on_service else None,
        ind["duration"],
        ind["gapInterval"],
        None if ctl is None else _CONTROL_TYPES.index(ctl),
        _rest(d, known),
    )


def enc_call_gap(c: OperationCodec, o: ops.CallGap, v: int) -> dict[str, Any]:
    if v and v < 3:
        raise EncodeError(c.layer, "CallGap needs CAP v3 or v4 (CAMEL phase 2 has no call gapping)")
    d: dict[str, Any] = {
        "gapCriteria": ("basicGapCriteria", ("gapOnService", {"serviceKey": o.service_key})),
        "gapIndicators": {"duration": o.duration, "gapInterval": o.gap_interval},
    }
    if o.service_key is None and "gapCriteria" not in o.extra:
        raise EncodeError(c.layer, "CallGap needs service_key or gapCriteria in extra")
    if o.control_type is not None:
        d["controlType"] = _CONTROL_TYPES[o.control_type]
    d.update(o.extra)
    return d


def dec_cancel(c: OperationCodec, d: Any, v: int) -> ops.Cancel:
    k, val = d
    if k == "invokeID":
        return ops.Cancel(invoke_id=val)
    if k == "allRequests":
        return ops.Cancel(all_requests=True)
    return ops.Cancel(extra={"": d})


def enc_cancel(c: OperationCodec, o: ops.Cancel, v: int) -> Any:
    if "" in o.extra:
        return o.extra[""]
    if o.all_requests:
        return ("allRequests", 0)
    if o.invoke_id is None:
        raise EncodeError(c.layer, "Cancel needs invoke_id or all_requests")
    return ("invokeID", o.invoke_id)


def dec_ica(c: OperationCodec, d: Any, v: int) -> ops.InitiateCallAttempt:
    return ops.InitiateCallAttempt(
        tuple(_cpn(b) for b in d["destinationRoutingAddress"]),
        _opt(d, "callingPartyNumber", CallingPartyNumber.decode),
        _rest(d, ("destinationRoutingAddress", "callingPartyNumber")),
    )


def enc_ica(c: OperationCodec, o: ops.InitiateCallAttempt, v: int) -> dict[str, Any]:
    if v and v < 4:
        raise EncodeError(c.layer, "InitiateCallAttempt needs CAP v4")
    d: dict[str, Any] = {
        "destinationRoutingAddress": [a.encode() for a in o.destination_routing_address]
    }
    _put(d, "callingPartyNumber", o.calling_party_number, _enc)
    d.update(o.extra)
    return d


def _simple(cls: type, dec: Decoder, enc: Encoder) -> tuple[type, Decoder, Encoder]:
    return (cls, dec, enc)


def shared_typed(release: tuple[Decoder, Encoder]) -> dict[int, tuple[type, Decoder, Encoder]]:
    """Operations whose typed conversion CAP and INAP share (opcodes are the same, Q.1218)."""
    cont_d, cont_e = _no_arg(ops.Continue)
    dfc_d, dfc_e = _no_arg(ops.DisconnectForwardConnection)
    at_d, at_e = _no_arg(ops.ActivityTest)
    return {
        0: (ops.InitialDP, dec_initial_dp, enc_initial_dp),
        16: (ops.AssistRequestInstructions, dec_ari, enc_ari),
        17: (ops.EstablishTemporaryConnection, dec_etc, enc_etc),
        18: (ops.DisconnectForwardConnection, dfc_d, dfc_e),
        19: (ops.ConnectToResource, dec_ctr, enc_ctr),
        20: (ops.Connect, dec_connect, enc_connect),
        22: (ops.ReleaseCall, release[0], release[1]),
        23: (ops.RequestReportBCSMEvent, dec_rrbe, enc_rrbe),
        24: (ops.EventReportBCSM, dec_event_report, enc_event_report),
        31: (ops.Continue, cont_d, cont_e),
        33: (ops.ResetTimer, dec_reset_timer, enc_reset_timer),
        34: (ops.FurnishChargingInformation, dec_fci, enc_fci),
        35: (ops.ApplyCharging, dec_apply_charging, enc_apply_charging),
        36: (ops.ApplyChargingReport, dec_acr, enc_acr),
        44: (ops.CallInformationReport, dec_cirp, enc_cirp),
        45: (ops.CallInformationRequest, dec_cirq, enc_cirq),
        46: (ops.SendChargingInformation, dec_sci, enc_sci),
        47: (ops.PlayAnnouncement, dec_pa, enc_pa),
        48: (ops.PromptAndCollectUserInformation, dec_pacui, enc_pacui),
        49: (ops.SpecializedResourceReport, dec_srr, enc_srr),
        53: (ops.Cancel, dec_cancel, enc_cancel),
        55: (ops.ActivityTest, at_d, at_e),
    }


# --------------------------------------------------------------------------------------------
# CAP schema tables
# --------------------------------------------------------------------------------------------

_P = _T.CAP_gsmSSF_gsmSCF_pkgs_contracts_acs
_Q = _T.CAP_gsmSCF_gsmSRF_pkgs_contracts_acs


def _op_names() -> dict[int, str]:
    out = {}
    for name in _T.CAP_operationcodes._obj_:
        code = getattr(_T.CAP_operationcodes, name.replace("-", "_"))._val
        out[code[1]] = name.removeprefix("opcode-")
    return out


def _collect() -> tuple[dict[int, tuple[str, Any]], dict[int, tuple[str, Any]]]:
    names = _op_names()
    args: dict[int, tuple[str, Any]] = {}
    results: dict[int, tuple[str, Any]] = {}
    for mod, sets in (
        (
            _P,
            (
                "SsfToScfGenericInvokable",
                "SsfToScfGenericReturnable",
                "AssistHandoffssfToScfInvokable",
                "ScfToSsfGenericInvokable",
            ),
        ),
        (_Q, ("GsmSRFgsmSCFInvokable",)),
    ):
        for s in sets:
            for op in getattr(mod, s)._val.root:
                code = op["operationCode"][1]
                name = names.get(code, str(code))
                args.setdefault(code, (name, op.get("ArgumentType")))
                if "ResultType" in op:
                    results.setdefault(code, (name, op["ResultType"]))
    return args, results


def _collect_errors() -> dict[int, tuple[str, Any]]:
    out = {}
    for name in _T.CAP_errortypes._obj_:
        e = getattr(_T.CAP_errortypes, name)
        val = e._val
        if val is None:
            continue
        out[val["errorCode"][1]] = (name, val.get("ParameterType"))
    return out


OPCODES: dict[int, str]
ERRORS: dict[int, str]
_ARGS, _RESULTS = _collect()
_ERRS = _collect_errors()
OPCODES = {k: v[0] for k, v in _ARGS.items()}
ERRORS = {k: v[0] for k, v in _ERRS.items()}

_IDP_T = _ARGS[0][1]
_RRBE_T = _ARGS[23][1]
_PACUI_T = _ARGS[48][1]
_CAP_ENUMS = {
    "EventTypeBCSM": _Enum(_comp(_IDP_T, "eventTypeBCSM")._cont, ops.EventTypeBCSM),
    "MonitorMode": _Enum(_comp(_RRBE_T, "bcsmEvents", "monitorMode")._cont, ops.MonitorMode),
    "ErrorTreatment": _Enum(
        _comp(_PACUI_T, "collectedInfo", "collectedDigits", "errorTreatment")._cont
    ),
    "RequestedInformationType": _Enum(
        _comp(_ARGS[45][1], "requestedInformationTypeList")._cont._cont
    ),
    "TimerID": _Enum(_comp(_ARGS[33][1], "timerID")._cont),
}


def cap_version(ac: tuple[int, ...] | None) -> int:
    """CAP phase of an application context name: v2 0.4.0.0.1.0.5x.1, v3 .21/.20, v4 .23/.22.

    No AC (or an unknown one) means "latest": v4 tags are then used where phases differ.
    """
    if ac is None or len(ac) < 7:
        return 4
    if ac[5] == 0:
        return 2
    return {21: 3, 20: 3, 23: 4, 22: 4}.get(ac[5], 4)


_TYPED = shared_typed((dec_release_cap, enc_release_cap))
_TYPED[32] = (ops.InitiateCallAttempt, dec_ica, enc_ica)
_TYPED[88] = (ops.ContinueWithArgument, dec_cwa, enc_cwa)
_TYPED[41] = (
    ops.CallGap,
    dec_call_gap,
    enc_call_gap,
)  # CAP only: ETS 300 374-1 as transcribed lacks it

CODEC = OperationCodec(
    layer="cap",
    args=_ARGS,
    results=_RESULTS,
    errors=_ERRS,
    typed=_TYPED,
    typed_results={48: (ops.ReceivedInformation, dec_received_info, enc_received_info)},
    enums=_CAP_ENUMS,
    version_of=cap_version,
)
# The hot operations of a call: InitialDP, AssistRequestInstructions,
# EventReportBCSM, ApplyChargingReport come in; RequestReportBCSMEvent, Connect,
# ConnectToResource, PlayAnnouncement, PromptAndCollectUserInformation, ReleaseCall,
# ApplyCharging, EstablishTemporaryConnection go out (Continue and DisconnectForwardConnection
# have no argument); the PromptAndCollectUserInformation result (ReceivedInformation) both
# ways. Each set goes through the fast path in both directions: the peer's side (simulator,
# test switch, replay) runs the other direction just as often.
HOT_DECODE = frozenset((0, 16, 24, 36))
HOT_ENCODE = frozenset((17, 19, 20, 22, 23, 35, 47, 48))
HOT = HOT_DECODE | HOT_ENCODE
CODEC.fast_decode = HOT
CODEC.fast_encode = HOT
CODEC.fast_results = frozenset((48,))
CODEC.fast_convert = {36: dec_acr_fast}


def decode_arg(
    opcode: int | tuple[int, ...], parameter: bytes | None, *, ac: tuple[int, ...] | None = None
) -> ops.Operation:
    """TC-INVOKE parameter (complete TLV) -> typed ops value or GenericOperation."""
    return CODEC.decode_arg(opcode, parameter, ac)


def encode_arg(
    op: ops.Operation, *, ac: tuple[int, ...] | None = None
) -> tuple[int | tuple[int, ...], bytes | None]:
    """Typed ops value -> (opcode, parameter TLV or None)."""
    return CODEC.encode_arg(op, ac)


def decode_result(
    opcode: int | tuple[int, ...], parameter: bytes | None, *, ac: tuple[int, ...] | None = None
) -> ops.Operation:
    """TC-RESULT-L parameter of ``opcode`` -> ReceivedInformation / EmptyResult / generic."""
    return CODEC.decode_result(opcode, parameter, ac)


def encode_result(
    opcode: int | tuple[int, ...],
    result: ops.Operation | None,
    *,
    ac: tuple[int, ...] | None = None,
) -> bytes | None:
    """Result value of ``opcode`` -> parameter TLV (None: no parameter)."""
    return CODEC.encode_result(opcode, result, ac)


def decode_error(
    errcode: int | tuple[int, ...], parameter: bytes | None, *, ac: tuple[int, ...] | None = None
) -> ops.OperationError:
    """TC-U-ERROR -> OperationError with the spec name (TS 29.078 §7.7)."""
    return CODEC.decode_error(errcode, parameter, ac)  # type: ignore[return-value]


def encode_error(
    err: ops.OperationError, *, ac: tuple[int, ...] | None = None
) -> tuple[int | tuple[int, ...], bytes | None]:
    """OperationError -> (errcode, parameter TLV or None)."""
    return CODEC.encode_error(err, ac)
