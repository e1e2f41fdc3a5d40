"""The hand-written BER fast path (scp.codecs.fastber) against pycrate: goldens, wiring, CAP decode.

The fast path must give exactly pycrate's value (decode) or octets (encode), or decline.
This file holds the shared differential harness (used by ``test_codecs_fastpath_*.py``), the
golden cases of the plans, the wiring into ``cap/inap/map`` and the CAP decode differential:
every golden case, round-trip value and real-capture component of the hot operations, then
>= 10,000 mutated parameters per hot operation, each decoded by both paths.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

import pytest

from scp.codecs import appctx, callcontrol, cap, fast_cap, fastber, inap, ops
from scp.codecs import map as m
from scp.codecs.ber import children, read_tlv
from scp.codecs.errors import CodecError, DecodeError, EncodeError
from scp.codecs.opcodec import OperationCodec
from tests import tshark
from tests.unit import test_codecs_cap as tc
from tests.unit import test_codecs_inap as ti
from tests.unit import test_codecs_map as tm
from tests.unit.codec_frames import PCAPS, components_from_pcap, invoke, wrap

MUTATIONS = 10_000  # mutated parameters per hot operation
V2, V4 = tc.V2, tc.V4
SRF_V2 = tc.SRF_V2

# --------------------------------------------------------------------------------------------
# Differential harness
# --------------------------------------------------------------------------------------------

_ERR = object()


def pycrate_decode(codec: OperationCodec, t: Any, p: bytes) -> Any:
    """The pycrate-only value of ``p`` (``_ERR`` when pycrate refuses it)."""
    try:
        return codec.ber_decode(t, p)
    except DecodeError:
        return _ERR


def pycrate_encode(codec: OperationCodec, t: Any, v: Any) -> Any:
    """pycrate's octets for ``v`` (``_ERR`` when it refuses); pycrate may edit ``v``: copy."""
    try:
        return codec.ber_encode(t, copy.deepcopy(v))
    except EncodeError:
        return _ERR


class Stats:
    """How many inputs each path handled: the fast path must take a fair share."""

    def __init__(self) -> None:
        self.total = 0
        self.fast = 0
        self.pycrate_ok = 0
        self.enc_fast = 0
        self.enc_total = 0


def check_decode(codec: OperationCodec, t: Any, p: bytes, st: Stats) -> Any:
    """Fast value == pycrate value (same reprs: bool is not int), or fast declined.

    Returns pycrate's value (or ``_ERR``).
    """
    st.total += 1
    fast = fastber.decode(t, p, codec.canon)
    slow = pycrate_decode(codec, t, p)
    if slow is not _ERR:
        st.pycrate_ok += 1
    if fast is not fastber.DECLINE:
        st.fast += 1
        assert slow is not _ERR, f"fast path accepted what pycrate refuses: {p.hex()}"
        assert fast == slow and repr(fast) == repr(slow), (p.hex(), fast, slow)
    return slow


def check_encode(codec: OperationCodec, t: Any, v: Any, st: Stats) -> None:
    """Fast octets == pycrate octets, or fast declined (never octets where pycrate refuses)."""
    st.enc_total += 1
    fast = fastber.encode(t, v, codec.canon)
    if fast is fastber.DECLINE:
        return
    st.enc_fast += 1
    slow = pycrate_encode(codec, t, v)
    assert slow is not _ERR, f"fast path encoded what pycrate refuses: {v!r}"
    assert fast == slow, (v, fast.hex(), slow.hex())  # type: ignore[union-attr]


def typed_both(fn: Any, *args: Any, **kw: Any) -> tuple[Any, Any]:
    """``fn`` with the fast path on, then off: (result or exception type) of each."""
    out = []
    for on in (True, False):
        fastber.ENABLED = on
        try:
            out.append(fn(*args, **kw))
        except CodecError as exc:
            out.append(type(exc))
        finally:
            fastber.ENABLED = True
    return out[0], out[1]


