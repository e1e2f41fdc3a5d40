"""The SMPP ESME session core (scp.core.smpp_esme) with bytes alone: bind, the state table,
window, response / enquire_link / unbind timeouts, throttling backoff, generic_nack and
ESME_RINVBNDSTS for what the SMSC should not send, concatenated MO (UDH 8- and 16-bit
references, SAR TLVs) in and out of order, receipts.

SMPP 3.4 §2.2-2.3 states, §2.5 windowing, §4.1 bind, §4.2 unbind, §4.3 generic_nack, §4.4
submit_sm, §4.6 deliver_sm, §4.11 enquire_link, §5.1.3 command_status, §5.3.2.22-24 SAR TLVs.
"""

from __future__ import annotations

import itertools
import struct

import pytest

from scp.codecs.sms import encode_sms
from scp.core.smpp_deliver import done_date, parse_receipt
from scp.core.smpp_esme import (
    SESSION_FSM,
    BindFailed,
    Bound,
    ConnectionMustClose,
    DeliverTimedOut,
    Dropped,
    FailureKind,
    LocalProtocolError,
    MessageFailed,
    MessageSubmitted,
    MoReceived,
    ReceiptReceived,
    SessionEvent,
    SessionState,
    Throttled,
    Unbound,
    UnsendableMessage,
)
from tests.unit.smpp_helpers import (
    T0,
    bind_transceiver_resp,
    bound,
    deliver_sm,
    events,
    header,
    pdu,
    sent,
    session,
    submit_sm_resp,
    tlv,
)

BIND_TRANSCEIVER_RESP = 0x80000009
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
DELIVER_SM_RESP = 0x80000005
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
UNBIND, UNBIND_RESP = 0x00000006, 0x80000006
GENERIC_NACK = 0x80000000


def ids(pdus: list[bytes]) -> list[tuple[int, int, int]]:
    """(command_id, command_status, sequence_number) of each PDU."""
    return [header(p)[1:] for p in pdus]


# -- bind ------------------------------------------------------------------------------------


def test_bind_transceiver_golden_and_bound() -> None:
    s = session(system_id="mcn", password="secret")
    assert s.state is SessionState.CLOSED
    s.connection_made(T0)
    assert s.state is SessionState.OPEN
    [bind] = sent(s)
    assert (
        bind.hex()
        == (
            "00000020"
            "00000009"
            "00000000"
            "00000001"  # length 32, bind_transceiver, ok, seq 1
            + b"mcn\0".hex()  # system_id
            + b"secret\0".hex()  # password
            + "00"  # system_type ""
            + "34"
            "00"
            "00"  # interface_version 3.4, addr_ton, addr_npi
             + "00"
        )
    )  # address_range ""
    assert s.next_deadline() == T0 + 30.0  # the bind's response timer
    s.receive_data(bind_transceiver_resp(1, system_id=b"SMSC-A"), T0 + 0.1)
    assert events(s) == [Bound(SessionState.BOUND_TRX, "SMSC-A")]
    assert s.state is SessionState.BOUND_TRX and s.can_submit
    assert s.stats["binds"] == 1


@pytest.mark.parametrize(
    ("mode", "command_id", "state", "can_submit"),
    [
        ("transmitter", 0x00000002, SessionState.BOUND_TX, True),
        ("receiver", 0x00000001, SessionState.BOUND_RX, False),
    ],
)
def test_bind_modes(mode: str, command_id: int, state: SessionState, can_submit: bool) -> None:
    s = session(bind_mode=mode)
    s.connection_made(T0)
    [bind] = sent(s)
    assert header(bind)[1] == command_id
    s.receive_data(pdu(command_id | 0x80000000, 1, 0, b"SMSC\0"), T0)
    assert s.state is state and s.can_submit is can_submit
    # a deliver_sm to a transmitter is not allowed in its state (§2.3): ESME_RINVBNDSTS
    s.receive_data(deliver_sm(7, 0, 0, b"hi"), T0)
    expected = [] if state is SessionState.BOUND_RX else [(DELIVER_SM_RESP, 0x04, 7)]
    assert [i for i in ids(sent(s)) if i[0] == DELIVER_SM_RESP] == expected


