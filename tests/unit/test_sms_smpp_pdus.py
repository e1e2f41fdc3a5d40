"""The ESME session's receive path fed PDU bytes directly (no socket, no loop): golden PDUs with
commented bytes, our answers checked byte for byte, and 10,000 random/mutated PDUs. A
deliver_sm is answered only when its handler's outcome is reported back (ESME_ROK, or
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

from scp.adapters.smpp import SmppGateway, SmppGatewayConfig
from scp.codecs.smpp_pdu import (
    DELIVER_SM,
    ENQUIRE_LINK,
    ESME_ROK,
    ESME_RX_T_APPN,
    GENERIC_NACK,
    RESPONSE,
    encode_response,
)
from scp.codecs.sms import encode_sms
from scp.core.smpp_esme import ConnectionMustClose, EsmeSession, MoReceived, ReceiptReceived
from scp.service.outbox import SmppLinkError
from tests.unit.smpp_helpers import T0, bound, deliver_sm, events, header, sent, split


def _answer(command: str, sequence: int, status: int = ESME_ROK) -> bytes:
    """The response PDU the session answers with."""
    command_id = {
        "deliver_sm_resp": DELIVER_SM | RESPONSE,
        "enquire_link_resp": ENQUIRE_LINK | RESPONSE,
        "generic_nack": GENERIC_NACK,
    }[command]
    return encode_response(command_id, sequence, status)


class _Handed:
    """What the session handed over (receipts and MO), and the deliver_sm tokens to answer."""

    def __init__(self) -> None:
        self.items: list[tuple[tuple[int, ...], tuple[Any, ...]]] = []

    def take(self, s: EsmeSession) -> None:
        for ev in events(s):
            if isinstance(ev, ReceiptReceived):
                self.items.append((ev.tokens, (ev.message_id, ev.stat, ev.done_date)))
            elif isinstance(ev, MoReceived):
                self.items.append((ev.tokens, (ev.source_addr, ev.destination_addr, ev.text)))


def feed(s: EsmeSession, raw: bytes, handed: _Handed | None = None, now: float = T0) -> list[bytes]:
    s.receive_data(raw, now)
    if handed is not None:
        handed.take(s)
    return sent(s)


def answer(s: EsmeSession, tokens: tuple[int, ...], status: int = ESME_ROK) -> list[bytes]:
    """The handler's outcome reported; the session's deliver_sm_resp for it."""
    s.answer_deliver(tokens, status == ESME_ROK, T0)
    return sent(s)


def test_answers_are_spec_bytes() -> None:
    # deliver_sm_resp: length 17, id 0x80000005, status 0, seq 7, message_id "" (one NUL)
    assert _answer("deliver_sm_resp", 7).hex() == "0000001180000005000000000000000700"
    # enquire_link_resp: header only
    assert _answer("enquire_link_resp", 9).hex() == "00000010800000150000000000000009"
    # generic_nack ESME_RINVCMDID
    assert _answer("generic_nack", 3, 0x03).hex() == "00000010800000000000000300000003"


def test_receipt_by_tlv_and_text() -> None:
    s, got = bound(), _Handed()
    s.receipts.remember(["abc123"])
    text = b"id:abc123 sub:001 dlvrd:001 submit date:2611251805 done date:2611251806 stat:DELIVRD err:000 text:hi"
    # TLV 0x001E receipted_message_id "abc123\0", TLV 0x0427 message_state 2 (DELIVERED)
    tlvs = bytes.fromhex("001e0007") + b"abc123\0" + bytes.fromhex("0427000102")
    out = feed(s, deliver_sm(41, 0x04, 0, text, tlvs), got)
    assert out == []  # not before the receipt is recorded
    [(tokens, (mid, stat, at))] = got.items
    assert (mid, stat, at) == ("abc123", "DELIVRD", datetime(2026, 11, 25, 18, 6, tzinfo=UTC))
    # deliver_sm_resp seq 41 ESME_ROK: 00000011 80000005 00000000 00000029 00
    assert answer(s, tokens) == [bytes.fromhex("0000001180000005000000000000002900")]
    assert answer(s, tokens) == []  # answered once
    # text only, id reported in decimal for a hex submit_sm_resp id (a known SMSC habit)
    got.items.clear()
    s.receipts.remember(["1f"])
    feed(s, deliver_sm(42, 0x04, 0, b"id:31 sub:001 dlvrd:000 stat:UNDELIV err:001 text:"), got)
    [(tokens, args)] = got.items
    assert args[:2] == ("1f", "UNDELIV")
    # recording failed: deliver_sm_resp seq 42 ESME_RX_T_APPN 0x64, the SMSC redelivers
    assert answer(s, tokens, ESME_RX_T_APPN) == [
        bytes.fromhex("0000001180000005000000640000002a00")
    ]


def test_multipart_receipts_aggregate() -> None:
    s, got = bound(), _Handed()
    s.receipts.remember(["a", "b", "c"])
    for i, (mid, stat) in enumerate((("a", "DELIVRD"), ("c", "UNDELIV"), ("b", "DELIVRD"))):
        out = feed(s, deliver_sm(50 + i, 0x04, 0, f"id:{mid} stat:{stat} err:000".encode()), got)
        # the receipts of the other segments are answered at once, the completing one later
        assert out == ([] if i == 2 else [_answer("deliver_sm_resp", 50 + i)])
        assert len(got.items) == (1 if i == 2 else 0)
    [(tokens, args)] = got.items
    assert args[:2] == ("a", "UNDELIV")  # worst status, first segment's id
    # the aggregate's commit failed: the set is restored, the redelivered receipt completes it
    assert answer(s, tokens, ESME_RX_T_APPN) == [_answer("deliver_sm_resp", 52, ESME_RX_T_APPN)]
    assert s.receipts.sets["a"].stats == ["DELIVRD", "UNDELIV"]
    got.items.clear()
    feed(s, deliver_sm(53, 0x04, 0, b"id:b stat:DELIVRD err:000"), got)
    [(tokens, args)] = got.items
    assert args[:2] == ("a", "UNDELIV")
    assert answer(s, tokens) == [_answer("deliver_sm_resp", 53)]
    assert not s.receipts.sets


def test_receipt_sets_bounded_by_size_and_age() -> None:
    s, got = bound(receipt_agg_max=2, receipt_agg_age=30.0, enquire_link_interval=1e9), _Handed()
    for p in ("p", "q", "r"):
        s.receipts.remember([p, p + "2"])
    for i, p in enumerate(("p", "q", "r")):
        feed(s, deliver_sm(70 + i, 0x04, 0, f"id:{p} stat:DELIVRD err:000".encode()), got)
    # a third open set: the oldest is settled with what arrived (one of two receipts)
    assert [a[:2] for _t, a in got.items] == [("p", "DELIVRD")]
    assert list(s.receipts.sets) == ["q", "r"]
    got.items.clear()
    s.handle_timer(s.receipts.sets["r"].first + 31.0)
    got.take(s)
    assert sent(s) == [] and not s.receipts.sets
    assert [a[:2] for _t, a in got.items] == [("q", "DELIVRD"), ("r", "DELIVRD")]


def test_unanswered_deliver_sm_times_out_and_link_loss_forgets() -> None:
    s, got = bound(deliver_timeout=20.0, enquire_link_interval=1000.0), _Handed()
    feed(s, deliver_sm(80, 0x00, 0x00, b"CX"), got)
    feed(s, deliver_sm(81, 0x00, 0x00, b"KT"), got)
    [(t80, _a), (t81, _b)] = got.items
    deadline = T0 + 20.0
    assert s.next_deadline() == deadline
    s.handle_timer(deadline - 0.001)
    assert sent(s) == []
    s.handle_timer(deadline + 0.001)
    # both past 20 s: deliver_sm_resp ESME_RX_T_APPN, a late outcome is not answered again
    assert sent(s) == [
        _answer("deliver_sm_resp", 80, ESME_RX_T_APPN),
        _answer("deliver_sm_resp", 81, ESME_RX_T_APPN),
    ]
    assert answer(s, t80) == []
    # a deliver_sm pending when the link drops is never answered (the SMSC redelivers it)
    got.items.clear()
    feed(s, deliver_sm(82, 0x00, 0x00, b"QX"), got)
    [(t82, _c)] = got.items
    s.connection_lost(T0)
    assert answer(s, t82) == []


def test_mo_gsm7_ucs2_and_concatenated() -> None:
    s, got = bound(), _Handed()
    feed(s, deliver_sm(60, 0x00, 0x00, b"STOP"), got)
    feed(s, deliver_sm(61, 0x00, 0x08, "退订".encode("utf-16-be")), got)
    for i, seg in enumerate(encode_sms("回复" * 50, concat_ref=9).segments):
        # 2 parts, UDH 050003 09 02 0n: no part is answered before the whole MO is stored
        assert feed(s, deliver_sm(62 + i, seg.esm_class, 0x08, seg.short_message), got) == []
    assert [a[2] for _t, a in got.items] == ["STOP", "退订", "回复" * 50]
    assert answer(s, got.items[2][0]) == [
        _answer("deliver_sm_resp", 62),
        _answer("deliver_sm_resp", 63),
    ]


def test_enquire_link_and_unknown_request() -> None:
    s = bound()
    # enquire_link seq 5 -> enquire_link_resp seq 5
    assert feed(s, bytes.fromhex("00000010000000150000000000000005")) == [
        _answer("enquire_link_resp", 5)
    ]
    # an unknown request id 0x00000099 -> generic_nack ESME_RINVCMDID (§4.3)
    assert feed(s, bytes.fromhex("00000010000000990000000000000006")) == [
        _answer("generic_nack", 6, 0x03)
    ]


def test_fuzz_receive_path() -> None:
    """Random and mutated PDUs never raise; every request the session reads gets its answer
    (after its handler's outcome or its timeout), unless the stream itself is broken and the
    session closes the connection (a command_length out of range, after a generic_nack)."""
    rng = random.Random(1125)
    seeds = [
        deliver_sm(
            1, 0x04, 0, b"id:x stat:DELIVRD err:000 text:", bytes.fromhex("001e0002") + b"x\0"
        ),
        deliver_sm(2, 0x40, 0x08, encode_sms("回复" * 50, concat_ref=1).segments[0].short_message),
        deliver_sm(3, 0x00, 0x00, b"hello"),
        struct.pack(">IIII", 20, 0x80000004, 0, 4) + b"abc\0",
        bytes.fromhex("00000010000000150000000000000005"),
    ]
    closed = 0
    for _ in range(10_000):
        s = bound(enquire_link_interval=1e9)
        if rng.random() < 0.3:
            n = rng.randint(16, 80)
            raw = struct.pack(">I", n) + bytes(rng.getrandbits(8) for _ in range(n - 4))
        else:
            b = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 5)):
                b[rng.randrange(4, len(b))] = rng.getrandbits(8)  # keep command_length
            raw = bytes(b)
        s.receive_data(raw, T0)
        out = sent(s)
        evs = events(s)
        if any(isinstance(e, ConnectionMustClose) for e in evs):
            closed += 1
            continue
        for e in evs:
            if isinstance(e, ReceiptReceived | MoReceived):
                s.answer_deliver(e.tokens, rng.random() < 0.5, T0)
        s.handle_timer(T0 + 3600)  # incomplete concatenated MO: its timeout answers it
        out += sent(s)
        _length, command_id, _status, seq = header(raw)
        if command_id & 0x80000000 or command_id == 0x00000102:  # responses, alert_notification
            continue
        assert [header(p)[3] for p in out] == [seq], raw.hex()
    assert 0 < closed < 10_000


def test_gateway_submit_requires_start() -> None:
    gw = SmppGateway(SmppGatewayConfig())
    from scp.service.outbox import OutboundSms

    with pytest.raises(SmppLinkError):
        asyncio.run(gw.submit(OutboundSms(1, "k", "861", "x", 1)))


def test_submit_sm_golden_both_ways() -> None:
    s = bound(source_addr="12599")
    segments = encode_sms("您好" * 40, concat_ref=0x2A).segments
    s.submit("8613900000001", "您好" * 40, concat_ref=0x2A, now=T0)
    [_first, raw] = sent(s)
    body = segments[1].short_message
    expected = (
        # length, submit_sm, ok, seq 3 (the bind took 1, the first segment 2)
        struct.pack(">IIII", 16 + 35 + len(body), 0x00000004, 0, 3)
        + b"\0"  # service_type ""
        + b"\x03\x00"
        + b"12599\0"  # source TON 3 (network specific) NPI 0, short code
        + b"\x01\x01"
        + b"8613900000001\0"  # dest TON 1 international, NPI 1 E.164
        + b"\x40\x00\x00"  # esm_class UDHI, protocol_id, priority_flag
        + b"\0\0"  # schedule_delivery_time, validity_period: defaults
        + b"\x01\x00\x08\x00"  # registered_delivery 1, replace 0, UCS-2, dflt id
        + bytes((len(body),))
        + body  # sm_length, short_message (UDH 0500032a0202 + text)
    )
    assert raw == expected
    assert body[:6].hex() == "0500032a0202"
    # and back: smpplib reads what we wrote
    import smpplib.smpp

    from tests.unit.smpp_helpers import SeqClient

    pdu = smpplib.smpp.parse_pdu(raw, client=SeqClient(), allow_unknown_opt_params=True)
    assert (pdu.command, pdu.esm_class, pdu.data_coding, pdu.registered_delivery) == (
        "submit_sm",
        0x40,
        8,
        1,
    )
    assert pdu.short_message == body and pdu.destination_addr in (b"8613900000001", "8613900000001")


class _Transport:
    """What the gateway writes (unit test of its handler ordering; no socket)."""

    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        pass


def test_handler_of_an_answered_deliver_sm_is_skipped() -> None:
    """A handler still queued when its deliver_sm timed out (or lost its link) is not run: the
    SMSC delivers that message again, running it now would store it twice."""
    ran: list[str] = []

    async def store(name: str) -> None:
        ran.append(name)

    async def main() -> None:
        gw = SmppGateway(SmppGatewayConfig(enquire_link_interval=1e9), on_mo=lambda *a: None)
        gw._loop = asyncio.get_running_loop()
        transport = _Transport()
        gw._transport = transport  # type: ignore[assignment]
        core = gw.core
        now = gw._loop.time()
        core.connection_made(now)
        core.receive_data(bytes.fromhex("00000015800000090000000000000001") + b"SMSC\0", now)
        got = _Handed()
        for raw in (deliver_sm(90, 0x00, 0x00, b"CX"), deliver_sm(91, 0x00, 0x00, b"KT")):
            core.receive_data(raw, now)
        got.take(core)
        [(t90, _a), (t91, _b)] = got.items
        core.data_to_send()
        core.handle_timer(now + core.config.deliver_timeout + 0.001)
        assert split(core.data_to_send()) == [
            _answer("deliver_sm_resp", 90, ESME_RX_T_APPN),
            _answer("deliver_sm_resp", 91, ESME_RX_T_APPN),
        ]
        await gw._settle_deliver([store("late")], t90, False)
        assert ran == [] and gw.stats["deliver_sm_skipped"] == 1
        got.items.clear()
        core.receive_data(deliver_sm(92, 0x00, 0x00, b"QX"), now)
        got.take(core)
        [(t92, _c)] = got.items
        await gw._settle_deliver([store("fresh")], t92, False)
        await asyncio.sleep(0)  # the gateway writes what the session answered
        assert ran == ["fresh"]
        assert split(transport.written) == [_answer("deliver_sm_resp", 92)]

    asyncio.run(main())