def _children(p: bytes) -> list[bytes]:
    try:
        tag, vs, ve, nxt = read_tlv(p, 0, len(p))
        return [p[s:ve2] for _t, _v, ve2, s in children(p, vs, ve)] if tag & 0x20 else []
    except DecodeError:
        return []


def _head(p: bytes) -> bytes | None:
    try:
        tag, vs, ve, nxt = read_tlv(p, 0, len(p))
    except DecodeError:
        return None
    return p[:1] if p[0] & 0x1F != 0x1F else None


def mutate(rng: random.Random, p: bytes) -> bytes:
    """One mutation of a parameter TLV: octet-level or TLV-level (kids dropped, repeated,
    swapped, foreign ones added, contents resized, long-form or indefinite lengths)."""
    kids = _children(p)
    head = _head(p)
    what = rng.randrange(12)
    if what < 6 and kids and head is not None:
        k = list(kids)
        i = rng.randrange(len(k))
        if what == 0:
            del k[i]
        elif what == 1:
            k.insert(i, k[i])
        elif what == 2:
            j = rng.randrange(len(k))
            k[i], k[j] = k[j], k[i]
        elif what == 3:
            tag = rng.choice([0x80, 0x9F, 0xBF, 0xA0 | rng.randrange(31), 0x80 | rng.randrange(31)])
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(4)))
            if tag & 0x1F == 0x1F:
                k.insert(i, bytes((tag, rng.randrange(31, 120), len(body))) + body)
            else:
                k.insert(i, bytes((tag, len(body))) + body)
        elif what == 4:  # resize / rewrite one kid's contents, keeping its tag
            kt = k[i][: 2 if k[i][0] & 0x1F == 0x1F else 1]
            inner = _children(k[i])
            if inner and rng.random() < 0.5:
                inner = [mutate(rng, x) if rng.random() < 0.5 else x for x in inner]
                body = b"".join(inner)
            else:
                body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
            k[i] = kt + _len(len(body), rng) + body
        else:  # recurse into one kid
            k[i] = mutate(rng, k[i])
        body = b"".join(k)
        return head + _len(len(body), rng) + body
    if what == 6 and head is not None:  # re-frame with a long-form (or indefinite) length
        tag, vs, ve, _n = read_tlv(p, 0, len(p))
        if rng.random() < 0.3 and p[0] & 0x20:
            return head + b"\x80" + p[vs:ve] + b"\x00\x00"
        return head + bytes((0x81, ve - vs)) + p[vs:ve] if ve - vs < 256 else p
    b = bytearray(p)
    for _ in range(rng.randrange(1, 3)):
        op = rng.randrange(5)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 2 and b:
            del b[rng.randrange(len(b)) :]
        elif op == 3:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif b:
            i = rng.randrange(len(b))
            b[i:i] = b[i : i + rng.randrange(1, 6)]
    return bytes(b)


def _len(n: int, rng: random.Random) -> bytes:
    if n < 0x80 and rng.random() < 0.93:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def corpus(seeds: list[bytes], n: int, seed: int) -> Iterator[bytes]:
    """The seeds, then ``n`` mutated parameters (1-3 stacked mutations of a random seed)."""
    yield from seeds
    rng = random.Random(seed)
    for _ in range(n):
        p = rng.choice(seeds)
        for _k in range(rng.choice((1, 1, 1, 2, 3))):
            p = mutate(rng, p)
        yield p