@pytest.mark.parametrize(
    "answer",
    [
        bind_transceiver_resp(1, status=0x0E),  # ESME_RINVPASWD
        pdu(GENERIC_NACK, 1, 0x03),
    ],
)
def test_bind_refused_closes(answer: bytes) -> None:
    s = session()
    s.connection_made(T0)
    sent(s)
    s.submit("8613900000001", "queued before the bind", concat_ref=1, now=T0)
    s.receive_data(answer, T0)
    evs = events(s)
    assert isinstance(evs[0], BindFailed) and evs[0].status == header(answer)[2]
    assert isinstance(evs[-1], ConnectionMustClose)
    assert s.state is SessionState.CLOSED and sent(s) == []
    # the queued message waits for the next connection
    s.connection_made(T0 + 1)
    sent(s)
    s.receive_data(bind_transceiver_resp(2), T0 + 1)
    assert [i[0] for i in ids(sent(s))] == [SUBMIT_SM]


def test_bind_unanswered_closes() -> None:
    s = session(response_timeout=5.0)
    s.connection_made(T0)
    s.handle_timer(T0 + 4.999)
    assert events(s) == []
    s.handle_timer(T0 + 5.0)
    assert events(s) == [ConnectionMustClose("no bind_resp within response_timeout")]
    assert s.state is SessionState.CLOSED


def test_state_table_is_the_only_way_to_move() -> None:
    """Every (state, event) pair outside the table is a LocalProtocolError; every row leads
    where it says (its ``next``, or nowhere)."""
    for state, event in itertools.product(SessionState, SessionEvent):
        s = session()
        s.state = state
        row = SESSION_FSM.get(state, event)
        if row is not None:
            s._transition(event)
            assert s.state is (row.next or state)
        else:
            with pytest.raises(LocalProtocolError):
                s._transition(event)
    s = bound()
    with pytest.raises(LocalProtocolError, match="connection made in BOUND_TRX"):
        s.connection_made(T0)


def test_requests_not_allowed_in_open_are_answered_rinvbndsts() -> None:
    s = session()
    s.connection_made(T0)
    sent(s)
    s.receive_data(deliver_sm(3, 0, 0, b"early") + pdu(UNBIND, 4) + pdu(ENQUIRE_LINK, 5), T0)
    # deliver_sm and unbind before the bind: ESME_RINVBNDSTS 0x04; enquire_link is allowed
    assert ids(sent(s)) == [
        (DELIVER_SM_RESP, 0x04, 3),
        (UNBIND_RESP, 0x04, 4),
        (ENQUIRE_LINK_RESP, 0, 5),
    ]
    assert s.state is SessionState.OPEN


# -- window and response timers --------------------------------------------------------------


def test_window_full_waits_for_responses() -> None:
    s = bound(window=3)
    refs = [s.submit(f"86139000000{i:02d}", f"sms {i}", concat_ref=i, now=T0) for i in range(5)]
    first = sent(s)
    assert [i[0] for i in ids(first)] == [SUBMIT_SM] * 3 and s.inflight == 3
    s.receive_data(submit_sm_resp(header(first[1])[3], "id-1"), T0 + 0.1)
    assert events(s) == [MessageSubmitted(refs[1], ("id-1",))]
    [fourth] = sent(s)  # one slot freed, one more out
    assert s.inflight == 3 and s.max_inflight == 3
    for p in (first[0], first[2], fourth):
        s.receive_data(submit_sm_resp(header(p)[3], f"id-{header(p)[3]}"), T0 + 0.2)
    [fifth] = sent(s)
    s.receive_data(submit_sm_resp(header(fifth)[3], "id-last"), T0 + 0.3)
    assert sorted(e.ref for e in events(s) if isinstance(e, MessageSubmitted)) == [
        refs[0],
        refs[2],
        refs[3],
        refs[4],
    ]
    assert s.inflight == 0 and s.max_inflight == 3


