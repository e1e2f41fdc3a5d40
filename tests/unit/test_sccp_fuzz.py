"""Fuzz the SCCP codec and core with seeded random and mutated frames (Q.713 / Q.714).

Properties: the decoder raises nothing but DecodeError and what it decodes re-encodes to
something that decodes to the same value; the core never raises, never logs an internal
error, and every message it sends decodes.
"""

from __future__ import annotations

import random

from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.sccp import (
    Ludt,
    Ludts,
    Scmg,
    ScmgFormat,
    Segmentation,
    Udt,
    Udts,
    Xudt,
    Xudts,
    decode,
    decode_scmg,
    encode,
    encode_address,
    encode_scmg,
)
from scp.core.sccp import SccpLayer, SccpLog
from scp.primitives import GlobalTitle, MtpTransfer, NUnitdata, RoutingIndicator, SccpAddress
from tests.helpers import mutate
from tests.unit.test_sccp_codec import GOLDEN, REAL
from tests.unit.test_sccp_core import REAL_SEGMENTS

SEED = 20261125
OUR_PC = 100


def _random_address(rng: random.Random) -> SccpAddress:
    gt = None
    if rng.random() < 0.6:
        gti = rng.randint(1, 4)
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 16)))
        gt = GlobalTitle(
            digits, gti=gti, tt=rng.randint(0, 255), np=rng.randint(0, 15), nai=rng.randint(0, 127)
        )
    return SccpAddress(
        ri=rng.choice(list(RoutingIndicator)),
        pc=rng.choice([None, OUR_PC, rng.randint(0, 0x3FFF)]),
        ssn=rng.choice([None, 0, 1, 8, 146, 147, 241, rng.randint(0, 255)]),
        gt=gt,
    )


def _random_message(rng: random.Random) -> bytes:
    called, calling = _random_address(rng), _random_address(rng)
    data = rng.randbytes(rng.randint(0, 180))
    seg = None
    if rng.random() < 0.4:
        seg = Segmentation(
            rng.random() < 0.5, rng.randint(0, 1), rng.randint(0, 15), rng.randint(0, 3)
        )
    imp = rng.choice([None, rng.randint(0, 7)])
    kind = rng.randrange(7)
    if kind == 0:
        m: object = Udt(called, calling, data, rng.randint(0, 1), rng.random() < 0.5)
    elif kind == 1:
        m = Udts(called, calling, data, rng.randint(0, 255))
    elif kind == 2:
        m = Xudt(
            called,
            calling,
            data,
            rng.randint(0, 1),
            rng.random() < 0.5,
            rng.randint(0, 15),
            seg,
            imp,
        )
    elif kind == 3:
        m = Xudts(called, calling, data, rng.randint(0, 255), rng.randint(0, 15), seg, imp)
    elif kind == 4:
        m = Ludt(
            called,
            calling,
            data,
            rng.randint(0, 1),
            rng.random() < 0.5,
            rng.randint(0, 15),
            seg,
            imp,
        )
    elif kind == 5:
        m = Ludts(called, calling, data, rng.randint(0, 255), rng.randint(0, 15), seg, imp)
    else:  # SCMG between SSN 1 and SSN 1
        scmg = Scmg(
            rng.randint(1, 6),
            rng.randint(0, 255),
            rng.choice([OUR_PC, 5]),
            rng.randint(0, 3),
            rng.randint(0, 8),
        )
        one = SccpAddress(RoutingIndicator.SSN, ssn=1)
        m = Udt(one, one, encode_scmg(scmg))
    return encode(m)  # type: ignore[arg-type]


# Message types (Q.713 §2.1: UDT, UDTS, XUDT, XUDTS, LUDT, LUDTS, connection-oriented, none)
# planted at octet 0, and the pointer / length values that walk off the message.
MESSAGE_TYPES = (0x09, 0x0A, 0x11, 0x12, 0x13, 0x14, 0x01, 0x00, 0xFF)
POINTERS = (0x00, 0x01, 0x02, 0x03, 0x04, 0x7F, 0x80, 0xFE, 0xFF)


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    b = bytearray(mutate(rng, frame, interesting=POINTERS))
    if b and rng.random() < 0.2:
        b[0] = rng.choice(MESSAGE_TYPES)
    if b and rng.random() < 0.2:  # nudge a pointer or length octet of the fixed part
        i = rng.randrange(min(len(b), 12))
        b[i] = (b[i] + rng.choice((-2, -1, 1, 2))) & 0xFF
    return bytes(b)


def _corpus(rng: random.Random) -> list[bytes]:
    frames = [w for _, w in GOLDEN.values()]
    frames += [bytes.fromhex(x) for x in REAL.values()]
    frames += [bytes.fromhex(x) for x in REAL_SEGMENTS]
    frames += [_random_message(rng) for _ in range(200)]
    return frames


