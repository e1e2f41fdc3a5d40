"""The gateway's receive path fed PDU bytes directly (no socket, no thread): golden PDUs with
commented bytes, our answers checked byte for byte, and 10,000 random/mutated PDUs. A
deliver_sm is answered only when the loop posts its handler's outcome back (ESME_ROK, or
ESME_RX_T_APPN 0x64 on failure / timeout, §5.1.3), which these tests do by hand.

SMPP 3.4 §3.2 (header), §4.4.2 submit_sm_resp, §4.6.1 deliver_sm, §4.6.2 deliver_sm_resp,
§4.11 enquire_link, §4.3 generic_nack, Appendix B receipts.
"""

from __future__ import annotations

import asyncio
import random
import struct
from datetime import UTC, datetime
from typing import Any

import pytest

from scp.adapters.smpp import (
    ESME_ROK,
    ESME_RX_T_APPN,
    SmppError,
    SmppGateway,
    SmppGatewayConfig,
    _answer,
)
from scp.codecs.sms import encode_sms


class _Sock:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: memoryview) -> int:
        self.sent.append(bytes(data))
        return len(data)

    def close(self) -> None:
        pass


def gateway(**cfg: Any) -> tuple[SmppGateway, list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []
    gw = SmppGateway(SmppGatewayConfig(**cfg),
                     on_receipt=lambda *a: calls.append(("receipt", *a)),
                     on_mo=lambda *a: calls.append(("mo", *a)))
    gw._loop = object()  # type: ignore[assignment]  # never run: calls stay in gw._to_loop
    gw._sock = _Sock()  # type: ignore[assignment]
    return gw, calls


def feed(gw: SmppGateway, raw: bytes) -> list[bytes]:
    gw._rxbuf += raw
    out: list[Any] = []
    while (pdu := gw._parse_buffered()) is not None:
        gw._handle(pdu, out)
    return out


def handed(gw: SmppGateway) -> list[tuple[list[int], tuple[Any, ...]]]:
    """What the thread queued for the loop: (tokens to answer, handler arguments) per handler."""
    out: list[tuple[list[int], tuple[Any, ...]]] = []
    for _loop, fn, args in gw._to_loop:
        if fn == gw._dispatch_acked:
            tokens, calls = args
            out.extend((tokens, a) for _cb, a in calls)
        else:
            out.append(([], tuple(args[1:])))
    return out


def answer(gw: SmppGateway, tokens: list[int], status: int = ESME_ROK) -> list[bytes]:
    """The loop reports the handler's outcome; the thread's deliver_sm_resp for it."""
    with gw._lock:
        gw._acks.extend((t, status) for t in tokens)
    out: list[bytes] = []
    gw._take_acks(out)
    return out


def deliver_sm(seq: int, esm_class: int, data_coding: int, short_message: bytes,
               tlvs: bytes = b"", source: bytes = b"8613800138000") -> bytes:
    body = (b"\0"                          # service_type ""
            + b"\x01\x01" + source + b"\0"  # source ton/npi, source_addr
            + b"\x00\x00" + b"12599\0"      # dest ton/npi, destination_addr
            + bytes((esm_class, 0, 0))      # esm_class, protocol_id, priority_flag
            + b"\0\0"                       # schedule_delivery_time, validity_period
            + bytes((0, 0, data_coding, 0))  # registered_delivery, replace, data_coding, dflt id
            + bytes((len(short_message),)) + short_message + tlvs)
    return struct.pack(">IIII", 16 + len(body), 0x00000005, 0, seq) + body


def test_answers_are_spec_bytes() -> None:
    # deliver_sm_resp: length 17, id 0x80000005, status 0, seq 7, message_id "" (one NUL)
    assert _answer("deliver_sm_resp", 7).hex() == "00000011" "80000005" "00000000" "00000007" "00"
    # enquire_link_resp: header only
    assert _answer("enquire_link_resp", 9).hex() == "00000010" "80000015" "00000000" "00000009"
    # generic_nack ESME_RINVCMDID
    assert _answer("generic_nack", 3, 0x03).hex() == "00000010" "80000000" "00000003" "00000003"


def test_receipt_by_tlv_and_text() -> None:
    gw, _ = gateway()
    gw._remember(["abc123"])
    text = b"id:abc123 sub:001 dlvrd:001 submit date:2611251805 done date:2611251806 stat:DELIVRD err:000 text:hi"
    # TLV 0x001E receipted_message_id "abc123\0", TLV 0x0427 message_state 2 (DELIVERED)
    tlvs = bytes.fromhex("001e0007") + b"abc123\0" + bytes.fromhex("0427000102")
    out = feed(gw, deliver_sm(41, 0x04, 0, text, tlvs))
    assert out == []  # not before the receipt is recorded
    [(tokens, (mid, stat, at))] = handed(gw)
    assert (mid, stat, at) == ("abc123", "DELIVRD", datetime(2026, 11, 25, 18, 6, tzinfo=UTC))
    # deliver_sm_resp seq 41 ESME_ROK: 00000011 80000005 00000000 00000029 00
    assert answer(gw, tokens) == [bytes.fromhex("00000011" "80000005" "00000000" "00000029" "00")]
    assert answer(gw, tokens) == []  # answered once
    # text only, id reported in decimal for a hex submit_sm_resp id (a known SMSC habit)
    gw._to_loop.clear()
    gw._remember(["1f"])
    feed(gw, deliver_sm(42, 0x04, 0, b"id:31 sub:001 dlvrd:000 stat:UNDELIV err:001 text:"))
    [(tokens, args)] = handed(gw)
    assert args[:2] == ("1f", "UNDELIV")
    # recording failed: deliver_sm_resp seq 42 ESME_RX_T_APPN 0x64, the SMSC redelivers
    assert answer(gw, tokens, ESME_RX_T_APPN) == [
        bytes.fromhex("00000011" "80000005" "00000064" "0000002a" "00")]


def test_multipart_receipts_aggregate() -> None:
    gw, _ = gateway()
    gw._remember(["a", "b", "c"])
    for i, (mid, stat) in enumerate((("a", "DELIVRD"), ("c", "UNDELIV"), ("b", "DELIVRD"))):
        out = feed(gw, deliver_sm(50 + i, 0x04, 0, f"id:{mid} stat:{stat} err:000".encode()))
        # the receipts of the other segments are answered at once, the completing one later
        assert out == ([] if i == 2 else [_answer("deliver_sm_resp", 50 + i)])
        assert len(gw._to_loop) == (1 if i == 2 else 0)
    [(tokens, args)] = handed(gw)
    assert args[:2] == ("a", "UNDELIV")  # worst status, first segment's id
    # the aggregate's commit failed: the set is restored, the redelivered receipt completes it
    assert answer(gw, tokens, ESME_RX_T_APPN) == [_answer("deliver_sm_resp", 52, ESME_RX_T_APPN)]
    assert gw._receipt_agg["a"].stats == ["DELIVRD", "UNDELIV"]
    gw._to_loop.clear()
    feed(gw, deliver_sm(53, 0x04, 0, b"id:b stat:DELIVRD err:000"))
    [(tokens, args)] = handed(gw)
    assert args[:2] == ("a", "UNDELIV")
    assert answer(gw, tokens) == [_answer("deliver_sm_resp", 53)]
    assert not gw._receipt_agg


def test_receipt_sets_bounded_by_size_and_age() -> None:
    gw, _ = gateway(receipt_agg_max=2, receipt_agg_age=30.0)
    for p in ("p", "q", "r"):
        gw._remember([p, p + "2"])
    for i, p in enumerate(("p", "q", "r")):
        feed(gw, deliver_sm(70 + i, 0x04, 0, f"id:{p} stat:DELIVRD err:000".encode()))
    # a third open set: the oldest is settled with what arrived (one of two receipts)
    assert [a[:2] for _t, a in handed(gw)] == [("p", "DELIVRD")]
    assert list(gw._receipt_agg) == ["q", "r"]
    gw._to_loop.clear()
    out: list[bytes] = []
    gw._expire_receive_side(gw._receipt_agg["r"].first + 31.0, out)
    assert out == [] and not gw._receipt_agg
    assert [a[:2] for _t, a in handed(gw)] == [("q", "DELIVRD"), ("r", "DELIVRD")]


def test_unanswered_deliver_sm_times_out_and_link_loss_forgets() -> None:
    gw, _ = gateway(deliver_timeout=20.0)
    feed(gw, deliver_sm(80, 0x00, 0x00, b"CX"))
    feed(gw, deliver_sm(81, 0x00, 0x00, b"KT"))
    [(t80, _a), (t81, _b)] = handed(gw)
    deadline = gw._deferred[t80[0]][1]
    out: list[bytes] = []
    gw._expire_receive_side(deadline - 0.001, out)
    assert out == []
    gw._expire_receive_side(deadline + 0.001, out)
    # both past 20 s: deliver_sm_resp ESME_RX_T_APPN, a late outcome is not answered again
    assert out == [_answer("deliver_sm_resp", 80, ESME_RX_T_APPN),
                   _answer("deliver_sm_resp", 81, ESME_RX_T_APPN)]
    assert answer(gw, t80) == []
    # a deliver_sm pending when the link drops is never answered (the SMSC redelivers it)
    gw._to_loop.clear()
    feed(gw, deliver_sm(82, 0x00, 0x00, b"QX"))
    [(t82, _c)] = handed(gw)
    gw._drop_link("test")
    assert answer(gw, t82) == []


def test_mo_gsm7_ucs2_and_concatenated() -> None:
    gw, _ = gateway()
    feed(gw, deliver_sm(60, 0x00, 0x00, b"STOP"))
    feed(gw, deliver_sm(61, 0x00, 0x08, "退订".encode("utf-16-be")))
    for i, seg in enumerate(encode_sms("回复" * 50, concat_ref=9).segments):
        # 2 parts, UDH 050003 09 02 0n: no part is answered before the whole MO is stored
        assert feed(gw, deliver_sm(62 + i, seg.esm_class, 0x08, seg.short_message)) == []
    got = handed(gw)
    assert [a[2] for _t, a in got] == ["STOP", "退订", "回复" * 50]
    assert answer(gw, got[2][0]) == [_answer("deliver_sm_resp", 62), _answer("deliver_sm_resp", 63)]


def test_enquire_link_and_unknown_request() -> None:
    gw, _ = gateway()
    # enquire_link seq 5 -> enquire_link_resp seq 5
    assert feed(gw, bytes.fromhex("00000010" "00000015" "00000000" "00000005")) == [
        _answer("enquire_link_resp", 5)]
    # an unknown request id 0x00000099 -> generic_nack ESME_RINVCMDID (§4.3)
    assert feed(gw, bytes.fromhex("00000010" "00000099" "00000000" "00000006")) == [
        _answer("generic_nack", 6, 0x03)]


def test_fuzz_receive_path() -> None:
    """Random and mutated PDUs: the only exception the receive path raises is SmppError (it
    drops the link on a bad command_length), never a library exception."""
    rng = random.Random(1125)
    seeds = [
        deliver_sm(1, 0x04, 0, b"id:x stat:DELIVRD err:000 text:",
                   bytes.fromhex("001e0002") + b"x\0"),
        deliver_sm(2, 0x40, 0x08, encode_sms("回复" * 50, concat_ref=1).segments[0].short_message),
        deliver_sm(3, 0x00, 0x00, b"hello"),
        struct.pack(">IIII", 20, 0x80000004, 0, 4) + b"abc\0",
        bytes.fromhex("00000010000000150000000000000005"),
    ]
    raised = 0
    for _ in range(10_000):
        gw, _ = gateway()
        if rng.random() < 0.3:
            n = rng.randint(16, 80)
            raw = struct.pack(">I", n) + bytes(rng.getrandbits(8) for _ in range(n - 4))
        else:
            b = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 5)):
                b[rng.randrange(4, len(b))] = rng.getrandbits(8)  # keep command_length
            raw = bytes(b)
        try:
            feed(gw, raw)
        except SmppError:
            raised += 1
    assert raised < 10_000


