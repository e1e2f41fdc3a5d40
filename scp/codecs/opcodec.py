"""Operation codecs: TCAP component parameters <-> ``ops`` values, keyed by operation code.

Spec: ITU-T X.880 (ROS: an operation is identified by its ``local`` code, its argument, result
and error parameters are ASN.1 types) as TCAP carries it (Q.773 §3.2: the ``parameter`` of an
Invoke, ReturnResult or ReturnError is one complete BER TLV, X.690 §8.1). CAP (TS 29.078),
INAP CS-1 (ETS 300 374-1) and MAP (TS 29.002) are each one :class:`OperationCodec` instance,
``CODEC`` in ``cap.py``, ``inap.py`` and ``map.py``; callers use its six methods:

* ``decode_arg`` / ``encode_arg``: TC-INVOKE parameter <-> typed value;
* ``decode_result`` / ``encode_result``: TC-RESULT-L parameter <-> typed value;
* ``decode_error`` / ``encode_error``: TC-U-ERROR <-> :class:`~scp.codecs.ops.OperationError`.

An operation with a :class:`Conversion` decodes to its ``ops`` dataclass; any other known or
unknown operation to a lossless :class:`~scp.codecs.ops.GenericOperation`. The pycrate types
come from the protocol's ASN.1 (``args`` / ``results`` / ``errors`` tables); the hot ones go
through the hand-written BER fast path (:mod:`scp.codecs.fastber`) first, which declines to
pycrate on anything unusual. No pycrate exception leaves: bad input is a ``DecodeError`` naming
the codec's layer, a value that cannot be encoded an ``EncodeError``.

The pycrate objects are shared and mutable: decode and read a value with no ``await`` in
between, from one thread only (ARCHITECTURE §2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scp.codecs import fastber, ops
from scp.codecs.ber import BerError, read_tlv
from scp.codecs.errors import CodecError, DecodeError, EncodeError
from scp.primitives import Opcode

__all__ = [
    "OperationCodec",
    "Conversion",
    "Decoder",
    "Encoder",
    "Enumerated",
    "component",
    "opt",
    "put",
    "rest",
]

Decoder = Callable[["OperationCodec", Any, int], ops.Operation]
"""``decode(codec, value, version)``: pycrate's value (or, for a ``raw`` conversion, the
parameter octets) -> the ops value. ``version`` is the codec's ``version_of(ac)``."""
Encoder = Callable[["OperationCodec", Any, int], Any]
"""``encode(codec, op, version)``: the ops value -> pycrate's value notation (or, for a ``raw``
conversion, the parameter TLV octets)."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """How one operation's argument or result becomes an ``ops`` value and back."""

    cls: type
    decode: Decoder
    encode: Encoder | None
    """None: decode only (another code encodes values of ``cls``)."""
    raw: bool = False
    """The decoder reads and the encoder writes the parameter TLV itself, coded by hand."""
    when_absent: ops.Operation | None = None
    """The value an invoke without its argument stands for (else the argument is required)."""
    fast: Callable[[Any, int], Any] | None = None
    """A hand-written conversion tried first on the fast path's value; returns the ops value
    or :data:`~scp.codecs.fastber.DECLINE`, so ``decode`` decides."""


# --------------------------------------------------------------------------------------------
# Value helpers for the conversions (pycrate value notation <-> ops)
# --------------------------------------------------------------------------------------------


def opt(d: Mapping[str, Any], key: str, conv: Callable[[Any], Any]) -> Any:
    """``conv(d[key])``, or None when the component is absent."""
    v = d.get(key)
    return None if v is None else conv(v)


def put(d: dict[str, Any], key: str, v: Any, conv: Callable[[Any], Any] | None = None) -> None:
    """Set component ``key`` to ``v`` (through ``conv``) unless ``v`` is None."""
    if v is not None:
        d[key] = conv(v) if conv is not None else v