def mutate_value(rng: random.Random, v: Any, depth: int = 0) -> Any:
    """A pycrate value with one node changed: wrong types, out-of-range numbers, unknown
    members or alternatives, sizes off by one... (what an encoder may be handed)."""
    if isinstance(v, dict) and v and rng.random() < 0.7 and depth < 6:
        d = dict(v)
        k = rng.choice(list(d))
        r = rng.random()
        if r < 0.1:
            del d[k]
        elif r < 0.15:
            d["_ext_unknown"] = b"\x00"
        else:
            d[k] = mutate_value(rng, d[k], depth + 1)
        return d
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) and rng.random() < 0.8:
        if rng.random() < 0.15:
            return ("noSuchAlternative", v[1])
        return (v[0], mutate_value(rng, v[1], depth + 1))
    if isinstance(v, list) and v and rng.random() < 0.7:
        lst = list(v)
        r = rng.random()
        if r < 0.2:
            return []
        if r < 0.4:
            return lst * rng.randrange(2, 12)
        i = rng.randrange(len(lst))
        lst[i] = mutate_value(rng, lst[i], depth + 1)
        return lst
    choices: list[Any] = [
        True,
        False,
        0,
        1,
        -1,
        127,
        128,
        255,
        256,
        65535,
        2**31,
        -(2**31),
        2**40,
        b"",
        b"\x00",
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 50))),
        "tBusy",
        "interrupted",
        "notAName",
        None,
        [],
        {},
        ("x", 0),
        1.5,
    ]
    if isinstance(v, int) and not isinstance(v, bool):
        choices += [v + 1, v - 1, -v, v * 1000]
    if isinstance(v, bytes):
        choices += [v + b"\x00", v[:-1], v * 3, bytearray(v)]
    return rng.choice(choices)


# --------------------------------------------------------------------------------------------
# Goldens of the plans: hand-checked octets, both ways
# --------------------------------------------------------------------------------------------

CAP_IDP_T = cap.CODEC.args[0][1]
CAP_ERB_T = cap.CODEC.args[24][1]
CAP_RI_T = cap.CODEC.results[48][1]
MAP_ASC_T = m.CODEC.args[64][1]
INAP_PA_T = inap.CODEC.args[47][1]

# (name, pycrate type, canon, value notation, wire)
GOLDEN: list[tuple[str, Any, bool, Any, bytes]] = [
    (
        "InitialDP minimal",
        CAP_IDP_T,
        False,
        {"serviceKey": 100, "eventTypeBCSM": "termAttemptAuthorized"},
        # 30 06 SEQUENCE | 80 01 64 [0] serviceKey 100 | 9c 01 0c [28] eventTypeBCSM 12
        bytes.fromhex("30 06 80 01 64 9c 01 0c"),
    ),
    (
        "InitialDP serviceKey needs a leading zero",
        CAP_IDP_T,
        False,
        {"serviceKey": 200},
        # 80 02 00 c8: 200 is 0xc8, positive, so two's complement needs 00 in front
        bytes.fromhex("30 04 80 02 00 c8"),
    ),
    (
        "EventReportBCSM tBusy with explicit LegID",
        CAP_ERB_T,
        False,
        {
            "eventTypeBCSM": "tBusy",
            "eventSpecificInformationBCSM": ("tBusySpecificInfo", {"busyCause": b"\x80\x91"}),
            "legID": ("receivingSideID", b"\x02"),
            "miscCallInfo": {"messageType": "request"},
        },
        # 80 01 0d eventTypeBCSM tBusy | a2 06 [2] CHOICE | a8 04 [8] tBusySpecificInfo |
        # 80 02 80 91 busyCause | a3 03 [3] LegID (explicit: CHOICE) | 81 01 02 receivingSideID 2
        # | a4 03 [4] miscCallInfo | 80 01 00 messageType request
        bytes.fromhex("30 15 80 01 0d a2 06 a8 04 80 02 80 91 a3 03 81 01 02 a4 03 80 01 00"),
    ),
    (
        "ReceivedInformation digitsResponse (untagged CHOICE at top)",
        CAP_RI_T,
        False,
        ("digitsResponse", bytes.fromhex("0010 01")),
        # 80 03 [0] digitsResponse | 00 10 01 Generic Digits "1" (BCD even)
        bytes.fromhex("80 03 00 10 01"),
    ),
    (
        "AlertServiceCentre: two OCTET STRINGs with the same tag, told apart by order",
        MAP_ASC_T,
        False,
        {"msisdn": bytes.fromhex("916831"), "serviceCentreAddress": bytes.fromhex("9168")},
        # 04 03 msisdn | 04 02 serviceCentreAddress
        bytes.fromhex("30 09 04 03 91 68 31 04 02 91 68"),
    ),
    (
        "INAP PlayAnnouncement: DEFAULT TRUE members left out",
        INAP_PA_T,
        True,
        {
            "informationToSend": ("inbandInfo", {"messageID": ("elementaryMessageID", 10)}),
            "disconnectFromIPForbidden": True,
            "requestAnnouncementComplete": False,
        },
        # a0 07 a0 05 a0 03 80 01 0a messageID 10 | (81 TRUE = DEFAULT, left out) |
        # 82 01 00 requestAnnouncementComplete FALSE
        bytes.fromhex("30 0c a0 07 a0 05 a0 03 80 01 0a 82 01 00"),
    ),
]


