"""Hand-written BER fast path for the hot CAP / INAP / MAP arguments (no pycrate at run time).

Spec: ITU-T X.690 §8 (BER: identifier octets §8.1.2, definite lengths §8.1.3, INTEGER §8.3,
ENUMERATED §8.4, BOOLEAN §8.2, NULL §8.8, OCTET STRING §8.7, SEQUENCE §8.9, SEQUENCE OF
§8.10, CHOICE §8.13, explicit tagging §8.14) and §11.5 (a component equal to its DEFAULT is
left out, used where the codec encodes canonically: the INAP transcription).

Why: a call decodes InitialDP / EventReportBCSM and encodes RequestReportBCSMEvent, Connect...
on every call; pycrate's generic object machinery costs most of the typed layer's time
(measured by bench/codecs.py). Here each pycrate type is *compiled once* into a tree
of small closures (a "plan") that reads and writes exactly pycrate's value notation, so
the typed conversions (``callcontrol.py``, ``cap.py``, ``map.py``) run unchanged on either
path's output. The TLVs are read and written with :mod:`scp.codecs.ber`, the one reader.

Wiring: :class:`~scp.codecs.opcodec.OperationCodec` sends the opcodes in its
``fast_decode`` / ``fast_encode`` / ``fast_results`` sets here first (``callcontrol.HOT`` for
CAP and INAP: InitialDP, AssistRequestInstructions, EventReportBCSM, ApplyChargingReport,
RequestReportBCSMEvent, Connect, ConnectToResource, PlayAnnouncement,
PromptAndCollectUserInformation, ReleaseCall, ApplyCharging, EstablishTemporaryConnection,
ReceivedInformation; MAP alertServiceCentre v1/v2 and NoteMM-Event) and to pycrate when this
module declines. :mod:`scp.codecs.fast_cap` adds hand-written typed conversions where the
general one is the cost (CAMEL-CallResult); it declines the same way.

Contract (proved by ``tests/unit/test_codecs_fastpath*.py`` against pycrate on a corpus):

* :func:`decode` returns pycrate's ``get_val()`` for the parameter, or :data:`DECLINE`.
* :func:`encode` returns pycrate's ``to_ber()`` for the value, or :data:`DECLINE`.
* Anything unusual declines (returns :data:`DECLINE`, the one convention of the fast paths)
  so the caller falls back to pycrate, which then gives the value or the error: malformed
  BER, indefinite lengths, constructed strings, non-minimal tags, unknown or
  out-of-order or repeated components, extension markers' unknown values, out-of-constraint
  values, components whose types are not modelled (open types, BIT STRING, character
  strings, ...). Nothing but :data:`DECLINE` or a value ever comes out: no exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from scp.codecs.ber import (
    BerError,
    encode_integer,
    encode_length,
    identifier,
    identifier_octets,
    read_tlv,
)

__all__ = ["DECLINE", "Declined", "decode", "encode", "plan_of", "ENABLED"]


class Declined:
    """The type of :data:`DECLINE`, for annotations (``bytes | Declined``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DECLINE"

    def __bool__(self) -> bool:
        return False


DECLINE: Final = Declined()
"""Returned when the fast path does not handle an input: use the pycrate path."""

ENABLED: bool = True
"""Global switch (tests turn it off to compare against the pycrate-only path)."""


class _D(Exception):
    """Internal: decline (never leaves this module)."""


_DECLINE_EXC = (
    _D,
    BerError,  # malformed BER: pycrate says what is wrong
    IndexError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    RecursionError,
)

Dec = Callable[[bytes, int, int], Any]  # (buf, value start, value end) -> value
Enc = Callable[[Any], bytes]  # value -> complete TLV


# Short-form length octets, looked up in the encoders' innermost step (no call).
_LEN1 = [encode_length(i) for i in range(0x80)]


# --------------------------------------------------------------------------------------------
# Constraints
# --------------------------------------------------------------------------------------------


def _ranges(cset: Any) -> tuple[tuple[float, float], ...] | None:
    """The root of an ASN1Set of integers as (lo, hi) pairs; None: no constraint.

    Raises _D for a shape we do not model (the node then always declines).
    """
    if cset is None:
        return None
    out: list[tuple[float, float]] = []
    for r in cset.root:
        if isinstance(r, int):
            out.append((r, r))
        elif hasattr(r, "lb") and hasattr(r, "ub"):
            lo = float("-inf") if r.lb is None else r.lb
            hi = float("inf") if r.ub is None else r.ub
            out.append((lo, hi))
        else:
            raise _D
    return tuple(out)


def _inside(v: int, rs: tuple[tuple[float, float], ...] | None) -> bool:
    if rs is None:
        return True
    for lo, hi in rs:
        if lo <= v <= hi:
            return True
    return False


# --------------------------------------------------------------------------------------------
# Plans: one (decoder, encoder, tags it may start with) per pycrate type object
# --------------------------------------------------------------------------------------------


class _Plan:
    """Compiled codec of one pycrate type: ``dec(buf, vs, ve)`` of the *outermost* TLV's value
    for tagged types, and ``enc(value)`` giving the complete TLV(s); ``first`` the identifier
    ints a value can start with (several for an untagged CHOICE)."""

    __slots__ = ("dec", "enc", "first", "name", "tagged")

    def __init__(self, dec: Dec, enc: Enc, first: dict[int, Dec], name: str, tagged: bool):
        self.dec = dec
        self.enc = enc
        self.first = first  # identifier -> decoder of that TLV's value
        self.name = name
        self.tagged = tagged


def _never_dec(buf: bytes, vs: int, ve: int) -> Any:
    raise _D


def _never_enc(v: Any) -> bytes:
    raise _D


_PRIMITIVE = {"INTEGER", "ENUMERATED", "BOOLEAN", "NULL", "OCTET STRING"}
_CONSTRUCTED = {"SEQUENCE", "SEQUENCE OF", "SET OF", "CHOICE"}
# Constraint attributes this module understands; any other one set makes the type decline.
_OTHER_CONSTRAINTS = ("_const_cont", "_const_tab", "_const_alpha", "_const_regexp")


def _unsupported(t: Any) -> bool:
    if t.TYPE not in _PRIMITIVE and t.TYPE not in _CONSTRUCTED:
        return True
    if getattr(t, "_param", None):
        return True
    for a in _OTHER_CONSTRAINTS:
        if getattr(t, a, None):
            return True
    if t.TYPE in ("INTEGER", "ENUMERATED", "BOOLEAN", "NULL") and getattr(t, "_const_sz", None):
        return True
    if t.TYPE not in ("INTEGER",) and getattr(t, "_const_val", None):
        return True
    if t.TYPE == "SEQUENCE" and getattr(t, "_ext_group", None):
        return True
    if getattr(t, "_ENC_MAXLEN", None):
        return True
    return False


def _body(t: Any, canon: bool, depth: int) -> tuple[Dec, Callable[[Any], bytes], bool]:
    """(decoder of the contents octets, encoder of the contents octets, constructed)."""
    kind = t.TYPE
    if kind == "INTEGER":
        rs = _ranges(getattr(t, "_const_val", None))

        def dec_int(buf: bytes, vs: int, ve: int) -> int:
            n = ve - vs
            if n == 1:
                v = buf[vs]
                if v & 0x80:
                    v -= 256
            elif 1 < n <= 8:
                v = int.from_bytes(buf[vs:ve], "big", signed=True)
            else:
                raise _D
            if rs is not None and not _inside(v, rs):
                raise _D
            return v

        def enc_int(v: Any) -> bytes:
            if type(v) is not int or (rs is not None and not _inside(v, rs)):
                raise _D
            return encode_integer(v)

        return dec_int, enc_int, False
    if kind == "ENUMERATED":
        rev: dict[int, str] = dict(t._cont_rev)
        fwd: dict[str, int] = dict(t._cont)

        def dec_enum(buf: bytes, vs: int, ve: int) -> str:
            n = ve - vs
            if n == 1:
                v = buf[vs]
                if v & 0x80:
                    v -= 256
            elif 1 < n <= 4:
                v = int.from_bytes(buf[vs:ve], "big", signed=True)
            else:
                raise _D
            return rev[v]  # KeyError: unknown (extension) value -> decline

        def enc_enum(v: Any) -> bytes:
            if type(v) is not str:
                raise _D
            return encode_integer(fwd[v])

        return dec_enum, enc_enum, False
    if kind == "BOOLEAN":

        def dec_bool(buf: bytes, vs: int, ve: int) -> bool:
            if ve - vs != 1:
                raise _D
            return buf[vs] != 0

        def enc_bool(v: Any) -> bytes:
            if type(v) is not bool:
                raise _D
            return b"\xff" if v else b"\x00"

        return dec_bool, enc_bool, False
    if kind == "NULL":

        def dec_null(buf: bytes, vs: int, ve: int) -> int:
            if ve != vs:
                raise _D
            return 0

        def enc_null(v: Any) -> bytes:
            if type(v) is not int or v != 0:
                raise _D
            return b""

        return dec_null, enc_null, False
    if kind == "OCTET STRING":
        rs = _ranges(getattr(t, "_const_sz", None))

        def dec_oct(buf: bytes, vs: int, ve: int) -> bytes:
            if rs is not None and not _inside(ve - vs, rs):
                raise _D
            return buf[vs:ve]

        def enc_oct(v: Any) -> bytes:
            if type(v) is not bytes or (rs is not None and not _inside(len(v), rs)):
                raise _D
            return v

        return dec_oct, enc_oct, False
    if kind in ("SEQUENCE OF", "SET OF"):  # pycrate keeps a SET OF in list order both ways
        rs = _ranges(getattr(t, "_const_sz", None))
        item = _plan(t._cont, canon, depth + 1)
        ifirst = item.first
        ienc = item.enc

        def dec_seqof(buf: bytes, vs: int, ve: int) -> list[Any]:
            out = []
            p = vs
            while p < ve:
                ident, a, b, p = read_tlv(buf, p, ve)
                if b != p:
                    raise _D  # indefinite length: pycrate's business
                out.append(ifirst[ident](buf, a, b))
            if rs is not None and not _inside(len(out), rs):
                raise _D
            return out

        def enc_seqof(v: Any) -> bytes:
            if type(v) is not list or (rs is not None and not _inside(len(v), rs)):
                raise _D
            return b"".join([ienc(x) for x in v])

        return dec_seqof, enc_seqof, True
    if kind == "SEQUENCE":
        # identifier -> candidates (index, name, decoder) in definition order: BER tells
        # members with the same tag apart by their order (e.g. MAP's two AddressStrings).
        by_ident: dict[int, list[tuple[int, str, Dec]]] = {}
        encs: dict[str, tuple[int, Enc]] = {}
        defaults: dict[str, Any] = {}
        for i, (name, comp) in enumerate(t._cont.items()):
            cp = _plan(comp, canon, depth + 1)
            if not comp._tagc and not cp.first:
                # An untagged member we cannot read (open type, ANY): pycrate guesses which
                # TLV is it, so nothing about this SEQUENCE can be predicted. Not for us.
                raise _D
            for ident, d in cp.first.items():
                by_ident.setdefault(ident, []).append((i, name, d))
            encs[name] = (i, cp.enc)
            if canon and getattr(comp, "_def", None) is not None:
                defaults[name] = comp._def
        single = {k: c[0] for k, c in by_ident.items() if len(c) == 1}
        multi = {k: tuple(c) for k, c in by_ident.items() if len(c) > 1}
        mand = tuple(t._root_mand)

        def dec_seq(buf: bytes, vs: int, ve: int) -> dict[str, Any]:
            out: dict[str, Any] = {}
            last = -1
            p = vs
            while p < ve:
                ident, a, b, p = read_tlv(buf, p, ve)
                if b != p:
                    raise _D  # indefinite length: pycrate's business
                c = single.get(ident)
                if c is None:
                    for c in multi[ident]:  # unknown member: KeyError -> decline
                        if c[0] > last:
                            break
                    else:
                        raise _D
                i, name, d = c
                if i <= last:
                    raise _D  # repeated or out of order
                last = i
                out[name] = d(buf, a, b)
            for m in mand:
                if m not in out:
                    raise _D
            return out

        def enc_seq(v: Any) -> bytes:
            if type(v) is not dict:
                raise _D
            for m in mand:
                if m not in v:
                    raise _D
            items = sorted([(encs[k][0], k, x) for k, x in v.items()])
            parts = []
            for _i, k, x in items:
                if defaults and k in defaults:
                    dv = defaults[k]
                    if type(x) is type(dv) and x == dv:
                        continue  # X.690 §11.5, as pycrate's ENC_DEF_CANON does
                parts.append(encs[k][1](x))
            return b"".join(parts)

        return dec_seq, enc_seq, True
    raise _D


def _plan(t: Any, canon: bool, depth: int = 0) -> _Plan:
    """The plan of pycrate type ``t`` (cached by identity and encoding mode)."""
    key = (id(t), canon)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is t:
        return hit[1]
    plan = _compile(t, canon, depth)
    _PLANS[key] = (t, plan)
    return plan


_PLANS: dict[tuple[int, bool], tuple[Any, _Plan]] = {}


def _alt_dec(aname: str, d: Dec) -> Dec:
    """Decoder of one alternative's TLV value giving pycrate's (name, value) CHOICE pair."""

    def dec_alternative(buf: bytes, vs: int, ve: int) -> tuple[str, Any]:
        return (aname, d(buf, vs, ve))

    return dec_alternative


def _wrap_dec(inner_ident: int, inner: Dec) -> Dec:
    """Decoder of an explicit tag's contents: exactly one TLV with ``inner_ident``."""

    def dec_explicit(buf: bytes, vs: int, ve: int) -> Any:
        ident, a, b, _n = read_tlv(buf, vs, ve)
        if ident != inner_ident or b != ve:  # (an indefinite length ends before ve)
            raise _D
        return inner(buf, a, b)

    return dec_explicit


def _compile(t: Any, canon: bool, depth: int) -> _Plan:
    name = getattr(t, "_name", "?")
    try:
        if depth > 40 or _unsupported(t):
            raise _D
        tags = [(cls, num) for cls, num in t._tagc]
        if t.TYPE == "CHOICE":
            alts: dict[int, tuple[str, Dec]] = {}
            aencs: dict[str, Enc] = {}
            for aname, alt in t._cont.items():
                ap = _plan(alt, canon, depth + 1)
                for ident, d in ap.first.items():
                    if ident in alts:
                        raise _D
                    alts[ident] = (aname, d)
                aencs[aname] = ap.enc

            def dec_alt(ident: int, buf: bytes, vs: int, ve: int) -> tuple[str, Any]:
                aname, d = alts[ident]
                return (aname, d(buf, vs, ve))

            def enc_choice_inner(v: Any) -> bytes:
                if type(v) is not tuple or len(v) != 2:
                    raise _D
                return aencs[v[0]](v[1])

            if not tags:
                # An untagged CHOICE starts with its alternatives' own tags.
                first: dict[int, Dec] = {
                    ident: _alt_dec(aname, d) for ident, (aname, d) in alts.items()
                }
                return _Plan(_never_dec, enc_choice_inner, first, name, False)

            # Tagged CHOICE: every tag is explicit, the innermost TLV is the alternative's.
            def dec_choice_body(buf: bytes, vs: int, ve: int) -> tuple[str, Any]:
                ident, a, b, _n = read_tlv(buf, vs, ve)
                if b != ve:  # (an indefinite length ends before ve)
                    raise _D
                return dec_alt(ident, buf, a, b)

            dec: Dec = dec_choice_body
            enc_body: Callable[[Any], bytes] = enc_choice_inner
            outer = [identifier(c, True, n) for c, n in tags]
            for ident in reversed(outer[1:]):
                dec = _wrap_dec(ident, dec)
            return _Plan(dec, _wrap_enc(outer, enc_body), {outer[0]: dec}, name, True)
        if not tags:
            raise _D  # an untagged non-CHOICE without a universal tag: not modelled
        bdec, benc, constructed = _body(t, canon, depth)
        idents = [identifier(c, True, n) for c, n in tags[:-1]]
        idents.append(identifier(tags[-1][0], constructed, tags[-1][1]))
        dec = bdec
        for i in range(len(idents) - 1, 0, -1):
            dec = _wrap_dec(idents[i], dec)
        return _Plan(dec, _wrap_enc(idents, benc), {idents[0]: dec}, name, True)
    except _D:
        return _Plan(_never_dec, _never_enc, {}, name, False)
    except (AttributeError, TypeError, KeyError, ValueError):
        return _Plan(_never_dec, _never_enc, {}, name, False)


def _wrap_enc(idents: list[int], body: Callable[[Any], bytes]) -> Enc:
    heads = [identifier_octets(i) for i in idents]
    if len(heads) == 1:
        h = heads[0]

        def enc_one(v: Any) -> bytes:
            c = body(v)
            n = len(c)
            if n < 0x80:
                return h + _LEN1[n] + c
            return h + encode_length(n) + c

        return enc_one

    def enc_many(v: Any) -> bytes:
        c = body(v)
        for h in reversed(heads):
            c = h + encode_length(len(c)) + c
        return c

    return enc_many


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def plan_of(t: Any, canon: bool = False) -> _Plan:
    """The compiled plan of pycrate type ``t`` (``canon``: leave out DEFAULT values)."""
    return _plan(t, canon)


def decode(t: Any, parameter: bytes, canon: bool = False) -> Any:
    """pycrate's value notation of ``parameter`` (one complete TLV of type ``t``) or DECLINE."""
    if type(parameter) is not bytes:  # slices of a bytearray would not compare as pycrate's
        return DECLINE
    try:
        plan = _plan(t, canon)
        ident, vs, ve, _n = read_tlv(parameter, 0, len(parameter))
        if ve != len(parameter):  # trailing octets, or an indefinite length
            return DECLINE
        return plan.first[ident](parameter, vs, ve)
    except _DECLINE_EXC:
        return DECLINE


def encode(t: Any, value: Any, canon: bool = False) -> bytes | Declined:
    """pycrate's BER encoding of ``value`` as type ``t`` or DECLINE.

    ``canon``: members equal to their DEFAULT are left out (pycrate's ENC_DEF_CANON).
    """
    try:
        out = _plan(t, canon).enc(value)
    except _DECLINE_EXC:
        return DECLINE
    return out