def test_multipart_message_completes_with_every_segment_id() -> None:
    s = bound()
    ref = s.submit("8613900000001", "您好" * 40, concat_ref=7, now=T0)  # 2 UCS-2 segments
    a, b = sent(s)
    s.receive_data(submit_sm_resp(header(b)[3], "B") + submit_sm_resp(header(a)[3], "A"), T0)
    assert events(s) == [MessageSubmitted(ref, ("A", "B"))]
    # both ids now lead to the first one for receipts
    assert s.receipts.lookup("B") == ("A", 2)


def test_submit_sm_response_timeout_drops_the_link() -> None:
    s = bound(response_timeout=30.0, enquire_link_interval=1e9)
    first = s.submit("8613900000001", "lost", concat_ref=1, now=T0)
    second = s.submit("8613900000002", "lost too", concat_ref=2, now=T0 + 10)
    assert len(sent(s)) == 2
    assert s.next_deadline() == T0 + 30.0  # the oldest request's
    s.handle_timer(T0 + 29.999)
    assert events(s) == []
    s.handle_timer(T0 + 30.0)
    # the SMSC may have taken them: failed as a link loss, for the sender to decide
    assert events(s) == [
        MessageFailed(first, FailureKind.LINK, "link lost with submit_sm outstanding"),
        MessageFailed(second, FailureKind.LINK, "link lost with submit_sm outstanding"),
        ConnectionMustClose("submit_sm_resp not received in time"),
    ]
    assert s.state is SessionState.CLOSED and s.inflight == 0


def test_queued_message_fails_after_submit_timeout_without_a_link() -> None:
    s = session(submit_timeout=60.0)
    ref = s.submit("8613900000001", "no SMSC", concat_ref=1, now=T0)
    assert s.next_deadline() == T0 + 60.0
    s.handle_timer(T0 + 59.9)
    assert events(s) == []
    s.handle_timer(T0 + 60.0)
    assert events(s) == [MessageFailed(ref, FailureKind.LINK, "no SMSC link within submit_timeout")]


def test_unsendable_message_is_refused_at_once() -> None:
    s = bound()
    with pytest.raises(UnsendableMessage, match="destination_addr"):
        s.submit("1" * 21, "x", concat_ref=1, now=T0)
    with pytest.raises(UnsendableMessage, match="cannot encode"):
        s.submit("8613900000001", "x" * 160 * 256, concat_ref=1, now=T0)
    assert sent(s) == [] and events(s) == []


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (0x0B, FailureKind.PERMANENT),  # ESME_RINVDSTADR
        (0x08, FailureKind.TEMPORARY),  # ESME_RSYSERR
    ],
)
def test_refusals_classified(status: int, kind: FailureKind) -> None:
    s = bound()
    ref = s.submit("8613900000001", "x", concat_ref=1, now=T0)
    [p] = sent(s)
    s.receive_data(submit_sm_resp(header(p)[3], "", status), T0)
    [ev] = events(s)
    assert ev == MessageFailed(ref, kind, ev.reason, status)


def test_generic_nack_for_a_submit_fails_it() -> None:
    s = bound()
    ref = s.submit("8613900000001", "x", concat_ref=1, now=T0)
    [p] = sent(s)
    s.receive_data(pdu(GENERIC_NACK, header(p)[3], 0x03), T0)
    assert events(s) == [MessageFailed(ref, FailureKind.PERMANENT, "submit_sm refused", 0x03)]


# -- throttling -------------------------------------------------------------------------------