def rest(d: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """The components of ``d`` not in ``known``: what an ops value keeps in ``extra``."""
    if len(d) <= 4 and all(k in known for k in d):  # the common case: nothing left over
        return {}
    ks = known if isinstance(known, frozenset) else frozenset(known)
    return {k: v for k, v in d.items() if k not in ks}


def component(t: Any, *path: str) -> Any:
    """The pycrate type of a component of ``t`` by name (through SEQUENCE OF / SET OF)."""
    for p in path:
        if t.TYPE in ("SEQUENCE OF", "SET OF"):
            t = t._cont
        t = t._cont[p]
    return t


class Enumerated:
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
        """The value of the named item (an IntEnum member where ``cast`` names it)."""
        return self._dec[name]

    def enc(self, v: int) -> str:
        """The name of value ``v``; EncodeError if the type has no such item."""
        try:
            return self.to_name[int(v)]
        except KeyError:
            raise EncodeError(
                self.layer, f"enumerated value {v} not in {sorted(self.to_name)}"
            ) from None


# --------------------------------------------------------------------------------------------
# The codec
# --------------------------------------------------------------------------------------------


class OperationCodec:
    """Opcode-keyed BER codec of one protocol's operations, giving ``ops`` dataclasses.

    ``args`` / ``results``: opcode -> (spec name, pycrate type, or None for "no parameter");
    ``errors``: errcode -> (spec name, parameter type or None); ``typed`` / ``typed_results``:
    opcode -> :class:`Conversion`; ``enums``: the ENUMERATED types conversions read;
    ``version_of(ac)``: the protocol version an application context means (0: one version).
    ``opcode_names`` / ``error_names``: the protocol's code tables (:mod:`scp.codecs.opcodes`).
    Opcodes in ``fast_decode`` / ``fast_encode`` (arguments) and ``fast_results`` go through
    :mod:`scp.codecs.fastber` first; ``canon``: DEFAULT values are left out on encoding
    (X.690 §11.5), as this codec's ``ber_encode`` does. ``aliases``: this protocol's spelling of
    a CAP component name, where it differs (INAP).
    """

    def __init__(
        self,
        layer: str,
        *,
        args: Mapping[int, tuple[str, Any]],
        results: Mapping[int, tuple[str, Any]],
        errors: Mapping[int, tuple[str, Any]],
        typed: Mapping[int, Conversion],
        typed_results: Mapping[int, Conversion],
        enums: Mapping[str, Enumerated],
        version_of: Callable[[tuple[int, ...] | None], int],
        opcode_names: Mapping[int, str],
        error_names: Mapping[int, str],
        fast_decode: Iterable[int] = (),
        fast_encode: Iterable[int] = (),
        fast_results: Iterable[int] = (),
        canon: bool = False,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.layer = layer
        self.args = dict(args)
        self.results = dict(results)
        self.errors = dict(errors)
        # plain int keys: encode_arg hands the opcode on to TCAP as a plain int
        self.typed = {int(code): conv for code, conv in typed.items()}
        self.typed_results = {int(code): conv for code, conv in typed_results.items()}
        self.by_class = _encoders(self.typed)
        self.res_by_class = _encoders(self.typed_results)
        self.enums = dict(enums)
        self.version_of = version_of
        self.opcode_names = dict(opcode_names)
        self.error_names = dict(error_names)
        self.fast_decode = frozenset(map(int, fast_decode))
        self.fast_encode = frozenset(map(int, fast_encode))
        self.fast_results = frozenset(map(int, fast_results))
        self.canon = canon
        self.aliases = dict(aliases or {})

    def default(self, opcode: int, name: str, fallback: Any) -> Any:
        """The ASN.1 DEFAULT of a component of ``opcode``'s argument (``fallback`` if none)."""
        try:
            d = self.args[opcode][1]._cont[name]._def
        except (KeyError, AttributeError, TypeError):
            return fallback
        return fallback if d is None else d

    def name(self, cap_name: str) -> str:
        """This protocol's spelling of a CAP component name (INAP differs in a few)."""
        return self.aliases.get(cap_name, cap_name)

    # ---- BER -------------------------------------------------------------------------------

    def check_tlv(self, parameter: bytes) -> int:
        """End of the parameter's one TLV (X.690 §8.1); a DecodeError of this layer if broken."""
        try:
            return read_tlv(parameter, 0, len(parameter))[3]
        except BerError as exc:
            raise DecodeError(self.layer, exc.offset, exc.reason) from None

    def ber_decode(self, t: Any, parameter: bytes) -> Any:
        """pycrate's value of ``parameter`` as type ``t``; DecodeError if it is not one."""
        end = self.check_tlv(parameter)
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
        """pycrate's BER of ``value`` as type ``t``; EncodeError if it does not fit."""
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
            if isinstance(out, bytes):
                return out
        return self.ber_encode(t, value)

    # ---- conversions -----------------------------------------------------------------------

    def _convert(self, dec: Decoder, value: Any, version: int, what: str) -> ops.Operation:
        """Run a typed decoder; anything it trips over becomes this layer's DecodeError."""
        try:
            return dec(self, value, version)
        except BerError as exc:  # a hand-coded octet string that does not read
            raise DecodeError(self.layer, exc.offset, f"{what}: {exc.reason}") from None
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

    # ---- operations ------------------------------------------------------------------------

    def decode_arg(
        self, opcode: Opcode, parameter: bytes | None, *, ac: tuple[int, ...] | None = None
    ) -> ops.Operation:
        """TC-INVOKE parameter (complete TLV) -> typed ops value or GenericOperation."""
        version = self.version_of(ac)
        if not isinstance(opcode, int) or (entry := self.args.get(opcode)) is None:
            return ops.GenericOperation(opcode, "unknown", None, parameter)
        name, t = entry
        conv = self.typed.get(opcode)
        if conv is None:
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
                self.check_tlv(parameter)  # framing must still hold
                value = None
            return ops.GenericOperation(opcode, name, value, parameter)
        if t is None:
            if parameter is not None:
                raise DecodeError(self.layer, 0, f"{name} takes no argument")
            return self._convert(conv.decode, None, version, name)
        if parameter is None:
            if conv.when_absent is not None:
                return conv.when_absent
            raise DecodeError(self.layer, 0, f"{name}: argument missing")
        if conv.raw:
            return self._convert(conv.decode, parameter, version, name)
        if opcode in self.fast_decode:
            value = self.fast_or_ber_decode(t, parameter)
            if conv.fast is not None and fastber.ENABLED:
                try:
                    op = conv.fast(value, version)
                except (IndexError, KeyError, TypeError, ValueError):
                    op = fastber.DECLINE  # the general conversion below says what is wrong
                if isinstance(op, ops.Operation):
                    return op
        else:
            value = self.ber_decode(t, parameter)
        return self._convert(conv.decode, value, version, name)

    def encode_arg(
        self, op: ops.Operation, *, ac: tuple[int, ...] | None = None
    ) -> tuple[Opcode, bytes | None]:
        """Typed ops value -> (opcode, parameter TLV or None)."""
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
        code, conv, enc = hit
        value = self._run_encoder(enc, op, version)
        if conv.raw:
            return code, value
        t = self.args[code][1]
        if t is None:
            return code, None
        if code in self.fast_encode:
            return code, self.fast_or_ber_encode(t, value)
        return code, self.ber_encode(t, value)

    def decode_result(
        self, opcode: Opcode, parameter: bytes | None, *, ac: tuple[int, ...] | None = None
    ) -> ops.Operation:
        """TC-RESULT-L parameter of ``opcode`` -> typed value, EmptyResult or GenericOperation."""
        version = self.version_of(ac)
        if parameter is None:
            return ops.EmptyResult()
        entry = self.results.get(opcode) if isinstance(opcode, int) else None
        if not isinstance(opcode, int) or entry is None or entry[1] is None:
            return ops.GenericOperation(
                opcode, "unknown" if entry is None else entry[0], None, parameter
            )
        name, t = entry
        conv = self.typed_results.get(opcode)
        if conv is None:
            try:
                value = self.ber_decode(t, parameter)
            except DecodeError:
                self.check_tlv(parameter)
                value = None
            return ops.GenericOperation(opcode, name, value, parameter)
        if opcode in self.fast_results:
            value = self.fast_or_ber_decode(t, parameter)
        else:
            value = self.ber_decode(t, parameter)
        return self._convert(conv.decode, value, version, name)

    def encode_result(
        self, opcode: Opcode, result: ops.Operation | None, *, ac: tuple[int, ...] | None = None
    ) -> bytes | None:
        """Result value of ``opcode`` -> parameter TLV (None: no parameter)."""
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
        code, _conv, enc = hit
        value = self._run_encoder(enc, result, version)
        if code in self.fast_results:
            return self.fast_or_ber_encode(self.results[code][1], value)
        return self.ber_encode(self.results[code][1], value)

    def decode_error(
        self, errcode: Opcode, parameter: bytes | None, *, ac: tuple[int, ...] | None = None
    ) -> ops.OperationError:
        """TC-U-ERROR -> OperationError with the spec's name for the code."""
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
            self.check_tlv(parameter)
            return ops.OperationError(errcode, name, parameter)
        if t.TYPE == "ENUMERATED":
            value = t._cont[value]
        return ops.OperationError(errcode, name, value)

    def encode_error(
        self, err: ops.OperationError, *, ac: tuple[int, ...] | None = None
    ) -> tuple[Opcode, bytes | None]:
        """OperationError -> (errcode, parameter TLV or None)."""
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


def _encoders(typed: Mapping[int, Conversion]) -> dict[type, tuple[int, Conversion, Encoder]]:
    """ops class -> (opcode, conversion, encoder) for the conversions that encode."""
    return {
        conv.cls: (code, conv, conv.encode)
        for code, conv in typed.items()
        if conv.encode is not None
    }