def _frames(n: int) -> list[bytes]:
    rng = random.Random(SEED)
    corpus = _corpus(rng)
    out: list[bytes] = []
    for i in range(n):
        r = i % 4
        if r == 0:
            out.append(_random_message(rng))
        elif r == 1:
            out.append(rng.randbytes(rng.randint(0, 300)))
        else:
            out.append(_mutate(rng, rng.choice(corpus)))
    return out


def test_decoder_fuzz() -> None:
    frames = _frames(12_000)
    decoded = 0
    for f in frames:
        try:
            m = decode(f)
        except DecodeError as err:
            assert err.layer == "sccp" and 0 <= err.offset <= len(f)
            continue
        decoded += 1
        try:
            again = encode(m)
        except EncodeError:
            # Parts of a malformed frame may overlap; laid out one after the other they can
            # outgrow one-octet pointers (or, for LUDT, the long data limit). Nothing else.
            size = len(encode_address(m.called)) + len(encode_address(m.calling)) + len(m.data)
            assert size > 240 or isinstance(m, (Ludt, Ludts)), m
            continue
        assert decode(again) == m
    assert decoded > 3000  # the mutations keep plenty of frames decodable


def test_scmg_decoder_fuzz() -> None:
    rng = random.Random(SEED + 1)
    for _ in range(10_000):
        f = rng.randbytes(rng.randint(0, 8))
        if rng.random() < 0.5 and f:
            f = bytes((rng.randint(1, 6),)) + f[1:]
        try:
            m = decode_scmg(f)
        except DecodeError:
            continue
        assert decode_scmg(encode_scmg(m)) == m


def test_core_fuzz_never_raises() -> None:
    rng = random.Random(SEED + 2)
    layer = SccpLayer(
        local_pc=OUR_PC, global_title="8613800000", local_ssns=(146, 147, 8, 241), default_dpc=200
    )
    layer.set_subsystem_state(241, False)
    now = 0.0
    events: dict[str, int] = {}
    for f in _frames(12_000):
        now += rng.random() * 0.05
        xfer = MtpTransfer(
            opc=rng.choice((200, 201, 300)),
            dpc=OUR_PC if rng.random() < 0.97 else 7,
            si=3 if rng.random() < 0.98 else 5,
            ni=2,
            mp=0,
            sls=rng.randrange(16),
            data=f,
        )
        outs = layer.handle_mtp_transfer(xfer, now)
        if rng.random() < 0.05:
            now += rng.random() * 12
            outs += layer.handle_timer(now)
        for o in outs:
            if isinstance(o, SccpLog):
                assert o.event != "internal_error", o.detail
                events[o.event] = events.get(o.event, 0) + 1
            elif isinstance(o, MtpTransfer):
                assert o.dpc == xfer.opc or o.dpc in (200, 201, 300)
                decode(o.data)  # everything we send decodes
    outs = layer.handle_timer(now + 3600)
    assert layer.next_deadline() is None
    assert {"drop", "return", "decode_error"} <= events.keys()


def test_core_fuzz_requests() -> None:
    rng = random.Random(SEED + 3)
    layer = SccpLayer(
        local_pc=OUR_PC,
        global_title="8613800000",
        local_ssns=(146,),
        max_udt_data=rng.choice((32, 100, 200, 247)),
    )
    peer = SccpLayer(local_pc=200, global_title="8613900000", local_ssns=(146, 147, 8))
    delivered = 0
    for i in range(2_000):
        data = rng.randbytes(rng.choice((0, 1, 50, 199, 200, 201, 600, 2000, 3000, 5000)))
        req = NUnitdata(
            called=_random_address(rng),
            calling=_random_address(rng),
            data=data,
            protocol_class=rng.choice((0, 1, 1, 2)),
            return_option=rng.random() < 0.5,
            sequence_control=rng.randrange(256),
            importance=rng.choice((None, None, 3, 9)),
            dpc=rng.choice((None, 200)),
        )
        outs = layer.handle_n_unitdata(req, float(i))
        for o in outs:
            assert not (isinstance(o, SccpLog) and o.event == "internal_error"), o
            if isinstance(o, MtpTransfer) and o.dpc == 200:
                for up in peer.handle_mtp_transfer(o, float(i)):
                    assert not (isinstance(up, SccpLog) and up.event == "internal_error"), up
                    if isinstance(up, NUnitdata):
                        delivered += 1
                        assert up.data == data
    assert delivered > 100


def test_scmg_format_names() -> None:
    assert [f.name for f in ScmgFormat] == ["SSA", "SSP", "SST", "SOR", "SOG", "SSC"]