def test_throttle_backoff_doubles_and_resets() -> None:
    s = bound(throttle_min=0.1, throttle_max=0.4, enquire_link_interval=1e9)
    ref = s.submit("8613900000001", "throttled", concat_ref=1, now=T0)
    [p] = sent(s)
    now = T0
    pauses = []
    for _ in range(4):
        s.receive_data(submit_sm_resp(header(p)[3], "", 0x58), now)  # ESME_RTHROTTLED
        [ev] = events(s)
        assert isinstance(ev, Throttled) and ev.status == 0x58
        pauses.append(ev.pause)
        assert s.next_deadline() == pytest.approx(now + ev.pause)
        s.handle_timer(now + ev.pause / 2)
        assert sent(s) == []  # nothing goes out during the pause
        now += ev.pause
        s.handle_timer(now)
        [retry] = sent(s)
        assert retry[16:] == p[16:]  # the same segment again, with a new sequence_number
        p = retry
    assert pauses == [0.1, 0.2, 0.4, 0.4]
    s.receive_data(submit_sm_resp(header(p)[3], "ok"), now)  # accepted: the backoff resets
    assert events(s) == [MessageSubmitted(ref, ("ok",))]
    s.submit("8613900000003", "next", concat_ref=3, now=now)
    [p2] = sent(s)
    s.receive_data(submit_sm_resp(header(p2)[3], "", 0x14), now)  # ESME_RMSGQFUL throttles too
    assert events(s) == [Throttled(0x14, 0.1)]
    # a message submitted during the pause waits behind the throttled segment
    s.submit("8613900000004", "behind it", concat_ref=4, now=now)
    assert sent(s) == []
    s.handle_timer(now + 0.1)
    assert [q[16:] for q in sent(s)][0] == p2[16:]


# -- enquire_link and unbind -----------------------------------------------------------------


def test_enquire_link_on_silence_and_its_timeout() -> None:
    s = bound(enquire_link_interval=30.0, response_timeout=10.0)
    assert s.next_deadline() == T0 + 30.0
    s.receive_data(pdu(ENQUIRE_LINK, 77), T0 + 20)  # the SMSC's own, answered; it resets silence
    assert ids(sent(s)) == [(ENQUIRE_LINK_RESP, 0, 77)]
    s.handle_timer(T0 + 30)
    assert sent(s) == []
    s.handle_timer(T0 + 50)
    [(cid, _st, seq)] = ids(sent(s))
    assert cid == ENQUIRE_LINK
    s.receive_data(pdu(ENQUIRE_LINK_RESP, seq), T0 + 51)
    assert s.next_deadline() == T0 + 81
    s.handle_timer(T0 + 81)
    [(_cid, _st, seq2)] = ids(sent(s))
    assert seq2 != seq
    s.handle_timer(T0 + 90.999)
    assert events(s) == []
    s.handle_timer(T0 + 91)
    assert events(s) == [ConnectionMustClose("enquire_link unanswered")]


def test_unbind_by_us_and_by_the_smsc() -> None:
    s = bound()
    s.unbind(T0)
    [(cid, _st, seq)] = ids(sent(s))
    assert cid == UNBIND and not s.can_submit
    s.submit("8613900000001", "after unbind", concat_ref=1, now=T0)
    assert sent(s) == []  # nothing more goes out
    s.receive_data(pdu(UNBIND_RESP, seq), T0)
    assert events(s) == [Unbound(by_peer=False), ConnectionMustClose("unbound")]
    assert s.state is SessionState.CLOSED
    # the SMSC unbinds: unbind_resp, and what was in flight fails as a link loss
    s = bound()
    ref = s.submit("8613900000001", "in flight", concat_ref=1, now=T0)
    sent(s)
    s.receive_data(pdu(UNBIND, 9), T0)
    assert ids(sent(s)) == [(UNBIND_RESP, 0, 9)]
    assert events(s) == [
        MessageFailed(ref, FailureKind.LINK, "link lost with submit_sm outstanding"),
        Unbound(by_peer=True),
        ConnectionMustClose("SMSC unbound"),
    ]


