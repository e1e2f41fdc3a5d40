"""Behaviour of the SCCP connectionless core (Q.714): routing, returns, segmentation, SCMG.

Everything the core sends in these tests is collected and, at the end of the module, wrapped
in M3UA DATA and read back by tshark, which must find nothing malformed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from scp.codecs.sccp import (
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
    encode_scmg,
)
from scp.core.sccp import (
    REASSEMBLY_FSM,
    ReassemblyEvent,
    ReassemblyState,
    SccpLayer,
    SccpLog,
)
from scp.primitives import (
    GlobalTitle,
    MtpTransfer,
    NNotice,
    NUnitdata,
    ReturnCause,
    RoutingIndicator,
    SccpAddress,
)
from tests import tshark
from tests.helpers import m3ua_data

OUR_PC = 100
PEER_PC = 200
OUR_GT = "8613800000"
CAP, MAP, SC, INAP = 146, 147, 8, 241

# Smallest TCAP Begin Wireshark decodes cleanly (otid 01020304, no components).
TCAP = bytes.fromhex("6206480401020304")

_EMITTED: list[bytes] = []


def _ber(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        head = bytes((n,))
    elif n < 0x100:
        head = bytes((0x81, n))
    else:
        head = bytes((0x82, n >> 8, n & 0xFF))
    return bytes((tag,)) + head + body


def big_tcap(components: int) -> bytes:
    """A TCAP Begin with ``components`` CAP Continue invokes (8 octets each): valid and long."""
    invokes = b"".join(
        _ber(0xA1, _ber(0x02, bytes((i,))) + _ber(0x02, b"\x1f")) for i in range(1, components + 1)
    )
    return _ber(0x62, _ber(0x48, b"\x01\x02\x03\x04") + _ber(0x6C, invokes))


@pytest.fixture(scope="module", autouse=True)
def _tshark_reads_everything_we_sent() -> Iterator[None]:
    yield
    assert _EMITTED, "the core tests sent nothing"
    pcap = tshark.write_pcap(_EMITTED)
    tshark.assert_clean(pcap, expect_frames=len(_EMITTED))


def sent(outputs: Sequence[object]) -> list[MtpTransfer]:
    """The MTP-TRANSFER requests among ``outputs``, recorded for the tshark check."""
    xfers = [o for o in outputs if isinstance(o, MtpTransfer)]
    for x in xfers:
        _EMITTED.append(m3ua_data(x.data, opc=x.opc, dpc=x.dpc, ni=x.ni, sls=x.sls))
    return xfers


def returned_cause(x: MtpTransfer) -> int:
    """The return cause of the UDTS/XUDTS that ``x`` carries."""
    m = decode(x.data)
    assert isinstance(m, (Udts, Xudts))
    return m.return_cause


def up(outputs: Sequence[object]) -> list[NUnitdata | NNotice]:
    return [o for o in outputs if isinstance(o, (NUnitdata, NNotice))]


def logs(outputs: Sequence[object]) -> list[SccpLog]:
    return [o for o in outputs if isinstance(o, SccpLog)]


def scp(**kw: object) -> SccpLayer:
    args: dict[str, object] = dict(
        local_pc=OUR_PC, global_title=OUR_GT, local_ssns=(CAP, MAP, SC, INAP), default_dpc=PEER_PC
    )
    args.update(kw)
    return SccpLayer(**args)  # type: ignore[arg-type]


def ssn_addr(ssn: int, pc: int | None = None) -> SccpAddress:
    return SccpAddress(RoutingIndicator.SSN, pc=pc, ssn=ssn)


def gt_addr(digits: str, ssn: int | None) -> SccpAddress:
    return SccpAddress(RoutingIndicator.GT, ssn=ssn, gt=GlobalTitle(digits))


MSC = gt_addr("8613900001", 146)  # a gsmSSF calling us


def from_peer(msg: object, *, sls: int = 5, opc: int = PEER_PC, dpc: int = OUR_PC) -> MtpTransfer:
    return MtpTransfer(opc=opc, dpc=dpc, si=3, ni=2, mp=0, sls=sls, data=encode(msg))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------------


def test_deliver_route_on_ssn() -> None:
    out = scp().handle_mtp_transfer(from_peer(Udt(ssn_addr(CAP, OUR_PC), MSC, TCAP, 1, True)), 0.0)
    assert out == [
        NUnitdata(
            called=ssn_addr(CAP, OUR_PC),
            calling=MSC,
            data=TCAP,
            protocol_class=1,
            return_option=True,
            sequence_control=5,
            opc=PEER_PC,
            dpc=OUR_PC,
        )
    ]


@pytest.mark.parametrize("digits", [OUR_GT, "4917000000"], ids=["our_gt", "gt_translated_by_stp"])
def test_deliver_route_on_gt(digits: str) -> None:
    called = gt_addr(digits, MAP)
    out = scp().handle_mtp_transfer(from_peer(Udt(called, MSC, TCAP)), 0.0)
    assert len(out) == 1 and isinstance(out[0], NUnitdata)
    assert out[0].called == called and out[0].data == TCAP and out[0].opc == PEER_PC


@pytest.mark.parametrize(
    ("called", "cause"),
    [
        (gt_addr(OUR_GT, None), ReturnCause.NO_TRANSLATION_ADDRESS),
        (gt_addr("4917000000", None), ReturnCause.NO_TRANSLATION_NATURE),
        (
            SccpAddress(RoutingIndicator.GT, ssn=None, gt=None, pc=OUR_PC),
            ReturnCause.NO_TRANSLATION_NATURE,
        ),
        (SccpAddress(RoutingIndicator.SSN, pc=OUR_PC), ReturnCause.UNQUALIFIED),
        (ssn_addr(99), ReturnCause.UNEQUIPPED_USER),
    ],
    ids=[
        "our_gt_no_ssn",
        "foreign_gt_no_ssn",
        "ri_gt_without_gt",
        "ri_ssn_without_ssn",
        "unknown_ssn",
    ],
)
def test_undeliverable_is_returned_with_cause(called: SccpAddress, cause: ReturnCause) -> None:
    out = scp().handle_mtp_transfer(from_peer(Udt(called, MSC, TCAP, 0, True), sls=9), 0.0)
    (x,) = sent(out)
    assert (x.opc, x.dpc, x.sls, x.si) == (OUR_PC, PEER_PC, 9, 3)
    # Q.714 §4.2: back to the calling address, with the original data.
    assert decode(x.data) == Udts(called=MSC, calling=called, data=TCAP, return_cause=cause)
    assert [lg.event for lg in logs(out)] == ["return"]
    assert not up(out)


def test_undeliverable_without_return_option_is_a_logged_drop() -> None:
    out = scp().handle_mtp_transfer(from_peer(Udt(ssn_addr(99), MSC, TCAP)), 0.0)
    assert not sent(out) and not up(out)
    assert [lg.event for lg in logs(out)] == ["drop"]
    assert "unequipped_user" in logs(out)[0].detail


def test_prohibited_subsystem_returns_subsystem_failure() -> None:
    layer = scp()
    layer.set_subsystem_state(INAP, False)
    out = layer.handle_mtp_transfer(from_peer(Udt(ssn_addr(INAP), MSC, TCAP, 0, True)), 0.0)
    (x,) = sent(out)
    assert decode(x.data) == Udts(MSC, ssn_addr(INAP), TCAP, ReturnCause.SUBSYSTEM_FAILURE)
    layer.set_subsystem_state(INAP, True)
    assert isinstance(
        layer.handle_mtp_transfer(from_peer(Udt(ssn_addr(INAP), MSC, TCAP)), 0.0)[0], NUnitdata
    )


def test_xudt_unknown_ssn_returns_xudts() -> None:
    msg = Xudt(ssn_addr(99), MSC, TCAP, 0, True, 10, None, 4)
    (x,) = sent(scp().handle_mtp_transfer(from_peer(msg), 0.0))
    assert decode(x.data) == Xudts(
        MSC, ssn_addr(99), TCAP, ReturnCause.UNEQUIPPED_USER, 15, None, 4
    )


def test_returned_message_goes_up_as_n_notice() -> None:
    udts = Udts(
        called=gt_addr(OUR_GT, CAP),
        calling=MSC,
        data=TCAP,
        return_cause=ReturnCause.SUBSYSTEM_FAILURE,
    )
    out = scp().handle_mtp_transfer(from_peer(udts), 0.0)
    assert out == [NNotice(called=gt_addr(OUR_GT, CAP), calling=MSC, reason=3, data=TCAP)]


@pytest.mark.parametrize(
    "msg",
    [
        Udts(ssn_addr(99), MSC, TCAP, 1),
        Xudts(ssn_addr(99), MSC, TCAP, 1),
        Xudts(gt_addr(OUR_GT, None), MSC, TCAP, 1, 1),
    ],
    ids=["udts_unknown_ssn", "xudts_unknown_ssn", "xudts_no_ssn_hop_1"],
)
def test_returns_are_never_answered(msg: object) -> None:
    out = scp().handle_mtp_transfer(from_peer(msg), 0.0)
    assert not sent(out) and not up(out)
    assert [lg.event for lg in logs(out)] == ["drop"]


def test_not_for_us() -> None:
    layer = scp()
    wire = from_peer(Udt(ssn_addr(CAP), MSC, TCAP, 0, True))
    out = layer.handle_mtp_transfer(MtpTransfer(200, 100, 5, 2, 0, 0, wire.data), 0.0)  # ISUP SI
    assert [lg.event for lg in logs(out)] == ["drop"] and len(out) == 1
    out = layer.handle_mtp_transfer(MtpTransfer(200, 101, 3, 2, 0, 0, wire.data), 0.0)
    assert [lg.event for lg in logs(out)] == ["drop"] and len(out) == 1


def test_undecodable_udt_with_readable_return_gets_udts_unqualified() -> None:
    # Called address with GTI 5 (not defined for ITU); calling and data readable.
    bad = bytes.fromhex("0980030507025692024292") + bytes((len(TCAP),)) + TCAP
    out = scp().handle_mtp_transfer(MtpTransfer(PEER_PC, OUR_PC, 3, 2, 0, 1, bad), 0.0)
    (x,) = sent(out)
    back = decode(x.data)
    assert isinstance(back, Udts)
    assert (
        back.return_cause == ReturnCause.UNQUALIFIED
        and back.called == ssn_addr(CAP)
        and back.data == TCAP
    )
    assert logs(out)[0].event == "decode_error"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x09",
        bytes.fromhex("0900030507025692024292") + b"\x00",
        b"\x01\x02\x03",
        b"\x0a" + b"\xff" * 40,
    ],
    ids=["empty", "type_only", "no_return_option", "connection_request", "garbage_udts"],
)
def test_undecodable_without_return_is_logged(data: bytes) -> None:
    out = scp().handle_mtp_transfer(MtpTransfer(PEER_PC, OUR_PC, 3, 2, 0, 1, data), 0.0)
    assert [lg.event for lg in logs(out)] == ["decode_error"] and len(out) == 1


# ---------------------------------------------------------------------------------------------
# Hop counter (Q.714 §2.3.3)
# ---------------------------------------------------------------------------------------------


def test_hop_counter_violation() -> None:
    layer = scp()
    msg = Xudt(gt_addr(OUR_GT, CAP), MSC, TCAP, 0, True, hop_counter=1)
    (x,) = sent(layer.handle_mtp_transfer(from_peer(msg), 0.0))
    assert decode(x.data) == Xudts(
        MSC, gt_addr(OUR_GT, CAP), TCAP, ReturnCause.HOP_COUNTER_VIOLATION
    )
    # Routed on SSN no translation happens here, so a last hop is still fine...
    assert isinstance(
        layer.handle_mtp_transfer(from_peer(Xudt(ssn_addr(CAP), MSC, TCAP, hop_counter=1)), 0.0)[0],
        NUnitdata,
    )
    # ...but 0 never is.
    out = layer.handle_mtp_transfer(
        from_peer(Xudt(ssn_addr(CAP), MSC, TCAP, 0, True, hop_counter=0)), 0.0
    )
    assert returned_cause(sent(out)[0]) == ReturnCause.HOP_COUNTER_VIOLATION
    # Two hops left on a GT-routed message: delivered.
    assert isinstance(
        layer.handle_mtp_transfer(
            from_peer(Xudt(gt_addr(OUR_GT, CAP), MSC, TCAP, hop_counter=2)), 0.0
        )[0],
        NUnitdata,
    )


# ---------------------------------------------------------------------------------------------
# Sending (N-UNITDATA request)
# ---------------------------------------------------------------------------------------------


def test_send_udt_routing_and_sls() -> None:
    layer = scp()
    req = NUnitdata(called=MSC, calling=gt_addr(OUR_GT, CAP), data=TCAP, dpc=300)
    (x,) = sent(layer.handle_n_unitdata(req, 0.0))
    assert (x.opc, x.dpc, x.si, x.ni, x.mp) == (OUR_PC, 300, 3, 2, 0)
    assert decode(x.data) == Udt(MSC, gt_addr(OUR_GT, CAP), TCAP)
    # No dpc: the called PC, then the default DPC.
    (x,) = sent(layer.handle_n_unitdata(NUnitdata(ssn_addr(CAP, 400), ssn_addr(CAP), TCAP), 0.0))
    assert x.dpc == 400
    (y,) = sent(layer.handle_n_unitdata(NUnitdata(MSC, ssn_addr(CAP), TCAP), 0.0))
    assert y.dpc == PEER_PC
    assert x.sls != y.sls  # class 0 spreads over the links
    # Class 1 keeps the SLS the user picked.
    slss = {
        sent(
            layer.handle_n_unitdata(
                NUnitdata(MSC, ssn_addr(CAP), TCAP, protocol_class=1, sequence_control=7), 0.0
            )
        )[0].sls
        for _ in range(3)
    }
    assert slss == {7}


def test_send_fills_our_gt_in_the_calling_address() -> None:
    req = NUnitdata(called=MSC, calling=SccpAddress(RoutingIndicator.GT, ssn=CAP), data=TCAP)
    (x,) = sent(scp().handle_n_unitdata(req, 0.0))
    assert decode(x.data).calling == SccpAddress(
        RoutingIndicator.GT, ssn=CAP, gt=GlobalTitle(OUR_GT, gti=4, tt=0, np=1, nai=4)
    )


def test_send_with_importance_uses_xudt() -> None:
    (x,) = sent(scp().handle_n_unitdata(NUnitdata(MSC, ssn_addr(CAP), TCAP, importance=5), 0.0))
    assert decode(x.data) == Xudt(MSC, ssn_addr(CAP), TCAP, 0, False, 15, None, 5)


def test_send_without_route() -> None:
    layer = scp(default_dpc=None)
    req = NUnitdata(called=MSC, calling=ssn_addr(CAP), data=TCAP, return_option=True)
    out = layer.handle_n_unitdata(req, 0.0)
    assert not sent(out)
    assert NNotice(MSC, ssn_addr(CAP), ReturnCause.NO_TRANSLATION_ADDRESS, TCAP) in out
    out = layer.handle_n_unitdata(NUnitdata(called=MSC, calling=ssn_addr(CAP), data=TCAP), 0.0)
    assert [type(o) for o in out] == [SccpLog]


def test_send_unencodable_or_too_long() -> None:
    layer = scp()
    bad = NUnitdata(
        called=SccpAddress(RoutingIndicator.GT, gt=GlobalTitle("12z")),
        calling=ssn_addr(CAP),
        data=TCAP,
        dpc=1,
        return_option=True,
    )
    out = layer.handle_n_unitdata(bad, 0.0)
    assert [n.reason for n in up(out) if isinstance(n, NNotice)] == [
        ReturnCause.ERROR_IN_LOCAL_PROCESSING
    ]
    huge = NUnitdata(called=MSC, calling=ssn_addr(CAP), data=b"\x00" * 4000, return_option=True)
    out = layer.handle_n_unitdata(huge, 0.0)
    assert not sent(out) and len(up(out)) == 1


# ---------------------------------------------------------------------------------------------
# Segmentation and reassembly (Q.714 §4.1.1.2, §4.1.1.3)
# ---------------------------------------------------------------------------------------------


def segment(x: MtpTransfer) -> tuple[Xudt, Segmentation]:
    m = decode(x.data)
    assert isinstance(m, Xudt) and m.segmentation is not None
    return m, m.segmentation


def _pair() -> tuple[SccpLayer, SccpLayer]:
    a = scp(max_udt_data=100)
    b = SccpLayer(
        local_pc=PEER_PC, global_title="8613900001", local_ssns=(CAP,), default_dpc=OUR_PC
    )
    return a, b


def test_segmentation_reassembly_round_trip() -> None:
    a, b = _pair()
    data = big_tcap(50)  # 405 octets
    req = NUnitdata(called=MSC, calling=gt_addr(OUR_GT, CAP), data=data, return_option=True)
    xfers = sent(a.handle_n_unitdata(req, 0.0))
    assert len(xfers) == 5
    segs = [segment(x) for x in xfers]
    assert all(s.protocol_class == 1 and s.return_option for s, _ in segs)
    assert len({x.sls for x in xfers}) == 1  # in sequence over one link
    refs = {g.local_reference for _, g in segs}
    assert len(refs) == 1
    assert [(g.first, g.remaining) for _, g in segs] == [
        (True, 4),
        (False, 3),
        (False, 2),
        (False, 1),
        (False, 0),
    ]
    assert b"".join(s.data for s, _ in segs) == data
    outs: list[object] = []
    for i, x in enumerate(xfers):
        outs += b.handle_mtp_transfer(x, float(i))
        if i < 4:
            assert b.next_deadline() == 10.0
    assert b.next_deadline() is None
    (ind,) = outs
    assert isinstance(ind, NUnitdata)
    assert ind.data == data and ind.protocol_class == 0 and ind.calling == gt_addr(OUR_GT, CAP)
    assert (ind.opc, ind.dpc) == (OUR_PC, PEER_PC)
    # A second message gets a new local reference.
    again = [segment(x) for x in sent(a.handle_n_unitdata(req, 1.0))]
    assert again[0][1].local_reference not in refs


def test_reassembly_timeout_returns_segmentation_failure() -> None:
    a, b = _pair()
    data = big_tcap(30)
    xfers = sent(
        a.handle_n_unitdata(NUnitdata(MSC, gt_addr(OUR_GT, CAP), data, return_option=True), 0.0)
    )
    assert len(xfers) == 3
    assert b.handle_mtp_transfer(xfers[0], 1.0) == []
    assert b.handle_mtp_transfer(xfers[1], 2.0) == []
    assert b.next_deadline() == 11.0
    assert b.handle_timer(10.9) == []
    out = b.handle_timer(11.0)
    (x,) = sent(out)
    assert (x.opc, x.dpc) == (PEER_PC, OUR_PC)
    back = decode(x.data)
    assert isinstance(back, Xudts) and back.return_cause == ReturnCause.SEGMENTATION_FAILURE
    assert back.called == gt_addr(OUR_GT, CAP) and back.data == decode(xfers[0].data).data
    assert b.next_deadline() is None
    # The late last segment finds no reassembly: returned too, never delivered.
    out = b.handle_mtp_transfer(xfers[2], 12.0)
    assert not up(out) and returned_cause(sent(out)[0]) == ReturnCause.SEGMENTATION_FAILURE
    # The XUDTS come back to A as N-NOTICE for its user.
    notice = a.handle_mtp_transfer(x, 13.0)
    assert [type(n) for n in notice] == [NNotice]


def test_segment_out_of_sequence_abandons_the_reassembly() -> None:
    a, b = _pair()
    xfers = sent(
        a.handle_n_unitdata(
            NUnitdata(MSC, gt_addr(OUR_GT, CAP), big_tcap(40), return_option=True), 0.0
        )
    )
    assert len(xfers) == 4
    b.handle_mtp_transfer(xfers[0], 0.0)
    out = b.handle_mtp_transfer(xfers[2], 0.0)  # segment 2 missing
    assert returned_cause(sent(out)[0]) == ReturnCause.SEGMENTATION_FAILURE
    assert b.next_deadline() is None


def test_reassembly_follows_its_table() -> None:
    """Each row of REASSEMBLY_FSM (Q.714 §4.1.1.3) on one reassembly, and the missing one."""
    a, b = _pair()
    first, second, last = sent(
        a.handle_n_unitdata(
            NUnitdata(MSC, gt_addr(OUR_GT, CAP), big_tcap(30), return_option=True), 0.0
        )
    )
    idle, busy = ReassemblyState.IDLE, ReassemblyState.REASSEMBLING
    ev = ReassemblyEvent

    def state() -> ReassemblyState:
        return busy if b._reassembly else idle

    # idle, subsequent segment: no row, so "segmentation failure" (no first segment)
    assert REASSEMBLY_FSM.get(idle, ev.NEXT_SEGMENT) is None
    out = b.handle_mtp_transfer(second, 0.0)
    assert returned_cause(sent(out)[0]) == ReturnCause.SEGMENTATION_FAILURE and state() is idle
    assert b.handle_mtp_transfer(first, 0.0) == []
    assert state() is REASSEMBLY_FSM.lookup(idle, ev.FIRST_SEGMENT).next is busy
    # a first segment again: the reassembly under way is abandoned (returned), a new one runs
    out = b.handle_mtp_transfer(first, 1.0)
    assert returned_cause(sent(out)[0]) == ReturnCause.SEGMENTATION_FAILURE
    assert state() is REASSEMBLY_FSM.lookup(busy, ev.FIRST_SEGMENT).next is busy
    assert b.handle_mtp_transfer(second, 1.0) == [] and state() is busy
    assert REASSEMBLY_FSM.lookup(busy, ev.NEXT_SEGMENT).next is None  # the data decide
    out = b.handle_timer(11.0)
    assert returned_cause(sent(out)[0]) == ReturnCause.SEGMENTATION_FAILURE
    assert state() is REASSEMBLY_FSM.lookup(busy, ev.T_REASSEMBLY_EXPIRY).next is idle
    # the whole message: the last segment ends the reassembly, delivered
    outs = [o for x in (first, second, last) for o in b.handle_mtp_transfer(x, 20.0)]
    assert [type(o) for o in outs] == [NUnitdata] and state() is idle


def test_segmented_return_is_reassembled_into_one_notice() -> None:
    a, b = _pair()
    data = big_tcap(30)
    b.set_subsystem_state(CAP, False)
    xfers = sent(
        a.handle_n_unitdata(NUnitdata(MSC, gt_addr(OUR_GT, CAP), data, return_option=True), 0.0)
    )
    returned: list[MtpTransfer] = []
    for x in xfers:
        returned += sent(b.handle_mtp_transfer(x, 0.0))
    # The whole message comes back as XUDTS, in segments of B's size (200).
    assert len(returned) == 2
    notices: list[object] = []
    for x in returned:
        notices += a.handle_mtp_transfer(x, 0.0)
    assert notices == [
        NNotice(
            called=gt_addr(OUR_GT, CAP),
            calling=MSC,
            reason=ReturnCause.SUBSYSTEM_FAILURE,
            data=data,
        )
    ]


REAL_SEGMENTS = [
    # #6 inap_pcapr_ericsson-cs1plus_xudt-segmented_m2pa.pcap frames 1-3 (OPC 900 -> DPC 902):
    # Ericsson INAP CS1+ Begin in three XUDT segments, local reference 1.
    "118104040e10ff0a1206001204795244332202420bef6282027348031200ff6b2f282d060700118605010101a0"
    "22612080020780a10e060c2a863a008961330101010001a203020100a305a1030201006c80a124020101020117"
    "301ca01a300b800112810100a203800101300b800111810100a203800101a112020102020113300a8300be0682"
    "0101840102a11502010302012f300da00ba009a0048002106781017fa143020104020120303bc1070290504404"
    "0020e203800102c40702905044040020c5020402a009040701105044040020a40a3008020105a1030201019e07"
    "83134514064206a11d02010502012e3015a00ea10c810100820400000000830100a103801004c201000000",
    "118104040e10ff0a1206001204795244332202420bef0102a1200201060201220418a103800102a311a0038001"
    "03a40a04080101105044040020a143020107020120303bc10702905044040020e203800103c407029050440400"
    "20c5020402a009040701105044614000a40a3008020105a1030201019e0783134514064206a11d02010802012e"
    "3015a00ea10c810100820400000000830100a103800103a1200201090201220418a103800103a311a003800103"
    "a40a04080101105044040020a15d02010a0201173055a053300b8001f9810100a203800103300b80010d810100"
    "a203800103300b8001fb810100a203800103301080010e810100a203800103be0381011410044101000000",
    "118104040e10a90a1206001204795244332202420b99300b80010f810100a203800103300b8001fa810101a203"
    "800103a15d02010b0201173055a053300b8001f9810100a203800102300b80010d810100a203800102300b8001"
    "fb810100a203800102301080010e810100a203800102be03810114300b80010f810100a203800102300b8001fa"
    "810101a203800102a10d02010c02011fe105a103800102a10d02010d02011fe105a103800103000010044001000000",
]


def test_real_segmented_xudt_is_reassembled() -> None:
    layer = SccpLayer(local_pc=902, global_title="9725443322", local_ssns=(6,))
    out: list[object] = []
    for i, hexs in enumerate(REAL_SEGMENTS):
        out += layer.handle_mtp_transfer(
            MtpTransfer(900, 902, 3, 2, 0, 3, bytes.fromhex(hexs)), float(i)
        )
    (ind,) = out
    assert isinstance(ind, NUnitdata)
    assert len(ind.data) == 239 + 239 + 153 and ind.data[:2] == b"\x62\x82"
    assert ind.protocol_class == 1 and ind.calling == ssn_addr(11) and ind.opc == 900
    assert layer.next_deadline() is None


# ---------------------------------------------------------------------------------------------
# SCCP management (Q.714 §5.3.4.2)
# ---------------------------------------------------------------------------------------------


def _sst(ssn: int, pc: int = OUR_PC) -> MtpTransfer:
    msg = Udt(ssn_addr(1), ssn_addr(1, PEER_PC), encode_scmg(Scmg(ScmgFormat.SST, ssn, pc)))
    return from_peer(msg, sls=11)


@pytest.mark.parametrize("ssn", [CAP, MAP, SC, INAP, 1])
def test_sst_for_allowed_subsystem_gets_ssa(ssn: int) -> None:
    (x,) = sent(scp().handle_mtp_transfer(_sst(ssn), 0.0))
    assert (x.dpc, x.sls) == (PEER_PC, 11)
    udt = decode(x.data)
    assert isinstance(udt, Udt) and udt.called.ssn == 1 and udt.calling == ssn_addr(1, OUR_PC)
    assert decode_scmg(udt.data) == Scmg(ScmgFormat.SSA, ssn, OUR_PC, 0)


def test_sst_for_prohibited_or_unknown_subsystem_is_not_answered() -> None:
    layer = scp()
    layer.set_subsystem_state(MAP, False)
    for ssn in (MAP, 99):
        out = layer.handle_mtp_transfer(_sst(ssn), 0.0)
        assert not sent(out) and [lg.event for lg in logs(out)] == ["scmg"]
    assert not sent(layer.handle_mtp_transfer(_sst(CAP, pc=555), 0.0))  # tests another node


def test_real_sst_from_capture() -> None:
    # #6 frame 4: SST for SSN 7 at PC 900, from PC 902; the capture's node answered SSA.
    layer = SccpLayer(local_pc=900, global_title="1", local_ssns=(7,))
    sst = bytes.fromhex("09000305090242010443860301050307840300")
    (x,) = sent(layer.handle_mtp_transfer(MtpTransfer(902, 900, 3, 2, 0, 10, sst), 0.0))
    # The real answer (frame 9) is 09 00 03 05 09 02 42 01 04 43 8403 01 05 01 07 8403 00.
    assert x.data == bytes.fromhex("09000305090242010443840301050107840300")


def test_other_scmg_messages_are_logged() -> None:
    msg = Udt(ssn_addr(1), ssn_addr(1, PEER_PC), encode_scmg(Scmg(ScmgFormat.SSP, 6, PEER_PC)))
    out = scp().handle_mtp_transfer(from_peer(msg), 0.0)
    assert [lg.event for lg in logs(out)] == ["scmg"] and not sent(out)
    bad = Udt(ssn_addr(1), ssn_addr(1, PEER_PC), b"\x09\x01")
    assert [lg.event for lg in logs(scp().handle_mtp_transfer(from_peer(bad), 0.0))] == ["drop"]


def test_reassembly_table_is_bounded() -> None:
    from scp.core import sccp as core

    layer = scp()
    first = Xudt(ssn_addr(CAP), MSC, TCAP, 1, True, 15, Segmentation(True, 0, 1, 0))
    for ref in range(core.MAX_PENDING_REASSEMBLIES):
        seg = Segmentation(True, 0, 1, ref)
        assert (
            layer.handle_mtp_transfer(
                from_peer(Xudt(ssn_addr(CAP), MSC, TCAP, 1, True, 15, seg)), 0.0
            )
            == []
        )
    out = layer.handle_mtp_transfer(
        from_peer(Xudt(ssn_addr(CAP), MSC, TCAP, 1, True, 15, Segmentation(True, 0, 1, 99999))), 0.0
    )
    assert returned_cause(sent(out)[0]) == ReturnCause.DESTINATION_CANNOT_REASSEMBLE
    assert first.segmentation is not None
    expired = layer.handle_timer(10.0)
    assert len(sent(expired)) == core.MAX_PENDING_REASSEMBLIES
    _EMITTED[-core.MAX_PENDING_REASSEMBLIES + 5 :] = []  # keep the tshark check short
