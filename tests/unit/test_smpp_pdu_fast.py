"""scp.codecs.smpp_pdu against smpplib: the fast path is smpplib's answer or a decline."""

from __future__ import annotations

import random
import struct
from dataclasses import fields

import pytest
import smpplib.smpp

from scp.codecs.smpp_pdu import DECLINE, DeliverSm, decode_deliver_sm, encode_submit_sm
from scp.codecs.sms import encode_sms
from scp.core.smpp_esme import EsmeConfig
from tests.unit.smpp_helpers import T0, bound, header, sent
from tests.unit.smpp_helpers import FixedSequence as _FixedSequence
from tests.unit.smpp_helpers import SeqClient as _SeqClient

_ATTRS = [f.name for f in fields(DeliverSm)]


def _smpplib_submit(seq: int, **kw: object) -> bytes:
    pdu = smpplib.smpp.make_pdu("submit_sm", client=_FixedSequence(seq), **kw)
    return bytes(pdu.generate())


def _address(rng: random.Random) -> str:
    chars = "0123456789" if rng.random() < 0.7 else "".join(map(chr, range(1, 128)))
    return "".join(rng.choice(chars) for _ in range(rng.randint(0, 20)))


def _submit_args(rng: random.Random) -> dict[str, object]:
    return {
        "source_addr_ton": rng.randrange(256),
        "source_addr_npi": rng.randrange(256),
        "source_addr": _address(rng),
        "dest_addr_ton": rng.randrange(256),
        "dest_addr_npi": rng.randrange(256),
        "destination_addr": _address(rng),
        "esm_class": rng.randrange(256),
        "data_coding": rng.randrange(256),
        "registered_delivery": rng.randrange(256),
        "short_message": bytes(
            rng.randrange(256) for _ in range(rng.choice((0, 1, 140, 254, rng.randint(0, 254))))
        ),
    }


def test_submit_sm_is_byte_identical_to_smpplib() -> None:
    rng = random.Random(6)
    for _ in range(3000):
        seq = rng.choice((1, 0x7FFFFFFF, rng.randint(1, 0x7FFFFFFF)))
        args = _submit_args(rng)
        fast = encode_submit_sm(seq, **args)  # type: ignore[arg-type]
        assert isinstance(fast, bytes)
        assert fast == _smpplib_submit(seq, **args), args


@pytest.mark.parametrize(
    "change",
    [
        {"source_addr": "1" * 21},
        {"destination_addr": "2" * 21},
        {"destination_addr": "8613é"},
        {"short_message": b"x" * 255},
        {"esm_class": 256},
        {"data_coding": -1},
    ],
)
def test_submit_sm_outside_the_simple_case_is_declined(change: dict[str, object]) -> None:
    args = {
        "source_addr_ton": 3,
        "source_addr_npi": 0,
        "source_addr": "12599",
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": "8613900000001",
        "esm_class": 0,
        "data_coding": 0,
        "registered_delivery": 1,
        "short_message": b"hello",
    } | change
    assert encode_submit_sm(7, **args) is DECLINE  # type: ignore[arg-type]


def test_session_builds_the_submit_sm_smpplib_builds() -> None:
    for text in ("hello", "您好,用户13800138000于11月25日18时呼叫您2次,请回电!" * 3):
        s = bound(source_addr="12599")
        cfg = s.config
        s.submit("8613900000001", text, concat_ref=9, now=T0)
        pdus = sent(s)
        segments = encode_sms(text, concat_ref=9).segments
        assert len(pdus) == len(segments)
        for raw, seg in zip(pdus, segments, strict=True):
            seq = header(raw)[3]
            assert raw == _smpplib_submit(
                seq,
                source_addr_ton=cfg.source_addr_ton,
                source_addr_npi=cfg.source_addr_npi,
                source_addr=cfg.source_addr,
                dest_addr_ton=cfg.dest_addr_ton,
                dest_addr_npi=cfg.dest_addr_npi,
                destination_addr="8613900000001",
                esm_class=seg.esm_class,
                data_coding=int(seg.data_coding),
                registered_delivery=cfg.registered_delivery,
                short_message=seg.short_message,
            )
    # a source address longer than §5.2.8 allows is refused when configured: smpplib would
    # have cut it to 20 characters without a word
    with pytest.raises(ValueError, match="source_addr"):
        EsmeConfig(source_addr="9" * 25)


def _deliver(rng: random.Random, **kw: object) -> bytes:
    pdu = smpplib.smpp.make_pdu("deliver_sm", client=_FixedSequence(rng.randint(1, 99999)), **kw)
    return bytes(pdu.generate())


def _assert_same(raw: bytes) -> DeliverSm | None:
    fast = decode_deliver_sm(raw)
    if fast is DECLINE:
        return None
    assert isinstance(fast, DeliverSm)
    ref = smpplib.smpp.parse_pdu(raw, client=_SeqClient(), allow_unknown_opt_params=True)
    for name in _ATTRS:
        mine, theirs = getattr(fast, name), getattr(ref, name)
        assert mine == theirs and type(mine) is type(theirs), (name, raw.hex())
    for name in set(ref.params) - set(_ATTRS):  # nothing the fast path would leave out
        assert getattr(ref, name) is None, (name, raw.hex())
    return fast