def test_unbind_unanswered_closes() -> None:
    s = bound(unbind_timeout=2.0, enquire_link_interval=1e9)
    s.unbind(T0)
    s.handle_timer(T0 + 2.0)
    assert events(s) == [ConnectionMustClose("no unbind_resp within unbind_timeout")]


# -- what the SMSC should not send -----------------------------------------------------------


def test_garbage_gets_generic_nack() -> None:
    s = bound()
    # unknown command_id 0x00000099: generic_nack ESME_RINVCMDID 0x03 (§4.3)
    s.receive_data(pdu(0x00000099, 6), T0)
    assert ids(sent(s)) == [(GENERIC_NACK, 0x03, 6)]
    # outbind: we always open the connection ourselves
    s.receive_data(pdu(0x0000000B, 7, 0, b"sys\0pw\0"), T0)
    assert ids(sent(s)) == [(GENERIC_NACK, 0x03, 7)]
    # a response nobody asked for is counted, not answered
    s.receive_data(submit_sm_resp(99, "stray"), T0)
    assert sent(s) == [] and s.stats["stray_resp"] == 1
    # command_length 8: generic_nack ESME_RINVCMDLEN 0x02, then the framing is lost
    s.receive_data(struct.pack(">IIII", 8, 0x00000015, 0, 8), T0)
    assert ids(sent(s)) == [(GENERIC_NACK, 0x02, 8)]
    assert isinstance(events(s)[-1], ConnectionMustClose) and s.state is SessionState.CLOSED


def _cut(raw: bytes, length: int) -> bytes:
    """The first ``length`` octets of a PDU, its command_length saying so."""
    return struct.pack(">I", length) + raw[4:length]


def test_unreadable_deliver_sm_gets_its_error_answer() -> None:
    s = bound()
    raw = deliver_sm(12, 0, 0, b"hello")
    # mandatory parameters cut short (inside source_addr): ESME_RINVCMDLEN
    s.receive_data(_cut(raw, 16 + 10), T0)
    # short_message runs past the PDU (sm_length 5, 2 octets left): ESME_RINVMSGLEN
    s.receive_data(_cut(raw, len(raw) - 3), T0)
    assert ids(sent(s)) == [(DELIVER_SM_RESP, 0x02, 12), (DELIVER_SM_RESP, 0x01, 12)]
    assert [type(e) for e in events(s)] == [Dropped, Dropped]


def test_bad_tlv_stream_is_answered_and_unknown_tlvs_ignored() -> None:
    s = bound()
    s.receive_data(deliver_sm(13, 0, 0, b"hi", tlv(0x1400, b"vendor")[:-2]), T0)
    assert ids(sent(s)) == [(DELIVER_SM_RESP, 0xC0, 13)]  # ESME_RINVOPTPARSTREAM
    s.receive_data(deliver_sm(14, 0, 0, b"hi", tlv(0x1400, b"vendor") + tlv(0x0423, b"\3\0\1")), T0)
    [ev] = events(s)[1:]
    assert isinstance(ev, MoReceived) and ev.text == "hi"


def test_partial_pdus_wait_for_the_rest() -> None:
    s = bound()
    raw = deliver_sm(15, 0, 0, b"split") + pdu(ENQUIRE_LINK, 16)
    for i in range(len(raw)):
        s.receive_data(raw[i : i + 1], T0)
    [mo] = events(s)
    assert isinstance(mo, MoReceived) and mo.text == "split"
    assert ids(sent(s)) == [(ENQUIRE_LINK_RESP, 0, 16)]


# -- MO reassembly ---------------------------------------------------------------------------


def _udh16(ref: int, total: int, seq: int) -> bytes:
    return bytes((6, 0x08, 4)) + ref.to_bytes(2, "big") + bytes((total, seq))


