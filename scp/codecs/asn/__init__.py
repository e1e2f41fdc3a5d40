"""ETSI Core INAP CS-1 abstract syntax (ETS 300 374-1 clause 6) compiled by pycrate: the loader.

``inap_cs1.asn`` transcribes clause 6 (6.1 operations, 6.2 errors, 6.3 data types, 6.4 codes,
6.5 application contexts); ``python -m scp.codecs.asn.regen`` compiles it into
``_inap_gen.py``. This module is what ``scp.codecs.inap`` builds on: it names the application
contexts and maps operation codes and error codes (6.4, the table is
:class:`scp.codecs.opcodes.InapOpcode`) to their pycrate types.

The generated module is imported on first use only (it builds a few hundred pycrate objects),
so importing ``scp.codecs.asn`` for the constants costs nothing. The pycrate objects returned
are shared and mutable (ARCHITECTURE.md §2): decode and read a value with no ``await`` in
between, and only from one thread.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any

from scp.codecs.ber import (
    BerError,
    children,
    class_and_number,
    is_constructed,
    read_tlv,
    tlv,
)
from scp.codecs.errors import DecodeError, EncodeError

__all__ = [
    "AC_INAP_CS1_SSP_TO_SCP",
    "AC_INAP_CS1_ASSIST_HANDOFF_SSP_TO_SCP",
    "AC_INAP_CS1_IP_TO_SCP",
    "APPLICATION_CONTEXTS",
    "inap_module",
    "inap_types",
    "inap_arg_type",
    "inap_result_type",
    "inap_error_type",
    "decode_value",
    "encode_value",
]

# ETS 300 374-1 §6.5: {ccitt(0) identified-organization(4) etsi(0) inDomain(1) in-network(1)
# ac(1) <context> version1(0)}. The standard defines these three and no SCP-initiated context.
AC_INAP_CS1_SSP_TO_SCP: tuple[int, ...] = (0, 4, 0, 1, 1, 1, 0, 0)
"""core-INAP-CS1-SSP-to-SCP-AC: SSF opens with InitialDP; SCF controls the call (and SRF
operations relayed through the SSF)."""
AC_INAP_CS1_ASSIST_HANDOFF_SSP_TO_SCP: tuple[int, ...] = (0, 4, 0, 1, 1, 1, 1, 0)
"""core-INAP-CS1-assist-handoff-SSP-to-SCP-AC: an assisting SSP opens with
AssistRequestInstructions after EstablishTemporaryConnection."""
AC_INAP_CS1_IP_TO_SCP: tuple[int, ...] = (0, 4, 0, 1, 1, 1, 2, 0)
"""core-INAP-CS1-IP-to-SCP-AC: an intelligent peripheral (SRF) opens with
AssistRequestInstructions; the SCF sends PlayAnnouncement / PromptAndCollectUserInformation."""

APPLICATION_CONTEXTS: dict[tuple[int, ...], str] = {
    AC_INAP_CS1_SSP_TO_SCP: "core-INAP-CS1-SSP-to-SCP-AC",
    AC_INAP_CS1_ASSIST_HANDOFF_SSP_TO_SCP: "core-INAP-CS1-assist-handoff-SSP-to-SCP-AC",
    AC_INAP_CS1_IP_TO_SCP: "core-INAP-CS1-IP-to-SCP-AC",
}


@cache
def inap_module() -> ModuleType:
    """The generated pycrate module (imported once, on first call)."""
    # Deferred: importing it builds every INAP ASN.1 object (most of a second, tens of MB),
    # which a node without INAP dialogues, and every CAP / MAP-only tool, never needs.
    from scp.codecs.asn import _inap_gen

    return _inap_gen


def inap_types() -> Any:
    """The compiled Core-INAP-CS1-DataTypes module object (every type by name, ``-`` as ``_``)."""
    return inap_module().Core_INAP_CS1_DataTypes


def _named(obj: Any) -> Any:
    """The DataTypes type an information-object field refers to (it carries the type's name)."""
    ref = getattr(obj, "_typeref", None)
    called = getattr(ref, "called", None)
    if isinstance(called, tuple) and called[0] == "Core-INAP-CS1-DataTypes":
        return getattr(inap_types(), called[1].replace("-", "_"))
    return obj


@cache
def _tables() -> tuple[dict[int, tuple[Any, Any]], dict[int, Any]]:
    """Opcode -> (argument, result) and errcode -> parameter, read from the compiled sets."""
    ops_mod = inap_module().Core_INAP_CS1_Operations
    ops: dict[int, tuple[Any, Any]] = {}
    for obj in ops_mod.Core_INAP_CS1_OperationSet._val.root:
        _, code = obj["operationCode"]
        arg = obj.get("ArgumentType")
        res = obj.get("ResultType")
        ops[code] = (
            _named(arg) if arg is not None else None,
            _named(res) if res is not None else None,
        )
    errs: dict[int, Any] = {}
    for obj in ops_mod.Core_INAP_CS1_ErrorSet._val.root:
        _, code = obj["errorCode"]
        par = obj.get("ParameterType")
        errs[code] = _named(par) if par is not None else None
    return ops, errs


def inap_arg_type(opcode: int) -> Any:
    """pycrate type of the operation's argument; None if it has none or the opcode is unknown."""
    entry = _tables()[0].get(opcode)
    return entry[0] if entry else None


def inap_result_type(opcode: int) -> Any:
    """pycrate type of the operation's result; None if it returns none or is unknown."""
    entry = _tables()[0].get(opcode)
    return entry[1] if entry else None


def inap_error_type(errcode: int) -> Any:
    """pycrate type of the error's parameter; None if it has none or the code is unknown."""
    return _tables()[1].get(errcode)


def _first_tags(t: Any) -> set[tuple[int, int]]:
    """The tags a value of ``t`` can start with (an untagged CHOICE: any alternative's)."""
    if t._tagc:
        return {tuple(t._tagc[0])}
    if t.TYPE == "CHOICE":
        out: set[tuple[int, int]] = set()
        for alt in t._cont.values():
            out |= _first_tags(alt)
        return out
    return set()


def _prune(t: Any, buf: bytes, tag: int, vs: int, ve: int, depth: int = 0) -> bytes:
    """Re-encode one TLV of type ``t`` without the SEQUENCE members ``t`` does not define.

    ETS 300 374-1 §4.6.2 has a receiver ignore parameters it does not know (the "..." in
    inap_cs1.asn). pycrate 0.8 skips such a member only when nothing follows it: a Q.1218 or
    operator-specific tag in the middle of a SEQUENCE makes it drop or misread the members
    after it. So unknown members are removed here, before pycrate sees the value.
    """
    if depth > 32:
        raise BerError(vs, "nesting too deep")
    # Explicit tags wrap the value: peel all but the last (for a CHOICE: all of them, which
    # leaves the chosen alternative's own TLV).
    peel = len(t._tagc) - (0 if t.TYPE == "CHOICE" else 1)
    return _prune_at(t, buf, tag, vs, ve, peel, depth)


def _prune_at(t: Any, buf: bytes, tag: int, vs: int, ve: int, peel: int, depth: int) -> bytes:
    """``_prune`` with ``peel`` explicit tags still to go through."""
    if peel > 0:
        kids = children(buf, vs, ve) if is_constructed(tag) else []
        if len(kids) != 1:
            return _whole(buf, tag, vs, ve)  # malformed: pycrate will say what is wrong
        ktag, kvs, kve, _ = kids[0]
        return tlv(tag, _prune_at(t, buf, ktag, kvs, kve, peel - 1, depth + 1))
    kind = t.TYPE
    if kind == "CHOICE":
        ident = class_and_number(tag)
        for alt in t._cont.values():
            if ident in _first_tags(alt):
                return _prune(alt, buf, tag, vs, ve, depth + 1)
        return _whole(buf, tag, vs, ve)
    if not is_constructed(tag):
        return _whole(buf, tag, vs, ve)
    if kind in ("SEQUENCE", "SET"):
        out = []
        comps = list(t._cont.values())
        last = -1
        for ktag, kvs, kve, start in children(buf, vs, ve):
            ident = class_and_number(ktag)
            index = next((i for i, c in enumerate(comps) if ident in _first_tags(c)), -1)
            if index >= 0:
                # X.680 §25: SEQUENCE members come once each, in order (pycrate would
                # silently drop a repeated or late one as an unknown extension).
                if kind == "SEQUENCE" and index <= last:
                    raise BerError(start, f"{comps[index]._name} repeated or out of order")
                last = index
                out.append(_prune(comps[index], buf, ktag, kvs, kve, depth + 1))
            elif t._ext is None:
                out.append(_whole(buf, ktag, kvs, kve))  # not extensible: pycrate refuses it
            # else: an unknown member of an extensible SEQUENCE, ignored (§4.6.2)
        return tlv(tag, b"".join(out))
    if kind in ("SEQUENCE OF", "SET OF"):
        item = t._cont
        return tlv(
            tag,
            b"".join(
                _prune(item, buf, ktag, kvs, kve, depth + 1)
                for ktag, kvs, kve, _ in children(buf, vs, ve)
            ),
        )
    return _whole(buf, tag, vs, ve)


def _whole(buf: bytes, tag: int, vs: int, ve: int) -> bytes:
    """The TLV unchanged (re-encoded with a definite length)."""
    return tlv(tag, buf[vs:ve])


def decode_value(asn_type: Any, data: bytes, *, layer: str = "inap") -> Any:
    """Decode one complete BER TLV of ``asn_type``; any failure becomes a DecodeError.

    Trailing octets after the TLV are an error too: a parameter is exactly one value
    (X.690 §8.1.1). ``offset`` is where pycrate's reader stopped, the best position it gives.
    """
    # deferred like the generated module: scp.codecs.asn's constants load no pycrate
    from pycrate_core.charpy import Charpy

    data = bytes(data)
    name = getattr(asn_type, "_name", "value")
    try:
        tag, vs, ve, nxt = read_tlv(data, 0, len(data))
        if nxt != len(data):
            raise DecodeError(layer, nxt, f"{name}: {len(data) - nxt} octets after the value")
        pruned = _prune(asn_type, data, tag, vs, ve)
    except BerError as exc:
        raise DecodeError(layer, exc.offset, f"{name}: {exc.reason}") from None
    char = Charpy(pruned)
    try:
        asn_type.from_ber(char)
        value = asn_type.get_val()
    except Exception as exc:  # pycrate raises many unrelated types; none may leave codecs/
        raise DecodeError(layer, min(char._cur // 8, len(data)), f"{name}: {exc}") from None
    if char._cur // 8 != len(pruned):
        raise DecodeError(layer, 0, f"{name}: value does not fill its TLV")
    return value


def encode_value(asn_type: Any, value: Any, *, layer: str = "inap") -> bytes:
    """BER-encode ``value`` (pycrate's value notation) as ``asn_type``; failures: EncodeError."""
    # deferred like the generated module: scp.codecs.asn's constants load no pycrate
    from pycrate_asn1rt.codecs import ASN1CodecBER

    name = getattr(asn_type, "_name", "value")
    # A member equal to its DEFAULT is left out (X.690 §11.5, the DER rule every receiver
    # accepts); pycrate keeps this switch global, so it is set only around our encoding.
    canon = ASN1CodecBER.ENC_DEF_CANON
    ASN1CodecBER.ENC_DEF_CANON = True
    try:
        asn_type.set_val(value)
        out = asn_type.to_ber()
    except Exception as exc:  # out-of-range, wrong shape, unknown member...
        raise EncodeError(layer, f"{name}: {exc}") from None
    finally:
        ASN1CodecBER.ENC_DEF_CANON = canon
    if out is None:
        raise EncodeError(layer, f"{name}: no value")
    return bytes(out)