@pytest.mark.parametrize("name,t,canon,value,wire", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden(name: str, t: Any, canon: bool, value: Any, wire: bytes) -> None:
    assert fastber.encode(t, value, canon) == wire
    back = fastber.decode(t, wire, canon)
    expect = copy.deepcopy(value)
    if canon:  # DEFAULT members come back absent, as from pycrate
        expect = {k: v for k, v in value.items() if k != "disconnectFromIPForbidden"}
    assert back == expect
    codec = inap.CODEC if canon else cap.CODEC
    assert pycrate_encode(codec, t, value) == wire
    assert pycrate_decode(codec, t, wire) == back


DECLINED: list[tuple[str, Any, bytes]] = [
    ("indefinite length", CAP_IDP_T, bytes.fromhex("30 80 80 01 64 00 00")),
    ("unknown member", CAP_IDP_T, bytes.fromhex("30 06 80 01 64 9f 7f 00")),
    ("members out of order", CAP_IDP_T, bytes.fromhex("30 06 9c 01 0c 80 01 64")),
    ("member repeated", CAP_IDP_T, bytes.fromhex("30 06 80 01 64 80 01 65")),
    ("mandatory member missing", CAP_IDP_T, bytes.fromhex("30 03 9c 01 0c")),
    ("constructed OCTET STRING", CAP_IDP_T, bytes.fromhex("30 09 80 01 64 a2 04 04 02 01 02")),
    ("serviceKey out of range", CAP_IDP_T, bytes.fromhex("30 03 80 01 ff")),
    ("non-minimal tag", CAP_IDP_T, bytes.fromhex("30 04 9f 00 01 64")),
    ("octets after the TLV", CAP_IDP_T, bytes.fromhex("30 03 80 01 64 00")),
    ("unknown enumeration value", CAP_IDP_T, bytes.fromhex("30 06 80 01 64 9c 01 63")),
    (
        "extensions (open type)",
        CAP_IDP_T,
        bytes.fromhex("30 0d 80 01 64 af 08 30 06 02 01 01 a1 01 00"),
    ),
    ("empty INTEGER", CAP_IDP_T, bytes.fromhex("30 02 80 00")),
    (
        "BOOLEAN of two octets",
        INAP_PA_T,
        bytes.fromhex("30 0d a0 07 a0 05 a0 03 80 01 0a 81 02 00 00"),
    ),
    ("truncated", CAP_ERB_T, bytes.fromhex("30 14 80 01 0d a2 06")),
    ("empty", CAP_ERB_T, b""),
]


@pytest.mark.parametrize("name,t,wire", DECLINED, ids=[d[0] for d in DECLINED])
def test_unusual_input_declines(name: str, t: Any, wire: bytes) -> None:
    assert fastber.decode(t, wire) is fastber.DECLINE


def test_unusual_values_decline_encoding() -> None:
    for bad in (
        {"serviceKey": True},  # bool is not INTEGER for us (pycrate takes it as 1)
        {"serviceKey": -1},
        {"serviceKey": 1, "noSuchMember": 0},
        {"serviceKey": 1, "calledPartyNumber": b"\x01"},  # SIZE (2..18)
        {"serviceKey": 1, "calledPartyNumber": bytearray(b"\x01\x02")},
        {"serviceKey": 1, "eventTypeBCSM": "notAnEvent"},
        {"serviceKey": 1, "extensions": [{"type": ("local", 1), "value": b""}]},
        {"calledPartyNumber": b"\x01\x02"},  # mandatory serviceKey missing
        ("serviceKey", 1),
    ):
        assert fastber.encode(CAP_IDP_T, bad) is fastber.DECLINE, bad


def test_long_form_lengths_decode_and_encode() -> None:
    # 04 81 03: a non-minimal long-form length (X.690 §8.1.3.5 allows it); same value.
    wire = bytes.fromhex("30 0b 04 81 03 91 68 31 04 81 02 91 68")
    value = fastber.decode(MAP_ASC_T, wire)
    assert value == {"msisdn": bytes.fromhex("916831"), "serviceCentreAddress": b"\x91\x68"}
    assert value == pycrate_decode(m.CODEC, MAP_ASC_T, wire)
    # Contents over 127 octets take 81 xx / 82 xx xx, as pycrate writes them (X.690 §8.1.3.5).
    for times, head in ((2, "30 81 85 a0 81 82"), (4, "30 82 01 08 a0 82 01 04")):
        events = tuple(ops.BCSMEvent(e, 0, ops.LegID(2, True)) for e in (13, 14, 15, 17, 18))
        rrbe = ops.RequestReportBCSMEvent(events * times)  # 13 octets per event
        code, p = cap.CODEC.encode_arg(rrbe, ac=V2)
        assert p is not None and p.startswith(bytes.fromhex(head))
        assert typed_both(cap.CODEC.encode_arg, rrbe, ac=V2) == ((code, p), (code, p))
        assert cap.CODEC.decode_arg(code, p, ac=V2) == rrbe


def test_garbage_never_raises() -> None:
    """Random octets against every compiled argument type: DECLINE or pycrate's value."""
    rng = random.Random(7)
    types = [(cap.CODEC, t) for _n, t in cap.CODEC.args.values() if t is not None]
    types += [(inap.CODEC, t) for _n, t in inap.CODEC.args.values() if t is not None]
    types += [(m.CODEC, m.CODEC.args[c][1]) for c in (49, 64, 89)]
    st = Stats()
    for i in range(20_000):
        codec, t = types[i % len(types)]
        p = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 24)))
        if i % 3 == 0:
            p = bytes((0x30, len(p))) + p
        check_decode(codec, t, p, st)
    assert st.total == 20_000