def test_gateway_submit_requires_start() -> None:
    gw = SmppGateway(SmppGatewayConfig())
    from scp.adapters.smpp import SmppLinkError
    from scp.service.outbox import OutboundSms

    with pytest.raises(SmppLinkError):
        asyncio.run(gw.submit(OutboundSms(1, "k", "861", "x", 1)))


def test_submit_sm_golden_both_ways() -> None:
    from scp.adapters.smpp import _SeqClient, build_submit_sm

    client = _SeqClient()
    seg = encode_sms("您好" * 40, concat_ref=0x2A).segments[1]
    seq, raw = build_submit_sm(SmppGatewayConfig(source_addr="12599"), client, "8613900000001", seg)
    body = seg.short_message
    expected = (
        struct.pack(">IIII", 16 + 35 + len(body), 0x00000004, 0, 1)  # length, submit_sm, ok, seq 1
        + b"\0"                            # service_type ""
        + b"\x03\x00" + b"12599\0"         # source TON 3 (network specific) NPI 0, short code
        + b"\x01\x01" + b"8613900000001\0"  # dest TON 1 international, NPI 1 E.164
        + b"\x40\x00\x00"                  # esm_class UDHI, protocol_id, priority_flag
        + b"\0\0"                          # schedule_delivery_time, validity_period: defaults
        + b"\x01\x00\x08\x00"              # registered_delivery 1, replace 0, UCS-2, dflt id
        + bytes((len(body),)) + body       # sm_length, short_message (UDH 0500032a0202 + text)
    )
    assert seq == 1 and raw == expected
    assert body[:6].hex() == "0500032a0202"
    # and back: smpplib reads what we wrote
    import smpplib.smpp

    pdu = smpplib.smpp.parse_pdu(raw, client=client, allow_unknown_opt_params=True)
    assert (pdu.command, pdu.esm_class, pdu.data_coding, pdu.registered_delivery) == (
        "submit_sm", 0x40, 8, 1)
    assert pdu.short_message == body and pdu.destination_addr in (b"8613900000001", "8613900000001")