def _sar(ref: int, total: int, seq: int) -> bytes:
    return (
        tlv(0x020C, ref.to_bytes(2, "big"))
        + tlv(0x020E, bytes((total,)))
        + tlv(0x020F, bytes((seq,)))
    )


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 1, 2), (2, 3, 1)])
@pytest.mark.parametrize("scheme", ["udh8", "udh16", "sar"])
def test_concatenated_mo_in_any_order(scheme: str, order: tuple[int, ...]) -> None:
    s = bound()
    texts = {1: "第一部分 ", 2: "second part ", 3: "третья"}
    for n, part in enumerate(order):
        body = texts[part].encode("utf-16-be")
        if scheme == "udh8":
            raw = deliver_sm(100 + part, 0x40, 8, bytes((5, 0, 3, 0xAB, 3, part)) + body)
        elif scheme == "udh16":
            raw = deliver_sm(100 + part, 0x40, 8, _udh16(0xABCD, 3, part) + body)
        else:
            raw = deliver_sm(100 + part, 0x00, 8, body, _sar(0xABCD, 3, part))
        s.receive_data(raw, T0 + n)
        assert sent(s) == []  # no part answered before the whole MO is stored
    [mo] = events(s)
    assert isinstance(mo, MoReceived)
    assert mo.text == texts[1] + texts[2] + texts[3]
    assert (mo.source_addr, mo.destination_addr, len(mo.tokens)) == ("8613800138000", "12599", 3)
    s.answer_deliver(mo.tokens, True, T0 + 3)
    # answered in part order: 101, 102, 103
    assert ids(sent(s)) == [
        (DELIVER_SM_RESP, 0, 101),
        (DELIVER_SM_RESP, 0, 102),
        (DELIVER_SM_RESP, 0, 103),
    ]


def test_concatenated_mo_from_two_senders_with_one_reference() -> None:
    s = bound()
    parts = encode_sms("回复" * 50, concat_ref=9).segments
    for i, seg in enumerate(parts):
        for src in (b"8613800000001", b"8613800000002"):
            s.receive_data(
                deliver_sm(10 * i + int(src[-1:]), seg.esm_class, 8, seg.short_message, source=src),
                T0,
            )
    got = sorted((e.source_addr, e.text) for e in events(s) if isinstance(e, MoReceived))
    assert got == [("8613800000001", "回复" * 50), ("8613800000002", "回复" * 50)]


def test_incomplete_mo_answered_rx_t_appn_and_redelivered_part_replaces() -> None:
    s = bound(deliver_timeout=20.0, enquire_link_interval=1e9)
    p1, p2 = encode_sms("回复" * 50, concat_ref=5).segments
    s.receive_data(deliver_sm(1, 0x40, 8, p1.short_message), T0)
    s.receive_data(deliver_sm(2, 0x40, 8, p1.short_message), T0 + 5)  # part 1 again
    assert s.next_deadline() == T0 + 20
    s.handle_timer(T0 + 20)
    # the message is dropped; its (newer) part 1 gets ESME_RX_T_APPN: the SMSC delivers again
    assert ids(sent(s)) == [(DELIVER_SM_RESP, 0x64, 2)]
    assert s.stats["mo_incomplete"] == 1
    # the redelivery completes normally
    s.receive_data(
        deliver_sm(3, 0x40, 8, p1.short_message) + deliver_sm(4, 0x40, 8, p2.short_message), T0 + 30
    )
    [mo] = [e for e in events(s) if isinstance(e, MoReceived)]
    assert mo.text == "回复" * 50


def test_link_loss_forgets_incomplete_mo() -> None:
    s = bound()
    p1, p2 = encode_sms("回复" * 50, concat_ref=5).segments
    s.receive_data(deliver_sm(1, 0x40, 8, p1.short_message), T0)
    s.connection_lost(T0 + 1)
    assert len(s.mo) == 0
    # after a new bind, part 2 alone does not complete anything
    s.connection_made(T0 + 2)
    [bind] = sent(s)
    s.receive_data(bind_transceiver_resp(header(bind)[3]), T0 + 2)
    events(s)
    s.receive_data(deliver_sm(2, 0x40, 8, p2.short_message), T0 + 3)
    assert [e for e in events(s) if isinstance(e, MoReceived)] == []