# --------------------------------------------------------------------------------------------
# Wiring: the codecs try the fast path first and fall back when it declines
# --------------------------------------------------------------------------------------------


def test_codecs_dispatch_hot_opcodes_and_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_dec, real_enc = fastber.decode, fastber.encode

    def spy_dec(t: Any, p: bytes, canon: bool = False) -> Any:
        calls.append("dec")
        return real_dec(t, p, canon)

    def spy_enc(t: Any, v: Any, canon: bool = False) -> Any:
        calls.append("enc")
        return real_enc(t, v, canon)

    monkeypatch.setattr(fastber, "decode", spy_dec)
    monkeypatch.setattr(fastber, "encode", spy_enc)
    code, p = cap.CODEC.encode_arg(tc.IDP, ac=V2)
    assert calls == ["enc"]
    calls.clear()
    assert cap.CODEC.decode_arg(code, p, ac=V2) == tc.IDP and calls == ["dec"]
    calls.clear()
    cap.CODEC.decode_arg(*cap.CODEC.encode_arg(tc.RRBE, ac=V2), ac=V2)
    assert calls == ["enc", "dec"]
    calls.clear()
    cap.CODEC.decode_arg(33, cap.CODEC.encode_arg(ops.ResetTimer(60), ac=V2)[1], ac=V2)
    assert calls == []  # not a hot operation: pycrate only
    calls.clear()
    code, p = cap.CODEC.encode_arg(tc.CONNECT, ac=V2)
    assert calls == ["enc"]
    calls.clear()
    # Declined (indefinite length): pycrate decodes it, same value.
    indef = bytes.fromhex("30 80") + p[2:] + b"\x00\x00"
    assert cap.CODEC.decode_arg(20, indef, ac=V2) == tc.CONNECT
    erb = wrap_erb = cap.CODEC.encode_arg(tc.ERB_BUSY, ac=V2)[1]
    assert wrap_erb is not None
    assert fastber.decode(CAP_ERB_T, erb) is not fastber.DECLINE
    assert m.CODEC.decode_arg(64, tm.GOLDEN[0][3], ac=tm.ALERT_V2) == tm.GOLDEN[0][1]
    assert m.CODEC.encode_arg(tm.ARGS[1][1], ac=tm.ALERT_V1) == (49, tm.GOLDEN[0][3])
    assert "dec" in calls and "enc" in calls
    ri = ops.ReceivedInformation(tc.GenericDigits("12"))
    calls.clear()
    assert cap.CODEC.decode_result(48, cap.CODEC.encode_result(48, ri)) == ri
    assert calls == ["enc", "dec"]