def test_receipts_and_mo_decode_as_smpplib_decodes_them() -> None:
    rng = random.Random(4)
    accepted = 0
    for i in range(2000):
        mid = f"{rng.getrandbits(40):x}"
        kw: dict[str, object] = {
            "source_addr": "86139" + str(rng.randint(0, 99999999)),
            "destination_addr": rng.choice(("12599", "106575", "")),
            "source_addr_ton": rng.choice((0, 1)),
            "dest_addr_npi": rng.choice((0, 1)),
            "esm_class": rng.choice((0, 0x04, 0x40, 0x20)),
            "data_coding": rng.choice((0, 8, 3)),
            "protocol_id": rng.choice((0, 0x40)),
            "service_type": rng.choice(("", "CMT")),
        }
        if i % 3:
            kw["short_message"] = (
                f"id:{mid} sub:001 dlvrd:001 submit date:2611251805 done "
                f"date:2611251806 stat:DELIVRD err:000 text:hi"
            ).encode()
        if i % 2:
            kw["receipted_message_id"] = mid
        if i % 5 == 0:
            kw["message_state"] = rng.choice((2, 5, 8))
        if i % 7 == 0 and "short_message" not in kw:
            kw["message_payload"] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
        if _assert_same(_deliver(rng, **kw)) is not None:
            accepted += 1
    assert accepted == 2000  # what smpplib itself writes is always the simple case


def test_mutated_deliver_sm_is_smpplibs_answer_or_declined() -> None:
    rng = random.Random(11)
    base = _deliver(
        rng,
        source_addr="8613900000001",
        destination_addr="12599",
        esm_class=4,
        short_message=b"id:abc stat:DELIVRD",
        receipted_message_id="abc",
        message_state=2,
    )
    assert _assert_same(base) is not None
    accepted = 0
    for _ in range(5000):
        raw = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(16, len(raw))] = rng.choice((0, 1, 4, 0x1E, 0x27, rng.randrange(256)))
        if rng.random() < 0.3:
            raw = raw[: rng.randint(16, len(raw))]
            raw[0:4] = struct.pack(">I", len(raw))
        try:
            accepted += _assert_same(bytes(raw)) is not None
        except AssertionError:
            raise
        except Exception:
            # smpplib itself chokes on it: the fast path must have declined (None) before the
            # reference parse was even tried, so getting here means it accepted garbage
            pytest.fail(f"fast path accepted what smpplib cannot parse: {bytes(raw).hex()}")
    assert 500 < accepted < 4500  # both sides of the decision were exercised


def _cstring(rng: random.Random) -> bytes:
    return bytes(rng.randrange(1, 256) for _ in range(rng.choice((0, 1, 5, 21))))


def _tlv(rng: random.Random) -> bytes:
    tag = rng.choice((0x001E, 0x0427, 0x0424, 0x0423, 0x1400))
    value = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 2, 3, 9))))
    if tag == 0x001E and rng.random() < 0.7:
        value = _cstring(rng) + b"\0"
    return struct.pack(">HH", tag, len(value)) + value


def test_field_built_deliver_sm_is_smpplibs_answer_or_declined() -> None:
    rng = random.Random(12)
    accepted = 0
    for _ in range(20_000):
        message = bytes(rng.randrange(256) for _ in range(rng.choice((0, 3, 160))))
        body = b"".join(
            (
                _cstring(rng) + b"\0",
                bytes((rng.randrange(256), rng.randrange(256))),
                _cstring(rng) + b"\0",
                bytes((rng.randrange(256), rng.randrange(256))),
                _cstring(rng) + b"\0",
                bytes(rng.randrange(256) for _ in range(3)),
                _cstring(rng) + b"\0",
                _cstring(rng) + b"\0",
                bytes(rng.randrange(256) for _ in range(4)),
                # sm_length sometimes disagrees with what follows
                bytes((min(255, max(0, len(message) + rng.choice((0, 0, 0, -1, 1)))),)),
                message,
                b"".join(_tlv(rng) for _ in range(rng.choice((0, 1, 2, 3)))),
            )
        )
        body = body[: rng.choice((len(body), len(body), rng.randint(0, len(body))))]
        raw = struct.pack(">IIII", 16 + len(body), 5, 0, rng.randint(1, 99)) + body
        try:
            accepted += _assert_same(raw) is not None
        except AssertionError:
            raise
        except Exception:
            pytest.fail(f"fast path accepted what smpplib cannot parse: {raw.hex()}")
    assert 2000 < accepted < 18_000


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # nothing
        struct.pack(">IIII", 16, 5, 0, 1),  # a header alone: smpplib leaves every field None
        struct.pack(">IIII", 20, 5, 0, 1) + b"abcd",  # a C-string without its NUL
        struct.pack(">IIII", 16, 4, 0, 1),  # not a deliver_sm
    ],
)
def test_odd_deliver_sm_is_declined(raw: bytes) -> None:
    assert decode_deliver_sm(raw) is DECLINE


def test_unknown_or_odd_tlvs_are_declined() -> None:
    rng = random.Random(1)
    plain = _deliver(rng, source_addr="1", destination_addr="2", short_message=b"x")

    def with_tlv(tag: int, value: bytes) -> bytes:
        body = plain[16:] + struct.pack(">HH", tag, len(value)) + value
        return struct.pack(">IIII", 16 + len(body), 5, 0, 3) + body

    assert decode_deliver_sm(with_tlv(0x0423, b"\x03\x00\x01")) is DECLINE  # network_error_code
    assert decode_deliver_sm(with_tlv(0x1400, b"vendor")) is DECLINE
    assert decode_deliver_sm(with_tlv(0x001E, b"abc")) is DECLINE  # no NUL: smpplib cuts the c
    assert decode_deliver_sm(with_tlv(0x0427, b"\x00\x02")) is DECLINE  # wrong length
    ok = _assert_same(with_tlv(0x001E, b"abc\0"))
    assert ok is not None and ok.receipted_message_id == b"abc"
