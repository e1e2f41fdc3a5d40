"""A continuation that reaches a worker other than its dialogue's owner (``--workers N``).

The decision is pure: :func:`owner_worker` names the sibling that owns a DTID, the TCAP of the
worker that got the message hands it over (:class:`ForwardToWorker`) instead of dropping it,
the frame of :mod:`scp.core.worker_link` carries it, and the owner's TCAP answers it as if
SCCP had delivered it there.
"""

from __future__ import annotations

import pytest

from scp.codecs import tcap
from scp.codecs.tcap import MessageType
from scp.core.tcap import ForwardToWorker, TcapLayer, owner_worker
from scp.core.worker_link import WorkerLinkError, decode_forward, encode_forward
from scp.primitives import (
    GlobalTitle,
    Invoke,
    NUnitdata,
    PointCodeFormat,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcContinue,
    TcEnd,
)
from tests.unit.tcap_frames import PC_PEER, PC_SCP, PEER, SCP
from tests.unit.test_tcap_core import CAP_V2, ERB, IDP, RRBE, only, sent, up

SIBLINGS_OF_1 = frozenset({2, 3})


@pytest.mark.parametrize(
    ("dtid", "owner"),
    [
        pytest.param(b"\x02\x00\x00\x05", 2, id="a sibling's TID"),
        pytest.param(b"\x03\xff\xff\xff", 3, id="another sibling's TID"),
        pytest.param(b"\x01\x00\x00\x05", None, id="our own TID: ours to answer"),
        pytest.param(b"\x07\x00\x00\x05", None, id="another node's worker"),
        pytest.param(b"\x02\x00\x05", None, id="not our 4-octet shape"),
        pytest.param(b"\x02\x00\x00\x00\x05", None, id="too long"),
        pytest.param(None, None, id="no DTID (a Begin)"),
    ],
)
def test_owner_worker(dtid: bytes | None, owner: int | None) -> None:
    assert owner_worker(dtid, 1, SIBLINGS_OF_1) == owner


def test_alone_nothing_is_a_siblings() -> None:
    assert owner_worker(b"\x02\x00\x00\x05", 1, frozenset()) is None


GT_PEER = SccpAddress(RoutingIndicator.GT, None, 146, GlobalTitle("8613900000"))


@pytest.mark.parametrize(
    "ind",
    [
        NUnitdata(SCP, PEER, b"\x65\x03\x49\x01\x02", opc=PC_PEER, dpc=PC_SCP),
        NUnitdata(
            SCP,
            GT_PEER,
            bytes(range(256)) * 8,
            protocol_class=1,
            return_option=True,
            sequence_control=9,
            importance=4,
        ),
    ],
    ids=["ssn-routed", "gt, class 1, no point codes, 2 KiB"],
)
def test_frame_round_trip(ind: NUnitdata) -> None:
    for pcf in PointCodeFormat:
        assert decode_forward(encode_forward(ind, pcf), pcf) == ind


@pytest.mark.parametrize(
    "frame",
    [b"", b"MW\x02" + bytes(14), b"XX\x01" + bytes(20), b"MW\x01" + bytes(12) + b"\x09\x42"],
    ids=["empty", "other version", "not ours", "address past the end"],
)
def test_bad_frame_is_refused_with_a_reason(frame: bytes) -> None:
    with pytest.raises(WorkerLinkError):
        decode_forward(frame)


def test_continuation_on_the_wrong_worker_is_answered_by_its_owner() -> None:
    """The switch opens on worker 1, its ERB reaches worker 2: worker 2 hands it to worker 1
    (through the frame), whose TC-user sees it and whose answer ends the dialogue."""
    now = 1000.0
    msc = TcapLayer(worker_id=9)
    w1 = TcapLayer(worker_id=1, siblings=frozenset({2}))
    w2 = TcapLayer(worker_id=2, siblings=frozenset({1}))

    def deliver(to: TcapLayer, outputs: list[object]) -> list[object]:
        nu = only(sent(outputs))
        return to.handle_n_unitdata(NUnitdata(nu.called, nu.calling, nu.data, opc=PC_PEER), now)

    mid = msc.new_dialogue_id()
    out = msc.handle_tc(TcBegin(mid, SCP, PEER, CAP_V2, None, (Invoke(1, 0, IDP),)), now)
    begin = only(up(deliver(w1, out)))
    sid = begin.dialogue_id
    out = w1.handle_tc(TcContinue(sid, CAP_V2, None, (Invoke(1, 23, RRBE, op_class=2),)), now)
    only(up(msc.handle_n_unitdata(only(sent(out)), now)))

    out = msc.handle_tc(TcContinue(mid, components=(Invoke(2, 24, ERB, op_class=4),)), now)
    fwd = only(deliver(w2, out))
    assert type(fwd) is ForwardToWorker and fwd.worker_id == 1
    assert len(w2) == 0  # worker 2 neither opened nor aborted anything

    ind = decode_forward(encode_forward(fwd.ind))
    got = only(up(w1.handle_n_unitdata(ind, now)))
    assert got == TcContinue(sid, None, None, (Invoke(2, 24, ERB),))
    out = w1.handle_tc(TcEnd(sid, components=(Invoke(2, 31, op_class=4),)), now)
    nu = only(sent(out))
    assert (nu.called, nu.dpc) == (PEER, PC_PEER)  # routed back to the switch
    assert only(up(msc.handle_n_unitdata(nu, now))) == TcEnd(mid, None, None, (Invoke(2, 31),))
    assert len(w1) == 0 and len(msc) == 0


def test_a_forwarded_message_for_a_dialogue_the_owner_lost_gets_the_owners_p_abort() -> None:
    """The owner restarted (its dialogues gone): its TID is its own, so it answers with a
    P-Abort unrecognizedTransactionID (Q.774 §3.2.1.1.5) instead of forwarding again."""
    w1 = TcapLayer(worker_id=1, siblings=frozenset({2}))
    cont = tcap.encode_message(MessageType.CONTINUE, otid=b"\xaa\xbb", dtid=b"\x01\x00\x00\x63")
    nu = only(sent(w1.handle_n_unitdata(NUnitdata(SCP, PEER, cont, opc=PC_PEER), 1000.0)))
    assert tcap.decode(nu.data).p_abort_cause == 1