def test_switch_off_gives_the_pycrate_path() -> None:
    code, p = cap.CODEC.encode_arg(tc.RRBE, ac=V2)
    a, b = typed_both(cap.CODEC.encode_arg, tc.RRBE, ac=V2)
    assert a == b == (code, p)


# --------------------------------------------------------------------------------------------
# CAP decode differential
# --------------------------------------------------------------------------------------------


def _cap_seeds() -> dict[tuple[int, str], list[tuple[bytes, tuple[int, ...] | None]]]:
    """(opcode, "arg"/"res") -> parameters from goldens, round trips, captures, bench."""
    out: dict[tuple[int, str], list[tuple[bytes, tuple[int, ...] | None]]] = {}

    def add(code: Any, p: bytes | None, ac: Any, kind: str = "arg") -> None:
        if isinstance(code, int) and p:
            out.setdefault((code, kind), []).append((p, ac))

    for _n, op, acs in tc.CASES:
        for ac in acs:
            add(*cap.CODEC.encode_arg(op, ac=ac), ac)
    for _n, _op, ac, code, wire in tc.GOLDEN:
        add(code, wire, ac)
    for kind, code, p, ac in components_from_pcap(PCAPS / "cap_wireshark-sample_camel_m2ua.pcap"):
        add(code, p, ac or V2, "arg" if kind == "invoke" else "res")
    for ri in ("1", "12", "123456", "0987654321"):
        add(
            48,
            cap.CODEC.encode_result(48, ops.ReceivedInformation(tc.GenericDigits(ri))),
            SRF_V2,
            "res",
        )
    for op, ac in _extra_cap_values():
        add(*cap.CODEC.encode_arg(op, ac=ac), ac)
    for code, value in _extra_cap_pycrate():
        add(code, cap.CODEC.ber_encode(cap.CODEC.args[code][1], value), V4)
    return out