def test_mo_without_handler_is_answered_at_once() -> None:
    s = bound()
    s.deliver_mo = False
    s.receive_data(deliver_sm(5, 0, 0, b"STOP"), T0)
    assert ids(sent(s)) == [(DELIVER_SM_RESP, 0, 5)] and events(s) == []


# -- receipts --------------------------------------------------------------------------------


def test_receipt_values_by_message_state_and_foreign_receipts() -> None:
    s = bound()
    s.receipts.remember(["ours"])
    # no text: the stat word comes from message_state 5 (UNDELIVERABLE), §5.3.2.35
    s.receive_data(
        deliver_sm(
            20,
            0x04,
            0,
            b"",
            tlv(0x001E, b"ours\0") + tlv(0x0427, b"\5"),
            source=b"8613900000001",
            destination=b"12599",
        ),
        T0,
    )
    [r] = events(s)
    assert isinstance(r, ReceiptReceived)
    assert (r.message_id, r.stat, r.done_date, r.matched) == ("ours", "UNDELIV", None, True)
    # a receipt of a message we never submitted: a subscriber's own SMS, forwarded
    s.receive_data(
        deliver_sm(
            21,
            0x04,
            0,
            b"id:theirs stat:delivrd done date:2611251806",
            source=b"8613700000099",
            destination=b"8613912345001",
        ),
        T0,
    )
    [f] = events(s)
    assert isinstance(f, ReceiptReceived)
    assert (f.message_id, f.stat, f.matched, f.source_addr, f.destination_addr) == (
        "theirs",
        "DELIVRD",
        False,
        "8613700000099",
        "8613912345001",
    )


def test_intermediate_and_idless_receipts_answered_at_once() -> None:
    s = bound()
    s.receive_data(deliver_sm(30, 0x20, 0, b"id:x stat:ENROUTE"), T0)  # intermediate
    s.receive_data(deliver_sm(31, 0x04, 0, b"sub:001 stat:DELIVRD"), T0)  # no id anywhere
    assert ids(sent(s)) == [(DELIVER_SM_RESP, 0, 30), (DELIVER_SM_RESP, 0, 31)]
    assert [type(e) for e in events(s)] == [Dropped]


def test_deliver_timeout_event_and_late_answer_ignored() -> None:
    s = bound(deliver_timeout=5.0, enquire_link_interval=1e9)
    s.receive_data(deliver_sm(40, 0, 0, b"KT"), T0)
    [mo] = events(s)
    assert isinstance(mo, MoReceived) and s.deliver_pending(mo.tokens[0])
    s.handle_timer(T0 + 5)
    assert events(s) == [DeliverTimedOut(40)] and not s.deliver_pending(mo.tokens[0])
    assert ids(sent(s)) == [(DELIVER_SM_RESP, 0x64, 40)]
    s.answer_deliver(mo.tokens, True, T0 + 6)
    assert sent(s) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id:1 stat:DELIVRD done date:2611251806", ("1", "DELIVRD", "2611251806")),
        ("ID:Ab sub:001 Stat:undeliv text:id:zz stat:x", ("Ab", "undeliv", None)),
    ],
)
def test_receipt_text(text: str, expected: tuple[str, str, str | None]) -> None:
    f = parse_receipt(text)
    assert (f.get("id"), f.get("stat"), f.get("done date")) == expected


def test_done_date() -> None:
    assert done_date("2611251806") is not None and done_date("2611251806").hour == 18  # type: ignore[union-attr]
    assert done_date("2613251806") is None  # month 13
    assert done_date("") is None and done_date(None) is None