def test_handler_of_an_answered_deliver_sm_is_skipped() -> None:
    """A handler still queued when its deliver_sm timed out (or lost its link) is not run: the
    SMSC delivers that message again, running it now would store it twice."""
    gw, _ = gateway()
    ran: list[str] = []

    async def store(name: str) -> None:
        ran.append(name)

    async def main() -> None:
        feed(gw, deliver_sm(90, 0x00, 0x00, b"CX"))
        feed(gw, deliver_sm(91, 0x00, 0x00, b"KT"))
        [(t90, _a), (t91, _b)] = handed(gw)
        out: list[bytes] = []
        gw._expire_receive_side(gw._deferred[t91[0]][1] + 0.001, out)
        assert out == [_answer("deliver_sm_resp", 90, ESME_RX_T_APPN),
                       _answer("deliver_sm_resp", 91, ESME_RX_T_APPN)]
        await gw._settle_deliver([store("late")], t90, False)
        assert ran == [] and gw.stats["deliver_sm_skipped"] == 1
        gw._to_loop.clear()
        feed(gw, deliver_sm(92, 0x00, 0x00, b"QX"))
        [(t92, _c)] = handed(gw)
        await gw._settle_deliver([store("fresh")], t92, False)
        assert ran == ["fresh"]
        assert answer(gw, t92) == [_answer("deliver_sm_resp", 92)]

    asyncio.run(main())