def _extra_cap_values() -> list[tuple[ops.Operation, tuple[int, ...]]]:
    """More shapes of the hot operations than the round-trip cases hold."""
    from scp.codecs.numbers import AddressString, CalledPartyNumber, Cause, TimeAndTimezone

    return [
        (
            ops.InitialDP(
                100,
                CalledPartyNumber("8613912345678"),
                tc.CallingPartyNumber("8613700000001"),
                10,
                tc.CallingPartyNumber("8613700000002"),
                tc.RedirectingNumber("8613700000003"),
                2,
                tc.RedirectingNumber("8613700000004"),
                b"\x04\x11",
                "460001234567890",
                b"\x01\x02\x03\x04\x05",
                AddressString("8613800001"),
                AddressString("8613912345678"),
                TimeAndTimezone(tc.dt.datetime(2026, 11, 25, 18, 5, 9), 32),
                Cause(16),
                extra={"locationInformation": {"vlr-number": AddressString("8613800002").encode()}},
            ),
            V4,
        ),
        (
            ops.EventReportBCSM(
                9, ops.EventSpecificInfo("oDisconnectSpecificInfo", Cause(16)), ops.LegID(1)
            ),
            V4,
        ),
        (
            ops.EventReportBCSM(
                17, ops.EventSpecificInfo("tDisconnectSpecificInfo", Cause(16)), ops.LegID(2), 1
            ),
            V2,
        ),
        (
            ops.EventReportBCSM(
                4, ops.EventSpecificInfo("routeSelectFailureSpecificInfo", Cause(3)), None, 0
            ),
            V2,
        ),
        (
            ops.EventReportBCSM(
                7, ops.EventSpecificInfo("oAnswerSpecificInfo", None), ops.LegID(2), 1
            ),
            V4,
        ),
        (ops.EventReportBCSM(14, None, ops.LegID(2), 0), V2),
        (ops.AssistRequestInstructions(tc.GenericDigits("98765"), b"\x01"), SRF_V2),
        (
            ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(None, 5, 10), False, True),
            V4,
        ),
    ]


def _extra_cap_pycrate() -> list[tuple[int, Any]]:
    """Hot arguments with members the typed values keep in ``extra`` (pycrate notation)."""
    return [
        (
            0,
            {
                "serviceKey": 7,
                "cGEncountered": "manualCGencountered",
                "iPSSPCapabilities": b"\x01",
                "highLayerCompatibility": b"\x91\x81",
                "bearerCapability": ("bearerCap", bytes.fromhex("8090a3")),
                "cug-Index": 5,
                "cug-Interlock": b"\x01\x02\x03\x04",
                "cug-OutgoingAccess": 0,
                "subscriberState": ("assumedIdle", 0),
                "ext-basicServiceCode": ("ext-Teleservice", b"\x11"),
                "callForwardingSS-Pending": 0,
            },
        ),
        (
            24,
            {
                "eventTypeBCSM": "oNoAnswer",
                "eventSpecificInformationBCSM": ("oNoAnswerSpecificInfo", {}),
                "legID": ("receivingSideID", b"\x02"),
                "miscCallInfo": {"messageType": "notification"},
            },
        ),
        (
            16,
            {"correlationID": bytes.fromhex("001021"), "iPSSPCapabilities": b"\x05"},
        ),
    ]


CAP_SEEDS = _cap_seeds()
HOT_CAP_DECODE = sorted(callcontrol.HOT_DECODE)


@pytest.mark.parametrize("code", HOT_CAP_DECODE)
def test_cap_decode_differential(code: int) -> None:
    seeds = CAP_SEEDS[(code, "arg")]
    t = cap.CODEC.args[code][1]
    st = Stats()
    acs = [ac for _p, ac in seeds]
    rng = random.Random(code)
    for i, p in enumerate(corpus([p for p, _ac in seeds], MUTATIONS, seed=100 + code)):
        value = check_decode(cap.CODEC, t, p, st)
        if value is _ERR:
            continue
        check_encode(cap.CODEC, t, value, st)  # the other direction, for the peer's side
        if i < len(seeds) or i % 5 == 0:
            check_encode(cap.CODEC, t, mutate_value(rng, value), st)
            ac = acs[i] if i < len(seeds) else rng.choice(acs)
            a, b = typed_both(cap.CODEC.decode_arg, code, p, ac=ac)
            assert a == b, p.hex()
            if isinstance(a, ops.Operation):
                assert (
                    typed_both(cap.CODEC.encode_arg, a, ac=ac)
                    == typed_both(cap.CODEC.encode_arg, a, ac=ac)[::-1]
                )
    assert st.total >= MUTATIONS
    # The corpus is not all garbage: pycrate decodes a good part, the fast path most of it.
    assert st.pycrate_ok >= MUTATIONS // 10, vars(st)
    assert st.fast >= st.pycrate_ok // 2, vars(st)


def test_cap_received_information_differential() -> None:
    seeds = [p for p, _ac in CAP_SEEDS[(48, "res")]]
    t = CAP_RI_T
    st = Stats()
    for p in corpus(seeds, MUTATIONS, seed=48):
        value = check_decode(cap.CODEC, t, p, st)
        if value is not _ERR:
            a, b = typed_both(cap.CODEC.decode_result, 48, p, ac=SRF_V2)
            assert a == b
            check_encode(cap.CODEC, t, value, st)
    assert st.pycrate_ok >= MUTATIONS // 10 and st.fast >= st.pycrate_ok // 2, vars(st)


@pytest.mark.tshark
def test_wireshark_reads_fast_encodings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What the fast path emits for the hot operations is clean for tshark."""
    frames = []
    items: list[tuple[Any, ops.Operation, tuple[int, ...]]] = [
        (cap, tc.RRBE, V2),
        (cap, ops.Continue(), V2),
        (cap, tc.CONNECT, V2),
        (cap, ops.ConnectToResource(tc.IVR), V2),
        (cap, tc.PACUI, SRF_V2),
        (cap, ops.PlayAnnouncement(tc.ITS), SRF_V2),
        (cap, ops.ReleaseCall(tc.Cause(16)), V2),
        (cap, ops.ApplyCharging(36000, True, None, None, ops.LegID(1, True)), V2),
        (
            cap,
            ops.EstablishTemporaryConnection(
                tc.GenericNumber("8613800999", nqi=1), tc.GenericDigits("1")
            ),
            V2,
        ),
        (cap, ops.DisconnectForwardConnection(), V2),
        (inap, ti.CASES[5][1], ti.AC),
        (inap, ti.CASES[1][1], ti.AC),
        (inap, ops.PlayAnnouncement(ti.ITS, True, False), appctx.INAP_CS1_SSP_SCP),
    ]
    for mod, op, ac in items:
        code, p = mod.CODEC.encode_arg(op, ac=ac)
        assert typed_both(mod.CODEC.encode_arg, op, ac=ac)[1] == (code, p)
        ssn = 146 if mod is cap else 241
        frames.append(wrap([invoke(1, code, p)], ac, ssn, ssn, "continue"))
    pcap = tshark.write_pcap(frames, tmp_path / "fast.pcap")
    tshark.assert_clean(pcap, expect_frames=len(frames))


def test_cap_call_result_fast_conversion() -> None:
    """fast_cap.dec_acr_fast == cap.dec_acr on CAMEL-CallResult octets, or it declines."""
    seeds = [cap.CODEC.ber_decode(cap.CODEC.args[36][1], p) for p, _ac in CAP_SEEDS[(36, "arg")]]
    # [0] { [0] { [1] 01 } [1] { [1] { [0] 05 [1] 0a } } [2] 00 [3] }: every member present
    seeds.append(bytes.fromhex("a0 15 a0 03 81 01 01 a1 08 a1 06 80 01 05 81 01 0a 82 01 00 83 00"))
    seeds.append(bytes.fromhex("a0 0d a0 03 81 01 02 a1 06 80 04 00 0d bb a0"))  # 900000
    hits = 0
    for d in corpus(seeds, 2 * MUTATIONS, seed=36):
        fast = fast_cap.dec_acr_fast(d, 2)
        try:
            slow: Any = cap.dec_acr(cap.CODEC, d, 2)
        except DecodeError:
            slow = _ERR
        if fast is not fastber.DECLINE:
            hits += 1
            assert slow is not _ERR and fast == slow, (d.hex(), fast, slow)
    assert hits >= MUTATIONS // 10
    assert fast_cap.dec_acr_fast(bytearray(seeds[-1]), 2) is fastber.DECLINE
